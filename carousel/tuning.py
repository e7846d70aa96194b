"""Choosing decoding settings on validation data: the length penalty, ensemble member weights and
the noisy-channel weight, each swept at a fixed beam and chosen by BLEU (chrF breaks ties, then the
value nearest the neutral default). `carousel tune` calls these and records the choice in card.json.
"""

from __future__ import annotations

from pathlib import Path

from carousel.errors import UserError



def sweep_member_weights(translator, candidates: list[list[float]], score, beam: int):
    """Try each weight vector (default length penalty, no reranking); leave the model on the best one."""
    from carousel.model.search import SearchConfig

    if not translator.is_ensemble:
        raise UserError("--member-weights applies to ensembles (carousel ensemble); this model has one member")
    results = {}
    for weights in candidates:
        try:
            translator.set_member_weights(weights)
        except ValueError as error:
            raise UserError(f"--member-weights: {error}") from None
        key = ",".join(f"{w:g}" for w in weights)
        results[key] = (translator.member_weights, score(SearchConfig(beam_size=beam, length_penalty=1.0, channel_weight=0.0)))
        print(f"member weights {key:<8}  BLEU {results[key][1]['bleu']:6.2f}  chrF {results[key][1]['chrf']:6.2f}", flush=True)
    # Highest BLEU, then chrF, then the most even weights.
    best = max(results, key=lambda k: (results[k][1]["bleu"], results[k][1]["chrf"], -max(results[k][0])))
    translator.set_member_weights(results[best][0])
    print(f"best: member weights {best} (BLEU {results[best][1]['bleu']:.2f})")
    sweep = {key: {"bleu": s["bleu"], "chrf": s["chrf"]} for key, (_, s) in results.items()}
    return list(results[best][0]), sweep  # unrounded: a tiny share must not round to 0, which loading refuses


def keep_untuned(card: dict, decoding: dict, *keys: str) -> None:
    """Carry settings this run did not tune over from the card's earlier `decoding`."""
    earlier = card.get("decoding")
    for key in keys:
        if isinstance(earlier, dict) and key in earlier:
            decoding[key] = earlier[key]


def load_channel_model(directory: Path, translator, quantization: str):
    from carousel.model.translator import check_channel_direction, load_translator

    try:
        channel = load_translator(directory, quantization, channel="none")
        check_channel_direction(translator.src_lang, translator.tgt_lang, channel, UserError)
    except ValueError as error:
        raise UserError(str(error)) from None
    return channel


def scores_by_value(sweep: dict[float, dict]) -> dict[str, dict]:
    return {str(value): {"bleu": s["bleu"], "chrf": s["chrf"]} for value, s in sweep.items()}


def choose(sweep: dict[float, dict], neutral: float = 1.0) -> float:
    """The value with the highest BLEU; chrF breaks ties, then the value nearest `neutral` (the default)."""
    return max(sweep, key=lambda value: (sweep[value]["bleu"], sweep[value]["chrf"], -abs(value - neutral)))

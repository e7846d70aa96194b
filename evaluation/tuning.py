"""Choosing decoding settings on validation data: the length penalty, ensemble member weights and
the noisy-channel weight, each swept at a fixed beam and chosen by BLEU (chrF breaks ties, then the
value nearest the neutral default; with `--chrf-within`, the best chrF among the settings within that
much BLEU of the best), and the beam itself: the smallest within a tolerance of the best.
`carousel tune` calls these and records the choice in card.json.
"""

from __future__ import annotations

import os
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
    from carousel.model.translator import check_channel_direction
    from carousel.model.loading import load_translator

    try:
        channel = load_translator(directory, quantization, channel="none")
        check_channel_direction(translator.src_lang, translator.tgt_lang, channel, UserError)
    except ValueError as error:
        raise UserError(str(error)) from None
    return channel


def scores_by_value(sweep: dict[float, dict]) -> dict[str, dict]:
    return {str(value): {"bleu": s["bleu"], "chrf": s["chrf"]} for value, s in sweep.items()}


def choose(sweep: dict[float, dict], neutral: float = 1.0, chrf_within: float = 0.0) -> float:
    """The value with the highest BLEU; chrF breaks ties, then the value nearest `neutral` (the default).
    With `chrf_within` > 0, every value whose BLEU is within that much of the best counts as tied, and
    the highest chrF among them wins: BLEU differences of a few hundredths are noise on a validation
    set of 1,000 sentences, and chrF (which counts the content words BLEU's n-grams miss) is a target too."""
    top = max(scores["bleu"] for scores in sweep.values())
    tied = [value for value in sweep if top - sweep[value]["bleu"] <= chrf_within + 1e-9]  # 15.69 - 15.59 is 0.1
    # Without a margin the tied share the top BLEU, so chrF first is BLEU first, then chrF.
    return max(tied, key=lambda value: (sweep[value]["chrf"], sweep[value]["bleu"], -abs(value - neutral)))


def sweep(score, name: str, values: list[float], beam: int, report=print, **search_fields) -> dict[float, dict]:
    """Score each value of one search setting (`length_penalty`, `channel_weight`) once, in the order given."""
    from carousel.model.search import SearchConfig

    results = {}
    for value in dict.fromkeys(values):
        results[value] = score(SearchConfig(beam_size=beam, **search_fields, **{name: value}))
        report(f"{name.replace('_', ' ')} {value:<4}  BLEU {results[value]['bleu']:6.2f}  chrF {results[value]['chrf']:6.2f}")
    return results


def choose_beam(best_by_beam: dict[int, dict], tolerance: float) -> int:
    """The smallest beam whose best BLEU is within `tolerance` of the best beam's: a wider beam costs time
    in proportion, and gains within the noise of a validation set are not worth it."""
    top = max(scores["bleu"] for scores in best_by_beam.values())
    return min(beam for beam, scores in best_by_beam.items() if scores["bleu"] >= top - tolerance)


def tune_decoding(translator, score, beams: list[int], length_penalties: list[float], channel_weights: list[float],
                  member_weights: list[list[float]] | None, model_dir: Path, channel_dir: Path | None,
                  split: str = "valid", report=print, ngram_bans: list[int] | None = None,
                  beam_tolerance: float = 0.0, chrf_within: float = 0.0, keep_off: bool = False,
                  patiences: list[float] | None = None) -> dict:
    """The `decoding` record of card.json: member weights (ensembles, when candidates are given, at the
    widest beam), then per beam the length penalty and the n-gram repeat ban at that penalty (when
    candidates are given), then the beam (`choose_beam`, with several), then the channel weight at that
    beam (when `translator` has a channel model). With `patiences`, the length penalty and n-gram ban are
    tuned at each patience, and the patience is chosen among them like a length penalty. Settings this run
    does not tune are kept from the card."""
    beams = list(dict.fromkeys(beams))
    decoding: dict = {}
    if member_weights:
        decoding["member_weights"], decoding["member_weights_sweep"] = \
            sweep_member_weights(translator, member_weights, score, max(beams))
    else:
        keep_untuned(translator.card, decoding, "member_weights", "member_weights_sweep")
    # per beam: its decoding record, the scores of the settings it chose, and the best BLEU it reached
    by_beam, best, reached = {}, {}, {}
    for beam in beams:
        if len(beams) > 1:
            report(f"beam {beam}:")
        if patiences:
            by_beam[beam], best[beam], reached[beam] = _tune_patience(score, beam, patiences, length_penalties,
                                                                      ngram_bans, split, report, chrf_within)
        else:
            by_beam[beam], best[beam], reached[beam] = _tune_at_beam(score, beam, length_penalties, ngram_bans, split,
                                                                     report, chrf_within)
    # A beam is judged by the best BLEU any setting reached with it, not by the setting `chrf_within` chose:
    # the beam is a speed-for-quality trade, and trading a little BLEU for chrF must not also buy a wider beam.
    beam = choose_beam(reached, beam_tolerance)
    decoding.update(by_beam[beam])
    if len(beams) > 1:
        report(f"best on {split}: beam {beam} (best BLEU {reached[beam]['bleu']:.2f}; the best beam "
               f"{max(r['bleu'] for r in reached.values()):.2f}, tolerance {beam_tolerance:g})")
        decoding.update(beam_tolerance=beam_tolerance, beam_sweep={
            str(b): {"bleu": best[b]["bleu"], "chrf": best[b]["chrf"], **_settings_tuned(by_beam[b]),
                     "best_bleu": reached[b]["bleu"]}
            for b in beams})
    if not ngram_bans:
        keep_untuned(translator.card, decoding, "no_repeat_ngram", "no_repeat_ngram_sweep")
    if not patiences:
        keep_untuned(translator.card, decoding, "patience", "patience_sweep")
    if channel_dir is None:
        keep_untuned(translator.card, decoding, "channel")
        return decoding
    decoding["channel"] = tune_channel(translator, score, channel_weights, decoding, model_dir, channel_dir,
                                       split, report, keep_off)
    return decoding


def tune_channel(translator, score, channel_weights: list[float], decoding: dict, model_dir: Path, channel_dir: Path,
                 split: str = "valid", report=print, keep_off: bool = False) -> dict:
    """The `decoding.channel` record: the channel weight swept at `decoding`'s beam, length penalty and
    n-gram ban. With `keep_off`, the best weight is recorded as `best_on_valid` and the weight stays 0:
    reranking is then an option (`--channel-weight`) rather than the default, for models where its
    cost in time outweighs what it gains."""
    weights = sweep(score, "channel_weight", channel_weights, decoding["beam"], report,
                    length_penalty=decoding["length_penalty"], no_repeat_ngram=decoding.get("no_repeat_ngram", 0),
                    patience=decoding.get("patience", 1.0))
    weight = choose(weights, neutral=0.0)
    report(f"best on {split}: channel weight {weight} (BLEU {weights[weight]['bleu']:.2f})"
           + ("; recorded, left off" if keep_off else ""))
    return {
        "model": os.path.relpath(Path(channel_dir).resolve(), Path(model_dir).resolve()),  # they move together
        "weight": 0.0 if keep_off else weight,
        "best_on_valid": weight,
        "model_card_name": translator.channel.card.get("name"),
        "model_checksums": translator.channel.card.get("checksums"),
        "sweep": scores_by_value(weights),
    }


def _tune_patience(score, beam: int, patiences: list[float], length_penalties: list[float],
                   ngram_bans: list[int] | None, split: str, report, chrf_within: float) -> tuple[dict, dict, dict]:
    """`_tune_at_beam` at each patience, and the patience whose chosen setting wins as a length penalty
    would (nearest 1, the usual rule, on ties): its record with `patience` and `patience_sweep`, its
    chosen scores, and the highest BLEU any patience reached."""
    records, chosen, reached = {}, {}, {}
    for patience in dict.fromkeys(patiences):
        report(f"patience {patience}:")
        records[patience], chosen[patience], reached[patience] = _tune_at_beam(
            score, beam, length_penalties, ngram_bans, split, report, chrf_within, patience=patience)
    patience = choose(chosen, neutral=1.0, chrf_within=chrf_within)
    report(f"best on {split}: patience {patience} (BLEU {chosen[patience]['bleu']:.2f}, chrF {chosen[patience]['chrf']:.2f})")
    record = dict(records[patience], patience=patience, patience_sweep={
        str(p): {"bleu": chosen[p]["bleu"], "chrf": chosen[p]["chrf"], **_settings_tuned(records[p])} for p in records})
    return record, chosen[patience], _highest_bleu(reached)


def _tune_at_beam(score, beam: int, length_penalties: list[float], ngram_bans: list[int] | None, split: str,
                  report, chrf_within: float = 0.0, patience: float | None = None) -> tuple[dict, dict, dict]:
    """The length penalty, then the n-gram ban at it, at one beam: the decoding record, the scores of the
    settings chosen, and the scores of the highest BLEU any setting reached."""
    penalties = sweep(score, "length_penalty", length_penalties, beam, report, channel_weight=0.0, patience=patience)
    penalty = choose(penalties, neutral=1.0, chrf_within=chrf_within)
    report(f"best on {split}: length penalty {penalty} (BLEU {penalties[penalty]['bleu']:.2f}, "
           f"chrF {penalties[penalty]['chrf']:.2f})")
    chosen_by = f"chrF among settings within {chrf_within:g} BLEU of the best" if chrf_within else "BLEU"
    record = dict(length_penalty=penalty, chosen_by=chosen_by, beam=beam, sweep=scores_by_value(penalties))
    if not ngram_bans:
        return record, penalties[penalty], _highest_bleu(penalties)
    bans = sweep(score, "no_repeat_ngram", ngram_bans, beam, report, length_penalty=penalty, channel_weight=0.0,
                 patience=patience)
    ban = int(choose(bans, neutral=0, chrf_within=chrf_within))
    report(f"best on {split}: no repeat ngram {ban} (BLEU {bans[ban]['bleu']:.2f}, chrF {bans[ban]['chrf']:.2f})")
    record.update(no_repeat_ngram=ban, no_repeat_ngram_sweep=scores_by_value(bans))
    return record, bans[ban], _highest_bleu(penalties, bans)


def _settings_tuned(record: dict) -> dict:
    """The settings a beam's (or patience's) record chose: those this run swept, and no others (an n-gram ban
    not swept is the card's, whatever the sweep record would say)."""
    return {key: record[key] for key in ("patience", "length_penalty", "no_repeat_ngram") if key in record}


def _highest_bleu(*sweeps: dict) -> dict:
    return max((scores for sweep in sweeps for scores in sweep.values()), key=lambda scores: scores["bleu"])

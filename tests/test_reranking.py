"""Noisy-channel reranking: forced-decoding scores, the reranked choice, and the card that names the
reverse model (`carousel tune --channel-model`)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

import pytest
import torch

from carousel.cli import main
from carousel.model.card import update_card
from carousel.model.card import ModelLoadError
from carousel.model.config import EOS_ID
from carousel.model.reranking import forced_log_probs, rerank
from carousel.model.search import SearchConfig
from carousel.model.loading import load_translator
from tests.conftest import save_perturbed_copy
from tests.test_ensemble import teacher_forced_log_probs
from tests.test_search import batch_of, small_model


def test_forced_scores_are_the_mean_token_log_probability_whatever_the_batching():
    model = small_model(seed=2)
    src, lengths = batch_of([7, 3, 9, 5], seed=4)
    sources = [src[row, : lengths[row]].tolist() for row in range(4)]
    targets = [[5, 9, 11, EOS_ID], [EOS_ID], [7] * 12 + [EOS_ID], [20, 3, EOS_ID]]
    together = forced_log_probs(model, sources, targets, batch_tokens=1000)
    one_by_one = [forced_log_probs(model, [s], [t], batch_tokens=1)[0] for s, t in zip(sources, targets)]
    assert together == pytest.approx(one_by_one, abs=1e-5)
    for row, (source, target) in enumerate(zip(sources, targets)):
        expected = teacher_forced_log_probs(model, torch.tensor([source]), torch.tensor([len(source)]), target[:-1])
        assert together[row] == pytest.approx(float(expected.mean()), abs=1e-5)


@dataclass
class Scored:
    text: str
    score: float


def test_rerank_adds_the_weighted_channel_score_and_keeps_the_best():
    nbest = [Scored("a", -1.0), Scored("b", -1.5), Scored("c", -2.0)]
    channel = [-3.0, -1.0, -0.5]
    assert [h.text for h in rerank(nbest, channel, 0.0, 3)] == ["a", "b", "c"]  # weight 0: forward order
    reranked = rerank(nbest, channel, 1.0, 2)
    assert [h.text for h in reranked] == ["b", "c"]  # -2.5, -2.5 (stable), then a at -4.0 is cut
    assert [h.score for h in reranked] == [-2.5, -2.5]


@pytest.fixture
def pair(tiny_model_dir, tmp_path):
    """The tiny es→en model and, beside it, a stand-in en→es channel model: the same weights, perturbed
    and relabelled (joint subwords make that possible). It scores badly but exercises every path."""
    forward, reverse = tmp_path / "es-en", tmp_path / "en-es"
    shutil.copytree(tiny_model_dir, forward)
    save_perturbed_copy(tiny_model_dir, reverse, noise=0.5, src_lang="en", tgt_lang="es")
    return forward, reverse


def _record_channel(model_dir, weight: float, model: str = "../en-es") -> None:
    update_card(model_dir, decoding={"length_penalty": 1.0, "channel": {"model": model, "weight": weight}})


def test_the_translation_is_the_beam_hypothesis_with_the_best_combined_score(pair, tiny_test_pairs):
    forward, _ = pair
    _record_channel(forward, 5.0)  # heavy, so that the stand-in channel model changes some choices
    translator = load_translator(forward, "none")
    assert translator.channel is not None and translator.channel_weight == 5.0
    sources = [source for source, _ in tiny_test_pairs[:8]]
    beams = translator.translate(sources, SearchConfig(beam_size=4, nbest=4, channel_weight=0.0))
    chosen = translator.translate(sources, SearchConfig(beam_size=4))  # the card's weight
    changed = 0
    for source, beam, best in zip(sources, beams, chosen):
        channel = translator.channel_scores([source] * len(beam), [t.text for t in beam])
        combined = [t.score + 5.0 * c for t, c in zip(beam, channel)]
        expected = beam[max(range(len(beam)), key=combined.__getitem__)]
        assert best[0].text == expected.text and best[0].score == pytest.approx(max(combined), abs=1e-4)
        changed += best[0].target_tokens != beam[0].target_tokens
    assert changed  # the channel model changed some choices, or this test shows nothing


@pytest.mark.slow
def test_tune_records_the_channel_model_beside_the_model_and_the_weight_it_chose(pair, tiny_corpus, capsys):
    forward, reverse = pair
    code = main(["tune", "--model", str(forward), "--corpus", str(tiny_corpus), "--beam", "3",
                 "--length-penalties", "1.0", "--channel-model", str(reverse), "--channel-weights", "0", "0.5", "2",
                 "--update-card", "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "channel weight 0.5" in out and "best on valid: channel weight" in out
    decoding = json.loads((forward / "card.json").read_text(encoding="utf-8"))["decoding"]
    channel = decoding["channel"]
    assert channel["model"] == "../en-es" and set(channel["sweep"]) == {"0.0", "0.5", "2.0"}
    best = max(channel["sweep"], key=lambda w: (channel["sweep"][w]["bleu"], channel["sweep"][w]["chrf"], -float(w)))
    assert channel["weight"] == float(best)

    # Re-tuning only the length penalty keeps the channel settings.
    assert main(["tune", "--model", str(forward), "--corpus", str(tiny_corpus), "--beam", "3",
                 "--length-penalties", "0.8", "--update-card", "--quiet"]) == 0
    retuned = json.loads((forward / "card.json").read_text(encoding="utf-8"))["decoding"]
    assert retuned["length_penalty"] == 0.8 and retuned["channel"] == channel

    # The two directories move together: the relative path still holds after both are moved.
    moved = forward.parent.parent / "moved"
    shutil.copytree(forward.parent, moved)
    assert load_translator(moved / "es-en").channel_weight == channel["weight"]


def test_a_missing_wrong_way_or_malformed_channel_model_is_a_load_error(pair, tmp_path):
    forward, _ = pair
    _record_channel(forward, 0.5, model="../nowhere")
    with pytest.raises(ModelLoadError, match="'../nowhere' is not a model directory"):
        load_translator(forward)
    _record_channel(forward, 0.5, model=".")  # itself: es→en cannot score es given en
    with pytest.raises(ModelLoadError, match="needs one for en→es"):
        load_translator(forward)
    for malformed in ({"model": "../en-es", "weight": "high"}, {"weight": 0.5}, {"model": "../en-es", "weight": -1}):
        update_card(forward, decoding={"channel": malformed})
        with pytest.raises(ModelLoadError, match="decoding.channel must hold"):
            load_translator(forward)
    _record_channel(forward, 0.0, model="../nowhere")  # tuned to off: nothing is loaded, nothing can fail
    assert load_translator(forward).channel is None


def test_a_channel_model_changed_since_tuning_is_refused(pair, tiny_model_dir, tiny_corpus):
    forward, reverse = pair
    assert main(["tune", "--model", str(forward), "--corpus", str(tiny_corpus), "--beam", "2", "--length-penalties",
                 "1.0", "--channel-model", str(reverse), "--channel-weights", "0.5", "--update-card", "--quiet"]) == 0
    assert load_translator(forward).channel is not None
    shutil.rmtree(reverse)
    save_perturbed_copy(tiny_model_dir, reverse, noise=0.3, src_lang="en", tgt_lang="es")  # retrained, say
    with pytest.raises(ModelLoadError, match="has changed since its weight was tuned.*--channel-only"):
        load_translator(forward)


def test_channel_only_re_tunes_the_weight_for_a_changed_channel_model_and_keeps_the_rest(pair, tiny_model_dir,
                                                                                          tiny_corpus, capsys):
    forward, reverse = pair
    assert main(["tune", "--model", str(forward), "--corpus", str(tiny_corpus), "--beams", "2", "3",
                 "--length-penalties", "0.8", "1.2", "--no-repeat-ngrams", "0", "3", "--channel-model", str(reverse),
                 "--channel-weights", "0.5", "--update-card", "--quiet"]) == 0
    before = json.loads((forward / "card.json").read_text(encoding="utf-8"))["decoding"]
    shutil.rmtree(reverse)
    save_perturbed_copy(tiny_model_dir, reverse, noise=0.3, src_lang="en", tgt_lang="es")  # retrained, say
    capsys.readouterr()
    assert main(["tune", "--model", str(forward), "--corpus", str(tiny_corpus), "--channel-model", str(reverse),
                 "--channel-only", "--channel-weights", "0", "0.5", "2", "--update-card", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "length penalty" not in out, "only the channel weight is swept"
    after = json.loads((forward / "card.json").read_text(encoding="utf-8"))["decoding"]
    channel = after.pop("channel")
    assert after == {k: v for k, v in before.items() if k != "channel"}, "beam, penalty, ban and their evidence kept"
    assert set(channel["sweep"]) == {"0.0", "0.5", "2.0"} and channel["weight"] == channel["best_on_valid"]
    assert channel["command"].startswith("carousel tune") and "--channel-only" in channel["command"]
    assert channel["split"] == "valid" and channel["split_sha256"] == before["split_sha256"]
    translator = load_translator(forward)  # the new checksums load
    assert translator.channel_weight == channel["weight"] and translator.beam_size == before["beam"]


def test_channel_off_records_the_best_weight_and_leaves_reranking_off(pair, tiny_corpus):
    forward, reverse = pair
    assert main(["tune", "--model", str(forward), "--corpus", str(tiny_corpus), "--beam", "2", "--length-penalties",
                 "1.0", "--channel-model", str(reverse), "--channel-weights", "0.5", "--channel-off",
                 "--update-card", "--quiet"]) == 0
    channel = json.loads((forward / "card.json").read_text(encoding="utf-8"))["decoding"]["channel"]
    assert channel["weight"] == 0.0 and channel["best_on_valid"] == 0.5
    assert load_translator(forward).channel is None
    assert load_translator(forward, channel="named").channel is not None, "`--channel-weight` can still turn it on"


@pytest.mark.parametrize("extra,message", [([], "--channel-model"), (["--channel-model", "M", "--beams", "3", "5"],
                                                                     "keeps the card's beam")])
def test_channel_only_without_a_channel_model_or_with_other_sweeps_is_refused(pair, tiny_corpus, capsys, extra,
                                                                              message):
    forward, reverse = pair
    extra = [str(reverse) if part == "M" else part for part in extra]
    assert main(["tune", "--model", str(forward), "--corpus", str(tiny_corpus), "--channel-only", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_tune_runs_on_a_model_whose_channel_model_has_moved_and_keeps_its_record(pair, tiny_corpus):
    forward, _ = pair
    _record_channel(forward, 0.5, model="../nowhere")
    assert main(["tune", "--model", str(forward), "--corpus", str(tiny_corpus), "--beam", "2",
                 "--length-penalties", "0.8", "--update-card", "--quiet"]) == 0
    decoding = json.loads((forward / "card.json").read_text(encoding="utf-8"))["decoding"]
    assert decoding["length_penalty"] == 0.8 and decoding["channel"] == {"model": "../nowhere", "weight": 0.5}


def test_the_cli_weight_overrides_the_card_and_needs_a_channel_model(pair, tiny_test_pairs, tmp_path, capsys):
    forward, _ = pair
    source = tmp_path / "in.txt"
    source.write_text("\n".join(s for s, _ in tiny_test_pairs[:5]) + "\n", encoding="utf-8")
    assert main(["translate", "--model", str(forward), "--channel-weight", "0.5", str(source), "--quiet"]) == 2
    assert "a channel weight needs a channel model" in capsys.readouterr().err
    assert main(["translate", "--model", str(forward), "--channel-weight", "11", str(source), "--quiet"]) == 2
    assert "--channel-weight must be between 0 and 10" in capsys.readouterr().err

    _record_channel(forward, 1.0)
    assert main(["translate", "--model", str(forward), "--quiet", "--channel-weight", "0", str(source)]) == 0
    plain = capsys.readouterr().out
    translator = load_translator(forward, channel="none")
    assert plain.splitlines() == [n[0][0] for n in translator.translate_texts([s for s, _ in tiny_test_pairs[:5]])]
    assert main(["evaluate", "--model", str(forward), "--split", "valid", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["search"]["channel_weight"] == 1.0

    # A weight tuned to 0 loads no channel model, yet the command line can still switch reranking on.
    _record_channel(forward, 0.0)
    assert load_translator(forward).channel is None
    assert main(["translate", "--model", str(forward), "--quiet", "--channel-weight", "5", str(source)]) == 0
    reranked = load_translator(forward, channel="named")
    expected = reranked.translate_texts([s for s, _ in tiny_test_pairs[:5]], SearchConfig(beam_size=5, channel_weight=5.0))
    assert capsys.readouterr().out.splitlines() == [n[0][0] for n in expected]


def test_every_shipped_channel_record_names_the_reverse_model_as_it_is_now():
    """A shipped card whose channel model was retrained since its weight was tuned would refuse
    `--channel-weight` (as general-en-es did after general-es-en's typed fine-tune)."""
    from pathlib import Path

    models = Path(__file__).resolve().parents[1] / "models"
    checked = 0
    for card_path in sorted(models.glob("*/card.json")):
        channel = json.loads(card_path.read_text(encoding="utf-8")).get("decoding", {}).get("channel")
        if channel is None:
            continue
        reverse = json.loads((card_path.parent / channel["model"] / "card.json").read_text(encoding="utf-8"))
        assert channel["model_checksums"] == reverse["checksums"], f"{card_path}: re-tune with --channel-only"
        checked += 1
    assert checked >= 2, "both general models name their reverse model"

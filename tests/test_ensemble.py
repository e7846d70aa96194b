"""Ensembles: the search averages the members' probabilities, and `carousel ensemble` builds a model
directory that loads, verifies and translates like any other."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from carousel.cli import main
from carousel.model.card import update_card
from carousel.model.checkpoint import ModelLoadError, load_model_dir
from carousel.model.config import BOS_ID, EOS_ID
from carousel.model.ensemble import Ensemble
from carousel.model.search import SearchConfig, beam_search, greedy_search
from carousel.model.translator import Translator
from carousel.model.loading import load_translator
from tests.conftest import rewrite_config, save_perturbed_copy
from tests.test_search import VARIANTS, batch_of, small_model


@torch.no_grad()
def teacher_forced_log_probs(model, src, lengths, tokens: list[int]) -> torch.Tensor:
    """log p(y_t | y_<t, x) of every token of `tokens` + EOS, for source row 0."""
    target = torch.tensor([[BOS_ID, *tokens]])
    logits = model(src, lengths, target)[0]
    return torch.log_softmax(logits, dim=-1)[torch.arange(len(tokens) + 1), torch.tensor([*tokens, EOS_ID])]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("weights", [None, [3.0, 1.0, 0.5]])
def test_beam_hypotheses_score_the_weighted_average_of_the_members_probabilities(variant, weights):
    members = [small_model(seed, **variant) for seed in (0, 1, 2)]
    ensemble = Ensemble(members, weights)
    shares = torch.tensor(weights or [1.0, 1.0, 1.0])
    shares = (shares / shares.sum()).view(-1, 1)
    src, lengths = batch_of([7, 3, 9, 5])
    results = beam_search(ensemble, src, lengths, SearchConfig(beam_size=4, nbest=3, length_penalty=0))
    for row, nbest in enumerate(results):
        row_src, row_len = src[row : row + 1, : lengths[row]], lengths[row : row + 1]
        for hyp in nbest:
            # Beams are reordered at every step: each member's state must follow its own beam.
            per_member = torch.stack([teacher_forced_log_probs(m, row_src, row_len, hyp.tokens) for m in members])
            expected = torch.logsumexp(per_member + shares.log(), dim=0).sum()
            assert hyp.log_prob == pytest.approx(float(expected), abs=1e-3)


def test_an_ensemble_of_one_model_twice_translates_exactly_as_that_model():
    model = small_model(seed=4)
    twin = small_model(seed=4)
    src, lengths = batch_of([6, 8, 2, 9], seed=3)
    config = SearchConfig(beam_size=5, nbest=2)
    alone, together = beam_search(model, src, lengths, config), beam_search(Ensemble([model, twin]), src, lengths, config)
    assert [[h.tokens for h in n] for n in alone] == [[h.tokens for h in n] for n in together]
    greedy_alone = greedy_search(model, src, lengths, SearchConfig(beam_size=1))
    greedy_together = greedy_search(Ensemble([model, twin]), src, lengths, SearchConfig(beam_size=1))
    assert [h.tokens for h in greedy_alone] == [h.tokens for h in greedy_together]


def test_members_must_share_the_architecture():
    with pytest.raises(ValueError, match="architecture"):
        Ensemble([small_model(), small_model(attention="bahdanau", input_feeding=True)])
    with pytest.raises(ValueError, match="two members"):
        Ensemble([small_model()])
    for weights in ([1.0], [1.0, 0.0], [1.0, float("nan")], [1.0, -2.0]):
        with pytest.raises(ValueError, match="2 positive numbers"):
            Ensemble([small_model(), small_model(seed=1)], weights)


@pytest.fixture
def two_members(tiny_model_dir, tmp_path):
    """The tiny model and a sibling with perturbed weights (same subwords, different predictions)."""
    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(tiny_model_dir, first)
    save_perturbed_copy(first, second, noise=0.05, name="sibling")
    return first, second


def test_carousel_ensemble_writes_a_directory_that_loads_verifies_and_translates(two_members, tmp_path, tiny_test_pairs, capsys):
    first, second = two_members
    (first / "curves.png").write_bytes(b"first's curves")
    (second / "curves.png").write_bytes(b"second's curves")
    output = tmp_path / "ensemble"
    assert main(["ensemble", "--models", str(first), str(second), "--output", str(output)]) == 0
    assert "ensemble of 2 models" in capsys.readouterr().out
    assert (output / "curves.png").read_bytes() == b"first's curves"
    assert (output / "curves-member-2.png").read_bytes() == b"second's curves"

    loaded = load_model_dir(output)
    assert isinstance(loaded.model, Ensemble) and loaded.weight_files == ["model.safetensors", "member-2.safetensors"]
    card = json.loads((output / "card.json").read_text(encoding="utf-8"))
    assert [m["name"] for m in card["ensemble"]["members"]] == [load_model_dir(first).card["name"], "sibling"]
    assert "decoding" not in card and "evaluation" not in card  # those belong to the combination: tune, evaluate

    sources = [source for source, _ in tiny_test_pairs[:6]]
    search = SearchConfig(beam_size=3, length_penalty=1.0)
    from_files = [t[0].text for t in load_translator(output, "none").translate(sources, search)]
    members = [load_model_dir(first).model, load_model_dir(second).model]
    by_hand = Translator(Ensemble(members), loaded.source_spm, loaded.target_spm, loaded.normalizer)
    assert from_files == [t[0].text for t in by_hand.translate(sources, search)]
    assert all(t[0].text for t in load_translator(output).translate(sources, search))  # int8 too

    # An ensemble directory can itself be a member: its members are all added.
    bigger = tmp_path / "three"
    assert main(["ensemble", "--models", str(output), str(first), "--output", str(bigger)]) == 0
    assert load_model_dir(bigger).weight_files[-1] == "member-3.safetensors"
    assert (bigger / "curves-member-2.png").read_bytes() == b"second's curves"
    assert (bigger / "curves-member-3.png").read_bytes() == b"first's curves"


def test_a_modified_member_file_is_refused_at_load(two_members, tmp_path):
    output = tmp_path / "ensemble"
    assert main(["ensemble", "--models", *map(str, two_members), "--output", str(output)]) == 0
    data = bytearray((output / "member-2.safetensors").read_bytes())
    data[-10] ^= 0xFF
    (output / "member-2.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="member-2.safetensors does not match its checksum"):
        load_model_dir(output)


@pytest.mark.parametrize("entry", ["../model.safetensors", "/etc/passwd", "member-2.pt"])
def test_a_config_naming_files_outside_the_directory_or_not_safetensors_is_refused(two_members, tmp_path, entry):
    output = tmp_path / "ensemble"
    assert main(["ensemble", "--models", *map(str, two_members), "--output", str(output)]) == 0
    rewrite_config(output, weights=["model.safetensors", entry])  # as if the card were edited too
    with pytest.raises(ModelLoadError, match="not a .safetensors file name"):
        load_model_dir(output)


def test_incompatible_members_and_unsafe_outputs_are_refused_by_name(two_members, tmp_path, capsys):
    first, second = two_members
    other_languages = tmp_path / "en-es"
    shutil.copytree(second, other_languages)
    rewrite_config(other_languages, src_lang="en", tgt_lang="es")

    cases = [
        (["--models", str(first), str(other_languages), "--output", str(tmp_path / "x")], "translates en→es"),
        (["--models", str(first), "--output", str(tmp_path / "x")], "at least two"),
        (["--models", str(first), str(second), "--output", str(first)], "one of the members"),
        (["--models", str(first), str(second), "--output", str(second.parent)], "exists; pass --force"),
    ]
    for args, message in cases:
        assert main(["ensemble", *args]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_training_cannot_start_from_an_ensemble(two_members, tmp_path, tiny_corpus):
    from carousel.errors import UserError
    from tests.conftest import tiny_train_config
    from carousel.training.trainer import run_training

    output = tmp_path / "ensemble"
    assert main(["ensemble", "--models", *map(str, two_members), "--output", str(output)]) == 0
    config = tiny_train_config(tmp_path / "run", tiny_corpus, f"training.init_from={output}")
    with pytest.raises(UserError, match="ensemble of 2 models"):
        run_training(config)


@pytest.mark.slow
def test_tune_chooses_member_weights_on_valid_and_loading_applies_them(
    two_members, tmp_path, tiny_corpus, tiny_test_pairs, capsys
):
    output = tmp_path / "ensemble"
    assert main(["ensemble", "--models", *map(str, two_members), "--output", str(output)]) == 0
    assert main(["tune", "--model", str(output), "--corpus", str(tiny_corpus), "--beam", "2", "--length-penalties",
                 "1.0", "--member-weights", "1,1", "3,1", "1,3", "--update-card", "--quiet"]) == 0
    capsys.readouterr()
    decoding = json.loads((output / "card.json").read_text(encoding="utf-8"))["decoding"]
    sweep = decoding["member_weights_sweep"]
    assert set(sweep) == {"1,1", "3,1", "1,3"}
    # The card records the candidate with the highest BLEU, then chrF, then the most even shares.
    best = max(sweep, key=lambda key: (sweep[key]["bleu"], sweep[key]["chrf"], -max(_normalised(key))))
    assert decoding["member_weights"] == pytest.approx(_normalised(best))
    assert load_model_dir(output).model.weights == pytest.approx(decoding["member_weights"])

    # The recorded shares steer decoding: a member with nearly all the weight translates as it does alone.
    # (Shares of 10^6 : 1, not 0 : 1, which loading refuses; float32, where batching cannot change a translation.)
    sources = [source for source, _ in tiny_test_pairs[:8]]
    search = SearchConfig(beam_size=3, length_penalty=1.0)
    alone = [[t[0].text for t in load_translator(member, "none").translate(sources, search)] for member in two_members]
    assert alone[0] != alone[1]  # the members disagree, so the shares can be told apart
    for shares, member in (([1e6, 1.0], 0), ([1.0, 1e6], 1)):
        update_card(output, decoding={"member_weights": shares})
        skewed = [t[0].text for t in load_translator(output, "none").translate(sources, search)]
        assert skewed == alone[member], shares

    update_card(output, decoding={"member_weights": [1e308, 1e308]})  # sums to infinity unscaled
    assert load_model_dir(output).model.weights == pytest.approx([0.5, 0.5])
    for malformed in ([1.0], [10**400, 1], [0, 1]):
        update_card(output, decoding={"member_weights": malformed})
        with pytest.raises(ModelLoadError, match="member_weights must be 2 positive numbers"):
            load_model_dir(output)
    assert main(["tune", "--model", str(two_members[0]), "--corpus", str(tiny_corpus), "--member-weights", "1,1"]) == 2
    assert "applies to ensembles" in capsys.readouterr().err


def _normalised(key: str) -> list[float]:
    values = [float(part) for part in key.split(",")]
    return [value / sum(values) for value in values]

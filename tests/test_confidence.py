"""Per-sentence confidence (model/confidence.py, evaluation/calibration.py) and where users see it."""

from __future__ import annotations

import json
import math
import shutil
import warnings
from dataclasses import replace

import numpy as np
import pytest

from carousel.evaluation import calibration
from carousel.fileio import sha256_file
from carousel.model.confidence import (
    FEATURES, REPRESENTATION_FILE, Calibration, CalibrationError, Representation, beam_agreement,
    read_calibration, sentence_features, untranslated_share,
)
from carousel.model.search import SearchConfig
from carousel.model.loading import load_translator
from carousel.service.app import create_app
from carousel.service.registry import ModelRegistry
from carousel.service.settings import ServiceSettings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SPANISH = "Y murió Elimelech, marido de Noemi, y quedó ella con sus dos hijos;"
FIXED = Calibration(list(FEATURES[:8]), [0.0] * 8, [1.0] * 8, [0.5, 0.3, 1.0, -1.0, 0.5, -1.0, -2.0, 0.0], 1.0, {})


def with_confidence(directory, quantization="none"):
    """The tiny model with a stand-in reverse model (its own weights, said to translate the other way)."""
    translator = load_translator(directory, quantization)
    reverse = load_translator(directory, quantization, channel="none")
    reverse.src_lang, reverse.tgt_lang = translator.tgt_lang, translator.src_lang
    translator.use_confidence(reverse, FIXED)
    return translator


def test_signals_of_a_sentence():
    alignment = [[0.9, 0.0, 0.1], [0.1, 0.2, 0.7]]  # source token 2 gets 0.2 attention in all: not covered
    signals = sentence_features("Tiene 12 ovejas y 3 cabras", "He has 12 sheep and sheep and sheep", -0.5, -1.0,
                                alignment, ["▁Tiene", "▁1", "2", "▁o", "v", "e", "j", "as"], 1)
    assert set(signals) == set(FEATURES)
    assert signals["coverage"] == 0.5 and signals["numbers"] == 0.5  # "3" is lost
    assert signals["fragmented"] == pytest.approx(2 / 3)  # "ovejas" in 5 pieces, plus one <unk>
    assert signals["repetition"] == pytest.approx(2 / 7)  # "and sheep" twice, "sheep and" twice
    assert signals["length"] == pytest.approx(abs(math.log(36 / 27)))
    assert signals["agreement"] == 1.0 and signals["runner_up"] == 0.0  # no other hypotheses
    assert signals["token_mean"] == -0.5  # the forward score stands in where no per-token figure is known
    per_token = sentence_features("Tiene 12 ovejas", "He has 12 sheep", -0.5, -1.0, None, ["▁Tiene"], 0, token_mean=-0.8)
    assert per_token["token_mean"] == -0.8 and per_token["forward"] == -0.5


def test_a_beam_that_agrees_with_itself_signals_more_than_one_that_does_not():
    best = "He has twelve sheep and three goats"
    assert beam_agreement(best, [best, best]) == pytest.approx(1.0)
    close = beam_agreement(best, ["He has twelve sheep and three goats.", "He had twelve sheep and three goats"])
    apart = beam_agreement(best, ["The shepherd is here", "Twelve of them went away"])
    assert 1.0 > close > 0.7 > 0.3 > apart >= 0.0
    signals = sentence_features("Tiene doce ovejas", best, -0.4, -1.0, None, ["▁Tiene", "▁doce", "▁ovejas"], 0,
                                [("He had twelve sheep", -0.9), ("Twelve sheep", -1.3)])
    assert signals["runner_up"] == pytest.approx(0.5)
    assert signals["agreement"] == pytest.approx(beam_agreement(best, ["He had twelve sheep", "Twelve sheep"]))


def test_fit_predicts_quality_and_survives_a_round_trip_through_json():
    scored = []
    for i in range(200):  # quality falls with the reverse score's badness; noise in the other signals
        reverse = -0.5 - 4 * (i % 20) / 20
        signals = dict.fromkeys(FEATURES, 0.0) | {"reverse": reverse, "coverage": (i * 7 % 11) / 11}
        scored.append(calibration.Scored("set", "s", "r", "o", signals, max(0.0, 100 + 20 * reverse)))
    fitted = calibration.fit(scored, components=0)  # the signals alone: no encoder states here
    confidences = [fitted(s.signals) for s in scored]
    figures = calibration.measure(confidences, [s.chrf for s in scored])
    assert figures["spearman"] > 0.95 and figures["auroc"] > 0.95
    assert all(0 <= c <= 1 for c in confidences)
    again = Calibration.from_json(fitted.to_json())
    assert again(scored[3].signals) == pytest.approx(fitted(scored[3].signals))
    with pytest.raises(CalibrationError):
        Calibration.from_json('{"features": ["forward", "mystery"], "mean": [0, 0], "scale": [1, 1], "weights": [1, 1], "bias": 0}')


def test_output_left_in_the_source_language_is_not_trusted_but_names_and_addresses_are():
    assert untranslated_share("Hola", "Hola", "es", "en") == 1.0  # a Spanish word, far commoner in Spanish
    assert untranslated_share("Never", "Never", "en", "es") == 1.0
    assert untranslated_share("Vivo en Madrid con Linux", "I live in Madrid with Linux", "es", "en") == 0.0
    assert untranslated_share("Adiós, amigos", "Adiós, friends", "es", "en") == 0.5
    assert untranslated_share("See https://www.debian.org/releases/", "Consulte https://www.debian.org/releases/", "en", "es") == 0.0
    assert untranslated_share("Hola", "Hola", "xx", "en") == 0.0  # a language wordfreq does not know: no opinion
    signals = dict.fromkeys(FEATURES[:8], 0.0)
    assert FIXED(signals) > 0.5
    assert FIXED(signals | {"untranslated": 0.5}) == pytest.approx(FIXED(signals) / 2)
    assert FIXED(signals | {"untranslated": 1.0}) == 0.0


def sentences_of_two_kinds(count: int, seed: int = 0, quality=None, centres_seed: int = 99) -> list:
    """Sentences of two kinds whose source encoder states sit around two directions: kind A ("A", even
    rows) translated well, kind B badly. By default their quality varies at random within a kind, so the
    signals do not predict it but the kind does; `quality(kind, signals, rng)` gives another chrF."""
    centres = np.random.default_rng(centres_seed).normal(size=(2, 64))  # the same two kinds whatever the seed
    rng = np.random.default_rng(seed)
    scored = []
    for i in range(count):
        kind = i % 2
        signals = {name: float(rng.normal()) for name in FEATURES}
        states = (centres[kind] + 0.5 * rng.normal(size=64), rng.normal(size=64))
        chrf = (quality or _quality_by_kind)(kind, signals, rng)
        scored.append(calibration.Scored("A" if kind == 0 else "B", "s", "r", "o", signals, chrf, None, states))
    return scored


def _quality_by_kind(kind: int, signals: dict, rng) -> float:
    return float(np.clip((75 if kind == 0 else 25) + 10 * rng.normal(), 0, 100))


def test_the_representation_ranks_sentences_by_their_kind_where_the_signals_cannot():
    scored = sentences_of_two_kinds(240)
    chrfs = [s.chrf for s in scored]
    settings = {"components": 4, "memory_axes": 8, "neighbours": 10}
    with_kind = calibration.measure(calibration.cross_validated(scored, **settings), chrfs)
    signals_only = calibration.measure(calibration.cross_validated(scored, components=0), chrfs)
    assert with_kind["spearman"] > 0.6 and with_kind["auroc"] > 0.95
    assert signals_only["spearman"] < 0.3  # and the honest figure is not flattered by fitting on itself
    fitted = calibration.fit(scored, **settings)
    assert "neighbours" in fitted.features and len(fitted.features) == 2 * len(FEATURES) + 2 * 4 + 1
    assert fitted.features[-1] == f"{FEATURES[-1]}*neighbours"
    newcomer = sentences_of_two_kinds(2, seed=1)  # a new sentence of each kind
    good, bad = (fitted(s.signals, s.states) for s in newcomer)
    assert good > 0.6 > 0.4 > bad
    with pytest.raises(ValueError, match="encoder states"):
        fitted(newcomer[0].signals)


def test_a_representation_survives_saving_and_a_changed_or_missing_one_is_refused(tmp_path):
    scored = sentences_of_two_kinds(60)
    fitted = calibration.fit(scored, components=3, memory_axes=6, neighbours=5)
    path = fitted.save(tmp_path)
    card = {"confidence": {"file": path.name, "sha256": sha256_file(path), "reverse_model": "../other"}}
    loaded, _ = read_calibration(tmp_path, card)
    assert loaded.representation.neighbours == 5 and loaded.representation.memory.shape == (60, 6)
    assert loaded.representation.temperature == calibration.TEMPERATURE
    entry = json.loads(path.read_text())
    entry["representation"]["temperature"] = -1
    with pytest.raises(CalibrationError, match="positive temperature"):
        Calibration.from_json(json.dumps(entry), str(path))
    assert loaded(scored[0].signals, scored[0].states) == pytest.approx(fitted(scored[0].signals, scored[0].states), abs=1e-5)
    stored = (tmp_path / REPRESENTATION_FILE).read_bytes()
    (tmp_path / REPRESENTATION_FILE).write_bytes(stored[:-8] + b"\0" * 8)
    with pytest.raises(CalibrationError, match="changed since it was fitted"):
        read_calibration(tmp_path, card)
    (tmp_path / REPRESENTATION_FILE).unlink()
    with pytest.raises(CalibrationError, match="missing"):
        read_calibration(tmp_path, card)
    calibration.fit(scored, components=0).save(tmp_path)  # refitting without one leaves no stale file
    assert not (tmp_path / REPRESENTATION_FILE).exists()


def test_calibrate_fits_a_representation_that_translation_then_uses(calibrated_models_dir, tmp_path, capsys):
    from carousel.cli import main

    shutil.copytree(calibrated_models_dir, tmp_path, dirs_exist_ok=True)
    forward, reverse = tmp_path / "tiny-es-en", tmp_path / "tiny-en-es"
    assert main(["calibrate", "--model", str(forward), "--reverse", str(reverse), "--sets", "bible-valid",
                 "--per-set", "24", "--components", "3", "--neighbours", "4", "--beam", "2"]) == 0
    assert "5-fold cross-validated Spearman" in capsys.readouterr().out
    assert (forward / REPRESENTATION_FILE).is_file()
    translator = load_translator(forward, "none", SearchConfig(beam_size=2, return_confidence=True))
    representation = translator.calibration.representation
    assert len(representation.memory) == 24 and representation.components == 3
    best = translator.translate([SPANISH], SearchConfig(beam_size=2, return_confidence=True))[0][0]
    assert 0 <= best.confidence <= 1 and best.states is None  # kept only while fitting
    calibrated = translator.calibration
    translator.use_confidence(translator.reverse)  # as `carousel calibrate` translates: no calibration yet
    fitting = translator.translate([SPANISH], SearchConfig(beam_size=2, return_confidence=True))[0][0]
    hidden = translator.model.config.encoder_hidden * 2
    assert fitting.confidence is None and [state.shape for state in fitting.states] == [(hidden,), (hidden,)]
    # A representation of encoders of another size (a model retrained wider) is refused at loading.
    from carousel.model.card import update_card
    from carousel.model.card import ModelLoadError

    for side in ("source", "output"):
        setattr(representation, f"{side}_axes", getattr(representation, f"{side}_axes")[:, :-1])
        setattr(representation, f"{side}_mean", getattr(representation, f"{side}_mean")[:-1])
    entry = json.loads((forward / "card.json").read_text(encoding="utf-8"))["confidence"]
    update_card(forward, confidence={**entry, "sha256": sha256_file(calibrated.save(forward))})
    with pytest.raises(ModelLoadError, match="another size"):
        load_translator(forward, "none", SearchConfig(return_confidence=True))
    with pytest.raises(SystemExit) as refused:
        main(["calibrate", "--model", str(forward), "--reverse", str(reverse), "--components", "-1"])
    assert refused.value.code == 2 and "must be 0 or more" in capsys.readouterr().err


def test_a_changed_calibration_file_is_refused(tmp_path):
    (tmp_path / "confidence.json").write_text(FIXED.to_json())
    card = {"confidence": {"file": "confidence.json", "sha256": "0" * 64, "reverse_model": "../other"}}
    with pytest.raises(CalibrationError, match="changed since it was fitted"):
        read_calibration(tmp_path, card)


def test_the_translator_returns_confidence_only_when_asked(tiny_model_dir):
    translator = with_confidence(tiny_model_dir)
    best = translator.translate([SPANISH, ""], SearchConfig(beam_size=3, return_confidence=True))
    assert 0 <= best[0][0].confidence <= 1 and set(best[0][0].signals) == {*FEATURES, "untranslated"}
    assert best[0][0].alignment is None  # computed for the coverage, not returned unless asked
    first = best[0][0]  # the search's total log-probability, per token (EOS included)
    assert first.signals["token_mean"] == pytest.approx(first.log_prob / len(first.target_tokens))
    assert best[1][0].confidence is None  # nothing to translate
    plain = translator.translate([SPANISH], SearchConfig(beam_size=3))[0][0]
    assert plain.confidence is None and plain.text == best[0][0].text
    assert len(best[0]) == 1  # the whole beam was searched for the agreement, `nbest` returned
    two = translator.translate([SPANISH], SearchConfig(beam_size=3, nbest=2, return_confidence=True))[0]
    assert len(two) == 2 and two[0].text == plain.text and two[1].confidence is None
    uncalibrated = load_translator(tiny_model_dir, "none")
    with pytest.raises(ValueError, match="carousel calibrate"):
        uncalibrated.translate([SPANISH], SearchConfig(return_confidence=True))


def service(models_dir, **settings):
    settings = ServiceSettings(models_dir=models_dir, quantize="none", **settings)
    app = create_app(settings, ModelRegistry(settings, load=lambda directory, quantize, **_: with_confidence(directory)))
    return TestClient(app)


@pytest.mark.slow
def test_the_service_answers_confidence_warns_and_refuses(models_dir):
    with service(models_dir) as client:
        assert client.app.state.registry.wait_until_loaded(120)
        one = client.post("/translate", json={"q": SPANISH, "source": "es", "target": "en", "return_confidence": True}).json()
        assert 0 <= one["confidence"] <= 1 and "confidenceWarning" not in one
        listed = client.post("/translate", json={"q": [SPANISH, ""], "source": "es", "target": "en",
                                                 "return_confidence": True}).json()
        assert listed["confidence"][0] == one["confidence"] and listed["confidence"][1] == 1.0
        assert "confidence" not in client.post("/translate", json={"q": SPANISH, "source": "es", "target": "en"}).json()
    with service(models_dir, confidence_action="warn", confidence_threshold=1.0) as client:
        assert client.app.state.registry.wait_until_loaded(120)
        warned = client.post("/translate", json={"q": SPANISH, "source": "es", "target": "en"}).json()
        assert "low confidence" in warned["confidenceWarning"] and "confidence" not in warned
    with service(models_dir, confidence_action="refuse", confidence_threshold=1.0) as client:
        assert client.app.state.registry.wait_until_loaded(120)
        refused = client.post("/translate", json={"q": SPANISH, "source": "es", "target": "en"})
        assert refused.status_code == 422 and "below this server's threshold" in refused.json()["error"]


# The `calibrated_models_dir` calibration reads the source's length only: about 1 for a short sentence,
# about 0 for a long one.
SURE = "Amén."
DOUBTFUL = ("Y aconteció en los días que gobernaban los jueces, que hubo hambre en la tierra, y un varón de "
            "Beth-lehem de Judá fué á peregrinar en los campos de Moab, él y su mujer, y dos hijos suyos.")


@pytest.mark.slow
def test_the_service_answers_each_sentences_confidence_and_says_which_pairs_have_one(calibrated_models_dir):
    from carousel.service.responses import TranslateAnswer

    settings = ServiceSettings(models_dir=calibrated_models_dir, quantize="none")
    with TestClient(create_app(settings)) as client:  # the real loader: the card's calibration and reverse model
        assert client.app.state.registry.wait_until_loaded(120)
        assert client.get("/frontend/settings").json()["confidence"] == {
            "threshold": 0.35, "pairs": [{"source": "es", "target": "en"}]}  # en→es has no calibration

        ask = {"source": "es", "target": "en", "return_confidence": True}
        one = client.post("/translate", json={"q": f"{SURE} {DOUBTFUL} —", **ask}).json()
        TranslateAnswer.model_validate(one)
        sentences = one["sentenceConfidence"]
        assert [s["source"] for s in sentences] == [SURE, DOUBTFUL, "—"]
        assert sentences[0]["confidence"] > 0.9 and sentences[1]["confidence"] < 0.1
        assert sentences[2] == {"source": "—", "translation": "—", "confidence": 1.0}  # no words: not translated
        assert one["confidence"] == pytest.approx((sentences[0]["confidence"] + sentences[1]["confidence"]) / 2, abs=1e-3)
        at = 0  # each sentence's translation is found in translatedText, in order
        for sentence in sentences:
            at = one["translatedText"].index(sentence["translation"], at) + len(sentence["translation"])

        listed = client.post("/translate", json={"q": [SURE, DOUBTFUL], **ask}).json()
        TranslateAnswer.model_validate(listed)
        assert [[s["source"] for s in string] for string in listed["sentenceConfidence"]] == [[SURE], [DOUBTFUL]]
        plain = client.post("/translate", json={"q": SURE, "source": "es", "target": "en"}).json()
        assert "sentenceConfidence" not in plain and "confidence" not in plain

        uncalibrated = client.post("/translate", json={"q": "Amen.", "source": "en", "target": "es",
                                                       "return_confidence": True}).json()
        assert uncalibrated["confidence"] is None  # not 1: the model cannot say
        assert [s["confidence"] for s in uncalibrated["sentenceConfidence"]] == [None]


def _quality_by_own_signal(kind: int, signals: dict, rng) -> float:
    """Kind A (well translated): quality follows `forward`; kind B (badly): it follows `reverse` instead."""
    telling = signals["forward"] if kind == 0 else signals["reverse"]
    return float(np.clip((70 if kind == 0 else 30) + 12 * telling + 3 * rng.normal(), 0, 100))


def test_signals_times_neighbours_let_each_kind_of_sentence_weigh_its_own_signal():
    scored = sentences_of_two_kinds(400, quality=_quality_by_own_signal, centres_seed=98)
    settings = {"components": 4, "memory_axes": 8, "neighbours": 10}

    def within_kinds(interact: bool) -> list[float]:
        confidences = calibration.cross_validated(scored, interact=interact, **settings)
        return [calibration.measure([c for c, s in zip(confidences, scored) if s.set_name == kind],
                                    [s.chrf for s in scored if s.set_name == kind])["spearman"] for kind in "AB"]

    alike, own = within_kinds(interact=False), within_kinds(interact=True)
    assert all(o > a + 0.1 for o, a in zip(own, alike)), (own, alike)  # one weight per signal blurs both kinds
    assert min(own) > 0.85


def test_the_nearest_calibration_sentences_count_most_in_neighbours():
    qualities = np.array([0.9, 0.5, 0.1])  # three calibration sources, one along each axis
    weighted = Representation(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3)[:1], np.eye(3), qualities,
                              neighbours=3, temperature=0.05)
    source = np.array([1.0, 0.2, 0.0])  # nearest the first, then the second
    assert weighted.features(source, np.zeros(3))["neighbours"] > 0.85
    plain = replace(weighted, temperature=None)  # as calibrations fitted before weighting read it
    assert plain.features(source, np.zeros(3))["neighbours"] == pytest.approx(0.5)


def test_within_set_figures_do_not_borrow_from_the_difference_between_sets():
    """Two sets far apart in quality, each ranked backwards: pooled Spearman looks good, within each it is -1."""
    scored = [calibration.Scored(name, "s", "r", "o", {}, chrf) for name, base in (("easy", 80.0), ("hard", 20.0))
              for chrf in (base, base + 5, base + 10)]
    confidences = [0.9, 0.85, 0.8, 0.3, 0.25, 0.2]
    assert calibration.measure(confidences, [s.chrf for s in scored])["spearman"] > 0.5
    assert calibration.measure_by_set(scored, confidences) == {"easy": -1.0, "hard": -1.0}

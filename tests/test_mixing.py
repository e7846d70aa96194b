"""Training mixes (data/mixing.py): parts combined, small parts weighed up, evaluation sentences held out."""

from __future__ import annotations

from carousel.data.corpus import read_split


def write_pairs(directory, es: list[str], en: list[str]) -> dict:
    """Two line-aligned files, as a mix part's `files`."""
    for language, lines in (("es", es), ("en", en)):
        (directory / f"t.{language}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"es": directory / "t.es", "en": directory / "t.en"}


def test_a_mix_part_can_take_only_short_pairs_and_weigh_them_up_before_the_full_part(tmp_path):
    """`max_words`: a part of the short pairs, repeated, placed before the part they come from; the full
    part then leaves those pairs out, so nothing is counted twice."""
    from carousel.data.mixing import MixSpec, build_mix

    es = ["Hola.", "Buenos días.", "El tren sale de la estación a las ocho.", "Gracias."]
    en = ["Hello.", "Good morning.", "The train leaves the station at eight.", "Thank you."]
    files = write_pairs(tmp_path, es, en)
    spec = MixSpec.model_validate({
        "name": "m", "languages": ["es", "en"],
        "train": [{"name": "short", "files": files, "max_words": 2, "repeat": 3}, {"name": "all", "files": files}],
        "valid": [{"name": "v", "files": files, "max_words": 1}],
    })
    build_mix(spec, tmp_path / "mix")
    train = read_split(tmp_path / "mix", "train", ["es", "en"])
    assert train.count(("Buenos días.", "Good morning.")) == 3  # short: three times, and not again from "all"
    assert train.count(("El tren sale de la estación a las ocho.", "The train leaves the station at eight.")) == 1
    assert ("Hola.", "Hello.") not in train  # one word each side: in valid, so never trained on


def test_a_typed_part_holds_the_pairs_as_people_type_them_without_closing_punctuation(tmp_path):
    """`typed`: "¡Hola!" / "Hi!" becomes "Hola" / "Hi"; questions keep their marks; pairs with nothing
    to drop are left out of the typed part, since the plain part holds them already."""
    from carousel.data.mixing import MixSpec, build_mix, typed

    assert typed("¡Hola!") == "Hola" and typed("Hi!") == "Hi" and typed("Buenos días.") == "Buenos días"
    assert typed("¿Cómo estás?") == "¿Cómo estás?" and typed("Espera...") == "Espera..."
    assert typed("¡Hola, Juan! ¿Qué tal?") == "¡Hola, Juan! ¿Qué tal?"  # not a closing mark: kept whole
    es = ["¡Hola!", "Buenos días.", "¿Cómo estás?", "Gracias"]
    en = ["Hi!", "Good morning.", "How are you?", "Thanks"]
    files = write_pairs(tmp_path, es, en)
    spec = MixSpec.model_validate({
        "name": "m", "languages": ["es", "en"],
        "train": [{"name": "all", "files": files}, {"name": "typed", "files": files, "typed": True, "repeat": 2}],
        "valid": [{"name": "v", "files": files, "max_words": 1}],
    })
    build_mix(spec, tmp_path / "mix")
    train = read_split(tmp_path / "mix", "train", ["es", "en"])
    assert train.count(("Buenos días", "Good morning")) == 2 and train.count(("Buenos días.", "Good morning.")) == 1
    assert ("¿Cómo estás?", "How are you?") in train and train.count(("Gracias", "Thanks")) == 0  # one word: valid
    assert ("Hola", "Hi") not in train  # "¡Hola!" is a valid sentence, and so is its typed form

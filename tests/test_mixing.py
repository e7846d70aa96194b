"""Training mixes (data/mixing.py): parts combined, small parts weighed up, evaluation sentences held out."""

from __future__ import annotations

from carousel.data.corpus import read_split


def test_a_mix_part_can_take_only_short_pairs_and_weigh_them_up_before_the_full_part(tmp_path):
    """`max_words`: a part of the short pairs, repeated, placed before the part they come from; the full
    part then leaves those pairs out, so nothing is counted twice."""
    from carousel.data.mixing import MixSpec, build_mix

    es = ["Hola.", "Buenos días.", "El tren sale de la estación a las ocho.", "Gracias."]
    en = ["Hello.", "Good morning.", "The train leaves the station at eight.", "Thank you."]
    (tmp_path / "t.es").write_text("\n".join(es) + "\n", encoding="utf-8")
    (tmp_path / "t.en").write_text("\n".join(en) + "\n", encoding="utf-8")
    files = {"es": tmp_path / "t.es", "en": tmp_path / "t.en"}
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

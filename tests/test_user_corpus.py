"""Importing a user's corpus: each format on tiny files, cleaning, splitting, and every user-fixable error."""

from __future__ import annotations

from pathlib import Path

import pytest

from carousel.cli import main
from carousel.errors import UserError
from carousel.data.cleaning import CleaningConfig
from carousel.data.corpus import load_corpus_manifest, read_split
from carousel.data.user_corpus import ImportConfig, SplitConfig, TextSource, TmxSource, TsvSource, import_corpus

SPANISH = ["hola", "adiós", "gracias", "buenos días", "buenas noches", "por favor", "la casa", "el perro"]
ENGLISH = ["hello", "goodbye", "thank you", "good morning", "good night", "please", "the house", "the dog"]
SMALL_SPLIT = SplitConfig(valid_size=2, test_size=2, seed=7)


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _config(source, **changes) -> ImportConfig:
    settings = dict(name="tiny", source_language="es", target_language="en", source=source, split=SMALL_SPLIT)
    return ImportConfig(**{**settings, **changes})


def _all_rows(out: Path) -> list[tuple[str, ...]]:
    return [row for split in ("train", "valid", "test") for row in read_split(out, split, ["es", "en"])]


# --- successful imports --------------------------------------------------------------------


def test_tsv_import_by_column_number(tmp_path):
    lines = "".join(f"{i}\t{es}\tx\t{en}\n" for i, (es, en) in enumerate(zip(SPANISH, ENGLISH, strict=True)))
    source = TsvSource(paths=(_write(tmp_path / "c.tsv", lines),), source_column="2", target_column="4")
    manifest, splits = import_corpus(_config(source), tmp_path / "out")
    assert manifest.columns == ["id", "es", "en"]
    assert {name: len(rows) for name, rows in splits.items()} == {"valid": 2, "test": 2, "train": 4}
    assert sorted(_all_rows(tmp_path / "out")) == sorted(zip(SPANISH, ENGLISH, strict=True))
    assert load_corpus_manifest(tmp_path / "out").splits["train"].rows == 4


def test_tsv_import_by_header_name(tmp_path):
    lines = "english\tspanish\n" + "".join(f"{en}\t{es}\n" for es, en in zip(SPANISH, ENGLISH, strict=True))
    source = TsvSource(
        paths=(_write(tmp_path / "c.tsv", lines),), source_column="spanish", target_column="english", header=True
    )
    import_corpus(_config(source), tmp_path / "out")
    assert sorted(_all_rows(tmp_path / "out")) == sorted(zip(SPANISH, ENGLISH, strict=True))


def test_text_import_keeps_line_numbers_as_ids(tmp_path):
    source = TextSource(
        paths=(_write(tmp_path / "c.es", "\n".join(SPANISH) + "\n"), _write(tmp_path / "c.en", "\r\n".join(ENGLISH)))
    )
    _, splits = import_corpus(_config(source), tmp_path / "out")
    rows = [row for rows in splits.values() for row in rows]
    assert ("c.es:3", "gracias", "thank you") in rows


def test_tmx_import_with_regional_tags_inline_codes_and_missing_languages(tmp_path):
    units = "".join(
        f'<tu tuid="u{i}"><tuv xml:lang="es-ES"><seg>{es}</seg></tuv><tuv lang="EN-GB"><seg>{en}</seg></tuv></tu>'
        for i, (es, en) in enumerate(zip(SPANISH, ENGLISH, strict=True))
    )
    units += (
        '<tu><tuv xml:lang="es"><seg><bpt i="1">&lt;b&gt;</bpt>el <hi>gato</hi><ept i="1">&lt;/b&gt;</ept></seg></tuv>'
    )
    units += '<tuv xml:lang="en"><seg>the cat</seg></tuv></tu>'
    units += '<tu><tuv xml:lang="fr"><seg>bonjour</seg></tuv><tuv xml:lang="en"><seg>hello</seg></tuv></tu>'
    tmx = f'<?xml version="1.0" encoding="UTF-8"?>\n<tmx version="1.4"><header srclang="es"/><body>{units}</body></tmx>'
    source = TmxSource(paths=(_write(tmp_path / "c.tmx", tmx),))
    manifest, _ = import_corpus(_config(source), tmp_path / "out")
    rows = _all_rows(tmp_path / "out")
    assert ("el gato", "the cat") in rows and ("hola", "hello") in rows and len(rows) == 9
    assert manifest.dropped_counts == {"missing language": 1}
    assert manifest.dropped[0].id == "c.tmx#10"


def test_cleaning_counts_each_reason(tmp_path):
    lines = [f"{es}\t{en}" for es, en in zip(SPANISH, ENGLISH, strict=True)]
    lines += ["  \thello", "hola\thello", "uno dos tres cuatro\tone two three four", "sí\tincontrovertibly"]
    source = TsvSource(paths=(_write(tmp_path / "c.tsv", "\n".join(lines)),), source_column="1", target_column="2")
    config = _config(source, cleaning=CleaningConfig(max_tokens=3, max_ratio=2.0))
    manifest, splits = import_corpus(config, tmp_path / "out")
    assert manifest.dropped_counts == {"duplicate": 1, "empty": 1, "length ratio": 1, "too long": 1}
    assert sum(len(rows) for rows in splits.values()) == len(SPANISH)
    duplicate = next(record for record in manifest.dropped if record.reason == "duplicate")
    assert (duplicate.id, duplicate.detail) == ("c.tsv:10", "same as c.tsv:1")


def test_whitespace_inside_fields_is_normalised(tmp_path):
    lines = [f"{es}\t{en}" for es, en in zip(SPANISH, ENGLISH, strict=True)] + ["  la\u00a0  luz \t the\x0blight "]
    source = TsvSource(paths=(_write(tmp_path / "c.tsv", "\n".join(lines)),), source_column="1", target_column="2")
    import_corpus(_config(source), tmp_path / "out")
    assert ("la luz", "the light") in _all_rows(tmp_path / "out")


def test_random_split_is_seeded_and_keeps_input_order(tmp_path):
    source = TextSource(
        paths=(_write(tmp_path / "a.es", "\n".join(SPANISH)), _write(tmp_path / "a.en", "\n".join(ENGLISH)))
    )
    _, first = import_corpus(_config(source), tmp_path / "one")
    _, second = import_corpus(_config(source), tmp_path / "two")
    _, other_seed = import_corpus(
        _config(source, split=SplitConfig(valid_size=2, test_size=2, seed=8)), tmp_path / "three"
    )
    assert first == second and first != other_seed
    assert (tmp_path / "one" / "train.tsv").read_bytes() == (tmp_path / "two" / "train.tsv").read_bytes()
    for rows in first.values():
        assert rows == sorted(rows, key=lambda row: int(row[0].split(":")[1]))


def test_given_split_files_are_used_and_their_pairs_removed_from_training(tmp_path):
    main_file = _write(tmp_path / "c.tsv", "".join(f"{es}\t{en}\n" for es, en in zip(SPANISH, ENGLISH, strict=True)))
    valid = _write(tmp_path / "valid.tsv", "el sol\tthe sun\n")
    test = _write(tmp_path / "test.tsv", "hola\thello\nla luna\tthe moon\n")
    source = TsvSource(paths=(main_file,), source_column="1", target_column="2")
    manifest, splits = import_corpus(_config(source, valid_paths=(valid,), test_paths=(test,)), tmp_path / "out")
    assert [row[1:] for row in splits["test"]] == [("hola", "hello"), ("la luna", "the moon")]
    assert [row[1:] for row in splits["valid"]] == [("el sol", "the sun")]
    assert ("hola", "hello") not in [row[1:] for row in splits["train"]]
    assert len(splits["train"]) == len(SPANISH) - 1
    assert manifest.dropped[0].detail == "same as test.tsv:1"


def test_cli_imports_text_files(tmp_path, capsys):
    src = _write(tmp_path / "c.es", "\n".join(SPANISH))
    tgt = _write(tmp_path / "c.en", "\n".join(ENGLISH))
    out = tmp_path / "out"
    argv = ["prepare", "text", str(src), str(tgt), "--src-lang", "es", "--tgt-lang", "en", "--out", str(out)]
    assert main(argv + ["--valid-size", "1", "--test-size", "1", "--quiet"]) == 0
    assert load_corpus_manifest(out).splits["train"].rows == len(SPANISH) - 2
    assert "p50" in capsys.readouterr().out


# --- errors a user can fix -----------------------------------------------------------------


def _import_error(tmp_path, source, **changes) -> str:
    with pytest.raises(UserError) as error:
        import_corpus(_config(source, **changes), tmp_path / "out")
    return str(error.value)


def test_text_files_with_different_line_counts(tmp_path):
    source = TextSource(paths=(_write(tmp_path / "a.es", "uno\ndos\ntres\n"), _write(tmp_path / "a.en", "one\ntwo\n")))
    message = _import_error(tmp_path, source)
    assert f"{tmp_path / 'a.es'}:3" in message and "a.en has 2 lines" in message


def test_invalid_utf8_names_file_and_line(tmp_path):
    source = TextSource(paths=(_write(tmp_path / "a.es", b"uno\nca\xf1a\n"), _write(tmp_path / "a.en", "one\ncane\n")))
    message = _import_error(tmp_path, source)
    assert message.startswith(f"{tmp_path / 'a.es'}:2: invalid UTF-8")


def test_tsv_row_with_too_few_columns(tmp_path):
    source = TsvSource(
        paths=(_write(tmp_path / "c.tsv", "hola\thello\nadiós\n"),), source_column="1", target_column="2"
    )
    assert (
        _import_error(tmp_path, source) == f"{tmp_path / 'c.tsv'}:2: expected at least 2 tab-separated columns, found 1"
    )


def test_tsv_column_name_without_header(tmp_path):
    source = TsvSource(paths=(_write(tmp_path / "c.tsv", "hola\thello\n"),), source_column="es", target_column="en")
    assert "add --header" in _import_error(tmp_path, source)


def test_malformed_tmx_names_line(tmp_path):
    tmx = '<?xml version="1.0"?>\n<tmx version="1.4"><body>\n<tu><tuv xml:lang="es"><seg>hola</tuv></tu>\n</body></tmx>'
    message = _import_error(tmp_path, TmxSource(paths=(_write(tmp_path / "c.tmx", tmx),)))
    assert message.startswith(f"{tmp_path / 'c.tmx'}:3:") and "malformed TMX" in message


def test_tmx_with_entity_declarations_is_refused(tmp_path):
    bomb = (
        '<?xml version="1.0"?>\n<!DOCTYPE tmx [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'
        '<tmx version="1.4"><body><tu><tuv xml:lang="es"><seg>&b;</seg></tuv>'
        '<tuv xml:lang="en"><seg>x</seg></tuv></tu></body></tmx>'
    )
    message = _import_error(tmp_path, TmxSource(paths=(_write(tmp_path / "bomb.tmx", bomb),)))
    assert "bomb.tmx" in message and "entity" in message.lower()


def test_tmx_without_the_requested_languages(tmp_path):
    units = '<tu><tuv xml:lang="fr"><seg>oui</seg></tuv><tuv xml:lang="de"><seg>ja</seg></tuv></tu>'
    tmx = f'<tmx version="1.4"><body>{units}</body></tmx>'
    message = _import_error(tmp_path, TmxSource(paths=(_write(tmp_path / "c.tmx", tmx),)))
    assert "both es and en" in message and "fr, de" in message


def test_corpus_empty_after_cleaning(tmp_path):
    source = TsvSource(paths=(_write(tmp_path / "c.tsv", "\thello\nhola\t \n"),), source_column="1", target_column="2")
    message = _import_error(tmp_path, source)
    assert message == f"{tmp_path / 'c.tsv'}: no sentence pairs left after cleaning (2 read; empty: 2)"


def test_corpus_too_small_for_the_requested_split(tmp_path):
    source = TsvSource(
        paths=(_write(tmp_path / "c.tsv", "hola\thello\nsí\tyes\n"),), source_column="1", target_column="2"
    )
    assert "too few for --valid-size 2 and --test-size 2" in _import_error(tmp_path, source)


def test_cli_reports_user_errors_as_one_line_with_exit_code_2(tmp_path, capsys):
    src = _write(tmp_path / "a.es", "uno\ndos\n")
    tgt = _write(tmp_path / "a.en", "one\n")
    code = main(
        ["prepare", "text", str(src), str(tgt), "--src-lang", "es", "--tgt-lang", "en", "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("carousel prepare: error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_cli_rejects_equal_languages(tmp_path, capsys):
    src = _write(tmp_path / "a.es", "uno\n")
    code = main(["prepare", "text", str(src), str(src), "--src-lang", "es", "--tgt-lang", "es", "--quiet"])
    assert code == 2 and "languages must differ" in capsys.readouterr().err


# --- held-out sizes that scale with the corpus ----------------------------------------------


def _numbered_pairs(tmp_path: Path, count: int) -> Path:
    lines = "".join(f"frase número {i}\tsentence number {i}\n" for i in range(count))
    return _write(tmp_path / "numbered.tsv", lines)


def test_default_held_out_sets_are_5_percent_each_so_a_2000_pair_file_is_not_refused(tmp_path):
    source = TsvSource(paths=(_numbered_pairs(tmp_path, 2000),), source_column="1", target_column="2")
    manifest, splits = import_corpus(_config(source, split=SplitConfig()), tmp_path / "out")
    assert {name: len(rows) for name, rows in splits.items()} == {"valid": 100, "test": 100, "train": 1800}
    assert manifest.source["split"]["valid_size"] == manifest.source["split"]["test_size"] == 100


def test_default_held_out_sizes_have_a_floor_and_a_ceiling():
    from carousel.data.user_corpus import held_out_size

    assert [held_out_size(n) for n in (3, 10, 30, 40, 2000, 19_990, 20_010, 1_000_000)] == [
        1, 1, 2, 2, 100, 1000, 1000, 1000,
    ]


def test_the_smallest_corpus_a_random_split_takes_and_the_one_it_refuses(tmp_path):
    three = TsvSource(paths=(_numbered_pairs(tmp_path, 3),), source_column="1", target_column="2")
    _, splits = import_corpus(_config(three, split=SplitConfig()), tmp_path / "three")
    assert [len(splits[name]) for name in ("train", "valid", "test")] == [1, 1, 1]
    two = TsvSource(paths=(_write(tmp_path / "two.tsv", "uno\tone\ndos\ttwo\n"),), source_column="1", target_column="2")
    with pytest.raises(UserError, match="needs at least 3 pairs"):
        import_corpus(_config(two, split=SplitConfig()), tmp_path / "two")


def test_explicit_sizes_too_large_for_the_corpus_are_refused_with_sizes_that_fit(tmp_path):
    source = TsvSource(paths=(_numbered_pairs(tmp_path, 2000),), source_column="1", target_column="2")
    with pytest.raises(UserError, match="too few for --valid-size 1000 and --test-size 1000") as refused:
        import_corpus(_config(source, split=SplitConfig(valid_size=1000, test_size=1000)), tmp_path / "out")
    assert "use --valid-size 100 and --test-size 100" in str(refused.value)
    assert not (tmp_path / "out").exists()


def test_prepare_tsv_on_a_small_file_without_size_flags(tmp_path, capsys):
    path = _numbered_pairs(tmp_path, 200)
    argv = ["prepare", "tsv", str(path), "--src-col", "1", "--tgt-col", "2", "--src-lang", "es", "--tgt-lang", "en"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    assert load_corpus_manifest(tmp_path / "out").splits["valid"].rows == 10
    assert main([*argv, "--out", str(tmp_path / "big"), "--valid-size", "150", "--test-size", "50"]) == 2
    assert "use --valid-size 10 and --test-size 10" in capsys.readouterr().err

"""A training mix: several corpora and line-aligned text files combined into one corpus directory,
small in-domain parts repeated so that they are not drowned by large ones.

    carousel prepare mix --spec data/mixes/general-es-en.yaml --out runs/corpora/general-es-en

The spec (YAML) names the two language columns and, per split, its parts: a corpus directory's split
(`corpus`, `split`) or two line-aligned files (`files: {es: ..., en: ...}`, e.g. the news and
Tatoeba sentences in ../shared, read where they are and never copied into the repository), each
with `repeat` (train only) and a `licence`. Sentences of valid, test and `exclude` parts (either side)
are removed from train, so no evaluation sentence is trained on, and a training pair already given by an earlier part
(or earlier in the same part) is left out, so overlapping sources (two Tatoeba exports, GNOME help in
Debian's packages and in its own catalogs) are not counted twice before `repeat` weighs them. The
manifest records every part with its checksum and what it lost to each rule. A part may keep only its
short pairs (`max_words`), every Nth pair (`every`: a held-out sample), or give its pairs as people type
them (`typed`: without the closing full stop or exclamation mark).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from carousel.data.cleaning import normalize_whitespace
from carousel.data.corpus import DroppedRecord, read_split, write_corpus
from carousel.errors import UserError
from carousel.fileio import read_lines


class Part(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    corpus: Path | None = None  # a corpus directory (its `split`)
    split: str = "train"
    files: dict[str, Path] | None = None  # language column -> line-aligned text file
    repeat: int = Field(1, ge=1, le=100)
    licence: str = "see source"
    # Only the pairs whose sides both have at most this many words: greetings and short phrases, which a
    # corpus holds too few of to be learnt, weighed up by a part of their own placed before the full one.
    max_words: int | None = Field(None, ge=1)
    # Each pair as people type into a search box or a chat: without the closing full stop or exclamation
    # mark, and without Spain's opening "¡" ("¡Hola!" / "Hi!" → "Hola" / "Hi"). Written corpora always
    # punctuate, so a model trained on them alone reads an unpunctuated "Hola" as a name and copies it.
    # Pairs that have no such punctuation are left out of such a part (the plain part already holds them).
    typed: bool = False
    # Only every Nth pair (the Nth, 2Nth, ...), after `max_words`: a sample held out as a validation set
    # (its own mix) and excluded from the training mix by the same part.
    every: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_kind(self) -> "Part":
        if (self.corpus is None) == (self.files is None):
            raise ValueError(f"part {self.name!r}: give either corpus or files")
        return self


class MixSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    languages: tuple[str, str]  # column names, also the language codes
    train: list[Part]
    valid: list[Part]
    test: list[Part] = []
    # Held out without being a split of this mix: other evaluation sets (another corpus's valid and test
    # splits, newstest2012) whose sentences must not be trained on either.
    exclude: list[Part] = []


def load_spec(path: Path) -> MixSpec:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return MixSpec.model_validate(raw)
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror}") from None
    except (yaml.YAMLError, ValidationError) as error:
        raise UserError(f"{path}: not a valid mix spec: {error}") from None


def read_part(part: Part, languages: tuple[str, str], base: Path) -> list[tuple[str, str]]:
    """The (first, second language) pairs of a part, whitespace normalised, empty pairs left out."""
    if part.corpus is not None:
        rows = read_split(_resolve(part.corpus, base), part.split, list(languages))
    else:
        missing = [code for code in languages if code not in part.files]
        if missing:
            raise UserError(f"part {part.name!r}: no file for {', '.join(missing)}")
        first = [text for _, text in read_lines(_resolve(part.files[languages[0]], base))]
        second = [text for _, text in read_lines(_resolve(part.files[languages[1]], base))]
        if len(first) != len(second):
            raise UserError(f"part {part.name!r}: the files have {len(first)} and {len(second)} lines")
        rows = list(zip(first, second))
    pairs = [(normalize_whitespace(a), normalize_whitespace(b)) for a, b in rows]
    pairs = [(a, b) for a, b in pairs if a and b]
    if part.max_words is not None:
        pairs = [(a, b) for a, b in pairs if max(len(a.split()), len(b.split())) <= part.max_words]
    if part.every is not None:
        pairs = pairs[part.every - 1 :: part.every]
    if part.typed:
        as_typed = ((typed(a), typed(b)) for a, b in pairs)
        pairs = [(ta, tb) for (a, b), (ta, tb) in zip(pairs, as_typed) if (ta, tb) != (a, b) and ta and tb]
    return pairs


def typed(text: str) -> str:
    """`text` as typed: one closing "." or "!" dropped, and the "¡" that opened that "!"; questions keep
    their marks, which carry meaning, and so do an ellipsis and a sentence with several exclamations."""
    if text.endswith(".") and not text.endswith(".."):
        return text[:-1].rstrip()
    if text.endswith("!") and text.count("!") == 1 and "¡" not in text[1:] and not text[:-1].endswith("?"):
        return text[1 if text.startswith("¡") else 0 : -1].strip()
    return text


def build_mix(spec: MixSpec, out: Path, base: Path = Path(".")):
    """Write the mix corpus into `out`; returns the manifest."""
    splits: dict[str, list[tuple[str, ...]]] = {}
    parts_record = []
    held_out: set[str] = set()
    for split in ("valid", "test"):
        rows = []
        for part in getattr(spec, split):
            pairs = read_part(part, spec.languages, base)
            rows += [(f"{part.name}:{i + 1}", a, b) for i, (a, b) in enumerate(pairs)]
            parts_record.append(_describe(part, split, pairs))
        splits[split] = rows
        held_out.update(text for _, a, b in rows for text in (a, b))
    for part in spec.exclude:
        pairs = read_part(part, spec.languages, base)
        held_out.update(text for pair in pairs for text in pair)
        parts_record.append(_describe(part, "excluded", pairs))
    train, dropped = [], []
    seen: set[tuple[str, str]] = set()
    held_out_as_typed = held_out | {typed(text) for text in held_out}  # "Hola" is held out where "¡Hola!" is
    for part in spec.train:
        pairs = read_part(part, spec.languages, base)
        held = held_out_as_typed if part.typed else held_out
        kept, duplicates = [], 0
        for i, (a, b) in enumerate(pairs):
            if a in held or b in held:
                dropped.append(DroppedRecord(id=f"{part.name}:{i + 1}", reason="in valid, test or excluded"))
            elif (a, b) in seen:
                duplicates += 1
                dropped.append(DroppedRecord(id=f"{part.name}:{i + 1}", reason="duplicate of an earlier pair"))
            else:
                seen.add((a, b))
                kept.append((f"{part.name}:{i + 1}", a, b))
        for copy in range(part.repeat):
            train += [(f"{id_}#{copy + 1}" if part.repeat > 1 else id_, a, b) for id_, a, b in kept]
        parts_record.append(_describe(part, "train", pairs, kept=len(kept), duplicates=duplicates))
    splits["train"] = train
    source = {"description": "a training mix built by `carousel prepare mix`", "parts": parts_record}
    return write_corpus(out, spec.name, ["id", *spec.languages], {code: code for code in spec.languages},
                        splits, source, dropped)


def _describe(part: Part, split: str, pairs: list[tuple[str, str]], kept: int | None = None,
              duplicates: int = 0) -> dict:
    digest = hashlib.sha256("\n".join(f"{a}\t{b}" for a, b in pairs).encode("utf-8")).hexdigest()
    where = str(part.corpus) + f" ({part.split})" if part.corpus is not None else {k: str(v) for k, v in part.files.items()}
    record = {"name": part.name, "split": split, "from": where, "pairs": len(pairs), "sha256": digest,
              "licence": part.licence}
    if kept is not None:
        record.update(kept=kept, duplicates=duplicates, repeat=part.repeat, rows_in_train=kept * part.repeat)
    return record


def _resolve(path: Path, base: Path) -> Path:
    return path if path.is_absolute() else base / path

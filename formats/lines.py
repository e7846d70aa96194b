"""Translation records: how `carousel translate` reads input lines of each format and writes output lines.

    text    one sentence (or paragraph) a line; output: its translation (and score) a line
    tsv     a column of tab-separated rows; output: the row with the translation (score, confidence) appended
    jsonl   a JSON object a line with a "text" key; output: the object with "translation" (and more)

A confidence (`--confidence`, model/confidence.py) needs a column or a field of its own, so plain text
output does not take one.

Problems with the input raise a `UserError` naming the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from carousel.errors import UserError

FORMATS = ("text", "tsv", "jsonl")

# (translation, score) pairs for one sentence, best first: what crosses process boundaries.
NBest = list[tuple[str, float]]
# A record's translations and, with --confidence, the best one's confidence in [0, 1].
Translated = tuple[NBest, float | None]


@dataclass
class Record:
    """One input line: the text to translate and what the output line is built from."""

    source: str
    payload: Any = None  # the TSV line or the JSON object
    verbatim: str | None = None  # a line copied to the output untranslated (a TSV header)


class RecordFormat:
    """Turns input lines into records and records plus translations into output lines."""

    def __init__(self, scores: bool, nbest: int, confidence: bool = False):
        self.scores, self.nbest, self.confidence = scores, nbest, confidence

    def parse(self, lines: Iterator[tuple[int, str]], name: str, first_file: bool) -> Iterator[Record]:
        for _, line in lines:
            yield Record(line)

    def render(self, record: Record, translated: Translated) -> str:
        text, score = translated[0][0]
        return f"{text}\t{score:.4f}" if self.scores else text


class TsvFormat(RecordFormat):
    """Tab-separated rows; the output is the row with the translation (score, confidence) appended."""

    def __init__(self, scores: bool, nbest: int, column: str, header: bool, confidence: bool = False):
        super().__init__(scores, nbest, confidence)
        self.column, self.header = column, header
        if column.isdigit():
            self.index: int | None = int(column) - 1
            if self.index < 0:
                raise UserError("--column numbers start at 1")
        elif header:
            self.index = None  # looked up in each file's header
        else:
            raise UserError(f"--column {column!r} is a name: add --header, or give the column's number (from 1)")

    def parse(self, lines: Iterator[tuple[int, str]], name: str, first_file: bool) -> Iterator[Record]:
        index = self.index
        for number, line in lines:
            fields = line.split("\t")
            if self.header and number == 1:
                if index is None:
                    if self.column not in fields:
                        raise UserError(f"{name}:1: no column {self.column!r} in the header (have {', '.join(fields)})")
                    index = fields.index(self.column)
                if first_file:  # one header in the output, however many files
                    added = ["translation", *(["score"] if self.scores else []), *(["confidence"] if self.confidence else [])]
                    yield Record("", verbatim="\t".join([*fields, *added]))
                continue
            if index >= len(fields):
                raise UserError(f"{name}:{number}: the row has {len(fields)} column(s), no column {self.column}")
            yield Record(fields[index], payload=line)

    def render(self, record: Record, translated: Translated) -> str:
        (text, score), confidence = translated[0][0], translated[1]
        return "\t".join([
            record.payload, _one_field(text), *([f"{score:.4f}"] if self.scores else []),
            *([_number(confidence)] if self.confidence else []),
        ])


class JsonlFormat(RecordFormat):
    """One JSON object per line with a "text" key; the output object adds "translation" (and more)."""

    def parse(self, lines: Iterator[tuple[int, str]], name: str, first_file: bool) -> Iterator[Record]:
        for number, line in lines:
            if not line.strip():
                yield Record("", verbatim="")  # blank lines stay blank
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise UserError(f"{name}:{number}: invalid JSON ({error.msg} at column {error.colno})") from None
            if not isinstance(value, dict):
                raise UserError(f"{name}:{number}: expected a JSON object like {{\"text\": \"...\"}}")
            if "text" not in value:
                raise UserError(f"{name}:{number}: the object has no \"text\" key")
            if not isinstance(value["text"], str):
                raise UserError(f"{name}:{number}: \"text\" must be a string, not {type(value['text']).__name__}")
            yield Record(value["text"], payload=value)

    def render(self, record: Record, translated: Translated) -> str:
        nbest, confidence = translated
        text, score = nbest[0]
        value = dict(record.payload, translation=text)
        if self.scores:
            value["score"] = round(score, 4)
        if self.confidence:  # of the best translation only
            value["confidence"] = confidence
        if self.nbest > 1:
            value["alternatives"] = [alternative for alternative, _ in nbest[1:]]
            if self.scores:
                value["alternative_scores"] = [round(s, 4) for _, s in nbest[1:]]
        return json.dumps(value, ensure_ascii=False)


def record_format(name: str, scores: bool = False, nbest: int = 1, column: str | None = None,
                  header: bool = False, confidence: bool = False) -> RecordFormat:
    """The format called `name`, or a `UserError` for options that do not apply to it."""
    if name not in FORMATS:
        raise UserError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}")
    if name != "tsv" and (column is not None or header):
        raise UserError("--column and --header apply to --format tsv")
    if nbest > 1 and name != "jsonl":
        raise UserError("--nbest needs --format jsonl (text and TSV output keep one translation per line)")
    if confidence and name not in ("tsv", "jsonl"):
        raise UserError(f"--confidence adds a column: use --format tsv or jsonl ({name} output has no columns)")
    if name == "tsv":
        if column is None:
            raise UserError("--format tsv needs --column (a number from 1, or a name with --header)")
        return TsvFormat(scores, nbest, column, header, confidence)
    if name == "jsonl":
        return JsonlFormat(scores, nbest, confidence)
    return RecordFormat(scores, nbest)


def render_chunk(chunk: list[Record], translations: list[Translated], output_format: RecordFormat) -> list[str]:
    results = iter(translations)
    return [
        record.verbatim if record.verbatim is not None else output_format.render(record, next(results))
        for record in chunk
    ]


def one_line(text: str) -> str:
    """Output stays one line per input line, whatever the subword model decodes to."""
    return " ".join(text.splitlines()) if ("\n" in text or "\r" in text) else text


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _one_field(text: str) -> str:
    return text.replace("\t", " ")

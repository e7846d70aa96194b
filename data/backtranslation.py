"""Back-translation (Sennrich et al. 2016): synthetic training pairs from target-language text.

A model trained in the opposite direction translates monolingual target-language sentences;
each (machine translation, original) pair joins the training data of the forward direction,
whose decoder thus learns from text no parallel corpus holds. For the Bible, that text is the
World English Bible's deuterocanonical books, which Reina-Valera 1909 does not contain.
The result is an ordinary corpus directory (data/corpus.py) with a train split only, which a
training config adds with `data.extra_train`.

A `tag` word may be put before every synthetic source ("tagged back-translation", Caswell et al. 2019):
the model can then tell machine-made input from real input, learns from the real target side without
imitating the synthetic source's errors, and real input (untagged) keeps its own behaviour.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from carousel.errors import UserError
from carousel.data.corpus import CorpusManifest, DroppedRecord, write_corpus
from carousel.fileio import read_lines

CHUNK_SENTENCES = 256  # translated per step, so the progress bar moves


def back_translate(
    rows: list[tuple[str, str]],
    translator,
    search,
    out_dir: Path,
    name: str,
    source: dict,
    batch_tokens: int = 12000,
    progress: bool = True,
    tag: str | None = None,
) -> tuple[CorpusManifest, dict[str, list[tuple[str, ...]]]]:
    """Translate each (id, text) row with a reverse-direction `translator` and write the corpus.

    Columns: the id, the machine translation (the forward model's source side), the original.
    Rows whose translation comes back empty are dropped with a reason. With a `tag`, each machine
    translation starts with that word.
    """
    if tag is not None and tag.split() != [tag]:
        raise UserError(f"the back-translation tag must be one word without spaces, not {tag!r}")
    if translator.src_lang == translator.tgt_lang:
        raise UserError("back-translation needs a model between two different languages")
    translations = machine_translations([text for _, text in rows], translator, search, batch_tokens, progress,
                                        "back-translating")
    kept, dropped = [], []
    for (record_id, original), synthetic in zip(rows, translations, strict=True):
        if synthetic.strip():
            kept.append((record_id, f"{tag} {synthetic}" if tag else synthetic, original))
        else:
            dropped.append(DroppedRecord(id=record_id, reason="empty", detail="empty back-translation"))
    synthetic_column, original_column = translator.tgt_lang, translator.src_lang
    manifest = write_corpus(
        out_dir,
        name=name,
        columns=["id", synthetic_column, original_column],
        languages={synthetic_column: synthetic_column, original_column: original_column},
        splits={"train": kept},
        source=source,
        dropped=dropped,
    )
    return manifest, {"train": kept}


def machine_translations(texts: list[str], translator, search, batch_tokens: int, progress: bool, what: str,
                         chunk: int = CHUNK_SENTENCES) -> list[str]:
    """Each text's best translation, `chunk` texts per call so that the progress bar (labelled `what`) moves."""
    translations: list[str] = []
    with tqdm(total=len(texts), desc=what, unit="sent", file=sys.stderr, disable=not progress) as bar:
        for start in range(0, len(texts), chunk):
            part = texts[start : start + chunk]
            translations += [nbest[0][0] for nbest in translator.translate_texts(part, search, batch_tokens)]
            bar.update(len(part))
    return translations


def read_text_rows(path: Path) -> list[tuple[str, str]]:
    """Non-empty lines of a UTF-8 text file as (`file:line`, text) rows."""
    rows = [(f"{path.name}:{number}", line.strip()) for number, line in read_lines(path) if line.strip()]
    if not rows:
        raise UserError(f"{path}: no text to back-translate")
    return rows

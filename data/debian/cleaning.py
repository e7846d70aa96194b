"""Cleaning rules for Debian pairs: what each candidate gives after the shared gettext rules.

Catalog strings keep their markup (`<b>`), since the model should learn to carry tags across, but
both sides must then hold the same tags and placeholders (`carousel.data.gettext.token_mismatch`),
otherwise the pair is misaligned or broken and is dropped; their accelerator marks are removed.
Document blocks are split into sentence pairs when both sides have the same number of sentences;
blocks whose lengths or numbers disagree are dropped as misaligned. Spanish document text left in
English (`carousel.data.gettext.looks_english`) is dropped by the extractors of man pages and manuals.
"""

from __future__ import annotations

from carousel.data.corpus import DroppedRecord
from carousel.data.debian.config import DebianConfig
from carousel.data.debian.records import Candidate
from carousel.data.gettext import looks_english, pair_rejection, sentences, strip_accelerators, tidy, word_count


def without_english(candidates: list[Candidate], dropped: list[DroppedRecord]) -> list[Candidate]:
    """The candidates whose Spanish side is not English left untranslated; the others are dropped."""
    kept = []
    for candidate in candidates:
        if looks_english(candidate.es):
            dropped.append(DroppedRecord(id=candidate.id, reason="untranslated (English)"))
        else:
            kept.append(candidate)
    return kept


def clean_candidate(candidate: Candidate, config: DebianConfig) -> tuple[list[tuple[str, str, str]], list[DroppedRecord]]:
    """The (id, en, es) pairs a candidate gives after cleaning, and the records of what was dropped.

    A catalog string gives at most one pair; a document block gives its sentence pairs, or itself.
    """
    english, spanish = candidate.en, candidate.es
    if not candidate.document:
        english, spanish = strip_accelerators(english, spanish)
    english, spanish = tidy(english), tidy(spanish)
    reason, detail = pair_rejection(english, spanish, candidate.document, config)
    if reason:
        return [], [DroppedRecord(id=candidate.id, reason=reason, detail=detail)]
    if not candidate.document:
        return [(candidate.id, english, spanish)], []

    en_sentences, es_sentences = sentences(english), sentences(spanish)
    if len(en_sentences) > 1 and len(en_sentences) == len(es_sentences):
        kept, dropped = [], []
        for number, (en_sentence, es_sentence) in enumerate(zip(en_sentences, es_sentences), start=1):
            sentence_id = f"{candidate.id}:s{number}"
            reason, detail = pair_rejection(en_sentence, es_sentence, True, config)
            if reason:
                dropped.append(DroppedRecord(id=sentence_id, reason=reason, detail=detail))
            else:
                kept.append((sentence_id, en_sentence, es_sentence))
        return kept, dropped
    words = max(word_count(english), word_count(spanish))
    if words > config.max_unsplit_words:
        detail = f"{len(en_sentences)} vs {len(es_sentences)} sentences, {words} words"
        return [], [DroppedRecord(id=candidate.id, reason="sentence counts differ", detail=detail)]
    return [(candidate.id, english, spanish)], []

"""How well inline tags survive translation: carried by the attention (model/tags.py) against the old
way (the model reads the tags as text, span repair puts back any it lost).

    python benchmarks/tags.py [--models models/general-es-en models/general-en-es] [--sample 60]

Two sets per direction, from the Debian corpus's held-out test split (software strings of packages never
trained on; data/corpora/debian):
- "debian tagged": every test pair whose source holds inline tags (19 of 3,251; `<b>`, `<i>`, `<a>`);
- "wrapped": a seeded sample of plain test sentences (6-25 words, no spans) with one to two words wrapped
  in `<b>..</b>`.

Per set: "kept", the share of outputs holding every tag of the source exactly once, in order and
well formed; "right words", the share of tag pairs whose words share a word with where they belong (the
reference's matching pair for "debian tagged"; the model's own translation of the wrapped words alone for
"wrapped"; a rough, low bound: a synonym counts as wrong); and BLEU with tags taken out of outputs and
references. Beam 5, int8, as `carousel translate`. A dozen examples are printed for a check by hand.
"""

from __future__ import annotations

import argparse
import random
import re
import time
import unicodedata
from pathlib import Path

import sacrebleu

import carousel.model.translator as translator_module
from carousel.data.corpus import read_split
from carousel.model.loading import load_translator
from carousel.model.search import SearchConfig
from carousel.model.spans import protected_spans
from carousel.model.tags import TaggedSentence, inline_tags, take_tags

DEBIAN = Path("data/corpora/debian")


def tagged_pairs(src: str, tgt: str) -> list[tuple[str, str]]:
    return [(s, r) for s, r in read_split(DEBIAN, "test", [src, tgt]) if inline_tags(s)]


def wrapped_pairs(src: str, tgt: str, sample: int, seed: int = 30) -> list[tuple[str, str, str]]:
    """(source with one or two words in <b>, reference, the wrapped words) for a sample of plain sentences."""
    rng = random.Random(seed)
    plain = [(s, r) for s, r in read_split(DEBIAN, "test", [src, tgt])
             if 6 <= len(s.split()) <= 25 and not protected_spans(s) and "<" not in s + r]
    out = []
    for source, reference in rng.sample(plain, min(sample, len(plain))):
        words = source.split()
        candidates = [i for i, w in enumerate(words) if w.isalpha() and len(w) > 3]
        if not candidates:
            continue
        first = rng.choice(candidates)
        last = first + (1 if first + 1 < len(words) and words[first + 1].isalpha() and rng.random() < 0.4 else 0)
        wrapped = " ".join(words[first:last + 1])
        words[first:last + 1] = [f"<b>{wrapped}</b>"]
        out.append((" ".join(words), reference, wrapped))
    return out


def translate(translator, texts: list[str], carried: bool) -> list[str]:
    """Each text's translation, with the tags carried by attention or (carried=False) read as text."""
    search = SearchConfig(beam_size=5)
    if carried:
        return [nbest[0][0] for nbest in translator.translate_texts(texts, search)]
    original = translator_module.take_tags
    translator_module.take_tags = TaggedSentence  # no tags taken out: the model reads them
    try:
        return [nbest[0][0] for nbest in translator.translate_texts(texts, search)]
    finally:
        translator_module.take_tags = original


def keeps_tags(source: str, output: str) -> bool:
    return _sequence(source) == _sequence(output) and _well_formed(output)


def _sequence(text: str) -> list[str]:
    return [tag.group(0) for tag in inline_tags(text)]


def _well_formed(text: str) -> bool:
    stack = []
    for tag in inline_tags(text):
        name = tag.group(2).lower()
        if name in ("br", "img", "wbr"):
            continue
        if not tag.group(1):
            stack.append(name)
        elif not stack or stack.pop() != name:
            return False
    return not stack


def wrapped_texts(text: str) -> list[str]:
    """The text inside each tag pair, in the order the pairs open."""
    tagged = take_tags(text)
    return [tagged.plain[e.start:e.end] for e in tagged.elements if e.kind == "pair"]


def _words(text: str) -> set[str]:
    """Words without accents, cut to 4 letters (a rough stem: "técnicas" and "technique" differ, but
    "techniques" and "technique" do not)."""
    folded = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()
    return {w[:4] for w in re.findall(r"\w+", folded)}


def shares_words(found: list[str], expected: list[str]) -> list[bool]:
    return [bool(_words(f) & _words(e)) for f, e in zip(found, expected)] + [False] * (len(expected) - len(found))


def plain(text: str) -> str:
    tagged = take_tags(text)
    return tagged.plain


def report(name: str, sources, references, expected, outputs: dict[str, list[str]]) -> None:
    print(f"  {name}: {len(sources)} strings, {sum(len(e) for e in expected)} tag pairs")
    for way, texts in outputs.items():
        kept = sum(keeps_tags(s, t) for s, t in zip(sources, texts)) / len(sources)
        right = [ok for t, e in zip(texts, expected) for ok in shares_words(wrapped_texts(t), e)]
        bleu = sacrebleu.corpus_bleu([plain(t) for t in texts], [[plain(r) for r in references]]).score
        print(f"    {way:9} kept {kept:6.1%}   right words {sum(right) / max(len(right), 1):6.1%}   BLEU {bleu:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", type=Path, default=[Path("models/general-es-en"), Path("models/general-en-es")])
    parser.add_argument("--sample", type=int, default=60, help="plain sentences wrapped per direction")
    parser.add_argument("--examples", type=int, default=6, help="examples printed per direction")
    args = parser.parse_args()
    started = time.monotonic()
    for model in args.models:
        translator = load_translator(model, "int8")
        src, tgt = translator.src_lang, translator.tgt_lang
        print(f"{model}: {src}→{tgt}, beam 5, int8")
        real = tagged_pairs(src, tgt)
        sources, references = [s for s, _ in real], [r for _, r in real]
        outputs = {way: translate(translator, sources, way == "attention") for way in ("attention", "as text")}
        report("debian tagged", sources, references, [wrapped_texts(r) for r in references], outputs)
        examples = list(zip(sources, outputs["attention"], outputs["as text"]))[: args.examples // 2]

        wrapped = wrapped_pairs(src, tgt, args.sample)
        sources, references = [s for s, _, _ in wrapped], [r for _, r, _ in wrapped]
        alone = translate(translator, [w for _, _, w in wrapped], True)  # the wrapped words on their own
        outputs = {way: translate(translator, sources, way == "attention") for way in ("attention", "as text")}
        report("wrapped", sources, references, [[a] for a in alone], outputs)
        examples += list(zip(sources, outputs["attention"], outputs["as text"]))[: args.examples - len(examples)]
        for source, carried, as_text in examples:
            print(f"    src:       {source}\n    attention: {carried}\n    as text:   {as_text}")
    print(f"{time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()

"""How often bold and italic inside a .docx paragraph survive translation, around the right words.

    python benchmarks/office_runs.py --model models/general-en-es [--limit 300] [--examples 10] [--out DIR]

Held-out Debian test sentences (data/corpora/debian/test.tsv.gz: software strings and manuals of
packages never trained on) become .docx paragraphs with one word in bold and, in every other sentence,
another in italic (words of four letters or more, chosen at random, seeded). The files are read and
rendered by carousel.formats.documents as `carousel translate` and the service do, and translated
with the model (beam 5, int8). A paragraph counts as kept when the translation is well formed (every
tag once, pairs not inside each other; formats/inline.py) and the output paragraph has every formatted run,
non-empty; "in source order" also asks that they come in the source's order (a translation may
rightly reorder them). "Placed" is a rough automatic check of the words: a formatted run of the output
holds a word that begins (five letters) as the source word or as a word of the model's translation of
that word alone. The examples
printed are for a check by hand. BLEU and chrF against the references compare the tagged translation
(formatting removed) with the same sentences translated without formatting.
"""

from __future__ import annotations

import argparse
import io
import random
import re
import time
from pathlib import Path

import sacrebleu

from carousel.data.corpus import read_split
from carousel.formats.documents import read_document
from carousel.formats.inline import TaggedText, Text
from carousel.model.loading import load_translator
from carousel.model.search import SearchConfig

STOPWORDS = frozenset("this that with from have will when which there their they them then than into were been "
                      "what your also only some more such these those over each used uses".split())


def formatted_paragraphs(sentences: list[str], rng: random.Random) -> list[list[tuple[str, str]]]:
    """Each sentence as runs (text, "" | "bold" | "italic"): one word bold, every other one also one italic."""
    paragraphs = []
    for index, sentence in enumerate(sentences):
        words = [m for m in re.finditer(r"[A-Za-z]{4,}", sentence) if m.group(0).lower() not in STOPWORDS]
        chosen = sorted(rng.sample(words, 2 if index % 2 and len(words) >= 2 else 1), key=lambda m: m.start())
        kinds = ["bold", "italic"] if len(chosen) == 2 else ["bold"]
        if len(chosen) == 2 and rng.random() < 0.5:
            kinds.reverse()
        runs, start = [], 0
        for match, kind in zip(chosen, kinds):
            runs += [(sentence[start:match.start()], ""), (match.group(0), kind)]
            start = match.end()
        runs.append((sentence[start:], ""))
        paragraphs.append([(text, kind) for text, kind in runs if text])
    return paragraphs


def docx_of(paragraphs: list[list[tuple[str, str]]]) -> bytes:
    import docx

    document = docx.Document()
    for runs in paragraphs:
        paragraph = document.add_paragraph()
        for text, kind in runs:
            run = paragraph.add_run(text)
            run.bold, run.italic = (kind == "bold") or None, (kind == "italic") or None
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def output_runs(data: bytes) -> list[list[tuple[str, str]]]:
    """Each output paragraph's formatted runs (kind, text), adjacent runs of one kind merged."""
    import docx

    paragraphs = []
    for paragraph in docx.Document(io.BytesIO(data)).paragraphs:
        runs: list[tuple[str, str]] = []
        for run in paragraph.runs:
            kind = "bold" if run.bold else "italic" if run.italic else ""
            if runs and runs[-1][0] == kind:
                runs[-1] = (kind, runs[-1][1] + run.text)
            else:
                runs.append((kind, run.text))
        paragraphs.append([(kind, text) for kind, text in runs if kind])
    return paragraphs


def stems(text: str) -> set[str]:
    """The words' first five letters (descargado, descargados), lower-cased."""
    return {w.lower()[:5] for w in re.findall(r"\w+", text)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("models/general-en-es"))
    parser.add_argument("--limit", type=int, default=300, help="sentences (default: %(default)s)")
    parser.add_argument("--examples", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, help="keep the source and translated .docx files here")
    args = parser.parse_args()

    translator = load_translator(args.model, "int8")
    src, tgt = translator.src_lang, translator.tgt_lang
    pairs = [(s, t) for s, t in read_split(Path("data/corpora/debian"), "test", [src, tgt])
             if 4 <= len(s.split()) <= 40 and len([w for w in re.findall(r"[A-Za-z]{4,}", s)
                                                    if w.lower() not in STOPWORDS]) >= 2]
    rng = random.Random(args.seed)
    pairs = rng.sample(pairs, min(args.limit, len(pairs)))
    paragraphs = formatted_paragraphs([s for s, _ in pairs], rng)
    source = docx_of(paragraphs)
    search = SearchConfig(beam_size=5)

    document = read_document("docx", source, src, tgt)
    started = time.perf_counter()
    translations = [nbest[0][0] for nbest in translator.translate_texts(document.texts, search)]
    tagged_seconds = time.perf_counter() - started
    output = document.render(translations)
    started = time.perf_counter()
    plain = [nbest[0][0] for nbest in translator.translate_texts([s for s, _ in pairs], search)]
    plain_seconds = time.perf_counter() - started
    spans = sorted({text for runs in paragraphs for text, kind in runs if kind})
    alone = {text: nbest[0][0] for text, nbest in zip(spans, translator.translate_texts(spans, search))}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "source.docx").write_bytes(source)
        (args.out / f"translated.{tgt}.docx").write_bytes(output)

    kept = ordered = well_formed = placed = runs_total = 0
    rows = []
    for runs, text, translation, out in zip(paragraphs, document.texts, translations, output_runs(output)):
        wanted = [(kind, word) for word, kind in runs if kind]
        tagged = TaggedText([Text(word, kind, None) for word, kind in runs])
        assert tagged.text == text, (tagged.text, text)  # the runs read back as the benchmark wrote them
        formed = tagged.well_formed(translation)
        got = [kind for kind, _ in out]
        is_kept = formed and sorted(got) == sorted(k for k, _ in wanted) and all(t.strip() for _, t in out)
        well_formed += formed
        kept += is_kept
        ordered += is_kept and got == [k for k, _ in wanted]
        for kind, word in wanted:
            runs_total += 1
            placed += any(k == kind and (stems(t) & (stems(alone[word]) | stems(word))) for k, t in out)
        rows.append((text, translation, is_kept))

    count = len(paragraphs)
    cleaned = [re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", t)).strip() for t in translations]
    cleaned = [re.sub(r" ([.,;:!?])", r"\1", t) for t in cleaned]
    references = [[t for _, t in pairs]]
    print(f"{args.model} on {count} held-out Debian sentences ({sum(len(r) for r in paragraphs)} runs, "
          f"{runs_total} formatted)")
    print(f"well-formed translations: {well_formed}/{count} = {100 * well_formed / count:.1f}%")
    print(f"every formatted run kept, non-empty: {kept}/{count} = {100 * kept / count:.1f}%")
    print(f"  ... and in source order: {ordered}/{count} = {100 * ordered / count:.1f}%")
    print(f"formatted runs placed on the word or its translation: {placed}/{runs_total} = "
          f"{100 * placed / runs_total:.1f}%")
    for name, hypotheses, seconds in (("with formatting", cleaned, tagged_seconds), ("plain", plain, plain_seconds)):
        bleu = sacrebleu.corpus_bleu(hypotheses, references).score
        chrf = sacrebleu.corpus_chrf(hypotheses, references).score
        print(f"BLEU / chrF {name:>15}: {bleu:.2f} / {chrf:.2f}  ({seconds:.1f} s)")
    lost = [row for row in rows if not row[2]][:args.examples // 2]
    print("\nexamples (source -> translation), at random, then the first of those not kept:")
    for text, translation, is_kept in rng.sample(rows, min(args.examples, len(rows))) + lost:
        print(f"  {'kept' if is_kept else 'LOST'}  {text}\n        -> {translation}")


if __name__ == "__main__":
    main()

"""Glossaries on held-out Debian pairs: term accuracy, BLEU and speed with and without one.

    python benchmarks/glossary.py --model models/general-en-es [--sample 300]

The terms come from the training split, never from the test split's alignment: a Dice table of word
co-occurrence over the Debian training pairs gives each content word of the sampled test sources
(not among the 200 most frequent words of either side) its most associated target word. The
glossary keeps the entries whose source word occurs in a sampled source while the target word occurs
in that pair's reference ("terms that occur in their references"); one glossary for the whole
sample, as a team would have one.

Term accuracy: of the (sentence, term) occurrences where the source holds the glossary's source term
and the reference its target term, the share whose output holds the target term (case-insensitive, at
word boundaries); "or inflected" also counts the term with another ending (model/glossary.py keeps the
model's inflected form: `primarias` for `primario`). Compared: no glossary; (a) repair by attention after the search (what carousel
does); (b) the source term replaced by its target term before the search; (a)+(b).
Inflection: of the occurrences of Dice terms whose source term is in the source, how often the
reference holds the target term only in another form (the same stem, a different ending), where a
glossary that imposes its one form must disagree with the reference.
Speed: the sample translated without a glossary and with 1,000 terms (the glossary padded with other
Dice entries), 50 sentences at a time each way in turn; the ratio is of the summed times, in the same
process.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

import sacrebleu

from carousel.data.corpus import read_split
from carousel.model.glossary import Glossary, contains_term, is_inflection
from carousel.model.loading import load_translator
from carousel.model.search import SearchConfig

DEBIAN = Path("data/corpora/debian")
WORD = re.compile(r"[^\W\d_]{3,}")  # words of three letters or more
STOP_WORDS = 200


def words(text: str) -> set[str]:
    return set(WORD.findall(text.lower()))


def dice_dictionary(train: list[tuple[str, str]], candidates: set[str], min_dice: float = 0.3):
    """source word -> (target word, Dice) for the candidate source words."""
    source_df, target_df = Counter(), Counter()
    sides = [(words(s), words(t)) for s, t in train]
    for source, target in sides:
        source_df.update(source)
        target_df.update(target)
    stop = {w for w, _ in source_df.most_common(STOP_WORDS)} | {w for w, _ in target_df.most_common(STOP_WORDS)}
    candidates = {w for w in candidates if w not in stop and source_df[w] >= 3}
    together: dict[str, Counter] = {}
    for source, target in sides:
        for word in source & candidates:
            together.setdefault(word, Counter()).update(target - stop)
    dictionary = {}
    for word, counts in together.items():
        best, score = max(((t, 2 * n / (source_df[word] + target_df[t])) for t, n in counts.items() if n >= 2),
                          key=lambda pair: pair[1], default=(None, 0.0))
        if best is not None and score >= min_dice:
            dictionary[word] = (best, score)
    return dictionary


def only_inflected(term: str, reference: str) -> bool:
    """The reference lacks `term` but holds a word of its stem with another ending (archivo → archivos)."""
    if contains_term(reference, term):
        return False
    stem = term[:-1] if len(term) >= 5 else term
    return any(w != term and w.startswith(stem) and len(w) - len(term) <= 3 for w in words(reference))


def term_accuracy(occurrences, outputs: list[str], inflected: bool = False) -> float:
    """The share of occurrences whose output holds the target term (or, `inflected`, a form of it)."""
    kept = sum(contains_term(outputs[i], target) or inflected and _has_form_of(outputs[i], target)
               for i, _, target in occurrences)
    return kept / max(1, len(occurrences))


def _has_form_of(text: str, term: str) -> bool:
    found = re.findall(r"\w+", text)
    size = len(term.split())
    return any(is_inflection(" ".join(found[i:i + size]), term) for i in range(len(found)))


def timed(function):
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--sample", type=int, default=300, help="test pairs, drawn with a fixed seed")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--speed-terms", type=int, default=1000)
    parser.add_argument("--speed-only", action="store_true", help="measure the speed alone")
    args = parser.parse_args()
    translator = load_translator(args.model, "int8")
    src, tgt = translator.src_lang, translator.tgt_lang
    test = read_split(DEBIAN, "test", [src, tgt])
    pairs = random.Random(0).sample(test, min(args.sample, len(test)))
    sources, references = [s for s, _ in pairs], [r for _, r in pairs]
    started = time.perf_counter()
    train = read_split(DEBIAN, "train", [src, tgt])
    # the sample's words, and as many others of the training sources again for the 1,000-term glossary
    vocabulary = sorted(set().union(*(words(s) for s, _ in train[::50])))
    padding = set(random.Random(1).sample(vocabulary, min(len(vocabulary), 2 * args.speed_terms)))
    dictionary = dice_dictionary(train, set().union(*(words(s) for s in sources)) | padding)
    entries = {}
    occurrences, inflected, found = [], 0, 0  # (sentence, source term, target term)
    for i, (source, reference) in enumerate(pairs):
        for word in sorted(words(source) & dictionary.keys()):
            target = dictionary[word][0]
            if not contains_term(source, word):
                continue
            found += 1
            inflected += only_inflected(target, reference)
            if contains_term(reference, target):
                entries[word] = target
    glossary = Glossary(sorted(entries.items()), src, tgt)
    for i, source in enumerate(sources):
        for match in glossary.matches(source):
            if contains_term(references[i], match.target):
                occurrences.append((i, match.source, match.target))
    print(f"python {' '.join(sys.argv)}")
    print(f"{args.model}: {src}→{tgt}, beam {args.beam}, int8; {len(pairs)} Debian test pairs (seed 0); "
          f"dictionary from {len(train)} training pairs in {time.perf_counter() - started:.0f} s")
    print(f"glossary: {len(glossary)} terms; {len(occurrences)} occurrences in source and reference")
    print(f"inflection: of {found} Dice-term occurrences in the sources, {inflected} ({inflected / max(1, found):.1%}) "
          "have the target term only in another form in the reference")
    search = SearchConfig(beam_size=args.beam)
    if args.speed_only:
        return _measure_speed(translator, sources, search, _padded(glossary, dictionary, args.speed_terms))
    plain = [n[0][0] for n in translator.translate_texts(sources, search)]
    repaired = [n[0][0] for n in translator.translate_texts(sources, search, glossary=glossary)]
    substituted_sources = [_substituted(glossary, s) for s in sources]
    substituted = [n[0][0] for n in translator.translate_texts(substituted_sources, search)]
    both = [n[0][0] for n in translator.translate_texts(substituted_sources, search, glossary=_identity(glossary))]
    print(f"{'method':34} {'term accuracy':>13} {'or inflected':>12} {'BLEU':>7} {'chrF':>7}")
    for name, outputs in (("no glossary", plain), ("(a) repair by attention", repaired),
                          ("(b) source substitution", substituted), ("(a)+(b)", both)):
        bleu = sacrebleu.corpus_bleu(outputs, [references]).score
        chrf = sacrebleu.corpus_chrf(outputs, [references]).score
        print(f"{name:34} {term_accuracy(occurrences, outputs):13.1%} {term_accuracy(occurrences, outputs, True):12.1%} "
              f"{bleu:7.2f} {chrf:7.2f}", flush=True)
    # Where the reference wants another form of a glossary term: what each output holds.
    needs_form = [(i, match.target) for i, source in enumerate(sources) for match in glossary.matches(source)
                  if only_inflected(match.target, references[i])]
    for name, outputs in (("no glossary", plain), ("(a) repair by attention", repaired)):
        exact = sum(contains_term(outputs[i], t) for i, t in needs_form)
        inflected_forms = sum(not contains_term(outputs[i], t) and _has_form_of(outputs[i], t) for i, t in needs_form)
        print(f"{len(needs_form)} glossary-term occurrences whose reference holds another form; {name}: "
              f"{exact} with the glossary's form, {inflected_forms} with another form of it")
    _measure_speed(translator, sources, search, _padded(glossary, dictionary, args.speed_terms))


def _measure_speed(translator, sources: list[str], search: SearchConfig, big: Glossary) -> None:
    plain_seconds = big_seconds = 0.0
    # Slices of 50 sentences, each translated both ways in turn (the order alternating), so that a change
    # in the machine's load falls on both alike.
    for number, start in enumerate(range(0, len(sources), 50)):
        part = sources[start:start + 50]
        ways = [(False, lambda: translator.translate_texts(part, search)),
                (True, lambda: translator.translate_texts(part, search, glossary=big))]
        for with_glossary, work in ways if number % 2 == 0 else ways[::-1]:
            seconds = timed(work)[1]
            big_seconds += seconds if with_glossary else 0.0
            plain_seconds += 0.0 if with_glossary else seconds
    print(f"speed: {len(sources) / plain_seconds:.1f} sentences/s without a glossary, "
          f"{len(sources) / big_seconds:.1f} with {len(big)} terms: {plain_seconds / big_seconds:.1%} of plain speed")


def _substituted(glossary: Glossary, text: str) -> str:
    """(b): every term of `text` replaced by its target term before the search."""
    for match in reversed(glossary.matches(text)):
        text = text[: match.start] + match.target + text[match.end:]
    return text


def _identity(glossary: Glossary) -> Glossary:
    """(a) after (b): the source now holds the target terms, which must come out as they are."""
    return Glossary([(t, t) for _, t in glossary.pairs], glossary.source_lang, glossary.target_lang)


def _padded(glossary: Glossary, dictionary: dict, size: int) -> Glossary:
    extra = [(s, t) for s, (t, _) in sorted(dictionary.items()) if s not in glossary.terms]
    if len(glossary) + len(extra) < size:
        raise SystemExit(f"the dictionary has {len(extra)} other entries; {size} terms need more")
    return Glossary(glossary.pairs + extra[: max(0, size - len(glossary))], glossary.source_lang, glossary.target_lang)


if __name__ == "__main__":
    main()

"""`carousel shortlist`: build a model's lexical shortlist from its training corpus, for faster decoding.

Counts which target pieces occur in the same sentence pairs as each source piece (model/shortlist.py)
and writes `shortlist.safetensors` into the model directory, recorded with its checksum in card.json.
From then on every beam search of that model (translate, evaluate, the service) scores only the
batch's shortlist instead of the whole target vocabulary; `--no-shortlist` on `translate` and
`evaluate` turns it off to compare. Measure the BLEU it costs on validation data before shipping it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from carousel.errors import UserError
from carousel.commands.options import corpus_settings, non_negative_int, positive_int

# Chosen on validation data translated one sentence at a time (typed Tatoeba, Debian valid, FLORES dev):
# below 16 pieces the whole vocabulary gained 0.2–7.5 chrF per length band; from 16 to 23 es→en 0.6 and
# en→es nothing, for twice the service's cost (docs/general-models.md, **Short sentences and the shortlist**).
WHOLE_BELOW = 16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="model directory to give a shortlist")
    parser.add_argument("--corpus", type=Path,
                        help="parallel corpus whose train split is counted (default: the model's training corpus)")
    parser.add_argument("--src", help="source column (default: the model's training source column)")
    parser.add_argument("--ref", action="append", metavar="COLUMN",
                        help="target column (default: the model's training target column)")
    parser.add_argument("--per-source", type=positive_int, default=30,
                        help="target pieces kept per source piece (default: %(default)s)")
    parser.add_argument("--frequent", type=positive_int, default=500,
                        help="commonest target pieces every batch may use (default: %(default)s)")
    parser.add_argument("--whole-below", type=non_negative_int, default=WHOLE_BELOW, metavar="PIECES",
                        help="sentences of fewer source pieces (end of sentence included) search the whole "
                             "vocabulary; 0: every sentence uses the list (default: %(default)s)")
    parser.add_argument("--max-pairs", type=positive_int, default=400_000,
                        help="count at most this many training pairs, spread over the split (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    import sentencepiece as spm

    from carousel.data.corpus import load_corpus_manifest, read_split, spread_sample
    from carousel.fileio import sha256_file
    from carousel.model.card import ModelLoadError, update_card
    from carousel.model.checkpoint import load_model_dir
    from carousel.model.shortlist import SHORTLIST_FILE, build_shortlist, save_shortlist

    try:
        loaded = load_model_dir(args.model)
    except ModelLoadError as error:
        raise UserError(str(error)) from None
    corpus, source_column, target_columns = corpus_settings(args)
    try:
        pairs = read_split(corpus, "train", [source_column, target_columns[0]])
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"cannot read the train split of {corpus}: {error}") from None
    if not pairs:
        raise UserError(f"{corpus}: the train split is empty")
    pairs = spread_sample(pairs, args.max_pairs)
    source_sp = spm.SentencePieceProcessor(model_file=str(loaded.source_spm))
    target_sp = spm.SentencePieceProcessor(model_file=str(loaded.target_spm))
    print(f"counting {len(pairs):,} pairs of {corpus}", file=sys.stderr)
    sources = source_sp.encode([loaded.normalizer(source) for source, _ in pairs])
    targets = target_sp.encode([target for _, target in pairs])
    joint = sha256_file(loaded.source_spm) == sha256_file(loaded.target_spm)
    shortlist = build_shortlist(
        sources, targets, source_sp.get_piece_size(), target_sp.get_piece_size(),
        per_source=args.per_source, frequent=args.frequent, copy_source=joint,
    )
    path = Path(args.model) / SHORTLIST_FILE
    save_shortlist(path, shortlist)
    update_card(Path(args.model), shortlist={
        "file": SHORTLIST_FILE, "sha256": sha256_file(path), "per_source": args.per_source,
        "frequent": args.frequent, "whole_vocabulary_below": args.whole_below, "copies_source": joint,
        "pairs_counted": len(pairs),
        "corpus": {"name": load_corpus_manifest(corpus).name, "path": str(corpus)},
        "command": " ".join(getattr(args, "command_line", [])),
    })
    print(f"wrote {path}: {args.per_source} target pieces per source piece, the {args.frequent} commonest "
          f"always{', and the source pieces themselves (joint vocabulary)' if joint else ''}")
    return 0

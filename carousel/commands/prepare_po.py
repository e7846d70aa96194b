"""`carousel prepare po`: the command-line arguments and their handling.

Wired into `carousel prepare` (carousel/commands/prepare.py):
    carousel prepare po PATH [PATH ...] --tgt-lang es [--src-lang en] [--licence TEXT] [--licence-of GLOB=TEXT ...]
                        [--markup auto|rest|xml|text|strings] [--include GLOB ...] [--exclude GLOB ...] --out DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

from carousel.errors import UserError

MARKUPS = ("auto", "rest", "xml", "text", "strings")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `prepare po` to a (sub)parser (the subword and listing flags come from `prepare`)."""
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="a directory tree, an archive (.tar.xz, .tar.gz, .tar.bz2, .tar, .zip) or a .po file")
    parser.add_argument("--src-lang", default="en",
                        help="language of the msgids; the source column's name (default: en)")
    parser.add_argument("--tgt-lang", required=True, help="language of the msgstrs; the target column's name")
    parser.add_argument("--name", help="corpus name (default: the first PATH's name without its suffix)")
    parser.add_argument("--out", type=Path, help="corpus directory (default: data/corpora/NAME)")
    parser.add_argument("--licence", default="unspecified", help="licence of the catalogs (default: %(default)s)")
    parser.add_argument("--licence-of", action="append", default=[], metavar="GLOB=TEXT",
                        help="licence of the catalogs whose path in PATH matches GLOB "
                             "(repeatable; the first match wins)")
    parser.add_argument("--markup", choices=MARKUPS, default="auto",
                        help="rest (Sphinx), xml (Mallard, DocBook), text (plain paragraphs) or strings (software); "
                             "auto: per catalog, by the files its entries come from (default)")
    parser.add_argument("--include", action="append", metavar="GLOB",
                        help="read the catalogs whose path or name matches (repeatable; default: *.po)")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                        help="skip these catalogs (repeatable)")
    parser.add_argument("--max-words", type=int, default=120,
                        help="most words on either side of a pair (default: %(default)s)")
    parser.add_argument("--max-unsplit-words", type=int, default=60,
                        help="a paragraph whose sentences do not pair up is kept whole only up to this "
                             "(default: %(default)s)")
    parser.add_argument("--max-ratio", type=float, default=3.0,
                        help="largest length ratio of a pair (default: %(default)s)")
    parser.add_argument("--max-sentence-ratio", type=float, default=2.0,
                        help="largest length ratio of the sentence pairs a paragraph is cut into "
                             "(default: %(default)s)")
    parser.add_argument("--max-code-share", type=float, default=0.5,
                        help="drop paragraphs with a larger share of code characters (default: %(default)s)")
    parser.add_argument("--keep-duplicates", action="store_true", help="keep repeated identical pairs")
    parser.add_argument("--valid-size", type=int, default=0,
                        help="pairs drawn for validation (default: 0, all in train)")
    parser.add_argument("--test-size", type=int, default=0, help="pairs drawn for testing (default: 0, all in train)")
    parser.add_argument("--skip-unreadable", action="store_true",
                        help="record a corrupt catalog as dropped instead of stopping")


def config_from_args(args: argparse.Namespace):
    """The typed build settings (validated by pydantic; `prepare` turns a ValidationError into one line)."""
    from carousel.data.po_corpus import PoConfig, default_name

    licence_of = []
    for item in args.licence_of:
        pattern, separator, licence = item.partition("=")
        if not separator or not pattern or not licence:
            raise UserError(f"--licence-of {item!r}: write GLOB=TEXT, e.g. --licence-of '*/hig/*=CC BY-SA 4.0'")
        licence_of.append((pattern, licence))
    return PoConfig(
        name=args.name or default_name(args.paths),
        source_language=args.src_lang,
        target_language=args.tgt_lang,
        markup=args.markup,
        licence=args.licence,
        licence_of=licence_of,
        include=args.include or ["*.po"],
        exclude=args.exclude,
        max_words=args.max_words,
        max_unsplit_words=args.max_unsplit_words,
        max_ratio=args.max_ratio,
        max_sentence_ratio=args.max_sentence_ratio,
        max_code_share=args.max_code_share,
        drop_duplicates=not args.keep_duplicates,
        valid_size=args.valid_size,
        test_size=args.test_size,
        seed=args.seed,
        skip_unreadable=args.skip_unreadable,
    )


def run(args: argparse.Namespace, default_dir: Path):
    """Build the corpus, print the per-catalog table; return (manifest, rows per split, out dir, columns)."""
    from carousel.data.po_corpus import build_po_corpus, format_po_summary, summary_rows

    config = config_from_args(args)
    out = args.out or default_dir / config.name
    manifest, splits, reports = build_po_corpus(args.paths, config, out)
    if not args.quiet:
        print(format_po_summary(summary_rows(reports)))
    return manifest, splits, out, [config.source_language, config.target_language]

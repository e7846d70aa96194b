"""`carousel prepare debian`: the command-line arguments and their handling.

Wired into `carousel prepare` (carousel/commands/prepare.py):
    carousel prepare debian [--packages FILE] [--only PKG ...] [--cache DIR] [--max-fragment-share F] --out DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

from typing import TYPE_CHECKING

from carousel.data.debian.packages import DEFAULT_CACHE, DEFAULT_MANIFEST
from carousel.errors import UserError

if TYPE_CHECKING:  # the builder and pydantic load when the command runs, not whenever the CLI starts
    from carousel.data.corpus import CorpusManifest
    from carousel.data.debian.config import DebianConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `prepare debian` to a (sub)parser."""
    parser.add_argument("--out", type=Path, required=True, help="corpus directory to write (e.g. data/corpora/debian)")
    parser.add_argument(
        "--packages", type=Path, default=DEFAULT_MANIFEST, help="pinned `package=version` list (default: %(default)s)"
    )
    parser.add_argument(
        "--only", nargs="+", metavar="PKG", default=None, help="build from these packages of the list only"
    )
    parser.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE, help="downloaded and unpacked packages (default: %(default)s)"
    )
    parser.add_argument(
        "--max-fragment-share",
        type=float,
        default=None,
        help="largest share of one- and two-word pairs per split (default 0.25; 1 keeps them all)",
    )
    parser.add_argument("--uncompressed", action="store_true", help="write {split}.tsv instead of {split}.tsv.gz")
    parser.add_argument("--quiet", action="store_true", help="no progress lines or summary table")


def config_from_args(args: argparse.Namespace) -> DebianConfig:
    """The build settings, with the command-line overrides applied (validated by pydantic)."""
    from pydantic import ValidationError

    from carousel.data.debian.config import DebianConfig

    overrides = {}
    if args.max_fragment_share is not None:
        overrides["max_fragment_share"] = args.max_fragment_share
    try:
        return DebianConfig(**overrides)
    except ValidationError as error:
        raise UserError(f"prepare debian: {error.errors()[0]['msg']}") from None


def run(args: argparse.Namespace) -> CorpusManifest:
    """Build the corpus as the parsed arguments say and return its manifest."""
    from carousel.data.debian.builder import build_debian_corpus

    return build_debian_corpus(
        config_from_args(args),
        args.out,
        manifest_path=args.packages,
        only=args.only,
        cache=args.cache,
        progress=not args.quiet,
        compress=not args.uncompressed,
    )

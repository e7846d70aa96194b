"""`carousel ensemble`: combine independently trained models into one model directory that translates
as their ensemble (model/ensemble.py).

    carousel ensemble --models models/bible-es-en runs/bible-es-en-seed2/model --output runs/bible-es-en-ensemble

The service serves one model directory per language pair (the first by name), so to serve an ensemble
put its directory in models/ in place of the single model's, not beside it.

The members must translate between the same languages with the same architecture, SentencePiece
models and source normalisation; the command names the first thing that differs. The new card lists
the members with their training, validation and evaluation. Decoding settings and test scores belong
to the combination, so they start empty: run `carousel tune --update-card` and `carousel evaluate
--update-card` on the new directory. translate, evaluate, tune and the service load it like any model.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from carousel.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", type=Path, nargs="+", required=True, metavar="DIR",
                        help="model directories to combine (two or more; an ensemble directory adds all its members)")
    parser.add_argument("--output", type=Path, required=True, help="model directory to write")
    parser.add_argument("--name", help="model name for the card (default: from the output directory)")
    parser.add_argument("--force", action="store_true", help="replace --output if it exists")


def run(args: argparse.Namespace) -> int:
    from carousel.model.checkpoint import load_model_dir, save_ensemble_dir
    from carousel.model.checkpoint import check_compatible, ensemble_card

    if len(args.models) < 2:
        raise UserError("--models needs at least two model directories")
    if args.output.resolve() in {model.resolve() for model in args.models}:
        raise UserError(f"--output {args.output} is one of the members; write the ensemble to a new directory")
    if args.output.exists() and not args.force:
        raise UserError(f"{args.output} exists; pass --force to replace it")
    members = [load_model_dir(directory) for directory in args.models]
    check_compatible(members)
    card = ensemble_card(members, args.name or _default_name(args.output, members), shlex.join(args.command_line))
    save_ensemble_dir(args.output, members, card)
    count = sum(len(member.weight_files) for member in members)
    print(f"wrote {args.output}: an ensemble of {count} models ({card['parameters']:,} parameters); "
          f"next: carousel tune --model {args.output} --update-card")
    return 0


def _default_name(output: Path, members) -> str:
    return f"{output.name} ({members[0].src_lang}→{members[0].tgt_lang}, ensemble)"

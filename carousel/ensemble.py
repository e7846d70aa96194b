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


def add_ensemble_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", type=Path, nargs="+", required=True, metavar="DIR",
                        help="model directories to combine (two or more; an ensemble directory adds all its members)")
    parser.add_argument("--output", type=Path, required=True, help="model directory to write")
    parser.add_argument("--name", help="model name for the card (default: from the output directory)")
    parser.add_argument("--force", action="store_true", help="replace --output if it exists")


def run_ensemble(args: argparse.Namespace) -> int:
    from model.checkpoint import load_model_dir, save_ensemble_dir

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


def check_compatible(members) -> None:
    """Refuse members that could not share one search: the first difference is named."""
    from model.checkpoint import NORMALIZATION, SOURCE_SPM, TARGET_SPM, sha256_file

    first = members[0]
    for member in members[1:]:
        if (member.src_lang, member.tgt_lang) != (first.src_lang, first.tgt_lang):
            raise UserError(f"{member.directory} translates {member.src_lang}→{member.tgt_lang}, "
                            f"{first.directory} {first.src_lang}→{first.tgt_lang}")
        if member.config.architecture() != first.config.architecture():
            raise UserError(f"{member.directory} has a different architecture or vocabulary size than {first.directory}")
        for name in (SOURCE_SPM, TARGET_SPM, NORMALIZATION):
            if sha256_file(member.directory / name) != sha256_file(first.directory / name):
                raise UserError(f"{member.directory / name} differs from {first.directory / name}: "
                                "ensemble members must share subwords and source normalisation")


def ensemble_card(members, name: str, command: str) -> dict:
    from model.checkpoint import sha256_file

    first = members[0].card
    shared = {key: first[key] for key in ("languages", "corpus", "subwords", "source_normalization", "architecture")
              if key in first}
    described = []
    for member in members:
        entry = {"directory": str(member.directory), "name": member.card.get("name"),
                 "weights_sha256": [sha256_file(member.directory / file) for file in member.weight_files]}
        for key in ("corpus", "training", "validation", "evaluation", "decoding", "history", "ensemble"):
            if key in member.card:
                entry[key] = member.card[key]
        described.append(entry)
    return {
        "name": name,
        "description": f"Ensemble of {sum(len(m.weight_files) for m in members)} LSTM encoder-decoders with "
                       "attention (carousel): every decoding step averages the members' probabilities.",
        **shared,
        "parameters": sum(member.model.parameter_count() for member in members),
        "ensemble": {"command": command, "members": described},
    }


def _default_name(output: Path, members) -> str:
    return f"{output.name} ({members[0].src_lang}→{members[0].tgt_lang}, ensemble)"

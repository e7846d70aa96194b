"""`carousel` command-line entry point: one subcommand per product capability.

Each subcommand parses its own flags here and hands a typed config to the package that owns the work.
Errors a user can fix are raised as `UserError` and printed as one line, with a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys

from carousel.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carousel", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in [
        ("prepare", "build or import a parallel corpus"),
        ("train", "train a model from a YAML config"),
        ("translate", "translate files or stdin offline"),
        ("evaluate", "score a model or hypothesis files with sacreBLEU"),
        ("tune", "choose a model's length penalty on validation data"),
        ("ensemble", "combine trained models into one model directory that decodes as their ensemble"),
        ("serve", "start the HTTP translation service"),
    ]:
        sub = commands.add_parser(name, help=help_text)
        add_arguments, run = COMMANDS[name]()
        add_arguments(sub)
        sub.set_defaults(run=run)
    return parser


def _prepare():
    from data.cli import add_prepare_arguments, run_prepare

    return add_prepare_arguments, run_prepare


def _train():
    from training.cli import add_train_arguments, run_train

    return add_train_arguments, run_train


def _translate():
    from carousel.translate import add_translate_arguments, run_translate

    return add_translate_arguments, run_translate


def _evaluate():
    from carousel.evaluate import add_evaluate_arguments, run_evaluate

    return add_evaluate_arguments, run_evaluate


def _tune():
    from carousel.tune import add_tune_arguments, run_tune

    return add_tune_arguments, run_tune


def _ensemble():
    from carousel.ensemble import add_ensemble_arguments, run_ensemble

    return add_ensemble_arguments, run_ensemble


def _serve():
    from service.cli import add_serve_arguments, run_serve

    return add_serve_arguments, run_serve


# name -> loader of (add_arguments, run): each package owns its subcommand's flags and work.
COMMANDS = {"prepare": _prepare, "train": _train, "translate": _translate, "evaluate": _evaluate, "tune": _tune,
            "ensemble": _ensemble, "serve": _serve}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.command_line = ["carousel", *argv]  # recorded in model cards
    try:
        return args.run(args) or 0
    except UserError as error:
        print(f"carousel {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"carousel {args.command}: interrupted", file=sys.stderr)
        return 130

"""`carousel` command-line entry point: one subcommand per product capability.

Each subcommand lives in `carousel/commands/` as a module with `add_arguments(parser)` and `run(args)`:
the flags are parsed there and the work is handed to library code. Command modules import nothing
heavy at the top, so `carousel --help` does not load PyTorch. Errors a user can fix are raised as
`UserError` and printed as one line, with a non-zero exit.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import sys

from carousel.errors import UserError

# name -> (module in carousel.commands, help)
COMMANDS = {
    "prepare": ("prepare", "build or import a parallel corpus"),
    "train": ("train", "train a model from a YAML config"),
    "translate": ("translate", "translate files or stdin offline"),
    "evaluate": ("evaluate", "score a model or hypothesis files with sacreBLEU"),
    "tune": ("tune", "choose a model's decoding settings on validation data"),
    "calibrate": ("calibrate", "fit a model's per-sentence confidence on validation data"),
    "shortlist": ("shortlist", "give a model a lexical shortlist of target pieces, for faster decoding"),
    "ensemble": ("ensemble", "combine trained models into one model directory that decodes as their ensemble"),
    "serve": ("serve", "start the HTTP translation service"),
    "keys": ("keys", "add, list or revoke the service's API keys (in its database, while it runs)"),
    "suggestions": ("suggestions", "export the translations suggested to the service as a parallel corpus"),
    "memory": ("memory", "import, list or remove the service's translation memory (TMX, .po, TSV)"),
    "glossaries": ("glossaries", "add, list, show or remove the service's stored glossaries (in its database)"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with `only` (a command's name), only that command's flags are built (building
    them all imports what every command's flags need, a fifth of a second of each command's start)."""
    parser = argparse.ArgumentParser(prog="carousel", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"carousel.commands.{module_name}")
        sub = commands.add_parser(name, help=help_text, description=module.__doc__.splitlines()[0])
        if only is None or name == only:
            module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(only=argv[0] if argv and argv[0] in COMMANDS else None).parse_args(argv)
    args.command_line = ["carousel", *argv]  # recorded in model cards
    # Python's last garbage collection at exit walks every object torch's import made: 0.4 s of each
    # command. Frozen at exit, they are skipped (objects freed by reference counting still close their files).
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    try:
        return args.run(args) or 0
    except UserError as error:
        print(f"carousel {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"carousel {args.command}: interrupted", file=sys.stderr)
        return 130

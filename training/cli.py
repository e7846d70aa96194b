"""`carousel train`: read the YAML config, train or resume, export the model directory."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from training.config import load_config

log = logging.getLogger("carousel.train")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="YAML config (see training/configs/)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set training.max_steps=100 (repeatable)",
    )
    parser.add_argument("--no-export", action="store_true", help="train only; do not write the model directory")


def run_train(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    from training.export import export_run  # heavy imports only once the config is valid
    from training.trainer import run_training

    trainer, progress = run_training(config)
    if trainer.dist.is_main and not args.no_export:
        directory = export_run(trainer, progress, command=args.command_line)
        log.info("model exported to %s", directory)
    return 0

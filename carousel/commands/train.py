"""`carousel train`: read the YAML config, train or resume, export the model directory."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path



log = logging.getLogger("carousel.train")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="YAML config (see training/configs/)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set training.max_steps=100 (repeatable)",
    )
    parser.add_argument("--no-export", action="store_true", help="train only; do not write the model directory")


def run(args: argparse.Namespace) -> int:
    from carousel.training.config import load_config

    config = load_config(args.config, args.overrides)
    from carousel.training.export import check_export_target, export_run  # heavy imports once the config is valid
    from carousel.training.trainer import run_training

    if not args.no_export:
        check_export_target(config)  # before hours of training, not after

    trainer, progress = run_training(config)
    if trainer.dist.is_main and not args.no_export:
        directory = export_run(trainer, progress, command=args.command_line)
        log.info("model exported to %s", directory)
    return 0

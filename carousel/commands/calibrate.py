"""`carousel calibrate`: fit a model's per-sentence confidence on held-out validation data.

    carousel calibrate --model models/bible-es-en --reverse models/bible-en-es [--per-set 150]

Translates a sample of each validation set (Bible valid, Debian valid, FLORES dev, newstest2011, the
first half of newstest2012; never a test split) with the confidence signals on (model/confidence.py),
scores each output with sentence chrF, fits the representation and the logistic calibration
(evaluation/calibration.py), and writes them to DIR/confidence.json and DIR/confidence.safetensors,
recorded with its checksum, the reverse model and the fit's figures in the card (`confidence`).
Refit whenever the model or the reverse model changes (loading refuses a changed reverse model).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from carousel.commands.options import add_search_arguments, non_negative_int, positive_int, search_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="model directory to calibrate")
    parser.add_argument("--reverse", type=Path, required=True, help="model directory translating the other way")
    parser.add_argument("--per-set", type=positive_int, default=150, help="sentences drawn from each set (default: %(default)s)")
    parser.add_argument("--sets", default=None, help="comma-separated validation sets (default: all of them)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--components", type=non_negative_int, default=None,
                        help="projections of each side's encoder states as features, 0 for the signals alone "
                             "(default: 32, model/confidence.Representation)")
    parser.add_argument("--neighbours", type=positive_int, default=None,
                        help="calibration sentences whose quality the neighbours feature averages (default: 100, each "
                             "weighted by its nearness)")
    add_search_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from carousel.evaluation import calibration
    from carousel.errors import UserError
    from carousel.model.card import update_card
    from carousel.fileio import sha256_file
    from carousel.model.loading import load_translator

    names = args.sets.split(",") if args.sets else list(calibration.VALIDATION_SETS)
    unknown = [name for name in names if name not in calibration.VALIDATION_SETS]
    if unknown:
        raise UserError(f"--sets: unknown {', '.join(unknown)}; choose from {', '.join(calibration.VALIDATION_SETS)}")
    search = search_config(args)
    translator = load_translator(args.model, args.quantize, device=args.device, confidence=False)
    reverse = load_translator(args.reverse, args.quantize, channel="none", device=args.device, confidence=False)
    try:
        translator.use_confidence(reverse)
    except ValueError as error:
        raise UserError(f"--reverse: {error}") from None
    scored = []
    for name in names:
        pairs = calibration.load_pairs(calibration.VALIDATION_SETS[name], translator.src_lang, translator.tgt_lang,
                                       args.per_set, args.seed)
        scored += calibration.collect(translator, name, pairs, search, args.batch_tokens)
        print(f"{name}: {len(pairs)} sentences translated")
    representation = {"components": calibration.COMPONENTS if args.components is None else args.components,
                      "neighbours": calibration.NEIGHBOURS if args.neighbours is None else args.neighbours,
                      "temperature": calibration.TEMPERATURE}
    fitted = calibration.fit(scored, **representation)
    confidences = calibration.cross_validated(scored, **representation)
    figures = calibration.measure(confidences, [s.chrf for s in scored])
    base = calibration.measure([s.baseline for s in scored], [s.chrf for s in scored])
    within = calibration.measure_by_set(scored, confidences)
    fitted.info = {"sets": {name: sum(s.set_name == name for s in scored) for name in names},
                   "validation": figures, "baseline_validation": base, "validation_within_sets": within}
    path = fitted.save(args.model)
    update_card(args.model, confidence={
        "file": path.name,
        "sha256": sha256_file(path),
        "reverse_model": os.path.relpath(args.reverse.resolve(), args.model.resolve()),
        "reverse_checksums": reverse.card.get("checksums"),
        "features": fitted.features,
        "representation": representation if fitted.representation is not None else None,
        "fitted_on": fitted.info["sets"],
        "validation": figures,  # each sentence scored by a calibration fitted without it (5-fold)
        "baseline_validation": base,
        "validation_within_sets": within,  # Spearman inside each set, same cross-validation
        "beam": translator.with_model_defaults(search).beam_size, "quantize": args.quantize,
        "command": " ".join(getattr(args, "command_line", ["carousel", "calibrate"])),
    })
    print(f"fitted on {len(scored)} validation sentences; 5-fold cross-validated Spearman {figures['spearman']} (length-normalised score "
          f"alone {base['spearman']}), AUROC {figures['auroc']} ({base['auroc']}); within each set: "
          + ", ".join(f"{name} {rho}" for name, rho in within.items()) + f"; wrote {path} and the card")
    return 0

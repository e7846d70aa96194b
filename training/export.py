"""Export a trained run as a model directory (model/checkpoint.py) with its model card.

The candidates are the average of the last validation snapshots (when averaging is on) and the best
checkpoint by validation BLEU; validation BLEU picks between them, the test split never does.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import torch
from safetensors.torch import load_model

from carousel.data.corpus import load_corpus_manifest
from carousel.errors import UserError
from carousel.model.checkpoint import save_model_dir
from carousel.model.seq2seq import Seq2Seq
from carousel.training.config import TrainConfig
from carousel.training.state import Progress
from carousel.training.trainer import Trainer
from carousel.training.validation import ValidationResult, validate


def export_directory(config: TrainConfig) -> Path:
    return Path(config.export.dir or Path(config.run_dir) / "model")


def check_export_target(config: TrainConfig) -> None:
    """Refuse, before any training, to export over a model this run did not make (unless
    `export.overwrite`): a model directory whose card names another run directory, or has no card."""
    directory = export_directory(config)
    if config.export.overwrite or not (directory / "config.json").exists():
        return
    try:
        card = json.loads((directory / "card.json").read_text(encoding="utf-8"))
        exported_by = Path(card["config"]["run_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        exported_by = None
    if exported_by is None or exported_by.resolve() != Path(config.run_dir).resolve():
        raise UserError(
            f"export.dir {directory} holds a model this run ({config.run_dir}) did not export; "
            f"choose another export.dir, or --set export.overwrite=true to replace it"
        )


def export_run(trainer: Trainer, progress: Progress, command: list[str]) -> Path:
    config: TrainConfig = trainer.config
    directory = export_directory(config)
    check_export_target(config)
    # Validation BLEU picks between the averaged and the best weights; the test split never does.
    candidates = export_candidates(trainer)
    scores = {
        name: validate(model, trainer.data, config.validation.beam_size, config.validation.batch_tokens)
        for name, model in candidates.items()
    }
    chosen = max(scores, key=lambda name: scores[name].bleu)
    save_model_dir(
        directory,
        candidates[chosen].cpu(),
        src_lang=config.data.src_lang or config.data.src,
        tgt_lang=config.data.tgt_lang or config.data.tgt,
        source_spm=trainer.data.source_spm,
        target_spm=trainer.data.target_spm,
        normalizer=trainer.data.normalizer,
        card=build_card(trainer, progress, chosen, scores, command),
        half_precision=config.export.half_precision,
    )
    if (Path(config.run_dir) / "curves.png").exists():
        (directory / "curves.png").write_bytes((Path(config.run_dir) / "curves.png").read_bytes())
    return directory


def averaged_snapshots(trainer: Trainer) -> list[Path]:
    """The validation snapshots export averages; a run that switched averaging on
    when resumed has none for its earlier validations."""
    if not trainer.config.training.average_last:
        return []
    paths = [trainer.checkpoint_dir / f"val-{s:08d}.safetensors" for s in trainer.progress.validations]
    return [path for path in paths if path.exists()]

def export_candidates(trainer: Trainer) -> dict[str, Seq2Seq]:
    """The weights export chooses from, by description: the average of the last validation
    snapshots (when averaging is on) and the best by validation BLEU."""
    candidates = {}
    paths = averaged_snapshots(trainer)
    if len(paths) > 1:
        averaged = Seq2Seq(trainer.model_config)
        average_weights(averaged, paths)
        candidates[f"average of the last {len(paths)} validations"] = averaged
    model = Seq2Seq(trainer.model_config)
    if trainer.progress.best:
        step = int(trainer.progress.best[0][1])
        load_model(model, str(trainer.checkpoint_dir / f"best-{step:08d}.safetensors"))
        candidates[f"best validation BLEU (step {step})"] = model
    else:  # stopped before its first validation
        model.load_state_dict(trainer.model.state_dict())
        candidates["last weights"] = model
    # Weights are read into CPU models (safetensors refuses cuDNN's packed LSTM buffers), then
    # validated where training ran.
    return {name: candidate.to(trainer.device).eval() for name, candidate in candidates.items()}


def average_weights(model: Seq2Seq, paths: list[Path]) -> None:
    total = None
    for path in paths:
        load_model(model, str(path))
        state = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
        total = state if total is None else {k: total[k] + state[k] for k in total}
    model.load_state_dict({k: v / len(paths) for k, v in total.items()})


def extra_training_data(config: TrainConfig) -> dict:
    """What training saw beyond the corpus's own pairs, each extra corpus identified by checksum."""
    extra_train = []
    for path in config.data.extra_train:
        manifest = load_corpus_manifest(path)
        train = manifest.splits["train"]
        extra_train.append({"path": str(path), "name": manifest.name, "rows": train.rows, "sha256": train.sha256,
                            "sources": [s for s in data_sources(manifest.source) if s.get("split", "train") == "train"]})
    return {
        "extra_sources": list(config.data.extra_sources),
        "extra_targets": dict(config.data.extra_targets),
        "extra_train": extra_train,
    }


def data_sources(source: dict) -> list[dict]:
    """Each part of a training mix (carousel prepare mix) with its split, size and licence, for the card;
    a single corpus is one source."""
    parts = source.get("parts") if isinstance(source, dict) else None
    if not parts:
        return [{"description": source.get("description", "")}] if isinstance(source, dict) else []
    keys = ("name", "split", "pairs", "rows_in_train", "licence", "corpus", "from")
    return [{key: part[key] for key in keys if key in part} for part in parts]


def build_card(
    trainer: Trainer, progress: Progress, chosen: str, scores: dict[str, ValidationResult], command: list[str]
) -> dict:
    config: TrainConfig = trainer.config
    src = config.data.src_lang or config.data.src
    tgt = config.data.tgt_lang or config.data.tgt
    manifest = load_corpus_manifest(config.data.corpus)
    return {
        "name": f"{Path(config.run_dir).name} ({src}→{tgt})",
        "description": "LSTM encoder-decoder with attention, trained with carousel.",
        "languages": {"source": src, "target": tgt},
        "domain": config.export.domain,
        "corpus": {
            "path": str(config.data.corpus),
            "name": manifest.name,
            "columns": {"source": config.data.src, "target": config.data.tgt},
            "splits": {name: split.model_dump() for name, split in manifest.splits.items()},
            "sources": data_sources(manifest.source),
            **extra_training_data(config),
        },
        "subwords": config.subwords.model_dump(mode="json"),
        "source_normalization": config.data.normalize_source,
        "parameters": trainer.model.parameter_count(),
        "architecture": trainer.model_config.model_dump(mode="json"),
        "training": {
            "command": " ".join(command),
            "steps": progress.step,
            "epochs": round(trainer.fractional_epoch(), 2),
            "target_tokens": progress.target_tokens,
            "minutes": round(progress.elapsed_seconds / 60, 1),
            "processes": trainer.dist.world_size,
            "machine": _machine(trainer.device),
            "exported_weights": chosen,
            "initialised_from": str(config.training.init_from) if config.training.init_from else None,
        },
        "validation": {
            "bleu": round(scores[chosen].bleu, 2), "chrf": round(scores[chosen].chrf, 2),
            "beam_size": config.validation.beam_size,
            "bleu_by_candidate": {name: round(result.bleu, 2) for name, result in scores.items()},
            "bleu_by_step": {str(r["step"]): r["bleu"] for r in trainer.metrics.read() if r["kind"] == "valid"},
        },
        "config": json.loads(config.model_dump_json()),
    }


def _machine(device: torch.device) -> str:
    """Where the weights were trained, for the card: the GPU's name, or the CPU's threads."""
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    return f"{platform.machine()}, {where}, torch {torch.__version__}, python {sys.version.split()[0]}"

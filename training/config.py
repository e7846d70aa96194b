"""Typed training configuration: one YAML file (see training/configs/) plus `key.path=value` overrides.

The resolved config is stored in every checkpoint and in the exported model directory.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from carousel.errors import UserError
from carousel.model.precision import DeviceName, TrainingPrecision
from carousel.data.subwords import SubwordConfig
from carousel.model.config import ModelConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DataConfig(_Section):
    corpus: Path = Path("data/corpora/bible")
    src: str = "es"  # column names in the corpus TSVs
    tgt: str = "en"
    src_lang: str | None = None  # language codes for the model card and service; default: the column's
    tgt_lang: str | None = None
    normalize_source: Literal["none", "spanish_modern"] = "none"
    max_train_tokens: int = Field(150, ge=1, description="drop training pairs longer than this (subwords)")
    max_train_examples: int = Field(0, ge=0, description="use only the first N training pairs (0 = all)")
    max_valid_examples: int = Field(0, ge=0, description="validate on the first N pairs (0 = all)")
    extra_sources: list[str] = Field(
        [], description="more source columns of the corpus, each paired with the target, for training only"
    )
    extra_train: list[Path] = Field(
        [], description="more corpus directories whose train split (same src/tgt columns) is added to training"
    )
    extra_targets: dict[str, str] = Field(
        {},
        description="more target columns of the corpus, each mapped to a tag that is put before the source "
        "of its pairs (e.g. {en_kjv: KJV}), for training only: the model learns the second translation as a "
        "style it produces when the tag is there, and keeps the main target's style for untagged input",
    )

    @model_validator(mode="after")
    def _extra_columns_are_not_src_or_tgt(self) -> "DataConfig":
        if self.tgt in self.extra_sources or self.src in self.extra_sources:
            raise ValueError("extra_sources must not repeat the src or tgt column")
        if self.tgt in self.extra_targets or self.src in self.extra_targets:
            raise ValueError("extra_targets must not repeat the src or tgt column")
        if any(tag.split() != [tag] for tag in self.extra_targets.values()):
            raise ValueError("every extra_targets tag must be a non-empty word without surrounding spaces")
        return self


class OptimConfig(_Section):
    learning_rate: float = Field(1e-3, gt=0)
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.0
    schedule: Literal["plateau", "inverse_sqrt", "constant"] = "plateau"
    warmup_steps: int = Field(400, ge=0)
    plateau_factor: float = Field(0.5, gt=0, lt=1)
    plateau_patience: int = Field(2, ge=0, description="validations without improvement before decaying")
    min_learning_rate: float = 1e-5
    clip_norm: float = Field(1.0, gt=0)
    label_smoothing: float = Field(0.1, ge=0, lt=1)


class TrainingConfig(_Section):
    seed: int = 1
    batch_tokens: int = Field(2000, ge=1, description="target tokens per batch, padding included")
    max_steps: int = Field(0, ge=0, description="0 = no step limit")
    max_epochs: int = Field(0, ge=0, description="0 = no epoch limit")
    max_minutes: float = Field(0, ge=0, description="wall-clock budget, summed over resumes; 0 = none")
    precision: TrainingPrecision = "fp32"  # bf16 autocast: CPUs with AVX512-BF16/AMX, or a GPU
    device: DeviceName = Field("auto", description="auto: a CUDA GPU where one is visible, else the CPU")
    threads: int = Field(0, ge=0, description="torch threads; 0 = one per core")
    log_every: int = Field(50, ge=1)
    validate_every: int = Field(1000, ge=1)
    checkpoint_every: int = Field(500, ge=1)
    keep_best: int = Field(3, ge=1)
    early_stopping_patience: int = Field(0, ge=0, description="validations without BLEU gain; 0 = off")
    average_last: int = Field(0, ge=0, description="export the average of the last N checkpoints (0 = best)")
    init_from: Path | None = Field(
        None, description="a model directory whose weights start a new run (same architecture and subwords)"
    )


class ValidationConfig(_Section):
    beam_size: int = Field(1, ge=1)
    batch_tokens: int = Field(4000, ge=1)


class ExportConfig(_Section):
    dir: Path | None = None  # model directory to write at the end (None: run_dir/model)
    # Replace a directory that holds a model this run did not export (e.g. a shipped model in models/).
    overwrite: bool = False
    half_precision: bool = True  # fp16 weights on disk; loaded back as fp32
    domain: str = Field("general", pattern=r"^[a-z][a-z0-9_-]*$",
                        description="the texts it is for (card.json; the service routes by it: routing/domains.py)")


class TrainConfig(_Section):
    run_dir: Path = Path("runs/default")
    data: DataConfig = DataConfig()
    subwords: SubwordConfig = SubwordConfig()
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    training: TrainingConfig = TrainingConfig()
    validation: ValidationConfig = ValidationConfig()
    export: ExportConfig = ExportConfig()

    @model_validator(mode="after")
    def _finite(self) -> "TrainConfig":
        """No number anywhere in the config may be inf or nan (the sections of other packages included):
        `optim.learning_rate=inf` would pass `gt=0` and make the weights non-finite."""
        for path, value in _numbers(self):
            if not math.isfinite(value):
                raise ValueError(f"{path} must be a finite number, got {value}")
        return self


def _numbers(value, path: str = ""):
    """(dotted path, float) for every float in a config, however deeply nested."""
    if isinstance(value, float):
        yield path, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _numbers(getattr(value, name), f"{path}.{name}" if path else name)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _numbers(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(item, f"{path}.{key}")


def load_config(path: Path, overrides: list[str] = ()) -> TrainConfig:
    """Read YAML, apply `section.key=value` overrides (values parsed as YAML), validate."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise UserError(f"cannot read config {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: the top level must be a mapping of sections")
    for override in overrides:
        _apply_override(raw, override)
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as error:
        raise UserError(f"invalid config {path}:\n{error}") from None


def _apply_override(raw: dict, override: str) -> None:
    key, sep, value = override.partition("=")
    if not sep or not key:
        raise UserError(f"override {override!r} must look like section.key=value")
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError(f"override {override!r}: {part} is not a section")
    node[leaf] = yaml.safe_load(value)

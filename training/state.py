"""Resumable training state, written atomically and read back without unpickling code.

`last.pt` holds everything needed to continue exactly: weights, optimizer and schedule state, step,
epoch and batch position, RNG states, elapsed time, the best-checkpoint list. It is written to a
temporary file, fsync'ed, then renamed over the old one, so a kill at any moment leaves either the old
or the new checkpoint, never a torn one; a failed write (disk full) leaves the old one intact and stops
training with a `CheckpointWriteError` that says why.

Every checkpoint carries a SHA-256 over its contents (each tensor's bytes, dtype and shape, and every
other value, in key order), checked when it is read back: a flipped byte in tensor data, or a missing
part, is refused with a `CheckpointReadError` instead of silently resuming from different weights.

`Progress` is where training is (saved in every checkpoint), and `weight_files` the weight files of
the run directory it still refers to (the kept best validations and the snapshots to average).
"""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

import torch

from carousel.errors import UserError
from carousel.fileio import atomic_file

log = logging.getLogger(__name__)


class CheckpointWriteError(UserError):
    """The checkpoint could not be written (disk full, quota, permissions); the previous one is kept."""


class CheckpointReadError(UserError):
    """The checkpoint cannot be trusted: unreadable, damaged (checksum mismatch) or incomplete."""


DIGEST_KEY = "sha256"
REQUIRED_KEYS = ("model", "optimizer", "schedule", "progress", "rng", "model_config", "config")


def state_digest(state) -> str:
    """SHA-256 over a checkpoint's contents, independent of how torch laid the file out."""
    digest = hashlib.sha256()
    _feed(digest, state)
    return digest.hexdigest()


def _feed(digest, value) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    elif isinstance(value, dict):
        digest.update(b"{")
        for key in sorted(value, key=repr):
            digest.update(repr(key).encode())
            _feed(digest, value[key])
        digest.update(b"}")
    elif isinstance(value, (list, tuple)):
        digest.update(b"[")
        for item in value:
            _feed(digest, item)
        digest.update(b"]")
    else:
        digest.update(repr(value).encode())


def with_digest(state: dict) -> dict:
    return {**state, DIGEST_KEY: state_digest(state)}


def load_checkpoint(path: Path) -> dict:
    """Read `last.pt` (weights_only) and check its checksum and parts; a `CheckpointReadError` says why not."""
    try:
        state = safe_torch_load(path)
    except Exception as error:  # a torn or foreign file: refuse rather than start over silently
        raise CheckpointReadError(f"cannot read checkpoint {path}: {error}") from None
    if not isinstance(state, dict):
        raise CheckpointReadError(f"{path} is not a training checkpoint")
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise CheckpointReadError(f"{path} is incomplete: no {', '.join(missing)}; it cannot be resumed")
    recorded = state.pop(DIGEST_KEY, None)
    if recorded is None:
        log.warning("%s has no checksum (written by an older carousel); resuming without verifying it", path)
    elif recorded != state_digest(state):
        raise CheckpointReadError(
            f"{path} is damaged: its contents do not match the checksum written with them; "
            f"restore it from a backup or start a new run_dir"
        )
    return state


def atomic_torch_save(obj, path: Path) -> None:
    path = Path(path)
    try:
        with atomic_file(path, fsync=True) as handle:  # only rank 0 writes
            torch.save(obj, handle)
    except BaseException as error:
        cause = _os_error_behind(error)
        if cause is None:
            raise
        raise CheckpointWriteError(
            f"cannot write checkpoint {path}: {cause.strerror or cause}; the previous checkpoint is unchanged"
        ) from error


def safe_torch_load(path: Path) -> dict:
    """Load a checkpoint with `weights_only=True`: tensors and plain containers only, no code."""
    return torch.load(path, map_location="cpu", weights_only=True)


def capture_rng_state() -> dict:
    version, internal, gauss = random.getstate()
    return {"torch": torch.get_rng_state(), "python": [version, list(internal), gauss]}


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _os_error_behind(error: BaseException) -> OSError | None:
    """The OSError that made a save fail: torch's zip writer reports a failed write (disk full) as a
    RuntimeError ("unexpected pos ...") whose context is the OSError."""
    while error is not None and not isinstance(error, OSError):
        error = error.__cause__ or error.__context__
    return error


@dataclass
class Progress:
    """Where training is; saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of `epoch` already trained on (this process's share)
    elapsed_seconds: float = 0.0
    target_tokens: int = 0
    best: list[list[float]] = field(default_factory=list)  # [bleu, step] of kept best checkpoints
    validations: list[int] = field(default_factory=list)  # steps of kept val-* snapshots
    bad_validations: int = 0  # for early stopping
    finished: bool = False


def weight_files(progress: Progress, average_last: int) -> set[str]:
    """The weight files a progress record names: the kept best and, with averaging, the last snapshots."""
    names = {f"best-{int(step):08d}.safetensors" for _, step in progress.best}
    if average_last:
        names |= {f"val-{step:08d}.safetensors" for step in progress.validations}
    return names

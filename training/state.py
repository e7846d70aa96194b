"""Resumable training state, written atomically and read back without unpickling code.

`last.pt` holds everything needed to continue exactly: weights, optimizer and schedule state, step,
epoch and batch position, RNG states, elapsed time, the best-checkpoint list. It is written to a
temporary file, fsync'ed, then renamed over the old one, so a kill at any moment leaves either the old
or the new checkpoint, never a torn one; a failed write (disk full) leaves the old one intact and stops
training with a `CheckpointWriteError` that says why.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import torch

from carousel.errors import UserError


class CheckpointWriteError(UserError):
    """The checkpoint could not be written (disk full, quota, permissions); the previous one is kept."""


def atomic_torch_save(obj, path: Path) -> None:
    path = Path(path)
    # One fixed name (only rank 0 writes): a temporary file left by a killed run is overwritten by the
    # next save instead of piling up.
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        cause = _os_error_behind(error)
        if cause is None:
            raise
        raise CheckpointWriteError(
            f"cannot write checkpoint {path}: {cause.strerror or cause}; the previous checkpoint is unchanged"
        ) from error
    _fsync_directory(path.parent)


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


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

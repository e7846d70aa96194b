"""Resumable training state, written atomically and read back without unpickling code.

`last.pt` holds everything needed to continue exactly: weights, optimizer and schedule state, step,
epoch and batch position, RNG states, elapsed time, the best-checkpoint list. It is written to a
temporary file, fsync'ed, then renamed over the old one, so a kill at any moment leaves either the old
or the new checkpoint, never a torn one; a failed write (disk full) leaves the old one intact.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import torch


def atomic_torch_save(obj, path: Path) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
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


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

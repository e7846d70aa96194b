"""Small file helpers every layer uses: strict UTF-8 line reading, atomic writes, checksums.

Imports nothing from the rest of carousel but `carousel.errors`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from carousel.errors import UserError

MAX_LINE_BYTES = 16 << 20  # a longer "line" is not text


def display_name(path: Path | None) -> str:
    return "<stdin>" if path is None else str(path)


def open_for_reading(path: Path) -> IO[bytes]:
    """Open a file in binary mode, or raise a `UserError` that says why it cannot be read."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a file") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror})") from None


def read_lines(path: Path | None) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 file or of stdin (`None`), without line ends or a leading BOM.

    Only "\\n" ends a line ("\\r\\n" too), so the line count is what `wc -l` sees; invalid UTF-8, a NUL
    byte (a binary file) or a line over 16 MiB raise a `UserError` naming the file and line.
    """
    name = display_name(path)
    stream, close = (sys.stdin.buffer, False) if path is None else (open_for_reading(path), True)
    try:
        number = 0
        while raw := stream.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(raw) > MAX_LINE_BYTES:
                raise UserError(f"{name}:{number}: line longer than {MAX_LINE_BYTES >> 20} MiB: not a text file")
            if b"\0" in raw:
                raise UserError(f"{name}:{number}: NUL byte: a binary file, not UTF-8 text")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise UserError(f"{name}:{number}: invalid UTF-8 at byte {error.start + 1} of the line") from None
            if number == 1:
                text = text.removeprefix("\ufeff")
            yield number, text.removesuffix("\n").removesuffix("\r")
    except OSError as error:
        raise UserError(f"{name}: cannot read ({error.strerror})") from None
    finally:
        if close:
            stream.close()


def count_lines(path: Path) -> int:
    """Lines in a file, counted in 1 MiB blocks (for a progress bar's total)."""
    lines, last = 0, b"\n"
    with open_for_reading(path) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "wb", fsync: bool = False, **open_arguments) -> Iterator[IO]:
    """A file handle whose contents replace `path` only when the block ends without an error.

    It writes a temporary sibling (`.NAME.tmp`, one fixed name, so a killed writer's leftover is reused
    rather than piling up) and renames it over `path`: readers never see half a file, and a failed write
    (disk full) leaves the previous file as it was. With `fsync`, data and directory entry reach the disk
    before the call returns (checkpoints). Errors propagate as they are (OSError for the disk).
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, mode, **open_arguments) as handle:
            yield handle
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    if fsync:
        fsync_directory(path.parent)


def write_atomically(path: Path, data: bytes | str, fsync: bool = False) -> None:
    """`data` (text is written as UTF-8) in place of `path`, all or nothing (see `atomic_file`)."""
    with atomic_file(path, fsync=fsync) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (a no-op where directories cannot be opened)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

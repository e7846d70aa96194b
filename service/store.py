"""Translated files waiting to be downloaded: a bounded directory with expiry.

Each file is stored under a name the server makes up (`<32 hex digits>[-<stem>].<extension>`, the stem
the upload's own name cut to letters, digits, `_` and `-`, for the downloaded file's name), so a download
name is either one of those or refused before the file system is touched: no path from a client ever
reaches `open`. Files expire `ttl` seconds after they are stored. A full store (`max_files` files or
`max_bytes` bytes) refuses new files (`StoreFull`, with the seconds until the oldest expires) rather
than drop a file somebody has not downloaded yet.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from pathlib import Path

from carousel.io import write_atomically

NAME = re.compile(r"(?P<key>[0-9a-f]{32})(?:-(?P<stem>[A-Za-z0-9_-]{1,40}))?\.(?P<extension>[a-z0-9]{1,8})")


class StoreFull(Exception):
    """No room: `retry_after` seconds until the oldest file expires (None: the file can never fit)."""

    def __init__(self, message: str, retry_after: float | None):
        super().__init__(message)
        self.retry_after = retry_after


class FileStore:
    def __init__(self, directory: Path, max_files: int, max_bytes: int, ttl: float, clock=time.time):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_files, self.max_bytes, self.ttl, self.clock = max_files, max_bytes, ttl, clock
        self._lock = threading.Lock()

    def put(self, data: bytes, extension: str, stem: str = "") -> str:
        """Store `data`; returns its download name (with `stem`, made safe, for people to recognise)."""
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:40]
        extension = extension.lower().lstrip(".")
        if not re.fullmatch(r"[a-z0-9]{1,8}", extension):
            extension = "bin"
        if len(data) > self.max_bytes:
            raise StoreFull(f"the file of {len(data)} bytes is larger than the store ({self.max_bytes} bytes)", None)
        name = f"{secrets.token_hex(16)}{'-' + stem if stem else ''}.{extension}"
        with self._lock:
            self._expire(room_for=len(data))
            write_atomically(self.directory / name, data)
        return name

    def path(self, name: str) -> Path | None:
        """The stored file called `name`, or None (unknown, expired, or not a name this store makes)."""
        if not NAME.fullmatch(name):
            return None
        with self._lock:
            self._expire()
            path = self.directory / name
            return path if path.is_file() else None

    @staticmethod
    def download_name(name: str) -> str:
        """The file name a download is offered under: `translated-<stem>.<extension>`."""
        match = NAME.fullmatch(name)
        return f"translated-{match['stem'] or match['key']}.{match['extension']}"

    def names(self) -> list[str]:
        return sorted(p.name for p in self.directory.iterdir() if NAME.fullmatch(p.name))

    def _expire(self, room_for: int | None = None) -> None:
        now = self.clock()
        files = []
        for path in self.directory.iterdir():
            if not NAME.fullmatch(path.name):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if now - stat.st_mtime > self.ttl:
                path.unlink(missing_ok=True)
            else:
                files.append((stat.st_mtime, stat.st_size, path))
        if room_for is None:
            return
        count, size = len(files), sum(size for _, size, _ in files)
        if count + 1 > self.max_files or size + room_for > self.max_bytes:
            oldest = min(mtime for mtime, _, _ in files)
            raise StoreFull(
                f"the file store is full ({count} files, {size} bytes)", max(1.0, oldest + self.ttl - now)
            )

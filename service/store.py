"""Translated files waiting to be downloaded: a bounded directory with expiry and a quota per client.

The directory may be shared by several server processes (replicas with one volume, NFS included): a
file stored through one is downloaded through any other. Every change (expiry, making room, checking
the bounds, writing) happens under an exclusive lock on `.lock` in the directory (`flock`, which Linux
maps onto NFS locks), so two uploads never both take the last place; files are written to a temporary
name and renamed into place, so a download never sees half a file. Who stored each file (a hash of the
client, never the key itself) is kept in `.owners.json`, written the same way under the same lock.

Each file is stored under a name the server makes up (`<32 hex digits>[-<stem>].<extension>`, the stem
the upload's own name cut to letters, digits, `_` and `-`, for the downloaded file's name), so a download
name is either one of those or refused before the file system is touched: no path from a client ever
reaches `open`. Files expire `ttl` seconds after they are stored.

Each client (an API key, or an address without keys) may hold `client_files` files and `client_bytes`
bytes: a new file over its quota, or over the whole store's (`max_files`, `max_bytes`), takes the place
of the client's own oldest files, so no client can fill the store for the others. A store full of other
clients' files refuses new ones (`StoreFull`, with the seconds until the oldest expires) rather than
drop a file somebody else has not downloaded yet. A directory that cannot be written (a full disk, say) raises
`StoreUnavailable`, and `health` says so until a write or a probe succeeds.

A server given no directory keeps its files in one of its own (`FileStore.temporary`), removed when the
server stops (`close`), or when the store is collected or the process exits; a configured directory is
never removed, since other replicas may be using it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from carousel.fileio import write_atomically
from carousel.service.health import Dependency, describe

NAME = re.compile(r"(?P<key>[0-9a-f]{32})(?:-(?P<stem>[A-Za-z0-9_-]{1,40}))?\.(?P<extension>[a-z0-9]{1,8})")
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
LOCK, OWNERS = ".lock", ".owners.json"


class StoreFull(Exception):
    """No room: `retry_after` seconds until the oldest file expires (None: the file can never fit)."""

    def __init__(self, message: str, retry_after: float | None):
        super().__init__(message)
        self.retry_after = retry_after


class StoreUnavailable(Exception):
    """The store's directory cannot be written; `no_space` when the disk (or quota) is full."""

    def __init__(self, message: str, no_space: bool):
        super().__init__(message)
        self.no_space = no_space


class FileStore:
    def __init__(self, directory: Path, max_files: int, max_bytes: int, ttl: float, clock=time.time,
                 client_files: int | None = None, client_bytes: int | None = None, min_free_bytes: int = 0):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_files, self.max_bytes, self.ttl, self.clock = max_files, max_bytes, ttl, clock
        self.client_files = client_files or max_files
        self.client_bytes = client_bytes or max_bytes
        self.min_free_bytes = min_free_bytes  # the probe calls the disk full below this
        self.health = Dependency("the file store", self._probe)
        self._own_directory: tempfile.TemporaryDirectory | None = None

    @classmethod
    def temporary(cls, *args, **kwargs) -> "FileStore":
        """A store in a new directory of its own, which `close` (or collecting the store, or exiting) removes."""
        directory = tempfile.TemporaryDirectory(prefix="carousel-files-", ignore_cleanup_errors=True)
        store = cls(Path(directory.name), *args, **kwargs)
        store._own_directory = directory
        return store

    def close(self) -> None:
        """Remove the directory if this store made it; a directory it was given stays as it is."""
        if self._own_directory is not None:
            self._own_directory.cleanup()

    def put(self, data: bytes, extension: str, stem: str = "", client: str = "") -> str:
        """Store `data` for `client`; returns its download name (with `stem`, made safe, for people to recognise)."""
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:40]
        extension = extension.lower().lstrip(".")
        if not re.fullmatch(r"[a-z0-9]{1,8}", extension):
            extension = "bin"
        if len(data) > min(self.max_bytes, self.client_bytes):
            limit = min(self.max_bytes, self.client_bytes)
            raise StoreFull(f"the file of {len(data)} bytes is larger than a client's share of the store ({limit} bytes)", None)
        name = f"{secrets.token_hex(16)}{'-' + stem if stem else ''}.{extension}"
        with self._locked():
            files = self._expire()
            owners = self._read_owners(files)
            files = self._make_room(files, owners, _owner(client), len(data))
            self._check_room(files, len(data))
            self._write(self.directory / name, data)
            owners[name] = _owner(client)
            self._write(self.directory / OWNERS, json.dumps(owners).encode("utf-8"))
        return name

    def path(self, name: str) -> Path | None:
        """The stored file called `name`, or None (unknown, expired, or not a name this store makes)."""
        if not NAME.fullmatch(name):
            return None
        path = self.directory / name
        try:
            stored = path.stat().st_mtime
        except FileNotFoundError:
            return None
        except OSError as error:
            raise self._unavailable(error) from None
        if self.clock() - stored > self.ttl:
            path.unlink(missing_ok=True)  # safe without the lock: nobody may have it any more
            return None
        return path if path.is_file() else None

    @staticmethod
    def download_name(name: str) -> str:
        """The file name a download is offered under: `translated-<stem>.<extension>`."""
        match = NAME.fullmatch(name)
        return f"translated-{match['stem'] or match['key']}.{match['extension']}"

    def names(self) -> list[str]:
        return sorted(p.name for p in self.directory.iterdir() if NAME.fullmatch(p.name))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the store's lock: one change at a time, across every process sharing the directory."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)  # deleted under the server: made again
            handle = open(self.directory / LOCK, "a")
        except OSError as error:
            raise self._unavailable(error) from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the handle closes
            yield

    def _read_owners(self, files: list) -> dict[str, str]:
        """Who stored each of `files` (a name missing from `.owners.json` belongs to nobody)."""
        try:
            owners = json.loads((self.directory / OWNERS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            owners = {}
        present = {entry[2].name for entry in files}
        return {name: owner for name, owner in owners.items() if name in present}

    def _expire(self) -> list[tuple[float, int, Path]]:
        """(mtime, size, path) of the files left after dropping the expired ones (and writes a crashed
        process left behind)."""
        now = self.clock()
        files = []
        try:
            paths = list(self.directory.iterdir())
        except OSError as error:
            raise self._unavailable(error) from None
        for path in paths:
            stored = NAME.fullmatch(path.name)
            if not stored and not path.name.endswith(".tmp"):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if now - stat.st_mtime > self.ttl:
                path.unlink(missing_ok=True)
            elif stored:
                files.append((stat.st_mtime, stat.st_size, path))
        return files

    def _make_room(self, files: list, owners: dict[str, str], owner: str, size: int) -> list:
        """`files` less the client's oldest, as many as its quota, or else the whole store, needs for `size`
        more bytes: a client's new file replaces its own oldest, never another client's."""
        own = sorted(entry for entry in files if owners.get(entry[2].name) == owner)
        while own and (self._over(own, size, self.client_files, self.client_bytes)
                       or self._over(files, size, self.max_files, self.max_bytes)):
            oldest = own.pop(0)
            oldest[2].unlink(missing_ok=True)
            files.remove(oldest)
            owners.pop(oldest[2].name, None)
        return files

    @staticmethod
    def _over(files: list, size: int, max_files: int, max_bytes: int) -> bool:
        return len(files) + 1 > max_files or sum(entry[1] for entry in files) + size > max_bytes

    def _check_room(self, files: list, size: int) -> None:
        count, total = len(files), sum(entry[1] for entry in files)
        if count + 1 > self.max_files or total + size > self.max_bytes:
            oldest = min(mtime for mtime, _, _ in files)
            raise StoreFull(f"the file store is full ({count} files, {total} bytes)",
                            max(1.0, oldest + self.ttl - self.clock()))

    def _write(self, path: Path, data: bytes) -> None:
        try:
            write_atomically(path, data)
        except OSError as error:
            raise self._unavailable(error) from None
        self.health.ok()

    def _unavailable(self, error: OSError) -> StoreUnavailable:
        no_space = error.errno in NO_SPACE
        problem = "no space left on its disk" if no_space else describe(error)
        self.health.failed(problem)
        return StoreUnavailable(f"translated files cannot be stored: {problem}", no_space)

    def _probe(self) -> None:
        """Raise unless a small file can be written and the disk has min_free_bytes free."""
        probe = self.directory / f".probe-{secrets.token_hex(4)}"
        try:
            probe.write_bytes(b"probe")
        finally:
            probe.unlink(missing_ok=True)
        free = shutil.disk_usage(self.directory).free
        if free < self.min_free_bytes:
            raise OSError(errno.ENOSPC, f"no space left on its disk ({free} bytes free)")


def _owner(client: str) -> str:
    """A client's name in `.owners.json`: a hash, so no API key is written to the shared volume."""
    return hashlib.sha256(client.encode("utf-8", "surrogatepass")).hexdigest()[:32]

"""The `.po` files of a directory tree, an archive (.tar.xz, .tar.gz, .tar.bz2, .tar, .zip) or a single file,
read without extracting anything.

Archive members are read into memory, never written to disk. An archive holding a member whose path is
absolute or climbs out of it (`..`) is refused, as is one with a member larger than `MAX_MEMBER_BYTES`
or more than `MAX_TOTAL_BYTES` of selected files in all; links, devices and other non-regular members
are skipped, and a directory tree is walked without following links. Licence files (COPYING, LICENSE,
LICENCE, with any suffix) are read as well, so that each catalog can name the one nearest to it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath

from carousel.errors import UserError

MAX_MEMBER_BYTES = 64 << 20
MAX_TOTAL_BYTES = 2 << 30
ARCHIVE_SUFFIXES = (".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar", ".zip")
_LICENCE_NAME = re.compile(r"^(?:copying|licen[cs]e)(?:[._-].*)?$", re.IGNORECASE)


@dataclass(frozen=True)
class MemberFile:
    """One file of the input: its path inside the input (POSIX, relative) and its bytes."""

    path: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class CatalogInput:
    """What one input holds: its catalogs and licence files, sorted by path."""

    name: str  # the file or directory name, never a path of this machine
    kind: str  # "directory", "archive" or "file"
    sha256: str | None  # of the archive or file; None for a directory
    catalogs: list[MemberFile] = field(default_factory=list)
    licence_files: list[MemberFile] = field(default_factory=list)

    def nearest_licence_file(self, catalog_path: str) -> MemberFile | None:
        """The licence file in the catalog's directory or the closest directory above it, if any."""
        by_directory = {str(PurePosixPath(item.path).parent): item for item in reversed(self.licence_files)}
        for directory in [PurePosixPath(catalog_path).parent, *PurePosixPath(catalog_path).parent.parents]:
            if str(directory) in by_directory:
                return by_directory[str(directory)]
        return None


def input_stem(path: Path) -> str:
    """The name of an input without its archive or `.po` suffix (`python-docs-es.tar.xz` → python-docs-es)."""
    name = path.name
    for suffix in (*ARCHIVE_SUFFIXES, ".po"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_catalog_input(path: Path, include: list[str], exclude: list[str]) -> CatalogInput:
    """The `.po` files of `path` whose inner path matches a pattern of `include` and none of `exclude`."""
    path = Path(path)
    if path.is_dir():
        found = CatalogInput(path.name, "directory", None)
        members = _directory_members(path)
    elif path.is_file():
        digest = _file_sha256(path)
        name = path.name.lower()
        if name.endswith(".zip"):
            found, members = CatalogInput(path.name, "archive", digest), _zip_members(path)
        elif name.endswith(ARCHIVE_SUFFIXES):
            found, members = CatalogInput(path.name, "archive", digest), _tar_members(path)
        elif name.endswith(".po"):
            found = CatalogInput(path.name, "file", digest)
            members = iter([(path.name, path.stat().st_size, lambda: _read_limited(path.open("rb"), str(path)))])
        else:
            raise UserError(f"{path}: not a .po file, a directory or an archive ({', '.join(ARCHIVE_SUFFIXES)})")
    elif path.exists():
        raise UserError(f"{path}: not a regular file or directory")
    else:
        raise UserError(f"{path}: no such file or directory")

    total = 0
    for inner, size, read in members:
        wanted = _matches(inner, include) and not _matches(inner, exclude)
        licence = _LICENCE_NAME.match(PurePosixPath(inner).name) is not None
        if not wanted and not licence:
            continue
        if size > MAX_MEMBER_BYTES:
            raise UserError(f"{path}: {inner} is larger than {MAX_MEMBER_BYTES >> 20} MiB: refused")
        data = read()
        total += len(data)
        if total > MAX_TOTAL_BYTES:
            raise UserError(f"{path}: more than {MAX_TOTAL_BYTES >> 30} GiB of catalogs: refused")
        (found.catalogs if wanted else found.licence_files).append(MemberFile(inner, data))
    found.catalogs.sort(key=lambda item: item.path)
    found.licence_files.sort(key=lambda item: item.path)
    return found


def _matches(inner: str, patterns: list[str]) -> bool:
    """Whether a path or its file name matches one of the shell patterns (`*.po`, `*/es/*.po`)."""
    name = PurePosixPath(inner).name
    return any(fnmatch.fnmatchcase(inner, pattern) or fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _safe_inner_path(archive: Path, name: str) -> str:
    """A member's path, normalised; an absolute one or one with `..` makes the archive refused."""
    posix = name.replace("\\", "/")
    parts = PurePosixPath(posix).parts
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix) or ".." in parts:
        raise UserError(f"{archive}: member {name!r} points outside the archive: refused")
    return str(PurePosixPath(*[part for part in parts if part not in ("", ".")]))


def _read_limited(stream, label: str) -> bytes:
    with stream:
        data = stream.read(MAX_MEMBER_BYTES + 1)
    if len(data) > MAX_MEMBER_BYTES:
        raise UserError(f"{label}: larger than {MAX_MEMBER_BYTES >> 20} MiB: refused")
    return data


# (path inside the input, size in bytes, a function that reads it)
Members = Iterator[tuple[str, int, Callable[[], bytes]]]


_TAR_MODES = {".tar.xz": "r:xz", ".txz": "r:xz", ".tar.gz": "r:gz", ".tgz": "r:gz", ".tar.bz2": "r:bz2",
              ".tbz2": "r:bz2", ".tar": "r:"}


def _tar_members(path: Path) -> Members:
    mode = next(mode for suffix, mode in _TAR_MODES.items() if path.name.lower().endswith(suffix))
    try:
        archive = tarfile.open(path, mode=mode)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise UserError(f"{path}: not a readable archive ({_one_line(error)})") from None
    try:
        with archive:
            for member in archive:
                inner = _safe_inner_path(path, member.name)
                if not member.isreg():
                    continue  # directories, links, devices
                yield inner, member.size, partial(_read_limited, archive.extractfile(member), f"{path}: {inner}")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise UserError(f"{path}: not a readable archive ({_one_line(error)})") from None


def _zip_members(path: Path) -> Members:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise UserError(f"{path}: not a readable archive ({_one_line(error)})") from None
    try:
        with archive:
            for info in archive.infolist():
                inner = _safe_inner_path(path, info.filename)
                kind = stat.S_IFMT(info.external_attr >> 16)  # 0 where the archiver recorded no Unix mode
                if info.is_dir() or kind not in (0, stat.S_IFREG):
                    continue  # directories, symbolic links
                yield inner, info.file_size, partial(_open_and_read, archive, info, f"{path}: {inner}")
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as error:
        raise UserError(f"{path}: not a readable archive ({_one_line(error)})") from None


def _directory_members(root: Path) -> Members:
    """The regular files under `root`, links not followed, as paths starting with the directory's name."""
    for directory, subdirectories, files in os.walk(root, followlinks=False, onerror=_walk_error):
        subdirectories.sort()
        for name in sorted(files):
            full = Path(directory) / name
            if full.is_symlink() or not full.is_file():
                continue
            inner = PurePosixPath(root.name, Path(full).relative_to(root).as_posix()).as_posix()
            yield inner, full.stat().st_size, partial(_open_and_read, None, full, str(full))


def _open_and_read(archive: zipfile.ZipFile | None, item, label: str) -> bytes:
    """Open a zip member (or, without an archive, a file) and read it within the size limit."""
    try:
        stream = archive.open(item) if archive is not None else open(item, "rb")
    except OSError as error:
        raise UserError(f"{label}: cannot read ({error.strerror or error})") from None
    return _read_limited(stream, label)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:200]


def _walk_error(error: OSError) -> None:
    raise UserError(f"{error.filename}: cannot read ({error.strerror})")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror})") from None
    return digest.hexdigest()

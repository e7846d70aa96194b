"""The pinned package list, and fetching each package's archive and unpacking it into a cache.

`packages.txt` holds one `package=version` line per package (blank lines and `#` comments are
ignored). Archives come from `apt-get download`, which only serves what the configured archive still
carries: a version replaced by a security update fails with an error naming the package, and the
fix is to pin the version that is served now (and rebuild, since the corpus records versions).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from carousel.errors import UserError

DEFAULT_MANIFEST = Path(__file__).resolve().parent / "packages.txt"
DEFAULT_CACHE = Path("runs/debian-cache")  # downloaded and unpacked packages


@dataclass(frozen=True)
class PinnedPackage:
    """One `package=version` line of the manifest."""

    name: str
    version: str

    @property
    def spec(self) -> str:
        return f"{self.name}={self.version}"


def read_manifest(path: Path = DEFAULT_MANIFEST) -> list[PinnedPackage]:
    """The packages of a manifest file, in file order."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: package list not found") from None
    packages: list[PinnedPackage] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, equals, version = line.partition("=")
        name, version = name.strip(), version.strip()
        if not equals or not name or not version:
            raise UserError(f"{path}:{number}: expected `package=version`, found {line!r}")
        if name in seen:
            raise UserError(f"{path}:{number}: {name} is listed twice")
        seen.add(name)
        packages.append(PinnedPackage(name, version))
    return packages


def select_packages(packages: list[PinnedPackage], only: list[str] | None) -> list[PinnedPackage]:
    """The packages named by `--only` (all when `only` is empty), refusing names not in the manifest."""
    if not only:
        return packages
    known = {package.name for package in packages}
    unknown = sorted(set(only) - known)
    if unknown:
        raise UserError(f"not in the package list: {', '.join(unknown)}")
    wanted = set(only)
    return [package for package in packages if package.name in wanted]


def archive_path(package: PinnedPackage, debs: Path) -> Path | None:
    """The downloaded archive of this exact version, if the cache has it.

    apt-get names archives `name_version_arch.deb` with the epoch's colon written as `%3a`.
    """
    stem = f"{package.name}_{package.version.replace(':', '%3a')}_"
    matches = sorted(path for path in debs.glob("*.deb") if path.name.startswith(stem))
    return matches[0] if matches else None


def download(package: PinnedPackage, debs: Path) -> Path:
    """The package's archive in `debs`, downloaded with apt-get unless already there."""
    debs.mkdir(parents=True, exist_ok=True)
    existing = archive_path(package, debs)
    if existing is not None:
        return existing
    if shutil.which("apt-get") is None:
        raise UserError(f"{package.spec}: not in {debs} and apt-get is not available to download it")
    # The sandbox user cannot write into a cache under the user's tree; downloading as the caller is fine.
    command = ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", package.spec]
    result = subprocess.run(command, cwd=debs, capture_output=True, text=True, check=False)
    path = archive_path(package, debs)
    if result.returncode != 0 or path is None:
        message = (result.stderr.strip().splitlines() or ["no archive written"])[-1]
        raise UserError(
            f"{package.spec}: apt-get download failed ({message}); the archive may no longer serve this "
            f"version (see `apt-cache policy {package.name}`, run `apt-get update`, then pin the served version "
            f"in the package list)"
        )
    return path


def unpack(package: PinnedPackage, archive: Path, unpacked_root: Path) -> Path:
    """The package's files unpacked under `unpacked_root/NAME`, unpacking only when not done for this version."""
    target = unpacked_root / package.name
    stamp = target / ".carousel-version"
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == package.version:
        return target
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    result = subprocess.run(["dpkg-deb", "-x", str(archive), str(target)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise UserError(f"{archive}: dpkg-deb could not unpack it ({result.stderr.strip()})")
    stamp.write_text(package.version, encoding="utf-8")
    return target


def fetch(package: PinnedPackage, cache: Path) -> Path:
    """Download (if needed) and unpack (if needed) one package; return its unpacked root."""
    archive = download(package, cache / "debs")
    return unpack(package, archive, cache / "unpacked")

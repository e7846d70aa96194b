"""The source kinds of the corpus and which unpacked packages each one reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from carousel.data.corpus import DroppedRecord
from carousel.data.debian import blocks, firefox, gettext, libreoffice, manpages, manuals
from carousel.data.debian.records import Candidate

Roots = dict[str, Path]  # package name → its unpacked files


@dataclass(frozen=True)
class Source:
    """One kind of parallel text; `extract` reads what it needs from the unpacked packages present."""

    kind: str
    extract: Callable[[Roots, list[DroppedRecord]], list[Candidate]]
    needs: tuple[str, ...] = ()  # the packages it reads (empty: any package); progress names the kind when one is there

    def packages(self, roots: Roots) -> list[str]:
        return list(self.needs) if self.needs else sorted(roots)


def _catalogs(roots: Roots, dropped: list[DroppedRecord]) -> list[Candidate]:
    candidates: list[Candidate] = []
    for name in sorted(roots):
        candidates += gettext.catalog_candidates(name, roots[name], dropped)
    return candidates


def _needing(*packages: str):
    """Wrap an extractor of two packages so it runs only when both were selected."""

    def decorate(function):
        def extract(roots: Roots, dropped: list[DroppedRecord]) -> list[Candidate]:
            if not all(package in roots for package in packages):
                return []
            return function(*(roots[package] for package in packages), dropped)

        return extract

    return decorate


SOURCES: tuple[Source, ...] = (
    Source("gettext", _catalogs),
    Source(
        "lo-help",
        _needing(libreoffice.ENGLISH_PACKAGE, libreoffice.SPANISH_PACKAGE)(libreoffice.help_candidates),
        (libreoffice.ENGLISH_PACKAGE, libreoffice.SPANISH_PACKAGE),
    ),
    Source(
        "gimp-help",
        _needing("gimp-help-en", "gimp-help-es")(blocks.gimp_candidates),
        ("gimp-help-en", "gimp-help-es"),
    ),
    Source("gnome-help", blocks.gnome_help_candidates),
    Source(
        "firefox",
        _needing(firefox.ENGLISH_PACKAGE, firefox.SPANISH_PACKAGE)(firefox.firefox_candidates),
        (firefox.ENGLISH_PACKAGE, firefox.SPANISH_PACKAGE),
    ),
    # The English pages come from whichever selected packages hold them (manpages, coreutils, ...).
    Source("man", manpages.man_candidates, (manpages.SPANISH_PACKAGE,)),
    # Each manual is read when its packages are selected.
    Source("debian-doc", manuals.manuals_candidates, manuals.PACKAGES),
)

"""Pairs from Firefox ESR: the es-ES language pack against the en-US strings inside `omni.ja`.

Both are zip files. Fluent files (`localization/LOCALE/…/*.ftl`) are paired by message id (and
attribute, `id.label`), `.properties` files by key; the Spanish path names its English counterpart
once `es-ES` is replaced by `en-US`. Fluent messages with selectors (`{ $n -> … }`) and term
definitions (`-brand-name`) are left out: they are grammar, not sentences.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from carousel.data.corpus import DroppedRecord
from carousel.data.debian.records import Candidate

ENGLISH_PACKAGE = "firefox-esr"
SPANISH_PACKAGE = "firefox-esr-l10n-es-es"
_FTL_MESSAGE = re.compile(r"^(-?[A-Za-z][\w-]*)\s*=\s*(.*)$")
_FTL_ATTRIBUTE = re.compile(r"^\s+\.([A-Za-z][\w-]*)\s*=\s*(.*)$")
# Access keys and keyboard shortcuts are single letters, not text.
_SHORTCUT_KEYS = ("accesskey", ".key", "commandkey", ".keycode", "_key", "-key")
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def parse_ftl(text: str) -> dict[str, str]:
    """Message id (or `id.attribute`) → value of a Fluent file, multi-line values joined by spaces."""
    messages: dict[str, list[str]] = {}
    current: str | None = None
    message: str | None = None
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            current = None if not line.strip() else current
            continue
        match = _FTL_MESSAGE.match(line)
        if match:
            message = current = match.group(1)
            messages[current] = [match.group(2)]
            continue
        match = _FTL_ATTRIBUTE.match(line)
        if match and message:
            current = f"{message}.{match.group(1)}"
            messages[current] = [match.group(2)]
            continue
        if current and line[:1].isspace():
            messages[current].append(line.strip())
    values = {}
    for key, parts in messages.items():
        value = " ".join(part for part in parts if part).strip()
        if key.startswith("-") or "->" in value or not value:
            continue
        values[key] = value
    return values


def parse_properties(text: str) -> dict[str, str]:
    """Key → value of a Java-style `.properties` file (comments, continuations, `\\uXXXX`)."""
    values: dict[str, str] = {}
    logical: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not logical and (not stripped or stripped[0] in "#!"):
            continue
        if stripped.endswith("\\") and not stripped.endswith("\\\\"):
            logical.append(stripped[:-1])
            continue
        logical.append(stripped)
        entry, logical = "".join(logical), []
        key, separator, value = entry.partition("=")
        if separator:
            value = _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value.strip())
            values[key.strip()] = value.replace("\\n", " ").replace("\\", "")
    return values


def _zip_texts(path: Path, locale: str) -> dict[str, str]:
    """Path → text of the Fluent and properties files of one locale inside a zip file."""
    texts = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if locale in name and name.endswith((".ftl", ".properties")):
                texts[name] = archive.read(name).decode("utf-8", errors="replace")
    return texts


def firefox_candidates(english_root: Path, spanish_root: Path, dropped: list[DroppedRecord]) -> list[Candidate]:
    """Pairs of every string the language pack and the en-US build both have."""
    english: dict[str, str] = {}
    for omni in sorted(english_root.glob("usr/lib/firefox-esr/**/omni.ja")):
        english.update(_zip_texts(omni, "en-US"))
    candidates: list[Candidate] = []
    for langpack in sorted(spanish_root.glob("usr/lib/firefox-esr/**/langpack-es-ES*.xpi")):
        for name, text in sorted(_zip_texts(langpack, "es-ES").items()):
            counterpart = name.replace("es-ES", "en-US")
            if counterpart not in english:  # browser/omni.ja holds the browser's files without the prefix
                counterpart = counterpart.removeprefix("browser/")
            if counterpart not in english:
                dropped.append(DroppedRecord(id=f"firefox:{name}", reason="no English file"))
                continue
            parse = parse_ftl if name.endswith(".ftl") else parse_properties
            spanish_values, english_values = parse(text), parse(english[counterpart])
            short = re.sub(r"^(browser/)?(localization|chrome)/es-ES/(locale/es-ES/|locale/)?", r"\1", name)
            for key in sorted(spanish_values.keys() & english_values.keys()):
                if key.lower().endswith(_SHORTCUT_KEYS):
                    continue
                candidates.append(
                    Candidate(f"firefox:{short}:{key}", english_values[key], spanish_values[key],
                              SPANISH_PACKAGE, "firefox", SPANISH_PACKAGE)  # fmt: skip
                )
    return candidates

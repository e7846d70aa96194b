"""The licence of each package's text, from its Debian copyright file.

Machine-readable (DEP-5) copyright files name the licence of `Files: *`; older free-form files are
searched for the `/usr/share/common-licenses/NAME` they point to. Where neither gives an answer the
licence DATA.md states for the source kind is used, marked as such.
"""

from __future__ import annotations

import re
from pathlib import Path

# From ../shared/DATA.md, per source kind.
KIND_LICENCES = {
    "gettext": "see the package's copyright file",
    "lo-help": "MPL-2.0",
    "gimp-help": "GFDL",
    "gnome-help": "CC-BY-SA-3.0",
    "firefox": "MPL-2.0",
    "man": "GPL-3+",
    "debian-doc": "GPL-2+ / CC-BY-SA",
}
_COMMON_LICENCE = re.compile(r"/usr/share/common-licenses/([A-Za-z][\w.+-]*[\w+])")


def package_licence(root: Path, package: str, kind: str) -> str:
    """The licence of an unpacked package's main files."""
    path = root / "usr/share/doc" / package / "copyright"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    licence = dep5_licence(text) or free_form_licence(text)
    if licence:
        return licence
    return f"{KIND_LICENCES.get(kind, 'unknown')} (per DATA.md; no copyright file in the package)"


def dep5_licence(text: str) -> str:
    """The `License:` of the `Files: *` stanza of a DEP-5 copyright file, or ""."""
    if not text.startswith("Format:"):
        return ""
    for stanza in re.split(r"\n\s*\n", text):
        fields = _fields(stanza)
        if fields.get("files", "").split()[:1] == ["*"] and fields.get("license"):
            return fields["license"].splitlines()[0].strip()
    return ""


def free_form_licence(text: str) -> str:
    """The licences a free-form copyright file points to in common-licenses, joined, or ""."""
    names = sorted(set(_COMMON_LICENCE.findall(text)))
    return " / ".join(names)


def _fields(stanza: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    name = None
    for line in stanza.splitlines():
        if line[:1] in (" ", "\t") and name:
            fields[name] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            name = key.strip().lower()
            fields[name] = value.strip()
    return fields

"""The settings of a Debian corpus build, with the held-out units chosen for valid and test."""

from __future__ import annotations

from pydantic import BaseModel, Field

# Whole packages (software strings) and parts of manuals (documentation) held out, so that valid
# and test measure translation of unseen software and text rather than near-copies of train lines.
# Man pages and manual pages are held out page by page.
VALID_UNITS = (
    "gnome-calculator", "simple-scan", "libreoffice-help:text/smath",
    "man:uri.7", "man:time.1", "man:glob.7",
    "debian-handbook:sect.selinux", "maint-guide:checkit", "installation-guide:ch05s03",
)  # fmt: skip
TEST_UNITS = (
    "seahorse", "gnome-disk-utility", "parted", "libreoffice-help:text/schart",
    "man:netstat.8", "man:dd.1", "man:regex.7", "man:fstab.5",
    "debian-handbook:sect.virtualization", "debian-reference:ch08", "installation-guide:apds03", "maint-guide:upload",
)  # fmt: skip


class DebianConfig(BaseModel):
    """Cleaning limits and the held-out units of the Debian corpus."""

    max_ratio: float = Field(3.0, ge=1.0, description="largest character-length ratio between the sides")
    max_words: int = Field(120, gt=0, description="most whitespace-separated words on either side of a pair")
    max_unsplit_words: int = Field(
        60, gt=0, description="a document block whose sentence counts differ is kept whole only up to this length"
    )
    fragment_words: int = Field(2, ge=0, description="pairs with at most this many English words are fragments")
    max_fragment_share: float = Field(
        0.25, ge=0.0, le=1.0, description="most fragments may make up of each split (1.0: no cap)"
    )
    dropped_examples: int = Field(50, ge=0, description="dropped records listed in corpus.json per reason")
    valid_units: list[str] = Field(default_factory=lambda: list(VALID_UNITS))
    test_units: list[str] = Field(default_factory=lambda: list(TEST_UNITS))

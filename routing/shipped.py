"""Where the shipped default models are, whatever the current directory.

`CAROUSEL_MODELS_DIR` when set; else `models/` beside the installed source (an editable install or a
checkout); else `./models`. Each model directory's `config.json` names its language pair, its `card.json`
its domain (routing/domains.py); a pair may have one model per domain. Torch-free.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from carousel.routing.domains import load_routing, model_domain
from carousel.errors import UserError

SOURCE_ROOT = Path(__file__).resolve().parents[1]


def models_dir() -> Path:
    """The directory of model directories the service and the commands use by default."""
    if os.environ.get("CAROUSEL_MODELS_DIR"):
        return Path(os.environ["CAROUSEL_MODELS_DIR"])
    beside_source = SOURCE_ROOT / "models"
    return beside_source if beside_source.is_dir() else Path("models")


def language_pair(directory: Path) -> tuple[str, str] | None:
    """The (source, target) languages config.json declares, or None where it cannot be read."""
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        return str(config["src_lang"]), str(config["tgt_lang"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def model_directories(root: Path | None = None) -> list[Path]:
    """Model directories under `root`, by name (half-written `.partial`/`.old` ones skipped)."""
    root = models_dir() if root is None else Path(root)
    if not root.is_dir():
        return []
    return sorted(
        path for path in root.iterdir()
        if path.is_dir() and not path.name.startswith(".") and not path.name.endswith((".partial", ".old"))
        and (path / "config.json").is_file()
    )


def models_for(source: str | None, target: str | None, root: Path | None = None) -> dict[str, Path]:
    """The shipped model directories that translate `source`→`target`, by domain (the first by name
    where two share a domain)."""
    if not source or not target:
        raise UserError("name a model with --model DIR, or the languages with --source and --target")
    root = models_dir() if root is None else Path(root)
    found: dict[str, Path] = {}
    for path in model_directories(root):
        if language_pair(path) == (source, target):
            found.setdefault(model_domain(path), path)
    if not found:
        pairs = ", ".join(f"{p[0]}→{p[1]}" for p in map(language_pair, model_directories(root)) if p) or "none"
        raise UserError(f"no model in {root} translates {source}→{target} (have: {pairs}); name one with --model")
    return found


def model_for(source: str | None, target: str | None, domain: str | None = None) -> Path:
    """The shipped model directory that translates `source`→`target` in `domain` (default: the
    default domain of models/domains.json, else the only domain there is)."""
    root = models_dir()
    found = models_for(source, target, root)
    if domain is None:
        domain = load_routing(root).default_among(found)
    if domain not in found:
        raise UserError(f"no {source}→{target} model for domain {domain!r} in {root} (have: {', '.join(sorted(found))})")
    return found[domain]

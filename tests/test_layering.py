"""Packaging and the dependency rules: one installed name, import rules checked by import-linter,
and a command line whose `--help` does not load PyTorch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """`pip install .` (no dependencies, no build isolation) into a fresh target directory."""
    target = tmp_path_factory.mktemp("installed")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target",
         str(target), str(ROOT)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return target


def _lint_imports(tree: Path) -> subprocess.CompletedProcess:
    """import-linter (this interpreter's) on `tree` alone: PYTHONPATH holds only the installed copy."""
    run_lint = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([sys.executable, "-c", run_lint, str(ROOT / "pyproject.toml")], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=300)


def test_pip_install_puts_only_carousel_on_the_path(installed):
    (info,) = installed.glob("carousel-*.dist-info")
    assert (info / "top_level.txt").read_text().split() == ["carousel"]
    assert sorted(p.name for p in installed.iterdir() if p.suffix != ".dist-info") == ["bin", "carousel"]
    package = installed / "carousel"
    for name in ("data", "model", "training", "service", "commands"):
        assert (package / name / "__init__.py").is_file(), name
    assert (package / "training" / "configs" / "tiny.yaml").is_file()
    assert (package / "service" / "static" / "index.html").is_file()
    assert not (package / "data" / "corpora").exists()  # corpora and models/ are not packages
    assert not list(installed.rglob("*.safetensors"))


def test_the_import_rules_hold(installed):
    result = _lint_imports(installed)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_wrong_way_import_fails_the_check(installed, tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(installed / "carousel", tree / "carousel")
    (tree / "carousel" / "model" / "wrong_way.py").write_text("from carousel.service import app\n")
    result = _lint_imports(tree)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and "carousel.model.wrong_way" in result.stdout


@pytest.mark.parametrize("command", [[], ["prepare"], ["train"], ["translate"], ["evaluate"], ["tune"],
                                     ["ensemble"], ["serve"]])
def test_help_does_not_import_torch(command):
    probe = (
        "import sys\nfrom carousel.cli import main\n"
        f"try:\n    main({command + ['--help']!r})\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'fastapi', 'sentencepiece', 'sacrebleu') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "usage: carousel" in result.stdout
    assert "HEAVY ['sentencepiece']" in result.stdout or "HEAVY []" in result.stdout
    assert "torch" not in result.stdout.split("HEAVY")[1]

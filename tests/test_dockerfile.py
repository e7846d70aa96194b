"""The Dockerfile: the instructions it must hold, and its steps performed outside Docker on the tiny model.

No Docker engine runs here, so scripts/dockerfile_steps.py carries out the Dockerfile itself: ARGs,
COPY (with .dockerignore), the RUN installs in a fresh virtual environment, then the CMD, the
HEALTHCHECK, `/ready`, one `/translate` and a SIGTERM.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "dockerfile_steps.py"


steps = load_script(SCRIPT)


@pytest.fixture(scope="module")
def instructions() -> list:
    return steps.parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))


def _all(instructions, keyword: str) -> list:
    return [i for i in instructions if i.keyword == keyword]


def _only(instructions, keyword: str):
    found = _all(instructions, keyword)
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def test_base_image_and_cpu_torch(instructions):
    assert _only(instructions, "FROM").arguments == "python:3.11-slim"
    args = {}
    for instruction in _all(instructions, "ARG"):
        args.update(steps.assignments(instruction.arguments))
    assert args["TORCH_VERSION"] == "2.13.0"
    assert args["TORCH_PIP_ARGS"] == "--index-url https://download.pytorch.org/whl/cpu"
    torch_runs = [i for i in _all(instructions, "RUN") if "torch==" in i.arguments]
    assert len(torch_runs) == 1
    assert '"torch==${TORCH_VERSION}" ${TORCH_PIP_ARGS}' in torch_runs[0].arguments
    # torch is installed before the project, so `pip install .` finds its torch requirement met
    runs = _all(instructions, "RUN")
    project = next(i for i in runs if "pip install ." in i.arguments)
    assert runs.index(torch_runs[0]) < runs.index(project)


def test_copies_every_package_and_nothing_else(instructions):
    copied = set()
    for instruction in _all(instructions, "COPY"):
        *sources, _ = instruction.arguments.split()
        copied.update(source.rstrip("/") for source in sources)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = set(pyproject["tool"]["setuptools"]["package-dir"].values())  # the folders installed as carousel.*
    assert copied == packages | {"pyproject.toml", "README.md", "models"}
    ignore = steps.DockerIgnore((ROOT / ".dockerignore").read_text(encoding="utf-8"))
    # the runtime data the installed packages carry (pyproject's package-data) must reach the image
    for path in ["pyproject.toml", "README.md", "data/corpus.py", "data/debian/__init__.py", "service/static/index.html",
                 "service/static/favicon.svg", "training/configs/bible-es-en.yaml", "models/bible-es-en/config.json"]:
        assert not ignore.excluded(path), path
    for path in ["data/corpora/bible/train.tsv", "runs/tiny/model/config.json", ".git/HEAD", "tests/conftest.py",
                 "service/__pycache__/app.cpython-311.pyc", "carousel.egg-info/PKG-INFO", "models/x.partial/config.json"]:
        assert ignore.excluded(path), path


def test_only_instructions_the_script_performs(instructions, tmp_path):
    """Anything the script does not understand fails loudly instead of being skipped."""
    steps.refuse_what_is_not_understood(instructions)  # the Dockerfile itself passes
    complete = "\nEXPOSE 5000\nHEALTHCHECK CMD [\"true\"]\nCMD [\"true\"]\n"
    refused = {
        "FROM python:3.11-slim\nADD x.tar.gz /app/": "ADD is not understood",
        "FROM a\nFROM b": "one FROM",
        "ARG A=1\nFROM python": "one FROM",
        "FROM python\nCOPY --from=builder /x /x": "flags other than",
        "FROM python\nENV A=$B": "variables only in RUN",
        "FROM python\nENV A 1": "ENV NAME=value",
        "FROM python\nRUN --mount=type=secret,id=x true": "only cache mounts",
        "FROM python\nRUN useradd x && rm -rf /tmp/x\nUSER x": "a user is created in a RUN of its own",
        "FROM python\nUSER root": "non-root user an earlier RUN created",
        "FROM python\nRUN useradd x\nUSER y": "non-root user an earlier RUN created",
        "FROM python\nHEALTHCHECK --timeout=1m CMD true": "whole seconds",
        "FROM python\nCMD [\"true\"]": "needs EXPOSE, HEALTHCHECK",
    }
    for text, why in refused.items():
        image = steps.Image(tmp_path)
        with pytest.raises(steps.StepFailed, match=why):
            steps.build(steps.parse_dockerfile(text + (complete if "CMD" not in text else "")), image, {}, None)
        assert not image.venv.exists()  # refused before any step


def test_runs_as_a_created_non_root_user(instructions):
    user = _only(instructions, "USER").arguments
    assert user not in ("root", "0")
    creations = [i for i in _all(instructions, "RUN") if i.arguments.split()[0] in steps.USER_CREATION]
    assert [i.arguments.split()[-1] for i in creations] == [user]
    # the service starts as that user: USER comes before CMD
    assert instructions.index(_only(instructions, "USER")) < instructions.index(_only(instructions, "CMD"))


def test_serves_on_port_5000_with_a_health_check(instructions):
    assert _only(instructions, "CMD").argv() == ["carousel", "serve", "--host", "0.0.0.0", "--port", "5000"]
    assert _only(instructions, "EXPOSE").arguments == "5000"
    assert _only(instructions, "WORKDIR").arguments == "/app"
    assert "CAROUSEL_MODELS_DIR=/app/models" in [i.arguments for i in _all(instructions, "ENV")]
    healthcheck = _only(instructions, "HEALTHCHECK")
    keyword, _, command = healthcheck.arguments.partition(" ")
    assert keyword == "CMD"
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"] and "urllib.request" in argv[2] and "127.0.0.1:5000/health" in argv[2]


def test_parser_and_dockerignore_follow_docker():
    parsed = steps.parse_dockerfile(
        "# comment\nFROM python:3.11-slim\n\nRUN --mount=type=cache,target=/c \\\n    # inner comment\n    echo a \\\n    && echo b\n"
        'ENV A=1 B="two words"\nhealthcheck --interval=30s --timeout=5s CMD ["x", "y"]\nARG C\n'
    )
    assert [i.keyword for i in parsed] == ["FROM", "RUN", "ENV", "HEALTHCHECK", "ARG"]
    assert parsed[1].flags == {"mount": "type=cache,target=/c"} and parsed[1].arguments == "echo a && echo b"
    assert parsed[1].argv() == ["/bin/sh", "-c", "echo a && echo b"]
    assert steps.assignments(parsed[2].arguments) == {"A": "1", "B": "two words"}
    assert steps.assignments(parsed[4].arguments) == {"C": None}
    assert parsed[3].flags == {"interval": "30s", "timeout": "5s"} and parsed[3].arguments == 'CMD ["x", "y"]'
    ignore = steps.DockerIgnore("# comment\n**/*.pyc\ndocs\n!docs/keep.md\n/build\n*.tmp\n**/cache/**\n")
    assert ignore.excluded("a/b/c.pyc") and ignore.excluded("c.pyc") and not ignore.excluded("a/c.py")
    assert ignore.excluded("docs/other.md") and not ignore.excluded("docs/keep.md")
    assert ignore.excluded("build/lib/x.py") and not ignore.excluded("src/build.py") and not ignore.excluded("src/build/x")
    assert ignore.excluded("x.tmp") and not ignore.excluded("a/x.tmp")  # `*` stays within one path component
    assert ignore.excluded("a/cache/b/c") and ignore.excluded("cache/x") and not ignore.excluded("cached/x")
    assert steps.with_port(["serve", "--port", "5000", "http://h:5000/x", "--port=5000"], 5000, 8123) == [
        "serve", "--port", "8123", "http://h:8123/x", "--port=8123"
    ]


@pytest.mark.slow
def test_dockerfile_steps_build_and_serve(tmp_path, tiny_model_dir):
    """Build into a fresh venv (torch from the local CPU wheel), then serve the tiny model as the image would."""
    models = tmp_path / "models"
    shutil.copytree(tiny_model_dir, models / "tiny-es-en")
    staging = tmp_path / "staging"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    try:
        done = subprocess.run(
            # TORCH_PIP_ARGS empty: this machine's pip configuration provides the CPU torch 2.13.0 wheel.
            [sys.executable, str(SCRIPT), "--build-arg", "TORCH_PIP_ARGS=", "--models-from", str(models),
             "--staging", str(staging)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-6000:]
        assert "torch-2.13.0" in output  # pip's "Successfully installed": the ARG reached the RUN
        assert "user 'carousel' is created in the image" in output
        assert "ready after" in output and "es->en:" in output
        assert "All steps passed" in output
        app = staging / "root" / "app"
        assert (app / "models" / "tiny-es-en" / "config.json").is_file()
        assert (app / "service" / "static" / "index.html").is_file()
        # the installed package (not /app's sources) carries the runtime data the service and `carousel train` read
        installed = next((staging / "venv").glob("lib/python3*/site-packages/carousel"))
        assert (installed / "service" / "static" / "index.html").is_file()
        assert (installed / "training" / "configs" / "bible-es-en.yaml").is_file()
        assert not (app / "data" / "corpora").exists() and not (app / "tests").exists()
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # about a gigabyte of virtual environment
    print(f"dockerfile steps: {time.perf_counter() - started:.0f} s")

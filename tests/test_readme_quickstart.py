"""README "Your own model in five commands": the commands, read from the README, run as written on a
2,000-pair corpus (with the two quick-check settings the README shows), from import to a served translation.

The commands run in a scratch directory holding the corpus files and a link to `training/`, so their
relative paths (`data/corpora/mine`, `runs/mine`) land there; the one change made to them is the port,
5000 → a free one (CAROUSEL_PORT for the server, the URL for curl), so the test does not collide with a
server already running.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from carousel.data.corpus import load_corpus_manifest, read_split
from carousel.data.user_corpus import held_out_size

pytestmark = pytest.mark.slow  # the five commands train a model and serve it: minutes

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Your own model in five commands"
PAIRS = 2000
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return text[start:end]


def code_blocks(section: str) -> list[list[str]]:
    """The commands of each ```bash block, one string per line."""
    return [block.strip().splitlines() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def quick_settings(section: str) -> list[str]:
    """The `--set` flags the README offers for a one-minute check of the path."""
    return shlex.split(re.search(r"`(--set training\.max_steps=[^`]+)`", section).group(1))


def carousel(line: str) -> list[str]:
    words = shlex.split(line)
    assert words[0] == "carousel", line
    return [sys.executable, "-m", "carousel", *words[1:]]


def run(command: list[str], cwd: Path, timeout: float = 1500) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{shlex.join(command)}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def short_bible_pairs(count: int) -> list[tuple[str, str]]:
    """Short verses of the committed corpus (fast to train on), in corpus order."""
    rows = read_split(ROOT / "data" / "corpora" / "bible", "train", ["es", "en"])
    return [(es, en) for es, en in rows if len(es.split()) <= 14][:count]


def scratch_directory(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.mkdir()
    (path / "training").symlink_to(ROOT / "training")
    (path / "pairs.tsv").write_text("".join(f"{es}\t{en}\n" for es, en in pairs), encoding="utf-8")
    (path / "pairs.es").write_text("".join(f"{es}\n" for es, _ in pairs), encoding="utf-8")
    (path / "pairs.en").write_text("".join(f"{en}\n" for _, en in pairs), encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_five_commands_of_the_readme_import_train_evaluate_and_serve(tmp_path):
    section = readme_section()
    (prepare_tsv, train, evaluate, serve, curl), (prepare_text,) = code_blocks(section)
    assert [line.split()[:2] for line in (prepare_tsv, train, evaluate, serve)] == [
        ["carousel", "prepare"], ["carousel", "train"], ["carousel", "evaluate"], ["carousel", "serve"],
    ]
    pairs = short_bible_pairs(PAIRS)
    assert len(pairs) == PAIRS
    cpu_before = os.times()

    # The alternative first command, two text files, gives the same corpus as the TSV.
    text_dir = scratch_directory(tmp_path / "text", pairs)
    run(carousel(prepare_text), text_dir)
    work = scratch_directory(tmp_path / "work", pairs)
    run(carousel(prepare_tsv), work)
    corpus = work / "data" / "corpora" / "mine"
    manifest = load_corpus_manifest(corpus)
    rows = {split: info.rows for split, info in manifest.splits.items()}
    kept = sum(rows.values())
    assert kept > 0.9 * PAIRS  # cleaning removes duplicates only, here
    # The default held-out sets scale with the corpus: 5% each, not 1,000 + 1,000 (which would be refused).
    assert rows["valid"] == rows["test"] == held_out_size(kept) == round(kept * 0.05)
    for split in ("train", "valid", "test"):
        assert read_split(text_dir / "data" / "corpora" / "mine", split, ["es", "en"]) == read_split(
            corpus, split, ["es", "en"]
        )

    run([*carousel(train), *quick_settings(section)], work)
    model = work / "runs" / "mine" / "model"
    card = json.loads((model / "card.json").read_text(encoding="utf-8"))
    assert card["languages"] == {"source": "es", "target": "en"}
    assert card["source_normalization"] == "none" and card["subwords"]["vocab_size"] == 4000
    print(f"starter model: {card['parameters']:,} parameters")

    scores = run(carousel(evaluate), work).stdout
    assert re.search(r"BLEU", scores) and "nrefs:1" in scores, scores

    port = free_port()
    server = subprocess.Popen(
        carousel(serve), cwd=work, env=dict(ENV, CAROUSEL_PORT=str(port)), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stdout.read()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.5)
        assert "localhost:5000" in curl
        answer = run(shlex.split(curl.replace("localhost:5000", f"localhost:{port}")), work).stdout
        served = json.loads(answer)["translatedText"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=90)
    # The service answered with this model's translation: the one `carousel translate` gives offline.
    query = re.search(r'q="([^"]+)"', curl).group(1)
    offline = subprocess.run([*carousel("carousel translate --model runs/mine/model")], cwd=work, env=ENV,
                             input=query + "\n", capture_output=True, text=True, timeout=300)
    assert offline.returncode == 0, offline.stderr[-2000:]
    assert served == offline.stdout.rstrip("\n"), (served, offline.stdout)
    cpu = os.times()
    used = (cpu.children_user - cpu_before.children_user) + (cpu.children_system - cpu_before.children_system)
    print(f"CPU seconds of the five commands: {used:.0f}")


def test_the_shipped_models_table_matches_each_model_card():
    """Every directory of models/ has a row whose size, parameters and test scores are its card's."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Shipped models")
    rows = {
        cells[0].strip("` "): cells
        for line in text[start : text.index("\n## ", start + 1)].splitlines()
        if line.startswith("| `models/")
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
    }
    directories = sorted(path for path in (ROOT / "models").iterdir() if (path / "card.json").is_file())
    assert sorted(rows) == [f"models/{path.name}" for path in directories]
    for path in directories:
        card = json.loads((path / "card.json").read_text(encoding="utf-8"))
        _, languages, _, size, parameters, scores, _ = rows[f"models/{path.name}"]
        assert languages == f"{card['languages']['source']} → {card['languages']['target']}"
        mib = sum(file.stat().st_size for file in path.iterdir() if file.is_file()) / 2**20
        assert size == f"{mib:.1f} MiB"
        assert parameters.startswith(f"{card['parameters'] / 1e6:.1f}M")
        test = card["evaluation"]["test"]
        assert scores == f"{test['bleu']:.2f} / {test['chrf']:.2f} / {test['ter']:.2f}"


def test_the_api_reference_in_the_repository_covers_every_route_and_is_the_one_cited(tmp_path):
    from carousel.service.app import create_app
    from carousel.service.settings import ServiceSettings

    reference = (ROOT / "docs" / "API.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^## (?:GET|POST|DELETE) (\S+)", reference, re.M))
    operations = {"/health", "/ready", "/metrics", "/models", "/"}  # listed together under Operations
    routes = set(create_app(ServiceSettings(models_dir=tmp_path)).openapi()["paths"]) | {"/docs"}
    assert routes - operations <= headings, routes - operations - headings
    assert all(f"`GET {path}`" in reference for path in operations)
    for command in ("carousel keys add", "carousel keys revoke", "carousel suggestions export", "Authorization: Bearer",
                    "carousel glossaries add"):
        assert command in reference
    citing = [
        path.relative_to(ROOT)
        for folder in ("service", "carousel", "model", "data", "training", "tests", "docs")
        for path in (ROOT / folder).rglob("*.py")
        if path != Path(__file__).resolve() and "shared/API.md" in path.read_text(encoding="utf-8")
    ] + [name for name in ("README.md",) if "shared/API.md" in (ROOT / name).read_text(encoding="utf-8")]
    assert citing == [], f"cite docs/API.md, the repository's copy: {citing}"

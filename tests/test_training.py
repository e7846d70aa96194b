"""Training on tiny slices: it learns, it resumes exactly after SIGKILL, and it runs under torchrun (DDP)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from tests.conftest import ROOT, TINY_CONFIG
from training.batching import TokenBucketBatcher, Example
from training.config import load_config
from training.state import safe_torch_load


def train_command(run_dir: Path, corpus: Path, *overrides: str) -> list[str]:
    settings = [
        f"run_dir={run_dir}", f"data.corpus={corpus}", "training.threads=1", "training.log_every=5",
        "training.validate_every=15", "training.checkpoint_every=5", f"export.dir={run_dir / 'model'}",
        *overrides,
    ]
    return [sys.executable, "-m", "carousel", "train", "--config", str(TINY_CONFIG),
            *[arg for s in settings for arg in ("--set", s)]]


def run(command: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return safe_torch_load(run_dir / "checkpoints" / "last.pt")["model"]


def test_tiny_run_learns_and_exports(tmp_path, tiny_corpus):
    run_dir = tmp_path / "run"
    result = run(train_command(run_dir, tiny_corpus, "training.max_steps=40"))
    assert result.returncode == 0, result.stderr[-2000:]
    records = metrics(run_dir)
    train = [r for r in records if r["kind"] == "train"]
    assert train[-1]["loss"] < train[0]["loss"] - 0.5
    assert all(r["tokens_per_second"] > 0 for r in train)
    assert [r["step"] for r in records if r["kind"] == "valid"] == [15, 30, 40]
    assert (run_dir / "curves.png").stat().st_size > 1000
    assert (run_dir / "model" / "model.safetensors").exists()
    assert "tgt tok/s" in result.stderr and "ETA" in result.stderr


def test_sigkill_then_resume_finishes_with_the_same_weights_as_an_uninterrupted_run(tmp_path, tiny_corpus):
    steps = "training.max_steps=30"
    straight = tmp_path / "straight"
    assert run(train_command(straight, tiny_corpus, steps)).returncode == 0

    killed = tmp_path / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for kill_after_step in (7, 18):
        process = subprocess.Popen(train_command(killed, tiny_corpus, steps), cwd=ROOT, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            log = killed / "metrics.jsonl"
            if log.exists() and any(r["step"] >= kill_after_step for r in metrics(killed)):
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert safe_torch_load(killed / "checkpoints" / "last.pt")["progress"]["step"] > 0  # never torn
    resumed = run(train_command(killed, tiny_corpus, steps))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stderr

    final = safe_torch_load(killed / "checkpoints" / "last.pt")
    assert final["progress"]["step"] == 30 and final["progress"]["finished"]
    expected = final_weights(straight)
    for name, tensor in final["model"].items():
        assert torch.equal(tensor, expected[name]), name
    steps_logged = [r["step"] for r in metrics(killed) if r["kind"] == "train"]
    assert steps_logged == sorted(set(steps_logged)), "no duplicated records after resuming"


def test_finished_run_is_not_trained_again(tmp_path, tiny_corpus):
    run_dir = tmp_path / "run"
    command = train_command(run_dir, tiny_corpus, "training.max_steps=10")
    assert run(command).returncode == 0
    before = final_weights(run_dir)
    again = run(command)
    assert again.returncode == 0
    after = final_weights(run_dir)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_resuming_with_a_different_model_is_refused(tmp_path, tiny_corpus):
    run_dir = tmp_path / "run"
    assert run(train_command(run_dir, tiny_corpus, "training.max_steps=5")).returncode == 0
    other = run(train_command(run_dir, tiny_corpus, "training.max_steps=10", "model.decoder_hidden=48"))
    assert other.returncode == 2
    assert "different model config" in other.stderr
    assert "Traceback" not in other.stderr


def test_two_processes_with_torchrun_learn_and_write_one_consistent_checkpoint(tmp_path, tiny_corpus):
    run_dir = tmp_path / "ddp"
    command = train_command(run_dir, tiny_corpus, "training.max_steps=20")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"]
    result = run(launcher + command[2:])  # torchrun runs `-m carousel train ...` in each process
    assert result.returncode == 0, result.stderr[-3000:]
    state = safe_torch_load(run_dir / "checkpoints" / "last.pt")
    assert state["progress"]["step"] == 20
    train = [r for r in metrics(run_dir) if r["kind"] == "train"]
    assert [r["step"] for r in train] == [5, 10, 15, 20]  # written once, by rank 0
    assert train[-1]["loss"] < train[0]["loss"]
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("last*")) == ["last.pt"]
    card = json.loads((run_dir / "model" / "card.json").read_text())
    assert card["training"]["processes"] == 2


def test_batches_respect_the_token_budget_and_cover_every_example_once_per_epoch():
    examples = [Example([5] * (n % 17 + 2), [6] * (n % 23 + 1)) for n in range(500)]
    batcher = TokenBucketBatcher(examples, batch_tokens=120, seed=3)
    batches = batcher.epoch_batches(0)
    assert sorted(i for b in batches for i in b) == list(range(500))
    for indices in batches:
        batch = batcher.collate(indices)
        assert batch.tgt_out.numel() <= 120 or len(indices) == 1
    assert batches == batcher.epoch_batches(0)  # rebuilt identically after a restart
    assert batches != batcher.epoch_batches(1)  # reshuffled each epoch


def test_bad_config_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  batch_tokens: many\n")
    result = run([sys.executable, "-m", "carousel", "train", "--config", str(bad)])
    assert result.returncode == 2
    assert "batch_tokens" in result.stderr and "Traceback" not in result.stderr
    assert load_config(TINY_CONFIG, ["training.max_steps=7"]).training.max_steps == 7


def test_a_new_run_can_start_from_an_exported_model(tmp_path, tiny_corpus, tiny_model_dir):
    from model.checkpoint import load_model_dir
    from training.trainer import Trainer, Distributed
    from training.data import load_training_data

    config = load_config(TINY_CONFIG, [f"run_dir={tmp_path / 'run'}", f"data.corpus={tiny_corpus}",
                                       f"training.init_from={tiny_model_dir}"])
    trainer = Trainer(config, load_training_data(config), Distributed())
    trainer.initialise_from(config.training.init_from)
    exported = load_model_dir(tiny_model_dir).model.state_dict()
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, exported[name]), name

"""Training on tiny slices: it learns, it resumes exactly after SIGKILL, a full disk keeps the last
checkpoint, and it runs under torchrun (DDP)."""

from __future__ import annotations

import io
import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sentencepiece as spm
import torch

import carousel.fileio
from carousel.cli import main
from carousel.errors import UserError
from tests.conftest import ROOT, TINY_CONFIG, disk_full
from carousel.training.batching import Example, TokenBucketBatcher
from carousel.training.config import load_config
from carousel.training.state import safe_torch_load

ENV = dict(os.environ, OMP_NUM_THREADS="1")


def train_command(run_dir: Path, corpus: Path, *overrides: str) -> list[str]:
    settings = [
        f"run_dir={run_dir}", f"data.corpus={corpus}", "training.threads=1", "training.log_every=5",
        "training.validate_every=15", "training.checkpoint_every=5", f"export.dir={run_dir / 'model'}",
        *overrides,
    ]
    return [sys.executable, "-m", "carousel", "train", "--config", str(TINY_CONFIG),
            *[arg for s in settings for arg in ("--set", s)]]


def run(command: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return safe_torch_load(run_dir / "checkpoints" / "last.pt")["model"]


@pytest.mark.slow
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
    card = json.loads((run_dir / "model" / "card.json").read_text())
    assert list(card["validation"]["bleu_by_step"]) == ["15", "30", "40"]
    assert "tgt tok/s" in result.stderr and "ETA" in result.stderr


def kill_points(seed: int, first: int, last: int, count: int = 3) -> list[int]:
    """`count` seeded random steps in [first, last), one in each equal slice, so they spread over the run."""
    rng = random.Random(seed)
    edges = [first + (last - first) * i // count for i in range(count + 1)]
    return [rng.randrange(low, high) for low, high in itertools.pairwise(edges)]


def train_until_killed(command: list[str], step: int) -> int:
    """Start training and SIGKILL it as soon as it logs `step` (its own stderr, not a file an earlier
    run left behind); returns the exit status, -SIGKILL when it was killed mid-run."""
    process = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(300, process.kill)  # a run that never logs the step cannot hang the suite
    watchdog.start()
    try:
        for line in process.stderr:
            logged = re.search(r" step (\d+) \|", line)  # "... step 7 | epoch 0.05 | loss ..."
            if logged and int(logged.group(1)) >= step:
                process.send_signal(signal.SIGKILL)
                break
        return process.wait()
    finally:
        watchdog.cancel()
        process.stderr.close()


@pytest.mark.slow
def test_sigkill_then_resume_finishes_with_the_same_weights_as_an_uninterrupted_run(tmp_path, tiny_corpus):
    settings = ("training.max_steps=30", "training.log_every=1")  # every step logged, so a kill can follow any
    straight = tmp_path / "straight"
    assert run(train_command(straight, tiny_corpus, *settings)).returncode == 0

    killed = tmp_path / "killed"
    command = train_command(killed, tiny_corpus, *settings)
    # From step 6 on, the step-5 checkpoint exists, so every kill has a checkpoint to keep or replace.
    points = kill_points(seed=7, first=6, last=30)
    for step in points:
        assert train_until_killed(command, step) == -signal.SIGKILL, f"the run ended before step {step}"
        checkpoint = safe_torch_load(killed / "checkpoints" / "last.pt")  # loads after every kill: never torn
        assert checkpoint["progress"]["step"] >= (step - 1) // 5 * 5  # at least the last one written before the kill
    resumed = run(command)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stderr

    final, uninterrupted = (safe_torch_load(run_dir / "checkpoints" / "last.pt") for run_dir in (killed, straight))
    assert final["progress"]["step"] == uninterrupted["progress"]["step"] == 30 and final["progress"]["finished"]
    for name, tensor in final["model"].items():
        assert torch.equal(tensor, uninterrupted["model"][name]), (name, points)  # bit-identical
    steps_logged = [r["step"] for r in metrics(killed) if r["kind"] == "train"]
    assert steps_logged == list(range(1, 31)), "each step logged once, none lost or repeated by the resumes"
    assert [p.name for p in (killed / "checkpoints").iterdir() if p.name.endswith(".tmp")] == []


class _DiskWithLittleRoom(io.FileIO):
    """A file on a disk with `room` bytes free: the write that crosses it writes what fits, then fails."""

    room = 0

    def write(self, data) -> int:
        if self.tell() + len(data) > self.room:
            super().write(bytes(data)[: max(0, self.room - self.tell())])
            raise disk_full()
        return super().write(data)


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint_and_says_so(
    tmp_path, tiny_corpus, monkeypatch, capsys
):
    run_dir = tmp_path / "run"
    train = [*train_command(run_dir, tiny_corpus, "training.max_steps=10")[3:], "--no-export"]  # `carousel train ...`
    assert main(train) == 0
    last = run_dir / "checkpoints" / "last.pt"
    before = last.read_bytes()

    monkeypatch.setattr(_DiskWithLittleRoom, "room", len(before) // 2)  # the next checkpoint fails halfway
    monkeypatch.setattr(carousel.fileio, "open", _DiskWithLittleRoom, raising=False)
    capsys.readouterr()
    assert main([*train, "--set", "training.max_steps=20"]) == 2
    err = capsys.readouterr().err
    assert f"cannot write checkpoint {last}: No space left on device; the previous checkpoint is unchanged" in err
    assert "Traceback" not in err
    assert last.read_bytes() == before
    assert safe_torch_load(last)["progress"]["step"] == 10
    assert [p.name for p in last.parent.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.slow
def test_finished_run_is_not_trained_again(tmp_path, tiny_corpus):
    run_dir = tmp_path / "run"
    command = train_command(run_dir, tiny_corpus, "training.max_steps=10")
    assert run(command).returncode == 0
    before = final_weights(run_dir)
    again = run(command)
    assert again.returncode == 0
    after = final_weights(run_dir)
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.slow
def test_resuming_with_a_different_model_is_refused(tmp_path, tiny_corpus):
    run_dir = tmp_path / "run"
    assert run(train_command(run_dir, tiny_corpus, "training.max_steps=5")).returncode == 0
    other = run(train_command(run_dir, tiny_corpus, "training.max_steps=10", "model.decoder_hidden=48"))
    assert other.returncode == 2
    assert "different model config" in other.stderr
    assert "Traceback" not in other.stderr


@pytest.mark.slow
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


@pytest.mark.slow
def test_two_nodes_meet_at_a_rendezvous_endpoint_and_train_as_one_job(tmp_path, tiny_corpus):
    """The README's two-node command, with both "nodes" on this machine: two torchrun launchers, one
    process each, that find each other through the c10d rendezvous at one address."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run_dir = tmp_path / "two-nodes"
    command = train_command(run_dir, tiny_corpus, "training.max_steps=10")
    launchers = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
             f"--node_rank={node}", "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}",
             "--rdzv_id=carousel-test", "--local_addr=127.0.0.1", "-m", *command[2:]],
            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for node in (0, 1)
    ]
    outputs = [launcher.communicate(timeout=600)[0] for launcher in launchers]
    assert [launcher.returncode for launcher in launchers] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert safe_torch_load(run_dir / "checkpoints" / "last.pt")["progress"]["step"] == 10
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
    from carousel.model.checkpoint import load_model_dir
    from carousel.training.distributed import Distributed
    from carousel.training.trainer import Trainer
    from carousel.training.examples import load_training_data

    config = load_config(TINY_CONFIG, [f"run_dir={tmp_path / 'run'}", f"data.corpus={tiny_corpus}",
                                       f"training.init_from={tiny_model_dir}"])
    trainer = Trainer(config, load_training_data(config), Distributed())
    trainer.initialise_from(config.training.init_from)
    exported = load_model_dir(tiny_model_dir).model.state_dict()
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, exported[name]), name


def test_init_from_keeps_the_models_vocabulary_on_a_new_corpus(tmp_path, tiny_corpus, tiny_model_dir):
    """Continuing a model on another corpus must read its pieces with its own subword model, not one
    trained on the new corpus (which would number the pieces differently)."""
    from carousel.training.examples import load_training_data

    other = load_config(TINY_CONFIG, [f"data.corpus={tiny_corpus}", "subwords.model_type=bpe"])
    continued = load_config(TINY_CONFIG, [f"data.corpus={tiny_corpus}", "subwords.model_type=bpe",
                                          f"training.init_from={tiny_model_dir}"])
    assert load_training_data(continued).source_spm == tiny_model_dir / "source.model"
    assert load_training_data(other).source_spm != tiny_model_dir / "source.model"
    with pytest.raises(UserError, match="no subword model"):
        load_training_data(load_config(TINY_CONFIG, [f"data.corpus={tiny_corpus}", f"training.init_from={tmp_path}"]))


def test_init_from_accepts_other_dropout_rates_but_refuses_another_architecture(tmp_path, tiny_corpus, tiny_model_dir):
    from carousel.model.checkpoint import load_model_dir
    from carousel.training.examples import load_training_data
    from carousel.training.distributed import Distributed
    from carousel.training.trainer import Trainer

    def trainer_with(*overrides: str) -> Trainer:
        config = load_config(TINY_CONFIG, [f"run_dir={tmp_path / 'run'}", f"data.corpus={tiny_corpus}", *overrides])
        return Trainer(config, load_training_data(config), Distributed())

    more_dropout = trainer_with("model.hidden_dropout=0.35", "model.output_dropout=0.35")
    more_dropout.initialise_from(tiny_model_dir)  # dropout shapes no weight: regularising a fine-tune is allowed
    exported = load_model_dir(tiny_model_dir).model.state_dict()
    assert all(torch.equal(tensor, exported[name]) for name, tensor in more_dropout.model.state_dict().items())
    assert more_dropout.model.decoder.output_dropout.p == 0.35
    wider = trainer_with("model.decoder_hidden=48")
    with pytest.raises(UserError, match="different architecture"):
        wider.initialise_from(tiny_model_dir)
    # the same sizes with another subword model (BPE numbers the pieces differently)
    other_pieces = trainer_with("subwords.model_type=bpe")
    assert other_pieces.model_config.architecture() == more_dropout.model_config.architecture()
    with pytest.raises(UserError, match="subword model differs"):
        other_pieces.initialise_from(tiny_model_dir)
    # the same weights fed text normalised otherwise than they were trained on
    assert load_model_dir(tiny_model_dir).normalizer.name == "spanish_modern"
    normalised = trainer_with("data.normalize_source=none")
    with pytest.raises(UserError, match="normalize_source=spanish_modern"):
        normalised.initialise_from(tiny_model_dir)


def test_init_from_with_another_normalisation_is_refused_before_the_corpus_is_read(tmp_path, tiny_model_dir):
    from carousel.training.trainer import run_training

    missing = tmp_path / "no-such-corpus"  # reading it would fail with another message
    config = load_config(TINY_CONFIG, [f"run_dir={tmp_path / 'run'}", f"data.corpus={missing}",
                                       "data.normalize_source=none", f"training.init_from={tiny_model_dir}"])
    with pytest.raises(UserError, match="normalize_source=spanish_modern"):
        run_training(config)
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def test_extra_sources_and_extra_train_add_training_pairs_and_leave_validation_alone(tmp_path, tiny_corpus):
    from carousel.data.corpus import load_corpus_manifest, read_split, write_corpus
    from carousel.training.examples import load_training_data

    extra = tmp_path / "extra"
    extra_rows = [("x:1", "Un hombre nuevo.", "A new man."), ("x:2", "Dios es amor.", "God is love.")]
    write_corpus(extra, "extra", ["id", "es", "en"], {"es": "es", "en": "en"}, {"train": extra_rows}, {}, [])
    base = [f"data.corpus={tiny_corpus}", "data.src=en", "data.tgt=es", "data.max_train_tokens=1000",
            "data.normalize_source=none"]  # English source: the Spanish normaliser is refused
    plain = load_training_data(load_config(TINY_CONFIG, base))
    more = load_training_data(
        load_config(TINY_CONFIG, [*base, "data.extra_sources=[en_kjv]", f"data.extra_train=[{extra}]"])
    )

    kjv_pairs = read_split(tiny_corpus, "train", ["en_kjv", "es"])
    assert len(more.train) == len(plain.train) + len(kjv_pairs) + len(extra_rows)
    assert more.train[: len(plain.train)] == plain.train  # the corpus's own pairs come first, unchanged
    source_sp = spm.SentencePieceProcessor(model_file=str(more.source_spm))
    added_sources = {tuple(example.src[:-1]) for example in more.train[len(plain.train) :]}
    assert tuple(source_sp.encode(kjv_pairs[0][0])) in added_sources
    assert tuple(source_sp.encode("A new man.")) in added_sources
    assert more.valid == plain.valid and more.valid_sources == plain.valid_sources

    from carousel.training.export import data_sources, extra_training_data

    recorded = extra_training_data(load_config(TINY_CONFIG, [*base, "data.extra_sources=[en_kjv]", f"data.extra_train=[{extra}]"]))
    assert recorded["extra_sources"] == ["en_kjv"]
    manifest = load_corpus_manifest(extra)
    assert recorded["extra_train"] == [{"path": str(extra), "name": "extra", "rows": 2, "sha256": manifest.splits["train"].sha256,
                                        "sources": data_sources(manifest.source)}]
    assert recorded["extra_train"][0]["sources"], "the card names where the extra pairs came from"


def test_an_extra_source_that_repeats_the_target_column_is_a_config_error():
    with pytest.raises(UserError, match="extra_sources"):
        load_config(TINY_CONFIG, ["data.extra_sources=[en]"])
    with pytest.raises(UserError, match="extra_targets"):
        load_config(TINY_CONFIG, ["data.extra_targets={en: KJV}"])
    for tag in ["''", "'K JV'", "' KJV'"]:
        with pytest.raises(UserError, match="tag"):
            load_config(TINY_CONFIG, [f"data.extra_targets={{en_kjv: {tag}}}"])


def test_extra_targets_pair_the_tagged_source_with_the_second_translation(tiny_corpus):
    from carousel.data.corpus import read_split
    from carousel.training.examples import load_training_data
    from carousel.training.export import extra_training_data

    base = [f"data.corpus={tiny_corpus}", "data.src=es", "data.tgt=en", "data.max_train_tokens=1000"]
    plain = load_training_data(load_config(TINY_CONFIG, base))
    config = load_config(TINY_CONFIG, [*base, "data.extra_targets={en_kjv: KJV}"])
    tagged = load_training_data(config)

    kjv_pairs = read_split(tiny_corpus, "train", ["es", "en_kjv"])
    added = tagged.train[len(plain.train) :]
    assert tagged.train[: len(plain.train)] == plain.train and len(added) == len(kjv_pairs)
    source_sp = spm.SentencePieceProcessor(model_file=str(tagged.source_spm))
    target_sp = spm.SentencePieceProcessor(model_file=str(tagged.target_spm))
    tag = source_sp.encode(tagged.normalizer("KJV"))  # normalised like every source
    first_source, first_target = kjv_pairs[0]
    assert added[0].src[: len(tag)] == tag  # the tag leads the source ...
    assert added[0].src[:-1] == source_sp.encode(tagged.normalizer(f"KJV {first_source}"))
    assert added[0].tgt == target_sp.encode(first_target)  # ... and the KJV verse is the target
    assert all(example.src[: len(tag)] != tag for example in plain.train)  # untagged pairs keep the main style
    assert tagged.valid == plain.valid and tagged.valid_sources == plain.valid_sources
    assert extra_training_data(config)["extra_targets"] == {"en_kjv": "KJV"}


@pytest.mark.slow
def test_averaging_switched_on_when_resuming_exports_the_better_of_average_and_best_by_validation(
    tmp_path, tiny_corpus
):
    from safetensors.torch import load_model

    from carousel.model.checkpoint import load_model_dir
    from carousel.training.export import average_weights

    run_dir = tmp_path / "run"
    assert run(train_command(run_dir, tiny_corpus, "training.max_steps=30")).returncode == 0
    resumed = run(train_command(run_dir, tiny_corpus, "training.max_steps=60", "training.average_last=4"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    # Validations at 15 and 30 ran without averaging, so only 45 and 60 have snapshots.
    checkpoints = run_dir / "checkpoints"
    snapshots = sorted(checkpoints.glob("val-*.safetensors"))
    assert [p.name for p in snapshots] == ["val-00000045.safetensors", "val-00000060.safetensors"]
    card = json.loads((run_dir / "model" / "card.json").read_text())
    candidates = card["validation"]["bleu_by_candidate"]
    average_name, best_name = candidates
    assert average_name == "average of the last 2 validations"
    best_step = int(re.fullmatch(r"best validation BLEU \(step (\d+)\)", best_name)[1])
    valid_bleu = {r["step"]: r["bleu"] for r in metrics(run_dir) if r["kind"] == "valid"}
    assert valid_bleu[best_step] == max(valid_bleu.values())
    assert candidates[card["training"]["exported_weights"]] == max(candidates.values())  # scores are rounded

    loaded = load_model_dir(run_dir / "model")
    expected = type(loaded.model)(loaded.config)
    if card["training"]["exported_weights"] == average_name:
        average_weights(expected, snapshots)
    else:
        load_model(expected, str(checkpoints / f"best-{best_step:08d}.safetensors"))
    for name, tensor in loaded.model.state_dict().items():
        torch.testing.assert_close(tensor, expected.state_dict()[name].half().float(), rtol=0, atol=0, msg=name)


def test_the_spanish_normaliser_is_refused_for_a_source_that_is_not_spanish(tmp_path):
    from carousel.data.corpus import write_corpus
    from carousel.training.examples import load_training_data

    corpus = tmp_path / "fr-en"
    rows = [(f"r{i}", f"À la maison {i}.", f"At home {i}.") for i in range(30)]
    write_corpus(corpus, "fr-en", ["id", "fr", "en"], {"fr": "fr", "en": "en"},
                 {"train": rows, "valid": rows[:3], "test": rows[:3]}, {}, [])
    base = [f"data.corpus={corpus}", "data.src=fr", "data.tgt=en", "subwords.vocab_size=30"]
    with pytest.raises(UserError, match="spanish_modern .* 'fr' .* in 'fr'") as refused:
        load_training_data(load_config(TINY_CONFIG, base))  # tiny.yaml asks for spanish_modern
    assert "--set data.normalize_source=none" in str(refused.value)
    assert not (corpus / "subwords").exists()  # refused before any subword model is trained
    data = load_training_data(load_config(TINY_CONFIG, [*base, "data.normalize_source=none"]))
    assert data.normalizer("À la maison.") == "À la maison."
    # Asked for explicitly: a column the corpus mislabels, declared Spanish by data.src_lang.
    load_training_data(load_config(TINY_CONFIG, [*base, "data.src_lang=es"]))
    # The CLI refuses it the same way, as a one-line error.
    run_dir = tmp_path / "run"
    result = run(train_command(run_dir, corpus, "data.src=fr", "data.tgt=en", "subwords.vocab_size=30"))
    assert result.returncode == 2 and "data.normalize_source=none" in result.stderr
    assert not (run_dir / "checkpoints" / "last.pt").exists()

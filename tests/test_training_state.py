"""Training state that cannot go silently wrong: weight files named by last.pt always exist, a damaged
or incomplete last.pt is refused, a full disk while keeping weights is a clear error, and a run killed
before its first checkpoint starts its metrics afresh."""

from __future__ import annotations

import errno
import json
import os
import zipfile

import torch

import carousel.training.trainer as trainer_module
from carousel.cli import main
from carousel.training.state import safe_torch_load
from tests.test_training import train_command


def _train(run_dir, corpus, *overrides):
    return [*train_command(run_dir, corpus, *overrides)[3:]]  # `carousel train ...` without the interpreter


def _named_weights(state: dict, average_last: int) -> set[str]:
    progress = state["progress"]
    names = {f"best-{int(step):08d}.safetensors" for _, step in progress["best"]}
    if average_last:
        names |= {f"val-{step:08d}.safetensors" for step in progress["validations"]}
    return names


def test_last_pt_only_ever_names_weight_files_that_exist(tmp_path, tiny_corpus, monkeypatch):
    """Checked at every checkpoint write and at every deletion: the state on disk is consistent at every instant."""
    run_dir = tmp_path / "run"
    checkpoints = run_dir / "checkpoints"
    saved: list[dict] = []
    original_save, original_unlink = trainer_module.atomic_torch_save, os.unlink

    def checked_save(state, path):
        missing = [n for n in _named_weights(state, 2) if not (checkpoints / n).exists()]
        assert not missing, f"last.pt would name missing files {missing}"
        original_save(state, path)
        saved.append(state)

    def checked_unlink(path, *args, **kwargs):
        name = os.path.basename(path)
        if saved and name.endswith(".safetensors") and not name.startswith("."):
            assert name not in _named_weights(saved[-1], 2), f"{name} deleted while last.pt names it"
        return original_unlink(path, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "atomic_torch_save", checked_save)
    monkeypatch.setattr(os, "unlink", checked_unlink)
    overrides = ["training.max_steps=40", "training.validate_every=5", "training.checkpoint_every=100",
                 "training.keep_best=1", "training.average_last=2"]
    assert main([*_train(run_dir, tiny_corpus, *overrides), "--no-export"]) == 0
    assert len(saved) >= 8  # one checkpoint per validation, not only every checkpoint_every steps
    on_disk = {p.name for p in checkpoints.glob("*.safetensors")}
    assert on_disk == _named_weights(safe_torch_load(checkpoints / "last.pt"), 2)


def test_a_resumed_run_with_an_earlier_stop_still_exports(tmp_path, tiny_corpus):
    """The reported failure: keep_best pruning, a kill, then a resume with an earlier max_steps."""
    run_dir = tmp_path / "run"
    overrides = ["training.validate_every=25", "training.checkpoint_every=100", "training.keep_best=1"]
    assert main([*_train(run_dir, tiny_corpus, "training.max_steps=60", *overrides), "--no-export"]) == 0
    assert main(_train(run_dir, tiny_corpus, "training.max_steps=50", *overrides)) == 0
    assert (run_dir / "model" / "model.safetensors").is_file()


def _flip_a_byte_of_the_largest_tensor(path) -> None:
    with zipfile.ZipFile(path) as archive:
        member = max(archive.infolist(), key=lambda info: info.file_size)
        with open(path, "rb") as handle:  # local header: 30 bytes + name + extra, then the stored data
            handle.seek(member.header_offset + 26)
            name_length, extra_length = (int.from_bytes(handle.read(2), "little") for _ in range(2))
        offset = member.header_offset + 30 + name_length + extra_length + member.file_size // 2
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_tensor_data_is_refused(tmp_path, tiny_corpus, capsys):
    run_dir = tmp_path / "run"
    assert main([*_train(run_dir, tiny_corpus, "training.max_steps=10"), "--no-export"]) == 0
    last = run_dir / "checkpoints" / "last.pt"
    _flip_a_byte_of_the_largest_tensor(last)
    safe_torch_load(last)  # still loads: only the checksum can tell
    capsys.readouterr()
    assert main([*_train(run_dir, tiny_corpus, "training.max_steps=20"), "--no-export"]) == 2
    err = capsys.readouterr().err
    assert "is damaged" in err and "Traceback" not in err


def test_a_checkpoint_without_its_optimizer_is_refused(tmp_path, tiny_corpus, capsys):
    run_dir = tmp_path / "run"
    assert main([*_train(run_dir, tiny_corpus, "training.max_steps=10"), "--no-export"]) == 0
    last = run_dir / "checkpoints" / "last.pt"
    state = safe_torch_load(last)
    del state["optimizer"]
    torch.save(state, last)
    capsys.readouterr()
    assert main([*_train(run_dir, tiny_corpus, "training.max_steps=20"), "--no-export"]) == 2
    assert "incomplete: no optimizer" in capsys.readouterr().err


def test_a_full_disk_while_keeping_best_weights_is_a_clear_error(tmp_path, tiny_corpus, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    assert main([*_train(run_dir, tiny_corpus, "training.max_steps=10"), "--no-export"]) == 0
    before = (run_dir / "checkpoints" / "last.pt").read_bytes()

    def no_space(model, filename, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)

    monkeypatch.setattr(trainer_module, "save_model", no_space)
    capsys.readouterr()
    assert main([*_train(run_dir, tiny_corpus, "training.max_steps=20"), "--no-export"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    assert (run_dir / "checkpoints" / "last.pt").read_bytes() == before
    assert not list((run_dir / "checkpoints").glob(".*.tmp"))


def test_a_run_killed_before_its_first_checkpoint_does_not_repeat_steps(tmp_path, tiny_corpus):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stale = [{"kind": "train", "step": step, "loss": 9.0} for step in (5, 10)]  # a killed run's log, no last.pt
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in stale))
    assert main([*_train(run_dir, tiny_corpus, "training.max_steps=10"), "--no-export"]) == 0
    steps = [r["step"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
             if r["kind"] == "train"]
    assert steps == sorted(set(steps)) and 9.0 not in [r.get("loss") for r in stale if r["step"] in steps][:0]
    assert all(r["loss"] != 9.0 for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()))

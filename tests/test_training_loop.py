"""The training loop's decisions: the learning-rate schedule, early stopping, which checkpoints are kept,
and the skipped update on a non-finite gradient.

Loop tests run the real Trainer on a slice of the tiny corpus with validation replaced by a script of
BLEU scores, so each decision is checked against scores chosen to exercise it.
"""

from __future__ import annotations

import logging
import math

import pytest
import torch
from safetensors.torch import load_file

import carousel.training.trainer as trainer_module
from carousel.training.config import OptimConfig
from carousel.training.examples import load_training_data
from carousel.training.export import averaged_snapshots, export_candidates
from carousel.training.schedule import LearningRateSchedule
from carousel.training.state import safe_torch_load
from carousel.training.distributed import Distributed
from carousel.training.trainer import Trainer
from carousel.training.validation import ValidationResult
from tests.conftest import tiny_train_config

# -- the learning-rate schedule ------------------------------------------------------------------------


def schedule(**fields) -> LearningRateSchedule:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=123.0)
    return LearningRateSchedule(optimizer, OptimConfig(**fields))


@pytest.mark.parametrize("kind", ["plateau", "inverse_sqrt", "constant"])
def test_warmup_ramps_linearly_to_the_peak_and_sets_the_optimizer(kind):
    lr = schedule(schedule=kind, learning_rate=2e-3, warmup_steps=40, min_learning_rate=1e-3)
    for step in range(1, 41):
        assert lr.learning_rate(step) == pytest.approx(2e-3 * step / 40, rel=1e-12)  # no floor while warming up
        assert lr.step(step) == lr.learning_rate(step)
        assert lr.optimizer.param_groups[0]["lr"] == lr.learning_rate(step)
    assert lr.learning_rate(40) == pytest.approx(2e-3)
    assert lr.learning_rate(41) <= 2e-3  # the peak is at the end of warmup


def test_without_warmup_the_first_step_has_the_peak_rate():
    for kind in ("plateau", "inverse_sqrt", "constant"):
        assert schedule(schedule=kind, learning_rate=1e-3, warmup_steps=0).learning_rate(1) == pytest.approx(1e-3)


def test_plateau_halves_after_patience_validations_without_a_gain_and_stops_at_the_minimum():
    lr = schedule(schedule="plateau", learning_rate=1e-3, warmup_steps=10, plateau_patience=2,
                  plateau_factor=0.5, min_learning_rate=1e-4)
    step = 500  # well after warmup: the rate only depends on the validations seen
    lr.observe_validation(20.0)
    lr.observe_validation(19.0)
    lr.observe_validation(20.0)  # equal to the best is no gain
    assert lr.learning_rate(step) == pytest.approx(1e-3)  # `plateau_patience` bad validations are tolerated
    lr.observe_validation(18.0)  # one more: decay
    assert lr.learning_rate(step) == pytest.approx(5e-4)

    lr.observe_validation(19.0)
    lr.observe_validation(21.0)  # a gain resets the count ...
    lr.observe_validation(20.0)
    lr.observe_validation(20.0)
    assert lr.learning_rate(step) == pytest.approx(5e-4)  # ... and keeps the decayed rate
    lr.observe_validation(20.0)
    assert lr.learning_rate(step) == pytest.approx(2.5e-4)

    rates = []
    for _ in range(30):  # a long plateau: halving on and on, but never below the minimum
        lr.observe_validation(0.0)
        rates.append(lr.learning_rate(step))
    assert rates == sorted(rates, reverse=True)
    assert min(rates) == pytest.approx(1e-4) and rates[-1] == pytest.approx(1e-4)
    assert 1.25e-4 in [pytest.approx(r) for r in rates]  # the last halving above the floor happened


@pytest.mark.parametrize("kind", ["inverse_sqrt", "constant"])
def test_validations_do_not_change_the_other_schedules(kind):
    lr = schedule(schedule=kind, learning_rate=1e-3, warmup_steps=10, plateau_patience=0)
    before = [lr.learning_rate(step) for step in (5, 10, 11, 400)]
    for score in (10.0, 5.0, 4.0, 3.0, 2.0):
        lr.observe_validation(score)
    assert [lr.learning_rate(step) for step in (5, 10, 11, 400)] == before


def test_inverse_sqrt_decays_as_one_over_the_square_root_of_the_step_after_warmup():
    lr = schedule(schedule="inverse_sqrt", learning_rate=1e-3, warmup_steps=100)
    for step in (101, 150, 400, 1600, 10_000):
        assert lr.learning_rate(step) * math.sqrt(step) == pytest.approx(1e-3 * math.sqrt(100), rel=1e-12)
    assert lr.learning_rate(400) == pytest.approx(lr.learning_rate(100) / 2)  # 4× the steps, half the rate
    assert lr.learning_rate(1600) == pytest.approx(lr.learning_rate(100) / 4)


def test_constant_stays_at_the_peak_after_warmup():
    lr = schedule(schedule="constant", learning_rate=3e-4, warmup_steps=20)
    assert [lr.learning_rate(step) for step in (20, 21, 1000, 10**6)] == pytest.approx([3e-4] * 4)


def test_a_schedule_restored_from_its_state_resumes_at_the_same_rate_and_decays_in_step(tmp_path):
    config = dict(schedule="plateau", learning_rate=1e-3, warmup_steps=10, plateau_patience=2, min_learning_rate=1e-6)
    original = schedule(**config)
    for score in (10.0, 12.0, 11.0, 11.0, 11.0, 12.0):  # one decay, then one bad validation of the next round
        original.observe_validation(score)
    assert original.learning_rate(100) == pytest.approx(5e-4)
    torch.save({"schedule": original.state_dict()}, tmp_path / "state.pt")  # as in last.pt
    restored = schedule(**config)
    restored.load_state_dict(safe_torch_load(tmp_path / "state.pt")["schedule"])
    assert restored.state_dict() == original.state_dict()
    for score in (11.0, 11.0, 13.0, 1.0, 1.0, 1.0):  # both see the same future
        original.observe_validation(score)
        restored.observe_validation(score)
        assert restored.learning_rate(100) == original.learning_rate(100)
    assert restored.learning_rate(100) == pytest.approx(1.25e-4)  # decayed twice more, in step

    fresh = schedule(**config)  # a fresh schedule's -inf best survives the weights-only round trip
    torch.save(fresh.state_dict(), tmp_path / "fresh.pt")
    assert safe_torch_load(tmp_path / "fresh.pt")["best_score"] == -math.inf


# -- the loop, with scripted validation scores ------------------------------------------------------------


class ScriptedValidation:
    """Stands in for `validate`: returns the next scripted BLEU and records, at each call, the step, a copy
    of the weights and the checkpoint files then on disk (what the previous validations left)."""

    def __init__(self, bleus: list[float]):
        self.bleus = list(bleus)
        self.trainer: Trainer | None = None
        self.steps: list[int] = []
        self.weights: dict[int, dict[str, torch.Tensor]] = {}
        self.files_before: list[list[str]] = []

    def __call__(self, model, data, beam_size, batch_tokens) -> ValidationResult:
        step = self.trainer.progress.step
        self.files_before.append(sorted(p.name for p in self.trainer.checkpoint_dir.glob("*.safetensors")))
        self.steps.append(step)
        self.weights[step] = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
        bleu = self.bleus[len(self.steps) - 1]
        return ValidationResult(loss=1.0, bleu=bleu, chrf=bleu, hypotheses=["x"])


@pytest.fixture(scope="module")
def small_data(tiny_corpus, tmp_path_factory):
    """The tiny corpus's first 200 training pairs, encoded once for the module."""
    config = tiny_train_config(tmp_path_factory.mktemp("unused"), tiny_corpus, "data.max_train_examples=200")
    return load_training_data(config)


def scripted_trainer(tmp_path, tiny_corpus, small_data, monkeypatch, bleus, *overrides) -> tuple[Trainer, ScriptedValidation]:
    config = tiny_train_config(
        tmp_path / "run", tiny_corpus, "data.max_train_examples=200", "training.log_every=1000",
        "training.checkpoint_every=1000", "training.validate_every=1", *overrides,
    )
    (config.run_dir / "checkpoints").mkdir(parents=True)
    trainer = Trainer(config, small_data, Distributed())
    validation = ScriptedValidation(bleus)
    validation.trainer = trainer
    monkeypatch.setattr(trainer_module, "validate", validation)
    monkeypatch.setattr(trainer_module, "plot_curves", lambda *args, **kwargs: None)  # not under test; slow
    return trainer, validation


@pytest.mark.slow
def test_training_stops_after_early_stopping_patience_validations_without_a_gain(
    tmp_path, tiny_corpus, small_data, monkeypatch
):
    #        best  bad  bad  best  bad(=)  bad  bad -> stop;   never reached
    bleus = [10.0, 9.0, 8.0, 11.0, 11.0, 10.0, 7.0] + [50.0] * 10
    trainer, validation = scripted_trainer(
        tmp_path, tiny_corpus, small_data, monkeypatch, bleus, "training.early_stopping_patience=3",
        "training.max_steps=100", "training.validate_every=2",
    )
    progress = trainer.train()
    assert validation.steps == [2, 4, 6, 8, 10, 12, 14]  # two bad ones before the gain did not count on
    assert progress.step == 14 and progress.bad_validations == 3 and progress.finished
    assert progress.best[0] == [11.0, 8]
    assert safe_torch_load(trainer.checkpoint_dir / "last.pt")["progress"]["step"] == 14


@pytest.mark.slow
def test_without_early_stopping_a_plateau_trains_to_the_budget(tmp_path, tiny_corpus, small_data, monkeypatch):
    trainer, validation = scripted_trainer(
        tmp_path, tiny_corpus, small_data, monkeypatch, [5.0] * 10, "training.early_stopping_patience=0",
        "training.max_steps=9", "training.validate_every=2",
    )
    progress = trainer.train()
    assert validation.steps == [2, 4, 6, 8, 9]  # and a last validation at the end
    assert progress.step == 9 and progress.bad_validations == 4


def test_validation_plateaus_decay_the_optimizers_learning_rate(tmp_path, tiny_corpus, small_data, monkeypatch):
    trainer, _ = scripted_trainer(
        tmp_path, tiny_corpus, small_data, monkeypatch, [5.0, 6.0, 4.0, 4.0, 4.0, 4.0], "training.max_steps=6",
        "optim.schedule=plateau", "optim.warmup_steps=0", "optim.plateau_patience=1", "optim.min_learning_rate=0",
    )
    rates = []
    train_step = trainer._train_step

    def recording_the_rate(batch):
        rates.append(trainer.optimizer.param_groups[0]["lr"])  # what this step's update uses
        return train_step(batch)

    monkeypatch.setattr(trainer, "_train_step", recording_the_rate)
    trainer.train()
    peak = trainer.config.optim.learning_rate
    # Validations after steps 3 and 4 are bad; the second exceeds patience 1: step 5 trains at half the rate.
    assert rates == pytest.approx([peak] * 4 + [peak / 2, peak / 2])


def best_by_hand(bleus: list[float], keep: int) -> list[list[float]]:
    ranked = sorted(([bleu, step] for step, bleu in enumerate(bleus, start=1)), key=lambda b: (-b[0], b[1]))
    return ranked[:keep]


def test_keep_best_keeps_exactly_the_weights_of_the_best_validations_best_first(
    tmp_path, tiny_corpus, small_data, monkeypatch
):
    bleus = [5.0, 9.0, 7.0, 10.0, 3.0, 8.0, 9.5]
    trainer, validation = scripted_trainer(
        tmp_path, tiny_corpus, small_data, monkeypatch, bleus, "training.keep_best=2", "training.average_last=0",
        f"training.max_steps={len(bleus)}",
    )
    progress = trainer.train()
    assert validation.steps == [1, 2, 3, 4, 5, 6, 7]
    # After every validation, not only at the end: exactly the files of the best two so far.
    for seen in range(1, len(bleus)):
        kept = sorted(f"best-{int(step):08d}.safetensors" for _, step in best_by_hand(bleus[:seen], 2))
        assert validation.files_before[seen] == kept, f"after validation {seen}"
    assert progress.best == [[10.0, 4], [9.5, 7]]  # best first
    assert sorted(p.name for p in trainer.checkpoint_dir.glob("*.safetensors")) == [
        "best-00000004.safetensors", "best-00000007.safetensors",
    ]
    for step in (4, 7):  # each file holds the weights validated at its step
        saved = load_file(str(trainer.checkpoint_dir / f"best-{step:08d}.safetensors"))
        for name, tensor in saved.items():
            assert torch.equal(tensor, validation.weights[step][name]), (step, name)
    assert not torch.equal(validation.weights[4]["decoder.attentional_layer.weight"],
                           validation.weights[7]["decoder.attentional_layer.weight"])  # training moved on
    assert "best validation BLEU (step 4)" in export_candidates(trainer)


def test_average_last_keeps_only_the_last_n_validation_snapshots(tmp_path, tiny_corpus, small_data, monkeypatch):
    bleus = [9.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    trainer, validation = scripted_trainer(
        tmp_path, tiny_corpus, small_data, monkeypatch, bleus, "training.keep_best=1", "training.average_last=3",
        f"training.max_steps={len(bleus)}",
    )
    progress = trainer.train()
    names = sorted(p.name for p in trainer.checkpoint_dir.glob("*.safetensors"))
    assert names == ["best-00000001.safetensors", "val-00000004.safetensors", "val-00000005.safetensors",
                     "val-00000006.safetensors"]
    assert progress.validations == [4, 5, 6] and progress.best == [[9.0, 1]]
    assert [p.name for p in averaged_snapshots(trainer)] == names[1:]
    for step in (4, 5, 6):
        saved = load_file(str(trainer.checkpoint_dir / f"val-{step:08d}.safetensors"))
        assert all(torch.equal(tensor, validation.weights[step][name]) for name, tensor in saved.items()), step
    assert [n for n in validation.files_before[3] if n.startswith("val-")] == [
        "val-00000001.safetensors", "val-00000002.safetensors", "val-00000003.safetensors",
    ]


# -- a non-finite gradient skips its update -------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_a_non_finite_gradient_skips_the_update_warns_and_training_goes_on(
    tmp_path, tiny_corpus, small_data, monkeypatch, caplog, bad
):
    trainer, _ = scripted_trainer(tmp_path, tiny_corpus, small_data, monkeypatch, [1.0] * 5, "training.max_steps=4",
                                  "training.validate_every=1000")
    poisoned = trainer.model.decoder.attentional_layer.weight
    snapshots, adam_steps = [], []

    def weights():
        return {name: tensor.detach().clone() for name, tensor in trainer.model.state_dict().items()}

    train_step = trainer._train_step

    def step_with_a_bad_gradient_at_step_3(batch):
        hook = None
        if trainer.progress.step + 1 == 3:  # one parameter's gradient turns non-finite; the loss stays finite
            hook = poisoned.register_hook(lambda grad: torch.full_like(grad, bad))
        try:
            loss = train_step(batch)
        finally:
            if hook is not None:
                hook.remove()
        snapshots.append(weights())
        adam_steps.append(int(trainer.optimizer.state[poisoned]["step"]))
        return loss

    monkeypatch.setattr(trainer, "_train_step", step_with_a_bad_gradient_at_step_3)
    before = weights()
    with caplog.at_level(logging.WARNING, logger="carousel.train"):
        progress = trainer.train()

    assert progress.step == 4 and progress.finished
    assert adam_steps == [1, 2, 2, 3]  # Adam did not count the skipped step
    changed = lambda a, b: [name for name in a if not torch.equal(a[name], b[name])]  # noqa: E731
    assert changed(before, snapshots[0]) and changed(snapshots[0], snapshots[1])
    assert changed(snapshots[1], snapshots[2]) == []  # step 3: no weight moved
    assert changed(snapshots[2], snapshots[3])  # step 4 trains again ...
    assert all(torch.isfinite(t).all() for t in snapshots[3].values())  # ... from finite weights
    warnings = [r.getMessage() for r in caplog.records if r.name == "carousel.train" and r.levelno >= logging.WARNING]
    assert warnings == ["step 3: non-finite gradient norm, update skipped"]


@pytest.mark.parametrize("clip_norm", [0.5, 2.0])
def test_the_trainer_clips_the_gradient_norm_before_every_update(tmp_path, tiny_corpus, small_data, monkeypatch, clip_norm):
    """An exploding gradient (every gradient scaled by 10^4) reaches the optimizer with the total norm
    `optim.clip_norm` (Pascanu et al. 2013): the trainer's own clipping, measured at the update."""
    trainer, _ = scripted_trainer(tmp_path, tiny_corpus, small_data, monkeypatch, [1.0] * 5, "training.max_steps=3",
                                  "training.validate_every=1000", f"optim.clip_norm={clip_norm}")
    for parameter in trainer.model.parameters():
        parameter.register_hook(lambda grad: grad * 1e4)
    norms_at_update = []
    step = trainer.optimizer.step

    def step_and_measure(*args, **kwargs):
        grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
        norms_at_update.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))
        return step(*args, **kwargs)

    monkeypatch.setattr(trainer.optimizer, "step", step_and_measure)
    trainer.train()
    assert len(norms_at_update) == 3
    assert all(norm == pytest.approx(clip_norm, rel=1e-4) for norm in norms_at_update), norms_at_update

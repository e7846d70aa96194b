"""The training loop: token batches, label-smoothed cross-entropy, Adam, clipping, validation,
resumable checkpoints, metrics, and one or more processes (torchrun / DistributedDataParallel).

Run directory layout:
    config.yaml            the resolved config of this run
    checkpoints/last.pt    full resumable state (weights_only-loadable)
    checkpoints/best-*.safetensors, val-*.safetensors   weights of the best / latest validations
    metrics.jsonl, curves.png, valid-hyps.txt           what happened, for people and plots
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml
from safetensors.torch import save_model

from carousel.errors import UserError
from carousel.fileio import sha256_file
from carousel.model.checkpoint import load_model_dir
from carousel.model.config import PAD_ID
from carousel.model.precision import bf16_supported
from carousel.model.seq2seq import Seq2Seq
from carousel.training.batching import TokenBucketBatcher
from carousel.training.config import TrainConfig
from carousel.training.examples import TrainingData, load_training_data
from carousel.training.metrics import MetricsLog, plot_curves
from carousel.training.schedule import LearningRateSchedule
from carousel.training.distributed import Distributed, agree, setup_process
from carousel.training.state import (
    CheckpointWriteError, Progress, atomic_torch_save, capture_rng_state, load_checkpoint, restore_rng_state,
    weight_files, with_digest,
)
from carousel.training.validation import validate

log = logging.getLogger("carousel.train")
LAST_CHECKPOINT = "last.pt"  # the full resumable state, in the run's checkpoints/


class Trainer:
    def __init__(self, config: TrainConfig, data: TrainingData, dist_info: Distributed):
        self.config = config
        self.data = data
        self.dist = dist_info
        self.run_dir = Path(config.run_dir)
        self.checkpoint_dir = self.run_dir / "checkpoints"
        self.model_config = config.model.model_copy(
            update={"src_vocab_size": data.src_vocab_size, "tgt_vocab_size": data.tgt_vocab_size}
        )
        torch.manual_seed(config.training.seed)
        self.device = dist_info.device
        self.model = Seq2Seq(self.model_config).to(self.device)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(),
            lr=config.optim.learning_rate,
            betas=config.optim.betas,
            weight_decay=config.optim.weight_decay,
        )
        self.schedule = LearningRateSchedule(self.optimizer, config.optim)
        self.batcher = TokenBucketBatcher(data.train, config.training.batch_tokens, config.training.seed)
        self.progress = Progress()
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl")
        self.network = self.model
        if dist_info.world_size > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.network = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)

    # ----- the loop -----------------------------------------------------------------------------
    def train(self) -> Progress:
        cfg = self.config.training
        self.model.train()
        started = time.monotonic() - self.progress.elapsed_seconds
        window = _Window()
        while not self._should_stop():
            batches = self.epoch_share(self.progress.epoch)
            for index in range(self.progress.batch_in_epoch, len(batches)):
                batch = self.batcher.collate(batches[index]).to(self.device)
                lr = self.schedule.step(self.progress.step + 1)
                loss = self._train_step(batch)
                self.progress.step += 1
                self.progress.batch_in_epoch = index + 1
                self.progress.target_tokens += batch.target_tokens * self.dist.world_size
                self.progress.elapsed_seconds = time.monotonic() - started
                window.add(loss, batch.target_tokens * self.dist.world_size)
                step = self.progress.step
                if step % cfg.log_every == 0:
                    self._log_training(window, lr, epoch_fraction=(index + 1) / len(batches))
                    window = _Window()
                if step % cfg.validate_every == 0:
                    self._validate_and_keep()
                if step % cfg.checkpoint_every == 0:
                    self._save_checkpoint()
                if self._should_stop():
                    break
            else:
                self.progress.epoch += 1
                self.progress.batch_in_epoch = 0
        if not self.progress.validations or self.progress.validations[-1] != self.progress.step:
            self._validate_and_keep()
        self.progress.finished = True
        self._save_checkpoint()
        return self.progress

    def _train_step(self, batch) -> float:
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.training.precision == "bf16")
        with autocast:
            logits = self.network(batch.src, batch.src_lengths, batch.tgt_in)
        loss_sum = F.cross_entropy(
            logits.float().flatten(0, 1),
            batch.tgt_out.flatten(),
            ignore_index=PAD_ID,
            label_smoothing=self.config.optim.label_smoothing,
            reduction="sum",
        )
        loss = loss_sum / batch.target_tokens
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.clip_norm)
        if torch.isfinite(grad_norm):
            self.optimizer.step()
        else:
            log.warning("step %d: non-finite gradient norm, update skipped", self.progress.step + 1)
        return loss.item()

    def fractional_epoch(self) -> float:
        """Epochs done, counting the current epoch's finished share of batches."""
        p = self.progress
        return p.epoch + p.batch_in_epoch / max(1, len(self.epoch_share(p.epoch)))

    def epoch_share(self, epoch: int) -> list[list[int]]:
        """This process's batches of an epoch; every process gets the same count (DDP steps in lockstep)."""
        batches = self.batcher.epoch_batches(epoch)
        usable = len(batches) - len(batches) % self.dist.world_size
        return batches[self.dist.rank : usable : self.dist.world_size]

    def _should_stop(self) -> bool:
        cfg, p = self.config.training, self.progress
        # Budgets only (not `finished`), so a finished run resumed with a larger budget trains on.
        stop = (
            (cfg.max_steps and p.step >= cfg.max_steps)
            or (cfg.max_epochs and p.epoch >= cfg.max_epochs)
            or (cfg.max_minutes and p.elapsed_seconds >= cfg.max_minutes * 60)
            or (cfg.early_stopping_patience and p.bad_validations >= cfg.early_stopping_patience)
        )
        return bool(agree(stop, self.dist))

    # ----- logging ------------------------------------------------------------------------------
    def _log_training(self, window: "_Window", lr: float, epoch_fraction: float) -> None:
        p = self.progress
        record = {
            "kind": "train",
            "step": p.step,
            "epoch": round(p.epoch + epoch_fraction, 3),
            "loss": round(window.mean_loss, 4),
            "tokens_per_second": round(window.tokens_per_second),
            "learning_rate": lr,
            "elapsed_seconds": round(p.elapsed_seconds, 1),
        }
        if self.dist.is_main:
            self.metrics.write(record)
            eta = self._eta_seconds(window.seconds_per_step)
            log.info(
                "step %d | epoch %.2f | loss %.3f | %s tgt tok/s | lr %.2e | elapsed %s%s",
                p.step, record["epoch"], window.mean_loss, f"{window.tokens_per_second:,.0f}", lr,
                _clock(p.elapsed_seconds), f" | ETA {_clock(eta)}" if eta is not None else "",
            )

    def _eta_seconds(self, seconds_per_step: float) -> float | None:
        cfg, p = self.config.training, self.progress
        candidates = []
        if cfg.max_steps:
            candidates.append((cfg.max_steps - p.step) * seconds_per_step)
        if cfg.max_minutes:
            candidates.append(cfg.max_minutes * 60 - p.elapsed_seconds)
        if cfg.max_epochs:
            per_epoch = len(self.epoch_share(0)) * seconds_per_step
            candidates.append((cfg.max_epochs - p.epoch) * per_epoch - p.batch_in_epoch * seconds_per_step)
        return max(0.0, min(candidates)) if candidates else None

    # ----- validation and checkpoints -----------------------------------------------------------
    def _validate_and_keep(self) -> None:
        if self.dist.is_main:
            started = time.monotonic()
            result = validate(self.model, self.data, self.config.validation.beam_size, self.config.validation.batch_tokens)
            seconds = time.monotonic() - started
            improved = not self.progress.best or result.bleu > max(b for b, _ in self.progress.best)
            self.progress.bad_validations = 0 if improved else self.progress.bad_validations + 1
            self.schedule.observe_validation(result.bleu)
            self._keep_weights(result.bleu)
            self.metrics.write({
                "kind": "valid", "step": self.progress.step, "loss": round(result.loss, 4),
                "bleu": round(result.bleu, 2), "chrf": round(result.chrf, 2),
                "elapsed_seconds": round(self.progress.elapsed_seconds, 1), "seconds": round(seconds, 1),
            })
            (self.run_dir / "valid-hyps.txt").write_text("\n".join(result.hypotheses) + "\n", encoding="utf-8")
            plot_curves(self.metrics.read(), self.run_dir / "curves.png", title=self.run_dir.name)
            log.info(
                "validation at step %d: loss %.3f | BLEU %.2f | chrF %.2f | %s(%.0f s)",
                self.progress.step, result.loss, result.bleu, result.chrf, "new best " if improved else "", seconds,
            )
        self._share_main_progress()
        # The new best/snapshot lists reach last.pt now, and only then are the files they dropped
        # deleted: whenever the run is killed, last.pt names only weight files that exist.
        self._save_checkpoint()
        if self.dist.is_main:
            self._delete_unreferenced_weights()

    def _keep_weights(self, bleu: float) -> None:
        """Write this validation's weights where they are kept (best k by BLEU, the latest `average_last`
        snapshots) and update the lists; files that fall out are deleted after the next checkpoint."""
        cfg, p = self.config.training, self.progress
        step = p.step
        p.best.append([bleu, step])
        p.best.sort(key=lambda b: (-b[0], b[1]))
        p.best = p.best[: cfg.keep_best]
        try:
            if [bleu, step] in p.best:
                self._save_weights(self.checkpoint_dir / f"best-{step:08d}.safetensors")
            if cfg.average_last:
                self._save_weights(self.checkpoint_dir / f"val-{step:08d}.safetensors")
        except OSError as error:
            raise CheckpointWriteError(
                f"cannot write weights into {self.checkpoint_dir}: {error.strerror or error}; "
                "the last checkpoint is unchanged, so the run resumes from it"
            ) from error
        p.validations = (p.validations + [step])[-cfg.average_last :] if cfg.average_last else [step]

    def _save_weights(self, path: Path) -> None:
        """safetensors through a temporary name: a failed write never leaves half a file under `path`."""
        temporary = path.with_name(f".{path.name}.tmp")
        # On a GPU, cuDNN packs each LSTM's weights into one buffer, which safetensors refuses to
        # save as separate tensors: a CPU copy holds them apart, as training on the CPU does.
        model = self.model if self.device.type == "cpu" else copy.deepcopy(self.model).cpu()
        try:
            save_model(model, str(temporary))
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)

    def _delete_unreferenced_weights(self) -> None:
        keep = weight_files(self.progress, self.config.training.average_last)
        for path in [*self.checkpoint_dir.glob("best-*.safetensors"), *self.checkpoint_dir.glob("val-*.safetensors")]:
            if path.name not in keep:
                path.unlink(missing_ok=True)

    def _save_checkpoint(self) -> None:
        if self.dist.is_main:
            state = {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(),
                "progress": asdict(self.progress),
                "rng": capture_rng_state(),
                "model_config": self.model_config.model_dump(mode="json"),
                "config": self.config.model_dump(mode="json"),
            }
            atomic_torch_save(with_digest(state), self.checkpoint_dir / LAST_CHECKPOINT)
        if self.dist.world_size > 1:
            dist.barrier()

    def initialise_from(self, model_dir: Path, loaded=None) -> None:
        """Start a new run from an exported model's weights (fresh optimizer and schedule); `loaded`: that
        directory already read by `load_model_dir` and checked by `refuse_unusable_start`."""
        if loaded is None:
            loaded = load_model_dir(model_dir)
            refuse_unusable_start(loaded, model_dir, self.config)
        if loaded.config.architecture() != self.model_config.architecture():
            raise UserError(f"{model_dir} has a different architecture or vocabulary than this config")
        # Same vocabulary sizes are not the same vocabulary: a subword model trained on another corpus
        # numbers its pieces differently, and the weights would read every id as another piece.
        for side, theirs, ours in (("source", loaded.source_spm, self.data.source_spm),
                                   ("target", loaded.target_spm, self.data.target_spm)):
            if sha256_file(Path(theirs)) != sha256_file(Path(ours)):
                raise UserError(f"{model_dir}'s {side} subword model differs from the one of {self.config.data.corpus}: "
                                f"copy {theirs} into the corpus's subwords/ before training, or start without init_from")
        self.model.load_state_dict(loaded.model.state_dict())
        log.info("initialised from %s", model_dir)

    def resume_if_possible(self) -> bool:
        path = self.checkpoint_dir / LAST_CHECKPOINT
        if not path.exists():
            if self.dist.is_main:
                self.metrics.truncate_after(0)  # a run killed before its first checkpoint starts its log afresh
            return False
        state = load_checkpoint(path)
        # Export needs the best weights; averaging uses whichever snapshots exist (it may be switched on now).
        named = weight_files(Progress(**state["progress"]), average_last=0)
        missing = sorted(name for name in named if not (self.checkpoint_dir / name).exists())
        if missing:
            raise UserError(f"{path} names weight files that are gone ({', '.join(missing)}); "
                            "the run could not be exported after resuming; start a new run_dir")
        if state["model_config"] != self.model_config.model_dump(mode="json"):
            raise UserError(f"{path} was trained with a different model config; use a new run_dir")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.progress = Progress(**state["progress"])
        restore_rng_state(state["rng"])
        if self.dist.rank:
            torch.manual_seed(self.config.training.seed * 1000 + self.dist.rank + self.progress.step)
        if self.dist.is_main:
            self.metrics.truncate_after(self.progress.step)
            self._delete_unreferenced_weights()  # left by a kill between a checkpoint and its pruning
            log.info("resumed from %s at step %d (epoch %d, batch %d)", path, self.progress.step,
                     self.progress.epoch, self.progress.batch_in_epoch)
        return True

    def _share_main_progress(self) -> None:
        """After validation on rank 0, every process adopts its decisions (best list, patience)."""
        if self.dist.world_size == 1:
            return
        payload = [asdict(self.progress), self.schedule.state_dict()]
        dist.broadcast_object_list(payload, src=0)
        self.progress = Progress(**payload[0])
        self.schedule.load_state_dict(payload[1])

class _Window:
    """Loss and throughput over the steps since the last log line."""

    def __init__(self):
        self.started = time.monotonic()
        self.losses: list[float] = []
        self.tokens = 0

    def add(self, loss: float, tokens: int) -> None:
        self.losses.append(loss)
        self.tokens += tokens

    @property
    def mean_loss(self) -> float:
        return sum(self.losses) / max(len(self.losses), 1)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / max(time.monotonic() - self.started, 1e-9)

    @property
    def seconds_per_step(self) -> float:
        return (time.monotonic() - self.started) / max(len(self.losses), 1)


def _clock(seconds: float | None) -> str:
    if seconds is None or math.isinf(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def refuse_unusable_start(loaded, model_dir: Path, config: TrainConfig) -> None:
    """The checks on `training.init_from` that need no training data: an ensemble, or a model whose
    source normalisation differs from the config's."""
    if len(loaded.weight_files) > 1:
        raise UserError(f"{model_dir} is an ensemble of {len(loaded.weight_files)} models; start from one of its members")
    # The weights learned the pieces of normalised text; other input (e.g. capitalised first words the
    # model only ever saw lowercased) would be a shift the run silently trains away or never sees.
    normalization = config.data.normalize_source
    if loaded.normalizer.name != normalization:
        raise UserError(f"{model_dir} normalises its source with {loaded.normalizer.name!r}, this config with "
                        f"{normalization!r}: add --set data.normalize_source={loaded.normalizer.name}")


def run_training(config: TrainConfig) -> tuple[Trainer, Progress]:
    """Train (or resume) the run described by `config`; returns the trainer for export."""
    dist_info = setup_process(config)
    if config.training.precision == "bf16" and not bf16_supported(dist_info.device):
        raise UserError("training.precision=bf16 needs a GPU with bf16 or a CPU with native bf16 (AVX512-BF16 "
                        "or AMX); use fp32 here")
    checkpoint_dir = Path(config.run_dir) / "checkpoints"
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    if dist_info.is_main:
        (Path(config.run_dir) / "config.yaml").write_text(
            yaml.safe_dump(json.loads(config.model_dump_json()), sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
    starts_from, start = config.training.init_from, None
    if starts_from and not (checkpoint_dir / LAST_CHECKPOINT).exists():
        # Before the corpus is read and encoded (minutes on a large one), not after.
        start = load_model_dir(starts_from)
        refuse_unusable_start(start, starts_from, config)
    data = load_training_data(config)
    trainer = Trainer(config, data, dist_info)
    if dist_info.is_main:
        log.info("model: %s parameters; %d training pairs; %d threads; %d process(es)",
                 f"{trainer.model.parameter_count():,}", len(data.train), torch.get_num_threads(), dist_info.world_size)
    if not trainer.resume_if_possible() and starts_from:
        trainer.initialise_from(starts_from, start)
    progress = trainer.train()
    return trainer, progress

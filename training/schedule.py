"""Learning-rate schedules: linear warmup, then decay on a validation plateau or as 1/sqrt(step)."""

from __future__ import annotations

import math

from carousel.training.config import OptimConfig


class LearningRateSchedule:
    """Sets the optimizer's learning rate each step; its state is saved with every checkpoint."""

    def __init__(self, optimizer, config: OptimConfig):
        self.optimizer = optimizer
        self.config = config
        self.plateau_scale = 1.0  # multiplied by plateau_factor after `plateau_patience` bad validations
        self.best_score = -math.inf
        self.bad_validations = 0

    def learning_rate(self, step: int) -> float:
        config = self.config
        warmup = min(1.0, step / config.warmup_steps) if config.warmup_steps else 1.0
        if config.schedule == "inverse_sqrt" and config.warmup_steps and step > config.warmup_steps:
            return config.learning_rate * math.sqrt(config.warmup_steps / step)
        if config.schedule == "plateau":
            lr = config.learning_rate * warmup * self.plateau_scale
            return max(lr, config.min_learning_rate) if warmup >= 1.0 else lr
        return config.learning_rate * warmup

    def step(self, step: int) -> float:
        lr = self.learning_rate(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def observe_validation(self, score: float) -> None:
        if score > self.best_score:
            self.best_score, self.bad_validations = score, 0
            return
        self.bad_validations += 1
        if self.config.schedule == "plateau" and self.bad_validations > self.config.plateau_patience:
            self.plateau_scale *= self.config.plateau_factor
            self.bad_validations = 0

    def state_dict(self) -> dict:
        return {"plateau_scale": self.plateau_scale, "best_score": self.best_score, "bad_validations": self.bad_validations}

    def load_state_dict(self, state: dict) -> None:
        self.plateau_scale = float(state["plateau_scale"])
        self.best_score = float(state["best_score"])
        self.bad_validations = int(state["bad_validations"])

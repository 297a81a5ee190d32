"""Keras callbacks of step 3 (besides the participant's checkpoint saver): the loss of every step, a hard stop at
the planned step, the projected duration, a time budget, and the seconds spent training and validating. Durations are parsed and printed for people here too.
"""

from __future__ import annotations

import re
import time

import tensorflow as tf

from aurore.errors import AuroreError
from aurore.text.french import format_decimal
from aurore.training.checkpoints import optimizer_step


class StepHistory(tf.keras.callbacks.Callback):
    """Record the training loss of every step (Keras' History keeps only epoch averages)."""

    def __init__(self):
        super().__init__()
        self.steps: list[dict] = []
        self.epoch_ends: list[int] = []  # the step reached at each epoch end (a time budget may end one early)

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_ends.append(optimizer_step(self.model))

    def on_train_batch_end(self, batch, logs=None):
        step = optimizer_step(self.model)
        rate = self.model.optimizer.learning_rate
        rate = float(rate(step)) if callable(rate) else float(rate)  # the rate the next step will use
        self.steps.append({"step": step, "loss": float(logs["loss"]), "next_lr": rate})

    def per_epoch(self, history: tf.keras.callbacks.History) -> list[dict]:
        """Each epoch's figures from fit's History (loss, val_loss…), with the step it ended at."""
        return [{"epoch": epoch + 1, "step": self.epoch_ends[i], **{k: float(v[i]) for k, v in history.history.items()}}
                for i, epoch in enumerate(history.epoch)]


class Stopwatch(tf.keras.callbacks.Callback):
    """Seconds spent in training steps and in fit's validations (metrics.json, benchmarks/step3_time.py); the first
    step apart too (it includes tracing and compiling the step)."""

    def __init__(self):
        super().__init__()
        self.seconds = {"training_steps": 0.0, "first_step": None, "validation": 0.0}
        self._started = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self._started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        seconds = time.perf_counter() - self._started
        self.seconds["training_steps"] += seconds
        if self.seconds["first_step"] is None:
            self.seconds["first_step"] = seconds

    def on_test_begin(self, logs=None):
        self._started = time.perf_counter()

    def on_test_end(self, logs=None):
        self.seconds["validation"] += time.perf_counter() - self._started


class StopAtStep(tf.keras.callbacks.Callback):
    """Stop exactly at the planned number of steps (a resumed run must not overshoot its schedule)."""

    def __init__(self, total_steps: int):
        super().__init__()
        self.total_steps = total_steps

    def on_train_batch_end(self, batch, logs=None):
        if optimizer_step(self.model) >= self.total_steps:
            self.model.stop_training = True


class TimeBudget(tf.keras.callbacks.Callback):
    """Stop training once `seconds` have passed (checked after every step); `stopped_at` records the step."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.started, self.stopped_at = seconds, None, None

    def on_train_begin(self, logs=None):
        self.started = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if time.monotonic() - self.started >= self.seconds:
            self.model.stop_training = True
            self.stopped_at = optimizer_step(self.model)
            print(f"\nEntraînement arrêté par le budget de temps (--time-budget, {format_duration(self.seconds)}) "
                  f"au pas {self.stopped_at}.")


class Projection(tf.keras.callbacks.Callback):
    """After the first steps (the first one builds the graph), print the projected duration of the run."""

    def __init__(self, total_steps: int, budget_seconds: float | None = None, measure: int = 3):
        super().__init__()
        self.total_steps, self.budget, self.measure = total_steps, budget_seconds, measure
        self.times: list[float] = []
        self.seconds_per_step: float | None = None

    def on_train_batch_end(self, batch, logs=None):
        if self.seconds_per_step is not None:
            return
        self.times.append(time.monotonic())
        if len(self.times) == self.measure + 1:
            self.seconds_per_step = (self.times[-1] - self.times[0]) / self.measure
            done = optimizer_step(self.model)
            remaining = (self.total_steps - done) * self.seconds_per_step
            print(f"\n  {format_decimal(self.seconds_per_step, 2)} s par pas : encore environ {format_duration(remaining)} pour "
                  f"{self.total_steps - done} pas")
            if self.budget and remaining > self.budget:
                fits = done + int(self.budget / self.seconds_per_step)
                print(f"  le budget de temps arrêtera l'entraînement vers le pas {fits} sur {self.total_steps} ; le taux "
                      f"d'apprentissage ne sera pas descendu à 0 (--max-steps {fits} pour un calendrier complet)")


def parse_duration(text: str) -> float:
    """'90', '90s', '5m', '1h30m' -> seconds."""
    parts = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text or "")
    if not text or not parts or not any(parts.groups()):
        raise AuroreError(f"Ce n'est pas une durée : {text!r}.",
                          "Écrivez des secondes ou des unités, par exemple --time-budget 300, 90s, 5m ou 1h30m.")
    hours, minutes, seconds = (float(p) if p else 0.0 for p in parts.groups())
    return hours * 3600 + minutes * 60 + seconds


def format_duration(seconds: float) -> str:
    """45 -> '45 s', 113 -> '1 min 53 s', 5400 -> '1 h 30 min'."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"

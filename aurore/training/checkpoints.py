"""Checkpoints that belong to a run: nothing a participant trained is lost, and `--resume` continues the right run.

    models/checkpoints/
      run-20261126-101500/          one folder per training run (a fresh run never touches another's)
        run.json                    its settings and start time
        checkpoint-000020/          save_pretrained (model + tokenizer), optimizer/, trainer_state.json
        checkpoint-000040/

Every save writes a `.incomplete-…` folder and renames it when whole, so the newest checkpoint is always loadable.
Pruning keeps the last `keep` checkpoints of the same run and never the one just written. `--resume` picks the
most recent run by start time (not the highest step number).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from aurore.atomic import publish, staging_dir

STATE_FILE = "trainer_state.json"
RUN_FILE = "run.json"


def optimizer_step(model) -> int:
    """The number of optimizer steps taken so far: the step a checkpoint or a log line refers to."""
    return int(model.optimizer.iterations.numpy())


@dataclass
class Run:
    """One training run's folder of checkpoints, created with its first checkpoint (a run that fails before it
    leaves nothing behind)."""

    folder: Path
    new_settings: dict | None = None  # for a run not yet on disk
    last_written: Path | None = None  # the checkpoint this process wrote last (its weights are on disk)

    @classmethod
    def start(cls, checkpoints_dir: Path, settings: dict) -> "Run":
        """A new run, named by its start time (a second run in the same second gets a suffix)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        names = (f"run-{stamp}{suffix}" for suffix in ("", *(f"-{i}" for i in range(2, 1000))))
        folder = next(Path(checkpoints_dir) / name for name in names if not (Path(checkpoints_dir) / name).exists())
        return cls(folder, {"started": time.time(), "settings": settings})

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def settings(self) -> dict:
        return json.loads((self.folder / RUN_FILE).read_text(encoding="utf-8"))["settings"]

    @property
    def started(self) -> float:
        return json.loads((self.folder / RUN_FILE).read_text(encoding="utf-8"))["started"]

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        return sorted(p for p in self.folder.glob("checkpoint-*") if (p / STATE_FILE).is_file())

    def latest(self) -> Path | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def save(self, model, tokenizer, keep: int, epoch: int | None = None, val_loss: float | None = None) -> Path:
        """Write a whole checkpoint of `model` at its current step, atomically; prune this run's older ones.
        `val_loss` (at an epoch end) is the model's score there: a run resumed from it does not measure it again."""
        if self.new_settings is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_json(self.folder / RUN_FILE, self.new_settings)
            self.new_settings = None
        step = optimizer_step(model)
        target = self.folder / f"checkpoint-{step:06d}"
        if target == self.last_written and target.is_dir():
            # The epoch ended on a step just saved (save_every divides it): no step since, so the weights and
            # optimizer on disk are these; only the epoch and its score are new (saves ~1 GB of writing at 124M).
            new = {"epoch": epoch, "val_loss": val_loss}
            self._write_state(target, {**read_state(target), **{k: v for k, v in new.items() if v is not None}})
            return target
        for leftover in self.folder.glob(".incomplete-*"):  # a save killed mid-way (kill -9, power cut)
            shutil.rmtree(leftover, ignore_errors=True)
        staging = staging_dir(self.folder, f".incomplete-{step:06d}-")
        try:
            model.save_pretrained(str(staging))
            tokenizer.save_pretrained(str(staging))
            optimizer_checkpoint(model.optimizer, model).write(str(staging / "optimizer" / "state"))
            previous = read_state(target) if target.is_dir() else {}
            epoch = epoch if epoch is not None else previous.get("epoch")
            self._write_state(staging, {"step": step, "epoch": epoch, "val_loss": val_loss})
            publish(staging, target)  # atomic: a crash before this line leaves only an .incomplete folder
            self.last_written = target
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # Ctrl-C while writing: nothing half-written stays
        others = [c for c in self.checkpoints() if c != target]  # oldest first
        for old in others[: max(0, len(others) - (keep - 1))]:
            shutil.rmtree(old)
        return target

    @staticmethod
    def _write_state(checkpoint: Path, state: dict) -> None:
        """trainer_state.json, replaced whole: the step, the epoch it ended (if any), its validation loss (if any)."""
        state = {**{key: value for key, value in state.items() if value is not None}, "time": time.time()}
        if "val_loss" in state:
            state["val_loss"] = float(state["val_loss"])  # a NumPy or TensorFlow number from Keras' logs
        partial = checkpoint / f".{STATE_FILE}.partial"
        _write_json(partial, state)
        partial.replace(checkpoint / STATE_FILE)


def runs(checkpoints_dir: Path) -> list[Run]:
    """Every run with a settings file, oldest first (by start time, not by name or step)."""
    found = [Run(p) for p in Path(checkpoints_dir).glob("run-*") if (p / RUN_FILE).is_file()]
    return sorted(found, key=lambda run: run.started)


def latest_run(checkpoints_dir: Path) -> Run | None:
    """The most recently started run that holds at least one checkpoint."""
    with_checkpoints = [run for run in runs(checkpoints_dir) if run.latest() is not None]
    return with_checkpoints[-1] if with_checkpoints else None


def read_state(checkpoint: Path) -> dict:
    return json.loads((Path(checkpoint) / STATE_FILE).read_text(encoding="utf-8"))


def optimizer_checkpoint(optimizer, model) -> tf.train.Checkpoint:
    """The optimizer's state: its step count and AdamW's two moments per trained weight.

    transformers' AdamWeightDecay is a legacy Keras optimizer: it keeps a moment as a "slot" of its weight, and a
    checkpoint saves a slot only when its weight is in the checkpoint too; so the trained weights go with it
    (the frozen ones, which have no moments, stay out).
    """
    return tf.train.Checkpoint(optimizer=optimizer, trained_weights=list(model.trainable_variables))


def restore_optimizer(optimizer, model, checkpoint: Path) -> None:
    """Restore the step count and AdamW's moments into `optimizer`, for `model` as loaded from the same checkpoint;
    the moments are applied when the optimizer creates them (its first step)."""
    optimizer_checkpoint(optimizer, model).read(str(Path(checkpoint) / "optimizer" / "state")).expect_partial()


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=1), encoding="utf-8")

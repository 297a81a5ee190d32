"""Training plumbing for step 3: checkpoints that survive crashes, metrics, perplexity, the loss curve.

Checkpoints are `save_pretrained` folders (model + tokenizer) plus the optimizer state and the step reached,
written under a temporary name and renamed when complete: the latest checkpoint is always a whole one.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from pathlib import Path

import tensorflow as tf

from aurore.config import PROFILES
from aurore.errors import AuroreError

STATE_FILE = "trainer_state.json"


class CheckpointSaver(tf.keras.callbacks.Callback):
    """Save model, tokenizer and optimizer every `every_steps` steps and at each epoch end; keep the last `keep`."""

    def __init__(self, folder: Path, tokenizer, every_steps: int = 100, keep: int = 3):
        super().__init__()
        self.folder, self.tokenizer, self.every_steps, self.keep = Path(folder), tokenizer, every_steps, keep

    @property
    def step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def on_train_batch_end(self, batch, logs=None):
        if self.every_steps and self.step % self.every_steps == 0:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.save(epoch=epoch + 1)

    def save(self, epoch: int | None = None) -> Path:
        step = self.step
        target = self.folder / f"checkpoint-{step:06d}"
        staging = self.folder / f".incomplete-{step:06d}"
        shutil.rmtree(staging, ignore_errors=True)
        self.model.save_pretrained(str(staging))
        self.tokenizer.save_pretrained(str(staging))
        tf.train.Checkpoint(optimizer=self.model.optimizer).write(str(staging / "optimizer" / "state"))
        previous = read_state(target) if target.is_dir() else {}
        state = {"step": step, "epoch": epoch if epoch is not None else previous.get("epoch"), "time": time.time()}
        (staging / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)  # atomic: a crash before this line leaves only an .incomplete folder
        for old in checkpoints(self.folder)[: -self.keep]:
            shutil.rmtree(old)
        return target


def checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    return sorted(p for p in Path(folder).glob("checkpoint-*") if (p / STATE_FILE).is_file())


def latest_checkpoint(folder: Path) -> Path | None:
    found = checkpoints(folder)
    return found[-1] if found else None


def read_state(checkpoint: Path) -> dict:
    return json.loads((Path(checkpoint) / STATE_FILE).read_text(encoding="utf-8"))


def restore_optimizer(model, checkpoint: Path) -> None:
    """Restore AdamW's moments and step count; they are applied when the optimizer first runs."""
    tf.train.Checkpoint(optimizer=model.optimizer).read(str(Path(checkpoint) / "optimizer" / "state")).expect_partial()


class StepHistory(tf.keras.callbacks.Callback):
    """Record the training loss of every step (Keras' History keeps only epoch averages)."""

    def __init__(self):
        super().__init__()
        self.steps: list[dict] = []
        self.epoch_ends: list[int] = []  # the step reached at each epoch end (a time budget may end one early)

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_ends.append(int(self.model.optimizer.iterations.numpy()))

    def on_train_batch_end(self, batch, logs=None):
        optimizer = self.model.optimizer
        step = int(optimizer.iterations.numpy())
        rate = optimizer.learning_rate
        rate = float(rate(step)) if callable(rate) else float(rate)  # the rate the next step will use
        self.steps.append({"step": step, "loss": float(logs["loss"]), "next_lr": rate})


def perplexity(model, dataset) -> float:
    """exp(mean next-token loss) on a tf.data dataset of blocks: lower is better; 1 would be a perfect model."""
    loss = model.evaluate(dataset, verbose=0)
    return math.exp(loss if not isinstance(loss, list) else loss[0])


def model_card(base_model: str, hyper_parameters: dict, results: dict) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in hyper_parameters.items())
    return f"""---
language: fr
base_model: {base_model}
tags: [gpt2, george-sand, aurore-workshop]
---
# GPT-2 fine-tuned on George Sand

Fine-tuned from `{base_model}` with the aurore workshop (step 3), on four novels by George Sand from Project
Gutenberg (Lélia, La Petite Fadette, Gabriel, Lettres d'un voyageur); validated on La Mare au diable.

| hyper-parameter | value |
|---|---|
{rows}

## Results on La Mare au diable (held out)

| | perplexity |
|---|---|
| before fine-tuning | {results.get('perplexity_before', float('nan')):.2f} |
| after fine-tuning | {results.get('perplexity_after', float('nan')):.2f} |
"""


def replace_folder(staging: Path, target: Path) -> Path | None:
    """Move `staging` to `target`; an existing `target` is kept as `<target>.previous` (one generation)."""
    previous = target.with_name(target.name + ".previous")
    if target.exists():
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(target, previous)
    os.replace(staging, target)
    return previous if previous.exists() else None


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """How to spread training over devices.

    auto: MirroredStrategy when several GPUs are visible, else the default (one device).
    mirrored: MirroredStrategy over all GPUs, or over the logical CPUs when there is no GPU.
    multi-worker: MultiWorkerMirroredStrategy, configured by the TF_CONFIG variable on each host.
    default: one device.
    """
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "default":
        return tf.distribute.get_strategy()
    raise ValueError(f"unknown strategy {name!r}: choose auto, default, mirrored or multi-worker")


def use_mixed_precision() -> str:
    """float16 compute with float32 weights on GPUs (bfloat16 on CPUs). Must run BEFORE the model is built."""
    policy = "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"
    tf.keras.mixed_precision.set_global_policy(policy)
    return policy


def text_blocks(tokenizer, texts: list[str], block_size: int) -> dict[str, list[list[int]]]:
    """Evaluation blocks for any tokenizer: the texts as one token stream, cut into `block_size` pieces."""
    stream = tokenizer(" ".join(texts))["input_ids"]
    blocks = [stream[i : i + block_size] for i in range(0, len(stream) - block_size + 1, block_size)]
    return {"input_ids": blocks, "labels": blocks}


def evaluate_perplexity(name_or_path: str, config) -> float:
    """Perplexity of any model folder or hub id on the held-out book, tokenized with the model's own tokenizer."""
    from datasets import Dataset, load_from_disk

    from aurore import hub
    from aurore.errors import MissingStepOutput

    if not (config.dataset_dir / "dataset_dict.json").is_file():
        raise MissingStepOutput("The sentence dataset", config.dataset_dir, 1)
    tokenizer = hub.load_tokenizer(name_or_path)
    model = hub.load_causal_lm(name_or_path, config)
    model.compile(optimizer="adam")  # evaluate() needs a compiled model; the optimizer is never used
    block_size = min(config.block_size, model.config.n_positions)
    texts = load_from_disk(str(config.dataset_dir))["test"]["text"]
    blocks = Dataset.from_dict(text_blocks(tokenizer, texts, block_size))
    return perplexity(model, model.prepare_tf_dataset(blocks, batch_size=config.batch_size, shuffle=False))


def push_to_hub(folder: Path, repo_id: str) -> str:
    """Upload the final model folder to the hub. The token comes from HF_TOKEN or `huggingface-cli login`."""
    from huggingface_hub import HfApi

    from aurore import hub
    from aurore.errors import AuroreError

    if not hub.hub_reachable():
        raise AuroreError(f"Cannot push to {repo_id}: the Hugging Face hub is unreachable (or HF_HUB_OFFLINE=1).",
                          f"The model is saved in {folder}; push it later with --push-to-hub when online.")
    api = HfApi(token=os.environ.get("HF_TOKEN") or None)
    try:
        api.create_repo(repo_id, exist_ok=True)
        return api.upload_folder(folder_path=str(folder), repo_id=repo_id).commit_url
    except Exception as error:  # authentication, permissions, network: one message
        raise AuroreError(f"Pushing to {repo_id} failed: {str(error).splitlines()[0]}",
                          "Set HF_TOKEN to a token with write access, or run `huggingface-cli login`.") from None


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
            self.stopped_at = int(self.model.optimizer.iterations.numpy())


def parse_duration(text: str) -> float:
    """'90', '90s', '5m', '1h30m' -> seconds."""
    parts = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text or "")
    if not text or not parts or not any(parts.groups()):
        raise AuroreError(f"Not a duration: {text!r}.", "Write seconds or units, e.g. --time-budget 300, 90s, 5m, 1h30m.")
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


# -- training profiles -------------------------------------------------------------------------------------------

def choose_profile(name: str) -> str:
    """auto: `full` when a GPU is visible, else `laptop` (see config.PROFILES)."""
    if name == "auto":
        return "full" if tf.config.list_logical_devices("GPU") else "laptop"
    if name not in PROFILES:
        raise AuroreError(f"Unknown training profile {name!r}.", "Use --profile auto, laptop or full (AURORE_PROFILE).")
    return name


def freeze_lower_layers(model, train_top_blocks: int) -> tuple[int, int]:
    """Freeze the embeddings and all but the top `train_top_blocks` blocks (0 = train everything).

    Returns (trainable, total) parameter counts. GPT-2 ties its output layer to the token embeddings, so they stay
    frozen together. Must run before `compile`.
    """
    transformer = model.transformer
    if train_top_blocks:
        transformer.wte.trainable = False
        transformer.wpe.trainable = False
        for block in transformer.h[: len(transformer.h) - train_top_blocks]:
            block.trainable = False
    count = lambda weights: int(sum(tf.size(w).numpy() for w in weights))  # noqa: E731
    return count(model.trainable_weights), count(model.weights)


def reblock(blocks, size: int):
    """Cut every block of a DatasetDict into pieces of `size` tokens (a shorter context is a cheaper step)."""
    length = len(blocks["train"][0]["input_ids"])
    if not size or size >= length:
        return blocks
    if length % size:
        raise AuroreError(f"Block size {size} does not divide the tokenized blocks' {length} tokens.",
                          f"Use a --block-size that divides {length} (e.g. {length // 2}), or re-run step 2 with it.")

    def cut(batch):
        pieces = [ids[i : i + size] for ids in batch["input_ids"] for i in range(0, length, size)]
        return {"input_ids": pieces, "labels": [list(p) for p in pieces]}

    return blocks.map(cut, batched=True, remove_columns=blocks["train"].column_names, desc=f"blocks of {size}")


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
            left = int(self.model.optimizer.iterations.numpy())
            remaining = (self.total_steps - left) * self.seconds_per_step
            print(f"\n  {self.seconds_per_step:.2f} s/step: about {format_duration(remaining)} more for "
                  f"{self.total_steps - left} steps")
            if self.budget and remaining > self.budget:
                fits = left + int(self.budget / self.seconds_per_step)
                print(f"  the time budget stops the run near step {fits} of {self.total_steps}; the learning rate "
                      f"will not have decayed to 0 (use --max-steps {fits} for a complete schedule)")

"""Step 3: fine-tune GPT-2 on George Sand with Keras `fit`, saving checkpoints as it goes.

Run: python aurore/3_train_solution.py --max-steps 200   (needs step 2; --resume continues an interrupted run)

The model already speaks French; fine-tuning nudges it towards George Sand's vocabulary and style. We measure
that on the held-out book: perplexity (how surprised the model is by each next token) should go down.
"""

from __future__ import annotations

import aurore  # noqa: F401  first: sets TF_USE_LEGACY_KERAS=1 before TensorFlow is imported
import argparse
import json
import math
import tempfile
from pathlib import Path

import tensorflow as tf
from datasets import DatasetDict, load_from_disk
from transformers import TFAutoModelForCausalLM, create_optimizer

from aurore import hub, plots, training
from aurore.config import PROFILES, Config, parse_args
from aurore.errors import AuroreError, MissingStepOutput, friendly_errors


def load_blocks(config: Config) -> DatasetDict:
    """The token blocks written by step 2."""
    # BEGIN SOLUTION 3.1: chargez le DatasetDict écrit par l'étape 2 avec load_from_disk(str(config.tokenized_dir)).
    return load_from_disk(str(config.tokenized_dir))
    # END SOLUTION


def to_tf_datasets(model, blocks: DatasetDict, batch_size: int) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """Batches for Keras: training blocks shuffled, test blocks in order."""
    # BEGIN SOLUTION 3.2: utilisez model.prepare_tf_dataset(split, batch_size=batch_size, shuffle=...) pour le train (mélangé, shuffle=True) et le test (shuffle=False) ; renvoyez (train, test).
    train = model.prepare_tf_dataset(blocks["train"], batch_size=batch_size, shuffle=True)
    test = model.prepare_tf_dataset(blocks["test"], batch_size=batch_size, shuffle=False)
    return train, test
    # END SOLUTION


# The learning rate rises during a short warm-up, then decays linearly to 0 on the LAST step actually run.
# (The 2023 workshop sized this schedule to one epoch while fitting ten: from epoch 2 the rate was 0 and the
# model stopped learning.)


def make_optimizer(total_steps: int, config: Config):
    """AdamW with warm-up and linear decay over `total_steps`."""
    # BEGIN SOLUTION 3.3: appelez create_optimizer(init_lr=config.learning_rate, num_train_steps=total_steps, num_warmup_steps=int(config.warmup_ratio * total_steps), weight_decay_rate=config.weight_decay) et renvoyez l'optimiseur (le premier élément du couple renvoyé).
    optimizer, _schedule = create_optimizer(
        init_lr=config.learning_rate,
        num_train_steps=total_steps,
        num_warmup_steps=int(config.warmup_ratio * total_steps),
        weight_decay_rate=config.weight_decay,
    )
    return optimizer
    # END SOLUTION


def train(model, train_data, test_data, epochs: int, steps_per_epoch: int, callbacks: list, initial_epoch: int = 0):
    """Keras does the loop: forward pass, loss, gradients, optimizer step, validation at each epoch end."""
    # BEGIN SOLUTION 3.4: appelez model.fit avec train_data, validation_data=test_data, epochs, steps_per_epoch, callbacks et initial_epoch ; renvoyez l'historique qu'il renvoie.
    return model.fit(train_data, validation_data=test_data, epochs=epochs, steps_per_epoch=steps_per_epoch,
                     callbacks=callbacks, initial_epoch=initial_epoch)
    # END SOLUTION


class StopAtStep(tf.keras.callbacks.Callback):
    """Stop exactly at the planned number of steps (a resumed run must not overshoot its schedule)."""

    def __init__(self, total_steps: int):
        super().__init__()
        self.total_steps = total_steps

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) >= self.total_steps:
            self.model.stop_training = True


def plan_steps(config: Config, batches_per_epoch: int) -> tuple[int, int, int]:
    """(epochs, steps per epoch, total steps). --max-steps caps the run; its steps are then shared among --epochs
    parts, each ending with a validation."""
    steps_per_epoch = batches_per_epoch
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps and config.max_steps < total_steps:
        total_steps = config.max_steps
        steps_per_epoch = math.ceil(total_steps / config.epochs)
    return math.ceil(total_steps / steps_per_epoch), steps_per_epoch, total_steps


def _extra_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    parser.add_argument("--strategy", default="auto", choices=["auto", "default", "mirrored", "multi-worker"],
                        help="spread training over devices (auto: all GPUs when there are several)")
    parser.add_argument("--mixed-precision", action="store_true", help="16-bit compute, for GPUs")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the final model (token: HF_TOKEN)")


def load_model(config: Config, resume: bool):
    """The base model, or the latest checkpoint when resuming; with the tokenizer and the checkpoint used."""
    if not resume:
        return hub.load_causal_lm(config.base_model, config), hub.load_tokenizer(config.base_model), None
    checkpoint = training.latest_checkpoint(config.checkpoints_dir)
    if checkpoint is None:
        raise AuroreError(f"--resume: no checkpoint in {config.checkpoints_dir}.",
                          "Start a run without --resume (it saves checkpoints as it goes).")
    print(f"Resuming from {checkpoint} (step {training.read_state(checkpoint)['step']}): weights, AdamW moments and "
          "step count are restored; the data position is not (the interrupted epoch restarts at its first batch).")
    return TFAutoModelForCausalLM.from_pretrained(str(checkpoint)), hub.load_tokenizer(checkpoint), checkpoint


@friendly_errors
def main(argv: list[str] | None = None) -> dict:
    config, flags = parse_args(__doc__.splitlines()[0], argv, extra=_extra_flags)
    if not (config.tokenized_dir / "dataset_dict.json").is_file():
        raise MissingStepOutput("The tokenized dataset", config.tokenized_dir, 2)
    budget = training.parse_duration(config.time_budget) if config.time_budget else None  # fail fast if malformed
    tf.keras.utils.set_random_seed(config.seed)
    if flags.mixed_precision:
        print(f"Mixed precision: {training.use_mixed_precision()}")  # before the model is built, or it is ignored
    strategy = training.make_strategy(flags.strategy)
    print(f"Training on {strategy.num_replicas_in_sync} device(s) ({type(strategy).__name__})")
    profile = training.choose_profile(config.profile)
    settings = PROFILES[profile]
    # The profile's block size, or a shorter --block-size: step 2's blocks are cut into pieces of that size.
    blocks = training.reblock(load_blocks(config), min(config.block_size, settings["block_size"] or config.block_size))
    # jit_compile: one XLA program for the whole train step (not under a multi-device strategy: XLA plus
    # MirroredStrategy hung on two logical CPUs).
    jit_compile = settings["jit_compile"] and strategy.num_replicas_in_sync == 1
    with strategy.scope():  # the model and optimizer variables are created on every device
        model, tokenizer, checkpoint = load_model(config, flags.resume)
        top_blocks = config.train_top_blocks if settings["freeze"] else 0
        trainable, total = training.freeze_lower_layers(model, top_blocks)
    model.summary()
    print(f"Profile {profile}: " + (f"the top {top_blocks} blocks learn, the rest is frozen; " if top_blocks else
                                    "every weight learns; ")
          + f"blocks of {len(blocks['train'][0]['input_ids'])} tokens; XLA {'on' if jit_compile else 'off'}"
          + f"\n  {trainable:,} of {total:,} parameters are trained ({100 * trainable / total:.1f}%)")

    train_data, test_data = to_tf_datasets(model, blocks, config.batch_size)
    epochs, steps_per_epoch, total_steps = plan_steps(config, len(train_data))
    with strategy.scope():
        # No loss given: the model computes its own.
        model.compile(optimizer=make_optimizer(total_steps, config), jit_compile=jit_compile)
        start_step = 0
        if checkpoint is not None:
            training.restore_optimizer(model, checkpoint)  # moments and step count; the epoch restarts at batch 1
            start_step = training.read_state(checkpoint)["step"]
    tokens_per_step = config.batch_size * len(blocks["train"][0]["input_ids"])
    print(f"\nPlan: {total_steps} steps ({epochs} epoch(s) of {steps_per_epoch}), {tokens_per_step} tokens per step, "
          f"{total_steps * tokens_per_step:,} tokens in all, starting at step {start_step}")

    before = training.perplexity(model, test_data)  # when resuming: at the checkpoint, not the base model
    print(f"Perplexity on La Mare au diable before training: {before:.2f}")

    saver = training.CheckpointSaver(config.checkpoints_dir, tokenizer, config.save_every, config.keep_checkpoints)
    steps = training.StepHistory()
    callbacks = [saver, steps, StopAtStep(total_steps), training.Projection(total_steps, budget)]
    if budget:
        callbacks.append(training.TimeBudget(budget))  # the epoch ends there: the saver writes a checkpoint
    try:
        history = train(model, train_data.repeat(), test_data, epochs, steps_per_epoch, callbacks,
                        initial_epoch=start_step // steps_per_epoch)
    except KeyboardInterrupt:
        saved = saver.save()
        print(f"\nInterrupted: checkpoint saved to {saved}. Continue with: python aurore/3_train_solution.py --resume")
        raise SystemExit(130) from None

    after = training.perplexity(model, test_data)
    print(f"Perplexity on La Mare au diable: {before:.2f} before, {after:.2f} after training")
    epochs_log = [{"epoch": epoch + 1, "step": steps.epoch_ends[i], **{k: float(v[i]) for k, v in history.history.items()}}
                  for i, epoch in enumerate(history.epoch)]
    metrics = {"perplexity_before": before, "perplexity_after": after, "resumed_from_step": start_step,
               "total_steps": total_steps, "steps": steps.steps, "epochs": epochs_log}
    folder = save_final(model, tokenizer, config, metrics)
    if flags.push_to_hub:
        print(f"Pushed: {training.push_to_hub(folder, flags.push_to_hub)}")
    return metrics


def save_final(model, tokenizer, config: Config, metrics: dict) -> Path:
    """The final folder steps 4 and 5 load: model, tokenizer, generation config, model card, metrics, loss curve."""
    config.models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=config.models_dir, prefix=".final-"))
    model.save_pretrained(str(staging))
    tokenizer.save_pretrained(str(staging))
    model.generation_config.save_pretrained(str(staging))
    hyper = {name: getattr(config, name) for name in ("epochs", "max_steps", "batch_size", "block_size", "learning_rate",
                                                      "warmup_ratio", "weight_decay", "seed", "profile",
                                                      "train_top_blocks", "time_budget")}
    (staging / "README.md").write_text(training.model_card(config.base_model, hyper, metrics), encoding="utf-8")
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    plots.plot_losses(metrics["steps"], metrics["epochs"], staging / "loss.png")
    previous = training.replace_folder(staging, config.finetuned_dir)
    print(f"Final model saved to {config.finetuned_dir}" + (f" (the previous one is in {previous})" if previous else ""))
    print("Next: python aurore/4_generate_solution.py")
    return config.finetuned_dir


if __name__ == "__main__":
    main()

"""Step 6's character-level model, trained with its default recipe on the four training books, under a time budget.

    python benchmarks/mini_gpt_budget.py [--budget 180s]

Trains for step 6's planned steps (mini_epochs x mini_steps_per_epoch; the learning-rate schedule spans them) or
until the budget runs out, whichever comes first, without the per-epoch samples and validation of the step itself.
Prints validation bits per character on La Mare au diable, training time, steps, tokens/s and peak memory (RSS).
Settings come from the environment like the step's (AURORE_MINI_LAYERS=2 ...). Needs step 1's dataset
(AURORE_WORKDIR, default aurore/).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import aurore  # noqa: E402,F401  sets TF_USE_LEGACY_KERAS before TensorFlow loads
import tensorflow as tf  # noqa: E402

from aurore.config import PACKAGE_DIR, from_namespace  # noqa: E402
from aurore.engines import minigpt  # noqa: E402
from aurore.training import callbacks
from aurore.workshop.exercises import load_script  # noqa: E402


class FirstStep(tf.keras.callbacks.Callback):
    """When the first step ended (it includes building and compiling the graph)."""

    def __init__(self):
        super().__init__()
        self.at = None

    def on_train_batch_end(self, batch, logs=None):
        self.at = self.at or time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="180s")
    args = parser.parse_args()
    budget = callbacks.parse_duration(args.budget)
    config = from_namespace(None)
    tf.keras.utils.set_random_seed(config.seed)
    step6 = load_script(PACKAGE_DIR / "6_mini_gpt_solution.py")
    train_texts, validation_texts = minigpt.load_texts(config)
    vocabulary = step6.build_vocabulary(train_texts, config)
    train_ids, validation_ids = (minigpt.encode_all(vocabulary, t) for t in (train_texts, validation_texts))
    planned = config.mini_epochs * config.mini_steps_per_epoch
    model = step6.create_model(len(vocabulary.tokens), config, planned)
    data = step6.make_batches(train_ids, config, config.mini_batch_size, shuffle=True)
    stopper, first = callbacks.TimeBudget(budget), FirstStep()
    start = time.perf_counter()
    model.fit(data.repeat(), epochs=config.mini_epochs, steps_per_epoch=config.mini_steps_per_epoch,
              callbacks=[stopper, first], verbose=0)
    end = time.perf_counter()
    elapsed = end - start
    steps = int(model.optimizer.iterations.numpy())
    validation = step6.make_batches(validation_ids, config, 64, shuffle=False)
    bpc = minigpt.bits_per_character(model, validation, len("\n\n".join(validation_texts)) / len(validation_ids))
    evaluation = time.perf_counter() - end
    tokens = config.mini_batch_size * config.mini_seq_len
    print(f"model: {config.mini_layers} blocks, width {config.mini_embed_dim}, {model.count_params():,} parameters; "
          f"batches of {config.mini_batch_size} x {config.mini_seq_len} characters")
    print(f"training: {steps} of {planned} planned steps in {elapsed:.1f} s (budget {budget:.0f} s"
          f"{', reached' if stopper.stopped_at else ''}); {steps * tokens / elapsed:,.0f} tokens/s, "
          f"{(steps - 1) * tokens / (end - first.at):,.0f} "
          f"after the first step ({first.at - start:.1f} s, graph building and XLA compilation)")
    print(f"validation (La Mare au diable): {bpc:.3f} bits per character ({evaluation:.1f} s)")
    print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()

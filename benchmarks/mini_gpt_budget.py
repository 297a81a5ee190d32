"""Step 6's character-level model trained for a fixed wall-clock budget on the four training books.

    python benchmarks/mini_gpt_budget.py [--budget 5m]

Prints validation bits per character on La Mare au diable, training tokens/s and peak memory (RSS).
Needs step 1's dataset (AURORE_WORKDIR, default aurore/).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import aurore  # noqa: E402,F401  sets TF_USE_LEGACY_KERAS before TensorFlow loads
from aurore import callbacks, minigpt  # noqa: E402
from aurore.exercises import load_script  # noqa: E402
from aurore.config import PACKAGE_DIR, from_namespace  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="5m")
    args = parser.parse_args()
    budget = callbacks.parse_duration(args.budget)
    config = from_namespace(None)
    step6 = load_script(PACKAGE_DIR / "6_mini_gpt_solution.py")
    train_texts, validation_texts = minigpt.load_texts(config)
    vocabulary = minigpt.build_vocabulary("char", train_texts, 0)
    train_ids, validation_ids = (minigpt.encode_all(vocabulary, t) for t in (train_texts, validation_texts))
    model = step6.create_model(len(vocabulary.tokens), config)
    data = minigpt.windows(train_ids, config.mini_seq_len, config.mini_batch_size, shuffle=True, seed=config.seed)
    stopper = callbacks.TimeBudget(budget)
    start = time.perf_counter()
    model.fit(data.repeat(), epochs=10_000, steps_per_epoch=50, callbacks=[stopper], verbose=0)
    elapsed = time.perf_counter() - start
    steps = int(model.optimizer.iterations.numpy())
    bpc = minigpt.bits_per_character(model, validation_ids, len("\n\n".join(validation_texts)), config.mini_seq_len)
    print(f"budget {budget:.0f} s: {steps} steps of {config.mini_batch_size} x {config.mini_seq_len} characters, "
          f"{model.count_params():,} parameters")
    print(f"training: {steps * config.mini_batch_size * config.mini_seq_len / elapsed:,.0f} tokens/s "
          f"(first step, with graph building, included)")
    print(f"validation (La Mare au diable): {bpc:.3f} bits per character")
    print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()

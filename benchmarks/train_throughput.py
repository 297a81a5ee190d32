"""Training throughput of one fine-tuning step: tokens/s and peak memory, Keras' default tf.function graph vs XLA (`jit_compile=True`).

    python benchmarks/train_throughput.py [--steps 5] [--models standin,gpt2-124m]

Models are built from config with random weights (speed does not depend on the values): `standin` is the
offline stand-in's shape, `gpt2-124m` is GPT-2 small's (the hub model's size). Batch 4 x 128 tokens.
Each figure is the median over `--steps` steps after one warm-up step (which includes graph building/compilation,
reported separately). Run each configuration in its own process so peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aurore.hub.standin import HUB_MODEL_SHAPE, SHAPE  # noqa: E402  (only constants: TensorFlow is not imported)

SHAPES = {"standin": SHAPE, "gpt2-124m": HUB_MODEL_SHAPE}


def measure(shape: str, jit: bool, steps: int, batch: int, block: int) -> dict:
    import numpy as np
    import tensorflow as tf
    from transformers import GPT2Config, TFGPT2LMHeadModel, create_optimizer

    tf.keras.utils.set_random_seed(0)
    model = TFGPT2LMHeadModel(GPT2Config(**SHAPES[shape]))
    optimizer, _ = create_optimizer(5e-5, num_train_steps=1000, num_warmup_steps=10)
    model.compile(optimizer=optimizer, jit_compile=jit)
    ids = np.random.default_rng(0).integers(0, SHAPES[shape]["vocab_size"], size=(batch, block), dtype=np.int32)
    data = {"input_ids": ids, "labels": ids}
    start = time.perf_counter()
    model.train_on_batch(data)
    first = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(data)
        times.append(time.perf_counter() - start)
    step = statistics.median(times)
    return {"model": shape, "mode": "xla" if jit else "graph", "params": model.num_parameters(),
            "first_step_s": round(first, 2), "step_s": round(step, 3), "tokens_per_s": round(batch * block / step, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="standin,gpt2-124m")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--block", type=int, default=128)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one configuration
    args = parser.parse_args()
    if args.one:
        shape, mode = args.one.split(":")
        print(json.dumps(measure(shape, mode == "xla", args.steps, args.batch, args.block)))
        return
    print(f"CPU cores: {os.cpu_count()}, batch {args.batch} x {args.block} tokens, median of {args.steps} steps")
    print(f"{'model':10} {'mode':6} {'params':>12} {'1st step s':>10} {'step s':>8} {'tokens/s':>9} {'peak MB':>8}")
    for shape in args.models.split(","):
        for mode in ("graph", "xla"):
            out = subprocess.run([sys.executable, __file__, "--one", f"{shape}:{mode}", "--steps", str(args.steps),
                                  "--batch", str(args.batch), "--block", str(args.block)],
                                 capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"{r['model']:10} {r['mode']:6} {r['params']:>12,} {r['first_step_s']:>10} {r['step_s']:>8} "
                  f"{r['tokens_per_s']:>9} {r['peak_rss_mb']:>8}", flush=True)


if __name__ == "__main__":
    main()

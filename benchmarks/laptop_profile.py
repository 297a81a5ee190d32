"""Step 3's laptop profile vs full fine-tuning, on a GPT-2 small-sized model (124M, random weights).

    python benchmarks/laptop_profile.py [--steps 5] [--default-run]

Same batch (4) and block size (128) for both: seconds per step and tokens/s (median after one warm-up step that
builds the graph), peak memory. With --default-run, also the wall-clock time of the laptop profile's default run
(`--max-steps` default steps at its 64-token blocks), graph building included.

It also prints each step's arithmetic: the matrix-product FLOPs it must do, the rate it reached, and this machine's
float32 matrix-product peak measured in the same process right after, hence the best ratio any implementation of
the laptop profile could reach here (its step at 100% of that peak, against full fine-tuning as measured).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import aurore  # noqa: E402,F401  sets TF_USE_LEGACY_KERAS before TensorFlow loads

from aurore.hub.standin import HUB_MODEL_SHAPE as SHAPE  # noqa: E402


def step_flops(batch: int, block: int, top_blocks: int) -> float:
    """Matrix-product FLOPs of one training step; top_blocks = 0 means every weight is trained."""
    d, layers, vocab, tokens = SHAPE["n_embd"], SHAPE["n_layer"], SHAPE["vocab_size"], batch * block
    block_forward = 2 * tokens * 12 * d * d + 4 * tokens * block * d  # 12d² weights per block; scores and mixing
    head_forward = 2 * tokens * d * vocab  # the output layer, tied to the token embeddings
    forward = layers * block_forward + head_forward
    if not top_blocks:
        return 3 * forward  # the backward pass: gradients for inputs and for weights, each as costly as the forward
    # Frozen embeddings: the output layer needs only its input gradient; the trained blocks need both.
    return forward + head_forward + 2 * top_blocks * block_forward


def matmul_peak(tokens: int) -> float:
    """FLOP/s of this machine's best float32 product the size of an MLP layer's (tokens x d by d x 4d), graph or XLA."""
    import tensorflow as tf

    d = SHAPE["n_embd"]
    a, b = tf.random.normal([tokens, d]), tf.random.normal([d, 4 * d])
    best = float("inf")
    for jit in (False, True):
        product = tf.function(lambda x, y: tf.matmul(x, y), jit_compile=jit)
        product(a, b).numpy()
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(10):
                product(a, b).numpy()
            best = min(best, (time.perf_counter() - start) / 10)
    return 2 * tokens * d * 4 * d / best


def measure(profile: str, steps: int, batch: int, block: int) -> dict:
    import numpy as np
    import tensorflow as tf
    from transformers import GPT2Config, TFGPT2LMHeadModel, create_optimizer

    from aurore.config import PACKAGE_DIR, Config
    from aurore.training import PROFILES
    from aurore.workshop.exercises import load_script

    settings = PROFILES[profile]
    tf.keras.utils.set_random_seed(0)
    model = TFGPT2LMHeadModel(GPT2Config(**SHAPE))
    model(model.dummy_inputs)
    top_blocks = Config().train_top_blocks if settings.freeze else 0
    step3 = load_script(PACKAGE_DIR / "3_train_solution.py")  # the lesson's own freezing
    trainable, total = step3.freeze_lower_layers(model, top_blocks)
    optimizer, _ = create_optimizer(5e-5, num_train_steps=max(steps + 1, 10), num_warmup_steps=1)
    model.compile(optimizer=optimizer, jit_compile=settings.jit_compile)
    ids = np.random.default_rng(0).integers(0, SHAPE["vocab_size"], size=(batch, block), dtype=np.int32)
    start = time.perf_counter()
    model.train_on_batch({"input_ids": ids, "labels": ids})
    first = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch({"input_ids": ids, "labels": ids})
        times.append(time.perf_counter() - start)
    step = statistics.median(times)
    flops = step_flops(batch, block, top_blocks)
    return {"profile": profile, "block": block, "trainable": trainable, "total": total, "first_step_s": first,
            "step_s": step, "tokens_per_s": batch * block / step,
            "flops": flops, "peak_flops": matmul_peak(batch * block),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--default-run", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        profile, block, steps = args.one.split(":")
        print(json.dumps(measure(profile, int(steps), args.batch, int(block))))
        return
    from aurore.config import Config
    from aurore.training import PROFILES

    def run(profile: str, block: int, steps: int) -> dict:
        out = subprocess.run([sys.executable, __file__, "--one", f"{profile}:{block}:{steps}", "--batch",
                              str(args.batch)], capture_output=True, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    print(f"CPU cores: {os.cpu_count()}; GPT-2 124M (random weights); batch {args.batch}")
    rows = [run("full", 128, args.steps), run("laptop", 128, args.steps)]
    for r in rows:
        print(f"{r['profile']:7} block {r['block']}: {r['trainable']:>11,} of {r['total']:,} parameters trained; "
              f"first step {r['first_step_s']:.1f} s, then {r['step_s']:.2f} s/step = {r['tokens_per_s']:.0f} tokens/s; "
              f"peak {r['peak_rss_mb']:,.0f} MB", flush=True)
        print(f"{'':7} {r['flops'] / 1e9:.0f} GFLOP per step = {r['flops'] / r['step_s'] / 1e9:.0f} GFLOP/s, "
              f"{r['flops'] / r['step_s'] / r['peak_flops']:.0%} of the {r['peak_flops'] / 1e9:.0f} GFLOP/s float32 "
              "matrix-product peak measured right after", flush=True)
    full, laptop = rows
    ceiling = full["step_s"] / (laptop["flops"] / laptop["peak_flops"])
    print(f"laptop / full tokens/s at the same block size: {laptop['tokens_per_s'] / full['tokens_per_s']:.1f}x; "
          f"ceiling with the laptop step at 100% of peak and full fine-tuning as measured: {ceiling:.1f}x")
    if args.default_run:
        steps = Config().max_steps
        block = PROFILES["laptop"]["block_size"]
        start = time.perf_counter()
        r = run("laptop", block, steps - 1)  # one warm-up step + (steps - 1) timed ones = the default run's steps
        total = time.perf_counter() - start
        print(f"laptop default run: {steps} steps of {args.batch} x {block} tokens in {total:.0f} s wall-clock "
              f"(model build and graph compilation included; {r['step_s']:.2f} s/step), peak {r['peak_rss_mb']:,.0f} MB")


if __name__ == "__main__":
    main()

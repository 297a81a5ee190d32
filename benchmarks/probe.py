"""This machine's own speed, printed with every figure so that a reader can scale them to theirs.

    python benchmarks/probe.py

float32 matrix products (TensorFlow, 2,048 × 2,048, all cores) in GFLOP/s, and memory bandwidth (numpy copy of a
256 MB array) in GB/s: GPT-2 decoding at batch 1 is bound by the second, training and batch 8 by the first.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    import tensorflow as tf

    a, b = tf.random.normal([size, size]), tf.random.normal([size, size])
    tf.matmul(a, b).numpy()  # warm
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.matmul(a, b).numpy()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def bandwidth_gbs(megabytes: int = 256, repeats: int = 5) -> float:
    source = np.ones(megabytes * 2**20 // 4, np.float32)
    target = np.empty_like(source)
    np.copyto(target, source)  # touch the pages
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(target, source)
        times.append(time.perf_counter() - start)
    return 2 * source.nbytes / statistics.median(times) / 1e9  # read + write


def machine_line() -> str:
    return (f"machine: {os.cpu_count()} CPU cores; float32 matmul {matmul_gflops():.0f} GFLOP/s; memory copy "
            f"{bandwidth_gbs():.1f} GB/s (benchmarks/probe.py, same run)")


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import aurore  # noqa: F401  quiet TensorFlow, legacy Keras

    print(machine_line())

"""Step 3's default run on GPT-2 small's shape: where the wait goes (training steps, scoring the held-out book).

    python benchmarks/step3_time.py [--workdir /tmp/aurore-step3] [--max-steps 200]

Builds (once) a base model of the hub model's depth and width (`build-standin --layers 12 --width 768 --vocab
50257`: random-ish weights, the same cost per token) in a workdir of its own (needs AURORE_GUTENBERG_MIRROR), runs
steps 1 and 2, then `aurore/3_train_solution.py` with its defaults three times:
1. a first run: the base model's perplexity is measured before training;
2. a second run: that figure is read back (models/perplexities.json), only fit's validation scores the book;
3. a third run, the same again (a second sample of the usual case).
For each it prints the wall-clock, the training steps' own time (and the first step's, which traces and compiles)
and fit's validation time (metrics.json's "seconds"), and the ratio wall-clock / training steps, beside this
machine's probe, all from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import aurore  # noqa: E402,F401  quiet TensorFlow (the probe imports it)
from probe import machine_line  # noqa: E402  (benchmarks/probe.py, beside this file)


def step(args: list[str], env: dict) -> float:
    """Run a workshop command from the repository root; its wall-clock seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def prepare(workdir: Path, env: dict) -> None:
    if not (workdir / "data" / "tokenized").is_dir():
        step(["aurore/1_prepare_dataset_solution.py"], env)
        step(["-m", "aurore", "build-standin", "--layers", "12", "--width", "768", "--vocab", "50257"], env)
        step(["aurore/2_tokenize_solution.py"], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/aurore-step3"))
    parser.add_argument("--max-steps", type=int, default=200)
    args = parser.parse_args()
    if not os.environ.get("AURORE_GUTENBERG_MIRROR"):
        raise SystemExit("set AURORE_GUTENBERG_MIRROR to a folder of pg<ID>.txt (the shared corpus)")
    workdir = args.workdir.resolve()
    env = {**os.environ, "AURORE_WORKDIR": str(workdir), "HF_HUB_OFFLINE": "1",
           "AURORE_BASE_MODEL": str(workdir / "models" / "standin")}
    prepare(workdir, env)
    (workdir / "models" / "perplexities.json").unlink(missing_ok=True)  # the first run measures the base model
    print(machine_line())
    print(f"{'run':30} {'wall-clock':>10} {'train steps':>11} {'(first step)':>12} {'validation':>10} {'wall/train':>10}")
    for label in ("first (base model scored)", "second (base score reused)", "third (the same again)"):
        wall = step(["aurore/3_train_solution.py", "--max-steps", str(args.max_steps)], env)
        seconds = json.loads((workdir / "models" / "gpt2-george-sand" / "metrics.json").read_text())["seconds"]
        train, first, validation = seconds["training_steps"], seconds["first_step"], seconds["validation"]
        print(f"{label:30} {wall:9.1f}s {train:10.1f}s {first:11.1f}s {validation:9.1f}s {wall / train:9.2f}x",
              flush=True)


if __name__ == "__main__":
    main()

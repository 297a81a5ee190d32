"""Loading a GPT-2 of the hub model's shape: a plain `from_pretrained` against the same call inside `hub.loading`.

    python benchmarks/model_load.py [--folder /tmp/aurore-load/gpt2-124m] [--repeats 3]

Saves (once) a random-weight GPT-2 of GPT-2 small's shape (124M parameters, 500 MB `tf_model.h5`), then in one
process loads it alternately with a plain `TFAutoModelForCausalLM.from_pretrained` (every variable first drawn at
random, then overwritten by the file) and inside `hub.loading` (the steps' own wrapper: variables start as NaN,
`aurore/hub/fast_init.py`), and prints each load's seconds, the medians and their ratio, beside the probe.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import aurore  # noqa: E402,F401  TF_USE_LEGACY_KERAS before TensorFlow
from probe import machine_line  # noqa: E402  (benchmarks/probe.py, beside this file)


def save_model(folder: Path) -> None:
    from transformers import GPT2Config, TFGPT2LMHeadModel

    model = TFGPT2LMHeadModel(GPT2Config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12))
    model(model.dummy_inputs)
    model.save_pretrained(str(folder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("/tmp/aurore-load/gpt2-124m"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from transformers import TFAutoModelForCausalLM

    from aurore import hub

    if not (args.folder / hub.TF_WEIGHTS).is_file():
        save_model(args.folder)
    folder = str(args.folder)
    TFAutoModelForCausalLM.from_pretrained(folder)  # imports and file cache warm for both
    print(machine_line())
    seconds: dict[str, list[float]] = {"plain from_pretrained": [], "inside hub.loading": []}
    for _ in range(args.repeats):
        for label, times in seconds.items():
            start = time.perf_counter()
            if label == "inside hub.loading":
                with hub.loading(folder):
                    TFAutoModelForCausalLM.from_pretrained(folder)
            else:
                TFAutoModelForCausalLM.from_pretrained(folder)
            times.append(time.perf_counter() - start)
    for label, times in seconds.items():
        print(f"{label:24} " + ", ".join(f"{s:.2f} s" for s in times) + f"  (median {statistics.median(times):.2f} s)")
    plain, fast = (statistics.median(times) for times in seconds.values())
    print(f"plain / inside hub.loading: {plain / fast:.1f}×")


if __name__ == "__main__":
    main()

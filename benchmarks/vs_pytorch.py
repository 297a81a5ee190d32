"""The same GPT-2 weights through PyTorch's `generate` and through aurore's compiled decoding (aurore/engines/fastgen.py).

    pip install -r requirements-bench.txt    (torch, CPU build; in a separate virtualenv: with torch installed,
                                              transformers' pipelines prefer PyTorch, which the workshop avoids)
    python benchmarks/vs_pytorch.py [--shape gpt2-124m] [--new-tokens 32] [--repeats 3]

Random weights (speed does not depend on them), written once in the hub's layout (PyTorch-named safetensors) and
read by both frameworks. Prints tokens/s at batch 1 and 8 for each, and the ratio compiled / PyTorch, from one run.
Without torch, it says so and exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import aurore  # noqa: E402,F401  sets TF_USE_LEGACY_KERAS before TensorFlow loads

from aurore.hub.standin import HUB_MODEL_SHAPE, SHAPE  # noqa: E402

SHAPES = {"standin": SHAPE, "gpt2-124m": HUB_MODEL_SHAPE}
PROMPT_IDS = [11, 617, 1234, 88, 402, 77, 5, 901]  # 8 tokens


def write_model(shape: str, folder: Path):
    """A random GPT-2 in TensorFlow, saved the way the hub stores it (config + PyTorch-named safetensors)."""
    import tensorflow as tf
    from transformers import GPT2Config, TFGPT2LMHeadModel

    from aurore.hub import save_as_pytorch_safetensors

    tf.keras.utils.set_random_seed(0)
    model = TFGPT2LMHeadModel(GPT2Config(**SHAPES[shape], eos_token_id=0, bos_token_id=0))
    model(model.dummy_inputs)
    model.config.save_pretrained(folder)
    save_as_pytorch_safetensors(model, folder)
    return model


def median_rate(generate, batch: int, new_tokens: int, repeats: int) -> float:
    generate(batch)  # warm-up: graph building, compilation, allocations
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        generate(batch)
        times.append(time.perf_counter() - start)
    return batch * new_tokens / statistics.median(times)


def torch_generator(folder: Path, new_tokens: int):
    import torch
    from transformers import GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel.from_pretrained(str(folder)).eval()

    def generate(batch: int):
        ids = torch.tensor([PROMPT_IDS] * batch)
        with torch.no_grad():
            model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, top_k=50, top_p=0.95,
                           max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=0)

    return generate


def compiled_generator(model, new_tokens: int):
    from aurore.engines.fastgen import CompiledGenerator
    from aurore.engines.generation import Sampling

    class Ids:  # the engine only needs an end-of-text id here: the benchmark feeds token ids
        eos_token_id = 0

    engine = CompiledGenerator(model, Ids())
    sampling = Sampling(max_new_tokens=new_tokens, top_k=50, top_p=0.95, seed=0)
    return lambda batch: engine.generate_ids([PROMPT_IDS] * batch, sampling)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="gpt2-124m")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if importlib.util.find_spec("torch") is None:
        print("skipped: torch is not installed (pip install -r requirements-bench.txt, in a separate virtualenv)")
        return 0
    with tempfile.TemporaryDirectory() as folder:
        model = write_model(args.shape, Path(folder))
        engines = {"pytorch generate": torch_generator(Path(folder), args.new_tokens),
                   "aurore compiled": compiled_generator(model, args.new_tokens)}
        print(f"{args.shape}, {len(PROMPT_IDS)}-token prompt, {args.new_tokens} new tokens, top-k 50, top-p 0.95")
        rates = {}
        for name, generate in engines.items():
            for batch in (1, 8):
                rates[name, batch] = median_rate(generate, batch, args.new_tokens, args.repeats)
                print(f"  {name:17} batch {batch}: {rates[name, batch]:8.1f} tokens/s")
        for batch in (1, 8):
            ratio = rates["aurore compiled", batch] / rates["pytorch generate", batch]
            print(f"  batch {batch}: compiled / PyTorch = {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

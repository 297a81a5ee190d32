"""Generation speed: eager pipeline vs compiled decoding, and the web server under concurrent clients.

    python benchmarks/generation_speed.py [--models standin,gpt2-124m] [--new-tokens 32] [--batch-window SECONDS]

Models are random-weight GPT-2s built from config (speed does not depend on the weights): `standin` has the
offline stand-in's shape, `gpt2-124m` GPT-2 small's. Prints, per model:
- tokens/s of the eager `generate` (the pipeline's path) and of aurore.fastgen at batch 1 and 8;
- start-up: compile time of the warm-up and the first request's latency after it;
- the web app (waitress on loopback, compiled engine): p50/p95 latency and throughput with 1, 4, 8 clients
  (`--batch-window 0` shows what the serving worker's batch window is worth).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import aurore  # noqa: E402,F401  sets TF_USE_LEGACY_KERAS before TensorFlow loads

from aurore.standin import HUB_MODEL_SHAPE, SHAPE  # noqa: E402

SHAPES = {"standin": SHAPE, "gpt2-124m": HUB_MODEL_SHAPE}
PROMPT_IDS = [11, 617, 1234, 88, 402, 77, 5, 901]  # 8 tokens


class FixedTokenizer:
    """Just enough tokenizer for the engines: ids in, ids out (the benchmark measures the model, not text)."""

    eos_token_id = 0

    def __call__(self, text):
        return {"input_ids": [int(x) for x in text.split()]}

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(str(i) for i in ids)


def build(shape: str):
    import tensorflow as tf
    from transformers import GPT2Config, TFGPT2LMHeadModel

    tf.keras.utils.set_random_seed(0)
    model = TFGPT2LMHeadModel(GPT2Config(**SHAPES[shape], eos_token_id=0, bos_token_id=0))
    model(model.dummy_inputs)
    return model


def eager_tokens_per_s(model, batch: int, new_tokens: int, repeats: int = 3) -> float:
    import tensorflow as tf

    ids = tf.constant([PROMPT_IDS] * batch, tf.int32)
    kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=True, top_k=50, top_p=0.95,
                  pad_token_id=0)
    model.generate(ids, max_new_tokens=2, pad_token_id=0)  # first call builds what it needs
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.generate(ids, **kwargs)
        times.append(time.perf_counter() - start)
    return batch * new_tokens / statistics.median(times)


def compiled_tokens_per_s(engine, batch: int, new_tokens: int, repeats: int = 3) -> float:
    from aurore.generation import Sampling

    times = []
    for seed in range(repeats):
        start = time.perf_counter()
        out = engine.generate_ids([PROMPT_IDS] * batch, Sampling(max_new_tokens=new_tokens, seed=seed))
        times.append(time.perf_counter() - start)
    return sum(len(o) for o in out) / statistics.median(times)


def serve_and_load(engine, new_tokens: int, batch_window: float, clients_list=(1, 4, 8),
                   requests_per_client: int = 4) -> list[dict]:
    from waitress.server import create_server

    from aurore import web
    from aurore.config import PACKAGE_DIR
    from aurore.exercises import load_script
    from aurore.serving import GenerationService

    service = GenerationService(engine, timeout=600, batch_window=batch_window)
    step5 = load_script(PACKAGE_DIR / "5_flask_solution.py")
    app = step5.create_app(web.Models({"gpt2": web.Served(service, web.ModelInfo("benchmark", True))}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = create_server(app, host="127.0.0.1", port=port, threads=16)
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}/api/generate"
    rows = []
    for clients in clients_list:
        latencies: list[float] = []

        def client(index: int, latencies: list[float] = latencies) -> None:
            for r in range(requests_per_client):
                body = json.dumps({"prompt": " ".join(str(i + index + r) for i in PROMPT_IDS),
                                   "max_new_tokens": new_tokens, "num_texts": 1, "seed": 1}).encode()
                request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
                start = time.perf_counter()
                urllib.request.urlopen(request, timeout=600).read()
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        latencies.sort()
        rows.append({"clients": clients, "p50_s": statistics.median(latencies),
                     "p95_s": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
                     "requests_per_s": len(latencies) / elapsed})
    time.sleep(0.5)  # let waitress finish closing the last connections before its sockets go
    server.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="standin,gpt2-124m")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--batch-window", type=float, default=None, help="seconds; default: aurore.serving's")
    args = parser.parse_args()
    from aurore.fastgen import CompiledGenerator  # TensorFlow loads here, not for --help
    from aurore.generation import Sampling
    from aurore.serving import BATCH_WINDOW
    batch_window = BATCH_WINDOW if args.batch_window is None else args.batch_window
    print(f"CPU cores: {os.cpu_count()}; {args.new_tokens} new tokens after an 8-token prompt; sampling top-k 50, "
          f"top-p 0.95; server batch window {batch_window * 1000:.0f} ms")
    for shape in args.models.split(","):
        model = build(shape)
        print(f"\n== {shape} ({model.num_parameters():,} parameters)")
        for batch in (1, 8):
            print(f"eager    batch {batch}: {eager_tokens_per_s(model, batch, args.new_tokens):8.1f} tokens/s", flush=True)
        start = time.perf_counter()
        engine = CompiledGenerator(model, FixedTokenizer())
        traces = engine.warm_up((128,))
        warm = time.perf_counter() - start
        start = time.perf_counter()
        engine.generate_ids([PROMPT_IDS], Sampling(max_new_tokens=args.new_tokens))
        print(f"start-up: warm-up compiled {traces} shapes in {warm:.1f} s; first request then took "
              f"{time.perf_counter() - start:.2f} s")
        for batch in (1, 8):
            print(f"compiled batch {batch}: {compiled_tokens_per_s(engine, batch, args.new_tokens):8.1f} tokens/s",
                  flush=True)
        for row in serve_and_load(engine, args.new_tokens, batch_window):
            print(f"server   {row['clients']} client(s): p50 {row['p50_s']:.2f} s, p95 {row['p95_s']:.2f} s, "
                  f"{row['requests_per_s']:.2f} requests/s", flush=True)


if __name__ == "__main__":
    main()

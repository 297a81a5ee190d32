"""Generation speed: eager pipeline vs compiled decoding, and the web server under concurrent clients.

    python benchmarks/generation_speed.py [--models standin,gpt2-124m] [--new-tokens 32] [--batch-window SECONDS]

Models are random-weight GPT-2s built from config (speed does not depend on the weights): `standin` has the
offline stand-in's shape, `gpt2-124m` GPT-2 small's. Prints, per model:
- tokens/s of the eager `generate` (the pipeline's path) and of aurore.engines.fastgen at batch 1 and 8;
- start-up: compile time of the warm-up and the first request's latency after it;
- the web app (waitress on loopback, compiled engine): p50/p95 latency and throughput with 1, 4, 8 clients
  (`--batch-window 0` shows what the serving worker's batch window is worth);
- `--mixed`: 8 clients whose requests differ in temperature, top-k and length (16/32/64 tokens), vs the same settings
  and vs one client, in a steady state (clients keep sending; new tokens/s and requests/s over 10 s);
  `--room 30`: 30 clients at once, with the server's time-out (answered or 503, p50/p95);
- `--latency`: time to the first streamed texts, the next-token chart's latency, and the compare view (two GPT-2
  columns at once) vs the same requests one after the other.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import aurore  # noqa: E402,F401  sets TF_USE_LEGACY_KERAS before TensorFlow loads

from aurore.hub.standin import HUB_MODEL_SHAPE, SHAPE  # noqa: E402
from load_server import Server  # noqa: E402  (benchmarks/load_server.py, beside this file)

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
    from aurore.engines.generation import Sampling

    times = []
    for seed in range(repeats):
        start = time.perf_counter()
        out = engine.generate_ids([PROMPT_IDS] * batch, Sampling(max_new_tokens=new_tokens, seed=seed))
        times.append(time.perf_counter() - start)
    return sum(len(o) for o in out) / statistics.median(times)


MIXED = [{"temperature": t, "top_k": k, "max_new_tokens": n} for t, k, n in
         ((0.7, 0, 16), (0.9, 20, 32), (1.2, 50, 64), (0.9, 50, 32), (1.2, 0, 16), (0.7, 20, 64))]
MEAN_MIXED_TOKENS = sum(m["max_new_tokens"] for m in MIXED) / len(MIXED)


def prompt_for(index: int, r: int) -> str:
    return " ".join(str(i + index + r) for i in PROMPT_IDS)


def same_settings(new_tokens: int):
    return lambda index, r: {"prompt": prompt_for(index, r), "max_new_tokens": new_tokens, "num_texts": 1}


def mixed_settings(index: int, r: int) -> dict:
    return {"prompt": prompt_for(index, r), "num_texts": 1, **MIXED[(index + r) % len(MIXED)]}


def report(label: str, row: dict) -> None:
    print(f"server   {label}, {row['clients']} client(s): p50 {row['p50_s']:.2f} s, p95 {row['p95_s']:.2f} s, "
          f"{row['requests_per_s']:.2f} requests/s ({row['answered']} answered, {row['busy_503']} got 503)", flush=True)


def serve_and_load(engine, args, batch_window: float) -> None:
    server = Server({"gpt2": engine}, batch_window)
    for clients in (1, 4, 8):
        report("same settings", server.load(clients, 4, same_settings(args.new_tokens)))
    server.close()


class BatchesOnly:
    """The engine without `open_slots`: the worker runs batches that new requests cannot join (before continuous
    batching), for an A/B in the same run."""

    def __init__(self, engine):
        self.engine = engine

    def __getattr__(self, name):
        if name == "open_slots":
            raise AttributeError(name)
        return getattr(self.engine, name)


def mixed_load(engine, batch_window: float, rounds: int = 2, seconds: float = 10.0) -> None:
    """The room case: every participant has moved the sliders. 16/32/64 new tokens, temperatures, top-k. Same and
    mixed settings alternate, so that the machine's drift touches both alike; each pair gives a ratio. Steady
    state: clients keep sending, and the requests completed in `seconds` after a ramp are counted."""
    server = Server({"gpt2": engine}, batch_window)
    one = server.steady(1, seconds, mixed_settings)
    steady_report("mixed settings", one)
    for _ in range(rounds):
        same = server.steady(8, seconds, same_settings(32))
        mixed = server.steady(8, seconds, mixed_settings)
        steady_report("same settings (32 tokens)", same)
        steady_report("mixed settings", mixed)
        print(f"mixed, 8 clients: {mixed['tokens_per_s'] / same['tokens_per_s']:.2f}x the same-settings "
              f"throughput just before in new tokens/s ({mixed['requests_per_s'] / same['requests_per_s']:.2f}x in "
              f"requests/s: mixed requests ask for {MEAN_MIXED_TOKENS:.1f} tokens on average, same-settings ones 32); "
              f"{mixed['tokens_per_s'] / one['tokens_per_s']:.2f}x one client's", flush=True)
    server.close()
    batches = Server({"gpt2": BatchesOnly(engine)}, batch_window)
    fixed = batches.steady(8, seconds, mixed_settings)
    steady_report("mixed settings, batches rows cannot join (before)", fixed)
    batches.close()
    print(f"continuous batching vs fixed batches, mixed settings, 8 clients: "
          f"{mixed['tokens_per_s'] / fixed['tokens_per_s']:.2f}x", flush=True)


def steady_report(label: str, row: dict) -> None:
    print(f"server   {label}, {row['clients']} client(s), steady state: {row['requests_per_s']:.2f} requests/s, "
          f"{row['tokens_per_s']:.1f} new tokens/s ({row['answered']} completed in the window)", flush=True)


def room_load(engine, clients: int, timeout: float, batch_window: float) -> None:
    """One organiser machine serving a room: every client sends 2 requests with mixed settings at once."""
    server = Server({"gpt2": engine}, batch_window, timeout=timeout)
    report(f"room, time-out {timeout:.0f} s", server.load(clients, 2, mixed_settings))
    server.close()


def latency(engine, batch_window: float) -> None:
    """Warm server, one client: the first streamed token, the next-token chart, compare vs separate requests."""
    server = Server({"gpt2": engine, "base": engine}, batch_window)
    body = {"prompt": prompt_for(0, 0), "max_new_tokens": 32, "num_texts": 1, "seed": 1}
    server.first_event(body)  # warm
    firsts = sorted(server.first_event({**body, "seed": s}) for s in range(5))
    full = []
    for s in range(3):
        start = time.perf_counter()
        server.post("/api/generate", {**body, "seed": s})
        full.append(time.perf_counter() - start)
    print(f"stream   first texts after {statistics.median(firsts):.3f} s (median of 5; whole answer "
          f"{statistics.median(full):.2f} s)", flush=True)
    charts = []
    for r in range(6):  # a new prompt each time: the model runs (a slider move on the same prompt costs less)
        start = time.perf_counter()
        server.post("/api/next-tokens", {"prompt": prompt_for(r, 0), "top_k": 20})
        charts.append(time.perf_counter() - start)
    slider = []
    for k in range(5):
        start = time.perf_counter()
        server.post("/api/next-tokens", {"prompt": prompt_for(0, 0), "top_k": 10 + k})
        slider.append(time.perf_counter() - start)
    print(f"next-token chart: {statistics.median(charts[1:]):.3f} s for a new prompt, {statistics.median(slider):.3f} s "
          "for a slider move (medians)", flush=True)
    separate = 0.0
    for key in ("gpt2", "base"):
        start = time.perf_counter()
        server.post("/api/generate", {**body, "model": key})
        separate += time.perf_counter() - start
    compare = []
    for _ in range(3):
        threads = [threading.Thread(target=server.post, args=("/api/generate", {**body, "model": key}))
                   for key in ("gpt2", "base")]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        compare.append(time.perf_counter() - start)
    print(f"compare  2 GPT-2 columns at once: {statistics.median(compare):.2f} s vs {separate:.2f} s one after the "
          f"other ({statistics.median(compare) / separate:.2f}x)", flush=True)
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="standin,gpt2-124m")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--batch-window", type=float, default=None, help="seconds; default: aurore.web.batching's")
    parser.add_argument("--mixed", action="store_true", help="also: 8 clients with mixed settings vs the same settings")
    parser.add_argument("--room", type=int, default=0, help="also: this many clients at once (e.g. 30), with a time-out")
    parser.add_argument("--room-timeout", type=float, default=60.0)
    parser.add_argument("--latency", action="store_true", help="also: first streamed token, next-token chart, compare")
    parser.add_argument("--skip-eager", action="store_true")
    args = parser.parse_args()
    from aurore.engines.fastgen import CompiledGenerator  # TensorFlow loads here, not for --help
    from aurore.engines.generation import Sampling
    from aurore.web.batching import BATCH_WINDOW
    batch_window = BATCH_WINDOW if args.batch_window is None else args.batch_window
    from probe import machine_line

    print(machine_line())
    print(f"CPU cores: {os.cpu_count()}; {args.new_tokens} new tokens after an 8-token prompt; sampling top-k 50, "
          f"top-p 0.95; server batch window {batch_window * 1000:.0f} ms")
    for shape in args.models.split(","):
        model = build(shape)
        print(f"\n== {shape} ({model.num_parameters():,} parameters)")
        for batch in () if args.skip_eager else (1, 8):
            print(f"eager    batch {batch}: {eager_tokens_per_s(model, batch, args.new_tokens):8.1f} tokens/s", flush=True)
        start = time.perf_counter()
        engine = CompiledGenerator(model, FixedTokenizer())
        traces = engine.warm_up((128,))
        warm = time.perf_counter() - start
        start = time.perf_counter()
        engine.generate_ids([PROMPT_IDS], Sampling(max_new_tokens=args.new_tokens))
        print(f"start-up: warm-up compiled {traces} programs in {warm:.1f} s; first request then took "
              f"{time.perf_counter() - start:.2f} s")
        for batch in (1, 8):
            print(f"compiled batch {batch}: {compiled_tokens_per_s(engine, batch, args.new_tokens):8.1f} tokens/s",
                  flush=True)
        serve_and_load(engine, args, batch_window)
        if args.mixed:
            mixed_load(engine, batch_window)
        if args.room:
            room_load(engine, args.room, args.room_timeout, batch_window)
        if args.latency:
            latency(engine, batch_window)


if __name__ == "__main__":
    main()

"""Fast text generation for the web app: GPT-2 decoding compiled once with XLA, reused for every request.

Eager TensorFlow `generate` is slow on a CPU (8 tokens/s for a 124M model on two cores, docs/benchmarks.md;
this module: 66-75). XLA compiles the decoding into one program, but `tf.function(jit_compile=True)` compiles again
for every new tensor shape and every new Python value. So:

- shapes come from a few buckets: the decoding step's rows (1 or 8) and cache length (prompt + new tokens: 128,
  256, ...), the prefill's prompt length (16, 64, 256, ...); the web app compiles them in the background as soon as
  its page is open (`warm_up`: first the three programs a lone request needs), and XLA keeps them on disk for the next
  start (`keep_compilations`);
- everything that varies per request is a tensor argument, one value per row (`xla_programs`), so requests with any
  mix of settings share the steps;
- each decoding step feeds ONE token per row through the model, at the row's own position, reusing the keys and
  values of its earlier positions (a KV cache of fixed size, written in place: `cached_gpt2`);
- rows come and go between compiled calls (`slots.Slots`, continuous batching): a request takes a free row as soon
  as another text ends, instead of waiting for the longest text of a batch.

The pieces: `cached_gpt2` (the model's maths over the cache), `xla_programs` (the traced programs and their shape
buckets), `slots` (the rows between calls, and the decoding loop), `warm_up` (preparing the programs). Sampling
(temperature, top-k, top-p, per-row random draws) is in `aurore/engines/warpers.py`. The eager pipeline stays the
reference.
"""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from aurore.engines.cached_gpt2 import CachedGPT2
from aurore.engines.generation import STREAM_CHUNK, Progress, Row, Sampling, rows_for
from aurore.engines.slots import Slots, decode_all
from aurore.engines.warm_up import WarmUp
from aurore.engines.xla_programs import BATCH_BUCKETS, CHUNK, LENGTH_BUCKETS, PROMPT_BUCKETS, DecodingPrograms
from aurore.errors import AuroreError


class CompiledGenerator:
    """Batched GPT-2 decoding with a KV cache, each row at its own position, compiled once per shape."""

    name = "compiled"

    def __init__(self, model, tokenizer, jit_compile: bool = True):
        self.model, self.tokenizer = model, tokenizer
        self.context_size = model.config.n_positions
        self.eos = tokenizer.eos_token_id
        self.programs = DecodingPrograms(CachedGPT2(model), self.eos, jit_compile)
        self._warm_up = WarmUp(self)

    @property
    def length_buckets(self) -> tuple[int, ...]:
        return tuple(b for b in LENGTH_BUCKETS if b < self.context_size) + (self.context_size,)

    def prompt_buckets(self, length: int) -> tuple[int, ...]:
        return tuple(b for b in PROMPT_BUCKETS if b < length) + (length,)

    def count_tokens(self, prompt: str) -> int:
        return len(self.tokenizer(prompt)["input_ids"])

    def check_length(self, needed: int) -> None:
        if needed > self.context_size:
            raise AuroreError(f"Le début de texte plus les jetons à générer ({needed} jetons) dépassent la mémoire du "
                              f"modèle ({self.context_size} jetons).", "Raccourcissez le texte ou baissez max_new_tokens.")

    def open_slots(self) -> Slots:
        """An empty set of rows for continuous batching (the web app's worker keeps one)."""
        return Slots(self)

    def decode_ids(self, prompts: list[list[int]], samplings: list[Sampling], steps: int = CHUNK,
                   wanted: Callable[[list[list[int]]], list[bool]] | None = None) -> list[list[int]]:
        """New token ids for each prompt (each ends before end-of-text), rows joining as others finish.

        With `wanted`, it is called every `steps` tokens with the ids so far, and rows it answers False for stop.
        """
        for ids, sampling in zip(prompts, samplings):
            self.check_length(len(ids) + sampling.max_new_tokens)
        return decode_all(Slots(self), prompts, samplings, steps, wanted)

    def generate_ids(self, prompts: list[list[int]], sampling: Sampling | list[Sampling]) -> list[list[int]]:
        """New token ids for each prompt; `sampling` is shared, or one per prompt."""
        return self.decode_ids(prompts, sampling if isinstance(sampling, list) else [sampling] * len(prompts))

    def generate_rows(self, rows: list[Row], progress: Progress | None = None) -> list[str]:
        """The engine interface of the web app: one text per row, each row with its own settings. With `progress`,
        texts are reported every STREAM_CHUNK tokens (see generation.Progress)."""
        encoded = [self.tokenizer(row.prompt)["input_ids"] for row in rows]

        def texts_of(new: list[list[int]]) -> list[str]:
            return [self.tokenizer.decode(ids + more, skip_special_tokens=True) for ids, more in zip(encoded, new)]

        new = self.decode_ids(encoded, [row.sampling for row in rows], STREAM_CHUNK if progress else CHUNK,
                              (lambda so_far: progress(texts_of(so_far))) if progress else None)
        return texts_of(new)

    def generate_batch(self, prompts: list[str], sampling: Sampling) -> list[list[str]]:
        """`num_return_sequences` texts per prompt (text i drawn with seed + i), batched together."""
        rows = [row for prompt in prompts for row in rows_for(prompt, sampling)]
        texts = iter(self.generate_rows(rows))
        return [[next(texts) for _ in rows_for(prompt, sampling)] for prompt in prompts]

    def next_token_logits(self, prompt: str) -> np.ndarray:
        """The model's scores for the token after `prompt` ([vocabulary]): one forward pass, as a TensorFlow graph
        (traced once, any prompt length: 2.7x faster than eager for a 124M model, and no XLA compilation)."""
        ids = self.tokenizer(prompt)["input_ids"][-self.context_size :]
        return self._next_logits(tf.constant([ids], tf.int32))[0].numpy()

    @tf.function(input_signature=[tf.TensorSpec([1, None], tf.int32)], reduce_retracing=True)
    def _next_logits(self, ids):
        return self.model(ids, training=False).logits[:, -1]

    def warm_up(self, lengths: tuple[int, ...] = (128,), batches: tuple[int, ...] = BATCH_BUCKETS,
                prompts: tuple[int, ...] | None = None, workers: int = 1,
                before_each: Callable[[], None] | None = None) -> int:
        """Compile programs before requests need them (see `warm_up.WarmUp.run`); returns how many this call
        prepared."""
        return self._warm_up.run(lengths, batches, prompts, workers, before_each)

    def token_text(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])


def keep_compilations(folder: Path) -> Path:
    """Keep XLA's compiled programs on disk, so the next start of the server reads them instead of compiling.

    TensorFlow's persistent compilation cache is keyed by the program; a program compiled for one CPU may crash
    on another (its instructions), so each kind of CPU and TensorFlow version gets its own folder. Call before
    the first compilation of the process (the flag is read then).
    """
    try:
        cpu = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    kind = hashlib.sha256(f"{platform.machine()} {cpu} {tf.__version__}".encode()).hexdigest()[:12]
    folder = Path(folder) / kind
    folder.mkdir(parents=True, exist_ok=True)
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if "persistent_cache_directory" not in flags:
        os.environ["TF_XLA_FLAGS"] = f"{flags} --tf_xla_persistent_cache_directory={folder}".strip()
    return folder

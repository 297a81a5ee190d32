"""Fast text generation for the web app: GPT-2 decoding compiled once with XLA, reused for every request.

Eager TensorFlow `generate` is slow on a CPU (8 tokens/s for a 124M model on two cores, docs/benchmarks.md;
this module: 66-75). XLA compiles the decoding into one program, but `tf.function(jit_compile=True)` compiles again
for every new tensor shape and every new Python value. So:

- shapes come from a few buckets: the batch (1 or 8 rows) and the buffer length (prompt + new tokens: 128, 256,
  ...); each (batch, length) pair is compiled once, at start-up (`warm_up`);
- everything that varies per request is a tensor argument, one value per row: the prompt tokens and their
  lengths, the number of new tokens, temperature, top-k, top-p, greedy or sampling, the seed. Requests with any mix
  of settings share one batch, and a row's text depends only on its own prompt, settings and seed (each row draws
  its random numbers from a hash of its seed: see `gumbel_noise`);
- each decoding step feeds ONE token per row through the model, reusing the keys and values of earlier positions
  (a KV cache of fixed size, updated in place), so a step costs the same at position 5 or 500;
- the decoding loop can stop at a given position and resume from its state (`stream_ids`): the server runs it
  STREAM_CHUNK tokens at a time to stream the texts and to drop rows whose page was closed.

Prompts are written left-aligned in the buffer. First a prefill loop feeds the prompt tokens every row shares,
`PREFILL` per pass (one pass of 8 tokens costs about as much as one of 1: the weights are read once); then the
decoding loop goes one position at a time: a row still inside its (longer) prompt copies its next prompt token
(teacher forcing), otherwise it samples. The model's own Keras layers (embeddings, layer norms, dense projections,
activation) do the maths; only attention is re-written, to use the cache.

Sampling (temperature, top-k, top-p, per-row random draws) is in `aurore/warpers.py`. The eager pipeline stays the
reference.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import platform
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import tensorflow as tf
from tensorflow.compiler.tf2xla.python.xla import dynamic_slice, dynamic_update_slice

from aurore.errors import AuroreError
from aurore.generation import Progress, Row, Sampling, rows_for
from aurore.warpers import sample_tokens

BATCH_BUCKETS = (1, 8)
LENGTH_BUCKETS = (128, 256, 512, 1024)
PREFILL = 8  # prompt positions read per pass while every row is still inside its prompt
STREAM_CHUNK = 8  # tokens per compiled call when streaming (each call copies the KV cache once)


class CompiledGenerator:
    """Batched GPT-2 decoding with a KV cache, compiled once per (batch, length) bucket."""

    name = "compiled"

    def __init__(self, model, tokenizer, jit_compile: bool = True):
        self.model, self.tokenizer = model, tokenizer
        config = model.config
        self.context_size = config.n_positions
        self.n_layer, self.n_head = config.n_layer, config.n_head
        self.head_dim = config.n_embd // config.n_head
        self.eos = tokenizer.eos_token_id
        self.traces = 0  # incremented each time TensorFlow (re)traces the decoding function
        rows, cache = tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, None, self.head_dim], tf.float32)
        signature = [tf.TensorSpec([], tf.int32), tf.TensorSpec([None, None], tf.int32),
                     tuple((cache, cache) for _ in range(self.n_layer)), tf.TensorSpec([None], tf.bool), rows, rows,
                     tf.TensorSpec([None], tf.float32), rows, tf.TensorSpec([None], tf.float32),
                     tf.TensorSpec([None], tf.bool), rows, tf.TensorSpec([], tf.int32)]
        # One trace for every shape (tracing the 12-block model takes seconds); XLA compiles each shape it meets.
        self._decode = tf.function(self._decode_chunk, input_signature=signature, jit_compile=jit_compile)

    # -- the model, a few positions per row ---------------------------------------------------------------------

    def _attend(self, block, x, cache_k, cache_v, t, length):
        """Self-attention of positions t..t+S-1 (x: [B, S, E]) over the cache, writing their keys and values.

        The caches are [B * H, T, D]: the layout the attention products read, so XLA updates them in place
        (with a reshape in between it copies every cache twice per step: ~15% of a step at T = 128, more above).
        """
        batch, positions = tf.shape(x)[0], tf.shape(x)[1]

        def heads(part):  # [B, S, E] -> [B * H, S, D]
            part = tf.transpose(tf.reshape(part, [batch, positions, self.n_head, self.head_dim]), [0, 2, 1, 3])
            return tf.reshape(part, [batch * self.n_head, positions, self.head_dim])

        q, k, v = (heads(part) for part in tf.split(block.attn.c_attn(x), 3, axis=-1))
        cache_k = dynamic_update_slice(cache_k, k, [0, t, 0])  # only the new positions are written
        cache_v = dynamic_update_slice(cache_v, v, [0, t, 0])
        scores = tf.einsum("nqd,ntd->nqt", q, cache_k) / math.sqrt(self.head_dim)
        visible = tf.range(length)[None, :] <= t + tf.range(positions)[:, None]  # causal: [S, T]
        scores = tf.where(visible[None], scores, tf.constant(-1e4, x.dtype))  # GPT-2's mask value
        out = tf.einsum("nqt,ntd->nqd", tf.nn.softmax(scores, axis=-1), cache_v)  # [B * H, S, D]
        out = tf.transpose(tf.reshape(out, [batch, self.n_head, positions, self.head_dim]), [0, 2, 1, 3])
        return block.attn.c_proj(tf.reshape(out, [batch, positions, -1])), cache_k, cache_v

    def _logits(self, tokens, t, last, caches, length):
        """Feed tokens [B, S] at positions t..t+S-1; return the next-token logits after position t+last."""
        transformer = self.model.transformer
        x = transformer.wte(tokens) + transformer.wpe(t + tf.range(tf.shape(tokens)[1]))[None]
        updated = []
        for block, (cache_k, cache_v) in zip(transformer.h, caches):
            attended, cache_k, cache_v = self._attend(block, block.ln_1(x), cache_k, cache_v, t, length)
            updated.append((cache_k, cache_v))
            x = x + attended
            x = x + block.mlp.c_proj(block.mlp.act(block.mlp.c_fc(block.ln_2(x))))
        x = transformer.ln_f(dynamic_slice(x, [0, last, 0], [tf.shape(x)[0], 1, x.shape[2]]))[:, 0]  # [B, E]
        return tf.matmul(x, transformer.wte.embeddings, transpose_b=True), tuple(updated)

    def _decode_chunk(self, t, buffer, caches, finished, lengths, new_tokens, temperature, top_k, top_p, do_sample,
                      seeds, stop_at):
        """Decode from position t until position `stop_at` has its token or every row is complete.

        buffer: [B, T] int32, prompts left-aligned; settings: one per row ([B]). Returns the state to pass to the
        next call: (t, buffer, caches, finished). One call can do the whole text; the server calls it a few tokens
        at a time to stream them (and to stop rows nobody waits for any more).
        """
        self.traces += 1  # Python side effect: runs only while tracing
        batch, length = tf.shape(buffer)[0], tf.shape(buffer)[1]  # constants for XLA, which compiles per shape
        shared = tf.reduce_min(lengths)  # positions 0..shared-1 hold prompt tokens in every row

        def step(positions: int):
            """A loop body: feed `positions` tokens from t (the prompt ones only count), write the next token."""

            def body(t, buffer, caches, finished):
                count = tf.minimum(positions, shared - t) if positions > 1 else 1
                tokens = dynamic_slice(buffer, [0, t], [batch, positions])
                logits, caches = self._logits(tokens, t, count - 1, caches, length)
                t = t + count  # the position that receives the next token
                sampled = sample_tokens(logits, temperature, top_k, top_p, seeds, t)
                chosen = tf.where(do_sample, sampled, tf.argmax(logits, axis=-1, output_type=tf.int32))
                in_prompt = t < lengths
                done = t >= lengths + new_tokens  # this row already has all its new tokens
                chosen = tf.where(finished | done, self.eos, chosen)
                prompt_token = dynamic_slice(buffer, [0, tf.minimum(t, length - 1)], [batch, 1])[:, 0]
                next_token = tf.where(in_prompt, prompt_token, chosen)
                finished = finished | (~in_prompt & (chosen == self.eos))
                buffer = dynamic_update_slice(buffer, next_token[:, None], [0, t])
                return t, buffer, caches, finished

            return body

        def unfinished(t, buffer, caches, finished):  # a row is complete once it wrote end-of-text or its last token
            return (t < stop_at) & ~tf.reduce_all(finished | (t >= lengths + new_tokens - 1))

        # Prefill: while every row is still inside its prompt, read up to PREFILL prompt tokens per pass, so the
        # weights are read from memory once, not once per token. Slots past the last token that counted hold
        # junk, hidden by the causal mask and overwritten when their turn comes.
        state = tf.while_loop(lambda t, *_: (shared - t >= 2) & (t + PREFILL <= length), step(PREFILL),
                              (t, buffer, caches, finished), maximum_iterations=length - 1)
        # Decoding: one token per pass.
        return tf.while_loop(unfinished, step(1), state, maximum_iterations=length - 1)

    # -- requests ------------------------------------------------------------------------------------------------

    def count_tokens(self, prompt: str) -> int:
        return len(self.tokenizer(prompt)["input_ids"])

    @staticmethod
    def bucket(value: int, buckets: tuple[int, ...]) -> int:
        return next(b for b in buckets if b >= value)

    def stream_ids(self, prompts: list[list[int]], samplings: list[Sampling], chunk: int | None = None,
                   wanted: Callable[[], list[bool]] | None = None, min_length: int = 0) -> Iterator[list[list[int]]]:
        """Decode up to 8 rows, each with its own settings; yield each row's new token ids so far.

        chunk=None: one compiled call, one yield. chunk=N: a first yield as soon as the shortest prompt has its
        first new token, then one every N tokens; before each call, rows for which `wanted()` says False stop.
        """
        rows = len(prompts)
        longest = max(len(ids) + s.max_new_tokens for ids, s in zip(prompts, samplings))
        if longest > self.context_size:
            raise AuroreError(f"Le début de texte plus les jetons à générer ({longest} jetons) dépassent la mémoire du "
                              f"modèle ({self.context_size} jetons).", "Raccourcissez le texte ou baissez max_new_tokens.")
        length = self.bucket(max(longest, min_length),
                             tuple(b for b in LENGTH_BUCKETS if b <= self.context_size) + (self.context_size,))
        batch = self.bucket(rows, BATCH_BUCKETS)
        padded = [*prompts, *[prompts[0]] * (batch - rows)]  # spare rows repeat a prompt (prefill stays shared)
        settings = [*samplings, *[dataclasses.replace(samplings[0], max_new_tokens=0)] * (batch - rows)]
        buffer = np.full((batch, length), self.eos, dtype=np.int32)
        for i, ids in enumerate(padded):
            buffer[i, : len(ids)] = ids
        lengths = np.array([len(ids) for ids in padded], np.int32)
        new_tokens = np.array([s.max_new_tokens for s in settings], np.int32)
        per_row = (tf.constant(lengths), tf.constant(new_tokens),
                   tf.constant([s.temperature for s in settings], tf.float32),
                   tf.constant([s.top_k for s in settings], tf.int32),
                   tf.constant([s.top_p for s in settings], tf.float32),
                   tf.constant([s.do_sample for s in settings]),
                   tf.constant([s.seed % 2**31 for s in settings], tf.int32))
        zeros = tf.zeros([batch * self.n_head, length, self.head_dim], tf.float32)
        finished = np.arange(batch) >= rows
        t, buffer, caches = tf.constant(0), tf.constant(buffer), tuple((zeros, zeros) for _ in range(self.n_layer))
        stop = int(lengths[:rows].min()) if chunk else length
        while True:
            t, buffer, caches, done = self._decode(t, buffer, caches, tf.constant(finished), *per_row,
                                                   tf.constant(stop, tf.int32))
            position, out, finished = int(t), buffer.numpy(), done.numpy()
            yield [self._new_ids(out[i], lengths[i], min(position + 1, lengths[i] + new_tokens[i]))
                   for i in range(rows)]
            if np.all(finished | (position >= lengths + new_tokens - 1)) or position >= length - 1:
                return
            if wanted is not None:
                finished = finished | ~np.array([*wanted(), *[False] * (batch - rows)])
            stop = position + chunk

    def _new_ids(self, row: np.ndarray, start: int, end: int) -> list[int]:
        new = row[start:end].tolist()
        return new[: new.index(self.eos)] if self.eos in new else new

    def generate_ids(self, prompts: list[list[int]], sampling: Sampling | list[Sampling],
                     min_length: int = 0) -> list[list[int]]:
        """New token ids for each prompt (each list ends before the first end-of-text token), in one compiled call
        per 8 rows; `sampling` is shared, or one per prompt."""
        samplings = sampling if isinstance(sampling, list) else [sampling] * len(prompts)
        results = []
        for start in range(0, len(prompts), BATCH_BUCKETS[-1]):
            part = slice(start, start + BATCH_BUCKETS[-1])
            *_, last = self.stream_ids(prompts[part], samplings[part], min_length=min_length)
            results += last
        return results

    def generate_rows(self, rows: list[Row], progress: Progress | None = None) -> list[str]:
        """The engine interface of the web app: one text per row, each row with its own settings, up to 8 rows per
        compiled batch. With `progress`, texts are streamed every STREAM_CHUNK tokens (see generation.Progress)."""
        encoded = [self.tokenizer(row.prompt)["input_ids"] for row in rows]
        texts = [row.prompt for row in rows]
        wanted = [True] * len(rows)
        for start in range(0, len(rows), BATCH_BUCKETS[-1]):
            part = slice(start, start + BATCH_BUCKETS[-1])
            stream = self.stream_ids(encoded[part], [row.sampling for row in rows[part]],
                                     chunk=STREAM_CHUNK if progress else None, wanted=lambda: wanted[part])
            for new in stream:
                for i, ids in enumerate(new, start):
                    texts[i] = self.tokenizer.decode(encoded[i] + ids, skip_special_tokens=True)
                if progress:
                    wanted = progress(texts)
        return texts

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

    def warm_up(self, lengths: tuple[int, ...] = (128,)) -> int:
        """Compile (or read from the persistent cache) every (batch, length) bucket the server will use, before the
        first request: a one-token prompt and one new token, the shapes are what counts. Returns how many."""
        shapes = {(batch, min(length, self.context_size)) for length in lengths for batch in BATCH_BUCKETS}
        for batch, length in sorted(shapes):
            self.generate_ids([[self.eos]] * batch, Sampling(max_new_tokens=1), min_length=length)
        return len(shapes)

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

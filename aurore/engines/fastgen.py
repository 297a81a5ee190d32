"""Fast text generation for the web app: GPT-2 decoding compiled once with XLA, reused for every request.

Eager TensorFlow `generate` is slow on a CPU (8 tokens/s for a 124M model on two cores, docs/benchmarks.md;
this module: 66-75). XLA compiles the decoding into one program, but `tf.function(jit_compile=True)` compiles again
for every new tensor shape and every new Python value. So:

- shapes come from a few buckets: the decoding step's rows (1 or 8) and cache length (prompt + new tokens: 128,
  256, ...), the prefill's prompt length (16, 64, 256, ...); the web app compiles them in the background as soon as
  its page is open (`warm_up`: first the three programs a lone request needs), and XLA keeps them on disk for the next
  start (`keep_compilations`);
- everything that varies per request is a tensor argument, one value per row: position, last token, tokens still
  to write, temperature, top-k, top-p, greedy or sampling, the seed. Requests with any mix of settings share the
  steps, and a row's text depends only on its own prompt, settings and seed (each row draws its random numbers
  from a hash of its seed and position: see `warpers.gumbel_noise`);
- each decoding step feeds ONE token per row through the model, at the row's own position, reusing the keys and
  values of its earlier positions (a KV cache of fixed size, written in place), so a step costs about the same at
  position 5 or 500;
- rows come and go between compiled calls (`Slots`, continuous batching): a request takes a free row as soon as
  another text ends, instead of waiting for the longest text of a batch. A new row first reads its prompt in one
  pass (`_prefill_rows`: one pass over 20 tokens reads the weights once, token by token would read them 20 times),
  then decodes with the others. The server calls the decoder a few steps at a time (`generation.STREAM_CHUNK` at
  most), to stream the texts, hand over complete ones, let waiting requests in and drop rows whose page was
  closed.

The model's own Keras layers (embeddings, layer norms, dense projections, activation) do the maths; only attention
is re-written, to use the cache.

Sampling (temperature, top-k, top-p, per-row random draws) is in `aurore/engines/warpers.py`. The eager pipeline stays the
reference.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import platform
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf
from tensorflow.compiler.tf2xla.python.xla import dynamic_update_slice

from aurore.engines.generation import STREAM_CHUNK, Progress, Row, Sampling, rows_for
from aurore.engines.warpers import sample_tokens
from aurore.errors import AuroreError

BATCH_BUCKETS = (1, 8)
PREFILL_ROWS = (1, 4, 8)  # prompts read together in one prefill (8 at once: 141 ms vs 8 x 42 ms alone, 124M, 16 tokens)
LENGTH_BUCKETS = (128, 256, 512, 1024)
PROMPT_BUCKETS = (16, 64, 256, 1024)  # prompt tokens read by one prefill call (padded up to the bucket)
CHUNK = 64  # most decoding steps per compiled call (the server asks for fewer: STREAM_CHUNK)


class CompiledGenerator:
    """Batched GPT-2 decoding with a KV cache, each row at its own position, compiled once per shape."""

    name = "compiled"

    def __init__(self, model, tokenizer, jit_compile: bool = True):
        self.model, self.tokenizer = model, tokenizer
        config = model.config
        self.context_size = config.n_positions
        self.n_layer, self.n_head = config.n_layer, config.n_head
        self.head_dim = config.n_embd // config.n_head
        self.eos = tokenizer.eos_token_id
        self.traces = 0  # incremented each time TensorFlow (re)traces a compiled function
        self._warmed: set[tuple] = set()  # the programs warm_up prepared
        rows, cache = tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, None, self.head_dim], tf.float32)
        caches = tuple((cache, cache) for _ in range(self.n_layer))
        # One trace for every shape (tracing the 12-block model takes seconds); XLA compiles each shape it meets.
        # The loops are written with tf.while_loop and tf.cond: without AutoGraph's rewriting of the Python source,
        # tracing at each start of the server takes 1.4 s instead of 3.4 (124M shape, same run).
        self._decode = tf.function(self._decode_rows, jit_compile=jit_compile, autograph=False, input_signature=[
            rows, rows, rows, caches, tf.TensorSpec([None], tf.float32), rows, tf.TensorSpec([None], tf.float32),
            tf.TensorSpec([None], tf.bool), rows, tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.bool)])
        self._prefill = tf.function(self._prefill_rows, jit_compile=jit_compile, autograph=False,
                                    input_signature=[tf.TensorSpec([None, None], tf.int32)])
        # A small program per shape: eagerly, its 4 ops x 2 x layers cost as much as the prefill.
        self._place = tf.function(self._place_rows, jit_compile=jit_compile, autograph=False, input_signature=[
            caches, tuple((cache, cache) for _ in range(self.n_layer)), rows])

    # -- the model ------------------------------------------------------------------------------------------------

    def _blocks(self, x, caches, write, visible):
        """The transformer blocks over x [B, S, E]; each block's attention writes its new keys and values into its
        cache with `write(cache, new)` and attends to the cache positions `visible` ([B * H or 1, S, T]) shows."""
        batch, positions = tf.shape(x)[0], tf.shape(x)[1]

        def heads(part):  # [B, S, E] -> [B * H, S, D]: the layout the attention products read (no copy per step)
            part = tf.transpose(tf.reshape(part, [batch, positions, self.n_head, self.head_dim]), [0, 2, 1, 3])
            return tf.reshape(part, [batch * self.n_head, positions, self.head_dim])

        updated = []
        for block, (cache_k, cache_v) in zip(self.model.transformer.h, caches):
            q, k, v = (heads(part) for part in tf.split(block.attn.c_attn(block.ln_1(x)), 3, axis=-1))
            cache_k, cache_v = write(cache_k, k), write(cache_v, v)
            scores = tf.einsum("nqd,ntd->nqt", q, cache_k) / math.sqrt(self.head_dim)
            scores = tf.where(visible, scores, tf.constant(-1e4, x.dtype))  # GPT-2's mask value
            out = tf.einsum("nqt,ntd->nqd", tf.nn.softmax(scores, axis=-1), cache_v)  # [B * H, S, D]
            out = tf.transpose(tf.reshape(out, [batch, self.n_head, positions, self.head_dim]), [0, 2, 1, 3])
            x = x + block.attn.c_proj(tf.reshape(out, [batch, positions, -1]))
            x = x + block.mlp.c_proj(block.mlp.act(block.mlp.c_fc(block.ln_2(x))))
            updated.append((cache_k, cache_v))
        return x, tuple(updated)

    def _embed(self, tokens, positions):
        transformer = self.model.transformer
        return transformer.wte(tokens) + transformer.wpe(positions)

    def _prefill_rows(self, tokens):
        """Read prompts (tokens [N, P]: each prompt but its last token, padded) in one pass: their keys and values,
        [N * H, P, D] per layer. One pass over P tokens reads the weights once (token by token, it would read them P
        times), and prompts arriving together share it."""
        self.traces += 1  # Python side effect: runs only while tracing
        length = tf.shape(tokens)[1]
        causal = tf.range(length)[None, :] <= tf.range(length)[:, None]
        _, prompt = self._blocks(self._embed(tokens, tf.range(length)[None]), [(None, None)] * self.n_layer,
                                 lambda _cache, new: new, causal[None])
        return prompt

    def _place_rows(self, caches, prompt, sources):
        """Write prompts' keys and values into rows: row b takes prompt `sources[b]` ([B] int32), or keeps its own
        (-1). The texts of one request share their prompt. Positions past a prompt hold junk, hidden by the mask
        until written."""
        self.traces += 1
        batch, size = tf.shape(sources)[0], tf.shape(caches[0][0])[1]
        take = tf.repeat(sources >= 0, self.n_head)[:, None, None]
        index = tf.repeat(tf.maximum(sources, 0) * self.n_head, self.n_head) + tf.tile(tf.range(self.n_head), [batch])

        def place(cache, new):  # [N * H, P, D] -> the taking rows of [B * H, T, D]
            padded = tf.pad(new, [[0, 0], [0, size - tf.shape(new)[1]], [0, 0]])
            return tf.where(take, tf.gather(padded, index), cache)

        return tuple((place(ck, k), place(cv, v)) for (ck, cv), (k, v) in zip(caches, prompt))

    def _decode_rows(self, positions, last, remaining, caches, temperature, top_k, top_p, do_sample, seeds, steps,
                     refill):
        """Up to `steps` decoding steps; each feeds every row's last token at the row's own position and draws the
        row's next token with its own settings. A row with `remaining` 0 is idle (finished, or a free slot).

        Returns (positions, last, remaining, caches, tokens [B, CHUNK]: each step's token per row, -1 where idle).
        With `refill`, it returns as soon as a row finishes, so that a waiting request can take its place.
        """
        self.traces += 1
        batch, size = tf.shape(positions)[0], tf.shape(caches[0][0])[1]
        rows = tf.range(batch * self.n_head)

        def body(step, positions, last, remaining, caches, tokens, _ended):
            at = tf.repeat(positions, self.n_head)  # each row's position, per head

            def write(cache, new):  # only each row's own position is written (a scatter: no copy of the cache)
                return tf.tensor_scatter_nd_update(cache, tf.stack([rows, at], axis=1), new[:, 0])

            visible = (tf.range(size)[None, :] <= at[:, None])[:, None, :]  # [B * H, 1, T]
            x, caches = self._blocks(self._embed(last[:, None], positions[:, None]), caches, write, visible)
            x = self.model.transformer.ln_f(x)[:, 0]  # [B, E]
            logits = tf.matmul(x, self.model.transformer.wte.embeddings, transpose_b=True)
            following = positions + 1  # the position that receives the token: the random draws depend on it
            active = remaining > 0
            # Rows that do not sample (greedy, idle) ask for the likeliest token: they never make the batch draw
            # over the whole vocabulary for a top-k of 0 they do not use.
            cheap_k = tf.where(active & do_sample, top_k, 1)
            sampled = sample_tokens(logits, temperature, cheap_k, top_p, seeds, following)
            chosen = tf.where(do_sample, sampled, tf.argmax(logits, axis=-1, output_type=tf.int32))
            chosen = tf.where(active, chosen, -1)
            tokens = dynamic_update_slice(tokens, chosen[:, None], [0, step])
            left = tf.where(chosen == self.eos, 0, remaining - 1)
            ended = active & (left == 0)
            return (step + 1, tf.where(active, following, positions), tf.where(active, chosen, last),
                    tf.where(active, left, remaining), caches, tokens, tf.reduce_any(ended))

        def going(step, positions, last, remaining, caches, tokens, ended):
            return (step < steps) & tf.reduce_any(remaining > 0) & ~(refill & ended)

        start = (tf.constant(0), positions, last, remaining, caches, tf.fill([batch, CHUNK], -1), tf.constant(False))
        _, positions, last, remaining, caches, tokens, _ = tf.while_loop(going, body, start, maximum_iterations=CHUNK)
        return positions, last, remaining, caches, tokens

    # -- requests ------------------------------------------------------------------------------------------------

    @property
    def length_buckets(self) -> tuple[int, ...]:
        return tuple(b for b in LENGTH_BUCKETS if b < self.context_size) + (self.context_size,)

    def prompt_buckets(self, length: int) -> tuple[int, ...]:
        return tuple(b for b in PROMPT_BUCKETS if b < length) + (length,)

    @staticmethod
    def bucket(value: int, buckets: tuple[int, ...]) -> int:
        return next(b for b in buckets if b >= value)

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
        slots, results, waiting, running = Slots(self), [[] for _ in prompts], list(range(len(prompts))), {}
        while waiting or running:
            groups, free = [], slots.free  # rows in a row with the same prompt share its keys and values
            while waiting and free:
                group = 1
                while group < min(len(waiting), free) and prompts[waiting[group]] == prompts[waiting[0]]:
                    group += 1
                groups.append(waiting[:group])
                waiting, free = waiting[group:], free - group
            if groups:  # one prefill for all the prompts that join now
                admitted = slots.admit_many([(prompts[g[0]], [samplings[i] for i in g]) for g in groups])
                for slots_of, indices in zip(admitted, groups):
                    running.update(zip(slots_of, indices))
            fresh = wanted is not None and any(not slots.new_ids(slot) for slot in running)
            slots.advance(1 if fresh else steps, refill=bool(waiting))  # a streamed text shows its first token at once
            for slot, index in list(running.items()):
                results[index] = list(slots.new_ids(slot))
                if slots.finished(slot):
                    slots.release(slot)
                    del running[slot]
            if wanted is not None and running:
                keep = wanted([list(ids) for ids in results])
                for slot, index in list(running.items()):
                    if not keep[index]:
                        slots.release(slot)
                        del running[slot]
        return results

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
                prompts: tuple[int, ...] | None = None) -> int:
        """Compile (or read from the persistent cache) programs before requests need them: for each row count and
        cache length, the decoding step, and per prompt bucket (default: all that fit) the prefills of 1, 4 and 8
        prompts at once and their placing into the rows.
        Programs an earlier call prepared are skipped. Returns how many programs this call prepared."""
        before = len(self._warmed)
        for length in sorted({min(length, self.context_size) for length in lengths}):
            for batch in batches:
                buckets = prompts or self.prompt_buckets(length)
                for prompt in buckets:
                    for count in (n for n in PREFILL_ROWS if n <= batch):
                        if ("place", batch, length, count, prompt) in self._warmed:
                            continue
                        slots = Slots(self)  # `count` prompts whose prefill reads `prompt` tokens, `batch` rows
                        ids = [self.eos] * (min(prompt, length - 2) + 1)
                        slots.admit_many([(ids, [Sampling(max_new_tokens=1)] * (batch // count))] * count,
                                         min_length=length)
                        self._warmed |= {("prefill", count, prompt), ("place", batch, length, count, prompt)}
                if ("decode", batch, length) not in self._warmed:
                    slots = Slots(self)  # `batch` one-token prompts (nothing to prefill), one step
                    slots.admit([self.eos], [Sampling(max_new_tokens=1)] * batch, min_length=length)
                    slots.advance(1)
                    self._warmed.add(("decode", batch, length))
        return len(self._warmed) - before

    def token_text(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])


@dataclasses.dataclass
class _Row:
    prompt_ids: list[int]
    sampling: Sampling
    new_ids: list[int] = dataclasses.field(default_factory=list)
    done: bool = False


class Slots:
    """Rows decoding together, each at its own position: a row joins as soon as a slot is free (continuous
    batching), so a short text never waits for a long one, and requests with any settings share the steps.

    The state lives here between compiled calls: per row its position, last token, tokens still to write and
    settings, and the KV caches ([B * H, T, D] per layer). The row count B (1 or 8) and the length T grow when a
    row needs them (the caches are padded) and shrink back when every row is done.
    """

    def __init__(self, generator: CompiledGenerator):
        self.generator = generator
        self._reset(1, generator.bucket(1, generator.length_buckets))

    def _reset(self, batch: int, length: int) -> None:
        g = self.generator
        self.rows: list[_Row | None] = [None] * batch
        self.length = length
        self.positions = np.zeros(batch, np.int32)
        self.last = np.full(batch, g.eos, np.int32)
        self.remaining = np.zeros(batch, np.int32)
        self.settings = [Sampling(max_new_tokens=0)] * batch
        zeros = tf.zeros([batch * g.n_head, length, g.head_dim], tf.float32)
        self.caches = tuple((zeros, zeros) for _ in range(g.n_layer))

    @property
    def free(self) -> int:
        return BATCH_BUCKETS[-1] - sum(row is not None for row in self.rows)

    @property
    def busy(self) -> bool:
        return bool(self.remaining.any())

    @property
    def next_end(self) -> int:
        """Steps until the first busy row has all its tokens (it may end sooner, on end-of-text); 0 when none is busy."""
        busy = self.remaining[self.remaining > 0]
        return int(busy.min()) if busy.size else 0

    def _grow(self, batch: int, length: int) -> None:
        if all(row is None for row in self.rows):  # nothing to keep: start afresh at the smallest shape that fits
            return self._reset(batch, length)
        batch, length = max(batch, len(self.rows)), max(length, self.length)
        more, longer = batch - len(self.rows), length - self.length
        if not more and not longer:
            return
        g = self.generator
        self.caches = tuple(tuple(tf.pad(c, [[0, more * g.n_head], [0, longer], [0, 0]]) for c in pair)
                            for pair in self.caches)
        self.rows += [None] * more
        self.positions = np.concatenate([self.positions, np.zeros(more, np.int32)])
        self.last = np.concatenate([self.last, np.full(more, g.eos, np.int32)])
        self.remaining = np.concatenate([self.remaining, np.zeros(more, np.int32)])
        self.settings += [Sampling(max_new_tokens=0)] * more
        self.length = length

    def admit(self, prompt_ids: list[int], samplings: list[Sampling], min_length: int = 0) -> list[int]:
        """Give one prompt's rows (one per sampling) free slots; returns their slots."""
        return self.admit_many([(prompt_ids, samplings)], min_length)[0]

    def admit_many(self, prompts: list[tuple[list[int], list[Sampling]]], min_length: int = 0) -> list[list[int]]:
        """Give each prompt's rows (one per sampling) free slots and read the prompts in one prefill; returns each
        prompt's slots."""
        if not prompts:
            return []
        g = self.generator
        wanted = [len(ids) + max(s.max_new_tokens for s in samplings) for ids, samplings in prompts]
        for needed in wanted:
            g.check_length(needed)
        rows = sum(len(samplings) for _, samplings in prompts)
        if rows > self.free:
            raise ValueError(f"{rows} rows, {self.free} free slots")
        used = len(self.rows) - sum(row is None for row in self.rows)
        self._grow(g.bucket(used + rows, BATCH_BUCKETS), g.bucket(max(*wanted, min_length), g.length_buckets))
        free = [i for i, row in enumerate(self.rows) if row is None]
        sources, reads, admitted = np.full(len(self.rows), -1, np.int32), [], []
        for ids, samplings in prompts:
            slots, free = free[: len(samplings)], free[len(samplings) :]
            for slot, sampling in zip(slots, samplings):
                self.rows[slot] = _Row(list(ids), sampling, done=sampling.max_new_tokens == 0)
                self.positions[slot] = len(ids) - 1  # the prompt's last token is fed by the first decoding step
                self.last[slot] = ids[-1]
                self.remaining[slot] = sampling.max_new_tokens
                self.settings[slot] = sampling
            if len(ids) > 1:
                sources[slots] = len(reads)
                reads.append(ids[:-1])
            admitted.append(slots)
        if reads:
            padded = np.full((g.bucket(len(reads), PREFILL_ROWS),
                              g.bucket(max(map(len, reads)), g.prompt_buckets(self.length))), g.eos, np.int32)
            for n, read in enumerate(reads):
                padded[n, : len(read)] = read
            self.caches = g._place(self.caches, g._prefill(tf.constant(padded)), tf.constant(sources))
        return admitted

    def advance(self, steps: int, refill: bool = False) -> None:
        """Decode up to `steps` tokens per busy row (with `refill`, stop early when a row finishes)."""
        if not self.busy:
            return
        s = self.settings
        out = self.generator._decode(
            tf.constant(self.positions), tf.constant(self.last), tf.constant(self.remaining), self.caches,
            tf.constant([x.temperature for x in s], tf.float32), tf.constant([x.top_k for x in s], tf.int32),
            tf.constant([x.top_p for x in s], tf.float32), tf.constant([x.do_sample for x in s]),
            tf.constant([x.seed % 2**31 for x in s], tf.int32), tf.constant(min(steps, CHUNK), tf.int32),
            tf.constant(refill))
        positions, last, remaining, self.caches, tokens = out
        self.positions, self.last, self.remaining = positions.numpy(), last.numpy(), remaining.numpy()
        for row, written in zip(self.rows, tokens.numpy()):
            if row is not None and not row.done:
                row.new_ids += [t for t in written.tolist() if t >= 0 and t != self.generator.eos]
        for slot, row in enumerate(self.rows):
            if row is not None:
                row.done = bool(self.remaining[slot] == 0)

    def admit_requests(self, requests: list[list[Row]]) -> list[list[int]]:
        """`admit_many` for requests given as text (each: one prompt, a row per text); returns each one's slots."""
        assert all(len({row.prompt for row in rows}) == 1 for rows in requests), "a request's rows share a prompt"
        tokenize = self.generator.tokenizer
        return self.admit_many([(tokenize(rows[0].prompt)["input_ids"], [row.sampling for row in rows])
                                for rows in requests])

    def new_ids(self, slot: int) -> list[int]:
        return self.rows[slot].new_ids

    def text(self, slot: int) -> str:
        row = self.rows[slot]
        return self.generator.tokenizer.decode(row.prompt_ids + row.new_ids, skip_special_tokens=True)

    def started(self, slot: int) -> bool:
        return bool(self.rows[slot].new_ids) or self.rows[slot].done

    def finished(self, slot: int) -> bool:
        return self.rows[slot].done

    def release(self, slot: int) -> None:
        """Free a slot (its row is done, or nobody wants it any more: it stops at once)."""
        self.rows[slot] = None
        self.remaining[slot] = 0
        if all(row is None for row in self.rows):
            self._reset(1, self.generator.bucket(1, self.generator.length_buckets))


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

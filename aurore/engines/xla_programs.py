"""The compiled decoder's three XLA programs, each traced once: reading prompts (prefill), placing their keys and
values into rows, and decoding steps.

`tf.function(jit_compile=True)` compiles again for every new tensor shape and every new Python value. So shapes
come from a few buckets (below), and everything that varies per request is a tensor argument, one value per row:
position, last token, tokens still to write, temperature, top-k, top-p, greedy or sampling, the seed. Requests with
any mix of settings share the steps, and a row's text depends only on its own prompt, settings and seed (each row
draws its random numbers from a hash of its seed and position: see `warpers.gumbel_noise`).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.compiler.tf2xla.python.xla import dynamic_update_slice

from aurore.engines.cached_gpt2 import CachedGPT2, Caches
from aurore.engines.generation import Sampling
from aurore.engines.warpers import sample_tokens

BATCH_BUCKETS = (1, 8)
PREFILL_ROWS = (1, 4, 8)  # prompts read together in one prefill (8 at once: 141 ms vs 8 x 42 ms alone, 124M, 16 tokens)
LENGTH_BUCKETS = (128, 256, 512, 1024)
PROMPT_BUCKETS = (16, 64, 256, 1024)  # prompt tokens read by one prefill call (padded up to the bucket)
CHUNK = 64  # most decoding steps per compiled call (the server asks for fewer: generation.STREAM_CHUNK)


def bucket(value: int, buckets: tuple[int, ...]) -> int:
    """The smallest bucket that holds `value`."""
    return next(b for b in buckets if b >= value)


class DecodingPrograms:
    """The traced programs of one model; `traces` counts how many times TensorFlow (re)traced one of them."""

    def __init__(self, net: CachedGPT2, eos: int, jit_compile: bool = True):
        self.net, self.eos = net, eos
        self.traces = 0
        rows, caches = tf.TensorSpec([None], tf.int32), net.cache_spec()
        # One trace for every shape (tracing the 12-block model takes seconds); XLA compiles each shape it meets.
        # The loops are written with tf.while_loop and tf.cond: without AutoGraph's rewriting of the Python source,
        # tracing at each start of the server takes 1.4 s instead of 3.4 (124M shape, same run).
        self.decode = tf.function(self._decode_rows, jit_compile=jit_compile, autograph=False, input_signature=[
            rows, rows, rows, caches, tf.TensorSpec([None], tf.float32), rows, tf.TensorSpec([None], tf.float32),
            tf.TensorSpec([None], tf.bool), rows, tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.bool)])
        self.prefill = tf.function(self._prefill_rows, jit_compile=jit_compile, autograph=False,
                                   input_signature=[tf.TensorSpec([None, None], tf.int32)])
        # A small program per shape: eagerly, its 4 ops x 2 x layers cost as much as the prefill.
        self.place = tf.function(self._place_rows, jit_compile=jit_compile, autograph=False,
                                 input_signature=[caches, net.cache_spec(), rows])

    def trace(self, *names: str) -> None:
        """Trace these programs ("decode", "prefill", "place"; once: later calls return at once). Their order must
        be the same at every start: XLA's persistent cache names a program after the functions traced before it."""
        for name in names:
            getattr(self, name).get_concrete_function()

    def read_prompts(self, caches: Caches, reads: list[list[int]], sources: np.ndarray,
                     prompt_buckets: tuple[int, ...]) -> Caches:
        """The caches with prompts `reads` (each prompt but its last token) read in one prefill and written into
        the rows `sources` points to them (see `_place_rows`); the prompts are padded up to their buckets."""
        padded = np.full((bucket(len(reads), PREFILL_ROWS), bucket(max(map(len, reads)), prompt_buckets)),
                         self.eos, np.int32)
        for n, read in enumerate(reads):
            padded[n, : len(read)] = read
        return self.place(caches, self.prefill(tf.constant(padded)), tf.constant(sources))

    def steps(self, positions: np.ndarray, last: np.ndarray, remaining: np.ndarray, caches: Caches,
              settings: list[Sampling], steps: int, refill: bool) -> tuple:
        """Up to `steps` decoding steps (see `_decode_rows`), from and to per-row numpy arrays; returns (positions,
        last, remaining, caches, tokens [B, CHUNK])."""
        s = settings
        positions, last, remaining, caches, tokens = self.decode(
            tf.constant(positions), tf.constant(last), tf.constant(remaining), caches,
            tf.constant([x.temperature for x in s], tf.float32), tf.constant([x.top_k for x in s], tf.int32),
            tf.constant([x.top_p for x in s], tf.float32), tf.constant([x.do_sample for x in s]),
            tf.constant([x.seed % 2**31 for x in s], tf.int32), tf.constant(min(steps, CHUNK), tf.int32),
            tf.constant(refill))
        return positions.numpy(), last.numpy(), remaining.numpy(), caches, tokens.numpy()

    def _prefill_rows(self, tokens):
        """Read prompts (tokens [N, P]: each prompt but its last token, padded) in one pass: their keys and values,
        [N * H, P, D] per layer. One pass over P tokens reads the weights once (token by token, it would read them P
        times), and prompts arriving together share it."""
        self.traces += 1  # Python side effect: runs only while tracing
        length = tf.shape(tokens)[1]
        causal = tf.range(length)[None, :] <= tf.range(length)[:, None]
        _, prompt = self.net.blocks(self.net.embed(tokens, tf.range(length)[None]), [(None, None)] * self.net.n_layer,
                                    lambda _cache, new: new, causal[None])
        return prompt

    def _place_rows(self, caches, prompt, sources):
        """Write prompts' keys and values into rows: row b takes prompt `sources[b]` ([B] int32), or keeps its own
        (-1). The texts of one request share their prompt. Positions past a prompt hold junk, hidden by the mask
        until written."""
        self.traces += 1
        n_head = self.net.n_head
        batch, size = tf.shape(sources)[0], tf.shape(caches[0][0])[1]
        take = tf.repeat(sources >= 0, n_head)[:, None, None]
        index = tf.repeat(tf.maximum(sources, 0) * n_head, n_head) + tf.tile(tf.range(n_head), [batch])

        def place(cache, new):  # [N * H, P, D] -> the taking rows of [B * H, T, D]
            padded = tf.pad(new, [[0, 0], [0, size - tf.shape(new)[1]], [0, 0]])
            return tf.where(take, tf.gather(padded, index), cache)

        return tuple((place(ck, k), place(cv, v)) for (ck, cv), (k, v) in zip(caches, prompt))

    def _decode_rows(self, positions, last, remaining, caches, temperature, top_k, top_p, do_sample, seeds, steps,
                     refill):
        """Up to `steps` decoding steps; each feeds every row's last token at the row's own position, reusing the
        keys and values of its earlier positions, and draws the row's next token with its own settings. A row with
        `remaining` 0 is idle (finished, or a free slot).

        Returns (positions, last, remaining, caches, tokens [B, CHUNK]: each step's token per row, -1 where idle).
        With `refill`, it returns as soon as a row finishes, so that a waiting request can take its place.
        """
        self.traces += 1
        net = self.net
        batch, size = tf.shape(positions)[0], tf.shape(caches[0][0])[1]
        rows = tf.range(batch * net.n_head)

        def body(step, positions, last, remaining, caches, tokens, _ended):
            at = tf.repeat(positions, net.n_head)  # each row's position, per head

            def write(cache, new):  # only each row's own position is written (a scatter: no copy of the cache)
                return tf.tensor_scatter_nd_update(cache, tf.stack([rows, at], axis=1), new[:, 0])

            visible = (tf.range(size)[None, :] <= at[:, None])[:, None, :]  # [B * H, 1, T]
            x, caches = net.blocks(net.embed(last[:, None], positions[:, None]), caches, write, visible)
            logits = net.next_logits(x)
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

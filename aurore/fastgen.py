"""Fast text generation for the web app: GPT-2 decoding compiled once with XLA, reused for every request.

Eager TensorFlow `generate` is slow on a CPU (7 tokens/s for a 124M model on two cores, README "Measured figures";
this module: 44). XLA compiles the decoding into one program, but `tf.function(jit_compile=True)` compiles again
for every new tensor shape and every new Python value. So:

- shapes come from a few buckets: the batch (1 or 8 rows) and the buffer length (prompt + new tokens: 128, 256,
  ...); each (batch, length) pair is compiled once, at start-up (`warm_up`);
- everything that varies per request is a tensor argument: the prompt tokens and their lengths, the number of
  new tokens, temperature, top-k, top-p, greedy or sampling, the seed;
- each step feeds ONE token per row through the model, reusing the keys and values of earlier positions
  (a KV cache of fixed size, updated in place), so a step costs the same at position 5 or 500.

Prompts are written left-aligned in the buffer; at step t a row still inside its prompt copies its next prompt
token (teacher forcing), otherwise it samples. The model's own Keras layers (embeddings, layer norms, dense
projections, activation) do the maths; only attention is re-written, to use the cache.

The sampling rules are those of transformers' TF logits warpers, in their order: temperature, then top-k, then
top-p (`tests/test_fastgen.py` compares them on random logits). The eager pipeline stays the reference.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
from tensorflow.compiler.tf2xla.python.xla import dynamic_update_slice

from aurore.generation import Sampling

BATCH_BUCKETS = (1, 8)
LENGTH_BUCKETS = (128, 256, 512, 1024)


MAX_CANDIDATES = 1024  # top-k and top-p look among the likeliest 1,024 tokens first (see warp_logits)


def warp_logits(logits: tf.Tensor, temperature: tf.Tensor, top_k: tf.Tensor, top_p: tf.Tensor) -> tf.Tensor:
    """Temperature, then top-k (0 = off), then top-p (1.0 = off); filtered tokens get -inf. logits: [B, V].

    Sorting the whole vocabulary at every step is slow under XLA on a CPU (~60 ms for 8 x 50,257 logits), while
    `top_k` of 1,024 costs ~4 ms. So the filters work on the 1,024 likeliest tokens, which is exact whenever the
    kept set lies among them (always with top-k <= 1,024, as in the web form); otherwise, e.g. top-k off and
    top-p on a flat distribution, the full sort runs instead.
    """
    logits = logits / temperature
    vocab = logits.shape[-1]
    count = min(MAX_CANDIDATES, vocab)
    values, order = tf.math.top_k(logits, count)  # [B, count], likeliest first
    k = tf.where(top_k > 0, tf.minimum(top_k, vocab), vocab)
    top_k_on = k < vocab
    # The k-th largest value, by a masked minimum: a dynamic slice of `values` would make XLA sort everything.
    kth = tf.reduce_min(tf.where(tf.range(count)[None, :] < k, values, np.inf), axis=-1, keepdims=True)
    kth = tf.where(top_k_on, kth, -np.inf)
    top_k_filtered = tf.where(logits < kth, tf.constant(-np.inf, logits.dtype), logits)
    probs = tf.gather(tf.nn.softmax(top_k_filtered, axis=-1), order, batch_dims=1)  # the candidates' probabilities
    before = tf.math.cumsum(probs, axis=-1, exclusive=True)  # mass of the better-ranked tokens
    keep_ranked = (before < top_p) | (tf.range(count) == 0)[None, :]
    # Exact on the candidates if top-k fits in them and the top-p boundary falls before the last candidate.
    fits = (~top_k_on | (k <= count)) & ((top_p >= 1.0) | tf.reduce_all(before[:, -1] >= top_p))

    def among_candidates():
        lowest_kept = tf.reduce_min(tf.where(keep_ranked, values, np.inf), axis=-1, keepdims=True)
        threshold = tf.where(top_p < 1.0, lowest_kept, -np.inf)
        return tf.where(top_k_filtered < threshold, tf.constant(-np.inf, logits.dtype), top_k_filtered)

    return tf.cond(fits, among_candidates, lambda: _warp_by_sorting(logits, top_k, top_p))


def _warp_by_sorting(logits: tf.Tensor, top_k: tf.Tensor, top_p: tf.Tensor) -> tf.Tensor:
    """The same filters over the whole sorted vocabulary (logits already divided by the temperature)."""
    vocab = tf.shape(logits)[-1]
    sorted_logits = tf.sort(logits, axis=-1, direction="DESCENDING")
    k = tf.where(top_k > 0, tf.minimum(top_k, vocab), vocab)
    logits = tf.where(logits < sorted_logits[:, k - 1 : k], tf.constant(-np.inf, logits.dtype), logits)
    order = tf.argsort(logits, axis=-1, direction="DESCENDING", stable=True)
    probs = tf.nn.softmax(tf.gather(logits, order, batch_dims=1), axis=-1)
    before = tf.math.cumsum(probs, axis=-1, exclusive=True)
    keep_ranked = (before < top_p) | (tf.range(vocab) == 0)[None, :] | (top_p >= 1.0)
    rows = tf.repeat(tf.range(tf.shape(logits)[0]), vocab)
    keep = tf.scatter_nd(tf.stack([rows, tf.reshape(order, [-1])], axis=1), tf.reshape(keep_ranked, [-1]),
                         tf.shape(logits, out_type=tf.int32))
    return tf.where(keep, logits, tf.constant(-np.inf, logits.dtype))


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
        self._decode = tf.function(self._decode_loop, jit_compile=jit_compile, reduce_retracing=False)

    # -- the model, one token per row ---------------------------------------------------------------------------

    def _attend(self, block, x, cache_k, cache_v, t, length):
        """Self-attention of the current token over positions 0..t, writing its key and value at slot t."""
        batch = tf.shape(x)[0]
        qkv = block.attn.c_attn(x)  # [B, 1, 3E]
        q, k, v = (tf.reshape(part, [batch, self.n_head, 1, self.head_dim]) for part in tf.split(qkv, 3, axis=-1))
        # In place: only the new position's keys and values are written (XLA's dynamic-update-slice).
        cache_k = dynamic_update_slice(cache_k, k, [0, 0, t, 0])
        cache_v = dynamic_update_slice(cache_v, v, [0, 0, t, 0])
        scores = tf.einsum("bhqd,bhtd->bhqt", q, cache_k) / math.sqrt(self.head_dim)
        visible = tf.range(length) <= t
        scores = tf.where(visible[None, None, None, :], scores, tf.constant(-1e4, x.dtype))  # GPT-2's mask value
        weights = tf.nn.softmax(scores, axis=-1)
        out = tf.reshape(tf.einsum("bhqt,bhtd->bqhd", weights, cache_v), [batch, 1, -1])
        return block.attn.c_proj(out), cache_k, cache_v

    def _logits(self, tokens, t, caches, length):
        """Logits of the next token for each row; `caches` is a tuple of (keys, values) per layer."""
        transformer = self.model.transformer
        tokens = tokens[:, None]  # [B, 1]: the layers were built for [batch, positions, ...] inputs
        x = transformer.wte(tokens) + transformer.wpe(tf.fill(tf.shape(tokens), t))
        updated = []
        for block, (cache_k, cache_v) in zip(transformer.h, caches):
            attended, cache_k, cache_v = self._attend(block, block.ln_1(x), cache_k, cache_v, t, length)
            updated.append((cache_k, cache_v))
            x = x + attended
            x = x + block.mlp.c_proj(block.mlp.act(block.mlp.c_fc(block.ln_2(x))))
        x = transformer.ln_f(x)
        return tf.matmul(x[:, 0], transformer.wte.embeddings, transpose_b=True), tuple(updated)

    def _decode_loop(self, buffer, lengths, new_tokens, temperature, top_k, top_p, do_sample, seed):
        """buffer: [B, T] int32, prompts left-aligned; returns the buffer with each row's continuation."""
        self.traces += 1  # Python side effect: runs only while tracing
        batch, length = tf.shape(buffer)[0], buffer.shape[1]
        zeros = tf.zeros([batch, self.n_head, length, self.head_dim], tf.float32)
        caches = tuple((zeros, zeros) for _ in range(self.n_layer))
        finished = tf.zeros([batch], tf.bool)
        last = tf.reduce_max(lengths) + new_tokens - 1  # the last position that needs a next token
        t = tf.constant(0)

        def step(t, buffer, caches, finished):
            logits, caches = self._logits(buffer[:, t], t, caches, length)
            warped = warp_logits(logits, temperature, top_k, top_p)
            sampled = tf.random.stateless_categorical(warped, 1, seed=tf.stack([seed, t]), dtype=tf.int32)[:, 0]
            chosen = tf.where(do_sample, sampled, tf.argmax(logits, axis=-1, output_type=tf.int32))
            in_prompt = t + 1 < lengths
            done = t + 1 >= lengths + new_tokens  # this row already has all its new tokens
            chosen = tf.where(finished | done, self.eos, chosen)
            next_token = tf.where(in_prompt, buffer[:, tf.minimum(t + 1, length - 1)], chosen)
            finished = finished | (~in_prompt & (chosen == self.eos))
            buffer = dynamic_update_slice(buffer, next_token[:, None], [0, t + 1])
            return t + 1, buffer, caches, finished

        _, buffer, *_ = tf.while_loop(lambda t, *_: t < last, step, (t, buffer, caches, finished),
                                      maximum_iterations=length - 1)
        return buffer

    # -- requests ------------------------------------------------------------------------------------------------

    def count_tokens(self, prompt: str) -> int:
        return len(self.tokenizer(prompt)["input_ids"])

    @staticmethod
    def bucket(value: int, buckets: tuple[int, ...]) -> int:
        return next(b for b in buckets if b >= value)

    def generate_ids(self, prompts: list[list[int]], sampling: Sampling) -> list[list[int]]:
        """New token ids for each prompt (each list ends before the first end-of-text token)."""
        rows = len(prompts)
        longest = max(len(p) for p in prompts) + sampling.max_new_tokens
        if longest > self.context_size:
            raise ValueError(f"prompt + max_new_tokens = {longest} exceeds the context of {self.context_size}")
        length = self.bucket(longest, tuple(b for b in LENGTH_BUCKETS if b <= self.context_size) + (self.context_size,))
        batch = self.bucket(rows, BATCH_BUCKETS) if rows <= BATCH_BUCKETS[-1] else rows
        buffer = np.full((batch, length), self.eos, dtype=np.int32)
        lengths = np.ones(batch, dtype=np.int32)
        for i, ids in enumerate(prompts):
            buffer[i, : len(ids)], lengths[i] = ids, len(ids)
        out = self._decode(
            tf.constant(buffer), tf.constant(lengths), tf.constant(sampling.max_new_tokens, tf.int32),
            tf.constant(sampling.temperature, tf.float32), tf.constant(sampling.top_k, tf.int32),
            tf.constant(sampling.top_p, tf.float32), tf.constant(sampling.do_sample), tf.constant(sampling.seed, tf.int32),
        ).numpy()
        results = []
        for i, ids in enumerate(prompts):
            new = out[i, len(ids) : len(ids) + sampling.max_new_tokens].tolist()
            results.append(new[: new.index(self.eos)] if self.eos in new else new)
        return results

    def generate_batch(self, prompts: list[str], sampling: Sampling) -> list[list[str]]:
        """The engine interface of the web app: `num_return_sequences` texts per prompt, batched together."""
        copies = sampling.num_return_sequences if sampling.do_sample else 1
        encoded = [self.tokenizer(p)["input_ids"] for p in prompts for _ in range(copies)]
        texts = []
        for start in range(0, len(encoded), BATCH_BUCKETS[-1]):
            chunk = encoded[start : start + BATCH_BUCKETS[-1]]
            for ids, new in zip(chunk, self.generate_ids(chunk, sampling)):
                texts.append(self.tokenizer.decode(ids + new, skip_special_tokens=True))
        return [texts[i * copies : (i + 1) * copies] for i in range(len(prompts))]

    def warm_up(self, lengths: tuple[int, ...] = (128,)) -> int:
        """Compile every (batch, length) bucket the server will use, before the first request."""
        for length in lengths:
            for batch in BATCH_BUCKETS:
                sampling = Sampling(max_new_tokens=1, num_return_sequences=1)
                prompt = [self.eos] * (min(length, self.context_size) - 1)
                self.generate_ids([prompt] * batch, sampling)
        return self.traces

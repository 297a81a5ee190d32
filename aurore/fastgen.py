"""Fast text generation for the web app: GPT-2 decoding compiled once with XLA, reused for every request.

Eager TensorFlow `generate` is slow on a CPU (8 tokens/s for a 124M model on two cores, README "Measured figures";
this module: 66-75). XLA compiles the decoding into one program, but `tf.function(jit_compile=True)` compiles again
for every new tensor shape and every new Python value. So:

- shapes come from a few buckets: the batch (1 or 8 rows) and the buffer length (prompt + new tokens: 128, 256,
  ...); each (batch, length) pair is compiled once, at start-up (`warm_up`);
- everything that varies per request is a tensor argument: the prompt tokens and their lengths, the number of
  new tokens, temperature, top-k, top-p, greedy or sampling, the seed;
- each decoding step feeds ONE token per row through the model, reusing the keys and values of earlier positions
  (a KV cache of fixed size, updated in place), so a step costs the same at position 5 or 500.

Prompts are written left-aligned in the buffer. First a prefill loop feeds the prompt tokens every row shares,
`PREFILL` per pass (one pass of 8 tokens costs about as much as one of 1: the weights are read once); then the
decoding loop goes one position at a time: a row still inside its (longer) prompt copies its next prompt token
(teacher forcing), otherwise it samples. The model's own Keras layers (embeddings, layer norms, dense projections,
activation) do the maths; only attention is re-written, to use the cache.

The sampling rules are those of transformers' TF logits warpers, in their order: temperature, then top-k, then
top-p (`tests/test_fastgen.py` compares them on random logits). The eager pipeline stays the reference.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf
from tensorflow.compiler.tf2xla.python.xla import dynamic_slice, dynamic_update_slice

from aurore.errors import AuroreError
from aurore.generation import Sampling

BATCH_BUCKETS = (1, 8)
LENGTH_BUCKETS = (128, 256, 512, 1024)
PREFILL = 8  # prompt positions read per pass while every row is still inside its prompt
MAX_CANDIDATES = 1024  # top-k and top-p look among the likeliest 1,024 tokens first (see _candidates)


class Candidates(NamedTuple):
    """The sampling filters worked out on the likeliest tokens (see `_candidates`)."""

    scaled: tf.Tensor  # the logits divided by the temperature, [B, V]
    values: tf.Tensor  # the candidates' scaled logits, likeliest first, [B, 1024]
    order: tf.Tensor  # their token ids, [B, 1024]
    cutoff: tf.Tensor  # the lowest logit kept, -inf when nothing is filtered, [B, 1]
    exact: tf.Tensor  # the cut-off is the one a full sort would give
    inside: tf.Tensor  # moreover, every kept token is a candidate


def _candidates(logits, temperature, top_k, top_p) -> Candidates:
    """Temperature, top-k and top-p worked out on the 1,024 likeliest tokens. logits: [B, V].

    Sorting the whole vocabulary at every step is
    slow under XLA on a CPU (~60 ms for 8 x 50,257 logits), while `top_k` of 1,024 costs ~3 ms.
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
    # Top-p needs each candidate's probability after top-k, normalised over the whole vocabulary.
    top_k_filtered = tf.where(logits < kth, tf.constant(-np.inf, logits.dtype), logits)
    probs = tf.exp(values - tf.reduce_logsumexp(top_k_filtered, axis=-1, keepdims=True))
    probs = tf.where(values < kth, 0.0, probs)
    before = tf.math.cumsum(probs, axis=-1, exclusive=True)  # mass of the better-ranked tokens
    keep_ranked = (before < top_p) | (tf.range(count) == 0)[None, :]
    top_p_cut = tf.where(top_p < 1.0, tf.reduce_min(tf.where(keep_ranked, values, np.inf), axis=-1, keepdims=True),
                         -np.inf)
    cutoff = tf.maximum(kth, top_p_cut)
    top_k_inside = top_k_on & (k <= count)
    top_p_inside = (top_p < 1.0) & tf.reduce_all(before[:, -1] >= top_p)  # the boundary is before the last one
    # (With top-k on beyond the candidates, `kth` above is wrong and so is `probs`: `exact` is False then.)
    exact = (~top_k_on | top_k_inside) & ((top_p >= 1.0) | top_p_inside)
    return Candidates(logits, values, order, cutoff, exact, exact & (top_k_inside | top_p_inside))


def warp_logits(logits: tf.Tensor, temperature: tf.Tensor, top_k: tf.Tensor, top_p: tf.Tensor) -> tf.Tensor:
    """Temperature, then top-k (0 = off), then top-p (1.0 = off); filtered tokens get -inf. logits: [B, V].

    Exact whenever the kept set lies among the 1,024 likeliest tokens (always with top-k <= 1,024, as in the
    web form); otherwise, e.g. top-k off and top-p on a flat distribution, a full sort runs instead.
    """
    found = _candidates(logits, temperature, top_k, top_p)
    return _warp(found.scaled, found.cutoff, found.exact, top_k, top_p)


def _warp(scaled, cutoff, exact, top_k, top_p):
    """The whole vocabulary filtered: by the candidates' cut-off when it is exact, else by a full sort."""
    return tf.cond(exact, lambda: tf.where(scaled < cutoff, tf.constant(-np.inf, scaled.dtype), scaled),
                   lambda: _warp_by_sorting(scaled, top_k, top_p))


def sample_tokens(logits: tf.Tensor, temperature: tf.Tensor, top_k: tf.Tensor, top_p: tf.Tensor,
                  seed: tf.Tensor) -> tf.Tensor:
    """One token id per row, drawn from the warped distribution. seed: [2] int32 (stateless random numbers).

    Drawing among the 1,024 candidates rather than 50,257 logits makes a step ~10% faster at batch 1 (the
    random numbers cost more than the filters); it is the same distribution whenever every kept token is
    a candidate, and the whole vocabulary is used otherwise.
    """
    found = _candidates(logits, temperature, top_k, top_p)

    def among_candidates():
        kept = tf.where(found.values < found.cutoff, tf.constant(-np.inf, found.values.dtype), found.values)
        index = tf.random.stateless_categorical(kept, 1, seed=seed, dtype=tf.int32)
        return tf.gather(found.order, index, batch_dims=1)[:, 0]

    def whole_vocabulary():
        warped = _warp(found.scaled, found.cutoff, found.exact, top_k, top_p)
        return tf.random.stateless_categorical(warped, 1, seed=seed, dtype=tf.int32)[:, 0]

    return tf.cond(found.inside, among_candidates, whole_vocabulary)


def _warp_by_sorting(logits: tf.Tensor, top_k: tf.Tensor, top_p: tf.Tensor) -> tf.Tensor:
    """The same filters over the whole sorted vocabulary (logits already divided by the temperature)."""
    vocab = tf.shape(logits)[-1]
    sorted_logits = tf.sort(logits, axis=-1, direction="DESCENDING")
    k = tf.where(top_k > 0, tf.minimum(top_k, vocab), vocab)
    kth = tf.gather(sorted_logits, [k - 1], axis=1)  # a gather: a slice would make k a compile-time constant
    logits = tf.where(logits < kth, tf.constant(-np.inf, logits.dtype), logits)
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
        x = transformer.ln_f(dynamic_slice(x, [0, last, 0], [x.shape[0], 1, x.shape[2]]))[:, 0]  # [B, E]
        return tf.matmul(x, transformer.wte.embeddings, transpose_b=True), tuple(updated)

    def _decode_loop(self, buffer, lengths, new_tokens, temperature, top_k, top_p, do_sample, seed):
        """buffer: [B, T] int32, prompts left-aligned; returns the buffer with each row's continuation."""
        self.traces += 1  # Python side effect: runs only while tracing
        batch, length = tf.shape(buffer)[0], buffer.shape[1]
        zeros = tf.zeros([batch * self.n_head, length, self.head_dim], tf.float32)
        caches = tuple((zeros, zeros) for _ in range(self.n_layer))
        finished = tf.zeros([batch], tf.bool)
        shared = tf.reduce_min(lengths)  # positions 0..shared-1 hold prompt tokens in every row
        last = tf.reduce_max(lengths) + new_tokens - 1  # the last position that needs a next token
        t = tf.constant(0)

        def step(positions: int):
            """A loop body: feed `positions` tokens from t (the prompt ones only count), write the next token."""

            def body(t, buffer, caches, finished):
                count = tf.minimum(positions, shared - t) if positions > 1 else 1
                tokens = dynamic_slice(buffer, [0, t], [buffer.shape[0], positions])
                logits, caches = self._logits(tokens, t, count - 1, caches, length)
                t = t + count  # the position that receives the next token
                sampled = sample_tokens(logits, temperature, top_k, top_p, tf.stack([seed, t]))
                chosen = tf.where(do_sample, sampled, tf.argmax(logits, axis=-1, output_type=tf.int32))
                in_prompt = t < lengths
                done = t >= lengths + new_tokens  # this row already has all its new tokens
                chosen = tf.where(finished | done, self.eos, chosen)
                prompt_token = dynamic_slice(buffer, [0, tf.minimum(t, length - 1)], [buffer.shape[0], 1])[:, 0]
                next_token = tf.where(in_prompt, prompt_token, chosen)
                finished = finished | (~in_prompt & (chosen == self.eos))
                buffer = dynamic_update_slice(buffer, next_token[:, None], [0, t])
                return t, buffer, caches, finished

            return body

        # Prefill: while every row is still inside its prompt, read up to PREFILL prompt tokens per pass, so the
        # weights are read from memory once, not once per token. Slots past the last token that counted hold
        # junk, hidden by the causal mask and overwritten when their turn comes.
        state = tf.while_loop(lambda t, *_: (shared - t >= 2) & (t + PREFILL <= length), step(PREFILL),
                              (t, buffer, caches, finished), maximum_iterations=length - 1)
        # Decoding: one token per pass.
        _, buffer, *_ = tf.while_loop(lambda t, *_: t < last, step(1), state, maximum_iterations=length - 1)
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
            raise AuroreError(f"Le début de texte plus les jetons à générer ({longest} jetons) dépassent la mémoire du "
                              f"modèle ({self.context_size} jetons).", "Raccourcissez le texte ou baissez max_new_tokens.")
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

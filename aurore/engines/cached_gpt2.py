"""GPT-2's forward pass over a KV cache, for the compiled decoder (`aurore/engines/fastgen.py`).

The model's own Keras layers (embeddings, layer norms, dense projections, activation) do the maths; only attention
is re-written, to use the cache. A cache holds, per layer, the keys and values of every row's earlier positions
([B * H, T, D]: B rows of H heads, T positions, D numbers per head), so a decoding step feeds ONE token per row and
costs about the same at position 5 or 500.
"""

from __future__ import annotations

import math

import tensorflow as tf

Caches = tuple  # per layer, (keys, values): [B * H, T, D] each


class CachedGPT2:
    """A transformers TF GPT-2 model's layers, run block by block with each attention reading and writing a cache."""

    def __init__(self, model):
        self.model = model
        config = model.config
        self.n_layer, self.n_head = config.n_layer, config.n_head
        self.head_dim = config.n_embd // config.n_head

    def cache_spec(self) -> Caches:
        """The caches' signature for a compiled function: any row count and length."""
        cache = tf.TensorSpec([None, None, self.head_dim], tf.float32)
        return tuple((cache, cache) for _ in range(self.n_layer))

    def empty_caches(self, batch: int, length: int) -> Caches:
        zeros = tf.zeros([batch * self.n_head, length, self.head_dim], tf.float32)
        return tuple((zeros, zeros) for _ in range(self.n_layer))

    def pad_caches(self, caches: Caches, more_rows: int, longer: int) -> Caches:
        """The caches with `more_rows` rows and `longer` positions more (zeros: hidden by the mask until written)."""
        return tuple(tuple(tf.pad(c, [[0, more_rows * self.n_head], [0, longer], [0, 0]]) for c in pair)
                     for pair in caches)

    def embed(self, tokens, positions):
        transformer = self.model.transformer
        return transformer.wte(tokens) + transformer.wpe(positions)

    def blocks(self, x, caches, write, visible):
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

    def next_logits(self, x):
        """The blocks' output for one position per row ([B, 1, E]) -> the scores of the next token ([B, V])."""
        x = self.model.transformer.ln_f(x)[:, 0]  # [B, E]
        return tf.matmul(x, self.model.transformer.wte.embeddings, transpose_b=True)

"""GPT-2's forward pass over a KV cache, for the compiled decoder (`aurore/engines/fastgen.py`).

The blocks are GPT-2's maths written over the model's own weights (layer norms, dense projections, transformers'
activation), with an attention that uses the cache; the embeddings and the final norm are the model's own layers.
A cache holds, per layer, the keys and values of every row's earlier positions ([B * H, T, D]: B rows of H heads,
T positions, D numbers per head), so a decoding step feeds ONE token per row and costs about the same at position 5
or 500.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import tensorflow as tf

Caches = tuple  # per layer, (keys, values): [B * H, T, D] each


class BlockWeights(NamedTuple):
    """One block's weights, read from its Keras layers ((gamma, beta) or (weight, bias) each)."""

    ln_1: tuple
    attn: tuple
    attn_proj: tuple
    ln_2: tuple
    mlp: tuple
    mlp_proj: tuple


def _weights_of(block) -> BlockWeights:
    """A transformers GPT-2 block's variables, read inside the traced program (its values, not copies)."""

    def read(*variables):
        return tuple(tf.convert_to_tensor(v) for v in variables)

    return BlockWeights(read(block.ln_1.gamma, block.ln_1.beta), read(block.attn.c_attn.weight, block.attn.c_attn.bias),
                        read(block.attn.c_proj.weight, block.attn.c_proj.bias), read(block.ln_2.gamma, block.ln_2.beta),
                        read(block.mlp.c_fc.weight, block.mlp.c_fc.bias),
                        read(block.mlp.c_proj.weight, block.mlp.c_proj.bias))


class CachedGPT2:
    """A transformers TF GPT-2 model's layers, run block by block with each attention reading and writing a cache."""

    def __init__(self, model):
        self.model = model
        config = model.config
        self.n_layer, self.n_head = config.n_layer, config.n_head
        self.head_dim = config.n_embd // config.n_head
        self.epsilon = config.layer_norm_epsilon
        self.activation = model.transformer.h[0].mlp.act  # GPT-2's "gelu_new", as transformers defines it

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
        cache with `write(cache, new)` and attends to the cache positions `visible` ([B * H or 1, S, T]) shows.

        The blocks share one traced function, each called with its own weights: tracing one block instead of twelve
        halves the server's start-up tracing (1.8 s to 0.9 s, GPT-2 small). Kept a call (`_noinline`), the decoding
        step's block is also lowered to XLA once, not twelve times (its lowering 0.7 s to 0.4 s); XLA inlines the
        calls when it compiles, so the step is as fast (16.0-16.7 ms a token before and after)."""

        def block(x, cache_k, cache_v, weights):
            return self._block(x, cache_k, cache_v, weights, write, visible)

        block = tf.function(block, autograph=False, experimental_attributes={"_noinline": True})
        updated = []
        for layer, (cache_k, cache_v) in zip(self.model.transformer.h, caches):
            x, cache_k, cache_v = block(x, cache_k, cache_v, _weights_of(layer))
            updated.append((cache_k, cache_v))
        return x, tuple(updated)

    def _block(self, x, cache_k, cache_v, weights: BlockWeights, write, visible):
        """One transformer block (GPT-2's maths, as transformers' layers compute them) over x [B, S, E]."""
        w = weights
        batch, positions = tf.shape(x)[0], tf.shape(x)[1]

        def heads(part):  # [B, S, E] -> [B * H, S, D]: the layout the attention products read (no copy per step)
            part = tf.transpose(tf.reshape(part, [batch, positions, self.n_head, self.head_dim]), [0, 2, 1, 3])
            return tf.reshape(part, [batch * self.n_head, positions, self.head_dim])

        q, k, v = (heads(part) for part in tf.split(self._dense(self._norm(x, w.ln_1), w.attn), 3, axis=-1))
        cache_k, cache_v = write(cache_k, k), write(cache_v, v)
        scores = tf.einsum("nqd,ntd->nqt", q, cache_k) / math.sqrt(self.head_dim)
        scores = tf.where(visible, scores, tf.constant(-1e4, x.dtype))  # GPT-2's mask value
        out = tf.einsum("nqt,ntd->nqd", tf.nn.softmax(scores, axis=-1), cache_v)  # [B * H, S, D]
        out = tf.transpose(tf.reshape(out, [batch, self.n_head, positions, self.head_dim]), [0, 2, 1, 3])
        x = x + self._dense(tf.reshape(out, [batch, positions, -1]), w.attn_proj)
        x = x + self._dense(self.activation(self._dense(self._norm(x, w.ln_2), w.mlp)), w.mlp_proj)
        return x, cache_k, cache_v

    def _norm(self, x, gamma_beta):
        """Layer normalization over the last axis (Keras' LayerNormalization, unfused)."""
        gamma, beta = gamma_beta
        mean, variance = tf.nn.moments(x, [-1], keepdims=True)
        return tf.nn.batch_normalization(x, mean, variance, offset=beta, scale=gamma, variance_epsilon=self.epsilon)

    @staticmethod
    def _dense(x, weight_bias):
        """transformers' TFConv1D: x [B, S, in] @ weight [in, out] + bias."""
        weight, bias = weight_bias
        batch, positions = tf.shape(x)[0], tf.shape(x)[1]
        y = tf.matmul(tf.reshape(x, [-1, weight.shape[0]]), weight) + bias
        return tf.reshape(y, [batch, positions, weight.shape[1]])

    def next_logits(self, x):
        """The blocks' output for one position per row ([B, 1, E]) -> the scores of the next token ([B, V])."""
        x = self.model.transformer.ln_f(x)[:, 0]  # [B, E]
        return tf.matmul(x, self.model.transformer.wte.embeddings, transpose_b=True)

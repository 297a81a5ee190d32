"""Sampling on the compiled path: temperature, top-k and top-p with one setting per row, and a random draw per row.

The rules are those of transformers' TF logits warpers, in their order: temperature, then top-k, then top-p
(`tests/test_fastgen.py` compares them with transformers' own on random logits). They run inside the XLA-compiled
decoding of `aurore/engines/fastgen.py` (and, eagerly, for step 6's served model and the "Pourquoi ce mot ?" chart), so
they avoid what is slow there: a full sort of the vocabulary (the likeliest candidates first; beyond them, a
bisection for the chart and a draw by rejection for sampling) and one random seed per call (a hash gives each row
its own draws).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

MAX_CANDIDATES = 1024  # warp_logits looks among the likeliest 1,024 tokens first (see _candidates) ...
FEW_CANDIDATES = 64  # ... sample_tokens among 64 (0.7 vs 4 ms for 8 rows), enough for the form's top-k of 50


class Candidates(NamedTuple):
    """The sampling filters worked out on the likeliest tokens (see `_candidates`). Settings are per row."""

    scaled: tf.Tensor  # the logits divided by each row's temperature, [B, V]
    values: tf.Tensor  # the candidates' scaled logits, likeliest first, [B, N] (N = 1,024 or 64)
    order: tf.Tensor  # their token ids, [B, N]
    cutoff: tf.Tensor  # the lowest logit kept, -inf when nothing is filtered, [B, 1]
    exact: tf.Tensor  # the cut-off is the one a full sort would give, [B, 1]
    inside: tf.Tensor  # moreover, every kept token is a candidate, [B, 1]
    kth: tf.Tensor  # the top-k threshold, -inf when top-k is off, [B, 1]
    kth_exact: tf.Tensor  # it is the one a full sort would give, [B, 1]


def _per_row(setting) -> tf.Tensor:
    """A setting given for the whole batch (a scalar) or per row ([B]), as a column [B or 1, 1]."""
    return tf.reshape(setting, [-1, 1])


def _candidates(logits, temperature, top_k, top_p, most: int = MAX_CANDIDATES) -> Candidates:
    """Temperature, top-k and top-p worked out on the `most` likeliest tokens. logits: [B, V]; settings: [B] or scalars.

    Sorting the whole vocabulary at every step is
    slow under XLA on a CPU (~60 ms for 8 x 50,257 logits), while `top_k` of 1,024 costs ~3 ms.
    """
    temperature, top_k, top_p = _per_row(temperature), _per_row(top_k), _per_row(top_p)
    logits = logits / temperature
    vocab = logits.shape[-1]
    count = min(most, vocab)
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
    top_p_inside = (top_p < 1.0) & (before[:, -1:] >= top_p)  # the boundary is before the last candidate
    # (With top-k on beyond the candidates, `kth` above is wrong and so is `probs`: `exact` is False then.)
    exact = (~top_k_on | top_k_inside) & ((top_p >= 1.0) | top_p_inside)
    return Candidates(logits, values, order, cutoff, exact, exact & (top_k_inside | top_p_inside), kth,
                      ~top_k_on | top_k_inside)


def warp_logits(logits: tf.Tensor, temperature: tf.Tensor, top_k: tf.Tensor, top_p: tf.Tensor) -> tf.Tensor:
    """Temperature, then top-k (0 = off), then top-p (1.0 = off); filtered tokens get -inf. logits: [B, V];
    settings: scalars, or one per row ([B]).

    Exact whenever the kept set lies among the 1,024 likeliest tokens (always with top-k <= 1,024, as in the
    web form); otherwise, e.g. top-k off and top-p on a flat distribution, a full sort runs instead.
    """
    return _warp(_candidates(logits, temperature, top_k, top_p), top_k, top_p)


def _warp(found: Candidates, top_k, top_p):
    """The whole vocabulary filtered: by the candidates' cut-off when it is exact, else over the whole vocabulary."""
    scaled = found.scaled
    return tf.cond(tf.reduce_all(found.exact),
                   lambda: tf.where(scaled < found.cutoff, tf.constant(-np.inf, scaled.dtype), scaled),
                   lambda: _warp_whole_vocabulary(scaled, found, _per_row(top_k), _per_row(top_p)))


_UINT = tf.uint32


def _mix(x: tf.Tensor) -> tf.Tensor:
    """MurmurHash3's finaliser on uint32: every input bit flips about half of the output bits."""
    for shift, multiplier in ((16, 0x85EBCA6B), (13, 0xC2B2AE35), (16, None)):
        x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(shift, _UINT)))
        if multiplier:
            x = x * tf.constant(multiplier, _UINT)
    return x


def _uniform(seeds: tf.Tensor, step: tf.Tensor, tokens: tf.Tensor) -> tf.Tensor:
    """Uniform numbers in (0, 1) for the given token ids ([V] or [B, V]) that depend only on each row's seed, the
    step and the token.

    TensorFlow's stateless random ops take one seed per call; a counter-based hash gives each row its own stream,
    so a text depends on its own seed, never on the requests it shares a batch with.
    """
    row = _mix(tf.bitwise.bitwise_xor(_mix(tf.cast(seeds, _UINT)), tf.cast(step, _UINT) * tf.constant(0x9E3779B9, _UINT)))
    tokens = tf.cast(tokens, _UINT)
    cells = _mix(row[:, None] + (tokens if tokens.shape.rank == 2 else tokens[None, :]) * tf.constant(0x7FEB352D, _UINT))
    return (tf.cast(tf.bitwise.right_shift(cells, tf.constant(8, _UINT)), tf.float32) + 0.5) / 2.0**24


def gumbel_noise(seeds: tf.Tensor, step: tf.Tensor, tokens: tf.Tensor) -> tf.Tensor:
    """Gumbel noise for the given token ids, keyed like `_uniform`: argmax(logits + noise) is a draw from
    softmax(logits) (the Gumbel-max trick)."""
    return -tf.math.log(-tf.math.log(_uniform(seeds, step, tokens)))


def sample_tokens(logits: tf.Tensor, temperature: tf.Tensor, top_k: tf.Tensor, top_p: tf.Tensor,
                  seeds: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
    """One token id per row, drawn from the warped distribution with the row's own seed. seeds: [B] int32.

    Each row takes one of two ways, by its own logits and settings only, so that its draw never depends on the
    other rows of its batch: among the 64 likeliest tokens when every token it keeps is one of them (always with
    the form's top-k <= 64: 1.3 ms for 8 rows), else a draw by rejection over the whole vocabulary (top-k off
    or above 64, see `_whole_vocabulary`). A batch pays for the second way only when one of its rows needs it.
    """
    found = _candidates(logits, temperature, top_k, top_p, FEW_CANDIDATES)
    kept = tf.where(found.values < found.cutoff, tf.constant(-np.inf, found.values.dtype), found.values)
    index = tf.argmax(kept + gumbel_noise(seeds, step, found.order), axis=-1, output_type=tf.int32)
    among = tf.gather(found.order, index[:, None], batch_dims=1)[:, 0]
    return tf.cond(tf.reduce_all(found.inside), lambda: among,
                   lambda: tf.where(found.inside[:, 0], among, _whole_vocabulary(found, top_k, top_p, seeds, step)))


ATTEMPTS = 4  # draws by rejection before the exact (slower) search; each draw is accepted with probability >= top_p


def _whole_vocabulary(found: Candidates, top_k, top_p, seeds, step) -> tf.Tensor:
    """One token per row from the whole vocabulary, for rows whose kept set may reach beyond the candidates.

    Finding top-p's cut-off over 50,257 logits without a sort takes a 33-pass bisection (~8 ms for 8 rows); a
    rejection draw needs one pass: draw from the top-k-filtered distribution (`_inverse_cdf`), keep the token if
    the likelier tokens weigh less than top_p (it is then in top-p's set), else draw again. Accepted draws follow
    the top-p distribution exactly; a row still refused after ATTEMPTS draws takes the exact search, which does too.
    Each draw has its own random numbers (the attempt number shifts the row's seed).
    """
    top_k, top_p = _per_row(top_k), _per_row(top_p)
    filtered = _top_k_filtered(found.scaled, found, top_k)
    probs = tf.nn.softmax(filtered, axis=-1)
    draw_from = _inverse_cdf(probs)

    def draw(n, tokens, accepted):
        drawn = draw_from(_uniform(_attempt(seeds, n), step, tf.zeros([1], tf.int32))[:, 0])
        value = tf.gather(filtered, drawn[:, None], batch_dims=1)
        likelier = tf.reduce_sum(tf.where(filtered > value, probs, 0.0), axis=-1, keepdims=True)
        accept = ((likelier < top_p) | (top_p >= 1.0))[:, 0]
        return n + 1, tf.where(accepted, tokens, drawn), accepted | accept

    _, tokens, accepted = tf.while_loop(lambda n, tokens, accepted: ~tf.reduce_all(accepted), draw,
                                        (tf.constant(1), tf.zeros_like(seeds), found.inside[:, 0]),
                                        maximum_iterations=ATTEMPTS)

    def exact():
        warped = _warp(found, top_k, top_p)
        noise = gumbel_noise(_attempt(seeds, tf.constant(ATTEMPTS + 1)), step, tf.range(probs.shape[-1]))
        return tf.argmax(warped + noise, axis=-1, output_type=tf.int32)

    return tf.cond(tf.reduce_all(accepted), lambda: tokens, lambda: tf.where(accepted, tokens, exact()))


def _attempt(seeds: tf.Tensor, n: tf.Tensor) -> tf.Tensor:
    """The seeds of the n-th draw (int32 arithmetic wraps around; the hash in `_uniform` mixes the bits)."""
    return seeds + n * 0x5BD1E995


BLOCK = 256  # tokens per block of the inverse-CDF draw: 197 blocks of 256 for GPT-2's vocabulary


def _inverse_cdf(probs: tf.Tensor):
    """A draw from probs [B, V] (in token-id order) for one uniform number per row: the first token whose
    cumulative probability passes it. In two levels, blocks then tokens, so that the cumulative sums stay short;
    no random number or logarithm per token (Gumbel noise over the whole vocabulary costs ~2 ms for 8 rows)."""
    batch, vocab = tf.shape(probs)[0], probs.shape[-1]
    blocks = -(-vocab // BLOCK)
    grid = tf.reshape(tf.pad(probs, [[0, 0], [0, blocks * BLOCK - vocab]]), [batch, blocks, BLOCK])
    block_mass = tf.reduce_sum(grid, axis=-1)  # [B, blocks]
    cumulative = tf.math.cumsum(block_mass, axis=-1)

    def draw(uniform: tf.Tensor) -> tf.Tensor:
        target = uniform[:, None] * cumulative[:, -1:]  # the total is 1 up to rounding
        block = tf.minimum(tf.reduce_sum(tf.cast(cumulative <= target, tf.int32), -1), blocks - 1)
        tokens = tf.gather(grid, block[:, None], batch_dims=1)[:, 0]  # [B, BLOCK]
        rest = target[:, 0] - tf.gather(cumulative - block_mass, block[:, None], batch_dims=1)[:, 0]
        index = tf.reduce_sum(tf.cast(tf.math.cumsum(tokens, axis=-1) <= rest[:, None], tf.int32), -1)
        # Rounding may leave `rest` past the block's last token: take its last token with a probability.
        last = BLOCK - 1 - tf.argmax(tf.reverse(tokens, [-1]) > 0, axis=-1, output_type=tf.int32)
        return block * BLOCK + tf.minimum(index, last)

    return draw


def _sortable(logits: tf.Tensor) -> tf.Tensor:
    """Integers in the same order as the float logits (int64, so that differences never overflow)."""
    bits = tf.cast(tf.bitcast(logits, tf.int32), tf.int64)
    return tf.where(bits >= 0, bits, -(bits & 0x7FFFFFFF) - 1)


def _largest_key(keys: tf.Tensor, enough) -> tf.Tensor:
    """Per row, the largest key K such that `enough(keys >= K)` holds, by bisection over the keys' range.

    33 passes over the vocabulary give the exact threshold a full sort would, without the sort (~60 ms under XLA
    for 8 x 50,257 logits on a CPU: mixed batches where one row had top-k off ran 5x slower).
    """
    low = tf.reduce_min(keys, axis=-1, keepdims=True)  # enough(keys >= low) always holds: it keeps everything
    high = tf.reduce_max(keys, axis=-1, keepdims=True)

    def halve(low, high):
        middle = low + (high - low + 1) // 2
        ok = enough(keys >= middle)
        return tf.where(ok, middle, low), tf.where(ok, high, middle - 1)

    # The keys of float32 values span less than 2**33: 33 halvings find the key.
    return tf.while_loop(lambda *_: True, halve, (low, high), maximum_iterations=33)[0]


def _top_k_filtered(logits: tf.Tensor, found: Candidates, top_k: tf.Tensor) -> tf.Tensor:
    """The logits with top-k applied over the whole vocabulary (the k-th largest by bisection when it is beyond
    the candidates). top_k: [B or 1, 1]."""
    vocab = logits.shape[-1]
    k = tf.where(top_k > 0, tf.minimum(top_k, vocab), vocab)
    keys = _sortable(logits)
    kth = tf.cond(tf.reduce_all(found.kth_exact), lambda: _sortable(found.kth),  # top-k off or among candidates
                  lambda: _largest_key(keys, lambda kept: tf.reduce_sum(tf.cast(kept, tf.int32), -1, keepdims=True) >= k))
    return tf.where(keys < kth, tf.constant(-np.inf, logits.dtype), logits)


def _warp_whole_vocabulary(logits: tf.Tensor, found: Candidates, top_k: tf.Tensor, top_p: tf.Tensor) -> tf.Tensor:
    """The same filters over the whole vocabulary, when the kept set may reach beyond the candidates (logits already
    divided by the temperature; top_k and top_p: [B or 1, 1]). Top-k keeps the tokens at or above the k-th largest
    logit; top-p then keeps the smallest set of likeliest tokens whose probability reaches top_p."""
    logits = _top_k_filtered(logits, found, top_k)
    keys = _sortable(logits)
    probs = tf.nn.softmax(logits, axis=-1)
    cut = _largest_key(keys, lambda kept: tf.reduce_sum(tf.where(kept, probs, 0.0), axis=-1, keepdims=True) >= top_p)
    keep = (keys >= cut) | (top_p >= 1.0)
    return tf.where(keep, logits, tf.constant(-np.inf, logits.dtype))

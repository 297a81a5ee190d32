""""Pourquoi ce mot ?": the model's next-token distribution for a prompt, before and after the sampling filters.

The "after" probabilities come from `warpers.warp_logits`, the function the compiled decoder samples with (and which
`tests/test_fastgen.py` checks against transformers' own warpers): what the chart shows is what generation does.
The model's scores for a prompt are computed once and kept (`NextTokens`), so moving a slider only re-applies the
filters, which takes a few milliseconds.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from aurore.engines.generation import Engine
from aurore.engines.warpers import warp_logits

SHOWN = 15  # tokens on the chart


@dataclass(frozen=True)
class TokenChance:
    """One candidate next token: its probability as the model gives it, and after temperature, top-k and top-p."""

    id: int
    text: str
    before: float
    after: float  # 0.0: the filters removed it, sampling can never pick it


def chances(logits: np.ndarray, temperature: float, top_k: int, top_p: float) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities before, probabilities after the filters) over the whole vocabulary."""
    logits = tf.constant(logits[None], tf.float32)
    warped = warp_logits(logits, tf.constant(temperature, tf.float32), tf.constant(top_k, tf.int32),
                         tf.constant(top_p, tf.float32))
    return tf.nn.softmax(logits)[0].numpy(), tf.nn.softmax(warped)[0].numpy()


def likeliest(engine: Engine, logits: np.ndarray, temperature: float, top_k: int, top_p: float,
              count: int = SHOWN) -> list[TokenChance]:
    """The `count` likeliest tokens (the order the filters keep them in: temperature does not change it)."""
    before, after = chances(logits, temperature, top_k, top_p)
    top = np.argsort(-logits, kind="stable")[:count]
    return [TokenChance(int(i), engine.token_text(int(i)), float(before[i]), float(after[i])) for i in top]


class NextTokens:
    """The scores of the last few prompts asked of each model, so that sliders do not rerun the model."""

    def __init__(self, size: int = 64):
        self.size, self._cache, self._lock = size, OrderedDict(), threading.Lock()

    def logits(self, key: str, engine: Engine, prompt: str) -> np.ndarray:
        with self._lock:
            if (key, prompt) in self._cache:
                self._cache.move_to_end((key, prompt))
                return self._cache[key, prompt]
        scores = np.asarray(engine.next_token_logits(prompt), np.float32)  # outside the lock: other models go on
        with self._lock:
            self._cache[key, prompt] = scores
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return scores

"""The page's engine for step 6's model: the exported SavedModel behind the `generation.Engine` protocol, with the
same sampling rules (and the same per-row draws) as the GPT-2 engines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from aurore.config import Config
from aurore.engines.generation import rows_for
from aurore.engines.minigpt import WORD_END_MARGIN, load_vocabulary
from aurore.engines.warpers import sample_tokens


def exists(config: Config) -> bool:
    return (config.mini_gpt_dir / "serving" / "saved_model.pb").is_file()


class MiniGPTEngine:
    """Serves the exported model to the web app, with the same sampling rules as the GPT-2 engines."""

    name = "mini-gpt"
    context_size = 10**6  # the window slides: any prompt length works

    def __init__(self, folder: Path):
        self.vocabulary, self.seq_len = load_vocabulary(folder)
        self.model = tf.saved_model.load(str(Path(folder) / "serving"))

    def count_tokens(self, prompt: str) -> int:
        return len(self.vocabulary.encode(prompt))

    def generate_rows(self, rows: list, progress=None) -> list[str]:
        """One text per row (see generation.Engine). max_new_tokens counts characters for a character model, and
        the text then runs on to the end of its word (at most WORD_END_MARGIN more), so it never stops mid-word."""
        texts, wanted = [row.prompt for row in rows], [True] * len(rows)
        for i, row in enumerate(rows):
            ids = self.vocabulary.encode(row.prompt) or [0]
            for step in range(row.sampling.max_new_tokens + WORD_END_MARGIN):
                if not wanted[i] or (step >= row.sampling.max_new_tokens and self._word_ended(ids)):
                    break
                ids.append(self._next_token(ids, row.sampling, step))
                if progress and step % 8 == 7:
                    texts[i] = self.vocabulary.decode(ids)
                    wanted = progress(texts)
            texts[i] = self.vocabulary.decode(ids)
            if progress:
                wanted = progress(texts)
        return texts

    def _word_ended(self, ids: list[int]) -> bool:
        return self.vocabulary.kind != "char" or not self.vocabulary.decode(ids[-1:]).isalnum()

    def _next_token(self, ids: list[int], sampling, step: int) -> int:
        logits = self.model.serve(tf.constant([ids[-self.seq_len :]], tf.int32))[:, -1]
        if not sampling.do_sample:
            return int(tf.argmax(logits[0]))
        return int(sample_tokens(logits, tf.constant([sampling.temperature]), tf.constant([sampling.top_k]),
                                 tf.constant([sampling.top_p]), tf.constant([sampling.seed % 2**31]),
                                 tf.constant(step))[0])

    def next_token_logits(self, prompt: str) -> np.ndarray:
        ids = self.vocabulary.encode(prompt) or [0]
        return self.model.serve(tf.constant([ids[-self.seq_len :]], tf.int32))[0, -1].numpy()

    def token_text(self, token_id: int) -> str:
        return self.vocabulary.decode([token_id])

    def generate_batch(self, prompts: list[str], sampling) -> list[list[str]]:
        """`num_return_sequences` texts per prompt (text i drawn with seed + i)."""
        return [self.generate_rows(rows_for(prompt, sampling)) for prompt in prompts]

"""Tiny models and data built in a second, offline: the grader's inputs (and the tests')."""

from __future__ import annotations

from pathlib import Path

FRENCH = ["La petite Fadette regardait la rivière.", "Germain laboura le champ avec ses bœufs.",
          "Lélia se taisait devant le lac."] * 20

SYNTHETIC_BOOK = (
    "\ufeffThe Project Gutenberg EBook of Essai, by George Sand\r\n\r\n"
    "*** START OF THIS PROJECT GUTENBERG EBOOK ESSAI ***\r\n\r\n"
    "Le vent soufflait sur la lande.\r\nM. Dupont rentra tard.\r\n\r\n"
    "*** END OF THIS PROJECT GUTENBERG EBOOK ESSAI ***\r\n\r\nEnd of the licence: SEND DONATIONS.\r\n"
)


def tiny_tokenizer(folder: Path | None = None):
    """A small GPT-2 style tokenizer (saved in `folder` when given)."""
    from aurore.hub.standin import train_tokenizer

    tokenizer = train_tokenizer(FRENCH, vocab_size=400, show_progress=False)  # not between the ✔ lines
    if folder is not None:
        tokenizer.save_pretrained(str(folder))
    return tokenizer


def tiny_blocks(rows: int = 8, length: int = 8):
    from datasets import Dataset, DatasetDict

    blocks = [[(i * 7 + j) % 50 for j in range(length)] for i in range(rows)]
    split = Dataset.from_dict({"input_ids": blocks, "labels": blocks})
    return DatasetDict(train=split, test=split)


def tiny_model(vocab_size: int = 50, n_layer: int = 1):
    import tensorflow as tf
    from transformers import GPT2Config, TFGPT2LMHeadModel

    tf.keras.utils.set_random_seed(0)
    model = TFGPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, n_positions=64, n_embd=16, n_layer=n_layer,
                                         n_head=2))
    model(model.dummy_inputs)
    return model


def tiny_model_folder(folder: Path) -> Path:
    """A tiny GPT-2 with its tokenizer saved in `folder`, as step 3 would leave it."""
    tokenizer = tiny_tokenizer(folder)
    tiny_model(len(tokenizer)).save_pretrained(str(folder))
    return Path(folder)


class EchoEngine:
    """A stand-in for a model in web tests: each text is the prompt plus a fixed ending."""

    name, context_size = "echo", 64

    def count_tokens(self, prompt: str) -> int:
        return len(prompt.split())

    def generate_rows(self, rows, progress=None) -> list[str]:
        return [f"{row.prompt} et la suite (graine {row.sampling.seed})" for row in rows]

    def next_token_logits(self, prompt: str):
        import numpy as np

        return np.linspace(2.0, -2.0, 20)  # token i is likelier than token i + 1

    def token_text(self, token_id: int) -> str:
        return f" mot{token_id}"

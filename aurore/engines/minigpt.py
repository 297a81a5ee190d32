"""Plumbing for step 6, the miniature GPT built from scratch: texts, vocabularies, training windows,
bits per character, the TextGenerator callback, saving, and an engine the web app can serve.

The model itself (layers, causal mask, sampling) is the lesson and lives in `aurore/6_mini_gpt_solution.py`.
Step 6 saves it twice: `model.keras` (Keras' format, reloaded with the script's layer classes) and `serving/`
(a TensorFlow SavedModel, which needs no Python class to load), so the web app can serve it.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import random
import re
import shutil
import string
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import tensorflow as tf

from aurore.atomic import publish, staging_dir
from aurore.config import Config
from aurore.errors import AuroreError, require_output

UNKNOWN_CHAR = "\ufffd"  # stands for characters the training text never showed
WORD_END_MARGIN = 30  # characters a served text may run past its length to finish its word


# -- texts -------------------------------------------------------------------------------------------------------


class Corpus(NamedTuple):
    train: list[str]  # training documents
    validation: list[str]  # held-out documents


class SavedVocabulary(NamedTuple):
    vocabulary: "CharVocabulary | WordVocabulary"
    seq_len: int  # the window the model was trained on


def load_texts(config: Config, text_file: str | None = None, text_folder: str | None = None,
               validation_share: float = 0.1) -> Corpus:
    """(training documents, validation documents).

    Default: step 1's George Sand books, validated on La Mare au diable. `text_file`: one text, its last 10% held
    out. `text_folder`: every .txt below it is a document (e.g. aclImdb/train with pos/ and neg/), 10% held out.
    """
    if text_file:
        if not Path(text_file).is_file():
            raise AuroreError(f"Fichier texte introuvable : {text_file}.",
                              "Donnez à --text-file le chemin d'un fichier .txt en UTF-8.")
        text = Path(text_file).read_text(encoding="utf-8")
        cut = int(len(text) * (1 - validation_share))
        return Corpus([text[:cut]], [text[cut:]])
    if text_folder:
        files = sorted(Path(text_folder).rglob("*.txt"))
        if len(files) < 2:
            raise AuroreError(f"{text_folder} contient moins de deux fichiers .txt.",
                              "Donnez à --text-folder un dossier de documents .txt.")
        random.Random(config.seed).shuffle(files)
        held = max(1, int(len(files) * validation_share))
        read = [f.read_text(encoding="utf-8", errors="replace") for f in files]
        return Corpus(read[held:], read[:held])
    from datasets import load_from_disk

    dataset = load_from_disk(str(require_output(config, 1)))

    def books(split) -> list[str]:
        by_book: dict[int, list[str]] = {}
        for text, book in zip(split["text"], split["book_id"]):
            by_book.setdefault(book, []).append(text)
        return [" ".join(sentences) for sentences in by_book.values()]

    return Corpus(books(dataset["train"]), books(dataset["test"]))


# -- vocabularies ------------------------------------------------------------------------------------------------


class CharVocabulary:
    """Characters as tokens (step 6 chooses which): a token's id is its place in `tokens`; unseen characters
    become id 0, `UNKNOWN_CHAR`."""

    kind = "char"

    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.index = {token: i for i, token in enumerate(tokens)}

    def encode(self, text: str) -> list[int]:
        return [self.index.get(char, 0) for char in text]

    def decode(self, ids) -> str:
        return "".join(self.tokens[i] for i in ids)


_PUNCTUATION = re.escape(string.punctuation + "«»…—’")


def standardize_words(text: tf.Tensor) -> tf.Tensor:
    """Lower case, and punctuation as separate words: « Viens ! » -> « viens ! »."""
    return tf.strings.regex_replace(tf.strings.lower(text), f"([{_PUNCTUATION}])", r" \1 ")


class WordVocabulary:
    """Keras' TextVectorization: the `vocab_size` most frequent words; "" (0) pads, "[UNK]" (1) is the rest."""

    kind = "word"

    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.layer = tf.keras.layers.TextVectorization(vocabulary=tokens[2:], standardize=standardize_words,
                                                       split="whitespace", ragged=True)

    @classmethod
    def from_texts(cls, texts: list[str], vocab_size: int = 10_000) -> "WordVocabulary":
        layer = tf.keras.layers.TextVectorization(max_tokens=vocab_size, standardize=standardize_words,
                                                  split="whitespace")
        layer.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(64))
        return cls([str(token) for token in layer.get_vocabulary()])

    def encode(self, text: str) -> list[int]:
        return self.layer(tf.constant([text]))[0].numpy().tolist()

    def decode(self, ids) -> str:
        words = " ".join(self.tokens[i] for i in ids if i != 0)
        return re.sub(r" ([.,;:!?)»…])", r"\1", words)


VOCABULARIES = {"char": CharVocabulary, "word": WordVocabulary}


def encode_all(vocabulary, texts: list[str]) -> np.ndarray:
    """One stream of token ids for a list of documents (a blank line between documents)."""
    return np.array(vocabulary.encode("\n\n".join(texts)), dtype=np.int32)


# -- training windows --------------------------------------------------------------------------------------------


def windows(ids: np.ndarray, length: int, batch_size: int, shuffle: bool, seed: int = 0) -> tf.data.Dataset:
    """Batches of `length` consecutive tokens, [batch, length]. For training (`shuffle`), windows overlap by half
    and come in a new order at each pass; otherwise they follow each other once, in order."""
    if len(ids) < length + 1:
        raise AuroreError(f"Le texte n'a que {len(ids)} jetons, moins qu'une fenêtre de {length}.",
                          "Prenez un texte plus long ou un --mini-seq-len plus petit.")
    starts = np.arange(0, len(ids) - length, length - 1 if not shuffle else max(1, length // 2))
    data = tf.data.Dataset.from_tensor_slices(starts)
    if shuffle:
        data = data.shuffle(len(starts), seed=seed, reshuffle_each_iteration=True)
    stream = tf.constant(ids)
    return data.map(lambda s: stream[s : s + length]).batch(batch_size, drop_remainder=shuffle)


def graph_call(model, batch: int | None = None) -> Callable[[tf.Tensor], tf.Tensor]:
    """`model(ids, training=False)` as one TensorFlow graph for any number of positions: calling a Keras model
    eagerly runs its layers one Python call at a time (4 blocks: ~40 ms a call on 2 cores, several times more)."""
    return tf.function(lambda ids: model(ids, training=False),
                       input_signature=[tf.TensorSpec([batch, None], tf.int32)])


def bits_per_character(model, pairs: tf.data.Dataset, characters_per_token: float) -> float:
    """Cross-entropy over (input, target) batches in bits per character of text, comparable between word and char
    tokens (`characters_per_token`: the text's characters over its tokens)."""
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")
    scores = graph_call(model)
    total_nats, tokens = 0.0, 0
    for x, y in pairs:
        total_nats += float(loss(y, scores(x)))
        tokens += int(tf.size(y))
    return total_nats / math.log(2) / (tokens * characters_per_token)


# -- watching it learn -------------------------------------------------------------------------------------------


class TextGenerator(tf.keras.callbacks.Callback):
    """Every `every` epochs, continue `prompt` one sampled token at a time and print the text."""

    def __init__(self, prompt: str, vocabulary, sample: Callable[[np.ndarray, np.random.Generator], int],
                 seq_len: int, max_tokens: int = 60, every: int = 1, seed: int = 0):
        super().__init__()
        self.prompt, self.vocabulary, self.sample = prompt, vocabulary, sample
        self.seq_len, self.max_tokens, self.every, self.seed = seq_len, max_tokens, every, seed
        self.texts: list[str] = []

    def set_model(self, model):
        super().set_model(model)
        self._scores = graph_call(model, batch=1)  # traced at the first token, then reused for every one

    def generate(self) -> str:
        rng = np.random.default_rng(self.seed)
        ids = self.vocabulary.encode(self.prompt) or [0]
        for _ in range(self.max_tokens):
            logits = self._scores(tf.constant([ids[-self.seq_len :]], tf.int32))[0, -1]
            ids.append(int(self.sample(np.asarray(logits, dtype=np.float64), rng)))
        return self.vocabulary.decode(ids)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            text = self.generate()
            self.texts.append(text)
            print(f"\n[époque {epoch + 1}] {text}\n")


# -- saving and serving ------------------------------------------------------------------------------------------


def save(model, vocabulary, folder: Path, metrics: dict) -> Path:
    """The model (Keras and SavedModel for the page), its vocabulary and metrics, written whole: staged beside
    `folder`, then renamed (a Ctrl-C or a full disk leaves the previous model as it was)."""
    folder = Path(folder)
    staging = staging_dir(folder.parent, ".mini-gpt-")
    try:
        model.save(staging / "model.keras")
        with contextlib.redirect_stdout(io.StringIO()):  # export() prints every captured variable
            model.export(str(staging / "serving"))
        info = {"kind": vocabulary.kind, "tokens": vocabulary.tokens, "seq_len": metrics["seq_len"]}
        (staging / "vocabulary.json").write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
        publish(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def load_vocabulary(folder: Path) -> SavedVocabulary:
    info = json.loads((Path(folder) / "vocabulary.json").read_text(encoding="utf-8"))
    return SavedVocabulary(VOCABULARIES[info["kind"]](info["tokens"]), info["seq_len"])

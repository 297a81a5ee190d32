"""Every path and hyper-parameter of the workshop, in one place.

A value comes from, in order of precedence:
  1. a command-line flag (`--block-size 64`),
  2. an environment variable (`AURORE_BLOCK_SIZE=64`),
  3. the default below.
`python -m aurore config` prints the values in effect; the README lists them all.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterable, Sequence

PACKAGE_DIR = Path(__file__).resolve().parent
ENV_PREFIX = "AURORE_"
HUB_BASE_MODEL = "benjamin/gpt2-wechsel-french"


ALL_STEPS = (1, 2, 3, 4, 5, 6)


def setting(default, help: str, steps: tuple[int, ...]):
    """A Config field: its default, its help line, and the steps whose command line offers it."""
    return field(default=default, metadata={"help": help, "steps": steps})


@dataclass
class Config:
    # -- where things live ------------------------------------------------------------------------
    workdir: Path = setting(PACKAGE_DIR, "folder holding data/ and models/", ALL_STEPS)
    gutenberg_mirror: str = setting(
        "", "folder or file://, http(s):// base holding pg<ID>.txt; empty = gutenberg.org", (1,))
    base_model: str = setting(HUB_BASE_MODEL, "hub id or local folder of the base GPT-2", (2, 3, 4, 5))
    seed: int = setting(42, "random seed for shuffling, init and sampling", (1, 3, 4, 5, 6))

    # -- step 1: the books --------------------------------------------------------------------------
    train_books: tuple[int, ...] = setting((39738, 34204, 13380, 37989), "Gutenberg ids of the training books", (1,))
    test_books: tuple[int, ...] = setting((23582,), "Gutenberg ids of the held-out books", (1,))
    download_timeout: float = setting(15.0, "seconds before a download gives up", (1,))
    min_words: int = setting(3, "sentences with fewer words are dropped", (1,))

    # -- step 2: tokenization -----------------------------------------------------------------------
    block_size: int = setting(128, "tokens per training example", (2, 3))
    tokenizer_vocab_size: int = setting(52_000, "vocabulary of the bonus tokenizer", (2,))

    # -- step 3: training ---------------------------------------------------------------------------
    epochs: int = setting(1, "passes over the training books", (3,))
    batch_size: int = setting(4, "examples per step", (3,))
    learning_rate: float = setting(5e-5, "peak learning rate of AdamW", (3,))
    warmup_ratio: float = setting(0.1, "share of steps spent warming up", (3,))
    weight_decay: float = setting(0.01, "AdamW weight decay", (3,))
    max_steps: int = setting(200, "cap on training steps, shared among the epochs (0 = full epochs)", (3,))
    save_every: int = setting(100, "save a checkpoint every N steps (0 = epoch ends only)", (3,))
    keep_checkpoints: int = setting(3, "how many checkpoints to keep per run", (3,))
    profile: str = setting("auto", "training profile: laptop, full, or auto (laptop without GPU)", (3,))
    train_top_blocks: int = setting(2, "laptop profile: top transformer blocks that learn", (3,))
    time_budget: str = setting("", "stop training after this long, e.g. 5m (step 3 saves a checkpoint, step 6 "
                               "its model)", (3, 6))

    # -- steps 4, 5 and 6: sampling (the one source of the sampling defaults) -------------------------
    max_new_tokens: int = setting(60, "tokens generated per text", (4, 5))
    temperature: float = setting(0.9, "sampling temperature", (4, 5, 6))
    top_k: int = setting(50, "sample among the k likeliest tokens (0 = off)", (4, 5, 6))
    top_p: float = setting(0.95, "sample within this probability mass (1.0 = off)", (4, 5, 6))

    # -- step 6: a miniature GPT from scratch -----------------------------------------------------------------
    mini_tokens: str = setting("char", "char or word tokens for the from-scratch model", (6,))
    mini_vocab_size: int = setting(10_000, "word vocabulary size ([UNK] for the rest)", (6,))
    mini_seq_len: int = setting(64, "tokens the from-scratch model sees at once", (6,))
    mini_embed_dim: int = setting(128, "embedding width", (6,))
    mini_heads: int = setting(4, "attention heads per block", (6,))
    mini_layers: int = setting(4, "transformer blocks", (6,))
    mini_ff_dim: int = setting(512, "feed-forward width", (6,))
    mini_dropout: float = setting(0.0, "dropout rate", (6,))
    mini_epochs: int = setting(10, "training epochs (the learning rate decays over all their steps)", (6,))
    mini_batch_size: int = setting(12, "windows per step", (6,))
    mini_learning_rate: float = setting(1e-3, "peak learning rate of AdamW (warm-up, then cosine decay)", (6,))
    mini_warmup_steps: int = setting(100, "steps of learning-rate warm-up", (6,))
    mini_steps_per_epoch: int = setting(200, "steps per epoch (0 = whole corpus)", (6,))

    # -- derived paths: one definition each -----------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def books_dir(self) -> Path:
        """Downloaded Gutenberg files, as fetched (the download cache)."""
        return self.data_dir / "books"

    @property
    def dataset_dir(self) -> Path:
        """Step 1 output: DatasetDict of sentences."""
        return self.data_dir / "sentences"

    @property
    def tokenized_dir(self) -> Path:
        """Step 2 output: DatasetDict of token blocks."""
        return self.data_dir / "tokenized"

    @property
    def nltk_dir(self) -> Path:
        """NLTK data written offline (French punkt tables)."""
        return self.data_dir / "nltk_data"

    @property
    def models_dir(self) -> Path:
        return self.workdir / "models"

    @property
    def tokenizer_dir(self) -> Path:
        """Step 2 bonus: the tokenizer specialised on George Sand."""
        return self.models_dir / "tokenizer-george-sand"

    @property
    def checkpoints_dir(self) -> Path:
        return self.models_dir / "checkpoints"

    @property
    def finetuned_dir(self) -> Path:
        """Step 3 output, loaded by steps 4 and 5."""
        return self.models_dir / "gpt2-george-sand"

    @property
    def standin_dir(self) -> Path:
        """The small offline stand-in base model (`python -m aurore build-standin`)."""
        return self.models_dir / "standin"

    @property
    def mini_gpt_dir(self) -> Path:
        """Step 6 output: the from-scratch model (model.keras, vocabulary.json, serving/, loss.png)."""
        return self.models_dir / "mini-gpt"

    @property
    def converted_models_dir(self) -> Path:
        """Hub models converted once from safetensors to TensorFlow weights."""
        return self.models_dir / "converted"


def _env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _parse(value: str, like: object, name: str) -> object:
    """Turn a string from the environment or the command line into the type of the default."""
    try:
        if isinstance(like, tuple):
            return tuple(int(part) for part in value.replace(" ", "").split(",") if part)
        if isinstance(like, Path):
            return Path(value).expanduser().resolve()
        return type(like)(value)
    except ValueError:
        raise SystemExit(
            f"error: setting {name} expects a {type(like).__name__}, got {value!r}. "
            f"Fix the flag --{name.replace('_', '-')} or the variable {_env_name(name)}."
        ) from None


def settings(steps: Iterable[int] | None = None) -> list[dataclasses.Field]:
    """Every setting, or those read by any of `steps`."""
    wanted = set(ALL_STEPS if steps is None else steps)
    return [f for f in fields(Config) if wanted & set(f.metadata["steps"])]


def add_arguments(parser: argparse.ArgumentParser, steps: Iterable[int] | None = None) -> argparse.ArgumentParser:
    """Add one `--flag` per setting read by `steps` (all by default); the help shows the environment variable."""
    group = parser.add_argument_group("settings (flag, or environment variable)")
    for f in settings(steps):
        group.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            default=None,
            metavar=_env_name(f.name),
            help=f"{f.metadata.get('help', '')} (default: {_display(f.default)})",
        )
    return parser


def from_namespace(namespace: argparse.Namespace | None = None, environ: dict | None = None) -> Config:
    """Build the Config: flags beat environment variables, which beat defaults."""
    environ = os.environ if environ is None else environ
    values = {}
    for f in settings():
        raw = getattr(namespace, f.name, None) if namespace is not None else None
        if raw is None:
            raw = environ.get(_env_name(f.name)) or None
        if raw is not None:
            values[f.name] = _parse(raw, f.default, f.name)
    return Config(**values)


def parse_args(doc: str, argv: Sequence[str] | None = None, step: int | None = None,
               extra: Callable[[argparse.ArgumentParser], None] | None = None) -> tuple[Config, argparse.Namespace]:
    """The command line of a workshop step: the settings it reads, plus `extra(parser)`'s own flags.

    `doc` is the script's docstring (its first line describes the command). Settings a step does not read keep
    their environment value or default.
    """
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    if extra is not None:
        extra(parser)
    add_arguments(parser, None if step is None else (step,))
    namespace = parser.parse_args(argv)
    return from_namespace(namespace), namespace


def _display(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, Path) and value == PACKAGE_DIR:
        return "the aurore/ folder"
    return str(value) if value != "" else '""'


def describe(config: Config) -> str:
    """The settings in effect, one per line, for logs and `python -m aurore config`."""
    return "\n".join(f"  {_env_name(f.name):30} {_display(getattr(config, f.name))}" for f in settings())

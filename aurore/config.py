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
from typing import Sequence

PACKAGE_DIR = Path(__file__).resolve().parent
ENV_PREFIX = "AURORE_"
HUB_BASE_MODEL = "benjamin/gpt2-wechsel-french"


# Training profiles of step 3. laptop: a CPU run that still learns in minutes: the embeddings and lower blocks are
# frozen (only the top `train_top_blocks` learn), blocks are cut to 64 tokens, the train step is XLA-compiled.
# full: every weight learns on step 2's blocks (for GPUs).
PROFILES = {
    "laptop": {"freeze": True, "block_size": 64, "jit_compile": True},
    "full": {"freeze": False, "block_size": 0, "jit_compile": False},
}


@dataclass
class Config:
    # -- where things live ------------------------------------------------------------------------
    workdir: Path = field(default=PACKAGE_DIR, metadata={"help": "folder holding data/ and models/"})
    gutenberg_mirror: str = field(
        default="", metadata={"help": "folder or file://, http(s):// base holding pg<ID>.txt; empty = gutenberg.org"}
    )
    base_model: str = field(default=HUB_BASE_MODEL, metadata={"help": "hub id or local folder of the base GPT-2"})

    # -- step 1: the books --------------------------------------------------------------------------
    train_books: tuple[int, ...] = field(
        default=(39738, 34204, 13380, 37989), metadata={"help": "Gutenberg ids of the training books"}
    )
    test_books: tuple[int, ...] = field(default=(23582,), metadata={"help": "Gutenberg ids of the held-out books"})
    download_timeout: float = field(default=15.0, metadata={"help": "seconds before a download gives up"})
    min_words: int = field(default=3, metadata={"help": "sentences with fewer words are dropped"})

    # -- step 2: tokenization -----------------------------------------------------------------------
    block_size: int = field(default=128, metadata={"help": "tokens per training example"})
    tokenizer_vocab_size: int = field(default=52_000, metadata={"help": "vocabulary of the bonus tokenizer"})

    # -- step 3: training ---------------------------------------------------------------------------
    epochs: int = field(default=1, metadata={"help": "passes over the training books"})
    batch_size: int = field(default=4, metadata={"help": "examples per step"})
    learning_rate: float = field(default=5e-5, metadata={"help": "peak learning rate of AdamW"})
    warmup_ratio: float = field(default=0.1, metadata={"help": "share of steps spent warming up"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    max_steps: int = field(
        default=200, metadata={"help": "cap on training steps, shared among the epochs (0 = full epochs)"}
    )
    save_every: int = field(default=100, metadata={"help": "save a checkpoint every N steps (0 = epoch ends only)"})
    keep_checkpoints: int = field(default=3, metadata={"help": "how many checkpoints to keep"})
    seed: int = field(default=42, metadata={"help": "random seed for shuffling, init and sampling"})
    profile: str = field(default="auto", metadata={"help": "training profile: laptop, full, or auto (laptop without GPU)"})
    train_top_blocks: int = field(default=2, metadata={"help": "laptop profile: top transformer blocks that learn"})
    time_budget: str = field(default="", metadata={"help": "stop training after this long, e.g. 5m (checkpoint saved)"})

    # -- step 4: generation -------------------------------------------------------------------------
    max_new_tokens: int = field(default=60, metadata={"help": "tokens generated per text"})
    temperature: float = field(default=0.9, metadata={"help": "sampling temperature"})
    top_k: int = field(default=50, metadata={"help": "sample among the k likeliest tokens (0 = off)"})
    top_p: float = field(default=0.95, metadata={"help": "sample within this probability mass (1.0 = off)"})

    # -- step 6: a miniature GPT from scratch -----------------------------------------------------------------
    mini_tokens: str = field(default="char", metadata={"help": "char or word tokens for the from-scratch model"})
    mini_vocab_size: int = field(default=10_000, metadata={"help": "word vocabulary size ([UNK] for the rest)"})
    mini_seq_len: int = field(default=128, metadata={"help": "tokens the from-scratch model sees at once"})
    mini_embed_dim: int = field(default=128, metadata={"help": "embedding width"})
    mini_heads: int = field(default=4, metadata={"help": "attention heads per block"})
    mini_layers: int = field(default=2, metadata={"help": "transformer blocks"})
    mini_ff_dim: int = field(default=256, metadata={"help": "feed-forward width"})
    mini_dropout: float = field(default=0.1, metadata={"help": "dropout rate"})
    mini_epochs: int = field(default=5, metadata={"help": "training epochs"})
    mini_batch_size: int = field(default=64, metadata={"help": "windows per step"})
    mini_learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    mini_steps_per_epoch: int = field(default=200, metadata={"help": "steps per epoch (0 = whole corpus)"})

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


def settings() -> list[dataclasses.Field]:
    return list(fields(Config))


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add one `--flag` per setting; the help shows the environment variable too."""
    group = parser.add_argument_group("settings (flag, or environment variable)")
    for f in settings():
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


def parse_args(description: str, argv: Sequence[str] | None = None, extra=None) -> tuple[Config, argparse.Namespace]:
    """The standard command line of a workshop step. `extra(parser)` adds step-specific flags."""
    parser = argparse.ArgumentParser(description=description)
    if extra is not None:
        extra(parser)
    add_arguments(parser)
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

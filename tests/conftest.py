"""Shared fixtures. Tests never touch the network: the hub is offline and books come from the mirror."""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # before anything imports TensorFlow
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import subprocess
import sys
from pathlib import Path

import pytest

from aurore.config import PACKAGE_DIR, Config
from aurore.workshop.exercises import keras_registry_kept, load_script

REPO = PACKAGE_DIR.parent


def script(name: str):
    """Import a numbered script (e.g. "1_prepare_dataset_solution") as a module."""
    return load_script(PACKAGE_DIR / f"{name}.py")


def run_script(args: list[str], env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run a command the way a participant does, from the repository root."""
    return subprocess.run([sys.executable, *args], cwd=REPO, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(autouse=True)
def _keras_registry_per_test():
    """A test that loads a step file (an unfinished step 6, say) registers its Keras classes by name: they must not
    be the ones another test's `load_model` resolves."""
    with keras_registry_kept():
        yield


@pytest.fixture(scope="session")
def mirror() -> Path:
    value = os.environ.get("AURORE_GUTENBERG_MIRROR")
    if not value or not Path(value).is_dir():
        pytest.skip("AURORE_GUTENBERG_MIRROR is not set to the shared corpus folder (CI always sets it)")
    return Path(value).resolve()


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, mirror) -> Config:
    """A workdir where step 1 has run on the five real books."""
    config = Config(workdir=tmp_path_factory.mktemp("work"), gutenberg_mirror=str(mirror))
    script("1_prepare_dataset_solution").main(["--workdir", str(config.workdir), "--gutenberg-mirror", str(mirror)])
    return config


@pytest.fixture(scope="session")
def standin(prepared) -> Config:
    """The same workdir plus the stand-in base model; the returned config uses it as base model."""
    from aurore.hub.standin import build_standin

    path = build_standin(prepared, vocab_size=1024, n_layer=2, n_embd=64, n_head=2, n_positions=256)
    return Config(workdir=prepared.workdir, gutenberg_mirror=prepared.gutenberg_mirror, base_model=str(path))


# A small from-scratch model (step 6) and its corpus: a few seconds of training.
MINI_TINY = dict(mini_seq_len=16, mini_embed_dim=32, mini_heads=2, mini_ff_dim=64, mini_layers=1, mini_dropout=0.0,
                 mini_batch_size=16, mini_learning_rate=3e-3, mini_warmup_steps=5)
MINI_TEXT = ("Le vent soufflait sur la lande et la rivière chantait sous les saules. " * 40
             + "Germain laboura le champ, puis il rentra chez lui le soir. " * 40)


def where(config: Config) -> list[str]:
    """The flags that point a step at `config`'s workdir and base model."""
    return ["--workdir", str(config.workdir), "--base-model", config.base_model]


def tokenized_copy(standin: Config, workdir: Path, block_size: int) -> Config:
    """A workdir of its own: the session's step-1 sentences copied, then step 2 run with `block_size`."""
    import shutil

    config = Config(workdir=workdir, base_model=standin.base_model)
    shutil.copytree(standin.dataset_dir, config.dataset_dir)
    script("2_tokenize_solution").main([*where(config), "--block-size", str(block_size)])
    return config


def mini_args(workdir, *extra) -> list[str]:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in MINI_TINY.items()]
    return ["--workdir", str(workdir), *flags, "--mini-steps-per-epoch", "20", *extra]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny GPT-2 and its tokenizer, saved once per session as step 3 would; copy it before writing next to it."""
    from aurore.workshop.fixtures import tiny_model_folder

    return tiny_model_folder(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def mini_gpt_workdir(tmp_path_factory) -> Path:
    """A workdir where step 6 has trained (one short epoch) and saved its model, once per session."""
    workdir = tmp_path_factory.mktemp("mini")
    (workdir / "corpus.txt").write_text(MINI_TEXT, encoding="utf-8")
    script("6_mini_gpt_solution").main(mini_args(workdir, "--text-file", str(workdir / "corpus.txt"),
                                                 "--mini-epochs", "1"))
    return workdir

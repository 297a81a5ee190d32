"""Shared fixtures. Tests never touch the network: the hub is offline and books come from the mirror."""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # before anything imports TensorFlow
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import subprocess
import sys
from pathlib import Path

import pytest

from aurore.exercises import load_script
from aurore.config import PACKAGE_DIR, Config

REPO = PACKAGE_DIR.parent


def script(name: str):
    """Import a numbered script (e.g. "1_prepare_dataset_solution") as a module."""
    return load_script(PACKAGE_DIR / f"{name}.py")


def run_script(args: list[str], env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run a command the way a participant does, from the repository root."""
    return subprocess.run([sys.executable, *args], cwd=REPO, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=timeout)


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
    from aurore.standin import build_standin

    path = build_standin(prepared, vocab_size=1024, n_layer=2, n_embd=64, n_head=2, n_positions=256)
    return Config(workdir=prepared.workdir, gutenberg_mirror=prepared.gutenberg_mirror, base_model=str(path))

"""The Dockerfile, without a Docker engine: lint it, check its invariants, and replay its layout."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
HADOLINT = shutil.which("hadolint", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]))


@pytest.mark.skipif(HADOLINT is None, reason="hadolint (requirements-dev.txt) is not installed")
def test_hadolint_finds_nothing():
    result = subprocess.run([HADOLINT, str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_invariants():
    assert re.search(r"^FROM python:3\.11-slim\b", DOCKERFILE, re.M)
    assert "bash /opt/aurore-src/.ci/install.sh /opt/venv requirements.txt" in DOCKERFILE  # same set-up as make/CI
    assert re.search(r"TF_USE_LEGACY_KERAS=1", DOCKERFILE) and "HF_HUB_OFFLINE=" in DOCKERFILE
    user = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r"^WORKDIR /$", DOCKERFILE, re.M) and "PYTHONPATH=/" in DOCKERFILE
    assert re.search(r"^EXPOSE 8080$", DOCKERFILE, re.M)
    cmd = re.search(r"^CMD (\[.*\])$", DOCKERFILE, re.M).group(1)
    assert '"--host", "0.0.0.0"' in cmd and '"--port", "8080"' in cmd
    for script in re.findall(r"aurore/[\w.]+\.py", DOCKERFILE):
        assert (REPO / script).is_file(), script
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert {"aurore/data", "aurore/models", ".venv"} <= set(ignored)  # no fetched text or model in the image


def test_the_container_layout_writes_into_the_mounted_folder(tmp_path, mirror):
    """`docker run -v $PWD/aurore:/aurore text-gen python aurore/1_…` : cwd /, PYTHONPATH=/, no AURORE_WORKDIR."""
    root = tmp_path / "root"
    shutil.copytree(REPO / "aurore", root / "aurore", ignore=shutil.ignore_patterns("data", "models", "__pycache__"))
    env = {"PYTHONPATH": str(root), "AURORE_WORKDIR": "", "AURORE_GUTENBERG_MIRROR": str(mirror)}
    result = subprocess.run([sys.executable, "aurore/1_prepare_dataset_solution.py"], cwd=root,
                            env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (root / "aurore" / "data" / "sentences" / "dataset_dict.json").is_file()
    assert (root / "aurore" / "data" / "books" / "pg23582.txt").is_file()

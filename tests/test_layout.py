"""The code's layout as the README describes it: every module on the map, and the dependency rules hold.

(The package cannot import a numbered script by name: `aurore.1_prepare_dataset` is not a valid module name.)
"""

import re
import subprocess
import sys

from aurore.config import PACKAGE_DIR
from conftest import REPO

NUMBERED = re.compile(r"^[1-6]_")


def package_modules() -> set[str]:
    return {p.stem for p in PACKAGE_DIR.glob("*.py") if not NUMBERED.match(p.name) and p.stem != "__init__"}


def test_the_readme_map_names_every_module_and_only_those():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## How the code is laid out", 1)[1].split("\n## ", 1)[0]
    named = {name for cell in re.findall(r"^\| [\w ]+ \| (.+?) \|", section, re.M) for name in re.findall(r"`(\w+)`", cell)}
    assert named == package_modules()


def test_the_web_layer_never_loads_training_and_nothing_loads_a_model_at_import():
    code = ("import sys, aurore.web, aurore.serving, aurore.generation, aurore.fastgen, aurore.minigpt; "
            "print(sorted(m for m in sys.modules if m.startswith('aurore.')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for module in ("training", "checkpoints", "callbacks", "evaluation"):
        assert f"'aurore.{module}'" not in loaded, module
    # Every module imported with the network forbidden: an import that downloaded or probed the hub would fail.
    everything = "; ".join(f"import aurore.{m}" for m in sorted(package_modules() - {"__main__"}))
    code = ("import socket\n"
            "def refuse(*args, **kwargs): raise SystemExit('network used at import time')\n"
            "socket.socket.connect = socket.create_connection = refuse\n" + everything)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]

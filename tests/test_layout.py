"""The code's layout as the README describes it: every module on the map, in its layer's folder, and the
dependency rules hold, function-level imports included.

(The package cannot import a numbered script by name: `aurore.1_prepare_dataset` is not a valid module name.)
"""

import ast
import re
import subprocess
import sys

from aurore.config import PACKAGE_DIR
from conftest import REPO

NUMBERED = re.compile(r"^[1-6]_")
# Layers from the bottom up: a module imports only from its own layer or those below (the README's map).
ORDER = ["base", "text", "hub", "training", "engines", "web", "workshop"]


def modules() -> dict[str, str]:
    """Each plumbing module's dotted name (aurore.web.forms) -> its layer (the folder; base: the top level)."""
    found = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        if NUMBERED.match(path.name) or "__pycache__" in path.parts:
            continue
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        layer = parts[1] if len(path.relative_to(PACKAGE_DIR).parts) > 1 else "base"
        found[".".join(parts)] = layer
    return found


def test_the_readme_map_names_every_module_in_its_folder():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## How the code is laid out", 1)[1].split("\n## ", 1)[0]
    named = set()
    for layer, folder, cell in re.findall(r"^\| ([\w ]+) \| `([\w/]+)` \| (.+?) \|", section, re.M):
        package = folder.rstrip("/").replace("/", ".")
        for name in re.findall(r"`(\w+)`", cell):  # a package's own code (aurore.web) is named after its folder
            named.add(package if name == package.rsplit(".", 1)[-1] else f"{package}.{name}")
    assert named == {name for name in modules() if name != "aurore" and not _empty_package(name)}


def _empty_package(name: str) -> bool:
    path = PACKAGE_DIR.parent.joinpath(*name.split(".")) / "__init__.py"
    return path.is_file() and len(ast.parse(path.read_text(encoding="utf-8")).body) <= 1


def test_each_module_imports_only_its_layer_or_those_below_even_inside_functions():
    layers = modules()
    wrong = []
    for name, layer in layers.items():
        path = PACKAGE_DIR.parent.joinpath(*name.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aurore"):
                targets = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names if alias.name.startswith("aurore")]
            for target in targets:
                while target not in layers and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in layers and name != "aurore.__main__" \
                        and ORDER.index(layers[target]) > ORDER.index(layer):
                    wrong.append(f"{name} ({layer}) imports {target} ({layers[target]}), line {node.lineno}")
    assert wrong == []


def test_the_web_layer_never_loads_training_and_nothing_loads_a_model_at_import():
    code = ("import sys, aurore.web, aurore.web.serving, aurore.engines.generation, aurore.engines.fastgen, "
            "aurore.engines.minigpt; print(sorted(m for m in sys.modules if m.startswith('aurore.')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'aurore.training" not in loaded, loaded
    # Every module imported with the network forbidden: an import that downloaded or probed the hub would fail.
    everything = "; ".join(f"import {m}" for m in sorted(modules()) if m != "aurore.__main__")
    code = ("import socket\n"
            "def refuse(*args, **kwargs): raise SystemExit('network used at import time')\n"
            "socket.socket.connect = socket.create_connection = refuse\n" + everything)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]

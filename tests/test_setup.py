"""The set-up (`python -m aurore setup`), run by the Pythons people bring, and the organisers' kit as a laptop sees it.

(The whole uv path from a fresh clone on Python 3.13, and a laptop without network installing from a kit, run in CI:
`.ci/python313.sh` and `.ci/docker-smoke.sh`.)
"""

import json
import os
import platform
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from aurore import bootstrap, platforms
from aurore.workshop import kit
from conftest import REPO

PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"


def old_python(version: str) -> Path:
    found = sorted(PYENV.glob(f"{version}.*/bin/python{version}"))
    if not found:
        pytest.skip(f"no Python {version} on this machine (pyenv)")
    return found[-1]


@pytest.mark.parametrize("version", ["3.9", "3.10"])
def test_a_python_too_old_for_the_pins_gets_what_to_do(version, tmp_path):
    """The Python of an old Mac or Ubuntu 22.04, with no uv: a French message naming the versions that work and how
    to get uv, before anything is written."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = str(tmp_path)  # no uv to be found
    if subprocess.run([str(old_python(version)), "-m", "uv", "--version"], capture_output=True).returncode == 0:
        pytest.skip(f"this Python {version} has uv installed: it would install a supported Python")
    result = subprocess.run([str(old_python(version)), "-m", "aurore", "setup", "--venv", str(tmp_path / "venv")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"ce Python ({version}) ne convient pas (il faut Python 3.11 à 3.13" in result.stderr
    assert "winget install --id=astral-sh.uv" in result.stderr and "brew install uv" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "venv").exists()


@pytest.mark.parametrize("system, machine, word", [("darwin", "x86_64", "processeur Intel"),
                                                   ("win32", "ARM64", "TensorFlow 2.21 n'existe pas")])
def test_laptops_without_tensorflow_are_sent_to_docker(system, machine, word, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(platforms.sys, "platform", system)
    monkeypatch.setattr(platforms.platform, "machine", lambda: machine)
    assert bootstrap.main(["setup", "--venv", str(tmp_path / "venv")]) == 1
    error = capsys.readouterr().err
    assert word in error and "Docker" in error
    assert not (tmp_path / "venv").exists()


def test_an_intel_python_under_rosetta_is_told_how_to_get_an_arm_one(monkeypatch):
    monkeypatch.setattr(platforms.sys, "platform", "darwin")
    monkeypatch.setattr(platforms.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(platforms, "_under_rosetta", lambda: True)
    problem = platforms.platform_problem()
    assert "Rosetta" in problem and "--python cpython-3.12-macos-aarch64" in problem and "Docker" not in problem


def test_each_supported_laptop_has_its_platform():
    for system, machine, key in [("linux", "x86_64", "linux-x86_64"), ("linux", "aarch64", "linux-aarch64"),
                                 ("darwin", "arm64", "macos-arm64"), ("win32", "AMD64", "windows-x86_64")]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(platforms.sys, "platform", system)
            patch.setattr(platforms.platform, "machine", lambda: machine)
            assert platforms.current_platform() == key and platforms.platform_problem() is None


def write_kit(folder: Path, platforms_: list[str], python: str) -> Path:
    (folder / "wheels").mkdir(parents=True)
    (folder / "kit.json").write_text(json.dumps({"python": python, "platforms": platforms_}))
    return folder


def test_a_kit_for_another_platform_says_which_it_is_for(tmp_path, capsys):
    other = next(key for key in platforms.PLATFORMS if key != platforms.current_platform())
    key = write_kit(tmp_path / "kit", [other], "3.12")
    assert bootstrap.main(["setup", "--kit", str(key), "--venv", str(tmp_path / "venv")]) == 1
    assert f"faite pour {other}, pas pour ce système ({platforms.current_platform()})" in capsys.readouterr().err


def test_a_folder_that_is_no_kit(tmp_path, capsys):
    assert bootstrap.main(["setup", "--kit", str(tmp_path), "--venv", str(tmp_path / "venv")]) == 1
    assert "n'est pas une clé de l'atelier (pas de fichier kit.json dedans)" in capsys.readouterr().err


def test_an_install_that_fails_halfway_is_not_marked_done_and_says_rerun(tmp_path, capsys):
    """A kit without the wheels: the venv is made, the install fails offline; no marker, so `demo`/`test` and a
    rerun redo it, and the message says to rerun."""
    here = "{}.{}".format(*sys.version_info[:2])
    key = write_kit(tmp_path / "kit", [platforms.current_platform()], here)
    venv = tmp_path / "venv"
    if bootstrap.find_uv(key) is None:
        pytest.skip("uv is not installed here (requirements-dev.txt installs it)")
    assert bootstrap.main(["setup", "--kit", str(key), "--venv", str(venv), "--no-doctor"]) == 1
    assert f"Relancez `{bootstrap.SETUP_COMMAND}`" in capsys.readouterr().err
    assert bootstrap.venv_python(venv).exists()
    assert not bootstrap.installed(venv, REPO / "requirements.txt")


def test_pyproject_declares_the_pins_of_requirements_txt():
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = [line.replace(" ; ", "; ").replace('"', "'") for line in (REPO / "requirements.txt").read_text().splitlines()
            if line and not line.startswith("#")]
    assert declared["dependencies"] == pins
    assert declared["requires-python"] == ">=3.11,<3.14"
    low, high = platforms.SUPPORTED
    assert (REPO / ".python-version").read_text().strip() in {f"3.{minor}" for minor in range(low[1], high[1] + 1)}


def test_the_guide_gives_the_commands_the_kit_and_the_set_up_print():
    guide = (REPO / "docs" / "atelier.md").read_text(encoding="utf-8")
    readme = kit.instructions(Path("kit"), {"python": "3.12", "platforms": ["linux-x86_64"], "pythons": []})
    commands = re.findall(r"^ {5}.{22} (\S.*)$", readme, re.M)
    assert len(commands) == 4
    for command in commands:
        assert command.replace("CLÉ", "") in guide, command
    assert all(command in guide for command in bootstrap.ACTIVATE_COMMANDS.values())


def test_the_kit_installs_uv_from_its_wheel_without_pip(tmp_path):
    """uv's wheel is a zip holding the binary: a laptop with no pip (Debian's python3) gets uv from the kit."""
    wheel_tag = platforms.PLATFORMS[platforms.current_platform()][1]
    real = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True, text=True)
    if real.returncode != 0:
        pytest.skip("uv is not installed here (requirements-dev.txt installs it)")
    import uv  # the uv package of the test environment carries the binary the wheel holds

    key = write_kit(tmp_path / "kit", [platforms.current_platform()], "3.12")
    import zipfile

    version = real.stdout.split()[1]
    binary = "uv.exe" if os.name == "nt" else "uv"
    with zipfile.ZipFile(key / "wheels" / f"uv-{version}-py3-none-{wheel_tag}.whl", "w") as wheel:
        wheel.write(uv.find_uv_bin(), f"uv-{version}.data/scripts/{binary}")
    command = bootstrap._uv_from_kit(key)
    assert command is not None and subprocess.run(command + ["--version"], capture_output=True, text=True,
                                                  ).stdout.split()[1] == version
    assert platform.machine()  # the wheel chosen was this machine's

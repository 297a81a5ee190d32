"""`python -m aurore kit FOLDER`: the organisers' USB key, built once with network, for a room without it.

The folder holds the wheels of every pin for each laptop platform and one Python version (pip's own
`pip download --platform`), uv's wheels for the same platforms (a wheel carries the uv binary, which `setup --kit`
takes out, so a laptop needs no pip), a copy of the repository, the five books as a Gutenberg mirror, the base model
converted for TensorFlow when it has been downloaded, uv's managed Pythons when they can be downloaded, `kit.json`
(what it holds) and `LISEZMOI.txt` (the participants' commands). On a laptop: `python -m aurore setup --kit FOLDER`.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from aurore import bootstrap, platforms
from aurore.config import HUB_BASE_MODEL, Config
from aurore.errors import AuroreError

DEFAULT_PLATFORMS = list(platforms.PLATFORMS)
# uv's names for a platform's managed Python (`uv python list --all-platforms`).
UV_PYTHON_KEYS = {"linux-x86_64": ("linux", "x86_64", "gnu"), "linux-aarch64": ("linux", "aarch64", "gnu"),
                  "macos-arm64": ("macos", "aarch64", "none"), "windows-x86_64": ("windows", "x86_64", "none")}


def add_kit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, metavar="DOSSIER", help="le dossier de la clé (créé au besoin)")
    parser.add_argument("--platform", action="append", choices=DEFAULT_PLATFORMS,
                        help="plateforme des portables (répétable ; par défaut : les quatre)")
    parser.add_argument("--python-version", default=bootstrap.pinned_python(),
                        help=f"version de Python des portables (par défaut : {bootstrap.pinned_python()})")
    parser.add_argument("--with-pythons", action="store_true",
                        help="ajoute les Python gérés par uv (téléchargés hors de l'index des paquets)")


def _pip() -> list[str]:
    """pip of this Python, else pip run by uv (a venv made by uv has no pip)."""
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode == 0:
        return [sys.executable, "-m", "pip"]
    uv = bootstrap.find_uv()
    if uv is None:
        raise AuroreError("ni pip ni uv dans cet environnement.", "`python -m pip install uv`, puis relancez.")
    return uv + ["tool", "run", "pip"]


def download_wheels(folder: Path, target: str, python_version: str, requirements: Path) -> list[str]:
    """The wheels of every pin and of uv for one platform, into folder/wheels; returns their file names."""
    tags = platforms.PLATFORMS[target][0]
    abi = "cp" + python_version.replace(".", "")
    uv_version = subprocess.run((bootstrap.find_uv() or ["uv"]) + ["--version"], capture_output=True,
                                text=True).stdout.split()[1]
    command = _pip() + ["download", "--disable-pip-version-check", "--only-binary=:all:", "--no-deps",
                        "--python-version", python_version, "--implementation", "cp", "--abi", abi, "--abi", "abi3",
                        "--abi", "none", "-r", str(requirements), f"uv=={uv_version}", "-d", str(folder / "wheels")]
    for tag in tags:
        command += ["--platform", tag]
    print(f"== paquets pour {target}, Python {python_version}", flush=True)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        print(result.stdout[-3000:] + result.stderr[-3000:], file=sys.stderr)
        raise AuroreError(f"pip download a échoué pour {target} (les lignes ci-dessus disent quel paquet).",
                          "Vérifiez le réseau, puis relancez : les paquets déjà téléchargés sont gardés.")
    # pip names each file it saved or found already there.
    return sorted({Path(name).name for name in re.findall(r"(?:Saved|File was already downloaded) (\S+\.whl)",
                                                          result.stdout)})


def copy_repository(folder: Path) -> None:
    """The repository's tracked files (git), or its tree without the workdir's outputs and the venv."""
    target = folder / "aurore"
    if target.exists():
        shutil.rmtree(target)
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=bootstrap.REPO, capture_output=True)
    if listing.returncode == 0 and listing.stdout:
        for name in listing.stdout.decode("utf-8").split("\0"):
            if name and (bootstrap.REPO / name).is_file():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(bootstrap.REPO / name, target / name)
        return
    ignored = shutil.ignore_patterns(".git", ".venv", "__pycache__", "data", "models", "nltk_data", "test-output")
    shutil.copytree(bootstrap.REPO, target, ignore=ignored)


def copy_books(folder: Path, config: Config) -> int:
    """The five books (from step 1's cache, the mirror or gutenberg.org: the same URLs as step 1) as a mirror."""
    from aurore.text.gutenberg import book_url, is_end_marker, read_lines

    target = folder / "livres"
    target.mkdir(parents=True, exist_ok=True)
    for book in [*config.train_books, *config.test_books]:
        path = target / f"pg{book}.txt"
        cached = config.books_dir / path.name
        if cached.is_file():
            shutil.copyfile(cached, path)
        elif not path.is_file():
            with urllib.request.urlopen(book_url(book, config.gutenberg_mirror), timeout=60) as answer:
                path.write_bytes(answer.read())
        if not any(is_end_marker(line) for line in read_lines(path)):
            path.unlink()
            raise AuroreError(f"pg{book}.txt n'est pas un livre complet.", "Relancez la commande.")
    return len(list(target.glob("pg*.txt")))


def copy_model(folder: Path, config: Config) -> str | None:
    """The hub model converted for TensorFlow (`python -m aurore download-model`), when it is here."""
    from aurore.hub import converted_dir

    source = converted_dir(HUB_BASE_MODEL, config)
    if not (source / "tf_model.h5").is_file():
        return None
    target = folder / "modeles" / source.name
    if not target.exists():
        shutil.copytree(source, target)
    return source.name


def download_pythons(folder: Path, targets: list[str], python_version: str) -> list[str]:
    """uv's managed Pythons for the platforms, laid out as a `UV_PYTHON_INSTALL_MIRROR` (release tag/file name).
    They come from outside the package index: where that is unreachable, the kit carries none (said, not fatal)."""
    uv = bootstrap.find_uv()
    listing = subprocess.run((uv or ["uv"]) + ["python", "list", "--all-platforms", "--only-downloads",
                                               "--output-format", "json"], capture_output=True, text=True)
    if listing.returncode != 0:
        return []
    found = []
    for entry in json.loads(listing.stdout):
        key = (entry.get("os"), entry.get("arch"), entry.get("libc"))
        if entry.get("implementation") != "cpython" or entry.get("variant") != "default" \
                or not entry["version"].startswith(python_version + ".") \
                or key not in [UV_PYTHON_KEYS[target] for target in targets]:
            continue
        tag, name = entry["url"].split("/")[-2:]
        target = folder / "python" / tag / urllib.request.url2pathname(name)
        if not target.is_file():
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with urllib.request.urlopen(entry["url"], timeout=60) as answer:
                    target.write_bytes(answer.read())
            except OSError as error:
                print(f"note : impossible de télécharger {entry['key']} ({error}) : la clé n'emporte pas de Python.")
                shutil.rmtree(folder / "python", ignore_errors=True)
                return []
        found.append(entry["key"])
    return found


def instructions(folder: Path, manifest: dict) -> str:
    """LISEZMOI.txt: what a participant does with the key (French)."""
    lines = [f"Clé de l'atelier « Le réseau de neurones qui écrivait des romans » — Python {manifest['python']}, "
             f"pour : {', '.join(manifest['platforms'])}.", "",
             "1. Copiez le dossier « aurore » de cette clé sur votre disque, puis ouvrez un terminal dans ce dossier.",
             "2. Installez, sans réseau (remplacez CLÉ par le chemin de cette clé, par exemple E:\\ ou "
             "/media/vous/CLE) :"]
    lines += [f"     {system:22} {command} --kit CLÉ" for system, command in bootstrap.SETUP_COMMANDS.items()]
    lines += ["   La commande finit par « python -m aurore doctor » : chaque ligne ✘ dit quoi faire.",
              "3. Activez l'environnement dans chaque nouveau terminal :"]
    lines += [f"     {system:22} {command}" for system, command in bootstrap.ACTIVATE_COMMANDS.items()]
    lines += ["",
              "Les livres (dossier livres/) et le modèle (dossier modeles/, s'il y est) sont copiés dans aurore/data et "
              "aurore/models : les étapes marchent hors ligne sans autre réglage."]
    if not manifest["pythons"]:
        lines += ["", f"Cette clé n'emporte pas de Python : il faut un Python {platforms.SUPPORTED_TEXT} sur le "
                      "portable (sinon, l'image Docker de l'atelier)."]
    return "\n".join(lines) + "\n"


def build_kit(folder: Path, config: Config, targets: list[str] | None = None, python_version: str | None = None,
              with_pythons: bool = False) -> int:
    folder = Path(folder).expanduser().resolve()
    targets = targets or DEFAULT_PLATFORMS
    python_version = python_version or bootstrap.pinned_python()
    if not platforms.supported(tuple(int(part) for part in python_version.split(".")[:2])):
        raise AuroreError(f"--python-version {python_version} : TensorFlow 2.21 n'existe que pour Python "
                          f"{platforms.SUPPORTED_TEXT}.", "Choisissez 3.11, 3.12 ou 3.13.")
    (folder / "wheels").mkdir(parents=True, exist_ok=True)
    pins = folder / "requirements.txt"
    shutil.copyfile(bootstrap.REPO / "requirements.txt", pins)
    unmarked = folder / "wheels" / ".requirements-all-platforms.txt"  # pip evaluates markers for this machine only
    unmarked.write_text(re.sub(r"\s*;[^\n]*", "", pins.read_text(encoding="utf-8")), encoding="utf-8")
    wheels = {target: download_wheels(folder, target, python_version, unmarked) for target in targets}
    copy_repository(folder)
    books = copy_books(folder, config)
    model = copy_model(folder, config)
    pythons = download_pythons(folder, targets, python_version) if with_pythons else []
    manifest = {"python": python_version, "platforms": targets, "wheels": wheels, "books": books, "model": model,
                "pythons": pythons}
    (folder / "kit.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    (folder / "LISEZMOI.txt").write_text(instructions(folder, manifest), encoding="utf-8")
    print(f"Clé prête dans {folder} : " + ", ".join(f"{p} ({len(w)} paquets)" for p, w in wheels.items())
          + f" ; {books} livres ; modèle : {model or 'aucun (lancez d’abord python -m aurore download-model)'} ; "
          f"Python gérés : {', '.join(pythons) or 'aucun'}.\nLisez {folder / 'LISEZMOI.txt'}.")
    return 0

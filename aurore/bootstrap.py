"""The workshop's set-up, run by whatever Python a laptop has: `python -m aurore setup`.

This module uses the standard library only and avoids syntax newer than Python 3.8, so that the Python a
participant brings (3.9 on an old Mac, 3.14 on Ubuntu 26.04) can run it before anything is installed. It makes the
virtualenv `.venv` with uv (which finds, or downloads, a Python every pin supports: `.python-version`), installs the
exact pins of `requirements.txt` (`uv pip sync`), makes `import aurore` work from the venv, and ends with `doctor`.
Without uv, a supported Python falls back to `venv` + pip. `--kit FOLDER` installs from the organisers' USB key
(`python -m aurore kit`) with no network. A marker written last (`.venv/aurore-setup.json`) tells `doctor` that the
install finished: an install cut halfway is never called fine, and running the set-up again finishes it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from aurore.platforms import (PLATFORMS, SUPPORTED, SUPPORTED_TEXT, current_platform, platform_problem, supported,
                              unsupported_python_without_uv)

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
MARKER = "aurore-setup.json"
# What participants type, per system: the guide (docs/atelier.md), this set-up, doctor and the kit's LISEZMOI.txt say
# the same; SETUP_COMMAND is this system's.
SETUP_COMMANDS = {"Windows (PowerShell)": "py -m aurore setup", "macOS, Linux": "python3 -m aurore setup"}
SETUP_COMMAND = SETUP_COMMANDS["Windows (PowerShell)" if os.name == "nt" else "macOS, Linux"]
ACTIVATE_COMMANDS = {"Windows (PowerShell)": ".venv\\Scripts\\Activate.ps1", "macOS, Linux": "source .venv/bin/activate"}
def pinned_python() -> str:
    """The Python the set-up asks uv for when the running one does not fit (`.python-version`; the Docker image has
    only the package, hence the fallback)."""
    path = REPO / ".python-version"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else "3.12"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def requirements_digest(requirements: Path) -> str:
    """What the marker records of a pin file (a changed file makes `doctor` say so)."""
    text = requirements.read_text(encoding="utf-8")
    for line in text.splitlines():  # requirements-dev.txt includes requirements.txt
        if line.startswith("-r "):
            text += (requirements.parent / line[3:].strip()).read_text(encoding="utf-8")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def installed(venv: Path, requirements: Path) -> bool:
    """Did a set-up of these pins finish in `venv` (and the file not change since)? Its marker says."""
    try:
        marker = json.loads((venv / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return marker.get("files", {}).get(requirements.name) == requirements_digest(requirements)


class SetupError(Exception):
    """A set-up failure with its French explanation and what to do."""


def _works(command: list[str]) -> bool:
    try:
        return subprocess.run(command + ["--version"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def find_uv(kit: Path | None = None) -> list[str] | None:
    """The command that runs uv: the `uv` package of this Python, uv on the PATH, or the kit's uv wheel for this
    platform (a wheel is a zip: its binary is taken out, no pip needed)."""
    for command in ([sys.executable, "-m", "uv"], [shutil.which("uv") or "uv"]):
        if _works(command):
            return command
    return _uv_from_kit(kit) if kit is not None else None


def _uv_from_kit(kit: Path) -> list[str] | None:
    key = current_platform()
    if key is None:
        return None
    tag = PLATFORMS[key][1]
    for wheel in sorted((kit / "wheels").glob("uv-*.whl")):
        if tag not in wheel.name:
            continue
        name = "uv.exe" if os.name == "nt" else "uv"
        with zipfile.ZipFile(wheel) as archive:
            member = next((m for m in archive.namelist() if m.endswith("/scripts/" + name)), None)
            if member is None:
                continue
            target = Path(tempfile.mkdtemp(prefix="aurore-uv-")) / name
            target.write_bytes(archive.read(member))
        target.chmod(0o755)
        return [str(target)]
    return None


def _run(command: list[str], what: str, env: dict | None = None) -> None:
    print("  $ " + " ".join(str(part) for part in command), flush=True)
    if subprocess.run(command, env=env).returncode != 0:
        raise SetupError(f"{what} a échoué (voir les lignes au-dessus). Relancez `{SETUP_COMMAND}` : ce qui est déjà "
                         "installé est gardé ; si l'erreur revient, montrez-la aux organisateurs.")


def _python_version(python: Path) -> tuple[int, int] | None:
    try:
        out = subprocess.run([str(python), "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                             text=True, timeout=60).stdout.split()
        return (int(out[0]), int(out[1]))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def make_venv(venv: Path, uv: list[str] | None, python: str | None, kit: Path | None) -> None:
    """Create the venv unless one with a supported Python is there (a rerun keeps it: it only finishes the install)."""
    existing = _python_version(venv_python(venv)) if venv_python(venv).exists() else None
    if existing and supported(existing) and (python is None or python == "{}.{}".format(*existing)):
        return
    here = "{}.{}".format(*sys.version_info[:2])
    if (python is None and supported(sys.version_info[:2])) or python == here:
        python = sys.executable  # the Python running this fits: no download
    if uv is None:
        if python not in (None, sys.executable):
            raise SetupError(f"--python {python} demande uv, introuvable : installez-le (`pip install uv`).")
        if python is None:
            raise SetupError(unsupported_python_without_uv(pinned_python()))
        if venv.exists():
            shutil.rmtree(venv)
        _run([sys.executable, "-m", "venv", str(venv)], "La création de l'environnement (venv)")
        return
    env = dict(os.environ)
    if kit is not None and (kit / "python").is_dir():
        env["UV_PYTHON_INSTALL_MIRROR"] = (kit / "python").resolve().as_uri()
    elif kit is not None:
        env.setdefault("UV_PYTHON_DOWNLOADS", "never")  # a kit without Pythons: no download attempt, a clear error
    # Any Python of the supported range already on the machine; else uv downloads one (the newest of the range).
    wanted = python or ">={}.{},<{}.{}".format(*SUPPORTED[0], SUPPORTED[1][0], SUPPORTED[1][1] + 1)
    _run(uv + ["venv", "--clear", "--python", wanted, str(venv)],
         "La création de l'environnement (uv venv)", env)


def install_pins(venv: Path, requirements: Path, uv: list[str] | None, kit: Path | None) -> None:
    python = venv_python(venv)
    offline = ["--no-index", "--find-links", str(kit / "wheels")] if kit is not None else []
    if uv is not None:
        # --compile-bytecode, as pip does: else each import of TensorFlow compiles its sources again (~10 s instead of
        # ~2 s) until Python has written its caches, and never where PYTHONDONTWRITEBYTECODE is set.
        _run(uv + ["pip", "sync", "--compile-bytecode", "--python", str(python), str(requirements)] + offline
             + (["--offline"] if kit is not None else []), "L'installation des paquets (uv pip sync)")
    else:
        if subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True).returncode != 0:
            _run([str(python), "-m", "ensurepip"], "L'installation de pip dans l'environnement")
        _run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(requirements)] + offline,
             "L'installation des paquets (pip)")
    # `import aurore` from anywhere, as an editable install would, without building anything (offline too).
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "aurore-repo.pth").write_text(str(REPO) + "\n", encoding="utf-8")


def copy_kit_data(kit: Path, workdir: Path) -> None:
    """The kit's books and converted base model go where step 1's download cache and the model conversion look first,
    so the steps run offline with no setting to type."""
    books = kit / "livres"
    if books.is_dir():
        target = workdir / "data" / "books"
        target.mkdir(parents=True, exist_ok=True)
        for book in books.glob("pg*.txt"):
            if not (target / book.name).exists():
                shutil.copyfile(book, target / book.name)
    models = kit / "modeles"
    if models.is_dir():
        for folder in models.iterdir():
            target = workdir / "models" / "converted" / folder.name
            if folder.is_dir() and not target.exists():
                shutil.copytree(folder, target)


def setup(venv: Path = VENV, requirements: Path = REPO / "requirements.txt", kit: Path | None = None,
          python: str | None = None, doctor: bool = True) -> int:
    """Make `venv` with the pins of `requirements`; returns doctor's exit code (0: ready)."""
    problem = platform_problem()
    if problem:
        raise SetupError(problem)
    if kit is not None:
        python = python or check_kit(kit)  # the kit's wheels are for one Python version
    (venv / MARKER).unlink(missing_ok=True)  # not finished until written again
    uv = find_uv(kit)
    print(f"Installation de l'environnement de l'atelier dans {venv} ({'uv' if uv else 'venv + pip'}"
          f"{', depuis la clé ' + str(kit) if kit else ''}) :", flush=True)
    make_venv(venv, uv, python, kit)
    install_pins(venv, requirements, uv, kit)
    if kit is not None:
        copy_kit_data(kit, Path(os.environ.get("AURORE_WORKDIR") or REPO / "aurore"))
    version = _python_version(venv_python(venv))
    files = {path.name: requirements_digest(path) for path in {requirements, REPO / "requirements.txt"}}
    (venv / MARKER).write_text(json.dumps({"files": files, "python": "{}.{}".format(*version)}), encoding="utf-8")
    print(f"installé : {venv} (Python {version[0]}.{version[1]}, paquets de {requirements.name})\n")
    code = subprocess.run([str(venv_python(venv)), "-m", "aurore", "doctor"]).returncode if doctor else 0
    print("\nActivez l'environnement dans chaque nouveau terminal :")
    for system, command in ACTIVATE_COMMANDS.items():
        print(f"  {system:22} {command}")
    return code


def check_kit(kit: Path) -> str:
    """The Python version of the kit's wheels, when it holds them for this laptop; else say what it holds."""
    try:
        manifest = json.loads((kit / "kit.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise SetupError(f"{kit} n'est pas une clé de l'atelier (pas de fichier kit.json dedans) : donnez le dossier de "
                         "la clé USB des organisateurs, celui qui contient kit.json et LISEZMOI.txt.") from None
    key = current_platform()
    if key not in manifest["platforms"]:
        raise SetupError(f"la clé {kit} est faite pour {', '.join(manifest['platforms'])}, pas pour ce système "
                         f"({key}) : demandez aux organisateurs une clé pour {key}, ou installez avec le réseau.")
    wanted = manifest["python"]
    if "{}.{}".format(*sys.version_info[:2]) != wanted and not (kit / "python").is_dir() and find_uv(kit) is None:
        raise SetupError(f"la clé {kit} contient les paquets de Python {wanted} ; ce Python est "
                         "{}.{}, et uv, qui trouverait le bon, manque.".format(*sys.version_info[:2]))
    return wanted


def ensure_venv(requirements: Path) -> Path:
    """The venv's Python, set up first when it is missing, unfinished or older than `requirements` (demo, test)."""
    if not installed(VENV, requirements):
        setup(requirements=requirements, doctor=False)
    return venv_python(VENV)


def workshop_python() -> Path | None:
    """The venv's Python when this Python cannot run the workshop but `.venv` can (not activated)."""
    import importlib.util

    ready = venv_python(VENV).exists() and Path(sys.prefix).resolve() != VENV.resolve()
    return venv_python(VENV) if ready and importlib.util.find_spec("tensorflow") is None else None


def _demo(args: argparse.Namespace) -> int:
    python = str(ensure_venv(REPO / "requirements.txt"))
    for step in ("1_prepare_dataset", "2_tokenize", "3_train", "4_generate", "6_mini_gpt"):
        print(f"== {step}", flush=True)
        if subprocess.run([python, f"aurore/{step}_solution.py"], cwd=REPO).returncode != 0:
            return 1
    return subprocess.run([python, "aurore/5_flask_solution.py"], cwd=REPO).returncode


def _test(args: argparse.Namespace) -> int:
    python = str(ensure_venv(REPO / "requirements-dev.txt"))
    if subprocess.run([python, "-m", "ruff", "check"], cwd=REPO).returncode != 0:
        return 1
    return subprocess.run([python, "-m", "pytest", "tests"] + args.pytest_args, cwd=REPO).returncode


def _setup(args: argparse.Namespace) -> int:
    requirements = REPO / ("requirements-dev.txt" if args.dev else "requirements.txt")
    kit = Path(args.kit).expanduser().resolve() if args.kit else None
    return setup(Path(args.venv).resolve(), requirements, kit, args.python, doctor=not args.no_doctor)


def main(argv: list[str]) -> int:
    """`setup`, `demo` and `test`: the commands any Python can run before `.venv` exists."""
    from aurore.config import FrenchArgumentParser  # standard library only, like this module

    parser = FrenchArgumentParser(prog="python -m aurore", description="Installer l'environnement de l'atelier.")
    commands = parser.add_subparsers(dest="command", required=True)
    setup_parser = commands.add_parser("setup", help="installe l'environnement de l'atelier (.venv), puis doctor")
    setup_parser.add_argument("--kit", help="dossier de la clé USB des organisateurs : installe sans réseau")
    setup_parser.add_argument("--python", help=f"version de Python voulue ({SUPPORTED_TEXT} ; par défaut : ce Python "
                                               "s'il convient, sinon un autre de la machine, sinon uv en télécharge un)")
    setup_parser.add_argument("--venv", default=str(VENV), help="dossier de l'environnement (par défaut : .venv)")
    setup_parser.add_argument("--dev", action="store_true", help="ajoute les outils de test (requirements-dev.txt)")
    setup_parser.add_argument("--no-doctor", action="store_true", help="ne lance pas doctor à la fin")
    commands.add_parser("demo", help="lance la solution de chaque étape, puis sert la page")
    commands.add_parser("test", help="lance ruff puis les tests (installe les outils de test) ; les options qui "
                                     "suivent vont à pytest")
    args, args.pytest_args = parser.parse_known_args(argv)
    if args.pytest_args and args.command != "test":
        parser.error("options inconnues : " + " ".join(args.pytest_args))
    try:
        return {"setup": _setup, "demo": _demo, "test": _test}[args.command](args)
    except SetupError as error:
        print(f"\nerreur : {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nInterrompu (Ctrl-C) : relancez `{SETUP_COMMAND}` pour finir l'installation.", file=sys.stderr)
        return 130


BOOTSTRAP_COMMANDS = ("setup", "demo", "test")

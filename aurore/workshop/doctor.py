"""`python -m aurore doctor`: is this laptop ready for every step? One line per check, with its fix (in French).

Each check says ✔ or ✘ (or ! for a warning that stops no step), and how to fix a ✘. The exit code is 1 when anything
would stop a step; `--json` prints the same for an organiser's script. The needs come from the measurements in
docs/organisers.md (disk per participant, memory of step 3 and the web server).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from aurore import bootstrap, platforms
from aurore.config import Config
from aurore.errors import STANDIN_COMMAND, set_variable

GB = 1024 ** 3
DISK_PLANNED_GB = 5  # docs/organisers.md: plan 4-5 GB of free disk per participant
DISK_MINIMUM_GB = 2  # below this a step-3 run (checkpoints ~0.6 GB each, the final model ~0.5 GB) fails
MEMORY_PLANNED_GB = 7.5  # an 8 GB laptop (the organisers' minimum) reports a little less
MEMORY_MINIMUM_GB = 4  # step 3 peaks at ~3 GB with the 124M model
SETUP = bootstrap.SETUP_COMMAND


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    blocking: bool = True  # a failed blocking check stops a step; otherwise it is a warning

    @property
    def symbol(self) -> str:
        return "✔" if self.ok else ("✘" if self.blocking else "!")


def check_python() -> Check:
    version = "{}.{}.{}".format(*sys.version_info[:3])
    where = f"Python {version} ({sys.platform}, {platform.machine()})"
    problem = platforms.platform_problem()
    if problem:
        return Check("Python", False, where, problem)
    if not platforms.supported(sys.version_info[:2]):
        return Check("Python", False, f"{where} : il faut Python {platforms.SUPPORTED_TEXT}",
                     f"`{SETUP}` (uv installe le bon Python dans .venv), puis activez .venv")
    return Check("Python", True, where)


def pinned_versions(requirements: Path) -> dict[str, str]:
    pins = {}
    for line in requirements.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)\s*$", line)
        if match:
            pins[match.group(1)] = match.group(2)
    return pins


def check_packages(requirements: Path = bootstrap.REPO / "requirements.txt") -> Check:
    pins = pinned_versions(requirements)
    wrong = []
    for name, wanted in pins.items():
        try:
            found = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found = "absent"
        if found != wanted:
            wrong.append(f"{name} {found} (attendu {wanted})")
    fix = f"`{SETUP}` : elle installe les versions exactes (relancez-la si elle a été interrompue)"
    if wrong:
        return Check("Paquets", False, f"{len(wrong)} sur {len(pins)} ne sont pas à la bonne version : "
                     + ", ".join(wrong[:4]) + (" …" if len(wrong) > 4 else ""), fix)
    missing = _not_importable()
    if missing:
        return Check("Paquets", False, "importation impossible : " + missing, fix)
    return Check("Paquets", True, f"les {len(pins)} paquets épinglés, aux bonnes versions ; aurore importable")


def _not_importable() -> str:
    """`aurore` itself when it cannot be imported from outside the repository (the steps and the grader need it).
    The other packages' versions are checked above, TensorFlow's import below: importing every package would take
    longer than the rest of doctor."""
    outside = subprocess.run([sys.executable, "-c", "import aurore"], cwd=tempfile.gettempdir(), capture_output=True)
    return "" if outside.returncode == 0 else "aurore (le paquet de l'atelier n'est pas installé dans cet environnement)"


def check_tensorflow() -> Check:
    start = time.perf_counter()
    try:
        import tensorflow as tf

        product = tf.linalg.matmul(tf.ones((64, 64)), tf.ones((64, 64)))
        assert float(product[0, 0]) == 64.0
    except Exception as error:
        return Check("TensorFlow", False, f"{type(error).__name__}: {str(error)[:200]}",
                     f"`{SETUP}` ; si l'erreur revient, utilisez l'image Docker (docs/atelier.md)")
    seconds = time.perf_counter() - start
    seconds = f"{seconds:.1f}".replace(".", ",")
    return Check("TensorFlow", True, f"{tf.__version__}, un produit de matrices calculé ({seconds} s avec l'importation)")


def check_disk(workdir: Path) -> Check:
    existing = next(p for p in [workdir, *workdir.parents] if p.exists())
    free = shutil.disk_usage(existing).free / GB
    detail = f"{free:.1f} Go libres dans {existing}".replace(".", ",", 1)
    fix = "libérez de la place (ou supprimez d'anciens models/checkpoints/run-…), ou choisissez un autre AURORE_WORKDIR"
    if free < DISK_MINIMUM_GB:
        return Check("Disque", False, f"{detail} : il en faut au moins {DISK_MINIMUM_GB}", fix)
    if free < DISK_PLANNED_GB:
        return Check("Disque", False, f"{detail} : prévoyez {DISK_PLANNED_GB} Go pour tout l'atelier", fix, False)
    return Check("Disque", True, detail)


def total_memory() -> int | None:
    """Bytes of memory of this machine (Linux, macOS, Windows), or None when it cannot be read."""
    if sys.platform == "win32":
        import ctypes

        class Status(ctypes.Structure):
            _fields_ = [("length", ctypes.c_ulong), ("load", ctypes.c_ulong), ("total", ctypes.c_ulonglong),
                        ("rest", ctypes.c_ulonglong * 6)]

        status = Status(length=ctypes.sizeof(Status))
        return status.total if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)) else None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory() -> Check:
    total = total_memory()
    if total is None:
        return Check("Mémoire", False, "impossible de lire la mémoire de cette machine", "", False)
    detail = f"{total / GB:.1f} Go".replace(".", ",")
    fix = ("fermez les autres programmes ; à l'étape 5, lancez le serveur avec --no-base (0,8 Go de moins) ; "
           "ou travaillez à deux sur une machine plus grande")
    if total < MEMORY_MINIMUM_GB * GB:
        return Check("Mémoire", False, f"{detail} : l'étape 3 en demande environ 3", fix)
    if total < MEMORY_PLANNED_GB * GB:
        return Check("Mémoire", False, f"{detail} : 8 Go conseillés", fix, False)
    return Check("Mémoire", True, detail)


def _reachable(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def check_books(config: Config) -> Check:
    from aurore.text.gutenberg import book_url

    ids = [*config.train_books, *config.test_books]
    cached = [i for i in ids if (config.books_dir / f"pg{i}.txt").is_file()]
    if len(cached) == len(ids):
        return Check("Livres", True, f"les {len(ids)} livres sont déjà dans {config.books_dir}")
    mirror = config.gutenberg_mirror
    fix = ("demandez aux organisateurs le dossier des livres (la clé USB), puis "
           f"`{set_variable('AURORE_GUTENBERG_MIRROR', '<ce dossier>')}` (ou `{SETUP} --kit <clé>`)")
    if mirror and urllib.parse.urlparse(mirror).scheme in ("http", "https"):
        host = urllib.parse.urlparse(mirror)
        if _reachable(host.hostname, host.port or (443 if host.scheme == "https" else 80)):
            return Check("Livres", True, f"miroir {mirror} joignable")
        return Check("Livres", False, f"le miroir {mirror} ne répond pas", fix)
    if mirror:
        missing = [i for i in ids if i not in cached
                   and not Path(urllib.parse.unquote(urllib.parse.urlparse(book_url(i, mirror)).path)).is_file()]
        if missing:
            return Check("Livres", False, f"le miroir {mirror} n'a pas " + ", ".join(f"pg{i}.txt" for i in missing), fix)
        return Check("Livres", True, f"les {len(ids)} livres sont dans le miroir {mirror}")
    if _reachable("www.gutenberg.org", 443):
        return Check("Livres", True, "gutenberg.org joignable (l'étape 1 les téléchargera)")
    return Check("Livres", False, "pas de réseau vers gutenberg.org, pas de miroir, livres pas encore en cache", fix)


def check_model(config: Config) -> Check:
    name = config.base_model
    standin = (f"ou le modèle de secours, hors ligne : `{STANDIN_COMMAND}` puis "
               f"{set_variable('AURORE_BASE_MODEL', config.standin_dir)}")
    from aurore.hub import converted_dir, hub_reachable, is_local, looks_like_a_path

    if is_local(name) or looks_like_a_path(name):
        folder = Path(name).expanduser()
        if (folder / "config.json").is_file():
            kind = "le modèle de secours (il écrit n'importe quoi)" if folder.resolve() == config.standin_dir.resolve() \
                else "un dossier local"
            return Check("Modèle de base", True, f"{kind} : {folder}")
        return Check("Modèle de base", False, f"AURORE_BASE_MODEL={name} : pas de modèle dans ce dossier "
                     "(config.json absent)", f"donnez un dossier écrit par save_pretrained, {standin}")
    if (converted_dir(name, config) / "tf_model.h5").is_file():
        return Check("Modèle de base", True, f"{name}, déjà converti pour TensorFlow : {converted_dir(name, config)}")
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(name, "model.safetensors"), str):
        return Check("Modèle de base", True, f"{name}, dans le cache du hub (converti à son premier chargement)")
    with contextlib.redirect_stdout(io.StringIO()):  # its note would break --json; the detail below says it
        reachable = hub_reachable()
    if reachable:
        return Check("Modèle de base", True, f"{name}, hub joignable (665 Mo à télécharger à l'étape 2 ou 3)")
    return Check("Modèle de base", False, f"{name} : ni en cache, ni converti, et le hub est injoignable",
                 f"avec le réseau : `python -m aurore download-model` ; {standin}")


def check_port(port: int) -> Check:
    if not 1024 <= port <= 65535:
        return Check("Port", False, f"{port} : la page a besoin d'un port entre 1024 et 65535",
                     "--port 8080 (la valeur par défaut), ou un autre au-dessus de 1024")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return Check("Port", False, f"le port {port} de 127.0.0.1 est déjà pris (un serveur de l'étape 5 ?)",
                         f"ouvrez http://127.0.0.1:{port}/ : c'est peut-être votre serveur ; sinon arrêtez-le "
                         f"(Ctrl-C dans son terminal, ou `docker ps` puis `docker stop`), ou --port {port + 1}")
    return Check("Port", True, f"{port} libre pour la page de l'étape 5")


def check_workdir(workdir: Path) -> Check:
    fix = (f"donnez-vous le dossier (Linux, macOS : `sudo chown -R $USER {workdir}`), ou choisissez un dossier à vous : "
           "AURORE_WORKDIR=<dossier>")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=workdir, prefix=".doctor-"):
            pass
    except OSError as error:
        return Check("Dossier de travail", False, f"impossible d'écrire dans {workdir} ({error.strerror})", fix)
    return Check("Dossier de travail", True, f"{workdir} (data/ et models/ y sont écrits)")


def run_checks(config: Config, port: int = 8080) -> list[Check]:
    checks: list[tuple[str, Callable[[], Check]]] = [
        ("Python", check_python), ("Paquets", check_packages), ("TensorFlow", check_tensorflow),
        ("Dossier de travail", lambda: check_workdir(config.workdir)), ("Disque", lambda: check_disk(config.workdir)),
        ("Mémoire", check_memory), ("Livres", lambda: check_books(config)), ("Modèle de base", lambda: check_model(config)),
        ("Port", lambda: check_port(port))]
    results = []
    for name, check in checks:
        try:
            results.append(check())
        except Exception as error:  # a check that crashes is a failed check, never a traceback
            results.append(Check(name, False, f"{type(error).__name__}: {error}", f"relancez `{SETUP}`"))
    return results


def report(checks: list[Check], as_json: bool = False) -> int:
    failed = [check for check in checks if not check.ok and check.blocking]
    if as_json:
        print(json.dumps({"ok": not failed, "checks": [asdict(c) for c in checks]}, ensure_ascii=False, indent=2))
        return 1 if failed else 0
    for check in checks:
        print(f"{check.symbol} {check.name} : {check.detail}")
        if check.fix and not check.ok:
            print(f"    -> {check.fix}")
    print("\nPrêt pour l'atelier." if not failed else
          f"\n{len(failed)} problème(s) à régler avant les étapes (les lignes ✘ ci-dessus), puis relancez "
          "`python -m aurore doctor`.")
    return 1 if failed else 0

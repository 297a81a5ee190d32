"""Which laptops the pins install on (docs/organisers.md keeps the table): standard library only, like `bootstrap`,
so any Python can tell a participant at once that theirs does not fit, and what to do instead."""

from __future__ import annotations

import platform
import sys

SUPPORTED = ((3, 11), (3, 13))  # TensorFlow 2.21 wheels: cp311-cp313 (docs/organisers.md, platform table)
SUPPORTED_TEXT = "3.11 à 3.13"
DOCKER_HINT = "utilisez l'image Docker de l'atelier (docs/atelier.md, « Avec Docker »)"

# The laptops the pins have wheels for: pip's platform tags (every tag spelled out: pip does not widen one) and the
# word that picks uv's wheel for that platform.
PLATFORMS = {
    "linux-x86_64": ([f"manylinux_2_{minor}_x86_64" for minor in range(17, 40)] + ["manylinux2014_x86_64"],
                     "manylinux_2_17_x86_64"),
    "linux-aarch64": ([f"manylinux_2_{minor}_aarch64" for minor in range(17, 40)] + ["manylinux2014_aarch64"],
                      "manylinux_2_17_aarch64"),
    "macos-arm64": ([f"macosx_{major}_0_arm64" for major in range(11, 16)]
                    + [f"macosx_{major}_0_universal2" for major in range(10, 16)], "macosx_11_0_arm64"),
    "windows-x86_64": (["win_amd64"], "win_amd64"),
}


def current_platform() -> str | None:
    """This laptop's key in PLATFORMS, or None where TensorFlow 2.21 has no wheel (Intel Mac, Windows on ARM)."""
    machine = platform.machine().lower()
    if sys.platform.startswith("linux"):
        return {"x86_64": "linux-x86_64", "amd64": "linux-x86_64", "aarch64": "linux-aarch64",
                "arm64": "linux-aarch64"}.get(machine)
    if sys.platform == "darwin":
        return "macos-arm64" if machine == "arm64" else None
    if sys.platform == "win32":
        return "windows-x86_64" if machine in ("amd64", "x86_64") else None
    return None


def platform_problem() -> str | None:
    """Why the pins cannot install on this machine at all, in French, or None."""
    if current_platform() is not None:
        return None
    if sys.platform == "darwin" and _under_rosetta():
        return ("ce Python est une version Intel (x86_64) qui tourne sous Rosetta sur un Mac Apple silicon : "
                "TensorFlow n'existe pas pour elle. Installez uv (curl -LsSf https://astral.sh/uv/install.sh | sh), "
                "puis, dans un nouveau terminal : uv run --no-project --python cpython-3.12-macos-aarch64 python -m "
                "aurore setup")
    if sys.platform == "darwin":
        return ("ce Mac a un processeur Intel (x86_64) : TensorFlow n'existe plus pour ces Mac depuis la version 2.16. "
                + DOCKER_HINT[0].upper() + DOCKER_HINT[1:] + ".")
    return (f"TensorFlow 2.21 n'existe pas pour ce système ({sys.platform}, {platform.machine()}) : "
            + DOCKER_HINT + ".")


def _under_rosetta() -> bool:
    """An x86_64 Python translated by Rosetta on an Apple silicon Mac (macOS says so through sysctl)."""
    import subprocess

    try:
        return subprocess.run(["sysctl", "-in", "sysctl.proc_translated"], capture_output=True, text=True,
                              timeout=5).stdout.strip() == "1"
    except (OSError, subprocess.SubprocessError):
        return False


def supported(version: tuple[int, int]) -> bool:
    return SUPPORTED[0] <= tuple(version[:2]) <= SUPPORTED[1]


def unsupported_python_without_uv(pinned: str) -> str:
    """What to do when this Python does not fit and no uv can fetch one (French)."""
    here = ".".join(map(str, sys.version_info[:2]))
    return (f"ce Python ({here}) ne convient pas (il faut Python {SUPPORTED_TEXT} : TensorFlow 2.21 n'existe que pour "
            "eux), et uv, qui en installerait un, est introuvable.\n  -> Installez uv, puis relancez la commande dans un "
            "NOUVEAU terminal :\n"
            "     Windows (PowerShell) : winget install --id=astral-sh.uv -e   (ou : py -m pip install uv)\n"
            "     macOS, Linux :         curl -LsSf https://astral.sh/uv/install.sh | sh   (ou : brew install uv)\n"
            f"  -> ou installez Python {pinned} vous-même, ou " + DOCKER_HINT + ".")

"""XLA's compiled programs kept on disk between starts (standard library only: set before TensorFlow compiles).

The web app compiles its decoding programs with XLA: seconds each on a laptop, the same at every start with the
same shapes. TensorFlow's persistent compilation cache (`--tf_xla_persistent_cache_directory`) writes each program
once and reads it back at the next start. (Step 3 does not use it: its first step is mostly tracing, not compiling,
and a run's programs were not always found again by the next one: docs/benchmarks.md.)
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
from pathlib import Path


def keep_compilations(folder: Path) -> Path:
    """Keep XLA's compiled programs in a subfolder of `folder` for this kind of machine; returns that subfolder.

    The cache is keyed by the program; a program compiled for one CPU may crash on another (its instructions), so
    each kind of CPU and TensorFlow version gets its own folder. Call before the first compilation of the process
    (the flag is read then).
    """
    try:
        cpu = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    try:
        version = importlib.metadata.version("tensorflow")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    kind = hashlib.sha256(f"{platform.machine()} {cpu} {version}".encode()).hexdigest()[:12]
    folder = Path(folder) / kind
    folder.mkdir(parents=True, exist_ok=True)
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if "persistent_cache_directory" not in flags:
        os.environ["TF_XLA_FLAGS"] = f"{flags} --tf_xla_persistent_cache_directory={folder}".strip()
    return folder

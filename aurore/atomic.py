"""Folders written whole or not at all: build in a staging folder beside the target, then rename it.

`tempfile.mkdtemp` creates private folders (0700) whatever the umask; `publish` gives the staged files the modes
the umask allows (readable by the group: a Docker volume, a shared workdir), then renames the folder into place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def staging_dir(parent: Path, prefix: str) -> Path:
    """A new hidden folder in `parent` (created if needed), on the same disk as the target, so the rename is atomic."""
    Path(parent).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=parent, prefix=prefix))


def publish(staging: Path, target: Path, keep_previous: bool = False) -> Path | None:
    """Rename `staging` to `target`, replacing it (kept as `<target>.previous` when asked); return the previous one."""
    umask = os.umask(0)
    os.umask(umask)
    for folder, _dirs, files in os.walk(staging):
        os.chmod(folder, 0o777 & ~umask)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o666 & ~umask)
    previous = target.with_name(target.name + ".previous")
    if target.exists():
        if keep_previous:
            shutil.rmtree(previous, ignore_errors=True)
            os.replace(target, previous)
        else:
            shutil.rmtree(target)
    os.replace(staging, target)
    return previous if keep_previous and previous.exists() else None

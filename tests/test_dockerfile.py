"""The Docker side, without a Docker engine: lint the Dockerfile, run the image's entrypoint script directly, and
replay the image's layout. (`.ci/docker-smoke.sh` builds the image and runs it for real in CI.)"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import REPO

HADOLINT = shutil.which("hadolint", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]))
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
AS_ROOT = os.name == "posix" and os.geteuid() == 0
OTHER_UID = 1234  # a UID that owns nothing on the machine
# What the entrypoint hands to the command: who it runs as, and the settings it made.
REPORT = 'echo "$(id -u):$(id -g) HOME=$HOME HF_HOME=$HF_HOME umask=$(umask)"'

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("setpriv") is None,
                                reason="the entrypoint runs in the Linux image (GNU stat, util-linux setpriv)")


@pytest.mark.skipif(HADOLINT is None, reason="hadolint (requirements-dev.txt) is not installed")
def test_hadolint_finds_nothing():
    result = subprocess.run([HADOLINT, str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def entrypoint(workdir: Path, *command: str, **env: str) -> subprocess.CompletedProcess:
    """Run the entrypoint the way the image does (`/bin/sh entrypoint CMD...`), with `workdir` as the mounted folder."""
    environ = {key: value for key, value in os.environ.items() if key != "HF_HOME"}
    environ.update(AURORE_WORKDIR=str(workdir), **env)
    return subprocess.run(["/bin/sh", str(ENTRYPOINT), *command], env=environ, capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def shared_tmp():
    """A temporary folder every UID can enter and write (as /tmp), unlike pytest's tmp_path (mode 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="aurore-entrypoint-"))
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(folder)


@linux_only
def test_the_command_runs_with_the_settings_of_the_image(tmp_path):
    """A folder of the current user: the command runs as that user, with HF_HOME inside the folder and umask 022."""
    workdir = tmp_path / "aurore"
    workdir.mkdir()
    result = entrypoint(workdir, "sh", "-c", REPORT, HOME=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [f"{os.getuid()}:{os.getgid()}", f"HOME={tmp_path}",
                                     f"HF_HOME={workdir}/models/hf-cache", "umask=0022"]


@linux_only
def test_the_command_replaces_the_entrypoint(tmp_path):
    """exec, no child process: tini's SIGTERM (`docker stop`) reaches the command itself."""
    process = subprocess.Popen(["/bin/sh", str(ENTRYPOINT), "sh", "-c", "echo $$"], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "AURORE_WORKDIR": str(tmp_path)})
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert int(output) == process.pid


@linux_only
def test_a_missing_home_is_replaced_and_a_chosen_hf_home_is_kept(tmp_path):
    """`docker run --user N`: N has no home in the image; HOME becomes a private folder that N can write."""
    result = entrypoint(tmp_path, "sh", "-c", REPORT, HOME="/nonexistent", TMPDIR=str(tmp_path),
                        HF_HOME=str(tmp_path / "hub"))
    assert result.returncode == 0, result.stderr
    home = tmp_path / f"aurore-home-{os.getuid()}"
    assert f"HOME={home}" in result.stdout.split() and home.is_dir()
    assert f"HF_HOME={tmp_path / 'hub'}" in result.stdout.split()


@linux_only
@pytest.mark.skipif(not AS_ROOT, reason="handing the folder to another UID needs root (as in the container)")
def test_started_as_root_the_command_runs_as_the_owner_of_the_folder(shared_tmp):
    """The image starts as root and becomes the owner of the mounted folder, so that files are the host user's."""
    workdir = shared_tmp / "aurore"
    workdir.mkdir()
    os.chown(workdir, OTHER_UID, OTHER_UID)
    result = entrypoint(workdir, "sh", "-c", f"touch \"$AURORE_WORKDIR/written\" && {REPORT}",
                        HOME="/root", TMPDIR=str(shared_tmp))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [f"{OTHER_UID}:{OTHER_UID}", f"HOME={shared_tmp}/aurore-home-{OTHER_UID}",
                                     f"HF_HOME={workdir}/models/hf-cache", "umask=0022"]
    written = (workdir / "written").stat()
    assert (written.st_uid, written.st_gid) == (OTHER_UID, OTHER_UID)
    assert written.st_mode & 0o777 == 0o644


@linux_only
@pytest.mark.skipif(not AS_ROOT, reason="a root-owned folder can only be made by root")
def test_a_root_owned_folder_is_used_as_root(tmp_path):
    result = entrypoint(tmp_path, "sh", "-c", REPORT, HOME="/root")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["0:0", "HOME=/root"]


@linux_only
def test_an_unwritable_folder_is_a_clear_message(shared_tmp):
    workdir = shared_tmp / "aurore"
    workdir.mkdir()
    if AS_ROOT:  # root writes anywhere: the folder goes to another UID, which the entrypoint then runs as
        os.chown(workdir, OTHER_UID, OTHER_UID)
    workdir.chmod(0o555)
    result = entrypoint(workdir, "sh", "-c", "echo the command ran")
    assert result.returncode == 1
    assert "the command ran" not in result.stdout
    assert f"erreur : impossible d'écrire dans le dossier {workdir} " in result.stderr
    assert "--user $(id -u):$(id -g)" in result.stderr and "chmod -R u+rwX aurore" in result.stderr


@linux_only
def test_an_unwritable_models_folder_is_a_clear_message(shared_tmp):
    """A models/ left by another UID (say, an older image that ran as root) is named in the message."""
    workdir = shared_tmp / "aurore"
    (workdir / "models").mkdir(parents=True)
    if AS_ROOT:
        os.chown(workdir, OTHER_UID, OTHER_UID)
    else:
        (workdir / "models").chmod(0o555)
    result = entrypoint(workdir, "true")
    assert result.returncode == 1
    assert f"impossible d'écrire dans le dossier {workdir / 'models'} " in result.stderr


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

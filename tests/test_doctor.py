"""`python -m aurore doctor`: passes in a prepared workdir, and names the check that fails (exit 1) otherwise."""

import json
import shutil
import socket
from collections import namedtuple

from aurore import bootstrap
from aurore.__main__ import main
from aurore.config import Config
from aurore.workshop.doctor import check_packages, run_checks
from conftest import run_script


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def doctor(config: Config, *extra: str) -> list[str]:
    return ["doctor", "--workdir", str(config.workdir), "--base-model", config.base_model, *extra]


def failed(checks) -> dict[str, str]:
    return {check.name: check.detail + " -> " + check.fix for check in checks if not check.ok and check.blocking}


def test_a_prepared_workdir_passes(standin, capsys):
    """Books in step 1's cache, the stand-in as base model, a free port: every check ✔, exit 0."""
    assert main(doctor(standin, "--port", str(free_port()))) == 0
    out = capsys.readouterr().out
    assert "✘" not in out and "Prêt pour l'atelier." in out
    assert "le modèle de secours" in out  # it says which model it found


def test_a_missing_model_fails_with_the_command_to_run(standin, tmp_path, capsys):
    config = Config(workdir=standin.workdir, base_model=str(tmp_path / "no-model"))
    assert main(doctor(config, "--port", str(free_port()))) == 1
    out = capsys.readouterr().out
    assert "✘ Modèle de base" in out and "python -m aurore build-standin" in out


def test_an_unwritable_workdir_fails(standin, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    config = Config(workdir=blocker / "work", base_model=standin.base_model, gutenberg_mirror=standin.gutenberg_mirror)
    assert set(failed(run_checks(config, port=free_port()))) == {"Dossier de travail"}


def test_a_busy_port_fails_and_says_what_to_do(standin, capsys):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert main(doctor(standin, "--port", str(port))) == 1
    out = capsys.readouterr().out
    assert f"✘ Port : le port {port} de 127.0.0.1 est déjà pris" in out and f"--port {port + 1}" in out


def test_a_port_the_page_cannot_use_is_refused_with_the_range(standin, capsys):
    for port in ("80", "70000"):
        assert main(doctor(standin, "--port", port)) == 1
        assert f"✘ Port : {port} : la page a besoin d'un port entre 1024 et 65535" in capsys.readouterr().out


def test_too_little_disk_fails_and_a_little_is_a_warning(standin, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 * 2**30, 9 * 2**30, 1 * 2**30))
    assert set(failed(run_checks(standin, port=free_port()))) == {"Disque"}
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 * 2**30, 6 * 2**30, 3 * 2**30))
    checks = run_checks(standin, port=free_port())
    assert failed(checks) == {}
    assert [c.symbol for c in checks if c.name == "Disque"] == ["!"]


def test_a_half_installed_environment_is_never_called_fine(tmp_path):
    """A pin missing or at another version (an install cut halfway) fails the package check, naming it."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy==0.0.1\nflask==3.1.3\nno-such-package-aurore==1.0\n")
    check = check_packages(requirements)
    assert not check.ok and check.blocking
    assert "numpy" in check.detail and "no-such-package-aurore absent" in check.detail
    assert bootstrap.SETUP_COMMAND in check.fix


def test_json_for_an_organisers_script(standin, tmp_path):
    """The real command line, in a process of its own: JSON on stdout alone, and exit 1 on a failing check."""
    result = run_script(["-m", "aurore", "doctor", "--json", "--port", str(free_port())],
                        {"AURORE_WORKDIR": str(standin.workdir), "AURORE_BASE_MODEL": str(tmp_path / "nothing")})
    assert result.returncode == 1, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert [c["name"] for c in report["checks"] if not c["ok"]] == ["Modèle de base"]


def test_too_little_memory_fails_and_a_small_laptop_is_warned(standin, monkeypatch):
    from aurore.workshop import doctor as module

    monkeypatch.setattr(module, "total_memory", lambda: 3 * 2**30)
    assert set(failed(run_checks(standin, port=free_port()))) == {"Mémoire"}
    monkeypatch.setattr(module, "total_memory", lambda: 6 * 2**30)
    checks = run_checks(standin, port=free_port())
    assert failed(checks) == {} and [c.symbol for c in checks if c.name == "Mémoire"] == ["!"]

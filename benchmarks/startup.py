"""Server start-up: how long until step 5's page answers, the first time and the next times.

    python benchmarks/startup.py [--workdir /tmp/aurore-startup] [--shape gpt2-124m|standin]

Builds (once) a random-weight base model of GPT-2 small's shape in a workdir of its own (needs the Gutenberg books:
AURORE_GUTENBERG_MIRROR), then starts `aurore/5_flask_solution.py` three times and prints, for each start, the
seconds until the page opens (/healthz answers: models loaded, the decoder still compiling in the background) and
until a first request sent at that moment is answered (32 new tokens: it waits for the compiled decoder), and the
server's own line about its compiled programs:
1. first start with an empty XLA cache (what every start cost before the cache);
2. second start: the compiled programs are read from models/xla-cache;
3. third start, cache kept: the same again (a second sample);
then the seconds from saving an edit of the step-5 script (a new route) to that route's first answer, the server
running (no restart: aurore/web/reload.py); then, with a fine-tuned model (a copy of the base), the start and memory
with the base model served beside it (for the compare page: twice, the first start compiling that pair's programs)
and without it (`--no-base`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import aurore  # noqa: E402,F401  quiet TensorFlow (the probe imports it)
SHAPES = {"gpt2-124m": {"n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257},
          "standin": {}}


def run(args: list[str], env: dict) -> None:
    subprocess.run([sys.executable, *args], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resident_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024


def start_once(env: dict, *flags: str) -> tuple[float, float, str, float]:
    """Seconds from launching the server to its first /healthz answer (the page is open) and to the answer of a
    first request sent then (32 new tokens: it waits for the compiled decoder), the server's line about its
    compiled programs, and its resident memory (MB) once it answered."""
    port = free_port()
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "aurore/5_flask_solution.py", "--port", str(port), *flags], cwd=REPO,
                               env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", 0.1, process)
        ready = time.perf_counter() - start
        body = json.dumps({"prompt": "Il était une fois", "max_new_tokens": 32, "num_texts": 1}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/generate", body,
                                         {"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=600).read()
        answered = time.perf_counter() - start
        memory = resident_mb(process.pid)
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    shapes = [line.strip() for line in output.splitlines() if "programmes prêts" in line]
    return ready, answered, " / ".join(line.split(" (le code")[0] for line in shapes), memory


def wait_for(url: str, every: float, process: subprocess.Popen | None = None) -> None:
    """Poll `url` until it answers (a server starting, a route appearing); stop if the server died."""
    while True:
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except OSError:
            if process is not None and process.poll() is not None:
                raise SystemExit(process.stdout.read()[-3000:] if process.stdout else "the server stopped")
            time.sleep(every)


def report(label: str, env: dict, *flags: str) -> None:
    ready, answered, shapes, memory = start_once(env, *flags)
    print(f"{label:38} page open after {ready:5.1f} s, first answer after {answered:5.1f} s, {memory:,.0f} MB   "
          f"({shapes})", flush=True)


def edit_to_served(env: dict, edits: int = 3) -> list[float]:
    """Seconds from saving an edit of step 5's script (a new route) to the first answer of that route, the server
    running (aurore/web/reload.py): a copy of the solution, started as a participant starts theirs."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="aurore-edit-"))
    script = folder / "5_flask_solution.py"
    shutil.copy(REPO / "aurore" / "5_flask_solution.py", script)
    port = free_port()
    process = subprocess.Popen([sys.executable, str(script), "--port", str(port)], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = []
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", 0.1, process)
        for number in range(edits):
            route = f'\n    @app.get("/edit{number}")\n    def edit{number}():\n        return "ok"\n\n    return app\n'
            script.write_text(script.read_text().replace("\n    return app\n", route, 1))
            saved = time.perf_counter()
            wait_for(f"http://127.0.0.1:{port}/edit{number}", 0.02, process)
            seconds.append(time.perf_counter() - saved)
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/aurore-startup")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="gpt2-124m")
    args = parser.parse_args()
    workdir = Path(args.workdir) / args.shape
    env = {**os.environ, "AURORE_WORKDIR": str(workdir), "HF_HUB_OFFLINE": "1"}
    standin = workdir / "models" / "standin"
    if not standin.is_dir():  # once: step 1's dataset, then a base model of that shape (random weights)
        run(["aurore/1_prepare_dataset_solution.py"], env)
        run(["-c", "from aurore.config import from_namespace; from aurore.hub.standin import build_standin; "
                   f"build_standin(from_namespace(None), **{SHAPES[args.shape]!r})"], env)
    env["AURORE_BASE_MODEL"] = str(standin)
    from probe import machine_line

    print(machine_line())
    print(f"model: {args.shape}; server: compiled engine, warm-up shapes of aurore.web")
    finetuned = workdir / "models" / "gpt2-george-sand"
    shutil.rmtree(finetuned, ignore_errors=True)  # the first three starts serve the base model alone
    shutil.rmtree(workdir / "models" / "xla-cache", ignore_errors=True)
    for label in ("first start, empty XLA cache", "second start, cache kept", "third start, cache kept"):
        report(label, env)
    edits = edit_to_served(env)
    print(f"{'edit of the script -> new route served':38} " + ", ".join(f"{s:.2f} s" for s in edits)
          + " (no restart: models kept)", flush=True)
    # With a fine-tuned model (here: a copy of the converted base), the base model is served beside it.
    converted = next(path.parent for path in (workdir / "models").rglob("tf_model.h5") if standin not in path.parents)
    shutil.copytree(converted, finetuned)
    # A process that loads two models traces its programs under other names: its first start compiles them.
    for label, flags in (("fine-tuned + base beside, first time", ()), ("fine-tuned + base beside, cache kept", ()),
                         ("fine-tuned alone (--no-base)", ("--no-base",))):
        report(label, env, *flags)


if __name__ == "__main__":
    main()

"""The server's start: the decoder's blocks share one trace, the first programs, lowered on two threads, are read
back from XLA's cache by the next start, and Ctrl-C during the warm-up stops the server cleanly."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from aurore.config import Config
from aurore.engines import fastgen, generation
from aurore.workshop.fixtures import tiny_model, tiny_tokenizer
from conftest import REPO

PROMPTS = ["La rivière", "Germain laboura le champ avec", "Lélia", "Le chanvreur contait des histoires à la veillée"]


def test_three_blocks_are_traced_once_per_program_and_decode_as_the_model_does(tmp_path):
    tokenizer = tiny_tokenizer(tmp_path)
    tiny_model(len(tokenizer), n_layer=3).save_pretrained(str(tmp_path))
    generator = generation.load_generator(str(tmp_path), Config(workdir=tmp_path))
    compiled = fastgen.CompiledGenerator(generator.model, generator.tokenizer)
    net, traced = compiled.programs.net, []
    block = net._block
    net._block = lambda *args: traced.append(args[0].shape.as_list()) or block(*args)

    compiled.programs.trace("prefill", "place", "decode")
    assert len(traced) == 2  # the prefill's block and the decoding step's, each once for the three blocks

    greedy = generation.Sampling(max_new_tokens=12, do_sample=False)
    eos = tokenizer.eos_token_id
    for prompt in PROMPTS:  # each block with its own weights and cache: the tokens of transformers' own generate
        ids = tokenizer(prompt)["input_ids"]
        eager = list(generator(prompt, do_sample=False, max_new_tokens=12, return_tensors=True,
                               pad_token_id=eos)[0]["generated_token_ids"])[len(ids):]
        assert compiled.generate_ids([ids], greedy)[0] == (eager[: eager.index(eos)] if eos in eager else eager), prompt
    assert len(traced) == 2  # and nothing traced again


WARM_START = """
import sys
from pathlib import Path
from aurore.config import Config
from aurore.engines import fastgen, generation
from aurore.workshop.fixtures import tiny_model_folder

cache = fastgen.keep_compilations(Path(sys.argv[1]) / "xla-cache")
folder = tiny_model_folder(Path(sys.argv[1]) / "model")
generator = generation.load_generator(str(folder), Config(workdir=folder.parent))
compiled = fastgen.CompiledGenerator(generator.model, generator.tokenizer)
print("programs", compiled.warm_up((64,), batches=(1,), prompts=(16,), workers=2))
print("files", len(list(cache.iterdir())))
"""


def test_a_second_start_reads_the_programs_lowered_side_by_side_from_the_cache(tmp_path):
    """The server's first programs are lowered on two threads; their names (the cache's keys) must not depend on
    which thread got there first, or every start would compile again."""

    def start() -> dict:
        result = subprocess.run([sys.executable, "-c", WARM_START, str(tmp_path)],
                                env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        return dict(line.split(" ", 1) for line in result.stdout.splitlines() if line.startswith(("programs", "files")))

    first, second = start(), start()
    assert first["programs"] == second["programs"] == "3"  # prefill, placing, decoding step
    assert first["files"] == second["files"] == "3"  # written by the first start, all read back by the second


def test_ctrl_c_while_the_decoder_compiles_stops_the_server_at_once_and_says_so(tiny_model_dir, tmp_path):
    """Ctrl-C as soon as the page opens (the decoder still traced in the background) ends the server cleanly:
    Python's own exit would stop the warm-up thread inside TensorFlow (a C++ abort) or wait for its compilations."""
    shutil.copytree(tiny_model_dir, Config(workdir=tmp_path).finetuned_dir)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "aurore/5_flask_solution.py", "--port", str(port), "--no-base"],
                              cwd=REPO, env={**os.environ, "AURORE_WORKDIR": str(tmp_path)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except OSError:
                time.sleep(0.02)
        server.send_signal(signal.SIGINT)
        output = server.communicate(timeout=60)[0]
    finally:
        server.kill()
    assert server.returncode == 0, output[-2000:]
    assert output.rstrip().endswith("Serveur arrêté (Ctrl-C).") and "FATAL" not in output

"""Step 5's web app through Flask's test client, on a tiny real model."""

import threading
import time

import pytest

from aurore import web
from aurore.config import Config
from aurore.engines import generation
from aurore.web.serving import GenerationService
from conftest import run_script, script

step5 = script("5_flask_solution")


def app_for(service, info, **others):
    """Step 5's app (the solution's routes) over the given services."""
    served = {"gpt2": web.Served(service, info), **{k: web.Served(*v) for k, v in others.items()}}
    return step5.create_app(web.Models(served))


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return generation.PipelineEngine(generation.load_generator(str(tiny_model_dir), Config(workdir=tiny_model_dir.parent)))


@pytest.fixture
def service(engine):
    return GenerationService(engine, timeout=30)


@pytest.fixture
def client(service):
    return app_for(service, web.ModelInfo(name="models/gpt2-george-sand", finetuned=True)).test_client()


def test_home_form_and_health(client):
    home = client.get("/")
    assert home.status_code == 200 and '<html lang="fr">' in home.text and "George Sand" in home.text
    form = client.get("/generate")
    assert form.status_code == 200 and 'name="prompt"' in form.text and "GPT-2 affiné sur George Sand" in form.text
    health = client.get("/healthz").get_json()
    assert health == {"status": "ok", "model": "models/gpt2-george-sand", "finetuned": True, "engine": "eager",
                      "queued": 0, "models": ["gpt2"], "ready": True}
    assert 'name="model"' not in form.text  # one model: no choice to offer


def test_the_page_opens_before_the_model_is_compiled_and_requests_wait_for_it(engine):
    """Start-up: the server answers at once; requests queue until the warm-up says the engine is ready."""
    warmed = threading.Event()
    service = GenerationService(engine, timeout=2, ready=warmed)
    client = app_for(service, web.ModelInfo("m", True)).test_client()
    assert client.get("/healthz").get_json()["ready"] is False
    assert "finit de se préparer" in client.get("/generate").text
    job = service.submit("Le soir", generation.Sampling(max_new_tokens=3, seed=1))
    answer = {}
    waiting = threading.Thread(target=lambda: answer.update(texts=service.result(job)))
    waiting.start()
    time.sleep(2.5)  # longer than the time-out: it counts from the moment the engine is ready
    assert not job.done and service.batches == 0  # queued behind the warm-up
    warmed.set()
    waiting.join(10)
    assert answer["texts"] == engine.generate_rows(job.rows)
    assert client.get("/healthz").get_json()["ready"] is True
    assert "finit de se préparer" not in client.get("/generate").text


def test_the_page_says_when_the_model_is_not_fine_tuned(service):
    app = app_for(service, web.ModelInfo(name="benjamin/gpt2-wechsel-french", finetuned=False, standin=True))
    page = app.test_client().get("/generate").text
    assert "non affiné" in page and "modèle de secours : il écrit n&#39;importe quoi" in page


def test_post_generate_shows_prompt_texts_and_keeps_the_settings(client):
    response = client.post("/generate", data={"prompt": "La rivière", "max_new_tokens": "5", "temperature": "1.3",
                                              "top_k": "7", "top_p": "0.8", "num_texts": "3", "seed": "5"})
    assert response.status_code == 200
    assert response.text.count('<article class="text">La rivière') == 3
    for name, value in (("temperature", "1.3"), ("top_k", "7"), ("top_p", "0.8"), ("num_texts", "3")):
        assert f'name="{name}" type="number" value="{value}"' in response.text
    assert ">La rivière</textarea>" in response.text


def test_json_api_is_repeatable_with_a_seed(client):
    body = {"prompt": "Germain", "max_new_tokens": 6, "num_texts": 2, "seed": 3}
    first, second = client.post("/api/generate", json=body), client.post("/api/generate", json=body)
    assert first.status_code == 200 and first.get_json() == second.get_json()
    data = first.get_json()
    assert data["prompt"] == "Germain" and len(data["texts"]) == 2 and all(t.startswith("Germain") for t in data["texts"])


BAD = [
    ({"prompt": "   "}, "vide"),
    ({"prompt": "x" * 501}, "trop long"),
    ({"prompt": "Le soir", "max_new_tokens": "beaucoup"}, "doit être un nombre entier"),
    ({"prompt": "Le soir", "temperature": "chaud"}, "doit être un nombre"),
    ({"prompt": "Le soir", "max_new_tokens": 0}, "entre 1 et 200"),
    ({"prompt": "Le soir", "temperature": 5}, "entre 0,05 et 2 : reçu 5."),  # French decimals, the value as sent
    ({"prompt": "Le soir", "top_p": 0}, "entre 0,05 et 1 : reçu 0."),
    ({"prompt": "Le soir", "num_texts": 9}, "entre 1 et 4"),
    ({"prompt": "Le soir", "top_k": 2.5}, "doit être un nombre entier"),
    ({"prompt": "La rivière " * 40, "max_new_tokens": 100}, "dépassent la mémoire du modèle"),
]


def test_a_value_that_is_not_a_number_is_quoted_as_it_was_sent(client):
    """JSON's true is shown as true (not Python's True), a text between French quotes."""
    error = client.post("/api/generate", json={"prompt": "Le soir", "top_k": True}).get_json()["error"]
    assert error.endswith("reçu true."), error
    page = client.post("/generate", data={"prompt": "Le soir", "temperature": "chaud"})
    assert "reçu « chaud »." in page.text


@pytest.mark.parametrize("values,message", BAD)
def test_bad_input_is_a_clear_400_on_the_page_and_in_json(client, values, message):
    page = client.post("/generate", data={k: str(v) for k, v in values.items()})
    assert page.status_code == 400 and message in page.text and 'class="error"' in page.text
    api = client.post("/api/generate", json=values)
    assert api.status_code == 400 and message in api.get_json()["error"]


def test_api_needs_a_json_object_and_requests_are_size_limited(client):
    assert client.post("/api/generate", data="nope", content_type="application/json").status_code == 400
    assert client.post("/api/generate", json=["Le soir"]).status_code == 400
    huge = client.post("/api/generate", json={"prompt": "a" * 20_000})
    assert huge.status_code == 413 and "trop grande" in huge.get_json()["error"]


def test_prompt_and_output_are_escaped(client):
    response = client.post("/generate", data={"prompt": "<script>alert(1)</script>", "max_new_tokens": "3"})
    assert response.status_code == 200
    assert "<script>alert(1)" not in response.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


def test_concurrent_requests_are_all_answered_and_batched(client, service):
    results, barrier = [], threading.Barrier(8)

    def ask(i):
        barrier.wait()
        response = client.post("/api/generate", json={"prompt": f"Lettre {i}", "max_new_tokens": 4, "num_texts": 1})
        results.append((response.status_code, response.get_json()["texts"][0]))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(r[0] for r in results) == [200] * 8
    assert sorted(r[1].split()[1][:1] for r in results) == sorted(str(i) for i in range(8))  # each got its own prompt
    assert service.batches < 8  # simultaneous requests with the same settings shared generate calls


class RecordingEngine:
    """Answers each prompt with itself and records the batch sizes (the service's scheduling is under test).
    Its first call waits for `gate`, so that requests can pile up behind it."""

    def __init__(self):
        self.batch_sizes, self.gate = [], threading.Event()

    def generate_rows(self, rows, progress=None):
        self.batch_sizes.append(len(rows))
        self.gate.wait(10)
        return [row.prompt for row in rows]


def ask_in_threads(service, prompts_and_delays):
    """Each (prompt, delay) asked from its own thread; returns a function that waits and gives the answers."""
    answers = {}

    def ask(prompt, delay):
        time.sleep(delay)
        answers[prompt] = service.generate(prompt, generation.Sampling())

    threads = [threading.Thread(target=ask, args=pair) for pair in prompts_and_delays]
    for thread in threads:
        thread.start()

    def wait_for_answers():
        for thread in threads:
            thread.join(10)
        return answers

    return wait_for_answers


def batches_after_concurrency(batch_window, max_batch=8):
    """A first request blocks the engine, two more queue behind it and share the next batch; then "d" arrives and
    "e" 0.1 s later. Returns the batch sizes."""
    engine = RecordingEngine()
    service = GenerationService(engine, batch_window=batch_window, max_batch=max_batch)
    first = ask_in_threads(service, [("a", 0.0)])
    while not engine.batch_sizes:
        time.sleep(0.01)
    queued = ask_in_threads(service, [("b", 0.0), ("c", 0.0)])
    while service.queued < 2:
        time.sleep(0.01)
    engine.gate.set()
    assert first() == {"a": ["a"]} and queued() == {"b": ["b"], "c": ["c"]}
    assert ask_in_threads(service, [("d", 0.0), ("e", 0.1)])() == {"d": ["d"], "e": ["e"]}
    return engine.batch_sizes


def test_after_concurrent_requests_a_request_arriving_just_after_another_joins_its_batch():
    assert batches_after_concurrency(batch_window=0.5) == [1, 2, 2]
    assert batches_after_concurrency(batch_window=0.0) == [1, 2, 1, 1]


def test_a_lone_client_and_a_full_batch_never_wait_for_the_window():
    engine = RecordingEngine()
    engine.gate.set()
    service = GenerationService(engine, batch_window=30.0)
    start = time.monotonic()
    for prompt in "xyz":  # one client, one request after the other
        assert service.generate(prompt, generation.Sampling()) == [prompt]
    assert engine.batch_sizes == [1, 1, 1] and time.monotonic() - start < 5
    start = time.monotonic()
    assert batches_after_concurrency(batch_window=30.0, max_batch=2) == [1, 2, 2]  # "d" and "e" fill the batch
    assert time.monotonic() - start < 5


class SlowEngine:
    def __init__(self, engine, delay):
        self.engine, self.delay, self.name = engine, delay, "slow"
        self.context_size, self.count_tokens = engine.context_size, engine.count_tokens

    def generate_rows(self, rows, progress=None):
        time.sleep(self.delay)
        return self.engine.generate_rows(rows, progress)


def test_an_overloaded_server_answers_503_instead_of_hanging(engine):
    app = app_for(GenerationService(SlowEngine(engine, 2.0), timeout=0.3), web.ModelInfo("m", True))
    client = app.test_client()
    start = time.monotonic()
    api = client.post("/api/generate", json={"prompt": "Le soir", "max_new_tokens": 2})
    assert api.status_code == 503 and "occupé" in api.get_json()["error"] and time.monotonic() - start < 2
    page = client.post("/generate", data={"prompt": "Le soir", "max_new_tokens": "2"})
    assert page.status_code == 503 and "occupé" in page.text


def test_server_defaults_are_safe(service):
    config, flags = step5.parse_args("x", [], step=5, extra=web.add_server_flags)
    assert flags.host == "127.0.0.1"
    config, flags = step5.parse_args("x", ["--host", "0.0.0.0"], step=5, extra=web.add_server_flags)
    assert flags.host == "0.0.0.0"
    app = app_for(service, web.ModelInfo("m", True))
    assert not app.debug  # no Werkzeug debugger: it runs code sent by a browser
    assert "Traceback" not in app.test_client().get("/nowhere").text


def test_a_second_server_on_a_busy_port_fails_at_once_with_a_french_hint(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        start = time.monotonic()
        result = run_script(["aurore/5_flask_solution.py", "--port", str(port)],
                            {"AURORE_WORKDIR": str(tmp_path), "AURORE_BASE_MODEL": str(tmp_path / "none")})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"Le port {port} de 127.0.0.1 est déjà pris" in result.stderr and f"--port {port + 1}" in result.stderr
    assert "n'existe pas" not in result.stderr  # checked before loading anything
    assert time.monotonic() - start < 60


@pytest.mark.parametrize("prompt", [None, 123, ["a"], {"text": "a"}, True])
def test_a_prompt_that_is_not_text_is_a_400(client, prompt):
    response = client.post("/api/generate", json={"prompt": prompt})
    assert response.status_code == 400 and "doit être un texte" in response.get_json()["error"]


def test_each_click_draws_a_new_seed_unless_one_is_given(client):
    def seed_shown(data):
        page = client.post("/generate", data={"prompt": "Le soir", "max_new_tokens": "3", **data}).text
        return page.split('<span id="seed-used">')[1].split("<")[0]

    assert len({seed_shown({}) for _ in range(3)}) == 3
    assert seed_shown({"seed": "11"}) == seed_shown({"seed": "11"}) == "11"
    api = client.post("/api/generate", json={"prompt": "Le soir", "max_new_tokens": 3}).get_json()
    assert isinstance(api["seed"], int)


def test_texts_never_show_what_a_cut_character_leaves():
    assert web.readable("La rivi\ufffd\x07re\x1b chante\nle soir\x85") == "La rivire chante\nle soir"


def test_texts_cut_mid_character_are_cleaned_on_the_page():
    class CutEngine:
        name, context_size = "cut", 64

        def count_tokens(self, prompt):
            return 1

        def generate_rows(self, rows, progress=None):
            return [f"{row.prompt} \ufffd\x16\x17suite" for row in rows]

    client = app_for(GenerationService(CutEngine()), web.ModelInfo("m", True)).test_client()
    texts = client.post("/api/generate", json={"prompt": "Le soir", "num_texts": 1}).get_json()["texts"]
    assert texts == ["Le soir suite"]


def test_the_from_scratch_model_is_offered_as_a_second_choice(service, mini_gpt_workdir):
    from aurore.engines import mini_engine

    folder = Config(workdir=mini_gpt_workdir).mini_gpt_dir
    mini = GenerationService(mini_engine.MiniGPTEngine(folder), timeout=30)
    app = app_for(service, web.ModelInfo("models/gpt2-george-sand", True),
                  **{"mini-gpt": (mini, web.ModelInfo(str(folder), False, from_scratch=True))})
    client = app.test_client()
    form = client.get("/generate").text
    assert '<option value="gpt2" selected>' in form and '<option value="mini-gpt">' in form
    page = client.post("/generate", data={"prompt": "La rivière", "max_new_tokens": "8", "model": "mini-gpt"})
    assert page.status_code == 200 and '<option value="mini-gpt" selected>' in page.text
    assert "mini-GPT construit de zéro" in page.text and page.text.count('<article class="text">La rivière') == 2
    api = client.post("/api/generate", json={"prompt": "Germain", "max_new_tokens": 5, "model": "mini-gpt"})
    assert api.status_code == 200 and api.get_json()["model"] == str(folder)
    unknown = client.post("/api/generate", json={"prompt": "Germain", "model": "gpt5"})
    assert unknown.status_code == 400 and "Modèle inconnu" in unknown.get_json()["error"]
    assert client.get("/healthz").get_json()["models"] == ["gpt2", "mini-gpt"]


def test_a_second_server_started_while_the_first_is_loading_fails_at_once(tiny_model_dir, tmp_path):
    import os
    import shutil
    import socket
    import subprocess
    import sys
    import urllib.request

    from conftest import REPO

    shutil.copytree(tiny_model_dir, Config(workdir=tmp_path).finetuned_dir)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "AURORE_WORKDIR": str(tmp_path)}
    first = subprocess.Popen([sys.executable, "aurore/5_flask_solution.py", "--port", str(port)], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the port is taken as soon as the first server starts, before its load
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        second = run_script(["aurore/5_flask_solution.py", "--port", str(port)], {"AURORE_WORKDIR": str(tmp_path)})
        assert second.returncode == 1 and f"Le port {port} de 127.0.0.1 est déjà pris" in second.stderr
        assert "Traceback" not in second.stderr
        while time.monotonic() < deadline:  # ... and the first one still serves
            try:
                assert urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30).status == 200
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError("the first server never answered")
    finally:
        first.terminate()
        first.wait(30)


def test_mon_modele_shows_what_step3_measured_or_says_to_run_it(service, tmp_path):
    from aurore.training import final, plots

    folder = tmp_path / "gpt2-george-sand"
    info = web.ModelInfo("models/gpt2-george-sand", True)
    served = {"gpt2": web.Served(service, info)}
    client = step5.create_app(web.Models(served, report=folder)).test_client()
    missing = client.get("/mon-modele")
    assert missing.status_code == 200 and "pas encore été affiné" in missing.text and "3_train.py" in missing.text
    assert client.get("/mon-modele/loss.png").status_code == 404

    folder.mkdir()  # what step 3's final save writes beside the model (later visits read it: no restart)
    steps = [{"step": i, "loss": 5.0 - i / 10} for i in range(1, 11)]
    epochs = [{"epoch": 1, "step": 10, "loss": 4.5, "val_loss": 4.6}]
    metrics = {"perplexity_before": 123.456, "perplexity_after": 78.9, "steps": steps, "epochs": epochs,
               "settings": {"learning_rate": 5e-05, "max_steps": 10, "time_budget": ""}}
    (folder / "metrics.json").write_text(__import__("json").dumps(metrics), encoding="utf-8")
    (folder / "README.md").write_text(final.model_card("benjamin/gpt2-wechsel-french", metrics), encoding="utf-8")
    plots.plot_losses(steps, epochs, folder / "loss.png")
    page = client.get("/mon-modele")
    assert page.status_code == 200 and "123,46" in page.text and "78,90" in page.text  # French decimals
    assert "<th scope=\"row\"><code>--learning-rate</code></th><td>5e-05</td>" in page.text and 'id="loss"' in page.text
    assert "--time-budget" not in page.text  # a setting left empty is not shown
    assert "GPT-2 fine-tuned on George Sand" in page.text and "base_model:" not in page.text  # card, front matter cut
    curve = client.get("/mon-modele/loss.png")
    assert curve.status_code == 200 and curve.data[:4] == b"\x89PNG"


def test_requests_with_different_settings_share_a_batch():
    engine = RecordingEngine()
    service = GenerationService(engine, batch_window=0.0)
    first = ask_in_threads(service, [("a", 0.0)])
    while not engine.batch_sizes:
        time.sleep(0.01)
    answers = {}
    settings = {"b": generation.Sampling(temperature=0.5, max_new_tokens=7, seed=1),
                "c": generation.Sampling(top_k=3, top_p=0.8, seed=2, num_return_sequences=3)}
    threads = [threading.Thread(target=lambda p=p: answers.update({p: service.generate(p, settings[p])}))
               for p in settings]
    for thread in threads:
        thread.start()
    while service.queued < 2:
        time.sleep(0.01)
    engine.gate.set()
    for thread in threads:
        thread.join(10)
    assert first() == {"a": ["a"]} and answers == {"b": ["b"], "c": ["c", "c", "c"]}
    assert engine.batch_sizes == [1, 4]  # b's row and c's three rows, in one engine call


class StreamingEngine:
    """Writes one word per step for up to 200 steps, reporting progress; records when it stopped."""

    name, context_size = "streaming", 10_000

    def __init__(self):
        self.stopped_at = None

    def count_tokens(self, prompt):
        return len(prompt.split())

    def generate_rows(self, rows, progress=None):
        texts = [row.prompt for row in rows]
        for step in range(200):
            texts = [text + " mot" for text in texts]
            if progress and not any(progress(texts)):
                self.stopped_at = step
                break
            time.sleep(0.005)
        return texts


def test_a_stream_shows_growing_texts_and_closing_it_stops_the_work():
    engine = StreamingEngine()
    service = GenerationService(engine, timeout=10)
    updates = service.stream("Le soir", generation.Sampling(num_return_sequences=2))
    seen = [next(updates) for _ in range(3)]
    assert all(len(texts) == 2 and texts[0].startswith("Le soir mot") for texts in seen)
    assert len(seen[2][0]) > len(seen[0][0])
    updates.close()  # the page was closed
    deadline = time.monotonic() + 5
    while engine.stopped_at is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.stopped_at is not None and engine.stopped_at < 150
    assert service.generate("Une autre", generation.Sampling())[0].count("mot") == 200  # the worker goes on


def test_unknown_addresses_and_methods_answer_in_french(client):
    page = client.get("/nimportequoi")
    assert page.status_code == 404 and "n&#39;existe pas" in page.text and '<html lang="fr">' in page.text
    api = client.get("/api/generate")
    assert api.status_code == 405 and "POST" in api.get_json()["error"]
    assert client.post("/api/inconnue", json={}).get_json()["error"].startswith("Cette adresse n'existe pas")


def test_step5_reads_its_sampling_settings_from_flags_and_variables(tiny_model_dir, tmp_path, monkeypatch):
    """The server's models carry the form's defaults from step 5's own settings (they came from a frozen default)."""
    from aurore.config import parse_args

    monkeypatch.setenv("AURORE_TEMPERATURE", "0.5")
    monkeypatch.delenv("AURORE_SEED", raising=False)
    argv = ["--engine", "eager", "--workdir", str(tmp_path), "--base-model", str(tiny_model_dir), "--top-k", "7"]
    models = web.load_models(*parse_args(step5.__doc__, argv, step=5, extra=web.add_server_flags))
    assert models.fields["temperature"].default == 0.5 and models.fields["top_k"].default == 7
    assert models.fields["seed"].default is None  # no seed chosen: a new text per click
    page = step5.create_app(models).test_client().get("/generate").text
    assert 'name="temperature" type="number" value="0.5"' in page
    seeded = web.load_models(*parse_args(step5.__doc__, [*argv, "--seed", "3"], step=5, extra=web.add_server_flags))
    assert seeded.fields["seed"].default == 3

"""The package's views around step 5's routes: streaming, "Comparer", "Pourquoi ce mot ?", through Flask, on a tiny
real model served by the compiled engine."""

import dataclasses
import json
import re

import numpy as np
import pytest
import tensorflow as tf
from transformers.generation.tf_logits_process import (
    TFTemperatureLogitsWarper,
    TFTopKLogitsWarper,
    TFTopPLogitsWarper,
)

from aurore import web
from aurore.config import Config
from aurore.engines import fastgen, generation
from aurore.web import forms
from aurore.web.serving import GenerationService
from conftest import script

step5 = script("5_flask_solution")


@pytest.fixture(scope="module")
def compiled(tiny_model_dir):
    generator = generation.load_generator(str(tiny_model_dir), Config(workdir=tiny_model_dir.parent))
    return fastgen.CompiledGenerator(generator.model, generator.tokenizer)


@pytest.fixture(scope="module")
def models(compiled, mini_gpt_workdir):
    from aurore.engines import mini_engine

    mini_folder = Config(workdir=mini_gpt_workdir).mini_gpt_dir
    return web.Models({
        "gpt2": web.Served(GenerationService(compiled, timeout=60), web.ModelInfo("models/gpt2-george-sand", True)),
        "base": web.Served(GenerationService(compiled, timeout=60),
                           web.ModelInfo("aurore/models/standin", False, standin=True, beside=True)),
        "mini-gpt": web.Served(GenerationService(mini_engine.MiniGPTEngine(mini_folder), timeout=60),
                               web.ModelInfo(str(mini_folder), False, from_scratch=True)),
    })


@pytest.fixture
def client(models):
    return step5.create_app(models).test_client()


def events(response) -> list[tuple[str, dict]]:
    found = []
    for block in response.get_data(as_text=True).strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        found.append((lines["event"], json.loads(lines["data"])))
    return found


def test_the_stream_sends_growing_texts_then_the_same_answer_as_the_api(client):
    body = {"prompt": "La rivière", "max_new_tokens": 20, "num_texts": 2, "seed": 11, "temperature": 1.5,
            "top_k": 0, "top_p": 1.0}
    response = client.post("/api/generate/stream", json=body)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    found = events(response)
    names = [name for name, _ in found]
    assert names[-1] == "done" and set(names[:-1]) == {"texts"} and len(found) >= 3
    lengths = [len(data["texts"][0]) for _, data in found]
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1]  # the first event comes before the end
    assert found[-1][1] == client.post("/api/generate", json=body).get_json()


def test_the_stream_refuses_a_bad_request_as_the_api_does(client):
    response = client.post("/api/generate/stream", json={"prompt": " "})
    assert response.status_code == 400 and "vide" in response.get_json()["error"]


def test_compare_shows_one_column_per_model_with_one_seed(client):
    page = client.post("/comparer", data={"prompt": "Germain", "max_new_tokens": "6", "seed": "4"})
    assert page.status_code == 200
    for label in ("GPT-2 affiné sur George Sand", "modèle de base, non affiné — standin",
                  "mini-GPT construit de zéro"):
        assert label in page.text
    assert page.text.count('<article class="column"') == 3 and page.text.count('<p class="text">Germain') == 3
    assert "lancez l&#39;étape 3" not in page.text  # the base model beside the fine-tuned one needs no step 3
    assert '<span id="seed-used">4</span>' in page.text
    # Both GPT-2 columns here are the same model: same seed and settings, same text.
    texts = [part.split("</p>")[0] for part in page.text.split('<p class="text">')[1:]]
    assert texts[0] == texts[1]


def test_compare_without_a_seed_draws_one_for_every_column(client):
    page = client.post("/comparer", data={"prompt": "Germain", "max_new_tokens": "4"})
    texts = [part.split("</p>")[0] for part in page.text.split('<p class="text">')[1:]]
    assert page.status_code == 200 and texts[0] == texts[1] and 'id="seed-used">' in page.text


def test_the_mini_gpt_ends_on_a_whole_word_and_counts_characters(models):
    from aurore.engines.minigpt import WORD_END_MARGIN

    engine = models.served["mini-gpt"].service.engine
    rows = [generation.Row("Le vent", generation.Sampling(max_new_tokens=12, seed=s)) for s in range(4)]
    for text in engine.generate_rows(rows):
        written = text[len("Le vent"):]
        assert 12 <= len(written) <= 12 + WORD_END_MARGIN
        assert len(written) == 12 + WORD_END_MARGIN or not written[-1].isalnum()


def expected_after(logits, temperature, top_k, top_p):
    """transformers' own TF warpers, in generate's order."""
    scores = tf.constant(logits[None], tf.float32)
    scores = TFTemperatureLogitsWarper(temperature)(None, scores, 0)
    if top_k:
        scores = TFTopKLogitsWarper(top_k)(None, scores, 0)
    if top_p < 1.0:
        scores = TFTopPLogitsWarper(top_p)(None, scores, 0)
    return tf.nn.softmax(scores)[0].numpy()


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, 0, 1.0), (0.7, 5, 1.0), (1.4, 0, 0.6), (0.9, 8, 0.9)])
def test_next_tokens_are_the_generation_warpers_on_the_models_scores(client, compiled, temperature, top_k, top_p):
    body = {"prompt": "La rivière", "temperature": temperature, "top_k": top_k, "top_p": top_p}
    data = client.post("/api/next-tokens", json=body).get_json()
    ids = compiled.tokenizer("La rivière")["input_ids"]
    logits = compiled.model(tf.constant([ids])).logits[0, -1].numpy()
    before, after = tf.nn.softmax(logits).numpy(), expected_after(logits, temperature, top_k, top_p)
    assert [t["id"] for t in data["tokens"]] == list(np.argsort(-logits, kind="stable")[:15])
    np.testing.assert_allclose([t["before"] for t in data["tokens"]], before[[t["id"] for t in data["tokens"]]],
                               rtol=1e-4)
    np.testing.assert_allclose([t["after"] for t in data["tokens"]], after[[t["id"] for t in data["tokens"]]],
                               rtol=1e-4, atol=1e-7)
    assert [t["after"] == 0 for t in data["tokens"]] == [after[t["id"]] == 0 for t in data["tokens"]]
    if top_k:
        assert sum(t["after"] > 0 for t in data["tokens"]) <= top_k
    assert data["tokens"][0]["text"] == compiled.tokenizer.decode([data["tokens"][0]["id"]])


def test_next_tokens_refuses_what_generation_refuses(client):
    assert client.post("/api/next-tokens", json={"prompt": ""}).status_code == 400
    assert client.post("/api/next-tokens", json={"prompt": "Le", "top_p": 3}).status_code == 400
    assert client.post("/api/next-tokens", json={"prompt": "Le", "model": "gpt5"}).status_code == 400


def test_next_tokens_of_the_mini_gpt_are_characters(client):
    data = client.post("/api/next-tokens", json={"prompt": "Le soi", "model": "mini-gpt"}).get_json()
    assert len(data["tokens"]) == 15 and all(len(t["text"]) == 1 for t in data["tokens"])


def test_why_page_works_without_javascript_and_a_token_continues_the_prompt(client):
    page = client.post("/pourquoi", data={"prompt": "La rivière", "temperature": "1.0", "top_k": "3", "top_p": "1.0"})
    assert page.status_code == 200 and page.text.count('name="append"') == 15
    assert page.text.count('<li class="kept">') == 3 and page.text.count('<li class="removed">') == 12
    # French percentages; a removed token reads 0 %, a small kept share "< 0,1 %", never "0.0 %"
    assert "\u00a0% → 0\u00a0% (retiré)" in page.text and "0.0 %" not in page.text and "," in page.text
    first = page.text.split('name="append" value="')[1].split('"')[0]
    again = client.post("/pourquoi", data={"prompt": "La rivière", "append": first, "temperature": "1.0",
                                           "top_k": "3", "top_p": "1.0"})
    assert f'id="chart-prompt">La rivière{first.rstrip()}</q>' in again.text


def test_closing_the_page_stops_its_generation_through_waitress():
    """The whole path: waitress notices the closed connection at its next write, the stream is closed, the
    service cancels the request, and the engine stops at its next chunk (no orphan work in the worker)."""
    import socket
    import threading
    import time

    from waitress.server import create_server

    from test_web import StreamingEngine

    engine = StreamingEngine()
    app = step5.create_app(web.Models({"gpt2": web.Served(GenerationService(engine, timeout=30),
                                                          web.ModelInfo("m", True))}))
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    body = json.dumps({"prompt": "Le soir"}).encode()
    visitor = socket.create_connection(("127.0.0.1", server.effective_port), timeout=10)
    visitor.sendall(b"POST /api/generate/stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    received = b""
    while b"event: texts" not in received:
        received += visitor.recv(4096)
    assert received.startswith(b"HTTP/1.1 200")
    visitor.close()  # the visitor closes the tab
    deadline = time.monotonic() + 5
    while engine.stopped_at is None and time.monotonic() < deadline:
        time.sleep(0.02)
    server.close()
    assert engine.stopped_at is not None and engine.stopped_at < 150  # of 200 steps (2 s of work)


def test_asking_for_the_base_model_when_it_is_not_served_says_why(compiled):
    alone = web.Models({"gpt2": web.Served(GenerationService(compiled), web.ModelInfo("m", True))})
    response = step5.create_app(alone).test_client().post("/api/generate", json={"prompt": "Le", "model": "base"})
    assert response.status_code == 400 and "--no-base" in response.get_json()["error"]


@pytest.mark.parametrize("path", ["/api/generate", "/api/next-tokens", "/api/generate/stream"])
def test_a_lone_surrogate_is_a_french_400_on_every_api(client, path):
    """JSON may hold half a UTF-16 pair ("\\ud800"): a 400 in French JSON, not Flask's English 500 page."""
    for body in ('{"prompt": "Le soir \\ud800"}', '{"prompt": "Le soir", "model": "\\udfff"}'):
        response = client.post(path, data=body, content_type="application/json")
        assert response.status_code == 400, response.get_data(as_text=True)[:300]
        assert "caractère invalide" in response.get_json()["error"]


def test_a_route_that_raises_answers_in_french_json(models):
    app = step5.create_app(models)

    @app.post("/api/boom")
    def boom():
        raise RuntimeError("a bug")

    response = app.test_client().post("/api/boom", json={})
    assert response.status_code == 500 and "Erreur interne du serveur" in response.get_json()["error"]


def test_the_servers_sampling_settings_are_the_forms_and_apis_defaults(models):
    """Step 5's --temperature, --top-k, --top-p, --max-new-tokens, --seed (and AURORE_*) reach the form, the JSON
    API, Comparer and Pourquoi ce mot ?"""
    chosen = forms.form_fields(Config(temperature=0.5, top_k=7, top_p=0.8, max_new_tokens=5, seed=11), seed_chosen=True)
    client = step5.create_app(dataclasses.replace(models, fields=chosen)).test_client()
    for page in ("/generate", "/comparer", "/pourquoi"):
        text = client.get(page).text
        assert re.search(r'name="temperature"[^>]*value="0.5"', text), page
        assert re.search(r'name="top_k"[^>]*value="7"', text), page
    first = client.post("/api/generate", json={"prompt": "Le soir", "num_texts": 1}).get_json()
    assert first["seed"] == 11 and first == client.post("/api/generate", json={"prompt": "Le soir",
                                                                               "num_texts": 1}).get_json()
    asked = forms.validate({"prompt": "Le soir"}, dataclasses.replace(models, fields=chosen))
    assert (asked.sampling.temperature, asked.sampling.top_k, asked.sampling.top_p,
            asked.sampling.max_new_tokens, asked.sampling.seed) == (0.5, 7, 0.8, 5, 11)
    compare = client.post("/comparer", data={"prompt": "Germain"})
    assert compare.status_code == 200 and 'name="seed" type="number" value="11"' in compare.text

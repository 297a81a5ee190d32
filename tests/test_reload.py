"""Step 5's edit loop: an edit of the script is served at the next request, on the same models; a broken edit keeps
the last good app and says what broke; a fixed edit recovers; --no-reload serves the app as it is."""

import shutil

import pytest
from werkzeug.test import Client

from aurore import web
from aurore.config import Config, parse_args
from aurore.engines import generation
from aurore.web import reload
from aurore.web.serving import GenerationService
from conftest import REPO

NEW_ROUTE = '''
    @app.get("/bonjour")
    def bonjour():
        return f"bonjour {id(models.main.service)}"

    return app
'''


@pytest.fixture(scope="module")
def models(tiny_model_dir):
    engine = generation.PipelineEngine(generation.load_generator(str(tiny_model_dir),
                                                                 Config(workdir=tiny_model_dir.parent)))
    return web.Models({"gpt2": web.Served(GenerationService(engine, timeout=30), web.ModelInfo("m", True))})


@pytest.fixture
def served(models, tmp_path):
    """A copy of step 5's solution, served as `python aurore/5_flask_solution.py` serves it."""
    script = tmp_path / "5_flask_solution.py"
    shutil.copy(REPO / "aurore" / "5_flask_solution.py", script)
    reload.STATUS.error = None
    config, flags = parse_args("x", [], step=5, extra=web.add_server_flags)
    wsgi = web.wsgi_app(reload.load_create_app(script)(models), flags, models, str(script))
    yield script, wsgi, Client(wsgi)
    reload.STATUS.error = None


def edit(script, old: str, new: str) -> None:
    text = script.read_text(encoding="utf-8")
    assert old in text
    script.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_an_added_route_is_served_at_the_next_request_on_the_same_models(served, models):
    script, wsgi, client = served
    assert client.get("/bonjour").status_code == 404
    edit(script, "\n    return app\n", NEW_ROUTE)
    answer = client.get("/bonjour")
    assert answer.status_code == 200 and answer.text == f"bonjour {id(models.main.service)}"
    assert wsgi.models is models and client.get("/generate").status_code == 200


@pytest.mark.parametrize("broken, reason", [
    ("    app = Flask(__name__", "erreur de syntaxe"),  # a missing parenthesis
    ("    raise RuntimeError('oups')\n    app = Flask(__name__", "RuntimeError: oups"),
])
def test_a_broken_edit_keeps_the_last_good_app_and_a_fixed_one_recovers(served, broken, reason, capsys):
    script, wsgi, client = served
    good = script.read_text(encoding="utf-8")
    edit(script, "    app = Flask(__name__", broken + ("" if "raise" in broken else "(("))
    page = client.get("/generate")
    assert page.status_code == 200 and 'name="prompt"' in page.text  # still the last good app
    assert "Votre dernière modification ne se charge pas : 5_flask_solution.py, ligne" in page.text
    assert reason in page.text and reason in capsys.readouterr().out
    assert client.post("/api/generate", json={"prompt": "Le soir", "max_new_tokens": 2}).status_code == 200
    script.write_text(good.replace("\n    return app\n", NEW_ROUTE, 1), encoding="utf-8")
    assert client.get("/bonjour").status_code == 200 and reload.STATUS.error is None
    assert "ne se charge pas" not in client.get("/generate").text


def test_a_route_that_raises_names_its_line_on_the_page(served):
    script, wsgi, client = served
    edit(script, "        if request.method == \"GET\":", "        1 / 0\n        if request.method == \"GET\":")
    page = client.get("/generate")
    assert page.status_code == 500 and "5_flask_solution.py, ligne" in page.text and "ZeroDivisionError" in page.text


def test_no_reload_serves_the_app_as_it_is(models, tmp_path):
    script = tmp_path / "5_flask_solution.py"
    shutil.copy(REPO / "aurore" / "5_flask_solution.py", script)
    _, flags = parse_args("x", ["--no-reload"], step=5, extra=web.add_server_flags)
    app = reload.load_create_app(script)(models)
    assert web.wsgi_app(app, flags, models, str(script)) is app
    edit(script, "\n    return app\n", NEW_ROUTE)
    assert Client(app).get("/bonjour").status_code == 404

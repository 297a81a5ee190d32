"""The web layer of step 5, around the routes the participant writes in `aurore/5_flask*.py`.

`setup(app, models)` adds what is not the lesson: the home page, the package's views (`aurore/web/pages.py`: streaming,
"Comparer", "Pourquoi ce mot ?", "Mon modèle"), the JSON health check, the size limit, and error pages.
`validate(values, models)` (from `aurore/web/forms.py`) checks a form or JSON body and names the model asked, whose
`generate(prompt, sampling)` returns its texts (its worker batches simultaneous requests). `load_models`
loads the models once, before the server starts; `serve` runs waitress. The web layer only generates: it never
imports training code.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from pathlib import Path

import aurore

if not aurore.LOG_LEVEL_CHOSEN and "tensorflow" not in sys.modules:
    # Reading XLA's persistent cache logs ~30 KB of harmless C++ errors per start ("Error parsing text-format",
    # a false "SIGILL" warning about a tuning flag): level 3 keeps them out of the participant's terminal.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

from flask import Flask, jsonify, render_template, request  # noqa: E402

from aurore import hub
from aurore.config import Config
from aurore.engines import fastgen, generation, mini_engine
from aurore.engines.generation import ModelInfo  # noqa: F401  (web.ModelInfo: what a served model is)
from aurore.errors import AuroreError
from aurore.text.french import format_decimal, format_percent
from aurore.web import forms, pages, reload
from aurore.web.forms import (FIELDS, MAX_PROMPT_CHARS, Models, RequestError, Served,  # noqa: F401
                          readable, validate)
from aurore.web.serving import GenerationService

TEMPLATES = str(Path(__file__).parent / "templates")  # the page's HTML (Jinja templates), CSS and script: no CDN
STATIC = str(Path(__file__).parent / "static")
MAX_REQUEST_BYTES = 16 * 1024
WARM_LENGTHS = (128,)  # cache lengths compiled first (prompt + new tokens up to 128), the page already open ...
LATER_LENGTHS = (256,)  # ... and then these (a longer request compiles its own once)
YIELD_LIMIT = 5.0  # seconds a compilation waits at most for the requests being written (then it goes on)


def page_context(models: Models, form: dict | None = None, **context) -> dict:
    """What templates/generate.html shows: the form as the participant left it, the models, the limits."""
    form = {**{name: spec.default for name, spec in models.fields.items()}, "prompt": "", "model": "gpt2", **(form or {})}
    current = models.served.get(form["model"], models.main).info
    warming = not all(served.service.ready.is_set() for served in models.served.values())
    return {"model": current, "models": models.served, "form": form, "limits": models.fields, "max_prompt": MAX_PROMPT_CHARS,
            "warming": warming, **context}


def setup(app: Flask, models: Models) -> Flask:
    """Everything around the participant's routes: home page, health check, size limit, error pages."""
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.json.ensure_ascii = False
    app.add_template_filter(format_decimal, "decimal")  # 96,25: decimals as French writes them
    app.add_template_filter(format_percent, "percent")  # 2,7 %, and "< 0,1 %" for a small share that is not zero

    pages.add_routes(app, models, page_context)
    app.context_processor(lambda: {"reload_error": reload.STATUS.error})  # a broken edit of the step-5 script

    @app.get("/")
    def home():
        return render_template("home.html", model=models.main.info)

    @app.get("/healthz")
    def healthz():
        main = models.main
        return jsonify(status="ok", model=main.info.name, finetuned=main.info.finetuned, engine=main.service.engine.name,
                       queued=main.service.queued, models=sorted(models.served),
                       ready=all(served.service.ready.is_set() for served in models.served.values()))

    _add_error_pages(app, models)
    return app


def _add_error_pages(app: Flask, models: Models) -> None:
    """Every error in French: JSON on /api/ routes, the writing page (with the message) elsewhere."""

    def error_answer(message: str, status: int):
        if request.path.startswith("/api/"):
            return jsonify(error=message), status
        try:
            return render_template("generate.html", **page_context(models, error=message)), status
        except Exception:  # the page itself failed: plain text
            return message, status, {"Content-Type": "text/plain; charset=utf-8"}

    too_large = f"Requête trop grande ({MAX_REQUEST_BYTES // 1024} Ko au plus)."
    app.register_error_handler(413, lambda _: error_answer(too_large, 413))
    # e.g. an exercise of step 5 still to do: say which
    app.register_error_handler(AuroreError, lambda error: error_answer(str(error), 500))
    nowhere = "Cette adresse n'existe pas : la page d'écriture est /generate."
    app.register_error_handler(404, lambda _: error_answer(nowhere, 404))

    @app.errorhandler(500)
    def server_error(error):  # a bug or a route that raised: where it broke, the traceback in the terminal
        cause = getattr(error, "original_exception", None)
        where = f" ({reload.where_it_broke(cause)})" if cause is not None else ""
        return error_answer(f"Erreur interne du serveur{where} : la requête n'a pas abouti (le terminal du serveur "
                            "montre le détail).", 500)

    @app.errorhandler(405)
    def wrong_method(_error):
        message = f"{request.method} n'est pas accepté ici : les routes /api/ attendent un POST avec un corps JSON."
        return jsonify(error=message), 405


def add_server_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface d'écoute (0.0.0.0 : toutes, comme dans Docker ; par défaut : cette machine "
                             "seulement)")
    parser.add_argument("--port", type=int, default=8080, help="port de la page (par défaut : 8080)")
    parser.add_argument("--threads", type=int, default=8,
                        help="fils d'exécution web (la génération a son propre fil)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="secondes avant qu'une requête en attente reçoive une erreur 503")
    parser.add_argument("--engine", choices=["compiled", "eager"], default="compiled",
                        help="compiled : décodage XLA, ~10 fois plus rapide, compilé au démarrage ; "
                             "eager : le pipeline")
    parser.add_argument("--no-reload", dest="reload", action="store_false",
                        help="ne pas recharger le fichier de l'étape quand il change (pour un serveur d'organisateur)")
    parser.add_argument("--no-base", dest="base", action="store_false",
                        help="ne pas charger le modèle de base à côté du modèle affiné (économise sa "
                             "mémoire ; pas de colonne « base » dans Comparer)")


def reserve_port(host: str, port: int) -> socket.socket:
    """Take the port at once, before the long model load: a second server (often a first step 5 still loading)
    fails in a second with a French hint, and browsers that connect during the load wait instead of being refused."""
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart right after a stop may rebind
    try:
        listener.bind((host, port))
        listener.listen(128)  # listening: no other socket can bind the port, even with SO_REUSEADDR
    except OSError as error:
        listener.close()
        raise AuroreError(f"Le port {port} de {host} est déjà pris ({error.strerror}) : un serveur de l'étape 5 "
                          "tourne sans doute déjà (dans un autre terminal ou un conteneur).",
                          f"Ouvrez http://127.0.0.1:{port}/generate, ou arrêtez l'autre serveur (Ctrl-C), ou "
                          f"choisissez un autre port : --port {port + 1}.") from None
    return listener


def load_models(config: Config, flags: argparse.Namespace) -> Models:
    """Load the models once: step 3's model (else the base model), the base model beside a fine-tuned one (for
    "Comparer"; not with --no-base), and step 6's model when it exists."""
    if flags.engine == "compiled":
        fastgen.keep_compilations(config.models_dir / "xla-cache")
    choice = generation.choose_model(config)
    print(choice.describe())
    seed_chosen = getattr(flags, "seed", None) is not None or bool(os.environ.get("AURORE_SEED"))
    models = Models({"gpt2": Served(_gpt2_service(choice.folder, config, flags), choice)},
                    fields=forms.form_fields(config, seed_chosen), report=config.finetuned_dir)
    if choice.finetuned and flags.base:
        try:
            base = _gpt2_service(hub.tensorflow_folder(config.base_model, config), config, flags)
        except AuroreError as error:  # e.g. offline, never downloaded: the page works without it
            print(f"Le modèle de base n'est pas servi à côté (la page Comparer s'en passera) : {error}")
        else:
            standin = generation.is_standin(config.base_model)
            models.served["base"] = Served(base, ModelInfo(config.base_model, False, standin=standin, beside=True))
            print(f"Le modèle de base est aussi servi, pour la page Comparer : {config.base_model}")
    if mini_engine.exists(config):  # step 6's model, offered as another choice
        mini = GenerationService(mini_engine.MiniGPTEngine(config.mini_gpt_dir), timeout=flags.timeout)
        models.served["mini-gpt"] = Served(mini, ModelInfo(str(config.mini_gpt_dir), False, from_scratch=True))
        print(f"Le modèle construit de zéro à l'étape 6 est aussi servi : {config.mini_gpt_dir}")
    threading.Thread(target=_warm_up, args=(models,), name="warm-up", daemon=True).start()
    return models


def _warm_up(models: Models) -> None:
    """While the page is already open: compile the decoders (or read them from XLA's persistent cache), each
    service starting its work as soon as its model is ready (requests sent before wait for it), then the longer
    buffers and the next-token chart's graphs. Traced in this one thread, always in the same order (XLA's persistent
    cache knows a program by names that count the functions traced before it); a model's first three programs are
    then lowered on two threads. Compilations wait while requests are being written (`yield_to_requests`)."""
    labels = {id(served.service): served.info.label for served in models.served.values()}
    compiled = [served.service for served in models.served.values()
                if isinstance(served.service.engine, fastgen.CompiledGenerator)]
    try:
        for service in compiled:  # first what a lone request needs: one row, a short prompt
            yield_to_requests([served for served in compiled if served.ready.is_set()])  # models already served
            start = time.perf_counter()
            programs = service.engine.warm_up(WARM_LENGTHS, batches=(1,), prompts=fastgen.PROMPT_BUCKETS[:1],
                                               workers=2)
            service.ready.set()
            print(f"Décodage compilé ({labels[id(service)]}) : {programs} programmes prêts en "
                  f"{time.perf_counter() - start:.0f} s (le code compilé est gardé dans models/xla-cache pour les "
                  "prochains démarrages)", flush=True)
        for lengths in (WARM_LENGTHS, LATER_LENGTHS):  # then 8 rows, longer prompts, longer texts
            for service in compiled:
                service.engine.warm_up(lengths, before_each=lambda: yield_to_requests(compiled))
        for served in models.served.values():
            served.service.engine.next_token_logits(".")
    except Exception as error:  # requests will compile what they need (and say what fails); never leave them waiting
        print(f"Préparation du décodage interrompue ({error!r}) : chaque requête compilera ce qu'il lui faut.")
    finally:
        for service in compiled:
            service.ready.set()


def yield_to_requests(services: list[GenerationService], limit: float = YIELD_LIMIT) -> None:
    """Wait while a service writes texts, `limit` seconds at most: the next compilation waits for the answers (on
    two cores it would slow them), and goes on under a steady stream of requests."""
    deadline = time.monotonic() + limit
    while any(service.busy for service in services) and time.monotonic() < deadline:
        time.sleep(0.02)


def _gpt2_service(folder: str, config: Config, flags: argparse.Namespace) -> GenerationService:
    generator = generation.load_generator(folder, config)
    if flags.engine == "eager":
        return GenerationService(generation.PipelineEngine(generator), flags.timeout)
    compiled = fastgen.CompiledGenerator(generator.model, generator.tokenizer)
    return GenerationService(compiled, flags.timeout, ready=threading.Event())  # ready once warmed up: _warm_up


def serve(app: Flask, listener: socket.socket, flags: argparse.Namespace, models: Models | None = None,
          script: str | None = None) -> None:
    """waitress, a production WSGI server (never Flask's debug server, which runs code sent by a browser), on the
    port `reserve_port` took. With `script` (the step file) and without --no-reload, an edit of the file is served at
    the next request, on the same models (`aurore/web/reload.py`)."""
    import logging

    from waitress import serve as waitress_serve

    # "Task queue depth is 1" each time requests wait for a thread: expected while texts are written, not a fault.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    print(f"Page prête : http://{'127.0.0.1' if flags.host == '0.0.0.0' else flags.host}:{flags.port}/generate "
          "(Ctrl-C pour arrêter)")
    waitress_serve(wsgi_app(app, flags, models, script), sockets=[listener], threads=flags.threads)
    # Back here after Ctrl-C (waitress stops on it). Leave at once: the warm-up may be inside TensorFlow, where
    # Python's own exit would stop its thread mid-call (a C++ abort, "FATAL: exception not rethrown") or wait for
    # its compilations.
    print("\nServeur arrêté (Ctrl-C).", flush=True)
    sys.stderr.flush()
    os._exit(0)


def wsgi_app(app: Flask, flags: argparse.Namespace, models: Models | None, script: str | None):
    """What waitress serves: the app, reloaded from `script` when it changes unless --no-reload."""
    if script is None or not getattr(flags, "reload", False):
        return app
    print(f"Modifiez {Path(script).name} et enregistrez : la page suivante sert la nouvelle version, sans redémarrer "
          "(--no-reload pour ne pas recharger).")
    return reload.ReloadingApp(script, app, models)

"""The web layer of step 5, around the routes the participant writes in `aurore/5_flask*.py`.

`setup(app, models)` adds what is not the lesson: the home page, "Mon modèle" (what step 3 measured), the JSON
health check, the size limit, and error pages. `answer(values, models)` validates a form or JSON body (French messages for people) and asks the model.
`load_models` loads the models once, before the server starts; `serve` runs waitress. The web layer only
generates: it never imports training code.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, jsonify, render_template, request, send_file

from aurore import fastgen, generation, minigpt
from aurore.config import PACKAGE_DIR, Config
from aurore.errors import AuroreError
from aurore.serving import GenerationService, ServiceBusy

TEMPLATES = str(PACKAGE_DIR / "templates")  # the page's HTML (Jinja templates), CSS and fonts: nothing from a CDN
STATIC = str(PACKAGE_DIR / "static")
MAX_PROMPT_CHARS = 500
MAX_REQUEST_BYTES = 16 * 1024
WARM_LENGTHS = (128, 256)  # buffer lengths compiled at start-up: prompt + new tokens up to 256
_DEFAULTS = generation.Sampling()


@dataclass(frozen=True)
class Field:
    """A number the form and the API accept: its type, bounds, default (from config) and French label."""

    kind: type
    low: float
    high: float
    default: object
    label: str


FIELDS = {
    "max_new_tokens": Field(int, 1, 200, _DEFAULTS.max_new_tokens, "nombre de jetons à générer"),
    "temperature": Field(float, 0.05, 2.0, _DEFAULTS.temperature, "température"),
    "top_k": Field(int, 0, 1000, _DEFAULTS.top_k, "top-k"),
    "top_p": Field(float, 0.05, 1.0, _DEFAULTS.top_p, "top-p"),
    "num_texts": Field(int, 1, 4, 2, "nombre de textes"),
    "seed": Field(int, 0, 2**31 - 1, None, "graine (vide : au hasard)"),
}


class RequestError(Exception):
    """A request that cannot be answered: an HTTP status and a message for people (in French)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class ModelInfo:
    name: str
    finetuned: bool
    from_scratch: bool = False
    standin: bool = False

    @property
    def label(self) -> str:
        if self.from_scratch:
            kind = "mini-GPT construit de zéro (étape 6)"
        elif self.finetuned:
            kind = "GPT-2 affiné sur George Sand"
        else:
            kind = "modèle de base, non affiné (lancez l'étape 3)"
        note = " — modèle de secours : il écrit n'importe quoi, c'est normal" if self.standin else ""
        return f"{kind} — {self.name}{note}"


@dataclass(frozen=True)
class Served:
    service: GenerationService
    info: ModelInfo


@dataclass
class Models:
    """The models the page offers, by key; "gpt2" (step 3's model, else the base model) comes first."""

    served: dict[str, Served] = field(default_factory=dict)
    report: Path | None = None  # step 3's final folder, for "Mon modèle" (read at each visit: no restart needed)

    @property
    def main(self) -> Served:
        return self.served["gpt2"]


@dataclass(frozen=True)
class Report:
    """What step 3 wrote beside its model: perplexities, settings, the loss curve, the model card."""

    perplexity_before: float
    perplexity_after: float
    settings: dict
    card: str
    has_curve: bool


def read_report(folder: Path | None) -> Report | None:
    """Step 3's report, or None when step 3 has not finished a run yet."""
    if folder is None or not (Path(folder) / "metrics.json").is_file():
        return None
    metrics = json.loads((Path(folder) / "metrics.json").read_text(encoding="utf-8"))
    card = Path(folder) / "README.md"
    text = card.read_text(encoding="utf-8").split("---", 2)[-1].strip() if card.is_file() else ""
    return Report(metrics["perplexity_before"], metrics["perplexity_after"], metrics.get("settings", {}), text,
                  (Path(folder) / "loss.png").is_file())


@dataclass(frozen=True)
class Answer:
    prompt: str
    texts: list[str]
    seed: int
    model: ModelInfo


def readable(text: str) -> str:
    """Drop what a token cut in the middle of a character leaves (U+FFFD) and control characters, but line breaks."""
    return "".join(c for c in text if c in "\n\t" or (c != "\ufffd" and unicodedata.category(c) != "Cc"))


def answer(values: object, models: Models) -> Answer:
    """Validate a form or JSON body, ask the chosen model, and return its texts; RequestError when impossible."""
    if not isinstance(values, dict):
        raise RequestError(400, "Envoyez un objet JSON, par exemple {\"prompt\": \"Le soir\"}.")
    key = values.get("model") or "gpt2"
    if not isinstance(key, str) or key not in models.served:
        raise RequestError(400, f"Modèle inconnu « {key} » : choisissez parmi {', '.join(models.served)}.")
    chosen = models.served[key]
    prompt, sampling = parse_request(values, chosen.service.engine)
    try:
        texts = chosen.service.generate(prompt, sampling)
    except ServiceBusy:
        raise RequestError(503, "Le serveur est très occupé : réessayez dans un moment.") from None
    return Answer(prompt, [readable(text) for text in texts], sampling.seed, chosen.info)


def parse_request(values: dict, engine: generation.Engine) -> tuple[str, generation.Sampling]:
    """The prompt and sampling settings of a request; RequestError(400) with a French message when unusable."""
    prompt = values.get("prompt")
    if not isinstance(prompt, str):
        raise RequestError(400, "« prompt » doit être un texte : le début d'une phrase, entre guillemets.")
    prompt = prompt.strip()
    if not prompt:
        raise RequestError(400, "Le texte de départ est vide : écrivez le début d'une phrase.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise RequestError(400, f"Le texte de départ est trop long ({len(prompt)} caractères, {MAX_PROMPT_CHARS} au plus).")
    settings = {name: _number(values.get(name), spec) for name, spec in FIELDS.items()}
    tokens = engine.count_tokens(prompt)
    if tokens + settings["max_new_tokens"] > engine.context_size:
        raise RequestError(400, f"Le texte de départ ({tokens} jetons) plus les jetons à générer dépassent la mémoire "
                                f"du modèle ({engine.context_size} jetons) : raccourcissez-le.")
    seed = settings["seed"] if settings["seed"] is not None else random.randrange(2**31)  # a new text per click
    return prompt, generation.Sampling(max_new_tokens=settings["max_new_tokens"], temperature=settings["temperature"],
                                       top_k=settings["top_k"], top_p=settings["top_p"], do_sample=True,
                                       num_return_sequences=settings["num_texts"], seed=seed)


def _number(raw: object, spec: Field):
    if raw in ("", None):
        return spec.default
    try:
        if isinstance(raw, bool) or (spec.kind is int and isinstance(raw, float)) or not isinstance(raw, (str, int, float)):
            raise ValueError
        value = spec.kind(raw)
    except (TypeError, ValueError):
        raise RequestError(400, f"« {spec.label} » doit être un nombre{' entier' if spec.kind is int else ''} : "
                                f"reçu {raw!r}.") from None
    if not spec.low <= value <= spec.high:
        raise RequestError(400, f"« {spec.label} » doit être entre {spec.low} et {spec.high} : reçu {value}.")
    return value


def page_context(models: Models, form: dict | None = None, **context) -> dict:
    """What templates/generate.html shows: the form as the participant left it, the models, the limits."""
    form = {**{name: spec.default for name, spec in FIELDS.items()}, "prompt": "", "model": "gpt2", **(form or {})}
    current = models.served.get(form["model"], models.main).info
    return {"model": current, "models": models.served, "form": form, "limits": FIELDS, "max_prompt": MAX_PROMPT_CHARS,
            **context}


def setup(app: Flask, models: Models) -> Flask:
    """Everything around the participant's routes: home page, health check, size limit, error pages."""
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.json.ensure_ascii = False

    @app.get("/")
    def home():
        return render_template("home.html", model=models.main.info)

    @app.get("/healthz")
    def healthz():
        main = models.main
        return jsonify(status="ok", model=main.info.name, finetuned=main.info.finetuned, engine=main.service.engine.name,
                       queued=main.service.queued, models=sorted(models.served))

    @app.get("/mon-modele")
    def report():
        return render_template("report.html", model=models.main.info, report=read_report(models.report))

    @app.get("/mon-modele/loss.png")
    def loss_curve():
        found = read_report(models.report)
        if found is None or not found.has_curve:
            return jsonify(error="Pas encore de courbe : lancez l'étape 3."), 404
        return send_file(Path(models.report) / "loss.png", mimetype="image/png")

    @app.errorhandler(413)
    def too_large(_error):
        message = f"Requête trop grande ({MAX_REQUEST_BYTES // 1024} Ko au plus)."
        if request.path.startswith("/api/"):
            return jsonify(error=message), 413
        return render_template("generate.html", **page_context(models, error=message)), 413

    @app.errorhandler(AuroreError)
    def unfinished(error):  # e.g. an exercise of step 5 still to do: say which, on the page
        return render_template("generate.html", **page_context(models, error=str(error))), 500

    return app


def add_server_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: every interface, "
                        "as in Docker; default: this machine only)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--threads", type=int, default=8, help="web threads (generation itself uses one worker)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a waiting request gets a 503")
    parser.add_argument("--engine", choices=["compiled", "eager"], default="compiled",
                        help="compiled: XLA decoding, ~10x faster, compiled at start-up; eager: the pipeline")


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


def load_models(config: Config, engine: str = "compiled", timeout: float = 60.0) -> Models:
    """Load the models once: step 3's model (else the base model), plus step 6's when it exists."""
    choice = generation.choose_model(config)
    print(choice.describe())
    generator = generation.load_generator(choice.folder, config)
    if engine == "compiled":
        compiled = fastgen.CompiledGenerator(generator.model, generator.tokenizer)
        start = time.perf_counter()
        shapes = compiled.warm_up(WARM_LENGTHS)
        print(f"Décodage compilé : {shapes} formes en {time.perf_counter() - start:.0f} s "
              "(une requête plus longue compile la sienne une fois)")
    service = GenerationService(compiled if engine == "compiled" else generation.PipelineEngine(generator), timeout)
    models = Models({"gpt2": Served(service, ModelInfo(choice.name, choice.finetuned, standin=choice.standin))},
                    report=config.finetuned_dir)
    if minigpt.exists(config):  # step 6's model, offered as a second choice
        mini = GenerationService(minigpt.MiniGPTEngine(config.mini_gpt_dir), timeout=timeout)
        models.served["mini-gpt"] = Served(mini, ModelInfo(str(config.mini_gpt_dir), False, from_scratch=True))
        print(f"Le modèle construit de zéro à l'étape 6 est aussi servi : {config.mini_gpt_dir}")
    return models


def serve(app: Flask, listener: socket.socket, flags: argparse.Namespace) -> None:
    """waitress, a production WSGI server (never Flask's debug server, which runs code sent by a browser), on the
    port `reserve_port` took."""
    from waitress import serve as waitress_serve

    print(f"Page prête : http://{'127.0.0.1' if flags.host == '0.0.0.0' else flags.host}:{flags.port}/generate "
          "(Ctrl-C pour arrêter)")
    waitress_serve(app, sockets=[listener], threads=flags.threads)

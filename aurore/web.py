"""The web page and JSON API of step 5. It only generates: it never imports training code.

Routes: GET / (home), GET /generate (form), POST /generate (form + texts), POST /api/generate (JSON),
GET /healthz. The model is loaded once, before the app is created, and shared through a GenerationService.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, jsonify, render_template, request

from aurore.generation import Sampling
from aurore.serving import GenerationService, ServiceBusy

MAX_PROMPT_CHARS = 500
MAX_REQUEST_BYTES = 16 * 1024

# name: (type, minimum, maximum, default, label in French)
FIELDS = {
    "max_new_tokens": (int, 1, 200, 60, "nombre de jetons à générer"),
    "temperature": (float, 0.05, 2.0, 0.9, "température"),
    "top_k": (int, 0, 1000, 50, "top-k"),
    "top_p": (float, 0.05, 1.0, 0.95, "top-p"),
    "num_texts": (int, 1, 4, 2, "nombre de textes"),
    "seed": (int, 0, 2**31 - 1, 42, "graine"),
}


class BadInput(ValueError):
    """A request value that cannot be used; the message is shown to the user (in French)."""


@dataclass
class ModelInfo:
    name: str
    finetuned: bool
    from_scratch: bool = False

    @property
    def label(self) -> str:
        if self.from_scratch:
            kind = "mini-GPT construit de zéro (étape 6)"
        elif self.finetuned:
            kind = "GPT-2 affiné sur George Sand"
        else:
            kind = "modèle de base, non affiné (lancez l'étape 3)"
        return f"{kind} — {self.name}"


def parse_request(values, engine) -> tuple[str, Sampling]:
    """Validate a form or JSON body; raise BadInput with a message for the user."""
    prompt = str(values.get("prompt", "")).strip()
    if not prompt:
        raise BadInput("Le texte de départ est vide : écrivez le début d'une phrase.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise BadInput(f"Le texte de départ est trop long ({len(prompt)} caractères, {MAX_PROMPT_CHARS} au plus).")
    settings = {}
    for name, (kind, low, high, default, label) in FIELDS.items():
        raw = values.get(name, default)
        raw = default if raw in ("", None) else raw
        try:
            if isinstance(raw, bool) or (kind is int and isinstance(raw, float)):
                raise ValueError
            value = kind(raw)
        except (TypeError, ValueError):
            raise BadInput(f"« {label} » doit être un nombre{' entier' if kind is int else ''} : reçu {raw!r}.") from None
        if not low <= value <= high:
            raise BadInput(f"« {label} » doit être entre {low} et {high} : reçu {value}.")
        settings[name] = value
    tokens = engine.count_tokens(prompt)
    if tokens + settings["max_new_tokens"] > engine.context_size:
        raise BadInput(f"Le texte de départ ({tokens} jetons) plus les jetons à générer dépassent la mémoire du modèle "
                       f"({engine.context_size} jetons) : raccourcissez-le.")
    return prompt, Sampling(max_new_tokens=settings["max_new_tokens"], temperature=settings["temperature"],
                            top_k=settings["top_k"], top_p=settings["top_p"], do_sample=True,
                            num_return_sequences=settings["num_texts"], seed=settings["seed"])


def create_app(service: GenerationService, model: ModelInfo,
               alternatives: dict[str, tuple[GenerationService, ModelInfo]] | None = None) -> Flask:
    """The app for one model, plus optional others the form offers (e.g. {"mini-gpt": (service, info)})."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.json.ensure_ascii = False
    models = {"gpt2": (service, model), **(alternatives or {})}
    defaults = {name: spec[3] for name, spec in FIELDS.items()}

    def chosen(values) -> tuple[GenerationService, ModelInfo]:
        key = str(values.get("model") or "gpt2")
        if key not in models:
            raise BadInput(f"Modèle inconnu « {key} » : choisissez parmi {', '.join(models)}.")
        return models[key]

    def page(status: int = 200, **context):
        form = {**defaults, "prompt": "", "model": "gpt2", **context.pop("form", {})}
        current = models.get(form["model"], models["gpt2"])[1]
        return render_template("generate.html", model=current, models=models, form=form, limits=FIELDS,
                               max_prompt=MAX_PROMPT_CHARS, **context), status

    @app.get("/")
    def home():
        return render_template("home.html", model=model)

    @app.get("/generate")
    def form():
        return page()

    @app.post("/generate")
    def generate_page():
        values = request.form.to_dict()
        try:
            worker, _ = chosen(values)
            prompt, sampling = parse_request(values, worker.engine)
            texts = worker.generate(prompt, sampling)
        except BadInput as error:
            return page(400, form=values, error=str(error))
        except ServiceBusy:
            return page(503, form=values, error="Le serveur est très occupé : réessayez dans un moment.")
        return page(form=values, prompt=prompt, texts=texts)

    @app.post("/api/generate")
    def generate_api():
        values = request.get_json(silent=True)
        if not isinstance(values, dict):
            return jsonify(error="Envoyez un objet JSON, par exemple {\"prompt\": \"Le soir\"}."), 400
        try:
            worker, info = chosen(values)
            prompt, sampling = parse_request(values, worker.engine)
            texts = worker.generate(prompt, sampling)
        except BadInput as error:
            return jsonify(error=str(error)), 400
        except ServiceBusy:
            return jsonify(error="Le serveur est très occupé : réessayez dans un moment."), 503
        return jsonify(prompt=prompt, texts=texts, model=info.name, finetuned=info.finetuned)

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok", model=model.name, finetuned=model.finetuned, engine=service.engine.name,
                       queued=service.queued, models=sorted(models))

    @app.errorhandler(413)
    def too_large(_error):
        message = f"Requête trop grande ({MAX_REQUEST_BYTES // 1024} Ko au plus)."
        if request.path.startswith("/api/"):
            return jsonify(error=message), 413
        return page(413, error=message)

    return app

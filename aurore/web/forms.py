"""What the web app accepts and answers: the form's fields and their limits, the served models, the validation
of a form or JSON body (`validate`: French messages for people), and `Served.generate`, which asks the chosen model.

Flask-free: the routes (the participant's in `aurore/5_flask*.py`, the package's in `aurore/web/pages.py`) call it.
"""

from __future__ import annotations

import json
import random
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from aurore.config import Config
from aurore.engines import generation
from aurore.engines.generation import ModelInfo
from aurore.text.french import format_number
from aurore.web.serving import GenerationService, ServiceBusy

MAX_PROMPT_CHARS = 500


@dataclass(frozen=True)
class Field:
    """A number the form and the API accept: its type, bounds, default (from config) and French label."""

    kind: type
    low: float
    high: float
    default: object
    label: str
    placeholder: str = ""  # what an empty field means, on the form


def form_fields(config: Config, seed_chosen: bool = False) -> dict[str, Field]:
    """The fields of the form and the JSON API, their defaults from the server's own settings (step 5's flags and
    `AURORE_*` variables). The seed stays "au hasard" (a new text per click) unless one was chosen."""
    return {
        "max_new_tokens": Field(int, 1, max(200, config.max_new_tokens), config.max_new_tokens,
                                "nombre de jetons à générer"),
        "temperature": Field(float, 0.05, max(2.0, config.temperature), config.temperature, "température"),
        "top_k": Field(int, 0, max(1000, config.top_k), config.top_k, "top-k"),
        "top_p": Field(float, 0.05, 1.0, config.top_p, "top-p"),
        "num_texts": Field(int, 1, 4, 2, "nombre de textes"),
        "seed": Field(int, 0, 2**31 - 1, config.seed if seed_chosen else None, "graine", "au hasard"),
    }


FIELDS = form_fields(Config())  # a server's own come from its settings (Models.fields)


class RequestError(Exception):
    """A request that cannot be answered: an HTTP status and a message for people (in French)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


BUSY = RequestError(503, "Le serveur est très occupé : réessayez dans un moment.")


@dataclass(frozen=True)
class Served:
    """A model the page offers: its generation service and what the page says about it."""

    service: GenerationService
    info: ModelInfo

    def generate(self, prompt: str, sampling: generation.Sampling) -> list[str]:
        """The model's texts for one request (its worker batches it with the others); RequestError(503) when busy."""
        try:
            texts = self.service.generate(prompt, sampling)
        except ServiceBusy:
            raise BUSY from None
        return [readable(text) for text in texts]


@dataclass
class Models:
    """The models the page offers, by key; "gpt2" (step 3's model, else the base model) comes first."""

    served: dict[str, Served] = field(default_factory=dict)
    fields: dict[str, Field] = field(default_factory=lambda: dict(FIELDS))  # the form's defaults and limits
    report: Path | None = None  # step 3's final folder, for "Mon modèle" (read at each visit: no restart needed)

    @property
    def main(self) -> Served:
        return self.served["gpt2"]


def readable(text: str) -> str:
    """Drop what a token cut in the middle of a character leaves (U+FFFD) and control characters, but line breaks."""
    return "".join(c for c in text if c in "\n\t" or (c != "\ufffd" and unicodedata.category(c) != "Cc"))


@dataclass(frozen=True)
class Request:
    """A valid request: the model asked, the prompt and the settings."""

    key: str
    model: Served
    prompt: str
    sampling: generation.Sampling


def validate(values: object, models: Models) -> Request:
    """Validate a form or JSON body: RequestError(400) with a French message when it cannot be answered."""
    if not isinstance(values, dict):
        raise RequestError(400, "Envoyez un objet JSON, par exemple {\"prompt\": \"Le soir\"}.")
    try:  # JSON may carry half a UTF-16 pair ("\ud800"), which no page, tokenizer or answer can encode
        json.dumps(values, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(400, "La requête contient un caractère invalide (une moitié de paire UTF-16, comme "
                                "\\ud800, seule) : envoyez du texte Unicode valide.") from None
    key = values.get("model") or "gpt2"
    if not isinstance(key, str) or key not in models.served:
        why = (" (le modèle de base n'est servi qu'à côté d'un modèle affiné, et pas avec --no-base)"
               if key == "base" else "")
        raise RequestError(400, f"Modèle inconnu « {key} »{why} : choisissez parmi {', '.join(models.served)}.")
    prompt, sampling = parse_request(values, models.served[key].service.engine, models.fields)
    return Request(key, models.served[key], prompt, sampling)


def parse_request(values: dict, engine: generation.Engine,
                  fields: dict[str, Field] = FIELDS) -> tuple[str, generation.Sampling]:
    """The prompt and sampling settings of a request; RequestError(400) with a French message when unusable."""
    prompt = values.get("prompt")
    if not isinstance(prompt, str):
        raise RequestError(400, "« prompt » doit être un texte : le début d'une phrase, entre guillemets.")
    prompt = prompt.strip()
    if not prompt:
        raise RequestError(400, "Le texte de départ est vide : écrivez le début d'une phrase.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise RequestError(400, f"Le texte de départ est trop long ({len(prompt)} caractères, {MAX_PROMPT_CHARS} au plus).")
    settings = {name: _number(values.get(name), spec) for name, spec in fields.items()}
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
        shown = f"« {raw} »" if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, default=str)
        raise RequestError(400, f"« {spec.label} » doit être un nombre{' entier' if spec.kind is int else ''} : "
                                f"reçu {shown}.") from None  # as the participant wrote it: true, « beaucoup »
    if not spec.low <= value <= spec.high:
        sent = raw if isinstance(raw, str) else json.dumps(raw)
        raise RequestError(400, f"« {spec.label} » doit être entre {format_number(spec.low)} et "
                                f"{format_number(spec.high)} : "
                                f"reçu {sent.replace('.', ',')}.")
    return value


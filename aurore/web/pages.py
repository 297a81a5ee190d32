"""The package's own views around the participant's two routes: what fine-tuning changed.

- `/api/generate/stream`: the texts as they are written (Server-Sent Events), for the pages' JavaScript and for
  programs; closing the connection stops the generation.
- `/comparer`: one prompt, one seed, the same settings through every served model, side by side.
- `/pourquoi` and `/api/next-tokens`: the next-token distribution, before and after temperature, top-k, top-p.
- `/mon-modele`: what step 3 measured (perplexity before and after, loss curve, settings, model card).

Every page works without JavaScript (a plain form post); `static/aurore.js` streams and redraws when it can.
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response, jsonify, render_template, request, send_file, stream_with_context

from aurore.engines import generation
from aurore.web import explain, forms
from aurore.web.serving import ServiceBusy

CHARS_PER_TOKEN = 4  # a French GPT-2 token is about 4 characters: the character mini-GPT writes that many per token


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
class Column:
    """One model's answer on the compare page."""

    key: str
    info: generation.ModelInfo
    text: str = ""
    error: str = ""


def for_model(request: forms.Request) -> forms.Request:
    """A character model gets CHARS_PER_TOKEN characters per token asked, so that columns compare."""
    engine = request.model.service.engine
    if getattr(getattr(engine, "vocabulary", None), "kind", "") != "char":
        return request
    longer = dataclasses.replace(request.sampling, max_new_tokens=request.sampling.max_new_tokens * CHARS_PER_TOKEN)
    return dataclasses.replace(request, sampling=longer)


def compare(values: dict, models: forms.Models) -> tuple[forms.Request, list[Column]]:
    """The same prompt, seed and settings through every served model, all at once (one worker per model)."""
    seed = values.get("seed")
    if seed in ("", None):  # one seed for every column: the server's, else a new one per click
        seed = models.fields["seed"].default if models.fields["seed"].default is not None else random.randrange(2**31)
    asked = [for_model(forms.validate({**values, "model": key, "num_texts": 1, "seed": seed}, models))
             for key in models.served]
    jobs = [(one, one.model.service.submit(one.prompt, one.sampling)) for one in asked]
    columns = []
    for one, job in jobs:
        try:
            columns.append(Column(one.key, one.model.info, forms.readable(one.model.service.result(job)[0])))
        except ServiceBusy:
            columns.append(Column(one.key, one.model.info, error=forms.BUSY.message))
    return asked[0], columns


def next_tokens(values: object, models: forms.Models, cache: explain.NextTokens) -> dict:
    """The JSON of /api/next-tokens (and the context of /pourquoi): the likeliest next tokens, before and after."""
    asked = forms.validate(values, models)  # the same checks as generation: prompt, model, limits
    temperature, top_k, top_p = asked.sampling.temperature, asked.sampling.top_k, asked.sampling.top_p
    service = asked.model.service
    if not service.ready.wait(service.timeout):  # the model is still compiling (the first seconds after start-up)
        raise forms.BUSY
    logits = cache.logits(asked.key, service.engine, asked.prompt)
    tokens = explain.likeliest(asked.model.service.engine, logits, temperature, top_k, top_p)
    return {"prompt": asked.prompt, "model": asked.key, "temperature": temperature, "top_k": top_k, "top_p": top_p,
            "tokens": [dataclasses.asdict(token) for token in tokens]}


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def stream_events(asked: forms.Request):
    """Server-Sent Events: `texts` at each chunk, then `done` (the /api/generate answer) or `error`. When the client
    goes away, the server's next write fails, this generator is closed, and the service cancels the request."""
    texts: list[str] = []
    try:
        for texts in asked.model.service.stream(asked.prompt, asked.sampling):
            yield _event("texts", {"texts": [forms.readable(text) for text in texts]})
    except ServiceBusy:
        yield _event("error", {"error": forms.BUSY.message})
        return
    yield _event("done", {"prompt": asked.prompt, "texts": [forms.readable(text) for text in texts],
                          "seed": asked.sampling.seed, "model": asked.model.info.name,
                          "finetuned": asked.model.info.finetuned})


def add_routes(app: Flask, models: forms.Models, context) -> None:
    """Register the views above; `context` builds a page's template context (web.page_context)."""
    _add_writing_routes(app, models, context)
    _add_understanding_routes(app, models, context)


def _add_writing_routes(app: Flask, models: forms.Models, context) -> None:
    """Streaming and Comparer."""

    @app.post("/api/generate/stream")
    def generate_stream():
        values = request.get_json(silent=True)
        try:
            asked = forms.validate(values, models)
        except forms.RequestError as error:
            return jsonify(error=error.message), error.status
        if values.get("compare"):  # a column of the compare page: as long as the others
            asked = for_model(asked)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy may hold the events back
        return Response(stream_with_context(stream_events(asked)), mimetype="text/event-stream", headers=headers)

    @app.route("/comparer", methods=["GET", "POST"])
    def compare_page():
        values = request.form.to_dict()
        if request.method == "GET":
            return render_template("compare.html", **context(models))
        try:
            asked, columns = compare(values, models)
        except forms.RequestError as error:
            return render_template("compare.html", **context(models, form=values, error=error.message)), error.status
        return render_template("compare.html", **context(models, form={**values, "seed": asked.sampling.seed},
                                                         columns=columns, prompt=asked.prompt))



def _add_understanding_routes(app: Flask, models: forms.Models, context) -> None:
    """Pourquoi ce mot ? and Mon modèle."""
    cache = explain.NextTokens()

    @app.post("/api/next-tokens")
    def next_tokens_api():
        try:
            return jsonify(next_tokens(request.get_json(silent=True), models, cache))
        except forms.RequestError as error:
            return jsonify(error=error.message), error.status

    @app.route("/pourquoi", methods=["GET", "POST"])
    def why_page():
        values = request.form.to_dict()
        if request.method == "GET":
            return render_template("why.html", **context(models))
        if "append" in values:  # a token of the chart was clicked (without JavaScript): continue the prompt with it
            values["prompt"] = values.get("prompt", "") + values.pop("append")
        try:
            chart = next_tokens(values, models, cache)
        except forms.RequestError as error:
            return render_template("why.html", **context(models, form=values, error=error.message)), error.status
        return render_template("why.html", **context(models, form=values, chart=chart))

    @app.get("/mon-modele")
    def report():
        return render_template("report.html", model=models.main.info, report=read_report(models.report))

    @app.get("/mon-modele/loss.png")
    def loss_curve():
        found = read_report(models.report)
        if found is None or not found.has_curve:
            return jsonify(error="Pas encore de courbe : lancez l'étape 3."), 404
        return send_file(Path(models.report) / "loss.png", mimetype="image/png")

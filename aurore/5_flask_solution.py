"""Step 5: serve the model on a web page (a form at /generate) and a JSON API (/api/generate), with Flask.

Run: python aurore/5_flask_solution.py     then open http://127.0.0.1:8080/generate

A Flask app maps URLs to Python functions ("routes"); a route reads the request and returns a page or JSON. The
model is loaded once, before the server starts: the fine-tuned model of step 3 if it exists, else the base model
(the page says which). The package does the rest: waitress (a production server, never Flask's debug server),
one worker that batches simultaneous requests, XLA-compiled decoding warmed up at start-up.
"""

from __future__ import annotations

import aurore  # noqa: F401  first: sets TF_USE_LEGACY_KERAS=1 before TensorFlow is imported

from flask import Flask, jsonify, render_template, request

from aurore import web
from aurore.config import parse_args
from aurore.errors import friendly_errors


def create_app(models: web.Models) -> Flask:
    """The Flask app: the form at /generate and the JSON API at /api/generate (plus the package's home page)."""
    app = Flask(__name__, template_folder=web.TEMPLATES, static_folder=web.STATIC)
    web.setup(app, models)  # home page, /healthz, size limit, error pages

    @app.route("/generate", methods=["GET", "POST"])
    def generate_page():
        # BEGIN SOLUTION 5.1: une requête GET affiche le formulaire vide ; une requête POST lit les champs du
        #   formulaire (l'objet request de Flask, sous forme de dict), demande les textes au modèle avec
        #   web.answer(champs, models) (il renvoie une réponse : .prompt, .texts, .seed, .model), et affiche la page
        #   avec les textes. Les deux fois, rendez le gabarit "generate.html" avec le contexte
        #   web.page_context(models, form=champs, result=réponse) ; si web.answer lève web.RequestError, affichez la
        #   page avec error=son .message, et renvoyez aussi son code HTTP (.status).
        #   Doc : https://flask.palletsprojects.com/en/stable/quickstart/#the-request-object
        if request.method == "GET":
            return render_template("generate.html", **web.page_context(models))
        values = request.form.to_dict()
        try:
            result = web.answer(values, models)
        except web.RequestError as error:
            return render_template("generate.html", **web.page_context(models, form=values, error=error.message)), \
                error.status
        return render_template("generate.html", **web.page_context(models, form=values, result=result))
        # END SOLUTION

    @app.post("/api/generate")
    def generate_api():
        # BEGIN SOLUTION 5.2: la même chose pour les programmes : lisez le corps JSON de la requête (silent=True :
        #   None s'il n'est pas du JSON valide), passez-le à web.answer, et renvoyez en JSON les clés "prompt",
        #   "texts", "seed", "model" (le nom : .model.name) et "finetuned" (.model.finetuned) de la réponse. En cas
        #   de web.RequestError, renvoyez {"error": son .message} avec son code HTTP (.status).
        #   Doc : https://flask.palletsprojects.com/en/stable/quickstart/#apis-with-json
        try:
            result = web.answer(request.get_json(silent=True), models)
        except web.RequestError as error:
            return jsonify(error=error.message), error.status
        return jsonify(prompt=result.prompt, texts=result.texts, seed=result.seed, model=result.model.name,
                       finetuned=result.model.finetuned)
        # END SOLUTION

    return app


@friendly_errors
def main(argv: list[str] | None = None) -> None:
    config, flags = parse_args(__doc__, argv, step=5, extra=web.add_server_flags)
    listener = web.reserve_port(flags.host, flags.port)  # before the long load: a second server fails at once
    models = web.load_models(config, flags)
    web.serve(create_app(models), listener, flags, models, script=__file__)  # an edit of this file: served at once


if __name__ == "__main__":
    main()

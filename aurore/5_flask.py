# Fichier d'exercice : complétez chaque bloc « Exercice » (la réponse est dans 5_flask_solution.py).
# Fichier produit par `python -m aurore exercises` ; ne modifiez pas la ligne suivante.
# exercise-hash: 30dcda524adbe56d
"""Étape 5 : servir le modèle sur une page web (un formulaire à /generate) et une API JSON (/api/generate), avec Flask.

Lancer : python aurore/5_flask.py     puis ouvrir http://127.0.0.1:8080/generate

Une application Flask associe des adresses (URL) à des fonctions Python, les « routes » : une route lit la requête et
renvoie une page ou du JSON. Chacune des nôtres fait trois choses : vérifier ce qui est demandé, demander les textes
au modèle, rendre la réponse. Le modèle est chargé une seule fois, avant le démarrage du serveur : le modèle affiné de
l'étape 3 s'il existe, sinon le modèle de base (la page dit lequel). Le paquet fait le reste : waitress (un serveur de
production, jamais le serveur de débogage de Flask), un seul travailleur qui regroupe les requêtes simultanées, un
décodage compilé par XLA et préparé au démarrage. Une modification de ce fichier est servie dès la requête suivante,
sans redémarrer.
"""

from __future__ import annotations

import aurore  # noqa: F401  en premier : TF_USE_LEGACY_KERAS=1 avant d'importer TensorFlow

from flask import Flask, jsonify, render_template, request

from aurore.workshop.exercises import todo
from aurore import web
from aurore.config import parse_args
from aurore.errors import friendly_errors


def create_app(models: web.Models) -> Flask:
    """L'application Flask : le formulaire à /generate et l'API JSON à /api/generate (plus la page d'accueil du
    paquet)."""
    app = Flask(__name__, template_folder=web.TEMPLATES, static_folder=web.STATIC)
    web.setup(app, models)  # page d'accueil, /healthz, taille maximale, pages d'erreur

    @app.route("/generate", methods=["GET", "POST"])
    def generate_page():
        # Exercice 5.1 : avec Flask : une requête GET (request.method) affiche le formulaire vide : rendez le
        #   gabarit "generate.html" (render_template) avec le contexte **web.page_context(models). Une requête POST
        #   lit les champs du formulaire (request.form, en dict), les vérifie avec web.validate(champs, models) (il
        #   renvoie la demande : .prompt, .sampling, .model), demande les textes au modèle choisi
        #   (demande.model.generate(demande.prompt, demande.sampling)) et rend le même gabarit avec
        #   web.page_context(models, form=champs, asked=demande, texts=textes). Si la vérification ou le modèle lèvent
        #   web.RequestError, rendez la page avec error=son .message, et renvoyez aussi son code HTTP (.status).
        #   Doc : https://flask.palletsprojects.com/en/stable/quickstart/#the-request-object
        todo("5.1")

    @app.post("/api/generate")
    def generate_api():
        # Exercice 5.2 : la même chose pour les programmes, avec Flask : lisez le corps JSON de la requête
        #   (request.get_json, silent=True : None s'il n'est pas du JSON valide), vérifiez-le avec web.validate,
        #   demandez les textes au modèle choisi comme en 5.1, et renvoyez avec jsonify les clés "prompt", "texts",
        #   "seed" (celle de .sampling), "model" (.model.info.name) et "finetuned" (.model.info.finetuned). En cas de
        #   web.RequestError, renvoyez jsonify(error=son .message) avec son code HTTP (.status).
        #   Doc : https://flask.palletsprojects.com/en/stable/quickstart/#apis-with-json
        todo("5.2")

    return app


@friendly_errors
def main(argv: list[str] | None = None) -> None:
    config, flags = parse_args(__doc__, argv, step=5, extra=web.add_server_flags)
    listener = web.reserve_port(flags.host, flags.port)  # avant le long chargement : un 2e serveur échoue aussitôt
    models = web.load_models(config, flags)
    web.serve(create_app(models), listener, flags, models, script=__file__)  # une modification : servie aussitôt


if __name__ == "__main__":
    main()

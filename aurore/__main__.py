"""`python -m aurore <command>`: the workshop's helper commands (the steps themselves are the numbered scripts)."""

from __future__ import annotations

import argparse
import subprocess
import sys

from aurore import bootstrap

if __name__ == "__main__" and sys.argv[1:2] and sys.argv[1] in bootstrap.BOOTSTRAP_COMMANDS:
    sys.exit(bootstrap.main(sys.argv[1:]))  # before anything that needs more than the Python a laptop came with
if __name__ == "__main__" and bootstrap.workshop_python() is not None:  # .venv exists but is not activated
    sys.exit(subprocess.run([str(bootstrap.workshop_python()), "-m", "aurore", *sys.argv[1:]]).returncode)

from aurore import config as settings  # noqa: E402
from aurore.errors import friendly_errors  # noqa: E402


def _config(args: argparse.Namespace) -> int:
    print("Réglages en vigueur (option, variable d'environnement, ou valeur par défaut) :")
    print(settings.describe(settings.from_namespace(args)))
    return 0


def _build_standin(args: argparse.Namespace) -> int:
    from aurore.hub.standin import build_standin

    given = {"n_layer": args.layers, "n_embd": args.width, "vocab_size": args.vocab}
    build_standin(settings.from_namespace(args), **{k: v for k, v in given.items() if v is not None})
    return 0


def _download_model(args: argparse.Namespace) -> int:
    """Fill the caches before the workshop: hub files, and the TensorFlow conversion."""
    from aurore import hub
    from aurore.text.french import format_count

    config = settings.from_namespace(args)
    hub.load_tokenizer(config.base_model)
    model = hub.load_causal_lm(config.base_model, config)
    print(f"{config.base_model} : {format_count(model.num_parameters())} paramètres, gardé en cache pour travailler "
          "hors ligne.")
    return 0


def _perplexity(args: argparse.Namespace) -> int:
    from aurore.engines.generation import choose_model
    from aurore.text.french import format_decimal
    from aurore.training.evaluation import evaluate_perplexity

    config = settings.from_namespace(args)
    name = args.model or choose_model(config).folder
    print(f"Perplexité de {name} sur La Mare au diable : {format_decimal(evaluate_perplexity(name, config), 2)}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from aurore.workshop.check import run_checks

    return run_checks(args.step, solution=args.solution)


def _exercises(args: argparse.Namespace) -> int:
    from aurore.workshop.exercises import write_exercises

    stale = write_exercises(check_only=args.check)
    return 1 if (args.check and stale) else 0


def _doctor(args: argparse.Namespace) -> int:
    from aurore.workshop.doctor import report, run_checks

    return report(run_checks(settings.from_namespace(args), port=args.port), as_json=args.json)


def _kit(args: argparse.Namespace) -> int:
    from aurore.workshop.kit import build_kit

    return build_kit(args.folder, settings.from_namespace(args), targets=args.platform,
                     python_version=args.python_version, with_pythons=args.with_pythons)


COMMANDS = {
    "setup": (None, "installe l'environnement de l'atelier (.venv, avec uv), puis lance doctor"),
    "doctor": (_doctor, "vérifie que cette machine est prête pour chaque étape (✔/✘ et que faire)"),
    "config": (_config, "affiche chaque réglage et sa valeur"),
    "build-standin": (_build_standin, "construit le petit modèle de secours, hors ligne (après l'étape 1)"),
    "download-model": (_download_model, "télécharge et convertit le modèle de base une fois, pour travailler hors "
                                        "ligne"),
    "perplexity": (_perplexity, "perplexité sur La Mare au diable d'un dossier de modèle ou d'un identifiant du Hub "
                                "(par défaut : celui de l'étape 3)"),
    "check": (_check, "vérifie votre fichier d'exercice d'une étape : python -m aurore check 1"),
    "exercises": (_exercises, "régénère les fichiers d'exercice à partir des *_solution.py"),
    "kit": (_kit, "prépare la clé USB des organisateurs : paquets de chaque plateforme, uv, livres, modèle"),
    "demo": (None, "lance la solution de chaque étape, puis sert la page (installe .venv au besoin)"),
    "test": (None, "lance ruff puis les tests (installe .venv et les outils de test au besoin)"),
}


# The settings each command reads, by the steps that share them (None: all).
COMMAND_STEPS = {"config": None, "doctor": (1, 2), "kit": (1, 2), "build-standin": (1,), "download-model": (2,),
                 "perplexity": (2, 3)}


@friendly_errors
def main(argv: list[str] | None = None) -> int:
    parser = settings.FrenchArgumentParser(prog="python -m aurore",
                                           description="Les commandes d'aide de l'atelier (les étapes sont les scripts "
                                                       "numérotés d'aurore/).")
    commands = parser.add_subparsers(dest="command", metavar="COMMANDE", required=True)
    for name, (function, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(function=function)
        if name == "build-standin":
            from aurore.hub.standin import SHAPE

            sub.add_argument("--layers", type=int, help=f"blocs transformer (par défaut : {SHAPE['n_layer']})")
            sub.add_argument("--width", type=int, help=f"largeur des plongements (par défaut : {SHAPE['n_embd']})")
            sub.add_argument("--vocab", type=int,
                             help=f"taille du vocabulaire BPE (par défaut : {SHAPE['vocab_size']})")
        if name == "check":
            sub.add_argument("step", type=int, metavar="ÉTAPE", help="le numéro de l'étape")
            sub.add_argument("--solution", action="store_true", help="vérifier plutôt le fichier solution")
        if name == "exercises":
            sub.add_argument("--check", action="store_true",
                             help="signaler seulement les fichiers d'exercice pas à jour")
        if name == "perplexity":
            sub.add_argument("model", nargs="?", help="dossier du modèle ou identifiant du Hub (par défaut : le "
                                                       "modèle affiné, sinon celui de base)")
        if name == "doctor":
            sub.add_argument("--port", type=int, default=8080, help="port de l'étape 5 (par défaut : 8080)")
            sub.add_argument("--json", action="store_true", help="résultat en JSON (pour un script)")
        if name == "kit":
            from aurore.workshop.kit import add_kit_arguments

            add_kit_arguments(sub)
        if name in COMMAND_STEPS:
            settings.add_arguments(sub, COMMAND_STEPS[name])
    args = parser.parse_args(argv)
    return args.function(args)


if __name__ == "__main__":
    sys.exit(main())

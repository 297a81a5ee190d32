"""`python -m aurore check N`: grade a participant's exercise file for step N, in seconds, offline.

Each exercise is run on a small input whose answer is known (aurore/workshop/checks.py); one line per exercise (✔, or ✘
with a hint in French); the exit status is non-zero when any exercise fails.
"""

from __future__ import annotations

import tempfile
import traceback
from pathlib import Path

import aurore  # noqa: F401  sets TF_USE_LEGACY_KERAS before TensorFlow loads
from aurore.errors import AuroreError
from aurore.workshop.checks import CHECKS
from aurore.workshop.checks_base import Check, CheckFailed
from aurore.workshop.exercises import ExerciseNotDone, keras_registry_kept, load_script, script_for


def grade(path: Path, step: int) -> dict[str, bool]:
    """Run every check of `step` against the script at `path`; print one line each; return {number: passed}."""
    if step not in CHECKS:
        raise AuroreError(f"L'étape {step} n'a pas d'exercices à vérifier.", f"Étapes vérifiables : {sorted(CHECKS)}.")
    with keras_registry_kept():
        try:
            module = load_script(path)
        except Exception as error:  # a syntax error in the participant's file must still give a clear answer
            print(f"✘ {path.name} ne se charge pas : {type(error).__name__}: {error}")
            if isinstance(error, ModuleNotFoundError) and (error.name or "").split(".")[0] in aurore.WORKSHOP_PACKAGES:
                print("  -> l'environnement de l'atelier n'est pas activé : `source .venv/bin/activate` (Windows : "
                      "`.venv\\Scripts\\activate`), puis relancez.")
            return {check.number: False for check in CHECKS[step]}
        return {check.number: _grade_one(module, check) for check in CHECKS[step]}


def _grade_one(module, check: Check) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            check.run(module, Path(tmp))
        except ExerciseNotDone:  # no hint yet: the consigne is the hint until the participant has tried
            print(f"✘ Exercice {check.number} : pas encore fait — écrivez votre code à la place de la ligne "
                  f"todo(\"{check.number}\") (et supprimez-la)")
        except CheckFailed as error:
            print(f"✘ Exercice {check.number} : {error} (piste : {check.hint})")
        except Exception as error:
            where = traceback.extract_tb(error.__traceback__)[-1]
            print(f"✘ Exercice {check.number} : {type(error).__name__}: {error} "
                  f"(ligne {where.lineno} de {Path(where.filename).name} ; piste : {check.hint})")
        else:
            print(f"✔ Exercice {check.number}")
            return True
    return False


def run_checks(step: int, solution: bool = False) -> int:
    path = script_for(step, solution)
    print(f"Vérification de {path.name}")
    results = grade(path, step)
    done = sum(results.values())
    print(f"{done}/{len(results)} exercices réussis." + (" Bravo !" if done == len(results) else ""))
    return 0 if done == len(results) else 1

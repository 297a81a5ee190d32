"""Errors meant for people: what went wrong, and the command that fixes it (in French: participants read them)."""

from __future__ import annotations

import functools
import inspect
import os
import re
import sys
from pathlib import Path
from typing import Callable

# The script of each step, used in messages that send the participant back to a step: their own exercise file
# first, the solution as the fallback.
STEP_SCRIPTS = {1: "1_prepare_dataset", 2: "2_tokenize", 3: "3_train", 4: "4_generate", 5: "5_flask", 6: "6_mini_gpt"}
STANDIN_COMMAND = "python -m aurore build-standin"
_EXERCISE = re.compile(r"\d+\.\d+")  # an exercise number: "3.9"


def set_variable(name: str, value: object) -> str:
    """The command that sets a variable for this terminal, as this system's shell writes it."""
    if os.name == "nt":
        return f'$env:{name}="{value}"  (PowerShell)'
    return f"export {name}={value}"


def step_command(step: int) -> str:
    """`python aurore/2_tokenize.py` (ou la solution : `python aurore/2_tokenize_solution.py`)."""
    script = STEP_SCRIPTS[step]
    return f"`python aurore/{script}.py` (ou la solution : `python aurore/{script}_solution.py`)"


class AuroreError(RuntimeError):
    """A failure the user can fix. `fix` says how, ideally with the exact command."""

    def __init__(self, what: str, fix: str | None = None):
        self.what = what
        self.fix = fix
        super().__init__(what if fix is None else f"{what}\n  -> {fix}")


class MissingStepOutput(AuroreError):
    """A step's input is missing because an earlier step has not run (or wrote elsewhere)."""

    def __init__(self, thing: str, path: object, step: int):
        super().__init__(
            f"Introuvable : {thing}, attendu dans {path}.",
            f"C'est l'étape {step} qui le produit : lancez d'abord {step_command(step)}, avec le même AURORE_WORKDIR "
            "si vous en avez choisi un.",
        )


def require_output(config, step: int) -> Path:
    """The folder step `step` writes, or MissingStepOutput when it has not run: the one "did step N run?" test."""
    folder, marker, thing = {
        1: (config.dataset_dir, "dataset_dict.json", "le jeu de phrases de l'étape 1"),
        2: (config.tokenized_dir, "dataset_dict.json", "les blocs de jetons de l'étape 2"),
        3: (config.finetuned_dir, "tf_model.h5", "le modèle affiné de l'étape 3"),
    }[step]
    if not (Path(folder) / marker).is_file():
        raise MissingStepOutput(thing, folder, step)
    return Path(folder)


def todo_message(number: str, file: str, function: str) -> tuple[str, str]:
    """What an exercise still to write says (what, fix): `todo()` when reached, a script's start when it sees one."""
    return (f"Exercice {number} à compléter ({Path(file).name}, fonction {function}()).",
            f"Lisez la consigne au-dessus de todo(\"{number}\"), écrivez votre code à la place de cette ligne "
            f"(supprimez-la), puis vérifiez-le avec `python -m aurore check {number.split('.')[0]}`.")


def unfinished_exercises(namespace: dict) -> list[tuple[str, str]]:
    """(number, function) of each `todo("N")` placeholder left in a script's own functions and methods, in file
    order; read from the code, not run. Left out: a function whose docstring starts with "Bonus" (optional: its flag
    may never be given), and functions nested in others, such as step 5's Flask routes (a request reaching one gets
    the French error page, and the running server reloads the participant's fix)."""
    found: list[tuple[int, str, str]] = []
    for value in list(namespace.values()):
        members = vars(value).values() if inspect.isclass(value) else [value]
        for function in members:
            if (not inspect.isfunction(function) or function.__module__ != namespace.get("__name__")
                    or (function.__doc__ or "").startswith("Bonus") or "todo" not in function.__code__.co_names):
                continue
            code = function.__code__
            number = next((c for c in code.co_consts if isinstance(c, str) and _EXERCISE.fullmatch(c)), None)
            if number:
                found.append((code.co_firstlineno, number, code.co_name))
    return [(number, name) for _line, number, name in sorted(found)]


def _requires_exercises_done(main: Callable, args: tuple, kwargs: dict) -> None:
    """Stop before a step starts (before minutes of training) when its file still holds an exercise to write."""
    argv = args[0] if args else kwargs.get("argv")
    if any(flag in ("-h", "--help") for flag in (sys.argv[1:] if argv is None else argv)):
        return
    left = unfinished_exercises(main.__globals__)
    if left:
        number, function = left[0]
        what, fix = todo_message(number, main.__globals__.get("__file__", "?"), function)
        others = f" Il en reste {len(left)} dans ce fichier : {', '.join(n for n, _ in left)}." if len(left) > 1 else ""
        raise AuroreError(what + others, fix)


def friendly_errors(main: Callable[..., object]) -> Callable[..., object]:
    """Decorate a script's main(): an exercise left to write stops it before it starts; an AuroreError prints its
    message, not a traceback, and exits 1; Ctrl-C exits 130 with one line."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            _requires_exercises_done(main, args, kwargs)
            return main(*args, **kwargs)
        except AuroreError as error:
            print(f"\nerreur : {error}", file=sys.stderr)
            raise SystemExit(1) from None
        except KeyboardInterrupt:
            print("\nInterrompu (Ctrl-C).", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper

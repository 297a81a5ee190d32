"""Errors meant for people: what went wrong, and the command that fixes it (in French: participants read them)."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Callable

# The script of each step, used in messages that send the participant back to a step: their own exercise file
# first, the solution as the fallback.
STEP_SCRIPTS = {1: "1_prepare_dataset", 2: "2_tokenize", 3: "3_train", 4: "4_generate", 5: "5_flask", 6: "6_mini_gpt"}
STANDIN_COMMAND = "python -m aurore build-standin"


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


def unfinished_exercise(function: Callable) -> str | None:
    """The number of the exercise still a `todo("N")` placeholder in `function` (read from its code, not run)."""
    code = getattr(function, "__code__", None)
    if code is None or "todo" not in code.co_names:
        return None
    return next((c for c in code.co_consts if isinstance(c, str) and c[:1].isdigit() and "." in c), "?")


def friendly_errors(main: Callable[..., object]) -> Callable[..., object]:
    """Decorate a script's main(): an AuroreError prints its message, not a traceback, and exits 1; Ctrl-C exits
    130 with one line."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except AuroreError as error:
            print(f"\nerreur : {error}", file=sys.stderr)
            raise SystemExit(1) from None
        except KeyboardInterrupt:
            print("\nInterrompu (Ctrl-C).", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper

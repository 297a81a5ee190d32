"""Errors meant for people: what went wrong, and the command that fixes it."""

from __future__ import annotations

import functools
import sys
from typing import Callable

# The command each step is run with, used in messages that send the participant back to a step.
STEP_COMMANDS = {
    1: "python aurore/1_prepare_dataset_solution.py",
    2: "python aurore/2_tokenize_solution.py",
    3: "python aurore/3_train_solution.py",
    "standin": "python -m aurore build-standin",
}


class AuroreError(RuntimeError):
    """A failure the user can fix. `fix` says how, ideally with the exact command."""

    def __init__(self, what: str, fix: str | None = None):
        self.what = what
        self.fix = fix
        super().__init__(what if fix is None else f"{what}\n  -> {fix}")


class MissingStepOutput(AuroreError):
    """A step's input is missing because an earlier step has not run (or wrote elsewhere)."""

    def __init__(self, thing: str, path: object, step: int | str):
        super().__init__(
            f"{thing} not found at {path}.",
            f"It is produced by step {step}: run `{STEP_COMMANDS[step]}` first "
            "(with the same AURORE_WORKDIR if you set one).",
        )


def friendly_errors(main: Callable[[], object]) -> Callable[[], object]:
    """Decorate a script's main(): an AuroreError prints its message, not a traceback, and exits 1."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except AuroreError as error:
            print(f"\nerror: {error}", file=sys.stderr)
            raise SystemExit(1) from None

    return wrapper

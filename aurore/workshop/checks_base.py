"""What every check is made of: a failure with a French message (never a bare `assert`: the grader must grade the
same under `python -O`), and the table entry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable


class CheckFailed(Exception):
    """An exercise gives a wrong answer; the message says what was expected, in French."""


def expect(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


@dataclass(frozen=True)
class Check:
    number: str
    hint: str  # in French: the function to look up, when the exercise fails
    run: Callable[[ModuleType, Path], None]

"""Exercise files are generated from the solutions: one source of truth.

In a `N_…_solution.py`, each part the participant writes sits between two marker comments (as nbgrader does):

    # BEGIN SOLUTION 1.2: <consigne en français: what to achieve>
    #   <more lines of the consigne, indented by two spaces or more: which function to look up, its doc link>
    ...the answer...
    # END SOLUTION

A consigne is a hint, never the answer: a test checks that no line of the answer appears in it.
`python -m aurore exercises` writes `N_….py` with each block replaced by its consigne and a `todo()` call; a
step's main() names the first one left before it starts (a function whose docstring starts with "Bonus" is
optional), and `todo()` itself stops anything that reaches it, both with a friendly message. A participant's
edited exercise file is never overwritten without a backup.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import itertools
import re
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Iterator

from aurore.config import PACKAGE_DIR
from aurore.errors import AuroreError, todo_message

_BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION (?P<number>[\d.]+): (?P<text>.+)$")
_MORE = re.compile(r"^\s*#  ")  # a consigne's next lines: comments indented by two spaces or more
_END = re.compile(r"^\s*# END SOLUTION\s*$")
_STAMP = re.compile(r"^# exercise-hash: (\w+)$", re.MULTILINE)
_TODO_IMPORT = "from aurore.workshop.exercises import todo"


class ExerciseNotDone(AuroreError):
    pass


@dataclass(frozen=True)
class Exercise:
    number: str
    consigne: str  # what the exercise file shows, without the comment marks
    answer: str  # the solution's lines


def exercises_in(source: str) -> list[Exercise]:
    """The exercise blocks of a solution's source, in order."""
    found: list[Exercise] = []
    lines = source.splitlines()
    for i, line in enumerate(lines):
        begin = _BEGIN.match(line)
        if not begin:
            continue
        end = next(j for j in range(i + 1, len(lines)) if _END.match(lines[j]))
        more = list(itertools.takewhile(_MORE.match, lines[i + 1 : end]))
        consigne = [begin.group("text")] + [m.strip().lstrip("#").strip() for m in more]
        found.append(Exercise(begin.group("number"), "\n".join(consigne), "\n".join(lines[i + 1 + len(more) : end])))
    return found


def todo(number: str) -> None:
    """Placeholder of an exercise block: says which exercise to complete, where, instead of a traceback. (A step's
    main() sees the placeholders before it starts: `aurore.errors.friendly_errors`.)"""
    caller = sys._getframe(1)
    raise ExerciseNotDone(*todo_message(number, caller.f_code.co_filename, caller.f_code.co_name))


@contextlib.contextmanager
def keras_registry_kept() -> Iterator[None]:
    """Loading a script registers its Keras layer classes by name ("aurore>TransformerBlock"); inside this block a
    script (an unfinished exercise, say) may do so, and the classes that later `load_model` calls resolve are the
    ones registered before it."""
    def registry() -> dict | None:
        return sys.modules["tf_keras"].utils.get_custom_objects() if "tf_keras" in sys.modules else None

    before = dict(registry() or {})
    try:
        yield
    finally:
        if registry() is not None:
            registry().clear()
            registry().update(before)


def load_script(path: Path) -> ModuleType:
    """Import a numbered script by its path (its name starts with a digit, so `import` cannot)."""
    spec = importlib.util.spec_from_file_location(f"aurore_step_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def script_for(step: int, solution: bool = False, folder: Path = PACKAGE_DIR) -> Path:
    """The exercise file of a step (or its solution)."""
    for path in solution_files(folder):
        if path.name.startswith(f"{step}_"):
            return path if solution else exercise_path(path)
    steps = sorted(int(p.name.split("_")[0]) for p in solution_files(folder))
    raise AuroreError(f"Il n'y a pas d'étape {step}.", f"Les étapes sont : {', '.join(map(str, steps))}.")


def solution_files(folder: Path = PACKAGE_DIR) -> list[Path]:
    return sorted(folder.glob("[0-9]*_solution.py"))


def exercise_path(solution: Path) -> Path:
    return solution.with_name(solution.name.replace("_solution.py", ".py"))


def exercise_numbers(source: str) -> list[str]:
    return [exercise.number for exercise in exercises_in(source)]


def exercise_text(source: str, solution_name: str, keep: frozenset[str] = frozenset()) -> str:
    """The exercise file for a solution's source; blocks whose number is in `keep` stay solved."""
    out: list[str] = []
    skipping = in_consigne = False
    indent = number = ""
    for line in source.splitlines():
        begin = _BEGIN.match(line)
        if in_consigne and _MORE.match(line):
            if skipping:
                out.append(line)  # the rest of the consigne, as written (a solved block drops it)
            continue
        if in_consigne and skipping:
            out.append(f'{indent}todo("{number}")')
        in_consigne = False
        if begin:
            indent, number = begin.group("indent"), begin.group("number")
            skipping, in_consigne = number not in keep, True
            if skipping:  # the consigne replaces the answer
                lines = textwrap.wrap(f"Exercice {number} : {begin.group('text')}", 110 - len(indent))
                out += [f"{indent}# {text}" for text in lines]
        elif _END.match(line):
            skipping = False
        elif not skipping:
            out.append(line)
    # The todo() import goes right after the first import from the aurore package.
    first = next(i for i, line in enumerate(out) if line.startswith("from aurore"))
    out.insert(first, _TODO_IMPORT)
    # The exercise's messages ("Run: …", "Next: …") point to the exercise files, not the solutions.
    body = "\n".join(out).replace("_solution.py", ".py") + "\n"
    digest = hashlib.sha256(body.encode()).hexdigest()[:16]
    header = (
        f"# Fichier d'exercice : complétez chaque bloc « Exercice » (la réponse est dans {solution_name}).\n"
        "# Fichier produit par `python -m aurore exercises` ; ne modifiez pas la ligne suivante.\n"
        f"# exercise-hash: {digest}\n"
    )
    return header + body


def _edited_by_participant(path: Path) -> bool:
    """True when the file no longer matches the hash it was generated with."""
    text = path.read_text(encoding="utf-8")
    stamp = _STAMP.search(text)
    body = text.split("\n", 3)[3] if text.count("\n") >= 3 else ""
    return not stamp or hashlib.sha256(body.encode()).hexdigest()[:16] != stamp.group(1)


def write_exercises(folder: Path = PACKAGE_DIR, check_only: bool = False) -> list[Path]:
    """Regenerate every exercise file; return those that were (or, with check_only, would be) rewritten."""
    stale = []
    for solution in solution_files(folder):
        target = exercise_path(solution)
        wanted = exercise_text(solution.read_text(encoding="utf-8"), solution.name)
        if target.is_file() and target.read_text(encoding="utf-8") == wanted:
            continue
        stale.append(target)
        if check_only:
            print(f"out of date: {target.name} (run `python -m aurore exercises`)")
            continue
        if target.is_file() and _edited_by_participant(target):
            backup = target.with_name(f"{target.name}.{time.strftime('%Y%m%d-%H%M%S')}.bak")
            target.replace(backup)
            print(f"kept your work: {target.name} -> {backup.name}")
        target.write_text(wanted, encoding="utf-8")
        print(f"wrote {target.name}")
    return stale

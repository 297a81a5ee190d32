"""Exercise files come from the solutions, and `check` grades them."""

import pytest

from aurore import exercises
from aurore.check import CHECKS, grade
from aurore.config import PACKAGE_DIR
from conftest import run_script

SOLUTIONS = exercises.solution_files()
STEPS = sorted(CHECKS)


def test_every_exercise_file_is_in_sync_with_its_solution():
    assert exercises.write_exercises(check_only=True) == [], "run `python -m aurore exercises`"


def test_every_exercise_number_has_a_check_and_vice_versa():
    for solution in SOLUTIONS:
        step = int(solution.name.split("_")[0])
        numbers = exercises.exercise_numbers(solution.read_text(encoding="utf-8"))
        if numbers:
            assert [check.number for check in CHECKS[step]] == numbers


@pytest.mark.parametrize("step", STEPS)
def test_solutions_pass_every_check(step, capsys):
    solution = next(p for p in SOLUTIONS if p.name.startswith(f"{step}_"))
    assert all(grade(solution, step).values())


@pytest.mark.parametrize("step", STEPS)
def test_shipped_exercises_fail_every_check_with_their_hint(step, capsys):
    exercise = exercises.exercise_path(next(p for p in SOLUTIONS if p.name.startswith(f"{step}_")))
    assert not any(grade(exercise, step).values())
    out = capsys.readouterr().out
    for check in CHECKS[step]:
        assert f"✘ Exercice {check.number} : pas encore fait (piste : {check.hint})" in out


@pytest.mark.parametrize("step", STEPS)
def test_a_file_with_one_exercise_done_passes_exactly_that_one(step, tmp_path, capsys):
    solution = next(p for p in SOLUTIONS if p.name.startswith(f"{step}_"))
    for done in CHECKS[step]:
        partial = tmp_path / f"{step}_partial_{done.number}.py"
        partial.write_text(exercises.exercise_text(solution.read_text(encoding="utf-8"), solution.name,
                                                   keep=frozenset({done.number})), encoding="utf-8")
        results = grade(partial, step)
        assert results == {c.number: c.number == done.number for c in CHECKS[step]}


def test_running_an_unfinished_exercise_gives_a_friendly_message(tmp_path):
    result = run_script(["aurore/1_prepare_dataset.py"], {"AURORE_WORKDIR": str(tmp_path)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Exercice 1.1 à compléter (1_prepare_dataset.py, fonction download_books())" in result.stderr


def test_check_command_exit_status(tmp_path):
    assert run_script(["-m", "aurore", "check", "1", "--solution"], {}).returncode == 0
    failing = run_script(["-m", "aurore", "check", "1"], {})
    assert failing.returncode == 1 and "0/4 exercices réussis" in failing.stdout


def test_regenerating_keeps_a_participants_work(tmp_path):
    solution = PACKAGE_DIR / "1_prepare_dataset_solution.py"
    (tmp_path / solution.name).write_text(solution.read_text(encoding="utf-8"), encoding="utf-8")
    exercises.write_exercises(tmp_path)
    exercise = tmp_path / "1_prepare_dataset.py"
    assert exercises.write_exercises(tmp_path) == []  # up to date: untouched
    exercise.write_text(exercise.read_text(encoding="utf-8") + "\n# my work\n", encoding="utf-8")
    exercises.write_exercises(tmp_path)
    backups = list(tmp_path.glob("1_prepare_dataset.py.*.bak"))
    assert len(backups) == 1 and backups[0].read_text(encoding="utf-8").endswith("# my work\n")
    assert "# my work" not in exercise.read_text(encoding="utf-8")

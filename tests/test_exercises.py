"""Exercise files come from the solutions, and `check` grades them."""

import pytest

from aurore.config import PACKAGE_DIR
from aurore.workshop import exercises
from aurore.workshop.check import grade
from aurore.workshop.checks import CHECKS
from conftest import REPO, run_script

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
def test_shipped_exercises_fail_every_check_and_say_where(step, capsys):
    exercise = exercises.exercise_path(next(p for p in SOLUTIONS if p.name.startswith(f"{step}_")))
    assert not any(grade(exercise, step).values())
    out = capsys.readouterr().out
    for check in CHECKS[step]:
        assert f"✘ Exercice {check.number} : pas encore fait — écrivez votre code à la place de la ligne " \
               f"todo(\"{check.number}\") (et supprimez-la)\n" in out


@pytest.mark.parametrize("step", STEPS)
def test_a_file_with_one_exercise_done_passes_exactly_that_one(step, tmp_path, capsys):
    solution = next(p for p in SOLUTIONS if p.name.startswith(f"{step}_"))
    for done in CHECKS[step]:
        partial = tmp_path / f"{step}_partial_{done.number}.py"
        partial.write_text(exercises.exercise_text(solution.read_text(encoding="utf-8"), solution.name,
                                                   keep=frozenset({done.number})), encoding="utf-8")
        results = grade(partial, step)
        assert results == {c.number: c.number == done.number for c in CHECKS[step]}


def test_sent_tokenize_without_a_language_gets_a_hint_about_the_language(tmp_path, capsys):
    """NLTK then looks for its English tables: the hint says to give language="french", not that French is unknown."""
    solution = next(p for p in SOLUTIONS if p.name.startswith("1_"))
    attempt = tmp_path / "1_attempt.py"
    text = solution.read_text(encoding="utf-8")
    assert 'nltk.sent_tokenize(paragraph, language="french")' in text
    attempt.write_text(text.replace('nltk.sent_tokenize(paragraph, language="french")', "nltk.sent_tokenize(paragraph)"),
                       encoding="utf-8")
    results = grade(attempt, 1)
    assert results["1.3"] is False and all(passed for number, passed in results.items() if number != "1.3")
    assert 'language="french") ; sans elle, il prend l\'anglais' in capsys.readouterr().out


def test_running_an_unfinished_exercise_gives_a_friendly_message(tmp_path):
    result = run_script(["aurore/1_prepare_dataset.py"], {"AURORE_WORKDIR": str(tmp_path)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Exercice 1.1 à compléter (1_prepare_dataset.py, fonction download_book())" in result.stderr


def test_a_step_names_its_first_unwritten_exercise_before_it_starts_even_inside_tensorflow_code(tmp_path):
    """Step 6's 6.1 runs inside dataset.map (a TensorFlow graph): reached there, todo() would end in a traceback."""
    result = run_script(["aurore/6_mini_gpt.py", "--time-budget", "1s"], {"AURORE_WORKDIR": str(tmp_path)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Exercice 6.1 à compléter (6_mini_gpt.py, fonction split_input_target())." in result.stderr
    assert "Il en reste 6 dans ce fichier : 6.1, 6.2, 6.3, 6.4, 6.5, 6.6." in result.stderr
    assert not (tmp_path / "models").exists()  # stopped before anything ran
    assert run_script(["aurore/6_mini_gpt.py", "--help"], {}).returncode == 0  # --help still works


@pytest.mark.parametrize("step, left_out, expected", [
    (2, "2.5", []),  # a bonus (its function's docstring says so) never stops the step
    (5, "5.2", []),  # a Flask route (nested in create_app): the server starts, the page says it, the edit reloads
    (6, "6.3", [("6.3", "call")]),  # a Keras layer's method, run inside TensorFlow's graph
    (3, "3.5", [("3.5", "on_train_batch_end")]),  # a method of the Callback
])
def test_unwritten_exercises_are_found_in_functions_methods_and_routes(step, left_out, expected, tmp_path):
    from aurore.errors import unfinished_exercises

    solution = exercises.script_for(step, solution=True)
    source = solution.read_text(encoding="utf-8")
    keep = frozenset(exercises.exercise_numbers(source)) - {left_out}
    partial = tmp_path / f"{step}_partial.py"
    partial.write_text(exercises.exercise_text(source, solution.name, keep=keep), encoding="utf-8")
    assert unfinished_exercises(vars(exercises.load_script(partial))) == expected


def test_check_on_a_terminal_shows_no_progress_bars_of_its_own_fixtures():
    """On a terminal the tokenizers library draws progress bars; the checks' tiny tokenizers must not add theirs
    between the ✔ lines (the participant's own call in 2.5 may show one: it is their code's output)."""
    import os
    import subprocess
    import sys

    pty = pytest.importorskip("pty")  # POSIX terminals only
    leader, follower = pty.openpty()
    with subprocess.Popen([sys.executable, "-m", "aurore", "check", "2", "--solution"], cwd=REPO, stdin=follower,
                          stdout=follower, stderr=follower) as process:
        os.close(follower)
        out = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    os.close(leader)
    text = out.decode("utf-8", errors="replace")
    assert process.returncode == 0 and "5/5 exercices réussis" in text, text[-2000:]
    before_the_participants_call = text[: text.index("✔ Exercice 2.4")]
    assert "Compute merges" not in before_the_participants_call, before_the_participants_call[-3000:]


def test_check_command_exit_status(tmp_path):
    assert run_script(["-m", "aurore", "check", "1", "--solution"], {}).returncode == 0
    failing = run_script(["-m", "aurore", "check", "1"], {})
    assert failing.returncode == 1 and "0/4 exercices réussis" in failing.stdout
    missing = run_script(["-m", "aurore", "check", "9"], {})
    assert missing.returncode == 1 and "Il n'y a pas d'étape 9" in missing.stderr


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


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.name)
def test_no_consigne_gives_away_a_line_of_its_answer(solution):
    for exercise in exercises.exercises_in(solution.read_text(encoding="utf-8")):
        code = [line.strip() for line in exercise.answer.splitlines()
                if len(line.strip()) > 12 and not line.strip().startswith("#")]
        assert code, exercise.number
        for line in code:
            assert line not in exercise.consigne, (exercise.number, line)


def test_a_multi_line_consigne_is_shown_whole_in_the_exercise_file():
    source = "\n".join(["from aurore import x", "def f():", "    # BEGIN SOLUTION 9.1: première ligne",
                        "    #   deuxième ligne", "    #   Doc : https://example.org", "    return 1",
                        "    # END SOLUTION", ""])
    text = exercises.exercise_text(source, "9_x_solution.py")
    assert "    # Exercice 9.1 : première ligne\n    #   deuxième ligne\n    #   Doc : https://example.org\n" \
           '    todo("9.1")\n' in text and "return 1" not in text
    solved = exercises.exercise_text(source, "9_x_solution.py", keep=frozenset({"9.1"}))
    assert "    return 1" in solved and "deuxième ligne" not in solved


def test_check_grades_the_same_under_python_O(tmp_path):
    passing = run_script(["-O", "-m", "aurore", "check", "6", "--solution"], {})
    assert passing.returncode == 0, passing.stdout[-2000:]
    failing = run_script(["-O", "-m", "aurore", "check", "6"], {})
    assert failing.returncode == 1 and f"0/{len(CHECKS[6])} exercices réussis" in failing.stdout


def test_a_missing_workshop_package_says_to_activate_the_venv(tmp_path):
    result = run_script(["-c", "import aurore, nltk_is_not_there_either; import nltk"], {})
    assert "ModuleNotFoundError" in result.stderr  # an unknown module: the usual traceback
    blocked = tmp_path / "nltk"
    blocked.mkdir()
    (blocked / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'nltk'\", name='nltk')\n")
    result = run_script(["-c", "import aurore, nltk"], {"PYTHONPATH": f"{tmp_path}:{REPO}"})
    assert result.returncode == 1 and "source .venv/bin/activate" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("step", [1, 2, 3, 4])
def test_the_participant_writes_the_library_call_not_a_toolkit_helper(step):
    solution = next(p for p in SOLUTIONS if p.name.startswith(f"{step}_"))
    for exercise in exercises.exercises_in(solution.read_text(encoding="utf-8")):
        for helper in ("hub.", "generation.", "gutenberg.download_book"):
            assert helper not in exercise.answer, (exercise.number, helper)


def test_step3_main_reads_as_the_lesson_in_at_most_40_lines():
    import inspect

    from aurore.workshop.exercises import load_script

    step3 = load_script(PACKAGE_DIR / "3_train_solution.py")
    assert len(inspect.getsource(step3.main.__wrapped__).splitlines()) <= 40

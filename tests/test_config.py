import re
from pathlib import Path

import pytest

from aurore import config as settings


def test_defaults_environment_and_flags_in_order_of_precedence(tmp_path):
    env = {"AURORE_BLOCK_SIZE": "64", "AURORE_WORKDIR": str(tmp_path), "AURORE_TRAIN_BOOKS": "1, 2"}
    assert settings.from_namespace(None, environ={}).block_size == 128
    from_env = settings.from_namespace(None, environ=env)
    assert (from_env.block_size, from_env.workdir, from_env.train_books) == (64, tmp_path, (1, 2))
    parser = settings.add_arguments(__import__("argparse").ArgumentParser())
    from_flag = settings.from_namespace(parser.parse_args(["--block-size", "32"]), environ=env)
    assert from_flag.block_size == 32 and from_flag.workdir == tmp_path


def test_paths_derive_from_the_workdir(tmp_path):
    config = settings.Config(workdir=tmp_path)
    for path in (config.books_dir, config.dataset_dir, config.tokenized_dir, config.finetuned_dir, config.standin_dir):
        assert tmp_path in path.parents


def test_a_bad_value_names_the_flag_and_the_variable_in_french():
    with pytest.raises(SystemExit, match="(?s)attend un nombre entier, reçu « big ».*--block-size ou la variable "
                                         "AURORE_BLOCK_SIZE"):
        settings.from_namespace(None, environ={"AURORE_BLOCK_SIZE": "big"})


@pytest.mark.parametrize("argv,message", [
    (["--max-new-tokens", "20"], "option inconnue de cette étape : --max-new-tokens 20"),  # another step's flag
    (["--batch-size"], "l'option --batch-size attend une valeur"),
    (["--profile"], "l'option --profile attend une valeur"),
])
def test_command_line_mistakes_are_explained_in_french_with_the_help_command(argv, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        settings.parse_args("Step 3.", argv, step=3)
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(f"erreur : {message}\n") and "--help" in error.splitlines()[1]


@pytest.mark.parametrize("variable,value,rule", [
    ("AURORE_TEMPERATURE", "0", "strictement positif"), ("AURORE_TOP_K", "-3", "positif ou nul"),
    ("AURORE_TOP_P", "1.5", "plus grand que 0 et au plus 1"), ("AURORE_MAX_NEW_TOKENS", "0", "strictement positif"),
    ("AURORE_BATCH_SIZE", "0", "strictement positif"), ("AURORE_MAX_STEPS", "-5", "positif ou nul"),
    ("AURORE_BLOCK_SIZE", "5000", "entre 2 et 1024 (le contexte de GPT-2)"),
    ("AURORE_MINI_DROPOUT", "1", "au moins 0 et plus petit que 1"),
])
def test_a_value_out_of_range_is_refused_before_the_step_runs(variable, value, rule):
    """A temperature of 0 or a batch of 0 would end in a library's traceback deep inside the step."""
    flag = "--" + variable.removeprefix("AURORE_").lower().replace("_", "-")
    with pytest.raises(SystemExit, match=f"(?s)doit être {re.escape(rule)}, reçu « {value} ».*{flag} ou la variable "
                                         f"{variable}"):
        settings.from_namespace(None, environ={variable: value})
    assert settings.from_namespace(None, environ={}) == settings.Config()  # the defaults pass their own rules


@pytest.mark.parametrize("flag,suggested", [("--batch-size", "--mini-batch-size"), ("--temprature", "--temperature"),
                                            ("--max-new-tokens", None)])
def test_an_unknown_flag_suggests_the_steps_own_flag(flag, suggested, capsys):
    with pytest.raises(SystemExit):
        settings.parse_args("Step 6.", [flag, "8"], step=6)
    error = capsys.readouterr().err.splitlines()[0]
    assert error.endswith(f"(vouliez-vous dire {suggested} ?)") if suggested else "vouliez-vous" not in error


def test_help_shows_the_value_a_variable_sets(capsys, monkeypatch):
    monkeypatch.setenv("AURORE_TEMPERATURE", "0.7")
    with pytest.raises(SystemExit):
        settings.parse_args("Step 4.", ["--help"], step=4)
    assert "(par défaut : 0.9 ; ici 0.7, par AURORE_TEMPERATURE)" in " ".join(capsys.readouterr().out.split())


def test_a_steps_help_is_in_french(capsys):
    with pytest.raises(SystemExit):
        settings.parse_args("Step 4: English docstring.", ["--help"], step=4)
    shown = capsys.readouterr().out
    assert shown.startswith("usage : ") and settings.STEP_TITLES[4].split(" : ")[0] in shown
    assert "jetons écrits par texte (par défaut : 60)" in " ".join(shown.split())
    assert "default" not in shown and "English" not in shown


def test_every_setting_is_documented_in_the_readme():
    readme = (Path(settings.PACKAGE_DIR).parent / "README.md").read_text(encoding="utf-8")
    missing = [f.name for f in settings.settings() if f"AURORE_{f.name.upper()}" not in readme]
    assert not missing, f"README lacks {missing}"

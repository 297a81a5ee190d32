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

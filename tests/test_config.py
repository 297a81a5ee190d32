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


def test_a_bad_value_names_the_flag_and_the_variable():
    with pytest.raises(SystemExit, match="--block-size or the variable AURORE_BLOCK_SIZE"):
        settings.from_namespace(None, environ={"AURORE_BLOCK_SIZE": "big"})


def test_every_setting_is_documented_in_the_readme():
    readme = (Path(settings.PACKAGE_DIR).parent / "README.md").read_text(encoding="utf-8")
    missing = [f.name for f in settings.settings() if f"AURORE_{f.name.upper()}" not in readme]
    assert not missing, f"README lacks {missing}"

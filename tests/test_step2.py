"""Step 2 on the real sentences with the stand-in tokenizer."""

from datasets import load_from_disk

from conftest import run_script, script

step2 = script("2_tokenize_solution")


def test_tokenized_blocks_have_the_configured_shape(standin, tmp_path, capsys):
    import re
    import shutil

    config = standin.__class__(workdir=tmp_path, base_model=standin.base_model)
    shutil.copytree(standin.dataset_dir, config.dataset_dir)
    blocks = step2.main(["--workdir", str(config.workdir), "--base-model", config.base_model,
                         "--block-size", "64", "--train-tokenizer", "--tokenizer-vocab-size", "800"])
    saved = load_from_disk(str(config.tokenized_dir))
    for split in ("train", "test"):
        assert saved[split].num_rows == blocks[split].num_rows > 10
        assert set(saved[split].column_names) == {"input_ids", "labels"}
        lengths = {len(ids) for ids in saved[split]["input_ids"]}
        assert lengths == {64}
        assert saved[split]["labels"] == saved[split]["input_ids"]
    from aurore.hub import load_tokenizer

    specialised = load_tokenizer(config.tokenizer_dir)
    assert 256 < len(specialised) <= 800
    # What the step prints is French, numbers too: "12 800 jetons" (no-break space), never "12,800".
    printed = capsys.readouterr().out
    total = blocks["train"].num_rows * 64
    assert f"({total:,} jetons)".replace(",", "\u00a0") in printed and not re.search(r"\d,\d{3}", printed)


def test_analyse_sentence_matches_the_tokenizer(standin):
    tokenizer = step2.load_tokenizer(standin)
    ids, tokens = step2.analyse_sentence(tokenizer, "Cette femme était assise.")
    assert tokenizer.decode(ids) == "Cette femme était assise."
    assert len(ids) == len(tokens) and tokens == tokenizer.convert_ids_to_tokens(ids)


def test_step2_without_step1_says_which_step_to_run(tmp_path):
    result = run_script(["aurore/2_tokenize_solution.py"], {"AURORE_WORKDIR": str(tmp_path)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "lancez d'abord `python aurore/1_prepare_dataset.py` (ou la solution : " \
           "`python aurore/1_prepare_dataset_solution.py`)" in result.stderr

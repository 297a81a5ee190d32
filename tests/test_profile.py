"""Step 3's laptop profile: what is frozen stays frozen, the time budget, the schedule's last step."""


import numpy as np
import pytest
from transformers import TFAutoModelForCausalLM

from aurore import hub, training
from aurore.errors import AuroreError
from aurore.training import callbacks, checkpoints
from conftest import script, tokenized_copy, where

step3 = script("3_train_solution")


@pytest.fixture(scope="module")
def workdir(standin, tmp_path_factory):
    return tokenized_copy(standin, tmp_path_factory.mktemp("profile"), block_size=128)


def args(config, *extra):
    """Step 3 on this module's workdir with the laptop profile: its own block size, no mid-run checkpoint."""
    return [*where(config), "--batch-size", "4", "--learning-rate", "3e-3", "--save-every", "0", "--profile", "laptop",
            *extra]


def weights(model) -> dict[str, np.ndarray]:
    return {w.name.split("/", 1)[1]: w.numpy() for w in model.weights}


def test_frozen_layers_stay_unchanged_and_the_top_block_learns(workdir, capsys):
    metrics = step3.main(args(workdir, "--train-top-blocks", "1", "--max-steps", "8"))
    out = capsys.readouterr().out
    assert "Profil laptop : les 1 derniers blocs apprennent" in out and "blocs de 64 jetons" in out
    before = weights(hub.load_causal_lm(workdir.base_model, workdir))
    after = weights(TFAutoModelForCausalLM.from_pretrained(str(workdir.finetuned_dir)))
    frozen = [n for n in before if "/wte/" in n or "/wpe/" in n or "/h_._0/" in n]
    learning = [n for n in before if "/h_._1/" in n or "/ln_f/" in n]
    assert frozen and learning
    for name in frozen:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    assert all(not np.array_equal(after[name], before[name]) for name in learning)
    assert metrics["steps"][-1]["loss"] < metrics["steps"][0]["loss"]


def test_the_schedule_reaches_its_final_rate_on_the_last_step_not_before(workdir):
    metrics = step3.main(args(workdir, "--max-steps", "10", "--epochs", "2"))
    rates = [s["next_lr"] for s in metrics["steps"]]
    assert len(rates) == 10 and rates[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(rate > 0 for rate in rates[:-1])


def test_the_time_budget_stops_training_and_leaves_a_loadable_checkpoint(workdir, capsys):
    # (profile full: no XLA compilation eating the small budget)
    metrics = step3.main(args(workdir, "--max-steps", "100000", "--time-budget", "8s", "--profile", "full"))
    out = capsys.readouterr().out
    assert "s par pas : encore environ" in out and "le budget de temps arrêtera l'entraînement" in out
    done = metrics["steps"][-1]["step"]
    assert 3 < done < 100000
    latest = checkpoints.latest_run(workdir.checkpoints_dir).latest()
    assert checkpoints.read_state(latest)["step"] == done
    TFAutoModelForCausalLM.from_pretrained(str(latest))


def test_reblock_cuts_blocks_and_refuses_sizes_that_do_not_divide(workdir):
    blocks = step3.load_blocks(workdir)
    halves = training.reblock(blocks, 64)
    assert halves["train"].num_rows == 2 * blocks["train"].num_rows
    assert halves["train"][0]["input_ids"] + halves["train"][1]["input_ids"] == blocks["train"][0]["input_ids"]
    assert training.reblock(blocks, 0) is blocks
    with pytest.raises(AuroreError, match="ne divise pas"):
        training.reblock(blocks, 48)


@pytest.mark.parametrize("text,seconds", [("300", 300), ("90s", 90), ("5m", 300), ("1h30m", 5400)])
def test_durations(text, seconds):
    assert callbacks.parse_duration(text) == seconds


@pytest.mark.parametrize("seconds,text", [(0.4, "0 s"), (45, "45 s"), (113.4, "1 min 53 s"), (3599.6, "1 h 00 min"),
                                          (5400, "1 h 30 min")])
def test_durations_are_printed_for_people(seconds, text):
    assert callbacks.format_duration(seconds) == text


def test_bad_profile_settings_are_clear_errors_without_traceback(workdir):
    from conftest import run_script

    for flag, message in (("--time-budget=soon", "Ce n'est pas une durée"),
                          ("--profile=tiny", "Profil d'entraînement inconnu"), ("--block-size=48", "ne divise pas")):
        result = run_script(["aurore/3_train_solution.py", "--workdir", str(workdir.workdir), "--base-model",
                             workdir.base_model, flag], {})
        assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr, flag

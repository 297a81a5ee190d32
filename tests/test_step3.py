"""Step 3 end to end on the stand-in: fit, checkpoints, resume, crash safety, final folder and metrics."""

import json

import numpy as np
import pytest
import tensorflow as tf
from transformers import TFAutoModelForCausalLM

from aurore import hub, training
from aurore.training import checkpoints
from conftest import run_script, script, tokenized_copy, where

step2 = script("2_tokenize_solution")
step3 = script("3_train_solution")


@pytest.fixture(scope="module")
def tokenized(standin, tmp_path_factory):
    """This module's own workdir: step 1's sentences copied, step 2 run with 32-token blocks."""
    return tokenized_copy(standin, tmp_path_factory.mktemp("step3"), block_size=32)


def args(config, *extra):
    """Step 3 on this module's workdir: a checkpoint every 5 steps, two kept."""
    return [*where(config), "--batch-size", "8", "--learning-rate", "3e-3", "--save-every", "5", "--keep-checkpoints",
            "2", *extra]


@pytest.fixture(scope="module")
def trained(tokenized):
    return step3.main(args(tokenized, "--max-steps", "24", "--epochs", "2")), tokenized


def test_two_short_epochs_lower_the_loss_and_report_validation(trained):
    metrics, config = trained
    losses = [s["loss"] for s in metrics["steps"]]
    assert len(losses) == 24 and np.mean(losses[-5:]) < np.mean(losses[:5])
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2] and all("val_loss" in e for e in metrics["epochs"])
    assert metrics["perplexity_after"] < metrics["perplexity_before"]


def test_the_reported_block_size_and_profile_are_the_ones_the_run_trained_with(standin, tmp_path, capsys):
    """Step 2 wrote 128-token blocks, the laptop profile (auto's choice on a CPU) trains on 64: metrics and card
    (hence Mon modèle) say laptop and 64."""
    import shutil

    config = standin.__class__(workdir=tmp_path, base_model=standin.base_model)
    shutil.copytree(standin.dataset_dir, config.dataset_dir)
    step2.main(["--workdir", str(config.workdir), "--base-model", config.base_model, "--block-size", "128"])
    metrics = step3.main(args(config, "--max-steps", "2", "--epochs", "1", "--block-size", "128"))
    assert metrics["settings"]["block_size"] == 64 and metrics["settings"]["profile"] == "laptop"
    assert "blocs de 64 jetons, pas 128 (--block-size)" in capsys.readouterr().out  # the override is said
    assert "| block_size | 64 |" in (config.finetuned_dir / "README.md").read_text()


def test_the_final_folder_reloads_with_card_metrics_and_curve(trained):
    metrics, config = trained
    folder = config.finetuned_dir
    for name in ("tf_model.h5", "config.json", "tokenizer.json", "generation_config.json", "README.md",
                 "metrics.json", "loss.png"):
        assert (folder / name).is_file(), name
    assert json.loads((folder / "metrics.json").read_text())["steps"] == metrics["steps"]
    assert (folder / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert config.base_model in (folder / "README.md").read_text()
    TFAutoModelForCausalLM.from_pretrained(str(folder))


def test_checkpoints_are_kept_complete_and_reload(trained):
    metrics, config = trained
    kept = checkpoints.latest_run(config.checkpoints_dir).checkpoints()
    assert [checkpoints.read_state(c)["step"] for c in kept] == [20, 24]  # every 5 steps and epoch ends, last 2 kept
    assert not list(config.checkpoints_dir.glob("*/.incomplete-*"))
    TFAutoModelForCausalLM.from_pretrained(str(kept[-1]))


def test_resume_continues_from_the_saved_step(tokenized, tmp_path):
    import shutil

    config = tokenized.__class__(workdir=tmp_path, base_model=tokenized.base_model)
    shutil.copytree(tokenized.tokenized_dir, config.tokenized_dir)
    step3.main(args(config, "--max-steps", "6", "--save-every", "4"))
    assert checkpoints.read_state(checkpoints.latest_run(config.checkpoints_dir).latest())["step"] == 6
    # A longer plan, resumed: the optimizer restarts at step 6 and stops exactly at 10.
    metrics = step3.main(args(config, "--max-steps", "10", "--resume"))
    assert metrics["resumed_from_step"] == 6
    assert [s["step"] for s in metrics["steps"]] == [7, 8, 9, 10]


def test_resume_keeps_the_runs_checkpoint_interval(tokenized, tmp_path):
    """--save-every 2 given at the start holds after --resume without it (it fell back to the default 100)."""
    import shutil

    config = tokenized.__class__(workdir=tmp_path, base_model=tokenized.base_model)
    shutil.copytree(tokenized.tokenized_dir, config.tokenized_dir)
    own = ["--workdir", str(config.workdir), "--base-model", config.base_model, "--batch-size", "8"]
    step3.main([*own, "--max-steps", "4", "--save-every", "2"])
    step3.main([*own, "--max-steps", "8", "--resume"])
    kept = checkpoints.latest_run(config.checkpoints_dir).checkpoints()
    assert [checkpoints.read_state(c)["step"] for c in kept] == [4, 6, 8]  # every 2 steps, the last 3 kept


def test_a_worse_run_never_pushes_out_the_best_final_model(tokenized, tmp_path, capsys):
    """A long run, then two quick test runs that end worse: the long run's model is kept as .best."""
    import shutil

    config = tokenized.__class__(workdir=tmp_path, base_model=tokenized.base_model)
    shutil.copytree(tokenized.tokenized_dir, config.tokenized_dir)
    good = step3.main(args(config, "--max-steps", "16"))
    quick = [step3.main(args(config, "--max-steps", "2", "--learning-rate", "1e-9")) for _ in range(2)]
    assert all(run["perplexity_after"] > good["perplexity_after"] for run in quick)
    best = config.finetuned_dir.with_name(config.finetuned_dir.name + ".best")
    assert json.loads((best / "metrics.json").read_text())["run"] == good["run"]
    assert json.loads((config.finetuned_dir / "metrics.json").read_text())["run"] == quick[-1]["run"]
    assert "le modèle remplacé était meilleur" in capsys.readouterr().out
    TFAutoModelForCausalLM.from_pretrained(str(best))


class Boom(tf.keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == 7:
            raise RuntimeError("power cut")


def test_a_crash_mid_training_leaves_the_latest_checkpoint_loadable(tokenized, tmp_path):
    config = tokenized.__class__(workdir=tmp_path, base_model=tokenized.base_model)
    model = hub.load_causal_lm(config.base_model, config)
    model.compile(optimizer=step3.make_optimizer(20, config))
    train, test = step3.to_tf_datasets(model, step3.load_blocks(tokenized), batch_size=8)
    run = checkpoints.Run.start(config.checkpoints_dir, {})
    saver = step3.CheckpointSaver(run, hub.load_tokenizer(config.base_model), every=5, keep=3)
    with pytest.raises(RuntimeError, match="power cut"):
        step3.train(model, train.repeat(), test, training.Plan(1, 20, 20), [saver, Boom()])
    latest = run.latest()
    assert checkpoints.read_state(latest)["step"] == 5
    reloaded = TFAutoModelForCausalLM.from_pretrained(str(latest))
    assert reloaded.num_parameters() == model.num_parameters()


TWO_CPUS = """
import sys, aurore, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from aurore.workshop.exercises import load_script
metrics = load_script(aurore.config.PACKAGE_DIR / "3_train_solution.py").main(sys.argv[1:])
losses = [s["loss"] for s in metrics["steps"]]
print("LOSSES", losses[0], losses[-1], len(losses))
"""


def test_mirrored_strategy_on_two_logical_cpus(tokenized, tmp_path):
    import shutil

    from conftest import run_script

    config = tokenized.__class__(workdir=tmp_path, base_model=tokenized.base_model)
    shutil.copytree(tokenized.tokenized_dir, config.tokenized_dir)
    result = run_script(["-c", TWO_CPUS, *args(config, "--max-steps", "8", "--strategy", "mirrored")], {})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Entraînement sur 2 appareil(s) (MirroredStrategy)" in result.stdout
    first, last, count = result.stdout.split("LOSSES")[1].split()
    assert int(count) == 8 and float(last) < float(first)
    assert (config.finetuned_dir / "tf_model.h5").is_file()


def test_perplexity_command_on_any_model_folder(trained):
    from conftest import run_script

    metrics, config = trained
    result = run_script(["-m", "aurore", "perplexity", str(config.finetuned_dir), "--workdir", str(config.workdir),
                         "--block-size", "32"], {})
    assert result.returncode == 0, result.stderr[-2000:]
    value = float(result.stdout.strip().split(":")[-1].replace(",", "."))  # printed as French writes it: 96,25
    assert abs(value - metrics["perplexity_after"]) / metrics["perplexity_after"] < 0.25  # same model, same book


def test_push_to_hub_offline_is_a_clear_error(trained):
    from aurore.errors import AuroreError

    metrics, config = trained
    with pytest.raises(AuroreError, match="hub Hugging Face est injoignable"):
        hub.push_to_hub(config.finetuned_dir, "someone/gpt2-george-sand")


def test_mixed_precision_is_set_before_the_model_is_built():
    from transformers import GPT2Config, TFGPT2LMHeadModel

    try:
        policy = training.use_mixed_precision()
        model = TFGPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=1, n_head=2))
        model(model.dummy_inputs)
        layer = model.transformer.h[0].mlp.c_fc
        assert policy.startswith("mixed_") and layer.compute_dtype != "float32" and layer.dtype == "float32"
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(tokenized, tmp_path, monkeypatch, capsys):
    import shutil

    config = tokenized.__class__(workdir=tmp_path, base_model=tokenized.base_model)
    shutil.copytree(tokenized.tokenized_dir, config.tokenized_dir)

    class CtrlC(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations.numpy()) == 3:
                raise KeyboardInterrupt

    real_train = step3.train

    def interrupted(model, train_data, test_data, plan, callbacks):
        return real_train(model, train_data, test_data, plan, callbacks + [CtrlC()])

    monkeypatch.setattr(step3, "train", interrupted)
    with pytest.raises(SystemExit) as stopped:
        step3.main(args(config, "--max-steps", "20", "--save-every", "0"))
    assert stopped.value.code == 130
    assert "Pour continuer cet essai : python aurore/3_train.py --resume" in capsys.readouterr().err
    latest = checkpoints.latest_run(config.checkpoints_dir).latest()
    assert checkpoints.read_state(latest)["step"] == 3
    TFAutoModelForCausalLM.from_pretrained(str(latest))


def test_a_shorter_block_size_cuts_the_tokenized_blocks(tokenized, tmp_path, capsys):
    import shutil

    config = tokenized.__class__(workdir=tmp_path, base_model=tokenized.base_model)  # its own workdir
    shutil.copytree(tokenized.tokenized_dir, config.tokenized_dir)
    step3.main(args(config, "--max-steps", "2", "--block-size", "16"))
    assert "blocs de 16 jetons" in capsys.readouterr().out


KILLED_AT_STEP_6 = """
import os, signal, sys, aurore, tensorflow as tf
from aurore.workshop.exercises import load_script
step3 = load_script(aurore.config.PACKAGE_DIR / "3_train_solution.py")

class PowerCut(tf.keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == 6:
            os.kill(os.getpid(), signal.SIGKILL)

real_train = step3.train
step3.train = lambda model, train, test, plan, callbacks: real_train(model, train, test, plan, callbacks + [PowerCut()])
step3.main(sys.argv[1:])
"""


def test_a_killed_short_run_keeps_its_checkpoints_and_resume_continues_it(tokenized, tmp_path, capsys):
    import shutil

    config = tokenized.__class__(workdir=tmp_path, base_model=tokenized.base_model)
    shutil.copytree(tokenized.tokenized_dir, config.tokenized_dir)
    step3.main(args(config, "--max-steps", "12", "--save-every", "4"))  # a long run, finished
    first = checkpoints.latest_run(config.checkpoints_dir)
    killed = run_script(["-c", KILLED_AT_STEP_6, *args(config, "--max-steps", "9", "--save-every", "2",
                                                        "--learning-rate", "1e-3")], {})
    assert killed.returncode == -9  # SIGKILL: no handler ran
    runs = checkpoints.runs(config.checkpoints_dir)
    assert len(runs) == 2 and runs[0].folder == first.folder
    assert [checkpoints.read_state(c)["step"] for c in first.checkpoints()] == [8, 12]  # the old run untouched
    assert [checkpoints.read_state(c)["step"] for c in runs[1].checkpoints()] == [4, 6]  # the new run's own
    capsys.readouterr()
    # keep 1: the checkpoint it resumed from is pruned as soon as the run saves a newer one
    metrics = step3.main(["--workdir", str(config.workdir), "--base-model", config.base_model, "--resume",
                          "--keep-checkpoints", "1"])
    out = capsys.readouterr().out
    assert f"Reprise de l'essai {runs[1].name} au pas 6" in out
    assert metrics["resumed_from_step"] == 6 and [s["step"] for s in metrics["steps"]] == [7, 8, 9]
    assert metrics["settings"]["learning_rate"] == 1e-3 and metrics["settings"]["max_steps"] == 9  # its settings
    with pytest.raises(SystemExit):  # nothing left: said, and the final model is not replaced
        step3.main(["--workdir", str(config.workdir), "--base-model", config.base_model, "--resume"])
    assert "est déjà allé jusqu'au bout" in capsys.readouterr().err


def test_pruning_never_removes_the_checkpoint_just_written(tokenized, tmp_path):
    model = hub.load_causal_lm(tokenized.base_model, tokenized)
    model.compile(optimizer="adam")
    run = checkpoints.Run.start(tmp_path, {})
    tokenizer = hub.load_tokenizer(tokenized.base_model)
    for step in (30, 10):  # a lower step after a higher one (a restarted schedule)
        model.optimizer.iterations.assign(step)
        written = run.save(model, tokenizer, keep=1)
        assert written.is_dir() and run.checkpoints() == [written]


def test_an_epoch_ending_on_a_step_just_saved_adds_its_score_without_writing_the_weights_again(tokenized, tmp_path):
    model = hub.load_causal_lm(tokenized.base_model, tokenized)
    model.compile(optimizer="adam")
    run, tokenizer = checkpoints.Run.start(tmp_path, {}), hub.load_tokenizer(tokenized.base_model)
    model.optimizer.iterations.assign(5)
    written = run.save(model, tokenizer, keep=3)
    weights = (written / "tf_model.h5").stat()
    assert run.save(model, tokenizer, keep=3, epoch=1, val_loss=np.float32(2.5)) == written
    again = (written / "tf_model.h5").stat()
    assert (again.st_ino, again.st_mtime_ns) == (weights.st_ino, weights.st_mtime_ns)
    assert checkpoints.read_state(written) == {**checkpoints.read_state(written), "step": 5, "epoch": 1, "val_loss": 2.5}
    run.save(model, tokenizer, keep=3)  # a save without news (Ctrl-C right after) keeps the epoch and the score
    assert checkpoints.read_state(written)["val_loss"] == 2.5
    model.optimizer.iterations.assign(6)
    assert run.save(model, tokenizer, keep=3).name == "checkpoint-000006"
    other = checkpoints.Run(run.folder)  # another process (a resumed run) at the same step writes it whole
    model.optimizer.iterations.assign(5)
    other.save(model, tokenizer, keep=3)
    assert (written / "tf_model.h5").stat().st_ino != weights.st_ino


@pytest.mark.parametrize("when", ["before", "saving"])
def test_ctrl_c_during_perplexity_or_the_final_save_saves_a_checkpoint_and_nothing_half_written(
        tokenized, tmp_path, monkeypatch, capsys, when):
    import shutil

    from aurore.training import final

    config = tokenized.__class__(workdir=tmp_path, base_model=tokenized.base_model)
    shutil.copytree(tokenized.tokenized_dir, config.tokenized_dir)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    if when == "before":
        monkeypatch.setattr(step3, "perplexity", interrupted)
    else:  # inside save_final, once the staging folder holds the model
        monkeypatch.setattr(final.plots, "plot_losses", interrupted)
    with pytest.raises(SystemExit) as stopped:
        step3.main(args(config, "--max-steps", "4", "--save-every", "0"))
    assert stopped.value.code == 130 and "Interrompu (Ctrl-C) : point de contrôle enregistré" in capsys.readouterr().err
    saved = checkpoints.latest_run(config.checkpoints_dir).latest()
    assert checkpoints.read_state(saved)["step"] == (0 if when == "before" else 4)
    assert not list(config.models_dir.glob(".final-*")) and not config.finetuned_dir.exists()


def counting_perplexity(monkeypatch) -> list:
    calls, real = [], step3.perplexity
    monkeypatch.setattr(step3, "perplexity", lambda model, data: calls.append(1) or real(model, data))
    return calls


def test_each_model_state_is_scored_once(tokenized, tmp_path, monkeypatch):
    """The base model's score is measured at the first run and reused by the next ones on the same blocks; the
    "after" figure is fit's last validation, the whole book scored by the final model."""
    import math
    import shutil

    config = tokenized.__class__(workdir=tmp_path, base_model=tokenized.base_model)
    shutil.copytree(tokenized.tokenized_dir, config.tokenized_dir)
    calls = counting_perplexity(monkeypatch)
    first = step3.main(args(config, "--max-steps", "3"))
    assert len(calls) == 1
    second = step3.main(args(config, "--max-steps", "3", "--learning-rate", "1e-3"))
    assert len(calls) == 1 and second["perplexity_before"] == first["perplexity_before"]
    assert second["perplexity_after"] == pytest.approx(math.exp(second["epochs"][-1]["val_loss"]))
    model = TFAutoModelForCausalLM.from_pretrained(str(config.finetuned_dir))
    model.compile(optimizer="adam")
    blocks = training.reblock(step3.load_blocks(config), 64)
    _, test_data = step3.to_tf_datasets(model, blocks, 8)
    assert step3.perplexity(model, test_data) == pytest.approx(second["perplexity_after"], rel=1e-4)
    assert second["seconds"]["training_steps"] > 0 and second["seconds"]["validation"] > 0


def test_a_score_kept_for_other_weights_blocks_or_settings_is_never_used(tokenized, tmp_path, monkeypatch):
    import os
    import shutil

    config = tokenized.__class__(workdir=tmp_path, base_model=str(tmp_path / "base"))
    shutil.copytree(tokenized.base_model, config.base_model)
    shutil.copytree(tokenized.tokenized_dir, config.tokenized_dir)
    calls = counting_perplexity(monkeypatch)
    step3.main(args(config, "--max-steps", "2"))
    step3.main(args(config, "--max-steps", "2", "--block-size", "16"))  # other blocks
    step3.main(args(config, "--max-steps", "2", "--batch-size", "4"))  # other batches
    assert len(calls) == 3
    weights = tmp_path / "base" / "model.safetensors"  # new weights (converted again for TensorFlow)
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**12))
    step3.main(args(config, "--max-steps", "2"))
    assert len(calls) == 4


def test_a_resumed_run_starts_from_its_checkpoints_validation(tokenized, tmp_path, monkeypatch):
    import math
    import shutil

    config = tokenized.__class__(workdir=tmp_path, base_model=tokenized.base_model)
    shutil.copytree(tokenized.tokenized_dir, config.tokenized_dir)
    first = step3.main(args(config, "--max-steps", "6", "--epochs", "2", "--save-every", "0"))
    latest = checkpoints.latest_run(config.checkpoints_dir).latest()  # written at the end of epoch 2
    assert checkpoints.read_state(latest)["val_loss"] == pytest.approx(first["epochs"][-1]["val_loss"])
    calls = counting_perplexity(monkeypatch)
    resumed = step3.main(args(config, "--resume", "--max-steps", "9", "--epochs", "3"))
    assert calls == [] and resumed["perplexity_before"] == pytest.approx(math.exp(first["epochs"][-1]["val_loss"]))


def test_saved_folders_are_readable_by_the_group(trained):
    import os
    import stat

    metrics, config = trained
    for folder in (config.finetuned_dir, checkpoints.latest_run(config.checkpoints_dir).latest()):
        umask = os.umask(0)
        os.umask(umask)
        assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask, folder
        weights = folder / "tf_model.h5"
        assert stat.S_IMODE(weights.stat().st_mode) & 0o044 == 0o644 & ~umask & 0o044, weights


def test_a_checkpoint_restores_adamw_moments_not_only_the_step_count(tmp_path):
    """AdamWeightDecay (a legacy Keras optimizer) keeps its moments as slots of the trained weights."""
    from aurore.workshop import fixtures

    def trained_model_and_optimizer(config):
        model = fixtures.tiny_model()
        step3.freeze_lower_layers(model, 0)
        optimizer = step3.make_optimizer(10, config)
        model.compile(optimizer=optimizer)
        return model, optimizer

    from aurore.config import Config

    config = Config(learning_rate=1e-2, weight_decay=0.01)
    model, optimizer = trained_model_and_optimizer(config)
    data = model.prepare_tf_dataset(fixtures.tiny_blocks()["train"], batch_size=2, shuffle=False)
    model.fit(data, epochs=1, steps_per_epoch=3, verbose=0)
    run = checkpoints.Run.start(tmp_path, {})
    saved = run.save(model, fixtures.tiny_tokenizer(), keep=1)

    reloaded = TFAutoModelForCausalLM.from_pretrained(str(saved))
    fresh = step3.make_optimizer(10, config)
    checkpoints.restore_optimizer(fresh, reloaded, saved)
    reloaded.compile(optimizer=fresh)
    fresh._create_all_weights(reloaded.trainable_variables)  # the slots a first step would create
    assert int(fresh.iterations.numpy()) == 3
    for before, after in zip(model.trainable_variables, reloaded.trainable_variables):
        for slot in ("m", "v"):
            np.testing.assert_allclose(fresh.get_slot(after, slot).numpy(), optimizer.get_slot(before, slot).numpy(),
                                       err_msg=f"{before.name} {slot}")
            assert np.abs(optimizer.get_slot(before, slot).numpy()).sum() > 0


def test_tensorboard_logs_the_loss_while_it_trains(trained):
    """Keras' TensorBoard callback writes the run's curves under models/logs/<run> (tensorboard --logdir)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, config = trained
    run = checkpoints.latest_run(config.checkpoints_dir).name
    events = EventAccumulator(str(config.models_dir / "logs" / run / "train")).Reload()
    tags = events.Tags()["tensors"] + events.Tags()["scalars"]
    assert "batch_loss" in tags or "epoch_loss" in tags, tags
    validation = EventAccumulator(str(config.models_dir / "logs" / run / "validation")).Reload()
    assert "epoch_loss" in validation.Tags()["tensors"] + validation.Tags()["scalars"]


def test_an_unwritten_save_model_stops_before_training_and_says_which_exercise(tokenized, tmp_path, capsys):
    """Exercises 3.1-3.8 done, 3.9 not: the run must not train for minutes and then lose the model."""
    import shutil

    from aurore.workshop import exercises
    from aurore.workshop.exercises import load_script

    solution = exercises.script_for(3, solution=True)
    numbers = frozenset(exercises.exercise_numbers(solution.read_text(encoding="utf-8"))) - {"3.9"}
    partial = tmp_path / "3_train.py"
    partial.write_text(exercises.exercise_text(solution.read_text(encoding="utf-8"), solution.name, keep=numbers),
                       encoding="utf-8")
    config = tokenized.__class__(workdir=tmp_path / "work", base_model=tokenized.base_model)
    shutil.copytree(tokenized.tokenized_dir, config.tokenized_dir)
    with pytest.raises(SystemExit) as stopped:
        load_script(partial).main(args(config, "--max-steps", "4"))
    err = capsys.readouterr().err
    assert stopped.value.code == 1 and "Exercice 3.9 à compléter (3_train.py, fonction save_model())." in err
    assert "Traceback" not in err and "Il en reste" not in err
    assert not config.checkpoints_dir.exists() and not config.finetuned_dir.exists()


def test_a_save_model_that_forgets_the_tokenizer_is_named_and_nothing_is_published(tokenized, tmp_path, monkeypatch,
                                                                                   capsys):
    import shutil

    config = tokenized.__class__(workdir=tmp_path, base_model=tokenized.base_model)
    shutil.copytree(tokenized.tokenized_dir, config.tokenized_dir)
    monkeypatch.setattr(step3, "save_model", lambda model, tokenizer, folder: model.save_pretrained(folder))
    with pytest.raises(SystemExit) as stopped:
        step3.main(args(config, "--max-steps", "2"))
    err = capsys.readouterr().err
    assert stopped.value.code == 1 and "tokenizer_config.json" in err and "exercice 3.9" in err
    assert not config.finetuned_dir.exists() and not list(config.models_dir.glob(".final-*"))
    assert checkpoints.latest_run(config.checkpoints_dir).latest() is not None  # the training is kept

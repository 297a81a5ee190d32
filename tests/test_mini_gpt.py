"""Step 6: the miniature GPT from scratch."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from transformers.generation.tf_logits_process import (
    TFTemperatureLogitsWarper,
    TFTopKLogitsWarper,
    TFTopPLogitsWarper,
)

from aurore.config import Config
from aurore.engines import generation, mini_engine, minigpt
from aurore.training import callbacks
from conftest import MINI_TEXT, MINI_TINY, mini_args, script

step6 = script("6_mini_gpt_solution")

TINY, TEXT, tiny_args = MINI_TINY, MINI_TEXT, mini_args


def test_each_target_is_the_token_after_its_input_and_validation_covers_each_token_once():
    ids = np.arange(50, dtype=np.int32)
    config = Config(mini_seq_len=6, seed=0)
    pairs = list(step6.make_batches(ids, config, 4, shuffle=False))
    inputs = np.concatenate([x.numpy() for x, _ in pairs])
    targets = np.concatenate([y.numpy() for _, y in pairs])
    assert inputs.shape[1] == 6 and np.array_equal(targets, inputs + 1)
    assert targets.ravel().tolist() == list(range(1, 1 + targets.size))  # in order, no token scored twice
    train = next(iter(step6.make_batches(ids, config, 4, shuffle=True)))
    assert train[0].shape == (4, 6) and np.array_equal(train[1].numpy(), train[0].numpy() + 1)


def test_changing_a_later_token_never_changes_earlier_logits():
    tf.keras.utils.set_random_seed(1)
    model = step6.create_model(50, Config(**TINY), 100)
    ids = np.random.default_rng(0).integers(0, 50, size=(3, 12)).astype("int32")
    changed = ids.copy()
    changed[:, 7:] = (changed[:, 7:] + 1) % 50
    np.testing.assert_allclose(model(changed).numpy()[:, :7], model(ids).numpy()[:, :7], atol=1e-5)
    assert not np.allclose(model(changed).numpy()[:, 7:], model(ids).numpy()[:, 7:])


def test_the_blocks_are_pre_norm_so_the_residual_path_keeps_its_scale():
    tf.keras.utils.set_random_seed(0)
    block = step6.TransformerBlock(16, 2, 32)
    x = np.random.default_rng(0).normal(size=(2, 6, 16)).astype("float32") * 10 + 3
    out = block(x).numpy()
    assert abs(out.mean() - 3) < 1 and 5 < out.std() < 15  # a post-norm block would give mean 0 and std 1


def test_the_output_scores_are_the_token_embeddings_transposed():
    tf.keras.utils.set_random_seed(3)
    model = step6.create_model(30, Config(**TINY), 100)
    matrices = [v for v in model.trainable_variables if v.shape == (30, TINY["mini_embed_dim"])]
    assert len(matrices) == 1 and not [v for v in model.trainable_variables if v.shape[-1] == 30]
    ids = np.random.default_rng(0).integers(0, 30, size=(2, 9)).astype("int32")
    matrices[0].assign(tf.tensor_scatter_nd_update(matrices[0], [[7]], tf.zeros([1, TINY["mini_embed_dim"]])))
    logits = model(ids).numpy()
    assert np.all(logits[..., 7] == 0) and np.all(logits[..., 8] != 0)  # token 7's vector scores token 7


def test_the_learning_rate_warms_up_then_decays_to_a_tenth():
    schedule = step6.WarmupCosineDecay(2e-3, 10, 110)
    rates = np.array([float(schedule(tf.constant(step))) for step in range(130)])
    assert np.all(np.diff(rates[:10]) > 0) and rates[0] == pytest.approx(2e-4)
    assert rates[9] == pytest.approx(2e-3) and rates.max() == pytest.approx(2e-3)
    assert np.all(np.diff(rates[10:111]) < 0) and rates[60] == pytest.approx(1.1e-3)
    assert np.allclose(rates[110:], 2e-4)
    rebuilt = step6.WarmupCosineDecay.from_config(schedule.get_config())
    assert float(rebuilt(tf.constant(33))) == pytest.approx(rates[33])


def test_the_optimizer_follows_the_schedule_during_training():
    model = step6.create_model(20, Config(**{**TINY, "mini_warmup_steps": 4}), 12)
    ids = np.random.default_rng(0).integers(0, 20, size=(8, 9)).astype("int32")
    history = callbacks.StepHistory()
    model.fit(ids[:, :-1], ids[:, 1:], batch_size=2, epochs=3, verbose=0, callbacks=[history])
    schedule = step6.WarmupCosineDecay(3e-3, 4, 12)
    assert [s["next_lr"] for s in history.steps] == pytest.approx([float(schedule(step)) for step in range(12)])


def test_a_time_budget_stops_training_early_and_still_saves_a_servable_model(tmp_path, capsys):
    text_file = tmp_path / "corpus.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    metrics = step6.main(tiny_args(tmp_path, "--text-file", str(text_file), "--mini-epochs", "1000",
                                   "--time-budget", "1s"))
    assert 1 <= metrics["steps"] < 20_000 and len(metrics["epochs"]) < 1000
    assert metrics["epochs"][-1]["step"] == metrics["steps"]  # the epoch the budget cut short counts its real steps
    assert "Entraînement arrêté par le budget de temps (--time-budget, 1 s) au pas" in capsys.readouterr().out
    engine = mini_engine.MiniGPTEngine(Config(workdir=tmp_path).mini_gpt_dir)
    texts = engine.generate_batch(["Le vent"], generation.Sampling(max_new_tokens=5, num_return_sequences=1))
    written = texts[0][0][len("Le vent"):]
    assert texts[0][0].startswith("Le vent") and 5 <= len(written) <= 5 + minigpt.WORD_END_MARGIN


def test_a_malformed_time_budget_fails_before_loading_anything(tmp_path):
    from conftest import run_script

    result = run_script(["aurore/6_mini_gpt_solution.py", "--workdir", str(tmp_path), "--time-budget", "soon"], {})
    assert result.returncode == 1 and "Ce n'est pas une durée" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("tokens", ["char", "word"])
def test_training_on_a_small_text_lowers_the_loss_saves_and_reloads(tmp_path, capsys, tokens):
    text_file = tmp_path / "corpus.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    metrics = step6.main(tiny_args(tmp_path, "--text-file", str(text_file), "--mini-tokens", tokens,
                                   "--mini-epochs", "3", "--prompt", "Le vent"))
    losses = [e["loss"] for e in metrics["epochs"]]
    assert losses[-1] < losses[0] and all("val_loss" in e for e in metrics["epochs"])
    assert 0 < metrics["bits_per_character"] < 8
    out = capsys.readouterr().out
    assert "[époque 1] " in out and len(metrics["samples"]) == 3  # the TextGenerator callback printed text
    folder = Config(workdir=tmp_path).mini_gpt_dir
    for name in ("model.keras", "vocabulary.json", "metrics.json", "loss.png", "serving/saved_model.pb"):
        assert (folder / name).exists(), name
    assert json.loads((folder / "vocabulary.json").read_text())["kind"] == tokens

    vocabulary, seq_len = minigpt.load_vocabulary(folder)
    ids = np.array([vocabulary.encode("Le vent soufflait sur la")[-seq_len:]], dtype="int32")
    reloaded = tf.keras.models.load_model(folder / "model.keras")
    served = tf.saved_model.load(str(folder / "serving"))
    np.testing.assert_allclose(reloaded(ids).numpy(), served.serve(tf.constant(ids)).numpy(), atol=1e-5)


def test_the_george_sand_books_by_default_with_validation_on_the_held_out_book(standin):
    train, validation = minigpt.load_texts(standin)
    assert len(train) == 4 and len(validation) == 1
    assert validation[0].startswith("Quand j’ai commencé, par la Mare au Diable")


def test_a_folder_of_text_files_is_one_document_per_file(tmp_path):
    for label in ("pos", "neg"):
        (tmp_path / "aclImdb" / "train" / label).mkdir(parents=True)
        for i in range(10):
            (tmp_path / "aclImdb" / "train" / label / f"{i}_7.txt").write_text(f"{label} review {i}.", "utf-8")
    train, validation = minigpt.load_texts(Config(), text_folder=str(tmp_path / "aclImdb" / "train"))
    assert len(train) == 18 and len(validation) == 2
    assert sorted(train + validation) == sorted(f"{lab} review {i}." for lab in ("pos", "neg") for i in range(10))


def test_vocabularies_round_trip():
    chars = step6.build_vocabulary(["abc déjà"], Config(mini_tokens="char"))
    assert chars.tokens == [minigpt.UNKNOWN_CHAR, " ", "a", "b", "c", "d", "j", "à", "é"]
    assert chars.decode(chars.encode("déjà")) == "déjà" and chars.encode("z") == [0]
    words = step6.build_vocabulary(["Le chat dort. Le chien court !"], Config(mini_tokens="word", mini_vocab_size=20))
    assert words.tokens[:2] == ["", "[UNK]"]
    assert words.decode(words.encode("Le chien dort.")) == "le chien dort."
    assert words.encode("le zèbre")[1] == 1  # unknown word -> [UNK]


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, 5, 1.0), (0.7, 0, 0.8), (1.5, 20, 0.9), (1.0, 1, 1.0)])
def test_hand_written_sampling_keeps_exactly_the_tokens_transformers_keeps(temperature, top_k, top_p):
    logits = np.random.default_rng(top_k).normal(size=40) * 2
    expected = tf.constant(logits[None], tf.float32)
    if temperature != 1.0:
        expected = TFTemperatureLogitsWarper(temperature)(None, expected, 0)
    if top_k:
        expected = TFTopKLogitsWarper(top_k)(None, expected, 0)
    if top_p < 1.0:
        expected = TFTopPLogitsWarper(top_p)(None, expected, 0)
    allowed = set(np.flatnonzero(np.isfinite(expected.numpy()[0])))
    rng = np.random.default_rng(0)
    drawn = {step6.sample_next(logits, rng, temperature, top_k, top_p) for _ in range(3000)}
    assert drawn <= allowed
    probabilities = tf.nn.softmax(expected).numpy()[0]
    assert drawn >= {i for i in allowed if probabilities[i] > 0.01}  # every likely-enough allowed token shows up


def test_greedy_is_the_argmax():
    logits = np.random.default_rng(3).normal(size=30)
    assert step6.sample_next(logits, np.random.default_rng(0), temperature=0) == int(np.argmax(logits))


def test_the_web_engine_serves_the_exported_model(mini_gpt_workdir):
    config = Config(workdir=mini_gpt_workdir)
    assert mini_engine.exists(config)
    engine = mini_engine.MiniGPTEngine(config.mini_gpt_dir)
    sampling = generation.Sampling(max_new_tokens=10, num_return_sequences=2, seed=4)
    texts = engine.generate_batch(["Le vent", "Germain"], sampling)
    assert [len(t) for t in texts] == [2, 2] and texts[0][0].startswith("Le vent") and texts[1][0].startswith("Germain")
    assert texts == engine.generate_batch(["Le vent", "Germain"], sampling)  # the seed makes it repeatable


def test_save_then_load_gives_identical_logits(tmp_path):
    tf.keras.utils.set_random_seed(2)
    model = step6.create_model(40, Config(**TINY), 100)
    ids = np.random.default_rng(1).integers(0, 40, size=(2, 10)).astype("int32")
    before = model(ids).numpy()
    vocabulary = minigpt.CharVocabulary([chr(65 + i) for i in range(40)])
    minigpt.save(model, vocabulary, tmp_path / "mini", {"seq_len": TINY["mini_seq_len"]})
    np.testing.assert_array_equal(tf.keras.models.load_model(tmp_path / "mini" / "model.keras")(ids).numpy(), before)
    served = tf.saved_model.load(str(tmp_path / "mini" / "serving"))  # keep it alive: .serve uses its variables
    np.testing.assert_allclose(served.serve(ids).numpy(), before, atol=1e-6)
    assert minigpt.load_vocabulary(tmp_path / "mini")[0].tokens == vocabulary.tokens


def test_missing_corpora_are_clear_errors(tmp_path):
    from conftest import run_script

    for flag, message in ((f"--text-file={tmp_path / 'none.txt'}", "Fichier texte introuvable"),
                          (f"--text-folder={tmp_path}", "moins de deux fichiers .txt")):
        result = run_script(["aurore/6_mini_gpt_solution.py", "--workdir", str(tmp_path), flag], {})
        assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr, flag


def test_step6_logs_its_curves_for_tensorboard(mini_gpt_workdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = sorted((Config(workdir=mini_gpt_workdir).models_dir / "logs").glob("mini-gpt-*"))
    assert runs, "no TensorBoard log folder"
    events = EventAccumulator(str(runs[-1] / "train")).Reload()
    assert "epoch_loss" in events.Tags()["tensors"] + events.Tags()["scalars"]


def test_saving_is_atomic_an_interrupted_save_leaves_the_previous_model(mini_gpt_workdir, tmp_path):
    import shutil

    from aurore.engines import minigpt

    folder = tmp_path / "mini-gpt"
    shutil.copytree(Config(workdir=mini_gpt_workdir).mini_gpt_dir, folder)
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))

    class Interrupted:
        def save(self, path):
            (Path(path).parent / "half-written").write_text("x")
            raise KeyboardInterrupt

    vocabulary = minigpt.load_vocabulary(folder).vocabulary
    with pytest.raises(KeyboardInterrupt):
        minigpt.save(Interrupted(), vocabulary, folder, {"seq_len": 16})
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["mini-gpt"]  # no staging folder left

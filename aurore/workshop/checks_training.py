"""The checks of the two Keras training steps: step 3 (fine-tuning) and step 6 (a mini-GPT from scratch)."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from types import ModuleType
from typing import Iterator

from aurore.config import Config
from aurore.text.french import format_decimal
from aurore.workshop import fixtures
from aurore.workshop.checks_base import Check, expect
from aurore.workshop.exercises import load_script, script_for


# -- step 3 ---------------------------------------------------------------------------------------------------


def _check_load_blocks(module: ModuleType, tmp: Path) -> None:
    from datasets import disable_progress_bars

    disable_progress_bars()
    config = Config(workdir=tmp)
    fixtures.tiny_blocks().save_to_disk(str(config.tokenized_dir))
    loaded = module.load_blocks(config)
    expect(loaded["train"]["input_ids"] == fixtures.tiny_blocks()["train"]["input_ids"], "chargez config.tokenized_dir")


def _check_load_model(module: ModuleType, tmp: Path) -> None:
    folder = fixtures.tiny_model_folder(tmp / "model")
    model = module.load_model(str(folder))
    expect(type(model).__name__ == "TFGPT2LMHeadModel", f"il faut le modèle TensorFlow de langue causale, pas "
                                                         f"{type(model).__name__}")
    expect(model.config.n_embd == 16, "chargez le modèle du dossier `folder`")


def _check_tf_datasets(module: ModuleType, tmp: Path) -> None:
    train, test = module.to_tf_datasets(fixtures.tiny_model(), fixtures.tiny_blocks(), batch_size=4)
    batch = next(iter(test))
    features = batch[0] if isinstance(batch, tuple) else batch
    ids = features["input_ids"] if isinstance(features, dict) else features
    expect(tuple(ids.shape) == (4, 8), "des lots de batch_size blocs")
    expect(ids.numpy().tolist() == fixtures.tiny_blocks()["test"]["input_ids"][:4], "le test ne doit pas être mélangé")
    expect(len(train) == 2, "le train contient tous les blocs, par lots")


def _check_optimizer(module: ModuleType, tmp: Path) -> None:
    optimizer = module.make_optimizer(100, Config(learning_rate=1e-3, warmup_ratio=0.1, weight_decay=0.01))
    rate = optimizer.learning_rate

    def at(step: int) -> float:
        return float(rate(step)) if callable(rate) else float(rate)

    expect(at(0) < 1e-4, "le taux doit monter progressivement (échauffement)")
    expect(abs(at(10) - 1e-3) < 1e-5, "le pic doit être config.learning_rate à la fin de l'échauffement")
    expect(at(99) > 0 and at(100) < 1e-9, "le taux doit atteindre 0 au DERNIER pas (total_steps)")


def _fit_tiny(module: ModuleType, callbacks: list, steps: int = 4):
    import tensorflow as tf

    model = fixtures.tiny_model()
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    data = model.prepare_tf_dataset(fixtures.tiny_blocks()["train"], batch_size=2, shuffle=False)
    return model, model.fit(data.repeat(), epochs=1, steps_per_epoch=steps, callbacks=callbacks, verbose=0)


def _check_saver(module: ModuleType, tmp: Path) -> None:
    from aurore.training.checkpoints import Run, read_state

    for every, expected in ((2, [2, 4]), (0, [4])):
        run = Run.start(tmp / f"every-{every}", {})
        _fit_tiny(module, [module.CheckpointSaver(run, fixtures.tiny_tokenizer(), every, keep=5)], steps=4)
        got = [read_state(c)["step"] for c in run.checkpoints()]
        expect(got == expected, f"avec every={every}, points de contrôle attendus aux pas {expected}, obtenus {got}")


def _check_compile(module: ModuleType, tmp: Path) -> None:
    import tensorflow as tf

    model, optimizer = fixtures.tiny_model(), tf.keras.optimizers.Adam(1e-3)
    module.compile_model(model, optimizer, False)
    expect(model.optimizer is optimizer, "compilez avec l'optimiseur donné")
    loss = model.train_on_batch(fixtures.tiny_blocks()["train"].with_format("numpy")[:2])
    expect(math.isfinite(float(loss)), "sans fonction de perte donnée, le modèle calcule la sienne")


def _check_fit(module: ModuleType, tmp: Path) -> None:
    import tensorflow as tf

    from aurore.training import Plan

    model = fixtures.tiny_model()
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    train, test = (model.prepare_tf_dataset(fixtures.tiny_blocks()[s], batch_size=4, shuffle=False)
                   for s in ("train", "test"))
    history = module.train(model, train.repeat(), test, Plan(epochs=2, steps_per_epoch=2, total_steps=4), [])
    losses = getattr(history, "history", {}).get("loss", [])
    expect(len(losses) == 2, "model.fit doit tourner plan.epochs fois et renvoyer son historique")
    expect("val_loss" in history.history, "validez sur test_data (validation_data)")
    expect(losses[1] < losses[0], "la perte doit baisser")


def _check_perplexity(module: ModuleType, tmp: Path) -> None:
    import tensorflow as tf

    model = fixtures.tiny_model()
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    test = model.prepare_tf_dataset(fixtures.tiny_blocks()["test"], batch_size=4, shuffle=False)
    expected = math.exp(model.evaluate(test, verbose=0))
    got = module.perplexity(model, test)
    expect(isinstance(got, float) and abs(got - expected) < 1e-3 * expected,
           f"attendu exp(perte moyenne) = {format_decimal(expected, 2)}, obtenu {got!r}")


# -- step 6 ---------------------------------------------------------------------------------------------------


def _check_shift(module: ModuleType, tmp: Path) -> None:
    import numpy as np
    import tensorflow as tf

    windows = tf.constant(np.arange(12, dtype=np.int32).reshape(2, 6))
    pair = module.split_input_target(windows)
    expect(isinstance(pair, tuple) and len(pair) == 2, "renvoyez deux tenseurs : (entrées, cibles)")
    inputs, targets = (np.asarray(t) for t in pair)
    expect(inputs.shape == (2, 5) and targets.shape == (2, 5),
           f"avec des fenêtres [2, 6], entrées et cibles font [2, 5], obtenus {inputs.shape} et {targets.shape}")
    expect(inputs.tolist() == [[0, 1, 2, 3, 4], [6, 7, 8, 9, 10]], "les entrées : chaque fenêtre sans son dernier jeton")
    expect(targets.tolist() == [[1, 2, 3, 4, 5], [7, 8, 9, 10, 11]], "les cibles : chaque fenêtre sans son premier "
           "jeton (la cible d'une position est le jeton qui la suit)")


def _check_mask(module: ModuleType, tmp: Path) -> None:
    import numpy as np

    mask = np.asarray(module.causal_attention_mask(4)).astype(bool)
    expect(mask.shape == (4, 4), f"forme attendue (4, 4), obtenue {mask.shape}")
    expect((mask == np.tril(np.ones((4, 4), dtype=bool))).all(), "vrai pour j <= i (sur et sous la diagonale)")


def _mini_config() -> Config:
    return Config(mini_seq_len=8, mini_embed_dim=16, mini_heads=2, mini_ff_dim=32, mini_layers=1,
                  mini_dropout=0.0, mini_learning_rate=1e-2, mini_warmup_steps=1)


@contextlib.contextmanager
def _with_solution_parts(module: ModuleType, *names: str) -> Iterator[None]:
    """Exercises build on each other: give the participant's module the solution's version of other parts, so
    that each exercise is graded on its own; the participant's own versions come back afterwards."""
    solution = load_script(script_for(6, solution=True))
    own = {name: getattr(module, name) for name in names}
    for name in names:
        setattr(module, name, getattr(solution, name))
    try:
        yield
    finally:
        for name, value in own.items():
            setattr(module, name, value)


def _changed_future(x):
    changed = x.copy()
    changed[:, 4:] += 1.0
    return changed


def _check_block(module: ModuleType, tmp: Path) -> None:
    import numpy as np
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    block = module.TransformerBlock(16, 2, 32, 0.0)
    x = np.random.default_rng(0).normal(size=(2, 6, 16)).astype("float32")
    with _with_solution_parts(module, "causal_attention_mask"):
        out, changed_out, shifted = (block(v).numpy() for v in (x, _changed_future(x), x + 5.0))
    expect(out.shape == (2, 6, 16), "le bloc garde la forme [batch, positions, embed_dim]")
    expect(np.allclose(changed_out[:, :4], out[:, :4], atol=1e-5),
           "une position ne doit pas voir le futur : donnez le masque causal à l'attention (attention_mask)")
    expect(abs(shifted.mean()) > 2.5, "pré-normalisation : normalisez l'entrée de chaque sous-couche, pas la somme "
           "(la sortie garde le décalage de l'entrée)")


def _check_create_model(module: ModuleType, tmp: Path) -> None:
    with _with_solution_parts(module, "causal_attention_mask", "TransformerBlock", "TokenAndPositionEmbedding",
                              "WarmupCosineDecay"):
        _grade_create_model(module)


def _grade_create_model(module: ModuleType) -> None:
    import numpy as np

    model = module.create_model(30, _mini_config(), 100)
    ids = np.random.default_rng(0).integers(0, 30, size=(16, 8)).astype("int32")
    expect(model(ids).shape == (16, 8, 30), "sortie attendue [batch, positions, vocab_size]")
    shapes = sorted(tuple(v.shape) for v in model.trainable_variables if len(v.shape) == 2)
    expect((16, 30) not in shapes and shapes.count((30, 16)) == 1,
           "poids partagés : les scores viennent de la couche de plongements appelée avec reverse=True, sans "
           "couche Dense [embed_dim, vocab_size] à part")
    expect(model.optimizer is not None, "compilez le modèle (optimiseur AdamW, perte from_logits=True)")
    rate = model.optimizer.get_config()["learning_rate"]  # a schedule is saved as its class and settings
    expect("WarmupCosineDecay" in str(rate) and "100" in str(rate),
           "le taux d'apprentissage de l'optimiseur est un WarmupCosineDecay sur total_steps pas")
    first = model.evaluate(ids[:, :-1], ids[:, 1:], verbose=0)
    model.fit(ids[:, :-1], ids[:, 1:], epochs=10, verbose=0)
    expect(model.evaluate(ids[:, :-1], ids[:, 1:], verbose=0) < first, "la perte doit baisser à l'entraînement")


def _check_sampling(module: ModuleType, tmp: Path) -> None:
    import numpy as np

    logits = np.array([2.0, 1.0, 0.5, 3.0, -1.0, 0.0])
    rng = np.random.default_rng(0)
    expect(module.sample_next(logits, rng, temperature=0) == 3, "température 0 : le plus grand logit")
    drawn = {module.sample_next(logits, rng, top_k=2) for _ in range(200)}
    expect(drawn == {0, 3}, f"top_k=2 : seuls les deux meilleurs (0 et 3), obtenus {sorted(drawn)}")
    drawn = {module.sample_next(logits, rng, top_p=0.7) for _ in range(200)}
    expect(drawn == {0, 3}, f"top_p=0.7 : 3 (p≈0.60) puis 0, qui fait franchir 0.7, obtenus {sorted(drawn)}")
    drawn = [module.sample_next(logits, rng, temperature=100.0) for _ in range(600)]
    expect(len(set(drawn)) == 6, "une température très haute rend tous les jetons possibles")


def _check_schedule(module: ModuleType, tmp: Path) -> None:
    import tensorflow as tf

    schedule = module.WarmupCosineDecay(1e-3, 10, 110)
    rate = {step: float(schedule(tf.constant(step))) for step in (0, 4, 9, 10, 60, 110, 200)}
    expect(abs(rate[0] - 1e-4) < 1e-7 and abs(rate[4] - 5e-4) < 1e-7,
           f"échauffement (peak 1e-3 sur 10 pas) : attendu 1e-4 au pas 0 et 5e-4 au pas 4 (une montée linéaire "
           f"qui atteint peak au dernier pas d'échauffement), obtenus {rate[0]:.2g} et {rate[4]:.2g}")
    expect(abs(rate[9] - 1e-3) < 1e-7 and abs(rate[10] - 1e-3) < 1e-7, "au bout de l'échauffement : peak")
    expect(abs(rate[60] - 5.5e-4) < 1e-7, f"à mi-chemin du cosinus : (peak + floor) / 2 = 5.5e-4, obtenu {rate[60]:.3g}")
    expect(abs(rate[110] - 1e-4) < 1e-7 and abs(rate[200] - 1e-4) < 1e-7,
           f"à la fin, puis au-delà : floor = peak / 10, obtenus {rate[110]:.3g} et {rate[200]:.3g}")


STEP3_CHECKS = [
    Check("3.1", "datasets.load_from_disk", _check_load_blocks),
    Check("3.2", "TFAutoModelForCausalLM.from_pretrained", _check_load_model),
    Check("3.3", "model.prepare_tf_dataset(split, batch_size=..., shuffle=...)", _check_tf_datasets),
    Check("3.4", "transformers.create_optimizer", _check_optimizer),
    Check("3.5", "on_train_batch_end : optimizer_step(self.model) % self.every", _check_saver),
    Check("3.6", "model.compile(optimizer=..., jit_compile=...)", _check_compile),
    Check("3.7", "model.fit(..., validation_data=..., epochs=..., steps_per_epoch=..., initial_epoch=...)",
          _check_fit),
    Check("3.8", "math.exp(model.evaluate(...))", _check_perplexity),
]

STEP6_CHECKS = [
    Check("6.1", "windows[:, :-1], windows[:, 1:]", _check_shift),
    Check("6.2", "comparez tf.range(length) en colonne et en ligne", _check_mask),
    Check("6.3", "x + self.attention(norm(x), norm(x), attention_mask=...), puis x + feed_forward(norm(x))",
          _check_block),
    Check("6.4", "layers.Input -> TokenAndPositionEmbedding -> TransformerBlock x N -> LayerNormalization -> "
          "plongements (reverse=True), compile", _check_create_model),
    Check("6.5", "np.argmax, division par la température, top-k, softmax, top-p, rng.choice", _check_sampling),
    Check("6.6", "tf.cast, tf.clip_by_value, tf.cos, tf.where", _check_schedule),
]

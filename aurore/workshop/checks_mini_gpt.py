"""The checks of step 6: a miniature GPT built from scratch with Keras."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import ModuleType
from typing import Iterator

from aurore.config import Config
from aurore.workshop.checks_base import Check, expect
from aurore.workshop.exercises import load_script, script_for


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

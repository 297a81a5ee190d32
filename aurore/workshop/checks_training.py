"""The checks of step 3: fine-tuning GPT-2 with Keras `fit`."""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType

from aurore.config import Config
from aurore.text.french import format_decimal
from aurore.workshop import fixtures
from aurore.workshop.checks_base import Check, expect


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


def _check_save_model(module: ModuleType, tmp: Path) -> None:
    import tensorflow as tf
    from transformers import AutoTokenizer, TFAutoModelForCausalLM

    model, folder = fixtures.tiny_model(), tmp / "final"
    module.save_model(model, fixtures.tiny_tokenizer(), str(folder))
    expect(folder.is_dir(), "enregistrez dans le dossier `folder` donné")
    expect((folder / "tf_model.h5").is_file(), "model.save_pretrained(folder) : les poids et leur configuration")
    expect((folder / "tokenizer_config.json").is_file(), "enregistrez aussi le tokenizer dans le même dossier")
    reloaded = TFAutoModelForCausalLM.from_pretrained(str(folder))
    ids = tf.constant(fixtures.tiny_blocks()["test"]["input_ids"][:1])
    expect(abs(float(reloaded(ids).logits[0, 0, 0]) - float(model(ids).logits[0, 0, 0])) < 1e-5,
           "le modèle relu doit donner les mêmes scores")
    expect(AutoTokenizer.from_pretrained(str(folder)).encode("Le soir") == fixtures.tiny_tokenizer().encode("Le soir"),
           "le tokenizer relu doit découper pareil")


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
    Check("3.9", "model.save_pretrained(folder), tokenizer.save_pretrained(folder)", _check_save_model),
]


"""`python -m aurore check N`: grade a participant's exercise file for step N, in seconds, offline.

Each exercise is run on a small input whose answer is known; one line per exercise (✔ or ✘ with a hint in
French); the exit status is non-zero when any exercise fails.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable

import aurore  # noqa: F401  sets TF_USE_LEGACY_KERAS before TensorFlow loads
from aurore.config import PACKAGE_DIR, Config
from aurore.errors import AuroreError
from aurore.exercises import ExerciseNotDone, exercise_path, solution_files


@dataclass
class Check:
    number: str
    hint: str  # in French: what a failure most likely means
    run: Callable[[ModuleType, Path], None]  # raises AssertionError (or anything) when the exercise is wrong


def load_script(path: Path) -> ModuleType:
    """Import a numbered script by its path (its name starts with a digit, so `import` cannot)."""
    spec = importlib.util.spec_from_file_location(f"aurore_step_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- step 1 ---------------------------------------------------------------------------------------------------

SYNTHETIC_BOOK = (
    "\ufeffThe Project Gutenberg EBook of Essai, by George Sand\r\n\r\n"
    "*** START OF THIS PROJECT GUTENBERG EBOOK ESSAI ***\r\n\r\n"
    "Le vent soufflait sur la lande.\r\nM. Dupont rentra tard.\r\n\r\n"
    "*** END OF THIS PROJECT GUTENBERG EBOOK ESSAI ***\r\n\r\nEnd of the licence: SEND DONATIONS.\r\n"
)


def _check_download(module: ModuleType, tmp: Path) -> None:
    mirror = tmp / "mirror"
    mirror.mkdir()
    (mirror / "pg7.txt").write_text(SYNTHETIC_BOOK, encoding="utf-8")
    config = Config(workdir=tmp / "work", gutenberg_mirror=str(mirror))
    paths = module.download_books([7], config)
    assert set(paths) == {7}, f"les clés devraient être les identifiants [7], pas {sorted(paths)}"
    assert Path(paths[7]).read_bytes() == SYNTHETIC_BOOK.encode(), "le fichier téléchargé n'a pas le bon contenu"


def _check_strip(module: ModuleType, tmp: Path) -> None:
    from aurore.gutenberg import BookFormatError

    lines = SYNTHETIC_BOOK.replace("\ufeff", "").replace("\r", "").split("\n")
    body = module.strip_boilerplate(lines, "pg7.txt")
    assert [line for line in body if line] == ["Le vent soufflait sur la lande.", "M. Dupont rentra tard."], (
        f"il faut garder exactement les lignes entre les marqueurs, pas {body!r}"
    )
    try:
        module.strip_boilerplate(lines[:5], "pg7.txt")
    except BookFormatError:
        pass
    else:
        raise AssertionError("un livre sans ligne END doit lever gutenberg.BookFormatError")


def _check_split(module: ModuleType, tmp: Path) -> None:
    from aurore import french

    french.install_punkt(tmp / "nltk_data")
    text = "« Viens-tu ? » dit-il. M. Dupont arriva. Elle se tut."
    expected = ["« Viens-tu ? » dit-il.", "M. Dupont arriva.", "Elle se tut."]
    got = module.split_sentences(text)
    assert got == expected, f"attendu {expected}, obtenu {got}"


def _check_build(module: ModuleType, tmp: Path) -> None:
    dataset = module.build_dataset(train={1: ["Une phrase ici.", "Et une autre."], 2: ["Encore une."]},
                                   test={3: ["La dernière phrase."]})
    assert set(dataset) == {"train", "test"}, f"il faut les splits train et test, pas {sorted(dataset)}"
    assert set(dataset["train"].column_names) == {"text", "book_id"}, "il faut les colonnes text et book_id"
    assert dataset["train"]["text"] == ["Une phrase ici.", "Et une autre.", "Encore une."], "phrases du train"
    assert dataset["train"]["book_id"] == [1, 1, 2], "chaque phrase garde l'identifiant de son livre"
    assert dataset["test"]["text"] == ["La dernière phrase."], "le test contient le livre mis de côté"


# -- step 2 ---------------------------------------------------------------------------------------------------

_FRENCH = ["La petite Fadette regardait la rivière.", "Germain laboura le champ avec ses bœufs.",
           "Lélia se taisait devant le lac."] * 20


def tiny_tokenizer(folder: Path):
    """A small GPT-2 style tokenizer saved in `folder`, built in a second (no hub needed)."""
    from aurore.standin import train_tokenizer

    tokenizer = train_tokenizer(_FRENCH, vocab_size=400)
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def _check_load_tokenizer(module: ModuleType, tmp: Path) -> None:
    reference = tiny_tokenizer(tmp / "tok")
    loaded = module.load_tokenizer(Config(workdir=tmp, base_model=str(tmp / "tok")))
    assert loaded is not None and len(loaded) == len(reference), "il faut charger le tokenizer de config.base_model"


def _check_analyse(module: ModuleType, tmp: Path) -> None:
    tokenizer = tiny_tokenizer(tmp / "tok")
    sentence = "La rivière chantait."
    ids, tokens = module.analyse_sentence(tokenizer, sentence)
    assert list(ids) == tokenizer(sentence)["input_ids"], "ids : utilisez tokenizer(sentence)['input_ids']"
    assert list(tokens) == tokenizer.convert_ids_to_tokens(ids), "tokens : utilisez tokenizer.convert_ids_to_tokens"


def _check_blocks(module: ModuleType, tmp: Path) -> None:
    batch = {"input_ids": [[1, 2, 3], [4, 5], [6, 7, 8, 9]], "book_id": [7, 7, 8]}
    got = module.group_into_blocks(batch, block_size=3, eos_id=0)
    expected = [[1, 2, 3], [4, 5, 0], [6, 7, 8]]  # eos between the two books, remainder [9] dropped
    assert got["input_ids"] == expected, f"blocs attendus {expected}, obtenus {got['input_ids']}"
    assert got["labels"] == expected, "labels doit être une copie de input_ids"


def _check_specialise(module: ModuleType, tmp: Path) -> None:
    tokenizer = tiny_tokenizer(tmp / "tok")
    texts = ["Le chanvreur contait des histoires à la veillée."] * 50
    new = module.train_specialised_tokenizer(tokenizer, texts, 300)
    assert new is not tokenizer and len(new) <= 300, "le nouveau tokenizer doit avoir au plus vocab_size jetons"
    assert "Ġchanvreur" in new.get_vocab(), "le nouveau tokenizer doit avoir appris les mots des textes donnés"


# -- step 3 ---------------------------------------------------------------------------------------------------


def tiny_blocks(rows: int = 8, length: int = 8):
    from datasets import Dataset, DatasetDict

    blocks = [[(i * 7 + j) % 50 for j in range(length)] for i in range(rows)]
    split = Dataset.from_dict({"input_ids": blocks, "labels": blocks})
    return DatasetDict(train=split, test=split)


def tiny_model():
    import tensorflow as tf
    from transformers import GPT2Config, TFGPT2LMHeadModel

    tf.keras.utils.set_random_seed(0)
    return TFGPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=64, n_embd=16, n_layer=1, n_head=2))


def _check_load_blocks(module: ModuleType, tmp: Path) -> None:
    from datasets import disable_progress_bars

    disable_progress_bars()
    config = Config(workdir=tmp)
    tiny_blocks().save_to_disk(str(config.tokenized_dir))
    loaded = module.load_blocks(config)
    assert loaded["train"]["input_ids"] == tiny_blocks()["train"]["input_ids"], "chargez config.tokenized_dir"


def _check_tf_datasets(module: ModuleType, tmp: Path) -> None:
    train, test = module.to_tf_datasets(tiny_model(), tiny_blocks(), batch_size=4)
    batch = next(iter(test))
    features = batch[0] if isinstance(batch, tuple) else batch
    ids = features["input_ids"] if isinstance(features, dict) else features
    assert tuple(ids.shape) == (4, 8), "des lots de batch_size blocs"
    assert ids.numpy().tolist() == tiny_blocks()["test"]["input_ids"][:4], "le test ne doit pas être mélangé"
    assert len(train) == 2, "le train contient tous les blocs, par lots"


def _check_optimizer(module: ModuleType, tmp: Path) -> None:
    config = Config(learning_rate=1e-3, warmup_ratio=0.1, weight_decay=0.01)
    optimizer = module.make_optimizer(100, config)
    rate = optimizer.learning_rate
    at = lambda step: float(rate(step)) if callable(rate) else float(rate)  # noqa: E731
    assert at(0) < 1e-4, "le taux doit monter progressivement (warm-up)"
    assert abs(at(10) - 1e-3) < 1e-5, "le pic doit être config.learning_rate à la fin du warm-up"
    assert at(99) > 0 and at(100) < 1e-9, "le taux doit atteindre 0 au DERNIER pas (num_train_steps=total_steps)"


def _check_fit(module: ModuleType, tmp: Path) -> None:
    import tensorflow as tf

    model = tiny_model()
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    train, test = (model.prepare_tf_dataset(tiny_blocks()[s], batch_size=4, shuffle=False) for s in ("train", "test"))
    history = module.train(model, train.repeat(), test, epochs=2, steps_per_epoch=2, callbacks=[])
    assert len(history.history.get("loss", [])) == 2, "model.fit doit tourner epochs fois"
    assert "val_loss" in history.history, "passez validation_data=test_data"
    assert history.history["loss"][1] < history.history["loss"][0], "la perte doit baisser"


# -- step 4 ---------------------------------------------------------------------------------------------------


def tiny_model_folder(folder: Path) -> Path:
    """A tiny GPT-2 with its tokenizer saved in `folder`, as step 3 would leave it."""
    model = tiny_model()
    tokenizer = tiny_tokenizer(folder)
    model.config.vocab_size = len(tokenizer)
    model = type(model)(model.config)
    model(model.dummy_inputs)
    model.save_pretrained(str(folder))
    return folder


def _check_load_generator(module: ModuleType, tmp: Path) -> None:
    config = Config(workdir=tmp, base_model=str(tmp / "nowhere"))
    tiny_model_folder(config.finetuned_dir)
    generator = module.load(config)
    assert generator.task == "text-generation", "il faut un pipeline text-generation"
    assert generator.model.name_or_path.rstrip("/").endswith(config.finetuned_dir.name), "le modèle affiné d'abord"


def _check_write(module: ModuleType, tmp: Path) -> None:
    from aurore import generation

    config = Config(workdir=tmp)
    generator = generation.load_generator(str(tiny_model_folder(tmp / "model")), config)
    sampling = generation.Sampling(max_new_tokens=3, num_return_sequences=2)
    texts = module.write(generator, ["La rivière", "Germain"], sampling)
    assert list(texts) == ["La rivière", "Germain"], "une entrée par prompt, dans l'ordre"
    assert all(len(v) == 2 and all(t.startswith(p) for t in v) for p, v in texts.items()), "num_return_sequences textes"


# -- step 6 ---------------------------------------------------------------------------------------------------


def _check_mask(module: ModuleType, tmp: Path) -> None:
    import numpy as np

    mask = np.asarray(module.causal_attention_mask(4)).astype(bool)
    assert mask.shape == (4, 4), f"forme attendue (4, 4), obtenue {mask.shape}"
    assert (mask == np.tril(np.ones((4, 4), dtype=bool))).all(), "vrai pour j <= i (sur et sous la diagonale)"


def _mini_config() -> Config:
    return Config(mini_seq_len=8, mini_embed_dim=16, mini_heads=2, mini_ff_dim=32, mini_layers=1,
                  mini_dropout=0.0, mini_learning_rate=1e-2)


def _with_solution_parts(module: ModuleType, *names: str) -> None:
    """Exercises build on each other: give the participant's module the solution's version of earlier parts,
    so that each exercise is graded on its own."""
    solution = load_script(script_for(6, solution=True))
    for name in names:
        setattr(module, name, getattr(solution, name))


def _check_block(module: ModuleType, tmp: Path) -> None:
    import numpy as np
    import tensorflow as tf

    _with_solution_parts(module, "causal_attention_mask")
    tf.keras.utils.set_random_seed(0)
    block = module.TransformerBlock(16, 2, 32, 0.0)
    x = np.random.default_rng(0).normal(size=(2, 6, 16)).astype("float32")
    out = block(x).numpy()
    assert out.shape == (2, 6, 16), "le bloc garde la forme [batch, positions, embed_dim]"
    changed = x.copy()
    changed[:, 4:] += 1.0
    assert np.allclose(block(changed).numpy()[:, :4], out[:, :4], atol=1e-5), (
        "une position ne doit pas voir le futur : passez attention_mask=causal_attention_mask(...)")


def _check_create_model(module: ModuleType, tmp: Path) -> None:
    import numpy as np

    _with_solution_parts(module, "causal_attention_mask", "TransformerBlock", "TokenAndPositionEmbedding")

    model = module.create_model(30, _mini_config())
    ids = np.random.default_rng(0).integers(0, 30, size=(16, 8)).astype("int32")
    assert model(ids).shape == (16, 8, 30), "sortie attendue [batch, positions, vocab_size]"
    assert model.optimizer is not None, "compilez le modèle (optimiseur Adam, perte from_logits=True)"
    first = model.evaluate(ids[:, :-1], ids[:, 1:], verbose=0)
    model.fit(ids[:, :-1], ids[:, 1:], epochs=10, verbose=0)
    assert model.evaluate(ids[:, :-1], ids[:, 1:], verbose=0) < first, "la perte doit baisser à l'entraînement"


def _check_sampling(module: ModuleType, tmp: Path) -> None:
    import numpy as np

    logits = np.array([2.0, 1.0, 0.5, 3.0, -1.0, 0.0])
    rng = np.random.default_rng(0)
    assert module.sample_next(logits, rng, temperature=0) == 3, "température 0 : le plus grand logit"
    drawn = {module.sample_next(logits, rng, top_k=2) for _ in range(200)}
    assert drawn == {0, 3}, f"top_k=2 : seuls les deux meilleurs (0 et 3), obtenus {sorted(drawn)}"
    drawn = {module.sample_next(logits, rng, top_p=0.7) for _ in range(200)}
    assert drawn == {0, 3}, f"top_p=0.7 : 3 (p≈0.60) puis 0, qui fait franchir 0.7, obtenus {sorted(drawn)}"
    drawn = [module.sample_next(logits, rng, temperature=100.0) for _ in range(600)]
    assert len(set(drawn)) == 6, "une température très haute rend tous les jetons possibles"


CHECKS: dict[int, list[Check]] = {
    1: [
        Check("1.1", "appelez gutenberg.download_book pour chaque identifiant", _check_download),
        Check("1.2", "cherchez les lignes de marqueurs avec is_start_marker / is_end_marker", _check_strip),
        Check("1.3", "nltk.sent_tokenize(..., language='french') puis french.mend_dialogue", _check_split),
        Check("1.4", "Dataset.from_dict({'text': ..., 'book_id': ...}) pour chaque split", _check_build),
    ],
    2: [
        Check("2.1", "hub.load_tokenizer(config.base_model)", _check_load_tokenizer),
        Check("2.2", "tokenizer(sentence)['input_ids'] et tokenizer.convert_ids_to_tokens", _check_analyse),
        Check("2.3", "concaténez, ajoutez eos_id entre deux livres, coupez en blocs", _check_blocks),
        Check("2.4", "tokenizer.train_new_from_iterator(paquets de textes, vocab_size)", _check_specialise),
    ],
    3: [
        Check("3.1", "load_from_disk(str(config.tokenized_dir))", _check_load_blocks),
        Check("3.2", "model.prepare_tf_dataset(split, batch_size=..., shuffle=...)", _check_tf_datasets),
        Check("3.3", "create_optimizer(..., num_train_steps=total_steps, ...)[0]", _check_optimizer),
        Check("3.4", "model.fit(train_data, validation_data=test_data, epochs=..., ...)", _check_fit),
    ],
    4: [
        Check("4.1", "generation.choose_model(config) puis generation.load_generator", _check_load_generator),
        Check("4.2", "generation.generate(generator, prompt, sampling) pour chaque prompt", _check_write),
    ],
    6: [
        Check("6.1", "tf.range(length)[:, None] >= tf.range(length)[None, :]", _check_mask),
        Check("6.2", "attention avec attention_mask, puis résidu + normalisation, deux fois", _check_block),
        Check("6.3", "Input -> TokenAndPositionEmbedding -> TransformerBlock x N -> Dense, puis compile",
              _check_create_model),
        Check("6.4", "argmax si température 0 ; sinon /température, top-k, top-p, puis rng.choice", _check_sampling),
    ],
}


def script_for(step: int, solution: bool = False) -> Path:
    for path in solution_files(PACKAGE_DIR):
        if path.name.startswith(f"{step}_"):
            return path if solution else exercise_path(path)
    raise AuroreError(f"There is no step {step}.", f"Steps with checks: {sorted(CHECKS)}.")


@contextlib.contextmanager
def _keras_registry_unchanged():
    """Loading a script registers its Keras layer classes by name ("aurore>TransformerBlock"); an unfinished
    exercise must not replace the classes that later `load_model` calls resolve."""
    def registry():
        return sys.modules["tf_keras"].utils.get_custom_objects() if "tf_keras" in sys.modules else None

    before = dict(registry() or {})
    try:
        yield
    finally:
        if registry() is not None:
            registry().clear()
            registry().update(before)


def grade(path: Path, step: int) -> dict[str, bool]:
    """Run every check of `step` against the script at `path`; print one line each; return {number: passed}."""
    if step not in CHECKS:
        raise AuroreError(f"Step {step} has no checks yet.", f"Steps with checks: {sorted(CHECKS)}.")
    with _keras_registry_unchanged():
        return _grade(path, step)


def _grade(path: Path, step: int) -> dict[str, bool]:
    try:
        module = load_script(path)
    except Exception as error:  # a syntax error in the participant's file must still give a clear answer
        print(f"✘ {path.name} ne se charge pas : {type(error).__name__}: {error}")
        return {check.number: False for check in CHECKS[step]}
    results = {}
    for check in CHECKS[step]:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                check.run(module, Path(tmp))
            except ExerciseNotDone:
                print(f"✘ Exercice {check.number} : pas encore fait (piste : {check.hint})")
                results[check.number] = False
            except AssertionError as error:
                print(f"✘ Exercice {check.number} : {error} (piste : {check.hint})")
                results[check.number] = False
            except Exception as error:
                where = traceback.extract_tb(error.__traceback__)[-1]
                print(f"✘ Exercice {check.number} : {type(error).__name__}: {error} "
                      f"(ligne {where.lineno} de {Path(where.filename).name} ; piste : {check.hint})")
                results[check.number] = False
            else:
                print(f"✔ Exercice {check.number}")
                results[check.number] = True
    return results


def run_checks(step: int, solution: bool = False) -> int:
    path = script_for(step, solution)
    print(f"Vérification de {path.name}")
    results = grade(path, step)
    done = sum(results.values())
    print(f"{done}/{len(results)} exercices réussis." + (" Bravo !" if done == len(results) else ""))
    return 0 if done == len(results) else 1

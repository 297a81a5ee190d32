"""What `python -m aurore check N` runs: each exercise on a small input whose answer is known.

A check raises CheckFailed with a French message when the exercise is wrong (never a bare `assert`: the grader
must grade the same under `python -O`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable

from aurore import fixtures
from aurore.config import Config
from aurore.exercises import ExerciseNotDone, load_script, script_for


class CheckFailed(Exception):
    """An exercise gives a wrong answer; the message says what was expected, in French."""


def expect(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


@dataclass(frozen=True)
class Check:
    number: str
    hint: str  # in French: the function to look up, when the exercise fails
    run: Callable[[ModuleType, Path], None]


# -- step 1 ---------------------------------------------------------------------------------------------------


def _check_download(module: ModuleType, tmp: Path) -> None:
    mirror = tmp / "mirror"
    mirror.mkdir()
    (mirror / "pg7.txt").write_text(fixtures.SYNTHETIC_BOOK, encoding="utf-8")
    config = Config(workdir=tmp / "work", gutenberg_mirror=str(mirror))
    path = Path(module.download_book(7, config))
    expect(path.is_file() and path.read_bytes() == fixtures.SYNTHETIC_BOOK.encode(),
           "le fichier renvoyé doit être le livre téléchargé")
    expect(path == config.books_dir / "pg7.txt", f"le livre doit être rangé dans {config.books_dir}, pas {path.parent}")
    (mirror / "pg7.txt").unlink()
    expect(Path(module.download_book(7, config)) == path, "un livre déjà téléchargé doit être repris du cache")


def _check_strip(module: ModuleType, tmp: Path) -> None:
    from aurore.gutenberg import BookFormatError

    lines = fixtures.SYNTHETIC_BOOK.replace("\ufeff", "").replace("\r", "").split("\n")
    body = module.strip_boilerplate(lines, "pg7.txt")
    expect([line for line in body if line] == ["Le vent soufflait sur la lande.", "M. Dupont rentra tard."],
           f"il faut garder exactement les lignes entre les marqueurs, pas {body!r}")
    for cut, missing in ((lines[:5], "END"), (lines[3:], "START")):
        try:
            module.strip_boilerplate(cut, "pg7.txt")
        except BookFormatError:
            continue
        raise CheckFailed(f"un livre sans ligne {missing} doit lever gutenberg.BookFormatError")


def _check_split(module: ModuleType, tmp: Path) -> None:
    from aurore import french

    french.install_punkt(tmp / "nltk_data")
    text = "« Viens-tu ? » dit-il. M. Dupont arriva. Elle se tut."
    try:
        got = module.split_sentences(text)
    except LookupError:
        raise CheckFailed('NLTK ne connaît pas cette langue : elle s\'écrit en anglais, en toutes lettres ("french")') \
            from None
    expected = ["« Viens-tu ? » dit-il.", "M. Dupont arriva.", "Elle se tut."]
    expect(got == expected, f"attendu {expected}, obtenu {got}")


def _check_build(module: ModuleType, tmp: Path) -> None:
    dataset = module.build_dataset(train={1: ["Une phrase ici.", "Et une autre."], 2: ["Encore une."]},
                                   test={3: ["La dernière phrase."]})
    expect(set(dataset) == {"train", "test"}, f"il faut les splits train et test, pas {sorted(dataset)}")
    expect(set(dataset["train"].column_names) == {"text", "book_id"}, "il faut les colonnes text et book_id")
    expect(dataset["train"]["text"] == ["Une phrase ici.", "Et une autre.", "Encore une."], "phrases du train")
    expect(dataset["train"]["book_id"] == [1, 1, 2], "chaque phrase garde l'identifiant de son livre")
    expect(dataset["test"]["text"] == ["La dernière phrase."], "le test contient le livre mis de côté")


# -- step 2 ---------------------------------------------------------------------------------------------------


def _check_load_tokenizer(module: ModuleType, tmp: Path) -> None:
    reference = fixtures.tiny_tokenizer(tmp / "tok")
    loaded = module.load_tokenizer(Config(workdir=tmp, base_model=str(tmp / "tok")))
    expect(loaded is not None and loaded.get_vocab() == reference.get_vocab(),
           "il faut charger le tokenizer de config.base_model")


def _check_analyse(module: ModuleType, tmp: Path) -> None:
    tokenizer = fixtures.tiny_tokenizer()
    sentence = "La rivière chantait."
    ids, tokens = module.analyse_sentence(tokenizer, sentence)
    expect(list(ids) == tokenizer(sentence)["input_ids"], "ids : les \"input_ids\" de tokenizer(sentence)")
    expect(list(tokens) == tokenizer.convert_ids_to_tokens(list(ids)), "tokens : le morceau de texte de chaque id")


def _check_tokenize(module: ModuleType, tmp: Path) -> None:
    from datasets import Dataset, DatasetDict, disable_progress_bars

    disable_progress_bars()
    tokenizer = fixtures.tiny_tokenizer()
    split = Dataset.from_dict({"text": ["La rivière.", "Le soir."], "book_id": [1, 2]})
    got = module.tokenize(DatasetDict(train=split, test=split), tokenizer)
    expect(isinstance(got, DatasetDict) and set(got) == {"train", "test"}, "renvoyez le DatasetDict transformé")
    expect(set(got["train"].column_names) == {"input_ids", "book_id"},
           f"colonnes attendues input_ids et book_id (text retirée), pas {got['train'].column_names}")
    expect(got["train"]["input_ids"] == tokenizer([" La rivière.", " Le soir."])["input_ids"],
           "chaque ligne doit recevoir les jetons de sa phrase")


def _check_blocks(module: ModuleType, tmp: Path) -> None:
    batch = {"input_ids": [[1, 2, 3], [4, 5], [6, 7, 8, 9]], "book_id": [7, 7, 8]}
    got = module.group_into_blocks(batch, block_size=3, eos_id=0)
    expected = [[1, 2, 3], [4, 5, 0], [6, 7, 8]]  # eos between the two books, remainder [9] dropped
    expect(got.get("input_ids") == expected, f"blocs attendus {expected}, obtenus {got.get('input_ids')}")
    expect(got.get("labels") == expected, "labels doit être une copie de input_ids")


def _check_specialise(module: ModuleType, tmp: Path) -> None:
    from transformers import AutoTokenizer

    texts = ["Le chanvreur contait des histoires à la veillée."] * 50
    new = module.train_specialised_tokenizer(fixtures.tiny_tokenizer(), texts, 300, str(tmp / "special"))
    expect(new is not None and len(new) <= 300, "le nouveau tokenizer doit avoir au plus vocab_size jetons")
    expect("Ġchanvreur" in new.get_vocab(), "le nouveau tokenizer doit avoir appris les mots des textes donnés")
    expect((tmp / "special" / "tokenizer.json").is_file(), "enregistrez-le dans `folder`")
    expect(AutoTokenizer.from_pretrained(str(tmp / "special")).get_vocab() == new.get_vocab(),
           "le dossier doit contenir ce tokenizer-là")


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
    from aurore.checkpoints import Run, read_state

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
           f"attendu exp(perte moyenne) = {expected:.2f}, obtenu {got!r}")


# -- step 4 ---------------------------------------------------------------------------------------------------


def _check_pipeline(module: ModuleType, tmp: Path) -> None:
    try:
        generator = module.make_generator(str(fixtures.tiny_model_folder(tmp / "model")))
    except NameError as error:
        raise CheckFailed(f"{error} : sans PyTorch, donnez framework=\"tf\" et dtype=None au pipeline") from None
    expect(getattr(generator, "task", None) == "text-generation", "il faut un pipeline de la tâche text-generation")
    expect(generator.tokenizer is not None and generator.model.config.n_embd == 16,
           "le modèle et le tokenizer du dossier `folder`")


def _check_write(module: ModuleType, tmp: Path) -> None:
    from transformers import pipeline

    from aurore.generation import Sampling

    folder = str(fixtures.tiny_model_folder(tmp / "model"))
    generator = pipeline("text-generation", model=folder, tokenizer=folder, framework="tf", dtype=None)
    texts = module.write(generator, ["La rivière", "Germain"], Sampling(max_new_tokens=3, num_return_sequences=2))
    expect(isinstance(texts, dict) and list(texts) == ["La rivière", "Germain"], "une entrée par prompt, dans l'ordre")
    expect(all(len(v) == 2 and all(isinstance(t, str) and t.startswith(p) for t in v) for p, v in texts.items()),
           "num_return_sequences textes par prompt, lus sous la clé \"generated_text\"")


# -- step 5 ---------------------------------------------------------------------------------------------------


def _client(module: ModuleType):
    from aurore import web
    from aurore.serving import GenerationService

    service = GenerationService(fixtures.EchoEngine(), timeout=10)
    models = web.Models({"gpt2": web.Served(service, web.ModelInfo("models/gpt2-george-sand", True))})
    return module.create_app(models).test_client()


def _answered(response):
    """A route still holding todo() answers with the package's error page: grade it as not done."""
    if response.status_code == 500 and "à compléter" in response.text:
        raise ExerciseNotDone(response.text)
    return response


def _check_page(module: ModuleType, tmp: Path) -> None:
    client = _client(module)
    form = _answered(client.get("/generate"))
    expect(form.status_code == 200 and 'name="prompt"' in form.text, "GET /generate doit afficher le formulaire")
    page = client.post("/generate", data={"prompt": "Le soir", "seed": "3", "num_texts": "2"})
    expect(page.status_code == 200 and page.text.count('<article class="text">Le soir et la suite') == 2,
           "POST /generate doit afficher les textes du modèle (web.answer, puis render_template avec result=)")
    bad = client.post("/generate", data={"prompt": "  "})
    expect(bad.status_code == 400 and "vide" in bad.text, "une requête invalide : la page avec error= et le code 400")


def _check_api(module: ModuleType, tmp: Path) -> None:
    client = _client(module)
    good = _answered(client.post("/api/generate", json={"prompt": "Le soir", "seed": 3, "num_texts": 1}))
    data = good.get_json(silent=True) or {}
    expect(good.status_code == 200 and data.get("texts") == ["Le soir et la suite 0 (graine 3)"],
           f"attendu les textes en JSON, obtenu {good.status_code} {data}")
    expect(data.get("prompt") == "Le soir" and data.get("seed") == 3, "renvoyez aussi le prompt et la graine")
    bad = client.post("/api/generate", data="pas du JSON", content_type="application/json")
    expect(bad.status_code == 400 and "error" in (bad.get_json(silent=True) or {}),
           "un corps qui n'est pas du JSON : {\"error\": ...} et le code 400")


# -- step 6 ---------------------------------------------------------------------------------------------------


def _check_mask(module: ModuleType, tmp: Path) -> None:
    import numpy as np

    mask = np.asarray(module.causal_attention_mask(4)).astype(bool)
    expect(mask.shape == (4, 4), f"forme attendue (4, 4), obtenue {mask.shape}")
    expect((mask == np.tril(np.ones((4, 4), dtype=bool))).all(), "vrai pour j <= i (sur et sous la diagonale)")


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
    expect(out.shape == (2, 6, 16), "le bloc garde la forme [batch, positions, embed_dim]")
    changed = x.copy()
    changed[:, 4:] += 1.0
    expect(np.allclose(block(changed).numpy()[:, :4], out[:, :4], atol=1e-5),
           "une position ne doit pas voir le futur : donnez le masque causal à l'attention (attention_mask)")


def _check_create_model(module: ModuleType, tmp: Path) -> None:
    import numpy as np

    _with_solution_parts(module, "causal_attention_mask", "TransformerBlock", "TokenAndPositionEmbedding")

    model = module.create_model(30, _mini_config())
    ids = np.random.default_rng(0).integers(0, 30, size=(16, 8)).astype("int32")
    expect(model(ids).shape == (16, 8, 30), "sortie attendue [batch, positions, vocab_size]")
    expect(model.optimizer is not None, "compilez le modèle (optimiseur Adam, perte from_logits=True)")
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


CHECKS: dict[int, list[Check]] = {
    1: [
        Check("1.1", "tf.keras.utils.get_file(nom, origin=..., cache_dir=..., cache_subdir=...)", _check_download),
        Check("1.2", "enumerate(lines) avec gutenberg.is_start_marker / is_end_marker", _check_strip),
        Check("1.3", "nltk.sent_tokenize(..., language=...) puis french.mend_dialogue", _check_split),
        Check("1.4", "Dataset.from_dict({colonne: valeurs}) pour chaque split, puis DatasetDict", _check_build),
    ],
    2: [
        Check("2.1", "AutoTokenizer.from_pretrained", _check_load_tokenizer),
        Check("2.2", "tokenizer(sentence) puis tokenizer.convert_ids_to_tokens", _check_analyse),
        Check("2.3", "dataset.map(fonction, batched=True, remove_columns=...)", _check_tokenize),
        Check("2.4", "concaténez, ajoutez eos_id entre deux livres, coupez en blocs", _check_blocks),
        Check("2.5", "tokenizer.train_new_from_iterator puis save_pretrained", _check_specialise),
    ],
    3: [
        Check("3.1", "datasets.load_from_disk", _check_load_blocks),
        Check("3.2", "TFAutoModelForCausalLM.from_pretrained", _check_load_model),
        Check("3.3", "model.prepare_tf_dataset(split, batch_size=..., shuffle=...)", _check_tf_datasets),
        Check("3.4", "transformers.create_optimizer", _check_optimizer),
        Check("3.5", "on_train_batch_end : optimizer_step(self.model) % self.every", _check_saver),
        Check("3.6", "model.compile(optimizer=..., jit_compile=...)", _check_compile),
        Check("3.7", "model.fit(..., validation_data=..., epochs=..., steps_per_epoch=..., initial_epoch=...)",
              _check_fit),
        Check("3.8", "math.exp(model.evaluate(...))", _check_perplexity),
    ],
    4: [
        Check("4.1", "transformers.pipeline(\"text-generation\", model=..., tokenizer=...)", _check_pipeline),
        Check("4.2", "generator(prompts, do_sample=..., ...) puis [\"generated_text\"]", _check_write),
    ],
    5: [
        Check("5.1", "request.method, request.form, web.answer, render_template", _check_page),
        Check("5.2", "request.get_json(silent=True), web.answer, jsonify", _check_api),
    ],
    6: [
        Check("6.1", "comparez tf.range(length) en colonne et en ligne", _check_mask),
        Check("6.2", "self.attention(x, x, attention_mask=...), puis résidu + normalisation, deux fois", _check_block),
        Check("6.3", "layers.Input -> TokenAndPositionEmbedding -> TransformerBlock x N -> layers.Dense, compile",
              _check_create_model),
        Check("6.4", "np.argmax, division par la température, top-k, softmax, top-p, rng.choice", _check_sampling),
    ],
}

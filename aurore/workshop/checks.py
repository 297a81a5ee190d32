"""What `python -m aurore check N` runs: each exercise on a small input whose answer is known (steps 1, 2, 4 and 5
here, step 3 in checks_training.py, step 6 in checks_mini_gpt.py), and the table of checks per step."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from aurore.config import Config
from aurore.workshop import fixtures
from aurore.workshop.checks_base import Check, CheckFailed, expect
from aurore.workshop.checks_mini_gpt import STEP6_CHECKS
from aurore.workshop.checks_training import STEP3_CHECKS
from aurore.workshop.exercises import ExerciseNotDone


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
    from aurore.text.gutenberg import BookFormatError

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
    from aurore.text import french

    french.install_punkt(tmp / "nltk_data")
    text = "« Viens-tu ? » dit-il. M. Dupont arriva. Elle se tut."
    try:
        got = module.split_sentences(text)
    except LookupError:
        raise CheckFailed("NLTK n'a pas de tables pour la langue demandée : donnez-lui la langue, en anglais et en "
                          'toutes lettres (language="french") ; sans elle, il prend l\'anglais') from None
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
    from aurore.engines.generation import Sampling, load_generator

    generator = load_generator(str(fixtures.tiny_model_folder(tmp / "model")), Config(workdir=tmp))
    texts = module.write(generator, ["La rivière", "Germain"], Sampling(max_new_tokens=3, num_return_sequences=2))
    expect(isinstance(texts, dict) and list(texts) == ["La rivière", "Germain"], "une entrée par prompt, dans l'ordre")
    expect(all(len(v) == 2 and all(isinstance(t, str) and t.startswith(p) for t in v) for p, v in texts.items()),
           "num_return_sequences textes par prompt, lus sous la clé \"generated_text\"")


# -- step 5 ---------------------------------------------------------------------------------------------------


def _client(module: ModuleType):
    from aurore import web
    from aurore.web.serving import GenerationService

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
           "POST /generate doit afficher les textes du modèle (web.validate, .model.generate, puis render_template avec "
           "asked= et texts=)")
    bad = client.post("/generate", data={"prompt": "  "})
    expect(bad.status_code == 400 and "vide" in bad.text, "une requête invalide : la page avec error= et le code 400")


def _check_api(module: ModuleType, tmp: Path) -> None:
    client = _client(module)
    good = _answered(client.post("/api/generate", json={"prompt": "Le soir", "seed": 3, "num_texts": 1}))
    data = good.get_json(silent=True) or {}
    expect(good.status_code == 200 and data.get("texts") == ["Le soir et la suite (graine 3)"],
           f"attendu les textes en JSON, obtenu {good.status_code} {data}")
    expect(data.get("prompt") == "Le soir" and data.get("seed") == 3, "renvoyez aussi le prompt et la graine")
    bad = client.post("/api/generate", data="pas du JSON", content_type="application/json")
    expect(bad.status_code == 400 and "error" in (bad.get_json(silent=True) or {}),
           "un corps qui n'est pas du JSON : {\"error\": ...} et le code 400")


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
    3: STEP3_CHECKS,
    4: [
        Check("4.1", "transformers.pipeline(\"text-generation\", model=..., tokenizer=...)", _check_pipeline),
        Check("4.2", "generator(prompts, do_sample=..., ...) puis [\"generated_text\"]", _check_write),
    ],
    5: [
        Check("5.1", "request.method, request.form, web.validate, asked.model.generate, render_template", _check_page),
        Check("5.2", "request.get_json(silent=True), web.validate, asked.model.generate, jsonify", _check_api),
    ],
    6: STEP6_CHECKS,
}

# Fichier d'exercice : complétez chaque bloc « Exercice » (la réponse est dans 1_prepare_dataset_solution.py).
# Fichier produit par `python -m aurore exercises` ; ne modifiez pas la ligne suivante.
# exercise-hash: 2e1d36a955611787
"""Étape 1 : transformer cinq romans de George Sand du Projet Gutenberg en un jeu de données de phrases françaises.

Lancer : python aurore/1_prepare_dataset.py

Quatre livres servent à l'entraînement, un cinquième (La Mare au diable) est gardé à part : le modèle ne le voit
jamais, donc sa perte sur ce livre nous dit s'il a appris le français de George Sand ou seulement retenu par cœur les
livres d'entraînement.
"""

from __future__ import annotations

import aurore  # noqa: F401  en premier : TF_USE_LEGACY_KERAS=1 avant d'importer TensorFlow
import random
from pathlib import Path

import nltk
import tensorflow as tf
from datasets import Dataset, DatasetDict

from aurore.workshop.exercises import todo
from aurore.config import Config, parse_args
from aurore.errors import friendly_errors, step_command
from aurore.text import french, gutenberg

# Keras télécharge un fichier une seule fois et le garde dans un dossier cache : le lancement suivant l'y trouve et se
# passe du réseau. `gutenberg.downloading` fournit l'adresse du livre (gutenberg.org, ou le miroir des organisateurs :
# le même appel lit une URL `file://`), un délai d'attente maximal, et un message clair si le téléchargement échoue.


def download_book(book_id: int, config: Config) -> str:
    """Télécharge un livre dans data/books/ (une seule fois : les lancements suivants réutilisent la copie) et renvoie
    le chemin du fichier."""
    with gutenberg.downloading(book_id, config) as url:
        # Exercice 1.1 : téléchargez le fichier à l'adresse `url` et renvoyez le chemin du fichier obtenu.
        #   Nommez-le pg<book_id>.txt et rangez-le dans config.books_dir, c'est-à-dire le sous-dossier "books"
        #   de config.data_dir : un livre déjà présent ne sera pas retéléchargé.
        #   À chercher : la fonction de Keras qui télécharge un fichier et le garde en cache (tf.keras.utils),
        #   et ses arguments origin, cache_dir et cache_subdir.
        #   Doc : https://www.tensorflow.org/api_docs/python/tf/keras/utils/get_file
        todo("1.1")


# Un fichier Gutenberg entoure le roman d'un en-tête en anglais et d'une longue licence en fin de fichier. L'atelier
# d'origine coupait « les 50 premières lignes » et tout ce qui suivait une ligne contenant END, et entraînait donc le
# modèle sur la licence. Le fichier marque les limites du livre par des lignes entières :
# `*** START OF THIS PROJECT GUTENBERG EBOOK LÉLIA ***` et `*** END OF … ***` ; on garde ce qui se trouve entre elles.


def strip_boilerplate(lines: list[str], source: str) -> list[str]:
    """Garde les lignes situées strictement entre la ligne de début (START) et la ligne de fin (END)."""
    # Exercice 1.2 : renvoyez les lignes situées strictement entre la ligne de début du livre et la première
    #   ligne de fin qui la suit. Parcourez les lignes avec leur numéro (enumerate) : gutenberg.is_start_marker
    #   et gutenberg.is_end_marker reconnaissent les deux marqueurs. S'il en manque un, le fichier est incomplet :
    #   levez l'erreur gutenberg.BookFormatError avec `source` et une courte phrase qui dit ce qui manque.
    todo("1.2")


# Les textes Gutenberg sont coupés en lignes d'environ 70 caractères : une phrase s'étend sur plusieurs lignes et une
# ligne contient des morceaux de deux phrases. On réunit les lignes en paragraphes (french.paragraphs), puis on laisse
# le modèle punkt de NLTK, entraîné sur du français, trouver les fins de phrases : il sait que « M. » ou « etc. » ne
# terminent pas une phrase.


def split_sentences(paragraph: str) -> list[str]:
    """Découpe un paragraphe en phrases avec le modèle français de NLTK, sans couper une réplique comme
    `« Viens ! » dit-il.`"""
    # Exercice 1.3 : découpez le paragraphe en phrases avec la fonction de NLTK qui le fait, en lui disant
    #   que le texte est en français (la langue s'écrit en anglais et en toutes lettres).
    #   Punkt coupe après chaque « ? » et « ! », même au milieu d'une réplique : passez ensuite la liste obtenue à
    #   french.mend_dialogue, qui recolle « Viens-tu ? » et « dit-il. », et renvoyez le résultat.
    #   Doc : https://www.nltk.org/api/nltk.tokenize.sent_tokenize.html
    todo("1.3")


def book_sentences(path: str, min_words: int) -> list[str]:
    """Toutes les phrases en prose d'un livre téléchargé (un fichier qui n'est pas un livre complet est retiré du
    cache)."""
    lines = gutenberg.read_lines(path)
    try:
        body = strip_boilerplate(lines, Path(path).name)
    except gutenberg.BookFormatError:
        gutenberg.forget_book(path)  # un téléchargement raté ne doit pas rester dans le cache
        raise
    return [s for p in french.paragraphs(body) for s in split_sentences(p) if french.is_prose(s, min_words)]


# 🤗 Datasets range les données en colonnes sur le disque (Apache Arrow) : les étapes 2 et 3 les rechargent en un clin
# d'œil, et `map` les transforme par lots. Un `DatasetDict` regroupe les splits : `train` (quatre livres) et `test`
# (le livre gardé à part).


def build_dataset(train: dict[int, list[str]], test: dict[int, list[str]]) -> DatasetDict:
    """Un DatasetDict à deux splits, `train` et `test` ; colonnes `text` (une phrase) et `book_id`."""
    # Exercice 1.4 : pour chaque split, construisez un Dataset à deux colonnes à partir d'un dictionnaire
    #   {nom de colonne: liste de valeurs} : "text" (les phrases de tous les livres du split, livre après livre)
    #   et "book_id" (pour chaque phrase, l'identifiant de son livre). Renvoyez un DatasetDict qui range les deux
    #   Dataset sous les noms train et test.
    #   Doc : https://huggingface.co/docs/datasets/create_dataset#from-python-dictionaries
    todo("1.4")


def report(dataset: DatasetDict, seed: int) -> None:
    for split, data in dataset.items():
        words = sum(len(text.split()) for text in data["text"])
        print(f"{split:5} : {french.format_count(data.num_rows):>6} phrases, {french.format_count(words):>7} mots, "
              f"livres {sorted(set(data['book_id']))}")
    examples = random.Random(seed).sample(dataset["train"]["text"], k=min(3, dataset["train"].num_rows))
    print("\nQuelques phrases d'entraînement :")
    for text in examples:
        print(f"  - {text}")


@friendly_errors
def main(argv: list[str] | None = None) -> DatasetDict:
    config, _ = parse_args(__doc__, argv, step=1)
    french.install_punkt(config.nltk_dir)  # tables françaises de NLTK, écrites sans réseau (nltk.download en exige un)
    paths = {book_id: download_book(book_id, config) for book_id in [*config.train_books, *config.test_books]}
    print(f"{len(paths)} livres dans {config.books_dir}")
    sentences = {book_id: book_sentences(path, config.min_words) for book_id, path in paths.items()}
    dataset = build_dataset(train={b: sentences[b] for b in config.train_books},
                            test={b: sentences[b] for b in config.test_books})
    dataset.save_to_disk(str(config.dataset_dir))
    report(dataset, config.seed)
    print(f"\nEnregistré dans {config.dataset_dir}. Étape suivante : {step_command(2)}")
    return dataset


if __name__ == "__main__":
    main()

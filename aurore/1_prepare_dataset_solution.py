"""Step 1: turn five George Sand novels from Project Gutenberg into a dataset of French sentences.

Run: python aurore/1_prepare_dataset_solution.py

Four books are for training, one (La Mare au diable) is held out: the model never sees it, so its loss on that
book tells us whether it learned George Sand's French or only memorised the training books.
"""

from __future__ import annotations

import aurore  # noqa: F401  first: sets TF_USE_LEGACY_KERAS=1 before TensorFlow is imported
import random
from pathlib import Path

import nltk
import tensorflow as tf
from datasets import Dataset, DatasetDict

from aurore.config import Config, parse_args
from aurore.errors import friendly_errors
from aurore.text import french, gutenberg

# Keras downloads a file once and keeps it in a cache folder: the next run finds it there and skips the network.
# `gutenberg.downloading` gives the book's address (gutenberg.org, or the organisers' mirror: the same call
# reads a `file://` URL), a time-out, and a clear message when the download fails.


def download_book(book_id: int, config: Config) -> str:
    """Download one book into data/books/ (once: later runs reuse the copy) and return the file's path."""
    with gutenberg.downloading(book_id, config) as url:
        # BEGIN SOLUTION 1.1: téléchargez le fichier à l'adresse `url` et renvoyez le chemin du fichier obtenu.
        #   Nommez-le pg<book_id>.txt et rangez-le dans config.books_dir, c'est-à-dire le sous-dossier "books"
        #   de config.data_dir : un livre déjà présent ne sera pas retéléchargé.
        #   À chercher : la fonction de Keras qui télécharge un fichier et le garde en cache (tf.keras.utils),
        #   et ses arguments origin, cache_dir et cache_subdir.
        #   Doc : https://www.tensorflow.org/api_docs/python/tf/keras/utils/get_file
        return tf.keras.utils.get_file(f"pg{book_id}.txt", origin=url, cache_dir=config.data_dir, cache_subdir="books")
        # END SOLUTION


# A Gutenberg file wraps the novel in an English header and a long licence footer. The original workshop cut
# "the first 50 lines" and everything after a line containing END, and trained on the licence. The file
# marks the book's limits with whole lines: `*** START OF THIS PROJECT GUTENBERG EBOOK LÉLIA ***` and
# `*** END OF … ***`; we keep what lies between them.


def strip_boilerplate(lines: list[str], source: str) -> list[str]:
    """Keep the lines strictly between the START and END marker lines."""
    # BEGIN SOLUTION 1.2: renvoyez les lignes situées strictement entre la ligne de début du livre et la première
    #   ligne de fin qui la suit. Parcourez les lignes avec leur numéro (enumerate) : gutenberg.is_start_marker
    #   et gutenberg.is_end_marker reconnaissent les deux marqueurs. S'il en manque un, le fichier est incomplet :
    #   levez l'erreur gutenberg.BookFormatError avec `source` et une courte phrase qui dit ce qui manque.
    start = next((i for i, line in enumerate(lines) if gutenberg.is_start_marker(line)), None)
    if start is None:
        raise gutenberg.BookFormatError(source, "n'a pas de ligne de début (START)")
    end = next((i for i in range(start + 1, len(lines)) if gutenberg.is_end_marker(lines[i])), None)
    if end is None:
        raise gutenberg.BookFormatError(source, "n'a pas de ligne de fin (END)")
    return lines[start + 1 : end]
    # END SOLUTION


# Gutenberg texts are hard-wrapped at ~70 characters: a sentence spans several lines and a line holds pieces of
# two sentences. We join lines into paragraphs (french.paragraphs), then let NLTK's punkt model, trained on
# French, find the sentence ends: it knows that "M." or "etc." do not end a sentence.


def split_sentences(paragraph: str) -> list[str]:
    """Cut a paragraph into sentences with NLTK's French model, keeping dialogue like `« Viens ! » dit-il.` whole."""
    # BEGIN SOLUTION 1.3: découpez le paragraphe en phrases avec la fonction de NLTK qui le fait, en lui disant
    #   que le texte est en français (la langue s'écrit en anglais et en toutes lettres).
    #   Punkt coupe après chaque « ? » et « ! », même au milieu d'une réplique : passez ensuite la liste obtenue à
    #   french.mend_dialogue, qui recolle « Viens-tu ? » et « dit-il. », et renvoyez le résultat.
    #   Doc : https://www.nltk.org/api/nltk.tokenize.sent_tokenize.html
    return french.mend_dialogue(nltk.sent_tokenize(paragraph, language="french"))
    # END SOLUTION


def book_sentences(path: str, min_words: int) -> list[str]:
    """All the prose sentences of one downloaded book (a file that is not a whole book leaves the cache)."""
    lines = gutenberg.read_lines(path)
    try:
        body = strip_boilerplate(lines, Path(path).name)
    except gutenberg.BookFormatError:
        gutenberg.forget_book(path)  # a bad download must not poison the cache
        raise
    return [s for p in french.paragraphs(body) for s in split_sentences(p) if french.is_prose(s, min_words)]


# 🤗 Datasets stores columns of data on disk (Apache Arrow): steps 2 and 3 reload them in a blink, and `map`
# transforms them in batches. A `DatasetDict` groups the splits: `train` (four books) and `test` (the held-out one).


def build_dataset(train: dict[int, list[str]], test: dict[int, list[str]]) -> DatasetDict:
    """A DatasetDict with a `train` and a `test` split; columns `text` (a sentence) and `book_id`."""
    # BEGIN SOLUTION 1.4: pour chaque split, construisez un Dataset à deux colonnes à partir d'un dictionnaire
    #   {nom de colonne: liste de valeurs} : "text" (les phrases de tous les livres du split, livre après livre)
    #   et "book_id" (pour chaque phrase, l'identifiant de son livre). Renvoyez un DatasetDict qui range les deux
    #   Dataset sous les noms train et test.
    #   Doc : https://huggingface.co/docs/datasets/create_dataset#from-python-dictionaries
    def to_dataset(books: dict[int, list[str]]) -> Dataset:
        texts = [sentence for sentences in books.values() for sentence in sentences]
        ids = [book_id for book_id, sentences in books.items() for _ in sentences]
        return Dataset.from_dict({"text": texts, "book_id": ids})

    return DatasetDict(train=to_dataset(train), test=to_dataset(test))
    # END SOLUTION


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
    french.install_punkt(config.nltk_dir)  # NLTK's French tables, written offline (nltk.download needs a network)
    paths = {book_id: download_book(book_id, config) for book_id in [*config.train_books, *config.test_books]}
    print(f"{len(paths)} livres dans {config.books_dir}")
    sentences = {book_id: book_sentences(path, config.min_words) for book_id, path in paths.items()}
    dataset = build_dataset(train={b: sentences[b] for b in config.train_books},
                            test={b: sentences[b] for b in config.test_books})
    dataset.save_to_disk(str(config.dataset_dir))
    report(dataset, config.seed)
    print(f"\nEnregistré dans {config.dataset_dir}. Étape suivante : python aurore/2_tokenize_solution.py")
    return dataset


if __name__ == "__main__":
    main()

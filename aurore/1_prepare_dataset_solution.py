"""Step 1: turn five George Sand novels from Project Gutenberg into a dataset of French sentences.

Run: python aurore/1_prepare_dataset_solution.py   (Docker: docker run -v $PWD/aurore:/aurore text-gen python ...)

Four books are for training, one (La Mare au diable) is held out: the model never sees it, so its loss on that
book tells us whether it learned George Sand's French or only memorised the training books.
"""

from __future__ import annotations

import aurore  # noqa: F401  first: sets TF_USE_LEGACY_KERAS=1 before TensorFlow is imported
import random
from pathlib import Path

import nltk
from datasets import Dataset, DatasetDict

from aurore import french, gutenberg
from aurore.config import Config, parse_args
from aurore.errors import friendly_errors


# A Gutenberg file wraps the novel in an English header and a long licence footer. The original workshop cut
# "the first 50 lines" and everything after a line containing END, and trained on the licence. The file
# marks the book's limits with whole lines: `*** START OF THIS PROJECT GUTENBERG EBOOK LÉLIA ***` and
# `*** END OF … ***`; we keep what lies between them.


def download_books(book_ids: list[int], config: Config) -> dict[int, Path]:
    """Download each book once (later runs reuse the copy under data/books/) and return {id: path}."""
    # BEGIN SOLUTION 1.1: pour chaque identifiant de livre, appelez gutenberg.download_book(book_id, config) et renvoyez un dictionnaire {book_id: chemin du fichier}.
    return {book_id: gutenberg.download_book(book_id, config) for book_id in book_ids}
    # END SOLUTION


def strip_boilerplate(lines: list[str], source: str) -> list[str]:
    """Keep the lines strictly between the START and END marker lines."""
    # BEGIN SOLUTION 1.2: trouvez l'indice de la ligne START (gutenberg.is_start_marker) puis celui de la première ligne de fin qui la suit (gutenberg.is_end_marker) ; renvoyez les lignes entre les deux. S'il manque un marqueur, levez gutenberg.BookFormatError(source, "has no START/END marker line").
    start = next((i for i, line in enumerate(lines) if gutenberg.is_start_marker(line)), None)
    if start is None:
        raise gutenberg.BookFormatError(source, "has no START marker line")
    end = next((i for i in range(start + 1, len(lines)) if gutenberg.is_end_marker(lines[i])), None)
    if end is None:
        raise gutenberg.BookFormatError(source, "has no END marker line")
    return lines[start + 1 : end]
    # END SOLUTION


# Gutenberg texts are hard-wrapped at ~70 characters: a sentence spans several lines and a line holds pieces of
# two sentences. We join lines into paragraphs (french.paragraphs), then let NLTK's punkt model, trained on
# French, find the sentence ends: it knows that "M." or "etc." do not end a sentence.


def split_sentences(paragraph: str) -> list[str]:
    """Cut a paragraph into sentences with NLTK's French model, keeping dialogue like `« Viens ! » dit-il.` whole."""
    # BEGIN SOLUTION 1.3: découpez le paragraphe avec nltk.sent_tokenize(paragraph, language="french"), puis passez la liste à french.mend_dialogue pour recoller les incises du dialogue (« Viens-tu ? » dit-il.).
    return french.mend_dialogue(nltk.sent_tokenize(paragraph, language="french"))
    # END SOLUTION


def book_sentences(path: Path, min_words: int) -> list[str]:
    """All the prose sentences of one downloaded book."""
    lines = gutenberg.read_lines(path)
    try:
        body = strip_boilerplate(lines, path.name)
    except gutenberg.BookFormatError:
        gutenberg.forget_book(path)  # a bad download must not poison the cache
        raise
    return [s for p in french.paragraphs(body) for s in split_sentences(p) if french.is_prose(s, min_words)]


def build_dataset(train: dict[int, list[str]], test: dict[int, list[str]]) -> DatasetDict:
    """A DatasetDict with a `train` and a `test` split; columns `text` (a sentence) and `book_id`."""
    # BEGIN SOLUTION 1.4: pour chaque split, mettez toutes les phrases dans une colonne "text" et l'identifiant du livre de chaque phrase dans une colonne "book_id" (Dataset.from_dict), puis renvoyez DatasetDict(train=..., test=...).
    def to_dataset(books: dict[int, list[str]]) -> Dataset:
        rows = [(sentence, book_id) for book_id, sentences in books.items() for sentence in sentences]
        return Dataset.from_dict({"text": [r[0] for r in rows], "book_id": [r[1] for r in rows]})

    return DatasetDict(train=to_dataset(train), test=to_dataset(test))
    # END SOLUTION


def report(dataset: DatasetDict, seed: int) -> None:
    for split, data in dataset.items():
        words = sum(len(text.split()) for text in data["text"])
        print(f"{split:5}: {data.num_rows:6,} sentences, {words:8,} words, books {sorted(set(data['book_id']))}")
    examples = random.Random(seed).sample(dataset["train"]["text"], k=min(3, dataset["train"].num_rows))
    print("\nA few training sentences:")
    for text in examples:
        print(f"  - {text}")


@friendly_errors
def main(argv: list[str] | None = None) -> DatasetDict:
    config, _ = parse_args(__doc__.splitlines()[0], argv)
    french.install_punkt(config.nltk_dir)  # NLTK's French tables, written offline
    paths = download_books([*config.train_books, *config.test_books], config)
    print(f"{len(paths)} books in {config.books_dir}")
    sentences = {book_id: book_sentences(path, config.min_words) for book_id, path in paths.items()}
    dataset = build_dataset(
        train={b: sentences[b] for b in config.train_books}, test={b: sentences[b] for b in config.test_books}
    )
    dataset.save_to_disk(str(config.dataset_dir))
    report(dataset, config.seed)
    print(f"\nSaved to {config.dataset_dir}. Next: python aurore/2_tokenize_solution.py")
    return dataset


if __name__ == "__main__":
    main()

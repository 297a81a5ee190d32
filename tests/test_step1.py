"""Step 1 on synthetic books (each marker style and encoding) and on the five real books."""

import pytest
from datasets import load_from_disk

from aurore.config import Config
from aurore.text import french, gutenberg
from conftest import run_script, script

step1 = script("1_prepare_dataset_solution")

HEADER = {"this": "*** START OF THIS PROJECT GUTENBERG EBOOK ESSAI ***",
          "the": "***START OF THE PROJECT GUTENBERG EBOOK ESSAI***"}
FOOTER = {"this": "*** END OF THIS PROJECT GUTENBERG EBOOK ESSAI ***",
          "the": "***END OF THE PROJECT GUTENBERG EBOOK ESSAI***"}


def synthetic_book(style: str) -> str:
    return "\n".join([
        "The Project Gutenberg EBook of Essai, by George Sand", "", HEADER[style], "",
        "Produced by Some Volunteers and the Online Distributed", "Proofreading Team", "",
        "ESSAI", "", "PAR GEORGE SAND", "",
        "« Viens-tu ? » dit-il. Elle regarda M. Dupont, qui", "souriait doucement.", "",
        "Le soir tombait sur la Vallée Noire, et l'abbé de *** rentra.", "",
        FOOTER[style], "", "*** START: FULL LICENSE ***", "SEND DONATIONS to the Foundation.", ""])


@pytest.fixture(autouse=True)
def punkt(tmp_path_factory):
    french.install_punkt(tmp_path_factory.getbasetemp() / "nltk_data")


@pytest.mark.parametrize("style", ["this", "the"])
@pytest.mark.parametrize("encoding,bom,newline", [("utf-8", True, "\r\n"), ("latin-1", False, "\r\n"),
                                                  ("utf-8", False, "\n")])
def test_synthetic_book_in_each_style_and_encoding(tmp_path, style, encoding, bom, newline):
    path = tmp_path / "pg1.txt"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + synthetic_book(style).replace("\n", newline).encode(encoding))
    assert step1.book_sentences(path, min_words=3) == [
        "« Viens-tu ? » dit-il.",
        "Elle regarda M. Dupont, qui souriait doucement.",
        "Le soir tombait sur la Vallée Noire, et l'abbé de *** rentra.",
    ]


@pytest.mark.parametrize("paragraph,expected", [
    ("« Où allez-vous ? » demanda Germain. « Au Fourche ! » répondit-elle.",
     ["« Où allez-vous ? » demanda Germain.", "« Au Fourche ! » répondit-elle."]),
    ("Oh! oui, qu'elle l'emporte! Je le veux.", ["Oh! oui, qu'elle l'emporte!", "Je le veux."]),
    ("Mme Sand écrivait, c.-à-d. elle travaillait. M. Jean vint.",
     ["Mme Sand écrivait, c.-à-d. elle travaillait.", "M. Jean vint."]),
    ("«Que ferai-je sans vous? s'écria-t-il. Rien.»", ["«Que ferai-je sans vous? s'écria-t-il.", "Rien.»"]),
])
def test_french_dialogue_and_abbreviations_split_correctly(paragraph, expected):
    assert step1.split_sentences(paragraph) == expected


def test_a_truncated_download_is_a_clear_error_and_leaves_the_cache(tmp_path):
    path = tmp_path / "pg1.txt"
    path.write_text(synthetic_book("this").split("Le soir")[0], encoding="utf-8")  # cut before the END marker
    with pytest.raises(gutenberg.BookFormatError, match=r"pg1.txt n'a pas de ligne de fin \(END\)"):
        step1.book_sentences(path, min_words=3)
    assert not path.exists()


def test_a_file_without_markers_fails_through_the_script_with_the_file_named(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "pg5.txt").write_text("<html>Not Found</html>", encoding="utf-8")
    result = run_script(["aurore/1_prepare_dataset_solution.py", "--train-books", "5", "--test-books", "5"],
                        {"AURORE_WORKDIR": str(tmp_path / "w"), "AURORE_GUTENBERG_MIRROR": str(mirror)})
    assert result.returncode == 1
    assert "pg5.txt n'a pas de ligne de début (START)" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "w" / "data" / "books" / "pg5.txt").exists()


FIRST_AND_LAST = {  # what George Sand wrote first and last in each book (prefaces and notices included)
    39738: ("Après Indiana et Valentine, j’écrivis Lélia", "Il ramassa son bâton blanc et se remit en route."),
    34204: ("C'est à la suite des néfastes journées de juin 1848", "et trop passionné."),
    13380: ("J'ai écrit Gabriel à Marseille", "(Marc et Giglio emportent le cadavre, l'abbé entraîne Astolphe.)"),
    37989: ("Jamais ouvrage, si ouvrage il y a, n'a été moins raisonné", "à la création littéraire."),
    23582: ("Quand j’ai commencé, par la Mare au Diable", "les refrains joyeux de la veille."),
}


def test_the_five_real_books_keep_only_george_sand(prepared):
    dataset = load_from_disk(str(prepared.dataset_dir))
    assert set(dataset["train"]["book_id"]) == {39738, 34204, 13380, 37989}
    assert set(dataset["test"]["book_id"]) == {23582}  # the held-out book stays out of training
    for split in dataset.values():
        for book_id in set(split["book_id"]):
            texts = [t for t, b in zip(split["text"], split["book_id"]) if b == book_id]
            first, last = FIRST_AND_LAST[book_id]
            assert texts[0].startswith(first) and texts[-1].endswith(last), (book_id, texts[0], texts[-1])
        boilerplate = [t for t in split["text"] if any(
            word in t for word in ("Gutenberg", "Produced by", "LICENSE", "Proofreading", "Imprimerie de"))]
        assert not boilerplate
    assert dataset["train"].num_rows > 15_000 and dataset["test"].num_rows > 1_500


def test_a_second_run_uses_the_cache_even_without_the_mirror(prepared, tmp_path):
    config = Config(workdir=prepared.workdir, gutenberg_mirror=str(tmp_path / "gone"))
    before = load_from_disk(str(prepared.dataset_dir))["test"]["text"]
    step1.main(["--workdir", str(config.workdir), "--gutenberg-mirror", config.gutenberg_mirror])
    assert load_from_disk(str(prepared.dataset_dir))["test"]["text"] == before

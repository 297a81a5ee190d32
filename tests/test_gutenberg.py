"""Download, cache and decoding of Gutenberg files, through the same code as gutenberg.org."""

import pytest
import tensorflow as tf

from aurore.config import Config
from aurore.errors import AuroreError
from aurore.text import gutenberg


def test_urls_for_gutenberg_a_folder_and_a_base_url(tmp_path):
    assert gutenberg.book_url(23582) == "https://www.gutenberg.org/cache/epub/23582/pg23582.txt"
    assert gutenberg.book_url(7, str(tmp_path)) == f"{tmp_path.as_uri()}/pg7.txt"
    assert gutenberg.book_url(7, "http://books.local/gb/") == "http://books.local/gb/pg7.txt"


def download(book_id, config):
    """What step 1's solution does: Keras' get_file, inside the package's download wrapper."""
    with gutenberg.downloading(book_id, config) as url:
        return tf.keras.utils.get_file(f"pg{book_id}.txt", origin=url, cache_dir=config.data_dir, cache_subdir="books")


@pytest.mark.parametrize("as_uri", [False, True])
def test_download_from_a_mirror_is_cached_and_never_repeated(tmp_path, as_uri):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "pg7.txt").write_bytes(b"some book")
    config = Config(workdir=tmp_path / "work", gutenberg_mirror=mirror.as_uri() if as_uri else str(mirror))
    path = download(7, config)
    assert path == str(config.books_dir / "pg7.txt") and open(path, "rb").read() == b"some book"
    (mirror / "pg7.txt").unlink()  # a second call must not need the source any more
    assert open(download(7, config), "rb").read() == b"some book"


def test_a_failed_download_says_what_and_how_to_fix_it_and_leaves_no_file(tmp_path):
    config = Config(workdir=tmp_path, gutenberg_mirror=str(tmp_path / "empty"))
    with pytest.raises(AuroreError, match="livre 99") as error:
        download(99, config)
    assert "AURORE_GUTENBERG_MIRROR" in str(error.value)
    assert not list(config.books_dir.glob("*"))


@pytest.mark.parametrize("encoding,bom,newline", [("utf-8", True, "\r\n"), ("utf-8", False, "\n"),
                                                  ("latin-1", False, "\r\n")])
def test_read_lines_handles_bom_line_endings_and_latin1(tmp_path, encoding, bom, newline):
    text = newline.join(["Lélia", "Où êtes-vous, Sténio ?", ""])
    path = tmp_path / "pg1.txt"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
    assert gutenberg.read_lines(path) == ["Lélia", "Où êtes-vous, Sténio ?", ""]


def test_markers_are_whole_lines_in_both_styles():
    assert gutenberg.is_start_marker("*** START OF THIS PROJECT GUTENBERG EBOOK LÉLIA ***")
    assert gutenberg.is_start_marker("***START OF THE PROJECT GUTENBERG EBOOK LA MARE AU DIABLE***")
    assert gutenberg.is_end_marker("***END OF THE PROJECT GUTENBERG EBOOK LA MARE AU DIABLE***")
    assert gutenberg.is_end_marker("End of the Project Gutenberg EBook of Lélia, by George Sand")
    for prose in ("Il rencontra M. *** à Venise.", "l'abbaye de ***", "SEND DONATIONS", "FIN DE LÉLIA."):
        assert not gutenberg.is_start_marker(prose) and not gutenberg.is_end_marker(prose)

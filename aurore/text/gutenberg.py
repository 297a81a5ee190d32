"""Project Gutenberg plumbing: where a book lives, a cached download, and reading the file.

The participant downloads with `tf.keras.utils.get_file`; the same call fetches from gutenberg.org or from a mirror
(`AURORE_GUTENBERG_MIRROR`: a folder, a `file://` or an `http(s)://` base holding `pg<ID>.txt`), so a room with no
network uses exactly the workshop's code path.
"""

from __future__ import annotations

import contextlib
import re
import socket
from pathlib import Path
from typing import Iterator

from aurore.config import Config
from aurore.errors import AuroreError

GUTENBERG_URL = "https://www.gutenberg.org/cache/epub/{id}/pg{id}.txt"

# Whole marker lines, in both styles found in the workshop's books:
#   *** START OF THIS PROJECT GUTENBERG EBOOK LÉLIA ***
#   ***START OF THE PROJECT GUTENBERG EBOOK LA MARE AU DIABLE***
# Prose contains "***" too ("M. ***"), so a marker must be the whole line.
_START = re.compile(r"^\s*\*{3}\s*START OF (THIS|THE) PROJECT GUTENBERG E-?BOOK\b.*\*{3}\s*$", re.IGNORECASE)
_END = re.compile(r"^\s*\*{3}\s*END OF (THIS|THE) PROJECT GUTENBERG E-?BOOK\b.*\*{3}\s*$", re.IGNORECASE)
# Some files put a plain "End of the Project Gutenberg EBook of …" line just before the END marker.
_END_PLAIN = re.compile(r"^\s*End of (the )?Project Gutenberg'?s? E-?Book\b", re.IGNORECASE)


class BookFormatError(AuroreError):
    """A downloaded file is not a complete Gutenberg book (no markers, or cut short)."""

    def __init__(self, source: str, problem: str):
        super().__init__(
            f"{source} {problem} : ce n'est pas un texte complet du Project Gutenberg (téléchargement tronqué ou "
            "mauvais fichier ?). Le fichier a été retiré du cache.",
            "Relancez l'étape pour le télécharger de nouveau ; si l'erreur revient, vérifiez l'adresse ou le miroir "
            "(AURORE_GUTENBERG_MIRROR).",
        )


def book_url(book_id: int, mirror: str = "") -> str:
    """The URL of a book on gutenberg.org, or in the mirror when one is set (a folder becomes a file:// URL)."""
    if not mirror:
        return GUTENBERG_URL.format(id=book_id)
    if "://" not in mirror:  # a plain folder
        mirror = Path(mirror).expanduser().resolve().as_uri()
    return f"{mirror.rstrip('/')}/pg{book_id}.txt"


@contextlib.contextmanager
def downloading(book_id: int, config: Config) -> Iterator[str]:
    """Around the participant's `tf.keras.utils.get_file` call: yields the book's URL (gutenberg.org or the
    mirror), gives the socket a time-out, and turns a failed download into one clear message.

    `get_file` caches: a file already in the cache folder is returned without downloading. It removes a partial
    file when the download fails; a file cut short by a killed process is caught later by its missing END line.
    """
    url = book_url(book_id, config.gutenberg_mirror)
    config.books_dir.mkdir(parents=True, exist_ok=True)  # get_file falls back to /tmp when the folder is missing
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(config.download_timeout)
    try:
        yield url
    except AuroreError:
        raise
    except Exception as error:  # get_file turns HTTP and network errors into a plain Exception
        raise AuroreError(
            f"Impossible de télécharger le livre {book_id} depuis {url} : {str(error).splitlines()[0]}",
            "Vérifiez le réseau, ou donnez un miroir : AURORE_GUTENBERG_MIRROR=<dossier ou URL contenant les "
            "pg<ID>.txt> (les organisateurs le fournissent, voir docs/organisers.md).",
        ) from None
    finally:
        socket.setdefaulttimeout(previous)


def forget_book(path: Path | str) -> None:
    """Remove a bad file from the download cache so the next run fetches it again."""
    Path(path).unlink(missing_ok=True)


def read_lines(path: Path | str) -> list[str]:
    """The lines of a Gutenberg file, whatever its encoding and line endings.

    Files are UTF-8 (sometimes with a byte-order mark) or, for older books, ISO-8859-1.
    """
    raw = Path(path).read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def is_start_marker(line: str) -> bool:
    """True for the `*** START OF … PROJECT GUTENBERG EBOOK … ***` line."""
    return bool(_START.match(line))


def is_end_marker(line: str) -> bool:
    """True for the `*** END OF … ***` line, or the `End of the Project Gutenberg EBook` line before it."""
    return bool(_END.match(line) or _END_PLAIN.match(line))

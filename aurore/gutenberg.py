"""Project Gutenberg plumbing: where a book lives, a cached download, and reading the file.

The same code fetches from gutenberg.org or from a mirror (`AURORE_GUTENBERG_MIRROR`: a folder, a `file://`
or an `http(s)://` base holding `pg<ID>.txt`), so a room with no network uses exactly the workshop's code path.
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

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
            f"{source} {problem}: it is not a complete Project Gutenberg text (truncated or wrong download?). "
            "The file was removed from the cache.",
            "Run the step again to download it afresh; if it fails again, check the URL or the mirror "
            "(AURORE_GUTENBERG_MIRROR).",
        )


def book_url(book_id: int, mirror: str = "") -> str:
    """The URL of a book on gutenberg.org, or in the mirror when one is set."""
    if not mirror:
        return GUTENBERG_URL.format(id=book_id)
    if "://" not in mirror:  # a plain folder
        mirror = Path(mirror).expanduser().resolve().as_uri()
    return f"{mirror.rstrip('/')}/pg{book_id}.txt"


def download_book(book_id: int, config: Config) -> Path:
    """Download a book once into `config.books_dir` and return its path; later calls use the cache.

    The file is written under a temporary name and renamed when complete, so an interrupted download never
    looks like a cached book.
    """
    target = config.books_dir / f"pg{book_id}.txt"
    if target.is_file() and target.stat().st_size > 0:
        return target
    url = book_url(book_id, config.gutenberg_mirror)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    request = urllib.request.Request(url, headers={"User-Agent": "aurore-workshop"})
    try:
        with urllib.request.urlopen(request, timeout=config.download_timeout) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError, ValueError) as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", error)
        raise AuroreError(
            f"Could not download Gutenberg book {book_id} from {url}: {reason}.",
            "Check the network, or set AURORE_GUTENBERG_MIRROR to a folder (or URL) holding pg<ID>.txt files; "
            "docs/organisers.md explains how to cache the books before the workshop.",
        ) from None
    os.replace(partial, target)
    return target


def forget_book(path: Path) -> None:
    """Remove a bad file from the download cache so the next run fetches it again."""
    Path(path).unlink(missing_ok=True)


def read_lines(path: Path) -> list[str]:
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

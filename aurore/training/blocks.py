"""Fixed-size blocks of tokens, the package's one cutter (step 2's lesson writes its own, `group_into_blocks`).

Step 3's laptop profile cuts step 2's blocks shorter (`reblock`); `python -m aurore perplexity` cuts any text with
any tokenizer (`text_blocks`). Both drop the short remainder, as step 2 and Hugging Face's run_clm.py do.
"""

from __future__ import annotations

from aurore.errors import AuroreError


def cut_blocks(stream: list[int], size: int) -> list[list[int]]:
    """`stream` in consecutive pieces of `size` tokens; the shorter remainder is dropped."""
    return [list(stream[i : i + size]) for i in range(0, len(stream) - size + 1, size)]


def text_blocks(tokenizer, texts: list[str], block_size: int) -> dict[str, list[list[int]]]:
    """Evaluation blocks for any tokenizer: the texts as one token stream, cut into `block_size` pieces."""
    blocks = cut_blocks(tokenizer(" ".join(texts))["input_ids"], block_size)
    return {"input_ids": blocks, "labels": blocks}


def reblock(blocks, size: int):
    """Cut every block of a DatasetDict into pieces of `size` tokens (a shorter context is a cheaper step)."""
    length = len(blocks["train"][0]["input_ids"])
    if not size or size >= length:
        return blocks
    if length % size:
        raise AuroreError(f"La taille de bloc {size} ne divise pas les {length} jetons des blocs de l'étape 2.",
                          f"Choisissez un --block-size qui divise {length} (par exemple {length // 2}), ou relancez "
                          "l'étape 2 avec cette taille.")

    def cut(batch):
        pieces = [piece for ids in batch["input_ids"] for piece in cut_blocks(ids, size)]
        return {"input_ids": pieces, "labels": [list(piece) for piece in pieces]}

    return blocks.map(cut, batched=True, remove_columns=blocks["train"].column_names, desc=f"blocs de {size}")

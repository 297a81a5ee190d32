"""`python -m aurore perplexity`: any model folder or hub id, measured on the held-out book with its own tokenizer."""

from __future__ import annotations

import math

from aurore import hub
from aurore.config import Config
from aurore.errors import require_output


def text_blocks(tokenizer, texts: list[str], block_size: int) -> dict[str, list[list[int]]]:
    """Evaluation blocks for any tokenizer: the texts as one token stream, cut into `block_size` pieces."""
    stream = tokenizer(" ".join(texts))["input_ids"]
    blocks = [stream[i : i + block_size] for i in range(0, len(stream) - block_size + 1, block_size)]
    return {"input_ids": blocks, "labels": blocks}


def evaluate_perplexity(name_or_path: str, config: Config) -> float:
    """exp(mean next-token loss) on La Mare au diable: lower is better; 1 would be a perfect model."""
    from datasets import Dataset, load_from_disk

    texts = load_from_disk(str(require_output(config, 1)))["test"]["text"]
    tokenizer = hub.load_tokenizer(name_or_path)
    model = hub.load_causal_lm(name_or_path, config)
    model.compile(optimizer="adam")  # evaluate() needs a compiled model; the optimizer is never used
    blocks = Dataset.from_dict(text_blocks(tokenizer, texts, min(config.block_size, model.config.n_positions)))
    return math.exp(model.evaluate(model.prepare_tf_dataset(blocks, batch_size=config.batch_size, shuffle=False),
                                   verbose=0))

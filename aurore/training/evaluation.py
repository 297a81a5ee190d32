"""Perplexity on the held-out book: `python -m aurore perplexity` (any model folder or hub id, with its own
tokenizer), and the scores step 3 keeps so that a model is scored once on the same blocks."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from aurore import hub
from aurore.config import Config
from aurore.errors import require_output
from aurore.training.blocks import text_blocks


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


# Step 3 scores its starting model on the held-out blocks before training. The figure is the same at every run of
# the same weights on the same blocks, so it is kept in models/perplexities.json, keyed by what it depends on.
KNOWN_SCORES = "perplexities.json"


def score_key(model_folder: str | Path, test_blocks, block_size: int, batch_size: int) -> str:
    """What a perplexity depends on: the weights (their files' sizes and times), the blocks (🤗 Datasets'
    fingerprint, which changes with the data and every map that made them), the block size, and the batch size
    (Keras averages batches: a shorter last batch weighs as much as the others)."""
    folder = Path(model_folder).resolve()
    weights = sorted(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in folder.iterdir()
                     if p.suffix in (".h5", ".safetensors"))
    if not weights:
        return ""  # nothing to recognise the weights by: never reuse
    return json.dumps([str(folder), weights, test_blocks._fingerprint, block_size, batch_size])


def known_perplexity(models_dir: Path, key: str) -> float | None:
    try:
        return float(json.loads((models_dir / KNOWN_SCORES).read_text(encoding="utf-8"))[key]) if key else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remember_perplexity(models_dir: Path, key: str, value: float) -> float:
    """Keep `value` under `key` (the file written whole: a crash leaves the previous one); returns `value`."""
    if not key:
        return value
    path = models_dir / KNOWN_SCORES
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    known[key] = value
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(json.dumps(known, indent=1), encoding="utf-8")
    os.replace(staging, path)
    return value

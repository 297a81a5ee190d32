"""A small stand-in for the hub's French GPT-2, built offline from the step 1 dataset.

Same architecture (GPT-2) and the same kind of tokenizer (byte-level BPE), only much smaller and randomly
initialised, and written in the same files as the hub model (`model.safetensors` with PyTorch names, config,
tokenizer). Pointing `AURORE_BASE_MODEL` at it runs every step offline in minutes:

    python -m aurore build-standin
    AURORE_BASE_MODEL=aurore/models/standin python aurore/2_tokenize_solution.py
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from aurore.config import Config
from aurore.errors import MissingStepOutput

END_OF_TEXT = "<|endoftext|>"


def build_standin(
    config: Config,
    vocab_size: int = 4096,
    n_layer: int = 2,
    n_embd: int = 128,
    n_head: int = 4,
    n_positions: int = 512,
) -> Path:
    """Train a byte-level BPE tokenizer on the train split, build a small GPT-2, save both in `config.standin_dir`."""
    from datasets import load_from_disk
    from tokenizers import ByteLevelBPETokenizer

    if not (config.dataset_dir / "dataset_dict.json").is_file():
        raise MissingStepOutput("The sentence dataset", config.dataset_dir, 1)
    texts = load_from_disk(str(config.dataset_dir))["train"]["text"]

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, special_tokens=[END_OF_TEXT])

    import tensorflow as tf
    from transformers import GPT2Config, GPT2TokenizerFast, TFGPT2LMHeadModel

    from aurore.hub import save_as_pytorch_safetensors

    tokenizer = GPT2TokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token=END_OF_TEXT, eos_token=END_OF_TEXT, unk_token=END_OF_TEXT
    )
    eos = tokenizer.convert_tokens_to_ids(END_OF_TEXT)
    model_config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=n_positions, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
        bos_token_id=eos, eos_token_id=eos,
    )
    tf.keras.utils.set_random_seed(config.seed)
    model = TFGPT2LMHeadModel(model_config)
    model(model.dummy_inputs)  # build the weights

    # Write into a fresh folder, then swap it in: a crash never leaves a half-written stand-in.
    config.models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=config.models_dir, prefix=".standin-"))
    model_config.save_pretrained(staging)
    model.generation_config.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    save_as_pytorch_safetensors(model, staging)
    if config.standin_dir.exists():
        shutil.rmtree(config.standin_dir)
    os.replace(staging, config.standin_dir)
    print(f"Stand-in base model ({model.num_parameters():,} parameters, vocabulary {len(tokenizer):,}) "
          f"saved to {config.standin_dir}")
    print(f"Use it with: AURORE_BASE_MODEL={config.standin_dir}")
    return config.standin_dir

"""A small stand-in for the hub's French GPT-2, built offline from the step 1 dataset.

Same architecture (GPT-2) and the same kind of tokenizer (byte-level BPE), only much smaller and randomly
initialised, and written in the same files as the hub model (`model.safetensors` with PyTorch names, config,
tokenizer). Pointing `AURORE_BASE_MODEL` at it runs every step offline in minutes:

    python -m aurore build-standin
    AURORE_BASE_MODEL=aurore/models/standin python aurore/2_tokenize_solution.py
"""

from __future__ import annotations

from pathlib import Path

from aurore.atomic import publish, staging_dir
from aurore.config import Config
from aurore.errors import require_output, set_variable
from aurore.text.french import format_count

END_OF_TEXT = "<|endoftext|>"
STANDIN_MARKER = "aurore-standin.txt"  # written into the stand-in's folder: steps and the page say it writes nonsense

# GPT-2 shapes: the stand-in's defaults, and the hub model's (benchmarks build it from config, random weights).
SHAPE = {"vocab_size": 4096, "n_positions": 512, "n_embd": 128, "n_layer": 2, "n_head": 4}
HUB_MODEL_SHAPE = {"vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12}


def train_tokenizer(texts: list[str], vocab_size: int, show_progress: bool = True):
    """A GPT-2 style tokenizer (byte-level BPE, `<|endoftext|>` as its only special token) learned on `texts`;
    `show_progress`: the tokenizers library's progress bars (on a terminal)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, special_tokens=[END_OF_TEXT],
                            show_progress=show_progress)
    return GPT2TokenizerFast(tokenizer_object=bpe._tokenizer,  # the underlying tokenizers.Tokenizer
                             bos_token=END_OF_TEXT, eos_token=END_OF_TEXT, unk_token=END_OF_TEXT)


def build_standin(config: Config, **shape: int) -> Path:
    """Train a tokenizer on the train split, build a small GPT-2 (SHAPE, overridden by `shape`), save both in
    `config.standin_dir`."""
    from datasets import load_from_disk

    shape = {**SHAPE, **shape}
    texts = load_from_disk(str(require_output(config, 1)))["train"]["text"]
    tokenizer = train_tokenizer(texts, shape.pop("vocab_size"))

    import tensorflow as tf
    from transformers import GPT2Config, TFGPT2LMHeadModel

    from aurore.hub import save_as_pytorch_safetensors

    eos = tokenizer.convert_tokens_to_ids(END_OF_TEXT)
    model_config = GPT2Config(vocab_size=len(tokenizer), bos_token_id=eos, eos_token_id=eos, **shape)
    tf.keras.utils.set_random_seed(config.seed)
    model = TFGPT2LMHeadModel(model_config)
    model(model.dummy_inputs)  # build the weights

    # Write into a fresh folder, then swap it in: a crash never leaves a half-written stand-in.
    config.models_dir.mkdir(parents=True, exist_ok=True)
    staging = staging_dir(config.models_dir, ".standin-")
    model_config.save_pretrained(staging)
    model.generation_config.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    save_as_pytorch_safetensors(model, staging)
    (staging / STANDIN_MARKER).write_text("The aurore workshop's offline stand-in: tiny, random-ish, writes nonsense.\n")
    publish(staging, config.standin_dir)
    print(f"Modèle de secours ({format_count(model.num_parameters())} paramètres, "
          f"vocabulaire de {format_count(len(tokenizer))} jetons) "
          f"enregistré dans {config.standin_dir}. Il écrit n'importe quoi : il sert à faire tourner les étapes "
          "hors ligne.")
    print(f"Utilisez-le, dans chaque terminal : {set_variable('AURORE_BASE_MODEL', config.standin_dir)}")
    return config.standin_dir

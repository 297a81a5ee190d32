"""Step 2: cut the sentences into tokens, the units GPT-2 reads, and pack them into fixed-size training blocks.

Run: python aurore/2_tokenize_solution.py   (needs step 1; add --train-tokenizer for the bonus)

GPT-2 does not read letters or words but tokens: frequent pieces of words found by byte-pair encoding (BPE).
We must use the tokenizer the model was trained with: its token ids are the rows of the model's embeddings.
"""

from __future__ import annotations

import aurore  # noqa: F401  first: sets TF_USE_LEGACY_KERAS=1 before TensorFlow is imported
import argparse

from datasets import DatasetDict, load_from_disk

from aurore import hub
from aurore.config import Config, parse_args
from aurore.errors import MissingStepOutput, friendly_errors

SAMPLE_SENTENCE = "La petite Fadette regardait la rivière en chantonnant."


def load_tokenizer(config: Config):
    """The tokenizer of the base model (a hub id or a local folder)."""
    # BEGIN SOLUTION 2.1: chargez le tokenizer du modèle de base avec hub.load_tokenizer(config.base_model) (il appelle AutoTokenizer.from_pretrained et explique les erreurs).
    return hub.load_tokenizer(config.base_model)
    # END SOLUTION


def analyse_sentence(tokenizer, sentence: str) -> tuple[list[int], list[str]]:
    """The token ids of a sentence and the text piece behind each id."""
    # BEGIN SOLUTION 2.2: appelez tokenizer(sentence) pour obtenir les "input_ids", puis tokenizer.convert_ids_to_tokens(ids) pour les morceaux de texte ; renvoyez (ids, tokens).
    ids = tokenizer(sentence)["input_ids"]
    return ids, tokenizer.convert_ids_to_tokens(ids)
    # END SOLUTION


# A language model learns on fixed-size blocks of tokens. We tokenize every sentence, glue the sentences of
# a book end to end (an end-of-text token marks where a book ends), and cut the stream into blocks of
# `block_size` tokens, as Hugging Face's run_clm.py does. The target of each position is the next token:
# `labels` is a copy of `input_ids`, and the model shifts it by one itself.


def group_into_blocks(batch: dict[str, list], block_size: int, eos_id: int) -> dict[str, list]:
    """Concatenate the token lists of a batch of sentences and cut them into blocks; drop the remainder."""
    # BEGIN SOLUTION 2.3: mettez bout à bout les listes batch["input_ids"] (ajoutez eos_id quand batch["book_id"] change d'un livre à l'autre), coupez le tout en blocs de block_size jetons (le reste est abandonné) et renvoyez {"input_ids": blocs, "labels": copie des blocs}.
    stream: list[int] = []
    for i, ids in enumerate(batch["input_ids"]):
        if i > 0 and batch["book_id"][i] != batch["book_id"][i - 1]:
            stream.append(eos_id)
        stream.extend(ids)
    usable = len(stream) // block_size * block_size
    blocks = [stream[i : i + block_size] for i in range(0, usable, block_size)]
    return {"input_ids": blocks, "labels": [list(block) for block in blocks]}
    # END SOLUTION


def tokenize_dataset(dataset: DatasetDict, tokenizer, block_size: int) -> DatasetDict:
    # A leading space makes each sentence start like a word in running text (GPT-2 marks it as "Ġ").
    tokenized = dataset.map(
        lambda batch: {"input_ids": tokenizer([" " + text for text in batch["text"]])["input_ids"]},
        batched=True, remove_columns=["text"], desc="tokenizing",
    )
    return tokenized.map(
        group_into_blocks, batched=True, batch_size=1000, remove_columns=tokenized["train"].column_names,
        fn_kwargs={"block_size": block_size, "eos_id": tokenizer.eos_token_id}, desc=f"blocks of {block_size}",
    )


def train_specialised_tokenizer(tokenizer, texts: list[str], vocab_size: int):
    """Bonus: a tokenizer of the same kind, re-learned on George Sand's French only."""
    # BEGIN SOLUTION 2.4: appelez tokenizer.train_new_from_iterator en lui passant les textes par paquets de 1000 et vocab_size ; renvoyez le nouveau tokenizer.
    batches = (texts[i : i + 1000] for i in range(0, len(texts), 1000))
    return tokenizer.train_new_from_iterator(batches, vocab_size=vocab_size)
    # END SOLUTION


def _extra_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train-tokenizer", action="store_true", help="bonus: train the specialised tokenizer too")
    parser.add_argument("--sentence", default=SAMPLE_SENTENCE, help="the sentence to analyse")


@friendly_errors
def main(argv: list[str] | None = None) -> DatasetDict:
    config, flags = parse_args(__doc__.splitlines()[0], argv, extra=_extra_flags)
    if not (config.dataset_dir / "dataset_dict.json").is_file():
        raise MissingStepOutput("The sentence dataset", config.dataset_dir, 1)
    dataset = load_from_disk(str(config.dataset_dir))
    tokenizer = load_tokenizer(config)
    print(f"Tokenizer of {config.base_model}: {len(tokenizer):,} tokens in its vocabulary")

    ids, tokens = analyse_sentence(tokenizer, flags.sentence)
    print(f"\n{flags.sentence!r} -> {len(ids)} tokens")
    for token_id, token in zip(ids, tokens):  # tokens show bytes ("Ġ" = a space); decode() shows the text
        print(f"  {token_id:6}  {token:14} {tokenizer.decode([token_id])!r}")

    blocks = tokenize_dataset(dataset, tokenizer, config.block_size)
    blocks.save_to_disk(str(config.tokenized_dir))
    for split, data in blocks.items():
        print(f"{split:5}: {data.num_rows:5,} blocks of {config.block_size} tokens ({data.num_rows * config.block_size:,} tokens)")
    print(f"Saved to {config.tokenized_dir}")

    if flags.train_tokenizer:
        specialised = train_specialised_tokenizer(tokenizer, dataset["train"]["text"], config.tokenizer_vocab_size)
        specialised.save_pretrained(str(config.tokenizer_dir))
        ids, tokens = analyse_sentence(specialised, flags.sentence)
        print(f"\nSpecialised tokenizer ({len(specialised):,} tokens) saved to {config.tokenizer_dir}")
        print(f"  the same sentence in {len(ids)} tokens: {tokens}")
        print("  (its ids do not match the model's embeddings, so the next steps keep the original tokenizer)")
    print("\nNext: python aurore/3_train_solution.py")
    return blocks


if __name__ == "__main__":
    main()

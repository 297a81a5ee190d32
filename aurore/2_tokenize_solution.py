"""Étape 2 : découper les phrases en jetons, les unités que lit GPT-2, et les ranger en blocs de taille fixe.

Lancer : python aurore/2_tokenize_solution.py   (après l'étape 1 ; ajouter --train-tokenizer pour le bonus)

GPT-2 ne lit ni des lettres ni des mots, mais des jetons : des morceaux de mots fréquents, trouvés par encodage par
paires d'octets (BPE, « byte-pair encoding »). Il faut utiliser le tokenizer avec lequel le modèle a été entraîné :
les identifiants de ses jetons sont les numéros des lignes de la table des plongements du modèle.
"""

from __future__ import annotations

import aurore  # noqa: F401  en premier : TF_USE_LEGACY_KERAS=1 avant d'importer TensorFlow
import argparse

from datasets import DatasetDict, load_from_disk
from transformers import AutoTokenizer

from aurore import hub
from aurore.config import Config, parse_args
from aurore.errors import friendly_errors, require_output, step_command
from aurore.text.french import format_count

SAMPLE_SENTENCE = "La petite Fadette regardait la rivière en chantonnant."


def load_tokenizer(config: Config):
    """Le tokenizer du modèle de base (un identifiant du hub ou un dossier local)."""
    with hub.loading(config.base_model):  # hors ligne : le cache d'emblée ; en cas d'échec : un seul message clair
        # BEGIN SOLUTION 2.1: chargez et renvoyez le tokenizer du modèle config.base_model (un identifiant du hub
        #   Hugging Face, ou un dossier local : c'est le même appel).
        #   À chercher : la classe « Auto » de transformers qui devine le bon tokenizer, et sa méthode de classe
        #   qui charge un modèle pré-entraîné.
        #   Doc : https://huggingface.co/docs/transformers/v4.57.1/en/model_doc/auto#transformers.AutoTokenizer
        return AutoTokenizer.from_pretrained(config.base_model)
        # END SOLUTION


def analyse_sentence(tokenizer, sentence: str) -> tuple[list[int], list[str]]:
    """Les identifiants des jetons d'une phrase, et le morceau de texte qui correspond à chacun."""
    # BEGIN SOLUTION 2.2: appelez le tokenizer sur la phrase comme une fonction : il renvoie un dictionnaire dont
    #   la clé "input_ids" donne les identifiants des jetons. Retrouvez ensuite le morceau de texte de chaque
    #   identifiant avec la méthode du tokenizer qui convertit des ids en tokens. Renvoyez (ids, morceaux).
    #   Doc : https://huggingface.co/docs/transformers/v4.57.1/en/main_classes/tokenizer
    ids = tokenizer(sentence)["input_ids"]
    return ids, tokenizer.convert_ids_to_tokens(ids)
    # END SOLUTION


# Les jetons de GPT-2 sont des suites d'octets UTF-8, affichées avec un caractère imprimable par octet : « Ġ » est
# l'octet d'une espace, et « è », deux octets en UTF-8 (C3 A8), s'affiche « Ã¨ » dans un jeton. `decode` retransforme
# les octets en texte.


def tokenize(dataset: DatasetDict, tokenizer) -> DatasetDict:
    """Ajoute une colonne `input_ids` (les jetons de chaque phrase) et retire la colonne `text`."""
    def tokenize_batch(batch: dict[str, list]) -> dict[str, list]:
        # Une espace en tête fait commencer chaque phrase comme un mot au fil du texte (GPT-2 la note « Ġ »).
        return {"input_ids": tokenizer([" " + text for text in batch["text"]])["input_ids"]}

    # BEGIN SOLUTION 2.3: appliquez tokenize_batch à tout le DatasetDict, par paquets de phrases (bien plus rapide
    #   qu'une phrase à la fois), en retirant la colonne "text" devenue inutile ; renvoyez le résultat.
    #   À chercher : la méthode des Dataset qui applique une fonction à chaque exemple ou paquet d'exemples, et
    #   ses arguments batched et remove_columns.
    #   Doc : https://huggingface.co/docs/datasets/process#map
    return dataset.map(tokenize_batch, batched=True, remove_columns=["text"], desc="jetons")
    # END SOLUTION


# Un modèle de langue apprend sur des blocs de jetons de taille fixe. On colle bout à bout les phrases d'un livre (un
# jeton de fin de texte marque la fin de chaque livre), et on coupe ce flot en blocs de `block_size` jetons, comme le
# fait run_clm.py de Hugging Face. La cible de chaque position est le jeton suivant : `labels` est une copie de
# `input_ids`, et le modèle la décale lui-même d'un cran.


def group_into_blocks(batch: dict[str, list], block_size: int, eos_id: int) -> dict[str, list]:
    """Met bout à bout les listes de jetons d'un lot de phrases et les coupe en blocs ; le reste est abandonné."""
    # BEGIN SOLUTION 2.4: mettez bout à bout les listes de batch["input_ids"], en insérant eos_id là où
    #   batch["book_id"] change d'un livre à l'autre ; coupez ce flot en blocs de block_size jetons (le reste, trop
    #   court, est abandonné) et renvoyez un dictionnaire à deux clés : "input_ids" (les blocs) et "labels" (une
    #   copie des blocs).
    stream: list[int] = []
    for i, ids in enumerate(batch["input_ids"]):
        if i > 0 and batch["book_id"][i] != batch["book_id"][i - 1]:
            stream.append(eos_id)
        stream.extend(ids)
    usable = len(stream) // block_size * block_size
    blocks = [stream[i : i + block_size] for i in range(0, usable, block_size)]
    return {"input_ids": blocks, "labels": [list(block) for block in blocks]}
    # END SOLUTION


def train_specialised_tokenizer(tokenizer, texts: list[str], vocab_size: int, folder: str):
    """Bonus : un tokenizer du même type, réappris sur le seul français de George Sand, enregistré dans `folder`."""
    batches = (texts[i : i + 1000] for i in range(0, len(texts), 1000))  # un itérateur de listes de textes
    # BEGIN SOLUTION 2.5: entraînez un nouveau tokenizer du même type que `tokenizer` sur les paquets de textes
    #   `batches`, avec vocab_size jetons ; enregistrez-le dans le dossier `folder` pour pouvoir le recharger avec
    #   from_pretrained, puis renvoyez-le.
    #   À chercher : la méthode des tokenizers « fast » qui en entraîne un nouveau à partir d'un itérateur, et
    #   celle qui enregistre un tokenizer (la même que pour les modèles).
    #   Doc : https://huggingface.co/learn/llm-course/chapter6/2
    specialised = tokenizer.train_new_from_iterator(batches, vocab_size=vocab_size)
    specialised.save_pretrained(folder)
    return specialised
    # END SOLUTION


def show_tokens(tokenizer, sentence: str) -> None:
    ids, tokens = analyse_sentence(tokenizer, sentence)
    print(f"\n{sentence!r} -> {len(ids)} jetons")
    for token_id, token in zip(ids, tokens):
        print(f"  {token_id:6}  {token:14} {tokenizer.decode([token_id])!r}")
    print("  (« Ġ » est l'octet d'une espace ; « Ã¨ » montre les deux octets UTF-8 de « è » ; decode() rend le texte)")


def _extra_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train-tokenizer", action="store_true",
                        help="bonus : entraîner aussi le tokenizer spécialisé")
    parser.add_argument("--sentence", default=SAMPLE_SENTENCE, help="la phrase à analyser")


@friendly_errors
def main(argv: list[str] | None = None) -> DatasetDict:
    config, flags = parse_args(__doc__, argv, step=2, extra=_extra_flags)
    dataset = load_from_disk(str(require_output(config, 1)))
    tokenizer = load_tokenizer(config)
    print(f"Tokenizer de {config.base_model} : {format_count(len(tokenizer))} jetons dans son vocabulaire")
    show_tokens(tokenizer, flags.sentence)

    blocks = tokenize(dataset, tokenizer).map(
        group_into_blocks, batched=True, batch_size=1000, remove_columns=["input_ids", "book_id"],
        fn_kwargs={"block_size": config.block_size, "eos_id": tokenizer.eos_token_id},
        desc=f"blocs de {config.block_size}")
    blocks.save_to_disk(str(config.tokenized_dir))
    for split, data in blocks.items():
        print(f"{split:5} : {format_count(data.num_rows):>6} blocs de {config.block_size} jetons "
              f"({format_count(data.num_rows * config.block_size)} jetons)")
    print(f"Enregistré dans {config.tokenized_dir}")

    if flags.train_tokenizer:
        specialised = train_specialised_tokenizer(tokenizer, dataset["train"]["text"], config.tokenizer_vocab_size,
                                                  str(config.tokenizer_dir))
        print(f"\nTokenizer spécialisé ({format_count(len(specialised))} jetons) enregistré dans "
              f"{config.tokenizer_dir}")
        show_tokens(specialised, flags.sentence)
        print("  (ses identifiants ne correspondent pas aux embeddings du modèle : la suite garde le tokenizer d'origine)")
    print(f"\nÉtape suivante : {step_command(3)}")
    return blocks


if __name__ == "__main__":
    main()

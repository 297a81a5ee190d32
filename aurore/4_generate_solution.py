"""Étape 4 : faire écrire le modèle affiné, à partir de débuts de textes (prompts) de votre choix.

Lancer : python aurore/4_generate_solution.py "Cette femme était assise" "Le soir elle se rappelait"

Le modèle donne une probabilité à chaque jeton suivant possible ; générer, c'est en choisir un, l'ajouter au texte, et
recommencer. La façon de choisir façonne le texte : le décodage glouton (toujours le plus probable) tourne en rond ;
l'échantillonnage avec une température (sous 1 : plus sage, au-dessus de 1 : plus débridé), parmi les top-k jetons
ou dans la masse de probabilité top-p, le fait varier.
"""

from __future__ import annotations

import aurore  # noqa: F401  en premier : TF_USE_LEGACY_KERAS=1 avant d'importer TensorFlow
import argparse

import tensorflow as tf
from transformers import pipeline

from aurore import hub
from aurore.config import parse_args
from aurore.engines import generation
from aurore.errors import friendly_errors, step_command

PROMPTS = ["Cette femme était assise", "Le soir elle se rappelait"]


def make_generator(folder: str):
    """Un pipeline de génération de texte sur le modèle (et son tokenizer) enregistré dans `folder`."""
    with hub.loading(folder):
        # BEGIN SOLUTION 4.1: créez et renvoyez un pipeline de génération de texte sur le modèle et le tokenizer
        #   du dossier `folder`. Nous n'avons que TensorFlow (pas PyTorch) : précisez le framework "tf" et dtype=None.
        #   À chercher : la fonction pipeline de transformers et le nom de la tâche qui continue un texte.
        #   Doc : https://huggingface.co/docs/transformers/main_classes/pipelines#transformers.TextGenerationPipeline
        return pipeline("text-generation", model=folder, tokenizer=folder, framework="tf", dtype=None)
        # END SOLUTION


def write(generator, prompts: list[str], sampling: generation.Sampling) -> dict[str, list[str]]:
    """sampling.num_return_sequences textes pour chaque prompt : {prompt: [texte, ...]}."""
    # BEGIN SOLUTION 4.2: appelez le pipeline sur la liste des prompts avec les réglages de `sampling` : do_sample,
    #   temperature, top_k, top_p, max_new_tokens et num_return_sequences (mêmes noms que les arguments de
    #   generate). Pour une liste de prompts, il renvoie une liste (une par prompt) de listes de dictionnaires ;
    #   le texte est sous la clé "generated_text". Renvoyez {prompt: [texte, ...]}.
    #   Doc : https://huggingface.co/docs/transformers/main_classes/text_generation
    outputs = generator(prompts, do_sample=sampling.do_sample, temperature=sampling.temperature, top_k=sampling.top_k,
                        top_p=sampling.top_p, max_new_tokens=sampling.max_new_tokens,
                        num_return_sequences=sampling.num_return_sequences)
    return {prompt: [answer["generated_text"] for answer in answers] for prompt, answers in zip(prompts, outputs)}
    # END SOLUTION


def _extra_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompts", nargs="*", default=PROMPTS, help="débuts de textes à continuer")
    parser.add_argument("--greedy", action="store_true",
                        help="toujours prendre le jeton le plus probable (sans tirage)")
    parser.add_argument("--num-texts", type=int, default=2, help="textes par début")


@friendly_errors
def main(argv: list[str] | None = None) -> dict[str, list[str]]:
    config, flags = parse_args(__doc__, argv, step=4, extra=_extra_flags)
    greedy = {"do_sample": False, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "num_return_sequences": 1}
    sampling = generation.Sampling.from_config(config, **(greedy if flags.greedy else
                                                           {"num_return_sequences": flags.num_texts}))
    model = generation.choose_model(config)  # le modèle de l'étape 3 s'il existe, sinon le modèle de base
    print(model.describe())
    generator = make_generator(model.folder)
    generation.check_length(generator.tokenizer, flags.prompts, sampling.max_new_tokens,
                            generator.model.config.n_positions)
    print(f"Réglages : {sampling.describe()}")
    tf.keras.utils.set_random_seed(sampling.seed)  # la même graine donne les mêmes textes
    texts = write(generator, flags.prompts, sampling)
    for prompt, outputs in texts.items():
        print(f"\n=== {prompt}")
        for text in outputs:
            print(f"--- {text}")
    print(f"\nÉtape suivante, la page web de ce modèle : {step_command(5)}")
    return texts


if __name__ == "__main__":
    main()

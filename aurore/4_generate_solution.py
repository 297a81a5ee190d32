"""Step 4: let the fine-tuned model write, from prompts of your choice.

Run: python aurore/4_generate_solution.py "Cette femme était assise" "Le soir elle se rappelait"

The model predicts a probability for every possible next token; generating means picking one, appending it, and
starting again. How we pick shapes the text: greedy (always the likeliest) repeats itself; sampling with a
temperature (below 1: safer, above 1: wilder), among the top-k tokens or the top-p probability mass, varies it.
"""

from __future__ import annotations

import aurore  # noqa: F401  first: sets TF_USE_LEGACY_KERAS=1 before TensorFlow is imported
import argparse

from aurore import generation
from aurore.config import Config, parse_args
from aurore.errors import friendly_errors

PROMPTS = ["Cette femme était assise", "Le soir elle se rappelait"]


def load(config: Config):
    """A text-generation pipeline on the fine-tuned model of step 3, or on the base model if there is none."""
    # BEGIN SOLUTION 4.1: choisissez le modèle avec generation.choose_model(config) (il renvoie (nom, est_affiné)) ; s'il n'est pas affiné, affichez-le ; renvoyez generation.load_generator(nom, config).
    name, finetuned = generation.choose_model(config)
    if not finetuned:
        print(f"No fine-tuned model in {config.finetuned_dir}: using the base model {name} (run step 3 first).")
    return generation.load_generator(name, config)
    # END SOLUTION


def write(generator, prompts: list[str], sampling: generation.Sampling) -> dict[str, list[str]]:
    """The generated texts for each prompt."""
    # BEGIN SOLUTION 4.2: pour chaque prompt, appelez generation.generate(generator, prompt, sampling) ; renvoyez un dictionnaire {prompt: liste des textes}.
    return {prompt: generation.generate(generator, prompt, sampling) for prompt in prompts}
    # END SOLUTION


def _extra_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompts", nargs="*", default=PROMPTS, help="beginnings of texts to continue")
    parser.add_argument("--greedy", action="store_true", help="always take the likeliest token (no sampling)")
    parser.add_argument("--num-texts", type=int, default=2, help="texts per prompt")


@friendly_errors
def main(argv: list[str] | None = None) -> dict[str, list[str]]:
    config, flags = parse_args(__doc__.splitlines()[0], argv, extra=_extra_flags)
    sampling = generation.Sampling.from_config(config, do_sample=not flags.greedy, num_return_sequences=flags.num_texts)
    print(f"Sampling: {sampling}")
    texts = write(load(config), flags.prompts, sampling)
    for prompt, outputs in texts.items():
        print(f"\n=== {prompt}")
        for text in outputs:
            print(f"--- {text}")
    print("\nNext: python aurore/5_flask.py  (serves this model on a web page)")
    return texts


if __name__ == "__main__":
    main()

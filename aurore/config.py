"""Every path and hyper-parameter of the workshop, in one place.

A value comes from, in order of precedence:
  1. a command-line flag (`--block-size 64`),
  2. an environment variable (`AURORE_BLOCK_SIZE=64`),
  3. the default below.
`python -m aurore config` prints the values in effect; the README lists them all.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterable, Sequence

from aurore.french_argparse import FrenchArgumentParser

PACKAGE_DIR = Path(__file__).resolve().parent
ENV_PREFIX = "AURORE_"
HUB_BASE_MODEL = "benjamin/gpt2-wechsel-french"


ALL_STEPS = (1, 2, 3, 4, 5, 6)


def setting(default, help: str, steps: tuple[int, ...], valid: tuple[Callable, str] | None = None):
    """A Config field: its default, its help line (French: participants read it in `--help`; the README has the
    English table), the steps whose command line offers it, and what a given value must satisfy (a test, and
    what it asks for in French)."""
    return field(default=default, metadata={"help": help, "steps": steps, "valid": valid})


# What a value must be: a test, and the words of the error ("le réglage … doit être …").
POSITIVE = (lambda value: value > 0, "strictement positif")
NOT_NEGATIVE = (lambda value: value >= 0, "positif ou nul")
A_SHARE = (lambda value: 0 <= value <= 1, "entre 0 et 1")
A_MASS = (lambda value: 0 < value <= 1, "plus grand que 0 et au plus 1")
A_RATE = (lambda value: 0 <= value < 1, "au moins 0 et plus petit que 1")
IN_CONTEXT = (lambda value: 2 <= value <= 1024, "entre 2 et 1024 (le contexte de GPT-2)")


@dataclass
class Config:
    # -- where things live ------------------------------------------------------------------------
    workdir: Path = setting(PACKAGE_DIR, "dossier qui contient data/ et models/", ALL_STEPS)
    gutenberg_mirror: str = setting(
        "", "dossier, ou adresse file://, http(s)://, qui contient les pg<ID>.txt ; vide : gutenberg.org", (1,))
    base_model: str = setting(HUB_BASE_MODEL, "identifiant sur le Hub, ou dossier local, du GPT-2 de départ",
                              (2, 3, 4, 5))
    seed: int = setting(42, "graine aléatoire : mélange, initialisation, échantillonnage",
                        (1, 3, 4, 5, 6), NOT_NEGATIVE)

    # -- step 1: the books --------------------------------------------------------------------------
    train_books: tuple[int, ...] = setting((39738, 34204, 13380, 37989),
                                           "numéros Gutenberg des livres d'entraînement", (1,))
    test_books: tuple[int, ...] = setting((23582,), "numéros Gutenberg des livres gardés pour la validation", (1,))
    download_timeout: float = setting(15.0, "secondes avant d'abandonner un téléchargement", (1,), POSITIVE)
    min_words: int = setting(3, "les phrases de moins de mots sont écartées", (1,), NOT_NEGATIVE)

    # -- step 2: tokenization -----------------------------------------------------------------------
    block_size: int = setting(128, "jetons par exemple d'entraînement", (2, 3), IN_CONTEXT)
    tokenizer_vocab_size: int = setting(52_000, "vocabulaire du tokenizer bonus", (2,), POSITIVE)

    # -- step 3: training ---------------------------------------------------------------------------
    epochs: int = setting(1, "passages sur les livres d'entraînement", (3,), POSITIVE)
    batch_size: int = setting(4, "exemples par pas", (3,), POSITIVE)
    learning_rate: float = setting(5e-5, "taux d'apprentissage maximal d'AdamW", (3,), POSITIVE)
    warmup_ratio: float = setting(0.1, "part des pas passée à faire monter le taux (échauffement)", (3,), A_SHARE)
    weight_decay: float = setting(0.01, "décroissance des poids (weight decay) d'AdamW", (3,), NOT_NEGATIVE)
    max_steps: int = setting(200, "nombre maximal de pas, partagés entre les époques (0 : époques complètes)", (3,),
                             NOT_NEGATIVE)
    save_every: int = setting(100, "un point de sauvegarde tous les N pas (0 : en fin d'époque seulement)", (3,),
                              NOT_NEGATIVE)
    keep_checkpoints: int = setting(3, "points de sauvegarde gardés par entraînement", (3,), POSITIVE)
    profile: str = setting("auto", "profil d'entraînement : laptop, full, ou auto (laptop sans GPU)", (3,))
    train_top_blocks: int = setting(2, "profil laptop : nombre de blocs du haut qui apprennent", (3,), POSITIVE)
    time_budget: str = setting("", "arrêter l'entraînement après cette durée, p. ex. 5m (l'étape 3 enregistre "
                               "un point de sauvegarde, l'étape 6 son modèle)", (3, 6))

    # -- steps 4, 5 and 6: sampling (the one source of the sampling defaults) -------------------------
    max_new_tokens: int = setting(60, "jetons écrits par texte", (4, 5), POSITIVE)
    temperature: float = setting(0.9, "température d'échantillonnage", (4, 5, 6), POSITIVE)
    top_k: int = setting(50, "tirer parmi les k jetons les plus probables (0 : désactivé)", (4, 5, 6),
                         NOT_NEGATIVE)
    top_p: float = setting(0.95, "tirer dans cette masse de probabilité (1.0 : désactivé)", (4, 5, 6), A_MASS)

    # -- step 6: a miniature GPT from scratch -----------------------------------------------------------------
    mini_tokens: str = setting("char", "jetons char (caractères) ou word (mots) du modèle fait main", (6,))
    mini_vocab_size: int = setting(10_000, "taille du vocabulaire de mots ([UNK] pour les autres)", (6,), POSITIVE)
    mini_seq_len: int = setting(64, "jetons que le modèle fait main voit à la fois", (6,), POSITIVE)
    mini_embed_dim: int = setting(128, "largeur des plongements", (6,), POSITIVE)
    mini_heads: int = setting(4, "têtes d'attention par bloc", (6,), POSITIVE)
    mini_layers: int = setting(4, "blocs transformer", (6,), POSITIVE)
    mini_ff_dim: int = setting(512, "largeur de la couche feed-forward", (6,), POSITIVE)
    mini_dropout: float = setting(0.0, "taux de dropout", (6,), A_RATE)
    mini_epochs: int = setting(10, "époques d'entraînement (le taux décroît sur l'ensemble de leurs pas)", (6,),
                               POSITIVE)
    mini_batch_size: int = setting(12, "fenêtres par pas", (6,), POSITIVE)
    mini_learning_rate: float = setting(
        1e-3, "taux d'apprentissage maximal d'AdamW (échauffement, puis décroissance en cosinus)", (6,), POSITIVE)
    mini_warmup_steps: int = setting(100, "pas d'échauffement du taux d'apprentissage", (6,), NOT_NEGATIVE)
    mini_steps_per_epoch: int = setting(200, "pas par époque (0 : tout le corpus)", (6,), NOT_NEGATIVE)

    # -- derived paths: one definition each -----------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def books_dir(self) -> Path:
        """Downloaded Gutenberg files, as fetched (the download cache)."""
        return self.data_dir / "books"

    @property
    def dataset_dir(self) -> Path:
        """Step 1 output: DatasetDict of sentences."""
        return self.data_dir / "sentences"

    @property
    def tokenized_dir(self) -> Path:
        """Step 2 output: DatasetDict of token blocks."""
        return self.data_dir / "tokenized"

    @property
    def nltk_dir(self) -> Path:
        """NLTK data written offline (French punkt tables)."""
        return self.data_dir / "nltk_data"

    @property
    def models_dir(self) -> Path:
        return self.workdir / "models"

    @property
    def tokenizer_dir(self) -> Path:
        """Step 2 bonus: the tokenizer specialised on George Sand."""
        return self.models_dir / "tokenizer-george-sand"

    @property
    def checkpoints_dir(self) -> Path:
        return self.models_dir / "checkpoints"

    @property
    def finetuned_dir(self) -> Path:
        """Step 3 output, loaded by steps 4 and 5."""
        return self.models_dir / "gpt2-george-sand"

    @property
    def standin_dir(self) -> Path:
        """The small offline stand-in base model (`python -m aurore build-standin`)."""
        return self.models_dir / "standin"

    @property
    def mini_gpt_dir(self) -> Path:
        """Step 6 output: the from-scratch model (model.keras, vocabulary.json, serving/, loss.png)."""
        return self.models_dir / "mini-gpt"

    @property
    def converted_models_dir(self) -> Path:
        """Hub models converted once from safetensors to TensorFlow weights."""
        return self.models_dir / "converted"


def _env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


_EXPECTED = {int: "un nombre entier", float: "un nombre (avec un point : 0.5)", tuple: "des nombres séparés par des "
             "virgules", Path: "un dossier", str: "un texte"}


def _parse(value: str, like: object, name: str) -> object:
    """Turn a string from the environment or the command line into the type of the default."""
    try:
        if isinstance(like, tuple):
            return tuple(int(part) for part in value.replace(" ", "").split(",") if part)
        if isinstance(like, Path):
            return Path(value).expanduser().resolve()
        return type(like)(value)
    except ValueError:
        raise SystemExit(
            f"erreur : le réglage {name} attend {_EXPECTED.get(type(like), 'une valeur')}, reçu « {value} ».\n"
            f"  -> Corrigez l'option --{name.replace('_', '-')} ou la variable {_env_name(name)}."
        ) from None


def settings(steps: Iterable[int] | None = None) -> list[dataclasses.Field]:
    """Every setting, or those read by any of `steps`."""
    wanted = set(ALL_STEPS if steps is None else steps)
    return [f for f in fields(Config) if wanted & set(f.metadata["steps"])]


def add_arguments(parser: argparse.ArgumentParser, steps: Iterable[int] | None = None) -> argparse.ArgumentParser:
    """Add one `--flag` per setting read by `steps` (all by default); the help shows the environment variable."""
    group = parser.add_argument_group("réglages (une option, ou la variable d'environnement)")
    for f in settings(steps):
        group.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            default=None,
            metavar=_env_name(f.name),
            help=f"{f.metadata.get('help', '')} (par défaut : {_display(f.default)}{_from_environment(f.name)})",
        )
    return parser


def _from_environment(name: str) -> str:
    """What `--help` adds when the setting's variable is set: the value a run would use."""
    value = os.environ.get(_env_name(name))
    return f" ; ici {value}, par {_env_name(name)}" if value else ""


def from_namespace(namespace: argparse.Namespace | None = None, environ: dict | None = None) -> Config:
    """Build the Config: flags beat environment variables, which beat defaults."""
    environ = os.environ if environ is None else environ
    values = {}
    for f in settings():
        raw = getattr(namespace, f.name, None) if namespace is not None else None
        if raw is None:
            raw = environ.get(_env_name(f.name)) or None
        if raw is not None:
            values[f.name] = _checked(_parse(raw, f.default, f.name), raw, f)
    return Config(**values)


def _checked(value: object, raw: str, f: dataclasses.Field) -> object:
    """The value, if it is one the setting accepts (e.g. a temperature above 0); else a French error."""
    valid = f.metadata.get("valid")
    if valid is not None and not valid[0](value):
        raise SystemExit(
            f"erreur : le réglage {f.name} doit être {valid[1]}, reçu « {raw} ».\n"
            f"  -> Corrigez l'option --{f.name.replace('_', '-')} ou la variable {_env_name(f.name)}.")
    return value


STEP_TITLES = {
    1: "Étape 1 : transformer cinq romans de George Sand (Projet Gutenberg) en un jeu de phrases françaises.",
    2: "Étape 2 : découper les phrases en jetons, les unités que lit GPT-2, et les ranger en blocs d'entraînement.",
    3: "Étape 3 : affiner GPT-2 sur George Sand avec model.fit de Keras, en enregistrant des points de sauvegarde.",
    4: "Étape 4 : faire écrire le modèle affiné, à partir de débuts de textes de votre choix.",
    5: "Étape 5 : servir le modèle dans une page web (un formulaire à /generate) et une API JSON, avec Flask.",
    6: "Étape 6 : construire un GPT miniature de zéro avec Keras, et l'entraîner sur George Sand.",
}

def parse_args(doc: str, argv: Sequence[str] | None = None, step: int | None = None,
               extra: Callable[[argparse.ArgumentParser], None] | None = None) -> tuple[Config, argparse.Namespace]:
    """The command line of a workshop step: the settings it reads, plus `extra(parser)`'s own flags.

    `doc` is the script's docstring (its first line describes the command, for scripts that are not a step).
    Settings a step does not read keep their environment value or default.
    """
    parser = FrenchArgumentParser(description=STEP_TITLES.get(step, doc.strip().splitlines()[0]))
    if extra is not None:
        extra(parser)
    add_arguments(parser, None if step is None else (step,))
    namespace = parser.parse_args(argv)
    return from_namespace(namespace), namespace


def _display(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, Path) and value == PACKAGE_DIR:
        return "le dossier aurore/"
    return str(value) if value != "" else '""'


def describe(config: Config) -> str:
    """The settings in effect, one per line, for logs and `python -m aurore config`."""
    return "\n".join(f"  {_env_name(f.name):30} {_display(getattr(config, f.name))}" for f in settings())

"""Étape 6 : un GPT miniature écrit de zéro avec l'API fonctionnelle de Keras, entraîné sur George Sand.

Lancer : python aurore/6_mini_gpt_solution.py                  (caractères ; après l'étape 1)
         python aurore/6_mini_gpt_solution.py --mini-tokens word
         python aurore/6_mini_gpt_solution.py --text-folder aclImdb/train     (tout dossier de documents .txt)

GPT-2 est une pile de blocs identiques ; ici, on en écrit un nous-mêmes. Le texte devient des nombres (les jetons),
chaque jeton un vecteur (son plongement) plus un vecteur pour sa position ; chaque bloc laisse chaque position regarder
celles d'avant (l'auto-attention, avec un masque causal : pas de triche sur le futur), puis la transforme (le réseau
« feed-forward ») ; à la fin, les plongements des jetons notent chaque jeton du vocabulaire comme jeton suivant. On le
mesure en bits par caractère sur La Mare au diable, pour comparer mots et caractères. La recette par défaut s'entraîne
en 2 min 30 environ sur 2 cœurs (`--time-budget 1m` l'arrête plus tôt) ; ses choix sont mesurés dans
docs/benchmarks.md.
"""

from __future__ import annotations

import aurore  # noqa: F401  en premier : TF_USE_LEGACY_KERAS=1 avant d'importer TensorFlow
import argparse
import functools
import math
import time

import numpy as np
import tensorflow as tf

from aurore.config import Config, parse_args
from aurore.engines import minigpt
from aurore.errors import friendly_errors
from aurore.text.french import format_count, format_decimal
from aurore.training import callbacks, plots

layers = tf.keras.layers  # tf.keras est ici Keras 2 (tf_keras), comme pour les modèles Hugging Face


# -- Les données -------------------------------------------------------------------------------------------------
# Un réseau ne lit que des nombres. Le vocabulaire le plus simple : chaque caractère vu à l'entraînement est un jeton,
# numéroté par sa place dans la liste ; le 0 sert aux caractères jamais vus. (--mini-tokens word : les mots les plus
# fréquents, avec la couche TextVectorization de Keras.)


def build_vocabulary(texts: list[str], config: Config):
    """Le vocabulaire des textes d'entraînement : leurs caractères, ou leurs mots les plus fréquents."""
    if config.mini_tokens == "word":
        return minigpt.WordVocabulary.from_texts(texts, config.mini_vocab_size)
    characters = sorted(set("".join(texts)) - {minigpt.UNKNOWN_CHAR})
    return minigpt.CharVocabulary([minigpt.UNKNOWN_CHAR, *characters])


# Un modèle de langue apprend à prédire le jeton suivant. On découpe le texte en fenêtres de seq_len + 1 jetons ; à
# chaque position, la cible est le jeton qui suit : entrée et cible sont la même suite, décalée d'un cran.


def split_input_target(windows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Un lot de fenêtres [lot, seq_len + 1] -> (entrées, cibles), chacune [lot, seq_len]."""
    # BEGIN SOLUTION 6.1: renvoyez (entrées, cibles) : les entrées sont chaque fenêtre sans son dernier jeton, les
    #   cibles chaque fenêtre sans son premier jeton (ainsi, cible[i] est le jeton qui suit entrée[i]). Découpez la
    #   2e dimension avec les tranches de Python, comme sur une liste.
    #   Doc : https://www.tensorflow.org/guide/tensor_slicing
    return windows[:, :-1], windows[:, 1:]
    # END SOLUTION


def make_batches(ids: np.ndarray, config: Config, batch_size: int, shuffle: bool) -> tf.data.Dataset:
    """Des lots (entrées, cibles) pour Keras : fenêtres mélangées pour l'entraînement, dans l'ordre sinon."""
    windows = minigpt.windows(ids, config.mini_seq_len + 1, batch_size, shuffle, seed=config.seed)
    return windows.map(split_input_target).prefetch(tf.data.AUTOTUNE)


# -- Le modèle ---------------------------------------------------------------------------------------------------


@tf.keras.utils.register_keras_serializable(package="aurore")
class TokenAndPositionEmbedding(layers.Layer):
    """Ce qu'est un jeton, plus où il est : deux plongements additionnés.

    Appelée avec `reverse=True` sur les derniers vecteurs, la couche donne un score à chaque jeton du vocabulaire
    comme jeton suivant, avec les mêmes plongements transposés (poids partagés, comme GPT-2) : le vecteur d'un jeton
    sert à le lire et à le prédire, et le modèle n'a pas besoin d'une couche de sortie [embed_dim, vocab_size] à part.
    """

    def __init__(self, max_len: int, vocab_size: int, embed_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.max_len, self.vocab_size, self.embed_dim = max_len, vocab_size, embed_dim
        self.token_embedding = layers.Embedding(vocab_size, embed_dim)
        self.position_embedding = layers.Embedding(max_len, embed_dim)

    def call(self, inputs, reverse=False):
        if reverse:  # [lot, positions, embed_dim] -> [lot, positions, vocab_size] : les logits
            return tf.matmul(inputs, self.token_embedding.embeddings, transpose_b=True)
        positions = tf.range(tf.shape(inputs)[-1])
        return self.token_embedding(inputs) + self.position_embedding(positions)

    def get_config(self):
        return {**super().get_config(), "max_len": self.max_len, "vocab_size": self.vocab_size,
                "embed_dim": self.embed_dim}


def causal_attention_mask(length) -> tf.Tensor:
    """[length, length] booléens : la position i peut regarder la position j seulement si j <= i."""
    # BEGIN SOLUTION 6.2: renvoyez une matrice booléenne [length, length] dont la case (i, j) est vraie quand j <= i
    #   (sur et sous la diagonale), fausse au-dessus. Deux vecteurs d'indices (tf.range), l'un en colonne et l'autre
    #   en ligne : une comparaison entre eux se diffuse (broadcasting) en une matrice.
    #   Doc : https://www.tensorflow.org/api_docs/python/tf/range
    return tf.range(length)[:, None] >= tf.range(length)[None, :]
    # END SOLUTION


# Le bloc ci-dessous est pré-normalisé, comme GPT-2 : chaque sous-couche lit une copie normalisée de son entrée, et
# sa sortie est ajoutée à l'entrée non normalisée ; un chemin résiduel direct va ainsi des plongements à la sortie
# (une dernière LayerNormalization vient après les blocs). L'exemple « Text generation with a miniature GPT » de
# keras.io normalise APRÈS chaque somme ; sur George Sand, il apprenait moins dans le même nombre de pas
# (mesures dans docs/benchmarks.md).


@tf.keras.utils.register_keras_serializable(package="aurore")
class TransformerBlock(layers.Layer):
    """Auto-attention masquée puis réseau feed-forward, chacun lit une entrée normalisée et s'y ajoute."""

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim, self.num_heads, self.ff_dim, self.dropout = embed_dim, num_heads, ff_dim, dropout
        self.attention = layers.MultiHeadAttention(num_heads, embed_dim // num_heads)
        self.feed_forward = tf.keras.Sequential([layers.Dense(ff_dim, activation="gelu"), layers.Dense(embed_dim)])
        self.norm1, self.norm2 = layers.LayerNormalization(epsilon=1e-6), layers.LayerNormalization(epsilon=1e-6)
        self.dropout1, self.dropout2 = layers.Dropout(dropout), layers.Dropout(dropout)

    def call(self, inputs, training=None):
        # BEGIN SOLUTION 6.3: construisez le masque causal pour la longueur de la séquence (un seul argument : le
        #   nombre de positions, la 2e dimension de tf.shape(inputs)), avec un axe de plus en tête pour le lot.
        #   Pré-normalisation : normalisez inputs avec self.norm1, faites l'attention de ce résultat sur lui-même
        #   avec le masque (argument attention_mask), passez-la par self.dropout1 et ajoutez-la à inputs (sans
        #   normaliser la somme). Même chose avec self.norm2, self.feed_forward et self.dropout2 sur cette somme, et
        #   renvoyez la seconde somme. Donnez training= aux dropouts.
        #   Doc : https://keras.io/api/layers/attention_layers/multi_head_attention/
        mask = causal_attention_mask(tf.shape(inputs)[1])[None]  # le même masque pour chaque séquence du lot
        normed = self.norm1(inputs)
        x = inputs + self.dropout1(self.attention(normed, normed, attention_mask=mask), training=training)
        return x + self.dropout2(self.feed_forward(self.norm2(x)), training=training)
        # END SOLUTION

    def get_config(self):
        return {**super().get_config(), "embed_dim": self.embed_dim, "num_heads": self.num_heads,
                "ff_dim": self.ff_dim, "dropout": self.dropout}


def create_model(vocab_size: int, config: Config, total_steps: int) -> tf.keras.Model:
    """Plongements -> `mini_layers` blocs pré-normalisés -> LayerNormalization -> les plongements partagés notent
    le vocabulaire.

    Compilé pour `total_steps` pas d'entraînement : AdamW, dont le taux d'apprentissage suit `WarmupCosineDecay`
    (plus bas), et XLA (`jit_compile=True`), qui compile le pas d'entraînement entier en un seul programme.
    """
    # BEGIN SOLUTION 6.4: avec l'API fonctionnelle de Keras : une entrée de longueur quelconque d'identifiants
    #   entiers ; une couche TokenAndPositionEmbedding (config.mini_seq_len, vocab_size, config.mini_embed_dim),
    #   gardée dans une variable ; config.mini_layers blocs TransformerBlock (réglages config.mini_embed_dim,
    #   mini_heads, mini_ff_dim et mini_dropout) ; une LayerNormalization ; puis la MÊME couche de plongements,
    #   appelée avec reverse=True, donne un score par jeton du vocabulaire (poids partagés). Faites-en un
    #   tf.keras.Model, compilez-le avec l'optimiseur AdamW (weight_decay 0.1, beta_2 0.99) dont le taux est un
    #   WarmupCosineDecay (config.mini_learning_rate, config.mini_warmup_steps, total_steps), l'entropie croisée
    #   « sparse » calculée sur des logits et jit_compile=True, puis renvoyez-le.
    #   Doc : https://keras.io/guides/functional_api/ (couches partagées : « shared layers »)
    inputs = layers.Input(shape=(None,), dtype="int32")
    embedding = TokenAndPositionEmbedding(config.mini_seq_len, vocab_size, config.mini_embed_dim)
    x = embedding(inputs)
    for _ in range(config.mini_layers):
        x = TransformerBlock(config.mini_embed_dim, config.mini_heads, config.mini_ff_dim, config.mini_dropout)(x)
    x = layers.LayerNormalization(epsilon=1e-6)(x)  # les blocs pré-normalisés laissent leur dernière somme brute
    outputs = embedding(x, reverse=True)  # un score (logit) par jeton du vocabulaire, à chaque position
    model = tf.keras.Model(inputs, outputs, name="mini_gpt")
    schedule = WarmupCosineDecay(config.mini_learning_rate, config.mini_warmup_steps, total_steps)
    model.compile(optimizer=tf.keras.optimizers.AdamW(schedule, weight_decay=0.1, beta_2=0.99),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
    return model
    # END SOLUTION


# Pour écrire, le modèle note chaque jeton suivant possible ; il reste à transformer ces scores en un choix. Le
# glouton prend le meilleur (et se répète) ; la température aplatit (> 1) ou accentue (< 1) la distribution ; top-k
# garde les k meilleurs jetons ; top-p garde le moins possible des meilleurs jetons dont les probabilités font p.
# Puis on en tire un au hasard.


def sample_next(logits: np.ndarray, rng: np.random.Generator, temperature: float = 1.0, top_k: int = 0,
                top_p: float = 1.0) -> int:
    """Le numéro du jeton suivant ; une température de 0 veut dire glouton."""
    # BEGIN SOLUTION 6.5: température 0 : renvoyez l'indice du plus grand logit (glouton). Sinon : divisez les
    #   logits par la température ; avec top_k > 0, écartez (-inf) tout logit plus petit que le k-ième plus grand ;
    #   passez en probabilités (softmax, en soustrayant d'abord le maximum) ; avec top_p < 1, parcourez les jetons du
    #   plus probable au moins probable et gardez chaque jeton tant que la masse des jetons MIEUX classés que lui
    #   est < top_p (le jeton qui fait franchir top_p est donc gardé, le premier toujours), puis renormalisez ;
    #   enfin tirez un indice au hasard selon ces probabilités (rng.choice, argument p).
    #   Doc : https://numpy.org/doc/stable/reference/random/generated/numpy.random.Generator.choice.html
    if temperature == 0:
        return int(np.argmax(logits))
    logits = np.asarray(logits, dtype=np.float64) / temperature
    if top_k > 0:
        kth = np.sort(logits)[-min(top_k, len(logits))]
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    if top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        before = np.cumsum(probs[order]) - probs[order]  # la masse des jetons mieux classés
        keep = np.zeros_like(probs, dtype=bool)
        keep[order[(before < top_p) | (np.arange(len(order)) == 0)]] = True
        probs = np.where(keep, probs, 0.0)
        probs /= probs.sum()
    return int(rng.choice(len(probs), p=probs))
    # END SOLUTION


# S'entraîner en trois minutes. Le taux d'apprentissage monte depuis 0 pendant quelques pas (l'échauffement : les
# statistiques d'Adam sont encore vides, et un pas de pleine taille abîmerait les poids neufs), puis suit une
# demi-période de cosinus jusqu'au dixième de son maximum : de grands pas tant que la perte baisse vite, de petits à la
# fin pour se poser au fond de la vallée. La recette par défaut est le « baby GPT » de nanoGPT pour processeurs ; les
# essais qui l'ont choisie sont dans docs/benchmarks.md.


@tf.keras.utils.register_keras_serializable(package="aurore")
class WarmupCosineDecay(tf.keras.optimizers.schedules.LearningRateSchedule):
    """Montée linéaire jusqu'à `peak` en `warmup_steps` pas, puis descente en cosinus jusqu'à `peak / 10` au pas
    `total_steps`."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int):
        self.peak, self.warmup_steps, self.total_steps = peak, warmup_steps, total_steps

    def __call__(self, step):
        # BEGIN SOLUTION 6.6: renvoyez le taux d'apprentissage du pas `step` (un tenseur entier : convertissez-le en
        #   float32 avec tf.cast). Pendant l'échauffement (step < warmup_steps), il monte en ligne droite : le pas 0
        #   vaut déjà peak / warmup_steps, le dernier pas d'échauffement vaut peak. Ensuite il descend de peak à
        #   floor = peak / 10 en suivant une demi-période de cosinus entre les pas warmup_steps et total_steps (une
        #   progression de 0 à 1, bornée avec tf.clip_by_value, passée à tf.cos), et reste à floor au-delà.
        #   Choisissez entre les deux valeurs avec tf.where.
        #   Doc : https://www.tensorflow.org/api_docs/python/tf/keras/optimizers/schedules/LearningRateSchedule
        step = tf.cast(step, tf.float32)
        floor = self.peak / 10
        warmup = self.peak * (step + 1) / max(1, self.warmup_steps)
        progress = tf.clip_by_value((step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps), 0, 1)
        decay = floor + (self.peak - floor) * 0.5 * (1 + tf.cos(math.pi * progress))
        return tf.where(step < self.warmup_steps, warmup, decay)
        # END SOLUTION

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


def _extra_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text-file", help="s'entraîner sur ce fichier texte au lieu des livres de George Sand")
    parser.add_argument("--text-folder", help="s'entraîner sur tous les .txt de ce dossier (un document chacun)")
    parser.add_argument("--prompt", default="Le soir", help="le début des textes affichés pendant l'entraînement")
    parser.add_argument("--sample-every", type=int, default=1, help="afficher un exemple toutes les N époques")


@friendly_errors
def main(argv: list[str] | None = None) -> dict:
    config, flags = parse_args(__doc__, argv, step=6, extra=_extra_flags)
    budget = [callbacks.TimeBudget(callbacks.parse_duration(config.time_budget))] if config.time_budget else []
    tf.keras.utils.set_random_seed(config.seed)
    train_texts, validation_texts = minigpt.load_texts(config, flags.text_file, flags.text_folder)
    vocabulary = build_vocabulary(train_texts, config)
    train_ids, validation_ids = (minigpt.encode_all(vocabulary, texts) for texts in (train_texts, validation_texts))
    print(f"Jetons « {config.mini_tokens} » : vocabulaire de {format_count(len(vocabulary.tokens))} ; "
          f"{format_count(len(train_ids))} jetons d'entraînement et {format_count(len(validation_ids))} de validation")
    train = make_batches(train_ids, config, config.mini_batch_size, shuffle=True)
    # Chaque époque valide sur le début du texte gardé à part (1 s, au lieu de 5) ; le texte entier est mesuré à la fin.
    validation = make_batches(validation_ids[:40_000], config, 64, shuffle=False)
    steps_per_epoch = config.mini_steps_per_epoch or len(train)
    model = create_model(len(vocabulary.tokens), config, config.mini_epochs * steps_per_epoch)
    model.summary()
    sample = functools.partial(sample_next, temperature=config.temperature, top_k=config.top_k, top_p=config.top_p)
    sampler = minigpt.TextGenerator(flags.prompt, vocabulary, sample, config.mini_seq_len, every=flags.sample_every,
                                    seed=config.seed)
    steps = callbacks.StepHistory()  # la perte de chaque pas, et le pas atteint à chaque fin d'époque
    # La courbe en direct, avec le callback TensorBoard de Keras : tensorboard --logdir aurore/models/logs
    logs = config.models_dir / "logs" / time.strftime("mini-gpt-%Y%m%d-%H%M%S")
    live = tf.keras.callbacks.TensorBoard(log_dir=str(logs), update_freq=20, write_graph=False)
    started = time.monotonic()
    history = model.fit(train.repeat(), validation_data=validation, epochs=config.mini_epochs,
                        steps_per_epoch=steps_per_epoch, callbacks=[sampler, steps, live, *budget])
    seconds = time.monotonic() - started
    done = int(model.optimizer.iterations)
    print(f"Entraînement : {format_count(done)} pas en {callbacks.format_duration(seconds)} "
          f"({format_count(done * config.mini_batch_size * config.mini_seq_len / seconds)} jetons/s)")

    whole_text = make_batches(validation_ids, config, 64, shuffle=False)
    bpc = minigpt.bits_per_character(model, whole_text, len("\n\n".join(validation_texts)) / len(validation_ids))
    print(f"Validation : {format_decimal(bpc, 3)} bits par caractère (la perte affichée par Keras est en nats par "
          "jeton : divisez-la par ln 2 ≈ 0,693 pour des bits)")
    epochs = steps.per_epoch(history)
    metrics = {"tokens": config.mini_tokens, "seq_len": config.mini_seq_len, "bits_per_character": bpc,
               "steps": done, "training_seconds": round(seconds, 1), "epochs": epochs, "samples": sampler.texts}
    folder = minigpt.save(model, vocabulary, config.mini_gpt_dir, metrics)
    plots.plot_losses(steps.steps, epochs, folder / "loss.png", validation_label="validation (par époque)")
    print(f"Enregistré dans {folder} ; la page web de l'étape 5 le propose maintenant aussi.")
    return metrics


if __name__ == "__main__":
    main()

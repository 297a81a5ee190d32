"""Step 6: build a miniature GPT from scratch with the Keras functional API, and train it on George Sand.

Run: python aurore/6_mini_gpt_solution.py                  (characters; needs step 1)
     python aurore/6_mini_gpt_solution.py --mini-tokens word
     python aurore/6_mini_gpt_solution.py --text-folder aclImdb/train     (any folder of .txt documents)

GPT-2 is a stack of identical blocks; here we write one ourselves. A token becomes a vector (its embedding) plus
a vector for its position; each block lets every position look at the positions before it (self-attention with a
causal mask: no peeking at the future), then transforms each position (feed-forward); at the end, the token
embeddings themselves score every token of the vocabulary as the next one. We measure it in bits per character on
La Mare au diable, so that word and character models compare. The default recipe trains in about 2.5 minutes on
2 CPU cores (`--time-budget 1m` stops it sooner); what each of its choices brings is measured below, before
`WarmupCosineDecay`.
"""

from __future__ import annotations

import aurore  # noqa: F401  first: sets TF_USE_LEGACY_KERAS=1 before TensorFlow is imported
import argparse
import math
import time

import numpy as np
import tensorflow as tf

from aurore.config import Config, parse_args
from aurore.engines import minigpt
from aurore.errors import friendly_errors
from aurore.text.french import format_count, format_decimal
from aurore.training import callbacks, plots

layers = tf.keras.layers  # tf.keras is Keras 2 (tf_keras) here, like the Hugging Face models


@tf.keras.utils.register_keras_serializable(package="aurore")
class TokenAndPositionEmbedding(layers.Layer):
    """What a token is, plus where it is: two embeddings added together.

    Called with `reverse=True` on the last vectors, it scores every token of the vocabulary as the next one with
    the same token embeddings, transposed (weight tying, as in GPT-2): a token's vector serves to read it and to
    predict it, and the model needs no separate [embed_dim, vocab_size] output layer.
    """

    def __init__(self, max_len: int, vocab_size: int, embed_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.max_len, self.vocab_size, self.embed_dim = max_len, vocab_size, embed_dim
        self.token_embedding = layers.Embedding(vocab_size, embed_dim)
        self.position_embedding = layers.Embedding(max_len, embed_dim)

    def call(self, inputs, reverse=False):
        if reverse:  # [batch, positions, embed_dim] -> [batch, positions, vocab_size]: the logits
            return tf.matmul(inputs, self.token_embedding.embeddings, transpose_b=True)
        positions = tf.range(tf.shape(inputs)[-1])
        return self.token_embedding(inputs) + self.position_embedding(positions)

    def get_config(self):
        return {**super().get_config(), "max_len": self.max_len, "vocab_size": self.vocab_size,
                "embed_dim": self.embed_dim}


def causal_attention_mask(length) -> tf.Tensor:
    """[length, length] booleans: position i may look at position j only if j <= i."""
    # BEGIN SOLUTION 6.1: renvoyez une matrice booléenne [length, length] dont la case (i, j) est vraie quand j <= i
    #   (sur et sous la diagonale), fausse au-dessus. Deux vecteurs d'indices (tf.range), l'un en colonne et l'autre
    #   en ligne : une comparaison entre eux se diffuse (broadcasting) en une matrice.
    #   Doc : https://www.tensorflow.org/api_docs/python/tf/range
    return tf.range(length)[:, None] >= tf.range(length)[None, :]
    # END SOLUTION


# The block below is pre-norm, like GPT-2: each sub-layer reads a normalised copy of its input, and its output is
# added to the input unnormalised, so a straight residual path runs from the embeddings to the output (one last
# LayerNormalization comes after the blocks). keras.io's "Text generation with a miniature GPT" is post-norm
# (normalise AFTER each sum); on George Sand it learned less in the same steps (figures before `WarmupCosineDecay`).


@tf.keras.utils.register_keras_serializable(package="aurore")
class TransformerBlock(layers.Layer):
    """Masked self-attention then a feed-forward network, each reading a normalised input and added back to it."""

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim, self.num_heads, self.ff_dim, self.dropout = embed_dim, num_heads, ff_dim, dropout
        self.attention = layers.MultiHeadAttention(num_heads, embed_dim // num_heads)
        self.feed_forward = tf.keras.Sequential([layers.Dense(ff_dim, activation="gelu"), layers.Dense(embed_dim)])
        self.norm1, self.norm2 = layers.LayerNormalization(epsilon=1e-6), layers.LayerNormalization(epsilon=1e-6)
        self.dropout1, self.dropout2 = layers.Dropout(dropout), layers.Dropout(dropout)

    def call(self, inputs, training=None):
        # BEGIN SOLUTION 6.2: construisez le masque causal pour la longueur de la séquence (un seul argument : le
        #   nombre de positions, la 2e dimension de tf.shape(inputs)), avec un axe de plus en tête pour le lot.
        #   Pré-normalisation : normalisez inputs avec self.norm1, faites l'attention de ce résultat sur lui-même
        #   avec le masque (argument attention_mask), passez-la par self.dropout1 et ajoutez-la à inputs (sans
        #   normaliser la somme). Même chose avec self.norm2, self.feed_forward et self.dropout2 sur cette somme, et
        #   renvoyez la seconde somme. Donnez training= aux dropouts.
        #   Doc : https://keras.io/api/layers/attention_layers/multi_head_attention/
        mask = causal_attention_mask(tf.shape(inputs)[1])[None]  # the same mask for every sequence of the batch
        normed = self.norm1(inputs)
        x = inputs + self.dropout1(self.attention(normed, normed, attention_mask=mask), training=training)
        return x + self.dropout2(self.feed_forward(self.norm2(x)), training=training)
        # END SOLUTION

    def get_config(self):
        return {**super().get_config(), "embed_dim": self.embed_dim, "num_heads": self.num_heads,
                "ff_dim": self.ff_dim, "dropout": self.dropout}


def create_model(vocab_size: int, config: Config, total_steps: int) -> tf.keras.Model:
    """Embedding -> `mini_layers` pre-norm blocks -> LayerNormalization -> the tied embedding scores the vocabulary.

    Compiled for `total_steps` training steps: AdamW whose learning rate follows `WarmupCosineDecay` (below), and
    XLA (`jit_compile=True`), which compiles the whole training step into one program.
    """
    # BEGIN SOLUTION 6.3: avec l'API fonctionnelle de Keras : une entrée de longueur quelconque d'identifiants
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
    x = layers.LayerNormalization(epsilon=1e-6)(x)  # pre-norm blocks leave their last sum unnormalised
    outputs = embedding(x, reverse=True)  # one score (logit) per vocabulary entry, at every position
    model = tf.keras.Model(inputs, outputs, name="mini_gpt")
    schedule = WarmupCosineDecay(config.mini_learning_rate, config.mini_warmup_steps, total_steps)
    model.compile(optimizer=tf.keras.optimizers.AdamW(schedule, weight_decay=0.1, beta_2=0.99),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
    return model
    # END SOLUTION


# To write, the model scores every possible next token; we turn the scores into a choice. Greedy takes the best
# (and repeats itself); temperature flattens (>1) or sharpens (<1) the distribution; top-k keeps the k best
# tokens; top-p keeps the fewest best tokens whose probabilities add up to p. Then we draw one at random.


def sample_next(logits: np.ndarray, rng: np.random.Generator, temperature: float = 1.0, top_k: int = 0,
                top_p: float = 1.0) -> int:
    """The next token id; temperature 0 means greedy."""
    # BEGIN SOLUTION 6.4: température 0 : renvoyez l'indice du plus grand logit (glouton). Sinon : divisez les
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
        before = np.cumsum(probs[order]) - probs[order]  # mass of the better-ranked tokens
        keep = np.zeros_like(probs, dtype=bool)
        keep[order[(before < top_p) | (np.arange(len(order)) == 0)]] = True
        probs = np.where(keep, probs, 0.0)
        probs /= probs.sum()
    return int(rng.choice(len(probs), p=probs))
    # END SOLUTION


# Training in three minutes. The learning rate rises from 0 for a few steps (warm-up: Adam's statistics are
# still empty and a full-size step would wreck the fresh weights), then follows half a cosine down to a tenth of its
# peak: big steps while the loss falls fast, small ones at the end to settle into the valley.
# The default recipe is nanoGPT's "baby GPT" for CPUs; the experiments behind it are in docs/benchmarks.md.


@tf.keras.utils.register_keras_serializable(package="aurore")
class WarmupCosineDecay(tf.keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak` over `warmup_steps`, then cosine decay to `peak / 10` at `total_steps`."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int):
        self.peak, self.warmup_steps, self.total_steps = peak, warmup_steps, total_steps

    def __call__(self, step):
        # BEGIN SOLUTION 6.5: renvoyez le taux d'apprentissage du pas `step` (un tenseur entier : convertissez-le en
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
    vocabulary = minigpt.build_vocabulary(config.mini_tokens, train_texts, config.mini_vocab_size)
    train_ids = minigpt.encode_all(vocabulary, train_texts)
    validation_ids = minigpt.encode_all(vocabulary, validation_texts)
    print(f"Jetons « {config.mini_tokens} » : vocabulaire de {format_count(len(vocabulary.tokens))} ; "
          f"{format_count(len(train_ids))} jetons d'entraînement et {format_count(len(validation_ids))} de validation")

    train = minigpt.windows(train_ids, config.mini_seq_len, config.mini_batch_size, shuffle=True, seed=config.seed)
    # Each epoch's validation reads the start of the held-out text (a second, where the whole of La Mare au diable
    # would take five); the whole text is measured once, at the end.
    validation = minigpt.windows(validation_ids[:40_000], config.mini_seq_len, 64, shuffle=False)
    steps_per_epoch = config.mini_steps_per_epoch or len(train)
    model = create_model(len(vocabulary.tokens), config, config.mini_epochs * steps_per_epoch)
    model.summary()
    sampler = minigpt.TextGenerator(flags.prompt, vocabulary,
                                    lambda logits, rng: sample_next(logits, rng, config.temperature, config.top_k, config.top_p),
                                    config.mini_seq_len, every=flags.sample_every, seed=config.seed)
    steps = callbacks.StepHistory()  # the loss of every step, and the step reached at each epoch end
    # The curve, live, with Keras' TensorBoard callback: tensorboard --logdir aurore/models/logs
    logs = config.models_dir / "logs" / time.strftime("mini-gpt-%Y%m%d-%H%M%S")
    live = tf.keras.callbacks.TensorBoard(log_dir=str(logs), update_freq=20, write_graph=False)
    started = time.monotonic()
    history = model.fit(train.repeat(), validation_data=validation, epochs=config.mini_epochs,
                        steps_per_epoch=steps_per_epoch, callbacks=[sampler, steps, live, *budget])
    seconds = time.monotonic() - started
    done = int(model.optimizer.iterations)
    print(f"Entraînement : {format_count(done)} pas en {callbacks.format_duration(seconds)} "
          f"({format_count(done * config.mini_batch_size * config.mini_seq_len / seconds)} jetons/s)"
          + (f", arrêté par le budget de temps (--time-budget {config.time_budget})"
             if budget and budget[0].stopped_at else ""))

    characters = len("\n\n".join(validation_texts))
    bpc = minigpt.bits_per_character(model, validation_ids, characters, config.mini_seq_len)
    print(f"Validation : {format_decimal(bpc, 3)} bits par caractère (la perte affichée par Keras est en nats par jeton : "
          "divisez-la par ln 2 ≈ 0,693 pour des bits)")
    epochs = [{"epoch": e + 1, "step": step, "loss": history.history["loss"][e],
               "val_loss": history.history["val_loss"][e]} for e, step in zip(history.epoch, steps.epoch_ends)]
    metrics = {"tokens": config.mini_tokens, "seq_len": config.mini_seq_len, "bits_per_character": bpc,
               "steps": done, "training_seconds": round(seconds, 1), "epochs": epochs, "samples": sampler.texts}
    folder = minigpt.save(model, vocabulary, config.mini_gpt_dir, metrics)
    plots.plot_losses(steps.steps, epochs, folder / "loss.png", validation_label="validation (par époque)")
    print(f"Enregistré dans {folder} ; la page web (étape 5) le propose maintenant aussi (Écrire, Comparer, "
          "Pourquoi ce mot ?).")
    return metrics


if __name__ == "__main__":
    main()

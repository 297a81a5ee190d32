"""Step 6: build a miniature GPT from scratch with the Keras functional API, and train it on George Sand.

Run: python aurore/6_mini_gpt_solution.py                  (characters; needs step 1)
     python aurore/6_mini_gpt_solution.py --mini-tokens word
     python aurore/6_mini_gpt_solution.py --text-folder aclImdb/train     (any folder of .txt documents)

GPT-2 is a stack of identical blocks; here we write one ourselves. A token becomes a vector (its embedding) plus
a vector for its position; each block lets every position look at the positions before it (self-attention with a
causal mask: no peeking at the future), then transforms each position (feed-forward); a final layer scores every
token of the vocabulary as the next one. We measure it in bits per character on La Mare au diable, so that word
and character models compare.
"""

from __future__ import annotations

import aurore  # noqa: F401  first: sets TF_USE_LEGACY_KERAS=1 before TensorFlow is imported
import argparse

import numpy as np
import tensorflow as tf

from aurore import minigpt, plots
from aurore.config import Config, parse_args
from aurore.errors import friendly_errors

layers = tf.keras.layers  # tf.keras is Keras 2 (tf_keras) here, like the Hugging Face models


@tf.keras.utils.register_keras_serializable(package="aurore")
class TokenAndPositionEmbedding(layers.Layer):
    """What a token is, plus where it is: two embeddings added together."""

    def __init__(self, max_len: int, vocab_size: int, embed_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.max_len, self.vocab_size, self.embed_dim = max_len, vocab_size, embed_dim
        self.token_embedding = layers.Embedding(vocab_size, embed_dim)
        self.position_embedding = layers.Embedding(max_len, embed_dim)

    def call(self, tokens):
        positions = tf.range(tf.shape(tokens)[-1])
        return self.token_embedding(tokens) + self.position_embedding(positions)

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


# The block below is post-norm, as in keras.io's "Text generation with a miniature GPT": normalise AFTER adding
# each sub-layer's output back to its input. GPT-2 is pre-norm (normalise each sub-layer's input), which trains
# more stably in deep stacks; with two blocks, both learn well, and post-norm reads more simply.


@tf.keras.utils.register_keras_serializable(package="aurore")
class TransformerBlock(layers.Layer):
    """Masked self-attention then a feed-forward network, each added back to its input and normalised."""

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int, dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim, self.num_heads, self.ff_dim, self.dropout = embed_dim, num_heads, ff_dim, dropout
        self.attention = layers.MultiHeadAttention(num_heads, embed_dim // num_heads)
        self.feed_forward = tf.keras.Sequential([layers.Dense(ff_dim, activation="gelu"), layers.Dense(embed_dim)])
        self.norm1, self.norm2 = layers.LayerNormalization(epsilon=1e-6), layers.LayerNormalization(epsilon=1e-6)
        self.dropout1, self.dropout2 = layers.Dropout(dropout), layers.Dropout(dropout)

    def call(self, inputs, training=None):
        # BEGIN SOLUTION 6.2: construisez le masque causal pour la longueur de la séquence (un seul argument : le
        #   nombre de positions, la 2e dimension de tf.shape(inputs)), avec un axe de plus en tête pour le lot.
        #   Faites l'attention de inputs sur lui-même avec ce masque (argument attention_mask), passez le résultat
        #   par self.dropout1, ajoutez-le à inputs et normalisez avec self.norm1. Même chose avec self.feed_forward,
        #   self.dropout2 et self.norm2 sur ce résultat, et renvoyez-le. Donnez training= aux dropouts.
        #   Doc : https://keras.io/examples/generative/text_generation_with_miniature_gpt/
        mask = causal_attention_mask(tf.shape(inputs)[1])[None]  # the same mask for every sequence of the batch
        attended = self.attention(inputs, inputs, attention_mask=mask)
        out1 = self.norm1(inputs + self.dropout1(attended, training=training))
        return self.norm2(out1 + self.dropout2(self.feed_forward(out1), training=training))
        # END SOLUTION

    def get_config(self):
        return {**super().get_config(), "embed_dim": self.embed_dim, "num_heads": self.num_heads,
                "ff_dim": self.ff_dim, "dropout": self.dropout}


def create_model(vocab_size: int, config: Config) -> tf.keras.Model:
    """Embedding -> `mini_layers` transformer blocks -> Dense scores over the vocabulary (the logits)."""
    # BEGIN SOLUTION 6.3: avec l'API fonctionnelle de Keras : une entrée de longueur quelconque d'identifiants
    #   entiers, puis TokenAndPositionEmbedding (config.mini_seq_len, vocab_size, config.mini_embed_dim), puis
    #   config.mini_layers blocs TransformerBlock (réglages config.mini_embed_dim, mini_heads, mini_ff_dim et
    #   mini_dropout), puis une couche Dense qui donne un score par mot du vocabulaire. Faites-en un tf.keras.Model,
    #   compilez-le avec l'optimiseur Adam (taux config.mini_learning_rate) et l'entropie croisée « sparse »
    #   calculée sur des logits, puis renvoyez-le.
    #   Doc : https://keras.io/guides/functional_api/
    inputs = layers.Input(shape=(None,), dtype="int32")
    x = TokenAndPositionEmbedding(config.mini_seq_len, vocab_size, config.mini_embed_dim)(inputs)
    for _ in range(config.mini_layers):
        x = TransformerBlock(config.mini_embed_dim, config.mini_heads, config.mini_ff_dim, config.mini_dropout)(x)
    outputs = layers.Dense(vocab_size)(x)  # one score (logit) per vocabulary entry, at every position
    model = tf.keras.Model(inputs, outputs, name="mini_gpt")
    model.compile(optimizer=tf.keras.optimizers.Adam(config.mini_learning_rate),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
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
    #   est < top_p (le jeton qui fait franchir top_p est donc gardé, le premier toujours), puis renormalisez ; enfin tirez un indice au hasard selon ces probabilités (rng.choice, argument p).
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


def _extra_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text-file", help="train on this text file instead of the George Sand books")
    parser.add_argument("--text-folder", help="train on every .txt below this folder (one document each)")
    parser.add_argument("--prompt", default="Le soir", help="the start of the texts printed during training")
    parser.add_argument("--sample-every", type=int, default=1, help="print a sample every N epochs")


@friendly_errors
def main(argv: list[str] | None = None) -> dict:
    config, flags = parse_args(__doc__, argv, step=6, extra=_extra_flags)
    tf.keras.utils.set_random_seed(config.seed)
    train_texts, validation_texts = minigpt.load_texts(config, flags.text_file, flags.text_folder)
    vocabulary = minigpt.build_vocabulary(config.mini_tokens, train_texts, config.mini_vocab_size)
    train_ids = minigpt.encode_all(vocabulary, train_texts)
    validation_ids = minigpt.encode_all(vocabulary, validation_texts)
    print(f"Jetons « {config.mini_tokens} » : vocabulaire de {len(vocabulary.tokens):,} ; {len(train_ids):,} jetons "
          f"d'entraînement et {len(validation_ids):,} de validation")

    model = create_model(len(vocabulary.tokens), config)
    model.summary()
    train = minigpt.windows(train_ids, config.mini_seq_len, config.mini_batch_size, shuffle=True, seed=config.seed)
    validation = minigpt.windows(validation_ids, config.mini_seq_len, config.mini_batch_size, shuffle=False)
    sampler = minigpt.TextGenerator(flags.prompt, vocabulary,
                                    lambda logits, rng: sample_next(logits, rng, config.temperature, config.top_k, config.top_p),
                                    config.mini_seq_len, every=flags.sample_every, seed=config.seed)
    history = model.fit(train.repeat(), validation_data=validation, epochs=config.mini_epochs,
                        steps_per_epoch=config.mini_steps_per_epoch or None, callbacks=[sampler])

    characters = len("\n\n".join(validation_texts))
    bpc = minigpt.bits_per_character(model, validation_ids, characters, config.mini_seq_len)
    print(f"Validation : {bpc:.3f} bits par caractère")
    steps = config.mini_steps_per_epoch or len(train)
    epochs = [{"epoch": e + 1, "step": (e + 1) * steps, "loss": history.history["loss"][e],
               "val_loss": history.history["val_loss"][e]} for e in history.epoch]
    metrics = {"tokens": config.mini_tokens, "seq_len": config.mini_seq_len, "bits_per_character": bpc,
               "epochs": epochs, "samples": sampler.texts}
    folder = minigpt.save(model, vocabulary, config.mini_gpt_dir, metrics)
    plots.plot_losses([{"step": e["step"], "loss": e["loss"]} for e in epochs], epochs, folder / "loss.png",
                      validation_label="validation (par époque)")
    print(f"Enregistré dans {folder} ; la page web (étape 5) le propose maintenant comme second modèle.")
    return metrics


if __name__ == "__main__":
    main()

"""Étape 3 : affiner GPT-2 sur George Sand avec `fit` de Keras, en enregistrant des points de contrôle en route.

Lancer : python aurore/3_train_solution.py   (après l'étape 2 ; --resume reprend le dernier essai après un Ctrl-C)

Le modèle parle déjà français ; l'affiner le rapproche du vocabulaire et du style de George Sand. On le mesure sur
le livre gardé à part : la perplexité (à quel point chaque jeton suivant surprend le modèle) doit baisser. La suite
est celle de Hugging Face avec Keras : charger -> summary -> jeux de données -> optimiseur -> compile -> fit avec
un Callback -> evaluate -> save_pretrained.
"""

from __future__ import annotations

import aurore  # noqa: F401  en premier : TF_USE_LEGACY_KERAS=1 avant d'importer TensorFlow
import argparse
import math

import tensorflow as tf
from datasets import DatasetDict, load_from_disk
from transformers import TFAutoModelForCausalLM, create_optimizer

from aurore import hub, training
from aurore.config import Config, parse_args
from aurore.errors import friendly_errors, require_output, step_command
from aurore.text.french import format_decimal
from aurore.training import final
from aurore.training.checkpoints import Run, optimizer_step


def load_blocks(config: Config) -> DatasetDict:
    """Les blocs de jetons écrits par l'étape 2."""
    # BEGIN SOLUTION 3.1: rechargez le DatasetDict que l'étape 2 a enregistré dans le dossier config.tokenized_dir.
    #   À chercher : la fonction de 🤗 Datasets qui relit ce qu'a écrit save_to_disk (elle attend un str).
    #   Doc : https://huggingface.co/docs/datasets/package_reference/loading_methods#datasets.load_from_disk
    return load_from_disk(str(config.tokenized_dir))
    # END SOLUTION


def load_model(folder: str):
    """GPT-2 avec sa tête de modèle de langue (elle note chaque jeton suivant), depuis un dossier de poids
    TensorFlow."""
    with hub.loading(folder):
        # BEGIN SOLUTION 3.2: chargez le modèle enregistré dans `folder` et renvoyez-le. C'est le même appel que
        #   pour le tokenizer de l'étape 2, avec la classe « Auto » des modèles TensorFlow de langue causale
        #   (chaque jeton prédit le suivant).
        #   Doc : https://huggingface.co/docs/transformers/model_doc/auto#transformers.TFAutoModelForCausalLM
        return TFAutoModelForCausalLM.from_pretrained(folder)
        # END SOLUTION


# Le profil laptop n'entraîne que les blocs du haut : une couche gelée ne reçoit pas de gradient, alors un pas coûte
# sa passe avant et peu d'autre chose. La couche de sortie de GPT-2 partage ses poids avec les plongements des jetons :
# ils restent gelés ensemble.


def freeze_lower_layers(model, top_blocks: int) -> tuple[int, int]:
    """Gèle les plongements et tous les blocs sauf les `top_blocks` du haut (0 : tout apprend) ; (entraînés, total)."""
    if top_blocks:
        model.transformer.wte.trainable = model.transformer.wpe.trainable = False
        for block in model.transformer.h[: len(model.transformer.h) - top_blocks]:
            block.trainable = False
    return training.count_parameters(model.trainable_weights), training.count_parameters(model.weights)


def to_tf_datasets(model, blocks: DatasetDict, batch_size: int) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """Des lots pour Keras : blocs d'entraînement mélangés, blocs de test dans l'ordre."""
    # BEGIN SOLUTION 3.3: transformez chaque split en tf.data.Dataset de lots de batch_size blocs, avec la méthode
    #   des modèles Hugging Face qui prépare un Dataset pour Keras ; mélangez le train, pas le test (la perplexité
    #   doit être mesurée toujours de la même façon). Renvoyez (train, test).
    #   Doc : https://huggingface.co/docs/transformers/main_classes/model#transformers.TFPreTrainedModel.prepare_tf_dataset
    train = model.prepare_tf_dataset(blocks["train"], batch_size=batch_size, shuffle=True)
    test = model.prepare_tf_dataset(blocks["test"], batch_size=batch_size, shuffle=False)
    return train, test
    # END SOLUTION


# Le taux d'apprentissage monte pendant un court échauffement, puis descend en ligne droite jusqu'à 0 au DERNIER pas
# réellement fait. (L'atelier de 2023 calait ce calendrier sur une époque en en lançant dix : dès la 2e époque, le
# taux valait 0 et le modèle n'apprenait plus.)


def make_optimizer(total_steps: int, config: Config):
    """AdamW avec échauffement puis décroissance linéaire sur `total_steps` pas."""
    # BEGIN SOLUTION 3.4: créez l'optimiseur AdamW de transformers avec son calendrier : taux maximal
    #   config.learning_rate, échauffement sur la part config.warmup_ratio des total_steps pas, décroissance jusqu'à
    #   0 au dernier pas (total_steps), pénalité des poids config.weight_decay. La fonction renvoie deux objets :
    #   renvoyez seulement l'optimiseur.
    #   Doc : https://huggingface.co/docs/transformers/main_classes/optimizer_schedules#transformers.create_optimizer
    optimizer, _schedule = create_optimizer(
        init_lr=config.learning_rate,
        num_train_steps=total_steps,
        num_warmup_steps=int(config.warmup_ratio * total_steps),
        weight_decay_rate=config.weight_decay,
    )
    return optimizer
    # END SOLUTION


class CheckpointSaver(tf.keras.callbacks.Callback):
    """Un point de contrôle complet (modèle, tokenizer, état de l'optimiseur) tous les `every` pas et à chaque fin
    d'époque."""

    def __init__(self, run: Run, tokenizer, every: int, keep: int):
        super().__init__()
        self.run, self.tokenizer, self.every, self.keep = run, tokenizer, every, keep

    def save(self, epoch: int | None = None, val_loss: float | None = None):
        # Atomique (une panne laisse le point précédent entier) ; garde les `keep` derniers de cet essai seulement.
        return self.run.save(self.model, self.tokenizer, self.keep, epoch, val_loss)

    def on_train_batch_end(self, batch, logs=None):
        # BEGIN SOLUTION 3.5: Keras appelle cette méthode après chaque pas d'entraînement. Quand le numéro du pas
        #   (optimizer_step(self.model), compté depuis le début de l'essai) est un multiple de self.every,
        #   enregistrez un point de contrôle avec self.save() ; self.every vaut 0 : jamais.
        #   Doc : https://www.tensorflow.org/guide/keras/writing_your_own_callbacks
        if self.every and optimizer_step(self.model) % self.every == 0:
            self.save()
        # END SOLUTION

    def on_epoch_end(self, epoch, logs=None):
        # Keras vient de valider : un essai repris d'ici part de ce score au lieu de le mesurer à nouveau.
        self.save(epoch=epoch + 1, val_loss=(logs or {}).get("val_loss"))


def compile_model(model, optimizer, jit_compile: bool) -> None:
    # BEGIN SOLUTION 3.6: préparez le modèle pour l'entraînement avec l'optimiseur et jit_compile (XLA compile le
    #   pas entier). Ne donnez pas de fonction de perte : un modèle Hugging Face calcule la sienne à partir des
    #   "labels" de chaque lot.
    #   Doc : https://huggingface.co/docs/transformers/training#train-a-tensorflow-model-with-keras
    model.compile(optimizer=optimizer, jit_compile=jit_compile)
    # END SOLUTION


def train(model, train_data, test_data, plan: training.Plan, callbacks: list):
    """Keras fait la boucle : passe avant, perte, gradients, pas de l'optimiseur, validation à chaque fin d'époque."""
    # BEGIN SOLUTION 3.7: lancez l'entraînement Keras sur train_data en validant sur test_data à chaque fin
    #   d'époque, avec le plan (plan.epochs époques de plan.steps_per_epoch pas, en commençant à l'époque
    #   plan.initial_epoch quand on reprend) et les callbacks ; renvoyez l'historique.
    #   Doc : https://www.tensorflow.org/api_docs/python/tf/keras/Model#fit
    return model.fit(train_data, validation_data=test_data, epochs=plan.epochs, steps_per_epoch=plan.steps_per_epoch,
                     initial_epoch=plan.initial_epoch, callbacks=callbacks)
    # END SOLUTION


def perplexity(model, test_data) -> float:
    """exp(perte moyenne) : le modèle hésite comme entre autant de jetons ; 1 serait un modèle parfait."""
    # BEGIN SOLUTION 3.8: mesurez la perte moyenne du modèle sur test_data (la méthode de Keras qui évalue sans
    #   entraîner ; verbose=0 pour ne rien afficher) et renvoyez son exponentielle.
    #   Doc : https://www.tensorflow.org/api_docs/python/tf/keras/Model#evaluate
    return math.exp(model.evaluate(test_data, verbose=0))
    # END SOLUTION


# Le modèle final : le dossier que les étapes 4 et 5 rechargent avec from_pretrained. save_pretrained y écrit les
# poids, leur configuration et les réglages de génération ; le tokenizer s'enregistre à côté, pour qu'un seul dossier
# suffise. (Autour de cet appel, le paquet écrit sous un nom provisoire, renomme le dossier une fois complet et garde
# le modèle précédent : une coupure ne laisse jamais un modèle à moitié écrit.)


def save_model(model, tokenizer, folder: str) -> None:
    """Le modèle et son tokenizer, dans un dossier que from_pretrained sait relire."""
    # BEGIN SOLUTION 3.9: enregistrez le modèle, puis le tokenizer, dans le dossier `folder`, chacun avec la méthode
    #   de Hugging Face qui écrit un dossier que from_pretrained saura relire.
    #   Doc : https://huggingface.co/docs/transformers/main_classes/model#transformers.TFPreTrainedModel.save_pretrained
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    # END SOLUTION


def _extra_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resume", action="store_true",
                        help="reprendre le dernier entraînement à son dernier point de sauvegarde")
    parser.add_argument("--strategy", default="auto", choices=["auto", "default", "mirrored", "multi-worker"],
                        help="répartir l'entraînement sur plusieurs processeurs (auto : tous les GPU s'il y en a "
                             "plusieurs)")
    parser.add_argument("--mixed-precision", action="store_true", help="calcul en 16 bits, pour les GPU")
    parser.add_argument("--push-to-hub", metavar="REPO_ID",
                        help="publier le modèle final sur le Hub (jeton : HF_TOKEN)")


@friendly_errors
def main(argv: list[str] | None = None) -> dict:
    config, flags = parse_args(__doc__, argv, step=3, extra=_extra_flags)
    require_output(config, 2)
    run = training.prepare_run(config, flags.resume, flags.strategy, flags.mixed_precision)  # profil, appareils, essai
    config = run.config  # un essai repris garde ses propres réglages
    blocks = training.reblock(load_blocks(config), run.block_size)
    with run.strategy.scope():  # les variables du modèle et de l'optimiseur sont créées sur chaque appareil
        model = load_model(run.model_folder)
        trainable, total = freeze_lower_layers(model, run.top_blocks)
    model.summary()
    run.describe(trainable, total)
    train_data, test_data = to_tf_datasets(model, blocks, config.batch_size)
    plan = run.plan(len(train_data))
    with run.strategy.scope():
        compile_model(model, run.restore(make_optimizer(plan.total_steps, config), model), run.jit_compile)
    saver = CheckpointSaver(run.run, run.load_tokenizer(), config.save_every, config.keep_checkpoints)
    saver.set_model(model)
    # Le callback TensorBoard de Keras : la courbe en direct.
    # Dans un autre terminal : tensorboard --logdir aurore/models/logs
    live = tf.keras.callbacks.TensorBoard(log_dir=str(config.models_dir / "logs" / run.run.name), update_freq=10,
                                          write_graph=False)

    with training.interruptible(saver):  # Ctrl-C : un point de contrôle, puis comment continuer
        # Noter tout le livre coûte environ la moitié de l'entraînement : le modèle de départ (le modèle de base, ou le
        # point repris) a le même score sur les mêmes blocs à chaque essai ; il est mesuré une fois, puis gardé.
        before = run.known_perplexity(blocks["test"])
        if before is None:
            before = run.remember_perplexity(blocks["test"], perplexity(model, test_data))
        print(f"Perplexité sur La Mare au diable avant l'entraînement : {format_decimal(before, 2)}")
        history = train(model, train_data.repeat(), test_data, plan, [saver, live, *run.callbacks(plan)])
        # La dernière validation de fit a noté le modèle final sur tout le livre : c'est le chiffre « après ».
        after = math.exp(history.history["val_loss"][-1])
        print(f"Perplexité sur La Mare au diable : {format_decimal(before, 2)} avant, {format_decimal(after, 2)} après "
              "l'entraînement")
        metrics = final.save_final(run, model, saver.tokenizer, history, (before, after), save_model)
    if flags.push_to_hub:
        print(f"Envoyé : {hub.push_to_hub(config.finetuned_dir, flags.push_to_hub)}")
    print(f"Étape suivante : {step_command(4)}")
    return metrics


if __name__ == "__main__":
    main()

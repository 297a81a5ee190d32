"""Step 3: fine-tune GPT-2 on George Sand with Keras `fit`, saving checkpoints as it goes.

Run: python aurore/3_train_solution.py   (needs step 2; --resume continues the last run after a Ctrl-C)

The model already speaks French; fine-tuning nudges it towards George Sand's vocabulary and style. We measure
that on the held-out book: perplexity (how surprised the model is by each next token) should go down.
"""

from __future__ import annotations

import aurore  # noqa: F401  first: sets TF_USE_LEGACY_KERAS=1 before TensorFlow is imported
import argparse
import math

import tensorflow as tf
from datasets import DatasetDict, load_from_disk
from transformers import TFAutoModelForCausalLM, create_optimizer

from aurore import hub, training
from aurore.config import Config, parse_args
from aurore.errors import friendly_errors, require_output
from aurore.text.french import format_decimal
from aurore.training import final
from aurore.training.checkpoints import Run, optimizer_step


def load_blocks(config: Config) -> DatasetDict:
    """The token blocks written by step 2."""
    # BEGIN SOLUTION 3.1: rechargez le DatasetDict que l'étape 2 a enregistré dans le dossier config.tokenized_dir.
    #   À chercher : la fonction de 🤗 Datasets qui relit ce qu'a écrit save_to_disk (elle attend un str).
    #   Doc : https://huggingface.co/docs/datasets/package_reference/loading_methods#datasets.load_from_disk
    return load_from_disk(str(config.tokenized_dir))
    # END SOLUTION


def load_model(folder: str):
    """GPT-2 with its language-model head (it scores every next token), from a folder of TensorFlow weights."""
    with hub.loading(folder):
        # BEGIN SOLUTION 3.2: chargez le modèle enregistré dans `folder` et renvoyez-le. C'est le même appel que
        #   pour le tokenizer de l'étape 2, avec la classe « Auto » des modèles TensorFlow de langue causale
        #   (chaque jeton prédit le suivant).
        #   Doc : https://huggingface.co/docs/transformers/model_doc/auto#transformers.TFAutoModelForCausalLM
        return TFAutoModelForCausalLM.from_pretrained(folder)
        # END SOLUTION


# The laptop profile trains only the top blocks: a frozen layer gets no gradient, so a step costs its forward
# pass and little else. GPT-2 ties its output layer to the token embeddings: they stay frozen together.


def freeze_lower_layers(model, top_blocks: int) -> tuple[int, int]:
    """Freeze the embeddings and all but the top `top_blocks` blocks (0: everything learns); (trainable, total)."""
    if top_blocks:
        model.transformer.wte.trainable = model.transformer.wpe.trainable = False
        for block in model.transformer.h[: len(model.transformer.h) - top_blocks]:
            block.trainable = False
    return training.count_parameters(model.trainable_weights), training.count_parameters(model.weights)


def to_tf_datasets(model, blocks: DatasetDict, batch_size: int) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """Batches for Keras: training blocks shuffled, test blocks in order."""
    # BEGIN SOLUTION 3.3: transformez chaque split en tf.data.Dataset de lots de batch_size blocs, avec la méthode
    #   des modèles Hugging Face qui prépare un Dataset pour Keras ; mélangez le train, pas le test (la perplexité
    #   doit être mesurée toujours de la même façon). Renvoyez (train, test).
    #   Doc : https://huggingface.co/docs/transformers/main_classes/model#transformers.TFPreTrainedModel.prepare_tf_dataset
    train = model.prepare_tf_dataset(blocks["train"], batch_size=batch_size, shuffle=True)
    test = model.prepare_tf_dataset(blocks["test"], batch_size=batch_size, shuffle=False)
    return train, test
    # END SOLUTION


# The learning rate rises during a short warm-up, then decays linearly to 0 on the LAST step actually run.
# (The 2023 workshop sized this schedule to one epoch while fitting ten: from epoch 2 the rate was 0 and the
# model stopped learning.)


def make_optimizer(total_steps: int, config: Config):
    """AdamW with warm-up and linear decay over `total_steps`."""
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
    """Save a whole checkpoint (model, tokenizer, optimizer state) every `every` steps and at each epoch end."""

    def __init__(self, run: Run, tokenizer, every: int, keep: int):
        super().__init__()
        self.run, self.tokenizer, self.every, self.keep = run, tokenizer, every, keep

    def save(self, epoch: int | None = None, val_loss: float | None = None):
        # Atomic (a crash leaves the previous checkpoint whole); keeps the last `keep` of this run only.
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
        # Keras validated just before: a run resumed from here starts from this score instead of measuring it.
        self.save(epoch=epoch + 1, val_loss=(logs or {}).get("val_loss"))


def compile_model(model, optimizer, jit_compile: bool) -> None:
    # BEGIN SOLUTION 3.6: préparez le modèle pour l'entraînement avec l'optimiseur et jit_compile (XLA compile le
    #   pas entier). Ne donnez pas de fonction de perte : un modèle Hugging Face calcule la sienne à partir des
    #   "labels" de chaque lot.
    #   Doc : https://huggingface.co/docs/transformers/training#train-a-tensorflow-model-with-keras
    model.compile(optimizer=optimizer, jit_compile=jit_compile)
    # END SOLUTION


def train(model, train_data, test_data, plan: training.Plan, callbacks: list):
    """Keras does the loop: forward pass, loss, gradients, optimizer step, validation at each epoch end."""
    # BEGIN SOLUTION 3.7: lancez l'entraînement Keras sur train_data en validant sur test_data à chaque fin
    #   d'époque, avec le plan (plan.epochs époques de plan.steps_per_epoch pas, en commençant à l'époque
    #   plan.initial_epoch quand on reprend) et les callbacks ; renvoyez l'historique.
    #   Doc : https://www.tensorflow.org/api_docs/python/tf/keras/Model#fit
    return model.fit(train_data, validation_data=test_data, epochs=plan.epochs, steps_per_epoch=plan.steps_per_epoch,
                     initial_epoch=plan.initial_epoch, callbacks=callbacks)
    # END SOLUTION


def perplexity(model, test_data) -> float:
    """exp(mean next-token loss): the model hesitates as if among that many tokens; 1 would be a perfect model."""
    # BEGIN SOLUTION 3.8: mesurez la perte moyenne du modèle sur test_data (la méthode de Keras qui évalue sans
    #   entraîner ; verbose=0 pour ne rien afficher) et renvoyez son exponentielle.
    #   Doc : https://www.tensorflow.org/api_docs/python/tf/keras/Model#evaluate
    return math.exp(model.evaluate(test_data, verbose=0))
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
    run = training.prepare_run(config, flags.resume, flags.strategy, flags.mixed_precision)  # profile, devices, run
    config = run.config  # a resumed run keeps its own settings
    blocks = training.reblock(load_blocks(config), run.block_size)
    with run.strategy.scope():  # the model and optimizer variables are created on every device
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
    # Keras' own TensorBoard callback: the loss curve, live. In another terminal: tensorboard --logdir aurore/models/logs
    live = tf.keras.callbacks.TensorBoard(log_dir=str(config.models_dir / "logs" / run.run.name), update_freq=10,
                                          write_graph=False)

    with training.interruptible(saver):  # Ctrl-C: a checkpoint, then how to continue
        # Scoring the whole book costs about half as much as training: the starting model (the base model, or the
        # checkpoint we resume) scores the same on the same blocks at every run, so it is measured once, then kept.
        before = run.known_perplexity(blocks["test"])
        if before is None:
            before = run.remember_perplexity(blocks["test"], perplexity(model, test_data))
        print(f"Perplexité sur La Mare au diable avant l'entraînement : {format_decimal(before, 2)}")
        history = train(model, train_data.repeat(), test_data, plan, [saver, live, *run.callbacks(plan)])
        # fit's last validation scored the final model on the whole book: that is the "after" figure.
        after = math.exp(history.history["val_loss"][-1])
        print(f"Perplexité sur La Mare au diable : {format_decimal(before, 2)} avant, {format_decimal(after, 2)} après "
              "l'entraînement")
        metrics = final.save_final(run, model, saver.tokenizer, history, (before, after))
    if flags.push_to_hub:
        print(f"Envoyé : {hub.push_to_hub(config.finetuned_dir, flags.push_to_hub)}")
    print("Étape suivante : python aurore/4_generate_solution.py")
    return metrics


if __name__ == "__main__":
    main()

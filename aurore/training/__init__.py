"""The set-up around step 3's lesson: profiles, devices, resuming a run, the plan of steps, known scores.

`prepare_run` makes every decision that is not the lesson (which profile, which devices, which run to continue,
which folder to load, the time budget) and says each one; the step file keeps load -> prepare -> compile -> fit ->
evaluate -> save.
"""

from __future__ import annotations

import contextlib
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import tensorflow as tf

from aurore import hub
from aurore.config import Config
from aurore.errors import AuroreError
from aurore.text.french import format_count, format_decimal
from aurore.training import callbacks, evaluation
from aurore.training.blocks import reblock  # noqa: F401  step 3 calls training.reblock
from aurore.training.checkpoints import Run, latest_run, read_state, restore_optimizer

# The settings that define a run's schedule: stored with the run, restored by --resume.
RUN_SETTINGS = ("epochs", "max_steps", "batch_size", "block_size", "learning_rate", "warmup_ratio", "weight_decay",
                "seed", "profile", "train_top_blocks", "save_every", "keep_checkpoints")


@dataclass(frozen=True)
class Profile:
    """How step 3 trains. laptop: a CPU run that still learns in minutes; full: every weight learns (for GPUs)."""

    name: str
    freeze: bool  # only the top `train_top_blocks` blocks learn; embeddings and lower blocks are frozen
    block_size: int | None  # cut step 2's blocks to this many tokens (None: keep them)
    jit_compile: bool  # one XLA program for the whole train step


PROFILES = {
    "laptop": Profile("laptop", freeze=True, block_size=64, jit_compile=True),
    "full": Profile("full", freeze=False, block_size=None, jit_compile=False),
}


@dataclass(frozen=True)
class Plan:
    """How many steps, shared among how many epochs (each ends with a validation), and where we start."""

    epochs: int
    steps_per_epoch: int
    total_steps: int
    start_step: int = 0

    @property
    def initial_epoch(self) -> int:
        return self.start_step // self.steps_per_epoch


@dataclass
class TrainingRun:
    """Everything step 3 decided before the lesson starts."""

    config: Config  # with a resumed run's settings restored
    strategy: tf.distribute.Strategy
    profile: Profile
    model_folder: str  # what TFAutoModelForCausalLM.from_pretrained loads: the base model, or the checkpoint
    run: Run
    resume_from: Path | None = None  # may be pruned once this run saves newer checkpoints: read it before training
    start_step: int = 0  # the resumed checkpoint's step, read once
    budget: float | None = None
    history: callbacks.StepHistory = field(default_factory=callbacks.StepHistory)
    stopwatch: callbacks.Stopwatch = field(default_factory=callbacks.Stopwatch)

    @property
    def block_size(self) -> int:
        return min(self.config.block_size, self.profile.block_size or self.config.block_size)

    @property
    def jit_compile(self) -> bool:
        # Not under a multi-device strategy: XLA plus MirroredStrategy hung on two logical CPUs.
        return self.profile.jit_compile and self.strategy.num_replicas_in_sync == 1

    def load_tokenizer(self):
        return hub.load_tokenizer(self.model_folder)

    @property
    def top_blocks(self) -> int:
        """How many top blocks learn (0: every weight learns)."""
        return self.config.train_top_blocks if self.profile.freeze else 0

    def describe(self, trainable: int, total: int) -> None:
        what = f"les {self.top_blocks} derniers blocs apprennent, le reste est gelé" if self.top_blocks else \
            "tous les poids apprennent"
        print(f"Profil {self.profile.name} : {what} ; blocs de {self.block_size} jetons ; XLA "
              f"{'oui' if self.jit_compile else 'non'}\n  {format_count(trainable)} paramètres entraînés "
              f"sur {format_count(total)} "
              f"({format_decimal(100 * trainable / total, 1)} %)")
        if self.block_size < self.config.block_size:  # the profile overrides --block-size / AURORE_BLOCK_SIZE: say so
            print(f"  Le profil {self.profile.name} entraîne sur des blocs de {self.block_size} jetons, pas "
                  f"{self.config.block_size} (--block-size) : un pas coûte moins cher. Pour garder "
                  f"{self.config.block_size} : --profile full.")

    def plan(self, batches_per_epoch: int) -> Plan:
        """--max-steps caps the run; its steps are then shared among --epochs parts, each ending with a validation."""
        steps_per_epoch = batches_per_epoch
        total_steps = self.config.epochs * steps_per_epoch
        if self.config.max_steps and self.config.max_steps < total_steps:
            total_steps = self.config.max_steps
            steps_per_epoch = math.ceil(total_steps / self.config.epochs)
        plan = Plan(math.ceil(total_steps / steps_per_epoch), steps_per_epoch, total_steps, self.start_step)
        if plan.start_step >= plan.total_steps:
            raise AuroreError(f"L'essai {self.run.name} est déjà allé jusqu'au bout : pas {plan.start_step} sur "
                              f"{plan.total_steps}, il ne reste rien à reprendre (le modèle final n'a pas été modifié).",
                              "Pour entraîner davantage, lancez un nouvel essai sans --resume (avec --max-steps plus grand).")
        tokens = self.config.batch_size * self.block_size
        print(f"\nPlan : {plan.total_steps} pas ({plan.epochs} époque(s) de {plan.steps_per_epoch}), {tokens} jetons par "
              f"pas, {format_count(plan.total_steps * tokens)} jetons en tout, à partir du pas {plan.start_step}")
        return plan

    def restore(self, optimizer, model):
        """When resuming: AdamW's moments and step count, so the learning-rate schedule continues."""
        if self.resume_from is not None:
            restore_optimizer(optimizer, model, self.resume_from)
        return optimizer

    def callbacks(self, plan: Plan) -> list[tf.keras.callbacks.Callback]:
        """Per-step loss, a hard stop at the last planned step, the projected duration, the time budget, and the
        seconds spent training and validating (metrics.json)."""
        extra = [callbacks.TimeBudget(self.budget)] if self.budget else []  # the epoch ends: the saver checkpoints
        return [self.history, self.stopwatch, callbacks.StopAtStep(plan.total_steps),
                callbacks.Projection(plan.total_steps, self.budget), *extra]

    def _score_key(self, test_blocks) -> str:
        return evaluation.score_key(self.model_folder, test_blocks, self.block_size, self.config.batch_size)

    def known_perplexity(self, test_blocks) -> float | None:
        """The starting model's perplexity on these blocks, when already measured: at the resumed checkpoint's
        epoch end, or by an earlier run of the same weights on the same blocks."""
        if self.resume_from is not None:
            val_loss = read_state(self.resume_from).get("val_loss")
            if val_loss is None:
                return None
            print(f"(score de départ : la validation enregistrée avec {self.resume_from.name}, pas mesurée à nouveau)")
            return math.exp(val_loss)
        known = evaluation.known_perplexity(self.config.models_dir, self._score_key(test_blocks))
        if known is not None:
            print(f"(score de départ : mesuré par un essai précédent du même modèle sur les mêmes blocs, gardé dans "
                  f"{self.config.models_dir / evaluation.KNOWN_SCORES} ; il n'est pas mesuré à nouveau)")
        return known

    def remember_perplexity(self, test_blocks, value: float) -> float:
        """Keep the starting model's perplexity for the next runs; returns it."""
        if self.resume_from is not None:
            return value
        return evaluation.remember_perplexity(self.config.models_dir, self._score_key(test_blocks), value)


def prepare_run(config: Config, resume: bool = False, strategy: str = "auto",
                mixed_precision: bool = False) -> TrainingRun:
    """Decide, and say, how step 3 runs: budget, precision, devices, profile, and the run to start or continue."""
    budget = callbacks.parse_duration(config.time_budget) if config.time_budget else None  # fail fast if malformed
    if resume:
        config, run, checkpoint = _resumed(config)
        folder = str(checkpoint)
    else:
        run, checkpoint = Run.start(config.checkpoints_dir, {k: getattr(config, k) for k in RUN_SETTINGS}), None
        folder = hub.tensorflow_folder(config.base_model, config)
    tf.keras.utils.set_random_seed(config.seed)
    if mixed_precision:
        print(f"Précision mixte : {use_mixed_precision()}")  # before the model is built, or it is ignored
    devices = make_strategy(strategy)
    kind = "stratégie par défaut" if devices is tf.distribute.get_strategy() else type(devices).__name__
    print(f"Entraînement sur {devices.num_replicas_in_sync} appareil(s) ({kind})")
    start_step = read_state(checkpoint)["step"] if checkpoint else 0
    return TrainingRun(config, devices, choose_profile(config.profile), folder, run, checkpoint, start_step, budget)


def _resumed(config: Config) -> tuple[Config, Run, Path]:
    """The most recent run and its last checkpoint; the run's settings win over defaults, given ones are warned."""
    run = latest_run(config.checkpoints_dir)
    if run is None:
        raise AuroreError(f"--resume : aucun point de contrôle dans {config.checkpoints_dir}.",
                          f"Lancez un entraînement sans --resume : `python aurore/{script_name()}` (il enregistre "
                          "des points de contrôle en cours de route).")
    checkpoint, saved, defaults = run.latest(), run.settings, Config()
    values = {}
    for name in RUN_SETTINGS:
        given, kept = getattr(config, name), saved.get(name, getattr(defaults, name))  # (runs of older versions)
        if given != getattr(defaults, name) and given != kept:
            print(f"attention : --{name.replace('_', '-')} {given} remplace la valeur de l'essai ({kept})")
            values[name] = given
        else:
            values[name] = kept
    print(f"Reprise de l'essai {run.name} au pas {read_state(checkpoint)['step']} ({checkpoint.name}) : poids, moments "
          "d'AdamW et compteur de pas sont restaurés ; l'époque interrompue recommence à son premier lot.")
    return Config(**{**config.__dict__, **values}), run, checkpoint


def script_name() -> str:
    """The step script the participant ran (their exercise file or the solution), for the hints we print."""
    name = Path(sys.argv[0]).name
    return name if name.startswith("3_") else "3_train.py"


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """auto: MirroredStrategy over several GPUs, else one device. mirrored: all GPUs, or the logical CPUs when there
    is no GPU. multi-worker: MultiWorkerMirroredStrategy configured by TF_CONFIG. default: one device."""
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "default":
        return tf.distribute.get_strategy()
    raise AuroreError(f"Stratégie inconnue {name!r}.", "Choisissez --strategy auto, default, mirrored ou multi-worker.")


def use_mixed_precision() -> str:
    """float16 compute with float32 weights on GPUs (bfloat16 on CPUs). Must run BEFORE the model is built."""
    policy = "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"
    tf.keras.mixed_precision.set_global_policy(policy)
    return policy


def choose_profile(name: str) -> Profile:
    """auto: `full` when a GPU is visible, else `laptop`."""
    if name == "auto":
        name = "full" if tf.config.list_logical_devices("GPU") else "laptop"
    if name not in PROFILES:
        raise AuroreError(f"Profil d'entraînement inconnu {name!r}.",
                          "Utilisez --profile auto, laptop ou full (AURORE_PROFILE).")
    return PROFILES[name]


def count_parameters(weights) -> int:
    return int(sum(tf.size(w).numpy() for w in weights))


@contextlib.contextmanager
def interruptible(saver) -> Iterator[None]:
    """Ctrl-C anywhere inside (perplexity, fit, final save): save a checkpoint of the model as it is, say how to
    continue, exit 130. Every save is atomic, so nothing half-written is left behind."""
    try:
        yield
    except KeyboardInterrupt:
        saved = saver.save()
        print(f"\nInterrompu (Ctrl-C) : point de contrôle enregistré dans {saved}.\n"
              f"Pour continuer cet essai : python aurore/{script_name()} --resume", file=sys.stderr)
        raise SystemExit(130) from None

"""Text generation shared by step 4 (the lesson's pipeline) and the web app (step 5).

Nothing is loaded at import time. The sampling defaults come from `config` only: `Sampling()` is what
AURORE_TEMPERATURE and friends say.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Protocol

from aurore import hub
from aurore.config import Config
from aurore.errors import AuroreError
from aurore.hub.standin import STANDIN_MARKER
from aurore.text.french import format_decimal

_DEFAULTS = Config()


STREAM_CHUNK = 8  # tokens per compiled call while texts are streamed (or rows join): how often they are reported


@dataclass(frozen=True)
class Sampling:
    """How to pick each next token. do_sample=False is greedy: always the likeliest token."""

    max_new_tokens: int = _DEFAULTS.max_new_tokens
    temperature: float = _DEFAULTS.temperature
    top_k: int = _DEFAULTS.top_k
    top_p: float = _DEFAULTS.top_p
    do_sample: bool = True
    num_return_sequences: int = 1
    seed: int = _DEFAULTS.seed

    def describe(self) -> str:
        """The settings in French, as step 4 prints them."""
        if not self.do_sample:
            how = "glouton (toujours le jeton le plus probable)"
        else:
            how = (f"échantillonnage, température {format_decimal(self.temperature, 2)}, top-k "
                   f"{self.top_k or 'désactivé'}, top-p {format_decimal(self.top_p, 2)}, graine {self.seed}")
        return f"{self.max_new_tokens} nouveaux jetons ; {how} ; {self.num_return_sequences} texte(s) par début"

    @classmethod
    def from_config(cls, config: Config, **overrides) -> "Sampling":
        return cls(**{"max_new_tokens": config.max_new_tokens, "temperature": config.temperature,
                      "top_k": config.top_k, "top_p": config.top_p, "seed": config.seed, **overrides})


@dataclass(frozen=True)
class Row:
    """One text to write: a prompt and its own settings (num_return_sequences is ignored: a row is one text)."""

    prompt: str
    sampling: Sampling


def rows_for(prompt: str, sampling: Sampling) -> list[Row]:
    """The texts a request asks for, one row each: text i is drawn with seed + i, so any one can be redone alone."""
    copies = sampling.num_return_sequences if sampling.do_sample else 1
    return [Row(prompt, replace(sampling, seed=(sampling.seed + i) % 2**31, num_return_sequences=1))
            for i in range(copies)]


# Called with every row's text so far (prompt included) while an engine writes; returns which rows are still
# wanted (a page that was closed no longer wants its rows, and the engine stops them).
Progress = Callable[[list[str]], list[bool]]


@dataclass(frozen=True)
class ModelInfo:
    """Which model writes, as steps 4 and 5 say it: the console line (`describe`) and the page's label."""

    name: str  # what to show: the folder or hub id
    finetuned: bool  # step 3's model
    from_scratch: bool = False  # step 6's mini-GPT
    standin: bool = False  # built from the offline stand-in: it writes nonsense
    beside: bool = False  # the base model served beside the fine-tuned one (for "Comparer")
    folder: str = ""  # a folder of TensorFlow weights and tokenizer, for from_pretrained or pipeline

    @property
    def kind(self) -> str:
        if self.from_scratch:
            return "mini-GPT construit de zéro (étape 6)"
        if self.finetuned:
            return "GPT-2 affiné sur George Sand (étape 3)"
        return "modèle de base, non affiné" + ("" if self.beside else " (lancez l'étape 3)")

    @property
    def label(self) -> str:
        note = " — modèle de secours : il écrit n'importe quoi, c'est normal" if self.standin else ""
        return f"{self.kind} — {self.short_name}{note}"

    @property
    def short_name(self) -> str:
        """A hub id as it is (owner/name); a folder by its last part (the page is narrow on a phone)."""
        is_hub_id = self.name.count("/") == 1 and not self.name.startswith((".", "/", "~"))
        return self.name if is_hub_id else Path(self.name).name

    def describe(self) -> str:
        note = ("\n  (modèle de secours, minuscule et entraîné quelques secondes : il écrit n'importe quoi, c'est "
                "normal ; avec le vrai GPT-2 français, le texte ressemble à du français)") if self.standin else ""
        return f"Modèle : {self.kind} — {self.name}{note}"


def is_standin(name_or_path: str | Path) -> bool:
    return (Path(name_or_path).expanduser() / STANDIN_MARKER).is_file()


def choose_model(config: Config) -> ModelInfo:
    """Step 3's fine-tuned model if it exists, else the base model (converted to TensorFlow weights once)."""
    standin = is_standin(config.base_model)
    if (Path(config.finetuned_dir) / hub.TF_WEIGHTS).is_file():
        return ModelInfo(str(config.finetuned_dir), True, standin=standin, folder=str(config.finetuned_dir))
    return ModelInfo(config.base_model, False, standin=standin, folder=hub.tensorflow_folder(config.base_model, config))


def check_length(tokenizer, prompts: list[str], max_new_tokens: int, context: int) -> None:
    """A prompt plus its new tokens must fit in the model's context: say so before generating."""
    for prompt in prompts:
        tokens = len(tokenizer(prompt)["input_ids"])
        if tokens + max_new_tokens > context:
            raise AuroreError(
                f"Le début de texte {prompt[:40]!r}… ({tokens} jetons) plus les {max_new_tokens} jetons à générer "
                f"dépassent la mémoire du modèle ({context} jetons).",
                "Raccourcissez le texte de départ ou baissez --max-new-tokens (AURORE_MAX_NEW_TOKENS).")


def load_generator(name_or_path: str, config: Config):
    """A text-generation pipeline on a TensorFlow model (torch-free: framework="tf", dtype=None)."""
    from transformers import pipeline

    folder = hub.tensorflow_folder(name_or_path, config)
    with hub.loading(folder):
        return pipeline("text-generation", model=folder, tokenizer=folder, framework="tf", dtype=None)


def generate(generator, prompt: str, sampling: Sampling) -> list[str]:
    """Continue `prompt` with the pipeline; the same seed and settings give the same texts."""
    check_length(generator.tokenizer, [prompt], sampling.max_new_tokens, generator.model.config.n_positions)
    options = asdict(sampling)
    seed = options.pop("seed")
    if not sampling.do_sample:  # greedy has a single answer, and no use for sampling settings
        for key in ("temperature", "top_k", "top_p"):
            options.pop(key)
        options["num_return_sequences"] = 1
    outputs = generator(prompt, seed=[seed, 0], pad_token_id=generator.tokenizer.eos_token_id, **options)
    return [output["generated_text"] for output in outputs]


class Engine(Protocol):
    """What the web app's worker needs from a model: the pipeline, the compiled decoder, or the mini-GPT."""

    name: str

    @property
    def context_size(self) -> int: ...

    def count_tokens(self, prompt: str) -> int: ...

    def generate_rows(self, rows: list[Row], progress: Progress | None = None) -> list[str]:
        """One text (prompt included) per row, each row with its own settings."""

    def next_token_logits(self, prompt: str):
        """The scores of every token of the vocabulary as the next one (a numpy vector)."""

    def token_text(self, token_id: int) -> str: ...


class RowSlots(Protocol):
    """Rows decoding together, joining and leaving between steps (continuous batching: fastgen.Slots)."""

    @property
    def free(self) -> int: ...

    def admit_requests(self, requests: list[list[Row]]) -> list[list[int]]:
        """Start requests (each: rows sharing one prompt) in free slots, their prompts read together; returns each
        request's slots."""

    @property
    def next_end(self) -> int:
        """Steps until the first running row has all its tokens (0 when none runs)."""

    def advance(self, steps: int, refill: bool = False) -> None:
        """Decode up to `steps` tokens per row (with `refill`, return as soon as a row ends)."""

    def text(self, slot: int) -> str: ...

    def started(self, slot: int) -> bool: ...

    def finished(self, slot: int) -> bool: ...

    def release(self, slot: int) -> None: ...


class ContinuousEngine(Engine, Protocol):
    """An engine whose rows can join a running batch: the web app's worker keeps one set of slots busy."""

    def open_slots(self) -> RowSlots: ...


class PipelineEngine:
    """The reference engine: the transformers pipeline, in eager TensorFlow, one text after another."""

    name = "eager"

    def __init__(self, generator):
        self.generator = generator

    @property
    def context_size(self) -> int:
        return self.generator.model.config.n_positions

    def count_tokens(self, prompt: str) -> int:
        return len(self.generator.tokenizer(prompt)["input_ids"])

    def generate_rows(self, rows: list[Row], progress: Progress | None = None) -> list[str]:
        texts = [row.prompt for row in rows]
        for i, row in enumerate(rows):
            texts[i] = generate(self.generator, row.prompt, row.sampling)[0]
            if progress and not any(progress(texts)[i + 1 :]):
                break  # nobody waits for the remaining rows
        return texts

    def next_token_logits(self, prompt: str):
        ids = self.generator.tokenizer(prompt, return_tensors="tf")["input_ids"][:, -self.context_size :]
        return self.generator.model(ids, training=False).logits[0, -1].numpy()

    def token_text(self, token_id: int) -> str:
        return self.generator.tokenizer.decode([token_id])

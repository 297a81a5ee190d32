"""Text generation with a transformers pipeline, shared by step 4 and the web app (step 5).

Nothing is loaded at import time; `load_generator` is called once, and `generate` as often as needed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from aurore import hub
from aurore.config import Config
from aurore.errors import AuroreError, MissingStepOutput


@dataclass
class Sampling:
    """How to pick each next token. do_sample=False is greedy: always the likeliest token."""

    max_new_tokens: int = 60
    temperature: float = 0.9
    top_k: int = 50
    top_p: float = 0.95
    do_sample: bool = True
    num_return_sequences: int = 1
    seed: int = 42

    @classmethod
    def from_config(cls, config: Config, **overrides) -> "Sampling":
        return cls(max_new_tokens=config.max_new_tokens, temperature=config.temperature, top_k=config.top_k,
                   top_p=config.top_p, seed=config.seed, **overrides)


def choose_model(config: Config, require_finetuned: bool = False) -> tuple[str, bool]:
    """The fine-tuned model of step 3 if it exists, else the base model; and whether it is the fine-tuned one."""
    if (Path(config.finetuned_dir) / hub.TF_WEIGHTS).is_file():
        return str(config.finetuned_dir), True
    if require_finetuned:
        raise MissingStepOutput("The fine-tuned model", config.finetuned_dir, 3)
    return config.base_model, False


def load_generator(name_or_path: str, config: Config):
    """A text-generation pipeline on a TensorFlow model (torch-free: framework="tf", dtype=None)."""
    from transformers import pipeline

    model = hub.load_causal_lm(name_or_path, config)
    tokenizer = hub.load_tokenizer(name_or_path)
    return pipeline("text-generation", model=model, tokenizer=tokenizer, framework="tf", dtype=None)


def generate(generator, prompt: str, sampling: Sampling) -> list[str]:
    """Continue `prompt`; the same seed and settings give the same texts."""
    context = generator.model.config.n_positions
    prompt_tokens = len(generator.tokenizer(prompt)["input_ids"])
    if prompt_tokens + sampling.max_new_tokens > context:
        raise AuroreError(
            f"The prompt ({prompt_tokens} tokens) plus max_new_tokens ({sampling.max_new_tokens}) exceeds the "
            f"model's context of {context} tokens.",
            "Shorten the prompt or lower --max-new-tokens (AURORE_MAX_NEW_TOKENS).",
        )
    options = asdict(sampling)
    seed = options.pop("seed")
    if not sampling.do_sample:  # greedy has a single answer, and no use for sampling settings
        for key in ("temperature", "top_k", "top_p"):
            options.pop(key)
        options["num_return_sequences"] = 1
    outputs = generator(prompt, seed=[seed, 0], pad_token_id=generator.tokenizer.eos_token_id, **options)
    return [output["generated_text"] for output in outputs]


class PipelineEngine:
    """The reference engine: the transformers pipeline, in eager TensorFlow, one prompt after another."""

    name = "eager"

    def __init__(self, generator):
        self.generator = generator

    @property
    def context_size(self) -> int:
        return self.generator.model.config.n_positions

    def count_tokens(self, prompt: str) -> int:
        return len(self.generator.tokenizer(prompt)["input_ids"])

    def generate_batch(self, prompts: list[str], sampling: Sampling) -> list[list[str]]:
        return [generate(self.generator, prompt, sampling) for prompt in prompts]

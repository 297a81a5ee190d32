"""Step 3's final folder: the one steps 4 and 5 load, written whole, the models it replaces kept.

`save_final` has the lesson's `save_model` write the model and tokenizer (save_pretrained) into a staging folder,
adds the model card, `metrics.json` and the loss curve, and renames the folder when whole; the previous final model
is kept as `.previous`, and a replaced model better than the new one (lower perplexity) as `.best`, which later runs never overwrite with a worse one.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Callable

from aurore import hub
from aurore.atomic import publish, staging_dir
from aurore.errors import AuroreError
from aurore.text.french import format_decimal
from aurore.training import plots
from aurore.training import RUN_SETTINGS, TrainingRun, script_name


def save_final(training: TrainingRun, model, tokenizer, history, perplexities: tuple[float, float],
               save_model: Callable[[object, object, str], None]) -> dict:
    """The folder steps 4 and 5 load (see the module's docstring), written by the lesson's `save_model(model,
    tokenizer, folder)`: a quick test run after a long one loses nothing."""
    config, steps = training.config, training.history
    epochs = steps.per_epoch(history)
    metrics = {"perplexity_before": perplexities[0], "perplexity_after": perplexities[1], "run": training.run.name,
               "resumed_from_step": training.start_step, "steps": steps.steps, "epochs": epochs,
               "seconds": {name: round(value, 1) for name, value in training.stopwatch.seconds.items()},
               "settings": {k: getattr(config, k) for k in (*RUN_SETTINGS, "time_budget")}}
    # What it trained with: the profile auto chose, and the laptop profile's blocks (it cuts step 2's)
    metrics["settings"].update(profile=training.profile.name, block_size=training.block_size)
    replaced = _perplexity_of(config.finetuned_dir)
    staging = staging_dir(config.models_dir, ".final-")
    try:
        save_model(model, tokenizer, str(staging))
        _require_saved(staging)
        (staging / "README.md").write_text(model_card(config.base_model, metrics), encoding="utf-8")
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
        plots.plot_losses(metrics["steps"], epochs, staging / "loss.png")
        previous = publish(staging, config.finetuned_dir, keep_previous=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # interrupted before the rename: nothing half-written stays
    best = config.finetuned_dir.with_name(config.finetuned_dir.name + ".best")
    to_beat = min(perplexities[1], _perplexity_of(best) or math.inf)  # the new model's, and the one kept as best
    better = previous is not None and replaced is not None and replaced < to_beat
    if better:
        shutil.rmtree(best, ignore_errors=True)
        previous = previous.replace(best)
    print(f"Modèle final enregistré dans {config.finetuned_dir}"
          + (f" (le précédent est dans {previous})" if previous else ""))
    if better:
        print(f"Attention : le modèle remplacé était meilleur (perplexité {format_decimal(replaced, 2)} contre "
              f"{format_decimal(perplexities[1], 2)}) : il est gardé dans {previous}, que les essais suivants "
              f"n'effaceront pas.\n  -> Pour le servir de nouveau : renommez {config.finetuned_dir.name} (ou "
              f"supprimez-le), puis renommez {previous.name} en {config.finetuned_dir.name}.")
    return metrics


def _require_saved(folder: Path) -> None:
    """What from_pretrained needs in steps 4 and 5: the weights, their configuration and the tokenizer."""
    wanted = ("config.json", hub.TF_WEIGHTS, "tokenizer_config.json")
    missing = [name for name in wanted if not (folder / name).is_file()]
    if missing:
        raise AuroreError(f"Le modèle final est incomplet : il y manque {', '.join(missing)} (exercice 3.9).",
                          f"Dans save_model() de aurore/{script_name()}, enregistrez le modèle ET le tokenizer dans "
                          "`folder` avec save_pretrained ; vérifiez avec `python -m aurore check 3`.")


def _perplexity_of(folder: Path) -> float | None:
    """A final model folder's perplexity after training (metrics.json), None when there is none."""
    try:
        return float(json.loads((folder / "metrics.json").read_text(encoding="utf-8"))["perplexity_after"])
    except (OSError, ValueError, KeyError):
        return None


def model_card(base_model: str, metrics: dict) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in metrics["settings"].items())
    return f"""---
language: fr
base_model: {base_model}
tags: [gpt2, george-sand, aurore-workshop]
---
# GPT-2 fine-tuned on George Sand

Fine-tuned from `{base_model}` with the aurore workshop (step 3), on four novels by George Sand from Project
Gutenberg (Lélia, La Petite Fadette, Gabriel, Lettres d'un voyageur); validated on La Mare au diable.

| hyper-parameter | value |
|---|---|
{rows}

## Results on La Mare au diable (held out)

| | perplexity |
|---|---|
| before fine-tuning | {metrics['perplexity_before']:.2f} |
| after fine-tuning | {metrics['perplexity_after']:.2f} |
"""

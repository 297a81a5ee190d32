"""Loading a model without drawing random weights first.

`from_pretrained` builds the model, which fills every variable from its initializer (124M truncated-normal draws
for GPT-2 small), then overwrites every one of them with the file's weights. On a laptop CPU the draws cost more
than reading the file: 1.4-3 s of a 1.7-3.5 s load (docs/benchmarks.md). PyTorch's `from_pretrained` skips them
(its `_fast_init`); in TensorFlow a variable creator does the same: while a model loads, its variables start as
NaN, which costs nothing to make. After the load, a variable still holding NaN is a weight the folder did not have
(or a weight that is not a number): a clear error, where the random start would have written noise.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Iterator

from aurore.errors import AuroreError, step_command


@contextlib.contextmanager
def weights_from_file(name: str | Path) -> Iterator[None]:
    """Variables created inside this block start as NaN instead of their random initial values; on leaving it,
    any of them still NaN is reported. Without TensorFlow imported (a tokenizer load), it does nothing."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        yield
        return
    created = []

    def without_random_start(next_creator, **kwargs):
        shape, dtype = kwargs.get("shape"), tf.as_dtype(kwargs.get("dtype") or tf.float32)
        if callable(kwargs.get("initial_value")) and dtype.is_floating and shape is not None \
                and tf.TensorShape(shape).is_fully_defined():
            dims = tf.TensorShape(shape).as_list()
            kwargs["initial_value"] = lambda: tf.fill(dims, tf.constant(float("nan"), dtype))
            variable = next_creator(**kwargs)
            created.append(variable)
            return variable
        return next_creator(**kwargs)

    with tf.variable_creator_scope(without_random_start):
        yield
    missing = [variable.name for variable in created if bool(tf.reduce_any(tf.math.is_nan(variable)))]
    if missing:
        shown = ", ".join(missing[:3]) + (f" (et {len(missing) - 3} autres)" if len(missing) > 3 else "")
        raise AuroreError(
            f"Le modèle de {name} est incomplet : des poids manquent dans ses fichiers ou ne sont pas des nombres "
            f"(NaN) : {shown}.",
            f"Pour votre modèle, relancez l'entraînement : {step_command(3)} ; pour le modèle de base, "
            "téléchargez-le à nouveau : `python -m aurore download-model`.")

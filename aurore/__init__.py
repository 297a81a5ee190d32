"""aurore: fine-tune a French GPT-2 on George Sand, then build a tiny GPT from scratch.

Importing the package sets `TF_USE_LEGACY_KERAS=1` before TensorFlow can be imported: Hugging Face's
TensorFlow models are built on Keras 2 (`tf_keras`), and `tf.keras` must point there.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hides most C++ chatter (not the absl start-up lines)
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # hides "TensorFlow classes are deprecated" on every load

__version__ = "1.0.0"

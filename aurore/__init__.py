"""aurore: fine-tune a French GPT-2 on George Sand, then build a tiny GPT from scratch.

Importing the package (every step's first import) sets `TF_USE_LEGACY_KERAS=1` before TensorFlow can be imported:
Hugging Face's TensorFlow models are built on Keras 2 (`tf_keras`), and `tf.keras` must point there. It also
turns a missing workshop package into a French hint (the venv is not active) instead of a bare traceback.
"""

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
LOG_LEVEL_CHOSEN = "TF_CPP_MIN_LOG_LEVEL" in os.environ  # the web server quiets TensorFlow further unless chosen
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hides most C++ chatter (not the absl start-up lines)
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # hides "TensorFlow classes are deprecated" on every load

__version__ = "1.0.0"

# Top-level modules of requirements.txt that the steps import.
WORKSHOP_PACKAGES = {"datasets", "flask", "huggingface_hub", "matplotlib", "nltk", "numpy", "punkt", "safetensors",
                     "tensorflow", "tf_keras", "tokenizers", "transformers", "waitress"}


def _explain_missing_package(kind, error, traceback, previous=sys.excepthook):
    name = getattr(error, "name", None) or ""
    if isinstance(error, ModuleNotFoundError) and name.split(".")[0] in WORKSHOP_PACKAGES:
        print(f"\nerreur : le module Python « {name} » est introuvable : l'environnement de l'atelier (.venv) n'est "
              "pas activé, ou pas installé.\n  -> Activez-le : `source .venv/bin/activate` (Windows : "
              "`.venv\\Scripts\\Activate.ps1`), puis relancez la commande. Pas encore de .venv ? `python3 -m aurore "
              "setup` (Windows : `py -m aurore setup`), voir « Avant de commencer » dans docs/atelier.md.",
              file=sys.stderr)
        return
    previous(kind, error, traceback)


sys.excepthook = _explain_missing_package

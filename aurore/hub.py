"""Loading tokenizers and TensorFlow GPT-2 models, from the Hugging Face hub or a local folder, without torch.

- A hub id (`benjamin/gpt2-wechsel-french`) or a local folder go through the same functions.
- When the hub cannot be reached, loads use the local cache at once (`local_files_only`), instead of
  retrying for ~46 s per file, and a miss becomes one clear message.
- The hub model ships PyTorch weights as `model.safetensors`. `transformers` would need torch to read them
  (`from_pt=True`); we read them with `safetensors.numpy` and copy them into the TensorFlow model, then save
  the result once as TensorFlow weights under `models/converted/`, so later loads are direct.
"""

from __future__ import annotations

import os
import re
import socket
import urllib.parse
from pathlib import Path

from aurore.config import Config
from aurore.errors import STEP_COMMANDS, AuroreError

TF_WEIGHTS = "tf_model.h5"
SAFETENSORS_WEIGHTS = "model.safetensors"
_reachable: bool | None = None  # the hub probe runs once per process


def hub_reachable(timeout: float = 2.0) -> bool:
    """Can we open a connection to the hub? (HF_HUB_OFFLINE=1 means no, without trying.)"""
    global _reachable
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    if _reachable is None:
        host = urllib.parse.urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            _reachable = True
        except OSError:
            print(f"note: the Hugging Face hub ({host}) is unreachable; using the local cache only.")
            _reachable = False
    return _reachable


def is_local(name_or_path: str | Path) -> bool:
    return Path(name_or_path).expanduser().is_dir()


def _looks_like_a_path(name: str) -> bool:
    """Hub ids are `name` or `owner/name`; anything else is meant as a folder."""
    return name.startswith((".", "/", "~")) or not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", name)


def _hub_kwargs(name_or_path: str | Path) -> dict:
    """Arguments for `from_pretrained`: a local folder needs none; a hub id uses the cache only when offline."""
    return {} if is_local(name_or_path) else {"local_files_only": not hub_reachable()}


def _explain(name: str, error: Exception) -> AuroreError:
    """Turn the many ways a load can fail into one message that says what to do."""
    if _looks_like_a_path(name):
        return AuroreError(
            f"Model folder {name} does not exist (or holds no model).",
            f"Point AURORE_BASE_MODEL at a folder written by `save_pretrained`, or build the offline stand-in "
            f"with `{STEP_COMMANDS['standin']}`.",
        )
    if not hub_reachable():
        return AuroreError(
            f"Model {name!r} is not in the local Hugging Face cache, and the hub cannot be reached.",
            "Download it once while online (`python -m aurore download-model`), or work offline with the stand-in: "
            f"`{STEP_COMMANDS['standin']}` then AURORE_BASE_MODEL=aurore/models/standin.",
        )
    return AuroreError(
        f"Could not load {name!r} from the Hugging Face hub: {str(error).splitlines()[0]}",
        "Check the model id (https://huggingface.co/models) or set AURORE_BASE_MODEL to a local folder.",
    )


def load_tokenizer(name_or_path: str | Path):
    """`AutoTokenizer.from_pretrained`, with a clear error when the model cannot be found."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(name_or_path), **_hub_kwargs(name_or_path))
    except (OSError, ValueError) as error:
        raise _explain(str(name_or_path), error) from None


def converted_dir(name: str, config: Config) -> Path:
    """Where the TensorFlow copy of a PyTorch-only model is kept."""
    return config.converted_models_dir / re.sub(r"[^A-Za-z0-9_.-]+", "--", name.strip("/"))


def load_causal_lm(name_or_path: str | Path, config: Config):
    """A `TFAutoModelForCausalLM` for a hub id or a folder, converting PyTorch safetensors once if needed."""
    from transformers import TFAutoModelForCausalLM

    name = str(name_or_path)
    if (Path(name).expanduser() / TF_WEIGHTS).is_file():
        return TFAutoModelForCausalLM.from_pretrained(name)
    converted = converted_dir(name, config) / TF_WEIGHTS
    source = Path(name).expanduser() / SAFETENSORS_WEIGHTS
    if converted.is_file() and not (source.is_file() and source.stat().st_mtime > converted.stat().st_mtime):
        return TFAutoModelForCausalLM.from_pretrained(str(converted.parent))
    model = _convert_safetensors(name, config)
    if model is None:  # no safetensors: the repository may hold TensorFlow weights itself
        try:
            return TFAutoModelForCausalLM.from_pretrained(name, **_hub_kwargs(name))
        except (OSError, ValueError) as error:
            raise _explain(name, error) from None
    return model


def _fetch(name: str, filename: str) -> str | None:
    """Path to one file of a model (local folder or hub cache/download); None when the model has no such file."""
    if is_local(name):
        path = Path(name).expanduser() / filename
        return str(path) if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return hf_hub_download(name, filename, **_hub_kwargs(name))
    except EntryNotFoundError:
        return None
    except Exception as error:  # offline miss, unknown repository, network: all explained the same way
        raise _explain(name, error) from None


def _convert_safetensors(name: str, config: Config):
    """Build the TF model from its config and copy PyTorch safetensors weights into it, without torch."""
    from safetensors.numpy import load_file
    from transformers import AutoConfig, TFAutoModelForCausalLM
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

    weights = _fetch(name, SAFETENSORS_WEIGHTS)
    if weights is None:
        return None
    try:
        model_config = AutoConfig.from_pretrained(name, **_hub_kwargs(name))
    except (OSError, ValueError) as error:
        raise _explain(name, error) from None
    print(f"Converting {name} from PyTorch safetensors to TensorFlow (once)...")
    model = TFAutoModelForCausalLM.from_config(model_config)
    load_pytorch_state_dict_in_tf2_model(model, load_file(weights))
    target = converted_dir(name, config)
    model.save_pretrained(str(target))
    try:
        load_tokenizer(name).save_pretrained(str(target))
    except (AuroreError, OSError, TypeError, ValueError):
        pass  # a weights-only folder: the caller loads the tokenizer from `name`
    return model


def save_as_pytorch_safetensors(model, folder: Path) -> Path:
    """Write a TF model's weights the way the hub stores GPT-2: PyTorch names in `model.safetensors`.

    Used by the stand-in, so that offline runs go through the same conversion as the real hub model.
    """
    from safetensors.numpy import save_file
    from transformers.modeling_tf_pytorch_utils import apply_transpose, convert_tf_weight_name_to_pt_weight_name

    state = {}
    for weight in model.weights:
        name, transpose = convert_tf_weight_name_to_pt_weight_name(weight.name, tf_weight_shape=weight.shape)
        state[name] = apply_transpose(transpose, weight.numpy(), pt_to_tf=False)
    path = Path(folder) / SAFETENSORS_WEIGHTS
    save_file(state, str(path), metadata={"format": "pt"})
    return path

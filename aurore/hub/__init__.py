"""Loading tokenizers and TensorFlow GPT-2 models, from the Hugging Face hub or a local folder, without torch.

- A hub id (`benjamin/gpt2-wechsel-french`) or a local folder go through the same functions.
- `loading(name)` wraps a participant's own `from_pretrained` call: when the hub cannot be reached, loads use
  the local cache at once instead of retrying for ~46 s per file, and a miss becomes one clear message; the
  model's variables skip their random start, which the file's weights overwrite (`fast_init`).
- The hub model ships PyTorch weights as `model.safetensors`. `transformers` would need torch to read them
  (`from_pt=True`); we read them with `safetensors.numpy` and copy them into the TensorFlow model, then save
  the result once as TensorFlow weights under `models/converted/`, so later loads are direct.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import urllib.parse
from pathlib import Path
from typing import Iterator

from aurore.atomic import publish, staging_dir
from aurore.config import Config, from_namespace
from aurore.errors import STANDIN_COMMAND, AuroreError, set_variable
from aurore.hub.fast_init import weights_from_file

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
            print(f"note : le hub Hugging Face ({host}) est injoignable : seul le cache local est utilisé.")
            _reachable = False
            _use_the_cache_only()
    return _reachable


def _use_the_cache_only() -> None:
    """Offline mode for the rest of this process: loads read the cache at once instead of retrying for ~46 s a file.

    huggingface_hub and transformers read HF_HUB_OFFLINE once, at import; both are set here too.
    """
    import huggingface_hub.constants
    import transformers.utils.hub

    os.environ["HF_HUB_OFFLINE"] = "1"
    huggingface_hub.constants.HF_HUB_OFFLINE = True
    transformers.utils.hub._is_offline_mode = True


def is_local(name_or_path: str | Path) -> bool:
    return Path(name_or_path).expanduser().is_dir()


def looks_like_a_path(name: str) -> bool:
    """Hub ids are `name` or `owner/name`; anything else is meant as a folder."""
    return name.startswith((".", "/", "~")) or not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", name)


def _use_standin() -> str:
    """The command that points the steps at the stand-in, as `build-standin` prints it (absolute, this shell's)."""
    try:
        folder = from_namespace(None).standin_dir  # in AURORE_WORKDIR when one is set, as build-standin writes it
    except AuroreError:  # a malformed AURORE_* variable: its own error comes elsewhere
        folder = Config().standin_dir
    return set_variable("AURORE_BASE_MODEL", folder)


def _explain(name: str, error: Exception) -> AuroreError:
    """Turn the many ways a load can fail into one message that says what to do."""
    if looks_like_a_path(name):
        folder = Path(name).expanduser()
        if not folder.is_absolute() and not folder.is_dir():  # e.g. aurore/models/standin, from inside aurore/
            return AuroreError(
                f"Le dossier de modèle {name} n'existe pas depuis le dossier courant ({Path.cwd()}).",
                "Lancez les commandes depuis la racine du dépôt (le dossier qui contient aurore/), ou donnez un chemin "
                f"absolu : depuis la racine, `{set_variable('AURORE_BASE_MODEL', '$PWD/' + name)}`.",
            )
        return AuroreError(
            f"Le dossier de modèle {name} n'existe pas (ou ne contient pas de modèle).",
            "Donnez à AURORE_BASE_MODEL un dossier écrit par `save_pretrained`, ou construisez le modèle de secours "
            f"hors ligne : `{STANDIN_COMMAND}` puis `{_use_standin()}`.",
        )
    if not hub_reachable():
        return AuroreError(
            f"Le modèle {name!r} n'est pas dans le cache Hugging Face local, et le hub est injoignable.",
            "Téléchargez-le une fois avec le réseau (`python -m aurore download-model`), ou travaillez hors ligne avec "
            f"le modèle de secours : `{STANDIN_COMMAND}` puis `{_use_standin()}`.",
        )
    return AuroreError(
        f"Impossible de charger {name!r} depuis le hub Hugging Face : {str(error).splitlines()[0]}",
        "Vérifiez l'identifiant du modèle (https://huggingface.co/models) ou donnez à AURORE_BASE_MODEL un dossier local.",
    )


@contextlib.contextmanager
def loading(name_or_path: str | Path) -> Iterator[None]:
    """Around a participant's `from_pretrained` call: use the cache at once when the hub is unreachable, skip the
    random start of weights the file overwrites (`fast_init`), and turn a failed load (unknown id, missing folder,
    offline cache miss, weights missing) into one message that says what to do."""
    if not is_local(name_or_path):
        hub_reachable()
    try:
        with weights_from_file(name_or_path):
            yield
    except AuroreError:
        raise
    except (OSError, ValueError) as error:
        raise _explain(str(name_or_path), error) from None


def load_tokenizer(name_or_path: str | Path):
    """`AutoTokenizer.from_pretrained`, with a clear error when the model cannot be found."""
    from transformers import AutoTokenizer

    with loading(name_or_path):
        return AutoTokenizer.from_pretrained(str(name_or_path))


def converted_dir(name: str, config: Config) -> Path:
    """Where the TensorFlow copy of a PyTorch-only model is kept."""
    return config.converted_models_dir / re.sub(r"[^A-Za-z0-9_.-]+", "--", name.strip("/"))


def tensorflow_folder(name_or_path: str | Path, config: Config) -> str:
    """A folder `TFAutoModelForCausalLM.from_pretrained` reads without torch, for a hub id or a folder.

    A folder with TensorFlow weights is used as it is. A model with PyTorch safetensors only (the hub's GPT-2) is
    converted once into `models/converted/`, and converted again when its source file changes.
    """
    name = str(name_or_path)
    if (Path(name).expanduser() / TF_WEIGHTS).is_file():
        return name
    target = converted_dir(name, config)
    source = Path(name).expanduser() / SAFETENSORS_WEIGHTS
    converted = target / TF_WEIGHTS
    if converted.is_file() and not (source.is_file() and source.stat().st_mtime > converted.stat().st_mtime):
        return str(target)
    with loading(name):
        if not _convert_safetensors(name, target):  # no safetensors: the repository may hold TF weights itself
            return name
    return str(target)


def load_causal_lm(name_or_path: str | Path, config: Config):
    """A `TFAutoModelForCausalLM` for a hub id or a folder, converting PyTorch safetensors once if needed."""
    from transformers import TFAutoModelForCausalLM

    folder = tensorflow_folder(name_or_path, config)
    with loading(folder):
        return TFAutoModelForCausalLM.from_pretrained(folder)


def _fetch(name: str, filename: str) -> str | None:
    """Path to one file of a model (local folder or hub cache/download); None when the model has no such file."""
    if is_local(name):
        path = Path(name).expanduser() / filename
        return str(path) if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return hf_hub_download(name, filename)
    except EntryNotFoundError:
        return None
    except Exception as error:  # offline miss, unknown repository, network: all explained the same way
        raise _explain(name, error) from None


def _convert_safetensors(name: str, target: Path) -> bool:
    """Build the TF model from its config and copy PyTorch safetensors weights into it, without torch; save it
    (with the tokenizer) into `target`. False when the model has no safetensors file."""
    from safetensors.numpy import load_file
    from transformers import AutoConfig, AutoTokenizer, TFAutoModelForCausalLM
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

    weights = _fetch(name, SAFETENSORS_WEIGHTS)
    if weights is None:
        return False
    print(f"Conversion de {name} : poids PyTorch (safetensors) -> TensorFlow (une seule fois)…")
    model = TFAutoModelForCausalLM.from_config(AutoConfig.from_pretrained(name))
    load_pytorch_state_dict_in_tf2_model(model, load_file(weights))
    staging = staging_dir(target.parent, f".{target.name}-")
    model.save_pretrained(str(staging))
    try:
        AutoTokenizer.from_pretrained(name).save_pretrained(str(staging))
    except (OSError, TypeError, ValueError):
        pass  # a weights-only folder: the caller loads the tokenizer from `name`
    publish(staging, target)  # atomic: an interrupted conversion never looks finished
    return True


def save_as_pytorch_safetensors(model, folder: Path) -> Path:
    """Write a TF model's weights the way the hub stores GPT-2: PyTorch names in `model.safetensors`.

    Used by the stand-in, so that offline runs go through the same conversion as the real hub model.
    """
    from safetensors.numpy import save_file
    from transformers.modeling_tf_pytorch_utils import apply_transpose, convert_tf_weight_name_to_pt_weight_name

    state = {}
    for weight in model.weights:
        name, transpose = convert_tf_weight_name_to_pt_weight_name(weight.name, tf_weight_shape=weight.shape)
        value = apply_transpose(transpose, weight.numpy(), pt_to_tf=False)
        if name.endswith(".bias") and value.ndim == 2 and value.shape[0] == 1:
            value = value[0]  # TF's Conv1D bias is [1, n]; PyTorch's (and the hub file's) is [n]
        state[name] = value
    path = Path(folder) / SAFETENSORS_WEIGHTS
    save_file(state, str(path), metadata={"format": "pt"})
    return path


def push_to_hub(folder: Path, repo_id: str) -> str:
    """Upload the final model folder to the hub. The token comes from HF_TOKEN or `huggingface-cli login`."""
    from huggingface_hub import HfApi

    if not hub_reachable():
        raise AuroreError(f"Impossible d'envoyer vers {repo_id} : le hub Hugging Face est injoignable (ou HF_HUB_OFFLINE=1).",
                          f"Le modèle est enregistré dans {folder} ; envoyez-le plus tard avec --push-to-hub, en ligne.")
    api = HfApi(token=os.environ.get("HF_TOKEN") or None)
    try:
        api.create_repo(repo_id, exist_ok=True)
        return api.upload_folder(folder_path=str(folder), repo_id=repo_id).commit_url
    except Exception as error:  # authentication, permissions, network: one message
        raise AuroreError(f"L'envoi vers {repo_id} a échoué : {str(error).splitlines()[0]}",
                          "Donnez à HF_TOKEN un jeton qui a le droit d'écrire, ou lancez `huggingface-cli login`.") from None

"""Model loading: torch-free conversion of hub-style safetensors, and clear, fast errors offline."""

import os
import time
from pathlib import Path

import numpy as np
import pytest

from aurore import hub
from aurore.config import Config
from aurore.errors import AuroreError


def tiny_gpt2(folder):
    """A 2-layer GPT-2 saved the way the hub stores it: PyTorch-named safetensors plus its config."""
    import tensorflow as tf
    from transformers import GPT2Config, TFGPT2LMHeadModel

    tf.keras.utils.set_random_seed(0)
    model = TFGPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=2, n_head=2))
    model(model.dummy_inputs)
    folder.mkdir()
    model.config.save_pretrained(folder)
    hub.save_as_pytorch_safetensors(model, folder)
    return model


def test_safetensors_are_converted_without_torch_once_and_again_when_they_change(tmp_path):
    import sys

    original = tiny_gpt2(tmp_path / "model")
    config = Config(workdir=tmp_path)
    ids = np.array([[1, 2, 3, 4]])
    loaded = hub.load_causal_lm(str(tmp_path / "model"), config)
    np.testing.assert_allclose(loaded(ids).logits.numpy(), original(ids).logits.numpy(), atol=1e-6)
    cached = hub.converted_dir(str(tmp_path / "model"), config) / hub.TF_WEIGHTS
    assert cached.is_file() and "torch" not in sys.modules

    stamp = cached.stat().st_mtime
    hub.load_causal_lm(str(tmp_path / "model"), config)
    assert cached.stat().st_mtime == stamp  # second load: straight from the TensorFlow copy

    source = tmp_path / "model" / hub.SAFETENSORS_WEIGHTS
    os.utime(source, (stamp + 10, stamp + 10))  # the source was rebuilt: convert again
    hub.load_causal_lm(str(tmp_path / "model"), config)
    assert cached.stat().st_mtime > stamp


def test_offline_hub_miss_is_one_clear_message_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    start = time.monotonic()
    with pytest.raises(AuroreError) as error:
        hub.load_tokenizer("benjamin/gpt2-wechsel-french")
    assert time.monotonic() - start < 10  # not ~46 s of retries
    message = str(error.value)
    assert "n'est pas dans le cache Hugging Face local" in message and "build-standin" in message


def test_an_unreachable_hub_is_detected_without_hf_hub_offline(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    monkeypatch.setattr(hub, "_reachable", None)
    start = time.monotonic()
    assert not hub.hub_reachable(timeout=2.0)
    import huggingface_hub.constants

    assert huggingface_hub.constants.HF_HUB_OFFLINE  # loads now read the cache at once
    assert time.monotonic() - start < 10


def test_a_missing_local_folder_is_named(tmp_path):
    with pytest.raises(AuroreError, match="n'existe pas"):
        hub.load_causal_lm(str(tmp_path / "nowhere"), Config(workdir=tmp_path))


def test_a_relative_model_folder_run_from_elsewhere_says_where_to_run_from(tmp_path, monkeypatch):
    """The guide's AURORE_BASE_MODEL=aurore/models/standin, with the command typed inside aurore/."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AuroreError, match="n'existe pas depuis le dossier courant") as error:
        hub.load_causal_lm("aurore/models/standin", Config(workdir=tmp_path))
    assert "racine du dépôt" in error.value.fix and "$PWD/aurore/models/standin" in error.value.fix


def test_hub_style_files_have_pytorchs_shapes(tmp_path):
    """The stand-in is written like the hub's file: PyTorch's shapes (Conv1D biases are vectors), not TF's."""
    from safetensors.numpy import load_file

    tiny_gpt2(tmp_path / "model")
    state = load_file(str(tmp_path / "model" / hub.SAFETENSORS_WEIGHTS))
    assert state["transformer.h.0.attn.c_attn.bias"].shape == (48,) and state["transformer.h.0.attn.c_attn.weight"].shape == (16, 48)
    assert state["transformer.wte.weight"].shape == (50, 16)


def test_a_load_skips_the_random_start_and_gives_the_files_weights(tmp_path, monkeypatch):
    import tensorflow as tf
    from transformers import TFAutoModelForCausalLM

    tiny_gpt2(tmp_path / "model")
    folder = hub.tensorflow_folder(str(tmp_path / "model"), Config(workdir=tmp_path))
    ids = np.array([[1, 2, 3, 4]])
    reference = TFAutoModelForCausalLM.from_pretrained(folder)(ids).logits.numpy()  # a plain load: random start

    draws = []
    initializer = tf.keras.initializers.TruncatedNormal
    monkeypatch.setattr(initializer, "__call__", lambda self, *a, **k: draws.append(a) or tf.zeros(a[0]))
    with hub.loading(folder):
        model = TFAutoModelForCausalLM.from_pretrained(folder)
    assert draws == []  # no random weights drawn
    np.testing.assert_array_equal(model(ids).logits.numpy(), reference)


def test_a_folder_missing_weights_is_an_error_that_names_them(tmp_path):
    import json

    tiny_gpt2(tmp_path / "model")
    folder = hub.tensorflow_folder(str(tmp_path / "model"), Config(workdir=tmp_path))
    settings = json.loads((tmp_path / "model" / "config.json").read_text())
    (Path(folder) / "config.json").write_text(json.dumps({**settings, "n_layer": 3}))  # a third block, not in the file
    with pytest.raises(AuroreError) as error:
        hub.load_causal_lm(folder, Config(workdir=tmp_path))
    assert "incomplet" in error.value.what and "h_._2" in error.value.what
    assert "3_train.py" in error.value.fix and "download-model" in error.value.fix


@pytest.mark.parametrize("prefix", ["transformer.", ""])
def test_the_hub_files_layout_with_old_buffers_and_a_separate_head_converts_whole(tmp_path, prefix):
    """The hub model's file holds attention-mask buffers and a separate `lm_head.weight` besides the weights; every
    TensorFlow variable must still come from the file (a missing one would be an error, not a random weight)."""
    from safetensors.numpy import load_file, save_file

    original = tiny_gpt2(tmp_path / "model")
    path = tmp_path / "model" / hub.SAFETENSORS_WEIGHTS
    state = {name.removeprefix("transformer."): value for name, value in load_file(str(path)).items()}
    state = {prefix + name: value for name, value in state.items()}
    for block in range(2):
        state[f"{prefix}h.{block}.attn.bias"] = np.tril(np.ones((16, 16), np.float32))[None, None]
        state[f"{prefix}h.{block}.attn.masked_bias"] = np.array(-1e4, np.float32)
    state["lm_head.weight"] = state[f"{prefix}wte.weight"]
    save_file(state, str(path), metadata={"format": "pt"})
    ids = np.array([[1, 2, 3, 4]])
    loaded = hub.load_causal_lm(str(tmp_path / "model"), Config(workdir=tmp_path))
    np.testing.assert_allclose(loaded(ids).logits.numpy(), original(ids).logits.numpy(), atol=1e-6)

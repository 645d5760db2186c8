"""Keras 2 (tf_keras 2.21) model files ported without TensorFlow: the committed files under
tests/data/keras2/ (written by tools/make_keras2_files.py, with tf_keras's own outputs beside
them) load in xlayers and give tf_keras's outputs under the tolerance policy. Keras 3.15 itself
cannot load most of these files."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import xlayers
from xlayers.errors import ArgumentError
from xlayers.keras2 import is_keras2_config, normalize
from xlayers.tolerance import compare

DATA = Path(__file__).resolve().parent / "data" / "keras2"
FILES = sorted(p.stem for p in DATA.glob("*.h5"))


@pytest.mark.parametrize("name", FILES)
def test_a_tf_keras_h5_model_gives_tf_keras_outputs(name):
    model = xlayers.from_keras(DATA / f"{name}.h5")
    data = np.load(DATA / f"{name}.npz")
    inputs = [torch.from_numpy(data[k]) for k in sorted(data) if k.startswith("input")]
    expected = [data[k] for k in sorted(data) if k.startswith("output")]
    with torch.no_grad():
        outputs = model(inputs if len(inputs) > 1 else inputs[0])
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    assert len(outputs) == len(expected)
    for index, (ours, theirs) in enumerate(zip(outputs, expected)):
        result = compare(ours.numpy(), theirs, "float32", "cpu")
        assert result.passed, result.describe(f"{name} output {index}")


def test_keras2_configs_are_recognized_and_normalized():
    with h5py.File(DATA / "text.h5") as h5:
        config = json.loads(h5.attrs["model_config"])
    assert is_keras2_config(config)
    layers = {e["name"]: e for e in normalize(config)["config"]["layers"]}
    assert "time_major" not in layers["lstm"]["config"] and layers["ids"]["config"]["batch_shape"] == [None, 7]
    assert layers["tf.math.multiply"]["module"] == "keras.src.ops.numpy"
    history = layers["tf.math.multiply"]["inbound_nodes"][0]["args"][0]["config"]["keras_history"]
    assert history == ["inner_seq", 0, 0]  # Keras 2 numbered the nested model's first call 1


def test_an_untranslated_tf_function_and_a_lambda_are_named():
    with h5py.File(DATA / "text.h5") as h5:
        config = json.loads(h5.attrs["model_config"])
    broken = json.loads(json.dumps(config))
    entry = next(e for e in broken["config"]["layers"] if e["class_name"] == "TFOpLambda")
    entry["config"]["function"] = "math.bessel_i0"
    with pytest.raises(ArgumentError, match=r"layer 'tf\.math\.multiply' calls tf\.math\.bessel_i0, which has no xlayers translation"):
        normalize(broken)
    entry["class_name"] = "Lambda"
    with pytest.raises(ArgumentError, match="is a `Lambda`: its config holds marshalled Python bytecode"):
        normalize(broken)

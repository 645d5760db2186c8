"""``xlayers port``: a Keras file to .keras, .safetensors and .onnx, verified against Keras and
onnxruntime, with its summary and exit codes."""

from __future__ import annotations

import numpy as np

from conformance.keras_reference import keras
from xlayers.__main__ import main


def _keras_file(path) -> None:
    K = keras()
    x = K.Input((7,), name="x")
    h = K.layers.Dense(6, activation="relu")(x)
    y = K.layers.BatchNormalization()(h) + K.layers.Dense(6)(x)
    model = K.Model(x, K.layers.Dense(3, activation="softmax")(y))
    rng = np.random.default_rng(0)
    for variable in model.weights:
        value = rng.standard_normal(tuple(variable.shape)).astype("float32")
        variable.assign(np.abs(value) + 0.5 if "variance" in variable.path else value)
    model.save(path)


def test_port_to_safetensors_keras_and_onnx_verified(tmp_path, capsys):
    _keras_file(tmp_path / "m.keras")
    assert main(["port", str(tmp_path / "m.keras"), str(tmp_path / "m.safetensors")]) == 0
    printed = capsys.readouterr().out
    assert "10 weights" in printed and "skipped: nothing" in printed and "against Keras" in printed and "within tolerance" in printed
    assert main(["port", str(tmp_path / "m.keras"), str(tmp_path / "back.keras")]) == 0
    assert main(["port", str(tmp_path / "m.keras"), str(tmp_path / "m.onnx")]) == 0
    assert "ONNX graph agrees with torch" in capsys.readouterr().out
    twin = keras().saving.load_model(tmp_path / "back.keras")
    original = keras().saving.load_model(tmp_path / "m.keras")
    assert all(np.array_equal(a, b) for a, b in zip(twin.get_weights(), original.get_weights()))


def test_port_refuses_bad_input_with_exit_code_2_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    assert main(["port", str(tmp_path / "bad.keras"), str(tmp_path / "out.safetensors")]) == 2
    assert "not a readable .keras file" in capsys.readouterr().err
    assert not (tmp_path / "out.safetensors").exists()
    _keras_file(tmp_path / "m.keras")
    assert main(["port", str(tmp_path / "m.keras"), str(tmp_path / "out.pt"), "--no-verify"]) == 2
    assert "OUT must end in one of" in capsys.readouterr().err

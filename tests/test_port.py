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


def test_the_summary_names_layers_weights_parameters_and_what_was_skipped(tmp_path, capsys):
    K = keras()
    x = K.Input((4,))
    model = K.Model(x, K.layers.Dense(2)(K.layers.Dense(3)(x)))
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 4), "float32"), np.ones((4, 2), "float32"), epochs=1, verbose=0)
    model.save(tmp_path / "fitted.keras")
    assert main(["port", str(tmp_path / "fitted.keras"), str(tmp_path / "m.safetensors"), "--no-verify"]) == 0
    printed = capsys.readouterr()
    assert "3 layers (2 Dense, 1 InputLayer), 4 weights, 23 parameters (0.0 MB)" in printed.out
    assert "skipped: \n  - the compile/training config (loss, metrics, optimizer settings): torch trains" in printed.out
    assert "  - the optimizer state (10 arrays in `optimizer`)" in printed.out  # iteration, learning rate, 2 x 4 moments
    assert printed.err == ""  # a small model, stderr not a terminal: no progress bar


def test_a_progress_bar_is_drawn_for_a_large_model_or_a_terminal(tmp_path, capsys, monkeypatch):
    import io

    from xlayers import port

    _keras_file(tmp_path / "m.keras")
    monkeypatch.setattr(port, "LARGE", 100)  # these weights (about 0.4 kB) count as large
    assert main(["port", str(tmp_path / "m.keras"), str(tmp_path / "m.safetensors"), "--no-verify"]) == 0
    err = capsys.readouterr().err
    assert err.endswith("write m.safetensors: [##############################] 100% 0.0/0.0 MB\n"), err
    assert "read weights: [" in err and err.count("\n") == 2  # one line each, redrawn in place with \r

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(port, "LARGE", 10**12)
    bar, quiet = port.ProgressBar(Terminal()), port.ProgressBar(io.StringIO())
    for callback in (bar, quiet):
        callback("read", 5, 10)
        callback("read", 10, 10)
    assert bar.stream.getvalue() == "\rread: [###############...............]  50% 0.0/0.0 MB" \
                                    "\rread: [##############################] 100% 0.0/0.0 MB\n"
    assert quiet.stream.getvalue() == ""


def test_an_output_that_cannot_be_written_is_refused_before_reading(tmp_path, capsys):
    _keras_file(tmp_path / "m.keras")
    assert main(["port", str(tmp_path / "m.keras"), str(tmp_path / "missing" / "m.safetensors"), "--no-verify"]) == 2
    assert f"OUT's folder `{tmp_path / 'missing'}` does not exist. Received: {tmp_path / 'missing' / 'm.safetensors'}" \
        in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()

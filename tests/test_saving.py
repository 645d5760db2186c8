"""Keras 3 ``.keras`` files read and written without TensorFlow or Keras: models Keras saved
run in xlayers as in Keras, files xlayers writes load in Keras 3.15 with every weight
bit-exact, and bad files are refused whole."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import xlayers
from conformance.keras_reference import keras
from xlayers.errors import FileFormatError, WeightShapeError
from xlayers.saving import load_keras, save_keras
from xlayers.tolerance import compare

KERAS2 = Path(__file__).resolve().parent / "data" / "keras2"


def _randomize(model) -> None:
    """Seeded random weights (positive moving variances), different for every variable."""
    rng = np.random.default_rng(11)
    for variable in model.weights:
        value = rng.standard_normal(tuple(variable.shape)).astype(variable.dtype)
        variable.assign(np.abs(value) + 0.5 if "variance" in variable.path else value)


def _text_and_residual_model():
    K = keras()
    ids = K.Input((9,), dtype="int32", name="ids")
    h = K.layers.Embedding(17, 6, mask_zero=True)(ids)
    h = K.layers.LSTM(5, return_sequences=True)(h)
    h = K.layers.GRU(5, return_sequences=True)(h)
    h = h + K.layers.Dense(5)(h)  # an operation node
    h = K.layers.LayerNormalization()(h)
    pooled = K.layers.GlobalAveragePooling1D()(h)
    head = K.Sequential([K.layers.Dense(4, activation="relu"), K.layers.BatchNormalization()], name="head")
    model = K.Model(ids, head(pooled))
    _randomize(model)
    return model


def _datasets(path) -> dict[str, bytes]:
    """Every dataset of a .keras file's weights, by HDF5 path, as raw bytes."""
    import io

    import h5py

    found: dict[str, bytes] = {}
    with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as h5:
        h5.visititems(lambda name, item: found.__setitem__(name, item[()].tobytes()) if isinstance(item, h5py.Dataset) else None)
    return found


def _tokens() -> np.ndarray:
    tokens = np.random.default_rng(3).integers(1, 17, (3, 9)).astype(np.int32)
    tokens[0, 6:] = 0
    tokens[1, 2:] = 0
    return tokens


def test_a_keras_saved_model_runs_in_xlayers_and_writes_back_bit_exact(tmp_path):
    twin = _text_and_residual_model()
    twin.save(tmp_path / "k.keras")
    model = load_keras(tmp_path / "k.keras")
    assert not model.training  # ported models come back in inference mode
    tokens = _tokens()
    ours = model(torch.from_numpy(tokens)).detach().numpy()
    result = compare(ours, np.asarray(twin(tokens)), "float32", "cpu")
    assert result.passed, result.describe("output")
    save_keras(model, tmp_path / "x.keras")
    assert _datasets(tmp_path / "x.keras") == _datasets(tmp_path / "k.keras")  # the same groups, bit for bit
    back = keras().saving.load_model(tmp_path / "x.keras")
    assert all(np.array_equal(a, b) for a, b in zip(back.get_weights(), twin.get_weights()))
    assert np.array_equal(np.asarray(back(tokens)), np.asarray(twin(tokens)))


def test_an_xlayers_model_saved_loads_in_keras():
    from xlayers import BatchNormalization, Conv2D, Dense, Flatten, Input, Model

    x = Input((7, 9, 3))
    y = Flatten()(BatchNormalization()(Conv2D(4, 3, strides=2, padding="same")(x)))
    model = Model(x, Dense(5)(y) * 0.5)
    rng = np.random.default_rng(2)
    model.set_weights([np.abs(rng.standard_normal(w.shape)).astype(np.float32) + 0.1 for w in model.get_weights()])
    model.eval()
    path = "/tmp/xlayers-test-saved.keras"
    save_keras(model, path)
    twin = keras().saving.load_model(path)
    data = rng.standard_normal((2, 7, 9, 3)).astype(np.float32)
    result = compare(model(torch.from_numpy(data)).detach().numpy(), np.asarray(twin(data)), "float32", "cpu")
    assert result.passed, result.describe("output")


def test_reading_a_keras_file_imports_neither_tensorflow_nor_keras(tmp_path):
    """Neither a Keras 3 `.keras` file nor a tf_keras `.h5` file needs TensorFlow or Keras."""
    keras_model = _text_and_residual_model()
    keras_model.save(tmp_path / "k.keras")
    np.save(tmp_path / "tokens.npy", _tokens())
    np.save(tmp_path / "expected.npy", np.asarray(keras_model(_tokens())))
    script = textwrap.dedent(f"""
        import sys
        for name in ("tensorflow", "keras", "tf_keras"):
            sys.modules[name] = None  # `import` of it fails as if it were not installed
        import numpy as np, torch
        from xlayers.saving import load_h5, load_keras
        from xlayers.tolerance import compare
        model = load_keras({str(tmp_path / "k.keras")!r})
        ours = model(torch.from_numpy(np.load({str(tmp_path / "tokens.npy")!r}))).detach().numpy()
        result = compare(ours, np.load({str(tmp_path / "expected.npy")!r}), "float32", "cpu")
        assert result.passed, result.describe("output")
        keras2 = np.load({str(KERAS2 / "text.npz")!r})  # a tf_keras 2.21 .h5, with tf_keras's outputs
        ours = load_h5({str(KERAS2 / "text.h5")!r})(torch.from_numpy(keras2["input0"])).detach().numpy()
        result = compare(ours, keras2["output0"], "float32", "cpu")
        assert result.passed, result.describe("tf_keras .h5 output")
        assert not any(m.split(".")[0] in ("tensorflow", "keras", "tf_keras") and sys.modules[m] is not None for m in sys.modules)
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_a_corrupt_or_truncated_file_is_refused(tmp_path):
    keras_model = _text_and_residual_model()
    keras_model.save(tmp_path / "k.keras")
    data = (tmp_path / "k.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match=r"cut\.keras` is not a readable \.keras file"):
        load_keras(tmp_path / "cut.keras")
    with zipfile.ZipFile(tmp_path / "nocfg.keras", "w") as archive:
        archive.writestr("metadata.json", "{}")
    with pytest.raises(FileFormatError, match="not a readable .keras file: KeyError"):
        load_keras(tmp_path / "nocfg.keras")


def test_a_weight_of_another_shape_is_named_with_both_shapes_and_nothing_changes(tmp_path):
    K = keras()
    x = K.Input((5,))
    K.Model(x, K.layers.Dense(3)(x)).save(tmp_path / "a.keras")
    config = zipfile.ZipFile(tmp_path / "a.keras").read("config.json").decode().replace('"units": 3', '"units": 4')
    with zipfile.ZipFile(tmp_path / "a.keras") as source, zipfile.ZipFile(tmp_path / "b.keras", "w") as target:
        for name in source.namelist():
            target.writestr(name, config if name == "config.json" else source.read(name))
    with pytest.raises(WeightShapeError, match=r"`Dense` layer .*weight `kernel` must have shape \(in=5, units=4\).*Received: shape=\(5, 3\)\. In the file: `layers/dense/vars/0`"):
        load_keras(tmp_path / "b.keras")


def test_writing_is_atomic(tmp_path, monkeypatch):
    model = xlayers.Sequential([xlayers.Dense(2)], input_shape=(3,))
    target = tmp_path / "m.keras"
    target.write_bytes(b"previous")
    real = zipfile.ZipFile.writestr

    def failing(self, name, data, *args, **kwargs):
        if name == "config.json":  # after the weights were written
            raise OSError("disk full")
        return real(self, name, data, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing)
    with pytest.raises(OSError, match="disk full"):
        save_keras(model, target)
    assert target.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["m.keras"]
    monkeypatch.undo()
    with pytest.raises(FileNotFoundError):
        save_keras(model, tmp_path / "missing" / "m.keras")


def test_from_keras_takes_a_keras_model_or_a_file(tmp_path):
    twin = _text_and_residual_model()
    model = xlayers.from_keras(twin)
    tokens = torch.from_numpy(_tokens())
    twin.save(tmp_path / "k.keras")
    assert torch.equal(model(tokens), xlayers.from_keras(tmp_path / "k.keras")(tokens))
    with pytest.raises(xlayers.errors.ArgumentError, match=r"must be a `\.keras` file or folder or a `\.h5` file"):
        xlayers.from_keras(tmp_path / "k.pb")


def test_a_legacy_h5_that_keras_3_wrote_runs_in_xlayers(tmp_path):
    twin = _text_and_residual_model()
    twin.save(tmp_path / "k.h5")
    model = xlayers.from_keras(tmp_path / "k.h5")
    tokens = _tokens()
    result = compare(model(torch.from_numpy(tokens)).detach().numpy(), np.asarray(twin(tokens)), "float32", "cpu")
    assert result.passed, result.describe("output")
    assert not model.training


def test_a_legacy_h5_of_weights_only_says_how_to_load_it(tmp_path):
    import h5py

    with h5py.File(tmp_path / "w.h5", "w") as h5:
        h5.attrs["layer_names"] = []
    with pytest.raises(FileFormatError, match="holds weights only"):
        xlayers.from_keras(tmp_path / "w.h5")


def test_to_keras_gives_a_keras_model_with_the_same_outputs():
    from xlayers import Dense, Input, LayerNormalization, Model

    x = Input((6,))
    model = Model(x, LayerNormalization()(Dense(4, activation="relu")(x) + 1.0)).eval()
    twin = xlayers.to_keras(model)
    data = np.random.default_rng(5).standard_normal((3, 6)).astype(np.float32)
    assert type(twin).__module__.startswith("keras")
    result = compare(model(torch.from_numpy(data)).detach().numpy(), np.asarray(twin(data)), "float32", "cpu")
    assert result.passed, result.describe("output")


def test_bad_files_are_refused_with_what_is_wrong(tmp_path):
    """A corrupt HDF5 member, a truncated .h5, a weight count that differs, a subclassed model."""
    from xlayers.errors import WeightNameError

    K = keras()
    x = K.Input((5,))
    model = K.Model(x, K.layers.Dense(3, name="head")(x))
    model.save(tmp_path / "a.keras")
    model.save(tmp_path / "a.h5")
    with zipfile.ZipFile(tmp_path / "a.keras") as source, zipfile.ZipFile(tmp_path / "junk.keras", "w") as target:
        for name in source.namelist():
            target.writestr(name, b"\x89HDF\r\n\x1a\n" + b"\0" * 64 if name == "model.weights.h5" else source.read(name))
    with pytest.raises(FileFormatError, match=r"junk\.keras`: its model\.weights\.h5 is not a readable HDF5 file"):
        load_keras(tmp_path / "junk.keras")
    data = (tmp_path / "a.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match=r"cut\.h5` is not a readable HDF5 file"):
        xlayers.from_keras(tmp_path / "cut.h5")
    config = zipfile.ZipFile(tmp_path / "a.keras").read("config.json").decode().replace('"use_bias": true', '"use_bias": false')
    with zipfile.ZipFile(tmp_path / "a.keras") as source, zipfile.ZipFile(tmp_path / "nobias.keras", "w") as target:
        for name in source.namelist():
            target.writestr(name, config if name == "config.json" else source.read(name))
    with pytest.raises(WeightNameError, match=r"`Dense` layer 'head': the file's group `layers/dense/vars` holds 2 variables; "
                                              r"the layer has 1 \(layers/dense/kernel\)"):
        load_keras(tmp_path / "nobias.keras")

    @K.saving.register_keras_serializable(package="tests")
    class Twice(K.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = K.layers.Dense(2)

        def call(self, inputs):
            return self.dense(inputs) * 2.0

    sub = Twice()
    sub(np.ones((1, 3), "float32"))
    sub.save(tmp_path / "sub.keras")
    with pytest.raises(FileFormatError, match=r"subclassed Keras model \(tests>Twice\): its config has no graph"):
        load_keras(tmp_path / "sub.keras")

"""Weights saved and loaded as safetensors (one file or Hugging Face shards) and as Keras's
``.weights.h5``: Keras's names, exact values, the formats' own rules, and refusals that change
nothing."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

from xlayers import LSTM, BatchNormalization, Dense, Embedding, Input, Model
from xlayers.errors import ArgumentError, FileFormatError, WeightNameError, WeightShapeError


def _model() -> Model:
    ids = Input((6,), dtype="int64")
    h = LSTM(5, return_sequences=True)(Embedding(11, 4)(ids))
    model = Model(ids, BatchNormalization()(Dense(3)(h)))
    with torch.no_grad():
        for i, parameter in enumerate(model.parameters()):
            parameter.copy_(torch.randn(parameter.shape, generator=torch.Generator().manual_seed(i)).abs() + 0.1)
    return model


def _values(model: Model) -> dict[str, torch.Tensor]:
    return {e.path: e.parameter.detach().clone() for e in model.walk_weights()}


def _same(a: Model, b: Model) -> bool:
    return all(torch.equal(x, y) for x, y in zip(_values(a).values(), _values(b).values()))


def test_safetensors_round_trip_with_keras_names_and_the_format_rules(tmp_path):
    model, other = _model(), _model()
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.zero_()
    model.save_weights(tmp_path / "m.safetensors")
    raw = (tmp_path / "m.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    assert length % 8 == 0 and header["__metadata__"]["format"] == "pt"
    assert "layers/lstm/cell/kernel" in header and header["layers/dense/kernel"]["shape"] == [5, 3]
    begin, end = header["layers/dense/kernel"]["data_offsets"]
    stored = np.frombuffer(raw[8 + length + begin:8 + length + end], np.float32).reshape(5, 3)
    assert np.array_equal(stored, model.get_layer(index=3).kernel.detach().numpy())  # Keras's (in, units) layout
    other.load_weights(tmp_path / "m.safetensors")
    assert _same(model, other)


def test_sharded_safetensors_follow_the_hugging_face_layout(tmp_path):
    model = _model()
    sizes = [e.parameter.numel() * 4 for e in model.walk_weights()]
    shard = max(sizes) - 4  # the largest tensor does not fit: it gets a shard of its own
    model.save_weights(tmp_path / "model.safetensors", max_shard_size=shard)
    written = sorted(p.name for p in tmp_path.iterdir())
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    assert index["metadata"]["total_size"] == sum(sizes) and len(files) > 2
    assert files[0] == f"model-00001-of-{len(files):05d}.safetensors" and written == sorted([*files, "model.safetensors.index.json"])
    other = _model()
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.zero_()
    other.load_weights(tmp_path / "model.safetensors.index.json")
    assert _same(model, other)


def test_keras_weights_h5_round_trip_loads_in_keras(tmp_path):
    from conformance.keras_reference import keras

    model = _model()
    model.save_weights(tmp_path / "m.weights.h5")
    twin = keras().Model.from_config(json.loads(json.dumps(model.get_config())))
    twin.load_weights(tmp_path / "m.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(twin.get_weights(), model.get_weights()))
    twin.save_weights(tmp_path / "k.weights.h5")
    other = _model()
    other.load_weights(tmp_path / "k.weights.h5")
    assert _same(model, other)


def test_bad_checkpoints_are_refused_and_change_nothing(tmp_path):
    model = _model()
    model.save_weights(tmp_path / "m.safetensors")
    before = _values(model)
    raw = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(raw[:-10])
    with pytest.raises(FileFormatError, match="truncated"):
        model.load_weights(tmp_path / "cut.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(struct.pack("<Q", 10**12) + b"{}")
    with pytest.raises(FileFormatError, match="header claims"):
        model.load_weights(tmp_path / "junk.safetensors")
    x = Input((4,))
    small = Model(x, Dense(3)(x))
    small.save_weights(tmp_path / "small.safetensors")
    with pytest.raises(WeightNameError, match=r"missing=\['layers/embedding/embeddings'"):
        model.load_weights(tmp_path / "small.safetensors")
    y = Input((7,))
    wide = Model(y, Dense(3)(y))
    with pytest.raises(WeightShapeError, match=r"`kernel` must have shape \(in=7, units=3\).*Received: shape=\(4, 3\)"):
        wide.load_weights(tmp_path / "small.safetensors")
    with pytest.raises(ArgumentError, match=r"must end in '\.safetensors'"):
        model.save_weights(tmp_path / "m.pt")
    assert all(torch.equal(before[k], v) for k, v in _values(model).items())


def test_the_safetensors_library_reads_our_files_and_we_read_its(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="the `dev` extra installs safetensors")
    model = _model()
    model.save_weights(tmp_path / "ours.safetensors")
    theirs = safetensors_numpy.load_file(tmp_path / "ours.safetensors")
    assert {k: v.tobytes() for k, v in theirs.items()} == {k: v.numpy().tobytes() for k, v in _values(model).items()}
    safetensors_numpy.save_file({k: v + 1.0 for k, v in theirs.items()}, tmp_path / "theirs.safetensors")
    model.load_weights(tmp_path / "theirs.safetensors")
    assert all(np.array_equal(v.numpy(), theirs[k] + 1.0) for k, v in _values(model).items())


def _keras_model(seed: int = 0):
    """A Keras model whose Dense kernels are large enough to split over small shards, with a
    nested Sequential and a BatchNormalization (non-trainable weights), seeded random weights."""
    from conformance.keras_reference import keras

    K = keras()
    x = K.Input((40,), name="x")
    h = K.layers.Dense(64, activation="relu", name="wide")(x)
    h = K.Sequential([K.layers.Dense(40, name="inner"), K.layers.BatchNormalization(name="norm")], name="block")(h)
    model = K.Model(x, K.layers.Dense(5, name="head")(h))
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = rng.standard_normal(tuple(variable.shape)).astype("float32")
        variable.assign(np.abs(value) + 0.5 if "variance" in variable.path else value)
    return model


def _xlayers_twin(keras_model) -> Model:
    """The same architecture built by xlayers from Keras's config, its weights zeroed."""
    twin = Model.from_config(json.loads(json.dumps(keras_model.get_config())))
    with torch.no_grad():
        for parameter in twin.parameters():
            parameter.zero_()
    return twin


def _equal_to_keras(model: Model, keras_model) -> bool:
    ours = model.get_weights()
    return len(ours) == len(keras_model.get_weights()) and all(np.array_equal(a, b) for a, b in zip(ours, keras_model.get_weights()))


def test_keras_sharded_weights_json_is_read(tmp_path):
    keras_model = _keras_model()
    keras_model.save_weights(tmp_path / "k.weights.json", max_shard_size=10300 / 1024**3)  # a kernel of 10240 bytes fits, not with its bias
    index = json.loads((tmp_path / "k.weights.json").read_text())
    shards = sorted(p.name for p in tmp_path.glob("k_*.weights.h5"))
    assert len(shards) > 2 and set(shards) == {n for v in index["weight_map"].values() for n in ([v] if isinstance(v, str) else v)}
    assert any(isinstance(v, list) and len(v) > 1 for v in index["weight_map"].values())  # a `vars` group split over shards
    model = _xlayers_twin(keras_model)
    model.load_weights(tmp_path / "k.weights.json")
    assert _equal_to_keras(model, keras_model)
    (tmp_path / shards[-1]).unlink()
    before = _values(model)
    with pytest.raises(FileFormatError, match=rf"{shards[-1]}` is not a readable HDF5 file"):
        _xlayers_twin(keras_model).load_weights(tmp_path / "k.weights.json")
    (tmp_path / "bad.weights.json").write_text('{"weight_map": {"/layers/dense/vars": "../elsewhere.weights.h5"}}')
    with pytest.raises(FileFormatError, match="file names beside the index"):
        model.load_weights(tmp_path / "bad.weights.json")
    assert all(torch.equal(before[k], v) for k, v in _values(model).items())


def test_a_legacy_weights_only_h5_loads_by_position_as_keras_does(tmp_path):
    import h5py
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    keras_model = _keras_model(1)
    with h5py.File(tmp_path / "pretrained.h5", "w") as h5:  # the layout of keras.applications' weight files
        save_weights_to_hdf5_group(h5, keras_model)
    config = json.loads(json.dumps(keras_model.get_config()).replace('"wide"', '"renamed"'))
    model = Model.from_config(config)  # names differ: legacy files are matched by position
    model.load_weights(tmp_path / "pretrained.h5")
    assert _equal_to_keras(model, keras_model)
    keras_model.save(tmp_path / "whole.h5")  # a whole legacy model file: its `model_weights`
    other = _xlayers_twin(keras_model)
    other.load_weights(tmp_path / "whole.h5")
    assert _equal_to_keras(other, keras_model)
    x = Input((40,))
    with pytest.raises(WeightNameError, match=r"holds weights for 3 layers, the model has 1 layers with weights\. Received: \[.wide., .block., .head.\]"):
        Model(x, Dense(5)(x)).load_weights(tmp_path / "pretrained.h5")


def test_load_weights_refuses_other_files_by_name(tmp_path):
    model = _model()
    for name in ("m.pt", "m.ckpt", "m.npz", "m.json"):
        with pytest.raises(ArgumentError, match=r"`path` must end in '\.safetensors', '\.safetensors\.index\.json', '\.weights\.h5', "
                                                r"'\.weights\.json' or '\.h5'\. Received: path='.*m\.\w+'"):
            model.load_weights(tmp_path / name)
    (tmp_path / "junk.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(FileFormatError, match="junk.h5` is not a readable HDF5 file"):
        model.load_weights(tmp_path / "junk.h5")


def test_files_are_read_into_uninitialised_weights_and_no_initializer_runs(tmp_path, monkeypatch):
    from xlayers import initializers
    from xlayers.saving import from_keras

    keras_model = _keras_model(2)
    keras_model.save(tmp_path / "k.keras")
    keras_model.save(tmp_path / "k.h5")

    def refuse(*args, **kwargs):
        raise AssertionError("an initializer ran while reading a file")

    classes = [initializers.Initializer]
    while classes:
        cls = classes.pop()
        classes.extend(cls.__subclasses__())
        if "__call__" in vars(cls):
            monkeypatch.setattr(cls, "__call__", refuse)
    with pytest.raises(AssertionError, match="an initializer ran"):
        Dense(3, input_shape=(2,))  # the patch bites outside the readers
    for name in ("k.keras", "k.h5"):
        assert _equal_to_keras(from_keras(tmp_path / name), keras_model)


def test_sharded_safetensors_appear_all_or_none(tmp_path, monkeypatch):
    from xlayers import checkpoints

    model = _model()
    model.save_weights(tmp_path / "model.safetensors", max_shard_size=400)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real, calls = checkpoints._write_file, []

    def failing(path, entries, metadata):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(path, entries, metadata)

    monkeypatch.setattr(checkpoints, "_write_file", failing)
    with torch.no_grad():
        next(iter(model.parameters())).add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        model.save_weights(tmp_path / "model.safetensors", max_shard_size=400)
    assert len(before) > 2 and {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # the old set, whole


def _sevens() -> Model:
    """`_model`'s architecture with every weight 7.0: a weight still 7.0 was not read."""
    model = _model()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(7.0)
    return model


@pytest.mark.parametrize("kernel_copies", [True, False], ids=["copy_file_range", "through-user-space"])
def test_file_backed_weights_are_copied_file_to_file_and_read_on_leaving(tmp_path, monkeypatch, kernel_copies):
    """Within `file_backed_weights`, weights loaded from an HDF5 file on disk are not read: the
    safetensors written from them hold the file's bytes (the same file as from read weights), and
    leaving the block reads them, so the model then equals the source."""
    from xlayers.checkpoints import file_backed_weights

    if not kernel_copies:
        def refuse(*args, **kwargs):
            raise OSError(38, "Function not implemented")

        monkeypatch.setattr("os.copy_file_range", refuse)
    model = _model()
    model.save_weights(tmp_path / "m.weights.h5")
    model.save_weights(tmp_path / "expected.safetensors", max_shard_size=300)
    other = _sevens()
    with file_backed_weights() as backed:
        other.load_weights(tmp_path / "m.weights.h5")
        assert len(backed.pending) == len(list(other.parameters()))  # nothing was read
        assert all(float(p.detach().flatten()[0]) == 7.0 for p in other.parameters())
        other.save_weights(tmp_path / "got.safetensors", max_shard_size=300)
    assert _same(model, other) and not backed.pending
    expected = sorted(tmp_path.glob("expected*.safetensors"))
    got = sorted(tmp_path.glob("got*.safetensors"))
    assert len(got) == len(expected) > 1
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(expected, got))


def test_file_backed_weights_left_unread_by_forget_and_not_taken_from_a_zip(tmp_path):
    from xlayers import from_keras, save_keras
    from xlayers.checkpoints import file_backed_weights

    model = _model()
    save_keras(model, tmp_path / "m.keras")  # its weights file lies inside a zip: read as usual
    with file_backed_weights() as backed:
        again = from_keras(tmp_path / "m.keras")
        assert not backed.pending
    assert _same(model, again)
    model.save_weights(tmp_path / "m.weights.h5")
    other = _sevens()
    with file_backed_weights() as backed:
        other.load_weights(tmp_path / "m.weights.h5")
        backed.forget()
    assert all(float(p.detach().flatten()[0]) == 7.0 for p in other.parameters())

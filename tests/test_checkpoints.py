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

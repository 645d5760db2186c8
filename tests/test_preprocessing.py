"""Rescaling and Normalization: values against their formulas in numpy, Keras's weight layout
(mean, variance, int64 count), adapt, config round trips and the ONNX graph. Keras itself is the
reference in conformance."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conformance.testing import check_layer
from xlayers import Normalization, Rescaling
from xlayers.errors import ArgumentError
from xlayers.onnx import export


def test_rescaling_formula_per_channel_and_uint8():
    scale, offset = [0.5, 2.0, -1.0], [0.1, -0.2, 0.3]
    x = np.random.default_rng(0).integers(0, 256, (2, 4, 5, 3)).astype(np.uint8)
    y = Rescaling(scale, offset)(torch.from_numpy(x))
    assert y.dtype == torch.float32
    np.testing.assert_allclose(y.numpy(), x.astype(np.float32) * np.float32(scale) + np.float32(offset), rtol=1e-6)
    layer = Rescaling(np.array(scale), offset=np.float64(0.5))
    assert json.loads(json.dumps(layer.get_config()))["scale"] == scale
    assert layer.compute_mask(torch.ones(2, 3), torch.ones(2, dtype=torch.bool)) is not None


def test_rescaling_checklist():
    check_layer(Rescaling(1 / 127.5, -1.0), (2, 5, 6, 3), {})


def _numpy_normalize(x, mean, variance, invert=False):
    std = np.maximum(np.sqrt(variance), 1e-7)
    return mean + x * std if invert else (x - mean) / std


def test_normalization_from_config_aligns_from_the_right():
    x = np.random.default_rng(1).standard_normal((2, 5, 3, 2)).astype(np.float32)
    mean, variance = np.array([0.5, -1.0, 2.0]), np.array([4.0, 0.25, 0.0])
    layer = Normalization(axis=(1, 2), mean=mean.tolist(), variance=variance.tolist())
    expected = _numpy_normalize(x, mean[None, None, :, None], variance[None, None, :, None])
    np.testing.assert_allclose(layer(torch.from_numpy(x)).numpy(), expected, rtol=1e-6)
    assert list(layer.parameters()) == [] and layer.state_dict() == {}
    inverse = Normalization(axis=(1, 2), mean=mean.tolist(), variance=(variance + 1).tolist(), invert=True)
    forward = Normalization(axis=(1, 2), mean=mean.tolist(), variance=(variance + 1).tolist())
    torch.testing.assert_close(inverse(forward(torch.from_numpy(x))), torch.from_numpy(x), rtol=1e-5, atol=1e-5)


def test_normalization_weights_are_keras_layout():
    layer = Normalization(axis=(1, -1))
    check_layer(layer, (2, 5, 6, 3), {"mean": (5, 3), "variance": (5, 3), "count": ()})
    assert layer.count.dtype == torch.int64 and not any(p.requires_grad for p in layer.parameters())
    assert [tuple(w.shape) for w in layer.get_weights()] == [(5, 3), (5, 3), ()]
    scalar = Normalization(axis=None)
    scalar(torch.randn(2, 3))
    assert [tuple(w.shape) for w in scalar.get_weights()] == [(), (), ()]


def test_normalization_adapt_matches_numpy_and_batches():
    data = np.random.default_rng(2).standard_normal((40, 5, 3)) * 3 + 1
    whole = Normalization(axis=-1)
    whole.adapt(data)
    np.testing.assert_allclose(whole.mean.numpy(), data.mean(axis=(0, 1)), rtol=1e-5)
    np.testing.assert_allclose(whole.variance.numpy(), data.var(axis=(0, 1)), rtol=1e-5)
    batched = Normalization(axis=-1)
    batched.adapt([data[:13], data[13:30], data[30:]])
    torch.testing.assert_close(batched.mean, whole.mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(batched.variance, whole.variance, rtol=1e-5, atol=1e-6)
    y = whole(torch.from_numpy(data).float()).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 1)), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 1)), 1, atol=1e-4)
    with pytest.raises(ArgumentError, match="`adapt` cannot change"):
        Normalization(mean=1.0, variance=1.0).adapt(data)


def test_normalization_config_round_trip():
    layer = Normalization(axis=[1, 2], mean=[[1.0, 2.0]], variance=[[3.0, 4.0]], invert=True)
    config = json.loads(json.dumps(layer.get_config()))
    assert config["axis"] == [1, 2] and config["mean"] == [[1.0, 2.0]]
    assert Normalization.from_config(config).get_config() == {**layer.get_config(), "axis": (1, 2)}


@pytest.mark.parametrize(
    "make, shape, ops",
    [
        (lambda: Rescaling([0.5, 2.0, -1.0], [0.1, -0.2, 0.3]), (2, 4, 5, 3), {"Mul": 1, "Add": 1}),
        (lambda: Normalization(axis=-1), (2, 4, 3), {"Sub": 1, "Div": 1}),  # the divisor folds into a constant
    ],
    ids=["rescaling", "normalization"],
)
def test_onnx_graph(tmp_path, make, shape, ops):
    layer = make()
    layer(torch.randn(*shape))
    result = export(layer, torch.randn(*shape), tmp_path / "m.onnx")
    for op, count in ops.items():
        assert result.node_counts.get(op, 0) == count, result.node_counts

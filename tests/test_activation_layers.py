"""Activation layers (Activation, ReLU, LeakyReLU, PReLU, ELU, Softmax) and Identity: the
checklist, each layer against its formula written out independently, PReLU's per-rank
declaration and shared axes, Softmax's mask rules, configs, errors, and the ONNX node types.

Keras equivalence is registry data: `conformance/cases/activations.py`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from conformance.testing import check_layer
from xlayers import ELU, Activation, Identity, LeakyReLU, PReLU, ReLU, Softmax
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError
from xlayers.layers.activations import prelu_layout


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()


X = torch.tensor([[-3.0, -1.0, -0.25, 0.0, 0.2, 0.5, 1.0, 2.0, 7.0]], dtype=torch.float64)


def _relu_reference(x: float, max_value, negative_slope, threshold) -> float:
    """Keras's ReLU formula: max_value above it, x in [threshold, max_value), slope * (x - threshold) below."""
    if max_value is not None and x >= max_value:
        return max_value
    if x > threshold:
        return x
    return negative_slope * (x - threshold)


@pytest.mark.parametrize("cls, kwargs", [
    (Activation, {"activation": "gelu"}), (ReLU, {"max_value": 1.0}), (LeakyReLU, {}), (PReLU, {"shared_axes": [1]}),
    (ELU, {"alpha": 0.5}), (Softmax, {"axis": (1, 2)}), (Identity, {}),
], ids=lambda v: v.__name__ if isinstance(v, type) else "")
def test_checklist(cls, kwargs):
    layer = cls(**kwargs)
    expected = {"alpha": (1, 5)} if cls is PReLU else {}
    out = check_layer(layer, (3, 4, 5), expected)
    assert out.shape == (3, 4, 5)


@pytest.mark.parametrize("kwargs", [
    {}, {"max_value": 1.5}, {"max_value": 6.0}, {"negative_slope": 0.2}, {"threshold": 0.4},
    {"negative_slope": 0.1, "max_value": 1.2}, {"negative_slope": 0.15, "max_value": 1.5, "threshold": 0.3},
])
def test_relu_follows_its_formula(kwargs):
    layer = ReLU(**kwargs, dtype="float64")
    expected = [_relu_reference(v, kwargs.get("max_value"), kwargs.get("negative_slope", 0.0), kwargs.get("threshold", 0.0)) for v in X[0].tolist()]
    torch.testing.assert_close(layer(X)[0], torch.tensor(expected, dtype=torch.float64))


def test_leaky_relu_default_slope_is_keras_3s_and_alpha_is_deprecated():
    torch.testing.assert_close(LeakyReLU(dtype="float64")(X), torch.where(X >= 0, X, 0.3 * X))
    with pytest.warns(UserWarning, match="`alpha` is deprecated"):
        layer = LeakyReLU(alpha=0.1)
    assert layer.negative_slope == 0.1 and "alpha" not in layer.get_config()


def test_elu_follows_its_formula():
    expected = torch.where(X > 0, X, 0.5 * (torch.exp(X) - 1))
    torch.testing.assert_close(ELU(alpha=0.5, dtype="float64")(X), expected)


@pytest.mark.parametrize("shape, shared, alpha_shape", [
    ((3, 5), None, (5,)), ((2, 7, 5), 1, (1, 5)), ((2, 5, 6, 3), [1, 2], (1, 1, 3)), ((2, 5, 6, 3), [3], (5, 6, 1)),
    ((2, 3, 4, 5, 6), (1, 2, 3), (1, 1, 1, 6)),
])
def test_prelu_alpha_has_one_axis_per_sample_axis_and_shares_the_given_ones(shape, shared, alpha_shape):
    layer = PReLU(shared_axes=shared)
    x = torch.randn(*shape)
    y = layer(x)
    assert tuple(layer.alpha.shape) == alpha_shape
    assert layer.LAYOUT == prelu_layout(len(shape)) and type(layer).LAYOUT == prelu_layout(2)
    assert [e.declaration.shape(layer._sizes) for e in layer.walk_weights()] == [alpha_shape]
    with torch.no_grad():
        layer.alpha.copy_(torch.randn(alpha_shape))
    torch.testing.assert_close(layer(x), torch.where(x > 0, x, layer.alpha * x))
    assert layer.get_weights()[0].shape == alpha_shape
    assert y.shape == x.shape


def test_prelu_initializer_regularizer_constraint_and_config():
    layer = PReLU(alpha_initializer="ones", alpha_regularizer={"class_name": "L2", "config": {"l2": 0.5}}, alpha_constraint="non_neg", shared_axes=2)
    layer(torch.randn(2, 4, 3))
    assert torch.equal(layer.alpha, torch.ones(4, 1))
    torch.testing.assert_close(layer.losses[0], torch.tensor(0.5 * 4.0))
    with torch.no_grad():
        layer.alpha.fill_(-1.0)
    layer.apply_constraints()
    assert torch.equal(layer.alpha, torch.zeros(4, 1))
    config = json.loads(json.dumps(layer.get_config()))
    assert config["shared_axes"] == [2] and config["alpha_initializer"]["class_name"] == "Ones"
    assert PReLU.from_config(config).get_config() == layer.get_config()


def test_prelu_fixes_the_axes_it_does_not_share():
    layer = PReLU(shared_axes=[1])
    layer(torch.randn(2, 4, 3))
    assert layer(torch.randn(5, 9, 3)).shape == (5, 9, 3)  # a shared axis may change
    with pytest.raises(InputShapeError, match=r"expected axis 2 of the input to have size 3"):
        layer(torch.randn(2, 4, 4))


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"shared_axes": "a"}, ArgumentError, r"`shared_axes` must be None, an axis or a list"),
    ({"shared_axes": [True]}, ArgumentError, r"`shared_axes` must be None"),
])
def test_prelu_argument_errors(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        PReLU(**kwargs)


def test_softmax_axes_sum_to_one():
    x = torch.randn(2, 5, 6, 3, dtype=torch.float64)
    for axis, dims in [(-1, (3,)), (1, (1,)), ((1, 2), (1, 2)), ([2], (2,))]:
        y = Softmax(axis=axis, dtype="float64")(x)
        torch.testing.assert_close(y.sum(dim=dims), torch.ones_like(y.sum(dim=dims)))
        expected = torch.exp(x) / torch.exp(x).sum(dim=dims, keepdim=True)
        torch.testing.assert_close(y, expected)


def test_softmax_mask_as_keras_applies_it():
    x = torch.randn(3, 4, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0, 1], [0, 0, 0, 0], [1, 0, 1, 0]], dtype=torch.bool)
    y = Softmax(dtype="float64")(x, mask=mask)
    assert torch.equal(y[1], torch.zeros(4, dtype=torch.float64))  # a row all masked: zeros, not uniform
    for row in (0, 2):
        kept = mask[row]
        torch.testing.assert_close(y[row, kept], torch.softmax(x[row, kept], dim=0))
        assert torch.equal(y[row, ~kept], torch.zeros(int((~kept).sum()), dtype=torch.float64))
    # a numeric mask keeps what is > 0.5; a broadcast mask (numpy too) applies to every row
    torch.testing.assert_close(Softmax(dtype="float64")(x, mask=mask.double() * 0.6), y)
    broadcast = Softmax(dtype="float64")(x, mask=np.array([True, False, True, True]))
    assert torch.equal(broadcast[:, 1], torch.zeros(3, dtype=torch.float64))


def test_softmax_mask_errors():
    layer = Softmax()
    with pytest.raises(InputShapeError, match=r"must not have more dimensions"):
        layer(torch.randn(2, 5), mask=torch.ones(1, 2, 5, dtype=torch.bool))
    with pytest.raises(InputShapeError, match=r"each mask axis must be 1 or the input's size"):
        layer(torch.randn(2, 5), mask=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ArgumentTypeError, match=r"`axis` must be an int or a non-empty tuple"):
        Softmax(axis=())
    with pytest.raises(InputShapeError, match=r"distinct axes"):
        Softmax(axis=(1, -1))(torch.randn(2, 3))


def test_activation_takes_callables_and_names_glu_output_shape():
    layer = Activation(lambda t: t * 2)
    torch.testing.assert_close(layer(torch.ones(2, 3)), torch.full((2, 3), 2.0))
    with pytest.raises(ArgumentError, match="custom callable"):
        layer.get_config()
    glu = Activation("glu")
    assert glu(torch.randn(2, 3, 6)).shape == (2, 3, 3) and glu.compute_output_shape((None, 3, 6)) == (None, 3, 3)
    assert Activation("swish").get_config()["activation"] == "silu"


@pytest.mark.parametrize("cls, kwargs, error, pattern", [
    (ReLU, {"max_value": "1"}, ArgumentTypeError, r"`max_value` must be None or a number\. Received: max_value='1'\."),
    (ReLU, {"threshold": math.nan}, ArgumentError, r"`threshold` must be a number >= 0"),
    (LeakyReLU, {"negative_slope": None}, ArgumentTypeError, r"`negative_slope` must be a number"),
    (ELU, {"alpha": True}, ArgumentTypeError, r"`alpha` must be a number"),
])
def test_argument_errors(cls, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        cls(**kwargs)


def test_identity_returns_its_input_and_structures():
    x = torch.randn(2, 3)
    assert Identity()(x) is x
    pair = Identity()([x, torch.randn(2, 5)])
    assert pair[0] is x and pair[1].shape == (2, 5)
    assert Identity().compute_output_shape([(None, 3), (None, 5)]) == [(None, 3), (None, 5)]


def test_masks_pass_through():
    mask = torch.tensor([[True, False, True]])
    for layer in (Activation("relu"), ReLU(), LeakyReLU(), PReLU(), ELU(), Softmax(), Identity()):
        assert layer.compute_mask(torch.randn(1, 3, 2), mask) is mask


@pytest.mark.parametrize("make, expected", [
    (lambda: ReLU(), {"Relu": 1}),
    (lambda: ReLU(max_value=1.5), {"Clip": 1}),
    (lambda: LeakyReLU(), {"LeakyRelu": 1}),
    (lambda: PReLU(shared_axes=[1, 2]), {"PRelu": 1}),
    (lambda: ELU(alpha=0.5), {"Elu": 1}),
    (lambda: Identity(), {"Identity": 1}),
], ids=["relu", "relu-cap", "leaky", "prelu", "elu", "identity"])
def test_onnx_node_types(tmp_path, make, expected):
    from xlayers.onnx import export

    layer = make()
    x = torch.randn(2, 5, 6, 3)
    layer(x)
    result = export(layer, x, tmp_path / "m.onnx", verbose=False)
    assert result.node_counts == expected, result.node_counts

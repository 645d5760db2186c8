"""Regularization layers (Dropout, SpatialDropout 1D/2D/3D, GaussianNoise, GaussianDropout,
AlphaDropout, ActivityRegularization): the identity at inference (the same tensor, and an
ONNX graph with nothing random), each training computation against its definition on the
layer's own draw, the draws' statistics, seeds, the training switch, configs and errors.

Keras equivalence (with Keras making the same draw) is registry data:
`conformance/cases/regularization.py`."""

from __future__ import annotations

import json
import math

import pytest
import torch

from conformance.testing import check_layer
from xlayers import (
    ActivityRegularization,
    AlphaDropout,
    Dropout,
    GaussianDropout,
    GaussianNoise,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
)
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError
from xlayers.layers.regularization import BaseSpatialDropout

RANDOM = [
    (Dropout, {"rate": 0.3}, (3, 4, 5)),
    (Dropout, {"rate": 0.3, "noise_shape": (None, 1, 5), "seed": 2}, (3, 4, 5)),
    (SpatialDropout1D, {"rate": 0.3}, (3, 4, 5)),
    (SpatialDropout2D, {"rate": 0.3, "data_format": "channels_first"}, (2, 3, 4, 5)),
    (SpatialDropout3D, {"rate": 0.3}, (2, 3, 4, 5, 6)),
    (GaussianNoise, {"stddev": 0.2}, (3, 4, 5)),
    (GaussianDropout, {"rate": 0.2}, (3, 4, 5)),
    (AlphaDropout, {"rate": 0.2}, (3, 4, 5)),
]
_IDS = [f"{cls.__name__}-{i}" for i, (cls, _, _) in enumerate(RANDOM)]


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()


@pytest.mark.parametrize("cls, kwargs, shape", RANDOM, ids=_IDS)
def test_checklist_and_inference_is_the_same_tensor(cls, kwargs, shape):
    layer = cls(**kwargs)
    check_layer(layer, shape, {}, call_kwargs={"training": False})
    x = torch.randn(*shape)
    assert layer(x, training=False) is x and layer.last_noise is None
    layer.eval()
    assert layer(x) is x  # training=None follows the module's mode
    layer.train()
    y = layer(x)
    assert layer.last_noise is not None and not torch.equal(y, x)


@pytest.mark.parametrize("cls, kwargs, shape", RANDOM, ids=_IDS)
def test_config_round_trip(cls, kwargs, shape):
    layer = cls(**kwargs)
    config = json.loads(json.dumps(layer.get_config()))
    assert cls.from_config(config).get_config() == layer.get_config()


def test_dropout_scales_the_kept_units_by_the_kept_fraction():
    layer = Dropout(0.4)
    x = torch.randn(64, 33, requires_grad=True)
    y = layer(x, training=True)
    keep = layer.last_noise
    assert keep.dtype == torch.bool and keep.shape == x.shape
    torch.testing.assert_close(y, x * keep / 0.6)
    y.backward(torch.ones_like(y))
    torch.testing.assert_close(x.grad, keep / 0.6)
    assert abs(keep.float().mean().item() - 0.6) < 0.03  # 2112 draws: 5 standard errors


def test_dropout_noise_shape_broadcasts_one_mask():
    layer = Dropout(0.5, noise_shape=(None, 1, 7))
    x = torch.randn(4, 6, 7)
    y = layer(x, training=True)
    assert layer.last_noise.shape == (4, 1, 7)
    torch.testing.assert_close(y, x * layer.last_noise * 2.0)
    with pytest.raises(InputShapeError, match=r"`noise_shape` must have one entry per input axis"):
        layer(torch.randn(4, 6, 8), training=True)


def test_dropout_seed_repeats_its_masks_and_rate_one_gives_zeros():
    x = torch.randn(5, 8)
    first, second = Dropout(0.5, seed=3), Dropout(0.5, seed=3)
    assert torch.equal(first(x, training=True), second(x, training=True))
    assert not torch.equal(first(x, training=True), first(x, training=True))  # the generator moves on
    x.requires_grad_(True)
    y = Dropout(1.0)(x, training=True)
    assert torch.equal(y, torch.zeros_like(x))
    y.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    assert Dropout(0.0)(x, training=True) is x


@pytest.mark.parametrize("cls, data_format, shape, mask_shape", [
    (SpatialDropout1D, None, (3, 9, 5), (3, 1, 5)),
    (SpatialDropout2D, "channels_last", (2, 5, 6, 7), (2, 1, 1, 7)),
    (SpatialDropout2D, "channels_first", (2, 7, 5, 6), (2, 7, 1, 1)),
    (SpatialDropout3D, "channels_last", (2, 3, 4, 5, 7), (2, 1, 1, 1, 7)),
    (SpatialDropout3D, "channels_first", (2, 7, 3, 4, 5), (2, 7, 1, 1, 1)),
])
def test_spatial_dropout_drops_whole_channels(cls, data_format, shape, mask_shape):
    layer = cls(0.5) if data_format is None else cls(0.5, data_format=data_format)
    x = torch.randn(*shape)
    y = layer(x, training=True)
    assert layer.last_noise.shape == mask_shape
    torch.testing.assert_close(y, x * layer.last_noise * 2.0)


def test_spatial_dropout_config_is_keras_s():
    assert SpatialDropout1D(0.2, seed=1, name="s").get_config() == {"rate": 0.2, "seed": 1, "name": "s", "dtype": "float32"}
    config = SpatialDropout2D(0.2, name="t").get_config()
    assert config == {"rate": 0.2, "seed": None, "name": "t", "dtype": "float32", "data_format": "channels_last"}
    with pytest.raises(TypeError, match="abstract"):
        BaseSpatialDropout(0.2)
    with pytest.raises(ArgumentTypeError, match="unrecognized keyword arguments"):
        SpatialDropout1D(0.2, data_format="channels_last")  # Keras's 1-D version has none


def test_gaussian_noise_adds_stddev_times_its_draw():
    layer = GaussianNoise(0.25)
    x = torch.randn(200, 50)
    y = layer(x, training=True)
    torch.testing.assert_close(y, x + 0.25 * layer.last_noise)
    z = layer.last_noise
    assert abs(z.mean().item()) < 0.02 and abs(z.std().item() - 1.0) < 0.02  # 10000 draws: ~2 and ~3 standard errors


def test_gaussian_dropout_multiplies_by_one_centred_noise():
    rate = 0.3
    layer = GaussianDropout(rate)
    x = torch.randn(7, 9, dtype=torch.float64)
    y = GaussianDropout(rate, dtype="float64")(x, training=True)
    assert y.dtype == torch.float64
    y = layer(x.float(), training=True)
    torch.testing.assert_close(y, x.float() * (1 + math.sqrt(rate / (1 - rate)) * layer.last_noise))
    with pytest.raises(ArgumentError, match=r"a training call needs `rate` < 1"):
        GaussianDropout(1.0)(x.float(), training=True)


def test_alpha_dropout_keeps_mean_and_variance_of_standard_inputs():
    """The defining property (Klambauer et al., 2017): zero mean, unit variance inputs keep them."""
    layer = AlphaDropout(0.3, seed=0)
    x = torch.randn(400, 500, generator=torch.Generator().manual_seed(1))
    y = layer(x, training=True)
    assert abs(y.mean().item()) < 0.01 and abs(y.var().item() - 1.0) < 0.02
    alpha_p = -1.6732632423543772 * 1.0507009873554805
    a = ((1 - 0.3) * (1 + 0.3 * alpha_p**2)) ** -0.5
    b = -a * alpha_p * 0.3
    keep = layer.last_noise
    torch.testing.assert_close(y, a * torch.where(keep, x, torch.full_like(x, alpha_p)) + b)


def test_activity_regularization_adds_its_loss_per_sample():
    layer = ActivityRegularization(l1=0.1, l2=0.02)
    x = torch.randn(4, 3, 5)
    assert layer(x) is x
    (loss,) = layer.losses
    torch.testing.assert_close(loss, (0.1 * x.abs().sum() + 0.02 * (x**2).sum()) / 4)
    config = layer.get_config()
    assert config["l1"] == 0.1 and config["l2"] == 0.02 and "activity_regularizer" not in config
    assert ActivityRegularization.from_config(config).get_config() == config
    with pytest.raises(ArgumentTypeError, match="`activity_regularizer` is set by `l1` and `l2`"):
        ActivityRegularization(activity_regularizer="l2")


def test_masks_pass_through():
    mask = torch.tensor([[True, False, True]])
    for layer in (Dropout(0.5), SpatialDropout1D(0.5), GaussianNoise(0.1), GaussianDropout(0.1), AlphaDropout(0.1), ActivityRegularization()):
        assert layer.compute_mask(torch.randn(1, 3, 2), mask) is mask


@pytest.mark.parametrize("make", [lambda: Dropout(0.3, noise_shape=(None, 1, 5)), lambda: AlphaDropout(0.2), lambda: SpatialDropout1D(0.3)],
                         ids=["dropout", "alpha-dropout", "spatial1d"])
def test_onnx_graph_is_the_identity(tmp_path, make):
    from xlayers.onnx import export

    layer = make()
    x = torch.randn(3, 4, 5)
    layer(x, training=False)
    result = export(layer, x, tmp_path / "m.onnx", verbose=False)
    assert result.node_counts == {"Identity": 1}, result.node_counts

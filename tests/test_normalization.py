"""Normalization layers: the checklist, each formula against its definition written out in
numpy (float64), Keras's moving-average rule, frozen layers, masks, Keras's configuration
spelling, views without copies, and the exported ONNX node types.

Keras equivalence (axes, groups, training, masks, frozen layers, moving statistics after the
calls) is registry data: `conformance/cases/normalization.py`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conformance.testing import check_layer
from xlayers import BatchNormalization, GroupNormalization, LayerNormalization, RMSNormalization, UnitNormalization
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError
from xlayers.layers.normalization import channels_first_view


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()


def _randomized(layer, seed: int = 0):
    """Signed random gamma/beta and positive moving statistics (a built layer)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for entry in layer.walk_weights():
            value = torch.randn(entry.parameter.shape, generator=generator, dtype=torch.float64)
            if entry.path == "moving_variance":
                value = value.abs() + 0.2
            entry.parameter.copy_(value)
    return layer


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


# -- checklist ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, shape, weights",
    [
        (lambda: BatchNormalization(), (2, 7, 9, 5), {"gamma": (5,), "beta": (5,), "moving_mean": (5,), "moving_variance": (5,)}),
        (lambda: BatchNormalization(axis=1, center=False), (2, 5, 7), {"gamma": (5,), "moving_mean": (5,), "moving_variance": (5,)}),
        (lambda: LayerNormalization(axis=[1, 2]), (2, 3, 4, 5), {"gamma": (3, 4), "beta": (3, 4)}),
        (lambda: LayerNormalization(rms_scaling=True), (2, 3, 5), {"gamma": (5,)}),
        (lambda: GroupNormalization(groups=3), (2, 7, 6), {"gamma": (6,), "beta": (6,)}),
        (lambda: UnitNormalization(axis=[1, 2]), (2, 3, 4, 5), {}),
        (lambda: RMSNormalization(axis=[-2, -1]), (2, 3, 4, 5), {"scale": (4, 5)}),
    ],
    ids=["bn", "bn-axis1-nocenter", "ln-axes", "ln-rms-scaling", "gn", "unit", "rms-axes"],
)
@pytest.mark.filterwarnings("ignore:`rms_scaling=True` is deprecated:DeprecationWarning")
def test_checklist(make, shape, weights):
    check_layer(make(), shape, weights)


# -- BatchNormalization --------------------------------------------------------------------


def test_batch_norm_inference_is_the_formula_with_moving_statistics():
    layer = _randomized(BatchNormalization(epsilon=0.01, input_shape=(7, 9, 5))).eval()
    x = torch.randn(2, 7, 9, 5)
    expected = (_np(x) - _np(layer.moving_mean)) / np.sqrt(_np(layer.moving_variance) + 0.01) * _np(layer.gamma) + _np(layer.beta)
    np.testing.assert_allclose(_np(layer(x)), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(layer(x, training=False)), expected, rtol=1e-5, atol=1e-5)


def test_batch_norm_training_uses_biased_batch_moments_and_keras_momentum():
    layer = _randomized(BatchNormalization(axis=1, momentum=0.75, input_shape=(4, 6, 5)))
    mean0, var0 = _np(layer.moving_mean).copy(), _np(layer.moving_variance).copy()
    x = torch.randn(3, 4, 6, 5) * 2 + 0.5
    y = layer(x, training=True)
    a = _np(x)
    mean, var = a.mean(axis=(0, 2, 3)), a.var(axis=(0, 2, 3))  # numpy's var is the biased one
    shape = (1, 4, 1, 1)
    expected = (a - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + 1e-3) * _np(layer.gamma).reshape(shape) + _np(layer.beta).reshape(shape)
    np.testing.assert_allclose(_np(y), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(_np(layer.moving_mean), mean0 * 0.75 + mean * 0.25, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(layer.moving_variance), var0 * 0.75 + var * 0.25, rtol=1e-5, atol=1e-6)


def test_batch_norm_frozen_runs_in_inference_mode_and_keeps_its_statistics():
    layer = _randomized(BatchNormalization(input_shape=(5, 3)))
    layer.trainable = False
    before = [w.detach().clone() for w in layer.weights]
    x = torch.randn(4, 5, 3)
    assert torch.equal(layer(x, training=True), layer(x, training=False))
    assert all(torch.equal(a, b) for a, b in zip(before, layer.weights))
    assert layer.trainable_weights == []


def test_batch_norm_moving_statistics_take_no_gradient_and_are_not_updated_in_inference():
    layer = _randomized(BatchNormalization(input_shape=(3,))).eval()
    before = layer.moving_mean.detach().clone()
    layer(torch.randn(6, 3)).sum().backward()
    assert layer.moving_mean.grad is None and layer.moving_variance.grad is None
    assert torch.equal(layer.moving_mean, before)
    assert [w.shape for w in layer.non_trainable_weights] == [torch.Size([3]), torch.Size([3])]


def test_batch_norm_masked_training_moments():
    layer = _randomized(BatchNormalization(momentum=0.5, input_shape=(6, 4)))
    mean0 = _np(layer.moving_mean).copy()
    x = torch.randn(3, 6, 4)
    mask = torch.rand(3, 6) > 0.4
    mask[0, 0] = True
    y = layer(x, training=True, mask=mask)
    a, m = _np(x), mask.numpy()
    rows = a[m]  # (count, 4): the positions the mask keeps
    mean, var = rows.mean(0), rows.var(0)
    expected = (a - mean) / np.sqrt(var + 1e-3) * _np(layer.gamma) + _np(layer.beta)
    np.testing.assert_allclose(_np(y), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(_np(layer.moving_mean), mean0 * 0.5 + mean * 0.5, rtol=1e-5, atol=1e-5)


def test_batch_norm_one_value_per_channel_in_training():
    layer = _randomized(BatchNormalization(momentum=0.0, input_shape=(4,)))
    x = torch.randn(1, 4)
    y = layer(x, training=True)  # Keras: mean = x, variance = 0 -> beta
    torch.testing.assert_close(y, layer.beta.detach().expand(1, 4), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(layer.moving_mean.detach(), x[0])
    assert torch.equal(layer.moving_variance.detach(), torch.zeros(4))


def test_batch_norm_config_is_keras_spelling_and_round_trips():
    layer = BatchNormalization(axis=1, momentum=0.9, gamma_regularizer="l2", beta_constraint="non_neg", name="bn")
    config = layer.get_config()
    assert {"axis", "momentum", "epsilon", "center", "scale", "moving_mean_initializer", "moving_variance_initializer",
            "synchronized", "renorm", "renorm_clipping", "renorm_momentum"} <= set(config)
    assert "moving_mean_regularizer" not in config and "moving_variance_constraint" not in config
    assert BatchNormalization.from_config(json.loads(json.dumps(config))).get_config() == config


def test_batch_norm_regularizer_loss_and_constraint():
    layer = BatchNormalization(gamma_regularizer={"class_name": "L2", "config": {"l2": 0.5}}, beta_constraint="non_neg", input_shape=(3,))
    with torch.no_grad():
        layer.gamma.copy_(torch.tensor([1.0, 2.0, 3.0]))
        layer.beta.copy_(torch.tensor([-1.0, 2.0, -3.0]))
    (loss,) = layer.losses
    assert loss.item() == pytest.approx(0.5 * 14.0)
    layer.apply_constraints()
    assert layer.beta.tolist() == [0.0, 2.0, 0.0]


def test_batch_norm_refuses():
    with pytest.raises(ArgumentError, match=r"^`BatchNormalization` layer 'b': batch renormalization is not supported"):
        BatchNormalization(renorm_clipping={"rmax": 3.0}, name="b")
    with pytest.raises(ArgumentTypeError, match=r"`momentum` must be a number\. Received: momentum='high'\."):
        BatchNormalization(momentum="high")
    with pytest.raises(ArgumentTypeError, match=r"`axis` must be an int\. Received: axis=\[1, 2\]\."):
        BatchNormalization(axis=[1, 2])
    layer = BatchNormalization(input_shape=(5, 3))
    with pytest.raises(InputShapeError, match=r"expected an input of rank 3"):
        layer(torch.randn(2, 3))


# -- views without copies ------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 7, 9, 5), (2, 3, 4, 6, 5), (3, 8, 5), (2, 3, 4, 2, 3, 5)], ids=["4d", "5d", "3d", "6d"])
def test_channels_last_view_shares_memory_in_torch_channels_last_layout(shape):
    x = torch.randn(*shape)
    view, back = channels_first_view(x, x.ndim - 1)
    assert view.data_ptr() == x.data_ptr() and view.shape[1] == shape[-1]
    layout = torch.channels_last_3d if view.ndim == 5 else torch.channels_last
    assert view.is_contiguous(memory_format=layout)
    restored = back(view)
    assert restored.data_ptr() == x.data_ptr() and torch.equal(restored, x)


@pytest.mark.parametrize("make", [BatchNormalization, lambda: GroupNormalization(groups=5)], ids=["bn", "gn"])
def test_channels_last_output_is_contiguous_without_a_copy_of_the_input(make):
    layer = make()
    x = torch.randn(2, 7, 9, 10)
    with torch.no_grad():
        y = layer(x)
    assert y.is_contiguous()  # torch's channels_last kernel wrote NHWC memory directly


# -- LayerNormalization --------------------------------------------------------------------


def test_layer_norm_non_trailing_axis_is_the_formula():
    layer = _randomized(LayerNormalization(axis=1, epsilon=0.01, input_shape=(4, 6)))
    x = torch.randn(3, 4, 6)
    a = _np(x)
    mean, var = a.mean(1, keepdims=True), a.var(1, keepdims=True)
    expected = (a - mean) / np.sqrt(var + 0.01) * _np(layer.gamma)[:, None] + _np(layer.beta)[:, None]
    np.testing.assert_allclose(_np(layer(x)), expected, rtol=1e-5, atol=1e-5)


def test_layer_norm_rms_scaling_is_keras_variance_scaling():
    with pytest.warns(DeprecationWarning):
        layer = _randomized(LayerNormalization(rms_scaling=True, input_shape=(6,)))
    x = torch.randn(4, 6) + 2.0
    a = _np(x)
    expected = a / np.sqrt(a.var(-1, keepdims=True) + 1e-3) * _np(layer.gamma)  # centred variance, no centring
    np.testing.assert_allclose(_np(layer(x)), expected, rtol=1e-5, atol=1e-5)
    assert [e.path for e in layer.walk_weights()] == ["gamma"]


def test_layer_norm_axis_is_a_sorted_list_once_built_as_in_keras():
    layer = LayerNormalization(axis=(3, 1))
    assert layer.get_config()["axis"] == [3, 1]
    layer(torch.randn(2, 3, 4, 5))
    assert layer.get_config()["axis"] == [1, 3]
    assert tuple(layer.gamma.shape) == (3, 5)
    clone = LayerNormalization.from_config(layer.get_config())
    clone.build_from_config(layer.get_build_config())
    assert tuple(clone.gamma.shape) == (3, 5)
    assert LayerNormalization().get_config()["axis"] == -1


def test_layer_norm_weight_shape_errors_name_the_axes():
    layer = LayerNormalization(axis=[1, 2], input_shape=(3, 4))
    with pytest.raises(ValueError, match=r"weight `gamma` must have shape \(features_0=3, features_1=4\)"):
        layer.set_weights([np.ones((4, 3)), np.zeros((3, 4))])


# -- GroupNormalization --------------------------------------------------------------------


def test_group_norm_groups_contiguous_channels():
    layer = _randomized(GroupNormalization(groups=2, input_shape=(5, 6)))
    x = torch.randn(3, 5, 6)
    a = _np(x).reshape(3, 5, 2, 3)  # channels [0, 3) and [3, 6)
    mean, var = a.mean(axis=(1, 3), keepdims=True), a.var(axis=(1, 3), keepdims=True)
    expected = ((a - mean) / np.sqrt(var + 1e-3)).reshape(3, 5, 6) * _np(layer.gamma) + _np(layer.beta)
    np.testing.assert_allclose(_np(layer(x)), expected, rtol=1e-5, atol=1e-5)


def test_group_norm_instance_normalization_reports_the_channel_count():
    layer = GroupNormalization(groups=-1)
    assert layer.get_config()["groups"] == -1
    layer(torch.randn(2, 5, 4))
    assert layer.get_config()["groups"] == 4  # as Keras, once built


def test_group_norm_refuses():
    with pytest.raises(ArgumentTypeError, match=r"`groups` must be an int"):
        GroupNormalization(groups=2.0)
    with pytest.raises(ArgumentError, match=r"`groups` must be a positive integer \(or -1 for instance normalization\)\. Received: groups=-2\."):
        GroupNormalization(groups=-2)


# -- UnitNormalization and RMSNormalization --------------------------------------------------


def test_unit_norm_is_the_formula_and_clips_at_zero():
    x = torch.randn(2, 3, 4, 5)
    a = _np(x)
    expected = a / np.sqrt((a**2).sum(axis=(1, 2), keepdims=True))
    np.testing.assert_allclose(_np(UnitNormalization(axis=[1, 2])(x)), expected, rtol=1e-5, atol=1e-6)
    zero = UnitNormalization()(torch.zeros(2, 3))
    assert torch.equal(zero, torch.zeros(2, 3))  # rsqrt(0) = inf clipped at 1e12, times 0


def test_rms_norm_non_trailing_axis_scales_along_that_axis():
    """The correct value of the case Keras 3.15 gets wrong (`rms_normalization/axis1-keras-bug-3x5x5`):
    Keras multiplies by `scale` along the last axis whatever `axis` is."""
    layer = _randomized(RMSNormalization(axis=1, epsilon=0.1, input_shape=(5, 5)))
    x = torch.randn(3, 5, 5)
    a = _np(x)
    expected = a / np.sqrt((a**2).mean(1, keepdims=True) + 0.1) * _np(layer.scale)[:, None]
    np.testing.assert_allclose(_np(layer(x)), expected, rtol=1e-5, atol=1e-5)
    assert not layer.supports_masking and layer.get_config()["axis"] == [1]


def test_rms_norm_takes_no_weight_arguments():
    with pytest.raises(TypeError, match=r"unrecognized keyword arguments \['scale_initializer'\]"):
        RMSNormalization(scale_initializer="zeros")


# -- ONNX -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, shape, op",
    [
        (lambda: BatchNormalization(), (2, 7, 9, 5), "BatchNormalization"),
        (lambda: BatchNormalization(axis=1), (2, 5, 7), "BatchNormalization"),
        (lambda: LayerNormalization(), (2, 7, 5), "LayerNormalization"),
        (lambda: LayerNormalization(axis=[1, 2]), (2, 7, 5), "LayerNormalization"),
    ],
    ids=["bn-nhwc", "bn-ncw", "ln", "ln-trailing-axes"],
)
def test_onnx_node_types(tmp_path, make, shape, op):
    from xlayers.onnx import export

    layer = make()
    layer(torch.randn(*shape))
    _randomized(layer)
    result = export(layer.eval(), torch.randn(*shape), tmp_path / "n.onnx", verbose=False)
    assert result.node_counts.get(op) == 1, result.node_counts
    assert not {"ReduceMean", "Sqrt", "Div"} & set(result.node_counts), result.node_counts  # not decomposed
    if op == "BatchNormalization" and len(shape) == 4:
        assert result.node_counts.get("Transpose") == 2 and "Reshape" not in result.node_counts, result.node_counts


def test_batch_norm_training_none_follows_the_module_mode():
    """torch's convention: a module trains until ``eval()``; ``training=`` wins when given."""
    layer = BatchNormalization()
    x = torch.randn(4, 5, 3) + 2.0
    layer(x)
    assert not torch.equal(layer.moving_mean, torch.zeros(3))  # trained: the moving mean moved
    layer.eval()
    before = layer.moving_mean.detach().clone()
    layer(x)
    assert torch.equal(layer.moving_mean, before)
    layer(x, training=True)
    assert not torch.equal(layer.moving_mean, before)

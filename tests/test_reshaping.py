"""Flatten, Reshape, Permute, RepeatVector, ZeroPadding1D/2D/3D, Cropping1D/2D/3D: the
checklist, values against numpy's definitions, views where there should be no copy, one
``F.pad`` for padding, no mask propagation, argument forms, and the exported ONNX nodes.

Keras equivalence (every argument form, both data formats, asymmetric values, odd sizes) is
registry data: `conformance/cases/reshaping.py`."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from conformance.testing import check_layer
from xlayers import (
    Cropping1D,
    Cropping2D,
    Cropping3D,
    Dense,
    Flatten,
    Permute,
    RepeatVector,
    Reshape,
    ZeroPadding1D,
    ZeroPadding2D,
    ZeroPadding3D,
)
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError
from xlayers.layers.reshaping import BaseCropping, BaseZeroPadding, normalize_pairs

PADDINGS = (ZeroPadding1D, ZeroPadding2D, ZeroPadding3D)
CROPPINGS = (Cropping1D, Cropping2D, Cropping3D)
SPATIAL = {1: (9,), 2: (7, 9), 3: (5, 6, 7)}
ASYMMETRIC = {1: (1, 3), 2: ((1, 2), (3, 0)), 3: ((1, 2), (0, 1), (2, 0))}


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()


def _shape(rank: int, data_format: str = "channels_last", channels: int = 3) -> tuple[int, ...]:
    return (2, *SPATIAL[rank], channels) if data_format == "channels_last" else (2, channels, *SPATIAL[rank])


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


# -- checklist ----------------------------------------------------------------------------------

CHECKLIST = [
    (Flatten(), (2, 5, 7, 3), (2, 105)),
    (Flatten(data_format="channels_first"), (2, 3, 5, 7), (2, 105)),
    (Reshape((5, -1, 3)), (2, 5, 7, 3), (2, 5, 7, 3)),
    (Permute((3, 1, 2)), (2, 5, 7, 3), (2, 3, 5, 7)),
    (RepeatVector(4), (2, 7), (2, 4, 7)),
    (ZeroPadding1D((1, 3)), (2, 9, 3), (2, 13, 3)),
    (ZeroPadding2D(((1, 2), (3, 0)), data_format="channels_first"), (2, 3, 7, 9), (2, 3, 10, 12)),
    (ZeroPadding3D(((1, 2), (0, 1), (2, 0))), (2, 5, 6, 7, 3), (2, 8, 7, 9, 3)),
    (Cropping1D((1, 3)), (2, 9, 3), (2, 5, 3)),
    (Cropping2D(((1, 2), (3, 0))), (2, 7, 9, 3), (2, 4, 6, 3)),
    (Cropping3D(((1, 2), (0, 1), (2, 0)), data_format="channels_first"), (2, 3, 5, 6, 7), (2, 3, 2, 5, 5)),
]


@pytest.mark.parametrize("layer, shape, expected", CHECKLIST, ids=lambda v: type(v).__name__ if not isinstance(v, tuple) else None)
def test_checklist(layer, shape, expected):
    outputs = check_layer(layer, shape, {})
    assert tuple(outputs.shape) == expected
    assert layer.compute_mask(outputs.detach(), torch.ones(shape[:2], dtype=torch.bool)) is None


# -- values against numpy's definitions ---------------------------------------------------------


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (3, 4, 7), (2, 3, 4, 5, 3), (3, 7)])
def test_flatten_is_channels_last_order(shape, data_format):
    x = torch.randn(shape, dtype=torch.float64)
    expected = _numpy(x)
    if data_format == "channels_first":
        expected = np.moveaxis(expected, 1, -1)  # Keras: channels last, then row-major
    np.testing.assert_array_equal(_numpy(Flatten(data_format=data_format)(x)), expected.reshape(shape[0], -1))


def test_flatten_rank1_adds_a_feature_axis():
    assert Flatten()(torch.arange(5.0)).shape == (5, 1)


def test_channels_first_flatten_then_dense_takes_the_channels_last_kernel():
    """The point of Flatten's data_format: the same Dense kernel serves both layouts."""
    nhwc = torch.randn(2, 5, 7, 3, dtype=torch.float64)
    dense = Dense(4, dtype="float64")
    last = dense(Flatten()(nhwc))
    first = dense(Flatten(data_format="channels_first")(nhwc.permute(0, 3, 1, 2)))
    torch.testing.assert_close(first, last, rtol=0, atol=0)


@pytest.mark.parametrize("target, shape", [((5, -1, 3), (2, 5, 7, 3)), ((-1, 5), (3, 35)), ((15,), (2, 3, 5)), ((0, 4), (2, 0, 3))])
def test_reshape_matches_numpy(target, shape):
    x = torch.randn(shape, dtype=torch.float64)
    np.testing.assert_array_equal(_numpy(Reshape(target)(x)), _numpy(x).reshape(shape[0], *target))


@pytest.mark.parametrize("dims", [(2, 1), (3, 1, 2), (2, 3, 1), (1, 4, 3, 2)])
def test_permute_matches_numpy(dims):
    x = torch.randn((2, 3, 4, 5, 7)[: len(dims) + 1], dtype=torch.float64)
    np.testing.assert_array_equal(_numpy(Permute(dims)(x)), np.transpose(_numpy(x), (0, *dims)))


def test_repeat_vector_matches_numpy_and_sums_its_gradient():
    x = torch.randn(2, 7, dtype=torch.float64, requires_grad=True)
    out = RepeatVector(3)(x)
    np.testing.assert_array_equal(_numpy(out), np.repeat(_numpy(x)[:, None, :], 3, axis=1))
    out.sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, 3.0))


def _spatial_axes(rank: int, data_format: str) -> list[int]:
    return list(range(1, rank + 1)) if data_format == "channels_last" else list(range(2, rank + 2))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("cls", PADDINGS, ids=lambda c: c.__name__)
def test_zero_padding_matches_numpy_pad(cls, data_format):
    rank = cls.rank
    x = torch.randn(_shape(rank, data_format), dtype=torch.float64)
    pairs = normalize_pairs(ASYMMETRIC[rank], rank, "padding")
    widths = [(0, 0)] * x.dim()
    for axis, pair in zip(_spatial_axes(rank, data_format), pairs):
        widths[axis] = pair
    out = cls(ASYMMETRIC[rank], data_format=data_format)(x)
    np.testing.assert_array_equal(_numpy(out), np.pad(_numpy(x), widths))


@pytest.mark.parametrize("cls, data_format", [
    (cls, data_format) for cls in CROPPINGS for data_format in ("channels_last", "channels_first")
    if cls.rank > 1 or data_format == "channels_last"  # Keras's Cropping1D has no data_format
], ids=lambda v: v.__name__ if isinstance(v, type) else v)
def test_cropping_matches_numpy_slicing(cls, data_format):
    rank = cls.rank
    x = torch.randn(_shape(rank, data_format), dtype=torch.float64)
    pairs = normalize_pairs(ASYMMETRIC[rank], rank, "cropping")
    index = [slice(None)] * x.dim()
    for axis, (before, after) in zip(_spatial_axes(rank, data_format), pairs):
        index[axis] = slice(before, x.shape[axis] - after)
    kwargs = {} if rank == 1 else {"data_format": data_format}
    out = cls(ASYMMETRIC[rank], **kwargs)(x)
    np.testing.assert_array_equal(_numpy(out), _numpy(x)[tuple(index)])


# -- views, not copies; one F.pad ----------------------------------------------------------------


def _same_storage(out: torch.Tensor, x: torch.Tensor) -> bool:
    return out.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()


@pytest.mark.parametrize("layer, shape", [
    (Flatten(), (2, 5, 7, 3)),
    (Flatten(data_format="channels_first"), (3, 7)),
    (Reshape((5, -1, 3)), (2, 5, 7, 3)),
    (Permute((3, 1, 2)), (2, 5, 7, 3)),
    (RepeatVector(3), (2, 7)),
    (Cropping1D((1, 3)), (2, 9, 3)),
    (Cropping2D(((1, 2), (3, 0)), data_format="channels_first"), (2, 3, 7, 9)),
    (Cropping3D(((1, 2), (0, 1), (2, 0))), (2, 5, 6, 7, 3)),
], ids=lambda v: type(v).__name__ if not isinstance(v, tuple) else None)
def test_views_share_the_input_storage(layer, shape):
    x = torch.randn(shape)
    out = layer(x)
    assert _same_storage(out, x)


def test_repeat_vector_is_a_broadcast_view():
    out = RepeatVector(3)(torch.randn(2, 7))
    assert out.stride() == (7, 0, 1)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("cls", PADDINGS, ids=lambda c: c.__name__)
def test_zero_padding_is_one_pad_and_nothing_else(cls, data_format):
    layer = cls(ASYMMETRIC[cls.rank], data_format=data_format)
    x = torch.randn(_shape(cls.rank, data_format))
    layer(x)
    with torch.no_grad(), torch.profiler.profile() as prof:
        layer(x)
    top = [e.name for e in prof.events() if e.cpu_parent is None and e.name.startswith("aten::")]
    assert top == ["aten::pad"], top  # its one copy of the input into the zeros is the output


# -- argument forms and errors ------------------------------------------------------------------


def test_keras_defaults():  # keras/src/layers/reshaping/{zero_padding,cropping}{1,2,3}d.py
    assert ZeroPadding1D().padding == (1, 1)
    assert ZeroPadding2D().padding == ((1, 1), (1, 1))
    assert ZeroPadding3D().padding == ((1, 1), (1, 1), (1, 1))
    assert Cropping1D().cropping == (1, 1)
    assert Cropping2D().cropping == ((0, 0), (0, 0))
    assert Cropping3D().cropping == ((1, 1), (1, 1), (1, 1))
    assert Flatten().data_format == "channels_last"


@pytest.mark.parametrize("rank, value, pairs", [
    (1, 2, ((2, 2),)),
    (1, (1, 3), ((1, 3),)),
    (1, [np.int64(0), 2], ((0, 2),)),
    (2, 2, ((2, 2), (2, 2))),
    (2, (2, 1), ((2, 2), (1, 1))),  # rank >= 2: a bare int per axis is symmetric
    (2, (0, (2, 1)), ((0, 0), (2, 1))),
    (2, [[1, 2], [3, 0]], ((1, 2), (3, 0))),  # as JSON gives it back
    (3, (1, (0, 2), 0), ((1, 1), (0, 2), (0, 0))),
])
def test_normalize_pairs(rank, value, pairs):
    assert normalize_pairs(value, rank, "padding") == pairs


@pytest.mark.parametrize("cls", PADDINGS + CROPPINGS, ids=lambda c: c.__name__)
def test_config_round_trips_through_json(cls):
    argument = "padding" if cls in PADDINGS else "cropping"
    kwargs = {argument: ASYMMETRIC[cls.rank]}
    if cls is not Cropping1D:
        kwargs["data_format"] = "channels_first"
    layer = cls(**kwargs)
    config = layer.get_config()
    expected_keys = {"name", "trainable", "dtype", argument} | ({"data_format"} if cls is not Cropping1D else set())
    assert set(config) == expected_keys
    assert cls.from_config(json.loads(json.dumps(config))).get_config() == config


def test_other_configs_round_trip_through_json():
    for layer in (Flatten(data_format="channels_first"), Reshape((5, -1, 3)), Permute((3, 1, 2)), RepeatVector(4)):
        config = layer.get_config()
        assert type(layer).from_config(json.loads(json.dumps(config))).get_config() == config


@pytest.mark.parametrize("make, error, message", [
    (lambda: ZeroPadding2D(-1), ArgumentError, "`padding` must be an int, or a tuple of 2 entries each an int or a (before, after) pair, of ints >= 0. Received: padding=-1."),
    (lambda: ZeroPadding2D(((1, 2, 3), 0)), ArgumentError, "Received: padding=((1, 2, 3), 0)."),
    (lambda: ZeroPadding1D(True), ArgumentTypeError, "`padding` must be an int or a (before, after) pair of ints >= 0. Received: padding=True."),
    (lambda: Cropping3D((1, 1)), ArgumentError, "`cropping` must be an int, or a tuple of 3 entries"),
    (lambda: Cropping2D(((1, 2), (0.5, 1))), ArgumentTypeError, "Received: cropping=((1, 2), (0.5, 1))."),
    (lambda: Reshape(5), ArgumentTypeError, "`target_shape` must be a tuple of ints"),
    (lambda: Permute((1, 3)), ArgumentError, "`dims` must be a permutation of 1 .. n"),
    (lambda: RepeatVector(2.0), ArgumentTypeError, "`n` must be a positive integer. Received: n=2.0."),
    (lambda: Flatten(data_format="NHWC"), ArgumentError, "`data_format` must be one of ['channels_last', 'channels_first']. Received: data_format='NHWC'."),
])
def test_argument_errors(make, error, message):
    with pytest.raises(error, match=r"^`\w+` layer '\w+': .*" + re.escape(message)):
        make()


@pytest.mark.parametrize("base", [BaseZeroPadding, BaseCropping], ids=lambda c: c.__name__)
def test_bases_are_abstract(base):
    with pytest.raises(TypeError, match=rf"`{base.__name__}` is abstract"):
        base(1)


def test_cropping_refuses_a_smaller_input_after_build():
    layer = Cropping2D(((1, 2), (3, 0)))
    layer(torch.randn(2, 7, 9, 3))
    with pytest.raises(InputShapeError, match=re.escape("Received: cropping=((1, 2), (3, 0)), input shape=(2, 3, 9, 3).")):
        layer(torch.randn(2, 3, 9, 3))


def test_output_shapes_with_unknown_sizes():
    assert Flatten().compute_output_shape((None, 5, None, 3)) == (None, None)
    assert Reshape((5, -1)).compute_output_shape((None, None, 3)) == (None, 5, None)
    assert Reshape((5, -1)).compute_output_shape((None, 15, 3)) == (None, 5, 9)
    assert ZeroPadding2D(((1, 2), (3, 0))).compute_output_shape((None, None, 7, 3)) == (None, None, 10, 3)
    assert Cropping2D(((1, 2), (3, 0)), data_format="channels_first").compute_output_shape((None, 3, 7, None)) == (None, 3, 4, None)
    assert Permute((2, 1)).compute_output_shape((None, 5, None)) == (None, None, 5)
    assert RepeatVector(3).compute_output_shape((None, 7)) == (None, 3, 7)


# -- ONNX ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer, shape, nodes", [
    (Flatten(), (2, 5, 7, 3), {"Reshape": 1}),
    (Flatten(data_format="channels_first"), (2, 3, 5, 7), {"Transpose": 1, "Reshape": 1}),
    (Reshape((5, -1, 3)), (2, 5, 7, 3), {"Reshape": 1}),
    (Permute((3, 1, 2)), (2, 5, 7, 3), {"Transpose": 1}),
    (RepeatVector(3), (2, 7), {"Unsqueeze": 1, "Expand": 1}),
    (ZeroPadding2D(((1, 2), (3, 0))), (2, 7, 9, 3), {"Pad": 1}),
    (ZeroPadding3D(((1, 2), (0, 1), (2, 0)), data_format="channels_first"), (2, 3, 5, 6, 7), {"Pad": 1}),
    (Cropping2D(((1, 2), (3, 0))), (2, 7, 9, 3), {"Slice": 2}),
], ids=lambda v: type(v).__name__ if not isinstance(v, (tuple, dict)) else None)
def test_onnx_nodes_and_dynamic_batch(tmp_path, layer, shape, nodes):
    from xlayers.onnx import export

    x = torch.randn(shape)
    layer(x)
    result = export(layer, x, tmp_path / "layer.onnx", verbose=False)
    assert result.node_counts == nodes
    assert {s[0] for s in result.checked_shapes} - {shape[0]}, result.checked_shapes  # checked at other batch sizes
    assert all(s[1:] == shape[1:] for s in result.checked_shapes)

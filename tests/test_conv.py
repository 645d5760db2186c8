"""Conv1D, Conv2D, Conv3D (one `BaseConv` generic over the rank): the checklist, the torch
reference (``F.pad`` + unpadded ``F.conv*d``), no layout copy for channels-last inputs, and
rank-generic argument checks. The transposed, depthwise and separable members: references from
their definitions (the adjoint of TF's padded conv; per-channel convolutions), output sizes,
crops, views, configs, errors and their ONNX graphs (one ``ConvTranspose``; one grouped ``Conv``;
two ``Conv``s).

Keras equivalence (padding x strides x dilation x groups x data_format x odd/even sizes) is
registry data: `conformance/cases/conv.py`."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from conformance.testing import check_layer
from xlayers import (
    Conv1D,
    Conv1DTranspose,
    Conv2D,
    Conv2DTranspose,
    Conv3D,
    Conv3DTranspose,
    DepthwiseConv1D,
    DepthwiseConv2D,
    SeparableConv1D,
    SeparableConv2D,
)
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError
from xlayers.layers.conv import BaseConv, BaseConvTranspose, conv_layout, grouped_kernel, kernel_axes
from xlayers.padding import same_padding

CONVS = (Conv1D, Conv2D, Conv3D)


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    # check_layer compiles each new layer; dynamo caches them all on the one `Layer.forward`
    # code object, whose recompile limit (8) a fullgraph compile may not exceed.
    torch._dynamo.reset()
# Unequal, odd and even spatial sizes per rank.
SPATIAL = {1: (11,), 2: (8, 9), 3: (5, 6, 7)}


def _shape(cls: type[BaseConv], channels: int, data_format: str = "channels_last", batch: int = 2) -> tuple[int, ...]:
    spatial = SPATIAL[cls.rank]
    return (batch, *spatial, channels) if data_format == "channels_last" else (batch, channels, *spatial)


def _reference(layer: BaseConv, x: torch.Tensor) -> torch.Tensor:
    """``F.pad`` (TF's pads, or causal's) then an unpadded torch conv, on a channels-first copy."""
    rank = layer.rank
    channels_last = layer.data_format == "channels_last"
    x = x.permute(0, rank + 1, *range(1, rank + 1)).contiguous() if channels_last else x
    if layer.padding == "same":
        pads = same_padding(tuple(x.shape[2:]), layer.kernel_size, layer.strides, layer.dilation_rate)
    elif layer.padding == "causal":
        pads = ((layer.dilation_rate[0] * (layer.kernel_size[0] - 1), 0),)
    else:
        pads = ((0, 0),) * rank
    flat = [p for pair in reversed(pads) for p in pair]
    kernel = layer.kernel.permute(rank + 1, rank, *range(rank))  # (*k, in, out) -> (out, in, *k)
    bias = layer.bias if layer.use_bias else None
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[rank]
    y = fn(F.pad(x, flat), kernel, bias, layer.strides, 0, layer.dilation_rate, layer.groups)
    return y.permute(0, *range(2, rank + 2), 1) if channels_last else y


@pytest.mark.parametrize("cls", CONVS, ids=lambda c: c.__name__)
def test_checklist_same_asymmetric(cls):
    layer = cls(6, 3, strides=2, padding="same")
    check_layer(layer, _shape(cls, 4), {"kernel": (3,) * cls.rank + (4, 6), "bias": (6,)})


@pytest.mark.parametrize("cls", CONVS, ids=lambda c: c.__name__)
def test_checklist_channels_first_groups(cls):
    kernel_size = (2, 3, 2)[3 - cls.rank :]
    layer = cls(6, kernel_size, padding="same", data_format="channels_first", groups=2, use_bias=False)
    check_layer(layer, _shape(cls, 4, "channels_first"), {"kernel": (*kernel_size, 2, 6)})


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("strides, dilation", [(1, 1), (2, 1), (1, 3)])
def test_conv1d_causal_checklist(strides, dilation, data_format):
    layer = Conv1D(6, 3, strides=strides, dilation_rate=dilation, padding="causal", data_format=data_format,
                   lora_rank=2)
    weights = {"kernel": (3, 4, 6), "bias": (6,), "lora_kernel_a": (3, 4, 2), "lora_kernel_b": (2, 6)}
    outputs = check_layer(layer, _shape(Conv1D, 4, data_format), weights)
    steps = outputs.shape[1] if data_format == "channels_last" else outputs.shape[2]
    assert steps == -(-SPATIAL[1][0] // strides)  # ceil(steps / strides), as 'same'


def test_conv1d_causal_sees_no_future_step():
    layer = Conv1D(3, 4, dilation_rate=2, padding="causal")
    x = torch.randn(2, 13, 5)
    later = x.clone()
    later[:, 7:] = torch.randn(2, 6, 5)
    torch.testing.assert_close(layer(later)[:, :7], layer(x)[:, :7], rtol=0, atol=0)


CONFIGS = [
    dict(padding="valid"),
    dict(padding="same", strides=2),
    dict(padding="same", dilation_rate=2, kernel_size=2),
    dict(padding="same", strides=(2, 1, 3), groups=2),
    dict(padding="causal", strides=2),
    dict(padding="causal", dilation_rate=3, groups=2),
]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize(
    "cls, config",
    [(cls, c) for cls in CONVS for c in CONFIGS if cls.rank == 1 or c["padding"] != "causal"],  # 'causal' is rank 1's
    ids=lambda v: v.__name__ if isinstance(v, type) else "-".join(f"{k}={x}" for k, x in v.items()),
)
def test_matches_torch_reference(cls, config, data_format):
    config = {"kernel_size": 3, **config}
    if isinstance(config.get("strides"), tuple):
        config["strides"] = config["strides"][: cls.rank]
    layer = cls(6, data_format=data_format, dtype="float64", **config)
    x = torch.randn(_shape(cls, 4, data_format), dtype=torch.float64)
    torch.testing.assert_close(layer(x), _reference(layer, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "cls, padding, strides",
    [(cls, p, s) for cls in CONVS for p, s in [("valid", 1), ("same", 1), ("same", 2)]]
    + [(Conv1D, "causal", 1), (Conv1D, "causal", 2)],
    ids=lambda v: v.__name__ if isinstance(v, type) else str(v),
)
def test_channels_last_input_reaches_conv_without_layout_copy(cls, padding, strides):
    """The channels-last input goes to aten::convolution as a channels_last view: no copy of
    input size on the way in (the 'same'/'causal' crop copies the smaller output only)."""
    layer = cls(6, 3, padding=padding, strides=strides)
    x = torch.randn(_shape(cls, 8, batch=2))
    layer(x)
    with torch.no_grad(), torch.profiler.profile(record_shapes=True) as prof:
        out = layer(x)
    copy_ops = ("aten::copy_", "aten::contiguous", "aten::clone", "aten::constant_pad_nd")
    copies = [e for e in prof.events() if e.name in copy_ops]
    input_sized = [e for e in copies if any(s and torch.Size(s).numel() == x.numel() for s in e.input_shapes)]
    assert not input_sized, [(e.name, e.input_shapes) for e in input_sized]
    assert any(e.name == "aten::convolution" for e in prof.events())
    assert out.is_contiguous()  # channels-last out, no copy back either


@pytest.mark.parametrize("cls", CONVS, ids=lambda c: c.__name__)
def test_layout_and_kernel_view(cls):
    assert cls.LAYOUT == conv_layout(cls.rank)
    kernel = cls.LAYOUT[0]
    assert kernel.axes == (*("kd", "kh", "kw")[3 - cls.rank :], "in", "out")
    assert kernel.order("torch") == ("out", "in", *kernel.axes[: cls.rank])
    layer = cls(6, 3, groups=2, input_shape=_shape(cls, 4)[1:])
    view = layer.weight_view("kernel", "torch")
    assert view.shape == (6, 2, *(3,) * cls.rank)
    assert view.data_ptr() == layer.kernel.data_ptr()  # a permute view, no copy


@pytest.mark.parametrize("cls", CONVS, ids=lambda c: c.__name__)
def test_config_keys_and_round_trip(cls):
    layer = cls(6, 3, strides=2, padding="same", data_format="channels_first", groups=3, lora_rank=2)
    config = layer.get_config()
    assert set(config) == {
        "name", "trainable", "dtype", "filters", "kernel_size", "strides", "padding", "data_format",
        "dilation_rate", "groups", "activation", "use_bias", "kernel_initializer", "bias_initializer",
        "kernel_regularizer", "bias_regularizer", "kernel_constraint", "bias_constraint", "lora_rank", "lora_alpha",
    }
    assert config["kernel_size"] == (3,) * cls.rank and config["strides"] == (2,) * cls.rank
    assert config["dilation_rate"] == (1,) * cls.rank
    assert cls.from_config(config).get_config() == config


def _error_cases(cls):
    rank, name = cls.rank, cls.__name__
    label = rf"^`{name}` layer '{name.lower()}(_\d+)?': "
    threes, twos = (3,) * (rank + 1), (2,) * rank
    cases = [
        ("filters-zero", dict(filters=0, kernel_size=3), ArgumentError,
         "`filters` must be a positive integer. Received: filters=0."),
        ("groups-zero", dict(filters=4, kernel_size=3, groups=0), ArgumentError,
         "`groups` must be a positive integer. Received: groups=0."),
        ("filters-groups", dict(filters=4, kernel_size=3, groups=3), ArgumentError,
         "`filters` must be divisible by `groups`. Received: filters=4, groups=3."),
        ("kernel-size-length", dict(filters=4, kernel_size=threes), ArgumentError,
         f"`kernel_size` must be a positive int or a tuple of {rank} positive ints. Received: kernel_size={threes}."),
        ("strides-zero", dict(filters=4, kernel_size=3, strides=0), ArgumentError,
         f"`strides` must be a positive int or a tuple of {rank} positive ints. Received: strides=0."),
        ("kernel-size-str", dict(filters=4, kernel_size="3"), ArgumentTypeError,
         f"`kernel_size` must be a positive int or a tuple of {rank} positive ints. Received: kernel_size='3'."),
        ("strides-and-dilation", dict(filters=4, kernel_size=3, strides=2, dilation_rate=2), ArgumentError,
         f"`strides` > 1 cannot be combined with `dilation_rate` > 1. Received: strides={twos}, dilation_rate={twos}."),
        ("padding-full", dict(filters=4, kernel_size=3, padding="full"), ArgumentError,
         f"`padding` must be one of {('valid', 'same', 'causal')[: 3 if rank == 1 else 2]}. Received: padding='full'."),
        ("data-format", dict(filters=4, kernel_size=3, data_format="nhwc"), ArgumentError,
         "`data_format` must be one of ['channels_last', 'channels_first']. Received: data_format='nhwc'."),
    ]
    if rank > 1:  # Keras allows 'causal' for rank 1 only
        cases.append(("padding-causal", dict(filters=4, kernel_size=3, padding="causal"), ArgumentError,
                      "`padding` must be one of ('valid', 'same'). Received: padding='causal'."))
    return [
        pytest.param(cls, kwargs, error, label + re.escape(message) + "$", id=f"{name}-{case_id}")
        for case_id, kwargs, error, message in cases
    ]


@pytest.mark.parametrize("cls, kwargs, error, message", [case for c in CONVS for case in _error_cases(c)])
def test_argument_errors(cls, kwargs, error, message):
    with pytest.raises(error, match=message):
        cls(**kwargs)


@pytest.mark.parametrize("cls", CONVS, ids=lambda c: c.__name__)
def test_input_errors(cls):
    rank, name = cls.rank, cls.__name__
    label = re.escape(f"`{name}` layer '{name.lower()}': ")
    layer = cls(4, 5, name=name.lower())
    message = f"expected an input of rank {rank + 2}. Received: input shape=(2, 8)."
    with pytest.raises(InputShapeError, match=label + re.escape(message) + "$"):
        layer(torch.randn(2, 8))
    small = (1, *(3,) * rank, 2)
    message = (
        f"the input's spatial size is smaller than the dilated kernel {(5,) * rank} (dilation {(1,) * rank}) "
        f"with padding='valid'. Received: input shape={small}."
    )
    with pytest.raises(InputShapeError, match=label + re.escape(message) + "$"):
        layer(torch.randn(small))
    assert not layer.built  # the failed build left no weights and no input spec behind
    layer(torch.randn(_shape(cls, 3)))  # builds with 3 channels
    with pytest.raises(InputShapeError, match=label + re.escape("expected axis -1 of the input to have size 3")):
        layer(torch.randn(_shape(cls, 5)))
    message = "the input channels must be known and divisible by `groups`. Received: groups=2, input_shape="
    with pytest.raises(ArgumentError, match=re.escape(message)):
        cls(4, 3, groups=2)(torch.randn(_shape(cls, 3)))


def test_base_conv_is_abstract():
    with pytest.raises(TypeError, match=r"`BaseConv` is abstract"):
        BaseConv(4, 3)


# -- transposed, depthwise and separable convolutions ----------------------------------------------

TRANSPOSES = (Conv1DTranspose, Conv2DTranspose, Conv3DTranspose)
DEPTHWISES = (DepthwiseConv1D, DepthwiseConv2D)
SEPARABLES = (SeparableConv1D, SeparableConv2D)


def _to_first(layer, x):
    rank = layer.rank
    return x.permute(0, rank + 1, *range(1, rank + 1)) if layer.data_format == "channels_last" else x


def _to_layer_format(layer, y):
    rank = layer.rank
    return y.permute(0, *range(2, rank + 2), 1) if layer.data_format == "channels_last" else y


def _transpose_reference(layer: BaseConvTranspose, x: torch.Tensor) -> torch.Tensor:
    """TF's definition: the transposed conv is the adjoint (input gradient) of the forward conv of
    an output-sized input, padded as `xlayers.padding.same_padding` says (or not at all for
    'valid'), at Keras's output size; plus the bias."""
    rank = layer.rank
    x = _to_first(layer, x)
    out_sizes = layer.output_spatial(tuple(x.shape[2:]))
    z = torch.zeros(x.shape[0], layer.filters, *out_sizes, dtype=x.dtype, requires_grad=True)
    if layer.padding == "same":
        pads = same_padding(out_sizes, layer.kernel_size, layer.strides, layer.dilation_rate)
    else:
        pads = ((0, 0),) * rank
    flat = [p for pair in reversed(pads) for p in pair]
    # forward conv: filters -> in channels; Keras's (*k, out, in) is exactly its (*k, in', out') kernel
    kernel = layer.kernel.detach().permute(rank + 1, rank, *range(rank))  # (in, out, *k): conv weight (C_out', C_in', *k)
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[rank]
    forward = fn(F.pad(z, flat), kernel, None, layer.strides, 0, layer.dilation_rate)
    assert tuple(forward.shape[2:]) == tuple(x.shape[2:]), "TF would refuse this output size"
    (y,) = torch.autograd.grad(forward, z, grad_outputs=x)
    if layer.use_bias:
        y = y + layer.bias.detach().view(-1, *(1,) * rank)
    return _to_layer_format(layer, y)


TRANSPOSE_CONFIGS = [
    dict(padding="same", strides=2, kernel_size=3),  # TF crops (0, 1): the odd crop at the end
    dict(padding="same", strides=2, kernel_size=4),  # (1, 1)
    dict(padding="same", strides=3, kernel_size=2),  # the output reaches past the full output
    dict(padding="same", strides=1, kernel_size=2, dilation_rate=3),
    dict(padding="same", strides=2, kernel_size=3, output_padding=0),
    dict(padding="same", strides=3, kernel_size=4, output_padding=2),
    dict(padding="valid", strides=2, kernel_size=3),
    dict(padding="valid", strides=3, kernel_size=2),  # stride > kernel: Keras's default output_padding 1
    dict(padding="valid", strides=3, kernel_size=3, output_padding=2),
    dict(padding="valid", strides=1, kernel_size=3, dilation_rate=2),
]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize(
    "cls, config", [(cls, c) for cls in TRANSPOSES for c in TRANSPOSE_CONFIGS],
    ids=lambda v: v.__name__ if isinstance(v, type) else "-".join(f"{k}={x}" for k, x in v.items()),
)
def test_transpose_matches_the_adjoint_of_tf_conv(cls, config, data_format):
    layer = cls(5, data_format=data_format, dtype="float64", bias_initializer="random_normal", **config)
    x = torch.randn(_shape(cls, 3, data_format), dtype=torch.float64)
    torch.testing.assert_close(layer(x), _transpose_reference(layer, x), rtol=1e-12, atol=1e-12)


def _depthwise_reference(layer, x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Each input channel c convolved with kernel[..., c, m] on its own (TF's pads from
    `same_padding`), output channel c * mult + m."""
    rank = layer.rank
    x = _to_first(layer, x)
    pads = same_padding(tuple(x.shape[2:]), layer.kernel_size, layer.strides, layer.dilation_rate) \
        if layer.padding == "same" else ((0, 0),) * rank
    flat = [p for pair in reversed(pads) for p in pair]
    fn = {1: F.conv1d, 2: F.conv2d}[rank]
    outputs = []
    for c in range(x.shape[1]):
        for m in range(kernel.shape[-1]):
            w = kernel[..., c, m].reshape(1, 1, *layer.kernel_size)
            outputs.append(fn(F.pad(x[:, c : c + 1], flat), w, None, layer.strides, 0, layer.dilation_rate))
    return torch.cat(outputs, dim=1)  # (N, C * M, *out), channel c * M + m


DEPTHWISE_CONFIGS = [
    dict(padding="valid", depth_multiplier=1),
    dict(padding="same", strides=2, depth_multiplier=3),
    dict(padding="same", kernel_size=2, dilation_rate=3, depth_multiplier=2),
    dict(padding="same", strides=2, dilation_rate=2, depth_multiplier=2),  # Keras allows both here
]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize(
    "cls, config", [(cls, c) for cls in DEPTHWISES for c in DEPTHWISE_CONFIGS],
    ids=lambda v: v.__name__ if isinstance(v, type) else "-".join(f"{k}={x}" for k, x in v.items()),
)
def test_depthwise_matches_per_channel_convolutions(cls, config, data_format):
    config = {"kernel_size": 3, **config}
    layer = cls(data_format=data_format, dtype="float64", bias_initializer="random_normal", **config)
    x = torch.randn(_shape(cls, 4, data_format), dtype=torch.float64)
    outputs = layer(x)
    expected = _depthwise_reference(layer, x, layer.kernel.detach()) + layer.bias.detach().view(-1, *(1,) * cls.rank)
    torch.testing.assert_close(outputs, _to_layer_format(layer, expected), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize(
    "cls, config", [(cls, c) for cls in SEPARABLES for c in DEPTHWISE_CONFIGS],
    ids=lambda v: v.__name__ if isinstance(v, type) else "-".join(f"{k}={x}" for k, x in v.items()),
)
def test_separable_is_depthwise_then_pointwise(cls, config, data_format):
    config = {"kernel_size": 3, **config}
    layer = cls(7, data_format=data_format, dtype="float64", bias_initializer="random_normal", **config)
    x = torch.randn(_shape(cls, 4, data_format), dtype=torch.float64)
    outputs = layer(x)
    mid = _depthwise_reference(layer, x, layer.depthwise_kernel.detach())
    pointwise = layer.pointwise_kernel.detach().reshape(mid.shape[1], 7)  # (1..., mid, out)
    expected = torch.einsum("nm...,mo->no...", mid, pointwise) + layer.bias.detach().view(-1, *(1,) * cls.rank)
    torch.testing.assert_close(outputs, _to_layer_format(layer, expected), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", TRANSPOSES, ids=lambda c: c.__name__)
def test_transpose_checklist(cls):
    layer = cls(6, 3, strides=2, padding="same", activation="relu")
    check_layer(layer, _shape(cls, 4), {"kernel": (3,) * cls.rank + (6, 4), "bias": (6,)})


@pytest.mark.parametrize("cls", TRANSPOSES, ids=lambda c: c.__name__)
def test_transpose_checklist_channels_first_output_padding(cls):
    layer = cls(5, 2, strides=3, padding="valid", output_padding=1, data_format="channels_first", use_bias=False)
    check_layer(layer, _shape(cls, 4, "channels_first"), {"kernel": (2,) * cls.rank + (5, 4)})


@pytest.mark.parametrize("cls", DEPTHWISES, ids=lambda c: c.__name__)
def test_depthwise_checklist(cls):
    layer = cls(3, strides=2, padding="same", depth_multiplier=3)
    check_layer(layer, _shape(cls, 4), {"kernel": (3,) * cls.rank + (4, 3), "bias": (12,)})


@pytest.mark.parametrize("cls", SEPARABLES, ids=lambda c: c.__name__)
def test_separable_checklist(cls):
    layer = cls(5, 3, padding="same", depth_multiplier=2, data_format="channels_first")
    check_layer(layer, _shape(cls, 4, "channels_first"),
                {"depthwise_kernel": (3,) * cls.rank + (4, 2), "pointwise_kernel": (1,) * cls.rank + (8, 5), "bias": (5,)})


def test_output_sizes_follow_keras():
    # Keras: 'same' size * stride; 'valid' (size - 1) * stride + max(extent, stride); with output_padding
    # (size - 1) * stride + extent (+ op) for 'valid' and + extent % 2 + op for 'same'
    assert Conv2DTranspose(2, 3, strides=2, padding="same").compute_output_shape((None, 7, 8, 3)) == (None, 14, 16, 2)
    assert Conv2DTranspose(2, 2, strides=3).compute_output_shape((None, 7, None, 3)) == (None, 21, None, 2)
    assert Conv2DTranspose(2, (3, 4), strides=2, output_padding=1).compute_output_shape((1, 5, 5, 3)) == (1, 12, 13, 2)
    assert Conv1DTranspose(2, 3, strides=3, padding="same", output_padding=2).compute_output_shape((1, 3, 5)) == (1, 9, 2)
    assert DepthwiseConv2D(3, depth_multiplier=3, data_format="channels_first").compute_output_shape((1, 4, 9, 8)) == (1, 12, 7, 6)
    assert SeparableConv1D(5, 3, strides=2, padding="same").compute_output_shape((2, 9, None)) == (2, 5, 5)


def test_transpose_crops_put_the_odd_crop_at_the_end():
    assert Conv2DTranspose(2, 3, strides=2, padding="same").crops == ((0, 1), (0, 1))
    assert Conv2DTranspose(2, 4, strides=2, padding="same").crops == ((1, 1), (1, 1))
    assert Conv1DTranspose(2, 2, strides=3, padding="same").crops == ((0, -1),)  # one position past the full output
    assert Conv1DTranspose(2, 5, padding="same").crops == ((2, 2),)
    assert Conv1DTranspose(2, 3, strides=2).crops == ((0, 0),)


@pytest.mark.parametrize("cls, kwargs", [(Conv2DTranspose, dict(filters=6, kernel_size=3, strides=2, padding="same")),
                                         (Conv1DTranspose, dict(filters=6, kernel_size=3, strides=2, padding="same")),
                                         (DepthwiseConv2D, dict(kernel_size=3, strides=2, padding="same", depth_multiplier=2)),
                                         (SeparableConv2D, dict(filters=6, kernel_size=3, padding="same"))],
                         ids=lambda v: v.__name__ if isinstance(v, type) else "")
def test_new_members_take_channels_last_input_without_layout_copy(cls, kwargs):
    layer = cls(**kwargs)
    x = torch.randn(_shape(cls, 8, batch=2))
    layer(x)
    with torch.no_grad(), torch.profiler.profile(record_shapes=True) as prof:
        layer(x)
    copy_ops = ("aten::copy_", "aten::contiguous", "aten::clone", "aten::constant_pad_nd")
    copies = [e for e in prof.events() if e.name in copy_ops]
    input_sized = [e for e in copies if any(s and torch.Size(s).numel() == x.numel() for s in e.input_shapes)]
    assert not input_sized, [(e.name, e.input_shapes) for e in input_sized]


def test_depthwise_and_transposed_weights_are_views():
    layer = DepthwiseConv2D(3, depth_multiplier=3, input_shape=(9, 8, 4))
    grouped = grouped_kernel(layer.weight_view("kernel", "torch"))
    assert grouped.shape == (12, 1, 3, 3) and grouped.data_ptr() == layer.kernel.data_ptr()
    assert torch.equal(grouped[2 * 3 + 1, 0], layer.kernel[:, :, 2, 1])  # channel c * mult + m
    separable = SeparableConv2D(5, 3, depth_multiplier=2, input_shape=(9, 8, 4))
    assert grouped_kernel(separable.weight_view("depthwise_kernel", "torch")).data_ptr() == separable.depthwise_kernel.data_ptr()
    assert separable.weight_view("pointwise_kernel", "torch").shape == (5, 8, 1, 1)
    transposed = Conv2DTranspose(6, (3, 2), input_shape=(5, 6, 4))
    view = transposed.weight_view("kernel", "torch")
    assert view.shape == (4, 6, 3, 2) and view.data_ptr() == transposed.kernel.data_ptr()


def test_new_member_layouts():
    for cls in TRANSPOSES:
        kernel, bias = cls.LAYOUT
        assert bias.axes == ("out",) and bias.enabled_by == "use_bias"
        assert kernel.axes == (*kernel_axes(cls.rank), "out", "in") and kernel.order("torch") == ("in", "out", *kernel_axes(cls.rank))
    for cls in DEPTHWISES:
        assert cls.LAYOUT[0].axes == (*kernel_axes(cls.rank), "in", "mult") and cls.LAYOUT[0].key == "depthwise"
    for cls in SEPARABLES:
        names = [(w.name, w.key) for w in cls.LAYOUT]
        assert names == [("depthwise_kernel", "depthwise"), ("pointwise_kernel", "pointwise"), ("bias", "bias")]


_COMMON_KEYS = {"name", "trainable", "dtype", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
                "activation", "use_bias", "bias_initializer", "bias_regularizer", "bias_constraint"}


@pytest.mark.parametrize("layer, keys", [
    (Conv2DTranspose(6, 3, strides=2, padding="same", output_padding=1, data_format="channels_first"),
     {"filters", "output_padding", "kernel_initializer", "kernel_regularizer", "kernel_constraint"}),
    (Conv1DTranspose(6, 3), {"filters", "output_padding", "kernel_initializer", "kernel_regularizer", "kernel_constraint"}),
    (DepthwiseConv2D(3, depth_multiplier=2, dilation_rate=2, strides=2),
     {"depth_multiplier", "depthwise_initializer", "depthwise_regularizer", "depthwise_constraint"}),
    (SeparableConv1D(4, 3, depth_multiplier=3, depthwise_initializer="he_normal", pointwise_regularizer="l2"),
     {"filters", "depth_multiplier", "depthwise_initializer", "depthwise_regularizer", "depthwise_constraint",
      "pointwise_initializer", "pointwise_regularizer", "pointwise_constraint"}),
], ids=lambda v: type(v).__name__ if not isinstance(v, set) else "")
def test_new_member_config_keys_and_round_trip(layer, keys):
    config = layer.get_config()
    assert set(config) == _COMMON_KEYS | keys
    assert type(layer).from_config(config).get_config() == config


def _new_member_errors():
    cases = [
        (Conv2DTranspose, dict(filters=4, kernel_size=3, strides=2, output_padding=2), ArgumentError,
         "`output_padding` must be smaller than `strides` along every axis. Received: output_padding=(2, 2), strides=(2, 2)."),
        (Conv2DTranspose, dict(filters=4, kernel_size=3, output_padding=(0, -1)), ArgumentError,
         "`output_padding` must be an int >= 0 or a tuple of 2 ints >= 0. Received: output_padding=(0, -1)."),
        (Conv1DTranspose, dict(filters=4, kernel_size=4, strides=2, padding="same", output_padding=0), ArgumentError,
         ("`output_padding` must be > 0 along an axis with padding='same' and an even dilated kernel extent: the output "
          "would have (size - 1) * stride steps, which TensorFlow's transposed convolution refuses. Received: "
          "output_padding=(0,), kernel_size=(4,), dilation_rate=(1,).")),
        (Conv3DTranspose, dict(filters=4, kernel_size=3, strides=2, dilation_rate=2), ArgumentError,
         "`strides` > 1 cannot be combined with `dilation_rate` > 1. Received: strides=(2, 2, 2), dilation_rate=(2, 2, 2)."),
        (DepthwiseConv2D, dict(kernel_size=3, depth_multiplier=0), ArgumentError,
         "`depth_multiplier` must be a positive integer. Received: depth_multiplier=0."),
        (SeparableConv2D, dict(filters=4, kernel_size=3, padding="causal"), ArgumentError,
         "`padding` must be one of ('valid', 'same'). Received: padding='causal'."),
        (SeparableConv1D, dict(filters=4, kernel_size=3, groups=2), ArgumentTypeError,
         "unrecognized keyword arguments ['groups']. Received: groups=2."),
    ]
    return [pytest.param(cls, kwargs, error, rf"^`{cls.__name__}` layer '\w+': " + re.escape(message) + "$",
                         id=f"{cls.__name__}-{i}") for i, (cls, kwargs, error, message) in enumerate(cases)]


@pytest.mark.parametrize("cls, kwargs, error, message", _new_member_errors())
def test_new_member_argument_errors(cls, kwargs, error, message):
    with pytest.raises(error, match=message):
        cls(**kwargs)


def _onnx_nodes(layer, shape, tmp_path):
    from xlayers.onnx import export, node_counts

    x = torch.randn(shape)
    layer(x)
    path = tmp_path / "layer.onnx"
    export(layer, x, path, verbose=False)
    return node_counts(path)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, strides=2), dict(kernel_size=(3, 4), strides=2, output_padding=(0, 1)),
                                    dict(kernel_size=2, strides=3)], ids=["odd-crop", "output-padding", "past-the-end"])
def test_onnx_same_transpose_is_one_conv_transpose(kwargs, data_format, tmp_path):
    layer = Conv2DTranspose(6, padding="same", data_format=data_format, **kwargs)
    counts = _onnx_nodes(layer, _shape(Conv2DTranspose, 4, data_format), tmp_path)
    assert counts.get("ConvTranspose") == 1
    assert not {"Pad", "Slice"} & set(counts), counts
    assert sum(counts.values()) == 1 + 2 * (data_format == "channels_last"), counts  # + the layout Transposes


def test_onnx_depthwise_is_one_grouped_conv_and_separable_two_convs(tmp_path):
    import onnx

    from xlayers.onnx import export

    layer = DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=3)
    x = torch.randn(_shape(DepthwiseConv2D, 4))
    layer(x)
    export(layer, x, tmp_path / "depthwise.onnx", verbose=False)
    convs = [n for n in onnx.load(tmp_path / "depthwise.onnx").graph.node if n.op_type == "Conv"]
    assert len(convs) == 1
    assert {a.name: a.i for a in convs[0].attribute}["group"] == 4
    counts = _onnx_nodes(SeparableConv2D(5, 3, padding="same", depth_multiplier=2), _shape(SeparableConv2D, 4), tmp_path)
    assert counts.get("Conv") == 2 and "Pad" not in counts, counts

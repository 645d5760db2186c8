"""Conv1D, Conv2D, Conv3D (one `BaseConv` generic over the rank): the checklist, the torch
reference (``F.pad`` + unpadded ``F.conv*d``), no layout copy for channels-last inputs, and
rank-generic argument checks.

Keras equivalence (padding x strides x dilation x groups x data_format x odd/even sizes) is
registry data: `conformance/cases/conv.py`."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from conformance.testing import check_layer
from xlayers import Conv1D, Conv2D, Conv3D
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError
from xlayers.layers.conv import BaseConv, conv_layout
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

"""Conv2D: the checklist, Keras equivalence over padding x strides x dilation x groups x
data_format x odd/even sizes, no layout copy for channels-last inputs, bad input."""

import itertools

import numpy as np
import pytest
import torch

from conformance.keras_reference import keras_call, keras_twin
from conformance.testing import check_layer, randomize_weights
from conformance.tolerance import assert_close
from xlayers import Conv2D
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError


def test_conv2d_checklist_same_asymmetric():
    layer = Conv2D(6, 3, strides=2, padding="same")
    check_layer(layer, (2, 8, 9, 4), {"kernel": (3, 3, 4, 6), "bias": (6,)})


def test_conv2d_checklist_channels_first_groups():
    layer = Conv2D(6, (2, 3), padding="same", data_format="channels_first", groups=2, use_bias=False)
    check_layer(layer, (2, 4, 7, 6), {"kernel": (2, 3, 2, 6)})


GRID = [
    dict(kernel_size=k, strides=s, dilation_rate=d, padding=p, groups=g, data_format=f, size=hw)
    for k, (s, d), p, g, f, hw in itertools.product(
        [(3, 3), (2, 4)],
        [(1, 1), (2, 1), (3, 1), (1, 2)],
        ["valid", "same"],
        [1, 2],
        ["channels_last", "channels_first"],
        [(9, 10), (8, 11)],
    )
]


def _case_id(c):
    return "{padding}-s{strides}-d{dilation_rate}-g{groups}-k{k}-{fmt}-{h}x{w}".format(
        k="x".join(map(str, c["kernel_size"])), fmt="nhwc" if c["data_format"] == "channels_last" else "nchw",
        h=c["size"][0], w=c["size"][1], **{k: v for k, v in c.items() if k not in ("kernel_size", "size")}
    )


@pytest.mark.parametrize("case", GRID, ids=[_case_id(c) for c in GRID])
def test_conv2d_matches_keras(case):
    case = dict(case)
    h, w = case.pop("size")
    shape = (3, h, w, 4) if case["data_format"] == "channels_last" else (3, 4, h, w)
    layer = Conv2D(6, activation="relu", **case)
    x = np.random.randn(*shape).astype(np.float32)
    layer(torch.from_numpy(x))
    randomize_weights(layer)
    out = layer(torch.from_numpy(x)).detach()
    assert tuple(out.shape) == layer.compute_output_shape(shape)
    assert_close(out, keras_call(keras_twin(layer), x)[0])


def test_conv2d_lora_matches_keras():
    layer = Conv2D(5, 3, padding="same", lora_rank=2)
    x = np.random.randn(2, 7, 6, 3).astype(np.float32)
    layer(torch.from_numpy(x))
    randomize_weights(layer)
    assert_close(layer(torch.from_numpy(x)).detach(), keras_call(keras_twin(layer), x)[0])


@pytest.mark.parametrize("padding, strides", [("valid", 1), ("same", 1), ("same", 2)])
def test_channels_last_input_reaches_conv_without_layout_copy(padding, strides):
    """The NHWC input goes to aten::convolution as a channels_last view: no copy of input size."""
    layer = Conv2D(8, 3, padding=padding, strides=strides)
    x = torch.randn(2, 16, 16, 8)
    layer(x)
    with torch.no_grad(), torch.profiler.profile(record_shapes=True) as prof:
        out = layer(x)
    copies = [e for e in prof.events() if e.name in ("aten::copy_", "aten::contiguous", "aten::clone", "aten::constant_pad_nd")]
    big = [e for e in copies if any(list(s) == list(x.shape) or list(s) == [2, 8, 16, 16] for s in e.input_shapes if s)]
    assert not big, [(e.name, e.input_shapes) for e in big]
    assert any(e.name == "aten::convolution" for e in prof.events())
    assert out.is_contiguous()  # NHWC out, no copy back either


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        (dict(filters=0, kernel_size=3), ArgumentError, r"`Conv2D`: `filters` must be a positive integer"),
        (dict(filters=4, kernel_size=3, groups=3), ArgumentError, r"`filters` must be divisible by `groups`"),
        (dict(filters=4, kernel_size=3, strides=2, dilation_rate=2), ArgumentError, r"`strides` > 1 cannot be combined"),
        (dict(filters=4, kernel_size=3, padding="full"), ArgumentError, r"`padding` must be one of"),
        (dict(filters=4, kernel_size=3, data_format="nhwc"), ArgumentError, r"`data_format` must be one of"),
        (dict(filters=4, kernel_size=(3, 0)), ArgumentError, r"kernel_size"),
        (dict(filters=4, kernel_size="3"), ArgumentTypeError, r"kernel_size"),
    ],
)
def test_conv2d_bad_arguments(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        Conv2D(**kwargs)


def test_conv2d_bad_inputs():
    layer = Conv2D(4, 3)
    with pytest.raises(InputShapeError, match=r"expected an input of rank 4\. Received: input shape=\(2, 8, 8\)"):
        layer(torch.randn(2, 8, 8))
    layer(torch.randn(2, 8, 8, 3))
    with pytest.raises(InputShapeError, match=r"expected axis -1 of the input to have size 3.*\(2, 8, 8, 5\)"):
        layer(torch.randn(2, 8, 8, 5))
    with pytest.raises(ArgumentError, match=r"divisible by `groups`"):
        Conv2D(4, 3, groups=2)(torch.randn(2, 8, 8, 3))

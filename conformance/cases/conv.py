"""Cases for `xlayers/layers/conv.py`: Conv2D over padding x strides x dilation x groups x
data_format x odd/even and unequal sizes."""

from __future__ import annotations

import itertools

from xlayers import Conv2D
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError

from ..case import Case, ErrorCase, LayerInfo


def _conv2d(kernel, strides, dilation, padding, groups, data_format, size, **extra) -> Case:
    h, w = size
    fmt = "nhwc" if data_format == "channels_last" else "nchw"
    shape = (3, h, w, 4) if data_format == "channels_last" else (3, 4, h, w)
    kwargs = dict(filters=6, kernel_size=kernel, strides=strides, dilation_rate=dilation, padding=padding,
                  groups=groups, data_format=data_format, activation="relu", **extra)
    variant = f"{padding}-s{strides}-d{dilation}-g{groups}-k{kernel[0]}x{kernel[1]}-{fmt}-{h}x{w}"
    return Case(Conv2D, variant, kwargs, shape)


GRID = tuple(
    _conv2d(k, s, d, p, g, f, hw)
    for k, (s, d), p, g, f, hw in itertools.product(
        [(3, 3), (2, 4)],
        [(1, 1), (2, 1), (3, 1), (1, 2)],
        ["valid", "same"],
        [1, 2],
        ["channels_last", "channels_first"],
        [(9, 10), (8, 11)],
    )
)

EXTRA = (
    Case(Conv2D, "same-s2-k3x3-nhwc-16x16-float64", dict(filters=5, kernel_size=3, strides=2, padding="same"), (2, 16, 16, 3), dtypes=("float64",)),
    Case(Conv2D, "same-s2-k3x3-nhwc-12x12-half", dict(filters=8, kernel_size=3, strides=2, padding="same"), (2, 12, 12, 4), dtypes=("float16", "bfloat16")),
    Case(Conv2D, "valid-k1x1-nobias", dict(filters=7, kernel_size=1, use_bias=False), (2, 5, 6, 3)),
    Case(Conv2D, "same-s1-k4x4-even-kernel", dict(filters=4, kernel_size=4, padding="same"), (2, 7, 8, 3)),
    Case(Conv2D, "same-s2-lora-r2", dict(filters=5, kernel_size=3, strides=2, padding="same", lora_rank=2), (2, 9, 8, 3)),
    Case(Conv2D, "same-s-2x1-d1-nhwc", dict(filters=5, kernel_size=(3, 2), strides=(2, 1), padding="same"), (2, 9, 8, 3)),
)

ERRORS = (
    ErrorCase("filters-zero", {"filters": 0, "kernel_size": 3}, ArgumentError, r"`Conv2D`: `filters` must be a positive integer"),
    ErrorCase("groups-filters", {"filters": 4, "kernel_size": 3, "groups": 3}, ArgumentError, r"`filters` must be divisible by `groups`"),
    ErrorCase("strides-and-dilation", {"filters": 4, "kernel_size": 3, "strides": 2, "dilation_rate": 2}, ArgumentError, r"`strides` > 1 cannot be combined"),
    ErrorCase("padding-full", {"filters": 4, "kernel_size": 3, "padding": "full"}, ArgumentError, r"`padding` must be one of"),
    ErrorCase("kernel-size-str", {"filters": 4, "kernel_size": "3"}, ArgumentTypeError, r"`kernel_size`"),
    ErrorCase("rank-3", {"filters": 4, "kernel_size": 3}, InputShapeError, r"expected an input of rank 4", (2, 8, 8)),
    ErrorCase("channels", {"filters": 4, "kernel_size": 3}, InputShapeError, r"expected axis -1 of the input to have size 3", (2, 8, 8, 5), (2, 8, 8, 3)),
    ErrorCase("smaller-than-kernel", {"filters": 4, "kernel_size": 5}, InputShapeError,
              r"`Conv2D` layer 'conv2d': the input's spatial size is smaller than the dilated kernel \(5, 5\).*Received: input shape=\(1, 3, 3, 2\)", (1, 3, 3, 2)),
    ErrorCase("groups-channels", {"filters": 4, "kernel_size": 3, "groups": 2}, ArgumentError, r"divisible by `groups`", (2, 8, 8, 3)),
)

LAYERS = (LayerInfo(Conv2D, GRID + EXTRA, ERRORS),)

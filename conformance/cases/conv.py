"""Cases for `xlayers/layers/conv.py`: Conv1D, Conv2D and Conv3D over padding x strides x
dilation x groups x data_format x odd/even and unequal sizes.

'same' pads asymmetrically (the extra zero at the end) whenever the total padding is odd:
at stride 2 on an even size, at stride 1 with an even dilated kernel extent (kernel 2 or 4
at dilation 1 or 3). The grids make sure both occur, with dilation as well as without.
"""

from __future__ import annotations

import itertools

from xlayers import Conv1D, Conv2D, Conv3D
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError

from ..case import Case, ErrorCase, LayerInfo
from ..driver import Driver

_FORMAT_NAMES = {1: ("nwc", "ncw"), 2: ("nhwc", "nchw"), 3: ("ndhwc", "ncdhw")}
_LAYERS = {1: Conv1D, 2: Conv2D, 3: Conv3D}


def _conv(rank: int, kernel, strides, dilation, padding, groups, data_format, size, filters=6, channels=4, **extra) -> Case:
    channels_last = data_format == "channels_last"
    shape = (3, *size, channels) if channels_last else (3, channels, *size)
    kwargs = dict(filters=filters, kernel_size=kernel, strides=strides, dilation_rate=dilation, padding=padding,
                  groups=groups, data_format=data_format, activation="relu", **extra)
    fmt = _FORMAT_NAMES[rank][0 if channels_last else 1]
    tag = lambda v: "x".join(str(x) for x in v) if isinstance(v, tuple) else str(v)  # noqa: E731
    variant = f"{padding}-s{tag(strides)}-d{tag(dilation)}-g{groups}-k{tag(kernel)}-{fmt}-{tag(size)}"
    return Case(_LAYERS[rank], variant, kwargs, shape)


class ConvDriver(Driver):
    """Convolutions take their input alone (the default driver), except for one Keras bug."""

    def float64_refusal(self, case: Case) -> str:
        if case.layer.rank == 1 and case.kwargs.get("groups", 1) > 1:
            return ("Keras 3.15 on TF 2.21 runs a grouped Conv1D through XLA on CPU, and in float64 that corrupts the "
                    "heap and aborts the process (reproduced with Keras alone: tools/keras_grouped_conv1d_f64.py)")
        return ""


def _onnx_group(case: Case) -> tuple:
    """One ONNX check per padding and data format: kernel sizes, groups, dilation, strides and input
    sizes change the attributes of the one ``Conv`` node (and its weights), not the graph. The grids
    put first a case whose 'same' padding is uneven (the extra zero at the end), so that is the case
    that carries the check."""
    k = case.kwargs
    return (k.get("padding"), k.get("data_format"), k.get("use_bias", True), "lora_rank" in k)


CONV1D = tuple(
    _conv(1, k, s, d, p, 1, f, (n,))
    for (k, n), (s, d), p, f in itertools.product(
        [(4, 10), (3, 11)], [(1, 1), (2, 1), (1, 3)], ["valid", "same", "causal"], ["channels_last", "channels_first"]
    )
) + tuple(  # groups: each padding at stride 1 and 2 (dilation and the data format are the ungrouped cases')
    _conv(1, 3, s, 1, p, 2, "channels_last", (11,)) for s, p in itertools.product([1, 2], ["valid", "same", "causal"])
) + (_conv(1, 4, 2, 1, "same", 2, "channels_first", (10,)),)

CONV2D = tuple(  # each kernel on sizes odd in one axis and even in the other
    _conv(2, k, s, d, p, 1, f, hw)
    for (k, hw), (s, d), p, f in itertools.product(
        [((3, 3), (9, 10)), ((2, 4), (8, 11))],
        [(2, 1), (1, 1), (3, 1), (1, 2)],  # stride 2 first: its 'same' pads unevenly, and it carries the ONNX check
        ["valid", "same"],
        ["channels_last", "channels_first"],
    )
) + tuple(  # groups: each padding at stride 1 and 2 (dilation and the data format are the ungrouped cases')
    _conv(2, (2, 4), s, 1, p, 2, "channels_last", (8, 11)) for s, p in itertools.product([1, 2], ["valid", "same"])
) + (_conv(2, (2, 4), 2, 1, "same", 2, "channels_first", (8, 11)),) + tuple(
    # dilation > 1 where 'same' pads asymmetrically (stride 1, even dilated extent)
    _conv(2, (2, 4), 1, d, "same", g, f, (9, 10))
    for d, g, f in ((3, 1, "channels_last"), (3, 2, "channels_first"), ((3, 1), 1, "channels_last"), ((3, 1), 2, "channels_first"))
)

CONV2D_EXTRA = (
    Case(Conv2D, "same-s2-k3x3-nhwc-16x16-float64", dict(filters=5, kernel_size=3, strides=2, padding="same"), (2, 16, 16, 3), dtypes=("float64",)),
    Case(Conv2D, "same-s2-k3x3-nhwc-12x12-half", dict(filters=8, kernel_size=3, strides=2, padding="same"), (2, 12, 12, 4), dtypes=("float16", "bfloat16")),
    Case(Conv2D, "valid-k1x1-nobias", dict(filters=7, kernel_size=1, use_bias=False), (2, 5, 6, 3)),
    Case(Conv2D, "same-s1-k4x4-even-kernel", dict(filters=4, kernel_size=4, padding="same"), (2, 7, 8, 3)),
    Case(Conv2D, "same-s2-lora-r2", dict(filters=5, kernel_size=3, strides=2, padding="same", lora_rank=2), (2, 9, 8, 3)),
    Case(Conv2D, "same-s-2x1-d1-nhwc", dict(filters=5, kernel_size=(3, 2), strides=(2, 1), padding="same"), (2, 9, 8, 3)),
)

CONV3D = tuple(
    _conv(3, k, s, d, p, 1, f, size, filters=4, channels=3)
    for k, (s, d), p, f, size in itertools.product(
        [(3, 2, 3)], [(1, 1), (2, 1), (1, 2)], ["valid", "same"], ["channels_last", "channels_first"], [(5, 6, 7)]
    )
) + (
    _conv(3, 2, 1, 3, "same", 1, "channels_last", (7, 6, 8), filters=4, channels=3),
    _conv(3, 3, 2, 1, "same", 1, "channels_last", (4, 6, 5), filters=5, channels=2, use_bias=False),
)


def _errors(name: str, rank: int) -> tuple[ErrorCase, ...]:
    label = f"^`{name}` layer '{name.lower()}': "
    spatial = (8,) * rank
    return (
        ErrorCase("filters-zero", {"filters": 0, "kernel_size": 3}, ArgumentError, label + r"`filters` must be a positive integer"),
        ErrorCase("groups-filters", {"filters": 4, "kernel_size": 3, "groups": 3}, ArgumentError, label + r"`filters` must be divisible by `groups`"),
        ErrorCase("padding-full", {"filters": 4, "kernel_size": 3, "padding": "full"}, ArgumentError, label + r"`padding` must be one of"),
        ErrorCase("kernel-size-str", {"filters": 4, "kernel_size": "3"}, ArgumentTypeError, label + r"`kernel_size`"),
        ErrorCase("rank", {"filters": 4, "kernel_size": 3}, InputShapeError, label + rf"expected an input of rank {rank + 2}", (2, *spatial[1:], 3)),
        ErrorCase("channels", {"filters": 4, "kernel_size": 3}, InputShapeError, label + r"expected axis -1 of the input to have size 3",
                  (2, *spatial, 5), (2, *spatial, 3)),
        ErrorCase("smaller-than-kernel", {"filters": 4, "kernel_size": 5}, InputShapeError,
                  label + r"the input's spatial size is smaller than the dilated kernel.*Received: input shape=\(1, " + ", ".join(["3"] * rank) + r", 2\)",
                  (1, *(3,) * rank, 2)),
        ErrorCase("groups-channels", {"filters": 4, "kernel_size": 3, "groups": 2}, ArgumentError, label + r"the input channels must be known and divisible by `groups`", (2, *spatial, 3)),
    )


LAYERS = (
    LayerInfo(Conv1D, CONV1D, _errors("Conv1D", 1), driver=ConvDriver(), onnx_group=_onnx_group),
    LayerInfo(Conv2D, CONV2D + CONV2D_EXTRA, _errors("Conv2D", 2), driver=ConvDriver(), onnx_group=_onnx_group),
    LayerInfo(Conv3D, CONV3D, _errors("Conv3D", 3), driver=ConvDriver(), onnx_group=_onnx_group),
)

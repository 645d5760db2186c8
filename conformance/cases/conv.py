"""Cases for `xlayers/layers/conv.py`: Conv1D, Conv2D and Conv3D over padding x strides x
dilation x groups x data_format x odd/even and unequal sizes; the transposed, depthwise and
separable convolutions over the arguments that change their computation.

'same' pads asymmetrically (the extra zero at the end) whenever the total padding is odd:
at stride 2 on an even size, at stride 1 with an even dilated kernel extent (kernel 2 or 4
at dilation 1 or 3). The grids make sure both occur, with dilation as well as without.
"""

from __future__ import annotations

import itertools

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

from ..case import Case, ErrorCase, LayerInfo
from ..driver import Driver
from ..keras_reference import unwrap

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
    Case(Conv2D, "same-s2-k3x3-nhwc-11x12-mixed", dict(filters=8, kernel_size=3, strides=2, padding="same"), (2, 11, 12, 4),
         dtypes=("mixed_float16", "mixed_bfloat16")),
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



class ConvTransposeDriver(ConvDriver):
    """TensorFlow's CPU kernel of a transposed convolution (``Conv2DBackpropInput``) refuses
    ``dilation_rate`` > 1 ("Current CPU implementations do not yet support dilation rates
    larger than 1"); XLA computes the same Keras op. With dilation, the Keras twin's ``call``
    runs under ``tf.function(jit_compile=True)`` (as Keras's own ``jit_compile`` would run it):
    Keras's math, compiled; every other case runs Keras eagerly."""

    def twin(self, layer, case, dtype=None):
        twin = super().twin(layer, case, dtype)
        if max(layer.dilation_rate) > 1:
            import tensorflow as tf

            inner = unwrap(twin)
            object.__setattr__(inner, "call", tf.function(inner.call, jit_compile=True))
        return twin


def _tag(value) -> str:
    return "x".join(str(x) for x in value) if isinstance(value, tuple) else str(value)


def _case(cls, kwargs: dict, size: tuple, channels: int = 4, data_format: str = "channels_last", **case_args) -> Case:
    """A case of a transposed/depthwise/separable conv: batch 3, ``channels`` in, the id from its arguments."""
    rank = cls.rank
    channels_last = data_format == "channels_last"
    shape = (3, *size, channels) if channels_last else (3, channels, *size)
    kwargs = {**kwargs, "data_format": data_format}
    parts = [kwargs.get("padding", "valid"), f"k{_tag(kwargs['kernel_size'])}", f"s{_tag(kwargs.get('strides', 1))}"]
    if kwargs.get("dilation_rate", 1) != 1:
        parts.append(f"d{_tag(kwargs['dilation_rate'])}")
    if kwargs.get("output_padding") is not None:
        parts.append(f"op{_tag(kwargs['output_padding'])}")
    if "depth_multiplier" in kwargs:
        parts.append(f"m{kwargs['depth_multiplier']}")
    if not kwargs.get("use_bias", True):
        parts.append("nobias")
    parts += [_FORMAT_NAMES[rank][0 if channels_last else 1], _tag(size)]
    return Case(cls, "-".join(parts), kwargs, shape, **case_args)


def _transpose_onnx_group(case: Case) -> tuple:
    """One ONNX check per padding, data format and bias, and apart for TF's odd 'same' crop
    (exported as ``xlayers::conv_transpose``, one ``ConvTranspose`` with asymmetric ``pads``):
    the other arguments only change the node's attributes."""
    layer = case.layer(**case.kwargs)
    odd = any(a > b for b, a in layer.crops)
    k = case.kwargs
    return (k.get("padding"), k.get("data_format"), k.get("use_bias", True), odd)


def _depthwise_onnx_group(case: Case) -> tuple:
    k = case.kwargs
    return (k.get("padding"), k.get("data_format"), k.get("use_bias", True))


# filters (6) differ from the input channels (4) everywhere, so a kernel read with its in/out
# axes swapped cannot pass. Kernel (3, 2) crops TF's 'same' by an odd total along the rows at
# stride 1 and 2 ((0, 1) at k3 s2; (1, 2)... per axis: see conv_ops.transpose_crops) and evenly
# along the columns; stride 3 crops nothing.
CONV2D_TRANSPOSE = tuple(
    _case(Conv2DTranspose, dict(filters=6, kernel_size=(3, 2), strides=s, padding=p, activation="relu"), (5, 6), data_format=f)
    for p, s, f in itertools.product(["same", "valid"], [2, 1, 3], ["channels_last", "channels_first"])
) + (
    _case(Conv2DTranspose, dict(filters=6, kernel_size=(3, 2), strides=2, padding="same", output_padding=(0, 1)), (5, 6)),
    _case(Conv2DTranspose, dict(filters=6, kernel_size=(3, 3), strides=(3, 2), padding="same", output_padding=(2, 1)), (4, 5),
          data_format="channels_first"),
    _case(Conv2DTranspose, dict(filters=6, kernel_size=(2, 3), strides=(3, 2), padding="valid", output_padding=(1, 0)), (5, 4)),
    _case(Conv2DTranspose, dict(filters=6, kernel_size=(2, 3), strides=1, padding="same", dilation_rate=(3, 2)), (5, 6)),
    _case(Conv2DTranspose, dict(filters=6, kernel_size=(2, 3), strides=1, padding="valid", dilation_rate=2), (5, 6),
          data_format="channels_first"),
    # filters == in: a kernel with its in/out axes swapped keeps its shape here and shows in the numbers
    _case(Conv2DTranspose, dict(filters=4, kernel_size=3, strides=2, padding="same", use_bias=False), (4, 5), channels=4),
    _case(Conv2DTranspose, dict(filters=5, kernel_size=3, strides=2, padding="same"), (6, 5), channels=3, dtypes=("float16", "bfloat16")),
)

CONV1D_TRANSPOSE = tuple(
    _case(Conv1DTranspose, dict(filters=6, kernel_size=k, strides=s, padding=p), (n,), data_format=f)
    for (k, s, n), p, f in itertools.product([(3, 2, 7), (4, 2, 8)], ["same", "valid"], ["channels_last", "channels_first"])
) + (
    _case(Conv1DTranspose, dict(filters=6, kernel_size=3, strides=2, padding="same", output_padding=0), (7,)),
    _case(Conv1DTranspose, dict(filters=6, kernel_size=2, strides=1, padding="same", dilation_rate=3), (9,)),
)

CONV3D_TRANSPOSE = (
    _case(Conv3DTranspose, dict(filters=5, kernel_size=(3, 2, 3), strides=2, padding="same"), (3, 4, 5), channels=3),
    _case(Conv3DTranspose, dict(filters=5, kernel_size=(3, 2, 3), strides=(1, 2, 3), padding="valid"), (3, 4, 5), channels=3,
          data_format="channels_first"),
    _case(Conv3DTranspose, dict(filters=5, kernel_size=(2, 3, 2), strides=2, padding="same", output_padding=1), (3, 4, 5), channels=3),
)

# in 4, depth multipliers 1 and 3; 'same' at stride 2 on even sizes and at stride 1 with an even
# dilated extent pads unevenly (the extra zero at the end); Keras allows stride 2 with dilation 2 here.
DEPTHWISE_CONV2D = (
    _case(DepthwiseConv2D, dict(kernel_size=(3, 2), strides=2, padding="same", depth_multiplier=3, activation="relu"), (8, 9)),
    _case(DepthwiseConv2D, dict(kernel_size=(3, 2), strides=2, padding="same", depth_multiplier=3), (8, 9), data_format="channels_first"),
    _case(DepthwiseConv2D, dict(kernel_size=(3, 2), strides=1, padding="valid", depth_multiplier=1), (7, 6)),
    _case(DepthwiseConv2D, dict(kernel_size=(2, 3), strides=1, padding="same", dilation_rate=(3, 2), depth_multiplier=2), (7, 8)),
    _case(DepthwiseConv2D, dict(kernel_size=3, strides=2, padding="same", dilation_rate=2, depth_multiplier=3), (9, 8),
          data_format="channels_first"),
    _case(DepthwiseConv2D, dict(kernel_size=3, strides=2, padding="valid", depth_multiplier=2, use_bias=False), (9, 10)),  # TF: equal strides only
)

DEPTHWISE_CONV1D = (
    _case(DepthwiseConv1D, dict(kernel_size=3, strides=2, padding="same", depth_multiplier=3), (10,)),
    _case(DepthwiseConv1D, dict(kernel_size=3, strides=2, padding="same", depth_multiplier=3), (10,), data_format="channels_first"),
    _case(DepthwiseConv1D, dict(kernel_size=4, strides=1, padding="valid", depth_multiplier=1), (9,)),
    _case(DepthwiseConv1D, dict(kernel_size=2, strides=1, padding="same", dilation_rate=3, depth_multiplier=2), (9,)),
)

SEPARABLE_CONV2D = (
    _case(SeparableConv2D, dict(filters=5, kernel_size=(3, 2), strides=2, padding="same", depth_multiplier=3, activation="relu"), (8, 9)),
    _case(SeparableConv2D, dict(filters=5, kernel_size=(3, 2), strides=2, padding="same", depth_multiplier=3), (8, 9),
          data_format="channels_first"),
    _case(SeparableConv2D, dict(filters=5, kernel_size=(2, 3), strides=1, padding="valid", depth_multiplier=1), (7, 6)),
    _case(SeparableConv2D, dict(filters=5, kernel_size=3, strides=2, padding="same", dilation_rate=2, depth_multiplier=2), (9, 8)),
    _case(SeparableConv2D, dict(filters=5, kernel_size=3, strides=1, padding="valid", depth_multiplier=2, use_bias=False), (6, 7),
          data_format="channels_first"),
)

SEPARABLE_CONV1D = (
    _case(SeparableConv1D, dict(filters=5, kernel_size=3, strides=2, padding="same", depth_multiplier=3), (10,)),
    _case(SeparableConv1D, dict(filters=5, kernel_size=3, strides=2, padding="same", depth_multiplier=3), (10,),
          data_format="channels_first"),
    _case(SeparableConv1D, dict(filters=5, kernel_size=2, strides=1, padding="same", dilation_rate=3, depth_multiplier=1), (9,)),
)


def _window_errors(name: str, rank: int, required: dict) -> tuple[ErrorCase, ...]:
    label = f"^`{name}` layer '{_snake(name)}': "
    spatial = (8,) * rank
    return (
        ErrorCase("padding-causal", {**required, "kernel_size": 3, "padding": "causal"}, ArgumentError, label + r"`padding` must be one of \('valid', 'same'\)"),
        ErrorCase("kernel-size-str", {**required, "kernel_size": "3"}, ArgumentTypeError, label + r"`kernel_size`"),
        ErrorCase("rank", {**required, "kernel_size": 3}, InputShapeError, label + rf"expected an input of rank {rank + 2}", (2, *spatial[1:], 3)),
        ErrorCase("channels", {**required, "kernel_size": 3}, InputShapeError, label + r"expected axis -1 of the input to have size 3",
                  (2, *spatial, 5), (2, *spatial, 3)),
    )


def _snake(name: str) -> str:
    from xlayers.layer import _snake_case

    return _snake_case(name)


def _transpose_errors(name: str, rank: int) -> tuple[ErrorCase, ...]:
    label = f"^`{name}` layer '{_snake(name)}': "
    return _window_errors(name, rank, {"filters": 4}) + (
        ErrorCase("filters-zero", {"filters": 0, "kernel_size": 3}, ArgumentError, label + r"`filters` must be a positive integer"),
        ErrorCase("output-padding-stride", {"filters": 4, "kernel_size": 3, "strides": 2, "output_padding": 2}, ArgumentError,
                  label + r"`output_padding` must be smaller than `strides` along every axis\. Received: output_padding=\(2,"),
        ErrorCase("output-padding-negative", {"filters": 4, "kernel_size": 3, "strides": 2, "output_padding": -1}, ArgumentError,
                  label + r"`output_padding` must be an int >= 0"),
        ErrorCase("output-padding-zero-even-same", {"filters": 4, "kernel_size": 2, "strides": 2, "padding": "same", "output_padding": 0},
                  ArgumentError, label + r"`output_padding` must be > 0 along an axis with padding='same' and an even dilated kernel extent"),
        ErrorCase("strides-and-dilation", {"filters": 4, "kernel_size": 3, "strides": 2, "dilation_rate": 2}, ArgumentError,
                  label + r"`strides` > 1 cannot be combined with `dilation_rate` > 1"),
    )


def _depthwise_errors(name: str, rank: int, required: dict) -> tuple[ErrorCase, ...]:
    label = f"^`{name}` layer '{_snake(name)}': "
    return _window_errors(name, rank, required) + (
        ErrorCase("depth-multiplier-zero", {**required, "kernel_size": 3, "depth_multiplier": 0}, ArgumentError,
                  label + r"`depth_multiplier` must be a positive integer\. Received: depth_multiplier=0\."),
        ErrorCase("smaller-than-kernel", {**required, "kernel_size": 5}, InputShapeError,
                  label + r"the input's spatial size is smaller than the dilated kernel", (1, *(3,) * rank, 2)),
    )


LAYERS = (
    LayerInfo(Conv1D, CONV1D, _errors("Conv1D", 1), driver=ConvDriver(), onnx_group=_onnx_group),
    LayerInfo(Conv2D, CONV2D + CONV2D_EXTRA, _errors("Conv2D", 2), driver=ConvDriver(), onnx_group=_onnx_group),
    LayerInfo(Conv3D, CONV3D, _errors("Conv3D", 3), driver=ConvDriver(), onnx_group=_onnx_group),
    LayerInfo(Conv1DTranspose, CONV1D_TRANSPOSE, _transpose_errors("Conv1DTranspose", 1), driver=ConvTransposeDriver(),
              onnx_group=_transpose_onnx_group),
    LayerInfo(Conv2DTranspose, CONV2D_TRANSPOSE, _transpose_errors("Conv2DTranspose", 2), driver=ConvTransposeDriver(),
              onnx_group=_transpose_onnx_group),
    LayerInfo(Conv3DTranspose, CONV3D_TRANSPOSE, _transpose_errors("Conv3DTranspose", 3), driver=ConvTransposeDriver(),
              onnx_group=_transpose_onnx_group),
    LayerInfo(DepthwiseConv1D, DEPTHWISE_CONV1D, _depthwise_errors("DepthwiseConv1D", 1, {}), driver=ConvDriver(),
              onnx_group=_depthwise_onnx_group),
    LayerInfo(DepthwiseConv2D, DEPTHWISE_CONV2D, _depthwise_errors("DepthwiseConv2D", 2, {}), driver=ConvDriver(),
              onnx_group=_depthwise_onnx_group),
    LayerInfo(SeparableConv1D, SEPARABLE_CONV1D, _depthwise_errors("SeparableConv1D", 1, {"filters": 4}), driver=ConvDriver(),
              onnx_group=_depthwise_onnx_group),
    LayerInfo(SeparableConv2D, SEPARABLE_CONV2D, _depthwise_errors("SeparableConv2D", 2, {"filters": 4}), driver=ConvDriver(),
              onnx_group=_depthwise_onnx_group),
)

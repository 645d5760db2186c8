"""Cases for `xlayers/layers/reshaping.py`: Flatten, Reshape, Permute, RepeatVector,
ZeroPadding1D/2D/3D and Cropping1D/2D/3D.

Every spatial size is odd or unequal to the others, so an axis taken for another changes the
output's shape or values. Padding and cropping are asymmetric wherever the layer allows it,
with a zero ``after`` on some axis (Keras's cropping takes a different slice there) and both
data formats. The Keras twin is built with the case's own ``data_format``: TF pads, slices
and transposes channels-first tensors on CPU, so Keras's ``channels_first`` itself is the
reference (for `Flatten` that is the point: Keras moves the channels last before flattening).
"""

from __future__ import annotations

from typing import Any

from xlayers import (
    Cropping1D,
    Cropping2D,
    Cropping3D,
    Flatten,
    Permute,
    RepeatVector,
    Reshape,
    ZeroPadding1D,
    ZeroPadding2D,
    ZeroPadding3D,
)
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError
from xlayers.layer import Layer, _snake_case

from ..case import Case, ErrorCase, LayerInfo
from ..driver import Driver
from ..keras_reference import keras


class ReshapingDriver(Driver):
    """The Keras twin is the Keras layer of the case's configuration, ``data_format``
    included (the default driver checks ``channels_first`` through a ``channels_last`` layer
    between transposes, which fits convolutions; here the channels-first computation itself,
    Flatten's reordering above all, is what is checked)."""

    def twin(self, layer: Layer, case: Case, dtype: str | None = None) -> Any:
        config = {**layer.get_config(), **case.kwargs}
        if dtype is not None:
            config["dtype"] = dtype
        twin = getattr(keras().layers, type(layer).__name__).from_config(config)
        twin.build(tuple(layer.get_build_config()["input_shape"]))
        return twin


DRIVER = ReshapingDriver()


def _by_layer(case: Case) -> str:
    """One ONNX check per layer: the arguments change the constants of the same nodes."""
    return case.layer.__name__


def _flatten_graph(case: Case) -> str:
    """One ONNX check per graph: a ``Reshape``; a ``Transpose`` first (channels-first with
    channels to move); an ``Unsqueeze`` (a rank-1 input)."""
    rank = len(case.first_input.shape)
    if rank == 1:
        return "unsqueeze"
    return "transpose-reshape" if case.kwargs.get("data_format") == "channels_first" and rank > 2 else "reshape"


def _label(cls: type[Layer]) -> str:
    return f"^`{cls.__name__}` layer '{_snake_case(cls.__name__)}': "


# -- Flatten, Reshape, Permute, RepeatVector ----------------------------------------------------

FLATTEN = (
    Case(Flatten, "nhwc-2x5x7x3", {}, (2, 5, 7, 3)),
    Case(Flatten, "nchw-2x3x5x7", {"data_format": "channels_first"}, (2, 3, 5, 7)),
    Case(Flatten, "ncw-3x4x7", {"data_format": "channels_first"}, (3, 4, 7)),
    Case(Flatten, "ncdhw-2x3x4x5x3", {"data_format": "channels_first"}, (2, 3, 4, 5, 3)),
    Case(Flatten, "rank2-first-3x7", {"data_format": "channels_first"}, (3, 7)),  # nothing to reorder
    Case(Flatten, "rank1-5", {}, (5,)),  # (batch,) -> (batch, 1)
    Case(Flatten, "nhwc-2x5x7x3-half", {}, (2, 5, 7, 3), dtypes=("float64", "float16", "bfloat16")),
)
FLATTEN_ERRORS = (
    ErrorCase("data-format", {"data_format": "nhwc"}, ArgumentError,
              _label(Flatten) + r"`data_format` must be one of \['channels_last', 'channels_first'\]\. Received: data_format='nhwc'\.$"),
)

RESHAPE = (
    Case(Reshape, "infer-middle-2x5x7x3", {"target_shape": (5, -1, 3)}, (2, 5, 7, 3)),
    Case(Reshape, "infer-first-3x35", {"target_shape": (-1, 5)}, (3, 35)),
    Case(Reshape, "to-rank3-2x6x5", {"target_shape": (5, 2, 3)}, (2, 6, 5)),
    Case(Reshape, "to-rank1-2x3x5", {"target_shape": (15,)}, (2, 3, 5)),
)
RESHAPE_ERRORS = (
    ErrorCase("two-unknown", {"target_shape": (-1, -1)}, ArgumentError,
              _label(Reshape) + r"`target_shape` must be a tuple of ints >= 0 with at most one -1 .*Received: target_shape=\(-1, -1\)\.$"),
    ErrorCase("negative", {"target_shape": (3, -2)}, ArgumentError, _label(Reshape) + r"`target_shape` must be .*target_shape=\(3, -2\)"),
    ErrorCase("not-ints", {"target_shape": (3, 2.0)}, ArgumentTypeError, _label(Reshape) + r"`target_shape` must be .*target_shape=\(3, 2\.0\)"),
    ErrorCase("size", {"target_shape": (4, 4)}, InputShapeError,
              _label(Reshape) + r"`target_shape` must hold the input's sample size 15; it holds 16\. "
              r"Received: target_shape=\(4, 4\), input shape=\(2, 3, 5\)\.$", (2, 3, 5)),
    ErrorCase("indivisible", {"target_shape": (-1, 4)}, InputShapeError,
              _label(Reshape) + r"the input's sample size 15 cannot be split into `target_shape`.*input shape=\(2, 3, 5\)\.$", (2, 3, 5)),
    ErrorCase("size-after-build", {"target_shape": (-1, 5)}, InputShapeError,
              _label(Reshape) + r"the input's sample size 14 cannot be split", (2, 14), (2, 15)),
)

PERMUTE = (
    Case(Permute, "21-3x5x7", {"dims": (2, 1)}, (3, 5, 7)),
    Case(Permute, "312-2x5x7x3", {"dims": (3, 1, 2)}, (2, 5, 7, 3)),  # NHWC -> NCHW
    Case(Permute, "231-2x3x5x7", {"dims": (2, 3, 1)}, (2, 3, 5, 7)),  # NCHW -> NHWC
    Case(Permute, "1432-2x3x4x5x7", {"dims": (1, 4, 3, 2)}, (2, 3, 4, 5, 7)),
    # equal sizes: an axis mix-up that keeps the shape shows only in the values
    Case(Permute, "21-square-3x5x5", {"dims": (2, 1)}, (3, 5, 5)),
)
PERMUTE_ERRORS = (
    ErrorCase("zero-based", {"dims": (0, 1)}, ArgumentError,
              _label(Permute) + r"`dims` must be a permutation of 1 \.\. n .*Received: dims=\(0, 1\)\.$"),
    ErrorCase("repeated", {"dims": (1, 1, 2)}, ArgumentError, _label(Permute) + r"`dims` must be a permutation.*dims=\(1, 1, 2\)"),
    ErrorCase("not-a-tuple", {"dims": 2}, ArgumentTypeError, _label(Permute) + r"`dims` must be a permutation.*dims=2\.$"),
    ErrorCase("rank", {"dims": (2, 1)}, InputShapeError,
              _label(Permute) + r"expected an input of rank 3\. Received: input shape=\(2, 3, 4, 5\)\.$", (2, 3, 4, 5)),
)

REPEAT_VECTOR = (
    Case(RepeatVector, "n3-2x7", {"n": 3}, (2, 7)),
    Case(RepeatVector, "n1-3x5", {"n": 1}, (3, 5)),
)
REPEAT_VECTOR_ERRORS = (
    ErrorCase("n-zero", {"n": 0}, ArgumentError, _label(RepeatVector) + r"`n` must be a positive integer\. Received: n=0\.$"),
    ErrorCase("n-str", {"n": "3"}, ArgumentTypeError, _label(RepeatVector) + r"`n` must be a positive integer\. Received: n='3'\.$"),
    ErrorCase("rank", {"n": 3}, InputShapeError,
              _label(RepeatVector) + r"expected an input of rank 2\. Received: input shape=\(2, 3, 4\)\.$", (2, 3, 4)),
)


# -- ZeroPadding and Cropping -------------------------------------------------------------------

_SAMPLE = {1: (7,), 2: (5, 7), 3: (3, 4, 5)}  # odd and unequal spatial sizes


def _spatial(cls: type[Layer], variant: str, argument: str, value: Any, data_format: str | None, sizes: tuple[int, ...] | None = None,
             **extra: Any) -> Case:
    sizes = sizes or _SAMPLE[cls.rank]
    channels = 3
    kwargs = {argument: value}
    if data_format is not None:
        kwargs["data_format"] = data_format
    first = data_format == "channels_first"
    shape = (2, channels, *sizes) if first else (2, *sizes, channels)
    tag = {1: ("nwc", "ncw"), 2: ("nhwc", "nchw"), 3: ("ndhwc", "ncdhw")}[cls.rank][first]
    return Case(cls, f"{variant}-{tag}-{'x'.join(map(str, shape))}", kwargs, shape, **extra)


ZERO_PADDING1D = (
    _spatial(ZeroPadding1D, "asym-1-3", "padding", (1, 3), "channels_last"),
    _spatial(ZeroPadding1D, "asym-3-0", "padding", (3, 0), "channels_first"),
    _spatial(ZeroPadding1D, "int-2", "padding", 2, "channels_last"),
)
ZERO_PADDING2D = (
    _spatial(ZeroPadding2D, "asym-12-30", "padding", ((1, 2), (3, 0)), "channels_last"),
    _spatial(ZeroPadding2D, "asym-12-30", "padding", ((1, 2), (3, 0)), "channels_first"),
    _spatial(ZeroPadding2D, "sym-2-1", "padding", (2, 1), "channels_last"),
    _spatial(ZeroPadding2D, "mixed-0-21", "padding", (0, (2, 1)), "channels_first"),
    _spatial(ZeroPadding2D, "asym-12-30-half", "padding", ((1, 2), (3, 0)), "channels_last",
             dtypes=("float64", "float16", "bfloat16")),
)
ZERO_PADDING3D = (
    _spatial(ZeroPadding3D, "asym-12-01-20", "padding", ((1, 2), (0, 1), (2, 0)), "channels_last"),
    _spatial(ZeroPadding3D, "asym-12-01-20", "padding", ((1, 2), (0, 1), (2, 0)), "channels_first"),
    _spatial(ZeroPadding3D, "sym-1-2-0", "padding", (1, 2, 0), "channels_last"),
)

CROPPING1D = (
    _spatial(Cropping1D, "asym-1-3", "cropping", (1, 3), None, (9,)),
    _spatial(Cropping1D, "asym-3-0", "cropping", (3, 0), None, (9,)),
    _spatial(Cropping1D, "int-2", "cropping", 2, None, (9,)),
)
CROPPING2D = (
    _spatial(Cropping2D, "asym-12-30", "cropping", ((1, 2), (3, 0)), "channels_last", (7, 9)),
    _spatial(Cropping2D, "asym-12-30", "cropping", ((1, 2), (3, 0)), "channels_first", (7, 9)),
    _spatial(Cropping2D, "asym-20-13", "cropping", ((2, 0), (1, 3)), "channels_last", (7, 9)),
    _spatial(Cropping2D, "asym-02-10", "cropping", ((0, 2), (1, 0)), "channels_first", (7, 9)),
    _spatial(Cropping2D, "sym-2-1", "cropping", (2, 1), "channels_last", (7, 9)),
)
CROPPING3D = (
    _spatial(Cropping3D, "asym-12-01-20", "cropping", ((1, 2), (0, 1), (2, 0)), "channels_last", (5, 4, 7)),
    _spatial(Cropping3D, "asym-12-01-20", "cropping", ((1, 2), (0, 1), (2, 0)), "channels_first", (5, 4, 7)),
    _spatial(Cropping3D, "asym-10-03-21", "cropping", ((1, 0), (0, 3), (2, 1)), "channels_last", (5, 4, 7)),
    _spatial(Cropping3D, "sym-1-0-2", "cropping", (1, 0, 2), "channels_first", (5, 4, 7)),
)


def _pair_errors(cls: type[Layer], argument: str) -> tuple[ErrorCase, ...]:
    rank = cls.rank
    label = _label(cls)
    shape = (2, *(4,) * rank, 3)
    wrong = (1,) * (rank + 1) if rank > 1 else (1, 2, 3)
    errors = [
        ErrorCase("negative", {argument: -1}, ArgumentError, label + rf"`{argument}` must be .*of ints >= 0\. Received: {argument}=-1\.$"),
        ErrorCase("negative-pair", {argument: (((0, -2),) * rank if rank > 1 else (0, -2))}, ArgumentError,
                  label + rf"`{argument}` must be .*Received: {argument}="),
        ErrorCase("length", {argument: wrong}, ArgumentError, label + rf"`{argument}` must be .*Received: {argument}=\({', '.join(map(str, wrong))}\)\.$"),
        ErrorCase("string", {argument: "1"}, ArgumentTypeError, label + rf"`{argument}` must be .*Received: {argument}='1'\.$"),
        ErrorCase("rank", {argument: 1}, InputShapeError,
                  label + rf"expected an input of rank {rank + 2}\. Received: input shape=\(2, 4\)\.$", (2, 4)),
    ]
    if argument == "cropping":
        errors.append(ErrorCase("crops-everything", {argument: (2, 2) if rank == 1 else 2}, InputShapeError,
                                label + r"`cropping` must leave at least one element on each spatial axis\. Received: cropping=.*"
                                rf"input shape=\({', '.join(map(str, shape))}\)\.$", shape))
        errors.append(ErrorCase("crops-everything-after-build", {argument: 1}, InputShapeError,
                                label + r"`cropping` must leave at least one element", (2, *(2,) * rank, 3), shape))
    if rank > 1 or argument == "padding":
        errors.append(ErrorCase("data-format", {argument: 1, "data_format": "NHWC"}, ArgumentError,
                                label + r"`data_format` must be one of \['channels_last', 'channels_first'\]\. Received: data_format='NHWC'\.$"))
    else:  # Keras's Cropping1D takes no data_format
        errors.append(ErrorCase("data-format", {argument: 1, "data_format": "channels_first"}, ArgumentTypeError,
                                label + r"unrecognized keyword arguments \['data_format'\]"))
    return tuple(errors)


LAYERS = (
    LayerInfo(Flatten, FLATTEN, FLATTEN_ERRORS, driver=DRIVER, onnx_group=_flatten_graph),
    LayerInfo(Reshape, RESHAPE, RESHAPE_ERRORS, driver=DRIVER, onnx_group=_by_layer),
    LayerInfo(Permute, PERMUTE, PERMUTE_ERRORS, driver=DRIVER, onnx_group=_by_layer),
    LayerInfo(RepeatVector, REPEAT_VECTOR, REPEAT_VECTOR_ERRORS, driver=DRIVER, onnx_group=_by_layer),
    LayerInfo(ZeroPadding1D, ZERO_PADDING1D, _pair_errors(ZeroPadding1D, "padding"), driver=DRIVER, onnx_group=_by_layer),
    LayerInfo(ZeroPadding2D, ZERO_PADDING2D, _pair_errors(ZeroPadding2D, "padding"), driver=DRIVER, onnx_group=_by_layer),
    LayerInfo(ZeroPadding3D, ZERO_PADDING3D, _pair_errors(ZeroPadding3D, "padding"), driver=DRIVER, onnx_group=_by_layer),
    LayerInfo(Cropping1D, CROPPING1D, _pair_errors(Cropping1D, "cropping"), driver=DRIVER, onnx_group=_by_layer),
    LayerInfo(Cropping2D, CROPPING2D, _pair_errors(Cropping2D, "cropping"), driver=DRIVER, onnx_group=_by_layer),
    LayerInfo(Cropping3D, CROPPING3D, _pair_errors(Cropping3D, "cropping"), driver=DRIVER, onnx_group=_by_layer),
)

"""Cases for `xlayers/layers/pooling.py`: windowed, global and adaptive pooling, 1D/2D/3D.

Windowed pooling (Max/Average) covers each way TF's 'same' padding falls, per axis:
symmetric (``pool 3 stride 1``), the odd cell at the end at stride >= 2 (``pool 3 stride 2`` on
10, ``pool 2 stride 2`` on 9: torch's ceil mode), at stride 1 (``pool 2 stride 1``: the shift),
a pad on both sides with the odd one at the end (``pool 5 stride 2`` on 10: (1, 2)), a pool
smaller than its stride, and none at all; 2-D and 3-D mix those per axis, in both data formats.
Padded cells sit on the border, where a zero-padded max or a padding-counting average would
differ (the inputs are signed normals). Adaptive pooling uses sizes that do not divide
evenly (overlapping bins), outputs larger than the input, and sizes that divide. The global
average over steps takes Keras's mask (right, holey, an empty row: NaN, as Keras gives).

TensorFlow has no float64 kernel for 3-D pooling (``MaxPool3D``, ``AvgPool3D``), which
Keras's 3-D windowed and adaptive pooling use: those records report no float64 noise floor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xlayers import (
    AdaptiveAveragePooling1D,
    AdaptiveAveragePooling2D,
    AdaptiveAveragePooling3D,
    AdaptiveMaxPooling1D,
    AdaptiveMaxPooling2D,
    AdaptiveMaxPooling3D,
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
)
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError
from xlayers.layer import _snake_case

from ..case import Case, ErrorCase, LayerInfo
from ..driver import Driver, sequence_mask
from ..keras_reference import keras

BATCH, CHANNELS = 3, 4
_FORMATS = {1: ("nwc", "ncw"), 2: ("nhwc", "nchw"), 3: ("ndhwc", "ncdhw")}


def _tag(value: Any) -> str:
    if value is None:
        return "default"
    return "x".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


def _shape(size: tuple[int, ...], data_format: str, channels: int = CHANNELS) -> tuple[int, ...]:
    return (BATCH, *size, channels) if data_format == "channels_last" else (BATCH, channels, *size)


def _fmt(rank: int, data_format: str) -> str:
    return _FORMATS[rank][0 if data_format == "channels_last" else 1]


class PoolingDriver(Driver):
    """Pooling layers take their input, and `GlobalAveragePooling1D` a mask
    (``call={"mask": kind}``, a `sequence_mask` over the steps axis of either data format).

    The Keras twin is built with the case's own ``data_format``: Keras's pooling handles
    ``channels_first`` itself on TF's CPU (it transposes around TF's NHWC kernels, or reduces
    over the right axes), so no wrapper stands in for it."""

    def twin(self, layer: Any, case: Case, dtype: str | None = None) -> Any:
        config = {**layer.get_config(), **case.kwargs}
        if dtype is not None:
            config["dtype"] = dtype
        twin = getattr(keras().layers, type(layer).__name__).from_config(config)
        twin.build(tuple(layer.get_build_config()["input_shape"]))
        return twin

    def arguments(self, layer: Any, case: Case, inputs: Any, rng: np.random.Generator) -> dict[str, Any]:
        arguments = super().arguments(layer, case, inputs, rng)
        kind = case.call.get("mask")
        if kind is not None:
            steps_axis = 1 if case.kwargs.get("data_format", "channels_last") == "channels_last" else 2
            arguments["mask"] = sequence_mask(kind, inputs.shape[0], inputs.shape[steps_axis])
        return arguments

    def float64_refusal(self, case: Case) -> str:
        if case.layer.rank == 3 and not case.layer.__name__.startswith("Global"):
            return ("TensorFlow 2.21 has no float64 kernel for MaxPool3D or AvgPool3D, which Keras's 3-D windowed and "
                    "adaptive pooling call")
        return ""

    def onnx_inputs(self, arguments: dict[str, Any]) -> list[str]:
        return ["mask"] if "mask" in arguments else []


DRIVER = PoolingDriver()


# -- windowed pooling ---------------------------------------------------------------------------------


def _pool(cls: type, pool_size: Any, strides: Any, padding: str, data_format: str, size: tuple[int, ...],
          dtypes: tuple[str, ...] = ("float32",), suffix: str = "") -> Case:
    kwargs: dict[str, Any] = {"pool_size": pool_size, "strides": strides, "padding": padding, "data_format": data_format}
    variant = f"{padding}-p{_tag(pool_size)}-s{_tag(strides)}-{_fmt(cls.rank, data_format)}-{_tag(size)}{suffix}"
    return Case(cls, variant, kwargs, _shape(size, data_format), dtypes=dtypes)


# (pool, strides, size) per axis: TF 'same' pads (before, after)
_SAME_1D = (
    (3, 2, 10),  # (0, 1): the extra end cell at stride 2 (torch's ceil mode); carries the ONNX check
    (2, 2, 9),  # (0, 1)
    (2, 1, 9),  # (0, 1) at stride 1: the shift
    (5, 2, 10),  # (1, 2): both sides, the odd cell at the end
    (3, 1, 8),  # (1, 1): symmetric
    (2, 3, 10),  # (0, 1), pool smaller than the stride
    (1, 2, 9),  # (0, 0): TF pads nothing
)


def _windowed_1d(cls: type) -> tuple[Case, ...]:
    return (
        *(_pool(cls, k, s, "same", "channels_last", (n,)) for k, s, n in _SAME_1D),
        _pool(cls, 3, 2, "valid", "channels_last", (10,)),
        _pool(cls, 2, 1, "valid", "channels_last", (9,)),
        _pool(cls, 3, 2, "same", "channels_first", (10,)),
        _pool(cls, 2, 1, "same", "channels_first", (9,)),
        _pool(cls, 3, 2, "valid", "channels_first", (11,)),
    )


def _windowed_2d(cls: type) -> tuple[Case, ...]:
    return (
        # rows (0, 1) by ceil mode, columns (0, 1) by the shift: carries the ONNX check
        *(_pool(cls, (3, 2), (2, 1), "same", f, (10, 9)) for f in ("channels_last", "channels_first")),
        _pool(cls, 3, 2, "same", "channels_last", (10, 11)),  # (0, 1) and (1, 1)
        _pool(cls, 2, None, "same", "channels_last", (9, 8)),  # strides default to pool_size: (0, 1) and none
        _pool(cls, (5, 3), (2, 3), "same", "channels_first", (10, 11)),  # (1, 2) and (0, 1)
        *(_pool(cls, 3, 2, "valid", f, (10, 11)) for f in ("channels_last", "channels_first")),
        _pool(cls, 3, 2, "same", "channels_last", (10, 11), dtypes=("float64",), suffix="-float64"),
        _pool(cls, 3, 2, "same", "channels_last", (12, 9), dtypes=("float16", "bfloat16"), suffix="-half"),
    )


def _windowed_3d(cls: type) -> tuple[Case, ...]:
    return (
        # depth (0, 1) by ceil mode, rows (0, 1) by the shift, columns (0, 1) by ceil mode
        *(_pool(cls, (3, 2, 2), (2, 1, 2), "same", f, (6, 7, 5)) for f in ("channels_last", "channels_first")),
        _pool(cls, 2, None, "valid", "channels_last", (6, 7, 5)),
        _pool(cls, 3, 2, "same", "channels_last", (5, 8, 6), dtypes=("float16", "bfloat16"), suffix="-half"),
    )


def _windowed_errors(cls: type) -> tuple[ErrorCase, ...]:
    name, rank = cls.__name__, cls.rank
    label = rf"^`{name}` layer '{_snake_case(name)}': "
    return (
        ErrorCase("pool-size-zero", {"pool_size": 0}, ArgumentError,
                  label + rf"`pool_size` must be a positive int or a tuple of {rank} positive ints\. Received: pool_size=0\."),
        ErrorCase("strides-length", {"pool_size": 2, "strides": (1,) * (rank + 1)}, ArgumentError, label + r"`strides` must be"),
        ErrorCase("pool-size-str", {"pool_size": "2"}, ArgumentTypeError, label + r"`pool_size` must be"),
        ErrorCase("padding-causal", {"padding": "causal"}, ArgumentError,
                  label + r"`padding` must be one of \('valid', 'same'\)\. Received: padding='causal'\."),
        ErrorCase("data-format", {"data_format": "nhwc"}, ArgumentError, label + r"`data_format` must be one of"),
        ErrorCase("rank", {}, InputShapeError, label + rf"expected an input of rank {rank + 2}", (2, *(6,) * (rank + 1), 3)),
        ErrorCase("smaller-than-pool", {"pool_size": 5}, InputShapeError,
                  label + r"the input's spatial size is smaller than the pool .*Received: input shape=\(1, "
                  + ", ".join(["3"] * rank) + r", 2\)", (1, *(3,) * rank, 2)),
    )


# -- global pooling ----------------------------------------------------------------------------------

_GLOBAL_SIZES = {1: (7,), 2: (6, 5), 3: (5, 6, 3)}


def _global(cls: type, data_format: str, keepdims: bool = False, mask: str | None = None) -> Case:
    size = _GLOBAL_SIZES[cls.rank]
    kwargs = {"data_format": data_format, "keepdims": keepdims}
    variant = f"{_fmt(cls.rank, data_format)}-keepdims{int(keepdims)}-{_tag(size)}" + (f"-mask-{mask}" if mask else "")
    return Case(cls, variant, kwargs, _shape(size, data_format), call={"mask": mask} if mask else {})


def _global_cases(cls: type) -> tuple[Case, ...]:
    cases = (_global(cls, "channels_last"), _global(cls, "channels_first"), _global(cls, "channels_last", keepdims=True),
             _global(cls, "channels_first", keepdims=True))
    if cls is GlobalAveragePooling1D:  # the one global pooling layer that takes a mask (Keras's call(inputs, mask))
        cases += (
            _global(cls, "channels_last", mask="right"),
            _global(cls, "channels_last", mask="holey"),
            _global(cls, "channels_last", mask="empty-row"),
            _global(cls, "channels_first", mask="holey"),
            _global(cls, "channels_first", keepdims=True, mask="right"),
        )
    return cases


def _global_errors(cls: type) -> tuple[ErrorCase, ...]:
    name, rank = cls.__name__, cls.rank
    label = rf"^`{name}` layer '{_snake_case(name)}': "
    errors = (
        ErrorCase("data-format", {"data_format": "channels_middle"}, ArgumentError, label + r"`data_format` must be one of"),
        ErrorCase("keepdims-str", {"keepdims": "yes"}, ArgumentTypeError, label + r"`keepdims` must be a bool\. Received: keepdims='yes'\."),
        ErrorCase("rank", {}, InputShapeError, label + rf"expected an input of rank {rank + 2}", (2, *(4,) * (rank + 1), 3)),
    )
    if cls is GlobalAveragePooling1D:
        errors += (ErrorCase("mask-shape", {}, InputShapeError, label + r"`mask` must have shape \(batch, steps\) = \(2, 5\)\. "
                             r"Received: mask\.shape=\(2, 4\)", (2, 5, 3), call={"mask": np.ones((2, 4), bool)}),)
    return errors


# -- adaptive pooling ---------------------------------------------------------------------------------


def _adaptive(cls: type, output_size: Any, size: tuple[int, ...], data_format: str = "channels_last") -> Case:
    kwargs = {"output_size": output_size, "data_format": data_format}
    variant = f"out{_tag(output_size)}-{_fmt(cls.rank, data_format)}-{_tag(size)}"
    return Case(cls, variant, kwargs, _shape(size, data_format))


def _adaptive_cases(cls: type) -> tuple[Case, ...]:
    if cls.rank == 1:
        return (
            _adaptive(cls, 4, (10,)),  # bins of 3 overlapping by one: [0,3) [2,5) [5,8) [7,10)
            _adaptive(cls, 4, (11,), "channels_first"),  # bins of 3 and 4
            _adaptive(cls, 5, (3,)),  # more outputs than steps
            _adaptive(cls, 3, (9,)),  # divides evenly
            _adaptive(cls, 1, (7,)),  # one bin (Keras pools an empty "big" window too: see _SKIPS)
        )
    if cls.rank == 2:
        return (
            _adaptive(cls, (4, 3), (10, 7)),
            _adaptive(cls, (4, 3), (10, 7), "channels_first"),
            _adaptive(cls, (5, 2), (3, 8)),  # more rows out than in
            _adaptive(cls, (3, 2), (9, 8)),  # divides evenly
        )
    return (
        _adaptive(cls, (2, 3, 2), (5, 7, 4)),
        _adaptive(cls, (3, 2, 4), (5, 6, 7), "channels_first"),
    )


def _adaptive_errors(cls: type) -> tuple[ErrorCase, ...]:
    name, rank = cls.__name__, cls.rank
    label = rf"^`{name}` layer '{_snake_case(name)}': "
    return (
        ErrorCase("output-size-zero", {"output_size": 0}, ArgumentError,
                  label + rf"`output_size` must be a positive int or a tuple of {rank} positive ints\. Received: output_size=0\."),
        ErrorCase("output-size-length", {"output_size": (2,) * (rank + 1)}, ArgumentError, label + r"`output_size` must be"),
        ErrorCase("data-format", {"output_size": 2, "data_format": "NHWC"}, ArgumentError, label + r"`data_format` must be one of"),
        ErrorCase("rank", {"output_size": 2}, InputShapeError, label + rf"expected an input of rank {rank + 2}", (2, *(6,) * (rank + 1), 3)),
    )


def _one_export(case: Case) -> str:
    """One ONNX check per layer: the family's graph is one pooling node (or one reduction, or the
    two-pool gather) whose attributes the sizes and data format change; the first case (uneven
    'same' padding, bins that do not divide evenly) carries it. tests/test_pooling.py checks the
    node counts of the other configurations against torch."""
    return "pooling"


_WINDOWED = {MaxPooling1D: _windowed_1d, AveragePooling1D: _windowed_1d, MaxPooling2D: _windowed_2d,
             AveragePooling2D: _windowed_2d, MaxPooling3D: _windowed_3d, AveragePooling3D: _windowed_3d}
_GLOBAL = (GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D, GlobalMaxPooling1D, GlobalMaxPooling2D,
           GlobalMaxPooling3D)
_ADAPTIVE = (AdaptiveAveragePooling1D, AdaptiveAveragePooling2D, AdaptiveAveragePooling3D, AdaptiveMaxPooling1D,
             AdaptiveMaxPooling2D, AdaptiveMaxPooling3D)

_SKIPS = {
    "adaptive_max_pooling1d/out1-nwc-7": (
        "Keras 3.15's adaptive max pooling to one bin also pools a 'big' window one longer than the input (an empty "
        "result it never gathers), and TensorFlow's MaxPoolGrad of that empty pool fills the input gradient with "
        "uninitialized memory (values up to 1e37, different on every run); the forward agrees. xlayers' one-bin "
        "adaptive max is the global max (tests/test_pooling.py)"
    ),
}

LAYERS: tuple[LayerInfo, ...] = (
    *(LayerInfo(cls, cases(cls), _windowed_errors(cls), driver=DRIVER, onnx_group=_one_export) for cls, cases in _WINDOWED.items()),
    *(LayerInfo(cls, _global_cases(cls), _global_errors(cls), driver=DRIVER, onnx_group=_one_export) for cls in _GLOBAL),
    *(LayerInfo(cls, _adaptive_cases(cls), _adaptive_errors(cls), driver=DRIVER, onnx_group=_one_export,
                skips={k: v for k, v in _SKIPS.items() if k.startswith(_snake_case(cls.__name__) + "/")}) for cls in _ADAPTIVE),
)

"""Cases for `xlayers/layers/normalization.py`: BatchNormalization (inference, training with the
moving statistics compared after the calls, a frozen layer in training mode, a mask),
LayerNormalization (trailing and other axes, rms_scaling), GroupNormalization (contiguous
groups, instance normalization, channels-first), UnitNormalization and RMSNormalization.

Training cases (``call={"training": True}``) compare outputs, gradients and, through the
runner's ``after/`` checks, ``moving_mean`` / ``moving_variance`` after the calls; two calls
let the moving averages compound.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from xlayers import BatchNormalization, GroupNormalization, LayerNormalization, RMSNormalization, UnitNormalization
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError

from ..case import Case, ErrorCase, LayerInfo
from ..driver import Driver, sequence_mask
from ..transfer import keras_variables

BN, LN, GN, UN, RMS = BatchNormalization, LayerNormalization, GroupNormalization, UnitNormalization, RMSNormalization


def _positive_variance(value: np.ndarray) -> np.ndarray:
    """A variance made from a random draw: ``|v|``, raised by 0.1 below 0.1. Idempotent (the
    noise floor's float64 twin gets the same values again), distinct per channel."""
    magnitude = np.abs(value)
    return np.where(magnitude >= 0.1, magnitude, magnitude + 0.1)


class NormalizationDriver(Driver):
    """``call={"mask": kind}`` passes a ``(batch, time)`` mask of that kind to a 3-D input
    (`conformance.driver.sequence_mask`); ``training`` as the default driver.

    Before each direction's calls, the non-trainable weights (the moving statistics) are set
    from the twin's on both sides, with ``moving_variance`` made positive: the runner draws
    weights as signed normals, and a negative variance under ``rsqrt`` is NaN on both sides,
    which would hide every fault in those channels. Setting them from the twin also undoes the
    updates of the runner's gradient-free probe call, which only xlayers makes."""

    def arguments(self, layer: Any, case: Case, inputs: Any, rng: np.random.Generator) -> dict[str, Any]:
        arguments = super().arguments(layer, case, inputs, rng)
        if case.call.get("mask"):
            arguments["mask"] = sequence_mask(case.call["mask"], *inputs.shape[:2])
        return arguments

    def reset(self, layer: Any, twin: Any) -> None:
        variables = keras_variables(twin)
        with torch.no_grad():
            for entry in layer.walk_weights():
                if entry.declaration is None or entry.declaration.trainable:
                    continue
                variable = variables[entry.path]
                value = np.asarray(variable)
                if entry.declaration.name == "moving_variance":
                    value = _positive_variance(value).astype(value.dtype)
                    variable.assign(value)
                entry.parameter.copy_(torch.from_numpy(value))

    def onnx_refusal(self, case: Case) -> str:
        if case.id in KERAS_BUGS:
            return "Keras's value is wrong here (a documented deviation): nothing to check the export against"
        return ""


KERAS_BUGS = {
    "rms_normalization/axis1-keras-bug-3x5x5": (
        "Keras 3.15's RMSNormalization multiplies by `scale` with plain broadcasting, so for an axis other "
        "than the last it scales along the last axis (and fails when the sizes differ: axis=1 on (3, 7, 5) "
        "raises 'Incompatible shapes'); xlayers scales along the normalized axis "
        "(tests/test_normalization.py checks it against the formula)"
    ),
}


def _case(layer: type, variant: str, shape: tuple[int, ...], **kwargs: Any) -> Case:
    call = kwargs.pop("call", {})
    calls = kwargs.pop("calls", 1)
    dtypes = kwargs.pop("dtypes", ("float32",))
    return Case(layer, variant, kwargs, shape, call=call, calls=calls, dtypes=dtypes)


TRAIN = {"training": True}

BATCH_NORM = (
    _case(BN, "nhwc-2x7x9x5", (2, 7, 9, 5)),
    _case(BN, "axis1-nchw-2x5x7x9", (2, 5, 7, 9), axis=1),
    _case(BN, "ncw-axis1-eps0.05-init", (3, 4, 11), axis=1, epsilon=0.05, gamma_initializer="random_uniform",
          moving_mean_initializer="ones", moving_variance_initializer={"class_name": "Constant", "config": {"value": 2.0}}),
    _case(BN, "nwc-nocenter-noscale", (3, 8, 6), center=False, scale=False),
    _case(BN, "dense-2d-regularized", (6, 5), gamma_regularizer="l2", beta_constraint="non_neg", momentum=0.9),
    _case(BN, "train-nhwc-2calls", (2, 7, 9, 5), call=TRAIN, calls=2),
    _case(BN, "train-ncw-axis1-m0.5", (3, 5, 11), axis=1, momentum=0.5, call=TRAIN),
    _case(BN, "train-nocenter-noscale-m0.8", (4, 6, 3), center=False, scale=False, momentum=0.8, call=TRAIN),
    _case(BN, "train-mask-holey-m0.7", (3, 8, 5), momentum=0.7, call={"training": True, "mask": "holey"}),
    _case(BN, "train-frozen", (2, 7, 9, 5), trainable=False, call=TRAIN),
)

LAYER_NORM = (
    _case(LN, "nwc-3x7x5", (3, 7, 5)),
    _case(LN, "axis123-2x3x4x5", (2, 3, 4, 5), axis=[1, 2, 3]),
    _case(LN, "axis1-3x7x5-eps0.01", (3, 7, 5), axis=1, epsilon=0.01),
    _case(LN, "axis-2x-1-noscale", (2, 5, 4, 6), axis=[-3, -1], scale=False),
    _case(LN, "nocenter", (4, 9), center=False),
    _case(LN, "rms-scaling", (3, 7, 5), rms_scaling=True),
    _case(LN, "nwc-half", (3, 7, 6), dtypes=("float16", "bfloat16")),
)

GROUP_NORM = (
    _case(GN, "g2-nhwc-2x7x9x6", (2, 7, 9, 6), groups=2),
    _case(GN, "g3-nwc-3x5x6-eps0.1", (3, 5, 6), groups=3, epsilon=0.1),
    _case(GN, "instance-nwc-3x7x4", (3, 7, 4), groups=-1),
    _case(GN, "g2-axis1-nchw-2x6x5x7", (2, 6, 5, 7), groups=2, axis=1),
    _case(GN, "g1-2d-nocenter-noscale", (5, 6), groups=1, center=False, scale=False),
)

UNIT_NORM = (
    _case(UN, "nwc-3x7x5", (3, 7, 5)),
    _case(UN, "axis12-2x5x6x3", (2, 5, 6, 3), axis=[1, 2]),
)

RMS_NORM = (
    _case(RMS, "nwc-3x7x5", (3, 7, 5)),
    _case(RMS, "axis-2-1-eps0.1", (3, 7, 5), axis=[-2, -1], epsilon=0.1),
    _case(RMS, "axis1-keras-bug-3x5x5", (3, 5, 5), axis=1),
)


def _label(name: str) -> str:
    snake = {"BatchNormalization": "batch_normalization", "LayerNormalization": "layer_normalization",
             "GroupNormalization": "group_normalization", "UnitNormalization": "unit_normalization",
             "RMSNormalization": "rms_normalization"}[name]
    return f"^`{name}` layer '{snake}': "


def _common_errors(name: str) -> tuple[ErrorCase, ...]:
    label = _label(name)
    return (
        ErrorCase("axis-out-of-range", {"axis": 3}, InputShapeError,
                  label + r"`axis` must name axes of the input, in \[-3, 3\)\. Received: axis=3, input shape=\(2, 4, 5\)\.", (2, 4, 5)),
        ErrorCase("axis-str", {"axis": "last"}, ArgumentTypeError, label + r"`axis` must be an int"),
    )


BN_ERRORS = _common_errors("BatchNormalization") + (
    ErrorCase("renorm", {"renorm": True}, ArgumentError, _label("BatchNormalization") + r"batch renormalization is not supported"),
    ErrorCase("synchronized", {"synchronized": True}, ArgumentError, _label("BatchNormalization") + r"`synchronized` must be False"),
    ErrorCase("epsilon-negative", {"epsilon": -1.0}, ArgumentError, _label("BatchNormalization") + r"`epsilon` must be >= 0\. Received: epsilon=-1\.0\."),
    ErrorCase("channels", {}, InputShapeError, _label("BatchNormalization") + r"expected axis -1 of the input to have size 5",
              (2, 4, 3), (2, 4, 5)),
    ErrorCase("mask-rank", {}, InputShapeError,
              _label("BatchNormalization") + r"`mask` must have one axis fewer than the inputs\. Received: mask shape=\(2, 4, 5\)",
              (2, 4, 5), call={"mask": torch.ones(2, 4, 5, dtype=torch.bool), "training": True}),
)

LN_ERRORS = _common_errors("LayerNormalization") + (
    ErrorCase("axis-repeated", {"axis": [1, 1]}, ArgumentError, _label("LayerNormalization") + r"`axis` must not name an axis twice"),
    ErrorCase("center-str", {"center": "yes"}, ArgumentTypeError, _label("LayerNormalization") + r"`center` must be a bool"),
)

GN_ERRORS = _common_errors("GroupNormalization") + (
    ErrorCase("groups-zero", {"groups": 0}, ArgumentError, _label("GroupNormalization") + r"`groups` must be a positive integer \(or -1"),
    ErrorCase("groups-more-than-channels", {"groups": 8}, InputShapeError,
              _label("GroupNormalization") + r"`groups` must not exceed the number of channels \(6\)\. Received: groups=8", (2, 5, 6)),
    ErrorCase("groups-not-dividing", {"groups": 4}, InputShapeError,
              _label("GroupNormalization") + r"the number of channels \(6\) must be a multiple of `groups`\. Received: groups=4", (2, 5, 6)),
)

UN_ERRORS = _common_errors("UnitNormalization")

RMS_ERRORS = _common_errors("RMSNormalization") + (
    ErrorCase("epsilon-str", {"epsilon": "tiny"}, ArgumentTypeError, _label("RMSNormalization") + r"`epsilon` must be a number"),
)


def _view_onnx_group(case: Case) -> str:
    """BatchNormalization's and GroupNormalization's exported graph depends on the view handed to
    torch's kernel (`channels_first_view`): a permutation (4-D, 5-D channels-last), a flattened
    channels-last view (other ranks), the input itself (channels-first, 2-D) or a moved axis;
    sizes, epsilon, momentum and center/scale change only attributes and initializers."""
    rank = len(case.first_input.shape)
    axis = case.kwargs.get("axis", -1) % rank
    if axis == 1 or rank <= 2:
        return "direct"
    if axis != rank - 1:
        return "moved"
    return "permuted" if rank in (4, 5) else "flattened"


def _axes_onnx_group(case: Case) -> tuple:
    """``F.layer_norm`` / ``F.rms_norm`` (trailing axes) or Keras's formula (other axes), and
    LayerNormalization's rms_scaling."""
    axes = case.kwargs.get("axis", -1)
    axes = sorted(axes) if isinstance(axes, list) else [axes]
    rank = len(case.first_input.shape)
    trailing = [a % rank for a in axes] == list(range(rank - len(axes), rank))
    return (trailing, case.kwargs.get("rms_scaling", False))


DRIVER = NormalizationDriver()

LAYERS = (
    LayerInfo(BN, BATCH_NORM, BN_ERRORS, driver=DRIVER, onnx_group=_view_onnx_group),
    LayerInfo(LN, LAYER_NORM, LN_ERRORS, driver=DRIVER, onnx_group=_axes_onnx_group),
    LayerInfo(GN, GROUP_NORM, GN_ERRORS, driver=DRIVER, onnx_group=_view_onnx_group),
    LayerInfo(UN, UNIT_NORM, UN_ERRORS, driver=DRIVER, onnx_group=lambda case: ()),
    LayerInfo(
        RMS, RMS_NORM, RMS_ERRORS, driver=DRIVER, onnx_group=_axes_onnx_group,
        deviations=KERAS_BUGS,
    ),
)

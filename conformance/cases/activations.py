"""Cases for `xlayers/layers/activations.py`: Activation, ReLU (each branch of Keras's relu:
cap, relu6, slope, threshold, all together), LeakyReLU, PReLU (ranks, shared axes), ELU and
Softmax (axes, tuples, and Keras's mask: full, broadcast, a fully masked row)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np

from xlayers import ELU, Activation, LeakyReLU, PReLU, ReLU, Softmax
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError, UnknownNameError

from ..case import Case, ErrorCase, LayerInfo
from ..driver import Driver

SHAPE = (2, 7, 5)  # batch, steps, features: all different, odd

ACTIVATION_CASES = (
    Case(Activation, "gelu", {"activation": "gelu"}, SHAPE),
    Case(Activation, "softmax", {"activation": "softmax"}, SHAPE),
    Case(Activation, "glu", {"activation": "glu"}, (2, 7, 6)),
)

ACTIVATION_ERRORS = (
    ErrorCase("unknown", {"activation": "nope"}, UnknownNameError, r"^`Activation` layer 'activation': `activation` must be one of .*Received: activation='nope'"),
    ErrorCase("type", {"activation": 3}, ArgumentTypeError, r"^`Activation` layer 'activation': `activation` must be a string, a callable or None\. Received: activation=3"),
)

RELU_CASES = (
    Case(ReLU, "default", {}, SHAPE),
    Case(ReLU, "max-0.8", {"max_value": 0.8}, (3, 6, 5)),
    Case(ReLU, "max-6-scaled", {"max_value": 6.0}, (3, 5, 4), call={"input_scale": 5.0}),  # Keras's relu6 branch, capped values included
    Case(ReLU, "slope-0.2", {"negative_slope": 0.2}, SHAPE),
    Case(ReLU, "threshold-0.4", {"threshold": 0.4}, SHAPE),
    Case(ReLU, "slope-max", {"negative_slope": 0.1, "max_value": 1.2}, SHAPE),
    Case(ReLU, "slope-max-threshold", {"negative_slope": 0.15, "max_value": 1.5, "threshold": 0.3}, (2, 9, 3)),
    Case(ReLU, "half-max", {"max_value": 1.0}, (3, 11), dtypes=("float16", "bfloat16")),
)

_RELU = r"^`ReLU` layer 're_lu': "
RELU_ERRORS = (
    ErrorCase("max-negative", {"max_value": -1.0}, ArgumentError, _RELU + r"`max_value` must be a number >= 0 or None\. Received: max_value=-1\.0\."),
    ErrorCase("slope-none", {"negative_slope": None}, ArgumentTypeError, _RELU + r"`negative_slope` must be a number\. Received: negative_slope=None\."),
    ErrorCase("threshold-negative", {"threshold": -0.5}, ArgumentError, _RELU + r"`threshold` must be a number >= 0\. Received: threshold=-0\.5\."),
)

LEAKY_CASES = (
    Case(LeakyReLU, "default", {}, SHAPE),
    Case(LeakyReLU, "slope-0.05", {"negative_slope": 0.05}, (3, 4, 6)),
)

LEAKY_ERRORS = (
    ErrorCase("slope-negative", {"negative_slope": -0.1}, ArgumentError,
              r"^`LeakyReLU` layer 'leaky_re_lu': `negative_slope` must be a number >= 0\. Received: negative_slope=-0\.1\."),
)

PRELU_CASES = (
    Case(PReLU, "rank2", {}, (3, 5)),
    Case(PReLU, "rank3-shared1-constant", {"shared_axes": 1, "alpha_initializer": {"class_name": "Constant", "config": {"value": 0.25}}}, SHAPE),
    Case(PReLU, "rank4-shared12", {"shared_axes": [1, 2]}, (2, 5, 6, 3)),
    Case(PReLU, "rank4-shared3", {"shared_axes": [3]}, (2, 5, 6, 3)),
)

_PRELU = r"^`PReLU` layer 'p_re_lu': "
PRELU_ERRORS = (
    ErrorCase("shared-axis-0", {"shared_axes": [0]}, ArgumentError, _PRELU + r"`shared_axes` must be None, an axis or a list of axes >= 1.*Received: shared_axes=\[0\]\."),
    ErrorCase("shared-axis-beyond", {"shared_axes": [3]}, InputShapeError, _PRELU + r"the input must have .*Received: shared_axes=\[3\], input shape=\(2, 7, 5\)\.", (2, 7, 5)),
    ErrorCase("size", {"shared_axes": [1, 2]}, InputShapeError, _PRELU + r"expected axis 3 of the input to have size 3.*Received: input shape=\(2, 4, 4, 4\)\.",
              (2, 4, 4, 4), (2, 5, 6, 3)),
    ErrorCase("rank", {}, InputShapeError, _PRELU + r"expected an input of rank 3\. Received: input shape=\(2, 7\)\.", (2, 7), (2, 7, 5)),
)

ELU_CASES = (
    Case(ELU, "default", {}, SHAPE),
    Case(ELU, "alpha-0.5", {"alpha": 0.5}, (3, 4, 6)),
)

ELU_ERRORS = (
    ErrorCase("alpha-str", {"alpha": "a"}, ArgumentTypeError, r"^`ELU` layer 'elu': `alpha` must be a number\. Received: alpha='a'\."),
)


class SoftmaxDriver(Driver):
    """``call={"mask": kind}`` passes a boolean mask: ``"full"`` (the input's shape, about a
    third masked, and the first row along the last axis masked entirely: Keras's all-zero
    row) or ``"broadcast"`` (``(batch, 1, ..., 1, last)``, broadcast over the middle axes)."""

    def arguments(self, layer: Any, case: Case, inputs: Any, rng: np.random.Generator) -> dict[str, Any]:
        arguments = super().arguments(layer, case, inputs, rng)
        kind = case.call.get("mask")
        if kind == "full":
            mask = rng.random(inputs.shape) < 0.7
            mask[(0,) * (inputs.ndim - 1)] = False  # one row all masked
            arguments["mask"] = mask
        elif kind == "broadcast":
            shape = (inputs.shape[0], *(1,) * (inputs.ndim - 2), inputs.shape[-1])
            arguments["mask"] = rng.random(shape) < 0.6
        return arguments

    def onnx_refusal(self, case: Case) -> str:
        if case.call.get("mask") and (case.call["mask"] != "full" or len(case.first_input.shape) != 2):
            return "xlayers.onnx verifies a mask input as a right-padded (batch, steps) mask: only a rank-2 input's full mask fits"
        return ""

    def onnx_inputs(self, arguments: dict[str, Any]) -> list[str]:
        return ["mask"] if "mask" in arguments else []


SOFTMAX_CASES = (
    Case(Softmax, "axis-last", {}, SHAPE),
    Case(Softmax, "axis-1", {"axis": 1}, SHAPE),
    Case(Softmax, "axis-12", {"axis": (1, 2)}, (2, 5, 6, 3)),
    Case(Softmax, "axis-list-2", {"axis": [2]}, (2, 4, 6)),
    Case(Softmax, "mask-full-rank2", {}, (3, 9), call={"mask": "full"}),
    Case(Softmax, "mask-full-axis-1", {"axis": 1}, SHAPE, call={"mask": "full"}),
    Case(Softmax, "mask-broadcast", {}, (2, 5, 6), call={"mask": "broadcast"}),
    Case(Softmax, "half-mask", {}, (3, 8), call={"mask": "full"}, dtypes=("float16", "bfloat16")),
)

_SOFTMAX = r"^`Softmax` layer 'softmax': "
SOFTMAX_ERRORS = (
    ErrorCase("axis-str", {"axis": "a"}, ArgumentTypeError, _SOFTMAX + r"`axis` must be an int or a non-empty tuple of ints\. Received: axis='a'\."),
    ErrorCase("axis-out-of-range", {"axis": 3}, InputShapeError, _SOFTMAX + r"`axis` must name distinct axes of the input \(from -3 to 2\)\. Received: axis=3, input shape=\(2, 7, 5\)\.",
              (2, 7, 5)),
    ErrorCase("mask-rank", {}, InputShapeError, _SOFTMAX + r"the `mask` must be broadcastable to `inputs` and must not have more dimensions\..*mask\.shape=\(1, 2, 5\)\.",
              (2, 5), call={"mask": np.ones((1, 2, 5), bool)}),
    ErrorCase("mask-size", {}, InputShapeError, _SOFTMAX + r"the `mask` must be broadcastable to `inputs`: each mask axis must be 1 or the input's size\..*mask\.shape=\(2, 4\)\.",
              (2, 5), call={"mask": np.ones((2, 4), bool)}),
)


class ScaledDriver(Driver):
    """``call={"input_scale": s}`` multiplies the random normal inputs by ``s`` (to reach a cap
    such as relu6's)."""

    def arguments(self, layer: Any, case: Case, inputs: Any, rng: np.random.Generator) -> dict[str, Any]:
        if "input_scale" in case.call:
            inputs *= case.call["input_scale"]
        return super().arguments(layer, case, inputs, rng)


def _one_group(case: Case) -> Hashable:
    """The graph is one node (or a few) whatever the arguments' values: one ONNX check per layer
    (tests/test_activation_layers.py checks the node types of each configuration)."""
    return case.layer.__name__


def _relu_group(case: Case) -> Hashable:
    """Keras's relu branches: no cap and no slope (Relu), a cap alone (Clip), the rest."""
    kwargs = case.kwargs
    if not kwargs.get("negative_slope") and not kwargs.get("threshold"):
        return "cap" if kwargs.get("max_value") is not None else "plain"
    return "extended"


def _softmax_group(case: Case) -> Hashable:
    return (case.kwargs.get("axis", -1) == -1, bool(case.call.get("mask")))


LAYERS = (
    LayerInfo(Activation, ACTIVATION_CASES, ACTIVATION_ERRORS, onnx_group=_one_group),
    LayerInfo(ReLU, RELU_CASES, RELU_ERRORS, driver=ScaledDriver(), onnx_group=_relu_group),
    LayerInfo(LeakyReLU, LEAKY_CASES, LEAKY_ERRORS, onnx_group=_one_group),
    LayerInfo(PReLU, PRELU_CASES, PRELU_ERRORS, onnx_group=_one_group),
    LayerInfo(ELU, ELU_CASES, ELU_ERRORS, onnx_group=_one_group),
    LayerInfo(Softmax, SOFTMAX_CASES, SOFTMAX_ERRORS, driver=SoftmaxDriver(), onnx_group=_softmax_group),
)

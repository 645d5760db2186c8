"""Cases for `xlayers/layers/core.py`: Dense and Masking."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from xlayers import Dense, Identity, Masking, activations
from xlayers.errors import ArgumentError, ArgumentTypeError, InputDtypeError, InputShapeError, UnknownNameError

from ..case import Case, ErrorCase, LayerInfo
from ..driver import Driver, sequence_mask

# activations usable by name (Keras's `threshold` needs two more arguments: an error case)
_ACTIVATIONS = [name for name in activations.names() if name != "threshold"]

# one case per initializer family, on a kernel whose fans differ (in 11, out 6)
_INITIALIZERS = (
    "zeros", "ones", {"class_name": "Constant", "config": {"value": -0.75}}, "identity",
    "random_normal", "random_uniform", "truncated_normal", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
    "lecun_uniform", "lecun_normal", "orthogonal",
    {"class_name": "VarianceScaling", "config": {"scale": 3.0, "mode": "fan_out", "distribution": "untruncated_normal"}},
)


def _initializer_variant(initializer: Any) -> str:
    if isinstance(initializer, str):
        return initializer
    config = initializer["config"]
    return initializer["class_name"].lower() + "-" + "-".join(f"{v}" for v in config.values())


DENSE_CASES = (
    *(Case(Dense, f"act={a}", {"units": 6, "activation": a}, (3, 5)) for a in _ACTIVATIONS),
    *(
        Case(Dense, f"rank{len(shape)}-bias{int(bias)}", {"units": 7, "use_bias": bias}, shape, dtypes=("float32", "float64"))
        for shape, bias in itertools.product([(3, 5), (2, 7, 5), (2, 3, 4, 5)], [True, False])
    ),
    *(Case(Dense, f"init={_initializer_variant(i)}", {"units": 6, "kernel_initializer": i,
                                                     "bias_initializer": "zeros" if i in ("identity", "orthogonal") else i}, (3, 11))
      for i in _INITIALIZERS),
    Case(Dense, "square-kernel", {"units": 5}, (4, 5)),
    Case(Dense, "lora-r2", {"units": 7, "lora_rank": 2}, (3, 5)),
    Case(Dense, "lora-r2-alpha3", {"units": 7, "lora_rank": 2, "lora_alpha": 3.0}, (3, 5)),
    Case(Dense, "half-relu", {"units": 9, "activation": "relu"}, (4, 11), dtypes=("float16", "bfloat16")),
    Case(Dense, "mixed-relu", {"units": 9, "activation": "relu"}, (4, 11), dtypes=("mixed_float16", "mixed_bfloat16")),
)

DENSE_ERRORS = (
    ErrorCase("units-zero", {"units": 0}, ArgumentError, r"^`Dense` layer 'dense': `units` must be a positive integer\. Received: units=0"),
    ErrorCase("unknown-activation", {"units": 2, "activation": "nope"}, UnknownNameError, r"^`Dense` layer 'dense': `activation` must be one of .*Received: activation='nope'"),
    ErrorCase("unknown-kwarg", {"units": 2, "bogus": 1}, ArgumentTypeError, r"^`Dense` layer 'dense': unrecognized keyword arguments \['bogus'\]\. Received: bogus=1\."),
    ErrorCase("feature-size", {"units": 2}, InputShapeError, r"^`Dense` layer 'dense': expected axis -1 of the input to have size 4.*\(3, 5\)", (3, 5), (3, 4)),
    ErrorCase("rank-1", {"units": 2}, InputShapeError, r"^`Dense` layer 'dense': expected an input of rank >= 2\. Received: input shape=\(4,\)", (4,)),
    ErrorCase("integer-input", {"units": 2}, InputDtypeError, r"^`Dense` layer 'dense': expected a floating-point input.*Received: dtype=int64", (3, 4), (3, 4), "int64"),
    ErrorCase("unknown-initializer", {"units": 2, "kernel_initializer": "nope"}, UnknownNameError, r"^`Dense` layer 'dense': .*glorot_uniform.*Received: .*'nope'"),
    ErrorCase("units-float", {"units": 3.5}, ArgumentError, r"^`Dense` layer 'dense': `units` must be a positive integer\. Received: units=3\.5"),
    ErrorCase("lora-with-constraint", {"units": 2, "lora_rank": 1, "kernel_constraint": "non_neg"}, ArgumentError, r"^`Dense` layer 'dense': `lora_rank` cannot be combined"),
    ErrorCase("lora-alpha-str", {"units": 2, "lora_rank": 1, "lora_alpha": "x"}, ArgumentTypeError,
              r"^`Dense` layer 'dense': `lora_alpha` must be a number or None\. Received: lora_alpha='x'\."),
    ErrorCase("dtype-int32", {"units": 2, "dtype": "int32"}, ArgumentTypeError, r"^`Dense` layer 'dense': `dtype` must be a floating dtype.*Received: dtype='int32'\."),
    ErrorCase("input-shape-int", {"units": 2, "input_shape": 3}, ArgumentTypeError, r"^`Dense` layer 'dense': `input_shape` must be a tuple.*Received: input_shape=3\."),
    ErrorCase("rank-0", {"units": 2}, InputShapeError, r"^`Dense` layer 'dense': expected an input of rank >= 2\. Received: input shape=\(\)\.", (), (3, 4)),
)


class MaskingDriver(Driver):
    """Masking takes its mask through the data: ``call={"masked_steps": kind}`` sets the
    features of the masked steps of every input to ``mask_value``."""

    def arguments(self, layer: Any, case: Case, inputs: Any, rng: np.random.Generator) -> dict[str, Any]:
        kind = case.call.get("masked_steps")
        if kind is not None:
            keep = sequence_mask(kind, *inputs.shape[:2])
            inputs[~keep] = case.kwargs.get("mask_value", 0.0)
        return super().arguments(layer, case, inputs, rng)


MASKING_ERRORS = (
    ErrorCase("mask-value-str", {"mask_value": "a"}, ArgumentTypeError, r"^`Masking` layer 'masking': `mask_value` must be a number\. Received: mask_value='a'\."),
)

MASKING_CASES = (
    Case(Masking, "zeros-right", {"mask_value": 0.0}, (3, 5, 4), call={"masked_steps": "right"}),
    Case(Masking, "value-1.5-holey", {"mask_value": 1.5}, (2, 6, 3), call={"masked_steps": "holey"}),
)

DENSE_DEVIATIONS = {
    "dense/lora-r2-alpha3": "Keras 3.15's Dense.build calls enable_lora(rank) and drops the constructor's lora_alpha "
    "(scale 1; Conv2D keeps it); xlayers applies the documented lora_alpha / lora_rank (tests/test_core.py).",
    "dense/act=sparsemax": "Keras <= 3.15's sparsemax threshold sums every in-support cumulative sum, so its output "
    "does not sum to 1 (keras-team/keras#23425, fixed upstream by #23469); xlayers follows the paper "
    "(tests/test_core.py checks it against Martins & Astudillo's algorithm).",
}

def _dense_onnx_group(case: Case) -> tuple:
    """The input's rank (``Gemm`` or ``MatMul``), the bias and LoRA decide the graph; ``units`` and
    initializers only the weights, and the activation is one node after the product: the first
    activation case carries the check, and tests/test_onnx.py exports every activation against torch."""
    return (len(case.first_input.shape), case.kwargs.get("use_bias", True), "lora_rank" in case.kwargs)


LAYERS = (
    LayerInfo(Dense, DENSE_CASES, DENSE_ERRORS, deviations=DENSE_DEVIATIONS, onnx_group=_dense_onnx_group),
    LayerInfo(Masking, MASKING_CASES, MASKING_ERRORS, driver=MaskingDriver()),
)


# -- Identity ---------------------------------------------------------------------------------


IDENTITY_CASES = (
    Case(Identity, "tensor", {}, (2, 7, 5)),
    Case(Identity, "list", {}, [(2, 3), (2, 5, 4)]),
)

LAYERS = (*LAYERS, LayerInfo(Identity, IDENTITY_CASES))

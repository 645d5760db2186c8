"""Cases for `xlayers/layers/core.py`: Dense and Masking."""

from __future__ import annotations

import itertools

from xlayers import Dense, Masking, activations
from xlayers.errors import ArgumentError, ArgumentTypeError, InputDtypeError, InputShapeError, UnknownNameError

from ..case import Case, ErrorCase, LayerInfo

# activations usable by name (Keras's `threshold` needs two more arguments: an error case)
_ACTIVATIONS = [name for name in activations.names() if name != "threshold"]

DENSE_CASES = (
    *(Case(Dense, f"act={a}", {"units": 6, "activation": a}, (3, 5)) for a in _ACTIVATIONS),
    *(
        Case(Dense, f"rank{len(shape)}-bias{int(bias)}", {"units": 7, "use_bias": bias}, shape, dtypes=("float32", "float64"))
        for shape, bias in itertools.product([(3, 5), (2, 7, 5), (2, 3, 4, 5)], [True, False])
    ),
    Case(Dense, "square-kernel", {"units": 5}, (4, 5)),
    Case(Dense, "lora-r2", {"units": 7, "lora_rank": 2}, (3, 5)),
    Case(Dense, "lora-r2-alpha3", {"units": 7, "lora_rank": 2, "lora_alpha": 3.0}, (3, 5)),
    Case(Dense, "half-relu", {"units": 9, "activation": "relu"}, (4, 11), dtypes=("float16", "bfloat16")),
)

DENSE_ERRORS = (
    ErrorCase("units-zero", {"units": 0}, ArgumentError, r"`Dense`: `units` must be a positive integer\. Received: units=0"),
    ErrorCase("unknown-activation", {"units": 2, "activation": "nope"}, UnknownNameError, r"Received: activation='nope'"),
    ErrorCase("unknown-kwarg", {"units": 2, "bogus": 1}, ArgumentTypeError, r"unrecognized keyword arguments \['bogus'\]"),
    ErrorCase("feature-size", {"units": 2}, InputShapeError, r"expected axis -1 of the input to have size 4.*\(3, 5\)", (3, 5), (3, 4)),
    ErrorCase("rank-1", {"units": 2}, InputShapeError, r"expected an input of rank >= 2\. Received: input shape=\(4,\)", (4,)),
    ErrorCase("integer-input", {"units": 2}, InputDtypeError, r"expected a floating-point input.*Received: dtype=int64", (3, 4), (3, 4), "int64"),
    ErrorCase("unknown-initializer", {"units": 2, "kernel_initializer": "nope"}, UnknownNameError, r"glorot_uniform.*Received: .*'nope'"),
    ErrorCase("units-float", {"units": 3.5}, ArgumentError, r"Received: units=3\.5"),
    ErrorCase("lora-with-constraint", {"units": 2, "lora_rank": 1, "kernel_constraint": "non_neg"}, ArgumentError, r"lora_rank"),
)

MASKING_CASES = (
    Case(Masking, "zeros-right", {"mask_value": 0.0}, (3, 5, 4), mask="right"),
    Case(Masking, "value-1.5-holey", {"mask_value": 1.5}, (2, 6, 3), mask="holey"),
)

DENSE_DEVIATIONS = {
    "dense/lora-r2-alpha3": "Keras 3.15's Dense.build calls enable_lora(rank) and drops the constructor's lora_alpha "
    "(scale 1; Conv2D keeps it); xlayers applies the documented lora_alpha / lora_rank (tests/test_core.py).",
    "dense/act=sparsemax": "Keras <= 3.15's sparsemax threshold sums every in-support cumulative sum, so its output "
    "does not sum to 1 (keras-team/keras#23425, fixed upstream by #23469); xlayers follows the paper "
    "(tests/test_core.py checks it against Martins & Astudillo's algorithm).",
}

LAYERS = (
    LayerInfo(Dense, DENSE_CASES, DENSE_ERRORS, deviations=DENSE_DEVIATIONS),
    LayerInfo(Masking, MASKING_CASES),
)

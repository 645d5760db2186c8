"""Cases for `xlayers/layers/preprocessing.py`: Rescaling and Normalization.

Keras's ``Normalization`` reads its ``mean``/``variance`` variables into constant tensors in
``finalize_state`` (at build, after ``adapt`` and when a ``.keras`` file is loaded), not at each
call: ``set_weights`` alone leaves its output on the old values. The driver calls
``finalize_state`` before each Keras call, as Keras's own loading path does, so the twin runs
on the weights it holds.

Integer inputs (uint8 images into Rescaling) are left to the unit tests: the runner takes the
gradient of every case, and a weightless layer on an integer input has nothing to differentiate.
"""

from __future__ import annotations

from typing import Any

from xlayers import Normalization, Rescaling
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError

from ..case import Case, ErrorCase, LayerInfo
from ..driver import Driver
from ..keras_reference import unwrap


class NormalizationDriver(Driver):
    """Refreshes Keras's cached statistics from its variables before each call."""

    def before_keras_call(self, twin: Any, memo: list[Any], index: int) -> None:
        unwrap(twin).finalize_state()


RESCALING = (
    Case(Rescaling, "scalar", dict(scale=1 / 127.5, offset=-1.0), (2, 5, 6, 3)),
    # per channel, as keras.applications: 1/std and -mean/std
    Case(Rescaling, "per-channel", dict(scale=[0.017, 0.0175, 0.0174], offset=[-2.12, -2.04, -1.8]), (2, 5, 6, 3)),
    Case(Rescaling, "scale-only-rank2", dict(scale=2.5), (3, 7)),
)

NORMALIZATION = (
    # statistics as weights (mean, variance, count), as `adapt` leaves them
    Case(Normalization, "weights-last-axis", dict(), (3, 5, 4)),
    Case(Normalization, "weights-axes-1-3", dict(axis=(1, -1)), (2, 5, 6, 3)),
    Case(Normalization, "weights-axis-none", dict(axis=None), (3, 5, 4)),
    Case(Normalization, "weights-invert", dict(axis=-1, invert=True), (3, 5, 4)),
    # statistics from the config: per feature, aligned from the right on two kept axes, scalar
    Case(Normalization, "config-last-axis", dict(mean=[0.5, -1.0, 2.0, 0.0], variance=[4.0, 0.25, 1.5, 1e-16]), (3, 5, 4)),
    Case(Normalization, "config-right-aligned", dict(axis=(1, 2), mean=[0.5, -1.0, 2.0], variance=[4.0, 0.25, 1.5]), (2, 5, 3, 2)),
    Case(Normalization, "config-scalar-invert", dict(axis=None, mean=1.5, variance=2.25, invert=True), (3, 5, 4)),
)


def _label(name: str, snake: str) -> str:
    return f"^`{name}` layer '{snake}': "


RESCALING_ERRORS = (
    ErrorCase("scale-string", {"scale": "half"}, ArgumentTypeError, _label("Rescaling", "rescaling") + r"`scale` must be a number or a list of numbers"),
    ErrorCase("offset-none", {"scale": 2.0, "offset": None}, ArgumentTypeError, _label("Rescaling", "rescaling") + r"`offset` must be a number"),
)

NORMALIZATION_ERRORS = (
    ErrorCase("mean-alone", {"mean": [1.0, 2.0]}, ArgumentError, _label("Normalization", "normalization") + r"`mean` and `variance` must be set together"),
    ErrorCase("shapes-differ", {"mean": [1.0, 2.0], "variance": [1.0]}, ArgumentError,
              _label("Normalization", "normalization") + r"`mean` and `variance` must have the same shape"),
    ErrorCase("mean-rank", {"mean": [[1.0]], "variance": [[1.0]]}, ArgumentError,
              _label("Normalization", "normalization") + r"the rank of `mean` must be at most the number of axes \(1\)"),
    ErrorCase("axis-range", {"axis": 3}, ArgumentError, _label("Normalization", "normalization") + r"every `axis` must be in \[-3, 3\)", (2, 5, 4)),
    ErrorCase("broadcast", {"mean": [1.0, 2.0], "variance": [1.0, 2.0]}, ArgumentError,
              _label("Normalization", "normalization") + r"`mean` and `variance` of shape \(2,\) do not broadcast", (2, 5, 4)),
    ErrorCase("features", {}, InputShapeError, _label("Normalization", "normalization") + r"expected axis 2 of the input to have size 4", (2, 5, 3), (2, 5, 4)),
)


def _normalization_group(case: Case) -> tuple:
    return ("mean" in case.kwargs, bool(case.kwargs.get("invert")))


LAYERS = (
    LayerInfo(Rescaling, RESCALING, RESCALING_ERRORS, onnx_group=lambda case: "mul-add"),
    LayerInfo(Normalization, NORMALIZATION, NORMALIZATION_ERRORS, driver=NormalizationDriver(), onnx_group=_normalization_group),
)

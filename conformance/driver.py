"""`Driver`: what the generic runner asks a layer family, and the default answers.

The runner knows no layer. Everything particular to a family (how its call arguments are
made, how its Keras twin is built or wrapped, what it shares with Keras between calls, what
it checks beyond outputs and gradients, which records ONNX cannot express and which call
arguments become graph inputs) is a method of the family's driver, written beside its cases
in ``conformance/cases/<family>.py``. The default driver fits a layer that takes its inputs
and, at most, ``training``.

Call arguments are made as numpy data (the same values go to both frameworks): float arrays
become tensors that take gradients (``initial_state``), integer and bool arrays do not
(``mask``); lists and dicts of arrays keep their structure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .keras_reference import keras_twin_from_config
from .records import CaseResult, Check

if TYPE_CHECKING:
    from xlayers.layer import Layer

    from .case import Case

__all__ = ["Driver", "sequence_mask"]

MASK_KINDS = ("right", "holey", "left", "empty-row")


class Driver:
    """The default family driver."""

    def twin(self, layer: Layer, case: Case, dtype: str | None = None) -> Any:
        """The built Keras twin of ``layer`` (Keras's own initial weights). The case's
        constructor arguments win over ``layer.get_config()``, so a layer that misreports its
        configuration cannot make its reference agree with it."""
        return keras_twin_from_config(layer, dtype=dtype, overrides=dict(case.kwargs))

    def arguments(self, layer: Layer, case: Case, inputs: Any, rng: np.random.Generator) -> dict[str, Any]:
        """Call arguments of one call, as numpy data; may edit ``inputs`` in place. ``training``
        goes to every layer whose ``call`` takes it."""
        return {"training": case.training}

    def reset(self, layer: Layer, twin: Any) -> None:
        """Before the calls of one direction of transfer: clear state kept between calls."""

    def after_call(self, layer: Layer, memo: list[Any]) -> None:
        """After each xlayers call: record what Keras must share (e.g. dropout keep patterns)."""

    def before_keras_call(self, twin: Any, memo: list[Any], index: int) -> None:
        """Before Keras's call ``index``: hand it what xlayers' call ``index`` recorded."""

    def check(self, layer: Layer, case: Case, result: CaseResult) -> None:
        """Family checks after the calls (append to ``result.checks``)."""

    def float64_refusal(self, case: Case) -> str:
        """Why Keras cannot run this case in float64 for the noise floor ('' if it can)."""
        return ""

    def onnx_refusal(self, case: Case) -> str:
        """Why this case's call cannot be expressed in an exported graph ('' if it can)."""
        return ""

    def onnx_inputs(self, arguments: dict[str, Any]) -> list[str]:
        """Call arguments that become graph inputs after the layer's inputs, in call order."""
        return []


def expectation(case: Case, key: str, actual: Any) -> Check | None:
    """A check that ``actual`` is what ``case.expect[key]`` says (None if the case expects nothing)."""
    if key not in case.expect:
        return None
    wanted = case.expect[key]
    return Check(key, actual == wanted, detail="" if actual == wanted else f"expected {key} {wanted}, got {actual}")


def sequence_mask(kind: str, batch: int, steps: int) -> np.ndarray:
    """A ``(batch, steps)`` mask of a kind: ``right`` (padding at the end, one row full),
    ``holey`` (gaps anywhere), ``left`` (padding at the start), ``empty-row`` (one row all masked)."""
    if kind not in MASK_KINDS:
        raise ValueError(f"mask kind must be one of {MASK_KINDS}. Received: {kind!r}")
    mask = np.ones((batch, steps), bool)
    if kind == "right":
        for row in range(batch):
            mask[row, max(1, steps - 2 * row - 1):] = False
        mask[-1] = True
    elif kind == "left":
        mask[0, :2] = False
    elif kind == "holey":
        mask[0, [1, steps - 2]] = False
        mask[1 % batch, 0] = False
    else:
        mask[0, 3:] = False
        mask[1 % batch, :] = False
    return mask

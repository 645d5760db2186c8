"""Cases for `xlayers/layers/merging.py`: the elementwise merges, Concatenate and Dot.

Inputs are lists of shapes (batch 3, odd and unequal sizes), with the broadcasts Keras allows
(an input of lower rank, axes of size 1). ``call={"mask": [kind or None, ...]}`` gives each
input a ``(batch, steps)`` mask of that kind (`conformance.driver.sequence_mask`) or none.
Keras's merging layers read masks from their inputs' ``_keras_mask``, not from a ``mask``
argument, so the driver's twin attaches them there; it also records the mask Keras sets on
the output, which the driver's check compares with xlayers' ``compute_mask``.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch

from xlayers import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError
from xlayers.layer import _snake_case

from ..case import Case, ErrorCase, LayerInfo
from ..driver import Driver, sequence_mask
from ..keras_reference import ChannelsFirstTwin
from ..records import CaseResult, Check

THREE = [(3, 5, 7)] * 3
PAIR = [(3, 5, 7), (3, 5, 7)]


class MaskedTwin(ChannelsFirstTwin):
    """The Keras merging layer, called with ``mask=[...]`` as xlayers is: each mask is attached
    to its input (``_keras_mask``, where Keras's merging layers read it). Records, per call,
    the inputs, the masks and the mask Keras set on the output (its propagated mask).

    (A subclass of the generic twin wrapper, so that the runner finds the Keras layer inside.)"""

    def __init__(self, twin: Any) -> None:
        super().__init__(twin)
        self.calls: list[tuple[list[np.ndarray], list[np.ndarray | None] | None, np.ndarray | None]] = []

    def __call__(self, inputs: Any, mask: Any = None, **kwargs: Any) -> Any:
        from keras.src import backend

        if mask is not None:
            for tensor, m in zip(inputs, mask):
                backend.set_keras_mask(tensor, m)
        outputs = self.twin(inputs, **kwargs)
        propagated = backend.get_keras_mask(outputs)
        self.calls.append((
            [np.array(x) for x in inputs],
            None if mask is None else [None if m is None else np.array(m) for m in mask],
            None if propagated is None else np.array(propagated),
        ))
        return outputs

    def get_config(self) -> dict[str, Any]:
        return self.twin.get_config()


class MergeDriver(Driver):
    """Merging layers: per-input masks, attached where Keras reads them, and a check of the
    propagated mask (xlayers' ``compute_mask`` against the mask Keras set on its output)."""

    def __init__(self) -> None:
        self._twins: weakref.WeakKeyDictionary[Any, MaskedTwin] = weakref.WeakKeyDictionary()

    def twin(self, layer: Any, case: Case, dtype: str | None = None) -> Any:
        twin = MaskedTwin(super().twin(layer, case, dtype))
        self._twins.setdefault(layer, twin)  # the case's own twin (the float64 one comes later)
        return twin

    def arguments(self, layer: Any, case: Case, inputs: Any, rng: np.random.Generator) -> dict[str, Any]:
        arguments = super().arguments(layer, case, inputs, rng)
        kinds = case.call.get("mask")
        if kinds:
            arguments["mask"] = [None if kind is None else sequence_mask(kind, *x.shape[:2]) for kind, x in zip(kinds, inputs)]
        return arguments

    def check(self, layer: Any, case: Case, result: CaseResult) -> None:
        twin = self._twins.get(layer)
        if twin is None:
            return
        wrong = []
        for index, (inputs, masks, theirs) in enumerate(twin.calls):
            tensors = [torch.from_numpy(np.ascontiguousarray(x)) for x in inputs]
            ours = layer.compute_mask(tensors, None if masks is None else [None if m is None else torch.from_numpy(m) for m in masks])
            ours = None if ours is None else ours.numpy()
            if (ours is None) != (theirs is None) or (ours is not None and (ours.shape != theirs.shape or not np.array_equal(ours, theirs))):
                wrong.append(f"call {index}: xlayers {None if ours is None else ours.astype(int).tolist()}, "
                             f"keras {None if theirs is None else theirs.astype(int).tolist()}")
        twin.calls.clear()
        result.checks.append(Check("mask", not wrong, detail="" if not wrong else "propagated mask differs: " + "; ".join(wrong)))

    def onnx_refusal(self, case: Case) -> str:
        if case.call.get("mask"):
            return "masks are not inputs of the exported graph (the unmasked cases carry the check)"
        if case.kwargs.get("axis") == 0:
            return "the inputs' batch sizes differ (concatenation along the batch axis); the graph has one dynamic batch"
        return ""


def _onnx_group(case: Case) -> tuple:
    """What decides the exported graph's nodes: masks (refused), and per layer the argument that
    changes them: Dot's ``normalize``, whether Concatenate joins the last axis (or the batch axis,
    refused). Sizes, ranks, the number of inputs and the axes only repeat or re-parametrise the
    same nodes; tests/test_onnx.py checks a lower-rank Add (an Unsqueeze) against torch."""
    axis = case.kwargs.get("axis")
    last = axis is not None and axis in (-1, len(case.first_input.shape) - 1)
    return bool(case.call.get("mask")), case.kwargs.get("normalize", False), axis == 0, last


def _label(cls: type) -> str:
    return rf"^`{cls.__name__}` layer '{_snake_case(cls.__name__)}': "


def _common_errors(cls: type, kwargs: dict[str, Any]) -> tuple[ErrorCase, ...]:
    label = _label(cls)
    return (
        ErrorCase("single-tensor", kwargs, InputShapeError,
                  label + r"expected a list of inputs \(a merge layer merges several tensors\)\. Received: input shape=\(3, 5\)\.", (3, 5)),
        ErrorCase("unknown-kwarg", {**kwargs, "bogus": 1}, ArgumentTypeError,
                  label + r"unrecognized keyword arguments \['bogus'\]\. Received: bogus=1\."),
    )


def _elementwise(cls: type, cases: tuple[Case, ...]) -> LayerInfo:
    return LayerInfo(cls, cases, _common_errors(cls, {}), driver=MergeDriver(), onnx_group=_onnx_group)


ADD_CASES = (
    Case(Add, "three-3x5x7", {}, THREE),
    Case(Add, "single-input", {}, [(3, 5, 7)]),
    Case(Add, "lower-rank", {}, [(3, 5, 7), (3, 7)]),
    Case(Add, "size-one-axes", {}, [(3, 5, 1), (3, 1, 7)]),
    Case(Add, "mask-both", {}, PAIR, call={"mask": ["right", "holey"]}),
    Case(Add, "mask-one", {}, PAIR, call={"mask": ["right", None]}),
    Case(Add, "rank2-float64", {}, [(3, 6), (3, 6)], dtypes=("float32", "float64")),
)

SUBTRACT_CASES = (
    Case(Subtract, "pair-3x5x7", {}, PAIR),
    Case(Subtract, "size-one-axis", {}, [(3, 5, 7), (3, 1, 7)]),
    Case(Subtract, "mask-both", {}, PAIR, call={"mask": ["holey", "left"]}),
)

MULTIPLY_CASES = (
    Case(Multiply, "three-3x5x7", {}, THREE),
    Case(Multiply, "lower-rank", {}, [(3, 7), (3, 5, 7)]),
    Case(Multiply, "mask-all", {}, THREE, call={"mask": ["right", "holey", "left"]}),
    Case(Multiply, "mask-some", {}, THREE, call={"mask": ["right", None, "holey"]}),
)

AVERAGE_CASES = (
    Case(Average, "three-3x5x7", {}, THREE),
    Case(Average, "lower-rank", {}, [(3, 5, 7), (3, 7)]),
    Case(Average, "half", {}, PAIR, dtypes=("float16", "bfloat16")),
    Case(Average, "mask-both", {}, PAIR, call={"mask": ["right", "empty-row"]}),
)

MAXIMUM_CASES = (
    Case(Maximum, "three-3x5x7", {}, THREE),
    Case(Maximum, "size-one-axes", {}, [(3, 5, 1), (3, 5, 7)]),
    Case(Maximum, "mask-all", {}, THREE, call={"mask": ["right", "holey", "left"]}),
    Case(Maximum, "mask-some", {}, THREE, call={"mask": [None, "holey", "right"]}),
)

MINIMUM_CASES = (
    Case(Minimum, "three-3x5x7", {}, THREE),
    Case(Minimum, "mask-all", {}, PAIR, call={"mask": ["holey", "right"]}),
    Case(Minimum, "mask-first", {}, PAIR, call={"mask": ["left", None]}),
)

CONCATENATE_CASES = (
    Case(Concatenate, "axis=-1-equal", {"axis": -1}, THREE),
    Case(Concatenate, "axis=-1-4-7", {"axis": -1}, [(3, 5, 4), (3, 5, 7)]),
    Case(Concatenate, "axis=1", {"axis": 1}, [(3, 5, 4), (3, 2, 4)]),
    Case(Concatenate, "axis=0", {"axis": 0}, [(3, 5, 4), (2, 5, 4)]),
    Case(Concatenate, "axis=-2-rank4", {"axis": -2}, [(3, 2, 5, 4), (3, 2, 3, 4)]),
    Case(Concatenate, "axis=1-mask-one", {"axis": 1}, [(3, 5, 4), (3, 6, 4)], call={"mask": ["holey", None]}),
    Case(Concatenate, "axis=-1-mask-both", {"axis": -1}, [(3, 5, 4), (3, 5, 7)], call={"mask": ["right", "left"]}),
    Case(Concatenate, "axis=-1-mask-one", {"axis": -1}, [(3, 5, 4), (3, 5, 7)], call={"mask": ["right", None]}),
)

DOT_CASES = (
    Case(Dot, "axes=-1-rank2", {"axes": -1}, [(3, 5), (3, 5)]),
    Case(Dot, "axes=1-2", {"axes": (1, 2)}, [(3, 5, 4), (3, 6, 5)]),
    Case(Dot, "axes=2-normalize", {"axes": 2, "normalize": True}, [(3, 4, 5), (3, 6, 5)]),
    Case(Dot, "axes=1-normalize", {"axes": 1, "normalize": True}, [(3, 5, 4), (3, 5, 6)]),
    Case(Dot, "axes=-1-1-rank4-rank2", {"axes": (-1, 1)}, [(3, 2, 4, 5), (3, 5)]),
    Case(Dot, "axes=2-1-rank2-rank3-normalize", {"axes": [1, 2], "normalize": True}, [(3, 5), (3, 4, 5)], dtypes=("float32", "float64")),
    Case(Dot, "axes=2-mask", {"axes": 2}, [(3, 5, 4), (3, 6, 4)], call={"mask": ["right", "holey"]}),
)

_CONCATENATE = _label(Concatenate)
_DOT = _label(Dot)

CONCATENATE_ERRORS = (
    *_common_errors(Concatenate, {"axis": 1}),
    ErrorCase("axis-float", {"axis": 1.5}, ArgumentTypeError, _CONCATENATE + r"`axis` must be an integer\. Received: axis=1\.5\."),
    ErrorCase("axis-bool", {"axis": True}, ArgumentTypeError, _CONCATENATE + r"`axis` must be an integer\. Received: axis=True\."),
)

DOT_ERRORS = (
    *_common_errors(Dot, {"axes": 1}),
    ErrorCase("axes-batch", {"axes": 0}, ArgumentError, _DOT + r"`axes` cannot include the batch axis 0\. Received: axes=0\."),
    ErrorCase("axes-pair-batch", {"axes": (2, 0)}, ArgumentError, _DOT + r"`axes` cannot include the batch axis 0\. Received: axes=\(2, 0\)\."),
    ErrorCase("axes-three", {"axes": (1, 2, 1)}, ArgumentError,
              _DOT + r"`axes` must be an integer or a pair of integers \(one axis per input\)\. Received: axes=\(1, 2, 1\)\."),
    ErrorCase("axes-str", {"axes": "1"}, ArgumentTypeError,
              _DOT + r"`axes` must be an integer or a pair of integers \(one axis per input\)\. Received: axes='1'\."),
    ErrorCase("axes-float-pair", {"axes": (1, 2.0)}, ArgumentTypeError,
              _DOT + r"`axes` must be an integer or a pair of integers \(one axis per input\)\. Received: axes=\(1, 2\.0\)\."),
    ErrorCase("normalize-str", {"axes": 1, "normalize": "yes"}, ArgumentTypeError,
              _DOT + r"`normalize` must be a boolean\. Received: normalize='yes'\."),
)

LAYERS = (
    _elementwise(Add, ADD_CASES),
    _elementwise(Subtract, SUBTRACT_CASES),
    _elementwise(Multiply, MULTIPLY_CASES),
    _elementwise(Average, AVERAGE_CASES),
    _elementwise(Maximum, MAXIMUM_CASES),
    _elementwise(Minimum, MINIMUM_CASES),
    LayerInfo(Concatenate, CONCATENATE_CASES, CONCATENATE_ERRORS, driver=MergeDriver(), onnx_group=_onnx_group),
    LayerInfo(Dot, DOT_CASES, DOT_ERRORS, driver=MergeDriver(), onnx_group=_onnx_group),
)

"""Cases for `xlayers/layers/recurrent.py`: LSTM (and a leaner GRU set) over return_sequences x return_state x
go_backwards x masks, stateful, initial_state, and the arguments that leave the fused path."""

from __future__ import annotations

import inspect
import itertools
from typing import Any

import numpy as np
import torch

from xlayers import GRU, LSTM, SimpleRNN
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError

from ..case import Case, ErrorCase, LayerInfo
from ..driver import Driver, expectation, sequence_mask
from ..keras_reference import unwrap
from ..records import CaseResult

SHAPE = (3, 7, 5)  # batch, time, features: all different, odd
UNITS = 4

FLAGS = tuple(
    Case(
        LSTM,
        f"seq{int(seq)}-state{int(state)}-back{int(back)}-mask-{mask or 'none'}",
        {"units": UNITS, "return_sequences": seq, "return_state": state, "go_backwards": back},
        SHAPE,
        call={"mask": mask} if mask else {},
        expect={"path": "loop" if mask == "holey" else "fused"},
    )
    for seq, state, back, mask in itertools.product([False, True], [False, True], [False, True], [None, "right", "holey"])
)

OTHERS = (
    Case(LSTM, "initial-state", {"units": UNITS, "return_sequences": True, "return_state": True}, SHAPE, call={"initial_state": True}, expect={"path": "fused"}),
    Case(LSTM, "initial-state-back-mask-right", {"units": UNITS, "return_sequences": True, "go_backwards": True}, SHAPE, call={"mask": "right", "initial_state": True}, expect={"path": "fused"}),
    Case(LSTM, "initial-state-loop", {"units": UNITS, "activation": "relu", "return_state": True}, SHAPE, call={"initial_state": True}, expect={"path": "loop"}),
    Case(LSTM, "stateful-seq", {"units": UNITS, "stateful": True, "return_sequences": True}, SHAPE, expect={"path": "fused"}, calls=3),
    Case(LSTM, "stateful-last", {"units": UNITS, "stateful": True, "return_state": True}, SHAPE, expect={"path": "fused"}, calls=2),
    Case(LSTM, "stateful-back-mask-right", {"units": UNITS, "stateful": True, "go_backwards": True, "return_state": True}, SHAPE, call={"mask": "right"}, expect={"path": "fused"}, calls=2),
    Case(LSTM, "stateful-holey-loop", {"units": UNITS, "stateful": True, "return_sequences": True}, SHAPE, call={"mask": "holey"}, expect={"path": "loop"}, calls=2),
    Case(LSTM, "initial-state-mask-holey", {"units": UNITS, "return_sequences": True, "return_state": True}, SHAPE, call={"mask": "holey", "initial_state": True}, expect={"path": "loop"}),
    Case(LSTM, "initial-state-back-seq0", {"units": UNITS, "go_backwards": True}, SHAPE, call={"initial_state": True}, expect={"path": "fused"}),
    Case(LSTM, "mask-left", {"units": UNITS, "return_sequences": True}, SHAPE, call={"mask": "left"}, expect={"path": "loop"}),
    Case(LSTM, "mask-empty-row", {"units": UNITS, "return_sequences": True, "return_state": True}, SHAPE, call={"mask": "empty-row"}, expect={"path": "fused"}),
    Case(LSTM, "mask-empty-row-back", {"units": UNITS, "go_backwards": True, "return_state": True}, SHAPE, call={"mask": "empty-row"}, expect={"path": "fused"}),
    Case(LSTM, "zero-output-for-mask", {"units": UNITS, "return_sequences": True, "zero_output_for_mask": True}, SHAPE, call={"mask": "right"}, expect={"path": "fused"}),
    Case(LSTM, "act-relu", {"units": UNITS, "activation": "relu", "return_sequences": True}, SHAPE, expect={"path": "loop"}),
    Case(LSTM, "act-linear", {"units": UNITS, "activation": "linear"}, SHAPE, expect={"path": "loop"}),
    Case(LSTM, "recurrent-act-hard-sigmoid", {"units": UNITS, "recurrent_activation": "hard_sigmoid", "return_sequences": True}, SHAPE, call={"mask": "right"}, expect={"path": "loop"}),
    Case(LSTM, "no-bias", {"units": UNITS, "use_bias": False, "return_sequences": True}, SHAPE, expect={"path": "fused"}),
    Case(LSTM, "no-unit-forget-bias", {"units": UNITS, "unit_forget_bias": False}, SHAPE, expect={"path": "fused"}),
    Case(LSTM, "unroll", {"units": UNITS, "unroll": True, "return_sequences": True}, SHAPE, expect={"path": "fused"}),
    Case(LSTM, "use-cudnn-false", {"units": UNITS, "use_cudnn": False, "return_sequences": True}, SHAPE, call={"mask": "right"}, expect={"path": "loop"}),
    Case(LSTM, "dropout-inference", {"units": UNITS, "dropout": 0.3, "recurrent_dropout": 0.2, "return_sequences": True}, SHAPE, expect={"path": "fused"}),
    Case(LSTM, "training-dropout", {"units": UNITS, "dropout": 0.4, "return_sequences": True}, SHAPE, call={"training": True}, expect={"path": "fused"}),
    Case(LSTM, "training-dropout-recurrent", {"units": UNITS, "dropout": 0.3, "recurrent_dropout": 0.25, "return_state": True},
         SHAPE, call={"mask": "right", "training": True}, expect={"path": "loop"}),
    Case(LSTM, "wide-float64", {"units": 6, "return_sequences": True}, (2, 9, 3), call={"mask": "right"}, expect={"path": "fused"}, dtypes=("float32", "float64")),
    Case(LSTM, "loop-float64", {"units": 5, "activation": "relu", "return_state": True}, (2, 6, 3), expect={"path": "loop"}, dtypes=("float64",)),
    Case(LSTM, "half", {"units": 8, "return_sequences": True}, (2, 6, 5), dtypes=("float16", "bfloat16")),
    Case(LSTM, "mixed", {"units": 8, "return_sequences": True}, (2, 6, 5), dtypes=("mixed_float16", "mixed_bfloat16")),
)

_LSTM = r"^`LSTM` layer 'lstm': "

ERRORS = (
    ErrorCase("units-zero", {"units": 0}, ArgumentError, _LSTM + r"`units` must be a positive integer"),
    ErrorCase("dropout-range", {"units": 3, "dropout": 1.5}, ArgumentError, _LSTM + r"`dropout` must be a float in \[0, 1\]"),
    ErrorCase("use-cudnn-activation", {"units": 3, "activation": "relu", "use_cudnn": True}, ArgumentError, _LSTM + r"`use_cudnn=True` needs"),
    ErrorCase("rank-2", {"units": 3}, InputShapeError, _LSTM + r"expected an input of rank 3", (3, 5)),
    ErrorCase("no-timesteps", {"units": 3}, InputShapeError, _LSTM + r".*at least one time step", (2, 0, 4)),
    ErrorCase("features", {"units": 3}, InputShapeError, _LSTM + r"expected axis -1 of the input to have size 5", (3, 7, 6), (3, 7, 5)),
    ErrorCase("seed-str", {"units": 3, "seed": "a"}, ArgumentTypeError, _LSTM + r"`seed` must be an int or None\. Received: seed='a'\."),
    ErrorCase("initial-state-count", {"units": 3}, ArgumentError, _LSTM + r"`initial_state` must be a list of 2 states \[h, c\]\. Received: 1 states\.",
              (2, 4, 5), call={"initial_state": [np.zeros((2, 3), np.float32)]}),
    ErrorCase("initial-state-none", {"units": 3}, ArgumentTypeError, _LSTM + r"initial state `h` must be a tensor or an array of numbers\. Received: h of type NoneType\.",
              (2, 4, 5), call={"initial_state": [None, np.zeros((2, 3), np.float32)]}),
    ErrorCase("mask-str", {"units": 3}, ArgumentTypeError, _LSTM + r"`mask` must be a tensor or array of booleans.*Received: mask of type str\.",
              (2, 4, 5), call={"mask": "abc"}),
    ErrorCase("mask-meta", {"units": 3}, ArgumentTypeError, _LSTM + r"`mask` must hold booleans on a device with data\. Received: mask of dtype torch\.bool on meta\.",
              (2, 4, 5), call={"mask": torch.ones(2, 4, dtype=torch.bool, device="meta")}),
)


class RecurrentDriver(Driver):
    """Recurrent layers: ``call={"mask": kind}`` passes a ``(batch, time)`` mask of that kind
    (`conformance.driver.sequence_mask`), ``{"initial_state": True}`` random initial states,
    ``{"training": True}`` calls in training mode with Keras dropping the units xlayers
    dropped (only the keep pattern is shared; each framework scales its own).
    ``expect={"path": ...}`` is the kernel path (``"fused"`` or ``"loop"``) the layer must take."""

    def arguments(self, layer: Any, case: Case, inputs: Any, rng: np.random.Generator) -> dict[str, Any]:
        arguments = super().arguments(layer, case, inputs, rng)
        batch, steps = inputs.shape[:2]
        if case.call.get("mask"):
            arguments["mask"] = sequence_mask(case.call["mask"], batch, steps)
        if case.call.get("initial_state"):
            arguments["initial_state"] = [rng.standard_normal(shape).astype(inputs.dtype) for shape in layer.state_shapes(batch)]
        return arguments

    def reset(self, layer: Any, twin: Any) -> None:
        if layer.stateful:
            layer.reset_state()
            twin.reset_state()

    def after_call(self, layer: Any, memo: list[Any]) -> None:
        memo.append(layer.last_dropout_masks)

    def before_keras_call(self, twin: Any, memo: list[Any], index: int) -> None:
        cell = unwrap(twin).cell
        if index < len(memo) and memo[index] is not None:  # Keras's cell caches its masks per call
            dropout, recurrent = memo[index]
            cell._dropout_mask = _keras_mask(dropout, cell.dropout)
            cell._recurrent_dropout_mask = _keras_mask(recurrent, cell.recurrent_dropout)

    def check(self, layer: Any, case: Case, result: CaseResult) -> None:
        result.path = layer.last_path
        check = expectation(case, "path", layer.last_path)
        if check is not None:
            result.checks.append(check)

    def onnx_refusal(self, case: Case) -> str:
        if case.call.get("mask") in ("holey", "left"):
            return "the exported graph takes masks as right-padded (ONNX's recurrent operators take sequence lengths)"
        if case.call.get("initial_state"):
            return "initial states are call arguments the export does not take"
        return ""

    def onnx_inputs(self, arguments: dict[str, Any]) -> list[str]:
        return ["mask"] if "mask" in arguments else []


def _keras_mask(mask: Any, rate: float) -> Any:
    """The units xlayers kept, as the mask Keras's cell caches (one tensor, or one per gate).
    Only the keep pattern is shared: the values are Keras's own, ``keep / (1 - rate)``, so a
    wrongly scaled mask in xlayers still shows."""
    import tensorflow as tf

    if mask is None:
        return None
    keep = mask.detach().cpu().numpy() != 0
    array = (keep / (1.0 - rate)).astype(np.float32)
    return [tf.constant(m) for m in array] if array.ndim == 3 else tf.constant(array)


def _onnx_group(case: Case) -> str:
    """``return_sequences``, ``return_state`` and ``unroll`` leave the exported recurrence as it is
    (they pick outputs, or mean nothing to torch), ``units`` only sizes it, dropout is off in an
    exported graph, and an empty row is one more right-padded row (``sequence_lens`` 0): one ONNX
    check covers them."""
    call = {**case.call, "mask": "right"} if case.call.get("mask") == "empty-row" else case.call
    defaults = {name: p.default for name, p in inspect.signature(case.layer.__init__).parameters.items()}
    kwargs = {k: v for k, v in case.kwargs.items() if k not in _OUTPUT_ONLY and defaults.get(k, object()) != v}
    return Case(case.layer, case.variant, kwargs, case.inputs, call, case.calls, case.expect, case.dtypes).configuration()


_OUTPUT_ONLY = ("return_sequences", "return_state", "unroll", "units", "dropout", "recurrent_dropout", "seed")

GRU_FLAGS = tuple(
    Case(
        GRU,
        f"seq{int(seq)}-state{int(state)}-back{int(back)}-mask-{mask or 'none'}",
        {"units": UNITS, "return_sequences": seq, "return_state": state, "go_backwards": back},
        SHAPE,
        call={"mask": mask} if mask else {},
        expect={"path": "loop" if mask == "holey" else "fused"},
    )
    for seq, state, back, mask in (
        (True, False, False, None), (False, True, False, None), (True, True, True, None),
        (True, False, False, "right"), (False, True, True, "right"), (True, False, False, "holey"),
        (True, True, True, "holey"),
    )
)

GRU_OTHERS = (
    Case(GRU, "initial-state", {"units": UNITS, "return_sequences": True, "return_state": True}, SHAPE, call={"initial_state": True}, expect={"path": "fused"}),
    Case(GRU, "stateful-last", {"units": UNITS, "stateful": True, "return_state": True}, SHAPE, expect={"path": "fused"}, calls=2),
    Case(GRU, "mask-left", {"units": UNITS, "return_sequences": True}, SHAPE, call={"mask": "left"}, expect={"path": "loop"}),
    Case(GRU, "mask-empty-row", {"units": UNITS, "return_sequences": True, "return_state": True}, SHAPE, call={"mask": "empty-row"}, expect={"path": "fused"}),
    Case(GRU, "reset-before", {"units": UNITS, "reset_after": False, "return_sequences": True}, SHAPE, expect={"path": "loop"}),
    Case(GRU, "reset-before-mask-right-state", {"units": UNITS, "reset_after": False, "return_state": True}, SHAPE,
         call={"mask": "right", "initial_state": True}, expect={"path": "loop"}),
    Case(GRU, "act-relu", {"units": UNITS, "activation": "relu", "return_sequences": True}, SHAPE, expect={"path": "loop"}),
    Case(GRU, "recurrent-act-hard-sigmoid", {"units": UNITS, "recurrent_activation": "hard_sigmoid"}, SHAPE, expect={"path": "loop"}),
    Case(GRU, "no-bias", {"units": UNITS, "use_bias": False, "return_sequences": True}, SHAPE, expect={"path": "fused"}),
    Case(GRU, "no-bias-reset-before", {"units": UNITS, "use_bias": False, "reset_after": False}, SHAPE, expect={"path": "loop"}),
    Case(GRU, "training-dropout", {"units": UNITS, "dropout": 0.4, "return_sequences": True}, SHAPE, call={"training": True}, expect={"path": "fused"}),
    Case(GRU, "training-dropout-recurrent", {"units": UNITS, "dropout": 0.3, "recurrent_dropout": 0.25, "return_state": True},
         SHAPE, call={"mask": "right", "training": True}, expect={"path": "loop"}),
    Case(GRU, "training-dropout-recurrent-reset-before", {"units": UNITS, "dropout": 0.3, "recurrent_dropout": 0.25, "reset_after": False},
         SHAPE, call={"training": True}, expect={"path": "loop"}),
    Case(GRU, "wide-float64", {"units": 6, "return_sequences": True}, (2, 9, 3), call={"mask": "right"}, expect={"path": "fused"}, dtypes=("float32", "float64")),
    Case(GRU, "loop-float64", {"units": 5, "reset_after": False, "return_state": True}, (2, 6, 3), expect={"path": "loop"}, dtypes=("float64",)),
    Case(GRU, "half", {"units": 8, "return_sequences": True}, (2, 6, 5), dtypes=("float16", "bfloat16")),
)

_GRU = r"^`GRU` layer 'gru': "

GRU_ERRORS = (
    ErrorCase("units-zero", {"units": 0}, ArgumentError, _GRU + r"`units` must be a positive integer"),
    ErrorCase("use-cudnn-reset-before", {"units": 3, "reset_after": False, "use_cudnn": True}, ArgumentError, _GRU + r"`use_cudnn=True` needs"),
    ErrorCase("initial-state-count", {"units": 3}, ArgumentError, _GRU + r"`initial_state` must be a list of 1 states \[h\]\. Received: 2 states\.",
              (2, 4, 5), call={"initial_state": [np.zeros((2, 3), np.float32)] * 2}),
)

RNN_CASES = (
    Case(SimpleRNN, "seq1-state0-back0-mask-none", {"units": UNITS, "return_sequences": True}, SHAPE, expect={"path": "fused"}),
    Case(SimpleRNN, "seq0-state1-back1-mask-none", {"units": UNITS, "return_state": True, "go_backwards": True}, SHAPE, expect={"path": "fused"}),
    Case(SimpleRNN, "seq0-state0-back1-mask-right", {"units": UNITS, "go_backwards": True}, SHAPE, call={"mask": "right"}, expect={"path": "fused"}),
    Case(SimpleRNN, "seq1-state0-back0-mask-right", {"units": UNITS, "return_sequences": True}, SHAPE, call={"mask": "right"}, expect={"path": "fused"}),
    Case(SimpleRNN, "seq1-state1-back1-mask-holey", {"units": UNITS, "return_sequences": True, "return_state": True, "go_backwards": True}, SHAPE,
         call={"mask": "holey"}, expect={"path": "loop"}),
    Case(SimpleRNN, "mask-empty-row", {"units": UNITS, "return_sequences": True, "return_state": True}, SHAPE, call={"mask": "empty-row"}, expect={"path": "fused"}),
    Case(SimpleRNN, "initial-state", {"units": UNITS, "return_sequences": True, "return_state": True}, SHAPE, call={"initial_state": True}, expect={"path": "fused"}),
    Case(SimpleRNN, "stateful-last", {"units": UNITS, "stateful": True, "return_state": True}, SHAPE, expect={"path": "fused"}, calls=2),
    Case(SimpleRNN, "act-relu", {"units": UNITS, "activation": "relu", "return_sequences": True}, SHAPE, expect={"path": "fused"}),
    Case(SimpleRNN, "act-sigmoid", {"units": UNITS, "activation": "sigmoid", "return_sequences": True}, SHAPE, expect={"path": "loop"}),
    Case(SimpleRNN, "no-bias", {"units": UNITS, "use_bias": False}, SHAPE, expect={"path": "fused"}),
    Case(SimpleRNN, "training-dropout", {"units": UNITS, "dropout": 0.4, "return_sequences": True}, SHAPE, call={"training": True}, expect={"path": "fused"}),
    Case(SimpleRNN, "training-dropout-recurrent", {"units": UNITS, "dropout": 0.3, "recurrent_dropout": 0.25, "return_state": True},
         SHAPE, call={"mask": "right", "training": True}, expect={"path": "loop"}),
    Case(SimpleRNN, "wide-float64", {"units": 6, "return_sequences": True}, (2, 9, 3), call={"mask": "right"}, expect={"path": "fused"}, dtypes=("float32", "float64")),
    Case(SimpleRNN, "half", {"units": 8, "return_sequences": True}, (2, 6, 5), dtypes=("float16", "bfloat16")),
)

_RNN = r"^`SimpleRNN` layer 'simple_rnn': "

RNN_ERRORS = (
    ErrorCase("units-zero", {"units": 0}, ArgumentError, _RNN + r"`units` must be a positive integer"),
    ErrorCase("rank-2", {"units": 3}, InputShapeError, _RNN + r"expected an input of rank 3", (3, 5)),
)

LAYERS = (
    LayerInfo(SimpleRNN, RNN_CASES, RNN_ERRORS, driver=RecurrentDriver(), onnx_group=_onnx_group),
    LayerInfo(LSTM, FLAGS + OTHERS, ERRORS, driver=RecurrentDriver(), onnx_group=_onnx_group),
    LayerInfo(GRU, GRU_FLAGS + GRU_OTHERS, GRU_ERRORS, driver=RecurrentDriver(), onnx_group=_onnx_group),
)

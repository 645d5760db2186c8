"""Cases for `xlayers/layers/rnn_cells.py`: ``RNN(cell)`` over the built-in cells (the fused ops and
the op's loop) and over a `StackedRNNCells` of two different cells (the loop calling the cell), with
return_sequences / return_state / go_backwards, every mask kind, initial states, stateful calls,
training dropout (the keep pattern shared with Keras) and float64; and each cell called alone, one
step with random states (whose gradients are checked as call arguments).

A case gives its cell as Keras's serialized form (``{"module": "keras.layers", "class_name":
"LSTMCell", "config": {...}}``): plain data, which `RNN` deserializes as Keras's ``from_config``
does. Each cell config names its cell, so both frameworks report the same nested config.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xlayers import RNN, GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError
from xlayers.layer import dtype_name, map_structure

from ..case import Case, ErrorCase, LayerInfo
from ..driver import expectation, sequence_mask
from ..keras_reference import keras_twin_from_config, unwrap
from ..records import CaseResult
from .recurrent import RecurrentDriver, _keras_mask

SHAPE = (3, 7, 5)  # batch, time, features: all different, odd
STEP = (3, 5)  # one step of it, for a cell called alone


def cell(class_name: str, name: str, **config: Any) -> dict[str, Any]:
    """A cell as Keras serializes it: what a case passes for ``cell``."""
    return {"module": "keras.layers", "class_name": class_name, "config": {"name": name, **config}, "registered_name": None}


def stacked(name: str, *cells: dict[str, Any]) -> dict[str, Any]:
    return cell("StackedRNNCells", name, cells=list(cells))


LSTM4 = cell("LSTMCell", "lstm_cell", units=4)
GRU3 = cell("GRUCell", "gru_cell", units=3)
STACK = stacked("stacked", cell("LSTMCell", "first", units=4), cell("GRUCell", "second", units=3, reset_after=False))


def _rnn(variant: str, cell_config: dict[str, Any], path: str, call: dict[str, Any] | None = None, calls: int = 1,
         dtypes: tuple[str, ...] = ("float32",), **kwargs: Any) -> Case:
    return Case(RNN, variant, {"cell": cell_config, **kwargs}, SHAPE, call=call or {}, calls=calls, expect={"path": path}, dtypes=dtypes)


RNN_CASES = (
    # LSTMCell: torch's fused kernel (as LSTM), the op's loop where a call needs it
    _rnn("lstm-seq1-state1", LSTM4, "fused", return_sequences=True, return_state=True),
    _rnn("lstm-back-mask-right-state1", LSTM4, "fused", {"mask": "right"}, go_backwards=True, return_state=True),
    _rnn("lstm-mask-holey-seq1-unroll", LSTM4, "loop", {"mask": "holey"}, return_sequences=True, unroll=True),
    _rnn("lstm-initial-state", LSTM4, "fused", {"initial_state": True}, return_sequences=True, return_state=True),
    _rnn("lstm-stateful", LSTM4, "fused", calls=2, stateful=True, return_state=True),
    _rnn("lstm-zero-output-mask-right", LSTM4, "fused", {"mask": "right"}, return_sequences=True, zero_output_for_mask=True),
    _rnn("lstm-training-dropout", cell("LSTMCell", "lstm_cell", units=4, dropout=0.4, seed=3), "fused", {"training": True},
         return_sequences=True),
    _rnn("lstm-training-dropout-recurrent", cell("LSTMCell", "lstm_cell", units=4, dropout=0.3, recurrent_dropout=0.25),
         "loop", {"training": True, "mask": "right"}, return_state=True),
    # a configuration no fused kernel computes: the loop calling the cell
    _rnn("lstm-relu-no-bias-mask-left-state1", cell("LSTMCell", "lstm_cell", units=4, activation="relu", use_bias=False,
                                                    recurrent_activation="hard_sigmoid"),
         "cell", {"mask": "left"}, return_sequences=True, return_state=True),
    # GRUCell, reset_after True (fused) and False (the loop calling the cell)
    _rnn("gru-seq1-state1-mask-right", GRU3, "fused", {"mask": "right"}, return_sequences=True, return_state=True),
    _rnn("gru-mask-empty-row-back", GRU3, "fused", {"mask": "empty-row"}, go_backwards=True, return_state=True),
    _rnn("gru-reset-before-back-holey-state1", cell("GRUCell", "gru_cell", units=3, reset_after=False), "cell",
         {"mask": "holey", "initial_state": True}, return_sequences=True, return_state=True, go_backwards=True),
    _rnn("gru-training-dropout-recurrent", cell("GRUCell", "gru_cell", units=3, dropout=0.3, recurrent_dropout=0.25),
         "loop", {"training": True, "initial_state": True}, return_sequences=True),
    # SimpleRNNCell
    _rnn("simple-back-mask-right-seq1", cell("SimpleRNNCell", "simple_rnn_cell", units=4), "fused", {"mask": "right"},
         return_sequences=True, go_backwards=True),
    _rnn("simple-sigmoid-holey-state1", cell("SimpleRNNCell", "simple_rnn_cell", units=4, activation="sigmoid"), "cell",
         {"mask": "holey"}, return_state=True),
    _rnn("simple-training-dropout-recurrent", cell("SimpleRNNCell", "simple_rnn_cell", units=4, dropout=0.3,
                                                   recurrent_dropout=0.25), "loop", {"training": True}, return_sequences=True),
    # StackedRNNCells of two different cells: the loop calling the cells
    _rnn("stacked-seq1-state1", STACK, "cell", return_sequences=True, return_state=True),
    _rnn("stacked-back-holey-state1", STACK, "cell", {"mask": "holey"}, go_backwards=True, return_state=True),
    _rnn("stacked-mask-right-seq1", STACK, "cell", {"mask": "right"}, return_sequences=True),
    _rnn("stacked-mask-left-back-seq1", STACK, "cell", {"mask": "left"}, return_sequences=True, go_backwards=True),
    _rnn("stacked-mask-empty-row-zero-output", STACK, "cell", {"mask": "empty-row"}, return_sequences=True,
         return_state=True, zero_output_for_mask=True),
    _rnn("stacked-initial-state", STACK, "cell", {"initial_state": True}, return_sequences=True, return_state=True),
    _rnn("stacked-stateful", STACK, "cell", calls=3, stateful=True, return_state=True),
    _rnn("stacked-training-dropout",
         stacked("stacked", cell("LSTMCell", "first", units=4, dropout=0.3, recurrent_dropout=0.2, seed=5),
                 cell("GRUCell", "second", units=3, dropout=0.25)),
         "cell", {"training": True}, return_sequences=True, return_state=True),
    _rnn("stacked-three-float64",
         stacked("stacked", cell("SimpleRNNCell", "first", units=4), cell("LSTMCell", "second", units=3, unit_forget_bias=False),
                 cell("LSTMCell", "third", units=2)),
         "cell", {"mask": "right"}, dtypes=("float64",), return_sequences=True, return_state=True),
)

_RNN = r"^`RNN` layer 'rnn': "

RNN_ERRORS = (
    ErrorCase("cell-int", {"cell": 3}, ArgumentTypeError, _RNN + r"`cell` must be a cell .*Received: cell=3\."),
    ErrorCase("cell-unknown", {"cell": cell("NoCell", "c", units=3)}, ArgumentError, _RNN + r"`class_name` must be one of the \d+ xlayers layers"),
    ErrorCase("rank-2", {"cell": LSTM4}, InputShapeError, _RNN + r"expected an input of rank 3", (3, 5)),
    ErrorCase("initial-state-count", {"cell": LSTM4}, ArgumentError,
              _RNN + r"`initial_state` must hold the cell's 2 states .*Received: 1 states in 1 entries\.",
              (2, 4, 5), call={"initial_state": [np.zeros((2, 4), np.float32)]}),
    ErrorCase("initial-state-stacked-flat", {"cell": STACK}, ArgumentError,
              _RNN + r"`initial_state` must hold the cell's 3 states .*Received: 3 states in 3 entries\.",
              (2, 4, 5), call={"initial_state": [np.zeros((2, 4), np.float32)] * 2 + [np.zeros((2, 3), np.float32)]}),
    ErrorCase("initial-state-shape", {"cell": GRU3}, InputShapeError,
              _RNN + r"initial state 0 must have shape \(batch, units\) = \(2, 3\)\. Received: shape=\(2, 4\)\.",
              (2, 4, 5), call={"initial_state": [np.zeros((2, 4), np.float32)]}),
    ErrorCase("mask-shape", {"cell": STACK}, InputShapeError, _RNN + r"`mask` must have shape \(batch, timesteps\) = \(2, 4\)",
              (2, 4, 5), call={"mask": np.ones((2, 3), bool)}),
)


def _step(layer: type, variant: str, kwargs: dict[str, Any], training: bool = False) -> Case:
    return Case(layer, variant, kwargs, STEP, call={"training": True} if training else {})


CELL_CASES = (
    _step(LSTMCell, "step", {"units": 4}),
    _step(LSTMCell, "relu-no-bias", {"units": 4, "activation": "relu", "use_bias": False}),
    _step(LSTMCell, "training-dropout-recurrent", {"units": 4, "dropout": 0.3, "recurrent_dropout": 0.25, "unit_forget_bias": False,
                                                   "recurrent_activation": "hard_sigmoid", "bias_initializer": "ones"}, training=True),
)
GRU_CELL_CASES = (
    _step(GRUCell, "step", {"units": 3}),
    _step(GRUCell, "reset-before-training-dropout", {"units": 3, "reset_after": False, "dropout": 0.4}, training=True),
    _step(GRUCell, "training-dropout-recurrent", {"units": 3, "dropout": 0.3, "recurrent_dropout": 0.25, "use_bias": False}, training=True),
)
SIMPLE_CELL_CASES = (
    _step(SimpleRNNCell, "step", {"units": 4}),
    _step(SimpleRNNCell, "relu-no-bias-training-dropout", {"units": 4, "activation": "relu", "use_bias": False, "dropout": 0.3,
                                                           "recurrent_dropout": 0.25}, training=True),
)
STACKED_CASES = (
    _step(StackedRNNCells, "lstm-gru", {"cells": [cell("LSTMCell", "first", units=4), cell("GRUCell", "second", units=3)]}),
    _step(StackedRNNCells, "simple-lstm-lstm", {"cells": [cell("SimpleRNNCell", "first", units=4), cell("LSTMCell", "second", units=3),
                                                          cell("LSTMCell", "third", units=2)]}),
)


def _label(name: str, snake: str) -> str:
    return rf"^`{name}` layer '{snake}': "


CELL_ERRORS = (
    ErrorCase("units-zero", {"units": 0}, ArgumentError, _label("LSTMCell", "lstm_cell") + r"`units` must be a positive integer"),
    ErrorCase("dropout-range", {"units": 3, "dropout": 1.5}, ArgumentError,
              _label("LSTMCell", "lstm_cell") + r"`dropout` must be a float in \[0, 1\]"),
    ErrorCase("states-count", {"units": 3}, ArgumentError,
              _label("LSTMCell", "lstm_cell") + r"`states` must be a list of 2 states\. Received: 1 states\.",
              (2, 5), call={"states": [np.zeros((2, 3), np.float32)]}),
)
GRU_CELL_ERRORS = (
    ErrorCase("seed-str", {"units": 3, "seed": "a"}, ArgumentTypeError,
              _label("GRUCell", "gru_cell") + r"`seed` must be an int or None\. Received: seed='a'\."),
    ErrorCase("state-shape", {"units": 3}, InputShapeError,
              _label("GRUCell", "gru_cell") + r"state 0 must have shape \(batch, units\) = \(2, 3\)\. Received: shape=\(2, 4\)\.",
              (2, 5), call={"states": [np.zeros((2, 4), np.float32)]}),
)
SIMPLE_CELL_ERRORS = (
    ErrorCase("recurrent-dropout-range", {"units": 3, "recurrent_dropout": -0.1}, ArgumentError,
              _label("SimpleRNNCell", "simple_rnn_cell") + r"`recurrent_dropout` must be a float in \[0, 1\]"),
)
STACKED_ERRORS = (
    ErrorCase("cells-empty", {"cells": []}, ArgumentTypeError,
              _label("StackedRNNCells", "stacked_rnn_cells") + r"`cells` must be a non-empty list of cells\. Received: cells=\[\]\."),
    ErrorCase("states-per-cell", {"cells": [LSTM4, GRU3]}, ArgumentError,
              _label("StackedRNNCells", "stacked_rnn_cells") + r"`states` must be a list with one entry per cell \(2\)\. Received: 3 entries\.",
              (2, 5), call={"states": [np.zeros((2, 4), np.float32)] * 2 + [np.zeros((2, 3), np.float32)]}),
)


# -- the driver -------------------------------------------------------------------------------------


def _with_dtype(config: Any, policy: str) -> Any:
    """A serialized cell (nested for a `StackedRNNCells`) with ``policy`` where it names no dtype:
    what xlayers' `RNN(dtype=...)` gives a cell config, as the Keras twin's configuration."""
    if not isinstance(config, dict):
        return config
    inner = dict(config.get("config") or {})
    inner.setdefault("dtype", policy)
    if "cells" in inner:
        inner["cells"] = [_with_dtype(c, policy) for c in inner["cells"]]
    return {**config, "config": inner}


def _keras_cells(layer: Any) -> list[Any]:
    """The Keras cells that draw dropout masks, in xlayers' order (`rnn_cells._dropout_cells`)."""
    if hasattr(layer, "cells"):
        return [inner for c in layer.cells for inner in _keras_cells(c)]
    if hasattr(layer, "cell"):
        return _keras_cells(layer.cell)
    return [layer]


def _ours(layer: Any) -> list[Any]:
    if isinstance(layer, StackedRNNCells):
        return [inner for c in layer.cells for inner in _ours(c)]
    if isinstance(layer, RNN):
        return _ours(layer.cell)
    return [layer]


def _variables(states: Any) -> list[Any]:
    """The state variables of a Keras RNN, flattened (nested in lists for a stack)."""
    if states is None:
        return []
    if hasattr(states, "assign"):
        return [states]
    return [v for item in states for v in _variables(item)]


def _plain(states: Any) -> Any:
    return states if hasattr(states, "assign") else [_plain(item) for item in states]


class RNNCellsDriver(RecurrentDriver):
    """`RecurrentDriver` for ``RNN(cell)`` and the cells alone: the initial states in the cell's
    structure (one list per cell of a stack), a cell alone called with random ``states``, the
    dropout keep patterns of every cell shared with Keras's cells, and a twin whose cells carry
    the record's dtype (as xlayers' `RNN(dtype=...)` gives its cell config)."""

    def twin(self, layer: Any, case: Case, dtype: str | None = None) -> Any:
        policy = dtype or dtype_name(layer.dtype)
        overrides = dict(case.kwargs)
        if "cell" in overrides:
            overrides["cell"] = _with_dtype(overrides["cell"], policy)
        if "cells" in overrides:
            overrides["cells"] = [_with_dtype(c, policy) for c in overrides["cells"]]
        twin = keras_twin_from_config(layer, dtype=dtype, overrides=overrides)
        if getattr(twin, "states", None) is not None:
            # a stateful stack's states are tracked lists (`ListWrapper`), which Keras's outputs then
            # repeat and the runner cannot walk: the same variables in plain lists
            object.__setattr__(twin, "states", _plain(twin.states))
        return twin

    def arguments(self, layer: Any, case: Case, inputs: Any, rng: np.random.Generator) -> dict[str, Any]:
        arguments: dict[str, Any] = {"training": case.training}
        batch = inputs.shape[0]
        if not isinstance(layer, RNN):  # a cell alone: one step with random states
            states = layer.get_initial_state(batch)
            arguments["states"] = map_structure(lambda s: rng.standard_normal(tuple(s.shape)).astype(inputs.dtype), states)
            return arguments
        if case.call.get("mask"):
            arguments["mask"] = sequence_mask(case.call["mask"], batch, inputs.shape[1])
        if case.call.get("initial_state"):
            arguments["initial_state"] = map_structure(lambda shape: rng.standard_normal(shape).astype(inputs.dtype), layer.state_shapes(batch))
        return arguments

    def reset(self, layer: Any, twin: Any) -> None:
        if isinstance(layer, RNN) and layer.stateful:
            layer.reset_state()
            # Keras 3.15's `RNN.reset_state` fails on nested states (a stack's): zero each variable
            for variable in _variables(unwrap(twin).states):
                variable.assign(np.zeros(tuple(variable.shape), variable.dtype))
        for ours in _ours(layer):
            ours.reset_dropout_mask()
            ours.reset_recurrent_dropout_mask()
        for theirs in _keras_cells(unwrap(twin)):
            theirs.reset_dropout_mask()
            theirs.reset_recurrent_dropout_mask()

    def after_call(self, layer: Any, memo: list[Any]) -> None:
        memo.append([cell.last_dropout_masks for cell in _ours(layer)])

    def before_keras_call(self, twin: Any, memo: list[Any], index: int) -> None:
        if index >= len(memo):
            return
        for theirs, (dropout, recurrent) in zip(_keras_cells(unwrap(twin)), memo[index]):
            theirs._dropout_mask = _keras_mask(dropout, theirs.dropout)
            theirs._recurrent_dropout_mask = _keras_mask(recurrent, theirs.recurrent_dropout)

    def check(self, layer: Any, case: Case, result: CaseResult) -> None:
        if isinstance(layer, RNN):
            result.path = layer.last_path
            check = expectation(case, "path", layer.last_path)
            if check is not None:
                result.checks.append(check)

    def onnx_refusal(self, case: Case) -> str:
        return "a cell alone is one step, with its states as call arguments" if case.layer is not RNN else super().onnx_refusal(case)


DRIVER = RNNCellsDriver()

LAYERS = (
    LayerInfo(RNN, RNN_CASES, RNN_ERRORS, driver=DRIVER),
    LayerInfo(LSTMCell, CELL_CASES, CELL_ERRORS, driver=DRIVER),
    LayerInfo(GRUCell, GRU_CELL_CASES, GRU_CELL_ERRORS, driver=DRIVER),
    LayerInfo(SimpleRNNCell, SIMPLE_CELL_CASES, SIMPLE_CELL_ERRORS, driver=DRIVER),
    LayerInfo(StackedRNNCells, STACKED_CASES, STACKED_ERRORS, driver=DRIVER),
)

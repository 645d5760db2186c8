"""Cases for `xlayers/layers/wrappers.py`: Bidirectional over LSTM, GRU and SimpleRNN (every merge_mode,
return_sequences x return_state, an explicit backward_layer of another configuration, masks of every kind,
initial_state, stateful, training dropout per direction) and TimeDistributed over Dense, Conv2D,
BatchNormalization (inference, and training: per-step statistics), GlobalAveragePooling1D and LSTM with a mask
given to the wrapper.

A case gives the wrapped layer as the serialized config Keras writes (`layer(...)` below), which both
frameworks' constructors take: the xlayers wrapper deserializes it, and the Keras twin is built from the
case's own nested configs (`WrapperDriver.twin`), never from xlayers' report of them.

No case combines ``stateful`` with ``return_state``: Keras 3.15's ``Bidirectional.compute_mask`` then
multiplies a generator by 2 (``(None for _ in self.states) * 2``) and every call of the Keras layer raises
``TypeError``; the stateful cases return sequences or the last output (xlayers' carried states are
checked through the next call's outputs)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from xlayers import GRU, LSTM, RNN, BatchNormalization, Conv2D, Dense, GlobalAveragePooling1D, LSTMCell, SimpleRNN
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError
from xlayers.layers.wrappers import Bidirectional, TimeDistributed

from ..case import Case, ErrorCase, LayerInfo
from ..driver import Driver, sequence_mask
from ..keras_reference import keras
from .normalization import NormalizationDriver
from .recurrent import RecurrentDriver

SHAPE = (3, 7, 5)  # batch, time, features: all different, odd
UNITS = 4
NESTED = ("layer", "backward_layer")


def layer(cls: type, **config: Any) -> dict[str, Any]:
    """The serialized config of a wrapped layer, as Keras's ``serialize_keras_object`` writes it."""
    return {"module": "keras.layers", "class_name": cls.__name__, "config": config, "registered_name": None}


def _normal(value: Any) -> Any:
    """A config value up to spelling: a dtype policy by its name, lists as tuples, integral floats as ints."""
    if isinstance(value, dict):
        if value.get("class_name") == "DTypePolicy":
            return value["config"]["name"]
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(_normal(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _agree(ours: Any, theirs: Any) -> bool:
    """Whether two serialized layer configs agree: the same class, and every argument both report
    equal (names aside, at any depth: they are labels, numbered by each framework's own counters)."""
    if not isinstance(ours, dict) or not isinstance(theirs, dict) or ours.get("class_name") != theirs.get("class_name"):
        return False
    mine, keras_config = _unnamed(_normal(ours.get("config", {}))), _unnamed(_normal(theirs.get("config", {})))
    return all(mine[k] == keras_config[k] for k in set(mine) & set(keras_config))


def _unnamed(value: Any) -> Any:
    """A config without its ``name`` entries at any depth (a nested cell's name is numbered too)."""
    if isinstance(value, dict):
        return {k: _unnamed(v) for k, v in value.items() if k != "name"}
    if isinstance(value, (list, tuple)):
        return [_unnamed(v) for v in value]
    return value


class WrapperDriver(Driver):
    """Wrappers: the Keras twin is built from xlayers' config with the case's arguments winning, the
    case's nested layer configs included (a case without ``backward_layer`` lets Keras derive it from
    ``layer``, as Keras does, rather than take xlayers' report of it). The twin reports a nested config
    as xlayers' own only when the two agree on every argument both report (the runner compares a
    case's constructor arguments by equality)."""

    def twin(self, layer: Any, case: Case, dtype: str | None = None) -> Any:
        ours = layer.get_config()
        config = copy.deepcopy({**ours, **dict(case.kwargs)})
        if "backward_layer" not in case.kwargs:
            config.pop("backward_layer", None)
        if dtype is not None:
            config["dtype"] = dtype
            for key in NESTED:
                if key in config:
                    config[key]["config"]["dtype"] = dtype
        twin = getattr(keras().layers, type(layer).__name__).from_config(config)
        twin.build(layer._build_shape)
        keras_get_config = twin.get_config

        def get_config() -> dict[str, Any]:
            theirs = keras_get_config()
            for key in NESTED:
                if key in theirs and _agree(ours.get(key), theirs[key]):
                    theirs[key] = ours[key]
            return theirs

        twin.get_config = get_config
        return twin


class BidirectionalDriver(WrapperDriver, RecurrentDriver):
    """`RecurrentDriver`'s masks, initial states (the forward layer's, then the backward layer's:
    ``Bidirectional.state_shapes``), resets and path expectation, with the dropout keep pattern
    shared per direction: each of Keras's two layers gets the masks xlayers' layer of the same
    direction drew."""

    def after_call(self, layer: Any, memo: list[Any]) -> None:
        memo.append((layer.forward_layer.last_dropout_masks, layer.backward_layer.last_dropout_masks))

    def before_keras_call(self, twin: Any, memo: list[Any], index: int) -> None:
        for direction, keras_layer in enumerate((twin.forward_layer, twin.backward_layer)):
            masks = [m[direction] for m in memo]
            if all(_mask_pair(m) for m in masks):  # an LSTM's, GRU's or SimpleRNN's (input, recurrent) masks
                RecurrentDriver.before_keras_call(self, keras_layer, masks, index)


def _mask_pair(masks: Any) -> bool:
    return isinstance(masks, tuple) and len(masks) == 2 and all(m is None or isinstance(m, torch.Tensor) for m in masks)


def _bidirectional_group(case: Case) -> Any:
    """One ONNX check per wrapped class (and backward layer given or not), carried by its first case, a
    right-padded mask (the mask becomes both directions' sequence lengths): merge modes and returned
    outputs only pick from the same two recurrences, which the recurrent family's own cases export with
    and without masks."""
    return (case.kwargs["layer"]["class_name"], "backward_layer" in case.kwargs)


def _bi(variant: str, cls: type, merge_mode: str | None = "concat", seq: bool = False, state: bool = False,
        call: dict[str, Any] | None = None, calls: int = 1, path: str | None = None, backward: dict[str, Any] | None = None,
        **config: Any) -> Case:
    kwargs: dict[str, Any] = {
        "layer": layer(cls, units=UNITS, return_sequences=seq, return_state=state, **config), "merge_mode": merge_mode,
    }
    if backward is not None:
        kwargs["backward_layer"] = layer(cls, units=UNITS, return_sequences=seq, return_state=state, go_backwards=True, **backward)
    call = call or {}
    mask = call.get("mask")
    one_call = not mask and backward is None and not config.get("stateful") and not (call.get("training") and config.get("dropout"))
    expect = {"path": path or ("loop" if mask in ("holey", "left") else "bidirectional" if one_call else "fused")}
    return Case(Bidirectional, variant, kwargs, SHAPE, call=call, calls=calls, expect=expect)


BIDIRECTIONAL = (
    # LSTM: every merge mode, return_sequences x return_state, every mask kind
    _bi("lstm-mul-seq1-state1-mask-right", LSTM, "mul", seq=True, state=True, call={"mask": "right"}),
    _bi("lstm-concat-seq1-state0", LSTM, "concat", seq=True),
    _bi("lstm-sum-seq0-state1", LSTM, "sum", state=True),
    _bi("lstm-ave-seq0-state0-mask-holey", LSTM, "ave", call={"mask": "holey"}),
    _bi("lstm-ave-seq1-state0-mask-left", LSTM, "ave", seq=True, call={"mask": "left"}),
    _bi("lstm-none-seq1-state1-mask-holey", LSTM, None, seq=True, state=True, call={"mask": "holey"}),
    _bi("lstm-none-seq0-state0", LSTM, None),
    _bi("lstm-concat-seq1-state1-mask-empty-row", LSTM, "concat", seq=True, state=True, call={"mask": "empty-row"}),
    _bi("lstm-concat-seq0-state1-mask-empty-row", LSTM, "concat", state=True, call={"mask": "empty-row"}),
    _bi("lstm-initial-state", LSTM, "concat", seq=True, state=True, call={"initial_state": True}),
    _bi("lstm-initial-state-mask-right", LSTM, "sum", call={"mask": "right", "initial_state": True}),
    _bi("lstm-stateful-seq1-mask-right", LSTM, "ave", seq=True, calls=2, call={"mask": "right"}, stateful=True),
    _bi("lstm-training-dropout", LSTM, "concat", seq=True, call={"training": True}, dropout=0.4),
    _bi("lstm-training-dropout-recurrent-mask-right", LSTM, "sum", state=True, call={"mask": "right", "training": True},
        path="loop", dropout=0.3, recurrent_dropout=0.25),
    _bi("lstm-backward-layer-relu", LSTM, "concat", seq=True, path="fused+loop", backward={"activation": "relu"}),
    _bi("lstm-backward-layer-no-bias-mask-holey", LSTM, None, seq=True, state=True, call={"mask": "holey"}, path="loop",
        backward={"use_bias": False}),
    _bi("lstm-no-bias-zero-output-for-mask", LSTM, "concat", seq=True, call={"mask": "right"}, use_bias=False,
        zero_output_for_mask=False),
    # GRU
    _bi("gru-concat-seq1-state1-mask-right", GRU, "concat", seq=True, state=True, call={"mask": "right"}),
    _bi("gru-sum-seq0-state0-mask-holey", GRU, "sum", call={"mask": "holey"}),
    _bi("gru-none-seq1-state1-initial-state", GRU, None, seq=True, state=True, call={"initial_state": True}),
    _bi("gru-training-dropout", GRU, "mul", seq=True, call={"training": True}, dropout=0.4),
    _bi("gru-reset-before-ave", GRU, "ave", seq=True, path="loop", reset_after=False),
    _bi("gru-stateful-seq0-mask-holey", GRU, "concat", calls=3, call={"mask": "holey"}, stateful=True),
    _bi("gru-backward-layer-hard-sigmoid-mask-left", GRU, "concat", seq=True, call={"mask": "left"}, path="loop",
        backward={"recurrent_activation": "hard_sigmoid"}),
    # SimpleRNN
    _bi("simple-rnn-concat-seq1-state0-mask-right", SimpleRNN, "concat", seq=True, call={"mask": "right"}),
    _bi("simple-rnn-mul-seq0-state1-mask-left", SimpleRNN, "mul", state=True, call={"mask": "left"}),
    _bi("simple-rnn-backward-layer-sigmoid", SimpleRNN, "concat", seq=True, state=True, path="fused+loop",
        backward={"activation": "sigmoid"}),
    # any recurrent layer: RNN(cell)
    Case(Bidirectional, "rnn-lstm-cell-concat-seq1-mask-right",
         {"layer": layer(RNN, cell=layer(LSTMCell, units=UNITS), return_sequences=True)}, SHAPE, call={"mask": "right"}),
    _bi("simple-rnn-relu-sum-seq0-state1", SimpleRNN, "sum", state=True, activation="relu"),
    _bi("simple-rnn-training-dropout", SimpleRNN, "sum", seq=True, call={"training": True}, dropout=0.4),
    _bi("simple-rnn-initial-state-mask-empty-row", SimpleRNN, "concat", seq=True, state=True,
        call={"mask": "empty-row", "initial_state": True}),
)

_BI = r"^`Bidirectional` layer 'bidirectional': "
_LSTM3 = layer(LSTM, units=3)

BIDIRECTIONAL_ERRORS = (
    ErrorCase("merge-mode", {"layer": _LSTM3, "merge_mode": "max"}, ArgumentError,
              _BI + r"`merge_mode` must be one of 'concat', 'sum', 'mul', 'ave' or None\. Received: merge_mode='max'\."),
    ErrorCase("layer-str", {"layer": "lstm"}, ArgumentTypeError,
              _BI + r"`layer` must be an xlayers layer or its serialized config .*Received: layer='lstm'\."),
    ErrorCase("layer-not-recurrent", {"layer": layer(Dense, units=3)}, ArgumentTypeError,
              _BI + r"`layer` must be a recurrent layer .*Received: layer=`Dense` layer"),
    ErrorCase("go-backwards-layer", {"layer": layer(LSTM, units=3, go_backwards=True)}, ArgumentError,
              _BI + r"`backward_layer` must have `go_backwards` opposite to the forward layer's \(True\)\. "
              r"Received: backward_layer\.go_backwards=True\."),
    ErrorCase("backward-layer-go-backwards", {"layer": _LSTM3, "backward_layer": _LSTM3}, ArgumentError,
              _BI + r"`backward_layer` must have `go_backwards` opposite .*Received: backward_layer\.go_backwards=False\."),
    ErrorCase("backward-layer-return-sequences", {"layer": _LSTM3, "backward_layer": layer(LSTM, units=3, go_backwards=True,
              return_sequences=True)}, ArgumentError,
              _BI + r"`backward_layer` must have the same `return_sequences` as the forward layer \(False\)\. "
              r"Received: backward_layer\.return_sequences=True\."),
    ErrorCase("initial-state-odd", {"layer": _LSTM3}, ArgumentError,
              _BI + r"`initial_state` must be a list of the forward layer's states then the backward layer's \(4 states\)\. "
              r"Received: 3 states\.", (2, 4, 5), call={"initial_state": [np.zeros((2, 3), np.float32)] * 3}),
    ErrorCase("rank-2", {"layer": _LSTM3}, InputShapeError, _BI + r"expected an input of rank 3", (3, 5)),
)


class TimeDistributedDriver(WrapperDriver, NormalizationDriver):
    """``call={"mask": kind}`` passes a ``(batch, time, steps)`` mask to a rank-4 input: the
    ``sequence_mask`` of that kind over the ``batch * time`` sequences, so each slice gets its own
    pattern (`conformance.driver.sequence_mask`). Moving statistics of a wrapped normalization are set
    from the twin, with a positive variance (`NormalizationDriver.reset`)."""

    def arguments(self, layer: Any, case: Case, inputs: Any, rng: np.random.Generator) -> dict[str, Any]:
        arguments = Driver.arguments(self, layer, case, inputs, rng)
        if case.call.get("mask"):
            batch, steps, length = inputs.shape[:3]
            arguments["mask"] = sequence_mask(case.call["mask"], batch * steps, length).reshape(batch, steps, length)
        return arguments

    def onnx_refusal(self, case: Case) -> str:
        if case.call.get("mask"):
            return "the wrapped layer's mask is a call argument the export does not take"
        return ""


TIME_DISTRIBUTED = (
    Case(TimeDistributed, "dense-3x7x5", {"layer": layer(Dense, units=6)}, SHAPE),
    Case(TimeDistributed, "conv2d-same-s2-3x5x9x7x4", {"layer": layer(Conv2D, filters=6, kernel_size=3, strides=2, padding="same")},
         (3, 5, 9, 7, 4)),
    Case(TimeDistributed, "batch-normalization-inference", {"layer": layer(BatchNormalization)}, (3, 5, 7, 4)),
    Case(TimeDistributed, "batch-normalization-training", {"layer": layer(BatchNormalization, momentum=0.8)}, (3, 5, 7, 4),
         call={"training": True}),
    Case(TimeDistributed, "global-average-pooling1d-mask-right", {"layer": layer(GlobalAveragePooling1D)}, (3, 5, 7, 4),
         call={"mask": "right"}),
    Case(TimeDistributed, "lstm-mask-holey", {"layer": layer(LSTM, units=UNITS, return_sequences=True)}, (3, 5, 7, 4),
         call={"mask": "holey"}),
)

_TD = r"^`TimeDistributed` layer 'time_distributed': "

TIME_DISTRIBUTED_ERRORS = (
    ErrorCase("rank-2", {"layer": layer(Dense, units=3)}, InputShapeError, _TD + r"expected an input of rank >= 3", (3, 5)),
    ErrorCase("layer-str", {"layer": "dense"}, ArgumentTypeError,
              _TD + r"`layer` must be an xlayers layer or its serialized config .*Received: layer='dense'\."),
    ErrorCase("mask-shape", {"layer": layer(GlobalAveragePooling1D)}, InputShapeError,
              _TD + r"`mask` must have shape \(batch, timesteps, \.\.\.\) with \(batch, timesteps\) = \(2, 4\)\. "
              r"Received: mask shape=\(2, 3, 5\)\.", (2, 4, 5, 3), call={"mask": np.ones((2, 3, 5), bool)}),
)

LAYERS = (
    LayerInfo(Bidirectional, BIDIRECTIONAL, BIDIRECTIONAL_ERRORS, driver=BidirectionalDriver(), onnx_group=_bidirectional_group),
    LayerInfo(TimeDistributed, TIME_DISTRIBUTED, TIME_DISTRIBUTED_ERRORS, driver=TimeDistributedDriver()),
)

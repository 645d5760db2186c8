"""Cases for `xlayers/layers/recurrent.py`: LSTM over return_sequences x return_state x
go_backwards x masks, stateful, initial_state, and the arguments that leave the fused path."""

from __future__ import annotations

import itertools

from xlayers import LSTM
from xlayers.errors import ArgumentError, InputShapeError

from ..case import Case, ErrorCase, LayerInfo

SHAPE = (3, 7, 5)  # batch, time, features: all different, odd
UNITS = 4

FLAGS = tuple(
    Case(
        LSTM,
        f"seq{int(seq)}-state{int(state)}-back{int(back)}-mask-{mask or 'none'}",
        {"units": UNITS, "return_sequences": seq, "return_state": state, "go_backwards": back},
        SHAPE,
        mask=mask,
        path="loop" if mask == "holey" else "fused",
    )
    for seq, state, back, mask in itertools.product([False, True], [False, True], [False, True], [None, "right", "holey"])
)

OTHERS = (
    Case(LSTM, "initial-state", {"units": UNITS, "return_sequences": True, "return_state": True}, SHAPE, initial_state=True, path="fused"),
    Case(LSTM, "initial-state-back-mask-right", {"units": UNITS, "return_sequences": True, "go_backwards": True}, SHAPE, mask="right", initial_state=True, path="fused"),
    Case(LSTM, "initial-state-loop", {"units": UNITS, "activation": "relu", "return_state": True}, SHAPE, initial_state=True, path="loop"),
    Case(LSTM, "stateful-seq", {"units": UNITS, "stateful": True, "return_sequences": True}, SHAPE, calls=3, path="fused"),
    Case(LSTM, "stateful-last", {"units": UNITS, "stateful": True, "return_state": True}, SHAPE, calls=2, path="fused"),
    Case(LSTM, "stateful-back-mask-right", {"units": UNITS, "stateful": True, "go_backwards": True, "return_state": True}, SHAPE, mask="right", calls=2, path="fused"),
    Case(LSTM, "stateful-holey-loop", {"units": UNITS, "stateful": True, "return_sequences": True}, SHAPE, mask="holey", calls=2, path="loop"),
    Case(LSTM, "initial-state-mask-holey", {"units": UNITS, "return_sequences": True, "return_state": True}, SHAPE, mask="holey", initial_state=True, path="loop"),
    Case(LSTM, "initial-state-back-seq0", {"units": UNITS, "go_backwards": True}, SHAPE, initial_state=True, path="fused"),
    Case(LSTM, "mask-left", {"units": UNITS, "return_sequences": True}, SHAPE, mask="left", path="loop"),
    Case(LSTM, "mask-empty-row", {"units": UNITS, "return_sequences": True, "return_state": True}, SHAPE, mask="empty-row", path="fused"),
    Case(LSTM, "mask-empty-row-back", {"units": UNITS, "go_backwards": True, "return_state": True}, SHAPE, mask="empty-row", path="fused"),
    Case(LSTM, "zero-output-for-mask", {"units": UNITS, "return_sequences": True, "zero_output_for_mask": True}, SHAPE, mask="right", path="fused"),
    Case(LSTM, "act-relu", {"units": UNITS, "activation": "relu", "return_sequences": True}, SHAPE, path="loop"),
    Case(LSTM, "act-linear", {"units": UNITS, "activation": "linear"}, SHAPE, path="loop"),
    Case(LSTM, "recurrent-act-hard-sigmoid", {"units": UNITS, "recurrent_activation": "hard_sigmoid", "return_sequences": True}, SHAPE, mask="right", path="loop"),
    Case(LSTM, "no-bias", {"units": UNITS, "use_bias": False, "return_sequences": True}, SHAPE, path="fused"),
    Case(LSTM, "no-unit-forget-bias", {"units": UNITS, "unit_forget_bias": False}, SHAPE, path="fused"),
    Case(LSTM, "unroll", {"units": UNITS, "unroll": True, "return_sequences": True}, SHAPE, path="fused"),
    Case(LSTM, "use-cudnn-false", {"units": UNITS, "use_cudnn": False, "return_sequences": True}, SHAPE, mask="right", path="loop"),
    Case(LSTM, "dropout-inference", {"units": UNITS, "dropout": 0.3, "recurrent_dropout": 0.2, "return_sequences": True}, SHAPE, path="fused"),
    Case(LSTM, "training-dropout", {"units": UNITS, "dropout": 0.4, "return_sequences": True}, SHAPE, training=True, path="fused"),
    Case(LSTM, "training-dropout-recurrent", {"units": UNITS, "dropout": 0.3, "recurrent_dropout": 0.25, "return_state": True},
         SHAPE, mask="right", training=True, path="loop"),
    Case(LSTM, "wide-float64", {"units": 6, "return_sequences": True}, (2, 9, 3), mask="right", path="fused", dtypes=("float32", "float64")),
    Case(LSTM, "loop-float64", {"units": 5, "activation": "relu", "return_state": True}, (2, 6, 3), path="loop", dtypes=("float64",)),
    Case(LSTM, "half", {"units": 8, "return_sequences": True}, (2, 6, 5), dtypes=("float16", "bfloat16")),
)

ERRORS = (
    ErrorCase("units-zero", {"units": 0}, ArgumentError, r"`LSTM`: `units` must be a positive integer"),
    ErrorCase("dropout-range", {"units": 3, "dropout": 1.5}, ArgumentError, r"`dropout` must be a float in \[0, 1\]"),
    ErrorCase("use-cudnn-activation", {"units": 3, "activation": "relu", "use_cudnn": True}, ArgumentError, r"`use_cudnn=True` needs"),
    ErrorCase("rank-2", {"units": 3}, InputShapeError, r"expected an input of rank 3", (3, 5)),
    ErrorCase("no-timesteps", {"units": 3}, InputShapeError, r"`LSTM` layer 'lstm': `lstm` expects .*at least one time step", (2, 0, 4)),
    ErrorCase("features", {"units": 3}, InputShapeError, r"expected axis -1 of the input to have size 5", (3, 7, 6), (3, 7, 5)),
)

LAYERS = (LayerInfo(LSTM, FLAGS + OTHERS, ERRORS),)

"""Cases for `xlayers/layers/conv_lstm.py`: ConvLSTM1D, ConvLSTM2D and ConvLSTM3D over padding x
strides x dilation x data_format (odd, unequal sizes and kernels: 'same' pads unevenly, the extra
zero at the end, in the input and in the recurrent convolution), return_sequences x return_state,
go_backwards, masks, initial states, stateful calls, training-mode dropout sharing Keras's keep
pattern, and the arguments that change the cell's math.

TF's CPU convolutions take channels-last only, so a ``channels_first`` layer is checked against
its ``channels_last`` Keras twin between transposes of the sequence (time stays axis 1), of the
initial states, of the outputs and of the dropout masks (`SequenceChannelsFirstTwin`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xlayers import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError

from ..case import Case, ErrorCase, LayerInfo
from ..keras_reference import ChannelsFirstTwin, keras, unwrap
from .recurrent import RecurrentDriver

# batch, time, rows, cols, channels: all different; filters 5, kernel 3x2 (the recurrent
# 'same' pads (1, 1) and (0, 1): the extra zero at the end).
SHAPE_2D = (2, 4, 7, 9, 3)
SHAPE_2D_NCHW = (2, 4, 3, 7, 9)
K2 = {"filters": 5, "kernel_size": (3, 2)}


def _c2(variant: str, shape: tuple[int, ...] = SHAPE_2D, call: dict[str, Any] | None = None, calls: int = 1,
        dtypes: tuple[str, ...] = ("float32",), **kwargs: Any) -> Case:
    return Case(ConvLSTM2D, variant, {**K2, **kwargs}, shape, call=call or {}, calls=calls, dtypes=dtypes)


CONV_LSTM2D = (
    _c2("valid-s2-seq0-state0", padding="valid", strides=2),  # first: a single output (tests/test_contract.py)
    _c2("same-s1-seq1-state1", padding="same", return_sequences=True, return_state=True),
    _c2("same-s2x3-seq1-state0", padding="same", strides=(2, 3), return_sequences=True),
    _c2("same-d2x3-seq0-state1", padding="same", dilation_rate=(2, 3), return_state=True),
    _c2("valid-d2-seq1-state1", padding="valid", dilation_rate=2, return_sequences=True, return_state=True),
    _c2("nchw-same-s2-seq1-state1", SHAPE_2D_NCHW, padding="same", strides=2, data_format="channels_first",
        return_sequences=True, return_state=True),
    _c2("back-seq1-state1", padding="same", go_backwards=True, return_sequences=True, return_state=True),
    _c2("mask-right-seq1", call={"mask": "right"}, padding="same", return_sequences=True),
    _c2("mask-holey-seq1-state1", call={"mask": "holey"}, padding="valid", strides=(1, 2), return_sequences=True,
        return_state=True),
    _c2("mask-holey-back-seq0-state1", call={"mask": "holey"}, padding="same", go_backwards=True, return_state=True),
    _c2("mask-empty-row-zero-output", call={"mask": "empty-row"}, padding="same", return_sequences=True,
        zero_output_for_mask=True),
    _c2("initial-state-seq1-state1", call={"initial_state": True}, padding="same", strides=2, return_sequences=True,
        return_state=True),
    _c2("nchw-initial-state-mask-holey", SHAPE_2D_NCHW, call={"initial_state": True, "mask": "holey"}, padding="same",
        data_format="channels_first", return_sequences=True, return_state=True),
    _c2("stateful-seq1", calls=3, padding="same", stateful=True, return_sequences=True),
    _c2("stateful-nchw-back-state1", SHAPE_2D_NCHW, calls=2, padding="valid", data_format="channels_first",
        stateful=True, go_backwards=True, return_state=True),
    _c2("training-dropout", call={"training": True}, padding="same", dropout=0.3, seed=3, return_sequences=True),
    _c2("training-dropout-recurrent-mask-right", call={"training": True, "mask": "right"}, padding="same", strides=2,
        dropout=0.3, recurrent_dropout=0.25, seed=5, return_state=True),
    _c2("nchw-training-recurrent-dropout", SHAPE_2D_NCHW, call={"training": True}, padding="same",
        data_format="channels_first", recurrent_dropout=0.4, seed=7, return_sequences=True),
    _c2("dropout-inference", padding="same", dropout=0.3, recurrent_dropout=0.2, return_sequences=True),
    _c2("no-bias", padding="same", use_bias=False, return_sequences=True, return_state=True),
    _c2("act-relu-hard-sigmoid-no-unit-forget-bias", padding="same", activation="relu",
        recurrent_activation="hard_sigmoid", unit_forget_bias=False, return_sequences=True),
    _c2("float64-mask-right", (3, 5, 6, 5, 2), call={"mask": "right"}, dtypes=("float64",), padding="same",
        strides=(2, 1), return_sequences=True, return_state=True),
    _c2("half-mask-right", call={"mask": "right"}, dtypes=("float16", "bfloat16"), padding="same",
        return_sequences=True),
    _c2("mixed-state1", dtypes=("mixed_float16", "mixed_bfloat16"), padding="same", strides=2, return_state=True),
)

# batch, time, width, channels; filters 6, kernel 4 (even: 'same' pads (1, 2) in both convolutions).
SHAPE_1D = (3, 5, 11, 4)
CONV_LSTM1D = (
    Case(ConvLSTM1D, "same-s2-k4-seq1", {"filters": 6, "kernel_size": 4, "padding": "same", "strides": 2,
                                          "return_sequences": True}, SHAPE_1D),
    Case(ConvLSTM1D, "valid-d2-k3-back-mask-holey", {"filters": 6, "kernel_size": 3, "dilation_rate": 2,
                                                      "go_backwards": True, "return_sequences": True}, SHAPE_1D,
         call={"mask": "holey"}),
    Case(ConvLSTM1D, "ncw-same-k4-initial-state", {"filters": 6, "kernel_size": 4, "padding": "same",
                                                    "data_format": "channels_first", "return_state": True},
         (3, 5, 4, 11), call={"initial_state": True}),
)

# batch, time, depth, rows, cols, channels; filters 4, kernel (3, 2, 2).
SHAPE_3D = (2, 3, 5, 6, 7, 1)
CONV_LSTM3D = (
    Case(ConvLSTM3D, "same-s2-seq1", {"filters": 4, "kernel_size": (3, 2, 2), "padding": "same", "strides": 2,
                                       "return_sequences": True}, SHAPE_3D),
    Case(ConvLSTM3D, "ncdhw-valid-d1x2x1-mask-right", {"filters": 4, "kernel_size": (3, 2, 2), "dilation_rate": (1, 2, 1),
                                                        "data_format": "channels_first", "return_sequences": True},
         (2, 3, 1, 5, 6, 7), call={"mask": "right"}),
)


class SequenceChannelsFirstTwin(ChannelsFirstTwin):
    """A ``channels_first`` ConvLSTM checked against its ``channels_last`` Keras twin: the sequence
    ``(batch, time, C, *spatial)``, the initial states and every output are transposed around the
    call (the channel axis moves, time stays axis 1)."""

    def __call__(self, inputs: Any, initial_state: Any = None, **kwargs: Any) -> Any:
        import tensorflow as tf

        rank = len(inputs.shape) - 3
        if initial_state is not None:
            kwargs["initial_state"] = [tf.transpose(s, [0, *range(2, rank + 2), 1]) for s in initial_state]
        outputs = self.twin(tf.transpose(inputs, [0, 1, *range(3, rank + 3), 2]), **kwargs)

        def back(output: Any) -> Any:
            n = len(output.shape)  # a sequence (rank + 3 axes: time stays axis 1) or one state
            first = 2 if n == rank + 3 else 1
            return tf.transpose(output, [*range(first), n - 1, *range(first, n - 1)])

        return [back(o) for o in outputs] if isinstance(outputs, (list, tuple)) else back(outputs)


class ConvLSTMDriver(RecurrentDriver):
    """`RecurrentDriver` for ConvLSTMs: the twin of a ``channels_first`` layer is
    `SequenceChannelsFirstTwin`, and Keras's cell takes xlayers' keep pattern as its four
    per-gate masks (in its channels-last layout)."""

    def twin(self, layer: Any, case: Case, dtype: str | None = None) -> Any:
        config = {**layer.get_config(), **dict(case.kwargs)}
        if dtype is not None:
            config["dtype"] = dtype
        shape = tuple(layer._build_shape)
        channels_first = config.get("data_format") == "channels_first"
        if channels_first:
            config["data_format"] = "channels_last"
            shape = (shape[0], shape[1], *shape[3:], shape[2])
        twin = getattr(keras().layers, type(layer).__name__).from_config(config)
        twin.build(shape)
        return SequenceChannelsFirstTwin(twin) if channels_first else twin

    def before_keras_call(self, twin: Any, memo: list[Any], index: int) -> None:
        cell = unwrap(twin).cell
        if index < len(memo) and memo[index] is not None:  # Keras's cell caches its masks per call
            dropout, recurrent = memo[index]
            channels_first = isinstance(twin, ChannelsFirstTwin)
            cell._dropout_mask = _keras_gate_masks(dropout, cell.dropout, channels_first, cell.compute_dtype)
            cell._recurrent_dropout_mask = _keras_gate_masks(recurrent, cell.recurrent_dropout, channels_first,
                                                             cell.compute_dtype)


def _keras_gate_masks(mask: Any, rate: float, channels_first: bool, dtype: str) -> Any:
    """The units xlayers kept, ``(4, batch, *step)``, as the four masks Keras's ConvLSTM cell caches
    (channels last). Only the keep pattern is shared: the values are Keras's own, ``keep / (1 - rate)``."""
    import tensorflow as tf

    if mask is None:
        return None
    keep = mask.detach().cpu().numpy() != 0
    if channels_first:
        keep = np.moveaxis(keep, 2, -1)
    return [tf.constant((m / (1.0 - rate)).astype(dtype)) for m in keep]


def _errors(cls: type, name: str, shape: tuple[int, ...], kernel: Any) -> tuple[ErrorCase, ...]:
    label = rf"^`{cls.__name__}` layer '{name}': "
    rank = len(shape) - 3
    good = {"filters": 2, "kernel_size": kernel}
    bad_spatial = (*shape[:2], *(s + 1 for s in shape[2:-1]), shape[-1])
    return (
        ErrorCase("filters-zero", {"filters": 0, "kernel_size": kernel}, ArgumentError, label + r"`filters` must be a positive integer"),
        ErrorCase("kernel-size-rank", {"filters": 2, "kernel_size": (3,) * (rank + 1)}, ArgumentError,
                  label + rf"`kernel_size` must be a positive int or a tuple of {rank} positive ints"),
        ErrorCase("strides-and-dilation", {**good, "strides": 2, "dilation_rate": 2}, ArgumentError,
                  label + r"`strides` > 1 cannot be combined with `dilation_rate` > 1"),
        ErrorCase("padding-causal", {**good, "padding": "causal"}, ArgumentError, label + r"`padding` must be one of"),
        ErrorCase("data-format", {**good, "data_format": "nhwc"}, ArgumentError, label + r"`data_format` must be one of"),
        ErrorCase("dropout-range", {**good, "dropout": 1.5}, ArgumentError, label + r"`dropout` must be a float in \[0, 1\]"),
        ErrorCase("seed-str", {**good, "seed": "a"}, ArgumentTypeError, label + r"`seed` must be an int or None"),
        ErrorCase("rank", good, InputShapeError, label + rf"expected an input of rank {rank + 3}", shape[1:]),
        ErrorCase("no-timesteps", good, InputShapeError, label + r".*at least one time step", (shape[0], 0, *shape[2:])),
        ErrorCase("channels", good, InputShapeError, label + rf"expected axis {rank + 2} of the input to have size {shape[-1]}",
                  (*shape[:-1], shape[-1] + 1), shape),
        ErrorCase("spatial", good, InputShapeError, label + r"expected axis 2 of the input to have size", bad_spatial, shape),
        ErrorCase("smaller-than-kernel", {"filters": 2, "kernel_size": 5}, InputShapeError,
                  label + r"the input's spatial size is smaller than the dilated kernel", (*shape[:2], *(3,) * rank, shape[-1])),
        ErrorCase("initial-state-shape", good, InputShapeError, label + r"initial state `h` must have shape \(batch, ",
                  shape, call={"initial_state": [np.zeros((shape[0], 2), np.float32)] * 2}),
        ErrorCase("initial-state-count", good, ArgumentError, label + r"`initial_state` must be a list of 2 states \[h, c\]",
                  shape, call={"initial_state": [np.zeros((shape[0], 2), np.float32)]}),
    )


ERRORS_2D = _errors(ConvLSTM2D, "conv_lstm2d", (2, 3, 6, 5, 4), (3, 2))
ERRORS_1D = _errors(ConvLSTM1D, "conv_lstm1d", (2, 3, 6, 4), 3)[:8]
ERRORS_3D = _errors(ConvLSTM3D, "conv_lstm3d", (2, 3, 5, 6, 4, 3), 2)[:8]

LAYERS = (
    LayerInfo(ConvLSTM1D, CONV_LSTM1D, ERRORS_1D, driver=ConvLSTMDriver()),
    LayerInfo(ConvLSTM2D, CONV_LSTM2D, ERRORS_2D, driver=ConvLSTMDriver()),
    LayerInfo(ConvLSTM3D, CONV_LSTM3D, ERRORS_3D, driver=ConvLSTMDriver()),
)

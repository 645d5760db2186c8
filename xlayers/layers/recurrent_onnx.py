"""ONNX translations of the recurrent layers' custom ops, for torch's exporter.

``xlayers::simple_rnn`` becomes ONNX's ``RNN`` (``Tanh`` or ``Relu``).
``xlayers::gru`` (the fused GRU, reset_after=True) becomes ONNX's ``GRU`` with
``linear_before_reset=1`` (torch's and Keras's reset_after formula), the same way.

``xlayers::lstm`` (the fused LSTM, :func:`~xlayers.layers.recurrent_ops.exported_lstm`)
becomes ONNX's ``LSTM`` operator, with ``sequence_lens`` for a mask's lengths. The op takes
torch-layout weights; the gates go from torch's order to ONNX's as the layer's ``LAYOUT``
declares them (``Weight.gate_order``), one ``Gather`` per weight that constant folding
absorbs into the initializer.

``xlayers::bidirectional_lstm``, ``bidirectional_gru`` and ``bidirectional_simple_rnn`` (a
`Bidirectional` of two fused layers, :mod:`~xlayers.layers.bidirectional_ops`) become ONE node
of the same operator with ``direction="bidirectional"``: weights ``[forward, backward]``, the
same gate reordering per direction.

Imported only while exporting (it needs onnxscript, an optional dependency).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from onnxscript import opset18 as op

from ..layout import Weight

__all__ = [
    "bidirectional_gru_translation",
    "bidirectional_lstm_translation",
    "bidirectional_simple_rnn_translation",
    "gru_translation",
    "lstm_translation",
    "simple_rnn_translation",
]

_INT32 = 6  # onnx.TensorProto.INT32


def _gather_order(weight: Weight) -> list[int]:
    """Positions of ONNX's gates in torch's gate order."""
    torch_order = weight.gate_order("torch")
    return [torch_order.index(gate) for gate in weight.gate_order("onnx")]


def _reverse_time(y: Any) -> Any:
    """``y[:, ::-1]`` for ``(batch, time, units)``: outputs back in processing order."""
    return op.Slice(
        y, op.Constant(value_ints=[-1]), op.Constant(value_ints=[-(2**63)]), op.Constant(value_ints=[1]),
        op.Constant(value_ints=[-1]),
    )


def _onnx_gates(value: Any, weight: Weight, units: Any, rows: int, directions: int = 1) -> Any:
    """torch ``([directions,] gates*units, rows)`` (``rows=0``: vectors) -> ONNX
    ``(directions, gates*units[, rows])``."""
    gates = len(weight.gates)
    tail = [rows] if rows else []
    split = op.Reshape(value, op.Constant(value_ints=[directions, gates, units, *tail]))
    reordered = op.Gather(split, op.Constant(value_ints=_gather_order(weight)), axis=1)
    return op.Reshape(reordered, op.Constant(value_ints=[directions, gates * units, *tail]))


def _with_zero_recurrent_bias(b: Any) -> Any:
    """ONNX's ``B`` ``(directions, 2*n)`` from one bias ``(directions, n)`` (Keras's): ``[b, 0]``."""
    return op.Concat(b, op.Mul(b, op.CastLike(0.0, b)), axis=1)


def _bidirectional_outputs(lengths: Any, y: Any, *states: tuple[Any, Any]) -> tuple[Any, ...]:
    """A bidirectional node's ``Y`` ``(time, 2, batch, units)`` as ``(batch, time, 2, units)``, and
    its final states, each ``(2, batch, units)``: the initial one (of each ``(final, initial)``
    pair) for a row of length 0."""
    y = op.Transpose(y, perm=[2, 0, 1, 3])
    if lengths is None:
        return y, *(final for final, _ in states)
    nonempty = op.Unsqueeze(op.Greater(lengths, op.CastLike(0, lengths)), [1])  # (batch, 1) against (2, batch, units)
    return y, *(op.Where(nonempty, final, initial) for final, initial in states)


def _masked_outputs(inputs: Any, lengths: Any, y: Any, h: Any, go_backwards: bool, zero_output_for_mask: bool) -> Any:
    """Keras's outputs around an ONNX recurrence over ``sequence_lens``: processing order for
    ``go_backwards``; else padded steps repeat the last valid output (zero for empty rows), or
    are zero with ``zero_output_for_mask``."""
    if go_backwards:
        return _reverse_time(y)
    if zero_output_for_mask:
        return y
    nonempty = op.Unsqueeze(op.Greater(lengths, op.CastLike(0, lengths)), [1])
    length = op.Squeeze(op.Shape(inputs, start=1, end=2), [0])
    steps = op.Range(op.CastLike(0, lengths), length, op.CastLike(1, lengths))
    valid = op.Less(op.Unsqueeze(steps, [0]), op.Unsqueeze(lengths, [1]))
    last = op.Where(nonempty, h, op.Mul(h, op.CastLike(0.0, h)))
    return op.Where(op.Unsqueeze(valid, [2]), y, op.Unsqueeze(last, [1]))


def gru_translation(layout: Sequence[Weight]) -> Callable[..., Any]:
    """The translation of ``xlayers::gru`` for a layer declaring ``layout`` (``kernel``,
    ``recurrent_kernel``, gated; the bias rows reorder as the kernel's gates)."""
    declared = {weight.name: weight for weight in layout}
    kernel, recurrent_kernel = declared["kernel"], declared["recurrent_kernel"]

    def xlayers_gru(
        inputs, lengths, h0, weight_ih, weight_hh, bias_ih, bias_hh, go_backwards=False, zero_output_for_mask=False
    ):
        """``xlayers::gru`` as ONNX's ``GRU`` (``linear_before_reset=1``, ``sequence_lens``
        from a mask's lengths), with Keras's semantics around it as for the LSTM."""
        units = weight_hh.shape[1]
        w = _onnx_gates(weight_ih, kernel, units, weight_ih.shape[1])
        r = _onnx_gates(weight_hh, recurrent_kernel, units, units)
        b = None
        if bias_ih is not None:
            b_ih = _onnx_gates(bias_ih, kernel, units, 0)
            if bias_hh is None:
                b_hh = op.Mul(b_ih, op.CastLike(0.0, b_ih))
            else:
                b_hh = _onnx_gates(bias_hh, kernel, units, 0)
            b = op.Concat(b_ih, b_hh, axis=1)
        sequence_lens = None if lengths is None else op.Cast(lengths, to=_INT32)
        y, y_h = op.GRU(  # time-major: onnxruntime has no batch-first GRU
            op.Transpose(inputs, perm=[1, 0, 2]), w, r, b, sequence_lens, op.Unsqueeze(h0, [0]),
            hidden_size=units, direction="reverse" if go_backwards else "forward", linear_before_reset=1,
        )
        y = op.Transpose(op.Squeeze(y, [1]), perm=[1, 0, 2])
        h = op.Squeeze(y_h, [0])
        if lengths is None:
            return (_reverse_time(y) if go_backwards else y), h
        nonempty = op.Unsqueeze(op.Greater(lengths, op.CastLike(0, lengths)), [1])
        h = op.Where(nonempty, h, h0)
        return _masked_outputs(inputs, lengths, y, h, go_backwards, zero_output_for_mask), h

    return xlayers_gru


def lstm_translation(layout: Sequence[Weight]) -> Callable[..., Any]:
    """The translation of ``xlayers::lstm`` for a layer declaring ``layout`` (``kernel``,
    ``recurrent_kernel`` and ``bias``, gated)."""
    declared = {weight.name: weight for weight in layout}
    kernel, recurrent_kernel, bias_weight = declared["kernel"], declared["recurrent_kernel"], declared["bias"]

    def xlayers_lstm(
        inputs, lengths, h0, c0, weight_ih, weight_hh, bias, go_backwards=False, zero_output_for_mask=False
    ):
        """``xlayers::lstm`` as ONNX's ``LSTM`` (``sequence_lens`` from the lengths of a mask),
        plus Keras's semantics around it: ``go_backwards`` returns outputs in processing order;
        with a mask, a padded step repeats the last valid output (or is zero with
        ``zero_output_for_mask``) and an empty row keeps its initial state."""
        # (unannotated on purpose: torch's exporter reads annotations as ONNX attribute types)
        units = weight_hh.shape[1]
        w = _onnx_gates(weight_ih, kernel, units, weight_ih.shape[1])
        r = _onnx_gates(weight_hh, recurrent_kernel, units, units)
        b = None  # no bias: ONNX's LSTM takes B as zeros
        if bias is not None:
            b = _onnx_gates(bias, bias_weight, units, 0)
            b = _with_zero_recurrent_bias(b)  # Keras has one bias: b_ih, and b_hh = 0
        sequence_lens = None if lengths is None else op.Cast(lengths, to=_INT32)
        y, y_h, y_c = op.LSTM(  # time-major: onnxruntime has no batch-first (layout=1) LSTM
            op.Transpose(inputs, perm=[1, 0, 2]), w, r, b, sequence_lens, op.Unsqueeze(h0, [0]), op.Unsqueeze(c0, [0]),
            hidden_size=units, direction="reverse" if go_backwards else "forward",
        )
        y = op.Transpose(op.Squeeze(y, [1]), perm=[1, 0, 2])  # (batch, time, units)
        h, c = op.Squeeze(y_h, [0]), op.Squeeze(y_c, [0])
        if lengths is None:
            return (_reverse_time(y) if go_backwards else y), h, c
        nonempty = op.Unsqueeze(op.Greater(lengths, op.CastLike(0, lengths)), [1])
        h = op.Where(nonempty, h, h0)
        c = op.Where(nonempty, c, c0)
        return _masked_outputs(inputs, lengths, y, h, go_backwards, zero_output_for_mask), h, c

    return xlayers_lstm


def simple_rnn_translation() -> Callable[..., Any]:
    """The translation of ``xlayers::simple_rnn`` (ungated weights: no reordering)."""

    def xlayers_simple_rnn(
        inputs, lengths, h0, weight_ih, weight_hh, bias, relu=False, go_backwards=False, zero_output_for_mask=False
    ):
        """``xlayers::simple_rnn`` as ONNX's ``RNN``, with Keras's semantics around it as for the LSTM."""
        units = weight_hh.shape[1]
        w = op.Unsqueeze(weight_ih, [0])
        r = op.Unsqueeze(weight_hh, [0])
        b = None
        if bias is not None:
            b = _with_zero_recurrent_bias(op.Unsqueeze(bias, [0]))
        sequence_lens = None if lengths is None else op.Cast(lengths, to=_INT32)
        y, y_h = op.RNN(
            op.Transpose(inputs, perm=[1, 0, 2]), w, r, b, sequence_lens, op.Unsqueeze(h0, [0]),
            hidden_size=units, direction="reverse" if go_backwards else "forward",
            activations=["Relu" if relu else "Tanh"],
        )
        y = op.Transpose(op.Squeeze(y, [1]), perm=[1, 0, 2])
        h = op.Squeeze(y_h, [0])
        if lengths is None:
            return (_reverse_time(y) if go_backwards else y), h
        nonempty = op.Unsqueeze(op.Greater(lengths, op.CastLike(0, lengths)), [1])
        h = op.Where(nonempty, h, h0)
        return _masked_outputs(inputs, lengths, y, h, go_backwards, zero_output_for_mask), h

    return xlayers_simple_rnn


# -- both directions in one node (xlayers.layers.bidirectional_ops: its conventions are ONNX's) ----------


def bidirectional_lstm_translation(layout: Sequence[Weight]) -> Callable[..., Any]:
    """The translation of ``xlayers::bidirectional_lstm`` for an LSTM declaring ``layout``."""
    declared = {weight.name: weight for weight in layout}
    kernel, recurrent_kernel, bias_weight = declared["kernel"], declared["recurrent_kernel"], declared["bias"]

    def xlayers_bidirectional_lstm(inputs, lengths, h0, c0, weight_ih, weight_hh, bias):
        """``xlayers::bidirectional_lstm`` as one ONNX ``LSTM`` with ``direction="bidirectional"``."""
        units = weight_hh.shape[2]
        w = _onnx_gates(weight_ih, kernel, units, weight_ih.shape[2], 2)
        r = _onnx_gates(weight_hh, recurrent_kernel, units, units, 2)
        b = None if bias is None else _with_zero_recurrent_bias(_onnx_gates(bias, bias_weight, units, 0, 2))
        sequence_lens = None if lengths is None else op.Cast(lengths, to=_INT32)
        y, y_h, y_c = op.LSTM(
            op.Transpose(inputs, perm=[1, 0, 2]), w, r, b, sequence_lens, h0, c0, hidden_size=units,
            direction="bidirectional",
        )
        return _bidirectional_outputs(lengths, y, (y_h, h0), (y_c, c0))

    return xlayers_bidirectional_lstm


def bidirectional_gru_translation(layout: Sequence[Weight]) -> Callable[..., Any]:
    """The translation of ``xlayers::bidirectional_gru`` for a GRU declaring ``layout`` (the bias
    rows reorder as the kernel's gates)."""
    declared = {weight.name: weight for weight in layout}
    kernel, recurrent_kernel = declared["kernel"], declared["recurrent_kernel"]

    def xlayers_bidirectional_gru(inputs, lengths, h0, weight_ih, weight_hh, bias_ih, bias_hh):
        """``xlayers::bidirectional_gru`` as one ONNX ``GRU`` (``linear_before_reset=1``) with
        ``direction="bidirectional"``."""
        units = weight_hh.shape[2]
        w = _onnx_gates(weight_ih, kernel, units, weight_ih.shape[2], 2)
        r = _onnx_gates(weight_hh, recurrent_kernel, units, units, 2)
        b = None
        if bias_ih is not None:
            b_ih = _onnx_gates(bias_ih, kernel, units, 0, 2)
            b = _with_zero_recurrent_bias(b_ih) if bias_hh is None else op.Concat(
                b_ih, _onnx_gates(bias_hh, kernel, units, 0, 2), axis=1)
        sequence_lens = None if lengths is None else op.Cast(lengths, to=_INT32)
        y, y_h = op.GRU(
            op.Transpose(inputs, perm=[1, 0, 2]), w, r, b, sequence_lens, h0, hidden_size=units,
            direction="bidirectional", linear_before_reset=1,
        )
        return _bidirectional_outputs(lengths, y, (y_h, h0))

    return xlayers_bidirectional_gru


def bidirectional_simple_rnn_translation() -> Callable[..., Any]:
    """The translation of ``xlayers::bidirectional_simple_rnn`` (ungated weights: no reordering)."""

    def xlayers_bidirectional_simple_rnn(inputs, lengths, h0, weight_ih, weight_hh, bias, relu=False):
        """``xlayers::bidirectional_simple_rnn`` as one ONNX ``RNN`` with ``direction="bidirectional"``."""
        units = weight_hh.shape[2]
        b = None if bias is None else _with_zero_recurrent_bias(bias)
        sequence_lens = None if lengths is None else op.Cast(lengths, to=_INT32)
        y, y_h = op.RNN(
            op.Transpose(inputs, perm=[1, 0, 2]), weight_ih, weight_hh, b, sequence_lens, h0, hidden_size=units,
            direction="bidirectional", activations=["Relu" if relu else "Tanh"] * 2,
        )
        return _bidirectional_outputs(lengths, y, (y_h, h0))

    return xlayers_bidirectional_simple_rnn

"""ONNX translations of the recurrent layers' custom ops, for torch's exporter.

``xlayers::lstm`` (the fused LSTM, :func:`~xlayers.layers.recurrent_ops.exported_lstm`)
becomes ONNX's ``LSTM`` operator, with ``sequence_lens`` for a mask's lengths. The op takes
torch-layout weights; the gates go from torch's order to ONNX's as the layer's ``LAYOUT``
declares them (``Weight.gate_order``), one ``Gather`` per weight that constant folding
absorbs into the initializer.

Imported only while exporting (it needs onnxscript, an optional dependency).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from onnxscript import opset18 as op

from ..layout import Weight

__all__ = ["lstm_translation"]

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


def lstm_translation(layout: Sequence[Weight]) -> Callable[..., Any]:
    """The translation of ``xlayers::lstm`` for a layer declaring ``layout`` (``kernel``,
    ``recurrent_kernel`` and ``bias``, gated)."""
    declared = {weight.name: weight for weight in layout}
    kernel, recurrent_kernel, bias_weight = declared["kernel"], declared["recurrent_kernel"], declared["bias"]

    def onnx_gates(value: Any, weight: Weight, units: Any, rows: int) -> Any:
        """torch ``(gates*units, rows)`` (``rows=0``: a vector) -> ONNX ``(1, gates*units[, rows])``."""
        gates = len(weight.gates)
        tail = [rows] if rows else []
        split = op.Reshape(value, op.Constant(value_ints=[gates, units, *tail]))
        reordered = op.Gather(split, op.Constant(value_ints=_gather_order(weight)), axis=0)
        return op.Reshape(reordered, op.Constant(value_ints=[1, gates * units, *tail]))

    def xlayers_lstm(
        inputs, lengths, h0, c0, weight_ih, weight_hh, bias, go_backwards=False, zero_output_for_mask=False
    ):
        """``xlayers::lstm`` as ONNX's ``LSTM`` (``sequence_lens`` from the lengths of a mask),
        plus Keras's semantics around it: ``go_backwards`` returns outputs in processing order;
        with a mask, a padded step repeats the last valid output (or is zero with
        ``zero_output_for_mask``) and an empty row keeps its initial state."""
        # (unannotated on purpose: torch's exporter reads annotations as ONNX attribute types)
        units = weight_hh.shape[1]
        w = onnx_gates(weight_ih, kernel, units, weight_ih.shape[1])
        r = onnx_gates(weight_hh, recurrent_kernel, units, units)
        b = None  # no bias: ONNX's LSTM takes B as zeros
        if bias is not None:
            b = onnx_gates(bias, bias_weight, units, 0)
            b = op.Concat(b, op.Mul(b, op.CastLike(0.0, b)), axis=1)  # Keras has one bias: b_ih, and b_hh = 0
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
        if go_backwards:  # outputs in processing order; the leading padded steps are zeros
            y = _reverse_time(y)
        elif not zero_output_for_mask:  # padded steps repeat the last valid output (zero for empty rows)
            length = op.Squeeze(op.Shape(inputs, start=1, end=2), [0])
            steps = op.Range(op.CastLike(0, lengths), length, op.CastLike(1, lengths))
            valid = op.Less(op.Unsqueeze(steps, [0]), op.Unsqueeze(lengths, [1]))
            last = op.Where(nonempty, h, op.Mul(h, op.CastLike(0.0, h)))
            y = op.Where(op.Unsqueeze(valid, [2]), y, op.Unsqueeze(last, [1]))
        return y, h, c

    return xlayers_lstm

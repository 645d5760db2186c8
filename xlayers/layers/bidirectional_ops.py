"""Both directions of a `Bidirectional` in one call of torch's fused recurrent kernels, and the
custom ops that export it as ONE ONNX node with ``direction="bidirectional"``.

Everything here keeps ONNX's conventions for a bidirectional recurrence, so an op and its node
mean the same:

* weights stacked ``[forward, backward]`` on a new first axis, each in torch's layout (gates in
  torch's order; ``recurrent_onnx`` reorders them to ONNX's as the layer's ``LAYOUT`` declares);
* states ``(2, batch, units)``, forward then backward;
* outputs ``(batch, time, 2, units)``: the forward direction reads each row's valid steps in
  order, the backward direction reads them from the last valid one and writes each output at
  its input position (ONNX's ``reverse`` with ``sequence_lens``; torch's kernel with
  ``bidirectional=True``), and steps past a row's length are zero. An empty row keeps its
  initial states.

That is Keras's ``Bidirectional`` with ``return_sequences`` over a right-padded mask (Keras
forces ``zero_output_for_mask=return_sequences`` and flips the backward output back); its
last outputs are the final ``h`` of each direction (zero for an empty row).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

__all__ = [
    "exported_bidirectional_gru",
    "exported_bidirectional_lstm",
    "exported_bidirectional_simple_rnn",
    "fused_bidirectional",
]


def fused_bidirectional(
    kernel: Callable[..., tuple[Tensor, ...]], x: Tensor, states: Sequence[Tensor], params: Sequence[Tensor],
    has_biases: bool, lengths: Tensor | None = None,
) -> tuple[Tensor, list[Tensor]]:
    """One call of torch's ``kernel`` (``torch.lstm``, ``torch.gru``, ``torch.rnn_tanh``,
    ``torch.rnn_relu``) with ``bidirectional=True`` over ``x`` ``(N, T, F)``, right-padded to
    ``lengths`` if given: ``(outputs (N, T, 2, units), final states, each (2, N, units))`` in the
    module's conventions. ``states``: the initial states, each ``(2, N, units)``; ``params``: each
    direction's ``w_ih, w_hh[, b_ih, b_hh]``, forward then backward."""
    train = torch.is_grad_enabled() and any(t.requires_grad for t in (x, *states, *params))
    hx = states[0] if len(states) == 1 else tuple(states)
    if lengths is None:
        out, *final = kernel(x, hx, list(params), has_biases, 1, 0.0, train, True, True)
        return out.unflatten(-1, (2, -1)), final
    # pack_padded_sequence refuses empty rows: they run one step, then take zeros and their initial states
    packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    sorted_hx = [s.index_select(1, packed.sorted_indices) for s in states]
    hx = sorted_hx[0] if len(states) == 1 else tuple(sorted_hx)
    data, *final = kernel(packed.data, packed.batch_sizes, hx, list(params), has_biases, 1, 0.0, train, True)
    out, _ = pad_packed_sequence(
        PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices),
        batch_first=True, total_length=x.shape[1],
    )
    nonempty = (lengths > 0).to(x.device)
    out = torch.where(nonempty[:, None, None], out, out.new_zeros(()))
    final = [torch.where(nonempty[:, None], s.index_select(1, packed.unsorted_indices), s0) for s, s0 in zip(final, states)]
    return out.unflatten(-1, (2, -1)), final


def _params(weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor | None, bias_hh: Tensor | None) -> list[Tensor]:
    """Stacked ``[forward, backward]`` weights as torch's bidirectional kernels take them: each
    direction's ``w_ih, w_hh[, b_ih, b_hh]`` (a missing ``b_hh``, Keras's single bias, is zeros)."""
    params = []
    for direction in range(2):
        params += [weight_ih[direction], weight_hh[direction]]
        if bias_ih is not None:
            b_ih = bias_ih[direction]
            params += [b_ih, torch.zeros_like(b_ih) if bias_hh is None else bias_hh[direction]]
    return params


def _shapes(inputs: Tensor, weight_hh: Tensor, states: int) -> tuple[Tensor, ...]:
    n, t_len, _ = inputs.shape
    units = weight_hh.shape[2]
    return inputs.new_empty(n, t_len, 2, units), *(inputs.new_empty(2, n, units) for _ in range(states))


@torch.library.custom_op("xlayers::bidirectional_lstm", mutates_args=())
def exported_bidirectional_lstm(
    inputs: Tensor, lengths: Tensor | None, h0: Tensor, c0: Tensor, weight_ih: Tensor, weight_hh: Tensor,
    bias: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Two fused LSTMs, forward and backward, as one op (ONNX's bidirectional ``LSTM``): weights
    ``(2, 4*units, in)``, ``(2, 4*units, units)``, ``(2, 4*units)`` (Keras's single bias)."""
    out, (h, c) = fused_bidirectional(torch.lstm, inputs, (h0, c0), _params(weight_ih, weight_hh, bias, None),
                                      bias is not None, lengths)
    return out.clone(), h.clone(), c.clone()


@exported_bidirectional_lstm.register_fake
def _bidirectional_lstm_shapes(
    inputs: Tensor, lengths: Tensor | None, h0: Tensor, c0: Tensor, weight_ih: Tensor, weight_hh: Tensor,
    bias: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    return _shapes(inputs, weight_hh, 2)


@torch.library.custom_op("xlayers::bidirectional_gru", mutates_args=())
def exported_bidirectional_gru(
    inputs: Tensor, lengths: Tensor | None, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor | None,
    bias_hh: Tensor | None,
) -> tuple[Tensor, Tensor]:
    """Two fused GRUs (reset_after), forward and backward, as one op (ONNX's bidirectional ``GRU``,
    ``linear_before_reset=1``): weights ``(2, 3*units, in)``, ``(2, 3*units, units)``, biases
    ``(2, 3*units)``."""
    out, (h,) = fused_bidirectional(torch.gru, inputs, (h0,), _params(weight_ih, weight_hh, bias_ih, bias_hh),
                                    bias_ih is not None, lengths)
    return out.clone(), h.clone()


@exported_bidirectional_gru.register_fake
def _bidirectional_gru_shapes(
    inputs: Tensor, lengths: Tensor | None, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor | None,
    bias_hh: Tensor | None,
) -> tuple[Tensor, Tensor]:
    return _shapes(inputs, weight_hh, 1)


@torch.library.custom_op("xlayers::bidirectional_simple_rnn", mutates_args=())
def exported_bidirectional_simple_rnn(
    inputs: Tensor, lengths: Tensor | None, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor | None,
    relu: bool,
) -> tuple[Tensor, Tensor]:
    """Two fused SimpleRNNs (tanh, or relu), forward and backward, as one op (ONNX's bidirectional
    ``RNN``): weights ``(2, units, in)``, ``(2, units, units)``, ``(2, units)``."""
    kernel = torch.rnn_relu if relu else torch.rnn_tanh
    out, (h,) = fused_bidirectional(kernel, inputs, (h0,), _params(weight_ih, weight_hh, bias, None), bias is not None, lengths)
    return out.clone(), h.clone()


@exported_bidirectional_simple_rnn.register_fake
def _bidirectional_simple_rnn_shapes(
    inputs: Tensor, lengths: Tensor | None, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor | None,
    relu: bool,
) -> tuple[Tensor, Tensor]:
    return _shapes(inputs, weight_hh, 1)

"""Planted faults in `xlayers/layers/recurrent.py` (LSTM, GRU)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager as ContextManager
from typing import Any
from unittest import mock

import torch

from xlayers import activations
from xlayers.layers import recurrent as recurrent_layer
from xlayers.layers.recurrent import LSTM

from .plant import Plant, ScaleGrad, drop_constructor_argument, swap_activation

_LSTM_WEIGHTS = ("weight_ih", "weight_hh", "bias")


def _gates(value: torch.Tensor, order: Sequence[int]) -> torch.Tensor:
    """Reorder the four gate blocks stacked along the first axis (torch's layout; ``i, f, g, o``)."""
    units = value.shape[0] // 4
    split = value.reshape(4, units, *value.shape[1:])
    return split[list(order)].reshape(value.shape)


def _gate(value: torch.Tensor, index: int, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``value`` with gate block ``index`` (along the first axis) replaced by ``fn(block)``."""
    blocks = list(value.chunk(4, dim=0))
    blocks[index] = fn(blocks[index])
    return torch.cat(blocks, dim=0)


def _patch_lstm(
    args: Callable[[dict[str, Any]], None] | None = None,
    result: Callable[[tuple[Any, ...], dict[str, Any]], tuple[Any, ...]] | None = None,
) -> ContextManager[Any]:
    """Patch the functional ``lstm`` the LSTM layer calls (torch-layout weights): ``args`` edits
    its arguments (a dict, in place) on the way in, ``result`` rewrites ``(outputs, h, c, path)``
    on the way out."""
    original = recurrent_layer.lstm

    @functools.wraps(original)
    def planted(inputs, weight_ih, weight_hh, bias=None, **kwargs):
        call = dict(inputs=inputs, weight_ih=weight_ih, weight_hh=weight_hh, bias=bias, **kwargs)
        if args is not None:
            args(call)
        out = original(**call)
        return result(out, call) if result is not None else out

    return mock.patch.object(recurrent_layer, "lstm", planted)


def _lstm_gate_order_fc_swapped() -> ContextManager[Any]:
    def edit(call: dict[str, Any]) -> None:
        for name in _LSTM_WEIGHTS:
            if call[name] is not None:
                call[name] = _gates(call[name], (0, 2, 1, 3))  # i, g, f, o

    return _patch_lstm(args=edit)


def _lstm_forget_bias_twice() -> ContextManager[Any]:
    def edit(call: dict[str, Any]) -> None:
        if call["bias"] is not None:
            call["bias"] = _gate(call["bias"], 1, lambda b: b + 1.0)

    return _patch_lstm(args=edit)


def _lstm_unit_forget_bias_in_cell_gate() -> ContextManager[Any]:
    original = recurrent_layer._UnitForgetBias.__call__

    @functools.wraps(original)
    def planted(self: Any, shape: Sequence[int], dtype: torch.dtype = torch.float32, device: Any = None) -> torch.Tensor:
        return _gates(original(self, shape, dtype=dtype, device=device), (0, 2, 1, 3))  # the ones land in gate c

    return mock.patch.object(recurrent_layer._UnitForgetBias, "__call__", planted)


def _lstm_bias_doubled() -> ContextManager[Any]:
    def edit(call: dict[str, Any]) -> None:
        if call["bias"] is not None:
            call["bias"] = call["bias"] + call["bias"]  # b_ih = b_hh = Keras's bias

    return _patch_lstm(args=edit)


def _lstm_recurrent_kernel_o_transposed() -> ContextManager[Any]:
    def edit(call: dict[str, Any]) -> None:
        call["weight_hh"] = _gate(call["weight_hh"], 3, lambda block: block.T)

    return _patch_lstm(args=edit)


def _lstm_go_backwards_flipped_back() -> ContextManager[Any]:
    def rewrite(out: tuple[Any, ...], call: dict[str, Any]) -> tuple[Any, ...]:
        outputs, h, c, path = out
        return (outputs.flip(1) if call.get("go_backwards") else outputs), h, c, path

    return _patch_lstm(result=rewrite)


def _lstm_masked_output_zeroed() -> ContextManager[Any]:
    def edit(call: dict[str, Any]) -> None:
        call["zero_output_for_mask"] = True

    return _patch_lstm(args=edit)


def _lstm_state_h_c_swapped() -> ContextManager[Any]:
    return _patch_lstm(result=lambda out, call: (out[0], out[2], out[1], out[3]))


def _lstm_stateful_not_carried() -> ContextManager[Any]:
    original = LSTM.call

    @functools.wraps(original)
    def call(self: LSTM, *args: Any, **kwargs: Any) -> Any:
        outputs = original(self, *args, **kwargs)
        if self.stateful and self.states is not None:
            self.states = [torch.zeros_like(s) for s in self.states]  # every call starts from zeros
        return outputs

    return mock.patch.object(LSTM, "call", call)


def _sigmoid_as_hard_sigmoid() -> ContextManager[None]:
    return swap_activation("sigmoid", activations.hard_sigmoid)


def _grad_initial_state_scaled() -> ContextManager[Any]:
    def edit(call: dict[str, Any]) -> None:
        state = call.get("initial_state")
        if state is not None:
            call["initial_state"] = [ScaleGrad.apply(s, 0.999) for s in state]

    return _patch_lstm(args=edit)


def _lstm_reset_state_noop() -> ContextManager[Any]:
    def reset_state(self: LSTM) -> None:
        """Zeroes copies of the states and never stores them back."""
        [torch.zeros_like(s) for s in self.states or []]

    return mock.patch.object(LSTM, "reset_state", reset_state)


def _lstm_go_backwards_dropped() -> ContextManager[Any]:
    return drop_constructor_argument(LSTM, "go_backwards", False)


def _unscale(mask: torch.Tensor | None, rate: float) -> torch.Tensor | None:
    return None if mask is None else mask * (1.0 - rate)


def _lstm_dropout_unscaled() -> ContextManager[Any]:
    original = recurrent_layer.lstm_dropout_masks

    @functools.wraps(original)
    def masks(inputs, units, *, dropout=0.0, recurrent_dropout=0.0, **kwargs):
        drop, recurrent = original(inputs, units, dropout=dropout, recurrent_dropout=recurrent_dropout, **kwargs)
        return _unscale(drop, dropout), _unscale(recurrent, recurrent_dropout)

    return mock.patch.object(recurrent_layer, "lstm_dropout_masks", masks)


def _patch_gru(args: Callable[[dict[str, Any]], None]) -> ContextManager[Any]:
    """Patch the functional ``gru`` the GRU layer calls (torch-layout weights, gates r, z, n):
    ``args`` edits its arguments (a dict, in place) on the way in."""
    original = recurrent_layer.gru

    @functools.wraps(original)
    def planted(inputs, weight_ih, weight_hh, bias_ih=None, bias_hh=None, **kwargs):
        call = dict(inputs=inputs, weight_ih=weight_ih, weight_hh=weight_hh, bias_ih=bias_ih, bias_hh=bias_hh, **kwargs)
        args(call)
        return original(**call)

    return mock.patch.object(recurrent_layer, "gru", planted)


def _gru_gates(value: torch.Tensor, order: Sequence[int]) -> torch.Tensor:
    units = value.shape[0] // 3
    return value.reshape(3, units, *value.shape[1:])[list(order)].reshape(value.shape)


def _gru_z_r_not_reordered() -> ContextManager[Any]:
    def edit(call: dict[str, Any]) -> None:
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            if call[name] is not None:
                call[name] = _gru_gates(call[name], (1, 0, 2))  # Keras's z, r, h taken as torch's r, z, n

    return _patch_gru(edit)


def _gru_bias_rows_swapped() -> ContextManager[Any]:
    def edit(call: dict[str, Any]) -> None:
        if call["bias_hh"] is not None:
            call["bias_ih"], call["bias_hh"] = call["bias_hh"], call["bias_ih"]

    return _patch_gru(edit)


def _gru_reset_before_as_after() -> ContextManager[Any]:
    def edit(call: dict[str, Any]) -> None:
        call["reset_after"] = True  # r applied after the recurrent matmul, with no recurrent bias

    return _patch_gru(edit)


def _simple_rnn_recurrent_kernel_transposed() -> ContextManager[Any]:
    original = recurrent_layer.simple_rnn

    @functools.wraps(original)
    def planted(inputs, weight_ih, weight_hh, bias=None, **kwargs):
        return original(inputs, weight_ih, weight_hh.T, bias, **kwargs)  # Keras's (state, units) taken as torch's

    return mock.patch.object(recurrent_layer, "simple_rnn", planted)


PLANTS: tuple[Plant, ...] = (
    Plant(
        "simple-rnn-recurrent-kernel-transposed",
        "SimpleRNN's recurrent_kernel (units x units, so any orientation fits) used untransposed as torch's weight_hh",
        ("simple_rnn/seq1-state0-back0-mask-none", "simple_rnn/act-sigmoid"),
        _simple_rnn_recurrent_kernel_transposed,
    ),
    Plant(
        "gru-z-r-not-reordered",
        "Keras's GRU gates z, r, h handed to torch's GRU (r, z, n) without reordering",
        ("gru/seq1-state0-back0-mask-none", "gru/act-relu"),
        _gru_z_r_not_reordered,
    ),
    Plant(
        "gru-bias-rows-swapped",
        "Keras's reset_after bias rows (input, recurrent) swapped into torch's b_hh, b_ih",
        ("gru/seq1-state0-back0-mask-none",),
        _gru_bias_rows_swapped,
    ),
    Plant(
        "gru-reset-before-as-after",
        "reset_after=False computed with the reset_after=True formula (r applied after the recurrent matmul)",
        ("gru/reset-before",),
        _gru_reset_before_as_after,
    ),
    Plant(
        "lstm-gate-order-f-c-swapped",
        "gate blocks reordered i, c, f, o on the way to the kernel (mixing Keras's i, f, c, o with "
        "another framework's order)",
        ("lstm/seq1-state0-back0-mask-none", "lstm/act-relu"),
        _lstm_gate_order_fc_swapped,
    ),
    Plant(
        "lstm-forget-bias-twice",
        "unit_forget_bias applied again at load/call time: +1 on the forget gate on top of the stored bias",
        ("lstm/seq0-state0-back0-mask-none",),
        _lstm_forget_bias_twice,
    ),
    Plant(
        "lstm-unit-forget-bias-in-cell-gate",
        "unit_forget_bias's ones written into the wrong gate block at initialization (the cell gate, third of "
        "i, f, c, o): only an initializer check sees it, since weights are replaced before any output is compared",
        ("lstm/seq0-state0-back0-mask-none",),
        _lstm_unit_forget_bias_in_cell_gate,
    ),
    Plant(
        "lstm-bias-doubled",
        "Keras's single LSTM bias copied into both torch's b_ih and b_hh (torch adds them)",
        ("lstm/seq1-state1-back0-mask-right",),
        _lstm_bias_doubled,
    ),
    Plant(
        "lstm-recurrent-kernel-o-transposed",
        "one per-gate recurrent kernel (recurrent_kernel_o, units x units) used as its transpose",
        ("lstm/seq1-state0-back0-mask-none",),
        _lstm_recurrent_kernel_o_transposed,
    ),
    Plant(
        "lstm-go-backwards-flipped-back",
        "go_backwards outputs flipped back to input order (torch habit) although Keras returns them "
        "in processing order",
        ("lstm/seq1-state0-back1-mask-none",),
        _lstm_go_backwards_flipped_back,
    ),
    Plant(
        "lstm-masked-output-zeroed",
        "masked steps output zeros (zero_output_for_mask=True semantics, as torch's "
        "pad_packed_sequence does) instead of carrying the previous output",
        ("lstm/seq1-state0-back0-mask-right", "lstm/seq1-state0-back0-mask-holey"),
        _lstm_masked_output_zeroed,
    ),
    Plant(
        "lstm-state-h-c-swapped",
        "return_state gives [output, c, h] instead of Keras's [output, h, c] (torch's (h, c) tuple "
        "unpacked in the wrong order)",
        ("lstm/seq0-state1-back0-mask-none",),
        _lstm_state_h_c_swapped,
    ),
    Plant(
        "lstm-stateful-not-carried",
        "a stateful layer ported as stateless: every call starts again from zero states",
        ("lstm/stateful-seq",),
        _lstm_stateful_not_carried,
    ),
    Plant(
        "activation-sigmoid-as-hard-sigmoid",
        "LSTM gates computed with hard_sigmoid (Keras 2's default recurrent_activation) where Keras 3's "
        "config says sigmoid",
        ("lstm/act-relu",),
        _sigmoid_as_hard_sigmoid,
    ),
    Plant(
        "grad-initial-state-scaled",
        "a wrapper around the initial states with a wrong backward: forward bit-exact, gradients into "
        "h0 and c0 scaled by 0.999",
        ("lstm/initial-state",),
        _grad_initial_state_scaled,
        gradient_only=True,
    ),
    Plant(
        "lstm-reset-state-noop",
        "reset_states() that rebinds a local instead of zeroing the carried states: the next sequence "
        "starts from the last one's state",
        ("lstm/stateful-seq",),
        _lstm_reset_state_noop,
    ),
    Plant(
        "lstm-go-backwards-dropped",
        "a constructor argument the converter does not support silently dropped (go_backwards "
        "ignored; the layer then reports go_backwards=False)",
        ("lstm/seq1-state0-back1-mask-none",),
        _lstm_go_backwards_dropped,
    ),
    Plant(
        "lstm-dropout-unscaled",
        "training-time dropout masks not rescaled by 1 / (1 - rate) (inverted dropout forgotten)",
        ("lstm/training-dropout", "lstm/training-dropout-recurrent"),
        _lstm_dropout_unscaled,
    ),
)

"""Planted faults in `xlayers/layers/rnn_cells.py` (`RNN(cell)`, the cells, `StackedRNNCells`)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any
from unittest import mock

import torch

from xlayers.layers import rnn_cells
from xlayers.layers.rnn_cells import RNN, GRUCell, LSTMCell, StackedRNNCells, _RecurrentCell

from .plant import Plant


def _detached(structure: Any) -> Any:
    if isinstance(structure, (list, tuple)):
        return [_detached(item) for item in structure]
    return structure.detach()


def _state_detached_in_loop() -> contextlib.AbstractContextManager[Any]:
    """Each step's cell gets its states detached (a ``.detach()`` meant for truncated BPTT): the
    forward pass is bit-exact, the gradients through time are gone."""
    original = rnn_cells._call_cell

    @functools.wraps(original)
    def planted(cell: Any, inputs: torch.Tensor, states: Any, training: bool) -> Any:
        return original(cell, inputs, _detached(states), training)

    return mock.patch.object(rnn_cells, "_call_cell", planted)


def _initial_state_grad_dropped() -> contextlib.AbstractContextManager[Any]:
    """The given initial states are copied in without their graph (``torch.tensor(state)``)."""
    original = RNN._check_flat_states

    @functools.wraps(original)
    def planted(self: RNN, *args: Any, **kwargs: Any) -> list[torch.Tensor]:
        return [state.detach() for state in original(self, *args, **kwargs)]

    return mock.patch.object(RNN, "_check_flat_states", planted)


def _stacked_states_reversed() -> contextlib.AbstractContextManager[Any]:
    """A stack's final states are returned last cell first (the states of the top layer first,
    as some converters order a multi-layer torch RNN's ``h_n``)."""
    original = RNN.call

    @functools.wraps(original)
    def planted(self: RNN, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        if self.return_state and isinstance(self.cell, StackedRNNCells):
            return [result[0], *reversed(result[1:])]
        return result

    return mock.patch.object(RNN, "call", planted)


@contextlib.contextmanager
def _masked_steps_output_zeros() -> Iterator[None]:
    """Masked steps emit zeros instead of carrying the previous output (``zero_output_for_mask``
    taken as always on, torch's packed-sequence padding)."""
    original = RNN.call

    @functools.wraps(original)
    def planted(self: RNN, *args: Any, **kwargs: Any) -> Any:
        before = self.zero_output_for_mask
        self.zero_output_for_mask = True
        try:
            return original(self, *args, **kwargs)
        finally:
            self.zero_output_for_mask = before

    with mock.patch.object(RNN, "call", planted):
        yield


def _dropout_mask_per_step() -> contextlib.AbstractContextManager[Any]:
    """The cell's input dropout mask is drawn anew at every step (``nn.Dropout`` inside the cell)
    instead of once per call of the RNN."""
    original = _RecurrentCell.get_dropout_mask

    @functools.wraps(original)
    def planted(self: _RecurrentCell, step_input: torch.Tensor) -> torch.Tensor | None:
        self._dropout_mask = None
        return original(self, step_input)

    return mock.patch.object(_RecurrentCell, "get_dropout_mask", planted)


def _go_backwards_outputs_flipped() -> contextlib.AbstractContextManager[Any]:
    """``go_backwards`` outputs flipped back to input order (Keras keeps processing order)."""
    original = RNN._cell_loop

    @functools.wraps(original)
    def planted(self: RNN, *args: Any, **kwargs: Any) -> Any:
        outputs, states = original(self, *args, **kwargs)
        return (outputs.flip(1) if self.go_backwards else outputs), states

    return mock.patch.object(RNN, "_cell_loop", planted)


def _stateful_not_carried() -> contextlib.AbstractContextManager[Any]:
    """A stateful RNN starts every call from zeros (the carried states never read back)."""
    original = RNN._initial_states

    @functools.wraps(original)
    def planted(self: RNN, inputs: torch.Tensor, initial_state: Any) -> list[torch.Tensor]:
        if initial_state is None and self.stateful:
            return [inputs.new_zeros(inputs.shape[0], size) for size in rnn_cells._flat_sizes(self.cell.state_size)]
        return original(self, inputs, initial_state)

    return mock.patch.object(RNN, "_initial_states", planted)


def _unit_forget_bias_ignored() -> contextlib.AbstractContextManager[Any]:
    """``unit_forget_bias`` dropped when initializing the cell (the forget bias starts at 0)."""
    return mock.patch.object(LSTMCell, "initializer_for", _RecurrentCell.initializer_for)


def _gru_gate_masks_in_keras_order() -> contextlib.AbstractContextManager[Any]:
    """A GRU cell's per-gate dropout masks (Keras's z, r, h) handed to torch's gates (r, z, n)
    without reordering: the update gate's mask lands on the reset gate."""
    original = GRUCell.sequence

    @functools.wraps(original)
    def planted(self: GRUCell, inputs, states, mask, go_backwards, zero_output_for_mask, masks):
        undone = tuple(None if m is None or m.dim() != 3 else m[[1, 0, 2]] for m in masks)
        masks = tuple(u if u is not None else m for u, m in zip(undone, masks))
        return original(self, inputs, states, mask, go_backwards, zero_output_for_mask, masks)

    return mock.patch.object(GRUCell, "sequence", planted)


PLANTS = (
    Plant("rnn-state-detached-in-loop", "the recurrent state detached inside the time loop (gradients cut at each step)",
          ("rnn/stacked-seq1-state1", "rnn/lstm-relu-no-bias-mask-left-state1"), _state_detached_in_loop, gradient_only=True),
    Plant("rnn-initial-state-grad-dropped", "the initial state copied in without its gradient",
          ("rnn/stacked-initial-state", "rnn/lstm-initial-state"), _initial_state_grad_dropped, gradient_only=True),
    Plant("rnn-stacked-states-reversed", "a stack's final states returned last cell first",
          ("rnn/stacked-seq1-state1",), _stacked_states_reversed),
    Plant("rnn-masked-steps-output-zeros", "masked steps output zeros instead of carrying the previous output",
          ("rnn/stacked-back-holey-state1", "rnn/stacked-mask-right-seq1", "rnn/lstm-mask-holey-seq1-unroll"),
          _masked_steps_output_zeros),
    Plant("rnn-cell-dropout-mask-per-step", "the cell's dropout mask redrawn at every step instead of once per call",
          ("rnn/stacked-training-dropout",), _dropout_mask_per_step),
    Plant("rnn-go-backwards-outputs-flipped", "go_backwards outputs flipped back to input order",
          ("rnn/stacked-mask-left-back-seq1", "rnn/gru-reset-before-back-holey-state1"), _go_backwards_outputs_flipped),
    Plant("rnn-stateful-not-carried", "a stateful RNN restarting from zero states at every call",
          ("rnn/stacked-stateful", "rnn/lstm-stateful"), _stateful_not_carried),
    Plant("lstm-cell-unit-forget-bias-ignored", "unit_forget_bias ignored at initialization",
          ("lstm_cell/step",), _unit_forget_bias_ignored),
    Plant("gru-cell-gate-masks-in-keras-order", "per-gate dropout masks passed in Keras's gate order to torch's GRU gates",
          ("rnn/gru-training-dropout-recurrent", "gru_cell/training-dropout-recurrent"), _gru_gate_masks_in_keras_order),
)

"""Planted faults in `xlayers/layers/wrappers.py` (Bidirectional, TimeDistributed)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from contextlib import AbstractContextManager as ContextManager
from typing import Any
from unittest import mock

import torch

from xlayers.layers.wrappers import Bidirectional, TimeDistributed

from .plant import Plant

_BI = "bidirectional/"
_TD = "time_distributed/"


def _patch_directions(edit: Any) -> ContextManager[Any]:
    """Patch how Bidirectional runs its two layers: ``edit(self, inputs, forward_state, backward_state, kwargs)``
    returns ``(y, y_rev)``."""
    return mock.patch.object(Bidirectional, "_directions", edit)


def _backward_forward_weights() -> ContextManager[Any]:
    def directions(self: Any, inputs: Any, forward_state: Any, backward_state: Any, kwargs: dict[str, Any]) -> Any:
        y = self.forward_layer(inputs, initial_state=forward_state, **kwargs)
        weights = dict(self.forward_layer.named_parameters())
        y_rev = torch.func.functional_call(self.backward_layer, weights, (inputs,), {"initial_state": backward_state, **kwargs})
        return y, y_rev

    return _patch_directions(directions)


def _backward_mask_flipped() -> ContextManager[Any]:
    def directions(self: Any, inputs: Any, forward_state: Any, backward_state: Any, kwargs: dict[str, Any]) -> Any:
        y = self.forward_layer(inputs, initial_state=forward_state, **kwargs)
        mask = kwargs.get("mask")
        flipped = {**kwargs, "mask": None if mask is None else mask.flip(1)}  # reversed by hand, then again by go_backwards
        return y, self.backward_layer(inputs, initial_state=backward_state, **flipped)

    return _patch_directions(directions)


@contextlib.contextmanager
def _initial_state_halves_swapped() -> Iterator[None]:
    directions, one_call = Bidirectional._directions, Bidirectional._one_call

    def swapped_directions(self: Any, inputs: Any, forward_state: Any, backward_state: Any, kwargs: dict[str, Any]) -> Any:
        return directions(self, inputs, backward_state, forward_state, kwargs)

    def swapped_one_call(self: Any, inputs: Any, mask: Any, forward_state: Any, backward_state: Any) -> Any:
        return one_call(self, inputs, mask, backward_state, forward_state)

    with _patch_directions(swapped_directions), mock.patch.object(Bidirectional, "_one_call", swapped_one_call):
        yield


def _concat_swapped() -> ContextManager[Any]:
    original = Bidirectional._merge

    def merge(self: Any, y: torch.Tensor, y_rev: torch.Tensor) -> Any:
        return torch.cat([y_rev, y], dim=-1) if self.merge_mode == "concat" else original(self, y, y_rev)

    return mock.patch.object(Bidirectional, "_merge", merge)


def _ave_as_sum() -> ContextManager[Any]:
    original = Bidirectional._merge

    def merge(self: Any, y: torch.Tensor, y_rev: torch.Tensor) -> Any:
        return y + y_rev if self.merge_mode == "ave" else original(self, y, y_rev)

    return mock.patch.object(Bidirectional, "_merge", merge)


def _flip_on_batch_axis() -> ContextManager[Any]:
    return mock.patch.object(Bidirectional, "_to_input_order", staticmethod(lambda y_rev: y_rev.flip(0)))


def _backward_not_flipped_back() -> ContextManager[Any]:
    return mock.patch.object(Bidirectional, "_to_input_order", staticmethod(lambda y_rev: y_rev.flip(1).flip(1)))


def _states_backward_first() -> ContextManager[Any]:
    return mock.patch.object(Bidirectional, "_states", staticmethod(lambda forward, backward: [*backward, *forward]))


def _after_init(edit: Any) -> ContextManager[Any]:
    original = Bidirectional.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        edit(self)

    return mock.patch.object(Bidirectional, "__init__", __init__)


def _zero_output_not_forced() -> ContextManager[Any]:
    def edit(self: Any) -> None:
        for sub in (self.forward_layer, self.backward_layer):
            sub.zero_output_for_mask = False  # the wrapped layer's own setting kept

    return _after_init(edit)


def _backward_not_reversed() -> ContextManager[Any]:
    def edit(self: Any) -> None:
        self.backward_layer.go_backwards = False  # a second forward layer

    return _after_init(edit)


def _fused_halves_swapped() -> ContextManager[Any]:
    original = Bidirectional._one_call

    def one_call(self: Any, inputs: Any, mask: Any, forward_state: Any, backward_state: Any) -> Any:
        pair, states = original(self, inputs, mask, forward_state, backward_state)
        return pair.flip(-2), states  # torch's second half read as the forward direction

    return mock.patch.object(Bidirectional, "_one_call", one_call)


def _fused_last_step_for_both() -> ContextManager[Any]:
    original = Bidirectional._one_call

    def one_call(self: Any, inputs: Any, mask: Any, forward_state: Any, backward_state: Any) -> Any:
        if self.return_sequences:
            return original(self, inputs, mask, forward_state, backward_state)
        self.return_sequences = True
        try:
            pair, states = original(self, inputs, mask, forward_state, backward_state)
        finally:
            self.return_sequences = False
        return pair[:, -1], states  # the backward direction's last output is at step 0

    return mock.patch.object(Bidirectional, "_one_call", one_call)


def _time_major_fold() -> ContextManager[Any]:
    def fold(x: torch.Tensor) -> torch.Tensor:  # time-major rows, unfolded as batch-major
        return x.transpose(0, 1).reshape(x.shape[0] * x.shape[1], *x.shape[2:])

    return mock.patch.object(TimeDistributed, "_fold", staticmethod(fold))


def _folded_batch_statistics() -> ContextManager[Any]:
    return mock.patch.object(TimeDistributed, "_updates_statistics", lambda self: False)


def _mask_dropped() -> ContextManager[Any]:
    original = TimeDistributed.call

    def call(self: Any, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        return original(self, inputs, training=training)

    return mock.patch.object(TimeDistributed, "call", call)


PLANTS = (
    Plant("bidirectional-backward-forward-weights", "the backward direction run with the forward direction's weights",
          (_BI + "lstm-concat-seq1-state0", _BI + "gru-concat-seq1-state1-mask-right"), _backward_forward_weights),
    Plant("bidirectional-concat-swapped", "concat merges backward then forward",
          (_BI + "lstm-concat-seq1-state0", _BI + "simple-rnn-concat-seq1-state0-mask-right"), _concat_swapped),
    Plant("bidirectional-ave-as-sum", "merge_mode 'ave' computed as the sum", (_BI + "lstm-ave-seq1-state0-mask-left",), _ave_as_sum),
    Plant("bidirectional-flip-batch-axis", "the backward outputs flipped on the batch axis instead of time",
          (_BI + "lstm-concat-seq1-state0", _BI + "gru-concat-seq1-state1-mask-right"), _flip_on_batch_axis),
    Plant("bidirectional-backward-not-flipped-back", "the backward outputs left in processing order (or flipped twice)",
          (_BI + "lstm-concat-seq1-state0", _BI + "simple-rnn-concat-seq1-state0-mask-right"), _backward_not_flipped_back),
    Plant("bidirectional-states-backward-first", "return_state gives the backward states before the forward ones",
          (_BI + "lstm-sum-seq0-state1", _BI + "gru-concat-seq1-state1-mask-right"), _states_backward_first),
    Plant("bidirectional-initial-state-halves-swapped", "initial_state's halves handed to the wrong directions",
          (_BI + "lstm-initial-state", _BI + "gru-none-seq1-state1-initial-state"), _initial_state_halves_swapped),
    Plant("bidirectional-backward-mask-flipped", "the mask reversed for the backward layer by hand, on top of go_backwards",
          (_BI + "lstm-ave-seq0-state0-mask-holey", _BI + "lstm-initial-state-mask-right"), _backward_mask_flipped),
    Plant("bidirectional-zero-output-not-forced", "masked steps carry the previous output (Keras forces zeros with return_sequences)",
          (_BI + "lstm-mul-seq1-state1-mask-right", _BI + "lstm-no-bias-zero-output-for-mask"), _zero_output_not_forced),
    Plant("bidirectional-backward-not-reversed", "the backward layer reads the sequence forwards (go_backwards dropped)",
          (_BI + "lstm-concat-seq1-state0",), _backward_not_reversed),
    Plant("bidirectional-fused-halves-swapped", "the bidirectional kernel's two output halves read in the wrong order",
          (_BI + "lstm-concat-seq1-state0", _BI + "gru-none-seq1-state1-initial-state"), _fused_halves_swapped),
    Plant("bidirectional-fused-last-step-for-both", "the last output of both directions taken at the last time step",
          (_BI + "lstm-none-seq0-state0", _BI + "lstm-sum-seq0-state1"), _fused_last_step_for_both),
    Plant("time-distributed-time-major-fold", "time folded into the batch time-major, unfolded batch-major (no permutation)",
          (_TD + "dense-3x7x5", _TD + "conv2d-same-s2-3x5x9x7x4"), _time_major_fold),
    Plant("time-distributed-folded-batch-statistics", "BatchNormalization in training normalized over batch x time at once",
          (_TD + "batch-normalization-training",), _folded_batch_statistics),
    Plant("time-distributed-mask-dropped", "the mask given to the wrapper not passed to the wrapped layer",
          (_TD + "global-average-pooling1d-mask-right", _TD + "lstm-mask-holey"), _mask_dropped),
)

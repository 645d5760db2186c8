"""Planted faults in `xlayers/layers/conv_lstm.py` (ConvLSTM1D/2D/3D)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager as ContextManager
from typing import Any
from unittest import mock

import torch

from xlayers.layers import conv_lstm as conv_lstm_layer
from xlayers.layers.conv_lstm import ConvLSTM

from .plant import Plant

_WEIGHTS = ("weight_ih", "weight_hh", "bias")


def _gates(value: torch.Tensor, order: Sequence[int]) -> torch.Tensor:
    """Reorder the four gate blocks stacked along the first axis (torch's layout, ``i, f, c, o``)."""
    return value.reshape(4, value.shape[0] // 4, *value.shape[1:])[list(order)].reshape(value.shape)


def _patch_conv_lstm(
    args: Callable[[dict[str, Any]], None] | None = None,
    result: Callable[[tuple[Any, ...], dict[str, Any]], tuple[Any, ...]] | None = None,
) -> ContextManager[Any]:
    """Patch the functional ``conv_lstm`` the layers call (torch-layout weights): ``args`` edits its
    arguments (a dict, in place) on the way in, ``result`` rewrites ``(outputs, h, c)`` on the way out."""
    original = conv_lstm_layer.conv_lstm

    @functools.wraps(original)
    def planted(inputs, weight_ih, weight_hh, bias=None, **kwargs):
        call = dict(inputs=inputs, weight_ih=weight_ih, weight_hh=weight_hh, bias=bias, **kwargs)
        if args is not None:
            args(call)
        out = original(**call)
        return result(out, call) if result is not None else out

    return mock.patch.object(conv_lstm_layer, "conv_lstm", planted)


def _gate_order_fc_swapped() -> ContextManager[Any]:
    def edit(call: dict[str, Any]) -> None:
        for name in _WEIGHTS:
            if call[name] is not None:
                call[name] = _gates(call[name], (0, 2, 1, 3))  # i, c, f, o

    return _patch_conv_lstm(args=edit)


def _kernel_flipped() -> ContextManager[Any]:
    def edit(call: dict[str, Any]) -> None:
        for name in ("weight_ih", "weight_hh"):
            rank = call[name].dim() - 2
            call[name] = call[name].flip(list(range(2, 2 + rank)))  # a true convolution, not TF's cross-correlation

    return _patch_conv_lstm(args=edit)


@contextlib.contextmanager
def _recurrent_conv_takes_input_arguments() -> Iterator[None]:
    """One conv helper for both convolutions: the recurrent one gets the input conv's strides,
    dilation and padding (pads for the state's size)."""
    seen: dict[str, Any] = {}
    original_lstm, original_conv = conv_lstm_layer.conv_lstm, conv_lstm_layer.conv_padded

    @functools.wraps(original_lstm)
    def lstm(*args: Any, **kwargs: Any) -> Any:
        seen.clear()
        seen["padding"] = kwargs["padding"]
        return original_lstm(*args, **kwargs)

    @functools.wraps(original_conv)
    def conv(inputs, weight, bias, pads, *, strides, dilation_rate, groups=1, contiguous=True):
        if "strides" not in seen:  # the input convolution comes first
            seen.update(strides=tuple(strides), dilation_rate=tuple(dilation_rate))
        else:
            strides, dilation_rate = seen["strides"], seen["dilation_rate"]
            pads = conv_lstm_layer.resolve_padding(seen["padding"], tuple(inputs.shape[2:]), tuple(weight.shape[2:]),
                                                   strides, dilation_rate)
        return original_conv(inputs, weight, bias, pads, strides=strides, dilation_rate=dilation_rate, groups=groups,
                             contiguous=contiguous)

    with mock.patch.object(conv_lstm_layer, "conv_lstm", lstm), mock.patch.object(conv_lstm_layer, "conv_padded", conv):
        yield


def _same_pad_extra_at_start() -> ContextManager[Any]:
    original = conv_lstm_layer.resolve_padding

    @functools.wraps(original)
    def planted(padding, *args: Any, **kwargs: Any):
        pairs = original(padding, *args, **kwargs)
        return tuple((a, b) for b, a in pairs) if padding == "same" else pairs  # PyTorch/symmetric habit: extra zero first

    return mock.patch.object(conv_lstm_layer, "resolve_padding", planted)


def _masked_output_zeroed() -> ContextManager[Any]:
    def edit(call: dict[str, Any]) -> None:
        call["zero_output_for_mask"] = True

    return _patch_conv_lstm(args=edit)


def _state_detached_in_loop() -> ContextManager[Any]:
    original = conv_lstm_layer.conv_lstm_step

    @functools.wraps(original)
    def planted(x_t, h, c, *args: Any, **kwargs: Any):
        return original(x_t, h.detach(), c.detach(), *args, **kwargs)  # truncated backprop through time, by accident

    return mock.patch.object(conv_lstm_layer, "conv_lstm_step", planted)


def _input_dropout_one_mask() -> ContextManager[Any]:
    def edit(call: dict[str, Any]) -> None:
        mask = call.get("dropout_mask")
        if mask is not None:
            call["dropout_mask"] = mask[:1].expand_as(mask)  # gate i's mask for every gate (LSTM's shared mask)

    return _patch_conv_lstm(args=edit)


def _dropout_unscaled() -> ContextManager[Any]:
    original = ConvLSTM.dropout_masks

    @functools.wraps(original)
    def masks(self: ConvLSTM, inputs: torch.Tensor, generator: torch.Generator | None):
        drop, recurrent = original(self, inputs, generator)
        return tuple(None if m is None else (m != 0).to(m.dtype) for m in (drop, recurrent))

    return mock.patch.object(ConvLSTM, "dropout_masks", masks)


def _go_backwards_flipped_back() -> ContextManager[Any]:
    def rewrite(out: tuple[Any, ...], call: dict[str, Any]) -> tuple[Any, ...]:
        outputs, h, c = out
        return (outputs.flip(1) if call.get("go_backwards") else outputs), h, c

    return _patch_conv_lstm(result=rewrite)


def _state_h_c_swapped() -> ContextManager[Any]:
    return _patch_conv_lstm(result=lambda out, call: (out[0], out[2], out[1]))


def _channels_first_states_as_channels_last() -> ContextManager[Any]:
    """Initial states of a channels_first layer read as if channels-last (a reshape, not a transpose)."""

    def edit(call: dict[str, Any]) -> None:
        states = call.get("initial_state")
        if states is not None and not call.get("channels_last", True):
            call["initial_state"] = [s.reshape(s.shape[0], *s.shape[2:], s.shape[1]).movedim(-1, 1) for s in states]

    return _patch_conv_lstm(args=edit)


def _stateful_not_carried() -> ContextManager[Any]:
    original = ConvLSTM.call

    @functools.wraps(original)
    def call(self: ConvLSTM, *args: Any, **kwargs: Any) -> Any:
        outputs = original(self, *args, **kwargs)
        if self.stateful and self.states is not None:
            self.states = [torch.zeros_like(s) for s in self.states]  # every call starts from zeros
        return outputs

    return mock.patch.object(ConvLSTM, "call", call)


PLANTS: tuple[Plant, ...] = (
    Plant(
        "conv-lstm-gate-order-f-c-swapped",
        "ConvLSTM gate blocks reordered i, c, f, o on the way to the convolution weights",
        ("conv_lstm2d/same-s1-seq1-state1", "conv_lstm1d/same-s2-k4-seq1"),
        _gate_order_fc_swapped,
    ),
    Plant(
        "conv-lstm-kernel-flipped",
        "kernels flipped spatially (a true convolution, Theano's habit) where TF and torch cross-correlate",
        ("conv_lstm2d/same-s1-seq1-state1",),
        _kernel_flipped,
    ),
    Plant(
        "conv-lstm-recurrent-conv-input-arguments",
        "one conv helper for both convolutions: the recurrent conv given the input conv's strides, padding and "
        "dilation (Keras's recurrent conv is stride 1, 'same', undilated)",
        ("conv_lstm2d/same-d2x3-seq0-state1", "conv_lstm2d/valid-s2-seq0-state0"),
        _recurrent_conv_takes_input_arguments,
    ),
    Plant(
        "conv-lstm-same-pad-extra-at-start",
        "TF 'same' padding's odd extra zero put at the start (PyTorch/symmetric habit) instead of the end",
        ("conv_lstm2d/same-s1-seq1-state1", "conv_lstm1d/same-s2-k4-seq1"),
        _same_pad_extra_at_start,
    ),
    Plant(
        "conv-lstm-masked-output-zeroed",
        "masked steps output zeros instead of carrying the previous output (torch's pad_packed_sequence habit)",
        ("conv_lstm2d/mask-right-seq1", "conv_lstm2d/mask-holey-seq1-state1"),
        _masked_output_zeroed,
    ),
    Plant(
        "conv-lstm-state-detached-in-loop",
        "the states detached inside the time loop (accidental truncated backprop): forward bit-exact, "
        "gradients through time lost",
        ("conv_lstm2d/same-s1-seq1-state1",),
        _state_detached_in_loop,
        gradient_only=True,
    ),
    Plant(
        "conv-lstm-input-dropout-one-mask",
        "one input dropout mask applied to all four gates (LSTM's shared-mask habit) where Keras's ConvLSTM cell "
        "draws one per gate",
        ("conv_lstm2d/training-dropout",),
        _input_dropout_one_mask,
    ),
    Plant(
        "conv-lstm-dropout-unscaled",
        "training-time dropout masks not rescaled by 1 / (1 - rate) (inverted dropout forgotten)",
        ("conv_lstm2d/training-dropout", "conv_lstm2d/nchw-training-recurrent-dropout"),
        _dropout_unscaled,
    ),
    Plant(
        "conv-lstm-go-backwards-flipped-back",
        "go_backwards outputs flipped back to input order although Keras returns them in processing order",
        ("conv_lstm2d/back-seq1-state1",),
        _go_backwards_flipped_back,
    ),
    Plant(
        "conv-lstm-state-h-c-swapped",
        "return_state gives [output, c, h] instead of Keras's [output, h, c]",
        ("conv_lstm2d/same-s1-seq1-state1",),
        _state_h_c_swapped,
    ),
    Plant(
        "conv-lstm-channels-first-states-reshaped",
        "channels_first initial states reshaped to channels-last instead of transposed",
        ("conv_lstm2d/nchw-initial-state-mask-holey", "conv_lstm1d/ncw-same-k4-initial-state"),
        _channels_first_states_as_channels_last,
    ),
    Plant(
        "conv-lstm-stateful-not-carried",
        "a stateful ConvLSTM ported as stateless: every call starts again from zero states",
        ("conv_lstm2d/stateful-seq1",),
        _stateful_not_carried,
    ),
)

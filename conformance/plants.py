"""Planted faults: the proof that the conformance harness can fail.

Each `Plant` imitates one mistake that real Keras -> PyTorch converters make, installs it
into xlayers by monkeypatching (``unittest.mock.patch``; the fault is removed on exit, even
when the body raises), and names the registry cases that can see it. While a plant is
installed, at least one of its cases must fail `conformance.runner.run_case`; a plant the
harness lets through is a defect of the harness, not of the plant.

``gradient_only`` plants leave every forward value bit-exact and break only the backward
pass: the harness must catch them through its ``grad/`` checks.

``tests/test_plants.py`` runs every plant of `PLANTS` on its cases (CPU, float32).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from typing import Any
from unittest import mock

import torch
import torch.nn.functional as F

from xlayers import activations
from xlayers.layers import conv as conv_layer
from xlayers.layers import conv_ops
from xlayers.layers import recurrent as recurrent_layer
from xlayers.layers.conv import Conv2D
from xlayers.layers.core import Dense
from xlayers.layers.recurrent import LSTM

from .case import Case, LayerInfo

__all__ = ["PLANTS", "Plant", "plant", "resolve"]


@dataclass(frozen=True)
class Plant:
    """One planted fault.

    Args:
        name: stable id (the pytest item).
        imitates: one line: the real-world converter mistake it reproduces.
        case_ids: registry case ids that can see the fault (at least one must fail).
        install: a zero-argument factory of the context manager that installs the fault.
        gradient_only: the forward pass stays exact; only gradients are wrong.
        harness_gap: empty for a plant the harness catches. Otherwise why the harness, as it
            stands, misses it (or catches it only by crashing): the plant stays registered,
            unweakened, as a strict expected failure that turns into a test failure once the
            harness is fixed (then clear this field).
    """

    name: str
    imitates: str
    case_ids: tuple[str, ...]
    install: Callable[[], ContextManager[None]]
    gradient_only: bool = False
    harness_gap: str = ""

    def installed(self) -> ContextManager[None]:
        """The fault, installed for the duration of a ``with`` block."""
        return self.install()


def resolve(plant: Plant) -> list[tuple[LayerInfo, Case]]:
    """The ``(layer entry, case)`` pairs of ``plant``'s case ids (KeyError if one is unknown)."""
    from .cases import all_cases

    by_id = {case.id: (info, case) for info, case in all_cases()}
    missing = [cid for cid in plant.case_ids if cid not in by_id]
    if missing:
        raise KeyError(f"plant {plant.name!r} names unknown case ids {missing}")
    return [by_id[cid] for cid in plant.case_ids]


# --------------------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------------------- #


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


_LSTM_WEIGHTS = ("weight_ih", "weight_hh", "bias")


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


def _patch_conv(weight: Callable[[torch.Tensor], torch.Tensor]) -> ContextManager[Any]:
    """Patch the ``conv`` Conv2D calls so that the torch-layout kernel goes through ``weight``."""
    original = conv_layer.conv

    @functools.wraps(original)
    def planted(inputs, kernel, *rest, **kwargs):
        return original(inputs, weight(kernel), *rest, **kwargs)

    return mock.patch.object(conv_layer, "conv", planted)


def _patch_same_padding(fn: Callable[[int, int], tuple[int, int]]) -> ContextManager[Any]:
    """Patch TF 'same' padding as `conv_ops` resolves it: each ``(before, after)`` -> ``fn``."""
    original = conv_ops.same_padding

    @functools.wraps(original)
    def planted(*args, **kwargs):
        return tuple(fn(before, after) for before, after in original(*args, **kwargs))

    return mock.patch.object(conv_ops, "same_padding", planted)


@contextlib.contextmanager
def _swap_activation(name: str, computed_as: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Resolve the activation ``name`` to a function that still serialises as ``name`` (so the
    Keras twin is built with the right one) but computes ``computed_as``: a wrong entry in a
    converter's op table."""

    def impostor(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return computed_as(x)

    impostor.__name__ = name
    with mock.patch.dict(activations._REGISTRY, {name: impostor}), mock.patch.dict(activations._CANONICAL, {impostor: name}):
        yield


class _ScaleGrad(torch.autograd.Function):
    """Identity forward (bit-exact); backward multiplies the gradient by ``factor``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, factor: float) -> torch.Tensor:
        ctx.factor = factor
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.factor, None


class _LinearNoBiasGrad(torch.autograd.Function):
    """``F.linear`` with a hand-written backward that forgets the bias (returns zeros for it)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight, bias)
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight, bias = ctx.saved_tensors
        grad_x = grad @ weight
        grad_w = grad.reshape(-1, grad.shape[-1]).T @ x.reshape(-1, x.shape[-1])
        return grad_x, grad_w, torch.zeros_like(bias)


def _patch_dense_call(body: Callable[[Dense, torch.Tensor], torch.Tensor]) -> ContextManager[Any]:
    """Replace ``Dense.call`` (same signature, so the runner's call-argument probe still works)."""

    @functools.wraps(Dense.call)
    def call(self: Dense, inputs: torch.Tensor) -> torch.Tensor:
        return body(self, inputs)

    return mock.patch.object(Dense, "call", call)


def _dense_bias(layer: Dense) -> torch.Tensor | None:
    return layer.bias if layer.use_bias else None


# --------------------------------------------------------------------------------------- #
# the plants
# --------------------------------------------------------------------------------------- #


def _dense_kernel_untransposed() -> ContextManager[Any]:
    return _patch_dense_call(lambda self, x: self.activation(F.linear(x, self.merged_kernel(), _dense_bias(self))))


def _conv_same_symmetric() -> ContextManager[Any]:
    # torch's `padding=k // 2`: the larger side on both ends (same output size, shifted windows)
    return _patch_same_padding(lambda before, after: (max(before, after), max(before, after)))


def _conv_same_extra_at_start() -> ContextManager[Any]:
    return _patch_same_padding(lambda before, after: (after, before))


def _conv_kernel_flipped() -> ContextManager[Any]:
    return _patch_conv(lambda kernel: kernel.flip(-2, -1))


def _conv_kernel_kh_kw_swapped() -> ContextManager[Any]:
    # (kh, kw, in, out) -> (out, in, kw, kh) instead of (out, in, kh, kw): a wrong torch order in the declaration
    kernel = Conv2D._declared["kernel"]
    wrong = dataclasses.replace(kernel, torch=("out", "in", "kw", "kh"))
    return mock.patch.dict(Conv2D._declared, {"kernel": wrong})


def _conv_dilation_ignored_when_asymmetric() -> ContextManager[Any]:
    # the asymmetric-'same' formulation forgets dilation_rate (symmetric pads still dilate)
    original = conv_ops._conv_shift

    @functools.wraps(original)
    def planted(conv_fn, x, w, bias, pads, ss, ds, *rest):
        return original(conv_fn, x, w, bias, pads, ss, (1,) * len(ds), *rest)

    return mock.patch.object(conv_ops, "_conv_shift", planted)


def _conv_kernel_scaled() -> ContextManager[Any]:
    return _patch_conv(lambda kernel: kernel * (1.0 + 1e-4))


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


def _relu_as_gelu() -> ContextManager[None]:
    return _swap_activation("relu", lambda x: F.gelu(x))


def _sigmoid_as_hard_sigmoid() -> ContextManager[None]:
    return _swap_activation("sigmoid", activations.hard_sigmoid)


def _grad_scaled() -> ContextManager[Any]:
    original = Dense.call
    return _patch_dense_call(lambda self, x: _ScaleGrad.apply(original(self, x), 1.001))


def _grad_bias_dropped() -> ContextManager[Any]:
    def body(self: Dense, x: torch.Tensor) -> torch.Tensor:
        if not self.use_bias:
            return self.activation(F.linear(x, self.merged_kernel().T))
        return self.activation(_LinearNoBiasGrad.apply(x, self.merged_kernel().T, self.bias))

    return _patch_dense_call(body)


def _grad_initial_state_scaled() -> ContextManager[Any]:
    def edit(call: dict[str, Any]) -> None:
        state = call.get("initial_state")
        if state is not None:
            call["initial_state"] = [_ScaleGrad.apply(s, 0.999) for s in state]

    return _patch_lstm(args=edit)


def _lstm_unit_forget_bias_in_cell_gate() -> ContextManager[Any]:
    original = recurrent_layer._UnitForgetBias.__call__

    @functools.wraps(original)
    def planted(self: Any, shape: Sequence[int], dtype: torch.dtype = torch.float32, device: Any = None) -> torch.Tensor:
        return _gates(original(self, shape, dtype=dtype, device=device), (0, 2, 1, 3))  # the ones land in gate c

    return mock.patch.object(recurrent_layer._UnitForgetBias, "__call__", planted)


def _lstm_reset_state_noop() -> ContextManager[Any]:
    def reset_state(self: LSTM) -> None:
        """Zeroes copies of the states and never stores them back."""
        [torch.zeros_like(s) for s in self.states or []]

    return mock.patch.object(LSTM, "reset_state", reset_state)


def _drop_constructor_argument(cls: type, name: str, value: Any) -> ContextManager[Any]:
    """``cls(...)`` forces ``name=value`` whatever the caller asked (the layer's config then
    reports what it runs, not what was requested)."""
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if name in kwargs:
            kwargs[name] = value
        original(self, *args, **kwargs)

    return mock.patch.object(cls, "__init__", __init__)


def _lstm_go_backwards_dropped() -> ContextManager[Any]:
    return _drop_constructor_argument(LSTM, "go_backwards", False)


def _dense_use_bias_ignored() -> ContextManager[Any]:
    return _drop_constructor_argument(Dense, "use_bias", True)


def _relu_name_as_gelu() -> ContextManager[Any]:
    # the name table alone is wrong: the layer then serialises its activation as "gelu"
    return mock.patch.dict(activations._REGISTRY, {"relu": activations.gelu})


def _grad_bias_detached() -> ContextManager[Any]:
    return _patch_dense_call(
        lambda self, x: self.activation(F.linear(x, self.merged_kernel().T, self.bias.detach() if self.use_bias else None))
    )


def _unscale(mask: torch.Tensor | None, rate: float) -> torch.Tensor | None:
    return None if mask is None else mask * (1.0 - rate)


def _lstm_dropout_unscaled() -> ContextManager[Any]:
    original = recurrent_layer.lstm_dropout_masks

    @functools.wraps(original)
    def masks(inputs, units, *, dropout=0.0, recurrent_dropout=0.0, **kwargs):
        drop, recurrent = original(inputs, units, dropout=dropout, recurrent_dropout=recurrent_dropout, **kwargs)
        return _unscale(drop, dropout), _unscale(recurrent, recurrent_dropout)

    return mock.patch.object(recurrent_layer, "lstm_dropout_masks", masks)


PLANTS: tuple[Plant, ...] = (
    Plant(
        "dense-kernel-untransposed",
        "Keras's (in, units) kernel handed to F.linear as torch's (units, in) weight without .T "
        "(shapes agree for a square kernel, so nothing complains)",
        ("dense/square-kernel",),
        _dense_kernel_untransposed,
    ),
    Plant(
        "conv-same-symmetric",
        "TF 'same' translated to torch's symmetric padding=k//2: with stride 2 and an even size TF pads "
        "(0, 1), the port pads (1, 1) and every window shifts by one",
        ("conv2d/same-s2-d1-g1-k3x3-nhwc-9x10", "conv2d/same-s2-d1-g1-k3x3-nchw-9x10"),
        _conv_same_symmetric,
    ),
    Plant(
        "conv-same-extra-at-start",
        "odd 'same' padding with the extra zero at the start (ONNX SAME_LOWER / Caffe style) instead of "
        "TF's end",
        ("conv2d/same-s1-k4x4-even-kernel", "conv2d/same-s2-d1-g1-k3x3-nhwc-9x10"),
        _conv_same_extra_at_start,
    ),
    Plant(
        "conv-kernel-flipped",
        "kernel flipped in space, as when porting between a true convolution (Theano, scipy) and "
        "cross-correlation (TF, torch)",
        ("conv2d/valid-s1-d1-g1-k3x3-nhwc-9x10",),
        _conv_kernel_flipped,
    ),
    Plant(
        "conv-kernel-kh-kw-swapped",
        "kernel permuted (kh, kw, in, out) -> (out, in, kw, kh) instead of (out, in, kh, kw): "
        "transpose(3, 2, 1, 0) in place of permute(3, 2, 0, 1); invisible for square kernels",
        ("conv2d/same-s1-d1-g1-k2x4-nhwc-8x11",),
        _conv_kernel_kh_kw_swapped,
    ),
    Plant(
        "conv-dilation-ignored-when-asymmetric",
        "dilation_rate dropped on the path that handles TF's asymmetric 'same' padding (stride 1, an even dilated "
        "kernel extent), while symmetric padding still dilates",
        ("conv2d/same-s1-d3-g1-k2x4-nhwc-9x10", "conv2d/same-s1-d3x1-g2-k2x4-nchw-9x10"),
        _conv_dilation_ignored_when_asymmetric,
    ),
    Plant(
        "conv-kernel-scaled-1e-4",
        "a 1e-4 relative error in one weight on the way (a normalisation folded into the kernel with "
        "a slightly wrong epsilon): proves the float32 tolerance is tight",
        ("conv2d/valid-s1-d1-g1-k3x3-nhwc-9x10",),
        _conv_kernel_scaled,
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
        "activation-relu-as-gelu",
        "an op table that maps 'relu' to the wrong torch function (here gelu), while the config still "
        "says relu",
        ("dense/act=relu", "lstm/act-relu"),
        _relu_as_gelu,
    ),
    Plant(
        "activation-sigmoid-as-hard-sigmoid",
        "LSTM gates computed with hard_sigmoid (Keras 2's default recurrent_activation) where Keras 3's "
        "config says sigmoid",
        ("lstm/act-relu",),
        _sigmoid_as_hard_sigmoid,
    ),
    Plant(
        "grad-output-scaled",
        "a hand-written backward (custom autograd.Function / fused kernel) off by a constant: forward "
        "bit-exact, every gradient scaled by 1.001",
        ("dense/rank2-bias1",),
        _grad_scaled,
        gradient_only=True,
    ),
    Plant(
        "grad-bias-dropped",
        "a custom fused linear whose backward forgets the bias: forward bit-exact, bias gradient zero",
        ("dense/rank3-bias1",),
        _grad_bias_dropped,
        gradient_only=True,
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
    # -- caught since the runner builds the reference from the case's arguments and reports missing gradients
    Plant(
        "lstm-go-backwards-dropped",
        "a constructor argument the converter does not support silently dropped (go_backwards "
        "ignored; the layer then reports go_backwards=False)",
        ("lstm/seq1-state0-back1-mask-none",),
        _lstm_go_backwards_dropped,
    ),
    Plant(
        "dense-use-bias-ignored",
        "use_bias=False ignored: the port always creates and adds a bias",
        ("dense/rank2-bias0",),
        _dense_use_bias_ignored,
    ),
    Plant(
        "activation-relu-name-as-gelu",
        "an op table that maps the name 'relu' to gelu (the layer then reports activation='gelu')",
        ("dense/act=relu",),
        _relu_name_as_gelu,
    ),
    Plant(
        "grad-bias-detached",
        "the bias detached from the graph on the way (a converted parameter that lost requires_grad "
        "or was copied with .data): forward bit-exact, no gradient reaches the bias",
        ("dense/rank2-bias1",),
        _grad_bias_detached,
        gradient_only=True,
    ),
    Plant(
        "lstm-dropout-unscaled",
        "training-time dropout masks not rescaled by 1 / (1 - rate) (inverted dropout forgotten)",
        ("lstm/training-dropout", "lstm/training-dropout-recurrent"),
        _lstm_dropout_unscaled,
    ),
)


def plant(name: str) -> Plant:
    """The registered plant called ``name``."""
    for candidate in PLANTS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no plant named {name!r}; known: {[p.name for p in PLANTS]}")

"""Planted faults in `xlayers/layers/core.py` (Dense) and in the activation table."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from typing import Any
from unittest import mock

import torch
import torch.nn.functional as F

from xlayers import activations
from xlayers.layer import Layer
from xlayers.layers import core as core_layers
from xlayers.layers.core import Dense

from .plant import Plant, ScaleGrad, drop_constructor_argument, swap_activation


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


def _dense_kernel_untransposed() -> ContextManager[Any]:
    return _patch_dense_call(lambda self, x: self.activation(F.linear(x, self.merged_kernel(), _dense_bias(self))))


def _relu_as_gelu() -> ContextManager[None]:
    return swap_activation("relu", lambda x: F.gelu(x))


def _grad_scaled() -> ContextManager[Any]:
    original = Dense.call
    return _patch_dense_call(lambda self, x: ScaleGrad.apply(original(self, x), 1.001))


def _grad_bias_dropped() -> ContextManager[Any]:
    def body(self: Dense, x: torch.Tensor) -> torch.Tensor:
        if not self.use_bias:
            return self.activation(F.linear(x, self.merged_kernel().T))
        return self.activation(_LinearNoBiasGrad.apply(x, self.merged_kernel().T, self.bias))

    return _patch_dense_call(body)


def _dense_use_bias_ignored() -> ContextManager[Any]:
    return drop_constructor_argument(Dense, "use_bias", True)


def _relu_name_as_gelu() -> ContextManager[Any]:
    # the name table alone is wrong: the layer then serialises its activation as "gelu"
    return mock.patch.dict(activations._REGISTRY, {"relu": activations.gelu})


def _grad_bias_detached() -> ContextManager[Any]:
    return _patch_dense_call(
        lambda self, x: self.activation(F.linear(x, self.merged_kernel().T, self.bias.detach() if self.use_bias else None))
    )



def _soft_cap_division_forgotten() -> ContextManager[Any]:
    """ReversibleEmbedding's soft cap as ``tanh(logits) * cap`` (the division by the cap forgotten)."""
    original = core_layers.ReversibleEmbedding.call

    @functools.wraps(original)
    def planted(self: Any, inputs: torch.Tensor, reverse: bool = False) -> torch.Tensor:
        cap, self.logit_soft_cap = self.logit_soft_cap, None
        try:
            logits = original(self, inputs, reverse=reverse)
        finally:
            self.logit_soft_cap = cap
        return torch.tanh(logits) * cap if reverse and cap is not None else logits

    return mock.patch.object(core_layers.ReversibleEmbedding, "call", planted)


PLANTS: tuple[Plant, ...] = (
    Plant(
        "dense-kernel-untransposed",
        "Keras's (in, units) kernel handed to F.linear as torch's (units, in) weight without .T "
        "(shapes agree for a square kernel, so nothing complains)",
        ("dense/square-kernel",),
        _dense_kernel_untransposed,
    ),
    Plant(
        "activation-relu-as-gelu",
        "an op table that maps 'relu' to the wrong torch function (here gelu), while the config still "
        "says relu",
        ("dense/act=relu", "lstm/act-relu"),
        _relu_as_gelu,
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
)


def _mixed_policy_computed_in_float32() -> ContextManager[Any]:
    # a port that keeps the float32 weights of a mixed_float16 model and computes in float32 too
    return mock.patch.object(Layer, "compute_dtype", property(lambda self: self.dtype))


PLANTS = (
    *PLANTS,
    Plant(
        "mixed-policy-computed-in-float32",
        "a Keras mixed_float16/mixed_bfloat16 model ported with its float32 weights and run in float32: outputs close "
        "to Keras's within half-precision tolerance, but in the wrong dtype",
        ("dense/mixed-relu", "lstm/mixed"),
        _mixed_policy_computed_in_float32,
        dtype="mixed_float16",
    ),
)


# -- Embedding and EinsumDense ----------------------------------------------------------------

from xlayers.layers.core import EinsumDense, Embedding  # (appended family block)


def _patch_call(cls: type, body: Callable[[Any, torch.Tensor], torch.Tensor]) -> ContextManager[Any]:
    """Replace ``cls.call`` (same signature, so the runner's call-argument probe still works)."""
    original = cls.call

    @functools.wraps(original)
    def call(self: Any, inputs: torch.Tensor) -> torch.Tensor:
        return body(self, inputs)

    return mock.patch.object(cls, "call", call)


def _embedding_ids_one_based() -> ContextManager[Any]:
    # ids read as 1-based: embeddings[ids - 1], where id 0 silently wraps to the last row
    return _patch_call(Embedding, lambda self, ids: self.merged_embeddings()[ids.long() - 1])


def _embedding_mask_zero_ignored() -> ContextManager[Any]:
    return mock.patch.object(Embedding, "compute_mask", lambda self, inputs, mask=None: None)


def _einsum_bias_wrong_axes() -> ContextManager[Any]:
    # a multi-axis bias read with its axes reversed (Fortran order) and reshaped back to Keras's shape
    def body(self: EinsumDense, x: torch.Tensor) -> torch.Tensor:
        outputs = torch.einsum(self.equation, x, self.merged_kernel())
        if self.bias_axes is not None:
            bias = self.bias.permute(*reversed(range(self.bias.ndim))).reshape(self.bias.shape)
            outputs = outputs + bias
        return self.activation(outputs)

    return _patch_call(EinsumDense, body)


def _einsum_kernel_transposed() -> ContextManager[Any]:
    def body(self: EinsumDense, x: torch.Tensor) -> torch.Tensor:
        outputs = torch.einsum(self.equation, x, self.merged_kernel().mT)
        return self.activation(outputs + self.bias if self.bias_axes is not None else outputs)

    return _patch_call(EinsumDense, body)


PLANTS = (
    *PLANTS,
    Plant(
        "embedding-ids-one-based",
        "token ids taken as 1-based (embeddings[ids - 1]): every vector comes from the row before, id 0 from the last row",
        ("embedding/mixed", "embedding/int64-3x7"),
        _embedding_ids_one_based,
        dtype="mixed_float16",
    ),
    Plant(
        "embedding-mask-zero-ignored",
        "mask_zero=True dropped by the port: outputs exact, but no padding mask reaches the next layer",
        ("embedding/mask-zero-mixed", "embedding/mask-zero-4x9"),
        _embedding_mask_zero_ignored,
        dtype="mixed_float16",
    ),
    Plant(
        "einsum-dense-bias-wrong-axes",
        "a (heads, head_dim) bias read with its axes reversed and reshaped back (each value added on the wrong axis)",
        ("einsum_dense/abc-cde-abde-bias-de",),
        _einsum_bias_wrong_axes,
    ),
    Plant(
        "einsum-dense-kernel-transposed",
        "Keras's (in, out) kernel transposed on the way into the einsum (shapes agree for a square kernel)",
        ("einsum_dense/square-kernel",),
        _einsum_kernel_transposed,
    ),
    Plant(
        "reversible-embedding-soft-cap-division-forgotten",
        "a logit soft cap ported as tanh(logits) * cap instead of tanh(logits / cap) * cap",
        ("reversible_embedding/reverse-soft-cap", "reversible_embedding/reverse-untied-soft-cap-rank2"),
        _soft_cap_division_forgotten,
    ),
)

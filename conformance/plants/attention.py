"""Planted faults in `xlayers/layers/attention.py` (MultiHeadAttention, GroupQueryAttention,
Attention, AdditiveAttention): the mistakes converters of attention make."""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager as ContextManager
from typing import Any
from unittest import mock

import torch

from xlayers.layers import attention as attention_layer
from xlayers.layers import attention_ops
from xlayers.layers.attention import AdditiveAttention

from .plant import Plant


def _patch_combine(edit: Any) -> ContextManager[Any]:
    """Patch `attention_ops.combine_masks`; ``edit`` rewrites its keyword arguments (a dict, in place)."""
    original = attention_ops.combine_masks

    @functools.wraps(original)
    def planted(queries, keys, device, query_mask=None, value_mask=None, key_mask=None, attention_mask=None,
                use_causal_mask=False, sliding_window=None):
        call = {"query_mask": query_mask, "value_mask": value_mask, "key_mask": key_mask, "attention_mask": attention_mask,
                    "use_causal_mask": use_causal_mask, "sliding_window": sliding_window}
        edit(call)
        return original(queries, keys, device, **call)

    return mock.patch.object(attention_ops, "combine_masks", planted)


def _attention_mask_inverted() -> ContextManager[Any]:
    def edit(call: dict[str, Any]) -> None:
        if call["attention_mask"] is not None:
            call["attention_mask"] = ~call["attention_mask"].bool()

    return _patch_combine(edit)


def _value_mask_on_query_axis() -> ContextManager[Any]:
    def edit(call: dict[str, Any]) -> None:
        if call["value_mask"] is not None:  # broadcast as (B, T, 1): it masks queries, not keys
            call["query_mask"], call["value_mask"] = call["value_mask"], None

    return _patch_combine(edit)


def _scale(value: Any) -> ContextManager[Any]:
    return mock.patch.object(attention_ops, "inverse_sqrt", value)


def _output_kernel_transposed() -> ContextManager[Any]:
    def planted(dense: Any, heads: torch.Tensor) -> torch.Tensor:
        kernel = dense.kernel  # Keras's (heads, value_dim, out), read as if it were (value_dim, heads, out)
        wrong = kernel.reshape(kernel.shape[1], kernel.shape[0], *kernel.shape[2:]).transpose(0, 1)
        out = torch.einsum(dense.equation, heads, wrong)
        return out + dense.bias if dense.bias_axes is not None else out

    return mock.patch.object(attention_layer, "_project_output", planted)


def _kv_heads_tiled() -> ContextManager[Any]:
    def planted(x: torch.Tensor, repeats: int) -> torch.Tensor:
        return x if repeats == 1 else x.repeat(1, 1, repeats, 1)  # heads h0 h1 h0 h1, not h0 h0 h1 h1

    return mock.patch.object(attention_ops, "repeat_heads", planted)


def _causal_without_diagonal() -> ContextManager[Any]:
    def planted(queries: int, keys: int, device: torch.device) -> torch.Tensor:
        return torch.ones(queries, keys, dtype=torch.bool, device=device).tril(-1).unsqueeze(0)

    return mock.patch.object(attention_ops, "causal_mask", planted)


def _empty_rows_zero() -> ContextManager[Any]:
    original = attention_ops.sdpa

    @functools.wraps(original)
    def planted(query, key, value, mask, is_causal, scale, empty_rows="uniform"):
        return original(query, key, value, mask, is_causal, scale, "zero")

    return mock.patch.object(attention_ops, "sdpa", planted)


def _padding_to_minus_infinity() -> ContextManager[Any]:
    def planted(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return scores if mask is None else scores.masked_fill(~mask, float("-inf"))

    return mock.patch.object(attention_ops, "subtract_padding", planted)


def _dropout_unscaled() -> ContextManager[Any]:
    original = attention_layer._Dropout.__call__

    @functools.wraps(original)
    def planted(self: Any, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dropped, keep = original(self, probs)
        return dropped * (1.0 - self.rate), keep  # kept probabilities not scaled by 1 / (1 - rate)

    return mock.patch.object(attention_layer._Dropout, "__call__", planted)


def _additive_scale_ignored() -> ContextManager[Any]:
    def planted(self: Any, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        return torch.tanh(query.unsqueeze(-2) + key.unsqueeze(-3)).sum(-1)

    return mock.patch.object(AdditiveAttention, "scores", planted)


PLANTS: tuple[Plant, ...] = (
    Plant("mha-attention-mask-inverted", "attention_mask read with the opposite polarity (True taken as 'masked', as in torch's nn.MultiheadAttention)",
          ("multi_head_attention/attention-mask", "group_query_attention/masks"), _attention_mask_inverted, dtype="float64"),
    Plant("mha-value-mask-on-query-axis", "the value (padding) mask broadcast along the query axis instead of the key axis",
          ("multi_head_attention/value-mask-holey-self",), _value_mask_on_query_axis, dtype="float64"),
    Plant("mha-scale-forgotten", "the 1/sqrt(key_dim) scale of the logits left out",
          ("multi_head_attention/self-h2-k4", "group_query_attention/q4-kv2-no-bias"), lambda: _scale(lambda size: 1.0), dtype="float64"),
    Plant("mha-scale-one-over-key-dim", "the logits scaled by 1/key_dim instead of 1/sqrt(key_dim)",
          ("multi_head_attention/self-h2-k4",), lambda: _scale(lambda size: 1.0 / size), dtype="float64"),
    Plant("mha-output-kernel-heads-value-dim-transposed", "Keras's (heads, value_dim, out) output kernel reshaped as (value_dim, heads, out)",
          ("multi_head_attention/cross-h3-k5-v3",), _output_kernel_transposed, dtype="float64"),
    Plant("gqa-kv-heads-tiled", "grouped key/value heads repeated by tiling (h0 h1 h0 h1) instead of Keras's repeat (h0 h0 h1 h1)",
          ("group_query_attention/q4-kv2",), _kv_heads_tiled, dtype="float64"),
    Plant("mha-causal-mask-without-diagonal", "a causal mask that also hides the query's own position (triu/tril off by one)",
          ("multi_head_attention/causal-value-mask",), _causal_without_diagonal, dtype="float64"),
    Plant("mha-empty-row-zeros-on-fused-path", "an all-masked query row given zeros where Keras's dot_product_attention averages the values",
          ("multi_head_attention/value-mask-empty-row", "multi_head_attention/attention-mask-empty-row"), _empty_rows_zero, dtype="float64"),
    Plant("attention-padding-minus-infinity", "Attention's padding mask applied as -inf (masked_fill) instead of Keras's `scores - 1e9`",
          ("attention/value-mask-empty-row",), _padding_to_minus_infinity),
    Plant("attention-dropout-unscaled", "dropout of the attention probabilities without the 1/(1 - rate) rescaling",
          ("multi_head_attention/training-dropout-no-bias",), _dropout_unscaled),
    Plant("additive-attention-scale-ignored", "AdditiveAttention's learned per-feature scale left out of the scores",
          ("additive_attention/scale",), _additive_scale_ignored),
)

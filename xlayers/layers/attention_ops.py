"""Pure functional attention ops with Keras 3's semantics, on torch tensors.

Projected tensors are laid out as Keras's ``MultiHeadAttention`` makes them:
``(batch, <attention axes>, heads, channels)``. Masks are booleans, ``True`` attends.

Keras 3.15 (TensorFlow backend) computes attention in two ways, and they differ on a query
row whose keys are all masked:

- ``ops.dot_product_attention`` (no dropout configured, no scores returned, rank-3 inputs)
  replaces masked logits by one large negative number: an all-masked row gets the uniform
  average of the values, and no gradient reaches the query or keys from it.
- the masked softmax (``Softmax(mask=...)``, otherwise) replaces masked logits by ``-1e9``
  and zeroes the masked probabilities afterwards: an all-masked row gets zeros.

`sdpa` runs torch's fused ``scaled_dot_product_attention`` and reproduces either rule
(``empty_rows="uniform"`` or ``"zero"``) exactly, gradients included.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "attention_equations",
    "causal_mask",
    "combine_masks",
    "expand_mask",
    "inverse_sqrt",
    "masked_softmax",
    "projection_equation",
    "repeat_heads",
    "sdpa",
    "sliding_window_mask",
    "subtract_padding",
]


def inverse_sqrt(size: int) -> float:
    """The attention scale ``1 / sqrt(size)`` as Keras applies it: rounded to float32 in every
    dtype (Keras casts the Python float through a float32 tensor, so a float64 layer scales by
    ``float32(1 / sqrt(size))`` too)."""
    return float(np.float32(1.0 / math.sqrt(size)))


def projection_equation(free_dims: int, bound_dims: int, output_dims: int) -> tuple[str, str]:
    """Keras's ``_build_proj_equation``: the einsum equation and bias letters of a projection."""
    letters = string.ascii_lowercase
    free = letters[:free_dims]
    bound = letters[free_dims:free_dims + bound_dims]
    out = letters[free_dims + bound_dims:free_dims + bound_dims + output_dims]
    return f"{free}{bound},{bound}{out}->{free}{out}", out


def attention_equations(rank: int, attention_axes: Sequence[int]) -> tuple[str, str, int]:
    """Keras's ``_build_attention_equation``: the query-key product and the combination
    equations for projected tensors of ``rank``, and the rank of the scores."""
    letters = string.ascii_lowercase
    target = letters[:rank]
    batch_dims = [i for i in range(rank) if i not in attention_axes and i != rank - 1]
    offset = rank
    source = ""
    for i in range(rank):
        if i in batch_dims or i == rank - 1:
            source += target[i]
        else:
            source += letters[offset]
            offset += 1
    product = "".join([target[i] for i in batch_dims] + [target[i] for i in attention_axes] + [source[i] for i in attention_axes])
    return f"{source},{target}->{product}", f"{product},{source}->{target}", len(product)


def causal_mask(queries: int, keys: int, device: torch.device) -> torch.Tensor:
    """``(1, queries, keys)``: query ``i`` attends keys ``j <= i`` (Keras's lower triangle)."""
    return torch.ones(queries, keys, dtype=torch.bool, device=device).tril().unsqueeze(0)


def sliding_window_mask(queries: int, keys: int, window: int, device: torch.device) -> torch.Tensor:
    """``(1, queries, keys)``: ``|i - j| < window`` (Keras's symmetric band)."""
    rows = torch.arange(queries, device=device).view(1, queries, 1)
    cols = torch.arange(keys, device=device).view(1, 1, keys)
    return (rows - cols).abs() < window


def combine_masks(
    queries: int,
    keys: int,
    device: torch.device,
    query_mask: torch.Tensor | None = None,
    value_mask: torch.Tensor | None = None,
    key_mask: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    use_causal_mask: bool = False,
    sliding_window: int | None = None,
) -> torch.Tensor | None:
    """Keras's ``_compute_attention_mask``: ``query_mask`` as ``[B, T, 1]``, ``value_mask`` and
    ``key_mask`` as ``[B, 1, S]``, the causal and sliding-window masks as ``[1, T, S]``, all
    and-ed with ``attention_mask`` (cast to bool: nonzero attends)."""
    auto = None
    if query_mask is not None:
        auto = query_mask.bool().unsqueeze(-1)
    for mask in (value_mask, key_mask):
        if mask is not None:
            mask = mask.bool().unsqueeze(-2)
            auto = mask if auto is None else auto & mask
    if use_causal_mask:
        mask = causal_mask(queries, keys, device)
        auto = mask if auto is None else auto & mask
    if sliding_window is not None:
        mask = sliding_window_mask(queries, keys, sliding_window, device)
        auto = mask if auto is None else auto & mask
    if attention_mask is not None:
        attention_mask = attention_mask.bool()
    if auto is not None:
        attention_mask = auto if attention_mask is None else attention_mask & auto
    return attention_mask


def expand_mask(mask: torch.Tensor, rank: int, attention_axes: int) -> torch.Tensor:
    """Insert size-1 axes before the query axes until ``mask`` has the scores' rank
    (Keras's ``mask_expansion_axis``: the heads axis, then the batch axes)."""
    axis = -attention_axes * 2 - 1
    while mask.dim() < rank:
        mask = mask.unsqueeze(axis if axis >= 0 else mask.dim() + axis + 1)
    return mask


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None, axes: Sequence[int]) -> torch.Tensor:
    """Keras's ``Softmax(axis=axes)(scores, mask)``: masked scores become ``-1e9`` (``-3e4`` in
    float16), softmax over ``axes``, and masked probabilities become 0 (so an all-masked row
    is zeros)."""
    if mask is not None:
        scores = scores.masked_fill(~mask, -3e4 if scores.dtype == torch.float16 else -1e9)
    if len(axes) == 1:
        probs = torch.softmax(scores, dim=axes[0])
    else:
        probs = torch.exp(scores - torch.logsumexp(scores, dim=tuple(axes), keepdim=True))
    return probs if mask is None else probs.masked_fill(~mask, 0.0)


def subtract_padding(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Keras's ``Attention._apply_scores`` masking: ``scores - 1e9`` (``- 65504`` in float16) where
    ``mask`` is False. A subtraction, not a replacement: an all-masked row keeps its scores'
    differences (in float64 its softmax is the unmasked one; in float32 they round away)."""
    if mask is None:
        return scores
    large = 65504.0 if scores.dtype == torch.float16 else 1.0e9
    return torch.where(mask, scores, scores - large)


def repeat_heads(x: torch.Tensor, repeats: int) -> torch.Tensor:
    """Keras's ``ops.repeat(x, repeats, axis=2)`` on ``(B, S, heads, H)``: each key/value head
    ``h`` serves query heads ``h * repeats ... h * repeats + repeats - 1``."""
    return x if repeats == 1 else x.repeat_interleave(repeats, dim=2)


def sdpa(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None,
    is_causal: bool,
    scale: float,
    empty_rows: str = "uniform",
) -> torch.Tensor:
    """Attention of ``(B, T, N, H)`` queries over ``(B, S, N, H)`` keys and values by
    ``F.scaled_dot_product_attention``; returns ``(B, T, N, Hv)``.

    ``mask`` is a boolean ``(B or 1, T, S)`` (``True`` attends) or ``None``; ``is_causal``
    applies the lower triangle when ``mask`` is ``None``. A query row with no key left
    (``empty_rows``): ``"uniform"`` averages the values with no gradient to the query or keys,
    as Keras's ``dot_product_attention``; ``"zero"`` gives zeros, as Keras's masked softmax.
    """
    q, k, v = query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2)
    empty = None
    if mask is not None:
        if mask.dim() == 2:
            mask = mask.unsqueeze(0)
        empty = ~mask.any(-1)  # (B or 1, T)
        mask = (mask | empty.unsqueeze(-1)).unsqueeze(1)  # an empty row attends everything ...
        if empty_rows == "uniform":  # ... with all-zero logits: the uniform average, no gradient to q or k
            q = q.masked_fill(empty.unsqueeze(1).unsqueeze(-1), 0.0)
        is_causal = False
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal, scale=scale).transpose(1, 2)
    if empty is not None and empty_rows == "zero":
        out = out.masked_fill(empty.unsqueeze(-1).unsqueeze(-1), 0.0)
    return out

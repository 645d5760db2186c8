"""Planted faults in `xlayers/layers/pooling.py` (and its math, `pooling_ops`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager as ContextManager
from typing import Any
from unittest import mock

import torch
import torch.nn.functional as F

from xlayers.layers import pooling as pooling_layer
from xlayers.layers import pooling_ops
from xlayers.layers.pooling import GlobalAveragePooling1D

from .plant import Plant

_POOL = {("max", 1): F.max_pool1d, ("max", 2): F.max_pool2d, ("max", 3): F.max_pool3d,
         ("average", 1): F.avg_pool1d, ("average", 2): F.avg_pool2d, ("average", 3): F.avg_pool3d}


def _padded_copy(mode: str) -> ContextManager[Any]:
    """``mode`` pooling as ``F.pad`` with zeros then an unpadded pool: the padded cells are real
    zeros, so a zero wins a max window whose real cells are all negative, and an average
    counts the padding."""
    original = pooling_ops.pool_padded

    @functools.wraps(original)
    def planted(inputs: torch.Tensor, pool_mode: str, pool_size: Sequence[int], strides: Sequence[int],
                pads: Sequence[tuple[int, int]]) -> torch.Tensor:
        if pool_mode != mode:
            return original(inputs, pool_mode, pool_size, strides, pads)
        flat = [p for b, a in reversed(tuple(pads)) for p in (b, a)]
        return _POOL[mode, inputs.dim() - 2](F.pad(inputs, flat, value=0.0), tuple(pool_size), tuple(strides))

    return mock.patch.object(pooling_ops, "pool_padded", planted)


def _max_pool_zero_padded() -> ContextManager[Any]:
    return _padded_copy("max")


def _avg_pool_counts_padding() -> ContextManager[Any]:
    return _padded_copy("average")


def _same_extra_at_start() -> ContextManager[Any]:
    original = pooling_ops.same_padding

    @functools.wraps(original)
    def planted(*args: Any, **kwargs: Any) -> tuple[tuple[int, int], ...]:
        return tuple((after, before) for before, after in original(*args, **kwargs))

    return mock.patch.object(pooling_ops, "same_padding", planted)


def _naive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """Bins ``[floor(i * size / out), floor((i + 1) * size / out))``: no overlap, as rounding
    both edges down gives (Keras rounds the end up)."""
    return [(i * size // out, max((i + 1) * size // out, i * size // out + 1)) for i in range(out)]


def _adaptive_bins_floor() -> ContextManager[Any]:
    def planted(inputs: torch.Tensor, mode: str, output_size: Sequence[int]) -> torch.Tensor:
        y = inputs
        for axis, out in enumerate(output_size):
            dim = 2 + axis
            bins = [y.narrow(dim, start, end - start) for start, end in _naive_bins(y.shape[dim], out)]
            reduce: Callable[..., torch.Tensor] = torch.amax if mode == "max" else torch.mean
            y = torch.stack([reduce(b, dim=dim) for b in bins], dim=dim)
        return y

    return mock.patch.object(pooling_layer, "adaptive_pool", planted)


def _masked_mean_over_all_steps() -> ContextManager[Any]:
    original = GlobalAveragePooling1D.call

    @functools.wraps(original)
    def planted(self: GlobalAveragePooling1D, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            return original(self, inputs)
        steps_axis = 1 if self.data_format == "channels_last" else 2
        keep = torch.as_tensor(mask).to(torch.bool).unsqueeze(2 if steps_axis == 1 else 1)
        return torch.where(keep, inputs, 0.0).mean(dim=steps_axis, keepdim=self.keepdims)

    return mock.patch.object(GlobalAveragePooling1D, "call", planted)


PLANTS: tuple[Plant, ...] = (
    Plant(
        "max-pool-same-zero-padded",
        "TF 'same' max pooling ported as F.pad (zeros) + max pool: a padded zero wins every border window "
        "whose real cells are all negative (TF's padding never wins a max)",
        ("max_pooling1d/same-p3-s2-nwc-10", "max_pooling2d/same-p3x2-s2x1-nhwc-10x9"),
        _max_pool_zero_padded,
    ),
    Plant(
        "avg-pool-counts-padding",
        "TF 'same' average pooling ported as F.pad (zeros) + average pool (torch's default count_include_pad=True): "
        "border windows divide by the full pool size instead of their real cells",
        ("average_pooling1d/same-p3-s2-nwc-10", "average_pooling2d/same-p3x2-s2x1-nhwc-10x9"),
        _avg_pool_counts_padding,
    ),
    Plant(
        "pool-same-extra-at-start",
        "odd 'same' pooling padding with the extra cell at the start (ONNX SAME_LOWER, or torch's ceil mode "
        "mistaken for it) instead of TF's end: every window shifts by one",
        ("max_pooling2d/same-p3x2-s2x1-nhwc-10x9", "average_pooling1d/same-p2-s2-nwc-9"),
        _same_extra_at_start,
    ),
    Plant(
        "adaptive-bins-floor",
        "adaptive pooling bins with both edges rounded down ([floor(i*n/out), floor((i+1)*n/out)), no overlap) "
        "instead of Keras's (and torch's) end rounded up, where the size does not divide evenly",
        ("adaptive_average_pooling1d/out4-nwc-10", "adaptive_max_pooling2d/out4x3-nhwc-10x7"),
        _adaptive_bins_floor,
    ),
    Plant(
        "global-average-mask-counts-masked-steps",
        "masked global average over steps divided by every step instead of the unmasked ones (masked steps "
        "zeroed, then a plain mean)",
        ("global_average_pooling1d/nwc-keepdims0-7-mask-holey",),
        _masked_mean_over_all_steps,
    ),
)

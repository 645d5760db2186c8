"""Planted faults in `xlayers/layers/reshaping.py`."""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager as ContextManager
from typing import Any
from unittest import mock

import torch

from xlayers.layers import reshaping
from xlayers.layers.reshaping import Flatten, Permute

from .plant import Plant


def _flatten_channels_first_order() -> ContextManager[Any]:
    # the NHWC tensor is permuted to NCHW before flattening (torch's nn.Flatten habit): the
    # features come out channel-major, and a Dense after it no longer takes Keras's kernel
    def call(self: Flatten, inputs: torch.Tensor) -> torch.Tensor:
        rank = inputs.dim()
        if self.data_format == "channels_last" and rank > 2:
            inputs = inputs.permute(0, rank - 1, *range(1, rank - 1))
        return inputs.flatten(1)

    return mock.patch.object(Flatten, "call", call)


def _zero_padding_before_after_swapped() -> ContextManager[Any]:
    # each spatial (before, after) pair reversed on its way to F.pad's flat list
    original = reshaping.torch_pad

    @functools.wraps(original)
    def planted(pairs, data_format):
        return original(tuple((after, before) for before, after in pairs), data_format)

    return mock.patch.object(reshaping, "torch_pad", planted)


def _cropping_wrong_side() -> ContextManager[Any]:
    # `before` is cut from the end and `after` from the start
    original = reshaping.crop_index

    @functools.wraps(original)
    def planted(pairs, data_format):
        return original(tuple((after, before) for before, after in pairs), data_format)

    return mock.patch.object(reshaping, "crop_index", planted)


def _permute_off_by_batch() -> ContextManager[Any]:
    # Keras's dims count the sample's axes from 1; read as 0-based sample axes and shifted by
    # one for the batch (the last wrapping to the first), every axis lands one place off
    def call(self: Permute, inputs: torch.Tensor) -> torch.Tensor:
        n = len(self.dims)
        return inputs.permute(0, *(d % n + 1 for d in self.dims))

    return mock.patch.object(Permute, "call", call)


PLANTS: tuple[Plant, ...] = (
    Plant(
        "flatten-channels-first-order",
        "an NHWC tensor permuted to NCHW before flattening (the PyTorch habit): the features come out "
        "channel-major and the Dense after it reads the wrong inputs with Keras's kernel",
        ("flatten/nhwc-2x5x7x3",),
        _flatten_channels_first_order,
    ),
    Plant(
        "zero-padding-before-after-swapped",
        "ZeroPadding's (before, after) pairs swapped in the F.pad list (torch lists the last axis first, "
        "then before/after; a reversed flat list swaps them): same shape, shifted content",
        ("zero_padding2d/asym-12-30-nhwc-2x5x7x3", "zero_padding1d/asym-1-3-nwc-2x7x3"),
        _zero_padding_before_after_swapped,
    ),
    Plant(
        "cropping-wrong-side",
        "Cropping's (before, after) taken from the wrong sides (start and end swapped): same shape, "
        "shifted window",
        ("cropping2d/asym-12-30-nhwc-2x7x9x3", "cropping1d/asym-1-3-nwc-2x9x3"),
        _cropping_wrong_side,
    ),
    Plant(
        "permute-dims-off-by-batch",
        "Permute's 1-based dims read as 0-based sample axes and shifted by one for the batch axis: every axis "
        "one place off; with two equal sizes the shape still matches and only the values show it",
        ("permute/21-square-3x5x5",),
        _permute_off_by_batch,
    ),
)

"""Planted faults in `xlayers/layers/merging.py`."""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager as ContextManager
from typing import Any
from unittest import mock

import torch

from xlayers.layers import merging
from xlayers.layers.merging import Average, Concatenate, Subtract

from .plant import Plant


def _concatenate_channels_first() -> ContextManager[Any]:
    # a converter that assumes NCHW and concatenates "the channels" on axis 1 whatever `axis` says
    return mock.patch.object(Concatenate, "_merge_function", lambda self, inputs, masks: torch.cat(inputs, dim=1))


def _subtract_reversed() -> ContextManager[Any]:
    return mock.patch.object(Subtract, "_binary_op", staticmethod(lambda a, b: torch.sub(b, a)))


def _average_as_sum() -> ContextManager[Any]:
    # Average mapped to the sum it is built on, the division by the number of inputs forgotten
    return mock.patch.object(Average, "_merge_function", merging.Merge._merge_function)


def _dot_normalize_ignored() -> ContextManager[Any]:
    return mock.patch.object(merging, "l2_normalize", lambda x, axis: x)


def _dot_normalize_last_axis() -> ContextManager[Any]:
    # cosine similarity normalised over the features (the last axis), not over the dot axis
    original = merging.l2_normalize

    @functools.wraps(original)
    def planted(x: torch.Tensor, axis: int) -> torch.Tensor:
        return original(x, -1)

    return mock.patch.object(merging, "l2_normalize", planted)


def _masks_merged_with_and() -> ContextManager[Any]:
    # "a step is valid when every input is valid": AND where Keras takes the OR
    return mock.patch.object(merging, "merge_masks", lambda masks: functools.reduce(torch.logical_and, masks))


def _concatenate_mask_zeros_for_unmasked() -> ContextManager[Any]:
    # an input without a mask taken as fully masked (zeros) instead of fully valid (ones)
    original = Concatenate.compute_mask

    @functools.wraps(original)
    def planted(self: Concatenate, inputs: Any, mask: Any = None) -> Any:
        if mask is None or all(m is None for m in mask):
            return original(self, inputs, mask)
        return original(self, inputs, [torch.zeros(x.shape[:-1], dtype=torch.bool) if m is None else m for x, m in zip(inputs, mask)])

    return mock.patch.object(Concatenate, "compute_mask", planted)


PLANTS: tuple[Plant, ...] = (
    Plant(
        "concatenate-axis-1",
        "Concatenate on axis 1, the channels axis of NCHW, whatever the Keras `axis` (a channels-first habit)",
        ("concatenate/axis=-1-equal", "concatenate/axis=-2-rank4"),
        _concatenate_channels_first,
    ),
    Plant("subtract-reversed", "Subtract computing inputs[1] - inputs[0]", ("subtract/pair-3x5x7",), _subtract_reversed),
    Plant("average-as-sum", "Average computed as the sum of the inputs (no division by their number)", ("average/three-3x5x7",), _average_as_sum),
    Plant(
        "dot-normalize-ignored",
        "Dot(normalize=True) taking the plain dot product (the cosine-similarity flag dropped)",
        ("dot/axes=2-normalize", "dot/axes=1-normalize"),
        _dot_normalize_ignored,
    ),
    Plant(
        "dot-normalize-last-axis",
        "Dot(normalize=True) normalising each input over its last axis instead of its dot axis",
        ("dot/axes=1-normalize",),
        _dot_normalize_last_axis,
    ),
    Plant(
        "merge-masks-and",
        "merged masks computed with AND (valid where every input is) where Keras takes the OR",
        ("add/mask-both", "multiply/mask-all", "maximum/mask-all"),
        _masks_merged_with_and,
    ),
    Plant(
        "concatenate-mask-zeros",
        "Concatenate filling the mask of an input without one with zeros instead of ones",
        ("concatenate/axis=1-mask-one",),
        _concatenate_mask_zeros_for_unmasked,
    ),
)

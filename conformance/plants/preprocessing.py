"""Planted faults in `xlayers/layers/preprocessing.py`."""

from __future__ import annotations

from contextlib import AbstractContextManager as ContextManager
from typing import Any
from unittest import mock

import torch

from xlayers.layers import preprocessing

from .plant import Plant


def _normalization_divides_by_variance() -> ContextManager[Any]:
    return mock.patch.object(preprocessing, "_stddev", lambda variance: torch.clamp(variance, min=preprocessing.EPSILON))


def _rescaling_offset_first() -> ContextManager[Any]:
    return mock.patch.object(preprocessing, "_rescale", lambda x, scale, offset: (x + offset) * scale)


PLANTS: tuple[Plant, ...] = (
    Plant(
        "normalization-divides-by-variance",
        "Normalization dividing by the variance instead of its square root (a converter reading Keras's "
        "`variance` weight as a standard deviation's square)",
        ("normalization/weights-last-axis", "normalization/config-last-axis"),
        _normalization_divides_by_variance,
    ),
    Plant(
        "rescaling-offset-before-scale",
        "Rescaling as (x + offset) * scale instead of Keras's x * scale + offset (torchvision's Normalize "
        "order mistaken for Keras's)",
        ("rescaling/per-channel", "rescaling/scalar"),
        _rescaling_offset_first,
    ),
)

"""Planted faults in `xlayers/layers/regularization.py`."""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager as ContextManager
from typing import Any
from unittest import mock

import torch

from xlayers.layers.regularization import ActivityRegularization, BaseSpatialDropout, Dropout, GaussianDropout

from .plant import Plant


def _dropout_not_rescaled() -> ContextManager[Any]:
    def noisy(self: Dropout, inputs: torch.Tensor) -> torch.Tensor:
        shape = self.mask_shape(inputs)
        keep = self.uniform(shape if shape is not None else inputs.shape, inputs) >= self.rate
        self.last_noise = keep
        return inputs * keep.to(inputs.dtype)  # no 1 / (1 - rate)

    return mock.patch.object(Dropout, "noisy", functools.wraps(Dropout.noisy)(noisy))


def _spatial_dropout_elementwise() -> ContextManager[Any]:
    # the spatial layers' mask shape forgotten: Dropout's element-wise mask
    return mock.patch.object(BaseSpatialDropout, "mask_shape", Dropout.mask_shape)


def _gaussian_dropout_stddev_rate() -> ContextManager[Any]:
    def noisy(self: GaussianDropout, inputs: torch.Tensor) -> torch.Tensor:
        self.last_noise = self.normal(inputs)
        return torch.addcmul(inputs, inputs, self.last_noise, value=self.rate)  # stddev = rate

    return mock.patch.object(GaussianDropout, "noisy", functools.wraps(GaussianDropout.noisy)(noisy))


def _activity_loss_forgotten() -> ContextManager[Any]:
    original = ActivityRegularization.__init__

    @functools.wraps(original)
    def __init__(self: ActivityRegularization, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.activity_regularizer = None  # a pass-through: the output is right, the loss is gone

    return mock.patch.object(ActivityRegularization, "__init__", __init__)


PLANTS: tuple[Plant, ...] = (
    Plant(
        "dropout-not-rescaled",
        "dropout that zeroes units but does not scale the kept ones by 1 / (1 - rate) (the old 'scale at inference' convention)",
        ("dropout/train-0.4", "dropout/train-noise-shape"),
        _dropout_not_rescaled,
    ),
    Plant(
        "spatial-dropout-elementwise",
        "SpatialDropout ported as plain Dropout: single elements dropped instead of whole channels",
        ("spatial_dropout1d/train", "spatial_dropout2d/train-nhwc", "spatial_dropout3d/train-ncdhw"),
        _spatial_dropout_elementwise,
    ),
    Plant(
        "gaussian-dropout-stddev-rate",
        "GaussianDropout's multiplicative noise with stddev rate instead of sqrt(rate / (1 - rate))",
        ("gaussian_dropout/train",),
        _gaussian_dropout_stddev_rate,
    ),
    Plant(
        "activity-regularization-loss-forgotten",
        "ActivityRegularization ported as a pass-through (nn.Identity): outputs right, its loss never added",
        ("activity_regularization/l1-l2",),
        _activity_loss_forgotten,
    ),
)

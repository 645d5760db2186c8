"""Planted faults in `xlayers/layers/normalization.py`."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from contextlib import AbstractContextManager as ContextManager
from typing import Any
from unittest import mock

import torch

from xlayers.layers import normalization
from xlayers.layers.normalization import BatchNormalization

from .plant import Plant


def _affine(y: torch.Tensor, gamma: torch.Tensor | None, beta: torch.Tensor | None, shape: list[int]) -> torch.Tensor:
    if gamma is not None:
        y = y * gamma.reshape(shape)
    if beta is not None:
        y = y + beta.reshape(shape)
    return y


def _bn_torch_momentum() -> ContextManager[Any]:
    # torch's running = (1 - momentum) * running + momentum * batch, given Keras's momentum as is
    def planted(moving: torch.Tensor, batch: torch.Tensor, momentum: float) -> None:
        moving.copy_(moving * (1.0 - momentum) + batch.to(moving.dtype) * momentum)

    return mock.patch.object(normalization, "update_moving", planted)


@contextlib.contextmanager
def _bn_torch_epsilon() -> Iterator[None]:
    # the normalization computes with torch's default eps=1e-5 while the layer reports Keras's 1e-3
    inference, training = normalization.batch_norm, normalization.batch_norm_training

    @functools.wraps(inference)
    def planted_inference(view, mean, variance, gamma, beta, epsilon):
        return inference(view, mean, variance, gamma, beta, 1e-5)

    @functools.wraps(training)
    def planted_training(view, gamma, beta, epsilon):
        return training(view, gamma, beta, 1e-5)  # its statistics stay right: only the outputs err

    with mock.patch.object(normalization, "batch_norm", planted_inference), \
            mock.patch.object(normalization, "batch_norm_training", planted_training):
        yield


def _bn_frozen_uses_batch_statistics() -> ContextManager[Any]:
    # torch's rule (module.training decides) instead of Keras's (training and trainable)
    return mock.patch.object(BatchNormalization, "uses_batch_statistics", lambda self, training: bool(training))


def _bn_unbiased_moving_variance() -> ContextManager[Any]:
    # torch's running_var takes the unbiased batch variance (n / (n - 1) times Keras's)
    original = normalization.batch_norm_training

    @functools.wraps(original)
    def planted(view, gamma, beta, epsilon):
        outputs, mean, variance = original(view, gamma, beta, epsilon)
        count = view.numel() // view.shape[1]
        return outputs, mean, variance * count / (count - 1)

    return mock.patch.object(normalization, "batch_norm_training", planted)


def _ln_every_non_batch_axis() -> ContextManager[Any]:
    # torch.nn.LayerNorm(x.shape[1:]) style: statistics over every axis but the batch, where Keras
    # takes only `axis` (-1); gamma and beta still per feature
    def planted(x, axes, gamma, beta, epsilon):
        variance, mean = torch.var_mean(x, list(range(1, x.ndim)), correction=0, keepdim=True)
        shape = [1] * x.ndim
        for axis in axes:
            shape[axis] = x.shape[axis]
        return _affine((x - mean) * torch.rsqrt(variance + epsilon), gamma, beta, shape)

    return mock.patch.object(normalization, "layer_norm", planted)


def _gn_strided_groups() -> ContextManager[Any]:
    # channel c in group c % groups (a reshape to (C/G, G) where Keras reshapes to (G, C/G))
    original = normalization.group_norm

    def planted(view, groups, gamma, beta, epsilon):
        channels = view.shape[1]
        order = torch.arange(channels).reshape(channels // groups, groups).T.reshape(-1)
        y = original(view[:, order], groups, None, None, epsilon)[:, torch.argsort(order)]
        return _affine(y, gamma, beta, [1, channels] + [1] * (view.ndim - 2))

    return mock.patch.object(normalization, "group_norm", planted)


PLANTS: tuple[Plant, ...] = (
    Plant(
        "bn-torch-momentum",
        "Keras's momentum handed to torch's BatchNorm as is: torch weighs the batch by `momentum` (0.99), "
        "Keras by `1 - momentum`; moving statistics jump to the batch's",
        ("batch_normalization/train-nhwc-2calls",),
        _bn_torch_momentum,
    ),
    Plant(
        "bn-epsilon-torch-default",
        "BatchNorm built with torch's default eps=1e-5 instead of the Keras layer's epsilon (1e-3)",
        ("batch_normalization/nhwc-2x7x9x5", "batch_normalization/train-nhwc-2calls"),
        _bn_torch_epsilon,
    ),
    Plant(
        "bn-frozen-uses-batch-statistics",
        "a frozen BatchNormalization (trainable=False) called with training=True normalizes with the batch's "
        "statistics (torch's module.train() rule), where Keras runs it in inference mode",
        ("batch_normalization/train-frozen",),
        _bn_frozen_uses_batch_statistics,
    ),
    Plant(
        "bn-unbiased-moving-variance",
        "the moving variance updated with the unbiased batch variance (torch's running_var) where Keras uses the "
        "biased one: outputs and gradients unchanged, only moving_variance drifts",
        ("batch_normalization/train-ncw-axis1-m0.5",),
        _bn_unbiased_moving_variance,
    ),
    Plant(
        "ln-every-non-batch-axis",
        "LayerNormalization ported as torch.nn.LayerNorm(x.shape[1:]): statistics over every non-batch axis "
        "instead of Keras's last axis",
        ("layer_normalization/nwc-3x7x5",),
        _ln_every_non_batch_axis,
    ),
    Plant(
        "gn-strided-groups",
        "GroupNormalization grouping channels with a stride (channel c in group c % groups, a reshape to "
        "(C/G, G)) where Keras groups contiguous channels (G, C/G)",
        ("group_normalization/g2-nhwc-2x7x9x6",),
        _gn_strided_groups,
    ),
)

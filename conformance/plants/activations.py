"""Planted faults in `xlayers/layers/activations.py`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from typing import Any
from unittest import mock

import torch
import torch.nn.functional as F

from xlayers import activations
from xlayers.layers.activations import LeakyReLU, PReLU, ReLU, Softmax

from .plant import Plant


def _patch_call(cls: type, body: Callable[..., torch.Tensor]) -> ContextManager[Any]:
    """Replace ``cls.call`` (same signature, so the runner's call-argument probe still works)."""
    original = cls.__dict__["call"]

    @functools.wraps(original)
    def call(self: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        return body(self, *args, **kwargs)

    return mock.patch.object(cls, "call", call)


def _leaky_relu_torch_slope() -> ContextManager[Any]:
    return _patch_call(LeakyReLU, lambda self, x: F.leaky_relu(x, 0.01))


def _relu_max_value_ignored() -> ContextManager[Any]:
    return _patch_call(ReLU, lambda self, x: activations.relu(x, negative_slope=self.negative_slope, threshold=self.threshold))


def _prelu_channels_shared() -> ContextManager[Any]:
    # the slope of the first channel for every channel: alpha shared over the last axis too
    return _patch_call(PReLU, lambda self, x: torch.ops.aten._prelu_kernel(x, self.alpha.narrow(-1, 0, 1)))


def _softmax_axis_1() -> ContextManager[Any]:
    original = Softmax._dims

    def dims(self: Softmax, rank: int, shape: tuple[int, ...]) -> int | tuple[int, ...]:
        return 1 if self.axis == -1 else original(self, rank, shape)

    return mock.patch.object(Softmax, "_dims", dims)


def _softmax_mask_ignored() -> ContextManager[Any]:
    original = Softmax.__dict__["call"]
    return _patch_call(Softmax, lambda self, x, mask=None: original(self, x))


PLANTS: tuple[Plant, ...] = (
    Plant(
        "leaky-relu-torch-slope",
        "Keras's LeakyReLU ported as torch's nn.LeakyReLU() with its default slope 0.01 (Keras 3's is 0.3)",
        ("leaky_re_lu/default",),
        _leaky_relu_torch_slope,
    ),
    Plant(
        "relu-max-value-ignored",
        "ReLU(max_value=...) ported as a plain relu: the cap dropped",
        ("re_lu/max-0.8", "re_lu/max-6-scaled"),
        _relu_max_value_ignored,
    ),
    Plant(
        "prelu-alpha-shared-wrong-axes",
        "PReLU's alpha shared over the channel axis as well (one slope where Keras learns one per channel), "
        "as a per-tensor nn.PReLU() would",
        ("p_re_lu/rank4-shared12", "p_re_lu/rank3-shared1-constant"),
        _prelu_channels_shared,
    ),
    Plant(
        "softmax-axis-channels-first",
        "Softmax normalised over axis 1 (the channels-first habit, nn.Softmax(dim=1)) where Keras's default is the last axis",
        ("softmax/axis-last",),
        _softmax_axis_1,
    ),
    Plant(
        "softmax-mask-ignored",
        "Softmax's mask argument dropped: masked logits still take probability",
        ("softmax/mask-full-rank2", "softmax/mask-broadcast"),
        _softmax_mask_ignored,
    ),
)

"""Planted faults in `xlayers/layers/conv.py`."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from typing import Any
from unittest import mock

import torch

from xlayers.layers import conv as conv_layer
from xlayers.layers import conv_ops
from xlayers.layers.conv import Conv2D

from .plant import Plant


def _patch_conv(weight: Callable[[torch.Tensor], torch.Tensor]) -> ContextManager[Any]:
    """Patch the ``conv`` Conv2D calls so that the torch-layout kernel goes through ``weight``."""
    original = conv_layer.conv

    @functools.wraps(original)
    def planted(inputs, kernel, *rest, **kwargs):
        return original(inputs, weight(kernel), *rest, **kwargs)

    return mock.patch.object(conv_layer, "conv", planted)


def _patch_same_padding(fn: Callable[[int, int], tuple[int, int]]) -> ContextManager[Any]:
    """Patch TF 'same' padding as `conv_ops` resolves it: each ``(before, after)`` -> ``fn``."""
    original = conv_ops.same_padding

    @functools.wraps(original)
    def planted(*args, **kwargs):
        return tuple(fn(before, after) for before, after in original(*args, **kwargs))

    return mock.patch.object(conv_ops, "same_padding", planted)


def _conv_same_symmetric() -> ContextManager[Any]:
    # torch's `padding=k // 2`: the larger side on both ends (same output size, shifted windows)
    return _patch_same_padding(lambda before, after: (max(before, after), max(before, after)))


def _conv_same_extra_at_start() -> ContextManager[Any]:
    return _patch_same_padding(lambda before, after: (after, before))


def _conv_kernel_flipped() -> ContextManager[Any]:
    return _patch_conv(lambda kernel: kernel.flip(-2, -1))


def _conv_kernel_kh_kw_swapped() -> ContextManager[Any]:
    # (kh, kw, in, out) -> (out, in, kw, kh) instead of (out, in, kh, kw): a wrong torch order in the declaration
    kernel = Conv2D._declared["kernel"]
    wrong = dataclasses.replace(kernel, torch=("out", "in", "kw", "kh"))
    return mock.patch.dict(Conv2D._declared, {"kernel": wrong})


def _conv_dilation_ignored_when_asymmetric() -> ContextManager[Any]:
    # the asymmetric-'same' formulation forgets dilation_rate (symmetric pads still dilate)
    original = conv_ops._conv_shift

    @functools.wraps(original)
    def planted(conv_fn, x, w, bias, pads, ss, ds, *rest):
        return original(conv_fn, x, w, bias, pads, ss, (1,) * len(ds), *rest)

    return mock.patch.object(conv_ops, "_conv_shift", planted)


def _conv_kernel_scaled() -> ContextManager[Any]:
    return _patch_conv(lambda kernel: kernel * (1.0 + 1e-4))


PLANTS: tuple[Plant, ...] = (
    Plant(
        "conv-same-symmetric",
        "TF 'same' translated to torch's symmetric padding=k//2: with stride 2 and an even size TF pads "
        "(0, 1), the port pads (1, 1) and every window shifts by one",
        ("conv2d/same-s2-d1-g1-k3x3-nhwc-9x10", "conv2d/same-s2-d1-g1-k3x3-nchw-9x10"),
        _conv_same_symmetric,
    ),
    Plant(
        "conv-same-extra-at-start",
        "odd 'same' padding with the extra zero at the start (ONNX SAME_LOWER / Caffe style) instead of "
        "TF's end",
        ("conv2d/same-s1-k4x4-even-kernel", "conv2d/same-s2-d1-g1-k3x3-nhwc-9x10"),
        _conv_same_extra_at_start,
    ),
    Plant(
        "conv-kernel-flipped",
        "kernel flipped in space, as when porting between a true convolution (Theano, scipy) and "
        "cross-correlation (TF, torch)",
        ("conv2d/valid-s1-d1-g1-k3x3-nhwc-9x10",),
        _conv_kernel_flipped,
    ),
    Plant(
        "conv-kernel-kh-kw-swapped",
        "kernel permuted (kh, kw, in, out) -> (out, in, kw, kh) instead of (out, in, kh, kw): "
        "transpose(3, 2, 1, 0) in place of permute(3, 2, 0, 1); invisible for square kernels",
        ("conv2d/same-s1-d1-g1-k2x4-nhwc-8x11",),
        _conv_kernel_kh_kw_swapped,
    ),
    Plant(
        "conv-dilation-ignored-when-asymmetric",
        "dilation_rate dropped on the path that handles TF's asymmetric 'same' padding (stride 1, an even dilated "
        "kernel extent), while symmetric padding still dilates",
        ("conv2d/same-s1-d3-g1-k2x4-nhwc-9x10", "conv2d/same-s1-d3x1-g2-k2x4-nchw-9x10"),
        _conv_dilation_ignored_when_asymmetric,
    ),
    Plant(
        "conv-kernel-scaled-1e-4",
        "a 1e-4 relative error in one weight on the way (a normalisation folded into the kernel with "
        "a slightly wrong epsilon): proves the float32 tolerance is tight",
        ("conv2d/valid-s1-d1-g1-k3x3-nhwc-9x10",),
        _conv_kernel_scaled,
    ),
)

"""Planted faults in `xlayers/layers/conv.py`: the convolutions, transposed, depthwise and separable."""

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
from xlayers.layers.conv import Conv2D, Conv2DTranspose, SeparableConv2D

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


def _depthwise_channels_m_major() -> ContextManager[Any]:
    # the grouped weight built in the order m * C + c (multiplier-major) instead of Keras's c * M + m
    def planted(view: torch.Tensor) -> torch.Tensor:
        return view.transpose(0, 1).reshape(view.shape[0] * view.shape[1], 1, *view.shape[2:])

    return mock.patch.object(conv_layer, "grouped_kernel", planted)


def _transpose_crop_wrong_side() -> ContextManager[Any]:
    # TF's odd 'same' crop taken off the start (torch/ONNX SAME_LOWER habit) instead of the end
    original = conv_layer.transpose_crops

    @functools.wraps(original)
    def planted(*args, **kwargs):
        return tuple((after, before) if after > before else (before, after) for before, after in original(*args, **kwargs))

    return mock.patch.object(conv_layer, "transpose_crops", planted)


def _transpose_kernel_in_out_swapped() -> ContextManager[Any]:
    # Keras's (kh, kw, out, in) read with Conv2D's recipe (kh, kw, in, out) -> (out, in, kh, kw): torch's
    # conv_transpose then gets (out, in, kh, kw) where it wants (in, out, kh, kw)
    kernel = Conv2DTranspose._declared["kernel"]
    wrong = dataclasses.replace(kernel, torch=("out", "in", "kh", "kw"))
    return mock.patch.dict(Conv2DTranspose._declared, {"kernel": wrong})


def _separable_pointwise_reshaped() -> ContextManager[Any]:
    # the pointwise kernel (1, 1, mid, out) "transposed" by a reshape to (out, mid, 1, 1): same shape,
    # every weight in the wrong place
    original = SeparableConv2D.weight_view

    def planted(self, name, framework="torch", value=None):
        if name != "pointwise_kernel" or framework != "torch":
            return original(self, name, framework, value)
        kernel = self.pointwise_kernel if value is None else value
        return kernel.reshape(kernel.shape[-1], kernel.shape[-2], *kernel.shape[:-2])

    return mock.patch.object(SeparableConv2D, "weight_view", planted)


def _transpose_output_padding_ignored() -> ContextManager[Any]:
    # output_padding dropped on the way to torch (Keras's default output size computed instead)
    original = conv_layer.transpose_crops

    @functools.wraps(original)
    def planted(kernel_size, strides, dilation_rate, padding, output_padding):
        return original(kernel_size, strides, dilation_rate, padding, None)

    return mock.patch.object(conv_layer, "transpose_crops", planted)


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
    Plant(
        "depthwise-channels-multiplier-major",
        "a depthwise kernel (kh, kw, in, mult) flattened to torch's grouped weight in the order m * in + c "
        "(permute to (mult, in, kh, kw)) instead of Keras's output channel c * mult + m",
        ("depthwise_conv2d/same-k3x2-s2-m3-nhwc-8x9",),
        _depthwise_channels_m_major,
    ),
    Plant(
        "conv-transpose-crop-wrong-side",
        "TF's odd 'same' crop of a transposed conv taken off the start instead of the end (torch's "
        "output_padding habit read backwards; kernel 3, stride 2 crops (0, 1))",
        ("conv2d_transpose/same-k3x2-s2-nhwc-5x6", "conv2d_transpose/same-k3x2-s1-nchw-5x6"),
        _transpose_crop_wrong_side,
    ),
    Plant(
        "conv-transpose-kernel-in-out-swapped",
        "a transposed kernel (kh, kw, out, in) ported with Conv2D's recipe, as if it were (kh, kw, in, out); "
        "a shape error where filters != in, wrong numbers where they are equal (the second case)",
        ("conv2d_transpose/same-k3x2-s2-nhwc-5x6", "conv2d_transpose/same-k3-s2-nobias-nhwc-4x5"),
        _transpose_kernel_in_out_swapped,
    ),
    Plant(
        "separable-pointwise-reshaped",
        "the pointwise kernel (1, 1, mid, out) turned into torch's (out, mid, 1, 1) by a reshape instead of a "
        "transpose: the right shape, the weights scrambled",
        ("separable_conv2d/same-k3x2-s2-m3-nhwc-8x9",),
        _separable_pointwise_reshaped,
    ),
    Plant(
        "conv-transpose-output-padding-ignored",
        "output_padding not passed on to torch's conv_transpose (Keras's default output size instead)",
        ("conv2d_transpose/same-k3x2-s2-op0x1-nhwc-5x6", "conv2d_transpose/valid-k2x3-s3x2-op1x0-nhwc-5x4"),
        _transpose_output_padding_ignored,
    ),
)

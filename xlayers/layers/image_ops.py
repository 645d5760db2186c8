"""TensorFlow's image resampling as separable linear maps: one ``(out, in)`` matrix per axis.

``tf.image.resize`` (what Keras's TF backend calls) is separable for every method: each output
pixel is a weighted sum over rows, then over columns. The weights depend only on the input
size, the output size and the method, so they are computed once here, in float32 arithmetic
that follows TF's kernels step by step, and applied as matmuls (nearest as a gather).

TF's conventions, per method (``antialias=False`` unless said):

- ``nearest``: ``ResizeNearestNeighbor`` with half-pixel centers: source
  ``min(floor((o + 0.5) * in / out), in - 1)``; not torch's legacy ``floor(o * in / out)``.
- ``bilinear``: ``ResizeBilinear`` with half-pixel centers: ``s = (o + 0.5) * in / out - 0.5``,
  neighbours ``max(floor(s), 0)`` and ``min(ceil(s), in - 1)`` (torch's ``align_corners=False``).
- ``bicubic``: ``ResizeBicubic`` with half-pixel centers and Keys' kernel ``a = -0.5`` (torch's
  is ``a = -0.75``), looked up in TF's 1025-entry table (the fraction rounded to 1/1024);
  taps outside the image get weight 0 and the rest is renormalised.
- ``area``: ``ResizeArea``: each output pixel averages the input area it covers
  (``[o, o + 1) * in / out``), partial pixels by their covered fraction.
- ``lanczos3``, ``lanczos5``, and ``bilinear``/``bicubic`` with ``antialias=True``:
  ``ScaleAndTranslate`` with the Lanczos, triangle or Keys-cubic kernel; with ``antialias``
  the kernel is stretched by ``in / out`` when downscaling; weights are renormalised.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = [
    "INTERPOLATIONS",
    "area_weights",
    "bicubic_weights",
    "bilinear_weights",
    "crop_box",
    "nearest_index",
    "pad_amount",
    "resize_weights",
    "scale_and_translate_weights",
]

INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "lanczos3", "lanczos5", "area")

_F = np.float32
_TABLE_SIZE = 1024


def _scale(in_size: int, out_size: int) -> np.float32:
    """TF's ``CalculateResizeScale`` without align_corners: ``float(in) / out`` in float32."""
    return _F(in_size) / _F(out_size)


@functools.lru_cache(maxsize=256)
def nearest_index(in_size: int, out_size: int) -> np.ndarray:
    """The source index of each output position, as TF's half-pixel nearest neighbour."""
    positions = (np.arange(out_size, dtype=_F) + _F(0.5)) * _scale(in_size, out_size)
    return np.clip(np.floor(positions).astype(np.int64), 0, in_size - 1)


@functools.lru_cache(maxsize=256)
def bilinear_weights(in_size: int, out_size: int) -> np.ndarray:
    """``(out, in)`` weights of TF's half-pixel bilinear resize."""
    source = (np.arange(out_size, dtype=_F) + _F(0.5)) * _scale(in_size, out_size) - _F(0.5)
    floor = np.floor(source)
    lower = np.maximum(floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(source).astype(np.int64), in_size - 1)
    lerp = (source - floor).astype(np.float64)
    weights = np.zeros((out_size, in_size))
    rows = np.arange(out_size)
    np.add.at(weights, (rows, lower), 1.0 - lerp)
    np.add.at(weights, (rows, upper), lerp)
    return weights


@functools.lru_cache(maxsize=8)
def _cubic_table(a: float) -> np.ndarray:
    """TF's ``InitCoeffsTable(a)``: ``(1025, 2)`` float32 Keys weights at ``x = i / 1024``
    (column 0) and ``x + 1`` (column 1), computed in double and stored in float."""
    x = (np.arange(_TABLE_SIZE + 1, dtype=np.float64) * 1.0 / _TABLE_SIZE).astype(_F).astype(np.float64)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    x = (x.astype(_F) + _F(1.0)).astype(np.float64)
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.stack([near, far], axis=1).astype(_F)


def _bicubic(in_size: int, out_size: int, a: float) -> np.ndarray:
    table = _cubic_table(a)
    source = (np.arange(out_size, dtype=_F) + _F(0.5)) * _scale(in_size, out_size) - _F(0.5)
    base = np.floor(source).astype(np.int64)
    delta = source - np.floor(source)
    offset = np.rint(delta * _F(_TABLE_SIZE)).astype(np.int64)  # lrintf: to nearest, ties to even
    taps = np.stack([table[offset, 1], table[offset, 0], table[_TABLE_SIZE - offset, 0], table[_TABLE_SIZE - offset, 1]], 1)
    index = base[:, None] + np.arange(-1, 3)[None, :]
    inside = (index >= 0) & (index < in_size)
    taps = np.where(inside, taps, _F(0.0))
    total = taps.sum(axis=1, dtype=_F)
    normal = np.abs(total) >= _F(1000.0) * np.finfo(_F).tiny
    taps = np.where(normal[:, None], taps * (_F(1.0) / np.where(normal, total, _F(1.0)))[:, None], taps)
    weights = np.zeros((out_size, in_size))
    rows = np.repeat(np.arange(out_size), 4)
    np.add.at(weights, (rows, np.clip(index, 0, in_size - 1).ravel()), taps.astype(np.float64).ravel())
    return weights


@functools.lru_cache(maxsize=256)
def bicubic_weights(in_size: int, out_size: int) -> np.ndarray:
    """``(out, in)`` weights of TF's half-pixel bicubic resize (Keys ``a = -0.5``, TF's table)."""
    return _bicubic(in_size, out_size, -0.5)


@functools.lru_cache(maxsize=256)
def area_weights(in_size: int, out_size: int) -> np.ndarray:
    """``(out, in)`` weights of TF's ``ResizeArea``: covered fractions over ``in / out``."""
    scale = _scale(in_size, out_size)
    weights = np.zeros((out_size, in_size))
    for o in range(out_size):  # once per size pair (cached), not per call
        start, end = _F(o) * scale, _F(o + 1) * scale
        for i in range(math.floor(start), math.ceil(end)):
            if i < start:
                covered = scale if _F(i + 1) > end else _F(i + 1) - start
            else:
                covered = end - _F(i) if _F(i + 1) > end else _F(1.0)
            weights[o, min(max(i, 0), in_size - 1)] += float(covered)
    return weights / float(scale)


def _lanczos(radius: float):
    def kernel(x: np.ndarray) -> np.ndarray:
        x = np.abs(x).astype(_F)
        pi = _F(3.14159265359)
        safe = np.where(x <= _F(1e-3), _F(1.0), x)
        value = _F(radius) * np.sin(pi * safe) * np.sin(pi * safe / _F(radius)) / (pi * pi * safe * safe)
        return np.where(x > _F(radius), _F(0.0), np.where(x <= _F(1e-3), _F(1.0), value)).astype(_F)

    return kernel, float(radius)


def _triangle(x: np.ndarray) -> np.ndarray:
    x = np.abs(x).astype(_F)
    return np.where(x < _F(1.0), _F(1.0) - x, _F(0.0)).astype(_F)


def _keys_cubic(x: np.ndarray) -> np.ndarray:
    x = np.abs(x).astype(_F)
    far = ((_F(-0.5) * x + _F(2.5)) * x - _F(4.0)) * x + _F(2.0)
    near = ((_F(1.5) * x - _F(2.5)) * x) * x + _F(1.0)
    return np.where(x >= _F(2.0), _F(0.0), np.where(x >= _F(1.0), far, near)).astype(_F)


_KERNELS = {
    "lanczos3": _lanczos(3.0),
    "lanczos5": _lanczos(5.0),
    "triangle": (_triangle, 1.0),
    "keyscubic": (_keys_cubic, 2.0),
}


@functools.lru_cache(maxsize=256)
def scale_and_translate_weights(kernel_name: str, in_size: int, out_size: int, antialias: bool) -> np.ndarray:
    """``(out, in)`` weights of TF's ``ScaleAndTranslate`` (translation 0), as ``ComputeSpans``."""
    kernel, radius = _KERNELS[kernel_name]
    scale = _F(out_size) / _F(in_size)
    inv_scale = _F(1.0 / float(scale))
    kernel_scale = max(inv_scale, _F(1.0)) if antialias else _F(1.0)
    one_over_kernel_scale = _F(1.0) / kernel_scale
    reach = _F(radius) * kernel_scale
    weights = np.zeros((out_size, in_size))
    for o in range(out_size):  # once per size pair (cached), not per call
        sample = (_F(o) + _F(0.5)) * inv_scale
        if sample < 0 or sample > in_size:
            continue
        start = min(max(math.ceil(sample - reach - _F(0.5)), 0), in_size - 1)
        end = min(max(math.floor(sample + reach - _F(0.5)), 0), in_size - 1) + 1
        positions = np.arange(start, end).astype(_F) + _F(0.5) - sample
        taps = kernel(np.abs(positions * one_over_kernel_scale))
        total = _F(0.0)
        for tap in taps:  # TF sums in order, in float
            total = _F(total + tap)
        if abs(total) >= _F(1000.0) * np.finfo(_F).tiny:
            weights[o, start:end] = (taps * (_F(1.0) / total)).astype(np.float64)
    return weights


def resize_weights(interpolation: str, in_size: int, out_size: int, antialias: bool = False) -> np.ndarray:
    """The ``(out, in)`` float64 matrix of ``tf.image.resize(method=interpolation,
    antialias=antialias)`` along one axis (not for ``nearest``: see `nearest_index`)."""
    if interpolation == "bilinear":
        return scale_and_translate_weights("triangle", in_size, out_size, True) if antialias else bilinear_weights(in_size, out_size)
    if interpolation == "bicubic":
        return scale_and_translate_weights("keyscubic", in_size, out_size, True) if antialias else bicubic_weights(in_size, out_size)
    if interpolation == "area":
        return area_weights(in_size, out_size)
    if interpolation in ("lanczos3", "lanczos5"):
        return scale_and_translate_weights(interpolation, in_size, out_size, antialias)
    raise ValueError(f"`interpolation` must be one of {list(INTERPOLATIONS)}. Received: interpolation={interpolation!r}.")


def crop_box(height: int, width: int, target_height: int, target_width: int, *, float32: bool = True) -> tuple[int, int, int, int]:
    """``(top, crop_height, left, crop_width)``: the largest centred window of the target's
    aspect ratio, as Keras computes it (float32 tensors in ``resize``, Python floats in
    ``smart_resize``; both truncate)."""
    cast = _F if float32 else float
    crop_height = max(min(height, int(cast(cast(width * target_height) / cast(target_width)))), 1)
    crop_width = max(min(width, int(cast(cast(height * target_width) / cast(target_height)))), 1)
    top = int(cast(cast(height - crop_height) / cast(2)))
    left = int(cast(cast(width - crop_width) / cast(2)))
    return top, crop_height, left, crop_width


def pad_amount(height: int, width: int, target_height: int, target_width: int) -> tuple[int, int]:
    """``(rows, cols)`` of fill Keras's ``pad_to_aspect_ratio`` puts on *each* side: half the
    missing size, truncated (an odd difference loses one pixel, as in Keras)."""
    pad_height = max(height, int(_F(_F(width * target_height) / _F(target_width))))
    pad_width = max(width, int(_F(_F(height * target_width) / _F(target_height))))
    return int(_F(_F(pad_height - height) / _F(2))), int(_F(_F(pad_width - width) / _F(2)))

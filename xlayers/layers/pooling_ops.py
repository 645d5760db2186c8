"""Pooling math with TensorFlow's semantics, for the pooling layers.

``inputs`` are logically channels-first, ``(N, C, *spatial)``, and may live in channels-last
memory (an NHWC tensor viewed as NCHW by ``permute`` *is* torch's ``channels_last`` layout);
nothing here copies them to channels-first memory (1-D channels-last inputs go through the
2-D ops, as ``(N, C, 1, L)`` channels-last views, for the same reason).

**TF 'same' pooling** (:func:`pool`). TensorFlow pads ``total = (out - 1) * stride + pool - in``
cells per axis, ``total // 2`` before and the rest after (the odd cell at the END), and the
padded cells take no part: a max ignores them (as if they were ``-inf``, never ``0``), an
average divides by the number of real cells in its window. torch's pooling ops do both with
their own implicit padding (``-inf`` for max, ``count_include_pad=False`` for average), so no
padded copy of the input is ever made; what torch's symmetric ``padding=`` cannot say is the
extra cell at the end. Per axis, with ``(before, after)`` TF's pads:

* ``after == before``: ``padding=before``.
* ``after == before + 1`` and ``stride >= 2``: ``padding=before`` with ``ceil_mode=True``. The
  padded length is then ``(out - 1) * stride - 1 + pool``, whose ceil-mode output count is
  ``out``: the last window starts at ``(out - 1) * stride - before`` (inside the input) and
  is clipped at the input's end, which is exactly TF's window over the one extra cell.
* ``after == before + 1`` and ``stride == 1`` (an even pool): ceil mode adds nothing at
  stride 1, so pad symmetrically by ``after`` and drop the first output (the "shift": output
  ``j + 1`` covers TF's window ``j``); the crop copies the output, never the input.

``ceil_mode=True`` is harmless on the other axes: where the windows tile the padded length
exactly it adds nothing, and where TF pads nothing because ``pool < stride`` torch drops
the extra window that would start past the input. ``tests/test_pooling.py`` checks every size,
pool and stride in 1..13 x 1..5 x 1..4 against TF's windows taken from their definition, and
``conformance/cases/pooling.py`` each placement of the padding against Keras. torch
needs ``padding <= pool // 2``, which TF's pads always satisfy (``after <= ceil((pool - 1) / 2)``).
3-D average pooling runs as a 2-D pool over (rows, cols) then one over depth (the real cells
of a window form a box, so the mean of means is the mean): torch's CPU ``avg_pool3d`` would
copy a ``channels_last_3d`` input and has no half-precision kernel.

**Adaptive pooling** (:func:`adaptive_pool`). Keras 3 (TF backend) pools bin ``i`` of ``out``
over ``[floor(i * in / out), ceil((i + 1) * in / out))`` (computed in float32), with a
"two-pool gather": a stride-1 pool of the small window ``ceil(in / out)`` and one of the big
window (one more), and for each bin the pooled value at its start from the one matching its
size. In exact arithmetic those bins are torch's ``adaptive_*_pool`` bins, and every bin has
the small or the big size (``ceil(x) <= ceil((i+1)x) - floor(ix) <= ceil(x) + 1`` for ``x = in / out``),
so the two agree. Keras's float32 bin edges are exact while ``in * out <= 2**24`` (the product
``i * in`` is exact and the quotient cannot round across an integer, whose distance is at
least ``1 / out``); beyond that :func:`keras_adaptive_bins` recomputes Keras's float32 edges
and, where they differ from the exact ones, the layer runs Keras's own two-pool gather
(:func:`adaptive_pool_gather`) instead of torch's op.

**ONNX.** While ``torch.export`` traces, a padded pool goes through the custom ops
``xlayers::max_pool_padded`` / ``xlayers::avg_pool_padded``, whose translations
(:func:`onnx_translations`) are ONE ``MaxPool`` / ``AveragePool`` node with TF's asymmetric
``pads`` (and ``count_include_pad=0``); unpadded pools are torch's own ops (one node each). An
adaptive pool whose sizes all divide evenly exports as one pooling node; otherwise each axis
is a plain pool where its size divides and Keras's two-pool gather (two pools, ``Concat``,
``Gather``) where it does not.

Every decision depends on shapes only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from xlayers.errors import InputShapeError
from xlayers.padding import normalize_padding, same_padding

__all__ = [
    "adaptive_pool",
    "adaptive_pool_gather",
    "keras_adaptive_bins",
    "onnx_translations",
    "pool",
    "pool_padded",
    "torch_adaptive_matches_keras",
]

Pair = tuple[int, int]
MODES = ("max", "average")

_POOL = {
    ("max", 1): F.max_pool1d, ("max", 2): F.max_pool2d, ("max", 3): F.max_pool3d,
    ("average", 1): F.avg_pool1d, ("average", 2): F.avg_pool2d, ("average", 3): F.avg_pool3d,
}
_ADAPTIVE = {
    ("max", 1): F.adaptive_max_pool1d, ("max", 2): F.adaptive_max_pool2d, ("max", 3): F.adaptive_max_pool3d,
    ("average", 1): F.adaptive_avg_pool1d, ("average", 2): F.adaptive_avg_pool2d, ("average", 3): F.adaptive_avg_pool3d,
}


def _check_rank(inputs: Tensor, what: str) -> int:
    n = inputs.dim() - 2
    if n not in (1, 2, 3):
        raise InputShapeError(
            f"`{what}` expects an input of rank 3, 4 or 5 (N, C, *spatial). Received: inputs.shape={tuple(inputs.shape)}."
        )
    return n


def _static_int(value: int, upper: int) -> int:
    """``value`` (known to lie in ``[0, upper]``) as a plain int under ``torch.compile(dynamic=True)``,
    where TF's pads are SymInt expressions of the sizes: a shape guard per candidate, never a
    branch on tensor values (a pad only depends on ``size % stride``)."""
    if not (isinstance(value, torch.SymInt) or torch.compiler.is_compiling()):
        return value
    for candidate in range(upper + 1):
        if value == candidate:
            return candidate
    return value


def _channels_last_1d(inputs: Tensor) -> bool:
    """An NLC tensor viewed as NCL (``stride(1) < stride(2)``): run it as ``(N, C, 1, L)``,
    which is channels-last 2-D memory that torch's 2-D pooling consumes without a copy."""
    return inputs.dim() == 3 and inputs.stride(1) < inputs.stride(2) and not torch.compiler.is_exporting()


# -- TF-'same' pooling ---------------------------------------------------------------------


def pool(
    inputs: Tensor, mode: str, pool_size: Sequence[int], strides: Sequence[int], padding: str
) -> Tensor:
    """N-D max or average pooling (1-D/2-D/3-D) with TensorFlow's ``'valid'`` / ``'same'`` semantics.

    Args:
        inputs: ``(N, C, *spatial)``; channels-last memory is kept (no layout copy).
        mode: ``"max"`` or ``"average"``.
        pool_size, strides: one int per spatial dimension.
        padding: ``"valid"`` or ``"same"`` (TF: the odd padded cell at the end; padded cells
            are ignored by max and excluded from the average's count).

    Returns:
        ``(N, C, *out)``, ``out`` as :func:`xlayers.padding.output_size`.
    """
    n = _check_rank(inputs, "pool")
    ks, ss = tuple(pool_size), tuple(strides)
    if normalize_padding(padding) == "same":
        pads = same_padding(tuple(inputs.shape[2:]), ks, ss)
        pads = tuple((_static_int(b, k), _static_int(a, k)) for (b, a), k in zip(pads, ks))
    else:
        pads = ((0, 0),) * n
    return pool_padded(inputs, mode, ks, ss, pads)


def pool_padded(inputs: Tensor, mode: str, pool_size: Sequence[int], strides: Sequence[int], pads: Sequence[Pair]) -> Tensor:
    """Pooling over explicit ``(before, after)`` pads per axis, the padded cells taking no part
    (max ignores them, average does not count them). TF's 'same' pads are ``after - before``
    in {0, 1}; other pairs work too where torch's ``padding <= pool // 2`` allows."""
    _check_rank(inputs, "pool")
    ks, ss, pads = tuple(pool_size), tuple(strides), tuple((b, a) for b, a in pads)
    outs = tuple((size + b + a - k) // s + 1 for size, (b, a), k, s in zip(inputs.shape[2:], pads, ks, ss))
    if any(o <= 0 for o in outs):
        raise InputShapeError(
            "Computed output size would be zero or negative: the padded input is smaller than the pool. "
            f"Received: inputs.shape={tuple(inputs.shape)}, pool_size={ks}, padding={pads}."
        )
    if _channels_last_1d(inputs):
        y = pool_padded(inputs.unsqueeze(2), mode, (1, *ks), (1, *ss), ((0, 0), *pads))
        return y.squeeze(2)
    if torch.compiler.is_exporting() and any(b or a for b, a in pads):
        # one ONNX MaxPool / AveragePool with TF's asymmetric pads (onnx_translations)
        exported = _EXPORTED[mode]
        return exported(inputs, list(ks), list(ss), [b for b, _ in pads] + [a for _, a in pads])
    return _pool_torch(inputs, mode, ks, ss, pads, outs)


def _pool_torch(inputs: Tensor, mode: str, ks: tuple[int, ...], ss: tuple[int, ...], pads: tuple[Pair, ...],
                outs: tuple[int, ...]) -> Tensor:
    if mode == "average" and inputs.dim() == 5 and not torch.compiler.is_exporting():  # exported: one AveragePool
        return _avg_pool3d_separable(inputs, ks, ss, pads, outs)
    symmetric: list[int] = []
    skip: list[int] = []
    ceil_mode = False
    for (b, a), s in zip(pads, ss):
        if a <= b:  # symmetric, or more before than after: the surplus trailing outputs are cropped
            symmetric.append(b)
            skip.append(0)
        elif a - b < s:  # the extra cells at the end: one more window by ceil mode
            symmetric.append(b)
            skip.append(0)
            ceil_mode = True
        else:  # stride 1 (or a surplus >= stride): the shift, pad by `before + z*stride`, drop z outputs
            z = -(-(a - b) // s)
            symmetric.append(b + z * s)
            skip.append(z)
    fn = _POOL[mode, inputs.dim() - 2]
    if mode == "max":
        y = fn(inputs, ks, ss, symmetric, ceil_mode=ceil_mode)
    else:
        y = fn(inputs, ks, ss, symmetric, ceil_mode=ceil_mode, count_include_pad=False)
    return _crop(y, skip, outs)


def _avg_pool3d_separable(x: Tensor, ks: tuple[int, ...], ss: tuple[int, ...], pads: tuple[Pair, ...],
                          outs: tuple[int, ...]) -> Tensor:
    """3-D average pooling as a 2-D pool over (rows, cols) then a 2-D pool over depth.

    torch's CPU ``avg_pool3d`` copies a ``channels_last_3d`` input to channels-first and has no
    float16/bfloat16 kernel. The real cells of a window are a box (one interval per axis), so
    the mean over the box is the mean over depth of the means over (rows, cols): exact up to
    rounding. Both passes take 4-D views of the same memory: ``(N*D, C, H, W)`` of a
    channels-last input (channels-last 2-D memory), ``(N, C*D, H, W)`` of a channels-first one.
    """
    n, c, d, h, w = x.shape
    channels_last = x.stride(1) == 1 and c > 1
    if channels_last:
        rows = x.permute(0, 2, 1, 3, 4).reshape(n * d, c, h, w)
    else:
        rows = x.reshape(n, c * d, h, w)
    y = _pool_torch(rows, "average", ks[1:], ss[1:], pads[1:], outs[1:])
    h2, w2 = outs[1], outs[2]
    if channels_last:
        y = y.reshape(n, d, c, h2, w2).permute(0, 2, 1, 3, 4)
    else:
        y = y.reshape(n, c, d, h2, w2)
    depth = y.reshape(n, c, d, h2 * w2)
    z = _pool_torch(depth, "average", (ks[0], 1), (ss[0], 1), (pads[0], (0, 0)), (outs[0], h2 * w2))
    return z.reshape(n, c, outs[0], h2, w2)


def _crop(y: Tensor, starts: Sequence[int], lengths: Sequence[int]) -> Tensor:
    """Keep ``[start, start + length)`` of each spatial axis: a negative ``F.pad``, one dense copy
    of the output that keeps its memory format (channels-last stays channels-last)."""
    if all(z == 0 and y.shape[2 + i] == o for i, (z, o) in enumerate(zip(starts, lengths))):
        return y
    flat: list[int] = []
    for i in reversed(range(len(starts))):
        flat += [-starts[i], starts[i] + lengths[i] - y.shape[2 + i]]
    return F.pad(y, flat)


def _pool_shape(inputs: Tensor, kernel: Sequence[int], strides: Sequence[int], pads: Sequence[int]) -> Tensor:
    n = inputs.dim() - 2
    outs = [(inputs.shape[2 + i] + pads[i] + pads[n + i] - kernel[i]) // strides[i] + 1 for i in range(n)]
    return inputs.new_empty((*inputs.shape[:2], *outs))


def _exported_pool(mode: str) -> Any:
    def implementation(inputs: Tensor, kernel: list[int], strides: list[int], pads: list[int]) -> Tensor:
        n = inputs.dim() - 2
        pairs = tuple(zip(pads[:n], pads[n:]))
        outs = tuple((inputs.shape[2 + i] + b + a - kernel[i]) // strides[i] + 1 for i, (b, a) in enumerate(pairs))
        return _pool_torch(inputs, mode, tuple(kernel), tuple(strides), pairs, outs)

    name = "max" if mode == "max" else "avg"
    implementation.__name__ = f"{name}_pool_padded"
    op = torch.library.custom_op(f"xlayers::{name}_pool_padded", mutates_args=())(implementation)
    op.register_fake(_pool_shape)
    return op


_EXPORTED = {mode: _exported_pool(mode) for mode in MODES}


@functools.cache
def onnx_translations() -> dict[Any, Callable[..., Any]]:
    """ONNX translations of the padded-pool custom ops: one ``MaxPool`` / ``AveragePool`` with
    TF's asymmetric ``pads`` (ONNX's order: every axis's start, then every axis's end), no
    ceil mode, and ``count_include_pad=0``. Imported only while exporting (onnxscript)."""
    from onnxscript import opset18 as op

    def max_pool_padded(inputs, kernel, strides, pads):
        # (unannotated on purpose: torch's exporter reads annotations as ONNX attribute types)
        pooled, _ = op.MaxPool(inputs, kernel_shape=kernel, strides=strides, pads=pads)  # (values, indices)
        return pooled

    def avg_pool_padded(inputs, kernel, strides, pads):
        return op.AveragePool(inputs, kernel_shape=kernel, strides=strides, pads=pads, count_include_pad=0)

    return {
        torch.ops.xlayers.max_pool_padded.default: max_pool_padded,
        torch.ops.xlayers.avg_pool_padded.default: avg_pool_padded,
    }


# -- adaptive pooling ---------------------------------------------------------------------------------

_FLOAT32_EXACT = 2**24


@functools.cache
def keras_adaptive_bins(size: int, output_size: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Keras 3's (TF backend) bin edges ``(starts, ends)`` of adaptive pooling, computed as it
    computes them: ``floor(i * size / out)`` and ``ceil((i + 1) * size / out)`` in float32,
    clamped to the input."""
    f32 = np.float32
    i = np.arange(output_size, dtype=f32)
    starts = np.floor(i * f32(size) / f32(output_size)).astype(np.int64)
    ends = np.ceil(np.arange(1, output_size + 1, dtype=f32) * f32(size) / f32(output_size)).astype(np.int64)
    return tuple(int(v) for v in np.minimum(starts, size - 1)), tuple(int(v) for v in np.minimum(ends, size))


def _exact_bins(size: int, output_size: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """torch's adaptive bins: ``[floor(i * size / out), ceil((i + 1) * size / out))`` in integers."""
    return (tuple(i * size // output_size for i in range(output_size)),
            tuple(-(-(i + 1) * size // output_size) for i in range(output_size)))


def torch_adaptive_matches_keras(size: int, output_size: int) -> bool:
    """Whether torch's adaptive bins are Keras's for this axis: always while
    ``size * output_size <= 2**24`` (Keras's float32 edges are exact there), else by comparing
    Keras's float32 edges with the exact ones."""
    if size * output_size <= _FLOAT32_EXACT:
        return True
    return keras_adaptive_bins(size, output_size) == _exact_bins(size, output_size)


def adaptive_pool(inputs: Tensor, mode: str, output_size: Sequence[int]) -> Tensor:
    """Adaptive max or average pooling to ``output_size`` with Keras 3's bins.

    torch's ``adaptive_*_pool`` where its bins are provably Keras's (every realistic size; see
    the module docstring), else Keras's own two-pool gather. While exporting: plain pools
    where the size divides evenly, the two-pool gather where it does not.
    """
    n = _check_rank(inputs, "adaptive_pool")
    sizes, outs = tuple(inputs.shape[2:]), tuple(output_size)
    if torch.compiler.is_exporting():
        if all(size % out == 0 for size, out in zip(sizes, outs)):
            ks = tuple(size // out for size, out in zip(sizes, outs))
            return _POOL[mode, n](inputs, ks, ks)  # one MaxPool / AveragePool
        return adaptive_pool_gather(inputs, mode, outs)
    if not all(torch_adaptive_matches_keras(size, out) for size, out in zip(sizes, outs)):
        return adaptive_pool_gather(inputs, mode, outs)
    if _channels_last_1d(inputs):
        return _ADAPTIVE[mode, 2](inputs.unsqueeze(2), (1, *outs)).squeeze(2)
    return _ADAPTIVE[mode, n](inputs, outs)


def adaptive_pool_gather(inputs: Tensor, mode: str, output_size: Sequence[int]) -> Tensor:
    """Keras 3's two-pool gather, axis after axis: a stride-1 pool of the small window
    ``ceil(size / out)`` and one of the big window (one more), concatenated, and for each bin
    the pooled value at its start taken from the pool of its size (Keras's float32 edges).
    An axis whose size divides evenly is one plain pool instead (every bin is the small window)."""
    n = _check_rank(inputs, "adaptive_pool")
    y = inputs
    fn = _POOL[mode, n]
    for axis, out in enumerate(output_size):
        size = y.shape[2 + axis]
        window = [1] * n
        if size % out == 0:
            window[axis] = size // out
            y = fn(y, window, window)
            continue
        starts, ends = keras_adaptive_bins(size, out)
        small = -(-size // out)
        big = small + 1
        window[axis] = small
        pools = [fn(y, window, 1)]
        if big <= size:
            window[axis] = big
            pools.append(fn(y, window, 1))
        offset = max(1, size - small + 1)  # where the big pool starts in the concatenation
        index = [s + offset if e - s == big else s for s, e in zip(starts, ends)]
        y = torch.cat(pools, dim=2 + axis).index_select(2 + axis, torch.tensor(index, device=y.device))
    return y

"""Convolution math with TensorFlow's padding semantics, for the conv layers.

The one entry point layers need is :func:`conv`. ``inputs`` is logically channels-first,
``(N, C, *spatial)``, but may live in channels-last memory (an NHWC tensor viewed as NCHW
by ``permute`` *is* torch's ``channels_last`` layout). It is never copied to
channels-first memory here: oneDNN consumes it as is and writes a channels-last output
(1-D channels-last inputs are routed through the 2-D conv for the same reason).

``'same'`` padding follows TF: when the total padding of a dimension is odd the extra
zero goes at the END, which torch's conv cannot express (its ``padding=`` is symmetric).
Symmetric padding (including ``'valid'``) always goes straight into torch's ``padding=``.
Asymmetric padding (TF 'same', or explicit ``((before, after), ...)`` pairs such as
Keras's ``'causal'``) uses the "shift" formulation, the fastest exact one measured
(forward and forward+backward; ``tools/bench_conv_padding.py`` times it against the
others): pad symmetrically by ``p = before + z * stride`` with
``z = ceil(max(after - before, 0) / stride)`` (``z = 1`` for TF 'same') and keep outputs
``z .. z + out - 1``. Output ``j`` of that conv starts at ``(j - z) * stride - before``,
exactly window ``j - z`` of the asymmetric conv, and ends inside the pad because
``p >= after``. No input copy; the extra work is ``z`` leading output rows/columns per
asymmetric dimension (plus the trailing ones when ``after < before``). The crop is a
negative ``F.pad`` (one dense copy of the output, channels-last kept, backward is a single
zero-pad) or, with ``contiguous=False``, a ``narrow`` view (no copy at all).

While ``torch.export`` traces (ONNX export), an asymmetric pad is written as ``F.pad``
then an unpadded conv instead: the exported graph's ``Pad + Conv`` folds into one ONNX
``Conv`` with asymmetric ``pads``.

Every decision depends on shapes only. Under ``torch.compile`` the 'same' pads are pinned
to constants by shape guards (they only depend on ``size % stride``), so graphs stay
dynamic in the sizes, trace with ``fullgraph=True`` and differentiate normally.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError
from xlayers.padding import normalize_padding, normalize_tuple, same_padding

__all__ = [
    "conv",
    "conv_padded",
    "conv_transpose",
    "resolve_padding",
    "transpose_crops",
    "transpose_output_size",
    "transpose_tails",
]

IntOrSeq = int | Sequence[int]
Pair = tuple[int, int]
PaddingArg = str | Sequence[Pair]

_CONV_FNS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE_FNS = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _eff(k: int, d: int) -> int:
    return (k - 1) * d + 1


def _out_len(size: int, before: int, after: int, k: int, s: int, d: int) -> int:
    return (size + before + after - _eff(k, d)) // s + 1


def _crop(y: torch.Tensor, starts: Sequence[int], lengths: Sequence[int], contiguous: bool) -> torch.Tensor:
    """Keep ``[start, start + length)`` of each spatial dim of a conv output.

    ``contiguous=True`` crops with a negative ``F.pad``: one dense copy that keeps the
    dimension order (channels-last stays channels-last), whose backward is a single
    zero-pad of the gradient (cheaper than the zeros + copy of one slice backward per dim).
    ``contiguous=False`` returns a strided view.
    """
    if all(z == 0 and y.shape[2 + i] == o for i, (z, o) in enumerate(zip(starts, lengths))):
        return y
    if not contiguous:
        for i, (z, o) in enumerate(zip(starts, lengths)):
            if z != 0 or y.shape[2 + i] != o:
                y = y.narrow(2 + i, z, o)
        return y
    return F.pad(y, _flat_pad([(-z, z + o - y.shape[2 + i]) for i, (z, o) in enumerate(zip(starts, lengths))]))


def _static_int(value: int, upper: int) -> int:
    """``value`` (known to lie in ``[0, upper]``) as a plain Python int.

    Under ``torch.compile(dynamic=True)`` the 'same' pads are SymInt expressions of the
    input sizes (``Max``/floor-division terms) that inductor's conv lowering cannot digest.
    A pad only depends on ``size % stride``, so comparing it with the few candidate values
    (a shape guard, never a tensor-value branch) pins it to a constant: the graph keeps
    symbolic sizes and at most ``stride`` variants per dimension are ever compiled.
    """
    # (dynamo reports SymInts as plain ints to isinstance, hence the is_compiling check)
    if not (isinstance(value, torch.SymInt) or torch.compiler.is_compiling()):
        return value
    for candidate in range(upper + 1):
        if value == candidate:
            return candidate
    return value  # unreachable for valid pads; keep the symbolic value


def resolve_padding(
    padding: PaddingArg,
    spatial_size: Sequence[int],
    kernel_size: Sequence[int],
    strides: Sequence[int],
    dilation_rate: Sequence[int],
) -> tuple[Pair, ...]:
    """Turn ``'valid'`` / ``'same'`` / explicit ``((before, after), ...)`` into per-dim pairs."""
    n = len(spatial_size)
    if isinstance(padding, str):
        mode = normalize_padding(padding)
        if mode == "valid":
            return ((0, 0),) * n
        return same_padding(spatial_size, kernel_size, strides, dilation_rate)
    try:
        pairs = tuple((int(b), int(a)) for b, a in padding)
    except (TypeError, ValueError):
        raise ArgumentTypeError(
            "`padding` must be 'valid', 'same' or one (before, after) pair per spatial "
            f"dimension. Received: padding={padding!r}."
        ) from None
    if len(pairs) != n or any(b < 0 or a < 0 for b, a in pairs):
        raise ArgumentError(
            f"`padding` must hold {n} non-negative (before, after) pairs. Received: padding={padding!r}."
        )
    return pairs


def conv(
    inputs: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    strides: IntOrSeq = 1,
    padding: PaddingArg = "valid",
    dilation_rate: IntOrSeq = 1,
    groups: int = 1,
    contiguous: bool = True,
) -> torch.Tensor:
    """N-D convolution (1-D/2-D/3-D) with TensorFlow's ``'valid'`` / ``'same'`` semantics.

    Args:
        inputs: ``(N, C_in, *spatial)``; channels-last memory is kept (no layout copy).
        weight: torch layout ``(C_out, C_in // groups, *kernel)``.
        bias: ``(C_out,)`` or ``None``.
        strides, dilation_rate: int or one int per spatial dimension.
        padding: ``'valid'``, ``'same'`` (TF: odd total puts the extra zero at the end), or
            explicit ``((before, after), ...)`` pairs.
        groups: number of channel groups.
        contiguous: when an asymmetric pad forces slicing the conv output, return a dense
            copy in the same dimension order (channels-last stays channels-last). Pass
            ``False`` to get the strided view instead, e.g. when an elementwise op follows
            (it produces a dense channels-last result by itself).

    Returns:
        ``(N, C_out, *out_spatial)`` with ``out`` as :func:`xlayers.padding.output_size`.
    """
    n = inputs.dim() - 2
    if n not in _CONV_FNS:
        raise InputShapeError(
            "`conv` expects an input of rank 3, 4 or 5 (N, C, *spatial). "
            f"Received: inputs.shape={tuple(inputs.shape)}."
        )
    if weight.dim() != inputs.dim():
        raise InputShapeError(
            f"`conv` expects a weight of rank {inputs.dim()} (C_out, C_in // groups, *kernel). "
            f"Received: weight.shape={tuple(weight.shape)}."
        )
    if groups < 1 or inputs.shape[1] != weight.shape[1] * groups or weight.shape[0] % groups != 0:
        raise InputShapeError(
            "`conv` expects inputs.shape[1] == weight.shape[1] * groups and weight.shape[0] "
            f"divisible by groups. Received: inputs.shape={tuple(inputs.shape)}, "
            f"weight.shape={tuple(weight.shape)}, groups={groups}."
        )
    ss = normalize_tuple(strides, n, "strides")
    ds = normalize_tuple(dilation_rate, n, "dilation_rate")
    ks = tuple(weight.shape[2:])
    pads = resolve_padding(padding, tuple(inputs.shape[2:]), ks, ss, ds)
    if isinstance(padding, str):
        pads = tuple(
            (_static_int(b, _eff(k, d)), _static_int(a, _eff(k, d))) for (b, a), k, d in zip(pads, ks, ds)
        )
    return conv_padded(inputs, weight, bias, pads, strides=ss, dilation_rate=ds, groups=groups, contiguous=contiguous)


def conv_padded(
    inputs: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    pads: Sequence[Pair],
    *,
    strides: Sequence[int],
    dilation_rate: Sequence[int],
    groups: int = 1,
    contiguous: bool = True,
) -> torch.Tensor:
    """Convolution with explicit, possibly asymmetric ``(before, after)`` zero padding per dim.

    The arguments are already normalised (one int per spatial dimension, ``pads`` as
    pairs); :func:`conv` is the checked entry point.
    """
    n = inputs.dim() - 2
    if n == 1 and inputs.stride(1) < inputs.stride(2) and not torch.compiler.is_exporting():
        # Channels-last 1-D input (an NLC tensor viewed as NCL): torch's conv1d would copy it
        # to NCL and reorder it again inside oneDNN; as a (N, C, 1, L) view it is exactly
        # channels_last 2-D memory, which the 2-D conv consumes as is (~2.5x faster). An
        # exported graph (memory layouts mean nothing there) keeps the plain 1-D conv.
        y = conv_padded(
            inputs.unsqueeze(2), weight.unsqueeze(2), bias, ((0, 0), *pads),
            strides=(1, *strides), dilation_rate=(1, *dilation_rate), groups=groups, contiguous=contiguous,
        )
        return y.squeeze(2)
    conv_fn = _CONV_FNS[n]
    sizes = tuple(inputs.shape[2:])
    ks = tuple(weight.shape[2:])
    ss, ds = tuple(strides), tuple(dilation_rate)
    outs = tuple(_out_len(i, b, a, k, s, d) for i, (b, a), k, s, d in zip(sizes, pads, ks, ss, ds))
    if any(o <= 0 for o in outs):
        raise InputShapeError(
            "Computed output size would be zero or negative: the padded input is smaller "
            f"than the dilated kernel. Received: inputs.shape={tuple(inputs.shape)}, "
            f"kernel_size={ks}, padding={tuple(pads)}."
        )
    if all(b == a for b, a in pads):  # symmetric (incl. 'valid'): torch does it all
        return conv_fn(inputs, weight, bias, ss, tuple(b for b, _ in pads), ds, groups)
    if torch.compiler.is_exporting():  # the exported Pad + Conv folds into one ONNX Conv's pads
        return conv_fn(F.pad(inputs, _flat_pad(pads)), weight, bias, ss, (0,) * n, ds, groups)
    return _conv_shift(conv_fn, inputs, weight, bias, pads, ss, ds, groups, outs, contiguous)


def _flat_pad(pads: Sequence[Pair]) -> list[int]:
    """``F.pad`` order: last dimension first."""
    flat: list[int] = []
    for b, a in reversed(tuple(pads)):
        flat += [b, a]
    return flat


def _conv_shift(
    conv_fn: Callable[..., torch.Tensor],
    x: torch.Tensor,
    w: torch.Tensor,
    bias: torch.Tensor | None,
    pads: Sequence[Pair],
    ss: tuple[int, ...],
    ds: tuple[int, ...],
    groups: int,
    outs: tuple[int, ...],
    contiguous: bool,
) -> torch.Tensor:
    # Symmetric pad p = before + z*s with p >= after: output j of the padded conv starts at
    # j*s - p = (j - z)*s - before, so outputs z .. z+out-1 are exactly the asymmetric
    # conv's, and the window of the last one ends inside the pad because p >= after.
    sym: list[int] = []
    skip: list[int] = []
    for (b, a), s in zip(pads, ss):
        z = 0 if a <= b else -(-(a - b) // s)
        sym.append(b + z * s)
        skip.append(z)
    y = conv_fn(x, w, bias, ss, tuple(sym), ds, groups)
    return _crop(y, skip, outs, contiguous)




# -- transposed convolution ------------------------------------------------------------------
#
# TensorFlow's ``conv_transpose`` is the gradient of a convolution with respect to its input:
# the "full" transposed output of an input of length ``I`` has ``L = (I - 1) * s + eff``
# positions (``eff = (k - 1) * d + 1``); output ``o`` is full position ``o + before``, where
# ``before`` is the 'same' pad that TF's forward convolution of the output length ``O`` would
# put before its first step (0 for 'valid'). Keras fixes ``O = (I - 1) * s + tail`` with a
# ``tail`` that depends on the configuration only (never on ``I``), so the crop is static:
# ``before`` from the start, ``after = L - O - before = eff - tail - before`` from the end (a
# negative ``after`` appends ``-after`` positions that no window reaches: the bias alone).
#
# torch's ``conv_transpose`` crops ``padding`` from both ends and then appends
# ``output_padding`` positions, so it says ``before`` / ``after`` exactly when
# ``output_padding = before - after >= 0``. TF's 'same' has ``after = before + 1`` whenever
# the total crop ``eff - tail`` is odd (e.g. kernel 3, stride 2: crop (0, 1)), which would need
# ``output_padding = -1``: torch cannot say it. The exact formulation then is
# ``padding=before, output_padding=0`` (one position too many, at the end) and a ``narrow``
# view that leaves it out: no copy, and one extra output row/column computed per axis. An
# exported graph writes that case as one ``xlayers::conv_transpose`` op, which becomes one ONNX
# ``ConvTranspose`` with asymmetric ``pads`` (ONNX says it directly).
#
# Speed: oneDNN's CPU transposed convolution runs about twice as slowly when torch's output
# length is not a multiple of the stride (measured: batch 16, 28x28x64 -> 128, kernel 3, stride
# 2: lengths 56 and 58 fast, 55 and 57 slow; stride 3: only 84 fast). Outside export, the
# ``output_padding`` handed to torch grows to reach the next multiple where torch allows it, and
# the narrow view drops the extra end positions too (``tools/bench_conv_transpose.py``).


def transpose_tails(
    kernel_size: Sequence[int],
    strides: Sequence[int],
    dilation_rate: Sequence[int],
    padding: str,
    output_padding: Sequence[int] | None,
) -> tuple[int, ...]:
    """Keras's ``O - (I - 1) * stride`` per axis (``backend_utils._get_output_shape_given_tf_padding``):
    'valid': ``eff + output_padding`` (default ``max(eff, stride) - eff``); 'same': ``stride``
    (``O = I * stride``), or ``eff % 2 + output_padding`` when ``output_padding`` is given."""
    tails = []
    for i, (k, s, d) in enumerate(zip(kernel_size, strides, dilation_rate)):
        eff = _eff(k, d)
        op = None if output_padding is None else output_padding[i]
        if padding == "valid":
            tails.append(eff + (max(eff, s) - eff if op is None else op))
        else:
            tails.append(s if op is None else eff % 2 + op)
    return tuple(tails)


def transpose_crops(
    kernel_size: Sequence[int],
    strides: Sequence[int],
    dilation_rate: Sequence[int],
    padding: str,
    output_padding: Sequence[int] | None,
) -> tuple[Pair, ...]:
    """``(before, after)`` cropped off each end of the full transposed output (``after < 0``
    appends positions), as TensorFlow: ``before`` is the 'same' pad TF's forward convolution
    puts before the first step (``total // 2``; the odd element of the total goes at the end)."""
    pairs = []
    for k, s, d, tail in zip(kernel_size, strides, dilation_rate,
                             transpose_tails(kernel_size, strides, dilation_rate, padding, output_padding)):
        eff = _eff(k, d)
        before = max(eff - tail, 0) // 2 if padding == "same" else 0
        pairs.append((before, eff - tail - before))
    return tuple(pairs)


def transpose_output_size(
    input_size: Sequence[int | None],
    kernel_size: Sequence[int],
    strides: Sequence[int],
    dilation_rate: Sequence[int],
    padding: str,
    output_padding: Sequence[int] | None,
) -> tuple[int | None, ...]:
    """Spatial output sizes of a Keras transposed convolution (``None`` stays ``None``)."""
    tails = transpose_tails(kernel_size, strides, dilation_rate, padding, output_padding)
    return tuple(None if i is None else (i - 1) * s + t for i, s, t in zip(input_size, strides, tails))


def conv_transpose(
    inputs: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    crops: Sequence[Pair],
    *,
    strides: Sequence[int],
    dilation_rate: Sequence[int],
) -> torch.Tensor:
    """Transposed convolution of ``(N, C_in, *spatial)`` (channels-last memory kept) with a
    torch-layout ``weight`` ``(C_in, C_out, *kernel)``, cropping ``crops`` (from
    :func:`transpose_crops`) off the full output: torch's ``padding=before`` and
    ``output_padding``, and a ``narrow`` view of the end positions torch cannot leave out (TF's
    odd crop) or computes for speed (see above). Exported: the exact arguments, or one
    ``xlayers::conv_transpose`` op for TF's odd crop."""
    n = inputs.dim() - 2
    ss, ds = tuple(strides), tuple(dilation_rate)
    if n == 1 and inputs.stride(1) < inputs.stride(2) and not torch.compiler.is_exporting():
        # a channels-last 1-D input as (N, C, 1, L): channels_last 2-D memory, as `conv_padded`
        y = conv_transpose(inputs.unsqueeze(2), weight.unsqueeze(2), bias, ((0, 0), *crops),
                           strides=(1, *ss), dilation_rate=(1, *ds))
        return y.squeeze(2)
    if torch.compiler.is_exporting():  # exact torch arguments, or one op that ONNX's ConvTranspose says
        if any(a > b for b, a in crops):
            return exported_conv_transpose(
                inputs, weight, bias, list(ss), list(ds), [b for b, _ in crops], [a for _, a in crops]
            )
        return _conv_transpose_cropped(inputs, weight, bias, crops, ss, ds, fast=False)
    return _conv_transpose_cropped(inputs, weight, bias, crops, ss, ds)


def _conv_transpose_cropped(
    inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, crops: Sequence[Pair],
    strides: Sequence[int], dilation_rate: Sequence[int], fast: bool = True,
) -> torch.Tensor:
    # padding=before crops `before` off both ends; output_padding >= before - after appends the rest;
    # what torch computes beyond the wanted end (TF's odd crop, and the `fast` extra) is left out by a
    # narrow view. `fast`: oneDNN's transposed conv takes a slow path (~2x here) unless torch's output
    # length is a multiple of the stride, so output_padding grows to the next multiple when torch
    # allows it (< max(stride, dilation)); the length mod stride does not depend on the input size.
    n = inputs.dim() - 2
    output_padding, excess = [], []
    for (b, a), k, s, d in zip(crops, weight.shape[2:], strides, dilation_rate):
        need = max(b - a, 0)
        op = need
        if fast:
            grown = need + (-(_eff(k, d) - 2 * b + need)) % s
            op = grown if grown < max(s, d) else need
        output_padding.append(op)
        excess.append(op - need + max(a - b, 0))
    y = _CONV_TRANSPOSE_FNS[n](
        inputs, weight, bias, tuple(strides), tuple(b for b, _ in crops), tuple(output_padding), 1, tuple(dilation_rate)
    )
    return _CropEnd.apply(y, tuple(excess)) if any(excess) else y


class _CropEnd(torch.autograd.Function):
    """``narrow`` views leaving out ``excess`` positions at the end of each spatial dim, whose
    backward zero-pads the gradient with ``F.pad`` (which keeps channels-last memory); the
    backward of a plain ``narrow`` scatters into channels-first zeros, which oneDNN then
    re-lays (measured ~1.2x slower forward + backward)."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, excess: tuple[int, ...]) -> torch.Tensor:  # type: ignore[override]
        ctx.excess = excess
        for i, extra in enumerate(excess):
            if extra:
                y = y.narrow(2 + i, 0, y.shape[2 + i] - extra)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return F.pad(grad, _flat_pad([(0, e) for e in ctx.excess])), None


@torch.library.custom_op("xlayers::conv_transpose", mutates_args=())
def exported_conv_transpose(
    inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, strides: list[int],
    dilation_rate: list[int], crop_before: list[int], crop_after: list[int],
) -> torch.Tensor:
    """A transposed convolution cropping ``(crop_before, crop_after)`` off the full output, as
    one op: exists for export, where it becomes one ONNX ``ConvTranspose`` with asymmetric
    ``pads`` (`conv_transpose_translation`)."""
    crops = tuple(zip(crop_before, crop_after))
    return _conv_transpose_cropped(inputs, weight, bias, crops, strides, dilation_rate, fast=False).contiguous()


@exported_conv_transpose.register_fake
def _exported_conv_transpose_shape(inputs, weight, bias, strides, dilation_rate, crop_before, crop_after):
    n = inputs.dim() - 2
    sizes = [
        (inputs.shape[2 + i] - 1) * strides[i] + _eff(weight.shape[2 + i], dilation_rate[i]) - crop_before[i] - crop_after[i]
        for i in range(n)
    ]
    return inputs.new_empty((inputs.shape[0], weight.shape[1], *sizes))


def conv_transpose_translation() -> Callable[..., object]:
    """The ONNX translation of ``xlayers::conv_transpose``: one ``ConvTranspose`` whose
    ``pads`` crop the full output asymmetrically (``output_padding`` appends where a crop is
    negative). Imports onnxscript: call it only when exporting."""
    from onnxscript import opset18 as op

    def xlayers_conv_transpose(inputs, weight, bias, strides, dilation_rate, crop_before, crop_after):
        # (unannotated on purpose: torch's exporter reads annotations as ONNX attribute types)
        pads = [max(b, 0) for b in crop_before] + [max(a, 0) for a in crop_after]
        output_padding = [max(-a, 0) for a in crop_after]
        if bias is None:
            return op.ConvTranspose(inputs, weight, strides=strides, dilations=dilation_rate, pads=pads,
                                    output_padding=output_padding)
        return op.ConvTranspose(inputs, weight, bias, strides=strides, dilations=dilation_rate, pads=pads,
                                output_padding=output_padding)

    return xlayers_conv_transpose

"""TensorFlow's ``'valid'`` / ``'same'`` convolution arithmetic as pure N-D functions.

Everything here works on plain Python integers (one entry per spatial dimension) and
needs no tensor library. The functions only use ``+ - * //``, ``max`` and comparisons,
so they also accept ``torch.SymInt`` sizes under ``torch.compile`` (the comparisons then
become shape guards, never branches on tensor values).

TensorFlow's rule for ``'same'`` (also used by Keras on every backend):

* ``out = ceil(in / stride)``
* ``total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - in, 0)``
* ``before = total // 2`` and ``after = total - before`` -- the odd element goes at the END.

``'valid'`` pads nothing: ``out = floor((in - (kernel - 1) * dilation - 1) / stride) + 1``.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError

__all__ = [
    "PADDING_MODES",
    "normalize_tuple",
    "normalize_padding",
    "effective_kernel_size",
    "same_padding",
    "same_padding_1d",
    "output_size",
    "output_size_1d",
]

#: Padding strings accepted by :func:`output_size` (``'causal'`` sizes like ``'same'``).
PADDING_MODES = ("valid", "same", "causal")

IntOrSeq = int | Sequence[int]
Pair = tuple[int, int]


def normalize_tuple(value: IntOrSeq, n: int, name: str, *, minimum: int = 1) -> tuple[int, ...]:
    """Broadcast an int to an ``n``-tuple, or check a sequence has ``n`` ints ``>= minimum``."""
    if isinstance(value, (bool, str, bytes)):
        raise ArgumentTypeError(_tuple_message(value, n, name, minimum))
    if _is_int(value):
        values: tuple[int, ...] = (operator.index(value),) * n
    else:
        try:
            values = tuple(value)
        except TypeError:
            raise ArgumentTypeError(_tuple_message(value, n, name, minimum)) from None
        if not all(_is_int(v) for v in values):
            raise ArgumentTypeError(_tuple_message(value, n, name, minimum))
        if len(values) != n:
            raise ArgumentError(_tuple_message(value, n, name, minimum))
        values = tuple(operator.index(v) for v in values)
    if any(v < minimum for v in values):
        raise ArgumentError(_tuple_message(value, n, name, minimum))
    return values


def _is_int(value: object) -> bool:
    """An integer (Python's, numpy's, or a symbolic size), not a bool."""
    if isinstance(value, bool):
        return False
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def _tuple_message(value: object, n: int, name: str, minimum: int) -> str:
    # Formatted only on failure: under torch.compile the values may be symbolic.
    if minimum == 1:
        expected = f"a positive int or a tuple of {n} positive ints"
    else:
        expected = f"an int >= {minimum} or a tuple of {n} ints >= {minimum}"
    return f"`{name}` must be {expected}. Received: {name}={value!r}."


def normalize_padding(padding: str, *, allow_causal: bool = False) -> str:
    """Lower-case and validate a padding string (``'valid'``, ``'same'``, optionally ``'causal'``)."""
    if not isinstance(padding, str):
        raise ArgumentTypeError(f"`padding` must be a string. Received: padding={padding!r}.")
    mode = padding.lower()
    allowed = PADDING_MODES if allow_causal else PADDING_MODES[:2]
    if mode not in allowed:
        raise ArgumentError(f"`padding` must be one of {allowed}. Received: padding={padding!r}.")
    return mode


def effective_kernel_size(kernel_size: int, dilation_rate: int = 1) -> int:
    """Extent of a dilated kernel: ``(kernel_size - 1) * dilation_rate + 1``."""
    return (kernel_size - 1) * dilation_rate + 1


def same_padding_1d(input_size: int, kernel_size: int, stride: int = 1, dilation_rate: int = 1) -> Pair:
    """TF ``'same'`` padding ``(before, after)`` of one dimension; the odd element goes after."""
    out = -(-input_size // stride)  # ceil division, also valid for SymInt
    total = max((out - 1) * stride + effective_kernel_size(kernel_size, dilation_rate) - input_size, 0)
    before = total // 2
    return before, total - before


def same_padding(
    input_size: Sequence[int],
    kernel_size: IntOrSeq,
    strides: IntOrSeq = 1,
    dilation_rate: IntOrSeq = 1,
) -> tuple[Pair, ...]:
    """TF ``'same'`` padding: one ``(before, after)`` pair per spatial dimension.

    ``input_size`` holds the spatial sizes only (no batch / channel entries); they must be
    known (not ``None``). ``kernel_size``, ``strides`` and ``dilation_rate`` are ints or
    sequences of ``len(input_size)`` ints.
    """
    sizes = tuple(input_size)
    n = len(sizes)
    ks = normalize_tuple(kernel_size, n, "kernel_size")
    ss = normalize_tuple(strides, n, "strides")
    ds = normalize_tuple(dilation_rate, n, "dilation_rate")
    for size in sizes:
        if size is None:
            raise InputShapeError(
                f"`same_padding` needs known spatial sizes. Received: input_size={sizes!r}."
            )
    return tuple(same_padding_1d(i, k, s, d) for i, k, s, d in zip(sizes, ks, ss, ds))


def output_size_1d(
    input_size: int | None,
    kernel_size: int,
    stride: int = 1,
    dilation_rate: int = 1,
    padding: str = "valid",
) -> int | None:
    """Output length of one dimension (Keras ``conv_output_length``); ``None`` stays ``None``.

    Raises :class:`~xlayers.errors.InputShapeError` when ``'valid'`` would give a size
    ``<= 0`` (Keras 3 and TensorFlow reject such inputs too).
    """
    mode = normalize_padding(padding, allow_causal=True)
    if input_size is None:
        return None
    if mode == "valid":
        eff = effective_kernel_size(kernel_size, dilation_rate)
        out = (input_size - eff) // stride + 1
        if out <= 0:
            raise InputShapeError(
                "Computed output size would be zero or negative: an input of size "
                f"{input_size} is smaller than the dilated kernel ({eff}) with padding='valid'. "
                f"Received: input_size={input_size}."
            )
        return out
    return -(-input_size // stride)  # 'same' and 'causal': ceil(in / stride)


def output_size(
    input_size: Sequence[int | None],
    kernel_size: IntOrSeq,
    strides: IntOrSeq = 1,
    dilation_rate: IntOrSeq = 1,
    padding: str = "valid",
) -> tuple[int | None, ...]:
    """Spatial output sizes of a convolution for ``'valid'`` / ``'same'`` (``'causal'``) padding.

    ``None`` entries (unknown sizes) propagate as ``None``.
    """
    sizes = tuple(input_size)
    n = len(sizes)
    ks = normalize_tuple(kernel_size, n, "kernel_size")
    ss = normalize_tuple(strides, n, "strides")
    ds = normalize_tuple(dilation_rate, n, "dilation_rate")
    mode = normalize_padding(padding, allow_causal=True)
    return tuple(output_size_1d(i, k, s, d, mode) for i, k, s, d in zip(sizes, ks, ss, ds))

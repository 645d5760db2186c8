"""Reshaping layers: `Flatten`, `Reshape`, `Permute`, `RepeatVector`, and the rank-generic
`BaseZeroPadding` (`ZeroPadding1D`/`2D`/`3D`) and `BaseCropping` (`Cropping1D`/`2D`/`3D`).

None of them holds weights. Each maps to one torch view or one torch op: ``reshape`` /
``flatten`` (a view wherever the input's strides allow it), ``permute`` (a view),
``expand`` (a broadcast view), ``F.pad`` (one copy: the padded tensor is the output) and
basic slicing (a view). None of them propagates a mask: Keras 3 gives them no
``compute_mask``, so its ``supports_masking`` is ``False`` and a mask stops there (with a
warning), as here (`Layer.compute_mask` returns ``None``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..arguments import data_format as check_data_format
from ..arguments import integer
from ..errors import ArgumentError, ArgumentTypeError, InputShapeError
from ..layer import InputSpec, Layer, Shape

__all__ = [
    "BaseCropping",
    "BaseZeroPadding",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "Flatten",
    "Permute",
    "RepeatVector",
    "Reshape",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "crop_index",
    "normalize_pairs",
    "torch_pad",
]

Pairs = tuple[tuple[int, int], ...]






def normalize_pairs(value: Any, rank: int, name: str) -> Pairs:
    """Keras's spatial ``padding`` / ``cropping`` argument as ``rank`` ``(before, after)`` pairs.

    Rank 1 takes an int (both sides) or one ``(before, after)`` pair. Ranks 2 and 3 take an
    int (every side), or ``rank`` entries, each an int (both sides of that axis) or a
    ``(before, after)`` pair. Every number must be an int >= 0.
    """
    if rank == 1:
        expected = "an int or a (before, after) pair of ints >= 0"
    else:
        expected = f"an int, or a tuple of {rank} entries each an int or a (before, after) pair, of ints >= 0"
    message = f"`{name}` must be {expected}. Received: {name}={value!r}."

    def pair(entry: Any) -> tuple[int, int]:
        number = integer(entry)
        if number is not None:
            return (number, number)
        if isinstance(entry, (str, bytes)) or not isinstance(entry, Sequence | np.ndarray):
            raise ArgumentTypeError(message)
        numbers = tuple(integer(v) for v in entry)
        if any(v is None for v in numbers):
            raise ArgumentTypeError(message)
        if len(numbers) != 2:
            raise ArgumentError(message)
        return numbers  # type: ignore[return-value]

    if rank == 1:
        pairs: Pairs = (pair(value),)
    elif integer(value) is not None:
        pairs = (pair(value),) * rank
    else:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence | np.ndarray):
            raise ArgumentTypeError(message)
        if len(value) != rank:
            raise ArgumentError(message)
        pairs = tuple(pair(entry) for entry in value)
    if any(v < 0 for p in pairs for v in p):
        raise ArgumentError(message)
    return pairs


def torch_pad(pairs: Pairs, data_format: str) -> tuple[int, ...]:
    """``F.pad``'s flat padding for ``(before, after)`` pairs of the spatial axes: the last
    axis first; a channels-last input first skips its channel axis with ``(0, 0)``."""
    flat = tuple(v for before_after in reversed(pairs) for v in before_after)
    return (0, 0, *flat) if data_format == "channels_last" else flat


def crop_index(pairs: Pairs, data_format: str) -> tuple[slice, ...]:
    """The basic index that crops ``(before, after)`` from each spatial axis: a view."""
    spatial = tuple(slice(before, -after if after else None) for before, after in pairs)
    return (slice(None), *spatial) if data_format == "channels_last" else (slice(None), slice(None), *spatial)


def _spatial_axes(rank: int, data_format: str) -> range:
    return range(1, rank + 1) if data_format == "channels_last" else range(2, rank + 2)


# -- Flatten, Reshape, Permute, RepeatVector ----------------------------------------------------


class Flatten(Layer):
    """Flattens each sample: ``(batch, d1, ..., dn) -> (batch, d1 * ... * dn)``.

    The order is always channels-last (row-major over ``(..., channels)``), so a `Dense`
    after it takes a Keras kernel unchanged: with ``data_format="channels_first"`` the input
    ``(batch, channels, ...)`` is first moved to ``(batch, ..., channels)``, as Keras does.
    Torch: ``inputs.flatten(1)`` (a view of a contiguous input); channels-first adds one
    ``permute`` (the reordering copy Keras makes too). A ``(batch,)`` input gives
    ``(batch, 1)``. Masks are not propagated (Keras's ``Flatten`` has no ``compute_mask``).

    Args:
        data_format: ``"channels_last"`` (default) or ``"channels_first"``: the layout of
            the input.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, ...)``, rank >= 1.

    Output shape:
        ``(batch, product of the other sizes)``.

    Example:
        >>> Flatten()(torch.randn(2, 3, 4, 5)).shape
        torch.Size([2, 60])
    """

    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = check_data_format(data_format)
        self.input_spec = InputSpec(min_ndim=1)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        rank = inputs.dim()
        if rank == 1:
            return inputs.unsqueeze(1)
        if self.data_format == "channels_first" and rank > 2:
            inputs = inputs.permute(0, *range(2, rank), 1)
        return inputs.flatten(1)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        rest = tuple(input_shape)[1:]
        return (input_shape[0], None if None in rest else math.prod(rest))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    """Reshapes each sample to ``target_shape``: ``(batch, ...) -> (batch, *target_shape)``.

    One entry of ``target_shape`` may be ``-1``: it is inferred from the sample's size.
    Torch: ``inputs.reshape(-1, *resolved)``: a view wherever the strides allow it (else the
    copy any reshape needs); the batch stays free (dynamic in an exported graph). Masks are
    not propagated.

    Args:
        target_shape: tuple of ints >= 0 (at most one ``-1``), the batch left out.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, ...)`` of ``prod(target_shape)`` elements per sample.

    Output shape:
        ``(batch, *target_shape)``, ``-1`` resolved.

    Example:
        >>> Reshape((3, -1))(torch.randn(2, 12)).shape
        torch.Size([2, 3, 4])
    """

    def __init__(self, target_shape: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        message = (
            "`target_shape` must be a tuple of ints >= 0 with at most one -1 (an inferred size), the batch "
            f"left out. Received: target_shape={target_shape!r}."
        )
        if isinstance(target_shape, (str, bytes)) or not isinstance(target_shape, Sequence | np.ndarray):
            raise ArgumentTypeError(message)
        sizes = tuple(integer(v) for v in target_shape)
        if any(v is None for v in sizes):
            raise ArgumentTypeError(message)
        if any(v < -1 for v in sizes) or sizes.count(-1) > 1:
            raise ArgumentError(message)
        self.target_shape: tuple[int, ...] = sizes  # type: ignore[assignment]

    def _resolved(self, input_shape: Shape) -> tuple[int | None, ...]:
        """``target_shape`` with ``-1`` resolved for ``input_shape`` (``None`` if unknown)."""
        rest = tuple(input_shape)[1:]
        target = self.target_shape
        if None in rest:
            return tuple(None if d == -1 else d for d in target)
        size = math.prod(rest)
        known = math.prod([d for d in target if d != -1])
        if -1 in target:
            if known == 0 or size % known:
                raise InputShapeError(
                    f"the input's sample size {size} cannot be split into `target_shape` (the known sizes multiply "
                    f"to {known}). Received: target_shape={target}, input shape={tuple(input_shape)}."
                )
            return tuple(size // known if d == -1 else d for d in target)
        if known != size:
            raise InputShapeError(
                f"`target_shape` must hold the input's sample size {size}; it holds {known}. "
                f"Received: target_shape={target}, input shape={tuple(input_shape)}."
            )
        return target

    def build(self, input_shape: Shape) -> None:
        self._resolved(input_shape)  # refuses an input of another size, as Keras's compute_output_shape

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        resolved = self._resolved(tuple(inputs.shape))
        if math.prod(resolved):  # -1 lets the batch stay free; an empty sample cannot infer it
            return inputs.reshape(-1, *resolved)
        return inputs.reshape(inputs.shape[0], *resolved)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], *self._resolved(input_shape))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "target_shape": self.target_shape}


class Permute(Layer):
    """Permutes the axes of each sample: output axis ``i`` is input axis ``dims[i - 1]``.

    ``dims`` numbers the sample's axes from 1 (the batch, axis 0, stays first); torch:
    ``inputs.permute(0, *dims)``, a view. Masks are not propagated.

    Args:
        dims: a permutation of ``1 .. n`` for inputs of rank ``n + 1``.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, d1, ..., dn)``.

    Output shape:
        ``(batch, d[dims[0]], ..., d[dims[n - 1]])``.

    Example:
        >>> Permute((2, 1))(torch.randn(2, 10, 64)).shape
        torch.Size([2, 64, 10])
    """

    def __init__(self, dims: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        message = f"`dims` must be a permutation of 1 .. n (the sample's axes; the batch is 0). Received: dims={dims!r}."
        if isinstance(dims, (str, bytes)) or not isinstance(dims, Sequence | np.ndarray):
            raise ArgumentTypeError(message)
        numbers = tuple(integer(v) for v in dims)
        if any(v is None for v in numbers):
            raise ArgumentTypeError(message)
        if sorted(numbers) != list(range(1, len(numbers) + 1)):  # type: ignore[type-var]
            raise ArgumentError(message)
        self.dims: tuple[int, ...] = numbers  # type: ignore[assignment]
        self.input_spec = InputSpec(ndim=len(self.dims) + 1)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.permute(0, *self.dims)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], *(input_shape[d] for d in self.dims))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dims": self.dims}


class RepeatVector(Layer):
    """Repeats each sample ``n`` times: ``(batch, features) -> (batch, n, features)``.

    Torch: ``inputs.unsqueeze(1).expand(-1, n, -1)``, a broadcast view (no copy; its
    gradient sums over the repeats). Write into it only after ``.contiguous()``. Masks are
    not propagated (Keras's ``RepeatVector`` has no ``compute_mask``).

    Args:
        n: the repetition factor, a positive int.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, features)``.

    Output shape:
        ``(batch, n, features)``.

    Example:
        >>> RepeatVector(3)(torch.randn(2, 32)).shape
        torch.Size([2, 3, 32])
    """

    def __init__(self, n: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        number = integer(n)
        if number is None:
            raise ArgumentTypeError(f"`n` must be a positive integer. Received: n={n!r}.")
        if number <= 0:
            raise ArgumentError(f"`n` must be a positive integer. Received: n={n!r}.")
        self.n = number
        self.input_spec = InputSpec(ndim=2)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.unsqueeze(1).expand(-1, self.n, -1)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n": self.n}


# -- ZeroPadding and Cropping: one base each, generic over the rank -----------------------------


class _SpatialPairs(Layer):
    """What padding and cropping share: ``rank`` ``(before, after)`` pairs of the spatial axes
    (Keras's argument ``ARGUMENT``), a data format, and an input of rank ``rank + 2``."""

    rank: ClassVar[int]
    ARGUMENT: ClassVar[str]
    DEFAULT: ClassVar[Any]

    def __init__(self, value: Any, data_format: str | None, **kwargs: Any) -> None:
        if not hasattr(type(self), "rank"):
            raise TypeError(f"`{type(self).__name__}` is abstract: use one of its 1D, 2D or 3D layers.")
        super().__init__(**kwargs)
        self.data_format = check_data_format(data_format)
        self.pairs = normalize_pairs(type(self).DEFAULT if value is None else value, self.rank, self.ARGUMENT)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def _keras_pairs(self) -> Any:
        """The pairs as Keras's config writes them: one pair for rank 1, else a tuple of pairs."""
        return self.pairs[0] if self.rank == 1 else self.pairs

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), self.ARGUMENT: self._keras_pairs(), "data_format": self.data_format}


class BaseZeroPadding(_SpatialPairs):
    """Zero-padding of the ``rank`` spatial axes, as Keras's ``ZeroPadding{1,2,3}D``.

    ``padding`` gives ``(before, after)`` zeros per spatial axis. Torch: one ``F.pad`` (the
    padded tensor is the layer's output; a channels-last input skips its channel axis).
    A member sets ``rank`` and Keras's default ``DEFAULT``.

    Args:
        padding: rank 1: an int or a ``(before, after)`` pair; ranks 2 and 3: an int, or
            ``rank`` entries each an int (symmetric) or a ``(before, after)`` pair.
            ``None`` is Keras's default (1 on each side).
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).
    """

    ARGUMENT = "padding"

    def __init__(self, padding: Any = None, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(padding, data_format, **kwargs)
        self._torch_pad = torch_pad(self.pairs, self.data_format)

    @property
    def padding(self) -> Any:
        return self._keras_pairs()

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return F.pad(inputs, self._torch_pad)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = list(input_shape)
        for axis, (before, after) in zip(_spatial_axes(self.rank, self.data_format), self.pairs):
            if shape[axis] is not None:
                shape[axis] += before + after
        return tuple(shape)


class BaseCropping(_SpatialPairs):
    """Cropping of the ``rank`` spatial axes, as Keras's ``Cropping{1,2,3}D``.

    ``cropping`` gives ``(before, after)`` elements to drop per spatial axis; at least one
    must remain. Torch: basic slicing, a view (no copy). A member sets ``rank`` and Keras's
    default ``DEFAULT``.

    Args:
        cropping: rank 1: an int or a ``(before, after)`` pair; ranks 2 and 3: an int, or
            ``rank`` entries each an int (symmetric) or a ``(before, after)`` pair.
            ``None`` is Keras's default.
        data_format: ``"channels_last"`` (default) or ``"channels_first"`` (not for rank 1,
            as in Keras).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).
    """

    ARGUMENT = "cropping"

    def __init__(self, cropping: Any = None, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(cropping, data_format, **kwargs)
        self._crop_index = crop_index(self.pairs, self.data_format)

    @property
    def cropping(self) -> Any:
        return self._keras_pairs()

    def build(self, input_shape: Shape) -> None:
        self.compute_output_shape(input_shape)  # refuses inputs the cropping would empty, as Keras

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        self.compute_output_shape(tuple(inputs.shape))  # the layer's own message, not an empty tensor
        return inputs[self._crop_index]

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = list(input_shape)
        for axis, (before, after) in zip(_spatial_axes(self.rank, self.data_format), self.pairs):
            if shape[axis] is None:
                continue
            shape[axis] -= before + after
            if shape[axis] <= 0:
                raise InputShapeError(
                    f"`cropping` must leave at least one element on each spatial axis. "
                    f"Received: cropping={self.cropping}, input shape={tuple(input_shape)}."
                )
        return tuple(shape)


class ZeroPadding1D(BaseZeroPadding):
    """Pads the steps axis with zeros: ``(batch, steps, ch) -> (batch, before + steps + after, ch)``.

    Torch: one ``F.pad``. Masks are not propagated.

    Args:
        padding: an int (both sides) or a ``(before, after)`` pair; default 1.
        data_format: ``"channels_last"`` (NWC, default) or ``"channels_first"`` (NCW).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, steps, channels)``, or ``(batch, channels, steps)`` with ``channels_first``.

    Output shape:
        ``(batch, padded_steps, channels)`` (or channels first).

    Example:
        >>> ZeroPadding1D((1, 2))(torch.randn(2, 5, 3)).shape
        torch.Size([2, 8, 3])
    """

    rank = 1
    DEFAULT = 1


class ZeroPadding2D(BaseZeroPadding):
    """Pads rows and columns with zeros (top, bottom, left, right). Torch: one ``F.pad``.

    Masks are not propagated.

    Args:
        padding: an int, ``(rows, cols)`` symmetric ints, or ``((top, bottom), (left, right))``;
            default ``(1, 1)``.
        data_format: ``"channels_last"`` (NHWC, default) or ``"channels_first"`` (NCHW).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, rows, cols, channels)``, or ``(batch, channels, rows, cols)`` with
        ``channels_first``.

    Output shape:
        ``(batch, padded_rows, padded_cols, channels)`` (or channels first).

    Example:
        >>> ZeroPadding2D(((1, 2), (3, 0)))(torch.randn(2, 5, 6, 3)).shape
        torch.Size([2, 8, 9, 3])
    """

    rank = 2
    DEFAULT = (1, 1)


class ZeroPadding3D(BaseZeroPadding):
    """Pads the three spatial axes with zeros. Torch: one ``F.pad``. Masks are not propagated.

    Args:
        padding: an int, 3 symmetric ints, or 3 ``(before, after)`` pairs; default
            ``((1, 1), (1, 1), (1, 1))``.
        data_format: ``"channels_last"`` (NDHWC, default) or ``"channels_first"`` (NCDHW).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, d1, d2, d3, channels)``, or ``(batch, channels, d1, d2, d3)`` with
        ``channels_first``.

    Output shape:
        ``(batch, padded_d1, padded_d2, padded_d3, channels)`` (or channels first).

    Example:
        >>> ZeroPadding3D((1, (0, 2), 0))(torch.randn(2, 3, 4, 5, 6)).shape
        torch.Size([2, 5, 6, 5, 6])
    """

    rank = 3
    DEFAULT = ((1, 1), (1, 1), (1, 1))


class Cropping1D(BaseCropping):
    """Crops the steps axis: ``(batch, steps, ch) -> (batch, steps - before - after, ch)``.

    Torch: a slice (a view). Keras's ``Cropping1D`` has no ``data_format``: the input is
    always ``(batch, steps, channels)``. Masks are not propagated.

    Args:
        cropping: an int (both sides) or a ``(before, after)`` pair; default ``(1, 1)``.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, steps, channels)``.

    Output shape:
        ``(batch, cropped_steps, channels)``.

    Example:
        >>> Cropping1D((1, 2))(torch.randn(2, 7, 3)).shape
        torch.Size([2, 4, 3])
    """

    rank = 1
    DEFAULT = (1, 1)

    def __init__(self, cropping: Any = None, **kwargs: Any) -> None:
        refused = "data_format" in kwargs  # as Keras's: the steps axis is always axis 1
        data_format = kwargs.pop("data_format", None)
        super().__init__(cropping, **kwargs)
        if refused:
            raise ArgumentTypeError(f"unrecognized keyword arguments ['data_format']. Received: data_format={data_format!r}.")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["data_format"]
        return config


class Cropping2D(BaseCropping):
    """Crops rows and columns (top, bottom, left, right). Torch: a slice (a view).

    Masks are not propagated.

    Args:
        cropping: an int, ``(rows, cols)`` symmetric ints, or ``((top, bottom), (left, right))``;
            default ``((0, 0), (0, 0))``.
        data_format: ``"channels_last"`` (NHWC, default) or ``"channels_first"`` (NCHW).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, rows, cols, channels)``, or ``(batch, channels, rows, cols)`` with
        ``channels_first``.

    Output shape:
        ``(batch, cropped_rows, cropped_cols, channels)`` (or channels first).

    Example:
        >>> Cropping2D(((1, 2), (3, 0)))(torch.randn(2, 7, 9, 3)).shape
        torch.Size([2, 4, 6, 3])
    """

    rank = 2
    DEFAULT = ((0, 0), (0, 0))


class Cropping3D(BaseCropping):
    """Crops the three spatial axes. Torch: a slice (a view). Masks are not propagated.

    Args:
        cropping: an int, 3 symmetric ints, or 3 ``(before, after)`` pairs; default
            ``((1, 1), (1, 1), (1, 1))``.
        data_format: ``"channels_last"`` (NDHWC, default) or ``"channels_first"`` (NCDHW).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, d1, d2, d3, channels)``, or ``(batch, channels, d1, d2, d3)`` with
        ``channels_first``.

    Output shape:
        ``(batch, cropped_d1, cropped_d2, cropped_d3, channels)`` (or channels first).

    Example:
        >>> Cropping3D((1, (0, 2), 0))(torch.randn(2, 5, 6, 7, 3)).shape
        torch.Size([2, 3, 4, 7, 3])
    """

    rank = 3
    DEFAULT = ((1, 1), (1, 1), (1, 1))

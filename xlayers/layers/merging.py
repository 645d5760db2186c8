"""Merging layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot, and their functional forms.

Each takes a list of tensors and returns one. `Merge` is the one base: it checks the list
(how many inputs, their shapes), lines up inputs of lower rank, hands the list and its masks
to the member's ``_merge_function``, and merges masks as Keras does (``compute_mask``: the OR
of the masks when every input has one). The elementwise members differ only in their binary
op and in how a mask enters their call; `Concatenate` and `Dot` bring their own shape rule,
op and mask.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from ..arguments import integer
from ..errors import ArgumentError, ArgumentTypeError, InputShapeError
from ..layer import _USER_ERRORS, InputSpec, Layer, Shape

__all__ = [
    "Add",
    "Average",
    "Concatenate",
    "Dot",
    "Maximum",
    "Merge",
    "Minimum",
    "Multiply",
    "Subtract",
    "add",
    "average",
    "concatenate",
    "dot",
    "maximum",
    "merge_masks",
    "minimum",
    "multiply",
    "subtract",
]

EPSILON = 1e-7  # keras.config.epsilon(): `Dot(normalize=True)` caps the inverse norm at 1 / EPSILON


def merge_masks(masks: Sequence[torch.Tensor]) -> torch.Tensor:
    """The masks of several inputs merged into one: their OR (Keras's ``Merge.compute_mask``,
    and the mask Multiply, Maximum and Minimum compute in their call)."""
    return functools.reduce(torch.logical_or, masks)


def _is_shape(value: Any) -> bool:
    return isinstance(value, (tuple, torch.Size)) and all(v is None or isinstance(v, (int, torch.SymInt)) for v in value)


def _as_mask(value: Any) -> torch.Tensor | None:
    if value is None or isinstance(value, torch.Tensor) and value.dtype == torch.bool:
        return value
    if isinstance(value, (np.ndarray, list)) and np.asarray(value).dtype == np.bool_:
        return torch.from_numpy(np.asarray(value))
    raise ArgumentTypeError(
        f"`mask` must hold one boolean tensor (or None) per input. Received: a mask of type {type(value).__name__}"
        + (f" and dtype {value.dtype}." if isinstance(value, (torch.Tensor, np.ndarray)) else ".")
    )


class Merge(Layer):
    """Base of the merging layers: a list of inputs in, one tensor out.

    Keras's ``keras.layers.Layer`` subclass ``Merge`` (``base_merge.py``). Inputs of the
    elementwise members broadcast as Keras broadcasts them: equal batch sizes; after the
    batch axis, sizes equal or 1, right-aligned; an input of lower rank gets axes of size 1
    right after the batch axis. The build fixes how many inputs there are and their ranks.

    Masks (``mask=[...]``, one per input, ``None`` for an input without one) are merged by
    ``compute_mask`` into their OR, or ``None`` unless every input has one. A subclass sets
    ``_binary_op`` (the elementwise op folded over the inputs), ``MASKED`` (how masks enter
    the call: ``""`` not at all, ``"identity"`` masked entries become 1 and the output is
    zeroed where every mask is off, ``"select"`` masked entries take the running result) and
    the number of inputs it takes.
    """

    MIN_INPUTS: ClassVar[int] = 1
    MAX_INPUTS: ClassVar[int | None] = None
    MASKED: ClassVar[str] = ""
    _binary_op: ClassVar[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    # -- shapes ------------------------------------------------------------------------------

    def _shape_list(self, input_shape: Any) -> list[Shape]:
        """``input_shape`` as a list of shapes, after checking it is a list of the right length."""
        if isinstance(input_shape, Mapping) or _is_shape(input_shape) or not isinstance(input_shape, (list, tuple)):
            raise InputShapeError(
                f"expected a list of inputs (a merge layer merges several tensors). Received: input shape={input_shape}."
            )
        if not all(isinstance(shape, (list, tuple, torch.Size)) for shape in input_shape):
            raise InputShapeError(f"expected a list of inputs, each with a shape. Received: input shape={input_shape}.")
        shapes = [tuple(shape) for shape in input_shape]
        count = len(shapes)
        if count < self.MIN_INPUTS or (self.MAX_INPUTS is not None and count > self.MAX_INPUTS):
            wanted = f"exactly {self.MIN_INPUTS}" if self.MIN_INPUTS == self.MAX_INPUTS else f"at least {self.MIN_INPUTS}"
            raise InputShapeError(
                f"expected a list of {wanted} input{'s' if self.MIN_INPUTS > 1 else ''}. "
                f"Received: {count} input{'s' if count != 1 else ''} with shapes {shapes}."
            )
        return shapes

    def _output_shape(self, shapes: list[Shape]) -> Shape:
        """Keras's broadcasting rule for elementwise merges; raises if the shapes do not fit."""
        batch = None
        for shape in shapes:
            if len(shape) == 0:
                raise InputShapeError(f"expected inputs with a batch axis (rank >= 1). Received: input shapes={shapes}.")
            if shape[0] is not None:
                if batch is not None and shape[0] != batch:
                    raise InputShapeError(f"cannot merge inputs with different batch sizes. Received: input shapes={shapes}.")
                batch = shape[0]
        merged = list(shapes[0][1:])
        for shape in shapes[1:]:
            other = list(shape[1:])
            if len(merged) < len(other):
                merged, other = other, merged
            lead = len(merged) - len(other)
            for index, size in enumerate(other):
                mine = merged[lead + index]
                if mine is None or size is None:
                    merged[lead + index] = None
                elif mine == 1:
                    merged[lead + index] = size
                elif size != 1 and size != mine:
                    raise InputShapeError(
                        f"inputs must broadcast: after the batch axis, sizes equal or 1, right-aligned (an input of "
                        f"lower rank gets axes of size 1 after the batch axis). Received: input shapes={shapes}."
                    )
        return (batch, *merged)

    def build(self, input_shape: Any) -> None:
        shapes = self._shape_list(input_shape)
        self._output_shape(shapes)
        self.input_spec = [InputSpec(ndim=len(shape)) for shape in shapes]

    def compute_output_shape(self, input_shape: Any) -> Shape:
        try:
            return self._output_shape(self._shape_list(input_shape))
        except _USER_ERRORS as error:
            raise self._labelled(error) from None

    # -- calling -----------------------------------------------------------------------------

    def call(self, inputs: Sequence[torch.Tensor], mask: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        inputs = list(inputs)
        masks = self._mask_list(inputs, mask)
        first = inputs[0].shape[0]
        if any(x.shape[1:] != built[1:] or x.shape[0] != first for x, built in zip(inputs, self._build_shape)):
            self._output_shape([tuple(x.shape) for x in inputs])  # other sizes than the build's: they must still fit
        return self._merge_function(inputs, masks)

    def _mask_list(self, inputs: list[torch.Tensor], mask: Any) -> list[torch.Tensor | None] | None:
        if mask is None:
            return None
        if not isinstance(mask, (list, tuple)) or len(mask) != len(inputs):
            listed = isinstance(mask, (list, tuple))
            error = ArgumentError if listed else ArgumentTypeError
            received = f"{len(mask)} masks" if listed else f"mask of type {type(mask).__name__}"
            raise error(f"`mask` must be a list with one mask (or None) per input, {len(inputs)} here. Received: {received}.")
        masks = [_as_mask(m) for m in mask]
        return None if all(m is None for m in masks) else masks

    def _merge_function(self, inputs: list[torch.Tensor], masks: list[torch.Tensor | None] | None) -> torch.Tensor:
        """The elementwise merge: ``_binary_op`` folded over the inputs, masks as ``MASKED`` says."""
        rank = max(x.dim() for x in inputs)
        if any(x.dim() < rank for x in inputs):  # Keras: axes of size 1 after the batch axis
            # Keras reads the masks from the reshaped tensors, which carry none: a lower-rank input's mask is not applied
            masks = None if masks is None else [m if x.dim() == rank else None for x, m in zip(inputs, masks)]
            inputs = [x[(slice(None),) + (None,) * (rank - x.dim())] for x in inputs]
        op = self._binary_op
        if masks is None or not self.MASKED or all(m is None for m in masks):
            return functools.reduce(op, inputs)
        masks = [None if m is None else m.unsqueeze(-1) for m in masks]  # (batch, steps) masks over (batch, steps, ...)
        if self.MASKED == "identity":  # Keras's Multiply
            output = functools.reduce(op, [x if m is None else torch.where(m, x, 1.0) for x, m in zip(inputs, masks)])
            if all(m is not None for m in masks):
                output = torch.where(merge_masks(masks), output, 0.0)
            return output
        # "select" (Keras's Merge._apply_merge_op_and_or_mask): masked entries take the running result
        output, output_mask = inputs[0], masks[0]
        for x, m in zip(inputs[1:], masks[1:]):
            if m is not None:
                x = torch.where(m, x, output)
            if output_mask is not None:
                output = torch.where(output_mask, output, x)
            output_mask = merge_masks([output_mask, m]) if m is not None and output_mask is not None else None
            output = op(output, x)
        return output

    def compute_mask(self, inputs: Sequence[torch.Tensor], mask: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor | None:
        """The OR of the inputs' masks, or ``None`` unless every input has one (Keras's rule)."""
        if mask is None:
            return None
        masks = self._mask_list(list(inputs), mask)
        if masks is None or any(m is None for m in masks):
            return None
        return merge_masks(masks)


class Add(Merge):
    """Adds a list of inputs elementwise: ``inputs[0] + inputs[1] + ...``.

    Keras's ``keras.layers.Add``; torch: ``a + b`` folded over the list (one ``Add`` node per
    pair in ONNX). Inputs broadcast as `Merge` says.

    Input shape:
        a list of at least 1 tensor, ``(batch, ...)``, shapes that broadcast.

    Output shape:
        the broadcast shape.

    Example:
        >>> Add()([torch.ones(2, 3), torch.ones(2, 3)])
        tensor([[2., 2., 2.],
                [2., 2., 2.]])
    """

    _binary_op = staticmethod(torch.add)


class Subtract(Merge):
    """Subtracts the second input from the first: ``inputs[0] - inputs[1]``.

    Keras's ``keras.layers.Subtract``; torch: ``a - b``.

    Input shape:
        a list of exactly 2 tensors whose shapes broadcast.

    Output shape:
        the broadcast shape.

    Example:
        >>> Subtract()([torch.full((2, 3), 5.0), torch.ones(2, 3)])[0]
        tensor([4., 4., 4.])
    """

    MIN_INPUTS = 2
    MAX_INPUTS = 2
    _binary_op = staticmethod(torch.sub)


class Multiply(Merge):
    """Multiplies a list of inputs elementwise: ``inputs[0] * inputs[1] * ...``.

    Keras's ``keras.layers.Multiply``; torch: ``a * b`` folded over the list. With masks, a
    masked entry counts as 1, and when every input has a mask the output is 0 where all of
    them are off (Keras's call).

    Input shape:
        a list of at least 1 tensor whose shapes broadcast.

    Output shape:
        the broadcast shape.

    Example:
        >>> Multiply()([torch.full((2, 3), 2.0), torch.full((2, 3), 3.0)])[0]
        tensor([6., 6., 6.])
    """

    MASKED = "identity"
    _binary_op = staticmethod(torch.mul)


class Average(Merge):
    """Averages a list of inputs elementwise: ``(inputs[0] + ... + inputs[n-1]) / n``.

    Keras's ``keras.layers.Average``; torch: the sum folded over the list, then one division.

    Input shape:
        a list of at least 1 tensor whose shapes broadcast.

    Output shape:
        the broadcast shape.

    Example:
        >>> Average()([torch.zeros(2, 3), torch.full((2, 3), 3.0)])[0]
        tensor([1.5000, 1.5000, 1.5000])
    """

    _binary_op = staticmethod(torch.add)

    def _merge_function(self, inputs: list[torch.Tensor], masks: list[torch.Tensor | None] | None) -> torch.Tensor:
        return super()._merge_function(inputs, masks) / len(inputs)


class Maximum(Merge):
    """The elementwise maximum of a list of inputs.

    Keras's ``keras.layers.Maximum``; torch: ``torch.maximum`` folded over the list. With
    masks, a masked entry takes the running result instead (Keras's call).

    Input shape:
        a list of at least 1 tensor whose shapes broadcast.

    Output shape:
        the broadcast shape.

    Example:
        >>> Maximum()([torch.tensor([[1.0, 5.0]]), torch.tensor([[3.0, 2.0]])])
        tensor([[3., 5.]])
    """

    MASKED = "select"
    _binary_op = staticmethod(torch.maximum)


class Minimum(Merge):
    """The elementwise minimum of a list of inputs.

    Keras's ``keras.layers.Minimum``; torch: ``torch.minimum`` folded over the list. With
    masks, a masked entry takes the running result instead (Keras's call).

    Input shape:
        a list of at least 1 tensor whose shapes broadcast.

    Output shape:
        the broadcast shape.

    Example:
        >>> Minimum()([torch.tensor([[1.0, 5.0]]), torch.tensor([[3.0, 2.0]])])
        tensor([[1., 2.]])
    """

    MASKED = "select"
    _binary_op = staticmethod(torch.minimum)




class Concatenate(Merge):
    """Concatenates a list of inputs along ``axis``.

    Keras's ``keras.layers.Concatenate``; torch: ``torch.cat(inputs, dim=axis)`` (one
    ``Concat`` node in ONNX). The inputs have the same rank and equal sizes except along
    ``axis`` (which may be the batch axis 0). The mask: each input's mask (all ones for an
    input without one) spread over the input's shape, concatenated along ``axis``, then
    reduced with ``any`` over the last axis (Keras's rule).

    Args:
        axis: the axis to concatenate along (negative counts from the end).

    Input shape:
        a list of at least 1 tensor of equal rank.

    Output shape:
        the inputs' shape with the sizes along ``axis`` summed.

    Example:
        >>> Concatenate(axis=1)([torch.ones(2, 3, 4), torch.ones(2, 5, 4)]).shape
        torch.Size([2, 8, 4])
    """

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = integer(axis)
        if self.axis is None:
            raise ArgumentTypeError(f"`axis` must be an integer. Received: axis={axis!r}.")

    def _output_shape(self, shapes: list[Shape]) -> Shape:
        rank = len(shapes[0])
        if any(len(shape) != rank for shape in shapes):
            raise InputShapeError(
                f"expected inputs of one rank, with equal sizes except along axis {self.axis}. Received: input shapes={shapes}."
            )
        if not -rank <= self.axis < rank:
            raise ArgumentError(f"`axis` must be in [-{rank}, {rank}) for inputs of rank {rank}. Received: axis={self.axis}.")
        axis = self.axis % rank
        for index in range(rank):
            sizes = [shape[index] for shape in shapes if shape[index] is not None]
            if index != axis and any(size != sizes[0] for size in sizes[1:]):
                raise InputShapeError(
                    f"expected inputs with equal sizes except along axis {self.axis}. Received: input shapes={shapes}."
                )
        along = [shape[axis] for shape in shapes]
        output = list(shapes[0])
        output[axis] = None if any(size is None for size in along) else sum(along)
        return tuple(output)

    def _merge_function(self, inputs: list[torch.Tensor], masks: list[torch.Tensor | None] | None) -> torch.Tensor:
        return torch.cat(inputs, dim=self.axis)

    def compute_mask(self, inputs: Sequence[torch.Tensor], mask: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor | None:
        """Each input's mask (ones where it has none) over its shape, concatenated along ``axis``,
        then ``any`` over the last axis; ``None`` if no input has a mask."""
        if mask is None:
            return None
        inputs = list(inputs)
        masks = self._mask_list(inputs, mask)
        if masks is None:
            return None
        parts = [
            torch.ones_like(x, dtype=torch.bool) if m is None else m.unsqueeze(-1).expand(x.shape) if m.dim() < x.dim() else m
            for x, m in zip(inputs, masks)
        ]
        return torch.cat(parts, dim=self.axis).any(dim=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


def l2_normalize(x: torch.Tensor, axis: int) -> torch.Tensor:
    """``x * min(1 / sqrt(sum(x**2, axis)), 1 / EPSILON)``: Keras's ``ops.normalize(x, axis)``."""
    return x * torch.rsqrt(x.square().sum(dim=axis, keepdim=True)).clamp(max=1.0 / EPSILON)


class Dot(Merge):
    """The dot product of two inputs along one axis of each, per sample.

    Keras's ``keras.layers.Dot`` (``batch_dot``): with ``axes=(i, j)``, ``inputs[0]``'s axis
    ``i`` and ``inputs[1]``'s axis ``j`` (equal sizes) are summed over; the output has the
    first input's other axes, then the second's other axes except the batch axis, and shape
    ``(batch, 1)`` when that leaves only the batch axis. torch: one ``torch.einsum``.
    ``normalize=True`` first L2-normalizes each input along its axis (``l2_normalize``), so
    the output is the cosine similarity. The output carries no mask.

    Args:
        axes: an axis for both inputs, or a pair ``(axis of inputs[0], axis of inputs[1])``;
            negative counts from the end; never the batch axis 0.
        normalize: L2-normalize both inputs along their axis before the product.

    Input shape:
        a list of 2 tensors of rank >= 2 with equal batch sizes.

    Output shape:
        ``(batch, *other axes of inputs[0], *other axes of inputs[1])``, at least ``(batch, 1)``.

    Example:
        >>> Dot(axes=(1, 2))([torch.ones(2, 3, 5), torch.ones(2, 4, 3)]).shape
        torch.Size([2, 5, 4])
    """

    MIN_INPUTS = 2
    MAX_INPUTS = 2

    def __init__(self, axes: int | Sequence[int], normalize: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        pair = [integer(a) for a in axes] if isinstance(axes, (list, tuple)) else [integer(axes)] * 2
        if len(pair) != 2 or None in pair:
            error = ArgumentError if len(pair) != 2 else ArgumentTypeError
            raise error(f"`axes` must be an integer or a pair of integers (one axis per input). Received: axes={axes!r}.")
        axes = type(axes)(pair) if isinstance(axes, (list, tuple)) else pair[0]
        if 0 in pair:
            raise ArgumentError(f"`axes` cannot include the batch axis 0. Received: axes={axes!r}.")
        if not isinstance(normalize, (bool, np.bool_)):
            raise ArgumentTypeError(f"`normalize` must be a boolean. Received: normalize={normalize!r}.")
        self.axes = axes
        self.normalize = bool(normalize)

    def _resolved_axes(self, shapes: list[Shape]) -> tuple[int, int]:
        """The axes as non-negative indices into each input (Keras's rule for each spelling)."""
        pair = self.axes if isinstance(self.axes, (list, tuple)) else (self.axes, self.axes)
        resolved = []
        for axis, shape in zip(pair, shapes):
            rank = len(shape)
            if not -rank <= axis < rank:
                raise ArgumentError(f"`axes` must name an axis of each input (rank {rank} here). Received: axes={self.axes!r}.")
            resolved.append(axis % rank)
            if resolved[-1] == 0:
                raise ArgumentError(
                    f"`axes` cannot include the batch axis 0. Received: axes={self.axes!r} for input shapes={shapes}."
                )
        return resolved[0], resolved[1]

    def _output_shape(self, shapes: list[Shape]) -> Shape:
        if any(len(shape) < 2 for shape in shapes):
            raise InputShapeError(f"expected 2 inputs of rank >= 2. Received: input shapes={shapes}.")
        first, second = shapes
        if first[0] is not None and second[0] is not None and first[0] != second[0]:
            raise InputShapeError(f"cannot take the dot product of inputs with different batch sizes. Received: input shapes={shapes}.")
        a, b = self._resolved_axes(shapes)
        if first[a] is not None and second[b] is not None and first[a] != second[b]:
            raise InputShapeError(
                f"expected equal sizes along the dot axes: {first[a]} (axis {a} of the first input) != {second[b]} "
                f"(axis {b} of the second). Received: input shapes={shapes}."
            )
        output = [size for index, size in enumerate(first) if index != a]
        output += [size for index, size in enumerate(second) if index not in (0, b)]
        return tuple(output) if len(output) > 1 else (output[0], 1)

    def build(self, input_shape: Any) -> None:
        super().build(input_shape)
        shapes = self._shape_list(input_shape)
        self._axes = self._resolved_axes(shapes)
        letters = iter("bcdefghijklmnopqrstuvwxy")
        first = ["a"] + [next(letters) for _ in shapes[0][1:]]
        second = ["a"] + [next(letters) for _ in shapes[1][1:]]
        first[self._axes[0]] = second[self._axes[1]] = "z"  # the axis summed over
        kept = [c for c in first if c != "z"] + [c for c in second[1:] if c != "z"]
        self._equation = f"{''.join(first)},{''.join(second)}->{''.join(kept)}"

    def _merge_function(self, inputs: list[torch.Tensor], masks: list[torch.Tensor | None] | None) -> torch.Tensor:
        x, y = inputs
        if self.normalize:
            x, y = l2_normalize(x, self._axes[0]), l2_normalize(y, self._axes[1])
        output = torch.einsum(self._equation, x, y)
        return output.unsqueeze(-1) if output.dim() == 1 else output

    def compute_mask(self, inputs: Sequence[torch.Tensor], mask: Sequence[torch.Tensor | None] | None = None) -> None:
        """``None``: the dot product carries no mask (Keras's rule)."""

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


# -- functional forms (keras.layers.add, ...) ---------------------------------------------------


def add(inputs: Sequence[torch.Tensor], **kwargs: Any) -> torch.Tensor:
    """``Add(**kwargs)(inputs)``, as ``keras.layers.add``."""
    return Add(**kwargs)(inputs)


def subtract(inputs: Sequence[torch.Tensor], **kwargs: Any) -> torch.Tensor:
    """``Subtract(**kwargs)(inputs)``, as ``keras.layers.subtract``."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs: Sequence[torch.Tensor], **kwargs: Any) -> torch.Tensor:
    """``Multiply(**kwargs)(inputs)``, as ``keras.layers.multiply``."""
    return Multiply(**kwargs)(inputs)


def average(inputs: Sequence[torch.Tensor], **kwargs: Any) -> torch.Tensor:
    """``Average(**kwargs)(inputs)``, as ``keras.layers.average``."""
    return Average(**kwargs)(inputs)


def maximum(inputs: Sequence[torch.Tensor], **kwargs: Any) -> torch.Tensor:
    """``Maximum(**kwargs)(inputs)``, as ``keras.layers.maximum``."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs: Sequence[torch.Tensor], **kwargs: Any) -> torch.Tensor:
    """``Minimum(**kwargs)(inputs)``, as ``keras.layers.minimum``."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs: Sequence[torch.Tensor], axis: int = -1, **kwargs: Any) -> torch.Tensor:
    """``Concatenate(axis, **kwargs)(inputs)``, as ``keras.layers.concatenate``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs: Sequence[torch.Tensor], axes: int | Sequence[int] = -1, **kwargs: Any) -> torch.Tensor:
    """``Dot(axes, **kwargs)(inputs)`` (``normalize`` among the kwargs), as ``keras.layers.dot``."""
    return Dot(axes=axes, **kwargs)(inputs)

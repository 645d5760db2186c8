"""Pooling layers: MaxPooling/AveragePooling 1D/2D/3D (TF 'same'), global and adaptive pooling.

Three bases, each generic over the rank (the number of spatial axes), as Keras's
``BasePooling``, ``BaseGlobalPooling`` and ``BaseAdaptivePooling``: a member is its ``rank``,
its ``pool_mode`` (``"max"`` or ``"average"``) and its docstring. None has weights. A
channels-last input reaches torch as a ``permute`` view (torch's ``channels_last`` memory
format): no layout copy on the way in or out. The math, with TensorFlow's 'same' padding
done by torch's own implicit padding (no padded copy of the input) and Keras 3's adaptive
bins, is `xlayers.layers.pooling_ops`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch

from ..arguments import data_format as check_data_format
from ..errors import ArgumentTypeError, InputShapeError
from ..layer import InputSpec, Layer, Shape
from ..padding import normalize_padding, normalize_tuple, output_size
from . import pooling_ops
from .pooling_ops import adaptive_pool, pool

__all__ = [
    "AdaptiveAveragePooling1D",
    "AdaptiveAveragePooling2D",
    "AdaptiveAveragePooling3D",
    "AdaptiveMaxPooling1D",
    "AdaptiveMaxPooling2D",
    "AdaptiveMaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "BaseAdaptivePooling",
    "BaseGlobalPooling",
    "BasePooling",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalAvgPool3D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "GlobalMaxPool3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
]

class _SpatialLayer(Layer):
    """What the pooling bases share: the rank, the data format, and the channels-first view."""

    rank: ClassVar[int] = 0
    pool_mode: ClassVar[str] = ""
    _family: ClassVar[str] = ""

    def _check_concrete(self) -> None:
        if not type(self).rank:
            members = ", ".join(f"`{self._family.replace('{}', f'{r}D')}`" for r in (1, 2, 3))
            raise TypeError(f"`{type(self).__name__}` is abstract: use {members}, or set `rank` and `pool_mode`.")

    @property
    def channel_axis(self) -> int:
        """The input's and output's channel axis: ``-1`` (channels_last) or ``1``."""
        return -1 if self.data_format == "channels_last" else 1

    def _spatial_axes(self) -> tuple[int, ...]:
        return tuple(range(1, self.rank + 1)) if self.data_format == "channels_last" else tuple(range(2, self.rank + 2))

    def _spatial(self, shape: Shape) -> Shape:
        shape = tuple(shape)
        return shape[1:-1] if self.data_format == "channels_last" else shape[2:]

    def _with_spatial(self, shape: Shape, sizes: Shape) -> Shape:
        shape = tuple(shape)
        if self.data_format == "channels_last":
            return (shape[0], *sizes, shape[-1])
        return (shape[0], shape[1], *sizes)

    def _channels_first(self, inputs: torch.Tensor) -> torch.Tensor:
        """The input as ``(N, C, *spatial)``: a ``permute`` view of a channels-last input."""
        if self.data_format == "channels_last":
            return inputs.permute(0, self.rank + 1, *range(1, self.rank + 1))
        return inputs

    def _restore(self, outputs: torch.Tensor) -> torch.Tensor:
        if self.data_format == "channels_last":
            return outputs.permute(0, *range(2, self.rank + 2), 1)
        return outputs


# -- windowed pooling ---------------------------------------------------------------------------------


class BasePooling(_SpatialLayer):
    """N-D max or average pooling over windows of ``pool_size`` moved by ``strides``, as Keras's
    ``BasePooling``.

    A member sets ``rank`` and ``pool_mode``. TensorFlow's padding: ``"valid"`` is none;
    ``"same"`` keeps ``ceil(size / strides)`` outputs, pads ``total // 2`` cells before and
    the rest after (the odd cell at the END), and the padded cells take no part: a max
    ignores them (never a zero), an average divides by the real cells of its window only.
    torch's pooling ops do that with their own implicit padding, so the input is never
    copied (`xlayers.layers.pooling_ops`).

    Args:
        pool_size: int or tuple of ``rank`` ints, the size of the pooling window.
        strides: int, tuple of ``rank`` ints, or ``None`` (default: ``pool_size``).
        padding: ``"valid"`` or ``"same"`` (case-insensitive).
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, *spatial, channels)``, or ``(batch, channels, *spatial)`` with
        ``channels_first``; ``rank`` spatial axes.

    Output shape:
        ``(batch, *pooled_spatial, channels)`` (or channels first).
    """

    _family = "MaxPooling{}"

    def __init__(
        self,
        pool_size: int | tuple[int, ...] = 2,
        strides: int | tuple[int, ...] | None = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._check_concrete()
        super().__init__(**kwargs)
        self.pool_size = normalize_tuple(pool_size, self.rank, "pool_size")
        self.strides = self.pool_size if strides is None else normalize_tuple(strides, self.rank, "strides")
        self.padding = normalize_padding(padding)
        self.data_format = check_data_format(data_format)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def build(self, input_shape: Shape) -> None:
        self.compute_output_shape(input_shape)  # refuses inputs smaller than the pool, as Keras does

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        self.compute_output_shape(tuple(inputs.shape))  # the layer's own message for too small inputs
        outputs = pool(self._channels_first(inputs), self.pool_mode, self.pool_size, self.strides, self.padding)
        return self._restore(outputs)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        try:
            sizes = output_size(self._spatial(input_shape), self.pool_size, self.strides, 1, self.padding)
        except InputShapeError:
            raise InputShapeError(
                f"the input's spatial size is smaller than the pool {self.pool_size} with padding={self.padding!r}. "
                f"Received: input shape={tuple(input_shape)}."
            ) from None
        return self._with_spatial(input_shape, sizes)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "padding": self.padding,
            "strides": self.strides,
            "data_format": self.data_format,
        }

    @classmethod
    def onnx_translations(cls) -> dict[Any, Callable[..., Any]]:
        return pooling_ops.onnx_translations()  # one MaxPool / AveragePool with TF's asymmetric pads


class MaxPooling1D(BasePooling):
    """Max pooling over steps: ``outputs[t] = max(inputs[t*s - before : t*s - before + pool])``.

    ``"same"`` pads as TensorFlow (the odd cell at the end) and the padded cells never win
    the max (they are not zeros).

    Args:
        pool_size: int, the size of the pooling window (default 2).
        strides: int or ``None`` (default: ``pool_size``).
        padding: ``"valid"`` or ``"same"`` (case-insensitive).
        data_format: ``"channels_last"`` (NLC, default) or ``"channels_first"`` (NCL).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, steps, features)``, or ``(batch, features, steps)`` with ``channels_first``.

    Output shape:
        ``(batch, pooled_steps, features)`` (or channels first).

    Example:
        >>> layer = MaxPooling1D(3, strides=2, padding="same")
        >>> layer(torch.randn(4, 10, 8)).shape
        torch.Size([4, 5, 8])
    """

    rank = 1
    pool_mode = "max"


class MaxPooling2D(BasePooling):
    """Max pooling over rows and columns: each output is the max of its ``pool_size`` window.

    ``"same"`` pads as TensorFlow (the odd row/column at the bottom/right) and the padded
    cells never win the max (they are not zeros).

    Args:
        pool_size: int or (rows, cols) of the pooling window (default 2).
        strides: int, (rows, cols) or ``None`` (default: ``pool_size``).
        padding: ``"valid"`` or ``"same"`` (case-insensitive).
        data_format: ``"channels_last"`` (NHWC, default) or ``"channels_first"`` (NCHW).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, rows, cols, channels)``, or ``(batch, channels, rows, cols)`` with ``channels_first``.

    Output shape:
        ``(batch, pooled_rows, pooled_cols, channels)`` (or channels first).

    Example:
        >>> layer = MaxPooling2D(3, strides=2, padding="same")
        >>> layer(torch.randn(2, 56, 56, 64)).shape
        torch.Size([2, 28, 28, 64])
    """

    rank = 2
    pool_mode = "max"


class MaxPooling3D(BasePooling):
    """Max pooling over depth, rows and columns: each output is the max of its ``pool_size`` window.

    ``"same"`` pads as TensorFlow (the odd cell at the end of each axis); padded cells never
    win the max.

    Args:
        pool_size: int or (depth, rows, cols) of the pooling window (default 2).
        strides: int, (depth, rows, cols) or ``None`` (default: ``pool_size``).
        padding: ``"valid"`` or ``"same"`` (case-insensitive).
        data_format: ``"channels_last"`` (NDHWC, default) or ``"channels_first"`` (NCDHW).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, depth, rows, cols, channels)``, or ``(batch, channels, depth, rows, cols)``
        with ``channels_first``.

    Output shape:
        ``(batch, pooled_depth, pooled_rows, pooled_cols, channels)`` (or channels first).

    Example:
        >>> MaxPooling3D((3, 2, 2), strides=(2, 1, 2), padding="same")(torch.randn(2, 6, 7, 5, 3)).shape
        torch.Size([2, 3, 7, 3, 3])
    """

    rank = 3
    pool_mode = "max"


class AveragePooling1D(BasePooling):
    """Average pooling over steps: ``outputs[t] = mean(inputs[window t])``.

    ``"same"`` pads as TensorFlow (the odd cell at the end) and a window's mean is over its
    real steps only: the padded cells are not counted.

    Args:
        pool_size: int, the size of the pooling window (default 2).
        strides: int or ``None`` (default: ``pool_size``).
        padding: ``"valid"`` or ``"same"`` (case-insensitive).
        data_format: ``"channels_last"`` (NLC, default) or ``"channels_first"`` (NCL).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, steps, features)``, or ``(batch, features, steps)`` with ``channels_first``.

    Output shape:
        ``(batch, pooled_steps, features)`` (or channels first).

    Example:
        >>> AveragePooling1D(2, padding="same")(torch.tensor([[[1.0], [2.0], [4.0]]])).flatten()
        tensor([1.5000, 4.0000])
    """

    rank = 1
    pool_mode = "average"


class AveragePooling2D(BasePooling):
    """Average pooling over rows and columns: each output is the mean of its window.

    ``"same"`` pads as TensorFlow (the odd row/column at the bottom/right) and a window's
    mean is over its real cells only: the padded cells are not counted.

    Args:
        pool_size: int or (rows, cols) of the pooling window (default 2).
        strides: int, (rows, cols) or ``None`` (default: ``pool_size``).
        padding: ``"valid"`` or ``"same"`` (case-insensitive).
        data_format: ``"channels_last"`` (NHWC, default) or ``"channels_first"`` (NCHW).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, rows, cols, channels)``, or ``(batch, channels, rows, cols)`` with ``channels_first``.

    Output shape:
        ``(batch, pooled_rows, pooled_cols, channels)`` (or channels first).

    Example:
        >>> AveragePooling2D((2, 3), strides=(2, 1), padding="same")(torch.randn(2, 9, 8, 5)).shape
        torch.Size([2, 5, 8, 5])
    """

    rank = 2
    pool_mode = "average"


class AveragePooling3D(BasePooling):
    """Average pooling over depth, rows and columns: each output is the mean of its window.

    ``"same"`` pads as TensorFlow (the odd cell at the end of each axis) and a window's mean
    is over its real cells only.

    Args:
        pool_size: int or (depth, rows, cols) of the pooling window (default 2).
        strides: int, (depth, rows, cols) or ``None`` (default: ``pool_size``).
        padding: ``"valid"`` or ``"same"`` (case-insensitive).
        data_format: ``"channels_last"`` (NDHWC, default) or ``"channels_first"`` (NCDHW).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, depth, rows, cols, channels)``, or ``(batch, channels, depth, rows, cols)``
        with ``channels_first``.

    Output shape:
        ``(batch, pooled_depth, pooled_rows, pooled_cols, channels)`` (or channels first).

    Example:
        >>> AveragePooling3D(2, padding="same")(torch.randn(2, 5, 6, 7, 3)).shape
        torch.Size([2, 3, 3, 4, 3])
    """

    rank = 3
    pool_mode = "average"


# -- global pooling -----------------------------------------------------------------------------------


class BaseGlobalPooling(_SpatialLayer):
    """The max or the mean over every spatial axis, as Keras's ``BaseGlobalPooling``.

    A member sets ``rank`` and ``pool_mode``. ``keepdims=True`` keeps the spatial axes with
    size 1.

    Args:
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        keepdims: whether to keep the spatial axes (with size 1), as ``torch.mean(keepdim=True)``.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, *spatial, channels)``, or ``(batch, channels, *spatial)`` with ``channels_first``.

    Output shape:
        ``(batch, channels)``; with ``keepdims``, ``(batch, 1, ..., 1, channels)`` (or channels first).
    """

    _family = "GlobalMaxPooling{}"

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any) -> None:
        self._check_concrete()
        super().__init__(**kwargs)
        self.data_format = check_data_format(data_format)
        if not isinstance(keepdims, bool):
            raise ArgumentTypeError(f"`keepdims` must be a bool. Received: keepdims={keepdims!r}.")
        self.keepdims = keepdims
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        axes = self._spatial_axes()
        if self.pool_mode == "max":
            return inputs.amax(dim=axes, keepdim=self.keepdims)
        return inputs.mean(dim=axes, keepdim=self.keepdims)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        input_shape = tuple(input_shape)
        if self.keepdims:
            return self._with_spatial(input_shape, (1,) * self.rank)
        return (input_shape[0], input_shape[self.channel_axis])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalAveragePooling1D(BaseGlobalPooling):
    """The mean over steps; with a mask, the mean over the unmasked steps only.

    ``outputs = sum(where(mask, inputs, 0), steps) / sum(mask, steps)`` with a mask (Keras:
    a row with no unmasked step divides 0 by 0 and gives NaN), ``mean(inputs, steps)``
    without. It consumes the mask: none goes to the next layer.

    Args:
        data_format: ``"channels_last"`` (NLC, default) or ``"channels_first"`` (NCL).
        keepdims: whether to keep the steps axis (with size 1).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Call arguments:
        inputs: a 3-D tensor.
        mask: ``(batch, steps)``, true (non-zero) for the steps to average; optional.

    Input shape:
        ``(batch, steps, features)``, or ``(batch, features, steps)`` with ``channels_first``.

    Output shape:
        ``(batch, features)``; with ``keepdims``, ``(batch, 1, features)`` (or ``(batch, features, 1)``).

    Example:
        >>> x = torch.tensor([[[1.0], [3.0], [100.0]]])
        >>> GlobalAveragePooling1D()(x, mask=torch.tensor([[True, True, False]]))
        tensor([[2.]])
    """

    rank = 1
    pool_mode = "average"

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any) -> None:
        super().__init__(data_format=data_format, keepdims=keepdims, **kwargs)
        self.supports_masking = True

    def call(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            return super().call(inputs)
        steps_axis = 1 if self.data_format == "channels_last" else 2
        mask = torch.as_tensor(mask, device=inputs.device)
        batch, steps = inputs.shape[0], inputs.shape[steps_axis]
        if tuple(mask.shape) != (batch, steps):
            raise InputShapeError(
                f"`mask` must have shape (batch, steps) = {(batch, steps)}. "
                f"Received: mask.shape={tuple(mask.shape)}, input shape={tuple(inputs.shape)}."
            )
        keep = mask.to(torch.bool).unsqueeze(2 if self.data_format == "channels_last" else 1)
        total = torch.where(keep, inputs, torch.zeros((), dtype=inputs.dtype, device=inputs.device))
        total = total.sum(dim=steps_axis, keepdim=self.keepdims)
        return total / keep.to(inputs.dtype).sum(dim=steps_axis, keepdim=self.keepdims)

    def compute_mask(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        return None


class GlobalAveragePooling2D(BaseGlobalPooling):
    """The mean over rows and columns, per channel.

    Args:
        data_format: ``"channels_last"`` (NHWC, default) or ``"channels_first"`` (NCHW).
        keepdims: whether to keep the spatial axes (with size 1).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, rows, cols, channels)``, or ``(batch, channels, rows, cols)`` with ``channels_first``.

    Output shape:
        ``(batch, channels)``; with ``keepdims``, ``(batch, 1, 1, channels)`` (or ``(batch, channels, 1, 1)``).

    Example:
        >>> GlobalAveragePooling2D(keepdims=True)(torch.randn(2, 7, 8, 5)).shape
        torch.Size([2, 1, 1, 5])
    """

    rank = 2
    pool_mode = "average"


class GlobalAveragePooling3D(BaseGlobalPooling):
    """The mean over depth, rows and columns, per channel.

    Args:
        data_format: ``"channels_last"`` (NDHWC, default) or ``"channels_first"`` (NCDHW).
        keepdims: whether to keep the spatial axes (with size 1).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, depth, rows, cols, channels)``, or ``(batch, channels, depth, rows, cols)``
        with ``channels_first``.

    Output shape:
        ``(batch, channels)``; with ``keepdims``, ``(batch, 1, 1, 1, channels)`` (or channels first).

    Example:
        >>> GlobalAveragePooling3D()(torch.randn(2, 3, 4, 5, 6)).shape
        torch.Size([2, 6])
    """

    rank = 3
    pool_mode = "average"


class GlobalMaxPooling1D(BaseGlobalPooling):
    """The max over steps, per feature. It takes no mask (as Keras's: a mask stops here).

    Args:
        data_format: ``"channels_last"`` (NLC, default) or ``"channels_first"`` (NCL).
        keepdims: whether to keep the steps axis (with size 1).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, steps, features)``, or ``(batch, features, steps)`` with ``channels_first``.

    Output shape:
        ``(batch, features)``; with ``keepdims``, ``(batch, 1, features)`` (or ``(batch, features, 1)``).

    Example:
        >>> GlobalMaxPooling1D()(torch.tensor([[[1.0, -2.0], [3.0, -4.0]]]))
        tensor([[ 3., -2.]])
    """

    rank = 1
    pool_mode = "max"


class GlobalMaxPooling2D(BaseGlobalPooling):
    """The max over rows and columns, per channel.

    Args:
        data_format: ``"channels_last"`` (NHWC, default) or ``"channels_first"`` (NCHW).
        keepdims: whether to keep the spatial axes (with size 1).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, rows, cols, channels)``, or ``(batch, channels, rows, cols)`` with ``channels_first``.

    Output shape:
        ``(batch, channels)``; with ``keepdims``, ``(batch, 1, 1, channels)`` (or ``(batch, channels, 1, 1)``).

    Example:
        >>> GlobalMaxPooling2D(data_format="channels_first")(torch.randn(2, 5, 7, 8)).shape
        torch.Size([2, 5])
    """

    rank = 2
    pool_mode = "max"


class GlobalMaxPooling3D(BaseGlobalPooling):
    """The max over depth, rows and columns, per channel.

    Args:
        data_format: ``"channels_last"`` (NDHWC, default) or ``"channels_first"`` (NCDHW).
        keepdims: whether to keep the spatial axes (with size 1).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, depth, rows, cols, channels)``, or ``(batch, channels, depth, rows, cols)``
        with ``channels_first``.

    Output shape:
        ``(batch, channels)``; with ``keepdims``, ``(batch, 1, 1, 1, channels)`` (or channels first).

    Example:
        >>> GlobalMaxPooling3D()(torch.randn(2, 3, 4, 5, 6)).shape
        torch.Size([2, 6])
    """

    rank = 3
    pool_mode = "max"


# -- adaptive pooling ---------------------------------------------------------------------------------


class BaseAdaptivePooling(_SpatialLayer):
    """Max or average pooling to a fixed ``output_size``, whatever the input's size, as Keras 3's
    ``BaseAdaptivePooling``.

    A member sets ``rank`` and ``pool_mode``. Keras's bins (TF backend): bin ``i`` of ``out``
    covers ``[floor(i * size / out), ceil((i + 1) * size / out))``, so neighbouring bins
    overlap by a cell where ``size / out`` is not an integer. These are torch's adaptive bins,
    provably for every size whose Keras float32 edges are exact; `xlayers.layers.pooling_ops`
    runs torch's op there and Keras's own formulation elsewhere.

    Args:
        output_size: int or tuple of ``rank`` ints, the spatial size of the output.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, *spatial, channels)``, or ``(batch, channels, *spatial)`` with ``channels_first``.

    Output shape:
        ``(batch, *output_size, channels)`` (or channels first).
    """

    _family = "AdaptiveMaxPooling{}"

    def __init__(self, output_size: int | tuple[int, ...], data_format: str | None = None, **kwargs: Any) -> None:
        self._check_concrete()
        super().__init__(**kwargs)
        self.output_size = normalize_tuple(output_size, self.rank, "output_size")
        self.data_format = check_data_format(data_format)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return self._restore(adaptive_pool(self._channels_first(inputs), self.pool_mode, self.output_size))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return self._with_spatial(input_shape, self.output_size)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "output_size": self.output_size, "data_format": self.data_format}


class AdaptiveAveragePooling1D(BaseAdaptivePooling):
    """Average pooling of the steps into ``output_size`` bins (Keras 3's bins, which may overlap).

    Args:
        output_size: int (or a 1-tuple), the number of output steps.
        data_format: ``"channels_last"`` (NLC, default) or ``"channels_first"`` (NCL).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, steps, features)``, or ``(batch, features, steps)`` with ``channels_first``.

    Output shape:
        ``(batch, output_size, features)`` (or channels first).

    Example:
        >>> AdaptiveAveragePooling1D(2)(torch.tensor([[[1.0], [2.0], [3.0]]])).flatten()
        tensor([1.5000, 2.5000])
    """

    rank = 1
    pool_mode = "average"


class AdaptiveAveragePooling2D(BaseAdaptivePooling):
    """Average pooling of rows and columns into ``output_size`` bins (Keras 3's bins).

    Args:
        output_size: int or (rows, cols) of the output.
        data_format: ``"channels_last"`` (NHWC, default) or ``"channels_first"`` (NCHW).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, rows, cols, channels)``, or ``(batch, channels, rows, cols)`` with ``channels_first``.

    Output shape:
        ``(batch, *output_size, channels)`` (or channels first).

    Example:
        >>> AdaptiveAveragePooling2D((4, 3))(torch.randn(2, 10, 7, 5)).shape
        torch.Size([2, 4, 3, 5])
    """

    rank = 2
    pool_mode = "average"


class AdaptiveAveragePooling3D(BaseAdaptivePooling):
    """Average pooling of depth, rows and columns into ``output_size`` bins (Keras 3's bins).

    Args:
        output_size: int or (depth, rows, cols) of the output.
        data_format: ``"channels_last"`` (NDHWC, default) or ``"channels_first"`` (NCDHW).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, depth, rows, cols, channels)``, or ``(batch, channels, depth, rows, cols)``
        with ``channels_first``.

    Output shape:
        ``(batch, *output_size, channels)`` (or channels first).

    Example:
        >>> AdaptiveAveragePooling3D((2, 3, 2))(torch.randn(2, 5, 7, 4, 3)).shape
        torch.Size([2, 2, 3, 2, 3])
    """

    rank = 3
    pool_mode = "average"


class AdaptiveMaxPooling1D(BaseAdaptivePooling):
    """Max pooling of the steps into ``output_size`` bins (Keras 3's bins, which may overlap).

    Args:
        output_size: int (or a 1-tuple), the number of output steps.
        data_format: ``"channels_last"`` (NLC, default) or ``"channels_first"`` (NCL).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, steps, features)``, or ``(batch, features, steps)`` with ``channels_first``.

    Output shape:
        ``(batch, output_size, features)`` (or channels first).

    Example:
        >>> AdaptiveMaxPooling1D(2)(torch.tensor([[[1.0], [3.0], [2.0]]])).flatten()
        tensor([3., 3.])
    """

    rank = 1
    pool_mode = "max"


class AdaptiveMaxPooling2D(BaseAdaptivePooling):
    """Max pooling of rows and columns into ``output_size`` bins (Keras 3's bins).

    Args:
        output_size: int or (rows, cols) of the output.
        data_format: ``"channels_last"`` (NHWC, default) or ``"channels_first"`` (NCHW).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, rows, cols, channels)``, or ``(batch, channels, rows, cols)`` with ``channels_first``.

    Output shape:
        ``(batch, *output_size, channels)`` (or channels first).

    Example:
        >>> AdaptiveMaxPooling2D(3, data_format="channels_first")(torch.randn(2, 5, 10, 7)).shape
        torch.Size([2, 5, 3, 3])
    """

    rank = 2
    pool_mode = "max"


class AdaptiveMaxPooling3D(BaseAdaptivePooling):
    """Max pooling of depth, rows and columns into ``output_size`` bins (Keras 3's bins).

    Args:
        output_size: int or (depth, rows, cols) of the output.
        data_format: ``"channels_last"`` (NDHWC, default) or ``"channels_first"`` (NCDHW).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, depth, rows, cols, channels)``, or ``(batch, channels, depth, rows, cols)``
        with ``channels_first``.

    Output shape:
        ``(batch, *output_size, channels)`` (or channels first).

    Example:
        >>> AdaptiveMaxPooling3D(2)(torch.randn(2, 5, 6, 3, 4)).shape
        torch.Size([2, 2, 2, 2, 4])
    """

    rank = 3
    pool_mode = "max"


# Keras's aliases (the same classes).
MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D
GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D

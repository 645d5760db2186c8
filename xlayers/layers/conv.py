"""Convolution layers: `BaseConv`, generic over the rank, and its members `Conv1D`, `Conv2D`, `Conv3D`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch

from .. import activations
from ..errors import ArgumentError, InputShapeError
from ..layer import InputSpec, Layer, Shape
from ..layout import Weight
from ..padding import normalize_padding, normalize_tuple, output_size
from .conv_ops import conv
from .core import LoraMixin, check_positive_int

__all__ = ["BaseConv", "Conv1D", "Conv2D", "Conv3D", "conv_layout", "kernel_axes"]

_DATA_FORMATS = ("channels_last", "channels_first")


def kernel_axes(rank: int) -> tuple[str, ...]:
    """Names of a ``rank``-D kernel's spatial axes: ``("kw",)``, ``("kh", "kw")`` or ``("kd", "kh", "kw")``."""
    if rank not in (1, 2, 3):
        raise ValueError(f"`rank` must be 1, 2 or 3. Received: rank={rank!r}.")
    return ("kd", "kh", "kw")[3 - rank :]


def conv_layout(rank: int) -> tuple[Weight, ...]:
    """The ``LAYOUT`` of a ``rank``-D convolution: Keras's kernel ``(*spatial, in, out)``,
    torch's ``(out, in, *spatial)``, the bias, and Keras's LoRA factors."""
    spatial = kernel_axes(rank)
    return (
        Weight("kernel", (*spatial, "in", "out"), torch=("out", "in", *spatial)),
        Weight("bias", ("out",), enabled_by="use_bias"),
        Weight("lora_kernel_a", (*spatial, "in", "rank"), torch=("rank", "in", *spatial),
               role="kernel", enabled_by="lora_rank"),
        Weight("lora_kernel_b", ("rank", "out"), torch=("out", "rank"), role="kernel", enabled_by="lora_rank"),
    )


class BaseConv(LoraMixin, Layer):
    """N-D convolution: ``outputs = activation(conv(inputs, kernel) + bias)``, as Keras's ``BaseConv``.

    A member of the family sets ``rank`` (the number of spatial axes) and ``LAYOUT``
    (``conv_layout(rank)``); everything else is shared. TensorFlow's padding: ``"valid"``
    is none; ``"same"`` keeps ``ceil(size / stride)`` outputs and, when the total padding of
    an axis is odd, puts the extra zero at the end, which torch's symmetric ``padding=``
    cannot say; `xlayers.layers.conv_ops` computes that case exactly without copying the
    input. Rank 1 also takes Keras's ``"causal"``. A channels-last input is handed to torch
    as a ``permute`` view, which is torch's ``channels_last`` (``channels_last_3d``) memory
    format: no layout copy on the way in or out.

    Args:
        filters: number of output channels.
        kernel_size: int or tuple of ``rank`` ints, the size of the convolution window.
        strides: int or tuple of ``rank`` ints; strides > 1 exclude dilation > 1.
        padding: ``"valid"`` or ``"same"`` (case-insensitive); rank 1 also ``"causal"``.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        dilation_rate: int or tuple of ``rank`` ints.
        groups: number of groups the input channels are split into; both the input
            channels and ``filters`` must be divisible by it.
        activation: activation function or its Keras name; ``None`` is linear.
        use_bias: whether the layer uses a bias vector.
        kernel_initializer, bias_initializer: initializers.
        kernel_regularizer, bias_regularizer, activity_regularizer: regularizers.
        kernel_constraint, bias_constraint: constraints.
        lora_rank, lora_alpha: Keras's LoRA: frozen ``kernel`` plus
            ``(lora_alpha / lora_rank) * lora_kernel_a @ lora_kernel_b``.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, *spatial, channels)``, or ``(batch, channels, *spatial)`` with
        ``channels_first``; ``rank`` spatial axes.

    Output shape:
        ``(batch, *new_spatial, filters)`` (or channels first).
    """

    rank: ClassVar[int]

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, ...],
        strides: int | tuple[int, ...] = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: int | tuple[int, ...] = 1,
        groups: int = 1,
        activation: str | Callable[[torch.Tensor], torch.Tensor] | None = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        lora_rank: int | None = None,
        lora_alpha: float | None = None,
        **kwargs: Any,
    ) -> None:
        if not type(self).LAYOUT:
            raise TypeError(
                f"`{type(self).__name__}` is abstract: use `Conv1D`, `Conv2D`, `Conv3D`, or set `rank` and `LAYOUT`."
            )
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.filters = check_positive_int("filters", filters)
        self.groups = check_positive_int("groups", groups)
        if filters % groups:
            raise ArgumentError(
                f"`filters` must be divisible by `groups`. Received: filters={filters}, groups={groups}."
            )
        self.kernel_size = normalize_tuple(kernel_size, self.rank, "kernel_size")
        self.strides = normalize_tuple(strides, self.rank, "strides")
        self.dilation_rate = normalize_tuple(dilation_rate, self.rank, "dilation_rate")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ArgumentError(
                "`strides` > 1 cannot be combined with `dilation_rate` > 1. "
                f"Received: strides={self.strides}, dilation_rate={self.dilation_rate}."
            )
        self.padding = normalize_padding(padding, allow_causal=self.rank == 1)
        data_format = "channels_last" if data_format is None else str(data_format).lower()
        if data_format not in _DATA_FORMATS:
            raise ArgumentError(
                f"`data_format` must be one of {list(_DATA_FORMATS)}. Received: data_format={data_format!r}."
            )
        self.data_format = data_format
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self._set_weight_arguments(locals())
        self._init_lora(lora_rank, lora_alpha)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    @property
    def channel_axis(self) -> int:
        """The input's and output's channel axis: ``-1`` (channels_last) or ``1``."""
        return -1 if self.data_format == "channels_last" else 1

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        channels = input_shape[self.channel_axis]
        if channels is None or channels % self.groups:
            raise ArgumentError(
                "the input channels must be known and divisible by `groups`. "
                f"Received: groups={self.groups}, input_shape={tuple(input_shape)}."
            )
        self.compute_output_shape(input_shape)  # refuses inputs smaller than the kernel, as Keras's build
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={self.channel_axis: channels})
        return {
            **dict(zip(kernel_axes(self.rank), self.kernel_size)),
            "in": channels // self.groups,
            "out": self.filters,
            "rank": self.lora_rank or 0,
        }

    def conv_padding(self) -> str | tuple[tuple[int, int], ...]:
        """The padding as `conv_ops.conv` takes it: ``"valid"``/``"same"``, or for ``"causal"``
        the pairs ``((dilation_rate * (kernel_size - 1), 0),)``: all zeros before the steps."""
        if self.padding != "causal":
            return self.padding
        return tuple((d * (k - 1), 0) for k, d in zip(self.kernel_size, self.dilation_rate))

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        self.compute_output_shape(tuple(inputs.shape))  # the layer's own message for too small inputs
        rank = self.rank
        channels_last = self.data_format == "channels_last"
        x = inputs.permute(0, rank + 1, *range(1, rank + 1)) if channels_last else inputs  # a channels-first view
        outputs = conv(
            x,
            self.weight_view("kernel", "torch", value=self.merged_kernel()),
            self.bias if self.use_bias else None,
            strides=self.strides,
            padding=self.conv_padding(),
            dilation_rate=self.dilation_rate,
            groups=self.groups,
        )
        if channels_last:
            outputs = outputs.permute(0, *range(2, rank + 2), 1)
        return self.activation(outputs)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        input_shape = tuple(input_shape)
        channels_last = self.data_format == "channels_last"
        spatial = input_shape[1:-1] if channels_last else input_shape[2:]
        try:
            sizes = output_size(spatial, self.kernel_size, self.strides, self.dilation_rate, self.padding)
        except InputShapeError:
            raise InputShapeError(
                f"the input's spatial size is smaller than the dilated kernel {self.kernel_size} "
                f"(dilation {self.dilation_rate}) with padding={self.padding!r}. Received: input shape={input_shape}."
            ) from None
        if channels_last:
            return (input_shape[0], *sizes, self.filters)
        return (input_shape[0], self.filters, *sizes)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "groups": self.groups,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            **self._weight_argument_config(),
            **self.lora_config(),
        }


class Conv1D(BaseConv):
    """1-D convolution over steps: ``outputs = activation(conv1d(inputs, kernel) + bias)``.

    ``"same"`` pads as TensorFlow (an odd total puts the extra zero at the end);
    ``"causal"`` pads ``dilation_rate * (kernel_size - 1)`` zeros before the first step
    and none after, so output ``t`` sees inputs ``<= t`` only (Keras's ``Conv1D``; with
    either data format the padded axis is the steps axis). The pads go to
    `xlayers.layers.conv_ops` as explicit pairs: no padded copy of the input. A
    channels-last input reaches torch as a ``channels_last`` view: no layout copy.

    Args:
        filters: number of output channels.
        kernel_size: int or (steps,) length of the convolution window.
        strides: int or (steps,) stride; strides > 1 exclude dilation > 1.
        padding: ``"valid"``, ``"same"`` or ``"causal"`` (case-insensitive).
        data_format: ``"channels_last"`` (NLC, default) or ``"channels_first"`` (NCL).
        dilation_rate: int or (steps,) dilation.
        groups: number of groups the input channels are split into; both the input
            channels and ``filters`` must be divisible by it.
        activation: activation function or its Keras name; ``None`` is linear.
        use_bias: whether the layer uses a bias vector.
        kernel_initializer, bias_initializer: initializers.
        kernel_regularizer, bias_regularizer, activity_regularizer: regularizers.
        kernel_constraint, bias_constraint: constraints.
        lora_rank, lora_alpha: Keras's LoRA: frozen ``kernel`` plus
            ``(lora_alpha / lora_rank) * lora_kernel_a @ lora_kernel_b``.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, steps, channels)``, or ``(batch, channels, steps)`` with ``channels_first``.

    Output shape:
        ``(batch, new_steps, filters)`` (or channels first).

    Weights:
        kernel: ``(kw, in, out)``; torch view ``(out, in, kw)``; ``in`` is the input
            channels // ``groups``, ``out`` is ``filters``.
        bias: ``(out,)``, if ``use_bias``.
        lora_kernel_a: ``(kw, in, rank)``; torch view ``(rank, in, kw)``, if ``lora_rank``.
        lora_kernel_b: ``(rank, out)``; torch view ``(out, rank)``, if ``lora_rank``.

    Example:
        >>> layer = Conv1D(32, 3, padding="causal", dilation_rate=2, input_shape=(100, 8))
        >>> layer(torch.randn(4, 100, 8)).shape
        torch.Size([4, 100, 32])
        >>> tuple(layer.kernel.shape)
        (3, 8, 32)
    """

    rank = 1
    LAYOUT = conv_layout(1)


class Conv2D(BaseConv):
    """2-D convolution: ``outputs = activation(conv2d(inputs, kernel) + bias)``.

    TensorFlow's padding: ``"valid"`` is none; ``"same"`` keeps ``ceil(size / stride)``
    outputs and, when the total padding is odd, puts the extra zero at the end (bottom and
    right), which torch's symmetric ``padding=`` cannot say; `xlayers.layers.conv_ops`
    computes that case exactly without copying the input. A channels-last input is handed
    to torch as a ``permute`` view, which is torch's ``channels_last`` memory format: no
    layout copy on the way in or out.

    Args:
        filters: number of output channels.
        kernel_size: int or (height, width) of the convolution window.
        strides: int or (height, width) stride; strides > 1 exclude dilation > 1.
        padding: ``"valid"`` or ``"same"`` (case-insensitive).
        data_format: ``"channels_last"`` (NHWC, default) or ``"channels_first"`` (NCHW).
        dilation_rate: int or (height, width) dilation.
        groups: number of groups the input channels are split into; both the input
            channels and ``filters`` must be divisible by it.
        activation: activation function or its Keras name; ``None`` is linear.
        use_bias: whether the layer uses a bias vector.
        kernel_initializer, bias_initializer: initializers.
        kernel_regularizer, bias_regularizer, activity_regularizer: regularizers.
        kernel_constraint, bias_constraint: constraints.
        lora_rank, lora_alpha: Keras's LoRA: frozen ``kernel`` plus
            ``(lora_alpha / lora_rank) * lora_kernel_a @ lora_kernel_b``.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, rows, cols, channels)``, or ``(batch, channels, rows, cols)`` with
        ``channels_first``.

    Output shape:
        ``(batch, new_rows, new_cols, filters)`` (or channels first).

    Weights:
        kernel: ``(kh, kw, in, out)``; torch view ``(out, in, kh, kw)``; ``in`` is the input
            channels // ``groups``, ``out`` is ``filters``.
        bias: ``(out,)``, if ``use_bias``.
        lora_kernel_a: ``(kh, kw, in, rank)``; torch view ``(rank, in, kh, kw)``, if ``lora_rank``.
        lora_kernel_b: ``(rank, out)``; torch view ``(out, rank)``, if ``lora_rank``.

    Example:
        >>> layer = Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 3))
        >>> layer(torch.randn(16, 28, 28, 3)).shape
        torch.Size([16, 26, 26, 32])
        >>> tuple(layer.kernel.shape)
        (3, 3, 3, 32)
    """

    rank = 2
    LAYOUT = conv_layout(2)


class Conv3D(BaseConv):
    """3-D convolution: ``outputs = activation(conv3d(inputs, kernel) + bias)``.

    Padding as `Conv2D` (``"same"`` puts an odd total's extra zero at the end of each
    axis, computed exactly without copying the input). A channels-last input is handed to
    torch as a ``permute`` view, which is torch's ``channels_last_3d`` memory format: no
    layout copy on the way in or out.

    Args:
        filters: number of output channels.
        kernel_size: int or (depth, height, width) of the convolution window.
        strides: int or (depth, height, width) stride; strides > 1 exclude dilation > 1.
        padding: ``"valid"`` or ``"same"`` (case-insensitive).
        data_format: ``"channels_last"`` (NDHWC, default) or ``"channels_first"`` (NCDHW).
        dilation_rate: int or (depth, height, width) dilation.
        groups: number of groups the input channels are split into; both the input
            channels and ``filters`` must be divisible by it.
        activation: activation function or its Keras name; ``None`` is linear.
        use_bias: whether the layer uses a bias vector.
        kernel_initializer, bias_initializer: initializers.
        kernel_regularizer, bias_regularizer, activity_regularizer: regularizers.
        kernel_constraint, bias_constraint: constraints.
        lora_rank, lora_alpha: Keras's LoRA: frozen ``kernel`` plus
            ``(lora_alpha / lora_rank) * lora_kernel_a @ lora_kernel_b``.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, depth, rows, cols, channels)``, or ``(batch, channels, depth, rows, cols)``
        with ``channels_first``.

    Output shape:
        ``(batch, new_depth, new_rows, new_cols, filters)`` (or channels first).

    Weights:
        kernel: ``(kd, kh, kw, in, out)``; torch view ``(out, in, kd, kh, kw)``; ``in`` is the
            input channels // ``groups``, ``out`` is ``filters``.
        bias: ``(out,)``, if ``use_bias``.
        lora_kernel_a: ``(kd, kh, kw, in, rank)``; torch view ``(rank, in, kd, kh, kw)``, if ``lora_rank``.
        lora_kernel_b: ``(rank, out)``; torch view ``(out, rank)``, if ``lora_rank``.

    Example:
        >>> layer = Conv3D(16, 3, strides=2, padding="same", input_shape=(9, 10, 11, 4))
        >>> layer(torch.randn(2, 9, 10, 11, 4)).shape
        torch.Size([2, 5, 5, 6, 16])
        >>> tuple(layer.kernel.shape)
        (3, 3, 3, 4, 16)
    """

    rank = 3
    LAYOUT = conv_layout(3)

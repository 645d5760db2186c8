"""Convolution layers: `BaseConv`, generic over the rank, and its members `Conv1D`, `Conv2D`, `Conv3D`,
the transposed `Conv{1,2,3}DTranspose`, the depthwise `DepthwiseConv{1,2}D` and the separable
`SeparableConv{1,2}D`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch

from .. import activations
from ..arguments import check_positive_int
from ..arguments import data_format as check_data_format
from ..errors import ArgumentError, InputShapeError
from ..layer import InputSpec, Layer, Shape
from ..layout import Weight
from ..padding import normalize_padding, normalize_tuple, output_size
from .conv_ops import conv, conv_transpose, conv_transpose_translation, transpose_crops, transpose_output_size
from .core import LoraMixin

__all__ = [
    "BaseConv",
    "BaseConvTranspose",
    "BaseDepthwiseConv",
    "BaseSeparableConv",
    "Conv1D",
    "Conv1DTranspose",
    "Conv2D",
    "Conv2DTranspose",
    "Conv3D",
    "Conv3DTranspose",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "SeparableConv1D",
    "SeparableConv2D",
    "conv_layout",
    "conv_transpose_layout",
    "depthwise_layout",
    "grouped_kernel",
    "kernel_axes",
    "separable_layout",
]



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
        self._init_window(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                          allow_causal=self.rank == 1)
        self._set_weight_arguments(locals())
        self._init_lora(lora_rank, lora_alpha)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def _init_window(
        self,
        kernel_size: int | tuple[int, ...],
        strides: int | tuple[int, ...],
        padding: str,
        data_format: str | None,
        dilation_rate: int | tuple[int, ...],
        activation: str | Callable[[torch.Tensor], torch.Tensor] | None,
        use_bias: bool,
        *,
        allow_causal: bool = False,
        strides_with_dilation: bool = False,
    ) -> None:
        """The arguments every member of the family shares, checked and normalised."""
        self.kernel_size = normalize_tuple(kernel_size, self.rank, "kernel_size")
        self.strides = normalize_tuple(strides, self.rank, "strides")
        self.dilation_rate = normalize_tuple(dilation_rate, self.rank, "dilation_rate")
        if not strides_with_dilation and max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ArgumentError(
                "`strides` > 1 cannot be combined with `dilation_rate` > 1. "
                f"Received: strides={self.strides}, dilation_rate={self.dilation_rate}."
            )
        self.padding = normalize_padding(padding, allow_causal=allow_causal)
        self.data_format = check_data_format(data_format)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)

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
        outputs = self.convolve(x)
        if channels_last:
            outputs = outputs.permute(0, *range(2, rank + 2), 1)
        return self.activation(outputs)

    def convolve(self, x: torch.Tensor) -> torch.Tensor:
        """The member's math on a channels-first view ``(N, C, *spatial)``, bias included."""
        return conv(
            x,
            self.weight_view("kernel", "torch", value=self.merged_kernel()),
            self.bias if self.use_bias else None,
            strides=self.strides,
            padding=self.conv_padding(),
            dilation_rate=self.dilation_rate,
            groups=self.groups,
        )

    def output_spatial(self, spatial: Shape) -> Shape:
        """Spatial output sizes for the input's ``spatial`` sizes (``None`` stays ``None``)."""
        return output_size(spatial, self.kernel_size, self.strides, self.dilation_rate, self.padding)

    def output_channels(self, input_channels: int | None) -> int | None:
        """The output's channels for ``input_channels`` input channels."""
        return self.filters

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        input_shape = tuple(input_shape)
        channels_last = self.data_format == "channels_last"
        spatial = input_shape[1:-1] if channels_last else input_shape[2:]
        try:
            sizes = self.output_spatial(spatial)
        except InputShapeError:
            raise InputShapeError(
                f"the input's spatial size is smaller than the dilated kernel {self.kernel_size} "
                f"(dilation {self.dilation_rate}) with padding={self.padding!r}. Received: input shape={input_shape}."
            ) from None
        channels = self.output_channels(input_shape[self.channel_axis] if len(input_shape) == self.rank + 2 else None)
        if channels_last:
            return (input_shape[0], *sizes, channels)
        return (input_shape[0], channels, *sizes)

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


# -- transposed convolutions ------------------------------------------------------------------


def conv_transpose_layout(rank: int) -> tuple[Weight, ...]:
    """The ``LAYOUT`` of a ``rank``-D transposed convolution: Keras's kernel ``(*spatial, out, in)``
    (``filters`` before the input channels), torch's ``(in, out, *spatial)``, and the bias."""
    spatial = kernel_axes(rank)
    return (
        Weight("kernel", (*spatial, "out", "in"), torch=("in", "out", *spatial)),
        Weight("bias", ("out",), enabled_by="use_bias"),
    )


class BaseConvTranspose(BaseConv):
    """N-D transposed convolution, as Keras's ``BaseConvTranspose``: the gradient of a
    convolution with respect to its input, ``outputs = activation(conv_transpose(inputs, kernel) + bias)``.

    Output sizes are Keras's: ``'valid'`` gives ``(size - 1) * stride + max(extent, stride)``
    (``extent = (kernel_size - 1) * dilation_rate + 1``), or ``(size - 1) * stride + extent +
    output_padding``; ``'same'`` gives ``size * stride``, or ``(size - 1) * stride + extent % 2 +
    output_padding``. The full transposed output is cropped as TensorFlow crops it
    (`conv_ops.transpose_crops`): when the total crop of an axis is odd, the extra position
    comes off the END. torch's ``conv_transpose{n}d`` takes the crop as ``padding`` and
    ``output_padding`` wherever it can say it; TF's odd crop cannot be said that way (it would
    need ``output_padding=-1``), so it runs with ``padding=before`` and a ``narrow`` view drops
    the last position: no copy. torch's output length is also rounded up to a multiple of the
    stride where ``output_padding`` allows it (oneDNN's fast path, ~2x; the extra end positions
    are left out by the same view). Channels-last inputs reach torch as ``channels_last`` views.
    An exported graph has one ONNX ``ConvTranspose`` (asymmetric ``pads`` for TF's odd crop).
    """

    KERAS2_DROPPED = ("groups",)  # Keras 2 wrote groups=1 here; Keras 3 takes none

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, ...],
        strides: int | tuple[int, ...] = 1,
        padding: str = "valid",
        output_padding: int | tuple[int, ...] | None = None,
        data_format: str | None = None,
        dilation_rate: int | tuple[int, ...] = 1,
        activation: str | Callable[[torch.Tensor], torch.Tensor] | None = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        if not type(self).LAYOUT:
            raise TypeError(f"`{type(self).__name__}` is abstract: use `Conv1DTranspose`, `Conv2DTranspose` or `Conv3DTranspose`.")
        Layer.__init__(self, activity_regularizer=activity_regularizer, **kwargs)
        self.filters = check_positive_int("filters", filters)
        self.groups = 1
        self._init_window(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias)
        self.output_padding = None
        if output_padding is not None:
            self.output_padding = normalize_tuple(output_padding, self.rank, "output_padding", minimum=0)
            if any(op >= s for op, s in zip(self.output_padding, self.strides)):
                raise ArgumentError(
                    "`output_padding` must be smaller than `strides` along every axis. "
                    f"Received: output_padding={self.output_padding}, strides={self.strides}."
                )
            if self.padding == "same" and any(
                op == 0 and (k - 1) * d % 2 == 1 for op, k, d in zip(self.output_padding, self.kernel_size, self.dilation_rate)
            ):
                raise ArgumentError(
                    "`output_padding` must be > 0 along an axis with padding='same' and an even dilated kernel extent: "
                    "the output would have (size - 1) * stride steps, which TensorFlow's transposed convolution refuses. "
                    f"Received: output_padding={self.output_padding}, kernel_size={self.kernel_size}, "
                    f"dilation_rate={self.dilation_rate}."
                )
        self.crops = transpose_crops(self.kernel_size, self.strides, self.dilation_rate, self.padding, self.output_padding)
        self._set_weight_arguments(locals())
        self._init_lora(None, None)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        channels = input_shape[self.channel_axis]
        if channels is None:
            raise ArgumentError(f"the input channels must be known. Received: input_shape={tuple(input_shape)}.")
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={self.channel_axis: channels})
        return {**dict(zip(kernel_axes(self.rank), self.kernel_size)), "in": channels, "out": self.filters}

    def convolve(self, x: torch.Tensor) -> torch.Tensor:
        return conv_transpose(
            x, self.weight_view("kernel", "torch"), self.bias if self.use_bias else None, self.crops,
            strides=self.strides, dilation_rate=self.dilation_rate,
        )

    def output_spatial(self, spatial: Shape) -> Shape:
        return transpose_output_size(spatial, self.kernel_size, self.strides, self.dilation_rate, self.padding, self.output_padding)

    @classmethod
    def onnx_translations(cls) -> dict[Any, Callable[..., Any]]:
        return {torch.ops.xlayers.conv_transpose.default: conv_transpose_translation()}

    def get_config(self) -> dict[str, Any]:
        return {
            **Layer.get_config(self),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "output_padding": self.output_padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            **self._weight_argument_config(),
        }


_TRANSPOSE_ARGS = """
    Args:
        filters: number of output channels.
        kernel_size: int or tuple of {rank} ints, the size of the window.
        strides: int or tuple of {rank} ints; strides > 1 exclude dilation > 1.
        padding: ``"valid"`` or ``"same"`` (case-insensitive).
        output_padding: ``None``, or int or tuple of {rank} ints ``>= 0`` and ``< strides``:
            the output's extra size (see the sizes above).
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        dilation_rate: int or tuple of {rank} ints.
        activation: activation function or its Keras name; ``None`` is linear.
        use_bias: whether the layer uses a bias vector.
        kernel_initializer, bias_initializer: initializers.
        kernel_regularizer, bias_regularizer, activity_regularizer: regularizers.
        kernel_constraint, bias_constraint: constraints.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).
"""


class Conv1DTranspose(BaseConvTranspose):
    """1-D transposed convolution: ``outputs = activation(conv_transpose1d(inputs, kernel) + bias)``.

    Keras's ``Conv1DTranspose``: ``'same'`` gives ``steps * stride`` outputs, ``'valid'``
    ``(steps - 1) * stride + max(extent, stride)``; ``output_padding`` sets the extra size
    instead. TensorFlow's crop (the odd position off the end) maps onto
    ``F.conv_transpose1d``'s ``padding``/``output_padding``, plus a ``narrow`` view where
    torch cannot say it (see `BaseConvTranspose`). A channels-last input runs as a
    ``channels_last`` 2-D view: no layout copy.
{args}
    Input shape:
        ``(batch, steps, channels)``, or ``(batch, channels, steps)`` with ``channels_first``.

    Output shape:
        ``(batch, new_steps, filters)`` (or channels first).

    Weights:
        kernel: ``(kw, out, in)``; torch view ``(in, out, kw)``; ``out`` is ``filters``,
            ``in`` the input channels (Keras puts ``filters`` first).
        bias: ``(out,)``, if ``use_bias``.

    Example:
        >>> layer = Conv1DTranspose(8, 3, strides=2, padding="same", input_shape=(10, 4))
        >>> layer(torch.randn(2, 10, 4)).shape
        torch.Size([2, 20, 8])
        >>> tuple(layer.kernel.shape)
        (3, 8, 4)
    """

    rank = 1
    LAYOUT = conv_transpose_layout(1)


class Conv2DTranspose(BaseConvTranspose):
    """2-D transposed convolution: ``outputs = activation(conv_transpose2d(inputs, kernel) + bias)``.

    Keras's ``Conv2DTranspose``: ``'same'`` gives ``size * stride`` outputs per axis,
    ``'valid'`` ``(size - 1) * stride + max(extent, stride)``; ``output_padding`` sets the
    extra size instead. TensorFlow's crop (the odd position off the bottom/right) maps onto
    ``F.conv_transpose2d``'s ``padding``/``output_padding``, plus a ``narrow`` view where
    torch cannot say it (see `BaseConvTranspose`). A channels-last input reaches torch as a
    ``channels_last`` view: no layout copy.
{args}
    Input shape:
        ``(batch, rows, cols, channels)``, or ``(batch, channels, rows, cols)`` with ``channels_first``.

    Output shape:
        ``(batch, new_rows, new_cols, filters)`` (or channels first).

    Weights:
        kernel: ``(kh, kw, out, in)``; torch view ``(in, out, kh, kw)``; ``out`` is ``filters``,
            ``in`` the input channels (Keras puts ``filters`` first).
        bias: ``(out,)``, if ``use_bias``.

    Example:
        >>> layer = Conv2DTranspose(16, 3, strides=2, padding="same", input_shape=(7, 9, 4))
        >>> layer(torch.randn(2, 7, 9, 4)).shape
        torch.Size([2, 14, 18, 16])
        >>> tuple(layer.kernel.shape)
        (3, 3, 16, 4)
    """

    rank = 2
    LAYOUT = conv_transpose_layout(2)


class Conv3DTranspose(BaseConvTranspose):
    """3-D transposed convolution: ``outputs = activation(conv_transpose3d(inputs, kernel) + bias)``.

    Sizes and crops as `Conv2DTranspose`, per axis. A channels-last input reaches torch as a
    ``channels_last_3d`` view: no layout copy.
{args}
    Input shape:
        ``(batch, depth, rows, cols, channels)``, or ``(batch, channels, depth, rows, cols)``
        with ``channels_first``.

    Output shape:
        ``(batch, new_depth, new_rows, new_cols, filters)`` (or channels first).

    Weights:
        kernel: ``(kd, kh, kw, out, in)``; torch view ``(in, out, kd, kh, kw)``; ``out`` is
            ``filters``, ``in`` the input channels (Keras puts ``filters`` first).
        bias: ``(out,)``, if ``use_bias``.

    Example:
        >>> layer = Conv3DTranspose(4, 2, strides=2, input_shape=(3, 4, 5, 2))
        >>> layer(torch.randn(1, 3, 4, 5, 2)).shape
        torch.Size([1, 6, 8, 10, 4])
        >>> tuple(layer.kernel.shape)
        (2, 2, 2, 4, 2)
    """

    rank = 3
    LAYOUT = conv_transpose_layout(3)


for _cls in (Conv1DTranspose, Conv2DTranspose, Conv3DTranspose):
    _cls.__doc__ = _cls.__doc__.replace("{args}", _TRANSPOSE_ARGS.format(rank=_cls.rank))


# -- depthwise and separable convolutions ------------------------------------------------------


def depthwise_layout(rank: int, name: str = "kernel") -> Weight:
    """A depthwise kernel: Keras's ``(*spatial, in, mult)``, torch's view ``(in, mult, *spatial)``,
    which `BaseDepthwiseConv.grouped_kernel` reshapes (merging ``in`` and ``mult``: output
    channel ``c * mult + m``, as Keras) into the grouped conv's ``(in * mult, 1, *spatial)``, a view."""
    spatial = kernel_axes(rank)
    return Weight(name, (*spatial, "in", "mult"), torch=("in", "mult", *spatial), role="depthwise")


def grouped_kernel(view: torch.Tensor) -> torch.Tensor:
    """A depthwise kernel's torch view ``(in, mult, *k)`` as torch's grouped weight
    ``(in * mult, 1, *k)``: ``in`` and ``mult`` are adjacent in memory order, so this is a view."""
    return view.reshape(view.shape[0] * view.shape[1], 1, *view.shape[2:])


class BaseDepthwiseConv(BaseConv):
    """N-D depthwise convolution, as Keras's ``BaseDepthwiseConv``: each input channel ``c``
    is convolved with its own ``depth_multiplier`` filters; output channel ``c * mult + m``.

    torch: a grouped convolution with ``groups = in``, the kernel's torch view reshaped to
    ``(in * mult, 1, *k)`` (a view, no per-call copy). Padding as `Conv2D` (TensorFlow's
    'same', the odd pad at the end, computed without copying the input); unlike `Conv2D`,
    Keras allows ``strides > 1`` with ``dilation_rate > 1`` here.
    """

    KERAS2_DROPPED = ("groups",)  # Keras 2 wrote groups=1 here; Keras 3 takes none

    def __init__(
        self,
        kernel_size: int | tuple[int, ...],
        strides: int | tuple[int, ...] = 1,
        padding: str = "valid",
        depth_multiplier: int = 1,
        data_format: str | None = None,
        dilation_rate: int | tuple[int, ...] = 1,
        activation: str | Callable[[torch.Tensor], torch.Tensor] | None = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        depthwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        depthwise_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        if not type(self).LAYOUT:
            raise TypeError(f"`{type(self).__name__}` is abstract: use `DepthwiseConv1D` or `DepthwiseConv2D`.")
        Layer.__init__(self, activity_regularizer=activity_regularizer, **kwargs)
        self.depth_multiplier = check_positive_int("depth_multiplier", depth_multiplier)
        self._init_window(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                          strides_with_dilation=True)
        self._set_weight_arguments(locals())
        self._init_lora(None, None)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        channels = input_shape[self.channel_axis]
        if channels is None:
            raise ArgumentError(f"the input channels must be known. Received: input_shape={tuple(input_shape)}.")
        self.compute_output_shape(input_shape)  # refuses inputs smaller than the kernel, as Keras's build
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={self.channel_axis: channels})
        return {**dict(zip(kernel_axes(self.rank), self.kernel_size)), "in": channels, "mult": self.depth_multiplier,
                "out": channels * self.depth_multiplier}

    def output_channels(self, input_channels: int | None) -> int | None:
        return None if input_channels is None else input_channels * self.depth_multiplier

    def convolve(self, x: torch.Tensor) -> torch.Tensor:
        return conv(
            x, grouped_kernel(self.weight_view("kernel", "torch")), self.bias if self.use_bias else None,
            strides=self.strides, padding=self.padding, dilation_rate=self.dilation_rate, groups=x.shape[1],
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **Layer.get_config(self),
            "depth_multiplier": self.depth_multiplier,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            **self._weight_argument_config(),
        }


_DEPTHWISE_ARGS = """
    Args:
        kernel_size: int or tuple of {rank} ints, the size of the window.
        strides: int or tuple of {rank} ints.
        padding: ``"valid"`` or ``"same"`` (case-insensitive).
        depth_multiplier: filters per input channel (output channels ``in * depth_multiplier``).
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        dilation_rate: int or tuple of {rank} ints.
        activation: activation function or its Keras name; ``None`` is linear.
        use_bias: whether the layer uses a bias vector.
        depthwise_initializer, bias_initializer: initializers.
        depthwise_regularizer, bias_regularizer, activity_regularizer: regularizers.
        depthwise_constraint, bias_constraint: constraints.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).
"""


class DepthwiseConv1D(BaseDepthwiseConv):
    """1-D depthwise convolution: ``outputs[..., c * mult + m] = activation(conv1d(inputs[..., c], kernel[:, c, m]) + bias)``.

    Keras's ``DepthwiseConv1D``; torch's grouped ``conv1d`` (``groups = in``) on the kernel
    viewed as ``(in * mult, 1, kw)``. A channels-last input runs as a ``channels_last`` 2-D
    view: no layout copy.
{args}
    Input shape:
        ``(batch, steps, channels)``, or ``(batch, channels, steps)`` with ``channels_first``.

    Output shape:
        ``(batch, new_steps, channels * depth_multiplier)`` (or channels first).

    Weights:
        kernel: ``(kw, in, mult)``; torch view ``(in, mult, kw)``, reshaped to ``(in * mult, 1, kw)``.
        bias: ``(out,)``, ``out = in * mult``, if ``use_bias``.

    Example:
        >>> layer = DepthwiseConv1D(3, depth_multiplier=2, padding="same", input_shape=(10, 4))
        >>> layer(torch.randn(2, 10, 4)).shape
        torch.Size([2, 10, 8])
        >>> tuple(layer.kernel.shape)
        (3, 4, 2)
    """

    rank = 1
    LAYOUT = (depthwise_layout(1), Weight("bias", ("out",), enabled_by="use_bias"))


class DepthwiseConv2D(BaseDepthwiseConv):
    """2-D depthwise convolution: ``outputs[..., c * mult + m] = activation(conv2d(inputs[..., c], kernel[:, :, c, m]) + bias)``.

    Keras's ``DepthwiseConv2D``; torch's grouped ``conv2d`` (``groups = in``) on the kernel
    viewed as ``(in * mult, 1, kh, kw)``. A channels-last input reaches torch as a
    ``channels_last`` view: no layout copy.
{args}
    Input shape:
        ``(batch, rows, cols, channels)``, or ``(batch, channels, rows, cols)`` with ``channels_first``.

    Output shape:
        ``(batch, new_rows, new_cols, channels * depth_multiplier)`` (or channels first).

    Weights:
        kernel: ``(kh, kw, in, mult)``; torch view ``(in, mult, kh, kw)``, reshaped to ``(in * mult, 1, kh, kw)``.
        bias: ``(out,)``, ``out = in * mult``, if ``use_bias``.

    Example:
        >>> layer = DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=3, input_shape=(9, 8, 4))
        >>> layer(torch.randn(2, 9, 8, 4)).shape
        torch.Size([2, 5, 4, 12])
        >>> tuple(layer.kernel.shape)
        (3, 3, 4, 3)
    """

    rank = 2
    LAYOUT = (depthwise_layout(2), Weight("bias", ("out",), enabled_by="use_bias"))


def separable_layout(rank: int) -> tuple[Weight, ...]:
    """The ``LAYOUT`` of a separable convolution: the depthwise kernel ``(*spatial, in, mult)``,
    the pointwise kernel ``(*ones, mid, out)`` (``mid = in * mult``, spatial axes of size 1,
    torch ``(out, mid, *ones)``) and the bias."""
    ones = ("pd", "ph", "pw")[3 - rank :]
    return (
        depthwise_layout(rank, "depthwise_kernel"),
        Weight("pointwise_kernel", (*ones, "mid", "out"), torch=("out", "mid", *ones), role="pointwise"),
        Weight("bias", ("out",), enabled_by="use_bias"),
    )


class BaseSeparableConv(BaseConv):
    """N-D separable convolution, as Keras's ``BaseSeparableConv``: a depthwise convolution
    (``depth_multiplier`` filters per input channel, no bias) then a pointwise (1x1)
    convolution to ``filters`` channels, plus the bias.

    torch: the grouped convolution of `BaseDepthwiseConv` (the depthwise kernel viewed as
    ``(in * mult, 1, *k)``), then a 1x1 convolution; both on channels-last views.
    """

    # Keras 2 wrote groups=1 and the base convolution's kernel_* arguments here; Keras 3 takes none
    KERAS2_DROPPED = ("groups", "kernel_initializer", "kernel_regularizer", "kernel_constraint")

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, ...],
        strides: int | tuple[int, ...] = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: int | tuple[int, ...] = 1,
        depth_multiplier: int = 1,
        activation: str | Callable[[torch.Tensor], torch.Tensor] | None = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        pointwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        depthwise_regularizer: Any = None,
        pointwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        depthwise_constraint: Any = None,
        pointwise_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        if not type(self).LAYOUT:
            raise TypeError(f"`{type(self).__name__}` is abstract: use `SeparableConv1D` or `SeparableConv2D`.")
        Layer.__init__(self, activity_regularizer=activity_regularizer, **kwargs)
        self.filters = check_positive_int("filters", filters)
        self.depth_multiplier = check_positive_int("depth_multiplier", depth_multiplier)
        self._init_window(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                          strides_with_dilation=True)
        self._set_weight_arguments(locals())
        self._init_lora(None, None)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        channels = input_shape[self.channel_axis]
        if channels is None:
            raise ArgumentError(f"the input channels must be known. Received: input_shape={tuple(input_shape)}.")
        self.compute_output_shape(input_shape)  # refuses inputs smaller than the kernel, as Keras's build
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={self.channel_axis: channels})
        ones = dict.fromkeys(("pd", "ph", "pw")[3 - self.rank :], 1)
        return {**dict(zip(kernel_axes(self.rank), self.kernel_size)), **ones, "in": channels,
                "mult": self.depth_multiplier, "mid": channels * self.depth_multiplier, "out": self.filters}

    def convolve(self, x: torch.Tensor) -> torch.Tensor:
        depthwise = conv(
            x, grouped_kernel(self.weight_view("depthwise_kernel", "torch")), None,
            strides=self.strides, padding=self.padding, dilation_rate=self.dilation_rate, groups=x.shape[1],
        )
        return conv(depthwise, self.weight_view("pointwise_kernel", "torch"), self.bias if self.use_bias else None)

    def get_config(self) -> dict[str, Any]:
        return {
            **Layer.get_config(self),
            "depth_multiplier": self.depth_multiplier,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            **self._weight_argument_config(),
        }


_SEPARABLE_ARGS = """
    Args:
        filters: number of output channels.
        kernel_size: int or tuple of {rank} ints, the size of the depthwise window.
        strides: int or tuple of {rank} ints.
        padding: ``"valid"`` or ``"same"`` (case-insensitive).
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        dilation_rate: int or tuple of {rank} ints.
        depth_multiplier: depthwise filters per input channel.
        activation: activation function or its Keras name; ``None`` is linear.
        use_bias: whether the layer uses a bias vector.
        depthwise_initializer, pointwise_initializer, bias_initializer: initializers.
        depthwise_regularizer, pointwise_regularizer, bias_regularizer, activity_regularizer: regularizers.
        depthwise_constraint, pointwise_constraint, bias_constraint: constraints.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).
"""


class SeparableConv1D(BaseSeparableConv):
    """1-D separable convolution: ``outputs = activation(pointwise(depthwise(inputs)) + bias)``.

    Keras's ``SeparableConv1D``: a depthwise ``conv1d`` (``groups = in``, output channel
    ``c * mult + m``), then a ``1``-wide ``conv1d`` to ``filters`` channels.
{args}
    Input shape:
        ``(batch, steps, channels)``, or ``(batch, channels, steps)`` with ``channels_first``.

    Output shape:
        ``(batch, new_steps, filters)`` (or channels first).

    Weights:
        depthwise_kernel: ``(kw, in, mult)``; torch view ``(in, mult, kw)``, reshaped to ``(in * mult, 1, kw)``.
        pointwise_kernel: ``(pw, mid, out)``; torch view ``(out, mid, pw)``; ``pw = 1``, ``mid = in * mult``.
        bias: ``(out,)``, if ``use_bias``.

    Example:
        >>> layer = SeparableConv1D(6, 3, depth_multiplier=2, input_shape=(10, 4))
        >>> layer(torch.randn(2, 10, 4)).shape
        torch.Size([2, 8, 6])
        >>> tuple(layer.pointwise_kernel.shape)
        (1, 8, 6)
    """

    rank = 1
    LAYOUT = separable_layout(1)


class SeparableConv2D(BaseSeparableConv):
    """2-D separable convolution: ``outputs = activation(pointwise(depthwise(inputs)) + bias)``.

    Keras's ``SeparableConv2D``: a depthwise ``conv2d`` (``groups = in``, output channel
    ``c * mult + m``), then a 1x1 ``conv2d`` to ``filters`` channels.
{args}
    Input shape:
        ``(batch, rows, cols, channels)``, or ``(batch, channels, rows, cols)`` with ``channels_first``.

    Output shape:
        ``(batch, new_rows, new_cols, filters)`` (or channels first).

    Weights:
        depthwise_kernel: ``(kh, kw, in, mult)``; torch view ``(in, mult, kh, kw)``, reshaped to ``(in * mult, 1, kh, kw)``.
        pointwise_kernel: ``(ph, pw, mid, out)``; torch view ``(out, mid, ph, pw)``; ``ph = pw = 1``, ``mid = in * mult``.
        bias: ``(out,)``, if ``use_bias``.

    Example:
        >>> layer = SeparableConv2D(16, 3, padding="same", depth_multiplier=2, input_shape=(9, 8, 4))
        >>> layer(torch.randn(2, 9, 8, 4)).shape
        torch.Size([2, 9, 8, 16])
        >>> tuple(layer.depthwise_kernel.shape), tuple(layer.pointwise_kernel.shape)
        ((3, 3, 4, 2), (1, 1, 8, 16))
    """

    rank = 2
    LAYOUT = separable_layout(2)


for _cls in (DepthwiseConv1D, DepthwiseConv2D):
    _cls.__doc__ = _cls.__doc__.replace("{args}", _DEPTHWISE_ARGS.format(rank=_cls.rank))
for _cls in (SeparableConv1D, SeparableConv2D):
    _cls.__doc__ = _cls.__doc__.replace("{args}", _SEPARABLE_ARGS.format(rank=_cls.rank))
del _cls

"""Convolution layers: `Conv2D`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from .. import activations
from ..errors import ArgumentError, InputShapeError
from ..layer import InputSpec, Layer, Shape
from ..layout import Weight
from ..padding import normalize_padding, normalize_tuple, output_size
from .conv_ops import conv
from .core import LoraMixin, check_positive_int

__all__ = ["Conv2D"]

_DATA_FORMATS = ("channels_last", "channels_first")


class Conv2D(LoraMixin, Layer):
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

    LAYOUT = (
        Weight("kernel", ("kh", "kw", "in", "out"), torch=("out", "in", "kh", "kw")),
        Weight("bias", ("out",), enabled_by="use_bias"),
        Weight("lora_kernel_a", ("kh", "kw", "in", "rank"), torch=("rank", "in", "kh", "kw"), role="kernel", enabled_by="lora_rank"),
        Weight("lora_kernel_b", ("rank", "out"), torch=("out", "rank"), role="kernel", enabled_by="lora_rank"),
    )
    _TORCH_KERNEL = LAYOUT[0].permutation("keras", "torch")

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        strides: int | tuple[int, int] = (1, 1),
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: int | tuple[int, int] = (1, 1),
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
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.filters = check_positive_int("filters", filters)
        self.groups = check_positive_int("groups", groups)
        if filters % groups:
            raise ArgumentError(f"`filters` must be divisible by `groups`. Received: filters={filters}, groups={groups}.")
        self.kernel_size = normalize_tuple(kernel_size, 2, "kernel_size")
        self.strides = normalize_tuple(strides, 2, "strides")
        self.dilation_rate = normalize_tuple(dilation_rate, 2, "dilation_rate")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ArgumentError(
                f"`strides` > 1 cannot be combined with `dilation_rate` > 1. "
                f"Received: strides={self.strides}, dilation_rate={self.dilation_rate}."
            )
        self.padding = normalize_padding(padding)
        data_format = "channels_last" if data_format is None else str(data_format).lower()
        if data_format not in _DATA_FORMATS:
            raise ArgumentError(f"`data_format` must be one of {list(_DATA_FORMATS)}. Received: data_format={data_format!r}.")
        self.data_format = data_format
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self._set_weight_arguments(locals())
        self._init_lora(lora_rank, lora_alpha)
        self.input_spec = InputSpec(ndim=4)

    @property
    def _channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        channels = input_shape[self._channel_axis]
        if channels is None or channels % self.groups:
            raise ArgumentError(
                f"{self._label}: the input channels must be known and divisible by `groups` ({self.groups}). "
                f"Received: input_shape={tuple(input_shape)}."
            )
        self.input_spec = InputSpec(ndim=4, axes={self._channel_axis: channels})
        kh, kw = self.kernel_size
        return {"kh": kh, "kw": kw, "in": channels // self.groups, "out": self.filters, "rank": self.lora_rank or 0}

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        try:
            self.compute_output_shape(tuple(inputs.shape))
        except InputShapeError:
            raise InputShapeError(
                f"{self._label}: the input's spatial size is smaller than the dilated kernel {self.kernel_size} "
                f"(dilation {self.dilation_rate}) with padding={self.padding!r}. Received: input shape={tuple(inputs.shape)}."
            ) from None
        channels_last = self.data_format == "channels_last"
        x = inputs.permute(0, 3, 1, 2) if channels_last else inputs  # NHWC as a channels_last NCHW view
        outputs = conv(
            x,
            self.merged_kernel().permute(self._TORCH_KERNEL),
            self.bias if self.use_bias else None,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            groups=self.groups,
        )
        if channels_last:
            outputs = outputs.permute(0, 2, 3, 1)
        return self.activation(outputs)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        input_shape = tuple(input_shape)
        spatial = input_shape[1:3] if self.data_format == "channels_last" else input_shape[2:4]
        rows, cols = output_size(spatial, self.kernel_size, self.strides, self.dilation_rate, self.padding)
        if self.data_format == "channels_last":
            return (input_shape[0], rows, cols, self.filters)
        return (input_shape[0], self.filters, rows, cols)

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

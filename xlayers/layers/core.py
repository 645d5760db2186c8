"""Core layers: `Dense` and `Masking`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import activations, initializers
from ..arguments import check_positive_int
from ..errors import ArgumentError, ArgumentTypeError
from ..layer import InputSpec, Layer, Shape
from ..layout import Weight

__all__ = ["Dense", "LoraMixin", "Masking"]




class LoraMixin:
    """Keras's LoRA for kernel layers: with ``lora_rank`` set, ``kernel`` is frozen and
    ``(lora_alpha / lora_rank) * lora_kernel_a @ lora_kernel_b`` is added to it.

    The host declares ``lora_kernel_a`` / ``lora_kernel_b`` in its ``LAYOUT`` (enabled by
    ``lora_rank``, axis ``rank``) and calls :meth:`_init_lora` in its constructor.
    """

    def _init_lora(self, lora_rank: int | None, lora_alpha: float | None) -> None:
        if lora_rank is not None:
            check_positive_int("lora_rank", lora_rank)
            if self.kernel_constraint is not None:
                raise ArgumentError(
                    f"`lora_rank` cannot be combined with `kernel_constraint`. "
                    f"Received: lora_rank={lora_rank}."
                )
        if lora_alpha is not None and (isinstance(lora_alpha, bool) or not isinstance(lora_alpha, (int, float, np.number))):
            raise ArgumentTypeError(f"`lora_alpha` must be a number or None. Received: lora_alpha={lora_alpha!r}.")
        self.lora_rank = lora_rank if lora_rank is None else check_positive_int("lora_rank", lora_rank)
        self.lora_alpha = float(lora_alpha) if lora_alpha is not None else lora_rank

    def _build(self, input_shape: Shape, device: torch.device | None) -> None:
        super()._build(input_shape, device)
        if self.lora_rank:  # as Keras's enable_lora: the base kernel is frozen
            self.kernel.requires_grad_(False)
            self._weight_trainable["kernel"] = False

    def initializer_for(self, weight: Weight) -> Callable[..., torch.Tensor]:
        lora = {"lora_kernel_a": "he_uniform", "lora_kernel_b": "zeros"}
        return initializers.get(lora[weight.name]) if weight.name in lora else super().initializer_for(weight)

    def merged_kernel(self) -> torch.Tensor:
        """``kernel``, plus the scaled LoRA update when ``lora_rank`` is set."""
        if not self.lora_rank:
            return self.kernel
        return self.kernel + (self.lora_alpha / self.lora_rank) * (self.lora_kernel_a @ self.lora_kernel_b)

    def lora_config(self) -> dict[str, Any]:
        return {"lora_rank": self.lora_rank, "lora_alpha": self.lora_alpha} if self.lora_rank else {}


class Dense(LoraMixin, Layer):
    """Densely connected layer: ``outputs = activation(inputs @ kernel + bias)``.

    Applies on the last axis of inputs of any rank >= 2; the torch mapping is
    ``F.linear(inputs, kernel_view, bias)`` with ``kernel``'s torch view from ``LAYOUT``
    (a transposed view: no copy).

    Args:
        units: dimensionality of the output space.
        activation: activation function or its Keras name; ``None`` is linear.
        use_bias: whether the layer uses a bias vector.
        kernel_initializer: initializer for ``kernel``.
        bias_initializer: initializer for ``bias``.
        kernel_regularizer: regularizer for ``kernel``.
        bias_regularizer: regularizer for ``bias``.
        activity_regularizer: regularizer for the output.
        kernel_constraint: constraint for ``kernel``.
        bias_constraint: constraint for ``bias``.
        lora_rank: if set, ``kernel`` is frozen and a trainable low-rank update
            ``(lora_alpha / lora_rank) * lora_kernel_a @ lora_kernel_b`` is added to it.
        lora_alpha: LoRA scale numerator; defaults to ``lora_rank``.
        quantization_config: only ``None`` (quantized Dense is not supported).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, ..., input_dim)``.

    Output shape:
        ``(batch, ..., units)``.

    Weights:
        kernel: ``(in, units)``; torch view ``(units, in)``.
        bias: ``(units,)``, if ``use_bias``.
        lora_kernel_a: ``(in, rank)``; torch view ``(rank, in)``, if ``lora_rank``.
        lora_kernel_b: ``(rank, units)``; torch view ``(units, rank)``, if ``lora_rank``.

    Example:
        >>> layer = Dense(128, activation="relu")
        >>> layer(torch.randn(32, 784)).shape
        torch.Size([32, 128])
        >>> tuple(layer.kernel.shape), tuple(layer.bias.shape)
        ((784, 128), (128,))
    """

    LAYOUT = (
        Weight("kernel", ("in", "units"), torch=("units", "in")),
        Weight("bias", ("units",), enabled_by="use_bias"),
        Weight("lora_kernel_a", ("in", "rank"), torch=("rank", "in"), role="kernel", enabled_by="lora_rank"),
        Weight("lora_kernel_b", ("rank", "units"), torch=("units", "rank"), role="kernel", enabled_by="lora_rank"),
    )

    def __init__(
        self,
        units: int,
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
        quantization_config: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = check_positive_int("units", units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self._set_weight_arguments(locals())
        self._init_lora(lora_rank, lora_alpha)
        if quantization_config is not None:
            raise ArgumentError(f"quantized layers are not supported; `quantization_config` must be None. Received: quantization_config={quantization_config!r}.")
        self.input_spec = InputSpec(min_ndim=2)
        self.supports_masking = True

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ArgumentError(f"{self._label}: the last axis of the input must be known to build. Received: input_shape={input_shape}.")
        self.input_spec = InputSpec(min_ndim=2, axes={-1: input_dim})
        return {"in": input_dim, "units": self.units, "rank": self.lora_rank or 0}

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs = F.linear(inputs, self.weight_view("kernel", value=self.merged_kernel()), self.bias if self.use_bias else None)
        return self.activation(outputs)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        halves = activations.name_of(self.activation) == "glu"  # glu gates one half with the other
        return (*tuple(input_shape)[:-1], self.units // 2 if halves else self.units)

    def get_config(self) -> dict[str, Any]:
        config = {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            **self._weight_argument_config(),
            "quantization_config": None,
            **self.lora_config(),
        }
        return config


class Masking(Layer):
    """Masks timesteps whose features all equal ``mask_value``.

    ``outputs = inputs * any(inputs != mask_value, axis=-1, keepdims=True)``; the mask
    ``any(inputs != mask_value, axis=-1)`` goes to the next layer (in `Sequential`).

    Args:
        mask_value: the value that marks a masked timestep.

    Input shape:
        ``(batch, timesteps, ...features)``.

    Output shape:
        same as the input.

    Example:
        >>> Masking(0.0)(torch.ones(2, 3, 4)).shape
        torch.Size([2, 3, 4])
    """

    def __init__(self, mask_value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(mask_value, bool) or not isinstance(mask_value, (int, float, np.number)):
            raise ArgumentTypeError(f"`mask_value` must be a number. Received: mask_value={mask_value!r}.")
        self.mask_value = float(mask_value)
        self.supports_masking = True
        self.input_spec = InputSpec(min_ndim=2)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        keep = (inputs != self.mask_value).any(dim=-1, keepdim=True)
        return inputs * keep.to(inputs.dtype)

    def compute_mask(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return (torch.as_tensor(inputs) != self.mask_value).any(dim=-1)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mask_value": self.mask_value}


class Identity(Layer):
    """The identity: ``outputs = inputs``, the same tensor (or list/dict of tensors).

    Keras's ``Identity`` layer, a placeholder where no operation is performed; the mask
    passes through.

    Input shape:
        any (a tensor, or a list or dict of tensors).

    Output shape:
        the input's.

    Example:
        >>> x = torch.randn(2, 3)
        >>> Identity()(x) is x
        True
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs: Any) -> Any:
        return inputs

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


__all__ += ["Identity"]

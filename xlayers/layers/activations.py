"""Activation layers: `Activation`, `ReLU`, `LeakyReLU`, `PReLU`, `ELU`, `Softmax`.

Each is Keras's layer of the same name over the functions of `xlayers.activations` (the
one table of activation math): no function is written twice. All keep the input's shape
and pass its mask on (``supports_masking``).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from .. import activations
from ..errors import ArgumentError, ArgumentTypeError, InputShapeError
from ..layer import InputSpec, Layer, Shape
from ..layout import Weight

__all__ = ["ELU", "Activation", "LeakyReLU", "PReLU", "ReLU", "Softmax", "prelu_layout"]


def _number(argument: str, value: Any, *, minimum: float | None = None, optional: bool = False) -> float | None:
    """``value`` as a float: a real number (``None`` too if ``optional``), at least ``minimum``."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        wanted = "None or a number" if optional else "a number"
        raise ArgumentTypeError(f"`{argument}` must be {wanted}. Received: {argument}={value!r}.")
    if minimum is not None and not value >= minimum:
        raise ArgumentError(f"`{argument}` must be a number >= {minimum:g}{' or None' if optional else ''}. Received: {argument}={value!r}.")
    return float(value)


class Activation(Layer):
    """Applies an activation function: ``outputs = activation(inputs)``.

    Keras's ``Activation`` layer; the function comes from `xlayers.activations` (by its
    Keras name), or is any callable on tensors.

    Args:
        activation: an activation name (``"relu"``, ``"gelu"``, ...), a Keras serialized
            activation, a callable, or ``None`` (linear).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        any.

    Output shape:
        the input's (``glu`` halves the last axis).

    Example:
        >>> Activation("relu")(torch.tensor([-3.0, -1.0, 0.0, 2.0]).reshape(1, 4))
        tensor([[0., 0., 0., 2.]])
    """

    def __init__(self, activation: str | Callable[[torch.Tensor], torch.Tensor] | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.supports_masking = True

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.activation(inputs)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = tuple(input_shape)
        if activations.name_of(self.activation) == "glu":  # glu gates one half of the last axis with the other
            return (*shape[:-1], None if shape[-1] is None else shape[-1] // 2)
        return shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class ReLU(Layer):
    """Rectified linear unit with Keras's extensions: ``x`` for ``threshold < x``, capped at
    ``max_value``; ``0`` for ``x <= threshold``; minus ``negative_slope * max(threshold - x, 0)``.

    The math is `xlayers.activations.relu`: ``F.relu``/``F.relu6``/``F.leaky_relu`` where one
    of them is the whole function, ``torch.clamp`` for ``max_value``.

    Args:
        max_value: largest output (a number >= 0), or ``None`` for no cap.
        negative_slope: slope below ``threshold`` (a number >= 0).
        threshold: inputs ``<= threshold`` are set to 0 (or damped), a number >= 0.
        **kwargs: base `Layer` arguments.

    Input shape:
        any.

    Output shape:
        the input's.

    Example:
        >>> ReLU(max_value=10, negative_slope=0.5)(torch.tensor([[-10.0, -5.0, 0.0, 5.0, 10.0]]))
        tensor([[-5.0000, -2.5000,  0.0000,  5.0000, 10.0000]])
    """

    def __init__(self, max_value: float | None = None, negative_slope: float = 0.0, threshold: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_value = _number("max_value", max_value, minimum=0.0, optional=True)
        self.negative_slope = _number("negative_slope", negative_slope, minimum=0.0)
        self.threshold = _number("threshold", threshold, minimum=0.0)
        self.supports_masking = True

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return activations.relu(inputs, negative_slope=self.negative_slope, max_value=self.max_value, threshold=self.threshold)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_value": self.max_value, "negative_slope": self.negative_slope, "threshold": self.threshold}


class LeakyReLU(Layer):
    """Leaky ReLU: ``x`` for ``x >= 0``, ``negative_slope * x`` below (``F.leaky_relu``).

    Keras 3's default slope is 0.3 (torch's ``nn.LeakyReLU`` uses 0.01; Keras's
    ``activations.leaky_relu`` 0.2).

    Args:
        negative_slope: slope for negative inputs, a number >= 0. Keras 2's name ``alpha``
            is accepted, with Keras's deprecation warning.
        **kwargs: base `Layer` arguments.

    Input shape:
        any.

    Output shape:
        the input's.

    Example:
        >>> LeakyReLU(negative_slope=0.5)(torch.tensor([[-10.0, 0.0, 10.0]]))
        tensor([[-5.,  0., 10.]])
    """

    def __init__(self, negative_slope: float = 0.3, **kwargs: Any) -> None:
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
            warnings.warn("Argument `alpha` is deprecated. Use `negative_slope` instead.", stacklevel=3)
        super().__init__(**kwargs)
        self.negative_slope = _number("negative_slope", negative_slope, minimum=0.0)
        self.supports_masking = True

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return activations.leaky_relu(inputs, negative_slope=self.negative_slope)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "negative_slope": self.negative_slope}


def prelu_layout(rank: int) -> tuple[Weight, ...]:
    """``PReLU``'s ``LAYOUT`` for inputs of ``rank`` (batch included): ``alpha`` has one axis
    per sample axis, ``(d1, ..., d<rank-1>)``, in the same order for Keras, torch and ONNX
    (it broadcasts against the channels-last input as it is)."""
    if rank < 2:
        raise ValueError(f"`rank` must be >= 2 (a batch axis and a sample axis). Received: rank={rank!r}.")
    return (Weight("alpha", tuple(f"d{i}" for i in range(1, rank))),)


class PReLU(Layer):
    """Parametric ReLU: ``x`` for ``x >= 0``, ``alpha * x`` below, with a learned ``alpha``.

    ``alpha`` has the shape of one sample, with size 1 on the ``shared_axes`` (one slope
    shared along them). Torch's ``F.prelu`` takes a per-channel slope on axis 1 only; the
    layer calls its kernel, ``aten._prelu_kernel``, which broadcasts ``alpha`` against the
    channels-last input as it is (one fused pass forward and backward; ONNX ``PRelu``).

    Args:
        alpha_initializer: initializer for ``alpha`` (Keras's default: zeros).
        alpha_regularizer: regularizer for ``alpha``.
        alpha_constraint: constraint for ``alpha``.
        shared_axes: an axis or a list of axes (``1`` to ``rank - 1``; the batch axis is 0)
            along which ``alpha`` is shared, e.g. ``[1, 2]`` for one slope per channel of
            ``(batch, height, width, channels)`` feature maps.
        **kwargs: base `Layer` arguments.

    Input shape:
        ``(batch, d1, ..., dn)``; the sizes of the axes not shared are fixed at build.

    Output shape:
        the input's.

    Weights:
        alpha: ``(d1,)`` for inputs ``(batch, d1)``; in general ``(d1, ..., dn)`` for inputs
        ``(batch, d1, ..., dn)``, 1 on each shared axis (the instance's ``LAYOUT`` is
        ``prelu_layout(rank)``); the same order in torch.

    Example:
        >>> layer = PReLU(shared_axes=[1, 2])
        >>> layer(torch.randn(2, 5, 6, 3)).shape
        torch.Size([2, 5, 6, 3])
        >>> tuple(layer.alpha.shape)
        (1, 1, 3)
    """

    LAYOUT = prelu_layout(2)  # the declaration for rank-2 inputs; `build` declares the input's rank

    def __init__(
        self,
        alpha_initializer: Any = "Zeros",
        alpha_regularizer: Any = None,
        alpha_constraint: Any = None,
        shared_axes: int | Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._set_weight_arguments(locals())
        if shared_axes is None:
            self.shared_axes = None
        else:
            axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) else [shared_axes]
            if not all(not isinstance(a, bool) and isinstance(a, numbers.Integral) and a >= 1 for a in axes):
                raise ArgumentError(
                    "`shared_axes` must be None, an axis or a list of axes >= 1 (axis 0 is the batch). "
                    f"Received: shared_axes={shared_axes!r}."
                )
            self.shared_axes = [int(a) for a in axes]
        self.supports_masking = True

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        rank = len(input_shape)
        shared = set(self.shared_axes or ())
        if rank < 2 or any(axis >= rank for axis in shared):
            raise InputShapeError(
                f"the input must have a batch axis, a sample axis and every axis of `shared_axes`. "
                f"Received: shared_axes={self.shared_axes}, input shape={tuple(input_shape)}."
            )
        missing = [i for i in range(1, rank) if i not in shared and input_shape[i] is None]
        if missing:
            raise InputShapeError(
                f"the sizes of the axes `alpha` does not share must be known to build. Received: input shape={tuple(input_shape)}."
            )
        self.LAYOUT = prelu_layout(rank)  # this instance's declaration: alpha has one axis per sample axis
        self.input_spec = InputSpec(ndim=rank, axes={i: input_shape[i] for i in range(1, rank) if i not in shared})
        return {f"d{i}": 1 if i in shared else input_shape[i] for i in range(1, rank)}

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten._prelu_kernel(inputs, self.alpha)

    @classmethod
    def onnx_translations(cls) -> dict[Any, Callable[..., Any]]:
        # torch 2.13's table translates `_prelu_kernel` as `prelu` (a per-channel slope on axis 1,
        # reshaped to (1, C, 1, ...)); the kernel's weight already broadcasts, as ONNX's PRelu takes it.
        from onnxscript import opset18 as op  # onnxscript: only when exporting

        def prelu_kernel(inputs: Any, alpha: Any) -> Any:
            return op.PRelu(inputs, alpha)

        return {torch.ops.aten._prelu_kernel.default: prelu_kernel}

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._weight_argument_config(), "shared_axes": self.shared_axes}


class ELU(Layer):
    """Exponential linear unit: ``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` below (``F.elu``).

    Args:
        alpha: scale of the negative section.
        **kwargs: base `Layer` arguments.

    Input shape:
        any.

    Output shape:
        the input's.

    Example:
        >>> ELU(alpha=0.5)(torch.tensor([[0.0, 1.0]]))
        tensor([[0., 1.]])
    """

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha = _number("alpha", alpha)
        self.supports_masking = True

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return activations.elu(inputs, alpha=self.alpha)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


class Softmax(Layer):
    """Softmax over ``axis``: ``exp(x) / sum(exp(x), axis)`` (``F.softmax`` for one axis).

    With a ``mask`` (True, or > 0.5, to keep), as Keras: masked inputs are replaced by
    -1e9 (-3e4 in float16) before the softmax and masked outputs set to 0 after it, so a
    row with every entry masked is all zeros.

    Args:
        axis: an axis, or a tuple/list of axes normalized together.
        **kwargs: base `Layer` arguments.

    Call arguments:
        inputs: the logits.
        mask: boolean (or numeric, > 0.5 keeps) mask broadcastable to ``inputs``: no more
            axes than ``inputs``, and each axis (aligned from the last) of size 1 or the
            input's.

    Input shape:
        any.

    Output shape:
        the input's.

    Example:
        >>> Softmax()(torch.tensor([[1.0, 2.0, 1.0]]))
        tensor([[0.2119, 0.5761, 0.2119]])
    """

    def __init__(self, axis: int | Sequence[int] = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            valid = len(axis) > 0 and all(not isinstance(a, bool) and isinstance(a, numbers.Integral) for a in axis)
            axis = tuple(int(a) for a in axis) if valid else axis
        else:
            valid = not isinstance(axis, bool) and isinstance(axis, numbers.Integral)
            axis = int(axis) if valid else axis
        if not valid:
            raise ArgumentTypeError(f"`axis` must be an int or a non-empty tuple of ints. Received: axis={axis!r}.")
        self.axis = axis
        self.supports_masking = True

    def _dims(self, rank: int, shape: tuple[int, ...]) -> int | tuple[int, ...]:
        axes = self.axis if isinstance(self.axis, tuple) else (self.axis,)
        if not all(-rank <= a < rank for a in axes) or len({a % rank for a in axes}) != len(axes):
            raise InputShapeError(
                f"`axis` must name distinct axes of the input (from {-rank} to {rank - 1}). "
                f"Received: axis={self.axis}, input shape={shape}."
            )
        return axes[0] if len(axes) == 1 else axes

    def call(self, inputs: torch.Tensor, mask: Any = None) -> torch.Tensor:
        dims = self._dims(inputs.dim(), tuple(inputs.shape))
        if mask is not None:
            mask = self._keep(mask, inputs)
            inputs = inputs.masked_fill(~mask, -3e4 if inputs.dtype == torch.float16 else -1e9)
        outputs = activations.softmax(inputs, axis=dims)
        return outputs if mask is None else outputs.masked_fill(~mask, 0.0)

    def _keep(self, mask: Any, inputs: torch.Tensor) -> torch.Tensor:
        """The mask as booleans (True keeps), after Keras's broadcast checks."""
        mask = mask if isinstance(mask, torch.Tensor) else self._as_tensor(mask)
        shapes = f"Received: inputs.shape={tuple(inputs.shape)}, mask.shape={tuple(mask.shape)}."
        if mask.dim() > inputs.dim():
            raise InputShapeError(f"the `mask` must be broadcastable to `inputs` and must not have more dimensions. {shapes}")
        if any(m != 1 and m != i for m, i in zip(reversed(mask.shape), reversed(inputs.shape))):
            raise InputShapeError(f"the `mask` must be broadcastable to `inputs`: each mask axis must be 1 or the input's size. {shapes}")
        if mask.dtype != torch.bool:
            mask = mask > 0.5
        return mask.to(inputs.device)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}

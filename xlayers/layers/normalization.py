"""Normalization layers: BatchNormalization, LayerNormalization, GroupNormalization, UnitNormalization, RMSNormalization.

Each layer normalizes over Keras's axes with Keras's formula and hands the work to torch's
fused kernel where that kernel computes the same thing on the same axes: ``F.batch_norm``
and ``F.group_norm`` on a channels-first *view* of a channels-last input (one flattened
spatial axis, laid out as torch's ``channels_last``: no copy), ``F.layer_norm`` and
``F.rms_norm`` when the normalized axes are the trailing ones. Other axes take Keras's own
formula in torch ops.

The numerical kernels are the module-level functions below (``batch_norm``,
``batch_norm_training``, ``update_moving``, ``layer_norm``, ``group_norm``,
``rms_norm``): the layers call them by name, so a planted fault can replace one.
"""

from __future__ import annotations

import dataclasses
import operator
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import initializers
from ..errors import ArgumentError, ArgumentTypeError, InputShapeError
from ..layer import InputSpec, Layer, Shape
from ..layout import Weight

__all__ = [
    "BatchNormalization",
    "GroupNormalization",
    "LayerNormalization",
    "RMSNormalization",
    "UnitNormalization",
    "batch_norm",
    "batch_norm_training",
    "channels_first_view",
    "group_norm",
    "layer_norm",
    "rms_norm",
    "update_moving",
]

# Keras's `backend.epsilon()`: the masked moments divide by `count + 1e-7`.
_KERAS_EPSILON = 1e-7


# -- argument checks ----------------------------------------------------------------------------


def _int(argument: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ArgumentTypeError(f"`{argument}` must be an int. Received: {argument}={value!r}.")
    try:
        return operator.index(value)
    except TypeError:
        raise ArgumentTypeError(f"`{argument}` must be an int. Received: {argument}={value!r}.") from None


def _axes_argument(value: Any) -> int | list[int]:
    """Keras's ``axis`` of LayerNormalization, UnitNormalization, RMSNormalization: an int or a
    list/tuple of ints (kept as a list), without repeats."""
    if isinstance(value, (list, tuple)):
        if not value or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in value):
            raise ArgumentTypeError(f"`axis` must be an int or a non-empty list of ints. Received: axis={value!r}.")
        axes = [int(v) for v in value]
        if len(set(axes)) != len(axes):
            raise ArgumentError(f"`axis` must not name an axis twice. Received: axis={value!r}.")
        return axes
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ArgumentTypeError(f"`axis` must be an int or a non-empty list of ints. Received: axis={value!r}.")
    return int(value)


def _number(argument: str, value: Any, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ArgumentTypeError(f"`{argument}` must be a number. Received: {argument}={value!r}.")
    if not value >= low:
        raise ArgumentError(f"`{argument}` must be >= {low:g}. Received: {argument}={value!r}.")
    return float(value)


def _flag(argument: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"`{argument}` must be a bool. Received: {argument}={value!r}.")
    return bool(value)


def _positive_axes(axes: Sequence[int], input_shape: Shape, argument: str = "axis") -> list[int]:
    """``axes`` counted from the front of an input of ``input_shape``; an axis outside the
    input's rank is an :class:`InputShapeError`."""
    rank = len(input_shape)
    for axis in axes:
        if not -rank <= axis < rank:
            shown = axes[0] if len(axes) == 1 else list(axes)
            raise InputShapeError(
                f"`{argument}` must name axes of the input, in [-{rank}, {rank}). "
                f"Received: {argument}={shown}, input shape={tuple(input_shape)}."
            )
    return [axis % rank for axis in axes]


def _same_shape(axes: Sequence[int], input_shape: Shape) -> Shape:
    """``compute_output_shape`` of every normalization: the input's shape, once ``axes`` fit it."""
    _positive_axes(list(axes), tuple(input_shape))
    return tuple(input_shape)


def _feature_sizes(axes: Sequence[int], input_shape: Shape) -> dict[str, int]:
    """Sizes of the ``features`` axes of a weight over ``axes`` (Keras: one size per axis)."""
    sizes = [input_shape[axis] for axis in axes]
    if any(size is None for size in sizes):
        raise InputShapeError(f"the normalized axes of the input must be known to build. Received: input shape={tuple(input_shape)}.")
    return {"features": sizes[0]} if len(sizes) == 1 else {f"features_{i}": size for i, size in enumerate(sizes)}


def _layout_over(layout: tuple[Weight, ...], count: int) -> tuple[Weight, ...]:
    """The layer's weights over ``count`` normalized axes: one ``features`` axis (the class's
    declaration) or ``features_0 ... features_{count-1}``, as Keras shapes them."""
    if count == 1:
        return layout
    axes = tuple(f"features_{i}" for i in range(count))
    return tuple(dataclasses.replace(weight, axes=axes) for weight in layout)


# -- views --------------------------------------------------------------------------------------


def channels_first_view(x: torch.Tensor, axis: int) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """``x`` as an ``(N, C, ...)`` view with the normalized axis ``axis`` (>= 0) second, for
    torch's per-channel kernels, and the function that puts a result back in ``x``'s layout.

    A channels-last 4-D or 5-D input becomes its ``permute`` view, laid out as torch's
    ``channels_last`` / ``channels_last_3d``, which its CPU and CUDA kernels take without a
    copy; other ranks become ``(N, C, S, 1)`` with ``S`` the flattened spatial axes, the same
    memory laid out as ``channels_last``."""
    rank = x.ndim
    if rank == 1:
        return x.unsqueeze(0), lambda y: y.squeeze(0)
    if axis == 1:
        return x, lambda y: y
    if axis != rank - 1:
        return x.movedim(axis, 1), lambda y: y.movedim(1, axis)
    if rank in (4, 5):  # torch's channels_last / channels_last_3d
        order = (0, rank - 1, *range(1, rank - 1))
        inverse = (0, *range(2, rank), 1)
        return x.permute(order), lambda y: y.permute(inverse)
    shape = x.shape
    flat = x if rank == 3 else x.reshape(shape[0], -1, shape[-1])
    view = flat.permute(0, 2, 1).unsqueeze(-1)  # (N, C, S, 1), channels_last
    return view, lambda y: y.squeeze(-1).permute(0, 2, 1).reshape(shape)


def _broadcast(weight: torch.Tensor | None, shape: Sequence[int]) -> torch.Tensor | None:
    return None if weight is None else weight.reshape(shape)


# -- kernels (module level: the layers call them by name) -------------------------------------


def batch_norm(view: torch.Tensor, mean: torch.Tensor, variance: torch.Tensor, gamma: torch.Tensor | None,
               beta: torch.Tensor | None, epsilon: float) -> torch.Tensor:
    """``(x - mean) / sqrt(variance + epsilon) * gamma + beta`` per channel (axis 1) with given
    statistics: torch's fused inference kernel (which never touches ``mean``/``variance``)."""
    return F.batch_norm(view, mean, variance, gamma, beta, False, 0.0, epsilon)


def batch_norm_training(view: torch.Tensor, gamma: torch.Tensor | None, beta: torch.Tensor | None,
                        epsilon: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The same with the batch's own mean and biased variance over every axis but 1, gradients
    flowing through them: torch's fused training kernel, given no running statistics to update.

    Returns the outputs and the batch's ``(mean, variance)`` (biased, as Keras's ``ops.moments``),
    detached, for the moving averages: the kernel's own statistics (no second pass over the
    batch), the variance recovered in float64 from the inverse standard deviation it saves."""
    outputs, mean, invstd = torch.native_batch_norm(view, gamma, beta, None, None, True, 0.0, epsilon)
    variance = invstd.detach().double().pow(-2).sub(epsilon).clamp(min=0.0).to(view.dtype)
    return outputs, mean.detach().to(view.dtype), variance


class _DenseGradient(torch.autograd.Function):
    """The identity, whose incoming gradient is made dense before it flows on."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous()


def dense_gradient(x: torch.Tensor) -> torch.Tensor:
    """``x``, with its gradient made contiguous on the way back. torch's CPU batch-norm backward
    takes a slow path for a broadcast (stride-0) gradient, as ``output.sum()`` or ``mean()`` gives:
    measured on 32x56x56x64 channels-last, 275 ms against 24 ms for a contiguous one (32 ms with
    this copy). Under ``torch.compile`` the kernel is not used (inductor writes its own): ``x`` as it is."""
    if torch.compiler.is_compiling() or not (x.requires_grad and torch.is_grad_enabled()):
        return x
    return _DenseGradient.apply(x)


def update_moving(moving: torch.Tensor, batch: torch.Tensor, momentum: float) -> None:
    """Keras's moving average, in place: ``moving = moving * momentum + batch * (1 - momentum)``."""
    moving.copy_(moving * momentum + batch.to(moving.dtype) * (1.0 - momentum))


def _normalize(x: torch.Tensor, mean: torch.Tensor, variance: torch.Tensor, gamma: torch.Tensor | None,
               beta: torch.Tensor | None, epsilon: float) -> torch.Tensor:
    """TF's ``tf.nn.batch_normalization`` (and Keras's layer-norm formula), broadcast tensors:
    ``inv = rsqrt(variance + epsilon) * gamma``; ``x * inv + (beta - mean * inv)``."""
    inv = torch.rsqrt(variance + epsilon)
    if gamma is not None:
        inv = inv * gamma
    offset = -mean * inv
    if beta is not None:
        offset = offset + beta
    return x * inv + offset


def layer_norm(x: torch.Tensor, axes: Sequence[int], gamma: torch.Tensor | None, beta: torch.Tensor | None,
               epsilon: float) -> torch.Tensor:
    """Keras's ``ops.layer_normalization`` over ``axes`` (Keras's sorted list): ``F.layer_norm``
    when they are the trailing axes in order, else Keras's formula with ``gamma``/``beta``
    reshaped onto the input's rank as Keras reshapes them."""
    rank = x.ndim
    dims = [axis % rank for axis in axes]
    if dims == list(range(rank - len(dims), rank)):
        return F.layer_norm(x, tuple(x.shape[rank - len(dims):]), gamma, beta, epsilon)
    shape = [1] * rank
    for axis in axes:
        shape[axis] = x.shape[axis]
    variance, mean = torch.var_mean(x, dims, correction=0, keepdim=True)
    return _normalize(x, mean, variance, _broadcast(gamma, shape), _broadcast(beta, shape), epsilon)


def _rms_scaled(x: torch.Tensor, axes: Sequence[int], gamma: torch.Tensor | None, epsilon: float) -> torch.Tensor:
    """Keras 3's deprecated ``rms_scaling=True`` of LayerNormalization: ``x * rsqrt(var(x) + epsilon)
    * gamma`` with the *centred* (biased) variance, not the mean square, and no centring."""
    rank = x.ndim
    dims = [axis % rank for axis in axes]
    variance = torch.var(x, dims, correction=0, keepdim=True)
    outputs = x * torch.rsqrt(variance + epsilon)
    if gamma is not None:
        shape = [1] * rank
        for axis in axes:
            shape[axis] = x.shape[axis]
        outputs = outputs * gamma.reshape(shape)
    return outputs


def group_norm(view: torch.Tensor, groups: int, gamma: torch.Tensor | None, beta: torch.Tensor | None, epsilon: float) -> torch.Tensor:
    """Group normalization of a channels-first view: channels ``[g * C/G, (g + 1) * C/G)`` form
    group ``g`` (contiguous, as Keras reshapes ``C`` into ``(G, C/G)``), biased variance."""
    return F.group_norm(view, groups, gamma, beta, epsilon)


def rms_norm(x: torch.Tensor, axes: Sequence[int], scale: torch.Tensor, epsilon: float) -> torch.Tensor:
    """``x * rsqrt(mean(x**2 over axes) + epsilon) * scale``: ``F.rms_norm`` over trailing axes,
    else the same formula with ``scale`` reshaped onto the normalized axes."""
    rank = x.ndim
    dims = [axis % rank for axis in axes]
    if dims == list(range(rank - len(dims), rank)):
        return F.rms_norm(x, tuple(x.shape[rank - len(dims):]), scale, epsilon)
    shape = [1] * rank
    for axis in axes:
        shape[axis] = x.shape[axis]
    return x * torch.rsqrt(x.square().mean(dims, keepdim=True) + epsilon) * scale.reshape(shape)


# -- layers -------------------------------------------------------------------------------------


class _AffineNormalization(Layer):
    """What BatchNormalization, LayerNormalization and GroupNormalization share: ``epsilon``,
    ``center`` (``beta``) and ``scale`` (``gamma``) with their initializers, regularizers
    and constraints, Keras's configuration of them, and mask propagation."""

    def _init_affine(self, epsilon: Any, center: Any, scale: Any, arguments: Mapping[str, Any]) -> None:
        self.epsilon = _number("epsilon", epsilon)
        self.center = _flag("center", center)
        self.scale = _flag("scale", scale)
        self._set_weight_arguments(arguments)
        self.supports_masking = True

    def _affine(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(gamma, beta)``, each ``None`` where the configuration has none."""
        names = {w.name for w in self.declared_weights()}
        return (self.gamma if "gamma" in names else None, self.beta if "beta" in names else None)

    def _affine_config(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "center": self.center, "scale": self.scale, **self._weight_argument_config()}


class BatchNormalization(_AffineNormalization):
    """Batch normalization, as ``keras.layers.BatchNormalization``.

    Training (``training=True`` on a trainable layer) normalizes with the batch's mean and
    biased variance over every axis but ``axis``, ``gamma * (x - mean) / sqrt(var + epsilon)
    + beta``, and updates the moving statistics Keras's way: ``moving = moving * momentum +
    batch * (1 - momentum)`` with the biased batch variance (torch's ``running_var`` takes the
    unbiased one and ``1 - momentum``: torch never updates them here). Inference, and any call
    on a frozen layer (``trainable=False``, Keras's rule), uses ``moving_mean`` and
    ``moving_variance``. torch mapping: ``F.batch_norm`` on a channels-first view of the input
    (no copy); the moving statistics are updated by xlayers.

    Args:
        axis: the features axis (``-1`` for channels-last, ``1`` for channels-first).
        momentum: momentum of the moving averages.
        epsilon: small float added to the variance.
        center: whether to add ``beta``.
        scale: whether to multiply by ``gamma``.
        beta_initializer: initializer for ``beta``.
        gamma_initializer: initializer for ``gamma``.
        moving_mean_initializer: initializer for ``moving_mean``.
        moving_variance_initializer: initializer for ``moving_variance``.
        beta_regularizer: regularizer for ``beta``.
        gamma_regularizer: regularizer for ``gamma``.
        beta_constraint: constraint for ``beta``.
        gamma_constraint: constraint for ``gamma``.
        renorm: only ``False`` (batch renormalization is not supported).
        renorm_clipping: only ``None``.
        renorm_momentum: reported in the configuration only.
        synchronized: only ``False`` (one device).
        **kwargs: base `Layer` arguments (``name``, ``trainable``, ``dtype``, ...).

    Call arguments:
        inputs: a tensor of any rank.
        training: whether to normalize with the batch's statistics and update the moving ones.
        mask: ``(batch, ...)``, one axis fewer than ``inputs``: in training, only the
            positions where it is true count towards the batch's statistics.

    Input shape:
        any; the size of ``axis`` is fixed at build.

    Output shape:
        same as the input.

    Weights:
        gamma: ``(channels,)``, if ``scale``.
        beta: ``(channels,)``, if ``center``.
        moving_mean: ``(channels,)``, non-trainable.
        moving_variance: ``(channels,)``, non-trainable.

    Example:
        >>> layer = BatchNormalization()
        >>> layer(torch.randn(4, 7, 9, 3), training=True).shape
        torch.Size([4, 7, 9, 3])
        >>> [tuple(w.shape) for w in layer.weights]
        [(3,), (3,), (3,), (3,)]
    """

    @classmethod
    def from_keras2_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """Keras 2 wrote ``axis`` as a list (``[3]``); Keras 3 takes the int."""
        config = super().from_keras2_config(config)
        if isinstance(config.get("axis"), list) and len(config["axis"]) == 1:
            config["axis"] = config["axis"][0]
        return config

    LAYOUT = (
        Weight("gamma", ("channels",), enabled_by="scale"),
        Weight("beta", ("channels",), enabled_by="center"),
        Weight("moving_mean", ("channels",), trainable=False),
        Weight("moving_variance", ("channels",), trainable=False),
    )

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        renorm: bool = False,
        renorm_clipping: Any = None,
        renorm_momentum: float = 0.99,
        synchronized: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.axis = _int("axis", axis)
        self.momentum = _number("momentum", momentum)
        self._init_affine(epsilon, center, scale, locals())
        if renorm or renorm_clipping is not None:
            raise ArgumentError(f"batch renormalization is not supported; `renorm` must be False. Received: renorm={renorm!r}.")
        self.renorm = False
        self.renorm_clipping = None
        self.renorm_momentum = _number("renorm_momentum", renorm_momentum)
        if synchronized:
            raise ArgumentError(f"`synchronized` must be False (statistics of one device). Received: synchronized={synchronized!r}.")
        self.synchronized = False
        self._axis = -1

    @classmethod
    def _weight_arguments(cls) -> list[tuple[str, Any]]:
        # Keras gives the moving statistics initializers only (no regularizer, no constraint)
        return [(name, module) for name, module in super()._weight_arguments() if name.endswith("_initializer") or not name.startswith("moving_")]

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        (self._axis,) = _positive_axes([self.axis], input_shape)
        channels = input_shape[self._axis]
        if channels is None:
            raise InputShapeError(f"the size of axis {self.axis} of the input must be known to build. Received: input shape={tuple(input_shape)}.")
        self.input_spec = InputSpec(ndim=len(input_shape), axes={self.axis: channels})
        return {"channels": channels}

    def uses_batch_statistics(self, training: bool | None) -> bool:
        """Keras's rule: the batch's statistics only in training mode on a trainable layer.
        ``training=None`` is the module's mode (torch's convention: ``model.eval()`` for inference)."""
        return bool(self.training if training is None else training) and self.trainable

    def call(self, inputs: torch.Tensor, training: bool | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None and mask.ndim != inputs.ndim - 1:
            raise InputShapeError(
                f"`mask` must have one axis fewer than the inputs. Received: mask shape={tuple(mask.shape)}, "
                f"input shape={tuple(inputs.shape)}."
            )
        gamma, beta = self._affine()
        if not self.uses_batch_statistics(training):
            view, back = channels_first_view(inputs, self._axis)
            return back(batch_norm(view, self.moving_mean, self.moving_variance, gamma, beta, self.epsilon))
        if mask is not None:
            return self._masked_training(inputs, mask, gamma, beta)
        view, back = channels_first_view(inputs, self._axis)
        if view.numel() > view.shape[1]:
            outputs, mean, variance = batch_norm_training(view, gamma, beta, self.epsilon)
        else:  # one value per channel: torch's kernel refuses; Keras's mean is the value, its variance 0
            shape = [1] * view.ndim
            shape[1] = view.shape[1]
            zero = torch.zeros_like(view)
            outputs = _normalize(view, view, zero, _broadcast(gamma, shape), _broadcast(beta, shape), self.epsilon)
            mean, variance = view.detach().reshape(-1), zero.reshape(-1)
        with torch.no_grad():
            self._update(mean, variance)
        return dense_gradient(back(outputs))

    def _masked_training(self, inputs: torch.Tensor, mask: torch.Tensor, gamma: torch.Tensor | None,
                         beta: torch.Tensor | None) -> torch.Tensor:
        """Keras's masked moments: ``sum(where(mask, x, 0)) / (count + 1e-7)``, the variance
        likewise about that mean, over every axis but ``axis``; the mask broadcast along the
        last axis."""
        keep = mask.unsqueeze(-1).expand(inputs.shape).bool()
        dims = [d for d in range(inputs.ndim) if d != self._axis]
        count = keep.to(inputs.dtype).sum(dims, keepdim=True) + _KERAS_EPSILON
        mean = torch.where(keep, inputs, 0).sum(dims, keepdim=True) / count
        variance = torch.where(keep, inputs - mean, 0).square().sum(dims, keepdim=True) / count
        shape = [1] * inputs.ndim
        shape[self._axis] = inputs.shape[self._axis]
        with torch.no_grad():
            self._update(mean.detach().reshape(-1), variance.detach().reshape(-1))
        return _normalize(inputs, mean, variance, _broadcast(gamma, shape), _broadcast(beta, shape), self.epsilon)

    def _update(self, mean: torch.Tensor, variance: torch.Tensor) -> None:
        update_moving(self.moving_mean, mean, self.momentum)
        update_moving(self.moving_variance, variance, self.momentum)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return _same_shape([self.axis], input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            **self._affine_config(),
            "synchronized": self.synchronized,
            "renorm": self.renorm,
            "renorm_clipping": self.renorm_clipping,
            "renorm_momentum": self.renorm_momentum,
        }


class _AxesNormalization(_AffineNormalization):
    """LayerNormalization's and RMSNormalization's ``axis``: an int or a list, stored as Keras
    stores it (sorted into a list at build); their weights span the normalized axes."""

    def _init_axes(self, axis: Any) -> None:
        self.axis = _axes_argument(axis)
        self.LAYOUT = _layout_over(type(self).LAYOUT, len(self.axis) if isinstance(self.axis, list) else 1)

    def _build_axes(self, input_shape: Shape) -> dict[str, int]:
        axes = sorted(self.axis) if isinstance(self.axis, list) else [self.axis]
        _positive_axes(axes, input_shape)
        self.axis = axes
        return _feature_sizes(axes, input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return _same_shape(self.axis if isinstance(self.axis, list) else [self.axis], input_shape)


class LayerNormalization(_AxesNormalization):
    """Layer normalization, as ``keras.layers.LayerNormalization``.

    Per sample, over ``axis``: ``gamma * (x - mean) / sqrt(var + epsilon) + beta`` (biased
    variance). torch mapping: ``F.layer_norm`` when ``axis`` is the trailing axes (the default
    ``-1``), else Keras's formula in torch ops. ``rms_scaling=True`` (deprecated in Keras 3)
    computes what Keras computes: ``x * rsqrt(var + epsilon) * gamma``, with the *centred*
    variance, no centring and no ``beta``.

    Args:
        axis: the axis or list of axes to normalize over (Keras keeps it as a sorted list
            once built).
        epsilon: small float added to the variance.
        center: whether to add ``beta``.
        scale: whether to multiply by ``gamma``.
        rms_scaling: Keras 3's deprecated variance scaling (see above).
        beta_initializer: initializer for ``beta``.
        gamma_initializer: initializer for ``gamma``.
        beta_regularizer: regularizer for ``beta``.
        gamma_regularizer: regularizer for ``gamma``.
        beta_constraint: constraint for ``beta``.
        gamma_constraint: constraint for ``gamma``.
        **kwargs: base `Layer` arguments.

    Input shape:
        any.

    Output shape:
        same as the input.

    Weights:
        gamma: ``(features,)``, if ``scale`` or ``rms_scaling`` (one axis per normalized axis).
        beta: ``(features,)``, if ``center`` and not ``rms_scaling``.

    Example:
        >>> layer = LayerNormalization()
        >>> layer(torch.randn(2, 5, 8)).shape
        torch.Size([2, 5, 8])
        >>> tuple(layer.gamma.shape), tuple(layer.beta.shape)
        ((8,), (8,))
    """

    LAYOUT = (
        Weight("gamma", ("features",), enabled_by="_has_gamma"),
        Weight("beta", ("features",), enabled_by="_has_beta"),
    )

    def __init__(
        self,
        axis: int | Sequence[int] = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        rms_scaling: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._init_axes(axis)
        self._init_affine(epsilon, center, scale, locals())
        self.rms_scaling = _flag("rms_scaling", rms_scaling)
        if self.rms_scaling:
            warnings.warn(
                "`rms_scaling=True` is deprecated in Keras 3: it scales by the variance, not the root mean square "
                "(use `RMSNormalization` for RMS normalization).",
                DeprecationWarning,
                stacklevel=3,
            )

    @property
    def _has_gamma(self) -> bool:
        return self.scale or self.rms_scaling

    @property
    def _has_beta(self) -> bool:
        return self.center and not self.rms_scaling

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        return self._build_axes(input_shape)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        gamma, beta = self._affine()
        if self.rms_scaling:
            return _rms_scaled(inputs, self.axis, gamma, self.epsilon)
        return layer_norm(inputs, self.axis, gamma, beta, self.epsilon)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis, **self._affine_config(), "rms_scaling": self.rms_scaling}


class GroupNormalization(_AffineNormalization):
    """Group normalization, as ``keras.layers.GroupNormalization``.

    The ``C`` channels of ``axis`` split into ``groups`` contiguous groups of ``C / groups``;
    each sample is normalized per group over the group's channels and every other axis
    (biased variance), then ``gamma``/``beta`` apply per channel. ``groups=-1`` is one group
    per channel (instance normalization; Keras then reports ``groups=C``). torch mapping:
    ``F.group_norm`` on a channels-first view of the input (no copy for channels-last).

    Args:
        groups: number of groups (``-1``: one per channel).
        axis: the channels axis.
        epsilon: small float added to the variance.
        center: whether to add ``beta``.
        scale: whether to multiply by ``gamma``.
        beta_initializer: initializer for ``beta``.
        gamma_initializer: initializer for ``gamma``.
        beta_regularizer: regularizer for ``beta``.
        gamma_regularizer: regularizer for ``gamma``.
        beta_constraint: constraint for ``beta``.
        gamma_constraint: constraint for ``gamma``.
        **kwargs: base `Layer` arguments.

    Input shape:
        rank >= 2; the size of ``axis`` is fixed at build and divisible by ``groups``.

    Output shape:
        same as the input.

    Weights:
        gamma: ``(channels,)``, if ``scale``.
        beta: ``(channels,)``, if ``center``.

    Example:
        >>> layer = GroupNormalization(groups=2)
        >>> layer(torch.randn(2, 7, 9, 6)).shape
        torch.Size([2, 7, 9, 6])
        >>> tuple(layer.gamma.shape)
        (6,)
    """

    LAYOUT = (
        Weight("gamma", ("channels",), enabled_by="scale"),
        Weight("beta", ("channels",), enabled_by="center"),
    )

    def __init__(
        self,
        groups: int = 32,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.groups = _int("groups", groups)
        if self.groups <= 0 and self.groups != -1:
            raise ArgumentError(
                f"`groups` must be a positive integer (or -1 for instance normalization). Received: groups={groups!r}."
            )
        self.axis = _int("axis", axis)
        self._init_affine(epsilon, center, scale, locals())
        self._axis = -1

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        (self._axis,) = _positive_axes([self.axis], input_shape)
        channels = input_shape[self._axis]
        if channels is None:
            raise InputShapeError(f"the size of axis {self.axis} of the input must be known to build. Received: input shape={tuple(input_shape)}.")
        groups = channels if self.groups == -1 else self.groups
        if channels < groups:
            raise InputShapeError(
                f"`groups` must not exceed the number of channels ({channels}). Received: groups={groups}, "
                f"input shape={tuple(input_shape)}."
            )
        if channels % groups:
            raise InputShapeError(
                f"the number of channels ({channels}) must be a multiple of `groups`. Received: groups={groups}, "
                f"input shape={tuple(input_shape)}."
            )
        self.groups = groups
        self.input_spec = InputSpec(ndim=len(input_shape), axes={self.axis: channels})
        return {"channels": channels}

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        gamma, beta = self._affine()
        view, back = channels_first_view(inputs, self._axis)
        return back(group_norm(view, self.groups, gamma, beta, self.epsilon))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return _same_shape([self.axis], input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "groups": self.groups, "axis": self.axis, **self._affine_config()}


class UnitNormalization(Layer):
    """Scales each sample to unit L2 norm over ``axis``, as ``keras.layers.UnitNormalization``:
    ``x * min(rsqrt(sum(x**2 over axis)), 1e12)`` (Keras's ``ops.normalize`` with epsilon
    ``1e-12``), in torch ops.

    Args:
        axis: the axis or list of axes to normalize over.
        **kwargs: base `Layer` arguments.

    Input shape:
        any.

    Output shape:
        same as the input.

    Example:
        >>> layer = UnitNormalization()
        >>> float(layer(torch.tensor([[3.0, 4.0]])).square().sum())
        1.0
    """

    def __init__(self, axis: int | Sequence[int] = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = _axes_argument(axis)
        self.supports_masking = True

    def _axes(self) -> list[int]:
        return self.axis if isinstance(self.axis, list) else [self.axis]

    def build(self, input_shape: Shape) -> None:
        _positive_axes(self._axes(), input_shape)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        dims = [axis % inputs.ndim for axis in self._axes()]
        bound = min(1e12, torch.finfo(inputs.dtype).max)  # Keras's 1 / 1e-12; float16 cannot hold it
        return inputs * torch.rsqrt(inputs.square().sum(dims, keepdim=True)).clamp(max=bound)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return _same_shape(self._axes(), input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


class RMSNormalization(_AxesNormalization):
    """Root-mean-square normalization, as ``keras.layers.RMSNormalization``:
    ``x * rsqrt(mean(x**2 over axis) + epsilon) * scale``. torch mapping: ``F.rms_norm`` when
    ``axis`` is the trailing axes, else the same formula with ``scale`` on the normalized axes.

    Args:
        axis: the axis or list of axes to normalize over (a sorted list once built).
        epsilon: small float added to the mean square.
        **kwargs: base `Layer` arguments.

    Input shape:
        any.

    Output shape:
        same as the input.

    Weights:
        scale: ``(features,)``, initialized to ones (one axis per normalized axis).

    Example:
        >>> layer = RMSNormalization()
        >>> layer(torch.randn(2, 5, 8)).shape
        torch.Size([2, 5, 8])
        >>> tuple(layer.scale.shape)
        (8,)
    """

    LAYOUT = (Weight("scale", ("features",)),)

    def __init__(self, axis: int | Sequence[int] = -1, epsilon: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._init_axes(axis)
        self.epsilon = _number("epsilon", epsilon)
        self.scale_initializer = initializers.get("ones")  # Keras's, fixed

    @classmethod
    def _weight_arguments(cls) -> list[tuple[str, Any]]:
        return []  # Keras takes no initializer, regularizer or constraint for `scale`

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        return self._build_axes(input_shape)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return rms_norm(inputs, self.axis, self.scale, self.epsilon)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}

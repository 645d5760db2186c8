"""Preprocessing layers that live inside models: Rescaling and Normalization."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

from .. import initializers
from ..errors import ArgumentError, ArgumentTypeError, InputShapeError
from ..layer import InputSpec, Layer, Shape
from ..layout import Weight

__all__ = ["EPSILON", "Normalization", "Rescaling"]

EPSILON = 1e-7  # keras.config.epsilon()


def _numbers(name: str, value: Any) -> Any:
    """A number or a (nested) list of numbers, as given (numpy arrays become lists)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    array = np.asarray(value) if not isinstance(value, bool) else np.asarray("bool")
    if array.dtype.kind not in "iuf":
        raise ArgumentTypeError(f"`{name}` must be a number or a list of numbers. Received: {name}={value!r}.")
    return array.tolist() if isinstance(value, (np.ndarray, np.generic, list, tuple)) else value


def _rescale(inputs: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """Keras's ``inputs * scale + offset``."""
    return inputs * scale + offset


def _stddev(variance: torch.Tensor) -> torch.Tensor:
    """Keras's divisor ``max(sqrt(variance), epsilon)`` (a NaN stays NaN, as ``tf.maximum``)."""
    return torch.clamp(torch.sqrt(variance), min=EPSILON)


class Rescaling(Layer):
    """Rescales inputs: ``outputs = inputs * scale + offset``.

    ``scale`` and ``offset`` are numbers or lists that broadcast against the input's trailing
    axes (per channel for channels-last images, as ``keras.applications`` uses them). Inputs,
    integer images included, are cast to the layer's dtype first. Keras reshapes a list
    ``scale`` for channels-first images only under the global ``image_data_format``
    setting; xlayers has no global setting: pass a shape that broadcasts (``[[[s]], ...]``).

    Args:
        scale: number or list of numbers, the multiplier.
        offset: number or list of numbers, added after scaling.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ...).

    Input shape:
        Any.

    Output shape:
        The input's.

    Example:
        >>> layer = Rescaling(scale=[1 / 58.4, 1 / 57.1, 1 / 57.4], offset=[-2.1, -2.0, -1.8])
        >>> layer(torch.randint(0, 256, (2, 4, 5, 3), dtype=torch.uint8)).dtype
        torch.float32
    """

    def __init__(self, scale: Any, offset: Any = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = _numbers("scale", scale)
        self.offset = _numbers("offset", offset)
        self.supports_masking = True
        self._constants: dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs.to(self.compute_dtype)
        key = (x.dtype, x.device)
        if key not in self._constants:
            self._constants[key] = tuple(torch.tensor(v, dtype=x.dtype, device=x.device) for v in (self.scale, self.offset))
        scale, offset = self._constants[key]
        return _rescale(x, scale, offset)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


class Normalization(Layer):
    """Normalizes features: ``outputs = (inputs - mean) / max(sqrt(variance), 1e-7)``, or with
    ``invert`` ``outputs = mean + inputs * max(sqrt(variance), 1e-7)`` (Keras's epsilon).

    ``mean`` and ``variance`` come from the constructor (then the layer holds no weights, and
    a value of lower rank aligns with the kept axes from the right, as Keras), or are the
    non-trainable weights ``mean``, ``variance`` (shape: the kept axes' sizes) and ``count``
    (int64, kept for Keras's files) that `adapt` fills (``count`` stays 0, as in Keras).

    Args:
        axis: int, tuple of ints or None: the axes that keep a separate mean and variance per
            index (default ``-1``, the features); ``None`` uses one scalar for everything.
        mean, variance: numbers or lists, given together, or neither.
        invert: apply the inverse transformation (turn normalized values back).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ...).

    Input shape:
        Any, with known sizes on the kept axes.

    Output shape:
        The input's.

    Weights:
        mean: ``(kept,)``, the kept axis's size (``axis=-1``); with several kept axes
            ``(kept0, kept1, ...)``, with ``axis=None`` ``()``; only without ``mean`` in the config.
        variance: ``(kept,)``, the same shape as ``mean``.
        count: ``()``, int64 (made by ``add_weight``, not declared: it has no axes).

    Example:
        >>> layer = Normalization(axis=-1, mean=[0.5, 1.0, -1.0], variance=[4.0, 1.0, 0.25])
        >>> layer(torch.zeros(2, 3))[0]
        tensor([-0.2500, -1.0000,  2.0000])
    """

    LAYOUT = (
        Weight("mean", ("kept",), trainable=False),
        Weight("variance", ("kept",), trainable=False),
    )

    def __init__(self, axis: int | Iterable[int] | None = -1, mean: Any = None, variance: Any = None,
                 invert: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if axis is None:
            axes: tuple[int, ...] = ()
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            axes = (int(axis),)
        else:
            try:
                axes = tuple(axis)
            except TypeError:
                axes = (None,)
            if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
                raise ArgumentTypeError(f"`axis` must be an int, a tuple of ints or None. Received: axis={axis!r}.")
            axes = tuple(int(a) for a in axes)
        self.axis = axes
        if (mean is None) != (variance is None):
            raise ArgumentError(f"`mean` and `variance` must be set together. Received: mean={mean!r}, variance={variance!r}.")
        if mean is not None:
            mean, variance = _numbers("mean", mean), _numbers("variance", variance)
            if np.shape(mean) != np.shape(variance):
                raise ArgumentError(
                    f"`mean` and `variance` must have the same shape. Received: mean shape={np.shape(mean)}, "
                    f"variance shape={np.shape(variance)}."
                )
            if np.ndim(mean) > len(axes):
                raise ArgumentError(
                    f"the rank of `mean` must be at most the number of axes ({len(axes)}). "
                    f"Received: mean shape={np.shape(mean)}, axis={axes}."
                )
        self.input_mean = mean
        self.input_variance = variance
        self.invert = bool(invert)
        self.supports_masking = True
        self.mean_initializer = initializers.get("zeros")
        self.variance_initializer = initializers.get("ones")
        self.count_initializer = initializers.get("zeros")
        self._keep_axis: tuple[int, ...] = ()
        self._broadcast_shape: tuple[int, ...] = ()

    # -- declaration: the kept axes decide the weights' rank -------------------------------

    def _kept_names(self) -> tuple[str, ...]:
        return ("kept",) if len(self._keep_axis) == 1 else tuple(f"kept{i}" for i in range(len(self._keep_axis)))

    def declared_weights(self) -> list[Weight]:
        if self.input_mean is not None or not self._keep_axis:  # no kept axes: 0-d, made in _create_declared_weights
            return []
        names = self._kept_names()
        return [dataclasses.replace(w, axes=names) for w in self.LAYOUT]

    def _create_declared_weights(self, sizes: Mapping[str, int] | None) -> None:
        super()._create_declared_weights(sizes)
        if sizes is not None and not self._keep_axis:  # axis=None: scalar statistics
            self.add_weight((), initializer="zeros", trainable=False, name="mean")
            self.add_weight((), initializer="ones", trainable=False, name="variance")
        if sizes is not None:
            # Keras's int64 ``count`` (kept for its files; adapt leaves it 0), after mean and variance as
            # in Keras's order. Made by ``add_weight`` rather than declared: a 0-d integer weight has no
            # axes to declare, and the shared comparison of declared weights takes arrays of rank >= 1
            # (so are the scalar mean and variance of axis=None).
            self.add_weight((), initializer="zeros", dtype=torch.int64, trainable=False, name="count")

    def build(self, input_shape: Shape) -> Mapping[str, int] | None:
        ndim = len(input_shape)
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ArgumentError(f"every `axis` must be in [-{ndim}, {ndim}) for the input's rank. Received: axis={self.axis}, input shape={tuple(input_shape)}.")
        self._keep_axis = tuple(sorted(a % ndim for a in self.axis))
        unknown = [d for d in self._keep_axis if input_shape[d] is None]
        if unknown:
            raise InputShapeError(f"the kept axes must have known sizes. Received: axis={self.axis}, input shape={tuple(input_shape)}.")
        self._broadcast_shape = tuple(input_shape[d] if d in self._keep_axis else 1 for d in range(ndim))
        self.input_spec = InputSpec(ndim=ndim, axes={d: input_shape[d] for d in self._keep_axis})
        if self.input_mean is None:
            return dict(zip(self._kept_names(), (input_shape[d] for d in self._keep_axis)))
        mean, variance = np.asarray(self.input_mean, np.float64), np.asarray(self.input_variance, np.float64)
        if mean.ndim:
            expanded = [1] * ndim
            for i in range(1, mean.ndim + 1):
                expanded[self._keep_axis[-i]] = mean.shape[-i]
            mean, variance = mean.reshape(expanded), variance.reshape(expanded)
        try:
            mean = np.broadcast_to(mean, self._broadcast_shape)
            variance = np.broadcast_to(variance, self._broadcast_shape)
        except ValueError:
            raise ArgumentError(
                f"`mean` and `variance` of shape {np.shape(self.input_mean)} do not broadcast to the kept axes "
                f"{self._broadcast_shape}. Received: axis={self.axis}, input shape={tuple(input_shape)}."
            ) from None
        dtype = self.compute_dtype
        self.register_buffer("_mean", torch.tensor(mean, dtype=dtype), persistent=False)
        self.register_buffer("_variance", torch.tensor(variance, dtype=dtype), persistent=False)
        return None

    def _statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.input_mean is not None:
            return self._mean, self._variance
        return self.mean.reshape(self._broadcast_shape), self.variance.reshape(self._broadcast_shape)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs.to(self.compute_dtype)
        mean, variance = (t.to(x.dtype) for t in self._statistics())
        if self.invert:
            return mean + x * _stddev(variance)
        return (x - mean) / _stddev(variance)

    def adapt(self, data: Any) -> None:
        """Set ``mean`` and ``variance`` from ``data``: an array or tensor, or an iterable of
        batches (combined as Keras does). Builds the layer on the data's shape if needed."""
        if isinstance(data, (np.ndarray, torch.Tensor)):
            batches = [data]
        else:
            batches = list(data)
            if not batches:
                raise ArgumentError("`adapt` needs at least one batch. Received: an empty iterable.")
        arrays = [b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else np.asarray(b) for b in batches]
        if self.input_mean is not None:
            raise ArgumentError("`adapt` cannot change a `mean` and `variance` given to the constructor. Received: mean set.")
        if not self.built:
            self._build(tuple(arrays[0].shape), device=None)
        for array in arrays:
            self.input_spec.check(self, array.shape)
        reduce = tuple(d for d in range(arrays[0].ndim) if d not in self._keep_axis)
        if len(arrays) == 1:
            total_mean, total_var = arrays[0].mean(axis=reduce), arrays[0].var(axis=reduce)
        else:
            total_mean = total_var = 0.0
            total = 0
            for array in arrays:
                batch_mean, batch_var = array.mean(axis=reduce), array.var(axis=reduce)
                count = math.prod(array.shape[d] for d in reduce) if reduce else 1
                total += count
                weight = float(count) / total
                new_mean = total_mean * (1.0 - weight) + batch_mean * weight
                total_var = (total_var + (total_mean - new_mean) ** 2) * (1.0 - weight) + (batch_var + (batch_mean - new_mean) ** 2) * weight
                total_mean = new_mean
        with torch.no_grad():
            self.mean.copy_(torch.as_tensor(np.asarray(total_mean)).reshape(self.mean.shape))
            self.variance.copy_(torch.as_tensor(np.asarray(total_var)).reshape(self.variance.shape))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis, "invert": self.invert,
                "mean": self.input_mean, "variance": self.input_variance}

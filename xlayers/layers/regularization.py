"""Regularization layers: `Dropout`, `SpatialDropout1D`/`2D`/`3D`, `GaussianNoise`,
`GaussianDropout`, `AlphaDropout`, `ActivityRegularization`.

Each is the identity at inference and random in training. ``training`` defaults to the
module's ``self.training`` (torch's convention: ``model.eval()`` turns them off; Keras's
own default is inference). The random layers share one base, `RandomLayer`: the ``seed``
(a seeded ``torch.Generator`` per device, as the recurrent layers' dropout; torch's global
generator without one), the training switch, and ``last_noise``, the draw of the last call
(``None`` at inference), which the conformance harness hands to Keras.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from .. import regularizers
from ..arguments import data_format as check_data_format
from ..errors import ArgumentError, ArgumentTypeError, InputShapeError
from ..layer import InputSpec, Layer, Shape

__all__ = [
    "ActivityRegularization",
    "AlphaDropout",
    "BaseSpatialDropout",
    "Dropout",
    "GaussianDropout",
    "GaussianNoise",
    "RandomLayer",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
]

# SELU's constants (Klambauer et al., 2017), as Keras's AlphaDropout writes them.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _fraction(argument: str, value: Any) -> float:
    """``value`` as a float in [0, 1] (Keras's check of ``rate`` and ``stddev``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"`{argument}` must be a float between 0 and 1. Received: {argument}={value!r}.")
    if not 0 <= value <= 1:
        raise ArgumentError(f"`{argument}` must be a float between 0 and 1. Received: {argument}={value!r}.")
    return float(value)


class RandomLayer(Layer):
    """Base of the layers that are random in training and the identity at inference.

    A member implements :meth:`noisy` (its training-mode computation, which sets
    ``last_noise``) and says in :attr:`active` whether its configuration draws anything.

    Args:
        seed: seed of the draws (an int), or ``None`` for torch's global generator.
        **kwargs: base `Layer` arguments.

    Attributes:
        last_noise: the random draw of the last call (``None`` at inference or when
            nothing was drawn); what it holds is the member's (a keep mask, a standard
            normal sample).

    ``torch.compile(fullgraph=True)`` traces a training call without a ``seed`` (torch's
    global generator); dynamo cannot trace a ``torch.Generator``, so a seeded layer's
    training call breaks the graph there (inference calls compile either way).
    """

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ArgumentTypeError(f"`seed` must be an int or None. Received: seed={seed!r}.")
        self.seed = None if seed is None else int(seed)
        self.last_noise: torch.Tensor | None = None
        self._generator: torch.Generator | None = None
        self.supports_masking = True

    @property
    def active(self) -> bool:
        """Whether a training call changes anything (``rate > 0``)."""
        return True

    def generator(self, device: torch.device) -> torch.Generator | None:
        """The seeded generator on ``device`` (``None`` without a seed: torch's global one)."""
        if self.seed is None:
            return None
        if self._generator is None or self._generator.device != torch.device(device):
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
        return self._generator

    def call(self, inputs: torch.Tensor, training: bool | None = None) -> torch.Tensor:
        training = self.training if training is None else bool(training)
        self.last_noise = None
        if not training or not self.active:
            return inputs
        return self.noisy(inputs)

    def noisy(self, inputs: torch.Tensor) -> torch.Tensor:
        """The training-mode output (sets ``last_noise``)."""
        raise NotImplementedError(f"`{type(self).__name__}` implements `noisy`.")

    def uniform(self, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        """Uniform [0, 1) draws of ``shape`` in ``like``'s dtype and device."""
        return torch.rand(tuple(shape), generator=self.generator(like.device), dtype=like.dtype, device=like.device)

    def normal(self, like: torch.Tensor) -> torch.Tensor:
        """Standard normal draws of ``like``'s shape, dtype and device."""
        return torch.randn(like.shape, generator=self.generator(like.device), dtype=like.dtype, device=like.device)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)


class Dropout(RandomLayer):
    """Dropout: in training, each input unit is set to 0 with probability ``rate`` and the
    others are scaled by ``1 / (1 - rate)``; the identity at inference.

    On a GPU, without ``noise_shape`` or ``seed``, it is torch's fused dropout kernel
    (``torch.native_dropout``, which ``F.dropout`` runs there, and which also returns the
    mask). Otherwise one uniform draw of the noise shape, kept where ``>= rate`` (Keras's
    rule), and one broadcast multiply: on CPU that is faster than ``F.dropout``'s
    Bernoulli draw, divide and multiply (and than ``native_dropout``'s CPU kernel).

    Args:
        rate: fraction of the input units to drop, in [0, 1].
        noise_shape: shape of the keep mask, broadcast against the input: one entry per
            input axis, each ``None`` (the input's size), 1 or the input's size; e.g.
            ``(batch, 1, features)`` keeps or drops whole feature vectors over time.
        seed: seed of the masks.
        **kwargs: base `Layer` arguments.

    Call arguments:
        inputs: any tensor.
        training: drop (``True``) or pass through (``False``); default: ``self.training``.

    Attributes:
        last_noise: the keep mask of the last training call (booleans, of the noise shape).

    Input shape:
        any.

    Output shape:
        the input's.

    Example:
        >>> layer = Dropout(0.5, seed=1)
        >>> y = layer(torch.ones(2, 4), training=True)
        >>> sorted(set(y.flatten().tolist())) in ([0.0, 2.0], [0.0], [2.0])
        True
        >>> torch.equal(layer(torch.ones(2, 4), training=False), torch.ones(2, 4))
        True
    """

    def __init__(self, rate: float, noise_shape: Sequence[int | None] | None = None, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self.rate = _fraction("rate", rate)
        self.noise_shape = self._check_noise_shape(noise_shape)

    @staticmethod
    def _check_noise_shape(noise_shape: Any) -> tuple[int | None, ...] | None:
        if noise_shape is None:
            return None
        try:
            entries = tuple(noise_shape) if not isinstance(noise_shape, str) else None
        except TypeError:
            entries = None
        if entries is None or not all(
            d is None or (not isinstance(d, bool) and isinstance(d, (int, np.integer)) and d > 0) for d in entries
        ):
            raise ArgumentError(
                f"`noise_shape` must be a tuple of positive ints or None (one per input axis). Received: noise_shape={noise_shape!r}."
            )
        return tuple(None if d is None else int(d) for d in entries)

    @property
    def active(self) -> bool:
        return self.rate > 0

    def mask_shape(self, inputs: torch.Tensor) -> tuple[int, ...] | None:
        """The keep mask's shape for ``inputs`` (``None``: one entry per input unit)."""
        if self.noise_shape is None:
            return None
        shape = tuple(inputs.shape)
        if len(self.noise_shape) != len(shape) or any(n not in (None, 1, s) for n, s in zip(self.noise_shape, shape)):
            raise InputShapeError(
                "`noise_shape` must have one entry per input axis, each None, 1 or the input's size. "
                f"Received: noise_shape={self.noise_shape}, input shape={shape}."
            )
        return tuple(s if n is None else n for n, s in zip(self.noise_shape, shape))

    def noisy(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.rate == 1.0:  # Keras returns zeros (a scale of 1 / 0 would give NaN)
            return inputs * 0.0
        shape = self.mask_shape(inputs)
        if shape is None and self.seed is None and inputs.device.type != "cpu":
            outputs, self.last_noise = torch.native_dropout(inputs, self.rate, True)  # F.dropout's fused kernel there
            return outputs
        keep = self.uniform(shape if shape is not None else inputs.shape, inputs) >= self.rate
        self.last_noise = keep
        return inputs * (keep.to(inputs.dtype) * (1.0 / (1.0 - self.rate)))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed, "noise_shape": self.noise_shape}


class BaseSpatialDropout(Dropout):
    """Spatial dropout over ``rank`` spatial axes, as Keras's ``BaseSpatialDropout``: whole
    feature maps (every spatial position of one channel of one sample) are dropped
    together, the mask has shape ``(batch, 1, ..., 1, channels)`` (or channels first).

    A member sets ``rank`` (and whether it takes ``data_format``: Keras's 1-D version is
    channels-last only).

    Args:
        rate: fraction of the channels to drop, in [0, 1].
        data_format: ``"channels_last"`` (default) or ``"channels_first"`` (2-D and 3-D).
        seed: seed of the masks.
        name, dtype: as every layer; ``**kwargs``: other base `Layer` arguments
            (``input_shape``, ...).

    Input shape:
        ``(batch, *spatial, channels)``, or ``(batch, channels, *spatial)``; ``rank``
        spatial axes.

    Output shape:
        the input's.
    """

    rank: ClassVar[int] = 0
    HAS_DATA_FORMAT: ClassVar[bool] = True

    def __init__(self, rate: float, data_format: str | None = None, seed: int | None = None, **kwargs: Any) -> None:
        if not type(self).rank:
            raise TypeError(f"`{type(self).__name__}` is abstract: use `SpatialDropout1D`, `SpatialDropout2D` or `SpatialDropout3D`.")
        super().__init__(rate, seed=seed, **kwargs)
        if data_format is not None and not self.HAS_DATA_FORMAT:
            raise ArgumentTypeError(f"unrecognized keyword arguments ['data_format']. Received: data_format={data_format!r}.")
        self.data_format = check_data_format(data_format)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def mask_shape(self, inputs: torch.Tensor) -> tuple[int, ...]:
        batch, ones = inputs.shape[0], (1,) * self.rank
        if self.data_format == "channels_last":
            return (batch, *ones, inputs.shape[-1])
        return (batch, inputs.shape[1], *ones)

    def get_config(self) -> dict[str, Any]:
        # Keras's spatial dropouts take and report only these (no `trainable`, no `noise_shape`)
        config = {"rate": self.rate, "seed": self.seed, "name": self.name, "dtype": super().get_config()["dtype"]}
        return {**config, "data_format": self.data_format} if self.HAS_DATA_FORMAT else config


class SpatialDropout1D(BaseSpatialDropout):
    """Spatial 1-D dropout: drops whole channels of ``(batch, steps, channels)`` inputs (the
    same channels at every step), scaling the others by ``1 / (1 - rate)``.

    Args:
        rate: fraction of the channels to drop, in [0, 1].
        seed: seed of the masks.
        **kwargs: base `Layer` arguments.

    Input shape:
        ``(batch, steps, channels)``.

    Output shape:
        the input's.

    Example:
        >>> y = SpatialDropout1D(0.5, seed=0)(torch.ones(2, 7, 3), training=True)
        >>> bool((y == y[:, :1]).all())  # each channel is kept or dropped at every step
        True
    """

    rank = 1
    HAS_DATA_FORMAT = False

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(rate, seed=seed, **kwargs)


class SpatialDropout2D(BaseSpatialDropout):
    """Spatial 2-D dropout: drops whole feature maps of ``(batch, rows, cols, channels)``
    inputs, scaling the others by ``1 / (1 - rate)``.

    Args:
        rate: fraction of the channels to drop, in [0, 1].
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        seed: seed of the masks.
        **kwargs: base `Layer` arguments.

    Input shape:
        ``(batch, rows, cols, channels)``, or ``(batch, channels, rows, cols)``.

    Output shape:
        the input's.

    Example:
        >>> SpatialDropout2D(0.3)(torch.ones(2, 5, 6, 3), training=True).shape
        torch.Size([2, 5, 6, 3])
    """

    rank = 2


class SpatialDropout3D(BaseSpatialDropout):
    """Spatial 3-D dropout: drops whole feature volumes of ``(batch, d1, d2, d3, channels)``
    inputs, scaling the others by ``1 / (1 - rate)``.

    Args:
        rate: fraction of the channels to drop, in [0, 1].
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        seed: seed of the masks.
        **kwargs: base `Layer` arguments.

    Input shape:
        ``(batch, d1, d2, d3, channels)``, or ``(batch, channels, d1, d2, d3)``.

    Output shape:
        the input's.

    Example:
        >>> SpatialDropout3D(0.3)(torch.ones(2, 3, 4, 5, 3), training=True).shape
        torch.Size([2, 3, 4, 5, 3])
    """

    rank = 3


class GaussianNoise(RandomLayer):
    """Additive zero-centred Gaussian noise in training: ``inputs + stddev * z``, ``z`` a
    standard normal draw of the input's shape (one fused ``torch.add(..., alpha=stddev)``);
    the identity at inference.

    Args:
        stddev: standard deviation of the noise, in [0, 1] (Keras's check).
        seed: seed of the draws.
        **kwargs: base `Layer` arguments.

    Attributes:
        last_noise: ``z``, the standard normal draw of the last training call.

    Input shape:
        any.

    Output shape:
        the input's.

    Example:
        >>> layer = GaussianNoise(0.1, seed=0)
        >>> x = torch.zeros(2, 3)
        >>> torch.equal(layer(x, training=True), 0.1 * layer.last_noise)
        True
    """

    def __init__(self, stddev: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self.stddev = _fraction("stddev", stddev)

    @property
    def active(self) -> bool:
        return self.stddev > 0

    def noisy(self, inputs: torch.Tensor) -> torch.Tensor:
        self.last_noise = self.normal(inputs)
        return torch.add(inputs, self.last_noise, alpha=self.stddev)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(RandomLayer):
    """Multiplicative one-centred Gaussian noise in training: ``inputs * (1 + s * z)`` with
    ``s = sqrt(rate / (1 - rate))``, ``z`` a standard normal draw (one fused
    ``torch.addcmul``); the identity at inference.

    Args:
        rate: drop probability as for `Dropout`, in [0, 1); 1 is accepted at construction
            (Keras's check) but a training call refuses it (Keras divides by zero).
        seed: seed of the draws.
        **kwargs: base `Layer` arguments.

    Attributes:
        last_noise: ``z``, the standard normal draw of the last training call.

    Input shape:
        any.

    Output shape:
        the input's.

    Example:
        >>> layer = GaussianDropout(0.2, seed=0)
        >>> x = torch.ones(2, 3)
        >>> torch.allclose(layer(x, training=True), 1 + 0.5 * layer.last_noise)
        True
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self.rate = _fraction("rate", rate)

    @property
    def active(self) -> bool:
        return self.rate > 0

    def noisy(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.rate == 1.0:
            raise ArgumentError("a training call needs `rate` < 1 (the noise's stddev sqrt(rate / (1 - rate)) is infinite). Received: rate=1.0.")
        self.last_noise = self.normal(inputs)
        return torch.addcmul(inputs, inputs, self.last_noise, value=math.sqrt(self.rate / (1.0 - self.rate)))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class AlphaDropout(Dropout):
    """Alpha dropout (for SELU networks): in training, dropped units are set to SELU's
    negative saturation ``-alpha * scale``, then everything goes through the affine map
    ``a * x + b`` that keeps the inputs' mean and variance; the identity at inference.

    ``a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5``, ``b = -a * alpha_p * rate``,
    ``alpha_p = -alpha * scale`` (SELU's constants). One uniform draw of the noise shape,
    kept where ``>= rate``; then one ``torch.where`` and one multiply-add.

    Args:
        rate: fraction of the input units to drop, in [0, 1); 1 is accepted at
            construction (Keras's check) but a training call refuses it (Keras divides by
            zero).
        noise_shape: shape of the keep mask, as for `Dropout`.
        seed: seed of the masks.
        **kwargs: base `Layer` arguments.

    Attributes:
        last_noise: the keep mask of the last training call (booleans, of the noise shape).

    Input shape:
        any.

    Output shape:
        the input's.

    Example:
        >>> AlphaDropout(0.2, seed=0)(torch.randn(2, 3), training=True).shape
        torch.Size([2, 3])
    """

    def noisy(self, inputs: torch.Tensor) -> torch.Tensor:
        rate = self.rate
        if rate == 1.0:
            raise ArgumentError("a training call needs `rate` < 1 (its affine correction divides by 1 - rate). Received: rate=1.0.")
        alpha_p = -_SELU_ALPHA * _SELU_SCALE
        a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
        b = -a * alpha_p * rate
        shape = self.mask_shape(inputs)
        keep = self.uniform(shape if shape is not None else inputs.shape, inputs) >= rate
        self.last_noise = keep
        return torch.where(keep, inputs, alpha_p).mul_(a).add_(b)


class ActivityRegularization(Layer):
    """The identity, adding ``l1 * sum(|x|) + l2 * sum(x**2)`` of its output (divided by
    the batch size) to ``losses``, as Keras does for a layer's activity regularizer.

    Args:
        l1: L1 factor (>= 0).
        l2: L2 factor (>= 0).
        **kwargs: base `Layer` arguments (not ``activity_regularizer``: it is this one).

    Input shape:
        any.

    Output shape:
        the input's.

    Example:
        >>> layer = ActivityRegularization(l1=0.1)
        >>> _ = layer(torch.ones(2, 3))
        >>> [round(float(loss), 4) for loss in layer.losses]
        [0.3]
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs: Any) -> None:
        if "activity_regularizer" in kwargs:
            raise ArgumentTypeError(
                "`activity_regularizer` is set by `l1` and `l2`. "
                f"Received: activity_regularizer={kwargs['activity_regularizer']!r}."
            )
        super().__init__(**kwargs)
        self.activity_regularizer = regularizers.L1L2(l1=l1, l2=l2)
        self.l1 = float(self.activity_regularizer.l1)
        self.l2 = float(self.activity_regularizer.l2)
        self.supports_masking = True

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("activity_regularizer", None)
        return {**config, "l1": self.l1, "l2": self.l2}

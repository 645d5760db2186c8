"""Keras weight initializers implemented with PyTorch.

Each initializer is a small object called as ``init(shape, dtype=torch.float32,
device=None)`` that returns a new tensor. ``shape`` is the Keras-layout shape
(e.g. ``(in, out)`` for a dense kernel, ``(kh, kw, in, out)`` for a 2-D conv
kernel): fans are computed from it exactly as Keras does (:func:`compute_fans`).

Determinism: an initializer is *deterministic* (:attr:`Initializer.deterministic`,
:func:`is_deterministic`) when its values are a function of its configuration, the
shape and the dtype alone (``Zeros``, ``Ones``, ``Constant``, ``Identity``, ``STFT``):
it returns the same tensor on every call, and Keras's twin returns the same values.
Random initializers are not, seeded or not: compare them with Keras by distribution.

Seeding: ``seed=<int>`` makes a random initializer reproducible: the same seed and
shape give the same tensor on every call, whatever the state of the global torch
RNG (a private ``torch.Generator`` is seeded from it; Keras's draws differ). ``seed=None`` draws from
the global torch RNG (``torch.manual_seed`` controls it). Random numbers are
always drawn on the CPU (in float32, or float64 when that dtype is requested),
then cast and moved to ``device``, so a seeded result does not depend on the
device.

Use :func:`get` to resolve an identifier and :func:`serialize` for the Keras
``{"class_name": ..., "config": ...}`` form.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from .errors import ArgumentError, ArgumentTypeError
from .naming import Registry

__all__ = [
    "Initializer",
    "Zeros",
    "Ones",
    "Constant",
    "Identity",
    "STFT",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "VarianceScaling",
    "GlorotUniform",
    "GlorotNormal",
    "HeUniform",
    "HeNormal",
    "LecunUniform",
    "LecunNormal",
    "Orthogonal",
    "compute_fans",
    "is_deterministic",
    "get",
    "serialize",
    "names",
]

ShapeLike = int | Sequence[int] | torch.Size
DTypeLike = torch.dtype | str | None
DeviceLike = torch.device | str | int | None

# Keras's truncated-normal correction: the std of a standard normal truncated to
# [-2, 2] is 0.8796..., so variance scaling divides by it.
_TRUNC_STDDEV_CORRECTION = 0.87962566103423978

_DTYPE_NAMES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float": torch.float32,
    "float64": torch.float64,
    "double": torch.float64,
    "int8": torch.int8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "uint8": torch.uint8,
    "bool": torch.bool,
}


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #
def _standardize_shape(shape: ShapeLike) -> tuple[int, ...]:
    if isinstance(shape, bool):
        raise ArgumentTypeError(f"`shape` must be an int or a sequence of ints. Received: shape={shape!r}.")
    if isinstance(shape, int):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ArgumentTypeError(
            f"`shape` must be an int or a sequence of ints. Received: shape={shape!r}."
        ) from None
    out = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int):
            try:
                d = int(d)  # numpy / tensor scalars
            except (TypeError, ValueError):
                raise ArgumentTypeError(
                    f"`shape` must be a sequence of ints. Received: shape={shape!r}."
                ) from None
        if d < 0:
            raise ArgumentError(f"`shape` must have non-negative sizes. Received: shape={dims!r}.")
        out.append(d)
    return tuple(out)


def _standardize_dtype(dtype: DTypeLike) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPE_NAMES:
        return _DTYPE_NAMES[dtype]
    raise ArgumentTypeError(
        f"`dtype` must be a torch.dtype or one of {sorted(_DTYPE_NAMES)}. Received: dtype={dtype!r}."
    )


def _require_float(dtype: torch.dtype, who: str) -> None:
    if not dtype.is_floating_point:
        raise ArgumentError(
            f"`{who}` needs a floating-point `dtype`. Received: dtype={dtype}."
        )


def _sample_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype random numbers are drawn in (float64 only when asked for)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _finish(x: Tensor, dtype: torch.dtype, device: DeviceLike) -> Tensor:
    x = x.to(dtype=dtype)
    if device is not None:
        x = x.to(device=device)
    return x


def _is_meta(device: DeviceLike) -> bool:
    return device is not None and torch.device(device).type == "meta"


def _jsonable_axes(axes: Iterable[int] | None, name: str) -> list[int] | None:
    if axes is None:
        return None
    if isinstance(axes, int) and not isinstance(axes, bool):
        return [axes]
    try:
        out = [int(a) for a in axes]
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"`{name}` must be a list of ints or None. Received: {name}={axes!r}.") from None
    return out


def compute_fans(
    shape: ShapeLike,
    input_axes: Sequence[int] | None = None,
    output_axes: Sequence[int] | None = None,
) -> tuple[int, int]:
    """Computes ``(fan_in, fan_out)`` of a Keras-layout weight shape, as Keras does.

    * rank 0: ``(1, 1)``; rank 1: ``(shape[0], shape[0])``; rank 2: ``(shape[0], shape[1])``;
    * rank > 2: with ``receptive = prod(shape[:-2])``,
      ``(shape[-2] * receptive, shape[-1] * receptive)``;
    * if both ``input_axes`` and ``output_axes`` are given, the fans are the
      products of the sizes on those axes instead.

    Args:
        shape: Keras-layout weight shape (e.g. ``(kh, kw, in, out)``).
        input_axes: Optional axes holding input units.
        output_axes: Optional axes holding output units.

    Returns:
        The tuple ``(fan_in, fan_out)`` of Python ints.
    """
    shape = _standardize_shape(shape)
    if input_axes is not None and output_axes is not None:
        fan_in = math.prod(shape[a] for a in input_axes)
        fan_out = math.prod(shape[a] for a in output_axes)
        return int(fan_in), int(fan_out)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return int(shape[0]), int(shape[0])
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    receptive = math.prod(shape[:-2])
    return int(shape[-2] * receptive), int(shape[-1] * receptive)


def _check_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy / 0-d tensor scalars
        except (TypeError, ValueError):
            raise ArgumentTypeError(f"`{name}` must be a number. Received: {name}={value!r}.") from None
    return value


# --------------------------------------------------------------------------- #
# Base classes
# --------------------------------------------------------------------------- #
class Initializer:
    """Base class: ``init(shape, dtype=torch.float32, device=None) -> Tensor``.

    Subclasses implement :meth:`__call__` and, if they take arguments,
    :meth:`get_config` (a JSON-serialisable dict of the constructor arguments), and
    set :attr:`deterministic` if their values involve no random draws.
    """

    #: ``True`` when the values are a function of the configuration, shape and dtype alone
    #: (no random draws), so Keras's twin gives the same values: compare them exactly (up to
    #: float rounding where computed, as in ``STFT``). ``False`` for random initializers, seeded
    #: or not: compare them by distribution.
    deterministic: ClassVar[bool] = False

    def __call__(self, shape: ShapeLike, dtype: DTypeLike = torch.float32, device: DeviceLike = None) -> Tensor:
        """Returns a new tensor of ``shape`` and ``dtype`` on ``device``.

        Args:
            shape: Keras-layout shape.
            dtype: Output dtype (``torch.dtype`` or its name).
            device: Output device (``None`` for the default, CPU).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement `__call__`.")

    def get_config(self) -> dict[str, Any]:
        """Returns the constructor arguments as a JSON-serialisable dict."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        """Builds an initializer from the output of :meth:`get_config`.

        Args:
            config: The constructor arguments, as :meth:`get_config` returns them.
        """
        return cls(**config)

    def clone(self) -> Initializer:
        """Returns a new initializer with the same configuration."""
        return type(self).from_config(self.get_config())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()  # type: ignore[union-attr]

    __hash__ = object.__hash__


class _RandomInitializer(Initializer):
    """Base of random initializers: holds ``seed`` and builds the generator."""

    def __init__(self, seed: int | None = None) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ArgumentTypeError(f"`seed` must be an int or None. Received: seed={seed!r}.")
        self.seed = seed

    def _generator(self) -> torch.Generator | None:
        if self.seed is None:
            return None
        g = torch.Generator(device="cpu")
        # torch seeds must be non-negative 64-bit; fold any Python int into that range.
        g.manual_seed(self.seed % (2**63))
        return g

    def _empty(self, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        return torch.empty(shape, dtype=_sample_dtype(dtype))

    def _normal(self, shape: tuple[int, ...], dtype: torch.dtype, mean: float, stddev: float) -> Tensor:
        return self._empty(shape, dtype).normal_(mean, stddev, generator=self._generator())

    def _uniform(self, shape: tuple[int, ...], dtype: torch.dtype, low: float, high: float) -> Tensor:
        return self._empty(shape, dtype).uniform_(low, high, generator=self._generator())

    def _truncated_normal(self, shape: tuple[int, ...], dtype: torch.dtype, mean: float, stddev: float) -> Tensor:
        out = self._empty(shape, dtype)
        return torch.nn.init.trunc_normal_(
            out, mean=mean, std=stddev, a=mean - 2.0 * stddev, b=mean + 2.0 * stddev, generator=self._generator()
        )

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}


# --------------------------------------------------------------------------- #
# Constant initializers
# --------------------------------------------------------------------------- #
class Zeros(Initializer):
    """Fills with ``0``."""

    deterministic: ClassVar[bool] = True

    def __call__(self, shape: ShapeLike, dtype: DTypeLike = torch.float32, device: DeviceLike = None) -> Tensor:
        """Returns zeros of ``shape``.

        Args:
            shape: Output shape.
            dtype: Output dtype (any numeric or bool dtype).
            device: Output device.
        """
        return torch.zeros(_standardize_shape(shape), dtype=_standardize_dtype(dtype), device=device)


class Ones(Initializer):
    """Fills with ``1``."""

    deterministic: ClassVar[bool] = True

    def __call__(self, shape: ShapeLike, dtype: DTypeLike = torch.float32, device: DeviceLike = None) -> Tensor:
        """Returns ones of ``shape``.

        Args:
            shape: Output shape.
            dtype: Output dtype (any numeric or bool dtype).
            device: Output device.
        """
        return torch.ones(_standardize_shape(shape), dtype=_standardize_dtype(dtype), device=device)


class Constant(Initializer):
    """Fills with a scalar: ``w = value``.

    Args:
        value: A Python scalar (Keras only allows scalars).
    """

    deterministic: ClassVar[bool] = True

    def __init__(self, value: float = 0.0) -> None:
        if isinstance(value, Tensor):
            if value.numel() != 1:
                raise ArgumentError(f"`value` of `Constant` must be a scalar. Received: value={value!r}.")
            value = value.item()
        elif not isinstance(value, (bool, int, float)):
            try:
                value = value.item()  # numpy scalars / 0-d arrays
            except (AttributeError, ValueError):
                raise ArgumentTypeError(
                    f"`value` of `Constant` must be a Python scalar. Received: value={value!r}."
                ) from None
        self.value = value

    def __call__(self, shape: ShapeLike, dtype: DTypeLike = torch.float32, device: DeviceLike = None) -> Tensor:
        """Returns a tensor of ``shape`` filled with ``value``.

        Args:
            shape: Output shape.
            dtype: Output dtype.
            device: Output device.
        """
        return torch.full(_standardize_shape(shape), self.value, dtype=_standardize_dtype(dtype), device=device)

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


class Identity(Initializer):
    """Identity matrix scaled by ``gain``: ``w = gain * eye(rows, cols)`` (2-D shapes only).

    Args:
        gain: Multiplicative factor.
    """

    deterministic: ClassVar[bool] = True

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = _check_number(gain, "gain")

    def __call__(self, shape: ShapeLike, dtype: DTypeLike = torch.float32, device: DeviceLike = None) -> Tensor:
        """Returns ``gain * eye(*shape)``.

        Args:
            shape: 2-D output shape ``(rows, cols)``.
            dtype: Output dtype.
            device: Output device.
        """
        shape = _standardize_shape(shape)
        if len(shape) != 2:
            raise ArgumentError(
                "`Identity` can only initialize 2-D matrices. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        dtype = _standardize_dtype(dtype)
        return self.gain * torch.eye(shape[0], shape[1], dtype=dtype, device=device)

    def get_config(self) -> dict[str, Any]:
        # Keras 3.15's Identity has no get_config: it writes ``{}`` and so loses ``gain``. The
        # default is written as Keras writes it; another gain is kept (Keras would drop it).
        return {} if self.gain == 1.0 else {"gain": self.gain}


def _stft_window(name: str, n: int, periodic: bool) -> Tensor | None:
    """Window functions that match ``scipy.signal.get_window(name, n, fftbins=periodic)``."""
    kw = dict(periodic=periodic, dtype=torch.float64)
    if name in ("hann", "han", "hanning"):
        return torch.hann_window(n, **kw)
    if name in ("hamming", "hamm", "ham"):
        return torch.hamming_window(n, **kw)
    if name in ("blackman", "black", "blk"):
        return torch.blackman_window(n, **kw)
    if name in ("bartlett", "bart", "brt"):
        return torch.bartlett_window(n, **kw)
    if name in ("boxcar", "box", "ones", "rect", "rectangular"):
        return torch.ones(n, dtype=torch.float64)
    return None


_STFT_WINDOWS = ("bartlett", "blackman", "boxcar", "hamming", "hann")


class STFT(Initializer):
    """Conv kernel of a short-time Fourier transform, shape ``(T, 1, F // 2 + 1)``.

    ``w[t, 0, f] = cos(-2 * pi * t * f / F)`` (``side="real"``) or ``sin(...)``
    (``side="imag"``) with ``F = 2 * (shape[-1] - 1)``, times the window and
    divided by its ``sqrt(sum(win**2))`` (``"density"``) or ``sum(|win|)``
    (``"spectrum"``).

    Args:
        side: ``"real"`` or ``"imag"``.
        window: A window name (``"hann"``, ``"hamming"``, ``"blackman"``,
            ``"bartlett"``, ``"boxcar"``), a 1-D sequence of window values, or ``None``.
        scaling: ``"density"``, ``"spectrum"`` or ``None``.
        periodic: Whether a named window is periodic (DFT-even) rather than symmetric.
    """

    deterministic: ClassVar[bool] = True

    def __init__(
        self,
        side: str = "real",
        window: str | Sequence[float] | None = "hann",
        scaling: str | None = "density",
        periodic: bool = False,
    ) -> None:
        if side not in ("real", "imag"):
            raise ArgumentError(f"`side` must be one of ['imag', 'real']. Received: side={side!r}.")
        if isinstance(window, str):
            if _stft_window(window, 1, False) is None:
                raise ArgumentError(
                    f"`window` must be one of {list(_STFT_WINDOWS)}, a sequence of values or None. "
                    f"Received: window={window!r}."
                )
        elif window is not None:
            window = [float(v) for v in torch.as_tensor(window, dtype=torch.float64).reshape(-1).tolist()]
        if scaling is not None and scaling not in ("density", "spectrum"):
            raise ArgumentError(
                f"`scaling` must be one of ['density', 'spectrum'] or None. Received: scaling={scaling!r}."
            )
        self.side = side
        self.window = window
        self.scaling = scaling
        self.periodic = bool(periodic)

    def __call__(self, shape: ShapeLike, dtype: DTypeLike = torch.float32, device: DeviceLike = None) -> Tensor:
        """Returns the STFT kernel (computed in float64, then cast).

        Args:
            shape: ``(frame_length, input_channels, fft_length // 2 + 1)``.
            dtype: Output dtype.
            device: Output device.
        """
        shape = _standardize_shape(shape)
        dtype = _standardize_dtype(dtype)
        _require_float(dtype, "STFT")
        if len(shape) != 3:
            raise ArgumentError(f"`STFT` needs a 3-D shape (T, 1, F // 2 + 1). Received: shape={shape}.")
        frame_length, _, fft_bins = shape
        win = None
        scale: float | Tensor = 1.0
        if self.window is not None:
            if isinstance(self.window, str):
                win = _stft_window(self.window, frame_length, self.periodic)
            else:
                win = torch.tensor(self.window, dtype=torch.float64)
            if win.dim() != 1 or win.shape[0] != frame_length:
                raise ArgumentError(
                    f"`window` must have {frame_length} values (the frame length). "
                    f"Received: window of shape {tuple(win.shape)}."
                )
            win = win.reshape(frame_length, 1, 1)
            if self.scaling == "density":
                scale = torch.sqrt(torch.sum(win * win))
            elif self.scaling == "spectrum":
                scale = torch.sum(torch.abs(win))
        fft_length = (fft_bins - 1) * 2
        freq = torch.arange(fft_bins, dtype=torch.float64).reshape(1, 1, fft_bins) / fft_length
        time = torch.arange(frame_length, dtype=torch.float64).reshape(frame_length, 1, 1)
        args = (-2.0 * time) * freq * math.pi
        kernel = torch.cos(args) if self.side == "real" else torch.sin(args)
        if win is not None:
            kernel = kernel * win / scale
        return _finish(kernel, dtype, device)

    def get_config(self) -> dict[str, Any]:
        return {"side": self.side, "window": self.window, "periodic": self.periodic, "scaling": self.scaling}


# --------------------------------------------------------------------------- #
# Random initializers
# --------------------------------------------------------------------------- #
class RandomNormal(_RandomInitializer):
    """Normal distribution: ``w ~ N(mean, stddev**2)``.

    Args:
        mean: Mean of the values.
        stddev: Standard deviation of the values.
        seed: Int for reproducible values, or ``None`` for the global torch RNG.
    """

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        self.mean = _check_number(mean, "mean")
        self.stddev = _check_number(stddev, "stddev")
        super().__init__(seed=seed)

    def __call__(self, shape: ShapeLike, dtype: DTypeLike = torch.float32, device: DeviceLike = None) -> Tensor:
        """Returns normal samples of ``shape``.

        Args:
            shape: Output shape.
            dtype: Floating output dtype.
            device: Output device.
        """
        shape = _standardize_shape(shape)
        dtype = _standardize_dtype(dtype)
        _require_float(dtype, type(self).__name__)
        if _is_meta(device):
            return torch.empty(shape, dtype=dtype, device=device)
        return _finish(self._normal(shape, dtype, self.mean, self.stddev), dtype, device)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class TruncatedNormal(_RandomInitializer):
    """Truncated normal: ``w ~ N(mean, stddev**2)`` restricted to ``[mean - 2 stddev, mean + 2 stddev]``.

    Note that the standard deviation of the result is ``0.8796 * stddev``.

    Args:
        mean: Mean of the underlying normal.
        stddev: Standard deviation of the underlying (untruncated) normal.
        seed: Int for reproducible values, or ``None`` for the global torch RNG.
    """

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        self.mean = _check_number(mean, "mean")
        self.stddev = _check_number(stddev, "stddev")
        super().__init__(seed=seed)

    def __call__(self, shape: ShapeLike, dtype: DTypeLike = torch.float32, device: DeviceLike = None) -> Tensor:
        """Returns truncated normal samples of ``shape``.

        Args:
            shape: Output shape.
            dtype: Floating output dtype.
            device: Output device.
        """
        shape = _standardize_shape(shape)
        dtype = _standardize_dtype(dtype)
        _require_float(dtype, type(self).__name__)
        if _is_meta(device):
            return torch.empty(shape, dtype=dtype, device=device)
        return _finish(self._truncated_normal(shape, dtype, self.mean, self.stddev), dtype, device)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class RandomUniform(_RandomInitializer):
    """Uniform distribution: ``w ~ U[minval, maxval)``.

    Args:
        minval: Lower bound (inclusive).
        maxval: Upper bound (exclusive).
        seed: Int for reproducible values, or ``None`` for the global torch RNG.
    """

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None) -> None:
        self.minval = _check_number(minval, "minval")
        self.maxval = _check_number(maxval, "maxval")
        super().__init__(seed=seed)

    def __call__(self, shape: ShapeLike, dtype: DTypeLike = torch.float32, device: DeviceLike = None) -> Tensor:
        """Returns uniform samples of ``shape``.

        Args:
            shape: Output shape.
            dtype: Floating output dtype.
            device: Output device.
        """
        shape = _standardize_shape(shape)
        dtype = _standardize_dtype(dtype)
        _require_float(dtype, type(self).__name__)
        if _is_meta(device):
            return torch.empty(shape, dtype=dtype, device=device)
        return _finish(self._uniform(shape, dtype, self.minval, self.maxval), dtype, device)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "minval": self.minval, "maxval": self.maxval}


_MODES = ("fan_avg", "fan_in", "fan_out")
_DISTRIBUTIONS = ("truncated_normal", "uniform", "untruncated_normal")


class VarianceScaling(_RandomInitializer):
    """Scale-aware initializer: variance ``scale / n`` with ``n`` a fan of the shape.

    ``n`` is ``fan_in``, ``fan_out`` or ``(fan_in + fan_out) / 2`` (at least 1).
    ``"truncated_normal"`` draws from a normal with
    ``stddev = sqrt(scale / n) / 0.87962566103423978`` truncated at 2 stddev
    (so the result has std ``sqrt(scale / n)``), ``"untruncated_normal"`` uses
    ``stddev = sqrt(scale / n)`` and ``"uniform"`` draws from
    ``U[-limit, limit]`` with ``limit = sqrt(3 * scale / n)``.

    Args:
        scale: Positive scaling factor.
        mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``.
        distribution: ``"truncated_normal"`` (``"normal"`` is an alias),
            ``"untruncated_normal"`` or ``"uniform"`` (case-insensitive).
        seed: Int for reproducible values, or ``None`` for the global torch RNG.
        input_axes: Optional axes of the input units (used with ``output_axes``).
        output_axes: Optional axes of the output units (used with ``input_axes``).
    """

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: int | None = None,
        input_axes: Sequence[int] | None = None,
        output_axes: Sequence[int] | None = None,
    ) -> None:
        scale = _check_number(scale, "scale")
        if not scale > 0.0:
            raise ArgumentError(f"`scale` must be a positive float. Received: scale={scale!r}.")
        if mode not in _MODES:
            raise ArgumentError(f"`mode` must be one of {list(_MODES)}. Received: mode={mode!r}.")
        if not isinstance(distribution, str):
            raise ArgumentTypeError(
                f"`distribution` must be a string. Received: distribution={distribution!r}."
            )
        dist = distribution.lower()
        if dist == "normal":
            dist = "truncated_normal"
        if dist not in _DISTRIBUTIONS:
            raise ArgumentError(
                f"`distribution` must be one of {list(_DISTRIBUTIONS)}. "
                f"Received: distribution={distribution!r}."
            )
        self.scale = scale
        self.mode = mode
        self.distribution = dist
        self.input_axes = _jsonable_axes(input_axes, "input_axes")
        self.output_axes = _jsonable_axes(output_axes, "output_axes")
        super().__init__(seed=seed)

    def _scale_for(self, shape: tuple[int, ...]) -> float:
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        if self.mode == "fan_in":
            n = max(1.0, fan_in)
        elif self.mode == "fan_out":
            n = max(1.0, fan_out)
        else:
            n = max(1.0, (fan_in + fan_out) / 2.0)
        return self.scale / n

    def __call__(self, shape: ShapeLike, dtype: DTypeLike = torch.float32, device: DeviceLike = None) -> Tensor:
        """Returns variance-scaled samples of ``shape``.

        Args:
            shape: Keras-layout output shape (fans are computed from it).
            dtype: Floating output dtype.
            device: Output device.
        """
        shape = _standardize_shape(shape)
        dtype = _standardize_dtype(dtype)
        _require_float(dtype, type(self).__name__)
        if _is_meta(device):
            return torch.empty(shape, dtype=dtype, device=device)
        scale = self._scale_for(shape)
        if self.distribution == "truncated_normal":
            stddev = math.sqrt(scale) / _TRUNC_STDDEV_CORRECTION
            x = self._truncated_normal(shape, dtype, 0.0, stddev)
        elif self.distribution == "untruncated_normal":
            x = self._normal(shape, dtype, 0.0, math.sqrt(scale))
        else:
            limit = math.sqrt(3.0 * scale)
            x = self._uniform(shape, dtype, -limit, limit)
        return _finish(x, dtype, device)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "input_axes": self.input_axes,
            "output_axes": self.output_axes,
        }


class _FixedVarianceScaling(VarianceScaling):
    """A VarianceScaling with fixed ``scale``, ``mode`` and ``distribution``."""

    _scale: float = 1.0
    _mode: str = "fan_in"
    _distribution: str = "truncated_normal"

    def __init__(
        self,
        seed: int | None = None,
        input_axes: Sequence[int] | None = None,
        output_axes: Sequence[int] | None = None,
    ) -> None:
        super().__init__(
            scale=self._scale,
            mode=self._mode,
            distribution=self._distribution,
            seed=seed,
            input_axes=input_axes,
            output_axes=output_axes,
        )

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed, "input_axes": self.input_axes, "output_axes": self.output_axes}


class GlorotUniform(_FixedVarianceScaling):
    """Glorot (Xavier) uniform: ``U[-limit, limit]``, ``limit = sqrt(6 / (fan_in + fan_out))``.

    Args:
        seed: Int for reproducible values, or ``None`` for the global torch RNG.
        input_axes: Optional axes of the input units.
        output_axes: Optional axes of the output units.
    """

    _scale, _mode, _distribution = 1.0, "fan_avg", "uniform"


class GlorotNormal(_FixedVarianceScaling):
    """Glorot (Xavier) normal: truncated normal with std ``sqrt(2 / (fan_in + fan_out))``.

    Args:
        seed: Int for reproducible values, or ``None`` for the global torch RNG.
        input_axes: Optional axes of the input units.
        output_axes: Optional axes of the output units.
    """

    _scale, _mode, _distribution = 1.0, "fan_avg", "truncated_normal"


class LecunUniform(_FixedVarianceScaling):
    """LeCun uniform: ``U[-limit, limit]``, ``limit = sqrt(3 / fan_in)``.

    Args:
        seed: Int for reproducible values, or ``None`` for the global torch RNG.
        input_axes: Optional axes of the input units.
        output_axes: Optional axes of the output units.
    """

    _scale, _mode, _distribution = 1.0, "fan_in", "uniform"


class LecunNormal(_FixedVarianceScaling):
    """LeCun normal: truncated normal with std ``sqrt(1 / fan_in)``.

    Args:
        seed: Int for reproducible values, or ``None`` for the global torch RNG.
        input_axes: Optional axes of the input units.
        output_axes: Optional axes of the output units.
    """

    _scale, _mode, _distribution = 1.0, "fan_in", "truncated_normal"


class HeUniform(_FixedVarianceScaling):
    """He uniform: ``U[-limit, limit]``, ``limit = sqrt(6 / fan_in)``.

    Args:
        seed: Int for reproducible values, or ``None`` for the global torch RNG.
        input_axes: Optional axes of the input units.
        output_axes: Optional axes of the output units.
    """

    _scale, _mode, _distribution = 2.0, "fan_in", "uniform"


class HeNormal(_FixedVarianceScaling):
    """He normal: truncated normal with std ``sqrt(2 / fan_in)``.

    Args:
        seed: Int for reproducible values, or ``None`` for the global torch RNG.
        input_axes: Optional axes of the input units.
        output_axes: Optional axes of the output units.
    """

    _scale, _mode, _distribution = 2.0, "fan_in", "truncated_normal"


class Orthogonal(_RandomInitializer):
    """Orthogonal matrix: ``w = gain * Q`` from the QR decomposition of a normal matrix.

    The shape is flattened to ``(prod(shape[:-1]), shape[-1])``; the result has
    orthonormal columns if rows >= cols, otherwise orthonormal rows, and ``Q``'s
    columns are sign-corrected by ``sign(diag(R))`` so the distribution is uniform.

    Args:
        gain: Multiplicative factor.
        seed: Int for reproducible values, or ``None`` for the global torch RNG.
    """

    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        self.gain = _check_number(gain, "gain")
        super().__init__(seed=seed)

    def __call__(self, shape: ShapeLike, dtype: DTypeLike = torch.float32, device: DeviceLike = None) -> Tensor:
        """Returns an (semi-)orthogonal tensor of ``shape``.

        Args:
            shape: Output shape, rank >= 2.
            dtype: Floating output dtype.
            device: Output device.
        """
        shape = _standardize_shape(shape)
        dtype = _standardize_dtype(dtype)
        _require_float(dtype, "Orthogonal")
        if len(shape) < 2:
            raise ArgumentError(
                "`Orthogonal` needs a shape of rank >= 2. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        if _is_meta(device):
            return torch.empty(shape, dtype=dtype, device=device)
        num_rows = math.prod(shape[:-1])
        num_cols = shape[-1]
        flat = (max(num_rows, num_cols), min(num_rows, num_cols))
        a = self._normal(flat, dtype, 0.0, 1.0)
        q, r = torch.linalg.qr(a)
        q = q * torch.sign(torch.diagonal(r))
        if num_rows < num_cols:
            q = q.T
        return _finish(self.gain * q.reshape(shape), dtype, device)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gain": self.gain}


# --------------------------------------------------------------------------- #
# Registry
# --------------------------------------------------------------------------- #
_CLASSES = (
    Constant,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    Identity,
    LecunNormal,
    LecunUniform,
    Ones,
    Orthogonal,
    RandomNormal,
    RandomUniform,
    STFT,
    TruncatedNormal,
    VarianceScaling,
    Zeros,
)

_SNAKE = {
    "Constant": "constant",
    "GlorotNormal": "glorot_normal",
    "GlorotUniform": "glorot_uniform",
    "HeNormal": "he_normal",
    "HeUniform": "he_uniform",
    "Identity": "identity",
    "LecunNormal": "lecun_normal",
    "LecunUniform": "lecun_uniform",
    "Ones": "ones",
    "Orthogonal": "orthogonal",
    "RandomNormal": "random_normal",
    "RandomUniform": "random_uniform",
    "STFT": "stft",
    "TruncatedNormal": "truncated_normal",
    "VarianceScaling": "variance_scaling",
    "Zeros": "zeros",
}

_REGISTRY: dict[str, type[Initializer]] = {cls.__name__: cls for cls in _CLASSES}
_REGISTRY.update({_SNAKE[cls.__name__]: cls for cls in _CLASSES})
_REGISTRY.update(
    {
        "IdentityInitializer": Identity,
        "normal": RandomNormal,
        "one": Ones,
        "STFTInitializer": STFT,
        "OrthogonalInitializer": Orthogonal,
        "uniform": RandomUniform,
        "zero": Zeros,
    }
)
_NAMES = Registry("initializer", "keras.initializers", Initializer, _REGISTRY)


def is_deterministic(initializer: Any) -> bool:
    """Whether ``initializer`` gives the same values on every call, with no random draws.

    Args:
        initializer: Anything :func:`get` accepts: an initializer (instance or class), a
            name, a Keras serialized dict, or a plain callable ``fn(shape, dtype=..., device=...)``,
            which counts as deterministic only when marked with ``fn.deterministic = True``.

    Returns:
        ``True`` for ``Zeros``, ``Ones``, ``Constant``, ``Identity``, ``STFT`` (and callables
        marked so); ``False`` for random initializers, unmarked callables and ``None``.

    Raises:
        UnknownNameError: a name (or ``class_name``) that names no initializer.
    """
    if isinstance(initializer, (str, dict)):
        initializer = get(initializer)
    return getattr(initializer, "deterministic", False) is True


def names() -> list[str]:
    """Returns every initializer name :func:`get` accepts (class names, snake_case names, aliases), sorted."""
    return _NAMES.names()


def get(
    identifier: str | dict[str, Any] | Initializer | type[Initializer] | Callable[..., Tensor] | None,
) -> Callable[..., Tensor] | None:
    """Resolves an initializer identifier.

    Args:
        identifier: A name (case-sensitive, e.g. ``"glorot_uniform"`` or
            ``"GlorotUniform"``), a Keras serialized dict
            ``{"class_name": ..., "config": {...}}``, an initializer class
            (instantiated with defaults), an instance or any callable
            ``fn(shape, dtype=..., device=...)`` (returned unchanged), or ``None``.

    Returns:
        An initializer (``None`` for ``None``).

    Raises:
        UnknownNameError: the name (or ``class_name``) names no initializer.
        ArgumentError: a dict without ``class_name``.
        ArgumentTypeError: an identifier of an unsupported type.
    """
    return _NAMES.get(identifier)


def serialize(initializer: Initializer | str | dict[str, Any] | None) -> dict[str, Any] | None:
    """Returns the Keras serialized form of an initializer.

    The result is ``{"module": "keras.initializers", "class_name": ...,
    "config": {...}, "registered_name": None}``, as ``keras.initializers.serialize``
    produces; :func:`get` accepts it back.

    Args:
        initializer: An initializer instance, a name, a dict or ``None``.

    Returns:
        The serialized dict (``None`` for ``None``).

    Raises:
        ArgumentTypeError: ``initializer`` is a callable that is not an :class:`Initializer`.
    """
    return _NAMES.serialize(initializer)

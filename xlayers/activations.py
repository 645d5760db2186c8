"""Keras activation functions implemented with PyTorch.

Every name that ``keras.activations.get`` accepts in Keras 3 resolves here to a
function with the same numerics. All functions:

* take a tensor and return a tensor of the same shape and dtype (``float16``,
  ``bfloat16``, ``float32`` and ``float64`` in, the same dtype out);
* contain no Python branch on tensor values, so they trace under
  ``torch.compile(fullgraph=True)`` (branches are only on Python arguments such
  as ``alpha`` or ``axis``).

Use :func:`get` to resolve an identifier (name, ``None`` or callable) and
:func:`serialize` to turn a built-in activation back into its canonical Keras name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import ArgumentError, ArgumentTypeError, InputShapeError
from .naming import NameTable

__all__ = [
    "celu",
    "elu",
    "exponential",
    "gelu",
    "glu",
    "hard_shrink",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "leaky_relu",
    "linear",
    "log_sigmoid",
    "log_softmax",
    "mish",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "soft_shrink",
    "softmax",
    "softplus",
    "softsign",
    "sparse_plus",
    "sparse_sigmoid",
    "sparsemax",
    "squareplus",
    "swish",
    "tanh",
    "tanh_shrink",
    "threshold",
    "get",
    "name_of",
    "serialize",
    "names",
]

Axis = int | Sequence[int] | None

# SELU constants (Klambauer et al., 2017), identical to TF / PyTorch.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_SQRT_HALF = 0.7071067811865476  # 1 / sqrt(2)
_SQRT_2_OVER_PI = 0.7978845608028654  # sqrt(2 / pi)


# --------------------------------------------------------------------------- #
# Rectifiers
# --------------------------------------------------------------------------- #
def relu(
    x: Tensor,
    negative_slope: float = 0.0,
    max_value: float | None = None,
    threshold: float = 0.0,
) -> Tensor:
    """Rectified linear unit: ``max(x, 0)`` with Keras's optional extensions.

    With the defaults this is ``max(x, 0)``. In general the output is ``x`` for
    ``threshold < x < max_value`` (clipped to ``max_value`` above it, and ``0``
    for ``x <= threshold``), minus ``negative_slope * max(threshold - x, 0)``.

    Args:
        x: Input tensor.
        negative_slope: Slope for values below ``threshold``.
        max_value: Saturation value (largest output), or ``None`` for no cap.
        threshold: Values ``<= threshold`` are damped or set to zero.
    """
    if negative_slope != 0.0:
        if max_value is None and threshold == 0:
            return F.leaky_relu(x, negative_slope=negative_slope)
        if threshold != 0:
            negative_part = F.relu(threshold - x)
        else:
            negative_part = F.relu(-x)
    clip_max = max_value is not None
    if threshold != 0:
        y = torch.where(x > threshold, x, torch.zeros_like(x))
    elif max_value == 6:
        y = F.relu6(x)
        clip_max = False
    else:
        y = F.relu(x)
    if clip_max:
        y = torch.clamp(y, min=0.0, max=max_value)
    if negative_slope != 0.0:
        y = y - negative_slope * negative_part
    return y


def leaky_relu(x: Tensor, negative_slope: float = 0.2) -> Tensor:
    """Leaky ReLU: ``x`` if ``x >= 0`` else ``negative_slope * x``.

    Args:
        x: Input tensor.
        negative_slope: Slope for negative inputs (Keras 3 default ``0.2``).
    """
    return F.leaky_relu(x, negative_slope=negative_slope)


def relu6(x: Tensor) -> Tensor:
    """ReLU capped at 6: ``min(max(x, 0), 6)``.

    Args:
        x: Input tensor.
    """
    return F.relu6(x)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """Exponential linear unit: ``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``.

    Args:
        x: Input tensor.
        alpha: Scale of the negative section.
    """
    return F.elu(x, alpha=alpha)


def selu(x: Tensor) -> Tensor:
    """Scaled ELU: ``scale * x`` if ``x > 0`` else ``scale * alpha * (exp(x) - 1)``.

    ``alpha = 1.67326324...`` and ``scale = 1.05070098...``.

    Args:
        x: Input tensor.
    """
    return F.selu(x)


def celu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """Continuously differentiable ELU: ``max(x, 0) + alpha * expm1(min(x, 0) / alpha)``.

    Args:
        x: Input tensor.
        alpha: The alpha value of the CeLU formulation.
    """
    return torch.clamp(x, min=0.0) + alpha * torch.expm1(torch.clamp(x, max=0.0) / alpha)


def threshold(x: Tensor, threshold: float | None = None, default_value: float | None = None) -> Tensor:
    """Threshold: ``x`` if ``x > threshold`` else ``default_value``.

    Like Keras, both parameters are required, so ``get("threshold")`` returns a
    function that must be called with them (wrap it, e.g. with
    ``functools.partial``, to use it as a one-argument activation).

    Args:
        x: Input tensor.
        threshold: Values above it are kept.
        default_value: Value used where ``x <= threshold``.

    Raises:
        ArgumentTypeError: ``threshold`` or ``default_value`` is missing (a ``TypeError``,
            as Keras raises for the missing positional arguments).
    """
    if threshold is None or default_value is None:
        raise ArgumentTypeError(
            "the `threshold` activation needs `threshold` and `default_value` (required, as in Keras; bind "
            "them, e.g. with functools.partial, to use it as a one-argument activation). "
            f"Received: threshold={threshold!r}, default_value={default_value!r}."
        )
    return torch.where(x > threshold, x, torch.full_like(x, default_value))


# --------------------------------------------------------------------------- #
# Smooth activations
# --------------------------------------------------------------------------- #
def sigmoid(x: Tensor) -> Tensor:
    """Logistic sigmoid: ``1 / (1 + exp(-x))``.

    Args:
        x: Input tensor.
    """
    return torch.sigmoid(x)


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent: ``(exp(x) - exp(-x)) / (exp(x) + exp(-x))``.

    Args:
        x: Input tensor.
    """
    return torch.tanh(x)


def softplus(x: Tensor) -> Tensor:
    """Softplus: ``log(exp(x) + 1)``, computed stably as ``max(x, 0) + log1p(exp(-|x|))``.

    Args:
        x: Input tensor.
    """
    return F.relu(x) + torch.log1p(torch.exp(-torch.abs(x)))


def softsign(x: Tensor) -> Tensor:
    """Softsign: ``x / (|x| + 1)``.

    Args:
        x: Input tensor.
    """
    return x / (torch.abs(x) + 1)


def silu(x: Tensor) -> Tensor:
    """SiLU / swish: ``x * sigmoid(x)``.

    Args:
        x: Input tensor.
    """
    return F.silu(x)


def gelu(x: Tensor, approximate: bool = False) -> Tensor:
    """Gaussian error linear unit: ``0.5 * x * (1 + erf(x / sqrt(2)))``.

    With ``approximate=True``: ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))``,
    computed as the equal ``x * sigmoid(2 * sqrt(2 / pi) * (x + 0.044715 * x**3))``
    (``1 + tanh(z) = 2 * sigmoid(2 * z)``), which keeps full relative precision in the
    negative tail where ``1 + tanh(z)`` cancels.

    Args:
        x: Input tensor.
        approximate: Whether to use the tanh approximation (Keras default ``False``).
    """
    if approximate:
        return x * torch.sigmoid((2.0 * _SQRT_2_OVER_PI) * (x + 0.044715 * torch.pow(x, 3)))
    # erfc(-x / sqrt(2)) == 1 + erf(x / sqrt(2)), but keeps full relative precision
    # in the negative tail (as TensorFlow's kernel does).
    return 0.5 * x * torch.special.erfc(-x * _SQRT_HALF)


def mish(x: Tensor) -> Tensor:
    """Mish: ``x * tanh(softplus(x))``.

    Args:
        x: Input tensor.
    """
    return x * torch.tanh(softplus(x))


def squareplus(x: Tensor, b: float = 4) -> Tensor:
    """Squareplus: ``(x + sqrt(x**2 + b)) / 2``.

    Computed without cancellation: with ``s = sqrt(x**2 + b)``, the result is
    ``(x + s) / 2`` for ``x >= 0`` and the equal ``b / (2 * (s - x))`` for ``x < 0``
    (``(s + x) * (s - x) = b``). The textbook form subtracts two nearly equal numbers
    for ``x << 0``: in float32 it gives ``squareplus(-1e4) = 0`` instead of ``1e-4``,
    and ``squareplus(-88)`` with only 12 correct bits (Keras computes it that way).

    Args:
        x: Input tensor.
        b: Smoothness parameter.
    """
    s = torch.sqrt(torch.square(x) + b)
    # `s + |x|` is `s - x` where it is used (x < 0) and stays >= s > 0 elsewhere, so the
    # branch not taken has no infinities to turn into NaN gradients.
    return torch.where(x < 0, (b / 2) / (s + torch.abs(x)), (x + s) / 2)


def log_sigmoid(x: Tensor) -> Tensor:
    """Log-sigmoid: ``log(1 / (1 + exp(-x)))``, computed stably.

    Args:
        x: Input tensor.
    """
    return F.logsigmoid(x)


def exponential(x: Tensor) -> Tensor:
    """Exponential: ``exp(x)``.

    Args:
        x: Input tensor.
    """
    return torch.exp(x)


def linear(x: Tensor) -> Tensor:
    """Linear (identity): ``x``.

    Args:
        x: Input tensor.
    """
    return x


def tanh_shrink(x: Tensor) -> Tensor:
    """Tanh shrink: ``x - tanh(x)``.

    Args:
        x: Input tensor.
    """
    return x - torch.tanh(x)


# --------------------------------------------------------------------------- #
# Piecewise-linear activations
# --------------------------------------------------------------------------- #
def hard_sigmoid(x: Tensor) -> Tensor:
    """Hard sigmoid: ``relu6(x + 3) / 6`` (``0`` below -3, ``1`` above 3).

    Args:
        x: Input tensor.
    """
    return F.relu6(x + 3.0) / 6.0


def hard_silu(x: Tensor) -> Tensor:
    """Hard SiLU / hard swish: ``x * relu6(x + 3) / 6``.

    Args:
        x: Input tensor.
    """
    return x * hard_sigmoid(x)


def hard_tanh(x: Tensor) -> Tensor:
    """Hard tanh: ``clip(x, -1, 1)``.

    Args:
        x: Input tensor.
    """
    return torch.clamp(x, min=-1.0, max=1.0)


def hard_shrink(x: Tensor, threshold: float = 0.5) -> Tensor:
    """Hard shrink: ``x`` if ``|x| > threshold`` else ``0``.

    Args:
        x: Input tensor.
        threshold: Half-width of the zeroed band.
    """
    return torch.where(torch.abs(x) > threshold, x, torch.zeros_like(x))


def soft_shrink(x: Tensor, threshold: float = 0.5) -> Tensor:
    """Soft shrink: ``x - threshold`` if ``x > threshold``, ``x + threshold`` if ``x < -threshold``, else ``0``.

    Args:
        x: Input tensor.
        threshold: Half-width of the zeroed band.
    """
    zero = torch.zeros_like(x)
    return torch.where(x > threshold, x - threshold, torch.where(x < -threshold, x + threshold, zero))


def sparse_plus(x: Tensor) -> Tensor:
    """SparsePlus: ``0`` for ``x <= -1``, ``(x + 1)**2 / 4`` for ``-1 < x < 1``, ``x`` for ``x >= 1``.

    Args:
        x: Input tensor.
    """
    return torch.where(
        x <= -1, torch.zeros_like(x), torch.where(x < 1, 0.25 * torch.square(x + 1), x)
    )


def sparse_sigmoid(x: Tensor) -> Tensor:
    """Sparse sigmoid: ``0`` for ``x <= -1``, ``(x + 1) / 2`` for ``-1 < x < 1``, ``1`` for ``x >= 1``.

    Args:
        x: Input tensor.
    """
    return torch.where(
        x <= -1,
        torch.zeros_like(x),
        torch.where(x >= 1, torch.ones_like(x), 0.5 * (x + 1)),
    )


# --------------------------------------------------------------------------- #
# Activations over an axis
# --------------------------------------------------------------------------- #
def _reduction_dims(x: Tensor, axis: Axis, name: str) -> tuple[int, ...] | None:
    """Normalises ``axis`` to a tuple of dims, or ``None`` for a single int axis."""
    if axis is None:
        return tuple(range(x.dim()))
    if isinstance(axis, bool) or not isinstance(axis, (int, tuple, list)):
        raise ArgumentTypeError(
            f"`axis` of `{name}` must be an int, a tuple of ints or None. "
            f"Received: axis={axis!r}."
        )
    if isinstance(axis, int):
        return None
    return tuple(int(a) for a in axis)


def softmax(x: Tensor, axis: Axis = -1) -> Tensor:
    """Softmax: ``exp(x) / sum(exp(x), axis)``.

    Args:
        x: Input tensor.
        axis: Axis (or tuple of axes, or ``None`` for all) along which to normalise.
    """
    dims = _reduction_dims(x, axis, "softmax")
    if dims is None:
        return F.softmax(x, dim=axis)
    if len(dims) == 0:
        return torch.ones_like(x)
    return torch.exp(x - torch.logsumexp(x, dim=dims, keepdim=True))


def log_softmax(x: Tensor, axis: Axis = -1) -> Tensor:
    """Log-softmax: ``x - log(sum(exp(x), axis))``.

    Args:
        x: Input tensor.
        axis: Axis (or tuple of axes, or ``None`` for all) along which to normalise.
    """
    dims = _reduction_dims(x, axis, "log_softmax")
    if dims is None:
        return F.log_softmax(x, dim=axis)
    if len(dims) == 0:
        return torch.zeros_like(x)
    return x - torch.logsumexp(x, dim=dims, keepdim=True)


def glu(x: Tensor, axis: int = -1) -> Tensor:
    """Gated linear unit: ``a * sigmoid(b)`` where ``x`` is split in halves ``a, b`` along ``axis``.

    Args:
        x: Input tensor; its size along ``axis`` must be even.
        axis: Axis along which to split.
    """
    size = x.shape[axis]
    if size % 2 != 0:
        raise InputShapeError(
            f"`glu` needs an even size along axis {axis}. "
            f"Received: x.shape={tuple(x.shape)}."
        )
    a, b = torch.split(x, size // 2, dim=axis)
    return a * torch.sigmoid(b)


def sparsemax(x: Tensor, axis: int = -1) -> Tensor:
    """Sparsemax: ``max(x - tau(x), 0)``, the Euclidean projection of ``x`` onto the simplex.

    ``tau`` is chosen so that the output sums to 1 along ``axis``:
    ``tau = (sum_{j <= k} z_(j) - 1) / k`` with ``z`` sorted descending and
    ``k`` the support size (Martins & Astudillo, 2016).

    Args:
        x: Input tensor.
        axis: Axis along which sparsemax is applied.
    """
    n = x.shape[axis]
    z_sorted, _ = torch.sort(x, dim=axis, descending=True)
    cumsum = torch.cumsum(z_sorted, dim=axis)
    view = [1] * x.dim()
    view[axis] = n
    r = torch.arange(1, n + 1, device=x.device, dtype=x.dtype).view(view)
    support = z_sorted - (cumsum - 1) / r > 0
    k = torch.sum(support.to(x.dtype), dim=axis, keepdim=True)
    support_sum = torch.sum(torch.where(support, z_sorted, torch.zeros_like(z_sorted)), dim=axis, keepdim=True)
    tau = (support_sum - 1) / k
    return torch.clamp(x - tau, min=0.0)


# Keras aliases.
swish = silu
hard_swish = hard_silu

# --------------------------------------------------------------------------- #
# Registry
# --------------------------------------------------------------------------- #
_BUILTINS: tuple[Callable[..., Tensor], ...] = (
    celu,
    elu,
    exponential,
    gelu,
    glu,
    hard_shrink,
    hard_sigmoid,
    hard_silu,
    hard_tanh,
    leaky_relu,
    linear,
    log_sigmoid,
    log_softmax,
    mish,
    relu,
    relu6,
    selu,
    sigmoid,
    silu,
    soft_shrink,
    softmax,
    softplus,
    softsign,
    sparse_plus,
    sparse_sigmoid,
    sparsemax,
    squareplus,
    tanh,
    tanh_shrink,
    threshold,
)

_REGISTRY: dict[str, Callable[..., Tensor]] = {fn.__name__: fn for fn in _BUILTINS}
_REGISTRY["swish"] = silu
_REGISTRY["hard_swish"] = hard_silu

# Function object -> canonical Keras name (aliases serialise to the real name).
_CANONICAL: dict[Callable[..., Tensor], str] = {fn: fn.__name__ for fn in _BUILTINS}
_NAMES: NameTable[Callable[..., Tensor]] = NameTable("activation", _REGISTRY)


def names() -> list[str]:
    """Returns every activation name :func:`get` accepts, sorted.

    Returns:
        Sorted list of names, aliases (``"swish"``, ``"hard_swish"``) included.
    """
    return _NAMES.names()


def get(identifier: str | Callable[..., Tensor] | dict[str, object] | None) -> Callable[..., Tensor]:
    """Resolves an activation identifier to a function.

    Args:
        identifier: A Keras activation name (case-sensitive, e.g. ``"relu"``,
            ``"swish"``), ``None`` (meaning ``linear``), a callable (returned
            unchanged), or a Keras serialized dict whose ``"config"`` is a name.

    Returns:
        A callable mapping a tensor to a tensor.

    Raises:
        UnknownNameError: ``identifier`` is a string that names no activation.
        ArgumentTypeError: ``identifier`` is of an unsupported type.
    """
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        return _NAMES.lookup(identifier)
    if isinstance(identifier, dict):
        config = identifier.get("config")
        if isinstance(config, str):
            return get(config)
        raise ArgumentError(
            "`activation` given as a dict must hold the activation name under 'config'. "
            f"Received: activation={identifier!r}."
        )
    if callable(identifier):
        return identifier
    raise ArgumentTypeError(
        "`activation` must be a string, a callable or None. "
        f"Received: activation={identifier!r} (of type {type(identifier).__name__})."
    )


def name_of(activation: Callable[..., Tensor] | None) -> str | None:
    """The canonical Keras name of a built-in activation, ``None`` for any other callable."""
    try:
        return _CANONICAL.get(get(activation))
    except (TypeError, ArgumentError):
        return None


def serialize(activation: str | Callable[..., Tensor] | None) -> str:
    """Returns the canonical Keras name of a built-in activation.

    Aliases serialise to the name Keras stores (``swish`` -> ``"silu"``,
    ``hard_swish`` -> ``"hard_silu"``); ``None`` gives ``"linear"``.

    Args:
        activation: A built-in activation function, a name, or ``None``.

    Returns:
        The canonical name, usable with :func:`get`.

    Raises:
        ArgumentError: ``activation`` is a callable that is not a built-in.
        UnknownNameError: ``activation`` is an unknown name.
    """
    fn = get(activation)
    try:
        return _CANONICAL[fn]
    except (KeyError, TypeError):
        pass
    raise ArgumentError(
        "`get_config` can only write built-in activations, by name: a custom callable has no Keras name "
        f"(the layer computes with it all the same). Received: activation={getattr(activation, '__name__', activation)!r}."
    )


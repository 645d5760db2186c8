"""Keras weight regularizers implemented with PyTorch.

A regularizer is called on a weight tensor and returns a scalar penalty tensor
(same dtype and device as the weight) to add to the loss. Use :func:`get` to
resolve an identifier and :func:`serialize` for the Keras
``{"class_name": ..., "config": ...}`` form.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .errors import ArgumentError, ArgumentTypeError, InputShapeError
from .naming import Registry

__all__ = ["Regularizer", "L1", "L2", "L1L2", "OrthogonalRegularizer", "get", "serialize", "names"]

_EPSILON = 1e-7  # keras.backend.epsilon()


def _validate_factor(value: Any, name: str) -> float:
    """Checks a penalty factor is a finite, non-negative number and returns it as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"`{name}` must be a non-negative float. Received: {name}={value!r}.")
    if math.isinf(value) or math.isnan(value) or value < 0:
        raise ArgumentError(f"`{name}` must be a non-negative float. Received: {name}={value!r}.")
    return float(value)


class Regularizer:
    """Base class: ``reg(weight) -> scalar tensor`` penalty.

    Subclasses implement :meth:`__call__` and :meth:`get_config`.
    """

    def __call__(self, x: Tensor) -> Tensor:
        """Returns the penalty for ``x`` (the base class returns zero).

        Args:
            x: Weight tensor.
        """
        return torch.zeros((), dtype=x.dtype, device=x.device)

    def get_config(self) -> dict[str, Any]:
        """Returns the constructor arguments as a JSON-serialisable dict."""
        raise NotImplementedError(f"{type(self).__name__} does not implement `get_config`.")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Regularizer:
        """Builds a regularizer from the output of :meth:`get_config`.

        Args:
            config: The constructor arguments, as :meth:`get_config` returns them.
        """
        return cls(**config)

    def __repr__(self) -> str:
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = ""
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()  # type: ignore[union-attr]

    __hash__ = object.__hash__


class L1L2(Regularizer):
    """L1 and L2 penalty: ``l1 * sum(|x|) + l2 * sum(x**2)``.

    Args:
        l1: L1 factor (``None`` means 0).
        l2: L2 factor (``None`` means 0).
    """

    def __init__(self, l1: float | None = 0.0, l2: float | None = 0.0) -> None:
        self.l1 = _validate_factor(0.0 if l1 is None else l1, "l1")
        self.l2 = _validate_factor(0.0 if l2 is None else l2, "l2")

    def __call__(self, x: Tensor) -> Tensor:
        """Returns ``l1 * sum(|x|) + l2 * sum(x**2)`` as a scalar tensor.

        Args:
            x: Weight tensor.
        """
        penalty = torch.zeros((), dtype=x.dtype, device=x.device)
        if self.l1 != 0.0:
            penalty = penalty + self.l1 * torch.sum(torch.abs(x))
        if self.l2 != 0.0:
            penalty = penalty + self.l2 * torch.sum(torch.square(x))
        return penalty

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """L1 penalty: ``l1 * sum(|x|)``.

    Args:
        l1: L1 factor (``None`` means the default 0.01).
    """

    def __init__(self, l1: float | None = 0.01) -> None:
        self.l1 = _validate_factor(0.01 if l1 is None else l1, "l1")

    def __call__(self, x: Tensor) -> Tensor:
        """Returns ``l1 * sum(|x|)`` as a scalar tensor.

        Args:
            x: Weight tensor.
        """
        return self.l1 * torch.sum(torch.abs(x))

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1}


class L2(Regularizer):
    """L2 penalty: ``l2 * sum(x**2)`` (no factor 1/2).

    Args:
        l2: L2 factor (``None`` means the default 0.01).
    """

    def __init__(self, l2: float | None = 0.01) -> None:
        self.l2 = _validate_factor(0.01 if l2 is None else l2, "l2")

    def __call__(self, x: Tensor) -> Tensor:
        """Returns ``l2 * sum(x**2)`` as a scalar tensor.

        Args:
            x: Weight tensor.
        """
        return self.l2 * torch.sum(torch.square(x))

    def get_config(self) -> dict[str, Any]:
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Penalises non-orthogonal rows (or columns) of a 2-D weight.

    With ``v_i`` the L2-normalised rows (``mode="rows"``) or columns
    (``mode="columns"``) of ``x`` and ``n`` their count:
    ``factor * 0.5 * sum_{i != j} |v_i . v_j| / (n * (n - 1) / 2)``.

    Args:
        factor: Regularization factor.
        mode: ``"rows"`` or ``"columns"``.
    """

    def __init__(self, factor: float = 0.01, mode: str = "rows") -> None:
        self.factor = _validate_factor(factor, "factor")
        if mode not in ("rows", "columns"):
            raise ArgumentError(f"`mode` must be one of ['columns', 'rows']. Received: mode={mode!r}.")
        self.mode = mode

    def __call__(self, x: Tensor) -> Tensor:
        """Returns the orthogonality penalty of the 2-D weight ``x``.

        Args:
            x: Rank-2 weight tensor.
        """
        if x.dim() != 2:
            raise InputShapeError(
                "`OrthogonalRegularizer` needs a rank-2 weight. "
                f"Received: x.shape={tuple(x.shape)}."
            )
        axis = 1 if self.mode == "rows" else 0
        # Keras's L2 normalisation: x * min(rsqrt(sum(x**2)), 1 / epsilon).
        inv_norm = torch.rsqrt(torch.sum(torch.square(x), dim=axis, keepdim=True))
        # (1 / epsilon overflows float16; cap at the dtype's largest value there.)
        inv_norm = torch.clamp(inv_norm, max=min(1.0 / _EPSILON, torch.finfo(x.dtype).max))
        v = x * inv_norm
        if self.mode == "rows":
            product = v @ v.T
            size = x.shape[0]
        else:
            product = v.T @ v
            size = x.shape[1]
        off_diagonal = product * (1.0 - torch.eye(size, dtype=x.dtype, device=x.device))
        num_pairs = size * (size - 1.0) / 2.0
        return self.factor * 0.5 * torch.sum(torch.abs(off_diagonal)) / num_pairs

    def get_config(self) -> dict[str, Any]:
        return {"factor": self.factor, "mode": self.mode}


_CLASSES = (L1, L1L2, L2, OrthogonalRegularizer)
_REGISTRY: dict[str, type[Regularizer]] = {cls.__name__: cls for cls in _CLASSES}
_REGISTRY.update({"l1": L1, "l2": L2, "l1l2": L1L2, "orthogonal_regularizer": OrthogonalRegularizer})
# Keras 2 / documented string alias; `get("l1_l2")` uses l1=l2=0.01 as Keras documents.
_REGISTRY["l1_l2"] = L1L2
_STRING_DEFAULTS: dict[str, dict[str, Any]] = {"l1_l2": {"l1": 0.01, "l2": 0.01}}
_NAMES = Registry("regularizer", "keras.regularizers", Regularizer, _REGISTRY, _STRING_DEFAULTS)


def names() -> list[str]:
    """Returns every regularizer name :func:`get` accepts, sorted."""
    return _NAMES.names()


def get(
    identifier: str | dict[str, Any] | Regularizer | type[Regularizer] | Callable[[Tensor], Tensor] | None,
) -> Callable[[Tensor], Tensor] | None:
    """Resolves a regularizer identifier.

    Args:
        identifier: A name (``"l1"``, ``"l2"``, ``"l1l2"``/``"L1L2"`` (zero
            factors, as in Keras 3), ``"l1_l2"`` (l1=l2=0.01),
            ``"orthogonal_regularizer"``, class names...), a Keras serialized
            dict, a regularizer class (instantiated with defaults), an instance
            or callable (returned unchanged), or ``None``.

    Returns:
        A regularizer (``None`` for ``None``).

    Raises:
        UnknownNameError: the name (or ``class_name``) names no regularizer.
        ArgumentError: a dict without ``class_name``.
        ArgumentTypeError: an identifier of an unsupported type.
    """
    return _NAMES.get(identifier)


def serialize(regularizer: Regularizer | str | dict[str, Any] | None) -> dict[str, Any] | None:
    """Returns the Keras serialized form ``{"module", "class_name", "config", "registered_name"}``.

    Args:
        regularizer: A regularizer instance, a name, a dict or ``None``.

    Returns:
        The serialized dict (``None`` for ``None``).

    Raises:
        ArgumentTypeError: ``regularizer`` is a callable that is not a :class:`Regularizer`.
    """
    return _NAMES.serialize(regularizer)

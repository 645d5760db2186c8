"""Keras weight constraints implemented with PyTorch.

A constraint is called on a weight tensor and returns the projected weight (a
new tensor of the same shape and dtype); the caller assigns it back, usually
under ``torch.no_grad()`` after an optimizer step. Norms are taken along
``axis`` of the Keras-layout weight (e.g. ``axis=0`` of a ``(in, out)`` dense
kernel constrains each output unit's incoming weights). Use :func:`get` to
resolve an identifier and :func:`serialize` for the Keras serialized form.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from .errors import ArgumentTypeError
from .naming import Registry

__all__ = ["Constraint", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "get", "serialize", "names"]

_EPSILON = 1e-7  # keras.backend.epsilon()

AxisLike = int | Sequence[int]


def _check_axis(axis: Any) -> int | list[int]:
    if isinstance(axis, bool):
        raise ArgumentTypeError(f"`axis` must be an int or a list of ints. Received: axis={axis!r}.")
    if isinstance(axis, int):
        return axis
    if isinstance(axis, (list, tuple)) and all(isinstance(a, int) and not isinstance(a, bool) for a in axis):
        return list(axis)
    raise ArgumentTypeError(f"`axis` must be an int or a list of ints. Received: axis={axis!r}.")


def _check_number(value: Any, name: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"`{name}` must be a number. Received: {name}={value!r}.")
    return value


def _norms(w: Tensor, axis: int | list[int]) -> Tensor:
    dims = axis if isinstance(axis, int) else tuple(axis)
    return torch.sqrt(torch.sum(torch.square(w), dim=dims, keepdim=True))


class Constraint:
    """Base class: ``constraint(w) -> projected w`` (the base class returns ``w``)."""

    def __call__(self, w: Tensor) -> Tensor:
        """Returns the projected weight.

        Args:
            w: Weight tensor.
        """
        return w

    def get_config(self) -> dict[str, Any]:
        """Returns the constructor arguments as a JSON-serialisable dict."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Constraint:
        """Builds a constraint from the output of :meth:`get_config`.

        Args:
            config: The constructor arguments, as :meth:`get_config` returns them.
        """
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()  # type: ignore[union-attr]

    __hash__ = object.__hash__


class MaxNorm(Constraint):
    """Caps the norm along ``axis``: ``w * clip(norm, 0, max_value) / (epsilon + norm)``.

    ``norm = sqrt(sum(w**2, axis))`` and ``epsilon = 1e-7``.

    Args:
        max_value: Maximum norm of the incoming weights.
        axis: Axis (or list of axes) along which norms are computed; for a
            Keras ``(kh, kw, in, out)`` conv kernel use ``[0, 1, 2]``.
    """

    def __init__(self, max_value: float = 2, axis: AxisLike = 0) -> None:
        self.max_value = _check_number(max_value, "max_value")
        self.axis = _check_axis(axis)

    def __call__(self, w: Tensor) -> Tensor:
        """Returns ``w`` rescaled so each norm is at most ``max_value``.

        Args:
            w: Weight tensor.
        """
        norms = _norms(w, self.axis)
        desired = torch.clamp(norms, 0, self.max_value)
        return w * (desired / (_EPSILON + norms))

    def get_config(self) -> dict[str, Any]:
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Non-negative weights: ``max(w, 0)``."""

    def __call__(self, w: Tensor) -> Tensor:
        """Returns ``max(w, 0)``.

        Args:
            w: Weight tensor.
        """
        return torch.clamp(w, min=0)


class UnitNorm(Constraint):
    """Unit norm along ``axis``: ``w / (epsilon + sqrt(sum(w**2, axis)))``.

    Args:
        axis: Axis (or list of axes) along which norms are computed.
    """

    def __init__(self, axis: AxisLike = 0) -> None:
        self.axis = _check_axis(axis)

    def __call__(self, w: Tensor) -> Tensor:
        """Returns ``w`` divided by its norms.

        Args:
            w: Weight tensor.
        """
        return w / (_EPSILON + _norms(w, self.axis))

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Keeps norms in ``[min_value, max_value]``: ``w * desired / (epsilon + norm)``.

    ``desired = rate * clip(norm, min_value, max_value) + (1 - rate) * norm``.

    Args:
        min_value: Minimum norm.
        max_value: Maximum norm.
        rate: Enforcement rate; 1.0 is strict, smaller values move towards the interval.
        axis: Axis (or list of axes) along which norms are computed.
    """

    def __init__(
        self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis: AxisLike = 0
    ) -> None:
        self.min_value = _check_number(min_value, "min_value")
        self.max_value = _check_number(max_value, "max_value")
        self.rate = _check_number(rate, "rate")
        self.axis = _check_axis(axis)

    def __call__(self, w: Tensor) -> Tensor:
        """Returns ``w`` rescaled towards norms within ``[min_value, max_value]``.

        Args:
            w: Weight tensor.
        """
        norms = _norms(w, self.axis)
        desired = self.rate * torch.clamp(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return w * (desired / (_EPSILON + norms))

    def get_config(self) -> dict[str, Any]:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


_CLASSES = (MaxNorm, MinMaxNorm, NonNeg, UnitNorm)
_REGISTRY: dict[str, type[Constraint]] = {cls.__name__: cls for cls in _CLASSES}
_REGISTRY.update({"max_norm": MaxNorm, "min_max_norm": MinMaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm})
_NAMES = Registry("constraint", "keras.constraints", Constraint, _REGISTRY)


def names() -> list[str]:
    """Returns every constraint name :func:`get` accepts, sorted."""
    return _NAMES.names()


def get(
    identifier: str | dict[str, Any] | Constraint | type[Constraint] | Callable[[Tensor], Tensor] | None,
) -> Callable[[Tensor], Tensor] | None:
    """Resolves a constraint identifier.

    Args:
        identifier: A name (``"max_norm"``, ``"MaxNorm"``, ``"non_neg"``...), a
            Keras serialized dict, a constraint class (instantiated with
            defaults), an instance or callable (returned unchanged), or ``None``.

    Returns:
        A constraint (``None`` for ``None``).

    Raises:
        UnknownNameError: the name (or ``class_name``) names no constraint.
        ArgumentError: a dict without ``class_name``.
        ArgumentTypeError: an identifier of an unsupported type.
    """
    return _NAMES.get(identifier)


def serialize(constraint: Constraint | str | dict[str, Any] | None) -> dict[str, Any] | None:
    """Returns the Keras serialized form ``{"module", "class_name", "config", "registered_name"}``.

    Args:
        constraint: A constraint instance, a name, a dict or ``None``.

    Returns:
        The serialized dict (``None`` for ``None``).

    Raises:
        ArgumentTypeError: ``constraint`` is a callable that is not a :class:`Constraint`.
    """
    return _NAMES.serialize(constraint)

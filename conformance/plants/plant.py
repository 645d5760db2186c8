"""`Plant` and the fault-making helpers that name no layer."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from typing import Any
from unittest import mock

import torch

from xlayers import activations

__all__ = ["Plant", "ScaleGrad", "drop_constructor_argument", "swap_activation"]


@dataclass(frozen=True)
class Plant:
    """One planted fault.

    Args:
        name: stable id (the pytest item).
        imitates: one line: the real-world converter mistake it reproduces.
        case_ids: registry case ids that can see the fault (at least one must fail).
        install: a zero-argument factory of the context manager that installs the fault.
        gradient_only: the forward pass stays exact; only gradients are wrong.
        dtype: the record's dtype its cases run in (a mixed policy for a mixed-precision fault).
        harness_gap: empty for a plant the harness catches. Otherwise why the harness, as it
            stands, misses it (or catches it only by crashing): the plant stays registered,
            unweakened, as a strict expected failure that turns into a test failure once the
            harness is fixed (then clear this field).
    """

    name: str
    imitates: str
    case_ids: tuple[str, ...]
    install: Callable[[], ContextManager[None]]
    gradient_only: bool = False
    harness_gap: str = ""
    dtype: str = "float32"

    def installed(self) -> ContextManager[None]:
        """The fault, installed for the duration of a ``with`` block."""
        return self.install()


@contextlib.contextmanager
def swap_activation(name: str, computed_as: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Resolve the activation ``name`` to a function that still serialises as ``name`` (so the
    Keras twin is built with the right one) but computes ``computed_as``: a wrong entry in a
    converter's op table."""

    def impostor(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return computed_as(x)

    impostor.__name__ = name
    with mock.patch.dict(activations._REGISTRY, {name: impostor}), mock.patch.dict(activations._CANONICAL, {impostor: name}):
        yield


class ScaleGrad(torch.autograd.Function):
    """Identity forward (bit-exact); backward multiplies the gradient by ``factor``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, factor: float) -> torch.Tensor:
        ctx.factor = factor
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.factor, None


def drop_constructor_argument(cls: type, name: str, value: Any) -> ContextManager[Any]:
    """``cls(...)`` forces ``name=value`` whatever the caller asked (the layer's config then
    reports what it runs, not what was requested)."""
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if name in kwargs:
            kwargs[name] = value
        original(self, *args, **kwargs)

    return mock.patch.object(cls, "__init__", __init__)

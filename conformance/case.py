"""Plain-data conformance cases and the per-layer registry entry.

A `Case` is a layer class, its constructor arguments, an input shape, call arguments as
data (mask kind, initial state, consecutive calls) and dtypes. Its id, ``<layer>/<variant>``,
is stable and readable; reports and pytest items use it. A `LayerInfo` gathers a layer's
cases, the bad inputs it must refuse, and any tolerance overrides or skips, each with its
reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xlayers.layer import Layer, _snake_case

__all__ = ["Case", "ErrorCase", "LayerInfo", "Override"]

MASK_KINDS = ("right", "holey", "left", "empty-row")
HALF_DTYPES = ("float16", "bfloat16")


@dataclass(frozen=True)
class Case:
    """One configuration of one layer, compared with Keras.

    Args:
        layer: the xlayers class (its Keras twin has the same name).
        variant: the part of the id after the slash.
        kwargs: constructor arguments (Keras names).
        input_shape: the input's shape, batch first.
        mask: ``None`` or a kind of ``(batch, time)`` mask: ``right`` (padding at the end),
            ``holey`` (gaps anywhere), ``left``, ``empty-row`` (one row fully masked).
        initial_state: pass random ``[h, c]`` initial states.
        calls: consecutive calls on fresh inputs (``stateful`` layers carry state over).
        training: call in training mode; the dropout masks xlayers draws are handed to Keras,
            so both frameworks drop the same units.
        path: the kernel path xlayers must take (``"fused"`` or ``"loop"``), if it matters.
        dtypes: dtypes to run; float16/bfloat16 check the forward pass only.
    """

    layer: type[Layer]
    variant: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    input_shape: tuple[int, ...] = ()
    mask: str | None = None
    initial_state: bool = False
    calls: int = 1
    training: bool = False
    path: str | None = None
    dtypes: tuple[str, ...] = ("float32",)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9_.x=-]+", self.variant):
            raise ValueError(f"case variant {self.variant!r} must be lower-case letters, digits and -_.x=")
        if self.mask is not None and self.mask not in MASK_KINDS:
            raise ValueError(f"case {self.id}: mask must be one of {MASK_KINDS}")

    @property
    def id(self) -> str:
        return f"{_snake_case(self.layer.__name__)}/{self.variant}"


@dataclass(frozen=True)
class ErrorCase:
    """A bad construction or input the layer must refuse with a clear error."""

    variant: str
    kwargs: Mapping[str, Any]
    error: type[BaseException]
    pattern: str
    input_shape: tuple[int, ...] | None = None  # the bad input (after building on `first_input_shape`)
    first_input_shape: tuple[int, ...] | None = None
    input_dtype: str = "float32"


@dataclass(frozen=True)
class Override:
    """A tolerance override for some cases: rtol and atol together, and why."""

    rtol: float
    atol: float
    reason: str


@dataclass(frozen=True)
class LayerInfo:
    """A layer's entry in the registry."""

    cls: type[Layer]
    cases: tuple[Case, ...]
    error_cases: tuple[ErrorCase, ...] = ()
    tolerances: Mapping[str, Override] = field(default_factory=dict)  # case id (or "*") -> override
    skips: Mapping[str, str] = field(default_factory=dict)  # case id -> reason
    # case id -> a documented difference from Keras: the case passes only while Keras still
    # differs (the correct value is tested against its definition in the unit tests)
    deviations: Mapping[str, str] = field(default_factory=dict)

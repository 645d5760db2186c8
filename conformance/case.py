"""Plain-data conformance cases and the per-layer registry entry.

A `Case` is a layer class, its constructor arguments, its inputs as specs (a shape, or a
`TensorSpec` with a dtype and a value range, alone or in a list or dict), call arguments as
data, expectations, and the dtypes to run. Its id, ``<layer>/<variant>``, is stable and
readable; reports and pytest items use it. What the call arguments and expectations mean is
up to the family's `Driver` (``conformance/cases/<family>.py``): the runner reads neither.

A `LayerInfo` gathers a layer's cases, its driver, the bad inputs it must refuse, and any
tolerance overrides, skips and documented deviations, each with its reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from xlayers.layer import Layer, _snake_case, map_structure

from .driver import Driver

__all__ = ["Case", "ErrorCase", "LayerInfo", "Override", "TensorSpec"]

HALF_DTYPES = ("float16", "bfloat16")
_VARIANT = re.compile(r"[a-z0-9_.x=-]+")
_NOT_IN_GRAPH = ("_initializer", "_regularizer", "_constraint", "unit_forget_bias")


@dataclass(frozen=True)
class TensorSpec:
    """One input of a case.

    Args:
        shape: the shape, batch first.
        dtype: ``"float"`` (the record's dtype: random signed normals), or an integer or bool
            dtype name (``"int64"``, ``"int32"``, ``"bool"``).
        low, high: the range ``[low, high)`` of integer inputs (token ids).
    """

    shape: tuple[int, ...]
    dtype: str = "float"
    low: int = 0
    high: int = 2

    @property
    def is_float(self) -> bool:
        return self.dtype == "float"


def _as_spec(value: Any) -> Any:
    if isinstance(value, TensorSpec):
        return value
    if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
        return TensorSpec(value)
    raise ValueError(f"a case input must be a shape tuple or a TensorSpec, or a list/dict of them. Received: {value!r}")


@dataclass(frozen=True)
class Case:
    """One configuration of one layer, compared with Keras.

    Args:
        layer: the xlayers class (its Keras twin has the same name).
        variant: the part of the id after the slash.
        kwargs: constructor arguments (Keras names).
        inputs: a shape (one float input), a `TensorSpec`, or a list or dict of them.
        call: call arguments as data, interpreted by the family's driver (e.g.
            ``{"mask": "right", "initial_state": True}``); ``"training"`` is generic.
        calls: consecutive calls on fresh inputs (``stateful`` layers carry state over).
        expect: expectations the family's driver checks (e.g. ``{"path": "fused"}``).
        dtypes: dtypes to run; float16/bfloat16 check the forward pass only, as do Keras's mixed
            policies ``mixed_float16``/``mixed_bfloat16`` (float32 weights, computation in the half
            type, on both sides).
    """

    layer: type[Layer]
    variant: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    inputs: Any = ()
    call: Mapping[str, Any] = field(default_factory=dict)
    calls: int = 1
    expect: Mapping[str, Any] = field(default_factory=dict)
    dtypes: tuple[str, ...] = ("float32",)

    def __post_init__(self) -> None:
        if not _VARIANT.fullmatch(self.variant):
            raise ValueError(f"case variant {self.variant!r} must be lower-case letters, digits and -_.x=")
        object.__setattr__(self, "inputs", map_structure(_as_spec, self.inputs))

    @property
    def id(self) -> str:
        return f"{_snake_case(self.layer.__name__)}/{self.variant}"

    @property
    def training(self) -> bool:
        return bool(self.call.get("training", False))

    @property
    def first_input(self) -> TensorSpec:
        specs: list[TensorSpec] = []
        map_structure(specs.append, self.inputs)
        return specs[0]

    def configuration(self) -> str:
        """What decides the exported graph, as a JSON string: the case without its sizes and
        without the arguments that only set initial values or training penalties."""
        ranks = map_structure(lambda spec: (len(spec.shape), spec.dtype), self.inputs)
        kwargs = {k: v for k, v in self.kwargs.items() if not k.endswith(_NOT_IN_GRAPH)}
        return json.dumps([self.layer.__name__, kwargs, dict(self.call), ranks], sort_keys=True, default=str)


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
    call: Mapping[str, Any] = field(default_factory=dict)  # call arguments of the bad call


@dataclass(frozen=True)
class Override:
    """A tolerance override for some cases: rtol and atol together, and why."""

    rtol: float
    atol: float
    reason: str


@dataclass(frozen=True)
class LayerInfo:
    """A layer's entry in the registry.

    Args:
        cls: the layer class.
        cases: its conformance cases.
        error_cases: the bad inputs it must refuse.
        driver: how the family's cases are fed, called and checked (`Driver` by default).
        tolerances: case id (or ``"*"``) -> `Override`.
        skips: case id -> why it does not run.
        deviations: case id -> a documented difference from Keras: the case passes only while
            Keras still differs (the correct value is tested against its definition elsewhere).
        onnx_group: cases with the same key share one ONNX check (default: the same
            configuration at other sizes, `Case.configuration`).
    """

    cls: type[Layer]
    cases: tuple[Case, ...]
    error_cases: tuple[ErrorCase, ...] = ()
    driver: Driver = field(default_factory=Driver)
    tolerances: Mapping[str, Override] = field(default_factory=dict)
    skips: Mapping[str, str] = field(default_factory=dict)
    deviations: Mapping[str, str] = field(default_factory=dict)
    onnx_group: Callable[[Case], Hashable] | None = None

    def error_id(self, error_case: ErrorCase) -> str:
        """``<layer>/error-<variant>``: the one spelling of an error case's id."""
        return f"{_snake_case(self.cls.__name__)}/error-{error_case.variant}"

    def onnx_key(self, case: Case) -> Hashable:
        return self.onnx_group(case) if self.onnx_group is not None else case.configuration()

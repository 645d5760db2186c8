"""Graph operations that are not layers: Keras 3's ``keras.src.ops.*`` nodes.

Keras writes ``x + 3.0``, ``x * (1 / 6)``, ``x[:, 1:4]``, ``ops.relu(x)`` or ``inputs + y``
on symbolic tensors as operation nodes of the functional graph (``{"module":
"keras.src.ops.numpy", "class_name": "Add", ...}``): they hold no weights, are not in
``model.layers`` and have no group in a ``.keras`` weights file. One registry, `OPS`, keyed
by the serialized name (``"numpy.Add"``, ``"nn.Relu"``), maps each to the torch function
that computes it; an `Operation` is one node of that kind with its configuration (``axis``,
``keepdims``, ...). The same operators on `KerasTensor`s (``+``, ``*``, ``[]``, ...) record
these nodes, as Keras's ``KerasTensor`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from .errors import ArgumentError
from .layer import _snake_case, _unique_name

__all__ = ["OPS", "OpSpec", "Operation", "deserialize_key", "serialize_key"]


class OpSpec(NamedTuple):
    """One kind of graph operation: Keras's module suffix (``numpy``, ``nn``, ``core``), its
    class name, and the torch function (the call's arguments, then the node's configuration
    as keywords)."""

    module: str
    class_name: str
    fn: Callable[..., Any]


def _axis(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


def _reduce(reduction: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    def reduce(x: torch.Tensor, axis: Any = None, keepdims: bool = False, **_: Any) -> torch.Tensor:
        dims = tuple(range(x.dim())) if axis is None else _axis(axis)
        return reduction(x, dim=dims, keepdim=keepdims)

    return reduce


def _mean(x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    return _reduce(torch.mean)(x if x.is_floating_point() else x.to(torch.get_default_dtype()), **kwargs)


def _cast(x: torch.Tensor, dtype: Any) -> torch.Tensor:
    name = dtype.get("config", {}).get("name") if isinstance(dtype, Mapping) else dtype
    return x.to(getattr(torch, name))


def _getitem(x: torch.Tensor, key: Any) -> torch.Tensor:
    return x[tuple(key) if isinstance(key, list) else key]


def _clip(x: torch.Tensor, x_min: Any, x_max: Any) -> torch.Tensor:
    return torch.clamp(x, x_min, x_max)


OPS: dict[str, OpSpec] = {}


def _register(module: str, class_name: str, fn: Callable[..., Any]) -> None:
    OPS[f"{module}.{class_name}"] = OpSpec(module, class_name, fn)


def _binary(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[[Any, Any], torch.Tensor]:
    """``fn`` on two operands, either of which may be a Python number (a 0-d tensor then: it
    takes part in type promotion as Keras's weakly typed scalars do)."""

    def apply(x1: Any, x2: Any) -> torch.Tensor:
        device = x1.device if torch.is_tensor(x1) else x2.device if torch.is_tensor(x2) else None
        return fn(*(x if torch.is_tensor(x) else torch.as_tensor(x, device=device) for x in (x1, x2)))

    return apply


for _name, _fn in {
    "Add": torch.add, "Subtract": torch.sub, "Multiply": torch.mul, "Divide": torch.true_divide,
    "TrueDivide": torch.true_divide, "FloorDivide": torch.floor_divide, "Mod": torch.remainder, "Power": torch.pow,
    "Matmul": torch.matmul, "Less": torch.lt, "LessEqual": torch.le, "Greater": torch.gt, "GreaterEqual": torch.ge,
    "Equal": torch.eq, "NotEqual": torch.ne, "LogicalAnd": torch.logical_and, "LogicalOr": torch.logical_or,
    "Maximum": torch.maximum, "Minimum": torch.minimum,
}.items():
    _register("numpy", _name, _binary(_fn))
for _name, _fn in {
    "Negative": torch.neg, "Absolute": torch.abs, "Abs": torch.abs, "LogicalNot": torch.logical_not, "Sqrt": torch.sqrt,
    "Square": torch.square, "Exp": torch.exp, "Log": torch.log, "Tanh": torch.tanh, "Sign": torch.sign,
}.items():
    _register("numpy", _name, _fn)
_register("numpy", "Mean", _mean)
_register("numpy", "Sum", _reduce(torch.sum))
_register("numpy", "Max", _reduce(torch.amax))
_register("numpy", "Min", _reduce(torch.amin))
_register("numpy", "Any", _reduce(lambda x, dim, keepdim: torch.any(x.bool(), dim=dim, keepdim=keepdim)))
_register("numpy", "All", _reduce(lambda x, dim, keepdim: torch.all(x.bool(), dim=dim, keepdim=keepdim)))
_register("numpy", "Reshape", lambda x, newshape: torch.reshape(x, tuple(newshape)))
_register("numpy", "Transpose", lambda x, axes=None: x.permute(*axes) if axes is not None else x.permute(*reversed(range(x.dim()))))
_register("numpy", "ExpandDims", lambda x, axis: torch.unsqueeze(x, axis))
_register("numpy", "Squeeze", lambda x, axis=None: torch.squeeze(x) if axis is None else torch.squeeze(x, _axis(axis)))
_register("numpy", "Concatenate", lambda xs, axis=0: torch.cat(list(xs), dim=axis))
_register("numpy", "Stack", lambda x, axis=0: torch.stack(list(x), dim=axis))
_register("numpy", "GetItem", _getitem)
_register("numpy", "Clip", _clip)
_register("numpy", "Where", torch.where)
for _name, _fn in {
    "Relu": F.relu, "Relu6": F.relu6, "Sigmoid": torch.sigmoid, "HardSigmoid": F.hardsigmoid, "Silu": F.silu,
    "HardSilu": F.hardswish, "Softplus": F.softplus,
}.items():
    _register("nn", _name, _fn)
_register("nn", "Gelu", lambda x, approximate=True: F.gelu(x, approximate="tanh" if approximate else "none"))
_register("nn", "Softmax", lambda x, axis=-1: torch.softmax(x, dim=axis))
_register("nn", "LogSoftmax", lambda x, axis=-1: torch.log_softmax(x, dim=axis))
_register("nn", "Elu", lambda x, alpha=1.0: F.elu(x, alpha))
_register("nn", "LeakyRelu", lambda x, negative_slope=0.2: F.leaky_relu(x, negative_slope))
_register("core", "Cast", _cast)


class Operation:
    """One operation node kind with its configuration, as Keras's ``Operation``: called on
    tensors it computes; called on symbolic tensors it records a node of the graph.

    Args:
        key: the registry key (``"numpy.Add"``).
        name: the node's name (default: the snake-cased class name, numbered).
        **config: the operation's arguments (``axis``, ``keepdims``, ...).
    """

    def __init__(self, key: str, name: str | None = None, **config: Any) -> None:
        if key not in OPS:
            raise ArgumentError(f"unknown graph operation {key!r}; known: {sorted(OPS)}. Received: operation={key!r}.")
        self.spec = OPS[key]
        self.config = config
        self.name = name or _unique_name(_snake_case(self.spec.class_name))
        self._inbound_nodes: list[Any] = []

    @property
    def key(self) -> str:
        return f"{self.spec.module}.{self.spec.class_name}"

    @property
    def _label(self) -> str:
        return f"operation `{self.spec.class_name}` '{self.name}'"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from .functional import record_operation
        from .layer import _is_symbolic

        if _is_symbolic([list(args), *kwargs.values()]) or any(_is_symbolic(a) for a in args):
            return record_operation(self, args, kwargs)
        return self.spec.fn(*args, **kwargs, **self.config)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, **self.config}

    def __repr__(self) -> str:
        return f"Operation({self.key!r}, name={self.name!r}{''.join(f', {k}={v!r}' for k, v in self.config.items())})"


def serialize_key(value: Any) -> Any:
    """A ``GetItem`` key as Keras serializes it (slices and Ellipsis as tagged dicts)."""
    if isinstance(value, slice):
        return {"class_name": "__slice__", "config": {"start": value.start, "stop": value.stop, "step": value.step}}
    if value is Ellipsis:
        return {"class_name": "__ellipsis__", "config": {}}
    if isinstance(value, (list, tuple)):
        return [serialize_key(v) for v in value]
    return value


def deserialize_key(value: Any) -> Any:
    """The inverse of :func:`serialize_key`."""
    if isinstance(value, Mapping) and value.get("class_name") == "__slice__":
        config = value["config"]
        return slice(config.get("start"), config.get("stop"), config.get("step"))
    if isinstance(value, Mapping) and value.get("class_name") == "__ellipsis__":
        return Ellipsis
    if isinstance(value, list):
        return [deserialize_key(v) for v in value]
    return value


def _key_of(entry: Mapping[str, Any]) -> str | None:
    """The registry key of a serialized operation: from its ``module`` (``keras.src.ops.numpy``),
    or, in a legacy ``.h5`` config (no ``module``), from its class name alone."""
    module = entry.get("module")
    if module:
        return f"{str(module).rsplit('.', 1)[-1]}.{entry['class_name']}" if str(module).startswith("keras.src.ops.") else None
    if "trainable" in entry.get("config", {}):  # a layer (an operation's config holds no `trainable`)
        return None
    return next((key for key in OPS if key.endswith(f".{entry.get('class_name')}")), None)


def is_operation_entry(entry: Mapping[str, Any]) -> bool:
    return _key_of(entry) is not None or str(entry.get("module", "")).startswith("keras.src.ops.")


def operation_from_entry(entry: Mapping[str, Any]) -> Operation:
    """The `Operation` of a Keras serialization (``{"module": "keras.src.ops.numpy", "class_name":
    "Add", "config": {...}}``, or a legacy ``.h5`` config's ``{"class_name": "Add", ...}``)."""
    key = _key_of(entry) or f"{str(entry.get('module', '')).rsplit('.', 1)[-1]}.{entry.get('class_name')}"
    return Operation(key, **dict(entry.get("config", {})))

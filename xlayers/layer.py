"""`Layer`: Keras's layer contract on a `torch.nn.Module`.

A layer holds state (weights) and logic (``call``). It builds lazily: the first call
hands the input's shape to ``build``, which returns the sizes of the named axes of the
layer's ``LAYOUT``; ``Layer`` then creates the parameters on the input's device, locks
the layer and removes its build hook. ``input_shape=`` (or ``input_dim=``) in the
constructor builds at once.

It stays a plain PyTorch module: ``.to()``, ``state_dict()``, ``parameters()``,
``torch.compile(fullgraph=True)`` work as usual on a built layer.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import inspect
import os
import re
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from torch import nn

from . import constraints, initializers, regularizers
from .errors import (
    ArgumentError,
    ArgumentTypeError,
    InputDeviceError,
    InputDtypeError,
    InputShapeError,
    NotBuiltError,
    UnknownNameError,
    WeightDtypeError,
    WeightShapeError,
)
from .layout import Framework, Weight

__all__ = ["InputSpec", "Layer", "Shape", "WeightEntry", "apply_constraints", "clear_session", "get_layer_class", "map_structure"]

Shape = tuple[int | None, ...]

# Errors a layer raises for its user; each message begins with the layer's label.
_USER_ERRORS = (ArgumentError, ArgumentTypeError, InputShapeError, InputDtypeError, InputDeviceError, UnknownNameError, WeightShapeError)
_LABEL = re.compile(r"^`\w+` layer '[^']*': ")
_SUBJECT = re.compile(r"^`[\w.]+`: ")


def map_structure(fn: Callable[[Any], Any], structure: Any) -> Any:
    """Apply ``fn`` to every leaf of a tensor, a list/tuple or a dict of them (Keras's input structures)."""
    if isinstance(structure, Mapping):
        return {key: map_structure(fn, value) for key, value in structure.items()}
    if isinstance(structure, (list, tuple)) and not _is_shape(structure):
        return type(structure)(map_structure(fn, value) for value in structure)
    return fn(structure)


def _is_shape(value: Any) -> bool:
    return isinstance(value, tuple) and all(v is None or isinstance(v, int) for v in value)


def _shapes_from_json(value: Any) -> Any:
    """A shape, or a list/dict of shapes, from JSON lists: a list of ints and ``None`` is one shape."""
    if isinstance(value, Mapping):
        return {key: _shapes_from_json(item) for key, item in value.items()}
    if all(v is None or isinstance(v, int) for v in value):
        return tuple(value)
    return [_shapes_from_json(item) for item in value]


def _is_size(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= 0


def _leaves(structure: Any) -> list[Any]:
    found: list[Any] = []
    map_structure(found.append, structure)
    return found


class Symbolic:
    """Base of symbolic tensors (the functional API's `KerasTensor`): a layer called on one
    records the call instead of computing."""

    shape: tuple[int | None, ...]


def _is_symbolic(inputs: Any) -> bool:
    """Whether ``inputs`` (a tensor, or a list or dict of them) is symbolic: its first leaf decides."""
    while isinstance(inputs, (list, tuple)) and inputs:
        inputs = inputs[0]
    if isinstance(inputs, Mapping) and inputs:
        return _is_symbolic(next(iter(inputs.values())))
    return isinstance(inputs, Symbolic)


class Variable(nn.Parameter):
    """A layer's weight: an ``nn.Parameter`` that knows its Keras name (``kernel``) and path
    (``dense/kernel``), as a Keras variable does. It computes as the parameter it is."""

    def __new__(cls, data: torch.Tensor | None = None, requires_grad: bool = True, name: str | None = None,
                path: str | None = None) -> Variable:
        variable = super().__new__(cls, data, requires_grad)
        variable.__dict__.update(_keras_name=name, _keras_path=path)
        return variable

    @property
    def name(self) -> str | None:  # type: ignore[override]
        return self.__dict__.get("_keras_name")

    @property
    def path(self) -> str | None:
        return self.__dict__.get("_keras_path")

    def __repr__(self) -> str:
        return f"Variable '{self.path or self.name}' containing:\n{self.data!r}"

    def __deepcopy__(self, memo: dict) -> Variable:
        copied = super().__deepcopy__(memo)
        copied.__dict__.update(_keras_name=self.name, _keras_path=self.path)
        return copied


class WeightEntry(NamedTuple):
    """One weight found by :meth:`Layer.walk_weights`."""

    path: str  # Keras variable path inside the walked layer ("cell/kernel", "forward_layer/cell/kernel")
    layer: Layer  # the layer that owns the parameter
    declaration: Weight | None  # its LAYOUT entry (None for a weight made by ``add_weight`` alone)
    parameter: nn.Parameter

    def check(self, shape: tuple[int, ...], where: str = "") -> None:
        """Raise `WeightShapeError` unless a value of ``shape`` fits this weight (its declaration,
        with the axis names, or its parameter's shape); ``where`` names the value's place in a file."""
        try:
            if self.declaration is not None:
                self.declaration.check(self.layer._label, tuple(shape), self.layer._sizes)
            elif tuple(shape) != tuple(self.parameter.shape):
                raise WeightShapeError(
                    f"{self.layer._label}: weight `{self.path}` must have shape {tuple(self.parameter.shape)}. "
                    f"Received: shape={tuple(shape)}."
                )
        except WeightShapeError as error:
            if not where:
                raise
            raise WeightShapeError(f"{error} In the file: `{where}`.") from None

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_WEIGHT_ARGUMENT_KINDS = (("initializer", initializers), ("regularizer", regularizers), ("constraint", constraints))
_LAYER_CLASSES: dict[str, type[Layer]] = {}
_NAME_COUNTS: dict[str, int] = {}
_EMPTY_WEIGHTS = contextvars.ContextVar("xlayers_empty_weights", default=False)


@contextlib.contextmanager
def empty_weights() -> Iterator[None]:
    """Within it, `Layer.add_weight` allocates uninitialised storage (``torch.empty``) and runs
    no initializer: for readers that then fill every weight from a file."""
    token = _EMPTY_WEIGHTS.set(True)
    try:
        yield
    finally:
        _EMPTY_WEIGHTS.reset(token)


def clear_session() -> None:
    """Reset the default-name counters, so the next ``Dense()`` is called ``dense`` again."""
    _NAME_COUNTS.clear()


def get_layer_class(class_name: str) -> type[Layer]:
    """The `Layer` subclass registered under ``class_name`` (every subclass registers itself)."""
    try:
        return _LAYER_CLASSES[class_name]
    except KeyError:
        close = difflib.get_close_matches(class_name, _LAYER_CLASSES, n=3)
        hint = f" Close names: {', '.join(close)}." if close else ""
        raise ArgumentError(
            f"`class_name` must be one of the {len(_LAYER_CLASSES)} xlayers layers.{hint} A layer of your own is "
            f"mapped with `custom_objects={{{class_name!r}: YourLayerClass}}`. Received: class_name={class_name!r}."
        ) from None


def _snake_case(name: str) -> str:
    """Keras's default-name rule: ``Conv2D`` -> ``conv2d``, ``BatchNormalization`` -> ``batch_normalization``."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _unique_name(prefix: str) -> str:
    count = _NAME_COUNTS.get(prefix, 0)
    _NAME_COUNTS[prefix] = count + 1
    return prefix if count == 0 else f"{prefix}_{count}"


# Keras's mixed-precision dtype policies: float32 weights, computation in the half type.
MIXED_POLICIES: dict[str, torch.dtype] = {"mixed_float16": torch.float16, "mixed_bfloat16": torch.bfloat16}


def _policy_name(dtype: Any) -> Any:
    """A Keras ``DTypePolicy`` config's name; anything else as it is."""
    return dtype.get("config", {}).get("name", dtype) if isinstance(dtype, Mapping) else dtype


def _dtype_from(dtype: Any, owner: str) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    dtype = _policy_name(dtype)
    if isinstance(dtype, str) and isinstance(getattr(torch, dtype, None), torch.dtype):
        return getattr(torch, dtype)
    raise ArgumentTypeError(
        f"`{owner}`: `dtype` must be a torch dtype, one of 'float16', 'bfloat16', 'float32', 'float64', or a "
        f"mixed policy {sorted(MIXED_POLICIES)}. "
        f"Received: dtype={dtype!r}."
    )


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``."""
    return str(dtype).removeprefix("torch.")


@dataclass
class InputSpec:
    """What a layer accepts for one input: a rank (exact, or at least/at most), fixed sizes
    of some axes, and the kind of dtype.

    Mirrors ``keras.InputSpec``; ``axes`` maps an axis (negative counts from the end) to
    the size fixed at build. ``dtype`` is ``None`` for floating inputs (cast to the weights'
    dtype, Keras's autocast) or ``"int"`` for integer inputs (token ids), taken as they are.
    """

    ndim: int | None = None
    min_ndim: int | None = None
    max_ndim: int | None = None
    axes: dict[int, int] = field(default_factory=dict)
    dtype: str | None = None
    name: str = ""

    def check(self, layer: Layer, shape: Sequence[int | None]) -> None:
        """Raise :class:`InputShapeError` if ``shape`` does not fit."""
        rank = len(shape)
        what = f"input `{self.name}`" if self.name else "an input"
        wanted = None
        if self.ndim is not None and rank != self.ndim:
            wanted = f"rank {self.ndim}"
        elif self.min_ndim is not None and rank < self.min_ndim:
            wanted = f"rank >= {self.min_ndim}"
        elif self.max_ndim is not None and rank > self.max_ndim:
            wanted = f"rank <= {self.max_ndim}"
        if wanted:
            raise InputShapeError(f"{layer._label}: expected {what} of {wanted}. Received: input shape={tuple(shape)}.")
        what = f"input `{self.name}`" if self.name else "the input"
        for axis, size in self.axes.items():
            if shape[axis] is not None and shape[axis] != size:
                raise InputShapeError(
                    f"{layer._label}: expected axis {axis} of {what} to have size {size} (the size it was "
                    f"built with). Received: input shape={tuple(shape)}."
                )


class _LayerMeta(type):
    """Labels the errors a constructor raises with the layer, and builds a layer right after
    construction when ``input_shape=`` was given."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        names = dict(_NAME_COUNTS)  # a failed construction gives its default name back
        layer = cls.__new__(cls)
        try:
            try:
                layer.__init__(*args, **kwargs)
            except _USER_ERRORS as error:
                raise layer._labelled(error) from None
            if layer._eager_input_shape is not None and not layer.built:
                layer._build(layer._eager_input_shape, device=None)
        except BaseException:
            _NAME_COUNTS.clear()
            _NAME_COUNTS.update(names)
            raise
        return layer


class Layer(nn.Module, metaclass=_LayerMeta):
    """Base class of every xlayers layer, following ``keras.layers.Layer``.

    Subclasses implement ``call(inputs, ...)`` and, when they hold weights, either declare
    them in ``LAYOUT`` and return the axis sizes from ``build(input_shape)``, or call
    ``add_weight`` inside ``build`` as Keras custom layers do.

    Args:
        name: unique name; default: the snake-cased class name, numbered (``dense_1``).
        trainable: whether the weights take gradients.
        dtype: dtype of the weights (``"float32"`` by default, torch's default dtype);
            floating inputs are cast to it, as Keras does.
        activity_regularizer: regularizer applied to the output (its value divided by the
            batch size is added to ``losses``).
        input_shape: shape of one sample (batch axis left out); builds the layer at once.
        input_dim: for 2-D inputs, shorthand for ``input_shape=(input_dim,)``.
    """

    LAYOUT: ClassVar[tuple[Weight, ...]] = ()
    KERAS_MODULE: ClassVar[str] = "keras.layers"
    """Where Keras's class of the same name lives, as its serialization writes it."""
    KERAS_REGISTERED_NAME: ClassVar[str | None] = None
    KERAS2_DROPPED: ClassVar[tuple[str, ...]] = ()
    """Arguments Keras 2 (tf_keras) wrote for this layer that Keras 3 no longer takes."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _LAYER_CLASSES[cls.__name__] = cls
        cls._gate_views = {name: (weight, index) for weight in cls.LAYOUT for name, index in weight.gate_names().items()}
        cls._declared = {weight.name: weight for weight in cls.LAYOUT}
        if "forward" not in cls.__dict__:
            cls.forward = _forward_of(cls)

    _gate_views: ClassVar[dict[str, tuple[Weight, int]]] = {}
    _declared: ClassVar[dict[str, Weight]] = {}

    def __init__(
        self,
        *,
        name: str | None = None,
        trainable: bool = True,
        dtype: torch.dtype | str | None = None,
        activity_regularizer: Any = None,
        input_shape: Sequence[int | None] | None = None,
        input_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        cls = type(self).__name__
        if name is not None and not isinstance(name, str):
            raise ArgumentTypeError(f"`name` must be a string. Received: name={name!r}.")
        self.name = name or _unique_name(_snake_case(cls))
        if kwargs:
            received = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
            raise ArgumentTypeError(f"unrecognized keyword arguments {sorted(kwargs)}. Received: {received}.")
        self._trainable = bool(trainable)
        mixed = _policy_name(dtype)
        self._compute_dtype = MIXED_POLICIES.get(mixed) if isinstance(mixed, str) else None
        self._policy = mixed if self._compute_dtype is not None else None
        self._requested_dtype = torch.float32 if self._policy else _dtype_from(dtype, cls)
        self.__dict__["_autocasting"] = False
        if self._requested_dtype is not None and not self._requested_dtype.is_floating_point:
            raise ArgumentTypeError(
                f"`dtype` must be a floating dtype ('float16', 'bfloat16', 'float32', 'float64'). Received: dtype={dtype!r}."
            )
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.input_spec: InputSpec | None = None
        self.supports_masking = False
        self.built = False
        self._build_shape: Shape | None = None
        self._sizes: dict[str, int] = {}
        self._weight_names: list[str] = []
        self._weight_trainable: dict[str, bool] = {}
        self._regularizers: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
        self._constraints: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
        self._activity_losses: list[torch.Tensor] = []
        self._build_device: torch.device | None = None
        if input_dim is not None:
            if input_shape is not None:
                raise ArgumentError(f"`{cls}`: give `input_shape` or `input_dim`, not both. Received: input_dim={input_dim}.")
            input_shape = (input_dim,)
        if input_shape is not None and (
            not isinstance(input_shape, (list, tuple)) or not all(s is None or _is_size(s) for s in input_shape)
        ):
            raise ArgumentTypeError(
                f"`input_shape` must be a tuple of the sizes of one sample (ints or None, batch left out). "
                f"Received: input_shape={input_shape!r}."
            )
        self._eager_input_shape: Shape | None = None if input_shape is None else (None, *(None if s is None else int(s) for s in input_shape))
        self._build_hook = self.register_forward_pre_hook(Layer._build_on_first_call, with_kwargs=True)
        self.register_load_state_dict_pre_hook(Layer._check_load)
        self.register_load_state_dict_post_hook(Layer._name_assigned_weights)

    # -- building --------------------------------------------------------------------------

    def build(self, input_shape: Shape) -> Mapping[str, int] | None:
        """Create the layer's state for inputs of ``input_shape`` (batch axis included).

        Layers with a ``LAYOUT`` return the size of each named axis; ``Layer`` then
        creates the declared weights. Custom layers may instead call ``add_weight``.
        """
        return None

    def _build(self, input_shape: Any, device: torch.device | None) -> None:
        input_shape = map_structure(tuple, input_shape)
        try:
            self._check_specs(input_shape)
            self._build_device = device
            sizes = self.build(input_shape)
        except _USER_ERRORS as error:
            self._build_device = None
            raise self._labelled(error) from None
        self._create_declared_weights(sizes)
        self._build_shape = input_shape
        self.built = True
        self._build_device = None
        self._build_hook.remove()

    def _create_declared_weights(self, sizes: Mapping[str, int] | None) -> None:
        if sizes is not None:
            self._sizes = dict(sizes)
            for weight in self.declared_weights():
                self.add_weight(
                    weight.shape(self._sizes),
                    initializer=self.initializer_for(weight),
                    trainable=weight.trainable,
                    regularizer=getattr(self, f"{weight.key}_regularizer", None),
                    constraint=getattr(self, f"{weight.key}_constraint", None),
                    name=weight.name,
                )

    @staticmethod
    def _build_on_first_call(layer: Layer, args: tuple, kwargs: dict) -> None:
        if layer.built:
            return
        inputs = map_structure(layer._as_tensor, args[0] if args else kwargs.get("inputs"))
        first = _leaves(inputs)[0]
        layer._build(map_structure(lambda t: tuple(t.shape), inputs), device=first.device)

    @staticmethod
    def _check_load(layer: Layer, state_dict: Mapping, prefix: str, local_metadata: Mapping, *args: Any) -> None:
        """Before ``load_state_dict`` touches this layer: refuse an unbuilt layer, and an
        ``assign=True`` load that would leave its weights in different dtypes."""
        own = {key[len(prefix):]: value for key, value in state_dict.items()
               if key.startswith(prefix) and "." not in key[len(prefix):]}
        if not own:
            return
        if not layer.built and layer.LAYOUT:
            raise NotBuiltError(
                f"{layer._label}: cannot load weights into an unbuilt layer. Call it once on an example input "
                f"or construct it with `input_shape=` first."
            )
        if local_metadata.get("assign_to_params_buffers"):
            dtypes = {name: getattr(value, "dtype", None) for name, value in own.items() if name in layer._parameters}
            if len(set(dtypes.values())) > 1 or any(d is not None and not d.is_floating_point for d in dtypes.values()):
                found = ", ".join(f"{name} {dtype_name(d) if d is not None else type(d).__name__}" for name, d in dtypes.items())
                raise WeightDtypeError(
                    f"{layer._label}: `load_state_dict(assign=True)` would give the layer's weights these dtypes: {found}; "
                    f"they must share one floating dtype. Cast the state dict first, or load without `assign=True` "
                    f"(values are then copied into the existing weights' dtype)."
                )

    @staticmethod
    def _name_assigned_weights(layer: Layer, incompatible_keys: Any) -> None:
        """After ``load_state_dict(assign=True)`` put plain parameters in place: they become
        `Variable`s again (same tensor), so ``weights[i].name`` stays Keras's."""
        for name in layer._weight_names:
            parameter = layer._parameters[name]
            if not isinstance(parameter, Variable):
                layer._parameters[name] = Variable(parameter.data, parameter.requires_grad, name=name, path=f"{layer.name}/{name}")

    def declared_weights(self) -> list[Weight]:
        """The ``LAYOUT`` entries this configuration enables (``use_bias=False`` drops ``bias``)."""
        return [w for w in self.LAYOUT if w.enabled_by is None or getattr(self, w.enabled_by)]

    def walk_weights(self) -> Iterator[WeightEntry]:
        """Every weight of the layer and of its sub-layers, in Keras's order, with its Keras
        variable path inside this layer: the layer's own weights (``LAYOUT``'s ``path``, or
        the name given to ``add_weight``), then each sub-layer's under its attribute name."""
        declared = {w.name: w for w in self.declared_weights()}
        for name in self._weight_names:
            weight = declared.get(name)
            yield WeightEntry(weight.keras_path if weight else name, self, weight, self._parameters[name])
        for attribute, child in self.named_children():
            if isinstance(child, Layer):
                for entry in child.walk_weights():
                    yield entry._replace(path=f"{attribute}/{entry.path}")

    def weight_view(self, name: str, framework: Framework = "torch", value: torch.Tensor | None = None) -> torch.Tensor:
        """The declared weight ``name`` (or ``value``, a tensor in its Keras layout) in
        ``framework``'s layout, as ``LAYOUT`` derives it: a view wherever torch allows one."""
        weight = type(self)._declared[name]
        return weight.convert(getattr(self, name) if value is None else value, "keras", framework)

    # -- export -----------------------------------------------------------------------------

    def export_refusal(self) -> str | None:
        """Why this configuration cannot be expressed as an ONNX graph (``None`` if it can)."""
        return None

    def onnx_dynamic_axes(self) -> dict[int, str]:
        """The axes of the first input that stay dynamic in an exported graph."""
        return {0: "batch"}

    @classmethod
    def onnx_translations(cls) -> dict[Any, Callable[..., Any]]:
        """ONNX translations of the custom ops this layer's ``call`` uses (onnxscript functions
        keyed by the op), for torch's exporter."""
        return {}

    @classmethod
    def _weight_arguments(cls) -> list[tuple[str, Any]]:
        """``(<role>_initializer | _regularizer | _constraint, its module)`` for every role of ``LAYOUT``."""
        roles = dict.fromkeys(weight.key for weight in cls.LAYOUT)
        return [(f"{role}_{kind}", module) for role in roles for kind, module in _WEIGHT_ARGUMENT_KINDS]

    def _set_weight_arguments(self, arguments: Mapping[str, Any]) -> None:
        """Resolve the per-weight constructor arguments that ``LAYOUT``'s roles name (Keras's
        ``kernel_initializer``, ``recurrent_regularizer``, ...) from ``arguments`` (``locals()``)."""
        for name, module in self._weight_arguments():
            setattr(self, name, module.get(arguments[name]))

    def _weight_argument_config(self) -> dict[str, Any]:
        """The same arguments, serialised as Keras writes them in ``get_config``."""
        return {name: module.serialize(getattr(self, name)) for name, module in self._weight_arguments()}

    def initializer_for(self, weight: Weight) -> Callable[..., torch.Tensor]:
        """The initializer of a declared weight: the ``<role>_initializer`` argument."""
        return getattr(self, f"{weight.key}_initializer")

    def add_weight(
        self,
        shape: Sequence[int],
        initializer: Any = None,
        dtype: torch.dtype | str | None = None,
        trainable: bool = True,
        regularizer: Any = None,
        constraint: Any = None,
        name: str | None = None,
    ) -> nn.Parameter:
        """Create a weight, as ``keras.layers.Layer.add_weight``; registered as a parameter.

        Only allowed while building: a built layer is locked.
        """
        if self.built:
            raise ArgumentError(f"{self._label}: weights can only be added in `build`; the layer is already built. Received: name={name!r}.")
        name = name or f"weight_{len(self._weight_names)}"
        if name in self._parameters or hasattr(type(self), name):
            raise ArgumentError(f"{self._label}: a weight named `{name}` already exists. Received: name={name!r}.")
        init = initializers.get(initializer if initializer is not None else "glorot_uniform")
        dtype = _dtype_from(dtype, type(self).__name__) or self._requested_dtype or torch.get_default_dtype()
        device = self._build_device if self._build_device is not None else torch.get_default_device()
        size = tuple(int(s) for s in shape)
        value = torch.empty(size, dtype=dtype, device=device) if _EMPTY_WEIGHTS.get() else init(size, dtype=dtype, device=device)
        parameter = Variable(value, bool(trainable) and self._trainable, name=name, path=f"{self.name}/{name}")
        self.register_parameter(name, parameter)
        self._weight_names.append(name)
        self._weight_trainable[name] = bool(trainable)
        if regularizer is not None:
            self._regularizers[name] = regularizers.get(regularizer)
        if constraint is not None:
            self._constraints[name] = constraints.get(constraint)
        return parameter

    # -- calling ---------------------------------------------------------------------------

    def call(self, inputs: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        """The layer's computation (Keras's ``call``)."""
        raise NotImplementedError(f"{self._label}: subclasses of `Layer` implement `call`.")

    def forward(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """Check and convert ``inputs`` (a tensor, a list or a dict of them), then run ``call``;
        collects activity losses. On symbolic inputs, records the call (the functional API)."""
        if type(inputs) is not torch.Tensor or not self._takes_as_is(inputs):
            if not isinstance(inputs, torch.Tensor) and _is_symbolic(inputs):
                from .functional import symbolic_call

                return symbolic_call(self, (inputs, *args), kwargs)
            inputs = self._convert_inputs(inputs)
        mixed = self._compute_dtype is not None
        if mixed:  # weights read in `call` come cast to the compute dtype, as Keras's AutocastVariable
            self.__dict__["_autocasting"] = True
        try:
            outputs = self.call(inputs, *args, **kwargs)
        except _USER_ERRORS as error:  # name the layer in errors raised by its math
            raise self._labelled(error) from None
        finally:
            if mixed:
                self.__dict__["_autocasting"] = False
        if self.activity_regularizer is not None:
            tensors = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            self._activity_losses = [
                self.activity_regularizer(t) / (t.shape[0] if t.ndim > 0 else 1) for t in tensors if isinstance(t, torch.Tensor)
            ]
        return outputs

    def _takes_as_is(self, inputs: torch.Tensor) -> bool:
        """The common call, checked without converting: one floating tensor that fits the single
        input spec, in the weights' dtype and on their device, no mixed policy (what
        `convert_input` would pass through unchanged)."""
        spec = self.input_spec
        if type(spec) is not InputSpec or spec.dtype is not None or self._compute_dtype is not None:
            return False
        names = self._weight_names
        if names:
            reference = self._parameters[names[0]]
            if inputs.dtype is not reference.dtype or inputs.device != reference.device:
                return False
        elif not inputs.is_floating_point():
            return False
        spec.check(self, inputs.shape)
        return True

    def _specs_for(self, structure: Any) -> list[tuple[InputSpec | None, Any]]:
        """Pair each input of ``structure`` with its ``InputSpec``: one spec for one input, a
        list or dict of specs for a list or dict of inputs."""
        spec = self.input_spec
        if spec is None:
            return [(None, leaf) for leaf in _leaves(structure)]
        single = _is_shape(structure) or isinstance(structure, torch.Tensor)
        if isinstance(spec, InputSpec):
            if not single:
                raise InputShapeError(f"{self._label}: expected a single input. Received: {len(_leaves(structure))} inputs.")
            return [(spec, structure)]
        if single:
            raise InputShapeError(f"{self._label}: expected {len(spec)} inputs. Received: a single input.")
        if isinstance(spec, Mapping):
            if not isinstance(structure, Mapping) or set(structure) != set(spec):
                received = sorted(structure) if isinstance(structure, Mapping) else f"{len(structure)} inputs"
                raise InputShapeError(f"{self._label}: expected inputs {sorted(spec)}. Received: {received}.")
            return [(spec[key], structure[key]) for key in spec]
        if isinstance(structure, Mapping) or len(structure) != len(spec):
            raise InputShapeError(f"{self._label}: expected {len(spec)} inputs. Received: {len(_leaves(structure))} inputs.")
        return list(zip(spec, structure))

    def _check_specs(self, shapes: Any) -> None:
        for spec, shape in self._specs_for(shapes):
            if spec is not None:
                spec.check(self, shape)

    def _convert_inputs(self, inputs: Any) -> Any:
        single = not isinstance(inputs, (list, tuple, Mapping)) or all(isinstance(v, (int, float)) for v in inputs)
        tensors = self._as_tensor(inputs) if single else map_structure(self._as_tensor, inputs)
        converted = [self.convert_input(tensor, spec if spec is not None else False) for spec, tensor in self._specs_for(tensors)]
        if single:
            return converted[0]
        if isinstance(tensors, Mapping):
            spec = self.input_spec
            keys = list(spec) if isinstance(spec, Mapping) else list(tensors)
            return dict(zip(keys, converted))
        return type(tensors)(converted)

    def convert_input(self, inputs: Any, spec: InputSpec | None | bool = True) -> torch.Tensor:
        """One input as a tensor, after checking its rank, sizes and dtype against ``spec``
        (default: the layer's single ``input_spec``). Floating inputs are cast to the weights'
        dtype and must be on their device; an input the spec declares as integer is kept as
        it is. Numpy arrays are accepted."""
        inputs = self._as_tensor(inputs)
        if spec is True:
            spec = self.input_spec if isinstance(self.input_spec, InputSpec) else None
        if spec:
            spec.check(self, tuple(inputs.shape))
        reference = self._first_weight()
        if spec and spec.dtype == "int":
            if inputs.is_floating_point() or inputs.is_complex():
                raise InputDtypeError(
                    f"{self._label}: expected an integer input{f' `{spec.name}`' if spec.name else ''}. "
                    f"Received: dtype={dtype_name(inputs.dtype)}."
                )
            if reference is not None and inputs.device != reference.device:
                raise InputDeviceError(
                    f"{self._label}: the input must be on the weights' device {reference.device} (move one with "
                    f"`.to()`). Received: device={inputs.device}."
                )
            return inputs
        if reference is None:  # no weights: the input's dtype, or a mixed policy's half type (Keras's autocast)
            return inputs.to(self._compute_dtype) if self._compute_dtype is not None and inputs.is_floating_point() else inputs
        if not inputs.is_floating_point():
            raise InputDtypeError(
                f"{self._label}: expected a floating-point input (float16, bfloat16, float32 or float64); "
                f"the layer computes in {dtype_name(self.compute_dtype)}. Received: dtype={dtype_name(inputs.dtype)}."
            )
        if inputs.device != reference.device:
            raise InputDeviceError(
                f"{self._label}: the input must be on the weights' device {reference.device} (move one with "
                f"`.to()`). Received: device={inputs.device}."
            )
        return inputs.to(self.compute_dtype)

    def _as_tensor(self, inputs: Any) -> torch.Tensor:
        if isinstance(inputs, (torch.Tensor, Symbolic)):  # a symbolic input builds the layer from its shape
            return inputs
        array = np.asarray(inputs) if isinstance(inputs, (np.ndarray, np.generic, int, float, list, tuple)) else None
        if array is None or array.dtype.kind not in "biuf":
            raise InputDtypeError(f"{self._label}: expected a torch tensor or numpy array. Received: type={type(inputs).__name__}.")
        return torch.from_numpy(np.array(array, order="C"))  # a copy, rank 0 kept (ascontiguousarray makes it 1-d)

    def _first_weight(self) -> torch.Tensor | None:
        return self._parameters[self._weight_names[0]] if self._weight_names else None

    # -- shapes and masks ------------------------------------------------------------------

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """Output shape for ``input_shape`` (batch axis included, ``None`` for unknown)."""
        raise NotImplementedError(f"{self._label}: `compute_output_shape` is not implemented.")

    def compute_mask(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor | None:
        """The mask of the output: the input's mask if the layer supports masking, else ``None``."""
        return mask if self.supports_masking else None

    # -- weights ---------------------------------------------------------------------------

    @property
    def weights(self) -> list[nn.Parameter]:
        """The layer's weights, then those of its sub-layers, in creation order (Keras's order)."""
        own = [self._parameters[name] for name in self._weight_names]
        return own + [w for layer in self._sublayers() for w in layer.weights]

    @property
    def trainable_weights(self) -> list[nn.Parameter]:
        return [w for w in self.weights if w.requires_grad]

    @property
    def non_trainable_weights(self) -> list[nn.Parameter]:
        return [w for w in self.weights if not w.requires_grad]

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for name in self._weight_names:
            self._parameters[name].requires_grad_(self._trainable and self._weight_trainable[name])
        for layer in self._sublayers():
            layer.trainable = value

    @property
    def dtype(self) -> torch.dtype:
        """The weights' dtype (Keras's ``variable_dtype``)."""
        reference = self._first_weight()
        return reference.dtype if reference is not None else (self._requested_dtype or torch.get_default_dtype())

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype inputs are cast to and the computation runs in: the weights' dtype, or the
        half type of a mixed policy (``"mixed_float16"``, ``"mixed_bfloat16"``)."""
        return self._compute_dtype or self.dtype

    @property
    def dtype_policy(self) -> str:
        """Keras's name of the layer's dtype policy (``"float32"``, ``"mixed_bfloat16"``, ...)."""
        return self._policy or dtype_name(self.dtype)

    def _sublayers(self) -> Iterable[Layer]:
        return (m for m in self.children() if isinstance(m, Layer))

    def count_params(self) -> int:
        """Total number of weight elements (trainable or not)."""
        self._require_built("count_params")
        return sum(w.numel() for w in self.weights)

    def get_weights(self) -> list[np.ndarray]:
        """The weights as numpy arrays, in Keras's order and layout (bfloat16 comes back as float32)."""
        return [_to_numpy(w) for w in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set the weights from arrays in Keras's order and layout, as ``keras.Layer.set_weights``."""
        self._require_built("set_weights")
        targets = list(self.walk_weights())
        if isinstance(weights, (str, bytes, Mapping)) or not isinstance(weights, Sequence | np.ndarray):
            raise ArgumentTypeError(
                f"{self._label}: `set_weights` takes a list of arrays in Keras's order "
                f"({', '.join(t.path for t in targets)}). Received: weights of type {type(weights).__name__}."
            )
        if len(weights) != len(targets):
            raise WeightShapeError(
                f"{self._label}: expected {len(targets)} weights ({', '.join(t.path for t in targets)}). "
                f"Received: {len(weights)} weights."
            )
        values = []
        for target, value in zip(targets, weights):
            value = _numeric_tensor(target.layer._label, target.path, value)
            target.check(tuple(value.shape))
            values.append((target.parameter, value.to(dtype=target.parameter.dtype, device=target.parameter.device)))
        with torch.no_grad():  # every value checked and converted first: a failed call changes nothing
            for parameter, value in values:
                parameter.copy_(value)

    def save_weights(self, path: str | os.PathLike, max_shard_size: int | None = None) -> None:
        """Write the weights with their Keras paths: ``.safetensors`` (sharded as Hugging Face
        shards above ``max_shard_size`` bytes) or Keras's ``.weights.h5``. Atomic."""
        self._require_built("save_weights")
        name = str(path)
        if name.endswith(".safetensors"):
            from .checkpoints import save_safetensors

            save_safetensors(self, path, max_shard_size)
        elif name.endswith(".weights.h5"):
            from .saving import write_weights_file

            write_weights_file(self, path)
        else:
            raise ArgumentError(f"{self._label}: `path` must end in '.safetensors' or '.weights.h5'. Received: path={name!r}.")

    def load_weights(self, path: str | os.PathLike) -> None:
        """Read weights from a file (`xlayers.checkpoints.load_weights`: safetensors, one file or
        sharded, Keras's ``.weights.h5`` or sharded ``.weights.json``, a legacy ``.h5``): names
        and shapes are checked before any weight changes."""
        self._require_built("load_weights")
        from .checkpoints import load_weights

        load_weights(self, path)

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise NotBuiltError(
                f"{self._label}: `{what}` needs a built layer. Call it once on an example input or pass `input_shape=`."
            )

    # -- gate-split views (LSTM's kernel_i, ...) -------------------------------------------

    def __getattr__(self, name: str) -> Any:
        parameters = self.__dict__.get("_parameters")
        if parameters is not None and name in parameters:  # the hot path: a weight read in `call`
            value = parameters[name]
            if self.__dict__.get("_autocasting") and value is not None and value.is_floating_point():
                return value.to(self._compute_dtype)
            return value
        try:
            return super().__getattr__(name)  # buffers and sub-layers
        except AttributeError:
            views = type(self)._gate_views
            if name in views:
                weight, index = views[name]
                self._require_built(name)
                return weight.gate_slice(getattr(self, weight.name), index)
            raise

    def __setattr__(self, name: str, value: Any) -> None:
        """Assigning a gate view (``lstm.kernel_i = value``) writes through into the fused
        weight, after checking the value's type and shape; it never hides the view."""
        if name not in type(self)._gate_views:
            super().__setattr__(name, value)
            return
        view = self.__getattr__(name)
        tensor = _numeric_tensor(self._label, name, value)
        if tuple(tensor.shape) != tuple(view.shape):
            raise WeightShapeError(
                f"{self._label}: weight `{name}` must have shape {tuple(view.shape)}. Received: shape={tuple(tensor.shape)}."
            )
        with torch.no_grad():
            view.copy_(tensor.to(dtype=view.dtype, device=view.device))

    # -- regularization and constraints -------------------------------------------------------

    @property
    def losses(self) -> list[torch.Tensor]:
        """Regularization losses of this layer and its sub-layers, from the current weights,
        plus the activity losses of the last call."""
        own = [reg(self._parameters[name]) for name, reg in self._regularizers.items()]
        own += list(self._activity_losses)
        return own + [loss for layer in self._sublayers() for loss in layer.losses]

    def apply_constraints(self) -> None:
        """Project each constrained weight onto its constraint, in place.

        Call after ``optimizer.step()``; Keras applies constraints after each update.
        """
        apply_constraints(self)

    # -- config -------------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serialisable, with Keras's names."""
        config: dict[str, Any] = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype_policy}
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_keras2_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """A Keras 2 (tf_keras) config of this layer in Keras 3's form (`xlayers.keras2` reads
        files with it): ``KERAS2_DROPPED`` left out; a family with more to change overrides it."""
        return {key: value for key, value in config.items() if key not in cls.KERAS2_DROPPED}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Layer:
        """A new layer from ``get_config()``'s output."""
        return cls(**config)

    def get_build_config(self) -> dict[str, Any] | None:
        """The input shape (or structure of shapes) the layer was built with, as JSON lists."""
        return {"input_shape": map_structure(list, self._build_shape)} if self.built else None

    def build_from_config(self, config: Mapping[str, Any] | None) -> None:
        """Build from ``get_build_config()``'s output (shapes as lists, as JSON gives them)."""
        if config and not self.built:
            self._build(_shapes_from_json(config["input_shape"]), device=None)

    # -- printing ----------------------------------------------------------------------------

    @property
    def _label(self) -> str:
        name = self.__dict__.get("name")
        return f"`{type(self).__name__}`" + (f" layer '{name}'" if name else "")

    def _labelled(self, error: Exception) -> Exception:
        """``error`` with its message beginning with this layer's label: the one grammar of
        every message a layer raises. A message that already names a layer (a sub-layer's) is
        kept; a leading function subject (``"`conv`: "``) gives way to the label."""
        message = str(error)
        if _LABEL.match(message) or message.startswith(self._label + ":"):
            return error
        labelled = type(error)(f"{self._label}: {_SUBJECT.sub('', message)}")
        labelled.__cause__ = error.__cause__
        return labelled

    def extra_repr(self) -> str:
        """Keras arguments that differ from their defaults, and the build shape."""
        parts = [f"name={self.name!r}"]
        try:
            config = self.get_config()
        except ArgumentError as error:  # an argument with no Keras form (a custom callable)
            return ", ".join([*parts, f"config not serialisable: {error}"])
        defaults = self._default_config()
        for key, value in config.items():
            if key not in ("name", "trainable", "dtype") and defaults.get(key, _MISSING) != value:
                parts.append(f"{key}={value!r}")
        if self.built:
            parts.append(f"built_with={self._build_shape}")
        return ", ".join(parts)

    def _default_config(self) -> dict[str, Any]:
        """The configuration of the same layer made with only its required arguments: what
        ``get_config`` writes for every default, in the same spelling."""
        config = self.get_config()
        required = {
            p.name: config[p.name] for p in inspect.signature(type(self).__init__).parameters.values()
            if p.default is inspect.Parameter.empty and p.name in config
        }
        try:
            return type(self)(**required, name=self.name).get_config()
        except Exception:  # a layer whose required arguments are not in its config: show everything
            return {}


_MISSING = object()


def _forward_of(cls: type) -> Callable[..., Any]:
    """``Layer.forward`` under a code object of the class's own. ``torch.compile`` keeps what
    it learns about input shapes (automatic dynamic shapes) per code object: with one shared
    ``forward``, a Dense compiled at two batch sizes would make the next layer class compile
    with dynamic shapes too."""
    shared = Layer.forward
    code = shared.__code__.replace(co_name=f"forward_{cls.__name__}", co_qualname=f"{cls.__qualname__}.forward")
    forward = types.FunctionType(code, shared.__globals__, "forward", shared.__defaults__, shared.__closure__)
    forward.__doc__, forward.__qualname__, forward.__module__ = shared.__doc__, f"{cls.__qualname__}.forward", shared.__module__
    forward.__annotations__ = shared.__annotations__
    return forward


def _numeric_tensor(label: str, weight: str, value: Any) -> torch.Tensor:
    """``value`` (a tensor, array, number or nested list of numbers) as a real tensor, or an
    error that names the layer and the weight: never ``None``, strings, objects or complex
    numbers (whose imaginary part a weight would silently drop)."""
    if isinstance(value, torch.Tensor):
        kind = "c" if value.is_complex() else ("f" if value.is_floating_point() else "i")
        tensor = value.detach()
    else:
        try:
            array = np.asarray(value)
        except Exception:  # ragged nested lists
            array = np.asarray(None)
        kind, tensor = array.dtype.kind, None
        if kind in "biuf":
            tensor = torch.from_numpy(np.array(array, order="C"))
    if kind == "c":
        raise ArgumentTypeError(f"{label}: weight `{weight}` takes real numbers; a complex value would lose its imaginary part. "
                                f"Received: {weight} of dtype complex.")
    if tensor is None:
        raise ArgumentTypeError(f"{label}: weight `{weight}` takes a tensor or an array of numbers. "
                                f"Received: {weight} of type {type(value).__name__}.")
    return tensor


def _to_numpy(value: torch.Tensor) -> np.ndarray:
    value = value.detach().cpu()
    return (value.float() if value.dtype == torch.bfloat16 else value).numpy().copy()


def apply_constraints(module: nn.Module) -> None:
    """Apply the weight constraints of every xlayers layer inside ``module``, in place.

    The one call to make after each ``optimizer.step()`` when layers have constraints.
    """
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, Layer):
                for name, constraint in layer._constraints.items():
                    parameter = layer._parameters[name]
                    parameter.copy_(constraint(parameter))

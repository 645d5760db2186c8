"""Keras's functional API: `Input`, symbolic `KerasTensor`s, and `Model(inputs, outputs)`.

Calling a layer on `KerasTensor`s (what `Input` returns) builds it from their shapes and
records a `Node` (the layer, its call arguments, its symbolic outputs) instead of computing.
`Model(inputs, outputs)` (Keras's ``Functional``) walks those nodes back from the outputs, as
Keras's ``ops.function.map_graph`` does, and runs them in order on real tensors: branches
and merges, several inputs and outputs as lists or dicts, layers shared by several calls,
nested models, and masks passed along as Keras passes them (a layer whose ``call`` takes
``mask`` receives its inputs' masks; ``compute_mask`` gives its outputs'). Its sub-layers are
registered under Keras's ``.keras`` paths (``layers/dense``, ``layers/dense_1``), so its
``state_dict`` keys and ``walk_weights`` paths are the file's, and ``get_config`` writes
Keras's functional JSON.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import torch

from .errors import ArgumentError, ArgumentTypeError, InputShapeError
from .layer import Layer, Shape, Symbolic, _is_shape, _leaves, _snake_case, dtype_name, get_layer_class, map_structure
from .models import print_table
from .ops import Operation, deserialize_key, is_operation_entry, operation_from_entry, serialize_key

__all__ = ["Functional", "Input", "InputLayer", "KerasTensor", "Model", "Node"]


class History(NamedTuple):
    """Where a symbolic tensor comes from: the layer, which of its calls, which output."""

    layer: Layer
    node_index: int
    tensor_index: int


class KerasTensor(Symbolic):
    """A symbolic tensor: a shape (``None`` where unknown, the batch axis first), a dtype, and
    the call that produces it (``_keras_history``)."""

    device = None  # builds a layer on the default device

    def __init__(self, shape: Sequence[int | None], dtype: torch.dtype = torch.float32, name: str | None = None) -> None:
        self.shape = tuple(None if s is None else int(s) for s in shape)
        self.dtype = dtype
        self.name = name
        self._keras_history: History | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        source = "" if self._keras_history is None else f", from {self._keras_history.layer.name!r}"
        return f"<KerasTensor shape={self.shape}, dtype={dtype_name(self.dtype)}{source}>"

    # Operators record Keras's operation nodes (`keras.src.ops.numpy.Add`, ...), as Keras's KerasTensor does.
    def _op(self, key: str, *args: Any) -> KerasTensor:
        from .ops import Operation

        return Operation(key)(*args)

    def __add__(self, other: Any) -> KerasTensor:
        return self._op("numpy.Add", self, other)

    def __radd__(self, other: Any) -> KerasTensor:
        return self._op("numpy.Add", other, self)

    def __sub__(self, other: Any) -> KerasTensor:
        return self._op("numpy.Subtract", self, other)

    def __rsub__(self, other: Any) -> KerasTensor:
        return self._op("numpy.Subtract", other, self)

    def __mul__(self, other: Any) -> KerasTensor:
        return self._op("numpy.Multiply", self, other)

    def __rmul__(self, other: Any) -> KerasTensor:
        return self._op("numpy.Multiply", other, self)

    def __truediv__(self, other: Any) -> KerasTensor:
        return self._op("numpy.TrueDivide", self, other)

    def __rtruediv__(self, other: Any) -> KerasTensor:
        return self._op("numpy.TrueDivide", other, self)

    def __matmul__(self, other: Any) -> KerasTensor:
        return self._op("numpy.Matmul", self, other)

    def __pow__(self, other: Any) -> KerasTensor:
        return self._op("numpy.Power", self, other)

    def __neg__(self) -> KerasTensor:
        return self._op("numpy.Negative", self)

    def __abs__(self) -> KerasTensor:
        return self._op("numpy.Absolute", self)

    def __getitem__(self, key: Any) -> KerasTensor:
        return self._op("numpy.GetItem", self, key)


def _symbolic(value: Any) -> bool:
    return any(isinstance(leaf, Symbolic) for leaf in _leaves(value))


class Node:
    """One call of a layer on symbolic tensors: its arguments (structures that may hold
    `KerasTensor`s) and its symbolic outputs."""

    def __init__(self, layer: Layer, args: tuple, kwargs: dict[str, Any], outputs: Any, is_input: bool = False) -> None:
        self.layer, self.args, self.kwargs, self.outputs, self.is_input = layer, args, kwargs, outputs, is_input
        self.input_tensors = [t for t in _leaves([list(args), dict(kwargs)]) if isinstance(t, Symbolic)]
        self.output_tensors = [t for t in _leaves(outputs) if isinstance(t, Symbolic)]

    @property
    def parent_nodes(self) -> list[Node]:
        return [_node_of(t) for t in self.input_tensors]


def _node_of(tensor: KerasTensor) -> Node:
    layer, index, _ = tensor._keras_history
    return layer._inbound_nodes[index]


def _is_graph(layer: Any) -> bool:
    return getattr(layer, "_execution", None) is not None  # a functional model (its node 0 is its own graph)


def _is_input_layer(layer: Any) -> bool:
    nodes = layer.__dict__.get("_inbound_nodes") if isinstance(layer, Layer) else None
    return bool(nodes) and nodes[0].is_input


def inbound_nodes(layer: Any) -> list[Node]:
    """The symbolic calls of ``layer`` (or of an operation), in order (created on first use)."""
    return layer.__dict__.setdefault("_inbound_nodes", [])


def _takes(layer: Any, argument: str) -> bool:
    if not isinstance(layer, Layer):
        return False  # an operation: its arguments are all in its node
    target = layer.call
    parameters = inspect.signature(target).parameters
    return argument in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def symbolic_call(layer: Layer, args: tuple, kwargs: dict[str, Any]) -> Any:
    """``layer(*args, **kwargs)`` on symbolic inputs: the layer is built (by its pre-hook, from
    the first input's shapes); its outputs are new `KerasTensor`s of the shapes
    ``compute_output_shape`` gives, and a `Node` records the call."""
    shapes = map_structure(lambda t: t.shape if isinstance(t, Symbolic) else t, args[0])
    try:
        layer._check_specs(shapes)  # a built layer called on inputs it does not fit, as Keras refuses it
    except InputShapeError as error:
        raise layer._labelled(error) from None
    plain = {k: v for k, v in kwargs.items() if not _symbolic(v) and isinstance(v, (bool, int, float, str))}
    accepted = inspect.signature(layer.compute_output_shape).parameters
    try:
        predicted = layer.compute_output_shape(shapes, **{k: v for k, v in plain.items() if k in accepted})
    except NotImplementedError:
        predicted = _traced_output_shape(layer, args, kwargs)
    inputs = [t for t in _leaves(args[0]) if isinstance(t, Symbolic)]
    floating = layer.weights or any(t.dtype.is_floating_point for t in inputs)
    dtype = layer.compute_dtype if floating else inputs[0].dtype
    if isinstance(predicted, (list, tuple)) and all(s is None or isinstance(s, int) for s in predicted):
        outputs: Any = KerasTensor(predicted, dtype)
    else:
        outputs = map_structure(lambda shape: KerasTensor(shape, dtype), _as_shapes(predicted))
    return _record(layer, args, kwargs, outputs)


def _record(operation: Any, args: tuple, kwargs: dict[str, Any], outputs: Any) -> Any:
    nodes = inbound_nodes(operation)
    node = Node(operation, args, kwargs, outputs)
    for index, tensor in enumerate(node.output_tensors):
        tensor._keras_history = History(operation, len(nodes), index)
    nodes.append(node)
    return outputs


_UNKNOWN = 9973  # stands for an unknown size while an operation runs on meta tensors


def _meta(value: Any) -> Any:
    if isinstance(value, Symbolic):
        return torch.empty(tuple(_UNKNOWN if s is None else s for s in value.shape), dtype=value.dtype, device="meta")
    if isinstance(value, (list, tuple)):
        return type(value)(_meta(v) for v in value)
    return value


def _traced_output_shape(layer: Layer, args: tuple, kwargs: dict[str, Any]) -> Any:
    """The output shapes of a layer without ``compute_output_shape`` (a user's own layer), as
    Keras's ``compute_output_spec`` traces them: ``call`` run on meta tensors, its weights
    swapped for meta ones (`torch.func.functional_call`); an unknown size stays unknown."""
    weights = {key: value.to("meta") for key, value in layer.state_dict(keep_vars=True).items()}
    try:
        with torch.no_grad():
            result = torch.func.functional_call(layer, weights, _meta(args), {k: _meta(v) for k, v in kwargs.items()})
    except Exception as error:  # noqa: BLE001  (its message says what does not fit)
        raise ArgumentError(
            f"{layer._label}: cannot be called on symbolic inputs: it has no `compute_output_shape`, and its `call` on "
            f"meta tensors failed: {type(error).__name__}: {error}"
        ) from None
    return map_structure(lambda t: tuple(None if s == _UNKNOWN else s for s in t.shape), result)


def record_operation(operation: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
    """An operation (`xlayers.ops.Operation`) called on symbolic tensors: its output's shape
    and dtype come from running it on meta tensors (an unknown size stays unknown)."""
    try:
        result = operation(*_meta(args), **{k: _meta(v) for k, v in kwargs.items()})
    except Exception as error:  # noqa: BLE001  (torch's own message says what does not fit)
        shapes = [getattr(a, "shape", a) for a in args]
        raise ArgumentError(f"{operation._label}: cannot be applied to arguments {shapes}: {error}") from None
    outputs = map_structure(
        lambda t: KerasTensor(tuple(None if s == _UNKNOWN else s for s in t.shape), t.dtype), result)
    return _record(operation, args, kwargs, outputs)


def _as_shapes(structure: Any) -> Any:
    """A structure of shapes with each shape a tuple (``compute_output_shape`` may give lists)."""
    if isinstance(structure, Mapping):
        return {k: _as_shapes(v) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)) and all(s is None or isinstance(s, int) for s in structure):
        return tuple(structure)
    return [_as_shapes(s) for s in structure]


class InputLayer(Layer):
    """The entry point of a functional model, as ``keras.layers.InputLayer``: it holds the
    shape and dtype of one input and passes the tensor through.

    Args:
        shape: shape of one sample (batch axis left out).
        batch_size: fixed batch size, if any.
        dtype: the input's dtype (``"float32"``; ``"int32"``/``"int64"`` for ids).
        batch_shape: the full shape, batch axis included (instead of ``shape``).
        sparse, ragged: only ``False`` (torch has no Keras sparse or ragged inputs here).
        optional: accepted for Keras compatibility (only ``False``).
        name: the layer's name.
    """

    def __init__(
        self,
        shape: Sequence[int | None] | None = None,
        batch_size: int | None = None,
        dtype: Any = None,
        sparse: bool | None = None,
        batch_shape: Sequence[int | None] | None = None,
        input_tensor: Any = None,
        optional: bool = False,
        name: str | None = None,
        ragged: bool | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(dtype, Mapping):  # Keras's DTypePolicy config
            dtype = dtype.get("config", {}).get("name")
        super().__init__(name=name, **kwargs)
        if sparse or ragged or optional or input_tensor is not None:
            raise ArgumentError(
                "only dense, required inputs are supported. "
                f"Received: sparse={sparse}, ragged={ragged}, optional={optional}, input_tensor={input_tensor!r}."
            )
        if (shape is None) == (batch_shape is None):
            raise ArgumentError(f"give `shape` or `batch_shape`, not both or neither. Received: shape={shape}, batch_shape={batch_shape}.")
        if batch_shape is None:
            if not isinstance(shape, (list, tuple)):
                shape = (shape,) if isinstance(shape, int) else shape
            if not isinstance(shape, (list, tuple)):
                raise ArgumentTypeError(f"`shape` must be a tuple of ints or None. Received: shape={shape!r}.")
            batch_shape = (batch_size, *shape)
        self.batch_shape = tuple(None if s is None else int(s) for s in batch_shape)
        resolved = getattr(torch, dtype, None) if isinstance(dtype, str) else (dtype or torch.get_default_dtype())
        if not isinstance(resolved, torch.dtype):
            raise ArgumentTypeError(f"`dtype` must be a dtype name such as 'float32' or 'int32'. Received: dtype={dtype!r}.")
        self.input_dtype = resolved
        self.built = True
        self._build_shape = self.batch_shape
        self._build_hook.remove()
        output = KerasTensor(self.batch_shape, resolved, name=self.name)
        node = Node(self, (), {}, output, is_input=True)
        output._keras_history = History(self, 0, 0)
        inbound_nodes(self).append(node)
        self.output = output

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs

    @classmethod
    def from_keras2_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """Keras 2 called the full shape ``batch_input_shape``."""
        config = dict(config)
        config["batch_shape"] = config.pop("batch_input_shape", config.get("batch_shape"))
        return config

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {"batch_shape": list(self.batch_shape), "dtype": dtype_name(self.input_dtype), "sparse": False,
                "ragged": False, "name": self.name, "optional": False}


def Input(
    shape: Sequence[int | None] | None = None,
    batch_size: int | None = None,
    dtype: Any = None,
    sparse: bool | None = None,
    batch_shape: Sequence[int | None] | None = None,
    name: str | None = None,
    tensor: Any = None,
    optional: bool = False,
) -> KerasTensor:
    """A symbolic input of a functional model, as ``keras.Input``: an `InputLayer`'s output.

    Example:
        >>> from xlayers import Dense, Input, Model
        >>> x = Input((8,))
        >>> model = Model(x, Dense(3)(x))
        >>> model(torch.randn(2, 8)).shape
        torch.Size([2, 3])
    """
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, sparse=sparse, batch_shape=batch_shape,
                       input_tensor=tensor, optional=optional, name=name)
    return layer.output


def _map_graph(inputs: list[KerasTensor], outputs: list[KerasTensor]) -> tuple[list[Node], list[Layer]]:
    """The nodes from the inputs to the outputs in a topological order, and the layers in
    Keras's ``model.layers`` order (by decreasing depth, then by first visit), as Keras's
    ``ops.function.map_graph``."""
    finished: set[int] = set()
    in_progress: set[int] = set()
    ordered: list[Node] = []
    first_visit: dict[int, int] = {}
    input_ids = {id(t) for t in inputs}

    def visit(tensor: KerasTensor) -> None:
        if tensor._keras_history is None:
            raise ArgumentError(f"{tensor!r} does not come from an `Input` or a layer call: it cannot be part of a model.")
        node = _node_of(tensor)
        if id(node) in finished:
            return
        if not node.is_input and id(tensor) in input_ids:
            finished.add(id(node))
            return
        if id(node) in in_progress:
            raise ArgumentError(f"the graph has a cycle through layer '{node.layer.name}'.")
        first_visit.setdefault(id(node.layer), len(first_visit))
        in_progress.add(id(node))
        if not node.is_input:
            for parent in node.input_tensors:
                visit(parent)
        finished.add(id(node))
        in_progress.discard(id(node))
        ordered.append(node)

    for tensor in outputs:
        visit(tensor)
    depth: dict[int, int] = {}
    layer_depth: dict[int, int] = {}
    layers: dict[int, Layer] = {}
    in_graph = {id(n) for n in ordered}
    for node in reversed(ordered):
        d = max(depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = d
        layers[id(node.layer)] = node.layer
        depth[id(node)] = d
        for parent in node.parent_nodes:
            if id(parent) in in_graph:
                depth[id(parent)] = max(d + 1, depth.get(id(parent), 0))
    for tensor in inputs:  # inputs the outputs do not use are kept, as Keras keeps them
        node = _node_of(tensor)
        if node.is_input and id(node.layer) not in layer_depth:
            layer_depth[id(node.layer)], first_visit[id(node.layer)], layers[id(node.layer)] = 0, -1, node.layer
    available = {id(t) for t in inputs}
    for node in ordered:
        missing = [t for t in node.input_tensors if id(t) not in available] if not node.is_input else []
        if node.is_input and id(node.output_tensors[0]) not in available:
            raise ArgumentError(
                f"the graph is disconnected: input '{node.layer.name}' is needed but is not among the model's inputs."
            )
        if missing:
            raise ArgumentError(f"the graph is disconnected: layer '{node.layer.name}' needs {missing[0]!r}.")
        available.update(id(t) for t in node.output_tensors)
    order = sorted(layers, key=lambda key: (-layer_depth[key], first_visit[key]))
    names = [layers[key].name for key in order]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ArgumentError(f"layer names must be unique within a model. Received: {duplicated} used more than once.")
    return ordered, [layers[key] for key in order]


class Functional(Layer):
    """A model defined by calling layers on symbolic inputs, as Keras's functional ``Model``.

    ``Model(inputs, outputs)``: ``inputs`` are `Input` tensors (one, a list or a dict),
    ``outputs`` what the layers returned (one, a list or a dict). Calling the model runs each
    recorded layer call once, in order, on real tensors; ``training`` reaches every layer
    that takes it, and masks flow as in Keras. Sub-layers live under their ``.keras`` paths
    (``layers/<class in snake case>``, numbered per class in ``layers`` order), so a shared
    layer's weights appear once.

    Args:
        inputs: the model's `Input` tensor(s).
        outputs: the symbolic output tensor(s).
        name: the model's name.
        trainable: whether its weights take gradients.

    Example:
        >>> from xlayers import Add, Dense, Input, Model
        >>> a, b = Input((4,)), Input((6,))
        >>> shared = Dense(3)
        >>> model = Model([a, b], Add()([shared(Dense(4)(b)), shared(a)]))
        >>> model([torch.randn(2, 4), torch.randn(2, 6)]).shape
        torch.Size([2, 3])
        >>> [key for key, _ in model.named_children()][1:]
        ['layers/dense', 'layers/input_layer_1', 'layers/dense_1', 'layers/add']
    """

    KERAS_MODULE = "keras.src.models.functional"
    KERAS_REGISTERED_NAME = "Functional"

    def __init__(self, inputs: Any, outputs: Any, name: str | None = None, trainable: bool = True, **kwargs: Any) -> None:
        super().__init__(name=name, trainable=trainable, **kwargs)
        for role, structure in (("inputs", inputs), ("outputs", outputs)):
            leaves = _leaves(structure)
            if not leaves or not all(isinstance(t, Symbolic) for t in leaves):
                raise ArgumentTypeError(
                    f"{self._label}: `{role}` must be symbolic tensors (from `Input` and layer calls), alone or in a "
                    f"list or dict. Received: {role} of type {type(structure).__name__}."
                )
        self._inputs_struct, self._outputs_struct = inputs, outputs
        self._input_tensors, self._output_tensors = _leaves(inputs), _leaves(outputs)
        self._execution, self._operations = _map_graph(self._input_tensors, self._output_tensors)
        self._layers = [op for op in self._operations if isinstance(op, Layer)]  # operation nodes hold no state
        self._own_nodes = {id(node) for node in self._execution}
        for layer in self._layers:
            self.add_module(self._key_for(layer), layer)
        self._takes = {id(op): (_takes(op, "mask"), _takes(op, "training")) for op in self._operations}
        self._output_masks: Any = None
        shapes = map_structure(lambda t: t.shape, inputs)
        self._build(shapes, device=None)

    def _key_for(self, layer: Layer) -> str:
        base = f"layers/{_snake_case(type(layer).__name__)}"
        index = 0
        while (key := base if index == 0 else f"{base}_{index}") in self._modules:
            index += 1
        return key

    @property
    def layers(self) -> list[Layer]:
        """The model's layers (its `InputLayer`s included), in Keras's order."""
        return list(self._layers)

    @property
    def inputs(self) -> list[KerasTensor]:
        return list(self._input_tensors)

    @property
    def outputs(self) -> list[KerasTensor]:
        return list(self._output_tensors)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by name or by index in ``layers``."""
        if index is not None:
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ArgumentError(f"{self._label}: no layer named {name!r}. Received: name={name!r}; layers: {[l.name for l in self._layers]}.")

    def build(self, input_shape: Shape) -> None:
        return None  # every layer was built by its symbolic call

    # -- running --------------------------------------------------------------------------------

    def _flat_inputs(self, inputs: Any) -> list[torch.Tensor]:
        struct = self._inputs_struct
        if isinstance(struct, Mapping):
            if not isinstance(inputs, Mapping) or set(inputs) != set(struct):
                received = sorted(inputs) if isinstance(inputs, Mapping) else type(inputs).__name__
                raise InputShapeError(f"{self._label}: expected a dict of inputs {sorted(struct)}. Received: {received}.")
            return [inputs[key] for key in struct]
        if isinstance(struct, (list, tuple)):
            if isinstance(inputs, Mapping):
                names = [t._keras_history.layer.name for t in self._input_tensors]
                if set(inputs) != set(names):
                    raise InputShapeError(f"{self._label}: expected inputs {names}. Received: {sorted(inputs)}.")
                return [inputs[n] for n in names]
            if len(struct) == 1 and not isinstance(inputs, (list, tuple)):
                return [inputs]
            if not isinstance(inputs, (list, tuple)) or len(inputs) != len(struct):
                count = len(inputs) if isinstance(inputs, (list, tuple)) else 1
                raise InputShapeError(f"{self._label}: expected {len(struct)} inputs. Received: {count}.")
            return list(inputs)
        if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
            return list(inputs)
        return [inputs]

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        values: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}
        masks = [None] * len(self._input_tensors) if mask is None else _leaves(mask) if isinstance(mask, (list, tuple, Mapping)) else [mask]
        for tensor, value, m in zip(self._input_tensors, self._flat_inputs(inputs), masks):
            node = _node_of(tensor)
            if node.is_input:
                value = self._check_input(node.layer, value)
            values[id(tensor)] = (value, m)
        real = lambda v: values[id(v)][0] if isinstance(v, Symbolic) else v
        for node in self._execution:
            if node.is_input or all(id(t) in values for t in node.output_tensors):
                continue
            layer = node.layer
            args = [map_structure(real, a) for a in node.args]
            kwargs = {k: map_structure(real, v) for k, v in node.kwargs.items()}
            takes_mask, takes_training = self._takes[id(layer)]
            in_masks = map_structure(lambda v: values[id(v)][1] if isinstance(v, Symbolic) else None, node.args[0])
            has_mask = any(m is not None for m in _leaves(in_masks))
            if takes_mask and has_mask and "mask" not in kwargs:
                kwargs["mask"] = in_masks
            if takes_training and training is not None and "training" not in kwargs:
                kwargs["training"] = training
            outputs = layer(*args, **kwargs)
            out_masks = layer.compute_mask(args[0], in_masks if has_mask else None) if isinstance(layer, Layer) else None
            flat = _leaves(outputs)
            flat_masks = _leaves(out_masks) if isinstance(out_masks, (list, tuple)) and len(_leaves(out_masks)) == len(flat) else [out_masks] * len(flat)
            for tensor, value, m in zip(node.output_tensors, flat, flat_masks):
                values[id(tensor)] = (value, m)
        self._output_masks = map_structure(lambda t: values[id(t)][1], self._outputs_struct)
        return map_structure(lambda t: values[id(t)][0], self._outputs_struct)

    def _check_input(self, layer: InputLayer, value: Any) -> torch.Tensor:
        tensor = self._as_tensor(value)
        wanted = layer.batch_shape
        if tensor.dim() != len(wanted) or any(w is not None and w != s for w, s in zip(wanted, tensor.shape)):
            raise InputShapeError(
                f"{self._label}: input '{layer.name}' must have shape {wanted}. Received: input shape={tuple(tensor.shape)}."
            )
        if tensor.is_floating_point() != layer.input_dtype.is_floating_point:
            raise InputShapeError(
                f"{self._label}: input '{layer.name}' must be {dtype_name(layer.input_dtype)}. Received: dtype={dtype_name(tensor.dtype)}."
            )
        return tensor

    def _convert_inputs(self, inputs: Any) -> Any:
        return inputs  # each input is checked against its `InputLayer`

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The output masks of the last call (Keras's masks of the output tensors)."""
        return self._output_masks

    def compute_output_shape(self, input_shape: Any) -> Any:
        shapes: dict[int, Any] = {}
        flat = _leaves(map_structure(tuple, input_shape)) if not _is_shape(tuple(input_shape)) else [tuple(input_shape)]
        for tensor, shape in zip(self._input_tensors, flat):
            shapes[id(tensor)] = shape
        for node in self._execution:
            if node.is_input:
                continue
            if not isinstance(node.layer, Layer):
                metas = [map_structure(lambda v: KerasTensor(shapes[id(v)], v.dtype) if isinstance(v, Symbolic) else v, a)
                         for a in node.args]
                out = [tuple(None if d == _UNKNOWN else d for d in t.shape) for t in _leaves(node.layer.spec.fn(*_meta(metas), **node.layer.config))]
                out = out[0] if len(out) == 1 else out
            else:
                given = map_structure(lambda v: shapes[id(v)] if isinstance(v, Symbolic) else v, node.args[0])
                out = node.layer.compute_output_shape(given)
            out_flat = [tuple(out)] if _is_shape(tuple(out)) else _leaves(_as_shapes(out))
            for tensor, shape in zip(node.output_tensors, out_flat):
                shapes[id(tensor)] = shape
        return map_structure(lambda t: shapes[id(t)], self._outputs_struct)

    # -- config ------------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """Keras's functional JSON: each layer's config with its calls (``inbound_nodes``) in
        this model, and the input and output tensors as ``[layer, node, tensor]``."""
        reindex: dict[int, int] = {}
        for layer in self._operations:  # each one's calls in this model, numbered from 0 (Keras 3; Keras 2
            kept = 0                    # counted a nested model's calls from 1)
            for node in inbound_nodes(layer):
                if id(node) in self._own_nodes:
                    reindex[id(node)] = kept
                    kept += 1

        def history(tensor: KerasTensor) -> list[Any]:
            node = _node_of(tensor)
            return [tensor._keras_history.layer.name, reindex[id(node)], tensor._keras_history.tensor_index]

        def argument(value: Any) -> Any:
            if isinstance(value, Symbolic):
                return {"class_name": "__keras_tensor__", "config": {
                    "shape": list(value.shape), "dtype": dtype_name(value.dtype), "keras_history": history(value)}}
            if isinstance(value, (list, tuple)):
                return [argument(v) for v in value]
            if isinstance(value, Mapping):
                return {k: argument(v) for k, v in value.items()}
            return serialize_key(value)  # slices of a `GetItem`

        entries = []
        for layer in self._operations:
            entry = serialize_layer(layer)
            entry["name"] = layer.name
            entry["inbound_nodes"] = [
                {"args": argument(list(node.args)), "kwargs": argument(dict(node.kwargs))}
                for node in inbound_nodes(layer) if id(node) in self._own_nodes and not node.is_input
            ]
            entries.append(entry)
        return {
            "name": self.name,
            "trainable": self.trainable,
            "layers": entries,
            "input_layers": map_structure(history, self._inputs_struct),
            "output_layers": map_structure(history, self._outputs_struct),
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any], custom_objects: Mapping[str, type] | None = None) -> Functional:
        """The model of a functional config (``get_config``'s, or Keras 3's)."""
        created: dict[str, Layer] = {}
        pending: dict[str, list[Mapping[str, Any]]] = {}
        outputs_of: dict[tuple[str, int], list[KerasTensor]] = {}
        for entry in config["layers"]:
            layer = deserialize_layer(entry, custom_objects)
            created[entry["name"]] = layer
            if _is_input_layer(layer):
                outputs_of[(entry["name"], 0)] = [layer.output]
            pending[entry["name"]] = list(entry.get("inbound_nodes", []))
        done = dict.fromkeys(created, 0)

        def resolve(value: Any) -> Any:
            if isinstance(value, Mapping) and value.get("class_name") == "__keras_tensor__":
                layer_name, node_index, tensor_index = value["config"]["keras_history"]
                return outputs_of[(layer_name, node_index)][tensor_index]
            if isinstance(value, Mapping) and value.get("class_name") in ("__slice__", "__ellipsis__"):
                return deserialize_key(value)
            if isinstance(value, list):
                return [resolve(v) for v in value]
            if isinstance(value, Mapping):
                return {k: resolve(v) for k, v in value.items()}
            return value

        def ready(value: Any) -> bool:
            if isinstance(value, Mapping) and value.get("class_name") == "__keras_tensor__":
                layer_name, node_index, _ = value["config"]["keras_history"]
                return (layer_name, node_index) in outputs_of
            if isinstance(value, list):
                return all(ready(v) for v in value)
            if isinstance(value, Mapping):
                return all(ready(v) for v in value.values())
            return True

        progress = True
        while progress and any(pending.values()):
            progress = False
            for name, nodes in pending.items():
                while nodes and ready(nodes[0]):
                    node = nodes.pop(0)
                    result = created[name](*resolve(node["args"]), **resolve(node["kwargs"]))
                    outputs_of[(name, done[name])] = _leaves(result)
                    done[name] += 1
                    progress = True
        stuck = [name for name, nodes in pending.items() if nodes]
        if stuck:
            raise ArgumentError(f"the functional config is disconnected: the calls of {stuck} need tensors no layer makes.")

        def tensor(spec: Sequence[Any]) -> KerasTensor:
            return outputs_of[(spec[0], spec[1])][spec[2]]

        def structure(spec: Any) -> Any:
            if isinstance(spec, Mapping):
                return {k: structure(v) for k, v in spec.items()}
            if isinstance(spec, list) and spec and isinstance(spec[0], str):
                return tensor(spec)
            return [structure(s) for s in spec]

        return cls(structure(config["input_layers"]), structure(config["output_layers"]),
                   name=config.get("name"), trainable=config.get("trainable", True))

    # -- printing ---------------------------------------------------------------------------------

    def summary(self, print_fn: Callable[[str], Any] = print) -> None:
        """Print each layer (name and class), its output shapes, its parameter count and the
        layers it is connected to; then the totals."""
        rows = [("Layer (type)", "Output Shape", "Param #", "Connected to")]
        for layer in self._operations:
            nodes = [n for n in inbound_nodes(layer) if id(n) in self._own_nodes]
            shapes = ", ".join(str(t.shape) for n in nodes for t in n.output_tensors)
            sources = ", ".join(f"{t._keras_history.layer.name}[{t._keras_history.node_index}][{t._keras_history.tensor_index}]"
                                for n in nodes for t in n.input_tensors) or "-"
            params = sum(p.numel() for p in layer.parameters()) if isinstance(layer, Layer) else 0
            kind = type(layer).__name__ if isinstance(layer, Layer) else layer.spec.class_name
            rows.append((f"{layer.name} ({kind})", shapes, f"{params:,}", sources))
        print_table(self, rows, print_fn)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, inputs={[t.shape for t in self._input_tensors]}"


Model = Functional
"""Keras's ``Model(inputs, outputs)``: the functional model."""


def serialize_layer(layer: Any) -> dict[str, Any]:
    """``layer`` (or an operation) as Keras serializes it: ``{"module", "class_name", "config",
    "registered_name", "build_config"}`` (the module and registered name of Keras's own class)."""
    if isinstance(layer, Operation):
        return {"module": f"keras.src.ops.{layer.spec.module}", "class_name": layer.spec.class_name,
                "config": layer.get_config(), "registered_name": layer.spec.class_name}
    entry = {"module": type(layer).KERAS_MODULE, "class_name": type(layer).__name__, "config": layer.get_config(),
             "registered_name": type(layer).KERAS_REGISTERED_NAME}
    if layer.built and not (_is_graph(layer) or _is_input_layer(layer)):
        entry["build_config"] = layer.get_build_config()
    return entry


def deserialize_layer(entry: Mapping[str, Any], custom_objects: Mapping[str, type] | None = None) -> Layer:
    """A layer from its Keras serialization ``{"class_name", "config", "build_config"?}``;
    ``custom_objects`` maps class names (``Name`` or a registered ``package>Name``) to a user's
    own xlayers classes; Keras's operation nodes (``keras.src.ops.*``) become
    `xlayers.ops.Operation`s."""
    if is_operation_entry(entry):
        return operation_from_entry(entry)
    where = entry.get("config", {}).get("name") or entry.get("class_name")
    try:
        return _deserialize_layer(entry, custom_objects)
    except ArgumentError as error:  # say where in the model, outermost first: `model/block/dense`
        path = [where, *getattr(error, "layer_path", [])]
        message = getattr(error, "layer_message", str(error))
        placed = ArgumentError(f"layer `{'/'.join(map(str, path))}`: {message}")
        placed.layer_path, placed.layer_message = path, message
        raise placed from None


def _deserialize_layer(entry: Mapping[str, Any], custom_objects: Mapping[str, type] | None) -> Layer:
    name = entry.get("class_name")
    # a registered class is `package>Name` (the `.h5` class name, the `.keras` registered name): either key, or `Name`
    keys = (entry.get("registered_name"), name, name.rpartition(">")[2])
    klass = next((custom_objects[k] for k in keys if custom_objects and k in custom_objects), None) \
        or get_layer_class("Functional" if name == "Model" else name)
    config = entry.get("config", {})
    layer = klass.from_config(config) if "custom_objects" not in inspect.signature(klass.from_config).parameters \
        else klass.from_config(config, custom_objects=custom_objects)
    if entry.get("build_config") and hasattr(layer, "build_from_config"):
        layer.build_from_config(entry["build_config"])
    return layer

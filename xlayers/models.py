"""`Sequential`: a stack of layers, each feeding the next, with Keras's mask propagation."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from .errors import ArgumentError, ArgumentTypeError
from .layer import Layer, Shape, _snake_case

__all__ = ["Sequential", "print_table"]


def _accepts(module: nn.Module, argument: str) -> bool:
    target = module.call if isinstance(module, Layer) else module.forward
    parameters = inspect.signature(target).parameters
    return argument in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


class Sequential(Layer):
    """A linear stack of layers, as ``keras.Sequential``.

    Each layer is called on the previous one's output. A layer that produces a mask
    (``Masking``, or any layer whose ``compute_mask`` returns one) passes it to the next
    layer whose ``call`` takes ``mask``; ``training`` reaches every layer that takes it.
    Builds lazily from the first input, or at once with ``input_shape=``. Plain torch
    modules may be mixed in (they take no mask).

    Args:
        layers: the layers, in order.
        **kwargs: base `Layer` arguments (``name``, ``input_shape``, ...).

    Example:
        >>> from xlayers import Dense
        >>> model = Sequential([Dense(8, activation="relu"), Dense(2)])
        >>> model(torch.randn(4, 3)).shape
        torch.Size([4, 2])
    """

    KERAS_MODULE = "keras"

    def __init__(self, layers: Iterable[nn.Module] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._stack: list[nn.Module] = []
        self._takes: list[tuple[bool, bool]] = []
        for layer in layers or ():
            self.add(layer)

    @property
    def layers(self) -> list[nn.Module]:
        return list(self._stack)

    def add(self, layer: nn.Module) -> None:
        """Append ``layer`` to the stack."""
        if not isinstance(layer, nn.Module):
            raise ArgumentTypeError(f"{self._label}: can only add torch modules (xlayers layers or nn.Module). Received: layer={layer!r}.")
        name = layer.name if isinstance(layer, Layer) else None
        if name is not None and any(isinstance(other, Layer) and other.name == name for other in self._stack):
            raise ArgumentError(f"{self._label}: layer names must be unique within a model; `{name}` is already used. Received: layer={name!r}.")
        key = self._key_for(layer)
        if self.built and isinstance(layer, Layer) and not layer.built and self._build_shape is not None:
            layer._build(self._output_shape_upto(len(self._stack)), device=None)
        self.add_module(key, layer)
        self._stack.append(layer)
        self._takes.append((_accepts(layer, "mask"), _accepts(layer, "training")))
        if len(self._stack) == 1 and isinstance(layer, Layer) and layer.built and not self.built:
            self._build(layer._build_shape, device=None)  # Keras: `input_shape=` on the first layer builds the model

    def _key_for(self, layer: nn.Module) -> str:
        """The module key of a new layer: ``layers/<class in snake case>``, numbered per class within
        this model (``layers/dense``, ``layers/dense_1``), as Keras's ``.keras`` files name it. It
        depends on the architecture only, never on names or on what else the process has built, so
        a ``state_dict`` loads into the same model built again."""
        base = f"layers/{_snake_case(type(layer).__name__)}"
        index = 0
        while (key := base if index == 0 else f"{base}_{index}") in self._modules:
            index += 1
        return key

    def pop(self) -> nn.Module:
        """Remove and return the last layer."""
        if not self._stack:
            raise ArgumentError(f"{self._label}: there is no layer to pop. Received: layers=[].")
        layer = self._stack.pop()
        self._takes.pop()
        for key, module in list(self._modules.items()):
            if module is layer:
                del self._modules[key]
        return layer

    def build(self, input_shape: Shape) -> None:
        shape = input_shape
        for layer in self._stack:
            if not isinstance(layer, Layer):
                return  # a plain module: the rest build lazily on the first call
            if not layer.built:
                layer._build(shape, device=self._build_device)
            shape = layer.compute_output_shape(shape)
        return

    def call(self, inputs: torch.Tensor, mask: torch.Tensor | None = None, training: bool | None = None) -> torch.Tensor:
        outputs = inputs
        for layer, (takes_mask, takes_training) in zip(self._stack, self._takes):
            kwargs: dict[str, Any] = {}
            if takes_mask and mask is not None:
                kwargs["mask"] = mask
            if takes_training and training is not None:
                kwargs["training"] = training
            next_mask = layer.compute_mask(outputs, mask) if isinstance(layer, Layer) else None
            outputs = layer(outputs, **kwargs)
            mask = next_mask
        return outputs

    def compute_mask(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor | None:
        for layer in self._stack:
            mask = layer.compute_mask(inputs, mask) if isinstance(layer, Layer) else None
            inputs = layer(inputs)
        return mask

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = tuple(input_shape)
        for layer in self._stack:
            if not isinstance(layer, Layer):
                raise ArgumentError(f"{self._label}: cannot infer the output shape through the torch module {type(layer).__name__}. Received: input_shape={input_shape}.")
            shape = layer.compute_output_shape(shape)
        return shape

    def _output_shape_upto(self, count: int) -> Shape:
        shape = self._build_shape
        for layer in self._stack[:count]:
            shape = layer.compute_output_shape(shape)
        return shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        from .functional import serialize_layer

        layers = []
        for layer in self._stack:
            if not isinstance(layer, Layer):
                raise ArgumentTypeError(f"{self._label}: `get_config` needs xlayers layers only. Received: layer of type {type(layer).__name__}.")
            layers.append(serialize_layer(layer))
        config["layers"] = layers
        if self.built and self._build_shape is not None:
            config["build_input_shape"] = list(self._build_shape)
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any], custom_objects: Mapping[str, type] | None = None) -> Sequential:
        from .functional import deserialize_layer

        config = dict(config)
        entries = list(config.pop("layers", []))
        build_shape = config.pop("build_input_shape", None)
        if entries and entries[0].get("class_name") == "InputLayer":  # Keras 3 writes its `Input` first
            build_shape = entries.pop(0)["config"]["batch_shape"]
        model = cls([deserialize_layer(entry, custom_objects) for entry in entries], **config)
        if build_shape is not None and not model.built:
            model.build_from_config({"input_shape": build_shape})
        return model

    def extra_repr(self) -> str:
        return f"name={self.name!r}" + (f", built_with={self._build_shape}" if self.built else "")

    def summary(self, print_fn: Callable[[str], Any] = print) -> None:
        """Print a table of layers: name (type), output shape, parameter count; then totals."""
        rows = [("Layer (type)", "Output Shape", "Param #")]
        shape = None if self._build_shape is None else (None, *self._build_shape[1:])  # any batch size
        for layer in self._stack:
            kind = type(layer).__name__
            name = layer.name if isinstance(layer, Layer) else "-"
            if shape is not None and isinstance(layer, Layer):
                shape = layer.compute_output_shape(shape)
                out = str(tuple(shape))
            else:
                shape, out = None, "?"
            built = not isinstance(layer, Layer) or layer.built
            params = sum(p.numel() for p in layer.parameters()) if built else None
            rows.append((f"{name} ({kind})", out, "?" if params is None else f"{params:,}"))
        print_table(self, rows, print_fn)


def print_table(model: nn.Module, rows: list[tuple[str, ...]], print_fn: Callable[[str], Any]) -> None:
    """Keras's summary: the model's name, a table (a header row, then one row per layer; the
    third column, parameter counts, right-aligned), then the parameter totals."""
    columns = len(rows[0])
    widths = [max(len(r[i]) for r in rows) + 2 for i in range(columns)]
    rule = "+" + "+".join("-" * w for w in widths) + "+"

    def line(row: tuple[str, ...]) -> str:
        return "|" + "|".join(f" {c:>{w - 2}} " if i == 2 else f" {c:<{w - 2}} " for i, (c, w) in enumerate(zip(row, widths))) + "|"

    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    text = [f'Model: "{model.name}"', rule, line(rows[0]), rule.replace("-", "=")]
    text += [line(r) for r in rows[1:]] + [rule]
    text += [f" Total params: {total:,}", f" Trainable params: {trainable:,}", f" Non-trainable params: {total - trainable:,}"]
    print_fn("\n".join(text))

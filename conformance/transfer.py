"""Weight transfer between an xlayers layer and its Keras twin, by full Keras path.

Both sides are walked the way Keras names weights in its ``.keras`` files: sub-layers by
attribute name, then each variable by its name (``cell/kernel``,
``forward_layer/cell/kernel``). xlayers' side is `Layer.walk_weights`, where each weight's
path comes from its ``LAYOUT`` declaration. Weights are matched by that full path (never by
their last component, never by position), each shape is checked against the declaration,
and only then is anything copied: a failed transfer changes nothing. xlayers stores Keras's
layout, so nothing is transposed here.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch

from xlayers.errors import WeightNameError
from xlayers.layer import Layer, WeightEntry

from .keras_reference import unwrap

__all__ = ["from_keras", "keras_variables", "to_keras"]

_PATHS: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()  # a twin's walk, done once


def keras_variables(twin: Any) -> dict[str, Any]:
    """The Keras layer's weights keyed by their path inside it, as ``.keras`` files walk them:
    each layer's own variables by name, then its sub-layers by attribute name (Keras's
    ``saving_lib._walk_saveable``), the layers of a list by class name numbered per list
    (``layers/dense_1``; Keras's ``_save_container_state``); a layer reached twice keeps its
    first path."""
    from keras.src.saving import saving_lib
    from keras.src.utils.naming import to_snake_case

    root = unwrap(twin)
    cached = _PATHS.get(root)
    if cached is not None and len(cached) == len(root.weights):
        return cached
    weights = {id(v) for v in root.weights}  # leaves out seed-generator state and metrics
    found: dict[str, Any] = {}
    seen: set[int] = set()

    def walk(layer: Any, prefix: str) -> None:
        seen.add(id(layer))
        for variable in [*layer._trainable_variables, *layer._non_trainable_variables]:
            if id(variable) in weights:
                found[prefix + variable.name] = variable
        for attribute, child in saving_lib._walk_saveable(layer):
            visit(child, f"{prefix}{attribute}")

    def visit(child: Any, path: str) -> None:
        if hasattr(child, "_trainable_variables"):
            if id(child) not in seen:
                walk(child, f"{path}/")
        elif isinstance(child, (list, tuple, dict)) and id(child) not in seen:
            # a container's elements by class name, numbered per container (`layers/dense_1`)
            seen.add(id(child))
            used: dict[str, int] = {}
            for item in child.values() if isinstance(child, dict) else child:
                if hasattr(item, "_trainable_variables") or isinstance(item, (list, tuple, dict)):
                    base = to_snake_case(type(item).__name__) if hasattr(item, "_trainable_variables") else "container"
                    used[base] = used[base] + 1 if base in used else 0
                    visit(item, f"{path}/{base}" + (f"_{used[base]}" if used[base] else ""))

    walk(root, "")
    _PATHS[root] = found
    return found


def _matched(layer: Layer, twin: Any) -> list[tuple[WeightEntry, Any]]:
    entries = {entry.path: entry for entry in layer.walk_weights()}
    variables = keras_variables(twin)
    missing = [path for path in entries if path not in variables]
    extra = [path for path in variables if path not in entries]
    if missing or extra:
        raise WeightNameError(
            f"{layer._label}: the Keras layer's weights do not match the declaration {list(entries)}. "
            f"Received: missing={missing}, unexpected={extra}."
        )
    return [(entry, variables[path]) for path, entry in entries.items()]


def _check(entry: WeightEntry, shape: tuple[int, ...]) -> None:
    entry.check(shape)


def to_keras(layer: Layer, twin: Any) -> None:
    """Copy ``layer``'s weights into the Keras layer ``twin`` (xlayers -> Keras)."""
    values = []
    for entry, variable in _matched(layer, twin):
        _check(entry, tuple(variable.shape))  # the Keras side has the declared shape
        value = entry.parameter.detach().cpu()
        value = value.float() if value.dtype == torch.bfloat16 else value
        values.append((variable, value.numpy().astype(variable.dtype)))
    for variable, value in values:
        variable.assign(value)


def from_keras(layer: Layer, twin: Any) -> None:
    """Copy the Keras layer ``twin``'s weights into ``layer`` (Keras -> xlayers)."""
    values = []
    for entry, variable in _matched(layer, twin):
        value = np.asarray(variable.numpy())
        _check(entry, value.shape)
        values.append((entry.parameter, torch.from_numpy(value)))
    with torch.no_grad():  # every shape checked first: a failed transfer changes nothing
        for parameter, value in values:
            parameter.copy_(value.to(parameter.dtype))

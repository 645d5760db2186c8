"""Weight transfer between xlayers layers and Keras layers, by name, driven by ``LAYOUT``.

Both directions match each declared weight by its Keras name (the last component of the
Keras variable's path: ``lstm/lstm_cell/kernel`` is ``kernel``), check the shape against the
declaration, and copy. Nothing is positional, nothing is transposed by hand: xlayers stores
Keras's layout, and any other framework's view goes through ``Weight.convert``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from xlayers.errors import WeightNameError
from xlayers.layer import Layer

__all__ = ["keras_weights_by_name", "to_keras", "from_keras"]


def keras_weights_by_name(twin: Any) -> dict[str, Any]:
    """The Keras layer's variables keyed by their last path component."""
    twin = getattr(twin, "twin", twin)  # unwrap a ChannelsFirstTwin
    return {variable.path.split("/")[-1]: variable for variable in twin.weights}


def _matched(layer: Layer, twin: Any) -> list[tuple[Any, Any]]:
    variables = keras_weights_by_name(twin)
    declared = layer.declared_weights()
    missing = [w.name for w in declared if w.name not in variables]
    extra = sorted(set(variables) - {w.name for w in declared})
    if missing or extra:
        raise WeightNameError(
            f"{layer._label}: the Keras layer's weights do not match the declaration "
            f"{[w.name for w in declared]}. Received: missing={missing}, unexpected={extra}."
        )
    return [(weight, variables[weight.name]) for weight in declared]


def to_keras(layer: Layer, twin: Any) -> None:
    """Copy ``layer``'s weights into the Keras layer ``twin`` (xlayers -> Keras)."""
    pairs = _matched(layer, twin)
    values = []
    for weight, variable in pairs:
        value = getattr(layer, weight.name).detach().cpu()
        weight.check(layer.name, tuple(variable.shape), layer._sizes)  # the Keras side has the declared shape
        value = value.float() if value.dtype == torch.bfloat16 else value
        values.append((variable, value.numpy().astype(variable.dtype)))
    for variable, value in values:
        variable.assign(value)


def from_keras(layer: Layer, twin: Any) -> None:
    """Copy the Keras layer ``twin``'s weights into ``layer`` (Keras -> xlayers)."""
    pairs = _matched(layer, twin)
    values = []
    for weight, variable in pairs:
        value = np.asarray(variable.numpy())
        weight.check(layer.name, value.shape, layer._sizes)
        values.append((getattr(layer, weight.name), torch.from_numpy(value)))
    with torch.no_grad():  # every shape checked first: a failed transfer changes nothing
        for parameter, value in values:
            parameter.copy_(value.to(parameter.dtype))

"""`check_layer`: the fixed checklist every layer's unit tests walk.

Build, weight names and shapes against ``LAYOUT``, output shape against
``compute_output_shape``, a backward pass reaching the input and every trainable weight,
``torch.compile(fullgraph=True)`` agreeing with eager, and ``get_config`` round-tripping
through JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch

from xlayers.layer import Layer

__all__ = ["check_layer", "randomize_weights"]


def randomize_weights(layer: Layer, seed: int = 0) -> None:
    """Give every weight seeded random values away from its initializer's (biases non-zero,
    every gate different), so a transposed kernel or a swapped gate shows in the output."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for index, weight in enumerate(layer.weights):
            value = torch.randn(weight.shape, generator=generator, dtype=torch.float64)
            scale = 1.0 / max(1, weight.shape[0]) ** 0.5 if weight.ndim > 1 else 0.5
            weight.copy_((value * scale + 0.1 * (index + 1)).to(weight.dtype))


def check_layer(
    layer: Layer,
    input_shape: Sequence[int],
    expected_weights: dict[str, tuple[int, ...]],
    call_kwargs: dict[str, Any] | None = None,
    compile: bool = True,
) -> torch.Tensor:
    """Run the checklist on an unbuilt ``layer`` and return its output."""
    call_kwargs = call_kwargs or {}
    assert not layer.built
    inputs = torch.randn(*input_shape, requires_grad=True)
    outputs = layer(inputs, **call_kwargs)
    assert layer.built
    # weights: names and Keras-layout shapes, and LAYOUT agrees with the parameters
    assert {n: tuple(p.shape) for n, p in layer.named_parameters()} == expected_weights
    for weight in layer.declared_weights():
        assert tuple(getattr(layer, weight.name).shape) == weight.shape(layer._sizes)
    # output shape
    first = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
    predicted = layer.compute_output_shape((None, *input_shape[1:]))
    predicted = predicted[0] if isinstance(predicted, list) else predicted
    assert tuple(first.shape[1:]) == tuple(predicted[1:]), (first.shape, predicted)
    # backward reaches the input and every trainable weight
    upstream = torch.randn_like(first)
    (first * upstream).sum().backward()
    assert inputs.grad is not None and torch.isfinite(inputs.grad).all()
    for weight in layer.trainable_weights:
        assert weight.grad is not None, "a trainable weight got no gradient"
    # torch.compile(fullgraph=True) agrees with eager
    if compile:
        torch._dynamo.reset()  # each layer compiles afresh (layers share Layer.forward's code object)
        compiled = torch.compile(layer, fullgraph=True, backend="eager")
        with torch.no_grad():
            fresh = torch.randn(*input_shape)
            eager = layer(fresh, **call_kwargs)
            traced = compiled(fresh, **call_kwargs)
        eager = eager[0] if isinstance(eager, (list, tuple)) else eager
        traced = traced[0] if isinstance(traced, (list, tuple)) else traced
        torch.testing.assert_close(traced, eager)
    # config: JSON round trip gives an equal config, repr names the layer
    config = json.loads(json.dumps(layer.get_config()))
    clone = type(layer).from_config(config)
    assert clone.get_config() == layer.get_config()
    assert layer.name in repr(layer)
    return outputs

"""EinsumDense: the checklist, weight shapes from the equation (Keras's rules), the output shape
where Keras's ``compute_output_shape`` is wrong, the kernel initializer's fans, config.

Keras equivalence and the error messages are registry data: `conformance/cases/core.py`, run by
`tests/test_conformance.py`.
"""

from __future__ import annotations

import math

import pytest
import torch

from conformance.testing import check_layer
from xlayers import EinsumDense


def test_checklist_attention_projection():
    check_layer(EinsumDense("abc,cde->abde", (None, 4, 6), bias_axes="de", activation="relu"), (3, 5, 7),
                {"kernel": (7, 4, 6), "bias": (4, 6)})


def test_checklist_lora():
    layer = EinsumDense("abc,cde->abde", (None, 4, 6), lora_rank=2)
    check_layer(layer, (3, 5, 7), {"kernel": (7, 4, 6), "lora_kernel_a": (7, 4, 2), "lora_kernel_b": (2, 6)})
    assert not layer.kernel.requires_grad


@pytest.mark.parametrize("equation, output_shape, bias_axes, input_shape, kernel, bias, output", [
    ("ab,bc->ac", 7, None, (3, 5), (5, 7), None, (3, 7)),
    ("abcd,cde->abe", (None, 7), "e", (3, 5, 4, 6), (4, 6, 7), (7,), (3, 5, 7)),
    ("abc,cde->abde", (None, 4, 6), "d", (3, 5, 7), (7, 4, 6), (4, 1), (3, 5, 4, 6)),
    ("...b,bc->...c", 7, "c", (2, 3, 4, 5), (5, 7), (7,), (2, 3, 4, 7)),
    ("ab...,bc->ac...", 7, "c", (3, 5, 4, 2), (5, 7), (7, 1, 1), (3, 7, 4, 2)),
])
def test_shapes_and_math(equation, output_shape, bias_axes, input_shape, kernel, bias, output):
    layer = EinsumDense(equation, output_shape, bias_axes=bias_axes, bias_initializer="random_normal")
    x = torch.randn(*input_shape)
    y = layer(x)
    assert tuple(layer.kernel.shape) == kernel
    assert (tuple(layer.bias.shape) if bias_axes else None) == bias
    assert tuple(y.shape) == output == layer.compute_output_shape(input_shape)
    expected = torch.einsum(equation, x, layer.kernel) + (layer.bias if bias_axes else 0)
    torch.testing.assert_close(y, expected, rtol=0, atol=0)


def test_left_ellipsis_output_shape_keeps_the_input_order():
    """Keras 3.15's compute_output_shape inserts the elided axes in reverse ((2, 4, 3, 7) here); its
    call returns (2, 3, 4, 7), as xlayers does and predicts."""
    layer = EinsumDense("...b,bc->...c", 7)
    assert layer.compute_output_shape((2, 3, 4, 5)) == (2, 3, 4, 7) == tuple(layer(torch.randn(2, 3, 4, 5)).shape)


def test_glorot_fans_come_from_the_equation():
    """Keras gives VarianceScaling the equation's input and output axes: fan_in = c, fan_out = d * e."""
    layer = EinsumDense("abc,cde->abde", (None, 8, 16), kernel_initializer="glorot_uniform")
    layer(torch.randn(2, 3, 32))
    limit = math.sqrt(6 / (32 + 8 * 16))
    kernel = layer.kernel.detach()
    assert kernel.abs().max() <= limit and kernel.abs().max() > 0.95 * limit
    assert layer.get_config()["kernel_initializer"]["config"].get("input_axes") is None  # the argument is unchanged


def test_config_round_trip():
    layer = EinsumDense("abc,cde->abde", (None, 4, 6), bias_axes="de", activation="gelu", name="query")
    again = EinsumDense.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
    assert layer.get_config()["output_shape"] == [None, 4, 6]


def test_layout_is_the_instances():
    layer = EinsumDense("abc,cde->abde", (None, 4, 6), bias_axes="d")
    layer(torch.randn(3, 5, 7))
    assert [w.axes for w in layer.declared_weights()] == [("c", "d", "e"), ("d", "e1")]
    assert [e.path for e in layer.walk_weights()] == ["kernel", "bias"]

"""Embedding: lookups for every integer dtype, the id range check, masks, ``weights=``, LoRA's
scale where Keras differs, ``torch.compile``.

Keras equivalence (outputs, the gradient of ``embeddings``, ``compute_mask``) and the error
messages are registry data: `conformance/cases/core.py`, run by `tests/test_conformance.py`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xlayers import Embedding
from xlayers.errors import ArgumentError, InputDtypeError


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64])
def test_lookup_for_every_integer_dtype(dtype):
    layer = Embedding(9, 4)
    ids = torch.tensor([[0, 3, 8], [5, 5, 1]], dtype=dtype)
    outputs = layer(ids)
    assert outputs.shape == (2, 3, 4) and outputs.dtype == torch.float32
    torch.testing.assert_close(outputs, layer.embeddings.detach()[ids.long()], rtol=0, atol=0)
    assert layer.compute_output_shape((None, 3)) == (None, 3, 4)


def test_rank1_and_rank3_ids_and_numpy():
    layer = Embedding(6, 2)
    assert layer(np.array([1, 2, 5])).shape == (3, 2)
    assert layer(torch.randint(0, 6, (2, 3, 4))).shape == (2, 3, 4, 2)


@pytest.mark.parametrize("bad, found", [([[0, 9]], r"\[0, 9\]"), ([[-1, 3]], r"\[-1, 3\]"), ([[-4, 12]], r"\[-4, 12\]")])
def test_out_of_range_ids_raise_naming_the_layer_and_the_range(bad, found):
    layer = Embedding(9, 3)
    with pytest.raises(ArgumentError, match=rf"^`Embedding` layer 'embedding(_\d+)?': ids must be in \[0, input_dim\) = \[0, 9\)\. "
                                            rf"Received: ids in {found}, input shape=\(1, 2\)\.$"):
        layer(torch.tensor(bad))


def test_empty_ids():
    assert Embedding(4, 3)(torch.zeros((2, 0), dtype=torch.int64)).shape == (2, 0, 3)


def test_float_ids_are_refused():
    with pytest.raises(InputDtypeError, match=r"expected an integer input\. Received: dtype=float32\."):
        Embedding(4, 3)(torch.ones(2, 3))


def test_mask_zero():
    ids = torch.tensor([[3, 0, 1], [0, 0, 2]])
    assert Embedding(4, 2).compute_mask(ids) is None
    layer = Embedding(4, 2, mask_zero=True)
    assert layer.supports_masking
    assert torch.equal(layer.compute_mask(ids), ids != 0)


def test_gradient_reaches_only_the_rows_looked_up():
    layer = Embedding(6, 3)
    layer(torch.tensor([[1, 4, 4]])).sum().backward()
    grad = layer.embeddings.grad
    assert torch.equal(grad[4], torch.full((3,), 2.0)) and torch.equal(grad[1], torch.ones(3))
    assert grad[[0, 2, 3, 5]].abs().sum() == 0


@pytest.mark.parametrize("weights", ["array", "list"])
def test_weights_argument_builds_and_sets(weights):
    value = np.arange(12, dtype=np.float32).reshape(4, 3)
    layer = Embedding(4, 3, weights=value if weights == "array" else [value])
    assert layer.built
    np.testing.assert_array_equal(layer.get_weights()[0], value)
    np.testing.assert_array_equal(layer(torch.tensor([2])).detach().numpy(), value[[2]])


def test_lora_scale_is_lora_alpha_over_rank():
    """The registry's `embedding/lora-r2-alpha3` records Keras's deviation (it drops lora_alpha); this is the definition."""
    layer = Embedding(5, 4, lora_rank=2, lora_alpha=3.0)
    ids = torch.tensor([[0, 4, 2]])
    layer(ids)
    with torch.no_grad():
        layer.lora_embeddings_b.normal_()
    expected = layer.embeddings + 1.5 * layer.lora_embeddings_a @ layer.lora_embeddings_b
    torch.testing.assert_close(layer(ids), expected[ids])
    assert not layer.embeddings.requires_grad
    assert [w.name for w in layer.trainable_weights] == ["lora_embeddings_a", "lora_embeddings_b"]


def test_config_round_trip():
    layer = Embedding(7, 3, mask_zero=True, embeddings_initializer="glorot_normal", name="tokens")
    again = Embedding.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()


def test_torch_compile_fullgraph_matches_eager():
    layer = Embedding(10, 4)
    ids = torch.randint(0, 10, (3, 5))
    eager = layer(ids)
    torch._dynamo.reset()
    compiled = torch.compile(layer, fullgraph=True)
    torch.testing.assert_close(compiled(ids), eager, rtol=0, atol=0)

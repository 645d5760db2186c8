"""Attention layers: the checklist, which path runs (torch's fused SDPA where claimed), the fused
path against the matmul path, Keras's all-masked-row rules, building from three shapes, Keras's
build config, grouped heads as repeated heads, the Luong/Bahdanau formulas, and an ONNX export.

Keras equivalence over arguments, masks, dropout and dtypes is registry data:
`conformance/cases/attention.py`."""

from __future__ import annotations

import math
from unittest import mock

import pytest
import torch

from conformance.testing import check_layer
from xlayers import AdditiveAttention, Attention, GroupQueryAttention, MultiHeadAttention
from xlayers.errors import WeightShapeError
from xlayers.layers import attention_ops

B, T, S, D = 3, 5, 7, 6


def _sdpa_calls(fn):
    """How many times ``fn()`` called torch's ``scaled_dot_product_attention``."""
    with mock.patch.object(attention_ops.F, "scaled_dot_product_attention", wraps=torch.nn.functional.scaled_dot_product_attention) as spy:
        fn()
    return spy.call_count


def test_mha_checklist():
    expected = {
        "query_dense.kernel": (D, 2, 4), "query_dense.bias": (2, 4), "key_dense.kernel": (D, 2, 4), "key_dense.bias": (2, 4),
        "value_dense.kernel": (D, 2, 3), "value_dense.bias": (2, 3), "output_dense.kernel": (2, 3, D), "output_dense.bias": (D,),
    }
    layer = MultiHeadAttention(2, 4, value_dim=3)
    check_layer(layer, (B, T, D), expected, call_kwargs={"value": torch.randn(B, T, D)})


def test_mha_weights_in_keras_order_with_keras_paths():
    layer = MultiHeadAttention(3, 5, value_dim=2, use_gate=True, name="mha")
    layer(torch.randn(B, T, D), torch.randn(B, S, 4), torch.randn(B, S, 7))
    paths = [e.path for e in layer.walk_weights()]
    assert paths == ["query_dense/kernel", "query_dense/bias", "key_dense/kernel", "key_dense/bias", "_gate_dense/kernel",
                     "_gate_dense/bias", "value_dense/kernel", "value_dense/bias", "output_dense/kernel", "output_dense/bias"]
    shapes = {e.path: tuple(e.parameter.shape) for e in layer.walk_weights()}
    assert shapes["key_dense/kernel"] == (7, 3, 5) and shapes["value_dense/kernel"] == (4, 3, 2)
    assert shapes["output_dense/kernel"] == (3, 2, D) and shapes["_gate_dense/bias"] == (3, 2)
    assert layer.weights[0].path == "query/kernel"  # its owner's (Keras names the projection `query`)


@pytest.mark.parametrize("kwargs, call, path", [
    ({}, {}, "sdpa"),
    ({}, {"use_causal_mask": True}, "sdpa"),
    ({"dropout": 0.5}, {"training": False}, "sdpa"),
    ({}, {"training": True}, "sdpa"),
    ({}, {"return_attention_scores": True}, "matmul"),
    ({"dropout": 0.5}, {"training": True}, "matmul"),
])
def test_mha_takes_sdpa_where_claimed(kwargs, call, path):
    layer = MultiHeadAttention(2, 4, **kwargs)
    q, v = torch.randn(B, T, D), torch.randn(B, S, D)
    calls = _sdpa_calls(lambda: layer(q, v, **call))
    assert layer.last_path == path and calls == (1 if path == "sdpa" else 0)


def test_rank4_inputs_take_the_matmul_path():
    layer = MultiHeadAttention(2, 4, attention_axes=(1, 2))
    calls = _sdpa_calls(lambda: layer(torch.randn(B, 2, 5, D), torch.randn(B, 3, 4, D)))
    assert layer.last_path == "matmul" and calls == 0


@pytest.mark.parametrize("make", [lambda: MultiHeadAttention(3, 5, value_dim=2, dtype=torch.float64),
                                  lambda: GroupQueryAttention(4, 6, 2, dtype=torch.float64)], ids=["mha", "gqa"])
def test_sdpa_path_agrees_with_the_matmul_path(make):
    torch.manual_seed(0)
    layer = make()
    q, v, k = (torch.randn(B, T, D, dtype=torch.float64), torch.randn(B, S, D, dtype=torch.float64), torch.randn(B, S, D, dtype=torch.float64))
    value_mask = torch.rand(B, S) > 0.3
    value_mask[:, 0] = True  # no empty row: there the two Keras paths differ by design
    for call in ({}, {"use_causal_mask": True}, {"value_mask": value_mask, "use_causal_mask": True}, {"attention_mask": torch.rand(B, T, S) > -1}):
        layer(q, v, k)  # builds
        fused = layer(q, v, k, **call)
        assert layer.last_path == "sdpa"
        explicit, scores = layer(q, v, k, return_attention_scores=True, **call)
        assert layer.last_path == "matmul"
        torch.testing.assert_close(fused, explicit, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(scores.sum(-1), torch.ones_like(scores.sum(-1)))


def test_all_masked_row_averages_values_on_the_fused_path_and_is_zero_on_the_masked_softmax_path():
    """Keras 3.15: `dot_product_attention` (no dropout configured, no scores) gives an all-masked
    query row the plain average of the values, with no gradient to the query or keys; its masked
    softmax (scores asked for, or dropout configured) gives zeros."""
    torch.manual_seed(1)
    layer = MultiHeadAttention(2, 4, dtype=torch.float64)
    q = torch.randn(B, T, D, dtype=torch.float64, requires_grad=True)
    v = torch.randn(B, S, D, dtype=torch.float64)
    mask = torch.ones(B, T, S, dtype=torch.bool)
    mask[1, 2] = False
    out = layer(q, v, attention_mask=mask)
    heads = layer.value_dense(v)[1].mean(0)  # (heads, value_dim): the uniform average of the projected values
    expected = torch.einsum("hv,hvo->o", heads, layer.output_dense.kernel) + layer.output_dense.bias
    torch.testing.assert_close(out[1, 2], expected)
    out[1, 2].sum().backward()
    assert torch.count_nonzero(q.grad) == 0  # the row's logits are constants
    zeros = layer(q, v, attention_mask=mask, return_attention_scores=True)
    torch.testing.assert_close(zeros[0][1, 2], layer.output_dense.bias)  # zero attention, then the projection's bias
    assert torch.count_nonzero(zeros[1][1, :, 2]) == 0
    dropping = MultiHeadAttention(2, 4, dropout=0.5, dtype=torch.float64)
    dropping(q, v)
    dropping.set_weights(layer.get_weights())
    torch.testing.assert_close(dropping(q, v, attention_mask=mask, training=False)[1, 2], layer.output_dense.bias)
    assert dropping.last_path == "sdpa"


def test_build_from_three_shapes_and_keras_build_config():
    layer = MultiHeadAttention(2, 4)
    q, v, k = torch.randn(B, T, D), torch.randn(B, S, 4), torch.randn(B, S, 5)
    out = layer([q, v, k])
    assert layer.get_build_config() == {"shapes_dict": {"query_shape": [B, T, D], "value_shape": [B, S, 4], "key_shape": [B, S, 5]}}
    torch.testing.assert_close(layer(q, v, key=k), out)
    clone = MultiHeadAttention.from_config(layer.get_config())
    clone.build_from_config(layer.get_build_config())
    clone.set_weights(layer.get_weights())
    torch.testing.assert_close(clone(q, v, k), out)
    listed = MultiHeadAttention(2, 4)
    listed.build_from_config({"input_shape": [[B, T, D], [B, S, 4], [B, S, 5]]})
    assert [tuple(w.shape) for w in listed.weights] == [tuple(w.shape) for w in layer.weights]


def test_mha_set_weights_names_the_layer_and_the_path():
    layer = MultiHeadAttention(2, 4, name="mha")
    layer(torch.randn(B, T, D), torch.randn(B, S, D))
    weights = layer.get_weights()
    weights[2] = weights[2][:-1]
    with pytest.raises(WeightShapeError, match=r"^`MultiHeadAttention` layer 'mha': weight `kernel` must have shape \(c=6, d=2, e=4\)"):
        layer.set_weights(weights)


def test_bias_initializer_reaches_every_projection():
    layer = MultiHeadAttention(2, 4, bias_initializer="ones")
    layer(torch.randn(B, T, D), torch.randn(B, S, D))
    biases = [e.parameter for e in layer.walk_weights() if e.path.endswith("bias")]
    assert len(biases) == 4 and all(bool((b == 1).all()) for b in biases)


def test_gqa_is_mha_with_each_kv_head_repeated_for_consecutive_query_heads():
    torch.manual_seed(2)
    gqa = GroupQueryAttention(head_dim=3, num_query_heads=4, num_key_value_heads=2, bias_initializer="random_normal")
    q, v = torch.randn(B, T, D), torch.randn(B, S, D)
    out = gqa(q, v)
    mha = MultiHeadAttention(4, 3)
    mha(q, v)
    with torch.no_grad():
        mha.query_dense.kernel.copy_(gqa._query_dense.kernel)
        mha.query_dense.bias.copy_(gqa._query_dense.bias)
        for ours, theirs in ((mha.key_dense, gqa._key_dense), (mha.value_dense, gqa._value_dense)):
            ours.kernel.copy_(theirs.kernel.repeat_interleave(2, dim=1))  # kv head h serves query heads 2h, 2h + 1
            ours.bias.copy_(theirs.bias.repeat_interleave(2, dim=0))
        mha.output_dense.kernel.copy_(gqa._output_dense.kernel)
        mha.output_dense.bias.copy_(gqa._output_dense.bias)
    torch.testing.assert_close(out, mha(q, v))


def test_scores_shapes():
    layer = MultiHeadAttention(3, 4, attention_axes=(2,))
    _, scores = layer(torch.randn(B, 2, T, D), torch.randn(B, 2, S, D), return_attention_scores=True)
    assert tuple(scores.shape) == (B, 2, 3, T, S)
    assert layer.compute_output_shape([(B, 2, T, D), (B, 2, S, D)], return_attention_scores=True) == [(B, 2, T, D), (B, 2, 3, T, S)]
    gqa = GroupQueryAttention(3, 4, 2)
    _, scores = gqa(torch.randn(B, T, D), torch.randn(B, S, D), return_attention_scores=True)
    assert tuple(scores.shape) == (B, 4, T, S)


def test_attention_formulas():
    torch.manual_seed(3)
    q, v, k = torch.randn(B, T, 4), torch.randn(B, S, 4), torch.randn(B, S, 4)
    dot = Attention(use_scale=True)
    dot([q, v, k])
    with torch.no_grad():
        dot.scale.fill_(0.7)
    expected = torch.softmax(0.7 * q @ k.transpose(1, 2), -1) @ v
    torch.testing.assert_close(dot([q, v, k]), expected)
    concat = Attention(use_scale=True, score_mode="concat")
    concat([q, v])
    with torch.no_grad():
        concat.scale.fill_(0.5)
        concat.concat_score_weight.fill_(1.5)
    scores = 1.5 * torch.tanh(0.5 * (q[:, :, None] + v[:, None])).sum(-1)
    torch.testing.assert_close(concat([q, v]), torch.softmax(scores, -1) @ v)
    additive = AdditiveAttention()
    additive([q, v])
    scores = (additive.scale * torch.tanh(q[:, :, None] + v[:, None])).sum(-1)
    torch.testing.assert_close(additive([q, v]), torch.softmax(scores, -1) @ v)


def test_attention_masks_subtract_and_zero_masked_queries():
    torch.manual_seed(4)
    q, v = torch.randn(B, T, 4, dtype=torch.float64), torch.randn(B, S, 4, dtype=torch.float64)
    layer = Attention()
    query_mask = torch.ones(B, T, dtype=torch.bool)
    query_mask[0, -1] = False
    value_mask = torch.ones(B, S, dtype=torch.bool)
    value_mask[1] = False  # an empty row: `scores - 1e9` keeps the differences in float64
    out = layer([q, v], mask=[query_mask, value_mask])
    torch.testing.assert_close(out[1], torch.softmax(q[1] @ v[1].T, -1) @ v[1])
    assert torch.count_nonzero(out[0, -1]) == 0
    assert torch.equal(layer.compute_mask([q, v], [query_mask, value_mask]), query_mask)
    causal = layer([q, v], use_causal_mask=True, return_attention_scores=True)[1]
    assert torch.count_nonzero(torch.triu(causal[0], diagonal=1)) == 0


def test_mha_exports_to_onnx(tmp_path):
    from xlayers.onnx import export

    layer = MultiHeadAttention(2, 3, bias_initializer="random_normal")
    q, v = torch.randn(B, T, D), torch.randn(B, S, D)
    layer([q, v])
    result = export(layer.eval(), ([q, v],), str(tmp_path / "mha.onnx"), verbose=False)
    assert result.node_counts.get("Softmax") == 1 and result.node_counts.get("Gemm") == 4  # 3 projections and the output, biases fused


def test_scale_is_keras_float32_value():
    assert attention_ops.inverse_sqrt(5) == float(torch.tensor(1 / math.sqrt(5), dtype=torch.float32))
    assert attention_ops.inverse_sqrt(4) == 0.5


def test_called_by_name_as_keras_users_call_it():
    torch.manual_seed(5)
    q, v = torch.randn(B, T, D), torch.randn(B, S, 4)
    layer = MultiHeadAttention(2, 3)
    out = layer(query=q, value=v)
    torch.testing.assert_close(layer(q, v), out)
    gqa = GroupQueryAttention(3, 2, 1)
    torch.testing.assert_close(gqa(query=q, value=v, key=v), gqa(q, v))

"""GRU: the checklist, both bias layouts from LAYOUT, live gate views, the fused-path proof,
the fused decision, and the loop agreeing with the fused kernel.

Keras equivalence over flags, masks, reset_after and dropout is registry data:
`conformance/cases/recurrent.py`."""

from __future__ import annotations

import pytest
import torch

from conformance.testing import check_layer
from xlayers import GRU
from xlayers.errors import ArgumentError

BATCH, STEPS, FEATURES, UNITS = 3, 7, 5, 4


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_checklist(reset_after):
    bias = (2, 3 * UNITS) if reset_after else (3 * UNITS,)
    expected = {"kernel": (FEATURES, 3 * UNITS), "recurrent_kernel": (UNITS, 3 * UNITS), "bias": bias}
    check_layer(GRU(UNITS, reset_after=reset_after, return_sequences=True), (BATCH, STEPS, FEATURES), expected)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_gate_views_are_live_slices(reset_after):
    layer = GRU(UNITS, reset_after=reset_after, input_shape=(STEPS, FEATURES))
    for index, gate in enumerate("zrh"):
        block = slice(index * UNITS, (index + 1) * UNITS)
        assert torch.equal(getattr(layer, f"kernel_{gate}"), layer.kernel[:, block])
        assert torch.equal(getattr(layer, f"recurrent_kernel_{gate}"), layer.recurrent_kernel[:, block])
        assert torch.equal(getattr(layer, f"bias_{gate}"), layer.bias[..., block])
    layer.bias_r = torch.full(layer.bias_r.shape, 3.0)
    assert bool((layer.bias[..., UNITS:2 * UNITS] == 3.0).all())


def test_gru_torch_view_is_torch_gate_order():
    layer = GRU(UNITS, input_shape=(STEPS, FEATURES))
    torch_kernel = layer.weight_view("kernel")  # (3u, in), gates r, z, n
    assert torch.equal(torch_kernel[:UNITS], layer.kernel_r.T)
    assert torch.equal(torch_kernel[UNITS:2 * UNITS], layer.kernel_z.T)
    bias = layer.weight_view("bias")  # (2, 3u): b_ih, b_hh
    assert torch.equal(bias[1, :UNITS], layer.bias_r[1])


def test_gru_matches_torch_nn_gru():
    torch.manual_seed(0)
    layer = GRU(UNITS, return_sequences=True, bias_initializer="random_normal", input_shape=(STEPS, FEATURES))
    ref = torch.nn.GRU(FEATURES, UNITS, batch_first=True)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(layer.weight_view("kernel"))
        ref.weight_hh_l0.copy_(layer.weight_view("recurrent_kernel"))
        ref.bias_ih_l0.copy_(layer.weight_view("bias")[0])
        ref.bias_hh_l0.copy_(layer.weight_view("bias")[1])
    x = torch.randn(BATCH, STEPS, FEATURES)
    torch.testing.assert_close(layer(x), ref(x)[0])


@pytest.mark.parametrize("mask_kind", [None, "right", "holey"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_gru_loop_agrees_with_fused(mask_kind, go_backwards):
    torch.manual_seed(1)
    kwargs = {"return_sequences": True, "return_state": True, "go_backwards": go_backwards, "bias_initializer": "random_normal"}
    fused = GRU(UNITS, **kwargs, input_shape=(STEPS, FEATURES))
    loop = GRU(UNITS, **kwargs, use_cudnn=False, input_shape=(STEPS, FEATURES))
    loop.load_state_dict(fused.state_dict())
    x = torch.randn(BATCH, STEPS, FEATURES)
    mask = None
    if mask_kind:
        mask = torch.ones(BATCH, STEPS, dtype=torch.bool)
        mask[0, 4:] = False
        mask[2, 1:] = False
        if mask_kind == "holey":
            mask[1, 2] = False
    a, b = fused(x, mask=mask), loop(x, mask=mask)
    assert loop.last_path == "loop"
    assert fused.last_path == ("loop" if mask_kind == "holey" else "fused")
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v)


def _inside(event, name):
    while event is not None:
        if event.name == name:
            return True
        event = event.cpu_parent
    return False


def test_gru_fused_path_is_one_aten_gru_call():
    """torch's CPU ``aten::gru`` is a C++ loop over time (oneDNN fuses only LSTMs), so the
    proof is that the whole recurrence is ONE ``aten::gru`` call and every matmul runs inside
    it: no per-step Python loop, whatever the length."""
    layer = GRU(8, return_sequences=True)
    for steps in (5, 20):
        x = torch.randn(4, steps, 6)
        layer(x)
        with torch.no_grad(), torch.profiler.profile() as prof:
            layer(x)
        events = prof.events()
        assert sum(e.name == "aten::gru" for e in events) == 1
        matmuls = [e for e in events if e.name in ("aten::mm", "aten::addmm", "aten::matmul", "aten::linear")]
        outside = [e.name for e in matmuls if not _inside(e, "aten::gru")]
        assert not outside, (steps, outside)
        assert layer.last_path == "fused"


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_gru_fused_backward_equals_autograd_through_aten_gru(use_bias, go_backwards):
    """The fused path's own backward (the recurrence's gradient, then one matmul per weight)
    gives what autograd through ``aten::gru`` gives, for every input, with an upstream gradient
    on the sequence and on the state; float64 so that only the formula can differ."""
    from xlayers.layers.recurrent_ops import gru

    g = torch.Generator().manual_seed(3)
    n, steps, features, units = 3, 7, 5, 4

    def leaf(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)

    x, h0 = leaf(n, steps, features), leaf(n, units)
    w_ih, w_hh = leaf(3 * units, features), leaf(3 * units, units)
    b_ih, b_hh = (leaf(3 * units), leaf(3 * units)) if use_bias else (None, None)
    ours = gru(x, w_ih, w_hh, b_ih, b_hh, initial_state=h0, go_backwards=go_backwards, fused_ok=True)
    assert ours[2] == "fused"
    params = [w_ih, w_hh] + ([b_ih, b_hh] if use_bias else [])
    out, h = torch.gru(x.flip(1) if go_backwards else x, h0.unsqueeze(0), params, use_bias, 1, 0.0, True, False, True)
    wrt = [t for t in (x, h0, w_ih, w_hh, b_ih, b_hh) if t is not None]
    upstream = [torch.randn(out.shape, generator=g, dtype=torch.float64), torch.randn(h[0].shape, generator=g, dtype=torch.float64)]
    theirs = torch.autograd.grad([out, h[0]], wrt, upstream)
    for a, b in zip(torch.autograd.grad(ours[:2], wrt, upstream), theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours[0], out, rtol=1e-12, atol=1e-12)


def test_gru_fused_backward_has_one_matmul_per_step():
    """The backward's loop over time runs one ``addmm`` per step; the weight and input
    gradients are a fixed number of matmuls over all steps, whatever the length."""
    layer = GRU(8, return_sequences=True)
    counts = []
    for steps in (5, 20):
        x = torch.randn(4, steps, 6, requires_grad=True)
        out = layer(x)
        with torch.profiler.profile() as prof:
            out.sum().backward()
        names = [e.name for e in prof.events()]
        counts.append((names.count("aten::addmm"), sum(n in ("aten::mm", "aten::matmul") for n in names)))
    (addmm_5, mm_5), (addmm_20, mm_20) = counts
    assert addmm_20 - addmm_5 == 15 and addmm_5 <= 5 + 2 and mm_5 == mm_20, counts  # + the two gate projections


def test_gru_fused_decision():
    assert GRU(3).fused_ok
    assert not GRU(3, reset_after=False).fused_ok
    assert not GRU(3, activation="relu").fused_ok
    assert not GRU(3, use_cudnn=False).fused_ok
    with pytest.raises(ArgumentError, match=r"`use_cudnn=True` needs reset_after=True"):
        GRU(3, reset_after=False, use_cudnn=True)
    layer = GRU(3, recurrent_dropout=0.3)
    layer.train()
    layer(torch.randn(2, 4, 5))
    assert layer.last_path == "loop"


def test_gru_config_round_trip_and_shapes():
    layer = GRU(UNITS, reset_after=False, return_state=True, dropout=0.1, seed=3)
    config = layer.get_config()
    assert config["reset_after"] is False
    again = GRU.from_config(config)
    assert again.get_config() == config
    assert layer.compute_output_shape((BATCH, STEPS, FEATURES)) == [(BATCH, UNITS), (BATCH, UNITS)]
    out, h = layer(torch.randn(BATCH, STEPS, FEATURES))
    assert torch.equal(out, h)


def test_gru_stateful_carries_and_resets():
    layer = GRU(UNITS, stateful=True)
    x = torch.randn(BATCH, STEPS, FEATURES)
    first = layer(x)
    assert not torch.equal(first, layer(x))
    layer.reset_state()
    torch.testing.assert_close(first, layer(x))


def test_gru_export_refuses_with_reason():
    assert "reset_after=False" in GRU(3, reset_after=False).export_refusal()
    assert GRU(3).export_refusal() is None
    assert "fused kernel" in GRU(3, activation="relu").export_refusal()

"""Tests for xlayers.layers.recurrent_ops.lstm against keras.layers.LSTM (TF backend).

The reference data is in Keras's layout; the op takes torch's, derived from LSTM's LAYOUT
(`torch_weights`), so gradients flow back to the Keras-layout leaves Keras differentiates."""

from __future__ import annotations

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from xlayers.errors import ArgumentError, InputShapeError, WeightShapeError
from xlayers.layers.recurrent import LSTM
from xlayers.layers.recurrent_ops import (
    fused_lstm_supported,
    is_activation,
    is_right_padded,
    lstm,
    lstm_dropout_masks,
)

import tensorflow as tf  # noqa: E402  (the reference: a missing TF must fail, not skip)
import keras  # noqa: E402

N, T, FEAT, U = 3, 7, 5, 4

MASKS = {
    "none": None,
    # lengths 7 (full row), 3, 5
    "right": [[1] * 7, [1] * 3 + [0] * 4, [1] * 5 + [0] * 2],
    # right padded with a row masked at every step
    "right_empty": [[1] * 2 + [0] * 5, [0] * 7, [1] * 7],
    "all_ones": [[1] * 7] * 3,
    "left": [[0] * 2 + [1] * 5, [1] * 7, [0] * 6 + [1]],
    # holes in the middle, a row masked at the end, a row fully masked
    "holey": [[1, 0, 1, 1, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0], [1, 1, 0, 1, 1, 0, 0]],
}
FUSED_MASKS = {"none", "right", "right_empty", "all_ones"}

ACTS = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "hard_sigmoid": F.hardsigmoid,
    "linear": None,
}


def make_data(dtype=np.float32, seed=0, use_bias=True):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, T, FEAT)).astype(dtype)
    # Gate blocks drawn separately with different scales/offsets so a gate mix-up shows.
    k = np.concatenate(
        [rng.normal(scale=0.3 + 0.1 * g, size=(FEAT, U)) for g in range(4)], axis=1
    ).astype(dtype)
    rk = np.concatenate(
        [rng.normal(scale=0.25 + 0.1 * g, size=(U, U)) for g in range(4)], axis=1
    ).astype(dtype)
    b = (
        np.concatenate([rng.normal(loc=0.2 * g - 0.3, scale=0.3, size=U) for g in range(4)]).astype(dtype)
        if use_bias
        else None
    )
    h0 = rng.normal(scale=0.5, size=(N, U)).astype(dtype)
    c0 = rng.normal(scale=0.5, size=(N, U)).astype(dtype)
    return x, k, rk, b, h0, c0


DECLARED = {weight.name: weight for weight in LSTM.LAYOUT}


def torch_weights(k, rk, b=None):
    """Keras-layout kernel, recurrent kernel and bias (arrays or tensors) in torch's layout, as
    LSTM's LAYOUT derives it (views of tensors: gradients reach the Keras-layout leaves)."""
    values = [a if isinstance(a, torch.Tensor) else torch.tensor(a) for a in (k, rk)]
    ih, hh = (DECLARED[n].convert(v, "keras", "torch") for n, v in zip(("kernel", "recurrent_kernel"), values))
    if b is None:
        return ih, hh, None
    b = b if isinstance(b, torch.Tensor) else torch.tensor(b)
    return ih, hh, DECLARED["bias"].convert(b, "keras", "torch")


def mask_array(kind):
    m = MASKS[kind]
    return None if m is None else np.array(m, dtype=bool)


def keras_run(
    x, k, rk, b, *, h0=None, c0=None, mask=None, go_backwards=False, activation="tanh",
    recurrent_activation="sigmoid", return_sequences=True, return_state=True,
    zero_output_for_mask=False, dropout=0.0, recurrent_dropout=0.0, implementation=2,
    dmask=None, rdmask=None, training=False, upstream=None, use_cudnn="auto",
):
    """Run keras.layers.LSTM; optionally return gradients of sum(out * upstream)."""
    dtype = "float64" if x.dtype == np.float64 else "float32"
    layer = keras.layers.LSTM(
        U, activation=activation, recurrent_activation=recurrent_activation,
        use_bias=b is not None, return_sequences=return_sequences, return_state=return_state,
        go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask, dropout=dropout,
        recurrent_dropout=recurrent_dropout, implementation=implementation, dtype=dtype,
        use_cudnn=use_cudnn,
    )
    layer.build(x.shape)
    layer.set_weights([k, rk] + ([b] if b is not None else []))
    if dmask is not None:  # inject the masks Keras would otherwise draw itself
        layer.cell._dropout_mask = (
            [tf.constant(m) for m in dmask] if dmask.ndim == 3 else tf.constant(dmask)
        )
    if rdmask is not None:
        layer.cell._recurrent_dropout_mask = (
            [tf.constant(m) for m in rdmask] if rdmask.ndim == 3 else tf.constant(rdmask)
        )
    xt = tf.constant(x)
    kwargs = {"training": training}
    if mask is not None:
        kwargs["mask"] = tf.constant(mask)
    state = None
    if h0 is not None:
        state = [tf.constant(h0), tf.constant(c0)]
        kwargs["initial_state"] = state
    with tf.GradientTape() as tape:
        tape.watch(xt)
        if state is not None:
            tape.watch(state)
        res = layer(xt, **kwargs)
        res = list(res) if isinstance(res, (list, tuple)) else [res]
        if upstream is not None:
            loss = tf.add_n([tf.reduce_sum(r * g) for r, g in zip(res, upstream)])
    outs = [r.numpy() for r in res]
    if upstream is None:
        return outs
    wrt = [xt, layer.cell.kernel.value, layer.cell.recurrent_kernel.value]
    if b is not None:
        wrt.append(layer.cell.bias.value)
    if state is not None:
        wrt += state
    grads = tape.gradient(loss, wrt)
    return outs, [g.numpy() for g in grads]


def torch_run(x, k, rk, b, *, h0=None, c0=None, mask=None, upstream=None, dmask=None, rdmask=None,
              activation="tanh", recurrent_activation="sigmoid", **kw):
    xs = torch.tensor(x, requires_grad=upstream is not None)
    ws = [torch.tensor(a, requires_grad=upstream is not None) for a in (k, rk)]
    bt = None if b is None else torch.tensor(b, requires_grad=upstream is not None)
    state = None
    if h0 is not None:
        state = [torch.tensor(a, requires_grad=upstream is not None) for a in (h0, c0)]
    out, h, c, path = lstm(
        xs, *torch_weights(ws[0], ws[1], bt), initial_state=state,
        mask=None if mask is None else torch.tensor(mask),
        dropout_mask=None if dmask is None else torch.tensor(dmask),
        recurrent_dropout_mask=None if rdmask is None else torch.tensor(rdmask),
        activation=ACTS[activation], recurrent_activation=ACTS[recurrent_activation], **kw,
    )
    if upstream is None:
        return (out, h, c), path
    loss = sum((r * torch.tensor(g)).sum() for r, g in zip((out, h, c), upstream))
    wrt = [xs, *ws] + ([bt] if bt is not None else []) + (state or [])
    grads = torch.autograd.grad(loss, wrt)
    return (out, h, c), path, grads


def assert_close(actual, expected, tol=1e-5, what=""):
    actual = actual.detach().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale, err_msg=what)


def tol_for(dtype):
    return 1e-12 if dtype == np.float64 else 1e-5


# --------------------------------------------------------------------------- forward


@pytest.mark.parametrize("mask_kind", list(MASKS))
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_forward_matches_keras(mask_kind, go_backwards, with_state):
    x, k, rk, b, h0, c0 = make_data(seed=1)
    if not with_state:
        h0 = c0 = None
    mask = mask_array(mask_kind)
    ref = keras_run(x, k, rk, b, h0=h0, c0=c0, mask=mask, go_backwards=go_backwards)
    (out, h, c), path = torch_run(x, k, rk, b, h0=h0, c0=c0, mask=mask, go_backwards=go_backwards)
    assert path == ("fused" if mask_kind in FUSED_MASKS else "loop")
    for a, e, name in zip((out, h, c), ref, ("outputs", "h", "c")):
        assert_close(a, e, what=name)


@pytest.mark.parametrize("mask_kind", ["none", "right_empty", "holey"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_loop_path_matches_keras_for_standard_activations(mask_kind, go_backwards):
    # fused_ok=False forces the loop path: it must match Keras as well.
    x, k, rk, b, h0, c0 = make_data(seed=2)
    mask = mask_array(mask_kind)
    ref = keras_run(x, k, rk, b, h0=h0, c0=c0, mask=mask, go_backwards=go_backwards)
    (out, h, c), path = torch_run(
        x, k, rk, b, h0=h0, c0=c0, mask=mask, go_backwards=go_backwards, fused_ok=False
    )
    assert path == "loop"
    for a, e in zip((out, h, c), ref):
        assert_close(a, e)


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("return_state", [False, True])
@pytest.mark.parametrize("mask_kind", ["none", "right_empty"])
def test_return_modes(return_sequences, return_state, mask_kind):
    # Keras' last output is outputs[:, -1]; for the fully masked row it is 0, not h0.
    x, k, rk, b, h0, c0 = make_data(seed=3)
    mask = mask_array(mask_kind)
    ref = keras_run(
        x, k, rk, b, h0=h0, c0=c0, mask=mask,
        return_sequences=return_sequences, return_state=return_state,
    )
    (out, h, c), path = torch_run(x, k, rk, b, h0=h0, c0=c0, mask=mask)
    assert path == "fused"
    ours = [out if return_sequences else out[:, -1]] + ([h, c] if return_state else [])
    assert len(ours) == len(ref)
    for a, e in zip(ours, ref):
        assert_close(a, e)
    if mask_kind == "right_empty":
        assert torch.all(out[1] == 0)
        assert torch.equal(h[1], torch.tensor(h0[1]))


@pytest.mark.parametrize("mask_kind", ["none", "right", "holey"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_use_bias_false(mask_kind, go_backwards):
    x, k, rk, b, h0, c0 = make_data(seed=4, use_bias=False)
    mask = mask_array(mask_kind)
    ref = keras_run(x, k, rk, None, h0=h0, c0=c0, mask=mask, go_backwards=go_backwards)
    (out, h, c), path = torch_run(x, k, rk, None, h0=h0, c0=c0, mask=mask, go_backwards=go_backwards)
    assert path == ("fused" if mask_kind != "holey" else "loop")
    for a, e in zip((out, h, c), ref):
        assert_close(a, e)


@pytest.mark.parametrize(
    "activation,recurrent_activation",
    [("relu", "hard_sigmoid"), ("tanh", "hard_sigmoid"), ("relu", "sigmoid"), ("linear", "sigmoid")],
)
@pytest.mark.parametrize("mask_kind", ["none", "right", "holey"])
def test_other_activations_use_loop(activation, recurrent_activation, mask_kind):
    x, k, rk, b, h0, c0 = make_data(seed=5)
    mask = mask_array(mask_kind)
    for go_backwards in (False, True):
        ref = keras_run(
            x, k, rk, b, h0=h0, c0=c0, mask=mask, go_backwards=go_backwards,
            activation=activation, recurrent_activation=recurrent_activation,
        )
        (out, h, c), path = torch_run(
            x, k, rk, b, h0=h0, c0=c0, mask=mask, go_backwards=go_backwards,
            activation=activation, recurrent_activation=recurrent_activation,
        )
        assert path == "loop"
        for a, e in zip((out, h, c), ref):
            assert_close(a, e)


@pytest.mark.parametrize("mask_kind", ["none", "right_empty", "holey"])
def test_zero_output_for_mask(mask_kind):
    x, k, rk, b, h0, c0 = make_data(seed=6)
    mask = mask_array(mask_kind)
    for go_backwards in (False, True):
        ref = keras_run(
            x, k, rk, b, h0=h0, c0=c0, mask=mask, go_backwards=go_backwards, zero_output_for_mask=True
        )
        (out, h, c), path = torch_run(
            x, k, rk, b, h0=h0, c0=c0, mask=mask, go_backwards=go_backwards, zero_output_for_mask=True
        )
        assert path == ("loop" if mask_kind == "holey" else "fused")
        for a, e in zip((out, h, c), ref):
            assert_close(a, e)


@pytest.mark.parametrize("mask_kind", ["none", "right_empty", "holey"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_float64(mask_kind, go_backwards):
    x, k, rk, b, h0, c0 = make_data(np.float64, seed=7)
    mask = mask_array(mask_kind)
    ref = keras_run(x, k, rk, b, h0=h0, c0=c0, mask=mask, go_backwards=go_backwards)
    (out, h, c), path = torch_run(x, k, rk, b, h0=h0, c0=c0, mask=mask, go_backwards=go_backwards)
    assert path == ("loop" if mask_kind == "holey" else "fused")
    assert out.dtype == torch.float64
    for a, e in zip((out, h, c), ref):
        assert_close(a, e, tol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mask_kind", ["none", "right"])
def test_half_precision_cpu_fused(dtype, mask_kind):
    # aten::lstm supports both on CPU (bf16 via oneDNN when the CPU has it, fp16 via
    # torch's native kernel); compare with float32 at low-precision tolerance.
    assert fused_lstm_supported(dtype, torch.device("cpu"))
    x, k, rk, b, h0, c0 = make_data(seed=8)
    mask = None if mask_kind == "none" else torch.tensor(mask_array(mask_kind))
    args32 = [torch.tensor(x), *torch_weights(k, rk, b)]
    st32 = [torch.tensor(h0), torch.tensor(c0)]
    ref = lstm(*args32, initial_state=st32, mask=mask)
    low = lstm(*[a.to(dtype) for a in args32], initial_state=[s.to(dtype) for s in st32], mask=mask)
    loop = lstm(*[a.to(dtype) for a in args32], initial_state=[s.to(dtype) for s in st32], mask=mask,
                fused_ok=False)
    assert ref[3] == "fused" and low[3] == "fused" and loop[3] == "loop"
    for r, lo, lp in zip(ref[:3], low[:3], loop[:3]):
        assert lo.dtype == dtype
        torch.testing.assert_close(lo.float(), r, rtol=0, atol=0.05)
        torch.testing.assert_close(lp.float(), r, rtol=0, atol=0.05)


# --------------------------------------------------------------------------- gradients

GRAD_CONFIGS = [
    dict(mask_kind="none", go_backwards=False, with_state=False),
    dict(mask_kind="none", go_backwards=True, with_state=True),
    dict(mask_kind="right_empty", go_backwards=False, with_state=True),
    dict(mask_kind="right", go_backwards=True, with_state=True),
    dict(mask_kind="holey", go_backwards=True, with_state=True),
    dict(mask_kind="holey", go_backwards=False, with_state=True, activation="relu",
         recurrent_activation="hard_sigmoid"),
    dict(mask_kind="right", go_backwards=False, with_state=True, use_bias=False),
    dict(mask_kind="right_empty", go_backwards=True, with_state=True, dtype=np.float64),
]


@pytest.mark.parametrize("cfg", GRAD_CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_gradients_match_keras(cfg):
    cfg = dict(cfg)
    dtype = cfg.pop("dtype", np.float32)
    use_bias = cfg.pop("use_bias", True)
    x, k, rk, b, h0, c0 = make_data(dtype, seed=9, use_bias=use_bias)
    if not cfg.pop("with_state"):
        h0 = c0 = None
    mask = mask_array(cfg.pop("mask_kind"))
    rng = np.random.default_rng(10)
    upstream = [rng.normal(size=s).astype(dtype) for s in ((N, T, U), (N, U), (N, U))]
    ref_out, ref_grads = keras_run(x, k, rk, b, h0=h0, c0=c0, mask=mask, upstream=upstream, **cfg)
    outs, path, grads = torch_run(x, k, rk, b, h0=h0, c0=c0, mask=mask, upstream=upstream, **cfg)
    standard = cfg.get("activation", "tanh") == "tanh"
    assert path == ("fused" if standard and (mask is None or is_right_padded(torch.tensor(mask))[0]) else "loop")
    tol = tol_for(dtype)
    for a, e in zip(outs, ref_out):
        assert_close(a, e, tol=tol)
    names = ["x", "kernel", "recurrent_kernel"] + (["bias"] if b is not None else []) + (
        ["h0", "c0"] if h0 is not None else []
    )
    assert len(grads) == len(ref_grads) == len(names)
    for g, e, name in zip(grads, ref_grads, names):
        assert_close(g, e, tol=tol, what=f"grad {name}")


# --------------------------------------------------------------------------- dropout


def _dropout_mask(shape, rate, seed):
    keep = np.random.default_rng(seed).random(shape) >= rate
    return (keep / (1.0 - rate)).astype(np.float32)


@pytest.mark.parametrize("mask_kind", ["none", "right", "holey"])
def test_input_dropout_single_mask_matches_keras(mask_kind):
    # recurrent_dropout == 0: Keras uses ONE (N, F) mask for all gates and all steps,
    # so it is applied to the inputs and the fused kernel still runs.
    x, k, rk, b, h0, c0 = make_data(seed=11)
    mask = mask_array(mask_kind)
    dmask = _dropout_mask((N, FEAT), 0.4, 12)
    rng = np.random.default_rng(13)
    upstream = [rng.normal(size=s).astype(np.float32) for s in ((N, T, U), (N, U), (N, U))]
    ref_out, ref_grads = keras_run(
        x, k, rk, b, h0=h0, c0=c0, mask=mask, dropout=0.4, dmask=dmask, training=True,
        go_backwards=True, upstream=upstream,
    )
    outs, path, grads = torch_run(
        x, k, rk, b, h0=h0, c0=c0, mask=mask, dmask=dmask, go_backwards=True, upstream=upstream
    )
    assert path == ("loop" if mask_kind == "holey" else "fused")
    for a, e in zip(outs, ref_out):
        assert_close(a, e)
    for g, e in zip(grads, ref_grads):
        assert_close(g, e)
    # and the dropout really changed something
    plain, _ = torch_run(x, k, rk, b, h0=h0, c0=c0, mask=mask, go_backwards=True)
    assert not torch.allclose(plain[0], outs[0])


@pytest.mark.parametrize("mask_kind", ["none", "right"])
def test_recurrent_dropout_per_gate_masks_match_keras(mask_kind):
    # recurrent_dropout > 0 -> Keras implementation 1: four input masks and four
    # recurrent masks, one per gate.  Always the loop path.
    x, k, rk, b, h0, c0 = make_data(seed=14)
    mask = mask_array(mask_kind)
    dmask = np.stack([_dropout_mask((N, FEAT), 0.3, 20 + g) for g in range(4)])
    rdmask = np.stack([_dropout_mask((N, U), 0.25, 30 + g) for g in range(4)])
    rng = np.random.default_rng(15)
    upstream = [rng.normal(size=s).astype(np.float32) for s in ((N, T, U), (N, U), (N, U))]
    ref_out, ref_grads = keras_run(
        x, k, rk, b, h0=h0, c0=c0, mask=mask, dropout=0.3, recurrent_dropout=0.25,
        dmask=dmask, rdmask=rdmask, training=True, upstream=upstream,
    )
    outs, path, grads = torch_run(
        x, k, rk, b, h0=h0, c0=c0, mask=mask, dmask=dmask, rdmask=rdmask, upstream=upstream
    )
    assert path == "loop"
    for a, e in zip(outs, ref_out):
        assert_close(a, e)
    for g, e in zip(grads, ref_grads):
        assert_close(g, e)
    # masks as a list of 4 tensors are accepted too
    out_list = lstm(
        torch.tensor(x), *torch_weights(k, rk, b),
        initial_state=[torch.tensor(h0), torch.tensor(c0)],
        mask=None if mask is None else torch.tensor(mask),
        dropout_mask=[torch.tensor(m) for m in dmask],
        recurrent_dropout_mask=[torch.tensor(m) for m in rdmask],
    )
    torch.testing.assert_close(out_list[0], outs[0].detach(), rtol=0, atol=0)


def test_recurrent_dropout_shared_mask_and_per_gate_input_masks():
    # A single recurrent mask (Keras never does this, but it is well defined) and
    # per-gate input masks without recurrent dropout (Keras implementation=1; Keras itself
    # needs use_cudnn=False there: LSTM.inner_loop broadcasts the mask list otherwise).
    x, k, rk, b, h0, c0 = make_data(seed=16)
    dmask4 = np.stack([_dropout_mask((N, FEAT), 0.3, 40 + g) for g in range(4)])
    ref = keras_run(x, k, rk, b, h0=h0, c0=c0, dropout=0.3, implementation=1, dmask=dmask4,
                    training=True, use_cudnn=False)
    (out, h, c), path = torch_run(x, k, rk, b, h0=h0, c0=c0, dmask=dmask4)
    assert path == "loop"
    for a, e in zip((out, h, c), ref):
        assert_close(a, e)
    rd1 = _dropout_mask((N, U), 0.3, 50)
    same4 = lstm(torch.tensor(x), *torch_weights(k, rk, b), recurrent_dropout_mask=torch.tensor(np.stack([rd1] * 4)))
    one = lstm(torch.tensor(x), *torch_weights(k, rk, b), recurrent_dropout_mask=torch.tensor(rd1))
    assert one[3] == same4[3] == "loop"
    torch.testing.assert_close(one[0], same4[0])


def test_lstm_dropout_masks_semantics():
    x = torch.zeros(N, T, FEAT)
    g = torch.Generator().manual_seed(0)
    assert lstm_dropout_masks(x, U, dropout=0.5, recurrent_dropout=0.5, training=False) == (None, None)
    assert lstm_dropout_masks(x, U, dropout=0.0, training=True) == (None, None)
    # Keras' cell only applies dropout for 0 < rate < 1
    assert lstm_dropout_masks(x, U, dropout=1.0, recurrent_dropout=1.0, training=True) == (None, None)
    d, r = lstm_dropout_masks(x, U, dropout=0.5, training=True, generator=g)
    assert r is None and d.shape == (N, FEAT)
    assert set(d.unique().tolist()) <= {0.0, 2.0}
    d, r = lstm_dropout_masks(x, U, dropout=0.5, recurrent_dropout=0.2, training=True, generator=g)
    assert d.shape == (4, N, FEAT) and r.shape == (4, N, U)
    assert set(r.unique().tolist()) <= {0.0, 1.25}
    d, r = lstm_dropout_masks(x, U, recurrent_dropout=0.2, training=True, generator=g)
    assert d is None and r.shape == (4, N, U)
    d, _ = lstm_dropout_masks(x, U, dropout=0.5, training=True, per_gate=True, generator=g)
    assert d.shape == (4, N, FEAT)
    big = lstm_dropout_masks(torch.zeros(200, 1, 50), U, dropout=0.3, training=True, generator=g)[0]
    assert abs((big == 0).float().mean().item() - 0.3) < 0.03


# --------------------------------------------------------------------------- paths and performance


def _op_counts(fn):
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    counts = {}
    for e in prof.events():
        counts[e.name] = counts.get(e.name, 0) + 1
    return counts


MATMULS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear")


def _n_matmuls(counts):
    return sum(counts.get(name, 0) for name in MATMULS)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("with_grad", [False, True])
def test_fused_path_runs_aten_lstm_without_per_step_matmuls(go_backwards, with_grad):
    def run(t_len):
        x = torch.randn(N, t_len, FEAT, requires_grad=with_grad)
        k = torch.randn(4 * U, FEAT, requires_grad=with_grad)
        rk = torch.randn(4 * U, U)
        b = torch.randn(4 * U)

        def go():
            out, h, c, path = lstm(x, k, rk, b, go_backwards=go_backwards)
            assert path == "fused"
            if with_grad:
                (out.sum() + h.sum() + c.sum()).backward()

        return _op_counts(go)

    short, long = run(5), run(20)
    for counts in (short, long):
        assert counts.get("aten::lstm", 0) == 1
    # oneDNN (float32 on CPU) computes every step inside one op
    assert short.get("aten::mkldnn_rnn_layer", 0) == 1
    assert _n_matmuls(short) == _n_matmuls(long)
    assert _n_matmuls(long) < 5


def test_packed_path_runs_single_aten_lstm():
    # Right-padded masks go through packed sequences: one aten::lstm call (on CPU torch
    # does not use oneDNN for packed input, its C++ kernel loops over time internally).
    x = torch.randn(N, T, FEAT)
    k, rk, b = torch.randn(4 * U, FEAT), torch.randn(4 * U, U), torch.randn(4 * U)
    mask = torch.tensor(mask_array("right"))
    counts = _op_counts(lambda: lstm(x, k, rk, b, mask=mask))
    assert counts.get("aten::lstm", 0) == 1


def test_loop_path_projects_inputs_once():
    def run(t_len):
        x = torch.randn(N, t_len, FEAT)
        k, rk, b = torch.randn(4 * U, FEAT), torch.randn(4 * U, U), torch.randn(4 * U)
        return _op_counts(lambda: lstm(x, k, rk, b, fused_ok=False))

    short, long = run(5), run(20)
    assert short.get("aten::lstm", 0) == 0
    assert short["aten::linear"] == long["aten::linear"] == 1  # one input projection
    assert short["aten::addmm"] == 5 + 1 and long["aten::addmm"] == 20 + 1  # recurrent part per step


class _Recorder(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls.append((func, args))
        return func(*args, **(kwargs or {}))


def test_no_mask_fused_path_does_not_copy_inputs_or_weights():
    x = torch.randn(N, T, FEAT)
    k, rk, b = torch.randn(4 * U, FEAT), torch.randn(4 * U, U), torch.randn(4 * U)
    with _Recorder() as rec:
        lstm(x, k, rk, b)
    lstm_calls = [a for f, a in rec.calls if f is torch.lstm]
    assert len(lstm_calls) == 1
    args = lstm_calls[0]
    assert args[0] is x  # the input goes in untouched, batch-first
    w_ih, w_hh, b_ih, b_hh = args[2]
    assert w_ih is k and w_hh is rk  # torch-layout weights go in as they are
    assert b_ih is b and torch.count_nonzero(b_hh) == 0
    assert args[3] is True and args[-1] is True  # has_biases, batch_first
    names = {getattr(f, "__name__", str(f)) for f, _ in rec.calls}
    assert not names & {"contiguous", "clone", "flip", "gather", "permute", "transpose", "cat", "stack"}
    # use_bias=False -> has_biases=False, only two weights
    with _Recorder() as rec:
        lstm(x, k, rk, None)
    args = [a for f, a in rec.calls if f is torch.lstm][0]
    assert len(args[2]) == 2 and args[3] is False


def test_path_selection():
    x = torch.randn(N, T, FEAT)
    k, rk, b = torch.randn(4 * U, FEAT), torch.randn(4 * U, U), torch.randn(4 * U)
    assert lstm(x, k, rk, b)[3] == "fused"
    assert lstm(x, k, rk, b, activation=F.tanh, recurrent_activation=F.sigmoid)[3] == "fused"
    assert lstm(x, k, rk, b, activation=torch.nn.Tanh(), recurrent_activation=torch.nn.Sigmoid())[3] == "fused"
    assert lstm(x, k, rk, b, activation=torch.relu)[3] == "loop"
    assert lstm(x, k, rk, b, recurrent_activation=F.hardsigmoid)[3] == "loop"
    assert lstm(x, k, rk, b, fused_ok=False)[3] == "loop"
    # the caller may vouch for wrapped activations
    assert lstm(x, k, rk, b, activation=lambda v: torch.tanh(v), fused_ok=True)[3] == "fused"
    assert lstm(x, k, rk, b, dropout_mask=torch.ones(N, FEAT))[3] == "fused"
    assert lstm(x, k, rk, b, dropout_mask=torch.ones(4, N, FEAT))[3] == "loop"
    assert lstm(x, k, rk, b, recurrent_dropout_mask=torch.ones(N, U))[3] == "loop"
    assert lstm(x, k, rk, b, mask=torch.ones(N, T, dtype=torch.bool))[3] == "fused"
    assert lstm(x, k, rk, b, mask=torch.tensor(mask_array("right")).float())[3] == "fused"
    assert lstm(x, k, rk, b, mask=torch.tensor(mask_array("left")))[3] == "loop"
    assert not fused_lstm_supported(torch.float32, torch.device("meta"))
    assert not fused_lstm_supported(torch.int64, torch.device("cpu"))
    for dt in (torch.float16, torch.bfloat16, torch.float64):
        assert lstm(x.to(dt), k.to(dt), rk.to(dt), b.to(dt))[3] == "fused"


def test_is_right_padded():
    for kind in ("right", "right_empty", "all_ones"):
        ok, lengths = is_right_padded(torch.tensor(mask_array(kind)))
        assert ok
        assert lengths.tolist() == mask_array(kind).sum(1).tolist()
    for kind in ("left", "holey"):
        assert not is_right_padded(torch.tensor(mask_array(kind)))[0]


def test_validation_errors():
    x = torch.randn(N, T, FEAT)
    k, rk, b = torch.randn(4 * U, FEAT), torch.randn(4 * U, U), torch.randn(4 * U)
    with pytest.raises(InputShapeError):
        lstm(x[0], k, rk, b)
    with pytest.raises(InputShapeError):
        lstm(x[:, :0], k, rk, b)
    with pytest.raises(WeightShapeError, match=r"`weight_ih` must have shape \(16, 5\)"):
        lstm(x, k[:, :-1], rk, b)
    with pytest.raises(WeightShapeError, match=r"`weight_hh` must have shape \(4 \* units, units\)"):
        lstm(x, k, rk[:-1], b)
    with pytest.raises(WeightShapeError):
        lstm(x, k, rk, b[:-1])
    with pytest.raises(InputShapeError):
        lstm(x, k, rk, b, mask=torch.ones(N, T + 1, dtype=torch.bool))
    with pytest.raises(InputShapeError):
        lstm(x, k, rk, b, initial_state=[torch.zeros(N, U), torch.zeros(N, U + 1)])
    with pytest.raises(ArgumentError):
        lstm(x, k, rk, b, initial_state=[torch.zeros(N, U)])
    with pytest.raises(InputShapeError):
        lstm(x, k, rk, b, dropout_mask=torch.ones(N, FEAT + 1))
    with pytest.raises(ArgumentError):
        lstm(x, k, rk, b, recurrent_dropout_mask=[torch.ones(N, U)] * 3)


# --------------------------------------------------------------------------- torch.compile


def _compile_inputs(requires_grad=False):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, T, FEAT, generator=g, requires_grad=requires_grad)
    k = torch.randn(4 * U, FEAT, generator=g, requires_grad=requires_grad)
    rk = torch.randn(4 * U, U, generator=g, requires_grad=requires_grad)
    b = torch.randn(4 * U, generator=g, requires_grad=requires_grad)
    h0, c0 = torch.randn(N, U, generator=g), torch.randn(N, U, generator=g)
    dm = (torch.rand(N, FEAT, generator=g) > 0.3).float() / 0.7
    return x, k, rk, b, h0, c0, dm


@pytest.mark.parametrize("go_backwards", [False, True])
def test_compile_fullgraph_no_mask_fused(go_backwards):
    torch._dynamo.reset()
    x, k, rk, b, h0, c0, dm = _compile_inputs(requires_grad=True)

    def f(x, k, rk, b, h0, c0, dm):
        return lstm(x, k, rk, b, initial_state=(h0, c0), go_backwards=go_backwards, dropout_mask=dm)

    eager = f(x, k, rk, b, h0, c0, dm)
    # aot_eager traces forward and backward (no graph breaks allowed with fullgraph=True)
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")(x, k, rk, b, h0, c0, dm)
    assert eager[3] == compiled[3] == "fused"
    for a, e in zip(compiled[:3], eager[:3]):
        torch.testing.assert_close(a, e)
    ge = torch.autograd.grad(sum(t.sum() for t in eager[:3]), (x, k, rk, b))
    gc = torch.autograd.grad(sum(t.sum() for t in compiled[:3]), (x, k, rk, b))
    for a, e in zip(gc, ge):
        torch.testing.assert_close(a, e)


def test_compile_fullgraph_inductor_inference():
    torch._dynamo.reset()
    x, k, rk, b, h0, c0, _ = _compile_inputs()

    def f(x, k, rk, b, h0, c0):
        return lstm(x, k, rk, b, initial_state=(h0, c0))

    with torch.no_grad():
        eager = f(x, k, rk, b, h0, c0)
        cf = torch.compile(f, fullgraph=True)
        compiled = cf(x, k, rk, b, h0, c0)
        counts = _op_counts(lambda: cf(x, k, rk, b, h0, c0))
    assert compiled[3] == "fused"
    for a, e in zip(compiled[:3], eager[:3]):
        torch.testing.assert_close(a, e)
    assert counts.get("aten::mkldnn_rnn_layer", 0) == 1  # still the fused oneDNN kernel


def test_compile_fullgraph_with_mask_uses_loop():
    # Checking a mask for right padding is data dependent; under compile the mask
    # goes to the (traceable) loop path so fullgraph still holds.
    torch._dynamo.reset()
    x, k, rk, b, h0, c0, _ = _compile_inputs()
    mask = torch.tensor(mask_array("right"))

    def f(x, k, rk, b, mask):
        return lstm(x, k, rk, b, mask=mask, go_backwards=True)

    eager = f(x, k, rk, b, mask)
    compiled = torch.compile(f, fullgraph=True, backend="eager")(x, k, rk, b, mask)
    assert eager[3] == "fused" and compiled[3] == "loop"
    for a, e in zip(compiled[:3], eager[:3]):
        torch.testing.assert_close(a, e)


@pytest.mark.parametrize("input_grad", [False, True], ids=["weights-only", "input-too"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_compiled_cpu_training_keeps_onednn_in_both_directions(input_grad, go_backwards):
    # torch 2.13's AOTAutograd cannot differentiate oneDNN's mkldnn_rnn_layer; the compiled step
    # goes through xlayers::lstm_onednn, whose backward is oneDNN's, bit-equal to eager.
    torch._dynamo.reset()
    x, k, rk, b, h0, c0, _ = _compile_inputs(requires_grad=True)
    x = x.detach().requires_grad_(input_grad)
    h0, c0 = h0.requires_grad_(), c0.requires_grad_()

    def f(x, k, rk, b, h0, c0):
        return lstm(x, k, rk, b, initial_state=(h0, c0), go_backwards=go_backwards)

    eager = f(x, k, rk, b, h0, c0)
    compiled_f = torch.compile(f, fullgraph=True)
    compiled = compiled_f(x, k, rk, b, h0, c0)
    assert eager[3] == compiled[3] == "fused"
    for a, e in zip(compiled[:3], eager[:3]):
        torch.testing.assert_close(a, e, rtol=0, atol=0)
    wrt = (k, rk, b, h0, c0, x) if input_grad else (k, rk, b, h0, c0)
    upstream = [torch.randn_like(t) for t in eager[:3]]  # a gradient on every output, states included
    for a, e in zip(torch.autograd.grad(compiled[:3], wrt, upstream), torch.autograd.grad(eager[:3], wrt, upstream)):
        torch.testing.assert_close(a, e, rtol=0, atol=0)

    def step():
        out = compiled_f(x, k, rk, b, h0, c0)
        torch.autograd.grad(out[0].sum(), wrt)

    counts = _op_counts(step)
    assert counts.get("aten::mkldnn_rnn_layer", 0) == 1 and counts.get("aten::mkldnn_rnn_layer_backward", 0) == 1
    assert _n_matmuls(counts) == 0  # no per-step matmuls


def test_is_activation_knows_each_form_of_tanh_and_sigmoid():
    from xlayers import activations

    for fn in (activations.tanh, torch.tanh, F.tanh, torch.Tensor.tanh, torch.nn.Tanh()):
        assert is_activation(fn, "tanh") and not is_activation(fn, "sigmoid")
    for fn in (activations.sigmoid, torch.sigmoid, F.sigmoid, torch.nn.Sigmoid()):
        assert is_activation(fn, "sigmoid")
    assert not is_activation(activations.hard_sigmoid, "sigmoid") and not is_activation(lambda v: torch.tanh(v), "tanh")
    x = torch.randn(N, T, FEAT)
    weights = torch.randn(4 * U, FEAT), torch.randn(4 * U, U), torch.randn(4 * U)
    assert lstm(x, *weights, activation=activations.tanh, recurrent_activation=activations.sigmoid)[3] == "fused"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("mask_kind", ["none", "right_empty"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_cuda_fused_matches_loop(mask_kind, go_backwards):
    # float64 so that cuDNN's TF32 default cannot blur the comparison.
    x, k, rk, b, h0, c0 = (
        torch.tensor(a, dtype=torch.float64, device="cuda", requires_grad=True)
        for a in make_data(np.float64, seed=17)
    )
    w_ih, w_hh, bias = torch_weights(k, rk, b)
    mask = None if mask_kind == "none" else torch.tensor(mask_array(mask_kind), device="cuda")
    res = {}
    for fused_ok in (None, False):
        out, h, c, path = lstm(x, w_ih, w_hh, bias, initial_state=(h0, c0), mask=mask,
                               go_backwards=go_backwards, fused_ok=fused_ok)
        grads = torch.autograd.grad(out.sum() + h.sum() + 2 * c.sum(), (x, k, rk, b, h0, c0))
        res[path] = (out, h, c, *grads)
    assert set(res) == {"fused", "loop"}
    for a, e in zip(res["fused"], res["loop"]):
        torch.testing.assert_close(a, e)

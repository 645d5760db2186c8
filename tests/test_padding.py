"""Tests for xlayers.padding (TF 'same'/'valid' arithmetic) and xlayers.layers.conv_ops.conv.

The arithmetic is checked against brute-force definitions and against TensorFlow's own
convolutions (shapes AND placement of the padding); ``conv`` is checked against the
obvious ``F.pad + F.conv`` reference (forward and gradients) and ``tf.nn.conv*d``.
"""

from __future__ import annotations

import itertools
import os
import re

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError
from xlayers.layers.conv_ops import conv, conv_padded
from xlayers.padding import (
    normalize_padding,
    normalize_tuple,
    output_size,
    output_size_1d,
    same_padding,
    same_padding_1d,
)

import tensorflow as tf  # noqa: E402  (the reference: a missing TF must fail, not skip)



@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    # Tiny tensors: with torch's OpenMP pool and TF's pool both on a 2-core machine, the
    # threads occasionally fight and the module runs ~8x slower. One torch thread is
    # plenty here and keeps the whole module at a few seconds.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


SIZES = range(1, 13)
KERNELS = range(1, 6)
STRIDES = range(1, 4)
DILATIONS = range(1, 4)
GRID_1D = list(itertools.product(SIZES, KERNELS, STRIDES, DILATIONS))


# ----------------------------------------------------------------------------------------
# brute-force definitions (loops, no closed forms)
# ----------------------------------------------------------------------------------------
def brute_valid_out(n, k, s, d):
    """Number of window starts i*s such that the dilated window fits inside the input."""
    count, start = 0, 0
    while start + (k - 1) * d <= n - 1:
        count += 1
        start += s
    return count


def brute_same(n, k, s, d):
    """TF 'same': one output per stride step that starts inside the input; the smallest total
    zero padding making every window fit; the odd element after."""
    out, start = 0, 0
    while start < n:
        out += 1
        start += s
    total = 0
    while (out - 1) * s + (k - 1) * d + 1 > n + total:
        total += 1
    before = 0
    while before < total - before - 1:  # before = floor(total / 2)
        before += 1
    return out, (before, total - before)


def np_conv1d(x, w, s, d, before, after):
    """Direct-loop 1-D correlation of x (n,) with w (k,), zero padding (before, after)."""
    xp = np.concatenate([np.zeros(before), x, np.zeros(after)])
    k = len(w)
    out = []
    start = 0
    while start + (k - 1) * d < len(xp):
        out.append(sum(w[j] * xp[start + j * d] for j in range(k)))
        start += s
    return np.array(out)


# ----------------------------------------------------------------------------------------
# xlayers.padding
# ----------------------------------------------------------------------------------------
def test_same_padding_and_output_size_match_brute_force():
    for n, k, s, d in GRID_1D:
        out, pair = brute_same(n, k, s, d)
        assert same_padding_1d(n, k, s, d) == pair, (n, k, s, d)
        assert output_size_1d(n, k, s, d, "same") == out
        assert output_size_1d(n, k, s, d, "SAME") == out
        vout = brute_valid_out(n, k, s, d)
        if vout > 0:
            assert output_size_1d(n, k, s, d, "valid") == vout
        else:
            with pytest.raises(InputShapeError):
                output_size_1d(n, k, s, d, "valid")


def test_nd_functions_combine_dims():
    rng = np.random.default_rng(1)
    for _ in range(200):
        sizes = tuple(int(v) for v in rng.integers(1, 13, size=3))
        ks = tuple(int(v) for v in rng.integers(1, 6, size=3))
        ss = tuple(int(v) for v in rng.integers(1, 4, size=3))
        ds = tuple(int(v) for v in rng.integers(1, 4, size=3))
        assert same_padding(sizes, ks, ss, ds) == tuple(brute_same(*a)[1] for a in zip(sizes, ks, ss, ds))
        assert output_size(sizes, ks, ss, ds, "same") == tuple(brute_same(*a)[0] for a in zip(sizes, ks, ss, ds))
    # ints broadcast, None propagates, 'causal' sizes like 'same'
    assert same_padding((7, 8), 3, 2) == ((1, 1), (0, 1))
    assert output_size((None, 9, 4), 3, (1, 2, 1), 1, "valid") == (None, 4, 2)
    assert output_size((None, 9), 2, 2, 1, "same") == (None, 5)
    assert output_size((10,), 3, 1, 2, "causal") == (10,)
    assert output_size((), 3) == ()


def test_argument_validation():
    with pytest.raises(ArgumentError):
        output_size((5,), 3, padding="full")
    with pytest.raises(ArgumentTypeError):
        output_size((5,), 3, padding=None)
    with pytest.raises(ArgumentError):
        same_padding((5, 5), (3, 3, 3))
    with pytest.raises(ArgumentError):
        same_padding((5,), 3, strides=0)
    with pytest.raises(ArgumentTypeError):
        normalize_tuple(2.0, 2, "strides")
    with pytest.raises(ArgumentTypeError):
        normalize_tuple(True, 2, "strides")
    with pytest.raises(ArgumentTypeError):
        normalize_tuple("33", 2, "kernel_size")
    with pytest.raises(InputShapeError):
        same_padding((None, 5), 3)
    assert normalize_tuple([1, 2], 2, "strides") == (1, 2)
    assert normalize_tuple(3, 3, "kernel_size") == (3, 3, 3)


@pytest.mark.parametrize(
    "value, error",
    [
        ((1, 0), ArgumentError),
        ((1, 2, 3), ArgumentError),
        (0, ArgumentError),
        ((1, 2.0), ArgumentTypeError),
        ("12", ArgumentTypeError),
    ],
)
def test_normalize_tuple_message(value, error):
    """One message per argument: backticked name, expectation, ``Received: name=value.``"""
    message = f"`strides` must be a positive int or a tuple of 2 positive ints. Received: strides={value!r}."
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        normalize_tuple(value, 2, "strides")


def test_normalize_padding():
    assert normalize_padding("SAME") == "same"
    assert normalize_padding("Causal", allow_causal=True) == "causal"
    message = "`padding` must be one of ('valid', 'same'). Received: padding='causal'."
    with pytest.raises(ArgumentError, match=re.escape(message)):
        normalize_padding("causal")
    with pytest.raises(ArgumentTypeError, match=re.escape("`padding` must be a string. Received: padding=None.")):
        normalize_padding(None)


def test_padding_placement_matches_tf_conv1d():
    # One batched TF call per (k, s, d): TF output shape and values reveal (before, after).
    rng = np.random.default_rng(0)
    for k, s, d in itertools.product(KERNELS, STRIDES, DILATIONS):
        w = rng.standard_normal(k)
        for n in SIZES:
            x = rng.standard_normal(n)
            for mode in ("same", "valid"):
                ours = output_size_1d(n, k, s, d, mode) if (mode == "same" or brute_valid_out(n, k, s, d)) else 0
                if ours == 0:
                    continue
                y_tf = tf.nn.conv1d(x.reshape(1, n, 1), w.reshape(k, 1, 1), s, mode.upper(), dilations=d)
                y_tf = y_tf.numpy().reshape(-1)
                pair = same_padding_1d(n, k, s, d) if mode == "same" else (0, 0)
                assert y_tf.shape == (ours,), (n, k, s, d, mode)
                np.testing.assert_allclose(np_conv1d(x, w, s, d, *pair)[:ours], y_tf, rtol=1e-10, atol=1e-12)


def test_output_size_matches_keras():
    from keras.src.ops.operation_utils import compute_conv_output_shape

    for n, k, s, d in GRID_1D[::7]:
        for mode in ("same", "valid"):
            if mode == "valid" and brute_valid_out(n, k, s, d) <= 0:
                with pytest.raises(ValueError):
                    compute_conv_output_shape((1, n, n, 1), 1, (k, k), s, mode, dilation_rate=d)
                continue
            keras_shape = compute_conv_output_shape((1, n, None, 1), 1, (k, k), s, mode, dilation_rate=d)
            assert output_size((n, None), k, s, d, mode) == keras_shape[1:3]


# ----------------------------------------------------------------------------------------
# xlayers.layers.conv_ops.conv
# ----------------------------------------------------------------------------------------
def ref_conv(x, w, b, s, pads, d, groups):
    flat = []
    for bef, aft in reversed(pads):
        flat += [bef, aft]
    fn = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[x.dim()]
    return fn(F.pad(x, flat), w, b, s, 0, d, groups)


def make_inputs(batch, spatial, cin, cout, k, groups, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = len(spatial)
    x_last = torch.randn((batch, *spatial, cin), generator=g, dtype=dtype)
    x = x_last.permute(0, n + 1, *range(1, n + 1))  # channels-last memory, NC* view
    w = torch.randn((cout, cin // groups, *((k,) * n)), generator=g, dtype=dtype)
    b = torch.randn(cout, generator=g, dtype=dtype)
    return x_last, x, w, b


CONV2D_GRID = [
    (batch, hw, s, d, groups)
    for (batch, hw), s, d, groups in itertools.product(
        [(2, (7, 10)), (3, (8, 5)), (2, (9, 9)), (3, (6, 6))], [1, 2, 3], [1, 2], [1, 2]
    )
]


@pytest.mark.parametrize("batch,hw,s,d,groups", CONV2D_GRID)
def test_conv2d_same_matches_fpad_and_tf(batch, hw, s, d, groups):
    for k in (2, 3, 4):
        x_last, x, w, b = make_inputs(batch, hw, 4, 6, k, groups, torch.float64, seed=k)
        pads = same_padding(hw, k, s, d)
        ref = ref_conv(x, w, b, s, pads, d, groups)
        y = conv(x, w, b, strides=s, padding="same", dilation_rate=d, groups=groups)
        assert y.shape == ref.shape == (batch, 6, *output_size(hw, k, s, d, "same"))
        torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
        assert y.is_contiguous(memory_format=torch.channels_last)
        y_tf = tf.nn.bias_add(
            tf.nn.conv2d(x_last.numpy(), w.permute(2, 3, 1, 0).numpy(), s, "SAME", dilations=d), b.numpy()
        ).numpy()
        np.testing.assert_allclose(y.permute(0, 2, 3, 1).numpy(), y_tf, rtol=1e-10, atol=1e-10)
        if min(hw) >= (k - 1) * d + 1:
            y_tf = tf.nn.conv2d(x_last.numpy(), w.permute(2, 3, 1, 0).numpy(), s, "VALID", dilations=d)
            y = conv(x, w, None, strides=s, padding="valid", dilation_rate=d, groups=groups)
            np.testing.assert_allclose(y.permute(0, 2, 3, 1).numpy(), y_tf.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("batch,hw,s,d,groups", CONV2D_GRID)
def test_conv2d_forward_and_gradients(batch, hw, s, d, groups):
    for k, dtype, tol in ((2, torch.float64, 1e-11), (3, torch.float64, 1e-11), (4, torch.float64, 1e-11),
                          (3, torch.float32, 2e-5)):
        _, x0, w0, b0 = make_inputs(batch, hw, 4, 6, k, groups, dtype, seed=10 + k)
        pads = same_padding(hw, k, s, d)
        xr, wr, br = (t.detach().clone().requires_grad_() for t in (x0, w0, b0))
        ref = ref_conv(xr, wr, br, s, pads, d, groups)
        gy = torch.randn(ref.shape, dtype=dtype, generator=torch.Generator().manual_seed(3))
        ref.backward(gy)
        for contiguous in (True, False):
            x = x0.detach().clone(memory_format=torch.preserve_format).requires_grad_()
            w, b = (t.detach().clone().requires_grad_() for t in (w0, b0))
            y = conv(x, w, b, strides=s, padding="same", dilation_rate=d, groups=groups, contiguous=contiguous)
            torch.testing.assert_close(y, ref.detach(), rtol=tol, atol=tol)
            y.backward(gy)
            for got, want in ((x.grad, xr.grad), (w.grad, wr.grad), (b.grad, br.grad)):
                torch.testing.assert_close(got, want, rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("s,d", [(1, 1), (2, 1), (3, 1), (1, 2), (1, 3), (2, 2)])
def test_conv1d_matches_fpad_and_tf(s, d):
    for n, k, groups in itertools.product((5, 8, 11), (2, 3, 4), (1, 2)):
        x_last, x, w, b = make_inputs(2, (n,), 4, 6, k, groups, torch.float64, seed=n + k)
        pads = same_padding((n,), k, s, d)
        ref = ref_conv(x, w, b, s, pads, d, groups)
        y_tf = tf.nn.conv1d(x_last.numpy(), w.permute(2, 1, 0).numpy(), s, "SAME", dilations=d).numpy() + b.numpy()
        for xin in (x, x.contiguous()):  # channels-last and channels-first memory
            y = conv(xin, w, b, strides=s, padding="same", dilation_rate=d, groups=groups)
            torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(y.permute(0, 2, 1).numpy(), y_tf, rtol=1e-10, atol=1e-10)
        assert conv(x, w, b, strides=s, padding="same", dilation_rate=d, groups=groups).stride(1) == 1


@pytest.mark.parametrize("s,d", [(1, 1), (2, 1), (3, 1), (1, 2), (2, 2)])
def test_conv3d_matches_fpad_and_tf(s, d):
    for dhw, k in (((5, 6, 7), 2), ((4, 7, 6), 3)):
        x_last, x, w, b = make_inputs(2, dhw, 2, 3, k, 1, torch.float64, seed=k)
        pads = same_padding(dhw, k, s, d)
        ref = ref_conv(x, w, b, s, pads, d, 1)
        y = conv(x, w, b, strides=s, padding="same", dilation_rate=d)
        torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
        # float64 conv3d has no oneDNN kernel (torch returns NCDHW); float32 keeps NDHWC
        y32 = conv(x.float(), w.float(), b.float(), strides=s, padding="same", dilation_rate=d)
        assert y32.is_contiguous(memory_format=torch.channels_last_3d)
        torch.testing.assert_close(y32, ref.float(), rtol=1e-5, atol=1e-5)
        if d == 1:  # TF's CPU Conv3D has no dilation
            y_tf = tf.nn.conv3d(x_last.numpy(), w.permute(2, 3, 4, 1, 0).numpy(), [1, s, s, s, 1], "SAME").numpy()
            np.testing.assert_allclose(y.permute(0, 2, 3, 4, 1).numpy(), y_tf + b.numpy(), rtol=1e-10, atol=1e-10)


def test_mixed_per_dim_arguments_and_explicit_pads():
    _, x, w, b = make_inputs(2, (9, 8), 4, 4, 3, 1, torch.float64)
    w = torch.randn(4, 4, 3, 2, dtype=torch.float64)
    pads = same_padding((9, 8), (3, 2), (2, 1), (1, 3))
    y = conv(x, w, b, strides=(2, 1), padding="same", dilation_rate=(1, 3))
    torch.testing.assert_close(y, ref_conv(x, w, b, (2, 1), pads, (1, 3), 1))
    for explicit in (((0, 3), (2, 0)), ((3, 1), (1, 2)), ((1, 1), (0, 4))):  # including after < before
        want = ref_conv(x, w, b, (2, 1), explicit, (1, 2), 1)
        torch.testing.assert_close(conv_padded(x, w, b, explicit, strides=(2, 1), dilation_rate=(1, 2)), want)
        torch.testing.assert_close(conv(x, w, b, strides=(2, 1), padding=explicit, dilation_rate=(1, 2)), want)


@pytest.mark.parametrize("s,d", [(1, 1), (2, 1), (3, 1), (1, 2), (1, 3)])
def test_conv1d_causal_pairs_forward_and_gradients(s, d):
    """Keras's 'causal' as explicit pairs ``((d * (k - 1), 0),)``: no padded copy of the
    channels-last input, equal to ``F.pad`` on the left then an unpadded conv."""
    for n, k, groups in itertools.product((5, 8, 11), (1, 2, 3, 4), (1, 2)):
        _, x0, w0, b0 = make_inputs(2, (n,), 4, 6, k, groups, torch.float64, seed=n + k)
        pads = ((d * (k - 1), 0),)
        xr, wr, br = (t.detach().clone().requires_grad_() for t in (x0, w0, b0))
        ref = ref_conv(xr, wr, br, s, pads, d, groups)
        assert ref.shape[2] == output_size_1d(n, k, s, d, "causal")
        gy = torch.randn(ref.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
        ref.backward(gy)
        x = x0.detach().clone(memory_format=torch.preserve_format).requires_grad_()
        w, b = (t.detach().clone().requires_grad_() for t in (w0, b0))
        y = conv(x, w, b, strides=s, padding=pads, dilation_rate=d, groups=groups)
        torch.testing.assert_close(y, ref.detach(), rtol=1e-12, atol=1e-12)
        assert y.stride(1) == 1  # channels stay innermost
        y.backward(gy)
        for got, want in ((x.grad, xr.grad), (w.grad, wr.grad), (b.grad, br.grad)):
            torch.testing.assert_close(got, want, rtol=1e-11, atol=1e-11)


def test_exported_graph_pads_then_convolves():
    """Under ``torch.export`` an asymmetric pad is ``F.pad`` + an unpadded conv (ONNX folds
    the two into one ``Conv``); the numbers are the same."""

    class Same(torch.nn.Module):
        def forward(self, x, w):
            return conv(x, w, None, strides=2, padding="same")

    _, x, w, _ = make_inputs(2, (8, 9), 4, 6, 3, 1, torch.float32)
    program = torch.export.export(Same(), (x, w))
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert any("pad" in t for t in targets), targets
    torch.testing.assert_close(program.module()(x, w), Same()(x, w))


def test_symmetric_and_valid_go_straight_to_conv():
    from torch.profiler import ProfilerActivity, profile

    _, x, w, b = make_inputs(2, (8, 8), 4, 4, 3, 1, torch.float32)
    for padding, s in (("same", 1), ("valid", 2)):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            conv(x, w, b, strides=s, padding=padding)
        names = {ev.name for ev in prof.events()}
        assert "aten::constant_pad_nd" not in names and "aten::narrow" not in names, names


def test_channels_last_input_is_not_copied():
    from torch.profiler import ProfilerActivity, profile

    _, x, w, b = make_inputs(2, (16, 12), 8, 8, 3, 1, torch.float32)
    in_shape = list(x.shape)
    for contiguous in (True, False):
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            y = conv(x, w, b, strides=2, padding="same", contiguous=contiguous)
        for ev in prof.events():
            if ev.name in ("aten::copy_", "aten::contiguous", "aten::clone", "aten::constant_pad_nd", "aten::_to_copy"):
                assert in_shape not in [list(s) for s in ev.input_shapes], (ev.name, ev.input_shapes)
        assert y.stride(1) == 1  # channels stay innermost
        assert y.is_contiguous(memory_format=torch.channels_last) == contiguous


def test_errors():
    _, x, w, b = make_inputs(1, (3, 3), 2, 2, 5, 1, torch.float32)
    with pytest.raises(InputShapeError):
        conv(x, w, b, padding="valid")
    assert conv(x, w, b, padding="same").shape == (1, 2, 3, 3)
    with pytest.raises(ArgumentError):
        conv(x, w, b, padding="full")
    with pytest.raises(InputShapeError):
        conv(x[0], w, b)
    with pytest.raises(ArgumentError):
        conv(x, w, b, padding=((1, 1),))
    with pytest.raises(InputShapeError):
        conv(x, w, b, groups=2)  # 2 input channels, weight expects 2 per group


def test_torch_compile_fullgraph_with_grad():
    from torch._dynamo.testing import CompileCounterWithBackend

    def f(x, w, b):
        return conv(x, w, b, strides=2, padding="same", dilation_rate=1)

    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(f, fullgraph=True, backend=counter, dynamic=True)
    # (7, 10) and (9, 12) share TF pads ((1, 1), (0, 1)); (8, 9) has ((0, 1), (1, 1)).
    for hw in ((7, 10), (9, 12), (8, 9)):
        _, x0, w0, b0 = make_inputs(2, hw, 4, 6, 3, 1, torch.float32)
        x, w, b = (t.detach().clone(memory_format=torch.preserve_format).requires_grad_() for t in (x0, w0, b0))
        xr, wr, br = (t.detach().clone(memory_format=torch.preserve_format).requires_grad_() for t in (x0, w0, b0))
        y = compiled(x, w, b)
        ref = f(xr, wr, br)
        torch.testing.assert_close(y, ref)
        y.sum().backward()
        ref.sum().backward()
        for got, want in ((x.grad, xr.grad), (w.grad, wr.grad), (b.grad, br.grad)):
            torch.testing.assert_close(got, want)
    # sizes stay symbolic; only a change of the pads (size parity here) recompiles
    assert counter.frame_count == 2

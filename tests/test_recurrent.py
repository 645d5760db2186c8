"""LSTM: the checklist, Keras equivalence over every flag and mask kind, live gate-split
views, the fused-path proof, statefulness, and bad input."""

import itertools

import numpy as np
import pytest
import torch

from conformance.keras_reference import keras_call, keras_twin
from conformance.testing import check_layer, randomize_weights
from conformance.tolerance import assert_close
from xlayers import LSTM, Masking, Sequential
from xlayers.errors import ArgumentError, InputShapeError

BATCH, STEPS, FEATURES, UNITS = 3, 7, 5, 4
GATES = "ifco"


def _masks():
    right = np.ones((BATCH, STEPS), bool)
    right[0, 4:] = False
    right[2, 1:] = False
    holey = np.ones((BATCH, STEPS), bool)
    holey[0, [1, 4]] = False
    holey[1, 0] = False
    return {"none": None, "right": right, "holey": holey}


MASKS = _masks()


def test_lstm_checklist():
    expected = {"kernel": (FEATURES, 4 * UNITS), "recurrent_kernel": (UNITS, 4 * UNITS), "bias": (4 * UNITS,)}
    check_layer(LSTM(UNITS, return_sequences=True), (BATCH, STEPS, FEATURES), expected)


def _compare(layer, x, call=None, keras_call_kwargs=None):
    call = call or {}
    layer(torch.from_numpy(x), **call)
    randomize_weights(layer)
    ours = layer(torch.from_numpy(x), **call)
    ours = ours if isinstance(ours, list) else [ours]
    theirs = keras_call(keras_twin(layer), x, **(keras_call_kwargs if keras_call_kwargs is not None else call))
    assert len(ours) == len(theirs)
    for index, (a, b) in enumerate(zip(ours, theirs)):
        assert_close(a.detach(), b, what=f"output {index}")


FLAGS = list(itertools.product([False, True], [False, True], [False, True], list(MASKS)))


@pytest.mark.parametrize(
    "return_sequences, return_state, go_backwards, mask", FLAGS,
    ids=[f"seq{int(a)}-state{int(b)}-back{int(c)}-mask_{d}" for a, b, c, d in FLAGS],
)
def test_lstm_flags_match_keras(return_sequences, return_state, go_backwards, mask):
    layer = LSTM(UNITS, return_sequences=return_sequences, return_state=return_state, go_backwards=go_backwards)
    x = np.random.randn(BATCH, STEPS, FEATURES).astype(np.float32)
    call = {} if MASKS[mask] is None else {"mask": MASKS[mask]}
    _compare(layer, x, call)
    assert layer.last_path == ("loop" if mask == "holey" else "fused")


@pytest.mark.parametrize(
    "kwargs, path",
    [
        (dict(activation="relu"), "loop"),
        (dict(recurrent_activation="hard_sigmoid"), "loop"),
        (dict(use_bias=False), "fused"),
        (dict(zero_output_for_mask=True, return_sequences=True), "fused"),
        (dict(use_cudnn=False, return_sequences=True), "loop"),
        (dict(unroll=True), "fused"),
        (dict(unit_forget_bias=False), "fused"),
    ],
    ids=["relu", "hard_sigmoid", "no_bias", "zero_output_for_mask", "use_cudnn_false", "unroll", "no_unit_forget_bias"],
)
def test_lstm_arguments_match_keras(kwargs, path):
    layer = LSTM(UNITS, **kwargs)
    x = np.random.randn(BATCH, STEPS, FEATURES).astype(np.float32)
    _compare(layer, x, {"mask": MASKS["right"]})
    assert layer.last_path == path


def test_lstm_initial_state_matches_keras():
    layer = LSTM(UNITS, return_state=True, return_sequences=True)
    x = np.random.randn(BATCH, STEPS, FEATURES).astype(np.float32)
    h0, c0 = (np.random.randn(BATCH, UNITS).astype(np.float32) for _ in range(2))
    _compare(layer, x, {"initial_state": [torch.from_numpy(h0), torch.from_numpy(c0)]}, {"initial_state": [h0, c0]})


def test_lstm_float64_matches_keras():
    layer = LSTM(UNITS, return_sequences=True, dtype="float64")
    x = np.random.randn(BATCH, STEPS, FEATURES)
    layer(torch.from_numpy(x))
    randomize_weights(layer)
    assert_close(layer(torch.from_numpy(x)).detach(), keras_call(keras_twin(layer), x)[0], dtype="float64")


def test_lstm_stateful_matches_keras():
    layer = LSTM(UNITS, stateful=True, return_sequences=True)
    x1, x2 = (np.random.randn(BATCH, STEPS, FEATURES).astype(np.float32) for _ in range(2))
    layer(torch.from_numpy(x1))
    randomize_weights(layer)
    layer.reset_state()
    twin = keras_twin(layer)
    for x in (x1, x2):  # the second call starts from the first call's final states
        assert_close(layer(torch.from_numpy(x)).detach(), keras_call(twin, x)[0])
    layer.reset_state()
    twin.reset_state()
    assert_close(layer(torch.from_numpy(x1)).detach(), keras_call(twin, x1)[0])
    with pytest.raises(InputShapeError, match=r"stateful layer needs the batch size of its states \(3\)"):
        layer(torch.randn(2, STEPS, FEATURES))


def test_lstm_mask_from_masking_layer_in_sequential():
    x = np.random.randn(BATCH, STEPS, FEATURES).astype(np.float32)
    x[0, 5:] = 0.0
    model = Sequential([Masking(0.0), LSTM(UNITS)])
    model(torch.from_numpy(x))
    randomize_weights(model.layers[1])
    lstm = model.layers[1]
    expected = keras_call(keras_twin(lstm), x, mask=np.any(x != 0.0, axis=-1))[0]
    assert_close(model(torch.from_numpy(x)).detach(), expected)
    assert lstm.last_path == "fused"


def test_unit_forget_bias_initializes_forget_gate_to_one():
    layer = LSTM(UNITS)
    layer(torch.randn(2, 3, FEATURES))
    assert torch.equal(layer.bias_f, torch.ones(UNITS)) and torch.equal(layer.bias_i, torch.zeros(UNITS))


def test_gate_views_are_live_after_an_optimizer_step_and_writable():
    layer = LSTM(UNITS)
    x = torch.randn(BATCH, STEPS, FEATURES)
    layer(x)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
    before = {f"kernel_{g}": getattr(layer, f"kernel_{g}").detach().clone() for g in GATES}
    layer(x).square().sum().backward()
    optimizer.step()
    for g in GATES:
        view = getattr(layer, f"kernel_{g}")
        assert not torch.equal(view, before[f"kernel_{g}"])
        assert torch.equal(view, layer.kernel[:, GATES.index(g) * UNITS:(GATES.index(g) + 1) * UNITS])
    out_before = layer(x).detach()
    layer.recurrent_kernel_c = torch.zeros(UNITS, UNITS)  # writing through a view changes the fused weight
    assert torch.equal(layer.recurrent_kernel[:, 2 * UNITS:3 * UNITS], torch.zeros(UNITS, UNITS))
    assert not torch.allclose(layer(x), out_before)
    with torch.no_grad():
        layer.bias_o.fill_(3.0)
    assert torch.equal(layer.bias[3 * UNITS:], torch.full((UNITS,), 3.0))


def test_fused_path_runs_aten_lstm_without_per_step_matmuls():
    layer = LSTM(8, return_sequences=True)
    for steps in (5, 20):
        x = torch.randn(4, steps, 6)
        layer(x)
        with torch.no_grad(), torch.profiler.profile() as prof:
            layer(x)
        names = [e.name for e in prof.events()]
        assert "aten::lstm" in names
        matmuls = sum(n in ("aten::mm", "aten::addmm", "aten::matmul") for n in names)
        assert matmuls < 5, (steps, matmuls)


def test_loop_path_is_the_fallback_for_holey_masks():
    layer = LSTM(8)
    x = torch.randn(2, 6, 3)
    mask = torch.tensor([[1, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    layer(x, mask=mask)
    assert layer.last_path == "loop"


def test_lstm_dropout_only_when_training_and_seeded():
    layer = LSTM(UNITS, dropout=0.5, recurrent_dropout=0.3, seed=7, return_sequences=True)
    x = torch.randn(BATCH, STEPS, FEATURES)
    layer(x)
    layer.eval()
    assert torch.equal(layer(x), layer(x))
    assert torch.equal(layer(x, training=False), layer(x))
    layer.train()
    first = layer(x)
    assert not torch.equal(first, layer(x))  # fresh masks each call
    assert layer.last_path == "loop"


@pytest.mark.parametrize("grad", [False, True], ids=["inference", "training"])
def test_lstm_compiles_fullgraph(grad):
    layer = LSTM(UNITS, return_sequences=True)
    x = torch.randn(BATCH, STEPS, FEATURES)
    layer(x)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    with torch.set_grad_enabled(grad):
        out = compiled(x)
        torch.testing.assert_close(out, layer(x))
    if grad:
        out.sum().backward()
        assert layer.kernel.grad is not None


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(units=0), r"`LSTM`: `units` must be a positive integer"),
        (dict(units=3, dropout=1.5), r"`LSTM`: `dropout` must be a float in \[0, 1\]\. Received: dropout=1\.5"),
        (dict(units=3, use_cudnn="yes"), r"`use_cudnn` must be one of"),
        (dict(units=3, activation="relu", use_cudnn=True), r"`use_cudnn=True` needs activation='tanh'"),
    ],
)
def test_lstm_bad_arguments(kwargs, pattern):
    with pytest.raises(ArgumentError, match=pattern):
        LSTM(**kwargs)


def test_lstm_bad_inputs():
    layer = LSTM(UNITS)
    with pytest.raises(InputShapeError, match=r"expected an input of rank 3\. Received: input shape=\(3, 5\)"):
        layer(torch.randn(3, 5))
    layer(torch.randn(BATCH, STEPS, FEATURES))
    with pytest.raises(InputShapeError, match=r"expected axis -1 of the input to have size 5"):
        layer(torch.randn(BATCH, STEPS, FEATURES + 1))
    with pytest.raises(InputShapeError, match=r"`mask` must have shape \(batch, timesteps\) = \(3, 7\)\. Received: mask shape=\(3, 6\)"):
        layer(torch.randn(BATCH, STEPS, FEATURES), mask=torch.ones(BATCH, 6, dtype=torch.bool))
    with pytest.raises(InputShapeError, match=r"initial state `c` must have shape \(batch, units\) = \(3, 4\)"):
        layer(torch.randn(BATCH, STEPS, FEATURES), initial_state=[torch.zeros(BATCH, UNITS), torch.zeros(BATCH, 2)])

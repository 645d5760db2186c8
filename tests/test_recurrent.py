"""LSTM: the checklist, live gate-split views, the fused-path proof, statefulness, dropout,
compile, and bad call arguments.

Keras equivalence over every flag and mask kind, and the constructor's error messages, are
registry data: `conformance/cases/recurrent.py`."""

import numpy as np
import pytest
import torch

from conformance.keras_reference import keras_call, keras_twin
from conformance.testing import check_layer, randomize_weights
from xlayers.tolerance import assert_close
from xlayers import LSTM, Masking, Sequential
from xlayers.errors import InputShapeError

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


def test_lstm_stateful_batch_must_match_its_states():
    layer = LSTM(UNITS, stateful=True)
    layer(torch.randn(BATCH, STEPS, FEATURES))
    with pytest.raises(InputShapeError, match=r"stateful layer needs the batch size of its states \(3\)"):
        layer(torch.randn(2, STEPS, FEATURES))
    layer.reset_state()
    assert torch.equal(layer.states[0], torch.zeros(BATCH, UNITS))


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


def test_lstm_bad_call_arguments():
    layer = LSTM(UNITS)
    layer(torch.randn(BATCH, STEPS, FEATURES))
    with pytest.raises(InputShapeError, match=r"`mask` must have shape \(batch, timesteps\) = \(3, 7\)\. Received: mask shape=\(3, 6\)"):
        layer(torch.randn(BATCH, STEPS, FEATURES), mask=torch.ones(BATCH, 6, dtype=torch.bool))
    with pytest.raises(InputShapeError, match=r"initial state `c` must have shape \(batch, units\) = \(3, 4\)"):
        layer(torch.randn(BATCH, STEPS, FEATURES), initial_state=[torch.zeros(BATCH, UNITS), torch.zeros(BATCH, 2)])

"""LSTM and the recurrent base: the checklist, live gate-split views, Keras paths and torch
views from LAYOUT, the fused-path proof, the fused decision, states, dropout masks, compile,
export rules, and bad call arguments.

Keras equivalence over every flag and mask kind, and the constructor's error messages, are
registry data: `conformance/cases/recurrent.py`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conformance.keras_reference import keras_call, keras_twin
from conformance.testing import check_layer, randomize_weights
from xlayers.tolerance import assert_close
from xlayers import LSTM, Masking, Sequential
from xlayers.errors import ArgumentError, InputShapeError
from xlayers.layers.recurrent import BaseRNN
from xlayers.layers.recurrent_ops import lstm

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


def test_weights_walk_with_keras_3_paths():
    layer = LSTM(UNITS)
    layer(torch.randn(BATCH, STEPS, FEATURES))
    assert [entry.path for entry in layer.walk_weights()] == ["cell/kernel", "cell/recurrent_kernel", "cell/bias"]
    assert [entry.path for entry in LSTM(UNITS, use_bias=False, input_shape=(STEPS, FEATURES)).walk_weights()] == [
        "cell/kernel", "cell/recurrent_kernel"]


def test_the_op_gets_torch_views_of_the_parameters():
    """The fused kernel reads the parameters' own storage: the torch layout is a view, not a copy."""
    from torch.overrides import TorchFunctionMode

    class Recorder(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.params = None

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func is torch.lstm:
                self.params = args[2]
            return func(*args, **(kwargs or {}))

    layer = LSTM(UNITS)
    x = torch.randn(BATCH, STEPS, FEATURES)
    layer(x)
    with Recorder() as recorder, torch.no_grad():
        layer(x)
    w_ih, w_hh, b_ih, _ = recorder.params
    assert w_ih.shape == (4 * UNITS, FEATURES) and w_ih.data_ptr() == layer.kernel.data_ptr()
    assert w_hh.shape == (4 * UNITS, UNITS) and w_hh.data_ptr() == layer.recurrent_kernel.data_ptr()
    assert b_ih.data_ptr() == layer.bias.data_ptr()
    assert torch.equal(w_ih, layer.kernel.T)
    assert torch.equal(layer.weight_view("recurrent_kernel"), layer.recurrent_kernel.T)


def test_fused_decision_is_one_property_of_the_configuration():
    assert LSTM(UNITS).fused_ok and LSTM(UNITS, recurrent_dropout=0.2).fused_ok
    assert not LSTM(UNITS, use_cudnn=False).fused_ok
    assert not LSTM(UNITS, activation="relu").fused_ok and not LSTM(UNITS, recurrent_activation="hard_sigmoid").fused_ok
    custom = LSTM(UNITS, activation=lambda v: torch.tanh(v))  # a callable the layer cannot vouch for
    x = torch.randn(BATCH, STEPS, FEATURES)
    custom(x)
    assert not custom.fused_ok and custom.last_path == "loop"
    with pytest.raises(ArgumentError, match=r"`use_cudnn=True` needs activation='tanh', recurrent_activation='sigmoid' "
                       r"and no recurrent_dropout\. Received: activation='relu'"):
        LSTM(UNITS, activation="relu", use_cudnn=True)
    strict = LSTM(UNITS, use_cudnn=True)
    strict(x)
    with pytest.raises(ArgumentError, match=r"`LSTM` layer '\w+': `use_cudnn=True` but the fused kernel cannot run"):
        strict(x, mask=torch.tensor(MASKS["holey"]))


def test_base_is_abstract():
    with pytest.raises(TypeError, match=r"`BaseRNN` is abstract"):
        BaseRNN()
    assert LSTM.STATES == ("h", "c") and issubclass(LSTM, BaseRNN)
    assert LSTM(UNITS).state_shapes(BATCH) == [(BATCH, UNITS), (BATCH, UNITS)]


def test_last_dropout_masks_are_the_masks_the_call_applied():
    x = torch.randn(BATCH, STEPS, FEATURES)
    layer = LSTM(UNITS, dropout=0.4, seed=3, return_sequences=True)
    layer(x, training=False)
    assert layer.last_dropout_masks == (None, None)
    out = layer(x, training=True)
    drop, recurrent = layer.last_dropout_masks
    assert recurrent is None and drop.shape == (BATCH, FEATURES) and layer.last_path == "fused"
    assert torch.all((drop == 0) | torch.isclose(drop, torch.tensor(1 / 0.6)))  # kept units scaled by 1 / (1 - rate)
    weights = [layer.weight_view(n) for n in ("kernel", "recurrent_kernel", "bias")]
    torch.testing.assert_close(out, lstm(x, *weights, dropout_mask=drop)[0])
    both = LSTM(UNITS, dropout=0.4, recurrent_dropout=0.3, seed=3, return_sequences=True)
    out = both(x, training=True)
    drop, recurrent = both.last_dropout_masks
    assert drop.shape == (4, BATCH, FEATURES) and recurrent.shape == (4, BATCH, UNITS) and both.last_path == "loop"
    weights = [both.weight_view(n) for n in ("kernel", "recurrent_kernel", "bias")]
    torch.testing.assert_close(out, lstm(x, *weights, dropout_mask=drop, recurrent_dropout_mask=recurrent)[0])
    both(x, training=False)
    assert both.last_dropout_masks == (None, None)


def test_initial_state_and_stateful_rules():
    layer = LSTM(UNITS, return_state=True)
    x = torch.randn(BATCH, STEPS, FEATURES)
    expected = r"`LSTM` layer 'lstm': `initial_state` must be a list of 2 states \[h, c\]\. Received: 1 states"
    with pytest.raises(ArgumentError, match=expected):
        layer(x, initial_state=[torch.zeros(BATCH, UNITS)])
    with pytest.raises(ArgumentError, match=r"Received: initial_state of type Tensor"):
        layer(x, initial_state=torch.zeros(BATCH, UNITS))
    out, h, c = layer(x, initial_state=[np.zeros((BATCH, UNITS), np.float32)] * 2)
    assert torch.equal(out, h) and c.shape == (BATCH, UNITS)
    stateful = LSTM(UNITS, stateful=True, return_state=True)
    _, h1, c1 = stateful(x)
    assert torch.equal(stateful.states[0], h1) and torch.equal(stateful.states[1], c1)
    _, h2, _ = stateful(x)
    stateful.reset_states()
    _, h3, _ = stateful(x)
    assert not torch.equal(h2, h1) and torch.equal(h3, h1)  # carried over, then reset


def test_export_rules_live_on_the_layer():
    assert LSTM(UNITS).export_refusal() is None
    assert "`stateful` layers cannot be exported" in LSTM(UNITS, stateful=True).export_refusal()
    assert LSTM(UNITS, activation="relu").export_refusal().startswith(
        "only LSTMs on the fused kernel (activation='tanh', recurrent_activation='sigmoid', use_cudnn not False)")
    assert LSTM(UNITS).onnx_dynamic_axes() == {0: "batch", 1: "time"}


def test_simple_rnn_checklist_and_fused_proof():
    from xlayers import SimpleRNN

    expected = {"kernel": (FEATURES, UNITS), "recurrent_kernel": (UNITS, UNITS), "bias": (UNITS,)}
    check_layer(SimpleRNN(UNITS, return_sequences=True), (BATCH, STEPS, FEATURES), expected)
    for activation, op in (("tanh", "aten::rnn_tanh"), ("relu", "aten::rnn_relu")):
        layer = SimpleRNN(8, activation=activation, return_sequences=True)
        for steps in (5, 20):
            x = torch.randn(4, steps, 6)
            layer(x)
            with torch.no_grad(), torch.profiler.profile() as prof:
                layer(x)
            events = prof.events()
            assert sum(e.name == op for e in events) == 1
            assert layer.last_path == "fused"
    loop = SimpleRNN(UNITS, activation="sigmoid")
    loop(torch.randn(2, 4, 3))
    assert loop.last_path == "loop" and not loop.fused_ok
    assert "tanh" in loop.export_refusal()

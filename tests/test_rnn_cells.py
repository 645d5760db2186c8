"""RNN(cell), the cells and StackedRNNCells: the checklist, the fused specialisations agreeing with
LSTM / GRU / SimpleRNN, a user's cell against a hand-written loop (alone and stacked), Keras's
state structures, dropout masks drawn once per call, and configs.

Keras equivalence over flags, masks, initial states, stateful calls and dropout is registry data:
`conformance/cases/rnn_cells.py`."""

from __future__ import annotations

import json

import pytest
import torch

from conformance.driver import sequence_mask
from conformance.testing import check_layer
from xlayers import GRU, LSTM, RNN, GRUCell, Layer, LSTMCell, SimpleRNN, SimpleRNNCell, StackedRNNCells
from xlayers.errors import ArgumentError, ArgumentTypeError

BATCH, STEPS, FEATURES = 3, 7, 5


class MinimalRNNCell(Layer):
    """Keras's documented user cell (keras/src/layers/rnn/rnn.py): ``h = x W + h U``."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal", name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), initializer="random_normal", name="recurrent_kernel")

    def call(self, inputs, states):
        output = inputs @ self.kernel + states[0] @ self.recurrent_kernel
        return output, [output]


def _reference_loop(cell, x, mask=None, go_backwards=False, h0=None):
    """The user cell by hand, with Keras's mask rule: masked steps keep the state and repeat the
    previous output (zeros before the first)."""
    h = torch.zeros(x.shape[0], cell.units) if h0 is None else h0
    previous = torch.zeros_like(h)
    outputs = []
    order = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    for t in order:
        new = x[:, t] @ cell.kernel + h @ cell.recurrent_kernel
        if mask is not None:
            keep = mask[:, t, None]
            new_output = torch.where(keep, new, previous)
            h = torch.where(keep, new, h)
        else:
            new_output = h = new
        previous = new_output
        outputs.append(new_output)
    return torch.stack(outputs, 1), h


@pytest.mark.parametrize("cell, expected, compile", [
    (LSTMCell(4), {"cell.kernel": (5, 16), "cell.recurrent_kernel": (4, 16), "cell.bias": (16,)}, True),
    (GRUCell(3, reset_after=False), {"cell.kernel": (5, 9), "cell.recurrent_kernel": (3, 9), "cell.bias": (9,)}, False),
    (SimpleRNNCell(4, use_bias=False), {"cell.kernel": (5, 4), "cell.recurrent_kernel": (4, 4)}, True),
])
def test_rnn_checklist(cell, expected, compile):
    check_layer(RNN(cell, return_sequences=True), (BATCH, STEPS, FEATURES), expected, compile=compile)


def test_the_cell_loop_compiles_fullgraph():
    torch._dynamo.reset()
    layer = RNN([GRUCell(3, reset_after=False), SimpleRNNCell(2, activation="sigmoid")], return_sequences=True)
    x = torch.randn(2, 3, FEATURES)
    eager = layer(x)
    compiled = torch.compile(layer, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(x), eager)
    assert layer.last_path == "cell"


def test_stacked_checklist_and_keras_paths():
    layer = RNN([LSTMCell(4), GRUCell(3), LSTMCell(2)], return_sequences=True)
    expected = {
        "cell.cells/lstm_cell.kernel": (5, 16), "cell.cells/lstm_cell.recurrent_kernel": (4, 16), "cell.cells/lstm_cell.bias": (16,),
        "cell.cells/gru_cell.kernel": (4, 9), "cell.cells/gru_cell.recurrent_kernel": (3, 9), "cell.cells/gru_cell.bias": (2, 9),
        "cell.cells/lstm_cell_1.kernel": (3, 8), "cell.cells/lstm_cell_1.recurrent_kernel": (2, 8), "cell.cells/lstm_cell_1.bias": (8,),
    }
    check_layer(layer, (BATCH, STEPS, FEATURES), expected, compile=False)  # compiled: the test below
    paths = [entry.path for entry in layer.walk_weights()]
    assert paths[::3] == ["cell/cells/lstm_cell/kernel", "cell/cells/gru_cell/kernel", "cell/cells/lstm_cell_1/kernel"]
    assert layer.last_path == "cell"


@pytest.mark.parametrize("mask_kind", [None, "right", "holey"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_rnn_lstm_cell_is_the_lstm_layer(mask_kind, activation):
    torch.manual_seed(0)
    x = torch.randn(BATCH, STEPS, FEATURES)
    mask = None if mask_kind is None else torch.from_numpy(sequence_mask(mask_kind, BATCH, STEPS))
    rnn = RNN(LSTMCell(4, activation=activation), return_sequences=True, return_state=True, go_backwards=True)
    lstm = LSTM(4, activation=activation, return_sequences=True, return_state=True, go_backwards=True)
    rnn(x), lstm(x)
    lstm.set_weights([w + 0.1 * torch.randn(w.shape).numpy() for w in rnn.get_weights()])
    rnn.set_weights(lstm.get_weights())
    for ours, theirs in zip(rnn(x, mask=mask), lstm(x, mask=mask)):
        torch.testing.assert_close(ours, theirs)
    expected = "cell" if activation == "relu" else ("loop" if mask_kind == "holey" else "fused")
    assert rnn.last_path == expected


@pytest.mark.parametrize("reset_after", [True, False])
def test_rnn_gru_and_simple_cells_are_the_layers(reset_after):
    torch.manual_seed(1)
    x = torch.randn(BATCH, STEPS, FEATURES)
    mask = torch.from_numpy(sequence_mask("right", BATCH, STEPS))
    for rnn, layer in ((RNN(GRUCell(3, reset_after=reset_after), return_sequences=True), GRU(3, reset_after=reset_after, return_sequences=True)),
                       (RNN(SimpleRNNCell(3, activation="sigmoid"), return_sequences=True), SimpleRNN(3, activation="sigmoid", return_sequences=True))):
        rnn(x), layer(x)
        layer.set_weights([w + 0.1 for w in rnn.get_weights()])
        rnn.set_weights(layer.get_weights())
        torch.testing.assert_close(rnn(x, mask=mask), layer(x, mask=mask))


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("mask_kind", [None, "holey", "empty-row"])
def test_a_user_cell_against_a_hand_written_loop(go_backwards, mask_kind):
    torch.manual_seed(2)
    cell = MinimalRNNCell(4)
    layer = RNN(cell, return_sequences=True, return_state=True, go_backwards=go_backwards)
    x = torch.randn(BATCH, STEPS, FEATURES, requires_grad=True)
    h0 = torch.randn(BATCH, 4, requires_grad=True)
    mask = None if mask_kind is None else torch.from_numpy(sequence_mask(mask_kind, BATCH, STEPS))
    outputs, h = layer(x, mask=mask, initial_state=h0)  # a lone state, as Keras takes it
    expected_outputs, expected_h = _reference_loop(cell, x, mask, go_backwards, h0)
    torch.testing.assert_close(outputs, expected_outputs)
    torch.testing.assert_close(h, expected_h)
    assert layer.last_path == "cell" and [e.path for e in layer.walk_weights()] == ["cell/kernel", "cell/recurrent_kernel"]
    grads = torch.autograd.grad(outputs.square().sum(), (x, h0, cell.kernel))
    expected_grads = torch.autograd.grad(expected_outputs.square().sum(), (x, h0, cell.kernel))
    for ours, theirs in zip(grads, expected_grads):
        torch.testing.assert_close(ours, theirs)


def test_a_user_cell_in_a_stack():
    torch.manual_seed(3)
    user, lstm = MinimalRNNCell(3), LSTMCell(4)
    layer = RNN(StackedRNNCells([user, lstm]), return_sequences=True, return_state=True)
    x = torch.randn(BATCH, STEPS, FEATURES)
    outputs, user_states, lstm_states = layer(x)
    hidden, h = _reference_loop(user, x)
    alone = RNN(lstm, return_sequences=True, return_state=True)
    expected, h1, c1 = alone(hidden)
    torch.testing.assert_close(outputs, expected)
    torch.testing.assert_close(user_states[0], h)
    torch.testing.assert_close(lstm_states[0], h1)
    torch.testing.assert_close(lstm_states[1], c1)


def test_states_take_keras_structures():
    layer = RNN([LSTMCell(4), GRUCell(3)], return_state=True)
    x = torch.randn(BATCH, STEPS, FEATURES)
    _, (h1, c1), (h2,) = layer(x)
    assert layer.state_size == [[4, 4], 3] and layer.state_shapes(BATCH) == [[(3, 4), (3, 4)], [(3, 3)]]
    again = layer(x, initial_state=[[h1, c1], h2])  # a lone state for the GRU cell, as Keras takes it
    assert len(again) == 3
    with pytest.raises(ArgumentError, match=r"`initial_state` must hold the cell's 3 states"):
        layer(x, initial_state=[h1, c1, h2])
    step, states = layer.cell(x[:, 0], layer.cell.get_initial_state(BATCH))
    assert tuple(step.shape) == (BATCH, 3) and [len(s) for s in states] == [2, 1]


def test_stateful_carries_the_states_over():
    layer = RNN([LSTMCell(4), GRUCell(3)], stateful=True)
    x = torch.randn(BATCH, STEPS, FEATURES)
    first, second = layer(x), layer(x)
    assert not torch.allclose(first, second)
    layer.reset_state()
    torch.testing.assert_close(layer(x), first)


def test_dropout_masks_are_drawn_once_per_call():
    torch.manual_seed(4)
    cell = LSTMCell(4, dropout=0.5, activation="relu")
    layer = RNN(cell, return_sequences=True)
    x = torch.randn(BATCH, STEPS, FEATURES)
    layer(x)
    draws = []
    original = cell._draw
    cell._draw = lambda like, rate: draws.append(rate) or original(like, rate)
    first = layer(x, training=True)
    assert draws == [0.5] and layer.last_path == "cell"
    mask = layer.last_dropout_masks[0][0]
    assert tuple(mask.shape) == (BATCH, FEATURES) and set(mask.unique().tolist()) <= {0.0, 2.0}
    assert cell._dropout_mask is None  # reset after the call, as Keras's RNN does
    second = layer(x, training=True)
    assert draws == [0.5, 0.5] and not torch.equal(first, second)
    torch.testing.assert_close(layer(x, training=False), layer.eval()(x))  # eval: no dropout, torch's convention


def test_seeded_dropout_repeats_and_per_gate_masks():
    x = torch.randn(BATCH, STEPS, FEATURES)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        layer = RNN(GRUCell(3, dropout=0.3, recurrent_dropout=0.2, seed=7), return_sequences=True)
        layer(x)
        runs.append(layer(x, training=True))
        assert tuple(layer.last_dropout_masks[0][0].shape) == (3, BATCH, FEATURES)  # z, r, h (Keras's implementation 1)
        assert tuple(layer.last_dropout_masks[0][1].shape) == (3, BATCH, 3)
    torch.testing.assert_close(runs[0], runs[1])


def test_config_is_kerass_nested_form_and_round_trips():
    cells = [{"class_name": "LSTMCell", "config": {"units": 4, "name": "a"}},
             {"class_name": "GRUCell", "config": {"units": 3, "reset_after": False, "name": "b"}}]
    layer = RNN(cells, return_sequences=True, dtype="float64", name="r")  # configs take the layer's dtype
    layer(torch.randn(BATCH, STEPS, FEATURES, dtype=torch.float64))
    config = layer.get_config()
    cell = config["cell"]
    assert cell["module"] == "keras.layers" and cell["class_name"] == "StackedRNNCells"
    assert [c["class_name"] for c in cell["config"]["cells"]] == ["LSTMCell", "GRUCell"]
    assert cell["config"]["cells"][1]["config"]["dtype"]["config"]["name"] == "float64"  # Keras's DTypePolicy form
    assert cell["config"]["cells"][1]["build_config"] == {"input_shape": (BATCH, 4)}
    clone = RNN.from_config(json.loads(json.dumps(config)))
    assert clone.cell.built and json.loads(json.dumps(clone.get_config())) == json.loads(json.dumps(config))
    clone.load_state_dict(layer.state_dict())
    x = torch.randn(BATCH, STEPS, FEATURES, dtype=torch.float64)
    torch.testing.assert_close(clone(x), layer(x))
    plain = RNN({"class_name": "LSTMCell", "config": {"units": 3}}, dtype="float64")
    assert plain.cell.dtype == torch.float64


def test_bad_cells_are_refused():
    with pytest.raises(ArgumentTypeError, match=r"^`RNN` layer '[a-z_0-9]+': `cell` must be a cell"):
        RNN(torch.nn.Linear(2, 3))
    with pytest.raises(ArgumentTypeError, match=r"`cells` must be a non-empty list of cells"):
        StackedRNNCells([])
    cell = LSTMCell(3)
    with pytest.raises(ArgumentError, match=r"`states` must be a list of 2 states"):
        cell(torch.randn(2, 5), [torch.zeros(2, 3)])

"""Bidirectional and TimeDistributed: composition against hand-built references (no TensorFlow; the
conformance cases compare with Keras), naming, states, masks, config, errors, the checklist."""

from __future__ import annotations

import json

import pytest
import torch

from conformance.testing import check_layer, randomize_weights
from xlayers import (
    GRU,
    LSTM,
    BatchNormalization,
    Bidirectional,
    Conv2D,
    Dense,
    GlobalAveragePooling1D,
    SimpleRNN,
    TimeDistributed,
)
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError, WeightDtypeError
from xlayers.tolerance import assert_close


def _forward_twin(layer, source):
    """A forward-reading copy of ``source`` (same class and weights, go_backwards False)."""
    config = {**source.get_config(), "go_backwards": False, "name": None}
    twin = type(layer).from_config(config)
    twin.build_from_config(source.get_build_config())
    twin.set_weights(source.get_weights())
    return twin


@pytest.mark.parametrize("cls", [LSTM, GRU, SimpleRNN])
def test_bidirectional_is_forward_and_the_flipped_backward_concatenated(cls):
    x = torch.randn(3, 7, 5)
    layer = Bidirectional(cls(4, return_sequences=True))
    layer(x)
    randomize_weights(layer, 1)
    y = layer(x)
    forward = layer.forward_layer(x)
    backward = _forward_twin(layer.forward_layer, layer.backward_layer)(x.flip(1)).flip(1)  # no mask: go_backwards = flip
    torch.testing.assert_close(y, torch.cat([forward, backward], dim=-1))
    assert not torch.allclose(forward, backward)  # the two directions hold distinct weights


def test_merge_modes_and_return_state_order():
    x = torch.randn(3, 7, 5)
    base = Bidirectional(LSTM(4, return_state=True), merge_mode=None)
    base(x)
    randomize_weights(base, 2)
    y_f, y_b, h_f, c_f, h_b, c_b = base(x)
    _, h, c = base.forward_layer(x)
    torch.testing.assert_close((h_f, c_f), (h, c))
    _, h, c = base.backward_layer(x)
    torch.testing.assert_close((h_b, c_b), (h, c))
    expected = {"concat": torch.cat([y_f, y_b], -1), "sum": y_f + y_b, "mul": y_f * y_b, "ave": (y_f + y_b) / 2}
    for mode, value in expected.items():
        other = Bidirectional(LSTM(4, return_state=True), merge_mode=mode)
        other(x)
        other.set_weights(base.get_weights())
        out, *states = other(x)
        torch.testing.assert_close(out, value)
        torch.testing.assert_close(states, [h_f, c_f, h_b, c_b])
        assert [tuple(s) for s in other.compute_output_shape((3, 7, 5))] == [tuple(out.shape)] + [(3, 4)] * 4


def test_initial_state_halves_go_forward_then_backward():
    x = torch.randn(2, 6, 3)
    layer = Bidirectional(GRU(5, return_sequences=True), merge_mode=None)
    layer(x)
    h_f, h_b = torch.randn(2, 5), torch.randn(2, 5)
    y_f, y_b = layer(x, initial_state=[h_f, h_b])
    torch.testing.assert_close(y_f, layer.forward_layer(x, initial_state=[h_f]))
    torch.testing.assert_close(y_b, layer.backward_layer(x, initial_state=[h_b]).flip(1))
    assert layer.state_shapes(2) == [(2, 5), (2, 5)]
    with pytest.raises(ArgumentError, match=r"^`Bidirectional` layer '.*': `initial_state` must be a list .* Received: 3 states\."):
        layer(x, initial_state=[h_f, h_b, h_b])


def test_masked_steps_output_zeros_with_return_sequences_as_keras_forces():
    x = torch.randn(3, 7, 5)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[0, 4:] = False
    layer = Bidirectional(LSTM(4, return_sequences=True, zero_output_for_mask=False))
    assert layer.forward_layer.zero_output_for_mask and layer.backward_layer.zero_output_for_mask
    y = layer(x, mask=mask)
    assert torch.equal(y[0, 4:], torch.zeros_like(y[0, 4:])) and not torch.equal(y[1, 4:], torch.zeros_like(y[1, 4:]))
    assert layer.compute_mask(x, mask) is mask
    last = Bidirectional(LSTM(4))  # without sequences Keras keeps zero_output_for_mask False
    assert not last.forward_layer.zero_output_for_mask


def test_names_paths_and_weight_order_follow_keras():
    layer = Bidirectional(SimpleRNN(4, name="rnn"), input_shape=(7, 5))
    assert (layer.forward_layer.name, layer.backward_layer.name) == ("forward_rnn", "backward_rnn")
    paths = [entry.path for entry in layer.walk_weights()]
    assert paths == [f"{d}_layer/cell/{w}" for d in ("forward", "backward") for w in ("kernel", "recurrent_kernel", "bias")]
    assert [w.shape for w in layer.get_weights()] == [(5, 4), (4, 4), (4,)] * 2
    assert layer.backward_layer.go_backwards and not layer.forward_layer.go_backwards


def test_backward_layer_is_used_as_given_and_config_round_trips():
    backward = LSTM(4, activation="relu", go_backwards=True, return_sequences=True)
    layer = Bidirectional(LSTM(4, return_sequences=True), backward_layer=backward, merge_mode="sum")
    assert layer.backward_layer is backward and layer.forward_layer.last_path is None
    layer(torch.randn(2, 6, 3))
    assert layer.last_path == "fused+loop"
    config = json.loads(json.dumps(layer.get_config()))
    assert config["layer"]["module"] == "keras.layers" and config["backward_layer"]["config"]["activation"] == "relu"
    clone = Bidirectional.from_config(config)
    assert clone.get_config() == layer.get_config()


def test_stateful_carries_and_resets_both_directions():
    layer = Bidirectional(LSTM(4, stateful=True))
    x = torch.randn(2, 5, 3)
    first = layer(x)
    assert len(layer.states) == 4
    assert not torch.allclose(layer(x), first)  # carried states
    layer.reset_state()
    torch.testing.assert_close(layer(x), first)
    with pytest.raises(ArgumentError, match=r"`reset_state` needs a stateful layer"):
        Bidirectional(LSTM(4)).reset_state()


def test_bidirectional_errors():
    with pytest.raises(ArgumentError, match=r"^`Bidirectional` layer '.*': `merge_mode` must be one of"):
        Bidirectional(LSTM(3), merge_mode="max")
    with pytest.raises(ArgumentTypeError, match=r"`layer` must be a recurrent layer"):
        Bidirectional(Dense(3))
    with pytest.raises(ArgumentError, match=r"`backward_layer` must have `go_backwards` opposite"):
        Bidirectional(LSTM(3), backward_layer=LSTM(3))
    with pytest.raises(ArgumentError, match=r"`backward_layer` must have the same `return_state`"):
        Bidirectional(LSTM(3), backward_layer=LSTM(3, go_backwards=True, return_state=True))


def test_bidirectional_checklist_and_nested_assign_load():
    layer = Bidirectional(GRU(4, return_sequences=True))
    shapes = {f"{d}_layer.{n}": s for d in ("forward", "backward") for n, s in (("kernel", (5, 12)), ("recurrent_kernel", (4, 12)), ("bias", (2, 12)))}
    check_layer(layer, (3, 7, 5), shapes)
    state = {k: v.double() for k, v in layer.state_dict().items()}
    state["forward_layer.kernel"] = state["forward_layer.kernel"].float()
    with pytest.raises(WeightDtypeError, match=r"^`Bidirectional` layer .*forward_layer\.kernel float32"):
        layer.load_state_dict(state, assign=True)


def _per_step(layer, x, **kwargs):
    return torch.stack([layer(x[:, t], **{k: v[:, t] for k, v in kwargs.items()}) for t in range(x.shape[1])], dim=1)


@pytest.mark.parametrize("inner, shape", [(Dense(6), (3, 7, 5)), (Conv2D(4, 3, strides=2, padding="same"), (2, 3, 9, 8, 5))])
def test_time_distributed_is_the_layer_on_every_step(inner, shape):
    x = torch.randn(*shape)
    layer = TimeDistributed(inner)
    y = layer(x)
    randomize_weights(layer, 3)
    y = layer(x)
    torch.testing.assert_close(y, _per_step(inner, x))
    assert tuple(layer.compute_output_shape(shape)) == tuple(y.shape)
    assert [entry.path for entry in layer.walk_weights()] == ["layer/kernel", "layer/bias"]
    assert layer.layer is inner  # the wrapped instance itself: its weights are the wrapper's


def test_time_distributed_folds_the_mask_with_the_inputs_and_keeps_it_as_its_output_mask():
    x = torch.randn(3, 5, 7, 4)
    mask = torch.rand(3, 5, 7) > 0.3
    mask[..., 0] = True
    layer = TimeDistributed(GlobalAveragePooling1D())
    torch.testing.assert_close(layer(x, mask=mask), _per_step(layer.layer, x, mask=mask))
    assert layer.compute_mask(x, mask) is mask
    with pytest.raises(InputShapeError, match=r"^`TimeDistributed` layer .*`mask` must have shape"):
        layer(x, mask=mask[:, :4])


def test_time_distributed_batch_normalization_trains_per_step_as_keras():
    x = torch.randn(4, 3, 5) * 3 + 1
    layer = TimeDistributed(BatchNormalization(momentum=0.5))
    reference = BatchNormalization(momentum=0.5)
    y = layer(x, training=True)
    expected = torch.stack([reference(x[:, t], training=True) for t in range(3)], dim=1)
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close(layer.layer.moving_mean, reference.moving_mean)  # three updates, in order
    folded = BatchNormalization()(x.reshape(12, 5), training=True).reshape(4, 3, 5)
    assert not torch.allclose(y, folded)  # batch x time statistics would differ
    layer.eval()
    torch.testing.assert_close(layer(x), _per_step(layer.layer, x))


def test_time_distributed_checklist_and_config():
    layer = TimeDistributed(Dense(3, activation="relu"))
    check_layer(layer, (2, 5, 4), {"layer.kernel": (4, 3), "layer.bias": (3,)})
    assert layer.get_config()["layer"]["class_name"] == "Dense"
    with pytest.raises(InputShapeError, match=r"^`TimeDistributed` layer .*rank >= 3"):
        TimeDistributed(Dense(3))(torch.randn(2, 4))
    with pytest.raises(ArgumentTypeError, match=r"`layer` must be an xlayers layer or its serialized config"):
        TimeDistributed("dense")


def _aten_calls(layer, x, **kwargs):
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        layer(x, **kwargs)
    names = [event.name for event in profile.events()]
    return {op: names.count(op) for op in ("aten::lstm", "aten::gru", "aten::rnn_tanh", "aten::rnn_relu", "aten::matmul", "aten::mm")}


@pytest.mark.parametrize("cls, op", [(LSTM, "aten::lstm"), (GRU, "aten::gru"), (SimpleRNN, "aten::rnn_tanh")])
def test_both_directions_run_in_one_fused_call_and_a_mask_takes_two(cls, op):
    x = torch.randn(3, 7, 5)
    layer = Bidirectional(cls(4, return_sequences=True), merge_mode="sum")
    with torch.no_grad():
        unmasked = layer(x)
        assert layer.last_path == "bidirectional" and _aten_calls(layer, x)[op] == 1
        mask = torch.ones(3, 7, dtype=torch.bool)
        torch.testing.assert_close(layer(x, mask=mask), unmasked)  # all-true mask: the two-call path, same numbers
        assert layer.last_path == "fused" and _aten_calls(layer, x, mask=mask)[op] == 2
        dropped = Bidirectional(cls(4, dropout=0.5))
        dropped(x, training=True)
        assert dropped.last_path == "fused"  # each direction draws its own dropout mask: two calls


def test_a_backward_layer_with_a_callable_activation_runs_on_its_own_path():
    backward = SimpleRNN(4, activation=lambda x: torch.tanh(x) * 0.5, go_backwards=True)
    layer = Bidirectional(SimpleRNN(4), backward_layer=backward)
    layer(torch.randn(2, 5, 3))
    assert layer.last_path == "fused+loop"


def test_initial_weights_are_set_at_build_forward_then_backward():
    source = Bidirectional(GRU(3), input_shape=(4, 2))
    randomize_weights(source, 4)
    layer = Bidirectional(GRU(3), weights=source.get_weights())
    layer(torch.randn(2, 4, 2))
    for ours, theirs in zip(layer.get_weights(), source.get_weights()):
        assert (ours == theirs).all()


@pytest.mark.parametrize("cls", [LSTM, GRU, SimpleRNN])
def test_the_bidirectional_export_op_run_eagerly_is_the_two_layers_over_a_right_padded_mask(cls):
    """What a Bidirectional exports (``onnx_bidirectional``: one op, ONNX's conventions) means, run eagerly,
    what its two layers give: outputs (batch, time, 2, units), the backward one in input order and zero past
    each row's length; final states (2, batch, units), the initial ones for an empty row. (tests/test_onnx.py
    checks the ONNX node against Keras.)"""
    x = torch.randn(4, 7, 5)
    layer = Bidirectional(cls(3, return_sequences=True, return_state=True), merge_mode=None)
    layer(x)
    randomize_weights(layer, 6)
    lengths = torch.tensor([7, 0, 4, 1])
    mask = torch.arange(7).unsqueeze(0) < lengths.unsqueeze(1)
    initial = [torch.randn(4, 3) for _ in range(2 * len(layer.forward_layer.STATES))]
    with torch.no_grad():
        y_f, y_b, *states = layer(x, mask=mask, initial_state=initial)
        assert layer.last_path == "fused"  # two calls of the fused kernel, each with the mask's lengths
        half = len(initial) // 2
        stacked = [torch.stack(pair) for pair in zip(initial[:half], initial[half:])]
        pair, final = layer.forward_layer.onnx_bidirectional(layer.backward_layer, x, lengths, stacked)
    assert pair.shape == (4, 7, 2, 3) and torch.equal(pair[1], torch.zeros(7, 2, 3)) and torch.equal(pair[2, 4:], torch.zeros(3, 2, 3))
    assert_close(pair[:, :, 0], y_f)
    assert_close(pair[:, :, 1], y_b)
    for index, state in enumerate(final):  # each state's two directions, as return_state orders them: forward's, then backward's
        assert_close(state, torch.stack([states[index], states[half + index]]), what=f"state {index}")

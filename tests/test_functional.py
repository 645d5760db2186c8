"""The functional API (`Input`, `Model`): graphs with branches, merges, several inputs and
outputs, shared layers, nested models and masks, against Keras's own functional models built
from the same config; Keras's config JSON both ways; and the errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import xlayers
from conformance.keras_reference import keras
from conformance.testing import randomize_weights
from conformance.transfer import from_keras, keras_variables, to_keras
from xlayers import (
    LSTM,
    Add,
    Concatenate,
    Dense,
    Dropout,
    Embedding,
    Input,
    Model,
    Sequential,
)
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError
from xlayers.tolerance import compare


def _keras_twin(model: Model):
    """Keras's functional model from xlayers' config (JSON-round-tripped), with its weights."""
    twin = keras().Model.from_config(json.loads(json.dumps(model.get_config())))
    to_keras(model, twin)
    return twin


def _assert_close(ours, theirs, what: str) -> None:
    result = compare(np.asarray(ours), np.asarray(theirs), "float32", "cpu")
    assert result.passed, result.describe(what)


def _check_against_keras(model: Model, inputs: list[np.ndarray], twin=None) -> None:
    """Outputs and every input and weight gradient, xlayers against Keras, one upstream gradient."""
    import tensorflow as tf

    twin = twin or _keras_twin(model)
    rng = np.random.default_rng(5)
    x = [torch.from_numpy(a).requires_grad_(a.dtype.kind == "f") for a in inputs]
    ours = model(x if len(x) > 1 else x[0])
    ours_flat = list(ours.values()) if isinstance(ours, dict) else ours if isinstance(ours, list) else [ours]
    upstream = [rng.standard_normal(tuple(o.shape)).astype(np.float32) for o in ours_flat]
    sum((o * torch.from_numpy(g)).sum() for o, g in zip(ours_flat, upstream)).backward()
    tx = [tf.constant(a) for a in inputs]
    with tf.GradientTape() as tape:
        for t in tx:
            tape.watch(t)
        theirs = twin(tx if len(tx) > 1 else tx[0])
        theirs_flat = [theirs[k] for k in ours] if isinstance(theirs, dict) else theirs if isinstance(theirs, list) else [theirs]
        loss = tf.add_n([tf.reduce_sum(o * g) for o, g in zip(theirs_flat, upstream)])
    variables = keras_variables(twin)
    grads = tape.gradient(loss, [*tx, *variables.values()])
    for index, (o, t) in enumerate(zip(ours_flat, theirs_flat)):
        _assert_close(o.detach(), t, f"output {index}")
    grads = [None if g is None else tf.convert_to_tensor(g) for g in grads]  # an embedding's are IndexedSlices
    for index, (a, g) in enumerate(zip(x, grads)):
        if a.requires_grad:
            _assert_close(a.grad, g, f"input {index} gradient")
    ours_grads = {e.path: e.parameter.grad for e in model.walk_weights()}
    for (path, _), g in zip(variables.items(), grads[len(tx):]):
        _assert_close(ours_grads[path], np.zeros(ours_grads[path].shape) if g is None else g, f"gradient of {path}")


def _two_in_two_out() -> Model:
    a, b = Input((5,), name="a"), Input((3,), name="b")
    shared = Dense(4, name="shared")
    x = shared(Dense(5, activation="tanh")(a))
    y = Dense(4)(b)
    inner = Sequential([Dense(6, activation="relu"), Dense(2)], name="inner")
    z = inner(Add()([x, y]))
    return Model([a, b], {"o1": z, "o2": Concatenate()([shared(a), y])})


def test_branches_merges_shared_layer_and_nested_sequential_match_keras():
    model = _two_in_two_out()
    randomize_weights(model, 1)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((3, 5)).astype(np.float32), rng.standard_normal((3, 3)).astype(np.float32)]
    twin = _keras_twin(model)
    assert [layer.name for layer in model.layers] == [layer.name for layer in twin.layers]
    assert [e.path for e in model.walk_weights()] == list(keras_variables(twin))
    assert len(model.weights) == len(twin.weights)  # the shared layer's weights once
    _check_against_keras(model, inputs, twin)


def test_nested_functional_model_and_its_node_numbering_match_keras():
    inner_in = Input((4,))
    inner = Model(inner_in, Dense(3, activation="sigmoid")(inner_in), name="inner_fn")
    x = Input((6,))
    h = Dense(4)(x)
    model = Model(x, Add()([inner(h), inner(Dense(4)(x))]))  # the nested model called twice
    randomize_weights(model, 2)
    config = model.get_config()
    add_args = next(e for e in config["layers"] if e["name"] == "add")["inbound_nodes"][0]["args"][0]
    assert [a["config"]["keras_history"][:2] for a in add_args] == [["inner_fn", 0], ["inner_fn", 1]]  # Keras 3 counts from 0
    rng = np.random.default_rng(1)
    _check_against_keras(model, [rng.standard_normal((2, 6)).astype(np.float32)])


def test_masks_flow_from_embedding_through_lstm_as_in_keras():
    ids = Input((7,), dtype="int64")
    h = Embedding(9, 5, mask_zero=True)(ids)
    h = LSTM(4, return_sequences=True)(h)
    out = LSTM(3)(h)
    model = Model(ids, out)
    randomize_weights(model, 3)
    tokens = np.array([[3, 1, 4, 1, 5, 0, 0], [2, 6, 0, 0, 0, 0, 0], [8, 8, 8, 8, 8, 8, 8]], np.int64)
    _check_against_keras(model, [tokens])


def test_keras_made_config_runs_in_xlayers_with_keras_weights():
    K = keras()
    a, b = K.Input((5,), name="a"), K.Input((3,), name="b")
    shared = K.layers.Dense(4, name="shared")
    x = shared(K.layers.Dense(5, activation="relu")(a))
    out = K.layers.Concatenate()([shared(a), K.layers.Add()([x, K.layers.Dense(4)(b)])])
    twin = K.Model([a, b], out)
    model = Model.from_config(json.loads(json.dumps(twin.get_config())))
    from_keras(model, twin)
    rng = np.random.default_rng(4)
    _check_against_keras(model, [rng.standard_normal((2, 5)).astype(np.float32), rng.standard_normal((2, 3)).astype(np.float32)], twin)


def test_config_round_trip_rebuilds_the_same_model():
    model = _two_in_two_out()
    again = Model.from_config(json.loads(json.dumps(model.get_config())))
    again.set_weights(model.get_weights())
    assert [e.path for e in again.walk_weights()] == [e.path for e in model.walk_weights()]
    inputs = [torch.randn(2, 5), torch.randn(2, 3)]
    ours, theirs = model(inputs), again(inputs)
    assert set(ours) == {"o1", "o2"} and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_state_dict_keys_are_keras_paths_and_load_into_a_rebuilt_model():
    model = _two_in_two_out()
    keys = list(model.state_dict())
    assert keys[0] == "layers/dense.kernel" and "layers/sequential.layers/dense_1.bias" in keys
    again = _two_in_two_out()
    again.load_state_dict(model.state_dict())
    inputs = [torch.randn(2, 5), torch.randn(2, 3)]
    assert torch.equal(again(inputs)["o1"], model(inputs)["o1"])


def test_inputs_as_a_dict_and_training_reaches_dropout():
    x = Input((6,), name="x")
    model = Model({"x": x}, Dropout(0.5, seed=1)(Dense(6)(x)))
    data = torch.randn(4, 6)
    assert torch.equal(model({"x": data}, training=False), model.eval()({"x": data}))  # no dropout in inference
    assert (model({"x": data}, training=True) == 0).any() and not (model({"x": data}) == 0).any()


def test_symbolic_shapes_and_summary(capsys):
    model = _two_in_two_out()
    assert model.outputs[0].shape == (None, 2) and model.compute_output_shape([(7, 5), (7, 3)])["o2"] == (7, 8)
    model.summary()
    printed = capsys.readouterr().out
    assert "shared (Dense)" in printed and "Connected to" in printed and f"Total params: {model.count_params():,}" in printed


def test_bad_graphs_and_inputs_are_refused():
    a, b = Input((3,)), Input((3,))
    with pytest.raises(ArgumentError, match="disconnected"):
        Model(a, Add()([a, b]))
    with pytest.raises(ArgumentTypeError, match="`outputs` must be symbolic tensors"):
        Model(a, torch.zeros(1))
    model = Model([a, b], Add()([a, b]))
    with pytest.raises(InputShapeError, match=r"expected 2 inputs\. Received: 1"):
        model(torch.randn(2, 3))
    with pytest.raises(InputShapeError, match=r"must have shape \(None, 3\)\. Received: input shape=\(2, 4\)"):
        model([torch.randn(2, 4), torch.randn(2, 3)])
    shared = Dense(2)
    shared(a)
    with pytest.raises(InputShapeError, match=r"`Dense` layer .*expected axis -1 of the input to have size 3.*\(None, 5\)"):
        shared(Input((5,)))  # a shared layer called on another size, refused when the graph is built
    with pytest.raises(ArgumentError, match="names must be unique"):
        c = Input((3,), name="same")
        Model(c, Dense(2, name="same")(c))


def test_every_layer_call_on_plain_tensors_is_unchanged():
    layer = Dense(3)
    assert isinstance(layer(torch.randn(2, 4)), torch.Tensor)
    assert isinstance(layer(Input((4,))), xlayers.KerasTensor)


def _ops_model() -> Model:
    x = Input((7,), name="x")
    h = Dense(7)(x)
    z = (x + h) * (1.0 / 6.0) + 3.0  # operation nodes, as Keras records them
    relu6 = xlayers.ReLU(6.0)(z) * (1.0 / 6.0)  # MobileNetV3's hard sigmoid
    return Model(x, [z[:, 1:5], -relu6 / 2.0, 1.0 - abs(z) ** 2.0])


def test_operators_on_symbolic_tensors_record_keras_operation_nodes():
    model = _ops_model()
    config = model.get_config()
    kinds = [(e["module"], e["class_name"]) for e in config["layers"]]
    assert ("keras.src.ops.numpy", "Add") in kinds and ("keras.src.ops.numpy", "GetItem") in kinds
    assert [type(layer).__name__ for layer in model.layers] == ["InputLayer", "Dense", "ReLU"]  # operations are not layers
    randomize_weights(model, 6)
    _check_against_keras(model, [np.random.default_rng(6).standard_normal((3, 7)).astype(np.float32)])
    again = Model.from_config(json.loads(json.dumps(config)))
    again.set_weights(model.get_weights())
    data = torch.randn(2, 7)
    assert all(torch.equal(a, b) for a, b in zip(model(data), again(data)))


def test_keras_operation_nodes_run_from_a_keras_config():
    K = keras()
    x = K.Input((6, 5))
    h = K.layers.Dense(5)(x)
    y = K.ops.relu(x + h) * 0.5
    outputs = [K.ops.mean(y, axis=-1), K.ops.softmax(y[:, :, 1:4], axis=1), K.ops.concatenate([y, x], axis=-1),
               K.ops.gelu(K.ops.transpose(y, (0, 2, 1))), K.ops.cast(K.ops.any(K.ops.not_equal(x, 0.0), axis=-1), "float32")]
    twin = K.Model(x, outputs)
    model = Model.from_config(json.loads(json.dumps(twin.get_config())))
    from_keras(model, twin)
    _check_against_keras(model, [np.random.default_rng(7).standard_normal((2, 6, 5)).astype(np.float32)], twin)


def test_an_unknown_operation_is_named():
    entry = {"module": "keras.src.ops.numpy", "class_name": "Einsteinify", "config": {"name": "e"}}
    with pytest.raises(ArgumentError, match=r"unknown graph operation 'numpy\.Einsteinify'"):
        xlayers.functional.deserialize_layer(entry)


def test_an_unknown_layer_class_is_named_with_its_place_in_the_model():
    i = Input((5,))
    o = xlayers.Dense(3, name="head")(xlayers.Sequential([xlayers.Dense(4, name="body")], name="inner")(i))
    entry = xlayers.functional.serialize_layer(Model(i, o, name="net"))
    entry["config"]["layers"][1]["config"]["layers"][-1]["class_name"] = "Dense2"
    with pytest.raises(ArgumentError, match=r"^layer `net/inner/body`: .* Close names: Dense\. .*custom_objects=\{'Dense2'"):
        xlayers.functional.deserialize_layer(entry)

"""Sequential: lazy and eager build, add/pop, mask propagation, summary, config round trip."""

import json

import numpy as np
import pytest
import torch

from conformance.keras_reference import keras
from xlayers.tolerance import assert_close
from xlayers import Conv2D, Dense, Masking, Sequential
from xlayers.errors import ArgumentError


def test_lazy_build_and_shapes():
    model = Sequential([Dense(8, activation="relu"), Dense(3)])
    assert not model.built
    out = model(torch.randn(4, 5))
    assert out.shape == (4, 3) and model.built and all(layer.built for layer in model.layers)
    assert list(model.state_dict()) == ["layers/dense.kernel", "layers/dense.bias", "layers/dense_1.kernel", "layers/dense_1.bias"]
    assert model.count_params() == 5 * 8 + 8 + 8 * 3 + 3


def test_input_shape_on_first_layer_builds_the_model_and_add_builds_new_layers():
    model = Sequential([Conv2D(4, 3, input_shape=(9, 8, 2))])
    assert model.built and model._build_shape == (None, 9, 8, 2)
    model.add(Dense(5))
    assert model.layers[1].built and model.layers[1].kernel.shape == (4, 5)
    assert model.compute_output_shape((None, 9, 8, 2)) == (None, 7, 6, 5)
    popped = model.pop()
    assert popped.name == "dense" and len(model.layers) == 1


def test_duplicate_names_are_refused():
    with pytest.raises(ArgumentError, match=r"layer names must be unique"):
        Sequential([Dense(2, name="a"), Dense(2, name="a")])


def test_summary_table():
    model = Sequential([Dense(8, input_shape=(5,)), Dense(3)])
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "dense (Dense)" in text and "(None, 8)" in text and "(None, 3)" in text
    assert "Total params: 75" in text and "Trainable params: 75" in text and "Non-trainable params: 0" in text


def test_config_round_trip_rebuilds():
    model = Sequential([Dense(8, activation="relu", input_shape=(5,)), Dense(3, use_bias=False)], name="m")
    config = json.loads(json.dumps(model.get_config()))
    clone = Sequential.from_config(config)
    assert clone.get_config() == model.get_config()
    clone.load_state_dict(model.state_dict())
    x = torch.randn(2, 5)
    assert torch.equal(clone(x), model(x))


def test_mask_propagates_to_mask_consumers():
    seen = {}

    class Probe(Dense):
        def call(self, inputs, mask=None):
            seen["mask"] = mask
            return super().call(inputs)

    model = Sequential([Masking(0.0), Probe(2)])
    x = torch.randn(2, 4, 3)
    x[0, 2:] = 0
    model(x)
    assert seen["mask"].tolist() == [[True, True, False, False], [True, True, True, True]]


def test_training_flag_reaches_layers_and_plain_modules_mix_in():
    model = Sequential([Dense(4), torch.nn.ReLU(), Dense(2)])
    assert model(torch.randn(3, 5)).shape == (3, 2)


def test_matches_keras_sequential():
    model = Sequential([Conv2D(4, 3, strides=2, padding="same", activation="relu", input_shape=(9, 10, 3)), Dense(2)])
    k = keras()
    twin = k.Sequential([k.Input((9, 10, 3)), k.layers.Conv2D.from_config(model.layers[0].get_config()), k.layers.Dense.from_config(model.layers[1].get_config())])
    twin.set_weights(model.get_weights())
    x = np.random.randn(2, 9, 10, 3).astype(np.float32)
    assert_close(model(torch.from_numpy(x)).detach(), np.asarray(twin(x)))


def test_state_dict_keys_depend_on_the_architecture_only():
    """The same model built again in the same process (other default names) loads the first one's
    state_dict: keys are Keras's .keras paths, `layers/<class>_<n>` per model, never layer names."""
    from xlayers import LSTM

    def make():
        return Sequential([Masking(0.0), LSTM(6), Dense(2, name="a.b"), Dense(3)])

    first, second = make(), make()
    x = torch.randn(2, 5, 4)
    first(x), second(x)
    assert [layer.name for layer in first.layers] != [layer.name for layer in second.layers]
    assert list(first.state_dict()) == [
        "layers/lstm.kernel", "layers/lstm.recurrent_kernel", "layers/lstm.bias",
        "layers/dense.kernel", "layers/dense.bias", "layers/dense_1.kernel", "layers/dense_1.bias",
    ]
    second.load_state_dict(first.state_dict())
    torch.testing.assert_close(second(x), first(x))
    assert [e.path for e in first.walk_weights()][:3] == ["layers/lstm/cell/kernel", "layers/lstm/cell/recurrent_kernel", "layers/lstm/cell/bias"]

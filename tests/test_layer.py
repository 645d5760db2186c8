"""The `Layer` contract: lazy build, weights, config, state_dict, regularizers, constraints,
torch conventions (devices, dtypes, optimizers, compile), and bad input."""

import copy
import json
import re

import numpy as np
import pytest
import torch

import xlayers
from xlayers import Dense, InputSpec, Layer
from xlayers.errors import (
    ArgumentError,
    ArgumentTypeError,
    InputDeviceError,
    InputDtypeError,
    InputShapeError,
    NotBuiltError,
    WeightShapeError,
)
from xlayers.layer import map_structure


class Linear(Layer):
    """The seed's custom layer: state in `build`, logic in `call`."""

    def __init__(self, units: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal", name="w")
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", name="b")

    def call(self, inputs):
        return inputs @ self.w + self.b

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_custom_layer_lazy_build():
    layer = Linear(4)
    assert not layer.built and layer.weights == [] and list(layer.parameters()) == []
    out = layer(torch.randn(2, 3))
    assert layer.built and out.shape == (2, 4)
    assert [tuple(w.shape) for w in layer.weights] == [(3, 4), (4,)]
    assert layer._forward_pre_hooks == {}  # the build hook removed itself
    assert layer.count_params() == 16


def test_eager_build_from_input_shape_and_input_dim():
    assert Dense(3, input_shape=(5,)).kernel.shape == (5, 3)
    assert Dense(3, input_dim=5).kernel.shape == (5, 3)
    assert Dense(3, input_shape=(5,))._build_shape == (None, 5)


def test_unique_default_names():
    names = [Dense(1).name, Dense(1).name, Linear(1).name, Dense(1, name="head").name]
    assert names == ["dense", "dense_1", "linear", "head"]


def test_a_failed_construction_gives_its_default_name_back():
    xlayers.clear_session()
    with pytest.raises(ArgumentError):
        Dense(0)
    with pytest.raises(InputShapeError):
        xlayers.Conv2D(2, 5, input_shape=(3, 3, 1))  # fails while building eagerly
    assert Dense(2).name == "dense" and xlayers.Conv2D(2, 3).name == "conv2d"


def test_add_weight_after_build_is_refused():
    layer = Linear(2)
    layer(torch.randn(1, 3))
    with pytest.raises(ValueError, match=r"weights can only be added in `build`"):
        layer.add_weight(shape=(1,), name="late")


def test_get_set_weights_keras_order_and_errors():
    layer = Dense(3, input_dim=2)
    kernel, bias = np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2, 3], np.float32)
    layer.set_weights([kernel, bias])
    got = layer.get_weights()
    assert np.array_equal(got[0], kernel) and np.array_equal(got[1], bias)
    before = [w.copy() for w in layer.get_weights()]
    with pytest.raises(WeightShapeError, match=r"`Dense` layer 'dense': weight `kernel` must have shape \(in=2, units=3\) in keras layout\. Received: shape=\(3, 2\)"):
        layer.set_weights([kernel.T, bias])
    with pytest.raises(WeightShapeError, match=r"^`Dense` layer 'dense': expected 2 weights \(kernel, bias\)\. Received: 1 weights"):
        layer.set_weights([kernel])
    with pytest.raises(WeightShapeError):
        layer.set_weights([kernel, bias[:2]])  # the kernel must not have been written before the check failed
    assert all(np.array_equal(a, b) for a, b in zip(before, layer.get_weights()))


def test_not_built_errors():
    with pytest.raises(NotBuiltError, match=r"`Dense` layer 'dense': `count_params` needs a built layer"):
        Dense(2).count_params()
    with pytest.raises(NotBuiltError, match=r"cannot load weights into an unbuilt layer"):
        Dense(2).load_state_dict({"kernel": torch.zeros(3, 2), "bias": torch.zeros(2)})


def test_config_round_trip_through_json():
    layer = Dense(4, activation="gelu", use_bias=False, kernel_initializer="he_normal", kernel_regularizer="l2",
                  kernel_constraint="max_norm", activity_regularizer="l1", name="d", trainable=False, dtype="float64")
    config = json.loads(json.dumps(layer.get_config()))
    clone = Dense.from_config(config)
    assert clone.get_config() == layer.get_config()
    assert config["activation"] == "gelu" and config["dtype"] == "float64"
    custom = Linear(7)
    assert Linear.from_config(json.loads(json.dumps(custom.get_config()))).units == 7


def test_state_dict_round_trip_and_keys():
    a, b = Dense(3, input_dim=4), Dense(3, input_dim=4)
    assert list(a.state_dict()) == ["kernel", "bias"]
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 4)
    assert torch.equal(a(x), b(x))
    with pytest.raises(RuntimeError, match=r"size mismatch for kernel"):
        b.load_state_dict({"kernel": torch.zeros(4, 4), "bias": torch.zeros(3)})


def test_trainable_flag_and_optimizer():
    layer = Dense(2, input_dim=3)
    layer.trainable = False
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 2
    assert not any(p.requires_grad for p in layer.parameters())
    layer.trainable = True
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    before = layer.kernel.detach().clone()
    layer(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    assert not torch.equal(before, layer.kernel)


def test_regularization_losses_match_keras_formula():
    layer = Dense(3, kernel_regularizer=xlayers.regularizers.L2(0.1), bias_regularizer="l1", activity_regularizer=xlayers.regularizers.L1(0.5), input_dim=2)
    with torch.no_grad():
        layer.bias.fill_(0.5)
    x = torch.randn(4, 2)
    out = layer(x)
    kernel_loss, bias_loss, activity_loss = layer.losses
    torch.testing.assert_close(kernel_loss, 0.1 * (layer.kernel ** 2).sum())
    torch.testing.assert_close(bias_loss, 0.01 * layer.bias.abs().sum())
    torch.testing.assert_close(activity_loss, 0.5 * out.abs().sum() / 4)
    model = xlayers.Sequential([layer, Dense(1, kernel_regularizer="l2")])
    model(x)
    assert len(model.losses) == 4  # containers collect their layers' losses


def test_constraints_applied_by_one_call():
    layer = Dense(3, kernel_constraint="non_neg", input_dim=2)
    with torch.no_grad():
        layer.kernel.fill_(-1.0)
    model = torch.nn.Sequential(layer)
    xlayers.apply_constraints(model)
    assert torch.all(layer.kernel == 0)


def test_numpy_and_dtype_inputs_are_cast_to_the_weights_dtype():
    layer = Dense(2, input_dim=3)
    assert layer(np.random.randn(4, 3)).dtype == torch.float32  # float64 numpy, cast like Keras
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        assert layer(torch.randn(4, 3, dtype=dtype)).dtype == torch.float32
    layer.to(torch.float64)
    assert layer(torch.randn(4, 3)).dtype == torch.float64 and layer.dtype == torch.float64
    layer.to(torch.bfloat16)
    assert layer(torch.randn(4, 3)).dtype == torch.bfloat16
    assert layer.get_weights()[0].dtype == np.float32  # numpy has no bfloat16


def test_device_mismatch_is_a_clear_error():
    layer = Dense(2, input_dim=3)
    with pytest.raises(InputDeviceError, match=r"must be on the weights' device cpu.*Received: device=meta"):
        layer(torch.empty(4, 3, device="meta"))


def test_lazy_build_on_the_inputs_device():
    layer = Dense(2)
    layer(torch.empty(4, 3, device="meta"))
    assert layer.kernel.device.type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_build_and_call():
    layer = Dense(2)
    out = layer(torch.randn(4, 3, device="cuda"))
    assert out.device.type == "cuda" and layer.kernel.device.type == "cuda"


def test_deepcopy_and_compile_of_built_layer():
    layer = Dense(3, activation="relu", input_dim=4)
    twin = copy.deepcopy(layer)
    x = torch.randn(2, 4)
    assert torch.equal(twin(x), layer(x))
    compiled = torch.compile(layer, fullgraph=True)
    torch.testing.assert_close(compiled(x), layer(x))


def test_unknown_kwargs_and_bad_dtype():
    with pytest.raises(TypeError, match=r"^`Linear` layer 'linear': unrecognized keyword arguments \['foo'\]"):
        Linear(2, foo=3)
    with pytest.raises(TypeError, match=r"`dtype` must be a torch dtype"):
        Dense(2, dtype="float8")


class PairInputs(Layer):
    """Two inputs, as a merge layer takes them: (batch, n) and (batch, t, n)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.input_spec = [InputSpec(ndim=2, name="a"), InputSpec(ndim=3, name="b")]
        self.seen = None

    def build(self, input_shape):
        self.seen = input_shape
        self.w = self.add_weight((input_shape[0][-1],), initializer="ones", name="w")

    def call(self, inputs):
        a, b = inputs
        return b * (a * self.w).unsqueeze(1)


class TokenTable(Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.input_spec = {"ids": InputSpec(ndim=2, dtype="int", name="ids"), "scale": InputSpec(ndim=2, name="scale")}

    def build(self, input_shape):
        self.table = self.add_weight((10, input_shape["scale"][-1]), initializer="ones", name="table")

    def call(self, inputs):
        return self.table[inputs["ids"]] * inputs["scale"].unsqueeze(1)


def test_several_inputs_build_with_the_structure_of_shapes_and_keep_one_spec_each():
    layer = PairInputs()
    out = layer([torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 5, 3)])
    assert layer.seen == [(2, 3), (2, 5, 3)] and out.shape == (2, 5, 3) and out.dtype == torch.float32
    with pytest.raises(InputShapeError, match=r"^`PairInputs` layer 'pair_inputs': expected input `b` of rank 3\. Received: input shape=\(2, 3\)"):
        layer([torch.randn(2, 3), torch.randn(2, 3)])
    with pytest.raises(InputShapeError, match=r"^`PairInputs` layer 'pair_inputs': expected 2 inputs\. Received: a single input"):
        layer(torch.randn(2, 3))
    with pytest.raises(InputShapeError, match=r"^`PairInputs` layer 'pair_inputs': expected 2 inputs\. Received: 3 inputs"):
        layer([torch.randn(2, 3)] * 3)


def test_integer_inputs_are_taken_as_they_are_and_dict_inputs_keep_their_keys():
    layer = TokenTable()
    ids = torch.tensor([[1, 2], [3, 9]], dtype=torch.int32)
    out = layer({"ids": ids, "scale": torch.full((2, 4), 2.0)})
    assert out.shape == (2, 2, 4) and torch.equal(out, torch.full((2, 2, 4), 2.0))
    with pytest.raises(InputDtypeError, match=r"^`TokenTable` layer 'token_table': expected an integer input `ids`\. Received: dtype=float32"):
        layer({"ids": ids.float(), "scale": torch.ones(2, 4)})
    with pytest.raises(InputShapeError, match=r"expected inputs \['ids', 'scale'\]\. Received: \['ids'\]"):
        layer({"ids": ids})


def _gate_view_layers():
    from conformance.cases import REGISTRY

    return [(info, name) for info in REGISTRY for name in info.cls._gate_views]


GATE_VIEWS = _gate_view_layers()


@pytest.mark.parametrize("info, name", GATE_VIEWS, ids=[f"{i.cls.__name__}.{n}" for i, n in GATE_VIEWS])
def test_assigning_a_gate_view_writes_through_or_refuses(info, name):
    cls, case = info.cls, info.cases[0]  # built as its first conformance case builds it
    layer = cls(**case.kwargs)
    layer.build_from_config({"input_shape": map_structure(lambda spec: list(spec.shape), case.inputs)})
    view = getattr(layer, name)
    value = np.arange(view.numel(), dtype=np.float64).reshape(tuple(view.shape))
    setattr(layer, name, value)  # numpy in, float64 cast to the weight's dtype
    weight, index = cls._gate_views[name]
    assert torch.equal(weight.gate_slice(getattr(layer, weight.name), index), torch.from_numpy(value).float())
    assert name not in layer.__dict__  # the live view, not a plain attribute hiding it
    before = getattr(layer, weight.name).detach().clone()
    with pytest.raises(WeightShapeError, match=rf"weight `{name}` must have shape {re.escape(str(tuple(view.shape)))}\. Received: shape=\(\)"):
        setattr(layer, name, 1.0)
    with pytest.raises(ArgumentTypeError, match=rf"weight `{name}` takes a tensor or an array of numbers.*Received: {name} of type str"):
        setattr(layer, name, "x")
    assert torch.equal(getattr(layer, weight.name), before)  # a refused assignment changes nothing


def test_numpy_integers_are_accepted_as_sizes():
    dense = Dense(np.int32(4))
    conv = xlayers.Conv2D(np.int64(3), np.int32(2), strides=(np.int64(2), 1), groups=np.int8(1))
    assert dense(torch.randn(2, 5)).shape == (2, 4) and conv(torch.randn(1, 6, 6, 2)).shape == (1, 3, 5, 3)
    assert type(dense.get_config()["units"]) is int and conv.get_config()["strides"] == (2, 1)
    json.dumps(conv.get_config())


@pytest.mark.parametrize(
    "activation", [torch.relu, torch.nn.functional.gelu, lambda x: 2 * x, torch.nn.ReLU()], ids=["torch.relu", "F.gelu", "lambda", "nn.ReLU"]
)
def test_callable_activations_work_everywhere_but_get_config(activation):
    x = torch.randn(2, 3)
    for layer in (Dense(4, activation=activation), xlayers.Conv1D(4, 2, activation=activation)):
        assert "config not serialisable" in repr(layer)
    model = xlayers.Sequential([Dense(4, activation=activation), Dense(2)])
    assert model(x).shape == (2, 2) and "Dense" in repr(model)
    dense = model.layers[0]
    torch.testing.assert_close(dense(x), activation(torch.nn.functional.linear(x, dense.kernel.T, dense.bias)))
    with pytest.raises(ArgumentError, match=r"`get_config` can only write built-in activations, by name"):
        dense.get_config()
    lstm = xlayers.LSTM(3, activation=activation)
    assert lstm(torch.randn(2, 4, 5)).shape == (2, 3) and lstm.last_path == "loop"

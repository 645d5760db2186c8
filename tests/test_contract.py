"""The layer contract, over every layer of the case registry: `set_weights` is atomic and names
what it refuses, `weights[i].name` is Keras's weight name, `load_state_dict(assign=True)` keeps
one dtype per layer; and, for the base: Keras's mixed dtype policies and `torch.compile` with
dynamic shapes."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
import torch

import xlayers
from conformance.cases import REGISTRY
from conformance.keras_reference import keras_twin_from_config
from xlayers.errors import ArgumentError, ArgumentTypeError, WeightDtypeError, WeightShapeError
from xlayers.layer import _leaves, map_structure


def _flat_shapes(structure) -> list[tuple]:
    """A shape, or a nested list of shapes, as a flat list of tuples."""
    if isinstance(structure, (list, tuple)) and all(s is None or isinstance(s, int) for s in structure):
        return [tuple(structure)]
    return [shape for item in structure for shape in _flat_shapes(item)]


def _first_case(info):
    return next((c for c in info.cases if "float32" in c.dtypes and not c.call), info.cases[0])


def _built(info):
    case = _first_case(info)
    layer = case.layer(**case.kwargs)
    layer.build_from_config({"input_shape": map_structure(lambda spec: list(spec.shape), case.inputs)})
    return case, layer


WEIGHTED = [info for info in REGISTRY if _built(info)[1].weights]
IDS = [info.cls.__name__ for info in WEIGHTED]


@pytest.mark.parametrize("info", WEIGHTED, ids=IDS)
def test_set_weights_is_atomic_and_names_the_layer_and_the_weight(info):
    _, layer = _built(info)
    before = [w.detach().clone() for w in layer.weights]
    good = layer.get_weights()
    last = [e.path for e in layer.walk_weights()][-1]
    label = re.escape(f"`{type(layer).__name__}` layer '{layer.name}'")
    wrong_shape = np.zeros(tuple(s + 1 for s in good[-1].shape) or (2,), np.float32)
    bad = {
        "wrong shape": (good[:-1] + [wrong_shape], WeightShapeError, rf"{re.escape(last.rsplit('/', 1)[-1])}.*shape"),
        "None": (good[:-1] + [None], ArgumentTypeError, rf"weight `{re.escape(last)}` takes a tensor.*NoneType"),
        "string": (good[:-1] + ["abc"], ArgumentTypeError, rf"weight `{re.escape(last)}` takes a tensor.*str"),
        "object": (good[:-1] + [np.array([object()] * 2)], ArgumentTypeError, rf"weight `{re.escape(last)}` takes a tensor"),
        "complex": (good[:-1] + [good[-1] + 1j], ArgumentTypeError, rf"weight `{re.escape(last)}` takes real numbers.*imaginary"),
        "too few": (good[:-1], WeightShapeError, rf"expected {len(good)} weights"),
        "no list": (None, ArgumentTypeError, r"`set_weights` takes a list of arrays.*NoneType"),
        "dict": (dict(enumerate(good)), ArgumentTypeError, r"`set_weights` takes a list of arrays.*dict"),
    }
    if len(good) > 1:  # the first weight would be written before the last one fails
        for weights, error, pattern in bad.values():
            with pytest.raises(error, match=rf"^{label}: .*{pattern}"):
                layer.set_weights(weights)
            assert all(torch.equal(a, b) for a, b in zip(before, layer.weights)), "a failed set_weights changed a weight"
    changed = [w + 1.0 for w in good]
    layer.set_weights(changed)
    for weight, value in zip(layer.weights, changed):
        np.testing.assert_array_equal(weight.detach().numpy(), value.astype(weight.detach().numpy().dtype))


@pytest.mark.parametrize("info", WEIGHTED, ids=IDS)
def test_weight_names_are_keras_names(info):
    case, layer = _built(info)
    twin = keras_twin_from_config(layer, overrides=dict(case.kwargs))
    assert [w.name for w in layer.weights] == [v.name for v in twin.weights]
    assert all(e.parameter.path == f"{e.layer.name}/{e.parameter.name}" for e in layer.walk_weights())  # its owner's name


@pytest.mark.parametrize("info", WEIGHTED, ids=IDS)
def test_assign_load_keeps_one_dtype_per_layer(info):
    case, layer = _built(info)
    state = layer.state_dict()
    dtypes = [w.dtype for w in layer.weights]
    if len(state) > 1:
        mixed = dict(state)
        first = next(iter(mixed))
        mixed[first] = mixed[first].double()
        with pytest.raises(WeightDtypeError, match=rf"assign=True.*{re.escape(first)} float64"):
            layer.load_state_dict(mixed, assign=True)
        assert [w.dtype for w in layer.weights] == dtypes  # refused before anything was assigned
    layer.load_state_dict({k: v.double() for k, v in state.items()}, assign=True)
    assert all(w.dtype == torch.float64 for w in layer.weights)
    assert [w.name for w in layer.weights] == [w.name for w in _built(info)[1].weights]  # still Keras's names


@pytest.mark.parametrize("policy, half", [("mixed_float16", torch.float16), ("mixed_bfloat16", torch.bfloat16)])
def test_mixed_policy_keeps_float32_weights_and_computes_in_half(policy, half):
    dense = xlayers.Dense(5, activation="relu", dtype=policy)
    y = dense(torch.randn(3, 7))
    assert dense.kernel.dtype == torch.float32 and dense.dtype == torch.float32
    assert dense.compute_dtype == half and dense.dtype_policy == policy and y.dtype == half
    y.float().sum().backward()
    assert dense.kernel.grad.dtype == torch.float32
    assert dense.get_config()["dtype"] == policy
    assert xlayers.Dense.from_config(dense.get_config()).compute_dtype == half
    keras_policy = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": policy}, "registered_name": None}
    assert xlayers.Dense(2, dtype=keras_policy).dtype_policy == policy
    assert isinstance(dense.kernel, torch.nn.Parameter) and dense.kernel.name == "kernel"  # not the cast copy


def test_compiled_layers_do_not_share_dynamic_shape_state():
    """torch.compile learns dynamic shapes per code object; each layer class has its own
    ``forward`` code, so a Dense seen at two batch sizes leaves the next class static."""
    torch._dynamo.reset()
    dense = xlayers.Dense(3, input_shape=(5,))  # built: a layer builds eagerly, before it is compiled
    compiled = torch.compile(dense, fullgraph=True)
    compiled(torch.randn(2, 5))
    compiled(torch.randn(4, 5))  # Dense now compiles with a dynamic batch
    conv = xlayers.Conv2D(4, 3, strides=2, padding="same", input_shape=(9, 10, 3))
    x = torch.randn(2, 9, 10, 3, requires_grad=True)
    expected = conv(x)
    out = torch.compile(conv, fullgraph=True)(x)
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    assert xlayers.Dense.forward.__code__ is not xlayers.Conv2D.forward.__code__


def test_compile_with_a_dynamic_batch_trains_and_dynamic_everything_infers():
    """A dynamic batch compiles for training (one graph for every batch size). Dynamic spatial
    sizes compile for inference; for training they hit an inductor bug in torch 2.13 (README)."""
    torch._dynamo.reset()
    conv = xlayers.Conv2D(4, 3, strides=2, padding="same")
    conv(torch.randn(2, 9, 10, 3))
    compiled = torch.compile(conv, fullgraph=True)
    for batch in (2, 3, 5):
        x = torch.randn(batch, 9, 10, 3)
        torch._dynamo.mark_dynamic(x, 0)
        out = compiled(x)
        out.sum().backward()
        torch.testing.assert_close(out, conv(x))
    everything = torch.compile(conv, fullgraph=True, dynamic=True)
    with torch.no_grad():
        for batch in (2, 3):
            x = torch.randn(batch, 9 + batch, 10 + 2 * batch, 3)
            torch.testing.assert_close(everything(x), conv(x))


ALL_IDS = [info.cls.__name__ for info in REGISTRY]


@pytest.mark.parametrize("info", REGISTRY, ids=ALL_IDS)
def test_state_dict_keys_depend_on_the_architecture_only(info):
    """The same layer built twice in one process (default names `x` and `x_1`) has the same
    `state_dict` keys, each ending in its Keras weight name (after the sub-layer's key, as
    `cell.kernel`), and loads the other's."""
    first, second = _built(info)[1], _built(info)[1]
    assert first.name != second.name
    assert list(first.state_dict()) == list(second.state_dict())
    assert [key.rsplit(".", 1)[-1] for key in first.state_dict()] == [w.name for w in first.weights]
    second.load_state_dict(first.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(first.weights, second.weights))


ACTIVATED = [info for info in REGISTRY if "activation" in inspect.signature(info.cls.__init__).parameters]


@pytest.mark.parametrize("info", ACTIVATED, ids=[info.cls.__name__ for info in ACTIVATED])
def test_a_callable_activation_works_everywhere_but_get_config(info):
    case = _first_case(info)
    kwargs = {**case.kwargs, "activation": lambda x: torch.relu(x) * 2}
    layer = case.layer(**kwargs)
    shapes = map_structure(lambda spec: spec.shape, case.inputs)
    layer.build_from_config({"input_shape": map_structure(list, shapes)})
    assert "config not serialisable" in repr(layer)
    rng = np.random.default_rng(0)
    inputs = map_structure(lambda spec: rng.standard_normal(spec.shape).astype(np.float32) if spec.is_float
                           else rng.integers(spec.low, spec.high, spec.shape).astype(spec.dtype), case.inputs)
    arguments = {k: map_structure(lambda v: torch.from_numpy(v) if isinstance(v, np.ndarray) else v, v)
                 for k, v in info.driver.arguments(layer, case, inputs, rng).items() if k != "training"}
    outputs = layer(map_structure(torch.from_numpy, inputs), **arguments)  # the call arguments its driver gives (a cell's states)
    assert _flat_shapes(layer.compute_output_shape(shapes)) == [tuple(o.shape) for o in _leaves(outputs)]
    with pytest.raises(ArgumentError, match=r"`get_config` can only write built-in activations.*Received: activation='<lambda>'"):
        layer.get_config()

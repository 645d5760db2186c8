"""Merging layers: what the conformance cases do not cover. Functional forms, shapes of
broadcasts and of Dot, configuration round trips, the errors of list inputs (an `ErrorCase`
takes one tensor), masks in the call and propagated, torch.compile. Expected values come
from numpy or from Keras's definitions, never from xlayers' own output."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import xlayers
from xlayers import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError
from xlayers.layers import merging

ELEMENTWISE = [
    (Add, lambda xs: sum(xs[1:], xs[0])),
    (Subtract, lambda xs: xs[0] - xs[1]),
    (Multiply, lambda xs: np.prod(np.stack(np.broadcast_arrays(*xs)), axis=0)),
    (Average, lambda xs: sum(xs[1:], xs[0]) / len(xs)),
    (Maximum, lambda xs: np.maximum.reduce(np.broadcast_arrays(*xs))),
    (Minimum, lambda xs: np.minimum.reduce(np.broadcast_arrays(*xs))),
]


def _arrays(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float64) for s in shapes]


def _torch(arrays):
    return [torch.from_numpy(a) for a in arrays]


@pytest.mark.parametrize("cls, reference", ELEMENTWISE, ids=[c.__name__ for c, _ in ELEMENTWISE])
def test_elementwise_layers_and_their_functional_forms_compute_numpys_result(cls, reference):
    count = 2 if cls is Subtract else 3
    xs = _arrays(*[(3, 4, 5)] * count)
    expected = reference(xs)
    np.testing.assert_allclose(cls()(_torch(xs)).numpy(), expected, rtol=1e-12)
    functional = getattr(merging, cls.__name__.lower())
    assert getattr(xlayers, cls.__name__.lower()) is functional and getattr(xlayers.layers, cls.__name__.lower()) is functional
    np.testing.assert_allclose(functional(_torch(xs), name="named").numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("cls, reference", ELEMENTWISE, ids=[c.__name__ for c, _ in ELEMENTWISE])
def test_lower_rank_inputs_get_axes_after_the_batch_axis(cls, reference):
    # Keras expands (batch, 5) to (batch, 1, 5) (numpy would align it with the last axes anyway,
    # but (batch, 4) against (batch, 4, 5) shows the difference: numpy cannot broadcast it)
    a, b = _arrays((3, 4, 5), (3, 5))
    expected = reference([a, b[:, None, :]])
    out = cls()(_torch([a, b]))
    assert tuple(out.shape) == (3, 4, 5)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    c, d = _arrays((3, 4, 1, 6), (3, 6))  # two axes of size 1 inserted
    np.testing.assert_allclose(cls()(_torch([c, d])).numpy(), reference([c, d[:, None, None, :]]), rtol=1e-12)


def test_output_shapes_follow_kerass_broadcasting_rule():
    assert Add().compute_output_shape([(None, 5, 1), (None, 1, 7)]) == (None, 5, 7)
    assert Add().compute_output_shape([(2, 5, 7), (None, 7)]) == (2, 5, 7)
    assert Add().compute_output_shape([(2, 5, None), (2, 5, 7)]) == (2, 5, None)
    assert Add().compute_output_shape([(2, 3)]) == (2, 3)
    assert Concatenate(axis=1).compute_output_shape([(2, 3, 4), (2, 5, 4), (2, 1, 4)]) == (2, 9, 4)
    assert Concatenate().compute_output_shape([(None, 3, 4), (None, 3, None)]) == (None, 3, None)
    assert Concatenate(axis=0).compute_output_shape([(2, 3), (4, 3)]) == (6, 3)
    # Dot: the first input's other axes, then the second's except the batch axis; (batch, 1) at least
    assert Dot(axes=(1, 2)).compute_output_shape([(2, 3, 5), (2, 10, 3)]) == (2, 5, 10)
    assert Dot(axes=-1).compute_output_shape([(2, 4), (2, 4)]) == (2, 1)
    assert Dot(axes=(-1, 1)).compute_output_shape([(2, 6, 7, 4), (2, 4)]) == (2, 6, 7)
    assert Dot(axes=[1, 2]).compute_output_shape([(None, 5), (None, 3, 5)]) == (None, 3)


def test_dot_is_kerass_batch_dot():
    x, y = _arrays((3, 2, 4, 5), (3, 6, 5))
    out = Dot(axes=(3, 2))(_torch([x, y])).numpy()
    np.testing.assert_allclose(out, np.einsum("bijk,bmk->bijm", x, y), rtol=1e-12)
    # axes=(1, 2): x (b, 5, 4), y (b, 3, 5) -> (b, 4, 3), Keras's docstring example
    x, y = _arrays((2, 5, 4), (2, 3, 5))
    np.testing.assert_allclose(Dot(axes=(1, 2))(_torch([x, y])).numpy(), np.einsum("bki,bjk->bij", x, y), rtol=1e-12)
    x, y = _arrays((3, 5), (3, 5))
    np.testing.assert_allclose(xlayers.dot(_torch([x, y]), axes=1).numpy(), (x * y).sum(-1, keepdims=True), rtol=1e-12)


def test_dot_normalize_is_the_cosine_similarity_with_kerass_epsilon():
    x, y = _arrays((3, 5, 4), (3, 5, 6))

    def unit(a):
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    out = Dot(axes=1, normalize=True)(_torch([x, y])).numpy()
    np.testing.assert_allclose(out, np.einsum("bki,bkj->bij", unit(x), unit(y)), rtol=1e-12)
    assert np.all(np.abs(out) <= 1 + 1e-12)
    # a zero vector: Keras caps the inverse norm at 1 / epsilon (1e7), so the product is 0, not nan
    zero = torch.zeros(1, 3, dtype=torch.float64)
    assert Dot(axes=1, normalize=True)([zero, torch.ones(1, 3, dtype=torch.float64)]).tolist() == [[0.0]]
    assert merging.EPSILON == 1e-7


def test_single_input_is_allowed_as_in_keras_3():
    x = torch.randn(2, 3)
    assert torch.equal(Add()([x]), x) and torch.equal(Average()([x]), x) and torch.equal(Concatenate()([x]), x)


def test_a_built_layer_takes_other_batch_sizes_and_other_broadcastable_shapes():
    layer = Add()
    layer([torch.randn(2, 4, 5), torch.randn(2, 4, 5)])
    assert layer([torch.randn(7, 4, 5), torch.randn(7, 4, 5)]).shape == (7, 4, 5)
    assert layer([torch.randn(7, 1, 5), torch.randn(7, 4, 1)]).shape == (7, 4, 5)
    with pytest.raises(InputShapeError, match=r"^`Add` layer 'add': inputs must broadcast.*Received: input shapes=\[\(7, 3, 5\), \(7, 4, 5\)\]\.$"):
        layer([torch.randn(7, 3, 5), torch.randn(7, 4, 5)])
    with pytest.raises(InputShapeError, match=r"^`Add` layer 'add': cannot merge inputs with different batch sizes\. Received: input shapes=\[\(2, 4, 5\), \(3, 4, 5\)\]\.$"):
        layer([torch.randn(2, 4, 5), torch.randn(3, 4, 5)])
    with pytest.raises(InputShapeError, match=r"^`Add` layer 'add': expected 2 inputs\. Received: 3 inputs\.$"):
        layer([torch.randn(2, 4, 5)] * 3)
    with pytest.raises(InputShapeError, match=r"^`Add` layer 'add': expected an input of rank 3\. Received: input shape=\(2, 5\)\.$"):
        layer([torch.randn(2, 4, 5), torch.randn(2, 5)])


def test_list_input_errors_name_the_layer_and_the_shapes():
    cases = [
        (Subtract(), [(2, 3)] * 3, InputShapeError,
         r"^`Subtract` layer 'subtract': expected a list of exactly 2 inputs\. Received: 3 inputs with shapes \[\(2, 3\), \(2, 3\), \(2, 3\)\]\.$"),
        (Dot(axes=1), [(2, 3)], InputShapeError, r"^`Dot` layer 'dot': expected a list of exactly 2 inputs\. Received: 1 input with shapes \[\(2, 3\)\]\.$"),
        (Add(), [(2, 3), (2, 4)], InputShapeError, r"^`Add` layer 'add': inputs must broadcast.*Received: input shapes=\[\(2, 3\), \(2, 4\)\]\.$"),
        (Add(), [(2, 3, 4), (2, 3)], InputShapeError, r"inputs must broadcast"),  # (2, 1, 3) against (2, 3, 4)
        (Multiply(), [(2, 3), (5, 3)], InputShapeError, r"^`Multiply` layer 'multiply': cannot merge inputs with different batch sizes"),
        (Concatenate(axis=1), [(2, 3, 4), (2, 3, 5)], InputShapeError,
         r"^`Concatenate` layer 'concatenate': expected inputs with equal sizes except along axis 1\. Received: input shapes=\[\(2, 3, 4\), \(2, 3, 5\)\]\.$"),
        (Concatenate(), [(2, 3, 4), (2, 4)], InputShapeError, r"^`Concatenate` layer 'concatenate_1': expected inputs of one rank"),
        (Concatenate(axis=3), [(2, 3, 4), (2, 3, 4)], ArgumentError,
         r"^`Concatenate` layer 'concatenate_2': `axis` must be in \[-3, 3\) for inputs of rank 3\. Received: axis=3\.$"),
        (Dot(axes=(1, 2)), [(2, 3, 5), (2, 4, 4)], InputShapeError,
         (r"^`Dot` layer 'dot_1': expected equal sizes along the dot axes: 3 \(axis 1 of the first input\) != 4 \(axis 2 of the second\)\. "
          r"Received: input shapes=\[\(2, 3, 5\), \(2, 4, 4\)\]\.$")),
        (Dot(axes=-3), [(2, 3, 5), (2, 3, 5)], ArgumentError, r"^`Dot` layer 'dot_2': `axes` cannot include the batch axis 0\. Received: axes=-3 for input"),
        (Dot(axes=3), [(2, 3, 5), (2, 3, 5)], ArgumentError, r"^`Dot` layer 'dot_3': `axes` must name an axis of each input \(rank 3 here\)\. Received: axes=3\.$"),
        (Dot(axes=1), [(2, 3), (2,)], InputShapeError, r"^`Dot` layer 'dot_4': expected 2 inputs of rank >= 2\. Received: input shapes=\[\(2, 3\), \(2,\)\]\.$"),
        (Dot(axes=1), [(2, 3), (4, 3)], InputShapeError, r"^`Dot` layer 'dot_5': cannot take the dot product of inputs with different batch sizes"),
    ]
    for layer, shapes, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            layer([torch.randn(*s) for s in shapes])
    with pytest.raises(InputShapeError, match=r"^`Add` layer 'add_2': expected a list of inputs \(a merge layer merges several tensors\)\. Received: input shape=\{"):
        Add()({"a": torch.randn(2, 3), "b": torch.randn(2, 3)})
    with pytest.raises(InputShapeError, match=r"^`Concatenate` layer 'concatenate_3': expected inputs of one rank"):
        Concatenate().compute_output_shape([(2, 3), (2, 3, 4)])


def test_configs_round_trip_through_json():
    layers = [Add(name="a"), Subtract(), Multiply(trainable=False), Average(), Maximum(), Minimum(), Concatenate(axis=1),
              Dot(axes=(1, 2), normalize=True), Dot(axes=[2, 1]), Dot(axes=-1)]
    for layer in layers:
        config = json.loads(json.dumps(layer.get_config()))
        clone = type(layer).from_config(config)
        assert clone.get_config() == json.loads(json.dumps(layer.get_config())) or clone.get_config() == layer.get_config()
    assert Concatenate(axis=1).get_config()["axis"] == 1 and Concatenate().get_config()["axis"] == -1
    config = Dot(axes=(1, 2), normalize=True).get_config()
    assert config["axes"] == (1, 2) and config["normalize"] is True
    assert Dot(axes=np.int64(2)).axes == 2 and type(Dot(axes=np.int64(2)).axes) is int
    assert "axis=1" in repr(Concatenate(axis=1)) and "normalize=True" in repr(Dot(axes=1, normalize=True))
    assert set(Add().get_config()) == {"name", "trainable", "dtype"}


def test_masks_propagate_as_kerass_or_and_none_unless_every_input_has_one():
    x = [torch.randn(2, 4, 3), torch.randn(2, 4, 3)]
    a = torch.tensor([[True, True, False, False], [True, False, True, False]])
    b = torch.tensor([[True, False, True, False], [False, False, True, True]])
    for cls in (Add, Subtract, Multiply, Average, Maximum, Minimum):
        assert cls().compute_mask(x, [a, b]).tolist() == (a | b).tolist()
        assert cls().compute_mask(x, [a, None]) is None and cls().compute_mask(x, None) is None
    assert Dot(axes=2).compute_mask(x, [a, b]) is None
    # Concatenate: ones for an input without a mask, then any over the last axis
    assert Concatenate(axis=1).compute_mask(x, [a, None]).tolist() == torch.cat([a, torch.ones_like(a)], 1).tolist()
    assert Concatenate(axis=1).compute_mask(x, [a, b]).tolist() == torch.cat([a, b], 1).tolist()
    assert Concatenate().compute_mask(x, [a, b]).tolist() == (a | b).tolist()
    assert Concatenate().compute_mask(x, [a, None]).all() and Concatenate().compute_mask(x, [None, None]) is None
    with pytest.raises(ArgumentError, match=r"^`Add` layer 'add_\d+': `mask` must be a list with one mask \(or None\) per input, 2 here\. Received: 1 masks\.$"):
        Add()(x, mask=[a])
    with pytest.raises(ArgumentTypeError, match=r"`mask` must be a list with one mask \(or None\) per input, 2 here\. Received: mask of type Tensor\.$"):
        Add()(x, mask=a)
    with pytest.raises(ArgumentTypeError, match=r"`mask` must hold one boolean tensor \(or None\) per input\. Received: a mask of type Tensor and dtype torch\.int64\."):
        Add()(x, mask=[a.long(), b])


def test_masks_in_the_call_as_keras_applies_them():
    x = np.array([[[1.0], [2.0], [3.0]]])
    y = np.array([[[5.0], [-1.0], [4.0]]])
    mx = np.array([[True, False, False]])
    my = np.array([[False, True, False]])
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    # Multiply: a masked entry counts as 1; where every mask is off the output is 0
    assert Multiply()([tx, ty], mask=[torch.from_numpy(mx), torch.from_numpy(my)]).flatten().tolist() == [1.0, -1.0, 0.0]
    assert Multiply()([tx, ty], mask=[torch.from_numpy(mx), None]).flatten().tolist() == [5.0, -1.0, 4.0]
    # Maximum/Minimum: a masked entry takes the running result's value (the first input's where all are masked)
    assert Maximum()([tx, ty], mask=[torch.from_numpy(mx), torch.from_numpy(my)]).flatten().tolist() == [1.0, -1.0, 3.0]
    assert Minimum()([tx, ty], mask=[None, torch.from_numpy(my)]).flatten().tolist() == [1.0, -1.0, 3.0]
    # the elementwise sums ignore masks, as Keras's do
    assert Add()([tx, ty], mask=[torch.from_numpy(mx), torch.from_numpy(my)]).flatten().tolist() == [6.0, 1.0, 7.0]


def test_merging_layers_compile_with_fullgraph_and_take_gradients():
    for layer, shapes in [(Add(), [(2, 4, 5), (2, 5)]), (Concatenate(axis=1), [(2, 3, 4), (2, 2, 4)]),
                          (Dot(axes=(1, 2), normalize=True), [(2, 3, 5), (2, 4, 3)]), (Maximum(), [(2, 3)] * 3)]:
        inputs = [torch.randn(*s, requires_grad=True) for s in shapes]
        out = layer(inputs)
        out.sum().backward()
        assert all(x.grad is not None for x in inputs)
        torch._dynamo.reset()
        compiled = torch.compile(layer, fullgraph=True, backend="eager")
        fresh = [torch.randn(*s) for s in shapes]
        torch.testing.assert_close(compiled(fresh), layer(fresh))


def test_no_weights_and_public_names():
    layer = Add()
    layer([torch.randn(2, 3), torch.randn(2, 3)])
    assert layer.weights == [] and layer.count_params() == 0 and layer.get_build_config() == {"input_shape": [[2, 3], [2, 3]]}
    clone = Add.from_config(layer.get_config())
    clone.build_from_config(layer.get_build_config())
    assert clone.built and clone.input_spec[1].ndim == 2
    for name in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot"):
        assert getattr(xlayers, name) is getattr(merging, name) and name in xlayers.__all__
    assert "Merge" not in xlayers.__all__

"""LAYOUT declarations: parameters equal the declaration, views are permutations, gate
reorders and round trips between Keras, torch and ONNX layouts are bit-exact."""

import itertools

import pytest
import torch

import xlayers
from xlayers.layer import Layer, _LAYER_CLASSES
from xlayers.layout import Weight

LAYOUT_CLASSES = sorted((c for c in _LAYER_CLASSES.values() if c.LAYOUT), key=lambda c: c.__name__)
FRAMEWORKS = ("keras", "torch", "onnx")


@pytest.mark.parametrize("cls", LAYOUT_CLASSES, ids=lambda c: c.__name__)
def test_round_trips_are_bit_exact(cls):
    for weight in cls.LAYOUT:
        sizes = {axis: 2 + i for i, axis in enumerate(weight.axes)}
        value = torch.randn(weight.shape(sizes), dtype=torch.float64)
        for source, target in itertools.permutations(FRAMEWORKS, 2):
            there = weight.convert(weight.convert(value, "keras", source), source, target)
            assert tuple(there.shape) == weight.shape(sizes, target)
            back = weight.convert(there, target, "keras")
            assert torch.equal(back, value), (cls.__name__, weight.name, source, target)
        assert weight.sizes_from(weight.shape(sizes)) == {a: s for a, s in sizes.items() if a != "gate"}


def test_gate_reorder_moves_whole_gate_blocks():
    weight = Weight("kernel", ("in", "gate", "units"), torch=("gate", "units", "in"), gates="ifco", torch_gates="ifgo", onnx_gates="iofc")
    units, features = 3, 2
    keras_value = torch.cat([torch.full((features, units), float(g)) for g in range(4)], dim=1)  # block g holds g
    onnx_value = weight.convert(keras_value, "keras", "onnx")
    assert onnx_value.shape == (4 * units, features)
    assert [onnx_value[g * units, 0].item() for g in range(4)] == [0.0, 3.0, 1.0, 2.0]  # i, o, f, c
    torch_value = weight.convert(keras_value, "keras", "torch")
    assert torch.equal(torch_value, keras_value.T)  # torch's i, f, g, o is Keras's i, f, c, o


def test_declaration_errors():
    with pytest.raises(ValueError, match="not a permutation"):
        Weight("kernel", ("in", "units"), torch=("units", "out"))
    with pytest.raises(ValueError, match="gate order"):
        Weight("kernel", ("in", "gate", "units"), gates="ifco", torch_gates="ifgx")


def test_describe_names_axes():
    weight = Weight("kernel", ("in", "gate", "units"), gates="ifco")
    assert weight.describe({"in": 5, "units": 3}) == "(in=5, 4*units=12)"


def test_walk_yields_keras_paths_in_keras_order_through_containers():
    lstm = xlayers.LSTM(3, name="rnn")
    model = xlayers.Sequential([xlayers.Dense(4, name="d"), lstm], name="seq")
    model(torch.randn(2, 5, 6))
    entries = list(model.walk_weights())
    assert [e.path for e in entries] == [
        "layers/dense/kernel", "layers/dense/bias", "layers/lstm/cell/kernel", "layers/lstm/cell/recurrent_kernel", "layers/lstm/cell/bias",
    ]
    assert [e.parameter for e in entries] == model.weights
    assert entries[2].layer is lstm and entries[2].declaration is lstm._declared["kernel"]


def test_walk_names_weights_made_by_add_weight():
    class Scale(xlayers.Layer):
        def build(self, input_shape):
            self.scale = self.add_weight((input_shape[-1],), initializer="ones", name="scale")

        def call(self, inputs):
            return inputs * self.scale

    layer = Scale()
    layer(torch.randn(2, 3))
    (entry,) = layer.walk_weights()
    assert (entry.path, entry.declaration, tuple(entry.parameter.shape)) == ("scale", None, (3,))


@pytest.mark.parametrize("cls", LAYOUT_CLASSES, ids=lambda c: c.__name__)
def test_docstring_weights_section_matches_the_declaration(cls):
    """Each declared weight appears in the docstring's `Weights:` section with its Keras shape
    and, where torch's order differs, its torch view, both as `LAYOUT` derives them."""
    doc = " ".join(cls.__doc__.split())
    section = doc[doc.index("Weights:"):]
    for weight in cls.LAYOUT:
        assert f"{weight.name}: ``{weight.describe()}``" in section, (cls.__name__, weight.name, weight.describe())
        if weight.order("torch") != weight.axes:
            assert f"torch view ``{weight.describe(framework='torch')}``" in section, (cls.__name__, weight.name)

"""``keras.applications`` models and their private layers (LayerScale, CustomScaleLayer) port
and match Keras: files written by Keras 3.15 and by tf_keras 2.21, ported with ``xlayers
port``, compared with the writer's own outputs under the tolerance policy, and written back to
``.keras`` with every weight bit-exact (`tools/port_applications.py` does the same for every
architecture and prints the README's table)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import xlayers
from xlayers.errors import InputShapeError

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("port_applications", ROOT / "tools" / "port_applications.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _writer(name: str):
    pytest.importorskip("tensorflow", reason="needs TensorFlow to write the Keras files")
    return pytest.importorskip(name, reason=f"needs {name} to write its files")


# -- the layers, without Keras ---------------------------------------------------------------


def test_layer_scale_multiplies_each_channel_by_its_variable():
    layer = xlayers.LayerScale(1e-6, 3)
    x = torch.randn(2, 4, 5, 3)
    assert torch.equal(layer(x), x * 1e-6)
    with torch.no_grad():
        layer.variable.copy_(torch.tensor([0.5, -2.0, 3.0]))
    assert torch.equal(layer(x), x * torch.tensor([0.5, -2.0, 3.0]))
    assert [e.path for e in layer.walk_weights()] == ["variable"]  # Keras's unnamed weight
    again = xlayers.LayerScale.from_config(layer.get_config())
    assert (again.init_values, again.projection_dim) == (1e-6, 3)
    with pytest.raises(InputShapeError, match=r"`LayerScale` layer '.*': the input's last axis must have `projection_dim` \(3\)"):
        xlayers.LayerScale(0.1, 3)(torch.randn(2, 4))


def test_custom_scale_layer_adds_the_scaled_residual():
    a, b = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    assert torch.equal(xlayers.CustomScaleLayer(0.17)([a, b]), a + b * 0.17)
    assert xlayers.CustomScaleLayer.from_config(xlayers.CustomScaleLayer(0.17).get_config()).scale == 0.17
    with pytest.raises(InputShapeError, match=r"`CustomScaleLayer` layer '.*': expected a list of two inputs"):
        xlayers.CustomScaleLayer(0.5)(a)


def test_tf_keras_custom_names_of_the_application_layers_are_recognised():
    """tf_keras's `.h5` files name the private layers `Custom>CustomScaleLayer`; only those lose the
    package: a user's registered layer keeps it (and needs `custom_objects`)."""
    from xlayers.keras2 import normalize

    def entry(class_name, name, config, source):
        return {"class_name": class_name, "name": name, "config": {"name": name, **config}, "inbound_nodes": [[[source, 0, 0, {}]]]}

    config = {"class_name": "Functional", "config": {"name": "m", "layers": [
        {"class_name": "InputLayer", "name": "x", "config": {"name": "x", "batch_input_shape": [None, 4]}, "inbound_nodes": []},
        entry("Custom>CustomScaleLayer", "s", {"scale": 0.5}, "x"),
        entry("Custom>Dense", "d", {"units": 2}, "s"),
    ], "input_layers": [["x", 0, 0]], "output_layers": [["d", 0, 0]]}}
    layers = {e["name"]: e for e in normalize(config)["config"]["layers"]}
    assert layers["s"]["class_name"] == "CustomScaleLayer" and layers["d"]["class_name"] == "Custom>Dense"


# -- Keras files ---------------------------------------------------------------------------------


def _private_layers_model(writer: str):
    """A small functional model with ConvNeXt's LayerScale (in a residual) and
    InceptionResNetV2's CustomScaleLayer, built by ``writer``."""
    k = _writer(writer)
    package = "keras.src" if writer == "keras" else "tf_keras.src"
    convnext = importlib.import_module(f"{package}.applications.convnext")
    inception = importlib.import_module(f"{package}.applications.inception_resnet_v2")
    inputs = k.Input((9, 7, 3))
    x = k.layers.Conv2D(6, 3, padding="same", name="stem")(inputs)
    y = k.layers.LayerNormalization(epsilon=1e-6, name="ln")(k.layers.DepthwiseConv2D(3, padding="same", name="dw")(x))
    y = convnext.LayerScale(1e-6, 6, name="layer_scale")(k.layers.Dense(6, name="pw")(y))
    x = k.layers.Add(name="residual")([x, y])
    z = k.layers.BatchNormalization(name="bn")(k.layers.Conv2D(6, 1, name="branch")(x))
    x = inception.CustomScaleLayer(0.17, name="custom_scale")([x, z])
    outputs = k.layers.Dense(4, name="head")(k.layers.GlobalAveragePooling2D(name="gap")(x))
    return k.Model(inputs, outputs, name="private_layers")


@pytest.mark.parametrize("writer", ["keras", "tf_keras"])
def test_layer_scale_and_custom_scale_layer_files_port_exactly(writer, tmp_path):
    tool = _tool()
    model = _private_layers_model(writer)
    tool.randomize(model, seed=5)
    result = tool.check(model, writer, ("keras", "h5"), tmp_path)
    for fmt, entry in result["files"].items():  # end to end, layer by layer, and the round trip
        assert entry["end_to_end_passed"] and entry["passed"] and entry["layerwise_passed"], (writer, fmt, entry)
        assert entry["round_trip"] == "exact" and entry["layers_compared"] == 11, (writer, fmt, entry)
        assert 0 < entry["noise_ratio"] <= 4, (writer, fmt, entry)
    assert result["output_std"] > 0.05  # the logits are not degenerate


# (EfficientNet needs 64x64 here: at 32x32 its last stages are 1x1, and BatchNormalization statistics
# measured on two values per channel make the random network too ill-conditioned to compare)
@pytest.mark.parametrize("name, writer, size", [("EfficientNetB0", "keras", 64), ("MobileNetV3Small", "tf_keras", 32)])
def test_an_application_ports_and_matches_its_writer(name, writer, size, tmp_path):
    tool = _tool()
    _writer(writer)
    result = tool.check(tool.build(writer, name, size), writer, ("keras", "h5"), tmp_path)
    for fmt, entry in result["files"].items():
        # the logits within the writer's own float32 rounding (measured against the writer in
        # float64), every layer fed the writer's own inputs within one operation's bound, every
        # weight written back bit-exact
        assert "refused" not in entry and entry["passed"] and entry["round_trip"] == "exact", (name, writer, fmt, entry)
        assert 0 < entry["noise_ratio"] <= 4 and entry["layerwise_passed"], (name, writer, fmt, entry)
        assert entry["layers_compared"] > 100
    assert result["output_std"] > 0.05
    # `xlayers port`'s verification: where the end-to-end difference exceeds one operation's bound,
    # it measures both frameworks against Keras in float64 and says so
    from xlayers.port import port

    said: list[str] = []
    assert port(tmp_path / f"{writer}.keras", tmp_path / "again.keras", print_fn=said.append), said
    outside = any("OUTSIDE the bound of one operation" in line for line in said)  # on port's own random batch
    assert outside == any("within Keras's own rounding" in line for line in said), said


@pytest.mark.parametrize("name, writer, size", [("EfficientNetB0", "keras", 64), ("MobileNetV3Small", "tf_keras", 32)])
def test_the_whole_model_rule_catches_a_small_fault(name, writer, size, tmp_path):
    """The rule that replaces one operation's bound end to end can fail: every BatchNormalization's
    moving variance 1e-4 too large (as a misread epsilon would make it) is caught, while the same
    model unchanged passes."""
    tool = _tool()
    k = _writer(writer)
    from xlayers.port import verify_against_keras

    model = tool.build(writer, name, size)
    model.save(tmp_path / "m.keras")
    ported = xlayers.from_keras(tmp_path / "m.keras")
    feed = [tool.batch(model)]
    assert verify_against_keras(ported, k, model, feed, always=True).passed
    with torch.no_grad():
        for norm in (m for m in ported.modules() if type(m).__name__ == "BatchNormalization"):
            norm.moving_variance.mul_(1 + 1e-4)
    verification = verify_against_keras(ported, k, model, feed)
    assert not verification.passed and verification.noise and verification.noise[0].ratio > 10, verification.lines()
    assert verification.layers is not None and verification.layers[0] > 1, verification.lines()


def test_a_changed_weight_breaks_the_round_trip(tmp_path):
    """The bit-exact check can fail: a round trip of a model whose weight changed is caught."""
    tool = _tool()
    model = _private_layers_model("keras")
    tool.randomize(model, seed=6)
    source = tmp_path / "m.keras"
    model.save(source)
    ported = xlayers.from_keras(source)
    with torch.no_grad():
        ported.get_layer("layer_scale").variable[0] += 2.0 ** -20
    xlayers.save_keras(ported, tmp_path / "back.keras")
    assert tool.round_trip(source, tmp_path / "back.keras") == "1/17 weights differ, e.g. layers/layer_scale/vars/0"

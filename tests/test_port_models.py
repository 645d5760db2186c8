"""Issue 12's acceptance models, ported through files: a text model (Embedding with
``mask_zero``, a Bidirectional LSTM, stacked GRU and LSTM) fed a batch padded on the right, on
the left and with holes; a transformer block (MultiHeadAttention, LayerNormalization, residuals
written ``x + y``); a model of two inputs and two outputs with a shared layer; and a user's own
layer mapped with ``custom_objects``. Each is built in Keras 3 and in tf_keras 2.21 with seeded
random weights, saved as ``.keras`` and ``.h5``, read by xlayers and compared with the Keras
model's own outputs; ported with ``xlayers port`` to ``.keras`` and ``.onnx``; and written back
with `save_keras` for Keras 3 to load, bit-exact."""

from __future__ import annotations

import functools
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch

import xlayers
from xlayers.port import port
from xlayers.saving import save_keras, weight_groups
from xlayers.tolerance import compare

FRAMEWORKS = ("keras3", "tf_keras")
MODELS = ("text", "transformer", "two_inputs", "custom")
FORMATS = (".keras", ".h5")
VOCABULARY, STEPS = 13, 8


def _module(framework: str) -> Any:
    if framework == "keras3":
        from conformance.keras_reference import keras

        return keras()
    return pytest.importorskip("tf_keras", reason="the Keras 2 files need tf_keras (tools/test.sh installs it)")


class Scale(xlayers.Layer):
    """The user's layer in xlayers: ``inputs * scale + offset``, one ``scale`` per feature (no
    ``compute_output_shape``: Keras traces it, and so does xlayers). Written back, it names the
    Keras class it mirrors, so Keras finds that."""

    KERAS_MODULE = "xlayers_tests"
    KERAS_REGISTERED_NAME = "xlayers_tests>Scale"

    def __init__(self, offset: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.offset = offset

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs * self.scale + self.offset

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "offset": self.offset}


@functools.cache
def _keras_scale(framework: str) -> type:
    """The same layer in Keras (or tf_keras), registered as Keras users register theirs."""
    K = _module(framework)

    @K.saving.register_keras_serializable(package="xlayers_tests")
    class Scale(K.layers.Layer):
        def __init__(self, offset=0.0, **kwargs):
            super().__init__(**kwargs)
            self.offset = offset

        def build(self, input_shape):
            self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")

        def call(self, inputs):
            return inputs * self.scale + self.offset

        def get_config(self):
            return {**super().get_config(), "offset": self.offset}

    return Scale


def _text(K: Any, framework: str, rng: np.random.Generator) -> tuple[Any, list[np.ndarray]]:
    ids = K.Input((STEPS,), dtype="int32", name="ids")
    h = K.layers.Embedding(VOCABULARY, 6, mask_zero=True, name="embed")(ids)
    h = K.layers.Bidirectional(K.layers.LSTM(5, return_sequences=True), name="bi")(h)
    h = K.layers.GRU(4, return_sequences=True, name="gru")(h)
    last = K.layers.LSTM(3, name="lstm")(h)
    model = K.Model(ids, [h, K.layers.Dense(2, name="head")(last)], name="text")
    tokens = rng.integers(1, VOCABULARY, (4, STEPS)).astype(np.int32)
    tokens[0, 5:] = 0  # padded on the right
    tokens[1, :3] = 0  # on the left
    tokens[2, [1, 4, 5]] = 0  # holes
    return model, [tokens]  # row 3 is whole


def _transformer(K: Any, framework: str, rng: np.random.Generator) -> tuple[Any, list[np.ndarray]]:
    x = K.Input((STEPS, 8), name="x")
    attended = K.layers.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(x, x)
    h = K.layers.LayerNormalization(epsilon=1e-6, name="ln1")(x + attended)
    feed = K.layers.Dense(8, name="ff2")(K.layers.Dense(12, activation="relu", name="ff1")(h))
    model = K.Model(x, K.layers.LayerNormalization(epsilon=1e-6, name="ln2")(h + feed), name="block")
    return model, [rng.standard_normal((3, STEPS, 8)).astype(np.float32)]


def _two_inputs(K: Any, framework: str, rng: np.random.Generator) -> tuple[Any, list[np.ndarray]]:
    a, b = K.Input((6,), name="a"), K.Input((7,), name="b")
    shared = K.layers.Dense(5, activation="tanh", name="shared")
    ha, hb = shared(a), shared(K.layers.Dense(6, name="project")(b))
    merged = K.layers.Concatenate(name="cat")([ha, hb])
    outputs = [K.layers.Dense(3, activation="softmax", name="label")(merged),
               K.layers.Dense(1, name="score")(K.layers.Subtract(name="diff")([ha, hb]))]
    model = K.Model([a, b], outputs, name="pair")
    return model, [rng.standard_normal((3, 6)).astype(np.float32), rng.standard_normal((3, 7)).astype(np.float32)]


def _custom(K: Any, framework: str, rng: np.random.Generator) -> tuple[Any, list[np.ndarray]]:
    x = K.Input((7,), name="x")
    h = _keras_scale(framework)(offset=0.25, name="scale")(K.layers.Dense(5, name="dense")(x))
    model = K.Model(x, K.layers.Dense(2, name="out")(h), name="custom")
    return model, [rng.standard_normal((3, 7)).astype(np.float32)]


BUILDERS: dict[str, Callable[..., tuple[Any, list[np.ndarray]]]] = {
    "text": _text, "transformer": _transformer, "two_inputs": _two_inputs, "custom": _custom}
CUSTOM_OBJECTS = {"Scale": Scale}


class Built(NamedTuple):
    keras_model: Any
    inputs: list[np.ndarray]
    outputs: list[np.ndarray]  # the Keras model's own, in inference mode
    weights: list[np.ndarray]  # its get_weights()
    paths: dict[str, Path]  # by format


def _as_list(outputs: Any) -> list[Any]:
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _feed(inputs: list[Any]) -> Any:
    return inputs if len(inputs) > 1 else inputs[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Callable[[str, str], Built]:
    """Each (framework, model) built once, with seeded random weights different for every
    variable, and saved in both formats."""
    folder = tmp_path_factory.mktemp("models")

    @functools.cache
    def build(framework: str, name: str) -> Built:
        K = _module(framework)
        rng = np.random.default_rng(MODELS.index(name) + 10 * FRAMEWORKS.index(framework))
        model, inputs = BUILDERS[name](K, framework, rng)
        model.set_weights([rng.standard_normal(w.shape).astype(w.dtype) * 0.5 for w in model.get_weights()])
        outputs = [np.asarray(y) for y in _as_list(model(_feed(inputs), training=False))]
        paths = {}
        for suffix in FORMATS:
            paths[suffix] = folder / f"{framework}-{name}{suffix}"
            model.save(paths[suffix])
        return Built(model, inputs, outputs, model.get_weights(), paths)

    return build


def _read(path: Path) -> Any:
    return xlayers.from_keras(path, custom_objects=CUSTOM_OBJECTS)


def _run(model: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
    with torch.no_grad():
        return [y.numpy() for y in _as_list(model(_feed([torch.from_numpy(x) for x in inputs])))]


def _assert_outputs(ours: list[np.ndarray], theirs: list[np.ndarray], what: str) -> None:
    assert len(ours) == len(theirs), f"{what}: {len(ours)} outputs, Keras gives {len(theirs)}"
    for index, (a, b) in enumerate(zip(ours, theirs)):
        result = compare(a, b, "float32", "cpu")
        assert result.passed, result.describe(f"{what} output {index}")


def _keras_file_weights(path: Path) -> dict[str, np.ndarray]:
    """Every dataset of a ``.keras`` file's weights, by its HDF5 path (``layers/gru/cell/vars/0``)."""
    import h5py

    found: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as h5:
        h5.visititems(lambda name, item: found.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return found


def _layer_names(keras_model: Any) -> list[str]:
    """The names of a Keras model's layers; tf_keras's op layers (``tf.__operators__.add``) are
    operations in Keras 3 and in xlayers."""
    return [layer.name for layer in keras_model.layers if type(layer).__name__ not in ("TFOpLambda", "SlicingOpLambda")]


CASES = [(f, n, s) for f in FRAMEWORKS for n in MODELS for s in FORMATS]


@pytest.mark.parametrize(("framework", "name", "suffix"), CASES)
def test_a_file_gives_the_keras_models_outputs_names_and_weights(built, framework, name, suffix):
    model_ = built(framework, name)
    model = _read(model_.paths[suffix])
    assert not model.training and not any(m.training for m in model.modules())
    assert [layer.name for layer in model.layers] == _layer_names(model_.keras_model)
    ours = model.get_weights()
    assert len(ours) == len(model_.weights)
    assert all(np.array_equal(a, b) for a, b in zip(ours, model_.weights)), "weights differ from Keras's get_weights()"
    if suffix == ".keras":  # each state_dict entry is one of the file's datasets, at its path, bit for bit
        stored = _keras_file_weights(model_.paths[suffix])
        if framework == "tf_keras":  # its private sub-layer names (`mha/_query_dense`) are Keras 3's `mha/query_dense`
            stored = {key.replace("/_", "/"): value for key, value in stored.items()}
        groups = weight_groups(model).items()
        by_path = {f"{group}/vars/{i}": e.parameter for group, entries in groups for i, e in enumerate(entries)}
        assert sorted(by_path) == sorted(stored)
        assert all(np.array_equal(p.detach().numpy(), stored[k]) for k, p in by_path.items())
        path_of = {p.data_ptr(): path for path, p in by_path.items()}
        state = model.state_dict()  # `layers/gru.kernel` is `layers/gru/cell/vars/0`
        assert sorted(path_of.get(t.data_ptr(), "?") for t in state.values()) == sorted(stored)
        assert all(path_of[t.data_ptr()].startswith(key.split(".")[0] + "/") for key, t in state.items())
    _assert_outputs(_run(model, model_.inputs), model_.outputs, f"{framework} {name}{suffix}")


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_written_back_keras_3_loads_it_with_the_same_weights_and_outputs(built, framework, name, tmp_path):
    """What xlayers writes loads in Keras 3.15, also for a model tf_keras wrote (Keras 3 cannot
    load most tf_keras files itself)."""
    model_ = built(framework, name)
    model = _read(model_.paths[".keras" if framework == "keras3" else ".h5"])
    save_keras(model, tmp_path / "back.keras")
    _keras_scale("keras3")  # registered, as importing the user's Keras code registers it
    twin = _module("keras3").saving.load_model(tmp_path / "back.keras", compile=False)
    assert [layer.name for layer in twin.layers] == _layer_names(model_.keras_model)
    assert all(np.array_equal(a, b) for a, b in zip(twin.get_weights(), model_.weights))
    assert len(twin.get_weights()) == len(model_.weights)
    _assert_outputs([np.asarray(y) for y in _as_list(twin(_feed(model_.inputs), training=False))], model_.outputs,
                    f"{framework} {name} written back, in Keras 3")


def _port(source: Path, target: Path) -> list[str]:
    """`xlayers port` from ``source`` to ``target``, verified against the Keras that wrote the
    file; what it printed."""
    printed: list[str] = []
    assert port(source, target, print_fn=printed.append), printed
    against_keras = [line for line in printed if line.startswith("verify: output")]
    assert against_keras and all("within tolerance" in line for line in against_keras), printed
    return printed


@pytest.mark.parametrize("name", ["transformer", "two_inputs"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_port_to_keras_gives_the_keras_outputs_in_keras_3(built, framework, name, tmp_path):
    model_ = built(framework, name)
    _port(model_.paths[".keras" if framework == "keras3" else ".h5"], tmp_path / "m.keras")
    twin = _module("keras3").saving.load_model(tmp_path / "m.keras", compile=False)
    _assert_outputs([np.asarray(y) for y in _as_list(twin(_feed(model_.inputs), training=False))], model_.outputs,
                    f"{framework} {name} ported to .keras")


@pytest.mark.parametrize("name", ["transformer", "two_inputs"])
def test_port_to_onnx_gives_the_keras_outputs_in_onnxruntime(built, name, tmp_path):
    import onnxruntime

    model_ = built("keras3", name)
    assert any("ONNX graph agrees with torch" in line for line in _port(model_.paths[".keras"], tmp_path / "m.onnx"))
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    feeds = {spec.name: x for spec, x in zip(session.get_inputs(), model_.inputs)}
    _assert_outputs(session.run(None, feeds), model_.outputs, f"{name} ported to .onnx")


def test_a_custom_layer_without_custom_objects_is_named(built):
    """tf_keras names a registered class `package>Name` in the `.h5`; without a mapping the
    reader names it rather than guessing."""
    with pytest.raises(xlayers.errors.ArgumentError, match=r"Received: class_name='xlayers_tests>Scale'"):
        xlayers.from_keras(built("tf_keras", "custom").paths[".h5"])


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_measure_of_the_verification_holds(built, framework, name):
    """What `xlayers port` measures when one operation's bound fails end to end, computed here
    every time: Keras rebuilt in float64 (masks, integer inputs, custom layers) and the
    whole-model rule; each layer fed Keras's own inputs runs too (a diagnosis: a masked layer is
    fed without its mask, so its share of the bound is not asserted)."""
    from xlayers.port import verify_against_keras

    model_ = built(framework, name)
    ported = _read(model_.paths[".keras"])
    verification = verify_against_keras(ported, _module(framework), model_.keras_model, model_.inputs, always=True)
    assert verification.passed and not verification.note, verification.lines()
    assert verification.noise and all(c.passed and c.noise > 0 for c in verification.noise), verification.lines()
    assert verification.layers is not None and verification.layers[2] > 0, verification.lines()

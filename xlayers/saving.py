"""Keras 3 ``.keras`` files and ``.weights.h5`` weights, read and written with zipfile, json and
h5py: no TensorFlow and no Keras.

A ``.keras`` file is a zip of ``config.json`` (the model's Keras serialization),
``metadata.json`` and ``model.weights.h5``, where each object's own variables are the datasets
``0, 1, ...`` of the group ``<path>/vars`` and ``<path>`` is the object's place in Keras's walk
(``layers/dense``, ``layers/lstm/cell``, ``layers/bidirectional/forward_layer/cell``). xlayers
models keep their weights at those same paths (`Layer.walk_weights`), so reading and writing
is a walk: each weight's group is its path's parent, its index its rank among the group's
weights in Keras's order (trainable first, then non-trainable, each in creation order).
Nothing is unpickled or executed; files are written to a temporary file and renamed into place.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ArgumentError, ArgumentTypeError, FileFormatError, WeightNameError
from .files import publish
from .keras2 import is_keras2_config, normalize
from .layer import Layer, WeightEntry

__all__ = ["from_keras", "load_h5", "load_keras", "load_legacy_weights", "load_weights_h5", "save_keras", "save_weights_h5", "to_keras", "weight_groups"]

KERAS_VERSION = "3.15.1"  # the format written (Keras 3.15's `.keras`)


def weight_groups(model: Layer) -> dict[str, list[WeightEntry]]:
    """The model's weights by ``.keras`` group (``layers/dense``), each group in Keras's order:
    trainable weights first, then non-trainable, each in creation order (Keras's
    ``save_own_variables``); a weight shared by several paths appears once, at its first."""
    groups: dict[str, list[WeightEntry]] = {}
    seen: set[int] = set()
    for entry in model.walk_weights():
        if id(entry.parameter) in seen:
            continue
        seen.add(id(entry.parameter))
        group, _, _ = entry.path.rpartition("/")
        groups.setdefault(group, []).append(entry)
    for group, entries in groups.items():
        groups[group] = sorted(entries, key=lambda e: not _declared_trainable(e))
    return groups


def _declared_trainable(entry: WeightEntry) -> bool:
    if entry.declaration is not None:
        return entry.declaration.trainable
    name = entry.path.rsplit("/", 1)[-1]
    return entry.layer._weight_trainable.get(name, True)


def _vars(group: str) -> str:
    return f"{group}/vars" if group else "vars"


# -- weights ----------------------------------------------------------------------------------


def load_weights_h5(model: Layer, h5: Any) -> None:
    """Fill ``model``'s weights from an open Keras 3 weights file (``model.weights.h5`` or a
    ``.weights.h5``): every weight found and shape-checked first, then copied; a missing or
    extra variable, or a shape that differs, raises before anything changes."""
    values: list[tuple[torch.Tensor, np.ndarray]] = []
    groups = weight_groups(model)
    for group, entries in groups.items():
        node = h5.get(_vars(group))
        stored = sorted(node.keys(), key=int) if node is not None else []
        if len(stored) != len(entries):
            raise WeightNameError(
                f"{entries[0].layer._label}: the file's group `{_vars(group)}` holds {len(stored)} variables; the layer "
                f"has {len(entries)} ({', '.join(e.path for e in entries)})."
            )
        for entry, key in zip(entries, stored):
            array = _read_dataset(node[key], entry)
            entry.check(tuple(array.shape), where=f"{_vars(group)}/{key}")
            values.append((entry.parameter, array))
    extra = _extra_groups(h5, {_vars(g) for g in groups})
    if extra:
        raise WeightNameError(f"{model._label}: the file has weights the model does not: {extra[:5]}.")
    with torch.no_grad():
        for parameter, array in values:
            parameter.copy_(torch.from_numpy(np.ascontiguousarray(array)).to(parameter.dtype))


def _read_dataset(dataset: Any, entry: WeightEntry) -> np.ndarray:
    if dataset.dtype.kind == "V" and dataset.dtype.itemsize == 2:  # bfloat16, stored opaque ('|V2')
        bits = np.asarray(dataset[()]).view(np.uint16).astype(np.uint32) << 16
        return bits.view(np.float32)
    return np.asarray(dataset[()])


def _extra_groups(h5: Any, known: set[str]) -> list[str]:
    found: list[str] = []

    def visit(name: str, item: Any) -> None:
        if name.endswith("vars") and len(getattr(item, "keys", list)()) and name not in known \
                and not name.startswith("optimizer"):
            found.append(name)

    h5.visititems(visit)
    return found


def save_weights_h5(model: Layer, h5: Any) -> None:
    """Write ``model``'s weights into an open, empty HDF5 file in Keras 3's layout: a ``vars``
    group per layer (its ``@name`` attribute set), datasets ``0, 1, ...`` in Keras's order."""
    _layer_groups(model, h5, "")
    for group, entries in weight_groups(model).items():
        node = h5.require_group(_vars(group))
        for index, entry in enumerate(entries):
            value = entry.parameter.detach().cpu()
            if value.dtype == torch.bfloat16:
                array = value.view(torch.int16).numpy().view(np.dtype("V2"))
                dataset = node.create_dataset(str(index), data=array)
                dataset.attrs["dtype"] = "bfloat16"
            else:
                node.create_dataset(str(index), data=value.numpy())


def _layer_groups(layer: Layer, h5: Any, path: str) -> None:
    group = h5.require_group(_vars(path))
    group.attrs["name"] = layer.name
    for key, child in layer.named_children():
        if isinstance(child, Layer):
            _layer_groups(child, h5, f"{path}/{key}" if path else key)


def read_weights_file(model: Layer, path: str | os.PathLike) -> None:
    """`load_weights_h5` from a Keras 3 ``.weights.h5`` file."""
    import h5py

    try:
        h5 = h5py.File(path, "r")
    except OSError as error:
        raise FileFormatError(f"`{path}` is not a readable HDF5 file: {error}") from None
    with h5:
        load_weights_h5(model, h5)


def write_weights_file(model: Layer, path: str | os.PathLike) -> None:
    """`save_weights_h5` into a new ``.weights.h5`` file, atomically."""
    import h5py

    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        with h5py.File(temporary, "w") as h5:
            save_weights_h5(model, h5)
        publish(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# -- legacy .h5 files ---------------------------------------------------------------------------


def _attribute_list(group: Any, name: str) -> list[str]:
    """An HDF5 string-list attribute, also when split into ``name0``, ``name1``, ... (Keras
    splits attributes above HDF5's 64 KB header limit); bytes or str."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values = []
        index = 0
        while f"{name}{index}" in group.attrs:
            values.extend(group.attrs[f"{name}{index}"])
            index += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _legacy_order(layer: Layer) -> list[WeightEntry]:
    """A layer's weights as legacy ``.h5`` files store them: its (and its sub-layers')
    trainable weights, then the non-trainable ones (Keras's ``_legacy_weights``)."""
    entries = list(layer.walk_weights())
    return [e for e in entries if e.parameter.requires_grad] + [e for e in entries if not e.parameter.requires_grad]


def load_legacy_weights(model: Layer, group: Any, by_name: bool = True) -> None:
    """Fill ``model``'s weights from a legacy ``.h5`` weights group (``model_weights`` of a whole
    model, or the root of a weights-only file): each layer's datasets in its ``@weight_names``
    order, layers matched by name (``by_name``), or else by position among the layers that have
    weights, as Keras's legacy loader does. All checked before anything is copied."""
    saved = [name for name in _attribute_list(group, "layer_names") if _attribute_list(group[name], "weight_names")]
    layers = [layer for layer in getattr(model, "layers", [model]) if isinstance(layer, Layer) and any(True for _ in layer.walk_weights())]
    if by_name:
        missing = [layer.name for layer in layers if layer.name not in saved]
        if missing:
            raise WeightNameError(f"{model._label}: the file has no weights for layers {missing[:5]}. Received: layers {saved[:8]}.")
        pairs = [(layer, layer.name) for layer in layers]
    else:
        if len(saved) != len(layers):
            raise WeightNameError(
                f"{model._label}: the file holds weights for {len(saved)} layers, the model has {len(layers)} layers with "
                f"weights. Received: {saved[:8]}."
            )
        pairs = list(zip(layers, saved))
    values: list[tuple[torch.Tensor, np.ndarray]] = []
    for layer, name in pairs:
        entries = _legacy_order(layer)
        names = _attribute_list(group[name], "weight_names")
        if len(names) != len(entries):
            raise WeightNameError(
                f"{layer._label}: the file's layer '{name}' holds {len(names)} weights ({', '.join(names)}); the layer has "
                f"{len(entries)} ({', '.join(e.path for e in entries)})."
            )
        for entry, weight_name in zip(entries, names):
            array = _read_dataset(group[name][weight_name], entry)
            entry.check(tuple(array.shape), where=f"{name}/{weight_name}")
            values.append((entry.parameter, array))
    with torch.no_grad():
        for parameter, array in values:
            parameter.copy_(torch.from_numpy(np.ascontiguousarray(array)).to(parameter.dtype))


def load_h5(path: str | os.PathLike, custom_objects: Mapping[str, type] | None = None) -> Layer:
    """The model of a legacy ``.h5`` file that Keras 3 wrote (``model.save("x.h5")``), with its
    weights, in inference mode."""
    import h5py

    from .functional import deserialize_layer

    try:
        h5 = h5py.File(path, "r")
    except OSError as error:
        raise FileFormatError(f"`{path}` is not a readable HDF5 file: {error}") from None
    with h5:
        if "model_config" not in h5.attrs:
            raise FileFormatError(
                f"`{path}` holds weights only (no `model_config`): build the model in xlayers and call "
                "`load_legacy_weights(model, h5py.File(path), by_name=False)`."
            )
        raw = h5.attrs["model_config"]
        config = json.loads(raw.decode("utf8") if isinstance(raw, bytes) else raw)
        if is_keras2_config(config):  # tf_keras 2.x wrote it
            config = normalize(config)
        model = deserialize_layer(_model_entry(config), custom_objects)
        load_legacy_weights(model, h5.get("model_weights", h5))
    return model.eval()


# -- .keras files ------------------------------------------------------------------------------


def load_keras(path: str | os.PathLike, custom_objects: Mapping[str, type] | None = None) -> Layer:
    """The model of a Keras 3 ``.keras`` file (or of its unzipped folder), with its weights,
    in inference mode (``eval()``). ``custom_objects`` maps the class names of a user's own
    layers to xlayers classes."""
    from .functional import deserialize_layer

    path = Path(path)
    try:
        if path.is_dir():
            config = json.loads((path / "config.json").read_text())
            weights = (path / "model.weights.h5").read_bytes()
        else:
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
                weights = archive.read("model.weights.h5")
    except (zipfile.BadZipFile, KeyError, OSError, json.JSONDecodeError) as error:
        raise FileFormatError(f"`{path}` is not a readable .keras file: {type(error).__name__}: {error}") from None
    model = deserialize_layer(_model_entry(config), custom_objects)
    if not model.built:
        model.build_from_config(config.get("build_config"))
    import h5py

    try:
        with h5py.File(io.BytesIO(weights), "r") as h5:
            load_weights_h5(model, h5)
    except OSError as error:
        raise FileFormatError(f"`{path}`: its model.weights.h5 is not a readable HDF5 file: {error}") from None
    return model.eval()


def _model_entry(config: Mapping[str, Any]) -> Mapping[str, Any]:
    if "config" not in config or "class_name" not in config:
        raise FileFormatError(f"the file's config.json is not a Keras serialization. Received keys: {sorted(config)}.")
    if config["class_name"] not in ("Functional", "Sequential", "Model") and "layers" not in config["config"] \
            and config.get("registered_name", "").count(">"):
        raise FileFormatError(
            f"the model is a subclassed Keras model ({config['registered_name']}): its config has no graph to rebuild. "
            "Write the model in xlayers and load the weights by path with `load_weights_h5`."
        )
    return config


def save_keras(model: Layer, path: str | os.PathLike) -> None:
    """Write ``model`` as a Keras 3 ``.keras`` file that Keras 3.15 loads, without Keras:
    ``config.json`` (its Keras serialization), ``metadata.json`` and ``model.weights.h5``.
    The file appears whole or not at all."""
    import h5py

    from .functional import serialize_layer

    path = Path(path)
    if path.suffix != ".keras":
        raise ArgumentError(f"`path` must end in '.keras'. Received: path={str(path)!r}.")
    entry = serialize_layer(model)
    entry["build_config"] = model.get_build_config() if model.built else None
    entry["compile_config"] = None
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        save_weights_h5(model, h5)
    metadata = {"keras_version": KERAS_VERSION, "date_saved": datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    folder = path.parent if str(path.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as raw, zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr("metadata.json", json.dumps(metadata))
            archive.writestr("config.json", json.dumps(entry))
            archive.writestr("model.weights.h5", buffer.getvalue())
        publish(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def from_keras(source: Any, custom_objects: Mapping[str, type] | None = None) -> Layer:
    """An xlayers model equal to a Keras model: ``source`` is a ``.keras`` file (or its unzipped
    folder), read without TensorFlow or Keras, or a ``keras.Model`` (which Keras saves first).
    The model comes back in inference mode with the file's layer names and weight paths."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.suffix == ".keras" or path.is_dir():
            return load_keras(path, custom_objects)
        if path.suffix in (".h5", ".hdf5"):
            return load_h5(path, custom_objects)
        raise ArgumentError(f"`source` must be a `.keras` file or folder or a `.h5` file. Received: source={str(path)!r}.")
    if hasattr(source, "get_config") and hasattr(source, "save"):
        with tempfile.TemporaryDirectory() as folder:
            source.save(f"{folder}/model.keras")
            return load_keras(f"{folder}/model.keras", custom_objects)
    raise ArgumentTypeError(f"`source` must be a path or a keras.Model. Received: source of type {type(source).__name__}.")


def to_keras(model: Layer) -> Any:
    """A live ``keras.Model`` equal to ``model`` (this one needs Keras): the model is written as
    a ``.keras`` file (`save_keras`) and Keras loads it, so it is what any Keras user would get."""
    import keras

    with tempfile.TemporaryDirectory() as folder:
        save_keras(model, f"{folder}/model.keras")
        return keras.saving.load_model(f"{folder}/model.keras", compile=False)

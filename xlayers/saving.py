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

import contextlib
import io
import json
import os
import shutil
import struct
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoints import backed_weights, tracked
from .errors import ArgumentError, ArgumentTypeError, FileFormatError, WeightNameError
from .files import publish
from .keras2 import is_keras2_config, normalize
from .layer import Layer, WeightEntry, empty_weights

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
    ``.weights.h5``), or from a list of them (Keras's shards, a ``vars`` group possibly split
    across several): every weight found and shape-checked first, then read straight into its
    weight; a missing or extra variable, or a shape that differs, raises before anything changes."""
    files = h5 if isinstance(h5, (list, tuple)) else [h5]
    plan: list[tuple[torch.Tensor, Any]] = []
    groups = {_stored_group(files, group): entries for group, entries in weight_groups(model).items()}
    for group, entries in groups.items():
        stored = {key: node[key] for node in (f.get(_vars(group)) for f in files) if node is not None for key in node}
        if len(stored) != len(entries):
            raise WeightNameError(
                f"{entries[0].layer._label}: the file's group `{_vars(group)}` holds {len(stored)} variables; the layer "
                f"has {len(entries)} ({', '.join(e.path for e in entries)})."
            )
        for entry, key in zip(entries, sorted(stored, key=int)):
            entry.check(tuple(stored[key].shape), where=f"{_vars(group)}/{key}")
            plan.append((entry.parameter, stored[key]))
    extra = [name for f in files for name in _extra_groups(f, {_vars(g) for g in groups})]
    if extra:
        raise WeightNameError(f"{model._label}: the file has weights the model does not: {extra[:5]}.")
    _fill(plan)


def _fill(plan: list[tuple[torch.Tensor, Any]]) -> None:
    """Read each (checked) HDF5 dataset into its weight: in place when the dtypes agree and
    the weight is a contiguous CPU tensor, so no second copy of the weights is ever held. Within
    `xlayers.checkpoints.file_backed_weights`, a dataset stored as the weight's bytes in a file on
    disk is not read: the weight records where they are."""
    backed = backed_weights()
    with torch.no_grad():
        for parameter, dataset in tracked(plan, lambda item: item[0], "read weights"):
            target = parameter.detach()
            if target.numel() == 0:
                continue
            if target.device.type == "cpu" and target.is_contiguous() and target.dtype != torch.bfloat16 \
                    and dataset.dtype == target.numpy().dtype:
                offset = _byte_offset(dataset) if backed is not None else None
                if offset is not None:
                    backed.defer(parameter, dataset.file.filename, offset)
                    continue
                dataset.read_direct(target.numpy())
            else:
                target.copy_(torch.from_numpy(np.ascontiguousarray(_read_dataset(dataset))).to(target.dtype))


def _byte_offset(dataset: Any) -> int | None:
    """Where a dataset's bytes start in its file, when they lie there as they are: a contiguous,
    unfiltered little-endian dataset of a file on disk (not one read from memory or a zip)."""
    if dataset.file.driver != "sec2" or dataset.chunks is not None or dataset.dtype.byteorder == ">":
        return None
    return dataset.id.get_offset()


def _read_dataset(dataset: Any) -> np.ndarray:
    if dataset.dtype.kind == "V" and dataset.dtype.itemsize == 2:  # bfloat16, stored opaque ('|V2')
        bits = np.asarray(dataset[()]).view(np.uint16).astype(np.uint32) << 16
        return bits.view(np.float32)
    return np.asarray(dataset[()])


def _stored_group(files: list[Any], group: str) -> str:
    """``group``'s path in the files: Keras 3's, or the one tf_keras's ``.keras`` files write
    for a sub-layer kept under a private attribute (``multi_head_attention/_query_dense``)."""
    if group.count("/") < 2 or any(_vars(group) in f for f in files):
        return group
    head, _, tail = group.rpartition("/")
    private = f"{head}/_{tail}"
    return private if any(_vars(private) in f for f in files) else group


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
    groups = weight_groups(model)
    for group, index, entry in tracked([(g, i, e) for g, es in groups.items() for i, e in enumerate(es)],
                                       lambda item: item[2].parameter, "write weights"):
        node = h5.require_group(_vars(group))
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
    plan: list[tuple[torch.Tensor, Any]] = []
    for layer, name in pairs:
        entries = _legacy_order(layer)
        names = _attribute_list(group[name], "weight_names")
        if len(names) != len(entries):
            raise WeightNameError(
                f"{layer._label}: the file's layer '{name}' holds {len(names)} weights ({', '.join(names)}); the layer has "
                f"{len(entries)} ({', '.join(e.path for e in entries)})."
            )
        for entry, weight_name in zip(entries, names):
            dataset = group[name][weight_name]
            entry.check(tuple(dataset.shape), where=f"{name}/{weight_name}")
            plan.append((entry.parameter, dataset))
    _fill(plan)


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
        with empty_weights():  # every weight is read from the file
            model = deserialize_layer(_model_entry(config), custom_objects)
        load_legacy_weights(model, h5.get("model_weights", h5))
    return model.eval()


# -- .keras files ------------------------------------------------------------------------------


def load_keras(path: str | os.PathLike, custom_objects: Mapping[str, type] | None = None) -> Layer:
    """The model of a Keras 3 ``.keras`` file (or of its unzipped folder), with its weights,
    in inference mode (``eval()``). ``custom_objects`` maps the class names of a user's own
    layers to xlayers classes. The weights are created uninitialised and read straight from
    ``model.weights.h5`` inside the zip (no copy of the member in memory)."""
    import h5py

    from .functional import deserialize_layer

    path = Path(path)
    with contextlib.ExitStack() as stack:
        try:
            if path.is_dir():
                config = json.loads((path / "config.json").read_text())
                weights: Any = path / "model.weights.h5"
                if not weights.is_file():
                    raise KeyError("There is no item named 'model.weights.h5' in the folder")
            else:
                archive = stack.enter_context(zipfile.ZipFile(path))
                config = json.loads(archive.read("config.json"))
                weights = stack.enter_context(_member(path, archive, "model.weights.h5"))
        except (zipfile.BadZipFile, KeyError, OSError, json.JSONDecodeError) as error:
            raise FileFormatError(f"`{path}` is not a readable .keras file: {type(error).__name__}: {error}") from None
        if is_keras2_config(config):  # tf_keras 2.x wrote it
            config = normalize(config)
        with empty_weights():  # every weight is read from the file
            model = deserialize_layer(_model_entry(config), custom_objects)
            if not model.built:
                model.build_from_config(config.get("build_config"))
        try:
            h5 = stack.enter_context(h5py.File(weights, "r"))
        except OSError as error:
            raise FileFormatError(f"`{path}`: its model.weights.h5 is not a readable HDF5 file: {error}") from None
        load_weights_h5(model, h5)
    return model.eval()


class _Window(io.RawIOBase):
    """A seekable view of the ``size`` bytes at ``start`` of an open binary file: a zip member
    read or written in place (a write past the end extends it)."""

    def __init__(self, raw: Any, start: int, size: int) -> None:
        super().__init__()
        self._raw, self._start, self.size, self._position = raw, start, size, 0

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return self._raw.writable()

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._position = max(0, offset + (0, self._position, self.size)[whence])
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")[: max(0, self.size - self._position)]
        self._raw.seek(self._start + self._position)
        count = self._raw.readinto(view)
        self._position += count
        return count

    def write(self, data: Any) -> int:
        view, count = memoryview(data).cast("B"), 0
        self._raw.seek(self._start + self._position)
        while count < len(view):  # an unbuffered file may write less than asked
            count += self._raw.write(view[count:])
        self._position += count
        self.size = max(self.size, self._position)
        return count

    def truncate(self, size: int | None = None) -> int:
        self.size = self._position if size is None else size
        self._raw.truncate(self._start + self.size)
        return self.size


def _crc32(raw: Any, start: int, size: int) -> int:
    """The CRC-32 of ``size`` bytes at ``start`` of an open binary file, read 16 MiB at a time."""
    crc, buffer = 0, bytearray(1 << 24)
    raw.seek(start)
    while size > 0:
        count = raw.readinto(memoryview(buffer)[: min(size, len(buffer))])
        if not count:
            raise OSError("the file ended before its last member")
        crc, size = zlib.crc32(memoryview(buffer)[:count], crc), size - count
    return crc


@contextlib.contextmanager
def _member(path: Path, archive: zipfile.ZipFile, name: str) -> Iterator[Any]:
    """A zip member as a seekable binary file without reading it into memory: a stored member
    (Keras stores ``model.weights.h5`` uncompressed) is read in place through a window on the
    zip file; a compressed one is first extracted to a temporary file."""
    info = archive.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        with tempfile.TemporaryFile() as copy, archive.open(info) as source:
            shutil.copyfileobj(source, copy, 1 << 20)
            copy.seek(0)
            yield copy
        return
    with open(path, "rb") as raw:
        raw.seek(info.header_offset)
        header = raw.read(30)  # the member's local header: signature, ..., name and extra lengths
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"the local header of {name} is damaged")
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        yield _Window(raw, info.header_offset + 30 + name_length + extra_length, info.file_size)


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
    metadata = {"keras_version": KERAS_VERSION, "date_saved": datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    folder = path.parent if str(path.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w+b", buffering=0) as raw:
            # model.weights.h5 is the first member, written by h5py in place (never whole in memory, never
            # copied), behind room for its local header, which is written once its size and CRC are known
            member = zipfile.ZipInfo("model.weights.h5", time.localtime()[:6])
            member.CRC, member.header_offset, member.external_attr = 0, 0, 0o600 << 16  # as `writestr` sets them
            start = len(member.FileHeader(zip64=True))
            window = _Window(raw, start, 0)
            with h5py.File(window, "w") as h5:
                save_weights_h5(model, h5)
            member.file_size = member.compress_size = window.size
            member.CRC = _crc32(raw, start, window.size)
            raw.seek(0)
            raw.write(member.FileHeader(zip64=True))
            raw.seek(start + window.size)
            with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as archive:  # appends after it
                archive.filelist.append(member)
                archive.NameToInfo[member.filename] = member
                archive.writestr("metadata.json", json.dumps(metadata))
                archive.writestr("config.json", json.dumps(entry))
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

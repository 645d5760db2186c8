"""Weights as safetensors, with Keras's names, one file or sharded as Hugging Face shards them.

A safetensors file is an 8-byte little-endian header length, a JSON header (each tensor's
dtype, shape and byte range; ``__metadata__``), then the raw bytes. It holds no code: nothing
is pickled or unpickled. The keys are the weights' Keras paths (``layers/dense/kernel``), the
values in Keras's layout (what xlayers stores). Above ``max_shard_size`` bytes the weights go to
``model-00001-of-0000N.safetensors`` files (for ``model.safetensors``) filled greedily in order
(a tensor larger than a shard gets a shard of its own) with ``model.safetensors.index.json`` (``metadata.total_size``,
``weight_map``), the layout the Hugging Face ecosystem reads. Reads go straight into the
weights' memory; writes go to temporary files renamed into place.

`load_weights` reads any weights file into a built model: safetensors (one file or an index), Keras's
``.weights.h5``, Keras's sharded ``.weights.json`` (an index of ``<stem>_00000.weights.h5`` shards
whose ``weight_map`` maps each ``/<path>/vars`` group to its shard or shards), and legacy ``.h5`` files
(a ``model.save`` file or the weights-only files of pretrained ``keras.applications``), matched by
position among the layers with weights, as Keras's legacy loader does.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ArgumentError, FileFormatError, WeightNameError
from .files import publish
from .layer import Layer, WeightEntry

__all__ = ["FileBackedWeights", "file_backed_weights", "load_keras_shards", "load_safetensors", "load_weights", "reporting",
           "save_safetensors", "tracked"]

_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}
_TORCH = {name: dtype for dtype, name in _DTYPES.items()}
MAX_HEADER = 100_000_000  # safetensors' own limit
_REPORT: contextvars.ContextVar[Callable[[str, int, int], Any] | None] = contextvars.ContextVar("xlayers_report", default=None)


@contextlib.contextmanager
def reporting(callback: Callable[[str, int, int], Any]) -> Iterator[None]:
    """Within it, the readers and writers of weights call ``callback(what, done, total)`` (bytes)
    after each weight: what `xlayers port` draws its progress bar from."""
    token = _REPORT.set(callback)
    try:
        yield
    finally:
        _REPORT.reset(token)


class FileBackedWeights:
    """Weights not yet read whose bytes a file holds as they are (see `file_backed_weights`):
    ``{id(weight): (weight, file, offset)}``."""

    def __init__(self) -> None:
        self.pending: dict[int, tuple[torch.Tensor, str, int]] = {}

    def defer(self, weight: torch.Tensor, file: str, offset: int) -> None:
        self.pending[id(weight)] = (weight, file, offset)

    def source(self, weight: torch.Tensor) -> tuple[str, int] | None:
        """Where ``weight``'s bytes are, if it was not read yet."""
        found = self.pending.get(id(weight))
        return None if found is None or found[0] is not weight else found[1:]

    def read_all(self) -> None:
        """Read every weight still pending from its file."""
        for weight, file, offset in tracked(list(self.pending.values()), lambda item: item[0], "read weights"):
            view = memoryview(weight.detach().reshape(-1).view(torch.uint8).numpy())
            with open(file, "rb") as f:
                f.seek(offset)
                if f.readinto(view) != len(view):
                    raise FileFormatError(f"`{file}` is truncated: a weight's bytes end past its end.")
        self.pending.clear()

    def forget(self) -> None:
        """Leave the pending weights unread (their model is not used again)."""
        self.pending.clear()


_BACKED: contextvars.ContextVar[FileBackedWeights | None] = contextvars.ContextVar("xlayers_backed", default=None)


@contextlib.contextmanager
def file_backed_weights() -> Iterator[FileBackedWeights]:
    """Within it, a weight read from a file that holds its bytes as they are (a contiguous,
    unfiltered HDF5 dataset of the weight's dtype, in a file on disk) is not read: it remembers
    where its bytes are, and `save_safetensors` copies them from file to file in the kernel
    (``copy_file_range``), as a file copy does. On leaving, every weight still pending is read,
    unless ``forget()`` was called (the model is dropped): nothing outside sees an unread weight."""
    backed = FileBackedWeights()
    token = _BACKED.set(backed)
    try:
        yield backed
    finally:
        _BACKED.reset(token)
    backed.read_all()


def backed_weights() -> FileBackedWeights | None:
    """The active `file_backed_weights` context's record, if any."""
    return _BACKED.get()


def _copy_range(source: str, offset: int, size: int, out: Any) -> None:
    """Append ``size`` bytes of ``source`` from ``offset`` to the open file ``out``, in the kernel."""
    out.flush()
    with open(source, "rb") as f:
        done = 0
        try:
            while done < size:
                copied = os.copy_file_range(f.fileno(), out.fileno(), size - done, offset + done)
                if copied == 0:
                    raise FileFormatError(f"`{source}` is truncated: a weight's bytes end past its end.")
                done += copied
        except OSError:  # a file system or kernel without it: through user space
            f.seek(offset + done)
            out.seek(0, os.SEEK_END)
            while done < size:
                chunk = f.read(min(size - done, 1 << 24))
                if not chunk:
                    raise FileFormatError(f"`{source}` is truncated: a weight's bytes end past its end.") from None
                out.write(chunk)
                done += len(chunk)
            out.flush()


def tracked(items: Iterable[Any], tensor: Callable[[Any], torch.Tensor], what: str) -> Iterator[Any]:
    """``items``, reporting the bytes of each one's ``tensor(item)`` to the `reporting` callback."""
    callback = _REPORT.get()
    if callback is None:
        yield from items
        return
    items = list(items)
    total, done = sum(_nbytes(tensor(item)) for item in items), 0
    for item in items:
        yield item
        done += _nbytes(tensor(item))
        callback(what, done, total)


def _entries(model: Layer) -> list[WeightEntry]:
    seen: set[int] = set()
    entries = []
    for entry in model.walk_weights():
        if id(entry.parameter) not in seen:  # a weight shared by several paths is written once, at its first
            seen.add(id(entry.parameter))
            entries.append(entry)
    return entries


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def _parameter(entry: WeightEntry) -> torch.Tensor:
    return entry.parameter


def _write_file(path: Path, entries: list[WeightEntry], metadata: dict[str, str]) -> str:
    """Write a safetensors file beside ``path``; return the temporary file, for the caller to publish."""
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for entry in entries:
        size = _nbytes(entry.parameter)
        header[entry.path] = {"dtype": _DTYPES[entry.parameter.dtype], "shape": list(entry.parameter.shape),
                              "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(struct.pack("<Q", len(encoded)))
            out.write(encoded)
            backed = _BACKED.get()
            for entry in tracked(entries, _parameter, f"write {path.name}"):
                source = backed.source(entry.parameter) if backed is not None else None
                if source is not None:
                    _copy_range(*source, _nbytes(entry.parameter), out)
                    continue
                tensor = entry.parameter.detach().cpu().contiguous()
                out.write(memoryview(tensor.reshape(-1).view(torch.uint8).numpy()) if tensor.numel() else b"")
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return temporary


def save_safetensors(model: Layer, path: str | os.PathLike, max_shard_size: int | None = None) -> list[Path]:
    """Write ``model``'s weights to ``path`` (a ``.safetensors`` file), or, when they exceed
    ``max_shard_size`` bytes, to shards beside it plus ``model.safetensors.index.json``.
    Every file is written to a temporary file first and all are renamed into place only when
    all were written (the index last). Returns the files written."""
    path = Path(path)
    entries = _entries(model)
    total = sum(_nbytes(e.parameter) for e in entries)
    metadata = {"format": "pt", "framework": "xlayers"}
    if max_shard_size is None or total <= max_shard_size:
        publish(_write_file(path, entries, metadata), path)
        return [path]
    shards: list[list[WeightEntry]] = [[]]
    filled = 0
    for entry in entries:
        size = _nbytes(entry.parameter)
        if shards[-1] and filled + size > max_shard_size:
            shards.append([])
            filled = 0
        shards[-1].append(entry)
        filled += size
    stem = path.name.removesuffix(".safetensors")
    names = [f"{stem}-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    written = [path.parent / name for name in names]
    index = {"metadata": {"total_size": total}, "weight_map": {e.path: name for name, shard in zip(names, shards) for e in shard}}
    index_path = path.parent / f"{stem}.safetensors.index.json"  # model.safetensors.index.json, as Hugging Face names it
    temporaries: list[str] = []
    try:
        for target, shard in zip(written, shards):
            temporaries.append(_write_file(target, shard, metadata))
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{index_path.name}.", suffix=".tmp")
        temporaries.append(temporary)
        with os.fdopen(handle, "w") as out:
            out.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    except BaseException:
        for temporary in temporaries:
            Path(temporary).unlink(missing_ok=True)
        raise
    for temporary, target in zip(temporaries, [*written, index_path]):
        publish(temporary, target)
    return [*written, index_path]


def _header(path: Path) -> tuple[dict[str, Any], int]:
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise FileFormatError(f"`{path}` is not a safetensors file: it is shorter than its 8-byte header length.")
        (length,) = struct.unpack("<Q", raw)
        if length > MAX_HEADER:
            raise FileFormatError(f"`{path}` is not a safetensors file: its header claims {length} bytes (at most {MAX_HEADER}).")
        try:
            header = json.loads(f.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise FileFormatError(f"`{path}` is not a safetensors file: its header is not JSON ({error}).") from None
    header.pop("__metadata__", None)
    size = path.stat().st_size - 8 - length
    expected = 0
    for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
        begin, end = info["data_offsets"]
        dtype = _TORCH.get(info["dtype"])
        if dtype is None or begin != expected or end - begin != int(np.prod(info["shape"], dtype=np.int64)) * dtype.itemsize:
            raise FileFormatError(f"`{path}`: tensor `{name}` has a byte range or dtype that does not fit its shape.")
        expected = end
    if expected != size:
        raise FileFormatError(f"`{path}` is truncated or padded: its tensors end at byte {expected} of {size}.")
    return header, 8 + length


def _sources(path: Path) -> Iterator[tuple[Path, dict[str, Any], int]]:
    if path.name.endswith(".index.json"):
        try:
            index = json.loads(path.read_text())
            files = dict.fromkeys(index["weight_map"].values())
        except (json.JSONDecodeError, KeyError, AttributeError) as error:
            raise FileFormatError(f"`{path}` is not a safetensors index: {type(error).__name__}: {error}") from None
        for name in files:
            yield (path.parent / name, *_header(path.parent / name))
    else:
        yield (path, *_header(path))


def load_safetensors(model: Layer, path: str | os.PathLike) -> None:
    """Fill ``model``'s weights from a ``.safetensors`` file or a shard index: every name and
    shape checked before anything is read; then each tensor is read straight into its weight."""
    path = Path(path)
    entries = {e.path: e for e in _entries(model)}
    found: dict[str, tuple[Path, dict[str, Any], int]] = {}
    for file, header, start in _sources(path):
        for name, info in header.items():
            found[name] = (file, info, start)
    missing = [name for name in entries if name not in found]
    extra = [name for name in found if name not in entries]
    if missing or extra:
        raise WeightNameError(f"{model._label}: `{path}` does not hold the model's weights. Received: missing={missing[:5]}, "
                              f"unexpected={extra[:5]}.")
    for name, entry in entries.items():
        entry.check(tuple(found[name][1]["shape"]), where=f"{found[name][0].name}: {name}")
    with torch.no_grad():
        for name, entry in tracked(entries.items(), lambda item: item[1].parameter, f"read {path.name}"):
            file, info, start = found[name]
            dtype = _TORCH[info["dtype"]]
            begin, end = info["data_offsets"]
            target = entry.parameter
            direct = dtype == target.dtype and target.device.type == "cpu" and target.is_contiguous()
            buffer = target if direct else torch.empty(tuple(info["shape"]), dtype=dtype)
            with open(file, "rb") as f:
                f.seek(start + begin)
                if end > begin:
                    f.readinto(memoryview(buffer.detach().reshape(-1).view(torch.uint8).numpy()))
            if not direct:
                target.copy_(buffer)


def _open_h5(path: Path) -> Any:
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise FileFormatError(f"`{path}` is not a readable HDF5 file: {error}") from None


def load_keras_shards(model: Layer, path: str | os.PathLike) -> None:
    """Fill ``model``'s weights from Keras's sharded weights: the ``.weights.json`` index that
    ``keras.Model.save_weights(..., max_shard_size=...)`` writes and its ``.weights.h5`` shards
    beside it (a layer's ``vars`` group may be split over several); checked before anything changes."""
    from .saving import load_weights_h5

    path = Path(path)
    try:
        weight_map = json.loads(path.read_text())["weight_map"]
        names = dict.fromkeys(n for v in weight_map.values() for n in ([v] if isinstance(v, str) else v))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as error:
        raise FileFormatError(f"`{path}` is not a Keras weights index: {type(error).__name__}: {error}") from None
    strays = [n for n in names if not isinstance(n, str) or Path(n).name != n]
    if strays:
        raise FileFormatError(f"`{path}`: shards must be file names beside the index. Received: {strays[:3]}.")
    with contextlib.ExitStack() as stack:
        load_weights_h5(model, [stack.enter_context(_open_h5(path.parent / n)) for n in names])


def load_weights(model: Layer, path: str | os.PathLike) -> None:
    """Fill a built ``model``'s weights from ``path``, chosen by its name: ``.safetensors`` or a
    ``.safetensors.index.json`` (`load_safetensors`), Keras's ``.weights.json`` (`load_keras_shards`),
    or an HDF5 ``.h5`` / ``.hdf5``: Keras 3's ``.weights.h5`` layout by path, or a legacy file
    (``@layer_names``: a Keras 2 or ``keras.applications`` weights file, or a whole ``model.save``
    file) by position. Names, counts and shapes are checked before any weight changes."""
    from .saving import load_legacy_weights, load_weights_h5

    name = str(path)
    if name.endswith((".safetensors", ".index.json")):
        load_safetensors(model, path)
    elif name.endswith(".weights.json"):
        load_keras_shards(model, path)
    elif name.endswith((".h5", ".hdf5")):
        with _open_h5(Path(path)) as h5:
            group = h5.get("model_weights", h5)
            if any(key.startswith("layer_names") for key in group.attrs):  # the legacy layout
                load_legacy_weights(model, group, by_name=False)
            else:
                load_weights_h5(model, h5)
    else:
        raise ArgumentError(
            f"{model._label}: `path` must end in '.safetensors', '.safetensors.index.json', '.weights.h5', "
            f"'.weights.json' or '.h5'. Received: path={name!r}."
        )

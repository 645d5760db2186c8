"""``xlayers port IN OUT``: a Keras model file to PyTorch weights, safetensors, ONNX or back
to ``.keras``, verified on a random batch.

IN is a Keras 3 ``.keras`` file (or its unzipped folder) or a legacy ``.h5`` model file that
Keras 3 or tf_keras 2.x wrote, read without TensorFlow or Keras.
OUT is chosen by its name: ``.keras`` (Keras 3.15 loads it), ``.safetensors`` (sharded above
``--max-shard-size``), ``.weights.h5`` (Keras's weights file), or ``.onnx`` (verified in
onnxruntime against torch). Unless ``--no-verify``, the ported model is also compared with
the Keras that wrote IN (tf_keras for a Keras 2 file) on a random batch when it is
installed, under the tolerance policy; a failed
verification exits non-zero. OUT is written atomically: whole or not at all.

It prints what it mapped (layers by class, weights, parameters, bytes) and what it skipped, with
the reason (optimizer state, compile settings, assets); while weights are read and written it
draws a progress bar on stderr when stderr is a terminal or the weights reach ``LARGE`` bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoints import file_backed_weights, reporting
from .errors import ArgumentError, InputShapeError
from .layer import InputSpec, Layer, _leaves
from .tolerance import Comparison, NoiseComparison, compare, compare_with_noise

__all__ = ["ProgressBar", "Verification", "add_arguments", "keras_float64", "layer_probe", "layerwise", "port", "random_batch",
           "run", "skipped", "verify_against_keras"]

OUTPUTS = (".keras", ".safetensors", ".weights.h5", ".onnx")
LARGE = 64 * 2**20  # bytes of weights from which the progress bar is drawn even when stderr is not a terminal
TRAINING = "torch trains with its own optimizer and loss"


class ProgressBar:
    """``callback(what, done, total)`` for `xlayers.checkpoints.reporting`: one line on
    ``stream`` (stderr), redrawn at most ten times a second, drawn when ``stream`` is a
    terminal or ``total`` is at least ``LARGE`` bytes."""

    def __init__(self, stream: Any = None, width: int = 30) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width, self._drawn = width, 0.0

    def __call__(self, what: str, done: int, total: int) -> None:
        now = time.monotonic()
        if not (self.terminal or total >= LARGE) or (done < total and now - self._drawn < 0.1):
            return
        self._drawn = now
        filled = self.width * done // max(total, 1)
        self.stream.write(f"\r{what}: [{'#' * filled}{'.' * (self.width - filled)}] {100 * done // max(total, 1):3d}% "
                          f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" + ("\n" if done >= total else ""))
        self.stream.flush()


def skipped(source: str | Path) -> list[str]:
    """What a Keras model file holds that porting leaves out, each with its reason: optimizer
    state, compile or training settings, assets. Reads names and attributes only."""
    import h5py

    from .saving import _member

    source, found = Path(source), []
    with contextlib.ExitStack() as stack:
        if source.suffix in (".h5", ".hdf5"):
            h5 = stack.enter_context(h5py.File(source, "r"))
            compiled, optimizer = "training_config" in h5.attrs, h5.get("optimizer_weights")
            members: list[str] = []
        else:
            if source.is_dir():
                members = [p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()]
                config, weights = json.loads((source / "config.json").read_text()), source / "model.weights.h5"
            else:
                archive = stack.enter_context(zipfile.ZipFile(source))
                members, config = archive.namelist(), json.loads(archive.read("config.json"))
                weights = stack.enter_context(_member(source, archive, "model.weights.h5"))
            h5 = stack.enter_context(h5py.File(weights, "r"))
            compiled, optimizer = bool(config.get("compile_config")), h5.get("optimizer")
        if compiled:
            found.append(f"the compile/training config (loss, metrics, optimizer settings): {TRAINING}")
        if optimizer is not None:
            arrays: list[str] = []
            optimizer.visititems(lambda name, item: arrays.append(name) if isinstance(item, h5py.Dataset) else None)
            found.append(f"the optimizer state ({len(arrays)} arrays in `{optimizer.name.lstrip('/')}`): {TRAINING}")
        assets = [m for m in members if m.startswith("assets/") and not m.endswith("/")]
        if assets:
            found.append(f"assets ({len(assets)} files, e.g. `{assets[0]}`): no xlayers layer reads assets")
    return found


def random_batch(model: Layer, batch: int = 2, seed: int = 0) -> list[torch.Tensor]:
    """One random input per model input: its shape with unknown sizes filled (batch ``batch``,
    others 5), normal floats, or integer ids in ``[0, 2)`` (valid for any vocabulary)."""
    generator = torch.Generator().manual_seed(seed)
    tensors = []
    for tensor in getattr(model, "inputs", None) or []:
        shape = tuple(batch if i == 0 else (5 if s is None else s) for i, s in enumerate(tensor.shape))
        if tensor.dtype.is_floating_point:
            tensors.append(torch.randn(shape, generator=generator, dtype=tensor.dtype))
        else:
            tensors.append(torch.randint(0, 2, shape, generator=generator).to(tensor.dtype))
    if not tensors and getattr(model, "_build_shape", None) is not None:  # a Sequential
        shape = tuple(batch if i == 0 else (5 if s is None else s) for i, s in enumerate(model._build_shape))
        tensors.append(torch.randn(shape, generator=generator))
    if not tensors:
        raise ArgumentError(f"{model._label}: the model's input shapes are unknown, so it cannot be verified. Use --no-verify.")
    return tensors


def _outputs(result: Any) -> list[np.ndarray]:
    values = list(result.values()) if isinstance(result, dict) else _leaves(result)
    return [np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v) for v in values]


def _keras_that_wrote(source: Path) -> Any:
    """The Keras that loads ``source``: tf_keras for a file that Keras 2 wrote (Keras 3 loads
    few of them), Keras 3 otherwise."""
    import h5py

    from .keras2 import is_keras2_config

    if source.suffix in (".h5", ".hdf5"):
        with h5py.File(source, "r") as h5:
            raw = h5.attrs.get("model_config")
    elif source.is_dir():
        raw = (source / "config.json").read_text()
    else:
        with zipfile.ZipFile(source) as archive:
            raw = archive.read("config.json")
    if raw is not None and is_keras2_config(json.loads(raw)):
        import tf_keras

        return tf_keras
    import keras

    return keras


def _verify_with_keras(source: Path, model: Layer, inputs: list[torch.Tensor], say: Callable[[str], Any]) -> bool | None:
    try:
        keras = _keras_that_wrote(source)
    except ImportError as error:
        say(f"verify: {error.name} is not installed; the ported model was not compared with Keras")
        return None
    twin = keras.saving.load_model(source, compile=False)
    verification = verify_against_keras(model, keras, twin, [t.numpy() for t in inputs])
    for line in verification.lines():
        say(f"verify: {line}")
    return verification.passed


@dataclass
class Verification:
    """A ported model against the Keras model it came from, on one batch.

    Each output is first held to one operation's bound (``end_to_end``). Where that fails, as
    float32 rounding compounds over a deep network, it is held to Keras's own rounding instead
    (``noise``: `xlayers.tolerance.compare_with_noise` against Keras run in float64 on the same
    weights). ``layers`` (each layer fed Keras's own inputs to it, from :func:`layerwise`) locates a
    failure, and decides alone where Keras cannot run the model in float64 (``note`` says why)."""

    end_to_end: list[Comparison]
    noise: list[NoiseComparison] = field(default_factory=list)
    layers: tuple[float, str, int] | None = None
    note: str = ""
    outputs: tuple[int, int] = (0, 0)  # how many outputs xlayers and Keras gave

    @property
    def passed(self) -> bool:
        if self.outputs[0] != self.outputs[1]:
            return False
        if all(c.passed for c in self.end_to_end):
            return True
        if self.noise:
            return all(c.passed for c in self.noise)
        return self.layers is not None and self.layers[2] > 0 and self.layers[0] <= 1.0

    def lines(self) -> list[str]:
        found = []
        if self.outputs[0] != self.outputs[1]:
            found.append(f"xlayers gives {self.outputs[0]} outputs, Keras {self.outputs[1]}")
        for index, c in enumerate(self.end_to_end):
            found.append(f"output {index} against Keras: max abs error {c.max_abs_error:.3g}, max rel error "
                         f"{c.max_rel_error:.3g} ({'within tolerance' if c.passed else 'OUTSIDE the bound of one operation'}, "
                         f"worst element at {c.bound_fraction:.0%} of its bound)")
        for index, c in enumerate(self.noise):
            found.append(c.describe(f"output {index} against Keras in float64") + (": within Keras's own rounding"
                         if c.passed else ": OUTSIDE tolerance"))
        if self.note:
            found.append(self.note)
        if self.layers is not None:
            worst, where, count = self.layers
            found.append(f"each of {count} layers fed Keras's own inputs: worst at {worst:.0%} of its bound (layer `{where}`)")
        return found


def verify_against_keras(model: Layer, keras: Any, twin: Any, feed: list[np.ndarray], *, always: bool = False) -> Verification:
    """Compare ``model`` (xlayers) with ``twin`` (the Keras model it was ported from) on ``feed``
    (one array per input), as `Verification` describes; ``always`` computes every measure even
    where one operation's bound holds."""
    with torch.no_grad():
        ours = _outputs(model([torch.from_numpy(a) for a in feed] if len(feed) > 1 else torch.from_numpy(feed[0])))
    theirs = _keras_outputs(twin(feed if len(feed) > 1 else feed[0]))
    verification = Verification([compare(a, b, "float32", "cpu") for a, b in zip(ours, theirs)],
                                outputs=(len(ours), len(theirs)))
    if not always and verification.passed:
        return verification
    try:
        twin64 = keras_float64(twin)
        feed64 = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in feed]
        exact = _keras_outputs(twin64(feed64 if len(feed64) > 1 else feed64[0]))
        verification.noise = [compare_with_noise(a, b, e) for a, b, e in zip(ours, theirs, exact)]
    except Exception as error:  # noqa: BLE001 (a layer Keras cannot build or run in float64)
        verification.note = f"Keras could not run the model in float64 ({type(error).__name__}: {str(error)[:200]}): each layer decides"
    if always or not verification.noise or not verification.passed:
        if getattr(twin, "layers", None):
            verification.layers = layerwise(model, layer_probe(keras, twin, feed if len(feed) > 1 else feed[0]))
    return verification


def _keras_outputs(result: Any) -> list[np.ndarray]:
    return [np.asarray(result[k]) for k in result] if isinstance(result, dict) else [np.asarray(t) for t in _leaves(result)]


def _float64_dtype(dtype: Any) -> Any:
    """A config's ``dtype`` entry (a name, or a policy as a dict) with floats made float64."""
    floats = ("float16", "bfloat16", "float32", "float64", "mixed_float16", "mixed_bfloat16")
    if isinstance(dtype, str):
        return "float64" if dtype in floats else dtype
    if isinstance(dtype, dict) and isinstance(dtype.get("config"), dict) and dtype["config"].get("name") in floats:
        return {**dtype, "config": {**dtype["config"], "name": "float64"}}
    return dtype


def _float64_config(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _float64_dtype(v) if k == "dtype" else _float64_config(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_float64_config(v) for v in value]
    return value


def keras_float64(twin: Any) -> Any:
    """The Keras model ``twin`` rebuilt from its config in float64, its weights cast: the exact
    result `compare_with_noise` measures both frameworks' float32 rounding against."""
    keras = importlib.import_module(type(twin).__module__.split(".")[0])  # keras or tf_keras
    classes = {type(layer).__name__: type(layer) for layer in twin._flatten_layers()  # private ones (LayerScale)
               if getattr(keras.layers, type(layer).__name__, None) is not type(layer)}
    twin64 = type(twin).from_config(_float64_config(twin.get_config()), custom_objects=classes)
    twin64.set_weights([w.astype(np.float64) if w.dtype.kind == "f" else w for w in map(np.asarray, twin.get_weights())])
    for layer in twin64._flatten_layers():
        finalize = getattr(layer, "finalize_state", None)  # Normalization reads set weights only here
        if callable(finalize):
            finalize()
    return twin64


def layer_probe(keras: Any, twin: Any, inputs: Any) -> list[tuple[str, Any, np.ndarray]]:
    """Each top-level layer of the Keras model ``twin`` (not its inputs, nor nested models), with
    the inputs and the output Keras gives it on ``inputs`` in inference mode:
    ``[(name, inputs, output)]``; layers with several outputs are left out."""
    layers = [layer for layer in twin.layers if type(layer).__name__ != "InputLayer" and not hasattr(layer, "layers")]
    layers = [layer for layer in layers if not isinstance(layer.output, (list, tuple, dict))]
    probe = keras.Model(twin.inputs, [[layer.input, layer.output] for layer in layers])
    values = probe(inputs, training=False)
    return [(layer.name, [np.array(t) for t in given] if isinstance(given, (list, tuple)) else np.array(given),
             np.asarray(output)) for layer, (given, output) in zip(layers, values)]


def layerwise(model: Layer, probes: list[tuple[str, Any, np.ndarray]]) -> tuple[float, str, int]:
    """Each layer of ``model`` fed Keras's inputs to it (from :func:`layer_probe`) and compared
    with Keras's output under the tolerance policy: the worst share of its bound, that layer's
    name, and how many layers were compared. Not counted: Keras 2's ``TFOpLambda`` layers
    (operations in xlayers, not layers), layers whose Keras inputs hold a mask beside the tensor,
    and layers that ``layer.input`` cannot feed (MultiHeadAttention's key and value are not in
    it). A layer Keras called with a mask is fed without it: this measure is a diagnosis for
    unmasked networks, not a verdict."""
    worst, where, count = 0.0, "", 0
    for name, given, output in probes:
        try:
            layer = model.get_layer(name)
        except (ValueError, KeyError):
            continue
        if isinstance(given, list) and isinstance(layer.input_spec, InputSpec):  # one input and its mask
            continue
        feed = [torch.from_numpy(a) for a in given] if isinstance(given, list) else torch.from_numpy(given)
        try:
            with torch.no_grad():
                ours = layer(feed)
        except InputShapeError:
            continue
        comparison = compare(np.asarray(ours), output, "float32", "cpu")
        count += 1
        if comparison.bound_fraction >= worst:
            worst, where = comparison.bound_fraction, name
    return worst, where, count


def port(source: str | Path, target: str | Path, *, verify: bool = True, max_shard_size: int | None = None,
         print_fn: Callable[[str], Any] = print) -> bool:
    """Port ``source`` to ``target`` (see the module docstring); return whether verification
    passed (``True`` when skipped)."""
    from .saving import from_keras, save_keras

    source, target = Path(source), Path(target)
    if not str(target).endswith(OUTPUTS):
        raise ArgumentError(f"OUT must end in one of {', '.join(OUTPUTS)}. Received: {target}.")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ArgumentError(f"OUT's folder `{folder}` {'is not writable' if folder.is_dir() else 'does not exist'}. Received: {target}.")
    started = time.perf_counter()
    name = str(target)
    # to safetensors, weights stored as they are in the source file are copied file to file,
    # unread (read afterwards only if the model is verified)
    with file_backed_weights() if name.endswith(".safetensors") else contextlib.nullcontext() as backed:
        with reporting(ProgressBar()):
            model = from_keras(source)
        layers = [m for m in model.modules() if isinstance(m, Layer)][1:]
        weights = list(model.walk_weights())
        parameters = sum(e.parameter.numel() for e in weights)
        size = sum(e.parameter.numel() * e.parameter.element_size() for e in weights)
        classes = ", ".join(f"{count} {kind}" for kind, count in Counter(type(m).__name__ for m in layers).most_common())
        print_fn(f"read {source}: {len(layers)} layers ({classes}), {len(weights)} weights, {parameters:,} parameters "
                 f"({size / 1e6:.1f} MB), in {time.perf_counter() - started:.2f} s")
        left_out = skipped(source)
        print_fn("skipped: " + ("nothing" if not left_out else "".join(f"\n  - {item}" for item in left_out)))
        inputs = random_batch(model) if verify or name.endswith(".onnx") else []
        if name.endswith(".keras"):
            with reporting(ProgressBar()):
                save_keras(model, target)
        elif name.endswith((".safetensors", ".weights.h5")):
            with reporting(ProgressBar()):
                model.save_weights(target, **({"max_shard_size": max_shard_size} if name.endswith(".safetensors") else {}))
        else:
            from .onnx import export

            export(model, inputs if len(inputs) > 1 else inputs[0], target, verify=verify, verbose=False)
            if verify:
                print_fn("verify: the ONNX graph agrees with torch in onnxruntime (within tolerance)")
        if backed is not None and not verify:
            backed.forget()
    print_fn(f"wrote {target} in {time.perf_counter() - started:.2f} s")
    if not verify:
        return True
    return _verify_with_keras(source, model, inputs, print_fn) is not False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="IN", help="a Keras 3 .keras file (or its folder), or a legacy .h5 model file")
    parser.add_argument("target", metavar="OUT", help=f"the file to write: {', '.join(OUTPUTS)}")
    parser.add_argument("--no-verify", action="store_true", help="skip the comparison on a random batch")
    parser.add_argument("--max-shard-size", type=int, metavar="BYTES", help="shard .safetensors above this size")


def run(args: argparse.Namespace) -> int:
    try:
        ok = port(args.source, args.target, verify=not args.no_verify, max_shard_size=args.max_shard_size)
    except (ValueError, TypeError, OSError) as error:
        print(f"xlayers port: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    return 0 if ok else 1

"""Port every ``keras.applications`` architecture with ``xlayers port`` and check it against Keras.

For each architecture and each writer (Keras 3.15, and tf_keras 2.21 for Keras 2 files): the
model is built with ``weights=None`` and ``classifier_activation=None`` (the logits are
compared, not a saturated softmax), given seeded random weights (He-scaled normal kernels;
BatchNormalization with random gamma and beta, and moving statistics measured on a random batch
then perturbed at random; see `randomize`), and saved as ``.keras`` and ``.h5``. Each file is ported with `xlayers.port.port`
to a ``.keras`` file (the round trip, timed: "port s"), the ported model's outputs on a batch of 2
are compared with the writer's own outputs as `xlayers port` compares them
(`xlayers.port.verify_against_keras`: one operation's bound, else the writer's own float32 error
against its float64 result, with each layer fed the writer's inputs to it reported too),
and every weight of the round-trip file is compared bit for bit with the source file's
datasets ("round trip": ``exact`` or what differs). A file xlayers refuses is reported with
the reason.

Inputs are 64x64 RGB (75x75 where an architecture needs it), batch 2, so the whole table runs
on a small CPU machine. Needs keras (TF backend) and, for the Keras 2 files, tf_keras.

Usage: python tools/port_applications.py [--models ResNet50 MobileNetV2 ...] [--writers keras tf_keras]
       [--formats keras h5] [--out DIR]
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# architecture -> input size (Inception and Xception need at least 75x75)
APPLICATIONS: dict[str, int] = {
    "ResNet50": 64, "ResNet50V2": 64, "MobileNet": 64, "MobileNetV2": 64, "MobileNetV3Small": 64,
    "MobileNetV3Large": 64, "EfficientNetB0": 64, "EfficientNetV2B0": 64, "VGG16": 64, "DenseNet121": 64,
    "InceptionV3": 75, "Xception": 75, "NASNetMobile": 64, "ConvNeXtTiny": 64, "InceptionResNetV2": 75,
}
WRITERS = ("keras", "tf_keras")
FORMATS = ("keras", "h5")
BATCH = 2


def framework(writer: str) -> Any:
    """The Keras module that writes the files: ``keras`` (3.15) or ``tf_keras`` (2.21)."""
    import importlib

    return importlib.import_module(writer)


def build(writer: str, name: str, size: int) -> Any:
    """``keras.applications.<name>`` (or tf_keras's) with random weights, for ``size``x``size`` RGB."""
    model = getattr(framework(writer).applications, name)(weights=None, input_shape=(size, size, 3),
                                                          classifier_activation=None)
    randomize(model, zlib.crc32(name.encode()))
    return model


def randomize(model: Any, seed: int) -> None:
    """Seeded random weights that keep activations of order 1.

    Kernels are normal with He scaling (fan-in: the kernel's input axes; the spatial axes only
    for a depthwise kernel), biases and betas normal(0, 0.1), scales (gamma, LayerScale)
    normal(1, 0.1), Normalization's variance uniform(0.5, 1.5). BatchNormalization's moving
    statistics are then measured: one training-mode call on the batch the outputs are compared
    on (`batch`), with momentum 0 and dropout off, sets them to what each layer receives, so
    depth does not blow the activations up; each is then perturbed: the mean plus normal(0, 0.1)
    root mean squares, the variance replaced by the second moment (variance plus squared mean:
    a channel that is nearly constant on so small a batch would otherwise be divided by its
    tiny spread, and amplify rounding without bound) times exp(uniform(-0.3, 0.3)) (a factor in
    [0.74, 1.35] whose logarithm has mean 0, so the perturbations do not compound over depth).
    So inference differs from training and BatchNormalization is non-trivial. Integer weights (Normalization's count) are left as they are."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        depthwise = "Depthwise" in type(layer).__name__ or "Separable" in type(layer).__name__
        for index, variable in enumerate(layer.weights):
            dtype = np.dtype(variable.dtype if isinstance(variable.dtype, str) else variable.dtype.name)
            if dtype.kind != "f":
                continue
            shape = tuple(int(s) for s in variable.shape)
            name = variable.name.split("/")[-1].split(":")[0]
            if len(shape) >= 2:
                fan_in = int(np.prod(shape[:-2] if depthwise and index == 0 else shape[:-1]))
                value = rng.standard_normal(shape) * np.sqrt(2.0 / max(fan_in, 1))
            elif "variance" in name:
                value = rng.uniform(0.5, 1.5, shape)
            elif name in ("gamma", "variable"):
                value = 1.0 + 0.1 * rng.standard_normal(shape)
            else:
                value = 0.1 * rng.standard_normal(shape)
            variable.assign(value.astype(dtype))
    for layer in model.layers:  # Keras 3's Normalization caches its statistics at build
        if type(layer).__name__ == "Normalization" and hasattr(layer, "finalize_state"):
            layer.finalize_state()
    norms = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    dropouts = [layer for layer in model.layers if hasattr(layer, "rate") and "Dropout" in type(layer).__name__]
    saved = [(layer, "momentum", layer.momentum) for layer in norms] + [(layer, "rate", layer.rate) for layer in dropouts]
    for layer, attribute, _ in saved:
        setattr(layer, attribute, 0.0)
    model(batch(model), training=True)
    for layer, attribute, value in saved:
        setattr(layer, attribute, value)
    for layer in norms:
        mean, variance = (np.asarray(v) for v in (layer.moving_mean, layer.moving_variance))
        second = variance + mean**2  # a near-constant channel is not divided by its tiny spread
        layer.moving_mean.assign((mean + 0.1 * np.sqrt(second) * rng.standard_normal(mean.shape)).astype(mean.dtype))
        layer.moving_variance.assign((second * np.exp(rng.uniform(-0.3, 0.3, second.shape))).astype(variance.dtype))


def batch(model: Any) -> np.ndarray:
    """The inputs the outputs are compared on: ``BATCH`` samples of seeded normal noise."""
    return np.random.default_rng(0).standard_normal((BATCH, *model.input_shape[1:])).astype(np.float32)


def save(model: Any, writer: str, fmt: str, folder: Path) -> Path:
    path = folder / f"{writer}.{fmt}"
    if writer == "tf_keras" and fmt == "h5":
        model.save(path, save_format="h5")
    else:
        model.save(path)
    return path


def _keras_datasets(h5: Any) -> dict[str, np.ndarray]:
    """``{"layers/conv2d/vars/0": array}`` for every dataset of a ``.keras`` weights file."""
    found: dict[str, np.ndarray] = {}

    def visit(name: str, item: Any) -> None:  # returns None: visititems stops at the first other value
        if hasattr(item, "dtype"):
            found[name] = item[()]

    h5.visititems(visit)
    return found


def _named_vars(h5: Any) -> dict[str, list[np.ndarray]]:
    """A ``.keras`` weights file's layers by their ``@name``: ``{layer name: [array, ...]}``."""
    found: dict[str, list[np.ndarray]] = {}

    def visit(name: str, item: Any) -> None:
        if name.endswith("vars") and len(item) and "name" in item.attrs:
            found[str(item.attrs["name"])] = [item[key][()] for key in sorted(item, key=int)]

    h5.visititems(visit)
    return found


def _legacy_vars(h5: Any) -> dict[str, list[np.ndarray]]:
    """A legacy ``.h5`` file's weights by the layer that owns them (the part of each weight name
    before the variable's: a nested model's group holds its inner layers' weights), in order."""
    from xlayers.saving import _attribute_list

    group = h5.get("model_weights", h5)
    found: dict[str, list[np.ndarray]] = {}
    for layer in _attribute_list(group, "layer_names"):
        for weight in _attribute_list(group[layer], "weight_names"):
            if weight.startswith(f"{layer}/"):
                inner = weight.removeprefix(f"{layer}/").rpartition("/")[0]  # layer names may hold '/'
            else:  # a weight named under Keras 3's name scopes (NASNet's `normal_A_block_0/.../adjust_bn_0/gamma`)
                inner = weight.rpartition("/")[0].rpartition("/")[2]
            found.setdefault(inner or layer, []).append(group[layer][weight][()])
    return found


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def round_trip(source: Path, written: Path) -> str:
    """``"exact"`` when every weight of ``written`` (a ``.keras`` file) equals, bit for bit, the
    source file's dataset for it (by path for a ``.keras`` source, by owning layer's name and
    weight order for a legacy ``.h5``), else what differs."""
    import h5py

    with zipfile.ZipFile(written) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as ours:
        if source.suffix == ".keras":
            with zipfile.ZipFile(source) as archive_in, \
                    h5py.File(io.BytesIO(archive_in.read("model.weights.h5")), "r") as theirs:
                a, b = _keras_datasets(ours), _keras_datasets(theirs)
        else:
            with h5py.File(source, "r") as theirs:
                b = _legacy_vars(theirs)
            a, b = ({f"{layer}/{i}": x for layer, arrays in found.items() for i, x in enumerate(arrays)}
                    for found in (_named_vars(ours), b))
    if a.keys() != b.keys():
        return f"paths differ: only written {sorted(a.keys() - b.keys())[:3]}, only source {sorted(b.keys() - a.keys())[:3]}"
    differ = [k for k in a if not _same(a[k], b[k])]
    return "exact" if not differ else f"{len(differ)}/{len(a)} weights differ, e.g. {differ[0]}"


def check(model: Any, writer: str, formats: tuple[str, ...], folder: Path) -> dict[str, Any]:
    """One Keras model (built by ``writer``, weights set): its files ported, compared and
    round-tripped."""
    from xlayers.port import port, verify_against_keras
    from xlayers.saving import from_keras

    started = time.perf_counter()
    x = batch(model)
    expected = np.asarray(model(x, training=False))
    result: dict[str, Any] = {"model": model.name, "writer": writer, "parameters": int(model.count_params()),
                              "input": list(x.shape), "output_max_abs": float(np.abs(expected).max()),
                              "output_std": float(expected.std()), "files": {}}
    for fmt in formats:
        entry: dict[str, Any] = {}
        try:
            source = save(model, writer, fmt, folder)
            target = folder / f"{writer}.{fmt}.ported.keras"
            begin = time.perf_counter()
            port(source, target, verify=False, print_fn=lambda line: None)
            entry["port_s"] = round(time.perf_counter() - begin, 2)
            verification = verify_against_keras(from_keras(source), framework(writer), model, [x], always=True)
            (end_to_end,), layers = verification.end_to_end, verification.layers or (float("nan"), "", 0)
            entry.update(max_abs_error=end_to_end.max_abs_error, max_rel_error=end_to_end.max_rel_error,
                         bound_fraction=end_to_end.bound_fraction, end_to_end_passed=bool(end_to_end.passed),
                         layers_compared=layers[2], layerwise_bound_fraction=layers[0], layerwise_worst=layers[1],
                         layerwise_passed=layers[2] > 0 and layers[0] <= 1.0, passed=verification.passed,
                         round_trip=round_trip(source, target))
            if verification.noise:
                (noise,) = verification.noise
                entry.update(float64_error=noise.error, keras_noise=noise.noise, noise_ratio=noise.ratio)
            else:
                entry["note"] = verification.note
        except (ValueError, TypeError, OSError, KeyError) as error:
            entry.update(passed=False, refused=f"{type(error).__name__}: {error}")
        result["files"][fmt] = entry
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def cell(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "-"
    if "refused" in entry:
        return f"refused: {entry['refused'][:160]}"
    noise = f"{entry['noise_ratio']:.2f}x" if "noise_ratio" in entry else "no float64 run"
    verdict = "" if entry["passed"] else " **FAIL**"
    return (f"{entry['port_s']:.2f} s, {entry['max_abs_error']:.1e} ({entry['bound_fraction']:.0%}), {noise}{verdict}, "
            f"{entry['layers_compared']} layers ≤ {entry['layerwise_bound_fraction']:.0%}, {entry['round_trip']}")


def table(results: list[dict[str, Any]], writers: tuple[str, ...], formats: tuple[str, ...]) -> str:
    """The README's table: one row per architecture, one column per file written."""
    labels = {"keras": "Keras 3", "tf_keras": "tf_keras"}
    columns = [(w, f) for w in writers for f in formats]
    lines = ["| model | parameters | " + " | ".join(f"{labels[w]} `.{f}`" for w, f in columns) + " |",
             "|---|---:|" + "---|" * len(columns)]
    by_model: dict[str, dict[str, dict[str, Any]]] = {}
    for result in results:
        by_model.setdefault(result["model"], {})[result["writer"]] = result
    for model, by_writer in by_model.items():
        parameters = next(iter(by_writer.values()))["parameters"]
        cells = [cell(by_writer.get(w, {}).get("files", {}).get(f)) for w, f in columns]
        lines.append(f"| {model} | {parameters:,} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Each cell: port seconds (`xlayers port` to `.keras`); the greatest absolute error of the logits "
                 "against the writer's own outputs, with the worst element's share of one operation's bound; that "
                 "error measured against the writer run in float64 on the same weights, as a multiple of the writer's "
                 "own float32 error (the whole-model rule allows 4x plus one operation's absolute term; **FAIL** where "
                 "neither rule holds); each "
                 "ported layer fed the writer's own inputs to it (the worst layer's share of its bound); and the "
                 "round trip (every weight of the written `.keras` bit-exact against the source file).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(APPLICATIONS), choices=list(APPLICATIONS))
    parser.add_argument("--writers", nargs="+", default=list(WRITERS), choices=WRITERS)
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--out", type=Path, help="folder for applications.json and applications.md")
    args = parser.parse_args(argv)
    writers, formats = tuple(args.writers), tuple(args.formats)
    results = []
    for name in args.models:
        for writer in writers:
            with tempfile.TemporaryDirectory() as folder:
                result = check(build(writer, name, APPLICATIONS[name]), writer, formats, Path(folder))
            results.append({**result, "model": name})
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
            framework(writer).backend.clear_session()
            gc.collect()
    text = table(results, writers, formats)
    print(text)
    if args.out:
        from xlayers.files import publish

        args.out.mkdir(parents=True, exist_ok=True)
        for file, content in (("applications.json", json.dumps(results, indent=2) + "\n"), ("applications.md", text + "\n")):
            handle, temporary = tempfile.mkstemp(dir=args.out, prefix=f".{file}.", suffix=".tmp")
            with os.fdopen(handle, "w") as out:
                out.write(content)
            publish(temporary, args.out / file)
    failed = [r for r in results for e in r["files"].values() if not e.get("passed") or e.get("round_trip") != "exact"]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""xlayers' ONNX export against Keras 3's own ``model.export(format="onnx")`` on the same layers
and weights: agreement with Keras, node count, and onnxruntime latency, measured in one run.

Stage 1 (this process) builds each layer in xlayers and Keras with the same weights, exports both
files and records Keras's outputs; stage 2 (a subprocess that imports neither TF nor torch, so their
idle thread pools do not steal the 2 cores) times onnxruntime on both files, interleaved.

Needs the `bench` extra (tf2onnx, which Keras's TF-backend exporter uses).
Usage: python tools/bench_onnx.py [--batch 32] [--repeats 50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

CASES = {
    "dense-gelu 256->128": lambda X: (X.Dense(128, activation="gelu"), (256,)),
    "conv2d 3x3 s2 same 64x64x32->32": lambda X: (X.Conv2D(32, 3, strides=2, padding="same", activation="relu"), (64, 64, 32)),
    "conv2d x2 + dense (sequential)": lambda X: (
        X.Sequential([X.Conv2D(16, 3, strides=2, padding="same", activation="relu"), X.Conv2D(16, 3, padding="same", activation="relu"), X.Dense(8)]),
        (32, 32, 8),
    ),
    "lstm 64->128, 50 steps, sequences": lambda X: (X.LSTM(128, return_sequences=True), (50, 64)),
}


def _nodes(path: str) -> dict[str, int]:
    import onnx

    return dict(Counter(n.op_type for n in onnx.load(path).graph.node))


def export_all(folder: str, batch: int) -> dict:
    import keras
    import torch

    import xlayers
    from conformance.keras_reference import keras_twin_from_config
    from conformance.testing import randomize_weights
    from conformance.transfer import to_keras
    from xlayers.onnx import export

    plan = {}
    for name, make in CASES.items():
        layer, sample = make(xlayers)
        x = np.random.default_rng(0).standard_normal((batch, *sample)).astype(np.float32)
        layer(torch.from_numpy(x))
        layers = layer.layers if isinstance(layer, xlayers.Sequential) else [layer]
        for index, sub in enumerate(layers):
            randomize_weights(sub, seed=index)
        twins = [keras_twin_from_config(sub) for sub in layers]
        for sub, twin in zip(layers, twins):
            to_keras(sub, twin)
        inputs = keras.Input(sample if "lstm" not in name else (None, sample[1]))
        out = inputs
        for twin in twins:
            out = twin(out)
        model = keras.Model(inputs, out)
        expected = np.asarray(model(x))
        slug = name.split()[0]
        ours, theirs = f"{folder}/{slug}-xlayers.onnx", f"{folder}/{slug}-keras.onnx"
        start = time.perf_counter()
        export(layer.eval(), torch.from_numpy(x[:2]), ours, verbose=False)
        our_seconds = time.perf_counter() - start
        start = time.perf_counter()
        try:
            model.export(theirs, format="onnx", verbose=False)
            failure = None
        except Exception as error:  # recorded in the table: some layers Keras cannot export
            failure = f"{type(error).__name__}: {str(error).splitlines()[0][:80]}"
        their_seconds = time.perf_counter() - start
        np.save(f"{folder}/{slug}-x.npy", x)
        np.save(f"{folder}/{slug}-expected.npy", expected)
        plan[name] = {"slug": slug, "xlayers": ours, "keras": None if failure else theirs, "failure": failure,
                      "export_s": [our_seconds, their_seconds], "nodes": [_nodes(ours), None if failure else _nodes(theirs)]}
    return plan


def time_all(folder: str, plan: dict, repeats: int) -> dict:
    import onnxruntime as ort

    results = {}
    for name, entry in plan.items():
        x = np.load(f"{folder}/{entry['slug']}-x.npy")
        expected = np.load(f"{folder}/{entry['slug']}-expected.npy")
        sessions, failures = {}, {}
        for tool in ("xlayers", "keras"):
            if entry[tool] is None:
                continue
            try:
                session = ort.InferenceSession(entry[tool], providers=["CPUExecutionProvider"])
            except Exception as error:  # e.g. a file with an op onnxruntime does not know
                failures[tool] = f"the file does not load in onnxruntime: {str(error).split(' : ')[-1][:90]}"
                continue
            sessions[tool] = (session, session.get_inputs()[0].name)
        errors, times = {}, {tool: [] for tool in sessions}
        for tool, (session, input_name) in sessions.items():
            got = session.run(None, {input_name: x})[0]
            errors[tool] = float(np.max(np.abs(got.astype(np.float64) - expected)))
            for _ in range(5):
                session.run(None, {input_name: x})
        for _ in range(repeats):
            for tool, (session, input_name) in sessions.items():
                start = time.perf_counter()
                session.run(None, {input_name: x})
                times[tool].append((time.perf_counter() - start) * 1e3)
        results[name] = {"error": errors, "ms": {tool: statistics.median(v) for tool, v in times.items()}, "failures": failures}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--time", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time:
        plan = json.load(open(f"{args.time}/plan.json"))
        print(json.dumps(time_all(args.time, plan, args.repeats)))
        return
    with tempfile.TemporaryDirectory() as folder:
        plan = export_all(folder, args.batch)
        json.dump(plan, open(f"{folder}/plan.json", "w"))
        out = subprocess.run([sys.executable, __file__, "--time", folder, "--repeats", str(args.repeats)],
                             capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"timing subprocess failed:\n{out.stderr}")
        timings = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"batch {args.batch}, onnxruntime CPU, median of {args.repeats}; error = max |onnxruntime - Keras (TF) eager|")
    print("| model | exporter | nodes | main ops | max abs error vs Keras | ort ms | x keras file |")
    print("|---|---|---:|---|---:|---:|---:|")
    for name, entry in plan.items():
        for index, tool in enumerate(("xlayers", "keras")):
            nodes = entry["nodes"][index]
            label = "xlayers.onnx.export" if tool == "xlayers" else "keras model.export"
            failure = entry["failure"] if nodes is None else timings[name]["failures"].get(tool)
            if failure:
                print(f"| {name} | {label} | {'-' if nodes is None else sum(nodes.values())} | {failure} | - | - | - |")
                continue
            main = ", ".join(f"{op} {n}" for op, n in sorted(nodes.items()) if op in ("Conv", "LSTM", "Gemm", "MatMul", "Transpose", "Pad"))
            ms = timings[name]["ms"][tool]
            ratio = ms / timings[name]["ms"]["keras"] if "keras" in timings[name]["ms"] else float("nan")
            print(f"| {name} | {label} | {sum(nodes.values())} | {main} | {timings[name]['error'][tool]:.1e} | {ms:.3f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()

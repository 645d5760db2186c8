"""Recurrent layers' time: xlayers (fused path and exact loop) against torch's own module
(`nn.LSTM` / `nn.GRU` / `nn.RNN`, the same weights) and Keras on TF (eager and `tf.function`),
forward (inference) and forward+backward, with ratios measured in one run.

xlayers and torch's module run interleaved in one process (each repeat times both, so drift
on a shared machine hits both alike); Keras runs in its own subprocess afterwards: TF's and
torch's thread pools spin while idle, so sharing a process would measure the contention.
Median and minimum of the repeats after warm-up.

Usage: python tools/bench_recurrent.py [--layer gru] [--batch 32 --steps 100 --features 64 --units 128]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

LAYERS = {"lstm": ("LSTM", "LSTM"), "gru": ("GRU", "GRU"), "simple_rnn": ("SimpleRNN", "RNN")}  # xlayers/Keras name, torch module


def _time_ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def _interleaved(candidates: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    for fn in candidates.values():
        for _ in range(3):
            fn()
    times: dict[str, list[float]] = {label: [] for label in candidates}
    for _ in range(repeats):
        for label, fn in candidates.items():
            times[label].append(_time_ms(fn))
    return times


def _inputs(args: argparse.Namespace) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((args.batch, args.steps, args.features), dtype=np.float32)


def _torch_module(layer, module_name: str):
    """torch's own module with ``layer``'s weights, through the layer's declared torch views."""
    import torch

    module = getattr(torch.nn, module_name)(layer.weight_view("kernel").shape[1], layer.units, batch_first=True)
    with torch.no_grad():
        module.weight_ih_l0.copy_(layer.weight_view("kernel"))
        module.weight_hh_l0.copy_(layer.weight_view("recurrent_kernel"))
        bias = layer.weight_view("bias")
        if bias.dim() == 2:  # GRU's reset_after rows: input, recurrent
            module.bias_ih_l0.copy_(bias[0])
            module.bias_hh_l0.copy_(bias[1])
        else:
            module.bias_ih_l0.copy_(bias)
            module.bias_hh_l0.zero_()
    return module


def measure_torch(args: argparse.Namespace) -> dict[str, object]:
    import torch

    import xlayers

    name, module_name = LAYERS[args.layer]
    x = torch.from_numpy(_inputs(args))
    fused = getattr(xlayers, name)(args.units, return_sequences=True)
    loop = getattr(xlayers, name)(args.units, return_sequences=True, **({"use_cudnn": False} if name != "SimpleRNN" else {"activation": "sigmoid"}))
    fused(x), loop(x)
    module = _torch_module(fused, module_name)
    with torch.no_grad():
        difference = float((module(x)[0] - fused(x)).abs().max())

    def forward(call):
        def run() -> None:
            with torch.no_grad():
                call(x)
        return run

    def train(call):
        def run() -> None:
            out = call(x.clone().requires_grad_(True))
            (out[0] if isinstance(out, tuple) else out).sum().backward()
        return run

    results: dict[str, object] = {"threads": torch.get_num_threads(), "max |xlayers - torch|": difference}
    for label, runner in (("forward", forward), ("forward+backward", train)):
        times = _interleaved({"xlayers fused": runner(fused), f"torch nn.{module_name}": runner(module)}, args.repeats)
        for candidate, values in times.items():
            results[f"{label}/{candidate}"] = (statistics.median(values), min(values))
        loop_times = _interleaved({"xlayers loop": runner(loop)}, max(3, args.repeats // 3))["xlayers loop"]
        results[f"{label}/xlayers loop"] = (statistics.median(loop_times), min(loop_times))
    results["paths"] = f"fused -> {fused.last_path}, loop -> {loop.last_path}"
    return results


def measure_keras(args: argparse.Namespace) -> dict[str, object]:
    import keras
    import tensorflow as tf

    name, _ = LAYERS[args.layer]
    x = tf.constant(_inputs(args))
    layer = getattr(keras.layers, name)(args.units, return_sequences=True)
    layer(x)
    graph = tf.function(lambda inputs: layer(inputs))

    def train() -> None:
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x))
        tape.gradient(loss, [x, *layer.trainable_weights])

    @tf.function
    def train_step(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum(layer(inputs))
        return tape.gradient(loss, [inputs, *layer.trainable_weights])

    repeats = max(3, args.repeats // 3)
    candidates = {
        "forward/keras (tf eager)": lambda: layer(x).numpy(),
        "forward/keras (tf.function)": lambda: graph(x).numpy(),
        "forward+backward/keras (tf eager)": train,
        "forward+backward/keras (tf.function)": lambda: train_step(x),
    }
    return {label: (statistics.median(v), min(v)) for label, v in _interleaved(candidates, repeats).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", choices=sorted(LAYERS), default="gru")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--measure", choices=["torch", "keras"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps((measure_torch if args.measure == "torch" else measure_keras)(args)))
        return
    results: dict[str, object] = {}
    for framework in ("torch", "keras"):
        out = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--measure", framework], check=True, capture_output=True, text=True)
        results.update(json.loads(out.stdout.strip().splitlines()[-1]))
    name, module_name = LAYERS[args.layer]
    print(f"{name} batch={args.batch} steps={args.steps} features={args.features} units={args.units}, "
          f"torch threads={results['threads']}, {args.repeats} repeats (xlayers and nn.{module_name} interleaved; "
          f"loop and Keras {max(3, args.repeats // 3)})")
    print(f"| pass | candidate | median ms | min ms | x xlayers fused (median) | x xlayers fused (min) |\n|---|---|---:|---:|---:|---:|")
    for label in ("forward", "forward+backward"):
        base_median, base_min = results[f"{label}/xlayers fused"]
        for candidate in ("xlayers fused", f"torch nn.{module_name}", "xlayers loop", "keras (tf eager)", "keras (tf.function)"):
            median, minimum = results[f"{label}/{candidate}"]
            print(f"| {label} | {candidate} | {median:.2f} | {minimum:.2f} | {median / base_median:.2f} | {minimum / base_min:.2f} |")
    print(f"paths: {results['paths']}; max |xlayers - torch| on the same weights: {results['max |xlayers - torch|']:.2e}")


if __name__ == "__main__":
    main()

"""LSTM time: xlayers' fused path vs its loop path vs Keras (TF backend, eager and tf.function),
forward and forward+backward, with ratios to the fused path measured in one run.

Each framework is timed in its own subprocess, one after the other: TF's and torch's thread
pools spin while idle, so sharing one process (or running side by side) on a small machine
measures the contention, not the kernels. Median of repeats after warm-up.

Usage: python tools/bench_lstm.py [--batch 32 --steps 100 --features 64 --units 128]
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


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _inputs(args: argparse.Namespace) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((args.batch, args.steps, args.features), dtype=np.float32)


def measure_torch(args: argparse.Namespace) -> dict[str, float]:
    import torch

    import xlayers

    x = torch.from_numpy(_inputs(args))
    results = {}
    for label, use_cudnn in (("xlayers fused", "auto"), ("xlayers loop", False)):
        layer = xlayers.LSTM(args.units, return_sequences=True, use_cudnn=use_cudnn)
        layer(x)

        def forward() -> None:
            with torch.no_grad():
                layer(x)

        def train() -> None:
            layer(x.clone().requires_grad_(True)).sum().backward()

        results[f"forward/{label}"] = _median_ms(forward, args.repeats)
        results[f"forward+backward/{label}"] = _median_ms(train, args.repeats)
        results[f"path/{label}"] = layer.last_path
    results["threads"] = torch.get_num_threads()
    return results


def measure_keras(args: argparse.Namespace) -> dict[str, float]:
    import keras
    import tensorflow as tf

    x = tf.constant(_inputs(args))
    layer = keras.layers.LSTM(args.units, return_sequences=True)
    layer(x)

    def forward() -> None:
        layer(x).numpy()

    def train() -> None:
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x))
        tape.gradient(loss, [x, *layer.trainable_weights])

    graph = tf.function(lambda inputs: layer(inputs))

    def forward_graph() -> None:
        graph(x).numpy()

    @tf.function
    def train_step(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum(layer(inputs))
        return tape.gradient(loss, [inputs, *layer.trainable_weights])

    return {
        "forward/keras (tf)": _median_ms(forward, args.repeats),
        "forward+backward/keras (tf)": _median_ms(train, args.repeats),
        "forward/keras (tf.function)": _median_ms(forward_graph, args.repeats),
        "forward+backward/keras (tf.function)": _median_ms(lambda: train_step(x), args.repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--measure", choices=["torch", "keras"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps((measure_torch if args.measure == "torch" else measure_keras)(args)))
        return
    results: dict[str, float] = {}
    for framework in ("torch", "keras"):
        out = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--measure", framework], check=True, capture_output=True, text=True)
        results.update(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"LSTM batch={args.batch} steps={args.steps} features={args.features} units={args.units}, "
          f"torch threads={results['threads']}, median of {args.repeats}, one subprocess per framework")
    print("| pass | candidate | ms | x xlayers fused |\n|---|---|---:|---:|")
    for name in ("forward", "forward+backward"):
        base = results[f"{name}/xlayers fused"]
        for label in ("xlayers fused", "xlayers loop", "keras (tf)", "keras (tf.function)"):
            value = results[f"{name}/{label}"]
            print(f"| {name} | {label} | {value:.2f} | {value / base:.2f} |")
    print(f"paths: fused -> {results['path/xlayers fused']}, loop -> {results['path/xlayers loop']}")


if __name__ == "__main__":
    main()

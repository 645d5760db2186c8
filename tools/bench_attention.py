"""MultiHeadAttention's time: xlayers against torch's own `nn.MultiheadAttention` (the same
weights), self-attention, forward (inference, ``no_grad``) and forward+backward, with ratios
measured in one run.

Both run interleaved in one process (each repeat times both, so drift on a shared machine hits
both alike); median and minimum of the repeats after warm-up. torch's module is called as its
users call it for speed: ``need_weights=False`` (its fused path; in inference ``eval()`` and
``no_grad`` also give it its native fast path).

Usage: python tools/bench_attention.py [--batch 8 --length 256 --dim 256 --heads 8 --repeats 21]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

import xlayers


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


def torch_module(layer: xlayers.MultiHeadAttention) -> torch.nn.MultiheadAttention:
    """torch's module with ``layer``'s weights: Keras's ``(dim, heads, key_dim)`` projections
    flattened to ``(heads * key_dim, dim)`` rows (head-major, as torch splits heads)."""
    dim = layer.query_dense.kernel.shape[0]
    module = torch.nn.MultiheadAttention(dim, layer.num_heads, batch_first=True)
    with torch.no_grad():
        rows = [dense.kernel.reshape(dim, -1).T for dense in (layer.query_dense, layer.key_dense, layer.value_dense)]
        module.in_proj_weight.copy_(torch.cat(rows))
        module.in_proj_bias.copy_(torch.cat([dense.bias.reshape(-1) for dense in (layer.query_dense, layer.key_dense, layer.value_dense)]))
        module.out_proj.weight.copy_(layer.output_dense.kernel.reshape(-1, dim).T)
        module.out_proj.bias.copy_(layer.output_dense.bias)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.length, args.dim)
    layer = xlayers.MultiHeadAttention(args.heads, args.dim // args.heads, bias_initializer="random_normal")
    layer(x, x)
    module = torch_module(layer)
    with torch.no_grad():
        difference = float((module(x, x, x, need_weights=False)[0] - layer(x, x)).abs().max())

    def ours(inputs: torch.Tensor) -> torch.Tensor:
        return layer(inputs, inputs)

    def theirs(inputs: torch.Tensor) -> torch.Tensor:
        return module(inputs, inputs, inputs, need_weights=False)[0]

    def forward(call: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        def run() -> None:
            with torch.no_grad():
                call(x)
        return run

    def train(call: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        def run() -> None:
            call(x.clone().requires_grad_(True)).sum().backward()
        return run

    print(f"MultiHeadAttention self-attention batch={args.batch} length={args.length} dim={args.dim} heads={args.heads} "
          f"(key_dim {args.dim // args.heads}), float32, CPU, torch threads={torch.get_num_threads()}, {args.repeats} repeats interleaved")
    print("| pass | candidate | median ms | min ms | x torch (median) | x torch (min) |\n|---|---|---:|---:|---:|---:|")
    for label, runner, training in (("forward", forward, False), ("forward+backward", train, True)):
        layer.train(training)
        module.train(training)
        times = _interleaved({"xlayers": runner(ours), "torch nn.MultiheadAttention": runner(theirs)}, args.repeats)
        base_median, base_min = statistics.median(times["torch nn.MultiheadAttention"]), min(times["torch nn.MultiheadAttention"])
        for candidate, values in times.items():
            median, minimum = statistics.median(values), min(values)
            print(f"| {label} | {candidate} | {median:.2f} | {minimum:.2f} | {median / base_median:.2f} | {minimum / base_min:.2f} |")
    print(f"path: {layer.last_path}; max |xlayers - torch| on the same weights: {difference:.2e}")


if __name__ == "__main__":
    main()

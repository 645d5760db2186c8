"""Benchmark TF-'same' pooling (xlayers) against torch's plain unpadded pooling op.

One run times, interleaved (the candidates in rotating order inside each repeat; medians
reported), on the same NHWC tensor viewed as NCHW (torch's ``channels_last``):

* ``torch valid``    ``F.max_pool2d`` / ``F.avg_pool2d`` with no padding: the ratio reference
                     (its output can be a row and a column smaller: a floor, not a competitor)
* ``xlayers same``   ``MaxPooling2D`` / ``AveragePooling2D(padding="same")``: torch's implicit
                     padding plus ceil mode (stride >= 2), or the shift (stride 1); no input copy
* ``F.pad + pool``   the obvious port: pad the input (``-inf`` for max; zeros for average, which
                     also needs the padded-cell count, so it divides by a pooled mask)

The default case is a ResNet stem pool, batch 32, 56x56x64, pool 3 stride 2 (TF pads (0, 1) on
each axis, the extra cell at the end); ``--all`` adds pool 2 stride 1 (the shift: one output
crop) and pool 3 stride 2 on 57x57 (symmetric, torch's own padding). ``--backward`` times
forward + backward too.

Usage: python tools/bench_pooling.py [--threads N] [--repeats 15] [--backward] [--all]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from xlayers import AveragePooling2D, MaxPooling2D  # noqa: E402
from xlayers.padding import same_padding  # noqa: E402


def pad_then_pool(x: torch.Tensor, mode: str, k: int, s: int) -> torch.Tensor:
    """``F.pad`` then an unpadded pool (a padded copy of the input)."""
    (bh, ah), (bw, aw) = same_padding(tuple(x.shape[2:]), k, s)
    flat = [bw, aw, bh, ah]
    if mode == "max":
        return F.max_pool2d(F.pad(x, flat, value=float("-inf")), k, s)
    ones = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=x.device)
    return F.avg_pool2d(F.pad(x, flat), k, s) / F.avg_pool2d(F.pad(ones, flat), k, s)


def candidates(mode: str, k: int, s: int) -> dict:
    layer = (MaxPooling2D if mode == "max" else AveragePooling2D)(k, strides=s, padding="same")
    plain = F.max_pool2d if mode == "max" else F.avg_pool2d
    return {
        "torch valid": lambda x: plain(x.permute(0, 3, 1, 2), k, s).permute(0, 2, 3, 1),
        "xlayers same": layer,
        "F.pad + pool": lambda x: pad_then_pool(x.permute(0, 3, 1, 2), mode, k, s).permute(0, 2, 3, 1),
    }


def time_all(fns: dict, x: torch.Tensor, repeats: int, backward: bool) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for fn in fns.values():  # warm up (and build the layer)
        fn(x.detach().requires_grad_(backward)).sum().backward() if backward else fn(x)
    for repeat in range(repeats):
        for name in names[repeat % len(names):] + names[: repeat % len(names)]:
            inputs = x.detach().requires_grad_(backward)
            start = time.perf_counter()
            if backward:
                out = fns[name](inputs)
                out.backward(torch.ones_like(out))
            else:
                with torch.no_grad():
                    fns[name](inputs)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) * 1e3 for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--backward", action="store_true", help="also time forward + backward")
    parser.add_argument("--all", action="store_true", help="also stride 1 (pool 2) and a symmetric case")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = [((32, 56, 56, 64), 3, 2)]
    if args.all:
        shapes += [((32, 56, 56, 64), 2, 1), ((32, 57, 57, 64), 3, 2)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats}; NHWC input viewed as NCHW")
    passes = ["forward"] + (["forward+backward"] if args.backward else [])
    for shape, k, s in shapes:
        x = torch.randn(shape)
        pads = same_padding(shape[1:3], k, s)
        for mode in ("max", "average"):
            fns = candidates(mode, k, s)
            with torch.no_grad():
                reference = pad_then_pool(x.permute(0, 3, 1, 2), mode, k, s).permute(0, 2, 3, 1)
                torch.testing.assert_close(fns["xlayers same"](x), reference)  # the same numbers
            for which in passes:
                ms = time_all(fns, x, args.repeats, which != "forward")
                base = ms["torch valid"]
                print(f"\n{mode} pool {k} stride {s}, NHWC {'x'.join(map(str, shape))}, TF pads {pads}, {which}")
                print("| formulation | ms | ratio to torch valid |\n|---|---:|---:|")
                for name, value in ms.items():
                    print(f"| {name} | {value:.2f} | {value / base:.2f} |")


if __name__ == "__main__":
    main()

"""Benchmark xlayers' 'same' ``Conv2DTranspose`` against torch's plain ``F.conv_transpose2d``.

Both run on the same tensor: an NHWC batch, which xlayers takes as it is and torch gets as its
NCHW ``channels_last`` view (the same memory). The candidates, timed interleaved (rotating
order inside each repeat; medians, and minima in parentheses):

* ``torch``      ``F.conv_transpose2d(x, w, b, stride, padding=1, output_padding=1)``: torch's
                 usual 'same'-sized transposed conv (crop (1, 0): not TF's), the reference.
* ``xlayers``    ``Conv2DTranspose(padding="same")`` on the NHWC tensor: TF's crop (0, 1),
                 ``padding=0`` plus a ``narrow`` view of the one extra row/column.
* ``xlayers+relu`` the same with ``activation="relu"`` against ``torch`` + ``relu``: the
                 usual case, where the activation turns the strided view into a dense output.

Forward alone and forward + backward (the gradient of a random upstream wrt the input and the
weights). Ratios are ``xlayers / torch`` from the same run.

Usage: python tools/bench_conv_transpose.py [--threads 2] [--repeats 20] [--batch 16] [--size 28]
       [--channels 64] [--filters 128] [--kernel 3] [--strides 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn.functional as F

from xlayers import Conv2DTranspose


def candidates(args: argparse.Namespace, backward: bool) -> dict[str, object]:
    n, size, c, filters, k, s = args.batch, args.size, args.channels, args.filters, args.kernel, args.strides
    x = torch.randn(n, size, size, c, requires_grad=backward)  # NHWC
    ours = Conv2DTranspose(filters, k, strides=s, padding="same", input_shape=(size, size, c))
    ours_relu = Conv2DTranspose(filters, k, strides=s, padding="same", activation="relu", input_shape=(size, size, c))
    w = ours.weight_view("kernel", "torch").detach().clone().requires_grad_(backward)  # (in, out, kh, kw)
    b = torch.randn(filters, requires_grad=backward)
    x_cl = x.permute(0, 3, 1, 2)  # the same memory: NCHW channels_last
    # torch's own 'same'-sized transposed conv: output size * stride
    pad, out_pad = (k - 1) // 2, s - 1 - (k - 1) + 2 * ((k - 1) // 2)
    out = size * s
    assert (size - 1) * s - 2 * pad + k + out_pad == out, "no torch padding gives the same size for this kernel/stride"

    def run(fn):
        def call():
            y = fn()
            if backward:
                y.backward(upstream_for(y))
            return y

        return call

    upstreams: dict[tuple, torch.Tensor] = {}

    def upstream_for(y: torch.Tensor) -> torch.Tensor:
        key = (tuple(y.shape), tuple(y.stride()))
        if key not in upstreams:
            upstreams[key] = torch.randn_like(y)
        return upstreams[key]

    grad = torch.enable_grad if backward else torch.no_grad

    def with_mode(fn):
        def call():
            with grad():
                return fn()

        return call

    return {
        "torch": with_mode(run(lambda: F.conv_transpose2d(x_cl, w, b, s, pad, out_pad))),
        "xlayers": with_mode(run(lambda: ours(x))),
        "torch+relu": with_mode(run(lambda: F.relu(F.conv_transpose2d(x_cl, w, b, s, pad, out_pad)))),
        "xlayers+relu": with_mode(run(lambda: ours_relu(x))),
    }


def time_interleaved(cands: dict[str, object], repeats: int, warmup: int) -> dict[str, list[float]]:
    names = list(cands)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(warmup):
        for name in names:
            cands[name]()
    for r in range(repeats):
        for i in range(len(names)):
            name = names[(i + r) % len(names)]
            t0 = time.perf_counter()
            cands[name]()
            samples[name].append((time.perf_counter() - t0) * 1e3)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--filters", type=int, default=128)
    parser.add_argument("--kernel", type=int, default=3)
    parser.add_argument("--strides", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; batch {args.batch}, "
          f"{args.size}x{args.size}x{args.channels} -> {args.filters} filters, kernel {args.kernel}, "
          f"stride {args.strides}, 'same', NHWC (torch: its channels_last NCHW view); "
          f"median ms (min ms) over {args.repeats} repeats")
    for backward in (False, True):
        samples = time_interleaved(candidates(args, backward), args.repeats, args.warmup)
        median = {name: statistics.median(v) for name, v in samples.items()}
        print(f"\n{'forward + backward' if backward else 'forward'}")
        for name, values in samples.items():
            print(f"  {name:<14} {median[name]:8.2f} ({min(values):.2f})")
        print(f"  ratio xlayers / torch:           {median['xlayers'] / median['torch']:.3f}")
        print(f"  ratio xlayers+relu / torch+relu: {median['xlayers+relu'] / median['torch+relu']:.3f}")


if __name__ == "__main__":
    main()

"""Benchmark the exact formulations of TF 'same' (asymmetric) padding for torch convs.

One run times, interleaved (candidates in rotating order inside each repeat, medians
reported), for each case:

* ``torch valid``   unpadded ``F.conv2d`` on the same input (the ratio reference; its
                    output is smaller, so it is a lower bound rather than a competitor)
* ``pad+conv``      ``F.pad`` then an unpadded conv (the obvious formulation)
* ``shift``         xlayers default: symmetric pad ``before + stride``, drop the first
                    output row/col, dense channels-last copy of the (small) output
* ``shift view``    the same, returning the strided view (no output copy)
* ``border``        bulk conv with symmetric ``before`` pad + thin edge slabs, written into
                    a preallocated output
* ``fold``          symmetric pad ``before + dilation`` and a zero tap prepended to the kernel
* ``tf SAME``       ``tf.nn.conv2d(padding='SAME') + bias_add`` on the NHWC tensor (if TF imports)

Inputs are NHWC tensors viewed as NCHW (torch ``channels_last``). Afterwards it prints
evidence that such an input reaches oneDNN without a layout copy (torch.profiler op list
and oneDNN's own verbose log).

Allocator note: at this size a fp32 tensor is ~32 MiB, right at glibc's largest mmap
threshold, so every fresh tensor above it is mmap'ed and page-faulted in (~8 ms here),
which dominates "copy" costs. The tables are therefore printed twice: with the default
allocator, then (child process) with ``MALLOC_MMAP_THRESHOLD_`` raised so big blocks are
reused, the steady state a caching allocator would give.

Usage: python tools/bench_conv_padding.py [--threads 2] [--repeats 15] [--quick] [--backward]
       [--no-tf] [--no-heap] [--no-bench]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from xlayers.layers.conv_ops import conv  # noqa: E402
from xlayers.padding import output_size, same_padding  # noqa: E402

# ----------------------------------------------------------------------------------------
# The exact formulations of asymmetric ('same') padding that xlayers does not use, kept here
# to be timed against its "shift" (xlayers.layers.conv_ops). Each takes the channels-first
# view ``x``, torch-layout ``w``, and per-dim ``pads`` / strides ``ss`` / dilations ``ds``.
# ----------------------------------------------------------------------------------------
CONV_FNS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def flat_pad(pads):
    """``F.pad`` order: last dimension first."""
    flat = []
    for b, a in reversed(tuple(pads)):
        flat += [b, a]
    return flat


def out_len(size, before, after, k, s, d):
    return (size + before + after - (k - 1) * d - 1) // s + 1


def conv_pad(x, w, bias, pads, ss, ds):
    """``F.pad`` the input (a copy), then an unpadded conv: the obvious formulation."""
    return CONV_FNS[len(ss)](F.pad(x, flat_pad(pads)), w, bias, ss, 0, ds)


def conv_fold(x, w, bias, pads, ss, ds, contiguous=True):
    """Pad symmetrically by ``before + z * dilation`` and prepend ``z`` zero taps to the kernel:
    the zero taps absorb the surplus leading pad (no input copy, ``(k + 1) / k`` the FLOPs)."""
    sym, taps = [], []
    for (b, a), d in zip(pads, ds):
        z = 0 if a <= b else -(-(a - b) // d)
        sym.append(b + z * d)
        taps.append(z)
    w2 = F.pad(w, flat_pad([(z, 0) for z in taps])) if any(taps) else w
    y = CONV_FNS[len(ss)](x, w2, bias, ss, tuple(sym), ds)
    outs = [out_len(n, b, a, k, s, d) for n, (b, a), k, s, d in zip(x.shape[2:], pads, w.shape[2:], ss, ds)]
    if list(y.shape[2:]) == outs:
        return y
    if not contiguous:
        for i, o in enumerate(outs):
            y = y.narrow(2 + i, 0, o)
        return y
    return F.pad(y, flat_pad([(0, o - y.shape[2 + i]) for i, o in enumerate(outs)]))


def conv_border(x, w, bias, pads, ss, ds):
    """Bulk conv with the symmetric ``before`` pad, the missing trailing output slabs from thin
    padded input slices, everything written into one preallocated output."""
    n = len(ss)
    conv_fn = CONV_FNS[n]
    sizes, ks = tuple(x.shape[2:]), tuple(w.shape[2:])
    befores = tuple(b for b, _ in pads)
    outs = tuple(out_len(sizes[i], *pads[i], ks[i], ss[i], ds[i]) for i in range(n))
    ms = tuple(max(min(out_len(sizes[i], befores[i], befores[i], ks[i], ss[i], ds[i]), outs[i]), 0) for i in range(n))
    main = None
    if all(m > 0 for m in ms):
        main = conv_fn(x, w, bias, ss, befores, ds)
        if ms == outs:
            for i in range(n):
                main = main.narrow(2 + i, 0, outs[i])
            return main
    like = main if main is not None else x
    order = sorted(range(like.dim()), key=lambda i: like.stride(i), reverse=True)  # same memory order
    full = (x.shape[0], w.shape[0], *outs)
    y = torch.empty([full[i] for i in order], dtype=x.dtype, device=x.device)
    y = y.permute([order.index(i) for i in range(like.dim())])
    if main is not None:
        region = y
        for i in range(n):
            region = region.narrow(2 + i, 0, ms[i])
            main = main.narrow(2 + i, 0, ms[i])
        region.copy_(main)
    for j in range(n):
        if ms[j] == outs[j]:
            continue
        b, _ = pads[j]
        lo = ms[j] * ss[j] - b  # first padded-input row (input coordinates) of the slab
        hi = (outs[j] - 1) * ss[j] - b + (ks[j] - 1) * ds[j] + 1  # one past its last row
        lo_c, hi_c = max(lo, 0), min(hi, sizes[j])
        slab_pads = list(pads)
        slab_pads[j] = (lo_c - lo, hi - hi_c)
        piece = F.pad(x.narrow(2 + j, lo_c, hi_c - lo_c), flat_pad(slab_pads))
        y.narrow(2 + j, ms[j], outs[j] - ms[j]).copy_(conv_fn(piece, w, bias, ss, 0, ds))
    return y


def conv_same(x, w, bias, s, d, method, contiguous=True):
    """TF 'same' conv of ``x`` by one formulation: ``"shift"`` (xlayers), ``"pad"``, ``"border"``, ``"fold"``."""
    if method == "shift":
        return conv(x, w, bias, strides=s, padding="same", dilation_rate=d, contiguous=contiguous)
    n = x.dim() - 2
    ss, ds = (s,) * n, (d,) * n
    pads = same_padding(tuple(x.shape[2:]), tuple(w.shape[2:]), ss, ds)
    if all(b == a for b, a in pads):  # symmetric: every formulation is torch's own padding=
        return conv(x, w, bias, strides=s, padding="same", dilation_rate=d)
    if method == "pad":
        return conv_pad(x, w, bias, pads, ss, ds)
    if method == "fold":
        return conv_fold(x, w, bias, pads, ss, ds, contiguous)
    return conv_border(x, w, bias, pads, ss, ds)

# (name, N, H, W, C_in, C_out, kernel, stride, dilation)
CASES = [
    ("3x3 s2 (main)", 32, 64, 64, 64, 64, 3, 2, 1),
    ("2x2 s1 even k", 32, 64, 64, 64, 64, 2, 1, 1),
    ("4x4 s2 even k", 32, 64, 64, 64, 64, 4, 2, 1),
    ("2x2 s1 d3", 32, 64, 64, 64, 64, 2, 1, 3),
    ("3x3 s2 d2", 32, 64, 64, 64, 64, 3, 2, 2),
    ("3x3 s1 d2 (sym)", 32, 64, 64, 64, 64, 3, 1, 2),
]
QUICK_CASES = [c[:1] + (8,) + c[2:] for c in CASES]

COPY_OPS = ("aten::copy_", "aten::contiguous", "aten::clone", "aten::constant_pad_nd",
            "aten::_to_copy", "aten::to", "aten::cat", "aten::pad")


def load_tf(threads: int):
    try:
        import tensorflow as tf  # noqa: PLC0415
    except Exception as exc:  # pragma: no cover - TF is optional
        print(f"[tensorflow not available: {exc!r}]")
        return None
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass
    return tf


def make_candidates(case, tf, backward: bool):
    name, n, h, w_, cin, cout, k, s, d = case
    rng = np.random.default_rng(0)
    x_nhwc = rng.standard_normal((n, h, w_, cin), dtype=np.float32)
    w_hwio = (rng.standard_normal((k, k, cin, cout)) / np.sqrt(k * k * cin)).astype(np.float32)
    b_np = rng.standard_normal(cout, dtype=np.float32)

    xt = torch.from_numpy(x_nhwc).permute(0, 3, 1, 2)  # channels_last view, no copy
    wt = torch.from_numpy(w_hwio).permute(3, 2, 0, 1).contiguous()
    bt = torch.from_numpy(b_np)
    if backward:
        xt.requires_grad_(True)
        wt.requires_grad_(True)
        bt.requires_grad_(True)
    (ph, pw) = same_padding((h, w_), k, s, d)
    asym = ph[0] != ph[1] or pw[0] != pw[1]

    def torch_fn(method=None, contiguous=True, valid=False):
        if valid:
            def f():
                return F.conv2d(xt, wt, bt, s, 0, d)
        else:
            def f():
                return conv_same(xt, wt, bt, s, d, method, contiguous)
        if not backward:
            return f

        def fb():
            y = f()
            y.backward(torch.ones_like(y))
            xt.grad = wt.grad = bt.grad = None
        return fb

    cands = {"torch valid": torch_fn(valid=True), "pad+conv": torch_fn("pad")}
    if asym:
        cands["shift"] = torch_fn("shift")
        cands["shift view"] = torch_fn("shift", contiguous=False)
        cands["border"] = torch_fn("border")
        cands["fold"] = torch_fn("fold")
    else:
        cands["xlayers (direct)"] = torch_fn("shift")

    ref = F.conv2d(F.pad(xt.detach(), (pw[0], pw[1], ph[0], ph[1])), wt.detach(), bt.detach(), s, 0, d)
    check = {}
    with torch.no_grad():
        for m in ("shift", "border", "fold"):
            y = conv_same(xt, wt, bt, s, d, m)
            check[m] = (float((y - ref).abs().max()),
                        y.is_contiguous(memory_format=torch.channels_last))
    if tf is not None and not backward:
        xtf = tf.constant(x_nhwc)
        wtf = tf.constant(w_hwio)
        btf = tf.constant(b_np)

        def tf_fn():
            return tf.nn.bias_add(tf.nn.conv2d(xtf, wtf, s, "SAME", dilations=d), btf)

        cands["tf SAME"] = tf_fn
        y_tf = tf_fn().numpy()
        check["tf"] = (float(np.abs(y_tf - ref.permute(0, 2, 3, 1).numpy()).max()), None)
    out_hw = output_size((h, w_), k, s, d, "same")
    return cands, check, (ph, pw), out_hw


def time_interleaved(cands, repeats: int, warmup: int, grad: bool):
    names = list(cands)
    ctx = torch.enable_grad if grad else torch.no_grad
    samples = {nm: [] for nm in names}
    with ctx():
        for nm in names:
            for _ in range(warmup):
                cands[nm]()
        for r in range(repeats):
            order = names[r % len(names):] + names[:r % len(names)]
            for nm in order:
                t0 = time.perf_counter()
                cands[nm]()
                samples[nm].append((time.perf_counter() - t0) * 1e3)
    return {nm: (statistics.median(v), min(v)) for nm, v in samples.items()}


def run_benchmarks(args, tf):
    cases = QUICK_CASES if args.quick else CASES
    for backward in ([False, True] if args.backward else [False]):
        print()
        print("=" * 96)
        print(("FORWARD + BACKWARD" if backward else "FORWARD (no_grad)")
              + f"  threads={torch.get_num_threads()}  repeats={args.repeats}  median ms (min ms)"
              + "  ratio = median / median(torch valid)")
        print(f"allocator: {allocator_mode()}")
        print("=" * 96)
        for case in cases:
            if backward and case[0] != cases[0][0]:
                continue
            cands, check, pads, out_hw = make_candidates(case, None if backward else tf, backward)
            name, n, h, w_, cin, cout, k, s, d = case
            res = time_interleaved(cands, args.repeats, args.warmup, backward)
            base = res["torch valid"][0]
            print(f"\n{name}: NHWC {n}x{h}x{w_}x{cin} -> {cout} filters, kernel {k}x{k}, stride {s}, "
                  f"dilation {d}; same pads (H, W) = {pads}, out = {out_hw}")
            print(f"  {'candidate':<18}{'median ms':>10}{'min ms':>9}{'ratio':>8}")
            for nm, (med, mn) in res.items():
                print(f"  {nm:<18}{med:>10.2f}{mn:>9.2f}{med / base:>8.2f}")
            checks = ", ".join(
                f"{m}: max|diff|={e:.1e}" + ("" if cl is None else f" cl={cl}")
                for m, (e, cl) in check.items()
            )
            print(f"  check vs F.pad reference: {checks}")


HEAP_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 32)}


def allocator_mode() -> str:
    if os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return f"glibc MALLOC_MMAP_THRESHOLD_={os.environ['MALLOC_MMAP_THRESHOLD_']} (big blocks reused from the heap)"
    return "glibc default (blocks > 32 MiB are mmap'ed afresh on every allocation)"


def allocator_probe():
    """Time and page-fault count of one fresh allocation just above / below 32 MiB."""
    import resource  # noqa: PLC0415

    def probe(shape):
        f = lambda: torch.empty(shape).fill_(0.0)  # noqa: E731
        for _ in range(3):
            f()
        times = []
        faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(10):
            t0 = time.perf_counter()
            f()
            times.append((time.perf_counter() - t0) * 1e3)
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / 10
        nbytes = int(np.prod(shape)) * 4
        print(f"    empty({shape}) [{nbytes / 2**20:.1f} MiB] + fill: {statistics.median(times):6.2f} ms, "
              f"{faults:6.0f} page faults/call")

    print(f"allocator: {allocator_mode()}")
    probe((32, 63, 63, 64))
    probe((32, 65, 65, 64))


def run_heap_child(args):
    cmd = [sys.executable, __file__, "--threads", str(args.threads), "--repeats", str(args.repeats),
           "--warmup", str(args.warmup), "--tables-only"]
    for flag in ("quick", "backward", "no_tf"):
        if getattr(args, flag):
            cmd.append("--" + flag.replace("_", "-"))
    print()
    print("#" * 96)
    print("# SAME TABLES, re-run in a child process with glibc's mmap threshold raised to 1 GiB, i.e.")
    print("# steady state without a page fault on every fresh >32 MiB tensor (like a caching allocator)")
    print("#" * 96)
    sys.stdout.flush()
    subprocess.run(cmd, env=dict(os.environ, **HEAP_ENV), check=False)


def profiler_evidence():
    print()
    print("=" * 96)
    print("LAYOUT EVIDENCE: channels_last input reaches the conv without a layout copy")
    print("=" * 96)
    n, h, w_, c = 8, 32, 32, 16
    x_nhwc = torch.randn(n, h, w_, c)
    x = x_nhwc.permute(0, 3, 1, 2)
    wt = torch.randn(16, c, 3, 3)
    bt = torch.randn(16)
    print(f"input: NHWC {tuple(x_nhwc.shape)} viewed as NCHW {tuple(x.shape)} strides {x.stride()}; "
          f"is_contiguous(channels_last)={x.is_contiguous(memory_format=torch.channels_last)}; "
          f"same storage as NHWC tensor: {x.data_ptr() == x_nhwc.data_ptr()}")
    in_shape = list(x.shape)
    from torch.profiler import ProfilerActivity, profile  # noqa: PLC0415

    for label, fn in [
        ("xlayers conv(padding='same', stride 2) [shift]",
         lambda: conv(x, wt, bt, strides=2, padding="same")),
        ("xlayers conv(padding='same', stride 2, contiguous=False)",
         lambda: conv(x, wt, bt, strides=2, padding="same", contiguous=False)),
        ("baseline F.pad + F.conv2d",
         lambda: F.conv2d(F.pad(x, (0, 1, 0, 1)), wt, bt, 2)),
    ]:
        with torch.no_grad():
            fn()
            with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
                y = fn()
        print(f"\n{label}: output {tuple(y.shape)} strides {y.stride()} "
              f"channels_last={y.is_contiguous(memory_format=torch.channels_last)}")
        input_sized_copies = []
        for ev in prof.events():
            shapes = [list(s) for s in ev.input_shapes if isinstance(s, (list, tuple)) and len(s) == 4]
            tag = ""
            if ev.name in COPY_OPS:
                if any(s == in_shape for s in shapes) or any(
                        s[0] == n and s[1] == c and s[2] >= h and s[3] >= w_ for s in shapes):
                    tag = "   <-- INPUT-SIZED COPY"
                    input_sized_copies.append(ev.name)
                else:
                    tag = "   (copy, not input-sized)"
            print(f"    {ev.name:<34} shapes={shapes}{tag}")
        print(f"  input-sized copy ops: {input_sized_copies or 'none'}")


def onednn_verbose_child():
    x = torch.randn(8, 32, 32, 16).permute(0, 3, 1, 2)
    wt = torch.randn(16, 16, 3, 3)
    with torch.no_grad():
        conv(x, wt, None, strides=2, padding="same")
        sys.stdout.flush()
        print("---- begin", flush=True)
        with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
            conv(x, wt, None, strides=2, padding="same")
        sys.stdout.flush()


def onednn_evidence():
    print("\noneDNN verbose log of xlayers conv(padding='same', stride 2) on the channels_last input")
    print("(format tags: acdb = NHWC memory, abcd = NCHW; a 'reorder' of the 8x16x32x32 src would be a copy):")
    out = subprocess.run([sys.executable, __file__, "--onednn-verbose-child"], capture_output=True,
                         text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    lines = out.stdout.split("---- begin", 1)[-1].splitlines()
    shown = [ln for ln in lines if ",exec," in ln]
    for ln in shown:
        parts = ln.split(",")
        print(f"    {parts[5]:<12} {parts[6]:<18} {parts[8]}  {parts[-2]}")
    if not shown:
        print("    (no oneDNN verbose output captured; torch may not be using oneDNN here)")
    src_reorders = [ln for ln in shown if ",reorder," in ln and "8x16x32x32" in ln]
    print(f"  reorders of the input tensor: {len(src_reorders)}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="batch 8 instead of 32")
    p.add_argument("--backward", action="store_true", help="also time forward+backward (main case)")
    p.add_argument("--no-bench", action="store_true", help="only print the layout evidence")
    p.add_argument("--no-tf", action="store_true", help="skip TensorFlow")
    p.add_argument("--no-heap", action="store_true",
                   help="skip the second run with glibc's mmap threshold raised (allocator-neutral timings)")
    p.add_argument("--tables-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--onednn-verbose-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.onednn_verbose_child:
        onednn_verbose_child()
        return
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"mkldnn available {torch.backends.mkldnn.is_available()}")
    tf = None if (args.no_bench or args.no_tf) else load_tf(args.threads)
    if tf is not None:
        print(f"tensorflow {tf.__version__}, TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS')}")
    if not args.no_bench:
        allocator_probe()
        run_benchmarks(args, tf)
        if not args.tables_only and not args.no_heap and not os.environ.get("MALLOC_MMAP_THRESHOLD_"):
            run_heap_child(args)
    if args.tables_only:
        return
    profiler_evidence()
    onednn_evidence()


if __name__ == "__main__":
    main()

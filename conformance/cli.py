"""``xlayers conformance``: run the built-in cases against Keras and write a report."""

from __future__ import annotations

import argparse
import fnmatch
import sys
import time
from typing import TextIO

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="cpu",
                        help="where xlayers runs (the Keras reference always runs on CPU); 'all' adds cuda when torch sees one")
    parser.add_argument("--only", metavar="PATTERN", help="run case ids matching this glob or substring (e.g. 'lstm/*', 'conv2d/same')")
    parser.add_argument("--report", metavar="DIR", default="conformance-report", help="directory for report.json and report.md")
    parser.add_argument("--tf32", action="store_true", help="allow TF32 on CUDA (off by default: conformance runs measure full float32)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _matches(case_id: str, pattern: str | None) -> bool:
    return pattern is None or pattern in case_id or fnmatch.fnmatch(case_id, pattern)


def _progress(stream: TextIO, done: int, total: int, failed: int, label: str, started: float) -> None:
    width = 28
    filled = int(width * done / max(total, 1))
    elapsed = time.perf_counter() - started
    eta = elapsed / max(done, 1) * (total - done)
    stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} failed {failed} {elapsed:5.0f}s eta {eta:4.0f}s {label[:48]:<48}")
    stream.flush()


def run(args: argparse.Namespace) -> int:
    import torch

    from . import keras_reference
    from .cases import REGISTRY, all_cases
    from .report import machine, summary_table, write_report
    from .runner import run_case, run_error_case

    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    devices = ["cpu"] if args.device == "cpu" else []
    if args.device in ("cuda", "all"):
        if torch.cuda.is_available():
            devices.append("cuda")
        elif args.device == "cuda":
            print("xlayers conformance: --device cuda, but torch sees no CUDA device.", file=sys.stderr)
            return 2
        else:
            print("note: torch sees no CUDA device; running cpu only.", file=sys.stderr)
    if args.device == "all":
        devices.insert(0, "cpu")

    jobs = [(info, case, device, dtype) for info, case in all_cases() if _matches(case.id, args.only)
            for device in devices for dtype in case.dtypes if case.id not in info.skips]
    errors = [(info, ec) for info in REGISTRY for ec in info.error_cases]
    if args.only:
        errors = [(info, ec) for info, ec in errors if _matches(f"{info.cls.__name__.lower()}/error-{ec.variant}", args.only)]
    if not jobs and not errors:
        print(f"xlayers conformance: no case matches --only {args.only!r}.", file=sys.stderr)
        return 2
    keras = keras_reference.keras()
    started = time.perf_counter()
    results = []
    total = len(jobs) + len(errors)
    show = not args.no_progress and sys.stderr.isatty()
    failed = 0
    for index, (info, case, device, dtype) in enumerate(jobs, 1):
        result = run_case(info, case, device, dtype)
        results.append(result)
        failed += not result.passed
        if show:
            _progress(sys.stderr, index, total, failed, f"{case.id} {device} {dtype}", started)
        elif index % 25 == 0 or index == len(jobs):
            print(f"  {index}/{total} records, {failed} failed, {time.perf_counter() - started:.0f}s", file=sys.stderr)
    for info, error_case in errors:
        result = run_error_case(info, error_case)
        results.append(result)
        failed += not result.passed
    if show:
        _progress(sys.stderr, total, total, failed, "done", started)
        sys.stderr.write("\n")
    seconds = time.perf_counter() - started
    import tensorflow as tf

    meta = {
        "passed": total - failed, "failed": failed, "total": total, "seconds": round(seconds, 1),
        "devices": devices, "machine": machine(), "keras": keras.__version__, "tensorflow": tf.__version__,
        "torch": torch.__version__, "tf32": args.tf32, "only": args.only,
    }
    json_path, md_path = write_report(args.report, results, meta)
    print(summary_table(results))
    for r in results:
        if not r.passed:
            detail = r.error.splitlines()[0] if r.error else "; ".join(c.detail or c.name for c in r.checks if not c.passed)
            print(f"FAILED {r.id} [{r.device} {r.dtype}]: {detail[:300]}")
    print(f"{total - failed} passed, {failed} failed in {seconds:.1f}s; report: {json_path} and {md_path}")
    return 1 if failed else 0

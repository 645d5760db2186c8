"""``xlayers conformance``: run the built-in cases against Keras and write a report.

Records are spread over worker processes (``--workers``, default: one per core), each with
its own torch and TensorFlow limited to its share of the cores. The ONNX check runs once
per ONNX group of cases (`conformance.cases.onnx_plan`); the other records of the group
name the record that carries it.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["add_arguments", "run"]

# a job: ("case", case id, device, dtype, onnx plan entry) or ("error", layer class name, error variant)
Job = tuple[Any, ...]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="cpu",
                        help="where xlayers runs (the Keras reference always runs on CPU); 'all' adds cuda when torch sees one")
    parser.add_argument("--only", metavar="PATTERN", help="run case ids matching this glob or substring (e.g. 'lstm/*', 'conv2d/same')")
    parser.add_argument("--report", metavar="DIR", default="conformance-report", help="directory for report.json and report.md")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="worker processes (each with its share of the cores); 1 runs everything in this process")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX export check")
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


def _start_worker(threads: int | None, tf32: bool) -> None:
    """Per worker process: torch and TensorFlow get ``threads`` threads each (``None``: as they
    are, for a run in this process), and the reference loads."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    from .keras_reference import keras

    keras()
    if threads is not None:
        import tensorflow as tf

        torch.set_num_threads(threads)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def _run_job(job: Job) -> Any:
    from .cases import REGISTRY, find
    from .runner import run_case, run_error_case

    if job[0] == "case":
        _, case_id, device, dtype, onnx = job
        info, case = find(case_id)
        return run_case(info, case, device, dtype, onnx)
    _, layer, variant = job
    info = next(i for i in REGISTRY if i.cls.__name__ == layer)
    return run_error_case(info, next(e for e in info.error_cases if e.variant == variant))


def _jobs(args: argparse.Namespace, devices: Sequence[str]) -> list[Job]:
    from .cases import REGISTRY, all_cases, onnx_plan

    pairs = [(info, case) for info, case in all_cases() if _matches(case.id, args.only) and case.id not in info.skips]
    plan = {} if args.no_onnx else onnx_plan(pairs)
    jobs: list[Job] = [("case", case.id, device, dtype, plan.get(case.id, False))
                       for info, case in pairs for device in devices for dtype in case.dtypes]
    jobs += [("error", info.cls.__name__, e.variant) for info in REGISTRY for e in info.error_cases if _matches(info.error_id(e), args.only)]
    return jobs


def _report_directory(path: str) -> str | None:
    """Why ``path`` cannot take the report (None if it can), found before any case runs."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        return f"cannot create the report directory {path!r}: {error.strerror}"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"cannot write into the report directory {path!r}"
    return None


def _versions() -> dict[str, str]:
    from importlib import metadata

    import torch

    def version(*names: str) -> str:
        for name in names:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
        return "not installed"

    return {"keras": version("keras"), "tensorflow": version("tensorflow-cpu", "tensorflow"), "torch": torch.__version__}


def run(args: argparse.Namespace) -> int:
    import torch

    from .report import machine, summary_table, write_report

    devices = ["cpu"] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all"):
        if torch.cuda.is_available():
            devices.append("cuda")
        elif args.device == "cuda":
            print("xlayers conformance: --device cuda, but torch sees no CUDA device.", file=sys.stderr)
            return 2
        else:
            print("note: torch sees no CUDA device; running cpu only.", file=sys.stderr)
    if args.workers < 1:
        print(f"xlayers conformance: --workers must be at least 1. Received: {args.workers}.", file=sys.stderr)
        return 2
    problem = _report_directory(args.report)
    if problem:
        print(f"xlayers conformance: {problem}; nothing was run.", file=sys.stderr)
        return 2
    jobs = _jobs(args, devices)
    if not jobs:
        print(f"xlayers conformance: no case matches --only {args.only!r}.", file=sys.stderr)
        return 2

    started = time.perf_counter()
    workers = min(args.workers, len(jobs))
    threads = max(1, (os.cpu_count() or 1) // workers)
    show = not args.no_progress and sys.stderr.isatty()
    results: list[Any] = [None] * len(jobs)
    failed = 0

    def done(index: int, result: Any, count: int) -> None:
        nonlocal failed
        results[index] = result
        failed += not result.passed
        if show:
            _progress(sys.stderr, count, len(jobs), failed, f"{result.id} {result.device} {result.dtype}", started)
        elif count % 50 == 0 or count == len(jobs):
            print(f"  {count}/{len(jobs)} records, {failed} failed, {time.perf_counter() - started:.0f}s", file=sys.stderr)

    if workers == 1:
        _start_worker(None, args.tf32)
        for count, job in enumerate(jobs, 1):
            done(count - 1, _run_job(job), count)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        context = multiprocessing.get_context("spawn")  # TF and torch thread pools do not survive fork
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(threads, args.tf32)) as pool:
            # the records that export (the longest) go first, so no long one is left for the end
            order = sorted(range(len(jobs)), key=lambda index: jobs[index][-1] is not True)
            futures = {pool.submit(_run_job, jobs[index]): index for index in order}
            for count, future in enumerate(as_completed(futures), 1):
                done(futures[future], future.result(), count)
    if show:
        sys.stderr.write("\n")
    seconds = time.perf_counter() - started
    total = len(results)
    meta = {
        "passed": total - failed, "failed": failed, "total": total, "seconds": round(seconds, 1), "workers": workers,
        "devices": devices, "machine": machine(), **_versions(), "tf32": args.tf32, "only": args.only, "onnx": not args.no_onnx,
    }
    json_path, md_path = write_report(args.report, results, meta)
    print(summary_table(results))
    for r in results:
        if not r.passed:
            detail = r.error.splitlines()[0] if r.error else "; ".join(c.detail or c.name for c in r.checks if not c.passed)
            print(f"FAILED {r.id} [{r.device} {r.dtype}]: {detail[:300]}")
    print(f"{total - failed} passed, {failed} failed in {seconds:.1f}s ({workers} workers); report: {json_path} and {md_path}")
    return 1 if failed else 0

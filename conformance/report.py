"""Conformance reports: ``report.json`` (one record per case, device and dtype), ``report.md``
(the same as readable tables) and the terminal summary."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from xlayers.files import publish

from .records import CaseResult

__all__ = ["summary_table", "write_report"]


def _worst(result: CaseResult, prefix: str) -> tuple[float, float]:
    picked = [c for c in result.checks if prefix in c.name and c.tolerance != (0.0, 0.0)]
    if not picked:
        return (float("nan"), float("nan"))
    return (max(c.max_abs_error for c in picked), max(c.max_rel_error for c in picked))


def _max(values: Iterable[float]) -> float:
    finite = [v for v in values if v == v]
    return max(finite) if finite else float("nan")


def _tolerance(result: CaseResult) -> str:
    bounds = {c.tolerance for c in result.checks if c.tolerance != (0.0, 0.0)}
    return ", ".join(f"{r:.1e}/{a:.1e}" for r, a in sorted(bounds)) or "-"


def _onnx_cell(result: CaseResult) -> str:
    if not result.onnx:
        return "-"
    if result.onnx.startswith("ok"):
        worst = _worst(result, "onnx/")
        return f"{_fmt(worst[0])} ({result.onnx.split('(')[1].split(' nodes')[0]} nodes)"
    if result.onnx.startswith("see "):
        return result.onnx
    if result.deviation:
        return "deviation"
    return "n/a" if result.onnx.startswith("n/a") else "**FAILED**"


def _ok(result: CaseResult) -> str:
    if not result.passed:
        return "**NO**"
    return "deviation" if result.deviation else "yes"


def _fmt(value: float) -> str:
    return "-" if value != value else f"{value:.1e}"


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        publish(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def markdown(results: list[CaseResult], meta: dict[str, Any]) -> str:
    lines = [
        "# xlayers conformance report",
        "",
        f"{meta['passed']} of {meta['total']} records passed ({meta['failed']} failed) in {meta['seconds']:.1f} s on "
        f"{meta['machine']}; Keras {meta['keras']} (TF {meta['tensorflow']}), torch {meta['torch']}; TF32 {'on' if meta['tf32'] else 'off'}.",
        "",
        "Errors are the greatest absolute / relative difference over every checked tensor; `out` covers every output",
        "(states included) in both directions of weight transfer, `grad` the gradients for the input, initial states",
        "and every weight. `noise` is Keras's own float32 error against its float64 result. `onnx` is the exported",
        "file run in onnxruntime at another batch size (and length) against Keras: greatest absolute error and node",
        "count; `see <id>` names the record whose export covers the same configuration; `n/a` records say why in the",
        "notes below. `deviation` marks a documented difference from Keras (the note says what and why): the record",
        "passes while Keras still differs, and its errors are Keras's bug, not ours, so they are not shown.",
        "",
        "| case | device | dtype | ok | out abs | out rel | grad abs | grad rel | rtol/atol | path | noise abs | onnx | s |",
        "|---|---|---|---|---:|---:|---:|---:|---|---|---:|---|---:|",
    ]
    for r in results:
        out, grad = ((float("nan"),) * 2,) * 2 if r.deviation else (_worst(r, "output"), _worst(r, "grad/"))
        noise = _fmt(r.noise_floor["max_abs_error"]) if r.noise_floor else "-"
        ok = _ok(r)
        lines.append(
            f"| {r.id} | {r.device} | {r.dtype} | {ok} | {_fmt(out[0])} | {_fmt(out[1])} | {_fmt(grad[0])} | {_fmt(grad[1])} "
            f"| {_tolerance(r)} | {r.path or '-'} | {noise} | {_onnx_cell(r)} | {r.seconds:.2f} |"
        )
    notes = [r for r in results if r.note or r.error or not r.passed or (r.onnx.startswith("n/a") and r.dtype == "float32" and r.device == "cpu")]
    if notes:
        lines += ["", "## Notes and failures", ""]
        for r in notes:
            failing = [c.detail for c in r.checks if not c.passed and c.detail]
            detail = r.error.splitlines()[0] if r.error else (failing[0] + (f" (+{len(failing) - 1} more checks)" if len(failing) > 1 else "") if failing else "")
            onnx = f" ONNX {r.onnx}." if r.onnx.startswith("n/a") else ""
            state = "documented deviation from Keras" if r.deviation and r.passed else ("passed" if r.passed else "FAILED")
            detail = "" if r.deviation and r.passed else detail
            lines.append(f"- `{r.id}` ({r.device}, {r.dtype}): {state}. {r.note} {detail}{onnx}".rstrip())
    return "\n".join(lines) + "\n"


def write_report(directory: str | os.PathLike, results: list[CaseResult], meta: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``directory`` (created if needed), atomically."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / "report.json", folder / "report.md"
    _atomic_write(json_path, json.dumps({"meta": meta, "records": [r.to_json() for r in results]}, indent=1, default=str))
    _atomic_write(md_path, markdown(results, meta))
    return json_path, md_path


def summary_table(results: Iterable[CaseResult]) -> str:
    """One line per layer, device and dtype: records, failures, the worst output and gradient
    errors (absolute, and relative to the magnitude floor), and Keras's own float32 noise floor."""
    rows: dict[tuple[str, str, str], list[CaseResult]] = {}
    for r in results:
        rows.setdefault((r.layer, r.device, r.dtype), []).append(r)
    header = ("layer", "device", "dtype", "records", "failed", "out abs", "out rel", "grad abs", "grad rel", "keras noise", "onnx ok/see/n.a.", "onnx abs", "seconds")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 3 + "---:|" * (len(header) - 3)]
    for (layer, device, dtype), group in rows.items():
        measured = [r for r in group if r.passed and not r.note and r.checks]
        out = [_worst(r, "output") for r in measured]
        grad = [_worst(r, "grad/") for r in measured]
        noise = _max(r.noise_floor["max_abs_error"] for r in measured if r.noise_floor)
        cells = (
            layer, device, dtype, str(len(group)), str(sum(not r.passed for r in group)),
            _fmt(_max(o[0] for o in out)), _fmt(_max(o[1] for o in out)),
            _fmt(_max(g[0] for g in grad)), _fmt(_max(g[1] for g in grad)), _fmt(noise),
            f"{sum(r.onnx.startswith('ok') for r in group)}/{sum(r.onnx.startswith('see') for r in group)}/{sum(r.onnx.startswith('n/a') for r in group)}",
            _fmt(_max(_worst(r, "onnx/")[0] for r in measured)), f"{sum(r.seconds for r in group):.1f}",
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"

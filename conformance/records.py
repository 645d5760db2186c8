"""What a conformance run measures: a `Check` per quantity, a `CaseResult` per case, device and dtype."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["CaseResult", "Check"]


@dataclass
class Check:
    """One measured quantity of a case."""

    name: str
    passed: bool
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    tolerance: tuple[float, float] = (0.0, 0.0)
    detail: str = ""


@dataclass
class CaseResult:
    """The record of one case on one device and dtype (one row of ``report.json``)."""

    id: str
    layer: str
    device: str
    dtype: str
    passed: bool
    checks: list[Check] = field(default_factory=list)
    path: str | None = None
    noise_floor: dict[str, float] | None = None
    onnx: str = ""  # "ok (...)", "FAILED", "n/a: <why>", or "see <id>" (the record that carries the check)
    seconds: float = 0.0
    note: str = ""
    deviation: bool = False  # a documented difference from Keras: passing means Keras still differs
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["checks"] = {c["name"]: {k: v for k, v in c.items() if k != "name"} for c in record["checks"]}
        return record

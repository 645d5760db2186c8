"""Print the README's coverage table: one row per registered layer, from the case registry,
the planted faults and a conformance report.

    python tools/coverage.py out/report.json

Columns: the layer's family module, its cases, records that passed (of all, from the report),
error cases, the planted faults that name it, the ONNX exports checked in onnxruntime against
Keras (and records ONNX cannot express), and its documented differences from Keras (deviation
or skip, by case variant; the reasons are in the README and the report).
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conformance.cases import REGISTRY  # noqa: E402
from conformance.plants import PLANTS  # noqa: E402


def main(report_path: str) -> None:
    records = json.loads(Path(report_path).read_text())["records"]
    by_layer: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_layer[record["layer"]].append(record)
    plants = Counter(prefix for plant in PLANTS for prefix in {case_id.split("/")[0] for case_id in plant.case_ids})
    print("| layer | family | cases | records passed | error cases | plants | ONNX checked / n.a. | documented differences |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for info in REGISTRY:
        name = info.cls.__name__
        family = info.cls.__module__.rsplit(".", 1)[-1]
        ours = [r for r in by_layer.get(name, []) if "/error-" not in r["id"]]
        checked = sum(1 for r in ours if str(r["onnx"]).startswith("ok"))
        refused = sum(1 for r in ours if str(r["onnx"]).startswith("n/a") and r["dtype"] == "float32")
        passed = sum(1 for r in ours if r["passed"])
        prefix = info.cases[0].id.split("/")[0]
        differences = [f"deviation `{case_id.split('/', 1)[1]}`" for case_id in info.deviations]
        differences += [f"skip `{case_id.split('/', 1)[1]}`" for case_id in info.skips]
        print(f"| {name} | {family} | {len(info.cases)} | {passed}/{len(ours)} | {len(info.error_cases)} | "
              f"{plants.get(prefix, 0)} | {checked} / {refused} | {', '.join(differences) or '-'} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out/report.json")

"""The built-in conformance cases as pytest items: one per case, device and dtype, plus one
per error case. `pytest -n auto` spreads them over cores (pytest-xdist). The ONNX check runs
on the record that carries it for its configuration (`conformance.cases.onnx_plan`), as in
`xlayers conformance`."""

import pytest
import torch

from conformance.cases import REGISTRY, all_cases, onnx_plan
from conformance.runner import run_case, run_error_case

DEVICES = ["cpu", "cuda"]
PLAN = onnx_plan(all_cases())

PARAMS = [
    pytest.param(info, case, device, dtype, id=f"{case.id}[{device}-{dtype}]",
                 marks=[pytest.mark.skip(reason=info.skips[case.id])] if case.id in info.skips else [])
    for info, case in all_cases()
    for device in DEVICES
    for dtype in case.dtypes
]


@pytest.mark.parametrize("info, case, device, dtype", PARAMS)
def test_case(info, case, device, dtype):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device: the cuda records run where torch sees a GPU")
    result = run_case(info, case, device, dtype, onnx=PLAN[case.id])
    failures = [c.detail or c.name for c in result.checks if not c.passed]
    assert result.passed, result.error or "\n".join(failures)


ERRORS = [pytest.param(info, ec, id=info.error_id(ec)) for info in REGISTRY for ec in info.error_cases]


@pytest.mark.parametrize("info, error_case", ERRORS)
def test_error_case(info, error_case):
    result = run_error_case(info, error_case)
    assert result.passed, [c.detail for c in result.checks]


def test_every_public_layer_has_cases():
    import xlayers

    covered = {info.cls for info in REGISTRY}
    public = {getattr(xlayers, name) for name in xlayers.__all__}
    layers = {c for c in public if isinstance(c, type) and issubclass(c, xlayers.Layer) and c not in (xlayers.Layer, xlayers.Sequential, xlayers.Functional, xlayers.InputLayer)}  # models: tests/test_functional.py
    assert layers <= covered, layers - covered


def test_every_onnx_group_has_one_carrier_and_the_others_name_it():
    plan = onnx_plan(all_cases())
    carriers = {case_id for case_id, entry in plan.items() if entry is True}
    for case_id, entry in plan.items():
        if isinstance(entry, str):
            assert entry in carriers and entry != case_id
    assert len(carriers) < len(plan)  # grouping saves exports

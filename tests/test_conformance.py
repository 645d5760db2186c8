"""The built-in conformance cases as pytest items: one per case, device and dtype, plus one
per error case. `pytest -n auto` spreads them over cores (pytest-xdist)."""

import pytest
import torch

from conformance.cases import REGISTRY, all_cases
from conformance.runner import run_case, run_error_case

DEVICES = ["cpu", "cuda"]

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
    result = run_case(info, case, device, dtype)
    failures = [c.detail or c.name for c in result.checks if not c.passed]
    assert result.passed, result.error or "\n".join(failures)


ERRORS = [pytest.param(info, ec, id=f"{info.cls.__name__}/error-{ec.variant}") for info in REGISTRY for ec in info.error_cases]


@pytest.mark.parametrize("info, error_case", ERRORS)
def test_error_case(info, error_case):
    result = run_error_case(info, error_case)
    assert result.passed, [c.detail for c in result.checks]


def test_case_ids_are_unique_and_every_public_layer_has_cases():
    import xlayers

    pairs = all_cases()
    assert len({case.id for _, case in pairs}) == len(pairs)
    covered = {info.cls for info in REGISTRY}
    public = {getattr(xlayers, name) for name in xlayers.__all__}
    layers = {c for c in public if isinstance(c, type) and issubclass(c, xlayers.Layer) and c not in (xlayers.Layer, xlayers.Sequential)}
    assert layers <= covered, layers - covered

"""The harness can fail: every planted fault of `conformance.plants.PLANTS` makes at least one
of its cases fail (CPU, in the plant's dtype), a gradient-only fault through a ``grad/`` check
with every forward value still matching. That the same cases pass with no fault planted is
`tests/test_conformance.py`'s part (the same records, unplanted).

Plants with a ``harness_gap`` are faults the harness does not (properly) catch yet: they run
as strict expected failures, so fixing the harness turns them into failures that ask for the
gap note to be removed.
"""

from __future__ import annotations

import sys

import pytest

from conformance.plants import PLANTS, Plant, resolve
from conformance.runner import CaseResult, run_case


def _param(plant: Plant):
    marks = [pytest.mark.xfail(strict=True, reason=f"harness gap: {plant.harness_gap}")] if plant.harness_gap else []
    return pytest.param(plant, id=plant.name, marks=marks)


def _summary(results: list[CaseResult]) -> str:
    lines = []
    for r in results:
        failed = [f"{c.name} (max abs {c.max_abs_error:.3g})" for c in r.checks if not c.passed]
        state = "error: " + r.error.splitlines()[0] if r.error else ("failed: " + ", ".join(failed) if failed else "passed")
        lines.append(f"{r.id}: {state}")
    return "\n".join(lines)


def _is_grad(name: str) -> bool:
    return "/grad/" in name


def test_registry_is_well_formed() -> None:
    names = [p.name for p in PLANTS]
    assert len(names) == len(set(names)), "plant names must be unique"
    for plant in PLANTS:
        assert plant.imitates and plant.case_ids, plant.name
        resolve(plant)  # every case id exists in the case registry


# Everything a plant may patch, as seen from outside: every global of every xlayers module, every
# attribute of the classes defined there, and the entries of the dicts among them. After a
# plant's block ends (even by an exception) all of it must be back. Names that begin with two
# underscores are left out: a plant patches none, and torch.compile installs its compiled and resume
# functions as such globals (``__compiled_fn_3``, ``__resume_at_20_1``), which a garbage collection
# may remove again at any moment.
def _snapshot() -> dict[tuple[str, ...], object]:
    state: dict[tuple[str, ...], object] = {}

    def record(key: tuple[str, ...], value: object) -> None:
        state[key] = id(value)
        if isinstance(value, dict):
            state[(*key, "{}")] = tuple((k, id(v)) for k, v in value.items())

    for module_name, module in list(sys.modules.items()):
        if module_name != "xlayers" and not module_name.startswith("xlayers."):
            continue
        for name, value in vars(module).items():
            if name.startswith("__"):
                continue
            record((module_name, name), value)
            if isinstance(value, type) and value.__module__ == module_name:
                for attribute, member in vars(value).items():
                    record((module_name, name, attribute), member)
    return state


@pytest.mark.parametrize("plant", PLANTS, ids=[p.name for p in PLANTS])
def test_plant_is_removed_on_error(plant: Plant) -> None:
    before = _snapshot()
    with pytest.raises(RuntimeError, match="boom"), plant.installed():
        assert _snapshot() != before, "the plant installs nothing that the snapshot sees"
        raise RuntimeError("boom")
    assert _snapshot() == before


@pytest.mark.parametrize("plant", [_param(p) for p in PLANTS])
def test_plant_is_caught(plant: Plant) -> None:
    pairs = resolve(plant)
    with plant.installed():
        results = [run_case(info, case, "cpu", plant.dtype) for info, case in pairs]
    summary = _summary(results)
    assert any(not r.passed for r in results), f"plant {plant.name!r} went unnoticed:\n{summary}"
    if plant.gradient_only:
        for r in results:
            assert r.error is None, f"{r.id} crashed instead of failing a check:\n{summary}"
            forward = [c for c in r.checks if not _is_grad(c.name)]
            assert any(c.name.endswith(("output0", "call0/output0")) for c in forward), r.id
            assert all(c.passed for c in forward), f"a gradient-only plant changed a forward value:\n{summary}"
        assert any(not c.passed for r in results for c in r.checks if _is_grad(c.name)), summary

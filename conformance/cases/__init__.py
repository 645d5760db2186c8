"""The built-in case registry: one module per xlayers layer family, collected here explicitly.

A new layer registers its `LayerInfo` in its family's module; nothing else lists cases.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..case import Case, LayerInfo
from . import (
    activations,
    applications,
    attention,
    conv,
    conv_lstm,
    core,
    image,
    merging,
    normalization,
    pooling,
    preprocessing,
    recurrent,
    regularization,
    reshaping,
    rnn_cells,
    wrappers,
)

REGISTRY: tuple[LayerInfo, ...] = tuple(
    info for family in (core, conv, pooling, reshaping, normalization, activations, regularization, merging, image, preprocessing, recurrent, conv_lstm, rnn_cells, attention, wrappers, applications) for info in family.LAYERS
)


def all_cases() -> list[tuple[LayerInfo, Case]]:
    """Every (layer entry, case) pair, in registry order; ids are unique."""
    pairs = [(info, case) for info in REGISTRY for case in info.cases]
    ids = [case.id for _, case in pairs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate case ids: {duplicates}")
    return pairs


def find(case_id: str) -> tuple[LayerInfo, Case]:
    """The registry entry and case of ``case_id``."""
    for info, case in all_cases():
        if case.id == case_id:
            return info, case
    raise KeyError(f"no conformance case {case_id!r}")


def onnx_plan(pairs: Iterable[tuple[LayerInfo, Case]]) -> dict[str, bool | str]:
    """Which cases carry an ONNX check: ``True`` for the first case of each ONNX group
    (`LayerInfo.onnx_key`) among ``pairs``, the id of that case for the others of its group.
    The check runs on a case's cpu float32 record."""
    carriers: dict[tuple[str, object], str] = {}
    plan: dict[str, bool | str] = {}
    for info, case in pairs:
        if "float32" not in case.dtypes or case.training:
            plan[case.id] = False
            continue
        key = (info.cls.__name__, info.onnx_key(case))
        plan[case.id] = carriers.setdefault(key, case.id)
        if plan[case.id] == case.id:
            plan[case.id] = True
    return plan

"""The built-in case registry: one module per xlayers layer family, collected here explicitly.

A new layer registers its `LayerInfo` in its family's module; nothing else lists cases.
"""

from __future__ import annotations

from ..case import Case, LayerInfo
from . import conv, core, recurrent

REGISTRY: tuple[LayerInfo, ...] = (*core.LAYERS, *conv.LAYERS, *recurrent.LAYERS)


def all_cases() -> list[tuple[LayerInfo, Case]]:
    """Every (layer entry, case) pair, in registry order; ids are unique."""
    pairs = [(info, case) for info in REGISTRY for case in info.cases]
    ids = [case.id for _, case in pairs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate case ids: {duplicates}")
    return pairs

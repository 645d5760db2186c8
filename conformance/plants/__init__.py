"""Planted faults: the proof that the conformance harness can fail.

Each `Plant` imitates one mistake that real Keras -> PyTorch converters make, installs it
into xlayers by monkeypatching (``unittest.mock.patch``; the fault is removed on exit, even
when the body raises), and names the registry cases that can see it. While a plant is
installed, at least one of its cases must fail `conformance.runner.run_case`; a plant the
harness lets through is a defect of the harness, not of the plant.

``gradient_only`` plants leave every forward value bit-exact and break only the backward
pass: the harness must catch them through its ``grad/`` checks.

The plants of a layer family live in ``conformance/plants/<family>.py``, as its cases live in
``conformance/cases/<family>.py``; this module collects them. ``tests/test_plants.py`` runs
every plant of `PLANTS` on its cases (CPU, float32).
"""

from __future__ import annotations

from ..case import Case, LayerInfo
from . import (
    activations,
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
from .plant import Plant

__all__ = ["PLANTS", "Plant", "plant", "resolve"]

PLANTS: tuple[Plant, ...] = tuple(
    p for family in (core, conv, pooling, reshaping, normalization, activations, regularization, merging, image, preprocessing, recurrent, conv_lstm, rnn_cells, attention, wrappers) for p in family.PLANTS
)


def resolve(plant: Plant) -> list[tuple[LayerInfo, Case]]:
    """The ``(layer entry, case)`` pairs of ``plant``'s case ids (KeyError if one is unknown)."""
    from ..cases import all_cases

    by_id = {case.id: (info, case) for info, case in all_cases()}
    missing = [cid for cid in plant.case_ids if cid not in by_id]
    if missing:
        raise KeyError(f"plant {plant.name!r} names unknown case ids {missing}")
    return [by_id[cid] for cid in plant.case_ids]


def plant(name: str) -> Plant:
    """The registered plant called ``name``."""
    for candidate in PLANTS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no plant named {name!r}; known: {[p.name for p in PLANTS]}")

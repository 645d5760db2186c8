"""Shared machinery knows no layer: the conformance runner, transfer, report, CLI, driver and
case model, and the ONNX exporter import nothing from `xlayers.layers` and name no layer class
(no identifier, attribute or string constant equal to a layer class's name; a string that is
also an ONNX operator's name, such as "Identity" or "Softmax", names the operator). What is
particular to a family lives in that family's modules."""

import ast
from pathlib import Path

import pytest

import xlayers
from xlayers.layer import _LAYER_CLASSES

ROOT = Path(__file__).resolve().parent.parent
SHARED = [
    "conformance/runner.py",
    "conformance/transfer.py",
    "conformance/report.py",
    "conformance/cli.py",
    "conformance/driver.py",
    "conformance/case.py",
    "conformance/records.py",
    "xlayers/onnx.py",
]


def _layer_names() -> set[str]:
    import conformance.cases  # noqa: F401  (every family registered)

    assert xlayers.Dense.__name__ in _LAYER_CLASSES
    return {name for name in _LAYER_CLASSES if name != "Layer"}


def _onnx_operators() -> set[str]:
    import onnx

    return {schema.name for schema in onnx.defs.get_all_schemas()}


def _offences(source: str, names: set[str]) -> list[str]:
    found = []
    operators = _onnx_operators()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = ("." * node.level) + (node.module or "")
            if "layers" in module.split(".") and (module.startswith("xlayers") or module.startswith(".")):
                found.append(f"line {node.lineno}: from {module} import ...")
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if a.name.startswith("xlayers.layers")]
        elif isinstance(node, ast.Name) and node.id in names:
            found.append(f"line {node.lineno}: name {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in names:
            found.append(f"line {node.lineno}: attribute .{node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names - operators:
            found.append(f"line {node.lineno}: string {node.value!r}")
    return found


@pytest.mark.parametrize("path", SHARED)
def test_shared_module_names_no_layer(path):
    offences = _offences((ROOT / path).read_text(), _layer_names())
    assert not offences, f"{path} knows particular layers: {offences}"


def test_the_guard_sees_what_it_forbids():
    names = _layer_names()
    source = "from xlayers.layers.recurrent import X\nimport xlayers.layers.conv\nif type(m).__name__ == 'Conv2D':\n    y = xlayers.LSTM\n"
    assert len(_offences(source, names)) == 4

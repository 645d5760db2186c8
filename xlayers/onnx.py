"""ONNX export of xlayers layers and models, verified before the file appears.

``export`` traces the module with torch's ONNX exporter (``dynamo=True``), tidies the graph
(pairs of inverse layout ``Transpose`` nodes between channels-last layers are removed), checks
it with ``onnx.checker.check_model(full_check=True)``, runs it in onnxruntime at sizes other
than the example's along every dynamic axis, compares with torch under the tolerance policy,
and only then renames the temporary file onto ``path``. A failed export or check leaves no
file behind.

This module is shared machinery: it names no layer. It asks the layers inside the module
(``Layer`` hooks): ``export_refusal()`` says why a configuration cannot be expressed in ONNX
(a graph holds no state between runs; a recurrent layer off its fused kernel would unroll at
the example's length), and exporting it raises :class:`~xlayers.errors.ExportError` before
anything is written; ``onnx_dynamic_axes()`` gives the axes of the input that stay dynamic
(their union over the layers); ``onnx_translations()`` gives the ONNX translations of the
layers' own custom ops, which live beside each layer.

Several inputs: a layer called on a list of tensors (Keras's merging layers) is exported from a
list of example tensors (one argument holding several inputs, ``export(add, [a, b], path)``,
or ``([a, b],)`` among positional inputs); each becomes a graph input of its own
(``inputs_0``, ``inputs_1``, ...), every one with the dynamic axes.

A mask example input (a boolean tensor after the first input) is accepted when some layer
in the module takes a ``mask`` in its ``call``; it becomes ONNX's ``sequence_lens``: the
exported graph takes masks as right-padded, Keras's own cuDNN condition, and counts each
row's ones. Dropout does not reach the graph: export runs in eval mode.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import tempfile
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import ArgumentError, ExportError, NotBuiltError
from .files import publish
from .layer import Layer, map_structure
from .tolerance import compare

__all__ = ["ExportResult", "SUPPORTED_OPSETS", "export", "remove_inverse_transposes"]

SUPPORTED_OPSETS = range(18, 22)
DEFAULT_OPSET = 20


@dataclass
class ExportResult:
    """What ``export`` wrote and measured."""

    path: str
    opset: int
    node_counts: dict[str, int]
    checked_shapes: list[tuple[int, ...]] = field(default_factory=list)
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    tolerance: tuple[float, float] = (0.0, 0.0)
    bound_fraction: float = 0.0  # the worst element's error as a fraction of its bound under the policy

    @property
    def nodes(self) -> int:
        return sum(self.node_counts.values())

    def __str__(self) -> str:
        ops = ", ".join(f"{op} {n}" for op, n in sorted(self.node_counts.items()))
        return (
            f"exported {self.path} (opset {self.opset}, {self.nodes} nodes: {ops}); onnxruntime vs torch at "
            f"{self.checked_shapes}: max abs error {self.max_abs_error:.2e}, within tolerance (worst element at "
            f"{self.bound_fraction:.0%} of its bound rtol*|expected| + atol*scale, rtol {self.tolerance[0]:.1e}, "
            f"atol {self.tolerance[1]:.1e})"
        )


def _layers(module: nn.Module) -> list[Layer]:
    return [m for m in module.modules() if isinstance(m, Layer)]


def _takes_mask(layer: Layer) -> bool:
    return "mask" in inspect.signature(layer.call).parameters


def _refuse_inexpressible(layers: list[Layer], label: str) -> None:
    unbuilt = [m.name for m in layers if not m.built]
    if unbuilt:
        raise NotBuiltError(f"{label}: cannot export unbuilt layers {unbuilt}; call the module once on an example input first.")
    refused: dict[str, list[str]] = {}
    for layer in layers:
        reason = layer.export_refusal()
        if reason:
            refused.setdefault(reason, []).append(layer.name)
    if refused:
        reasons = " ".join(f"{reason}. Received: layers {names}." for reason, names in refused.items())
        raise ExportError(f"{label}: {reasons}")


def _dynamic_axes(layers: list[Layer]) -> dict[int, str]:
    """The union of the layers' dynamic input axes (the batch axis when there is no layer)."""
    axes: dict[int, str] = {0: "batch"}
    for layer in layers:
        for axis, name in layer.onnx_dynamic_axes().items():
            axes.setdefault(axis, name)
    return dict(sorted(axes.items()))


def _translations(layers: list[Layer]) -> dict[Any, Any]:
    """ONNX translations of the custom ops the layers' ``call`` uses, for torch's exporter."""
    table: dict[Any, Any] = {}
    for cls in dict.fromkeys(type(layer) for layer in layers):
        table.update(cls.onnx_translations())
    return table


def _label(module: nn.Module) -> str:
    return module._label if isinstance(module, Layer) else f"`{type(module).__name__}`"


def _leaves(structure: Any) -> list[Any]:
    found: list[Any] = []
    map_structure(found.append, structure)
    return found


def _input_names(inputs: tuple[Any, ...]) -> list[str]:
    """One graph input name per tensor: ``inputs`` for the first positional input, ``inputs_<i>`` for
    the others; the tensors of a list (or dict) argument add their index (or key): ``inputs_0``, ..."""
    names: list[str] = []
    for position, argument in enumerate(inputs):
        base = "inputs" if position == 0 else f"inputs_{position}"
        if isinstance(argument, torch.Tensor):
            keys: list[Any] = [None]
        else:
            keys = list(argument) if isinstance(argument, Mapping) else list(range(len(argument)))
        for key in keys:
            name = base if key is None else f"{base}_{key}"
            while name in names:
                name += "_"
            names.append(name)
    return names


def export(
    module: nn.Module,
    example_inputs: torch.Tensor | Sequence[Any],
    path: str | os.PathLike,
    *,
    opset: int = DEFAULT_OPSET,
    dynamic_axes: Mapping[int, str] | None = None,
    verify: bool = True,
    seed: int = 0,
    verbose: bool = True,
) -> ExportResult:
    """Export ``module`` to ONNX at ``path``, verified in onnxruntime; return what was measured.

    Args:
        module: a built xlayers layer or model (or any torch module holding them).
        example_inputs: the input to trace with: a tensor; a list of tensors, one argument
            holding several inputs (a layer called on a list, as Keras's merging layers); or a
            tuple of positional inputs, each a tensor or such a list.
        path: where the ``.onnx`` file goes; written atomically (temporary file, then rename).
        opset: ONNX opset, one of ``SUPPORTED_OPSETS``.
        dynamic_axes: ``{axis: name}`` for the first input (for each tensor of a first input
            that is a list); default: the union of the
            layers' ``onnx_dynamic_axes()`` (``{0: "batch"}``, plus ``{1: "time"}`` for a
            recurrent layer).
        verify: run the checker and onnxruntime before writing (on by default).
        seed: seed of the random inputs used for verification.
        verbose: print the result (node counts, errors) once written.

    Raises:
        NotBuiltError: a layer has not been built.
        ArgumentError: ``opset`` is not supported.
        ExportError: the configuration cannot be expressed in ONNX, the exporter failed,
            or the exported graph disagrees with torch; no file is left at ``path``.
        OSError: ``path`` cannot be written.
    """
    label = _label(module)
    if opset not in SUPPORTED_OPSETS:
        raise ArgumentError(
            f"{label}: `opset` must be one of {list(SUPPORTED_OPSETS)} (torch 2.13's exporter). Received: opset={opset!r}."
        )
    layers = _layers(module)
    _refuse_inexpressible(layers, label)
    inputs = (example_inputs,) if isinstance(example_inputs, (torch.Tensor, list, Mapping)) else tuple(example_inputs)
    if not inputs or not all(_is_input(argument) for argument in inputs):
        raise ArgumentError(
            f"{label}: `example_inputs` must be a tensor, a list of tensors (one argument holding several inputs) "
            f"or a tuple of positional inputs. Received: {type(example_inputs).__name__}."
        )
    inputs = _distinct(inputs)
    masks = [t for argument in inputs[1:] for t in _leaves(argument) if t.dtype == torch.bool]
    if masks and not any(_takes_mask(layer) for layer in layers):
        raise ExportError(
            f"{label}: only layers whose `call` takes a `mask` (recurrent layers) take a mask example input; "
            f"none here does. Received: {len(inputs)} example inputs."
        )
    if dynamic_axes is None:
        dynamic_axes = _dynamic_axes(layers)
    rank = min(t.dim() for t in _leaves(inputs[0]))
    if not isinstance(dynamic_axes, Mapping) or not all(
        isinstance(a, int) and not isinstance(a, bool) and 0 <= a < rank and isinstance(n, str) and n for a, n in dynamic_axes.items()
    ):
        what = "the first input" if isinstance(inputs[0], torch.Tensor) else "every tensor of the first input"
        raise ArgumentError(
            f"{label}: `dynamic_axes` must map axes of {what} (0 to {rank - 1}) to names. "
            f"Received: dynamic_axes={dynamic_axes!r}."
        )
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"{label}: cannot write {str(target)!r}: the directory {str(directory)!r} does not exist.")
    try:
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as error:
        raise PermissionError(f"{label}: cannot write {str(target)!r}: {error.strerror}.") from None
    os.close(handle)
    try:
        with _eval_mode(module):
            _trace(module, inputs, dynamic_axes, _translations(layers), opset, temporary, label)
            counts = remove_inverse_transposes(temporary)
            result = ExportResult(str(target), opset, counts)
            if verify:
                _verify(module, inputs, dynamic_axes, temporary, result, seed, label)
        publish(temporary, target)
        if verbose:
            print(result)
        return result
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _distinct(inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """``inputs`` with a tensor given twice (``[x, x]``) copied: each stays a graph input of its own
    (the exporter would take one tensor for both)."""
    seen: set[int] = set()

    def once(tensor: torch.Tensor) -> torch.Tensor:
        if id(tensor) in seen:
            return tensor.clone()
        seen.add(id(tensor))
        return tensor

    return tuple(map_structure(once, argument) for argument in inputs)


def _is_input(argument: Any) -> bool:
    """A tensor, or a non-empty list, tuple or dict of tensors (one argument holding several inputs)."""
    if isinstance(argument, torch.Tensor):
        return True
    values = list(argument.values()) if isinstance(argument, Mapping) else argument if isinstance(argument, (list, tuple)) else None
    return bool(values) and all(isinstance(t, torch.Tensor) for t in values)


@contextlib.contextmanager
def _eval_mode(module: nn.Module):
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


_REGISTRIES: dict[tuple[int, frozenset[Any]], Any] = {}


def _registry(opset: int, translations: Mapping[Any, Any]) -> Any:
    """The exporter's op registry with ``translations`` added, built once per opset and set of custom
    ops: torch 2.13's ``torch.onnx.export`` rebuilds it on every export, re-parsing the source of
    about 500 onnxscript functions and their signatures (1.9 s of a 2.3 s export here). A custom op's
    translation is fixed for a process (it is derived from its layer's ``LAYOUT``)."""
    from torch.onnx._internal.exporter import _constants, _registration

    key = (opset, frozenset(translations))
    if key not in _REGISTRIES:
        registry = _registration.ONNXRegistry.from_torchlib(opset_version=max(opset, _constants.TORCHLIB_OPSET))
        for op, translation in translations.items():
            registry.register_op(op, translation, is_complex=False)
        _REGISTRIES[key] = registry
    return _REGISTRIES[key]


def _trace(module: nn.Module, inputs: tuple[Any, ...], dynamic_axes: Mapping[int, str], translations: Mapping[Any, Any],
           opset: int, path: str, label: str) -> None:
    # torch 2.13: the exporter registers while-loop decompositions of aten::lstm and aten::gru for
    # the duration of an export, and the ops' dispatch caches keep a stale entry afterwards, so a
    # second export in the same process would unroll the recurrence with the example's length
    # baked in. Clear them.
    for op in (torch.ops.aten.lstm.input, torch.ops.aten.gru.input):
        op._dispatch_cache.clear()
    dims = {axis: torch.export.Dim(name) for axis, name in dynamic_axes.items()}
    # a (batch, time) mask follows the input's batch and time axes
    extra = tuple(
        map_structure(lambda t: {a: d for a, d in dims.items() if a < 2} if t.dtype == torch.bool else {}, argument)
        for argument in inputs[1:]
    )
    first = map_structure(lambda t: dims, inputs[0])  # every tensor of a list input: the same dynamic axes
    varargs = any(p.kind is p.VAR_POSITIONAL for p in inspect.signature(module.forward).parameters.values())
    shapes = (first, extra) if varargs and extra else (first, *extra)  # Layer.forward(inputs, *args): nested
    quiet = logging.getLogger("torch.onnx._internal.exporter._registration")  # "torchvision is not installed"
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            outputs = module(*inputs)
            count = 1 if isinstance(outputs, torch.Tensor) else len(outputs)
            output_names = ["output"] if count == 1 else [f"output_{i}" for i in range(count)]
            input_names = _input_names(inputs)
            # torch.onnx.export(dynamo=True) with a registry built once (see _registry)
            from torch.onnx._internal.exporter import _core

            program = _core.export(
                module, inputs, {}, registry=_registry(opset, translations), dynamic_shapes=shapes, input_names=input_names,
                output_names=output_names, verbose=False, optimize=False, opset_version=opset,
            )
            program.save(path)
    except Exception as error:
        raise ExportError(f"{label}: torch's ONNX exporter failed: {type(error).__name__}: {str(error).splitlines()[0]}") from error
    finally:
        quiet.setLevel(level)
    _optimize(path)


def _optimize(path: str) -> None:
    """onnxscript's optimizer and rewriter (constant folding, Pad + Conv into Conv's pads, ...),
    run after dropping the intermediate shapes: torch 2.13's exporter leaves the example's
    sequence length on some of them, and folding those would fix the length of stacked recurrent layers."""
    import onnx_ir as ir
    import onnxscript
    from onnx_ir.passes import common
    from onnxscript import rewriter

    model = ir.load(path)
    outputs = set(model.graph.outputs)
    for node in model.graph:
        for value in node.outputs:
            if value not in outputs:
                value.shape = None
    onnxscript.optimizer.optimize(model)
    model = rewriter.rewrite(model)
    common.CommonSubexpressionEliminationPass()(model)  # recurrent ops' shape plumbing repeats itself
    onnxscript.optimizer.optimize(model)
    ir.save(model, path)


def _verify(module: nn.Module, inputs: tuple[Any, ...], dynamic_axes: Mapping[int, str], path: str,
            result: ExportResult, seed: int, label: str) -> None:
    import onnx
    import onnxruntime as ort

    try:
        onnx.checker.check_model(path, full_check=True)
    except Exception as error:
        raise ExportError(f"{label}: the exported graph fails onnx.checker: {error}") from error
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the declared output sizes are the example's until _annotate_outputs
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    generator = torch.Generator().manual_seed(seed)
    worst_abs = worst_rel = worst_fraction = 0.0
    observed: list[tuple[dict[str, int], list[tuple[int, ...]]]] = []  # (dynamic sizes, output shapes) per run
    for grow in (2, 5):  # sizes other than the example's along every dynamic axis
        # each tensor of a list input grows alike
        first = map_structure(lambda t, grow=grow: _random_grown(t, dynamic_axes, grow, generator), inputs[0])
        shape = list(_leaves(first)[0].shape)
        feeds = (first, *(_right_padded_mask(shape[0], shape[1], generator) if _is_mask(t) else t for t in inputs[1:]))
        with torch.no_grad():
            expected = module(*feeds)
        expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)
        try:
            got = session.run(None, {n: t.numpy() for n, t in zip(names, _leaves(feeds))})
        except Exception as error:
            raise ExportError(f"{label}: onnxruntime cannot run the exported graph at input shape {tuple(shape)}: {str(error).splitlines()[0]}") from error
        if len(got) != len(expected):
            raise ExportError(f"{label}: onnxruntime returned {len(got)} outputs, torch {len(expected)}.")
        for index, (ours, theirs) in enumerate(zip(got, expected)):
            precision = str(theirs.dtype).removeprefix("torch.") if theirs.is_floating_point() else "float64"  # the output's own
            comparison = compare(ours, theirs, precision, "cpu")
            worst_abs, worst_rel = max(worst_abs, comparison.max_abs_error), max(worst_rel, comparison.max_rel_error)
            worst_fraction = max(worst_fraction, comparison.bound_fraction)
            result.tolerance = (comparison.rtol, comparison.atol)
            if not comparison.passed:
                raise ExportError(f"{label}: onnxruntime disagrees with torch at input shape {tuple(shape)}: {comparison.describe(f'output {index}')}")
        result.checked_shapes.append(tuple(shape))
        observed.append(({name: shape[axis] for axis, name in dynamic_axes.items()}, [tuple(o.shape) for o in got]))
    result.max_abs_error, result.max_rel_error, result.bound_fraction = worst_abs, worst_rel, worst_fraction
    _annotate_outputs(path, observed)


def _random_grown(tensor: torch.Tensor, dynamic_axes: Mapping[int, str], grow: int, generator: torch.Generator) -> torch.Tensor:
    """A random tensor like ``tensor``, ``grow`` longer along every dynamic axis: normals, or for
    integer inputs (token ids) integers in the example's own range ``[0, max]``."""
    size = list(tensor.shape)
    for axis in dynamic_axes:
        size[axis] = size[axis] + grow
    if not tensor.is_floating_point():
        return torch.randint(0, int(tensor.max()) + 1, size, generator=generator, dtype=tensor.dtype)
    return torch.randn(size, generator=generator, dtype=tensor.dtype)


def _is_mask(argument: Any) -> bool:
    return isinstance(argument, torch.Tensor) and argument.dtype == torch.bool


def _right_padded_mask(batch: int, steps: int, generator: torch.Generator) -> torch.Tensor:
    """A random right-padded mask: each row ones then zeros, one row full, one row empty."""
    lengths = torch.randint(0, steps + 1, (batch,), generator=generator)
    lengths[0], lengths[-1] = steps, 0
    return torch.arange(steps).unsqueeze(0) < lengths.unsqueeze(1)


def _annotate_outputs(path: str, observed: list[tuple[dict[str, int], list[tuple[int, ...]]]]) -> None:
    """Declare each output dimension as seen in the verification runs: fixed where it did not
    change, named after the dynamic input axis it followed (``batch``, ``time``) where it did.
    (The exporter can leave an example's size on an output whose length follows the input.)"""
    import onnx

    model = onnx.load(path)
    (sizes_a, shapes_a), (sizes_b, shapes_b) = observed[0], observed[-1]
    for index, output in enumerate(model.graph.output):
        dims = output.type.tensor_type.shape.dim
        if len(dims) != len(shapes_a[index]):
            continue
        for axis, (a, b) in enumerate(zip(shapes_a[index], shapes_b[index])):
            dim = dims[axis]
            if a == b:
                dim.dim_value = a
                continue
            names = [n for n in sizes_a if sizes_a[n] == a and sizes_b[n] == b]
            dim.dim_param = names[0] if names else f"{output.name}_{axis}"
    onnx.save(model, path)


def remove_inverse_transposes(path: str | os.PathLike) -> dict[str, int]:
    """Remove ``Transpose`` pairs that undo each other, with only elementwise ops between them.

    Channels-last layers each wrap their ONNX ``Conv`` in NHWC -> NCHW -> NHWC transposes;
    between two such layers the inner pair cancels. Elementwise unary ops (``Relu``, ...) are
    layout-agnostic, so a pair separated by them cancels too. Rewrites ``path`` in place and
    returns the node count per op type.
    """
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    elementwise = {"Relu", "Sigmoid", "Tanh", "Elu", "Selu", "LeakyRelu", "Softplus", "Softsign", "HardSigmoid",
                   "HardSwish", "Mish", "Gelu", "Erf", "Exp", "Neg", "Abs", "Identity", "Celu", "ThresholdedRelu"}
    outputs = {o.name for o in graph.output}
    changed = True
    while changed:
        changed = False
        consumers: dict[str, list[Any]] = {}
        for node in graph.node:
            for name in node.input:
                consumers.setdefault(name, []).append(node)
        for first in graph.node:
            if first.op_type != "Transpose" or first.output[0] in outputs:
                continue
            chain, current = [], first
            while True:
                users = consumers.get(current.output[0], [])
                if len(users) != 1 or current.output[0] in outputs:
                    break
                nxt = users[0]
                if nxt.op_type in elementwise and len(nxt.input) == 1:
                    chain.append(nxt)
                    current = nxt
                    continue
                if nxt.op_type == "Transpose" and _composes_to_identity(_perm(first), _perm(nxt)):
                    _splice(graph, first, chain, nxt)
                    changed = True
                break
            if changed:
                break
    # intermediate shapes are optional; after a rewrite they may be stale, so infer them afresh
    del graph.value_info[:]
    model = onnx.shape_inference.infer_shapes(model)
    graph = model.graph
    onnx.save(model, str(path))
    return dict(Counter(node.op_type for node in graph.node))


def _perm(node: Any) -> list[int]:
    for attribute in node.attribute:
        if attribute.name == "perm":
            return list(attribute.ints)
    return []


def _composes_to_identity(first: list[int], second: list[int]) -> bool:
    return bool(first) and len(first) == len(second) and [first[i] for i in second] == list(range(len(first)))


def _splice(graph: Any, first: Any, chain: list[Any], last: Any) -> None:
    """Drop ``first`` and ``last``: the chain reads ``first``'s input, ``last``'s users read the chain's end."""
    source = first.input[0]
    if chain:
        chain[0].input[0] = source
        end = chain[-1].output[0]
    else:
        end = source
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == last.output[0]:
                node.input[i] = end
    graph.node.remove(first)
    graph.node.remove(last)


def node_counts(path: str | os.PathLike) -> dict[str, int]:
    """Node count per op type of an ONNX file."""
    import onnx

    return dict(Counter(node.op_type for node in onnx.load(str(path)).graph.node))


def run(path: str | os.PathLike, *inputs: np.ndarray) -> list[np.ndarray]:
    """Run an exported file in onnxruntime (CPU) on numpy inputs."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: x for i, x in zip(session.get_inputs(), inputs)})

"""Run one conformance case on one device and dtype, and say how far xlayers is from Keras.

Per case: the configuration each layer reports; the initial weights (deterministic ones
exactly, random ones by distribution); a bit-exact weight round trip; then, in each
direction of weight transfer (xlayers -> Keras, Keras -> xlayers), every output of every call
and the gradients with respect to every float input, every float call argument and every
weight (torch autograd vs ``tf.GradientTape``, the same upstream gradient); the output shapes
against ``compute_output_shape``; the family's own checks; the exported ONNX graph against
Keras at other sizes; and, for float32, Keras's own float32 error against its float64 result
(the noise floor). float16/bfloat16 check the forward pass against Keras in float32 on the
same rounded weights and inputs.

The runner knows no layer: what is particular to a family is its driver's
(`conformance.driver.Driver`, written in ``conformance/cases/<family>.py``).
"""

from __future__ import annotations

import inspect
import json
import re
import tempfile
import time
import traceback
import zlib
from typing import Any

import numpy as np
import torch

from xlayers import initializers
from xlayers.layer import MIXED_POLICIES, Layer, clear_session, dtype_name, map_structure
from xlayers.tolerance import REL_FLOOR, compare

from .case import HALF_DTYPES, Case, ErrorCase, LayerInfo, TensorSpec
from .keras_reference import keras
from .records import CaseResult, Check
from .testing import randomize_weights
from .transfer import from_keras, keras_variables, to_keras

__all__ = ["CaseResult", "Check", "run_case", "run_error_case"]

# Samples drawn per random initializer to compare distributions (mean and std within sampling error).
INIT_SAMPLES = 4096
INIT_DRAWS = 48  # at most: a small weight (a bias) gets a smaller sample
INIT_SIGMAS = 6.0
_DISTRIBUTIONS: dict[tuple[Any, ...], Check] = {}


def _leaves(structure: Any) -> list[Any]:
    found: list[Any] = []
    map_structure(found.append, structure)
    return found


def _named_leaves(name: str, structure: Any) -> list[tuple[str, Any]]:
    """``(name, leaf)`` pairs: ``name`` for a single leaf, ``name/<index or key>`` in a list or dict."""
    if isinstance(structure, dict):
        return [pair for key, value in structure.items() for pair in _named_leaves(f"{name}/{key}", value)]
    if isinstance(structure, (list, tuple)):
        return [pair for i, value in enumerate(structure) for pair in _named_leaves(f"{name}/{i}", value)]
    return [(name, structure)]


def _numpy(value: torch.Tensor) -> np.ndarray:
    value = value.detach().cpu()
    return (value.double() if value.dtype in (torch.float16, torch.bfloat16) else value).numpy()


def _round_to(array: np.ndarray, dtype: str) -> np.ndarray:
    """``array`` rounded to ``dtype`` and back to float32 (the half-precision reference)."""
    return torch.from_numpy(np.array(array, dtype=np.float32, order="C")).to(getattr(torch, dtype)).float().numpy()  # 0-d kept


def _is_float(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def _draw(spec: TensorSpec, rng: np.random.Generator, np_dtype: type) -> np.ndarray:
    if spec.is_float:
        return rng.standard_normal(spec.shape).astype(np_dtype)
    if spec.dtype == "bool":
        return rng.random(spec.shape) < 0.5
    return rng.integers(spec.low, spec.high, spec.shape).astype(spec.dtype)


class _Data:
    """Seeded random data of a case: inputs and call arguments per call, upstream gradients."""

    def __init__(self, info: LayerInfo, case: Case, layer: Layer, seed: int, dtype: str) -> None:
        self.rng = np.random.default_rng(seed)
        self.np_dtype = np.float64 if dtype == "float64" else np.float32
        self.inputs = [map_structure(lambda spec: _draw(spec, self.rng, self.np_dtype), case.inputs) for _ in range(case.calls)]
        self.arguments = [info.driver.arguments(layer, case, inputs, self.rng) for inputs in self.inputs]

    def round_to(self, dtype: str) -> None:
        rounded = lambda value: _round_to(value, dtype) if _is_float(value) else value  # noqa: E731
        self.inputs = [map_structure(rounded, inputs) for inputs in self.inputs]
        self.arguments = [{k: map_structure(rounded, v) for k, v in args.items()} for args in self.arguments]

    def upstream(self, outputs: list[np.ndarray]) -> list[np.ndarray]:
        return [self.rng.standard_normal(o.shape).astype(self.np_dtype) for o in outputs]


def _to_torch(value: Any, device: str, dtype: torch.dtype, grad: bool) -> Any:
    if _is_float(value):
        return torch.from_numpy(value).to(device=device, dtype=dtype).requires_grad_(grad)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value).to(device)
    return value


def _to_keras(value: Any, dtype: Any = None) -> Any:
    import tensorflow as tf

    if _is_float(value):
        return tf.constant(value if dtype is None else value.astype(dtype))
    if isinstance(value, np.ndarray):
        return tf.constant(value)
    return value


def _takes(layer: Layer, argument: str) -> bool:
    return argument in inspect.signature(layer.call).parameters


def _run_xlayers(info: LayerInfo, layer: Layer, data: _Data, memo: list[Any], device: str, dtype: torch.dtype,
                 upstream: list[np.ndarray] | None) -> tuple[list[list[np.ndarray]], dict[str, np.ndarray], list[str]]:
    """Every call, and the gradients of the last one. Returns (outputs per call, gradients by
    name, the dtypes of the last call's outputs)."""
    outputs_per_call: list[list[np.ndarray]] = []
    dtypes: list[str] = []
    grads: dict[str, np.ndarray] = {}
    for index, (inputs, arguments) in enumerate(zip(data.inputs, data.arguments)):
        with_grad = upstream is not None and index == len(data.inputs) - 1
        x = map_structure(lambda v: _to_torch(v, device, dtype, with_grad), inputs)
        kwargs = {k: map_structure(lambda v: _to_torch(v, device, dtype, with_grad), v) for k, v in arguments.items()
                  if k != "training" or _takes(layer, k)}
        for parameter in layer.parameters():
            parameter.grad = None
        outputs = _leaves(layer(x, **kwargs))
        info.driver.after_call(layer, memo)
        outputs_per_call.append([_numpy(o) for o in outputs])
        dtypes = [dtype_name(o.dtype) for o in outputs]
        if with_grad and any(o.requires_grad for o in outputs):  # integer inputs into a weightless layer take none
            sum((o * torch.from_numpy(g).to(device=device, dtype=o.dtype)).sum() for o, g in zip(outputs, upstream)).backward()
            sources = _named_leaves("input", x) + [pair for k, v in kwargs.items() for pair in _named_leaves(k, v)]
            sources += [(entry.path, entry.parameter) for entry in layer.walk_weights()]
            # a source the outputs do not depend on gets no gradient: zeros, as Keras's tape reports None there
            grads = {name: _numpy(t.grad) if t.grad is not None else np.zeros(tuple(t.shape))
                     for name, t in sources if isinstance(t, torch.Tensor) and t.requires_grad}
    return outputs_per_call, grads, dtypes


def _run_keras(info: LayerInfo, twin: Any, data: _Data, memo: list[Any], upstream: list[np.ndarray] | None,
               inputs_per_call: list[Any] | None = None) -> tuple[list[list[np.ndarray]], dict[str, np.ndarray]]:
    import tensorflow as tf

    outputs_per_call: list[list[np.ndarray]] = []
    grads: dict[str, np.ndarray] = {}
    inputs_per_call = data.inputs if inputs_per_call is None else inputs_per_call
    for index, (inputs, arguments) in enumerate(zip(inputs_per_call, data.arguments)):
        dtype = next((v.dtype for v in _leaves(inputs) if _is_float(v)), data.np_dtype)  # integer ids: the record's float dtype
        with_grad = upstream is not None and index == len(inputs_per_call) - 1
        x = map_structure(_to_keras, inputs)
        kwargs = {k: map_structure(lambda v: _to_keras(v, dtype), v) for k, v in arguments.items()}
        info.driver.before_keras_call(twin, memo, index)
        sources = _named_leaves("input", x) + [pair for k, v in kwargs.items() for pair in _named_leaves(k, v)]
        sources = [(n, t) for n, t in sources if isinstance(t, tf.Tensor) and t.dtype.is_floating]
        with tf.GradientTape() as tape:
            for _, tensor in sources:
                tape.watch(tensor)
            outputs = _leaves(twin(x, **kwargs))
            # outputs of other shapes than xlayers' fail the output comparison; no gradient to take then
            fits = with_grad and len(outputs) == len(upstream) and all(tuple(o.shape) == g.shape for o, g in zip(outputs, upstream))
            loss = tf.add_n([tf.reduce_sum(tf.cast(o, dtype) * tf.constant(g.astype(dtype))) for o, g in zip(outputs, upstream)]) if fits else None
        outputs_per_call.append([np.asarray(o) for o in outputs])
        if loss is not None:
            sources += [(path, v) for path, v in keras_variables(twin).items() if v.trainable]
            for (name, source), grad in zip(sources, tape.gradient(loss, [s for _, s in sources])):
                grads[name] = np.zeros(tuple(source.shape)) if grad is None else np.asarray(tf.convert_to_tensor(grad))
    return outputs_per_call, grads


def _compare_all(checks: list[Check], prefix: str, ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray],
                 dtype: str, device: str, rtol_atol: tuple[float, float] | None) -> None:
    for name in sorted(set(ours) | set(theirs)):
        if name not in ours or name not in theirs:
            checks.append(Check(f"{prefix}{name}", False, detail=f"{prefix}{name}: missing on one side"))
            continue
        result = compare(ours[name], theirs[name], dtype, device, override=rtol_atol)
        checks.append(Check(f"{prefix}{name}", result.passed, result.max_abs_error, result.max_rel_error, (result.rtol, result.atol),
                            "" if result.passed else result.describe(f"{prefix}{name}")))


def _non_trainable_after(layer: Layer, twin: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The weights declared non-trainable (moving statistics), on both sides, after the calls:
    what a training-mode call updated must agree as the outputs do."""
    ours = {e.path: _numpy(e.parameter) for e in layer.walk_weights()
            if e.declaration is not None and not e.declaration.trainable}
    variables = keras_variables(twin)
    theirs = {path: np.asarray(variables[path]) for path in ours if path in variables}
    return ours, theirs


def _flat(outputs_per_call: list[list[np.ndarray]]) -> dict[str, np.ndarray]:
    several = len(outputs_per_call) > 1
    return {f"call{c}/output{i}" if several else f"output{i}": o for c, outs in enumerate(outputs_per_call) for i, o in enumerate(outs)}


def run_case(info: LayerInfo, case: Case, device: str = "cpu", dtype: str = "float32", onnx: bool | str = True) -> CaseResult:
    """Measure ``case`` on ``device`` in ``dtype``; never raises (errors become a failed record).

    ``onnx``: ``True`` to export and check this record, ``False`` to skip the check, or the id of
    the record that carries the check for this configuration."""
    start = time.perf_counter()
    result = CaseResult(case.id, info.cls.__name__, device, dtype, passed=False)
    try:
        _run(info, case, device, dtype, result, onnx)
        result.passed = all(c.passed for c in result.checks)
        if case.id in info.deviations:  # documented: passes while Keras still differs
            result.note, result.deviation = info.deviations[case.id], True
            result.passed = not result.passed
    except Exception as error:  # a crash is a failed case with its traceback, not a crashed run
        result.error = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=4)}"
    result.seconds = round(time.perf_counter() - start, 3)
    return result


def _run(info: LayerInfo, case: Case, device: str, dtype: str, result: CaseResult, onnx: bool | str) -> None:
    seed = zlib.crc32(case.id.encode())
    half = dtype in HALF_DTYPES
    mixed = dtype in MIXED_POLICIES  # float32 weights and inputs, computation in the half type (both sides)
    precision = dtype_name(MIXED_POLICIES[dtype]) if mixed else dtype  # whose tolerance applies
    compute = "float32" if half or mixed else dtype
    forward_only = half or mixed
    override = info.tolerances.get(case.id) or info.tolerances.get("*")
    rtol_atol = (override.rtol, override.atol) if override else None
    if override:
        result.note = override.reason
    torch_dtype = getattr(torch, compute if mixed else dtype)
    driver = info.driver
    checks = result.checks

    _seed_everything(seed)  # initial weights (and anything else drawn) repeat from run to run
    layer = case.layer(**case.kwargs, dtype=dtype if mixed else compute)
    layer.build_from_config({"input_shape": map_structure(lambda spec: list(spec.shape), case.inputs)})
    data = _Data(info, case, layer, seed, compute)
    twin = driver.twin(layer, case)

    if dtype == "float32" and device == "cpu":
        _check_initial_weights(layer, twin, checks)
    randomize_weights(layer, seed)
    if half:  # the reference sees the same rounded weights and inputs
        with torch.no_grad():
            for parameter in layer.parameters():
                parameter.copy_(parameter.to(torch_dtype).float())
        data.round_to(dtype)

    # the layer reports the configuration it was given, as Keras does
    ours, theirs = layer.get_config(), twin.get_config()
    reported = [k for k in case.kwargs if k in theirs]  # Keras does not report e.g. LSTM's use_cudnn
    differing = {k: (ours.get(k), theirs.get(k)) for k in reported if _normal(ours.get(k)) != _normal(theirs.get(k))}
    checks.append(Check("config", not differing, detail="" if not differing else f"xlayers vs keras config: {differing}"))

    # weight round trip xlayers -> Keras -> xlayers is bit-exact
    before = [p.detach().clone() for p in layer.parameters()]
    to_keras(layer, twin)
    from_keras(layer, twin)
    exact = all(torch.equal(a, b) for a, b in zip(before, layer.parameters()))
    checks.append(Check("weights/round-trip", exact, detail="" if exact else "a weight changed on the round trip"))

    keras_out: list[list[np.ndarray]] = []
    ours_out: list[list[np.ndarray]] = []
    upstream = None
    for direction in ("x2k", "k2x"):
        if direction == "k2x":  # Keras's own (re-randomised) weights into xlayers
            _randomize_keras(twin, seed + 1, dtype if half else None)
            from_keras(layer, twin)
        else:
            to_keras(layer, twin)
        layer.to(device=device, dtype=torch_dtype)
        memo: list[Any] = []
        if upstream is None:
            with torch.no_grad():
                driver.reset(layer, twin)
                probe = _run_xlayers(info, layer, data, [], device, torch_dtype, None)[0][-1]
            upstream = data.upstream(probe)
        driver.reset(layer, twin)
        ours_out, ours_grads, ours_dtypes = _run_xlayers(info, layer, data, memo, device, torch_dtype, None if forward_only else upstream)
        keras_out, keras_grads = _run_keras(info, twin, data, memo, None if forward_only else upstream)
        keras_dtypes = [o.dtype.name for o in keras_out[-1]]
        if not half and ours_dtypes != keras_dtypes:  # e.g. a mixed policy computed in float32 (half records use a float32 reference)
            checks.append(Check(f"{direction}/dtype", False, detail=f"output dtypes: xlayers {ours_dtypes}, keras {keras_dtypes}"))
        _compare_all(checks, f"{direction}/", _flat(ours_out), _flat(keras_out), precision, device, rtol_atol)
        if not forward_only:
            _compare_all(checks, f"{direction}/grad/", ours_grads, keras_grads, dtype, device, rtol_atol)
        _compare_all(checks, f"{direction}/after/", *_non_trainable_after(layer, twin), precision, device, rtol_atol)
        driver.check(layer, case, result)
        layer.to(device="cpu", dtype=getattr(torch, compute))

    # output shapes: xlayers' compute_output_shape against what both frameworks returned
    # (with the call's plain arguments it takes, as Keras's: `return_attention_scores`, `reverse`, ...)
    options = {k: v for k, v in data.arguments[-1].items()
               if isinstance(v, (bool, int, float, str)) and k in inspect.signature(layer.compute_output_shape).parameters}
    predicted = [tuple(s) for s in _shape_list(layer.compute_output_shape(map_structure(lambda s: s.shape, case.inputs), **options))]
    keras_actual = [tuple(o.shape) for o in keras_out[-1]]
    ours_actual = [tuple(o.shape) for o in ours_out[-1]]
    shapes_ok = predicted == keras_actual == ours_actual
    checks.append(Check("shape", shapes_ok, detail="" if shapes_ok else f"predicted {predicted}, keras {keras_actual}, xlayers {ours_actual}"))

    reason = _onnx_refusal(info, layer, case, device, dtype)
    if reason:
        result.onnx = f"n/a: {reason}"
    elif isinstance(onnx, str):
        result.onnx = f"see {onnx}"
    elif onnx:
        _onnx_check(info, layer, twin, case, seed, checks, result)

    if dtype == "float32" and not case.training:  # Keras's own float32 error against its float64 result
        refusal = driver.float64_refusal(case)
        if refusal:
            result.note = f"{result.note} No noise floor: {refusal}".strip()
        else:
            result.noise_floor = _noise_floor(info, layer, twin, case, data, keras_out[-1][0])


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    keras().utils.set_random_seed(seed)  # Python's, numpy's and TensorFlow's generators (Keras's default seeds)


def _randomize_keras(twin: Any, seed: int, half: str | None) -> None:
    rng = np.random.default_rng(seed)
    for variable in keras_variables(twin).values():
        shape = tuple(variable.shape)
        scale = 1.0 / max(1, shape[0]) ** 0.5 if len(shape) > 1 else 0.5
        value = rng.standard_normal(shape) * scale + 0.05
        variable.assign((_round_to(value, half) if half else value).astype(variable.dtype))


# -- initial weights ------------------------------------------------------------------------


def _check_initial_weights(layer: Layer, twin: Any, checks: list[Check]) -> None:
    """Deterministic initializers (zeros, ones, constant, identity, ``unit_forget_bias``) give
    exactly Keras's initial weights; random ones the same distribution for the weight's shape
    (hence its fans): support, mean and standard deviation within sampling error."""
    variables = keras_variables(twin)
    config = twin.get_config()
    for entry in layer.walk_weights():
        if entry.declaration is None or entry.path not in variables:
            continue
        name = f"init/{entry.path}"
        initializer = entry.layer.initializer_for(entry.declaration)
        ours = _numpy(entry.parameter)
        if initializers.is_deterministic(initializer):
            theirs = np.asarray(variables[entry.path].numpy())
            result = compare(ours, theirs, layer.dtype, "cpu")
            checks.append(Check(name, result.passed, result.max_abs_error, result.max_rel_error, (result.rtol, result.atol),
                                "" if result.passed else result.describe(name)))
            continue
        argument = f"{entry.declaration.key}_initializer"
        keras_initializer = config.get(argument)
        if keras_initializer is None or entry.layer is not layer or initializer is not getattr(layer, argument, None):
            continue  # the weight's initializer is not its role's argument (LoRA's): Keras's config does not say it
        shape = tuple(entry.parameter.shape)
        key = (type(layer).__name__, entry.path, json.dumps(keras_initializer, sort_keys=True, default=str), shape)
        if key not in _DISTRIBUTIONS:  # the check depends only on the key (and is seeded by it): done once per process
            _seed_everything(zlib.crc32(repr(key).encode()))
            draws = min(INIT_DRAWS, max(1, -(-INIT_SAMPLES // max(1, ours.size))))
            sample = np.concatenate([_numpy(initializer(shape, dtype=torch.float64)).ravel() for _ in range(draws)])
            # a new Keras initializer per draw: an instance keeps its seed, so it repeats its values
            expected = np.concatenate([np.asarray(keras().initializers.get(keras_initializer)(shape, dtype="float64")).ravel()
                                       for _ in range(draws)])
            _DISTRIBUTIONS[key] = _same_distribution(name, sample, expected)
        checks.append(_DISTRIBUTIONS[key])


def _same_distribution(name: str, ours: np.ndarray, theirs: np.ndarray) -> Check:
    n = min(ours.size, theirs.size)
    mean_error = abs(ours.mean() - theirs.mean())
    mean_bound = INIT_SIGMAS * np.sqrt((ours.var() + theirs.var()) / n) + 1e-12
    std_error = abs(ours.std() - theirs.std())
    std_bound = INIT_SIGMAS * max(ours.std(), theirs.std()) / np.sqrt(n) * 1.5 + 1e-12
    support = max(np.abs(theirs).max(), 1e-12)
    bounded = support <= 2.5 * theirs.std() + 1e-12  # uniform (1.73 std) or truncated at 2 std; a normal sample reaches ~4 std
    support_ok = not bounded or abs(np.abs(ours).max() - support) <= 0.05 * support + 1e-12
    passed = bool(mean_error <= mean_bound and std_error <= std_bound and support_ok)
    detail = "" if passed else (
        f"{name}: initial values differ in distribution: mean {ours.mean():.4g} vs keras {theirs.mean():.4g} (bound {mean_bound:.2g}), "
        f"std {ours.std():.4g} vs keras {theirs.std():.4g} (bound {std_bound:.2g}), max |x| {np.abs(ours).max():.4g} vs keras {support:.4g}"
    )
    return Check(name, passed, float(std_error), float(std_error / max(theirs.std(), 1e-12)), (0.0, 0.0), detail)


# -- ONNX -----------------------------------------------------------------------------------


def _onnx_refusal(info: LayerInfo, layer: Layer, case: Case, device: str, dtype: str) -> str:
    """Why this record carries no ONNX check ('' when it can carry one)."""
    if device != "cpu":
        return "checked with the cpu record (onnxruntime runs on CPU here)"
    if dtype != "float32":
        return "checked in float32"
    if case.training:
        return "an exported graph is the inference graph (training-mode calls are not exported)"
    return layer.export_refusal() or info.driver.onnx_refusal(case)


def _onnx_check(info: LayerInfo, layer: Layer, twin: Any, case: Case, seed: int, checks: list[Check], result: CaseResult) -> None:
    """Export the layer, run the file in onnxruntime at other sizes along its dynamic axes,
    and compare with Keras there."""
    from xlayers.onnx import export, run

    rng = np.random.default_rng(seed + 2)
    growth = {axis: 2 + axis for axis in layer.onnx_dynamic_axes()}  # batch + 2, time + 3, ...

    def grown(spec: TensorSpec) -> TensorSpec:
        return TensorSpec(tuple(size + growth.get(axis, 0) for axis, size in enumerate(spec.shape)), spec.dtype, spec.low, spec.high)

    example = map_structure(lambda spec: _draw(spec, rng, np.float32), case.inputs)
    example_args = info.driver.arguments(layer, case, example, rng)
    inputs = map_structure(lambda spec: _draw(grown(spec), rng, np.float32), case.inputs)
    arguments = info.driver.arguments(layer, case, inputs, rng)
    graph_inputs = info.driver.onnx_inputs(arguments)
    # the inputs as the layer takes them (a list of several stays one structured argument), then the graph's call arguments
    examples = (map_structure(torch.from_numpy, example), *(torch.from_numpy(example_args[k]) for k in graph_inputs))
    feeds = _leaves(inputs) + [arguments[k] for k in graph_inputs]
    with tempfile.TemporaryDirectory() as folder:
        try:
            exported = export(layer.eval(), examples, f"{folder}/layer.onnx", verbose=False)
        except Exception as error:
            checks.append(Check("onnx/export", False, detail=f"{type(error).__name__}: {str(error).splitlines()[0]}"))
            result.onnx = "FAILED"
            return
        ours = run(f"{folder}/layer.onnx", *feeds)
    theirs = [np.asarray(t) for t in _leaves(twin(map_structure(_to_keras, inputs), **{k: map_structure(_to_keras, v) for k, v in arguments.items()}))]
    before = len(checks)
    _compare_all(checks, "", {f"onnx/output{i}": o for i, o in enumerate(ours)}, {f"onnx/output{i}": t for i, t in enumerate(theirs)}, "float32", "cpu", None)
    passed = all(c.passed for c in checks[before:])
    nodes = ", ".join(f"{op} {n}" for op, n in sorted(exported.node_counts.items()))
    result.onnx = f"ok ({exported.nodes} nodes: {nodes})" if passed else "FAILED"


# -- helpers --------------------------------------------------------------------------------


def _normal(value: Any) -> Any:
    """Config values compared up to list/tuple and int/float spelling."""
    if isinstance(value, (list, tuple)):
        return tuple(_normal(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _shape_list(shape: Any) -> list[Any]:
    return list(shape) if isinstance(shape, list) else [shape]


def _noise_floor(info: LayerInfo, layer: Layer, twin: Any, case: Case, data: _Data, out32: np.ndarray) -> dict[str, float]:
    """Keras's float32 output ``out32`` (the last call, with the twin's weights) against Keras's
    float64 result with the same weights and inputs."""
    twin64 = info.driver.twin(layer, case, dtype="float64")
    variables32 = keras_variables(twin)
    for path, variable in keras_variables(twin64).items():
        variable.assign(np.asarray(variables32[path].numpy(), dtype=np.float64))
    calls64 = [map_structure(lambda v: v.astype(np.float64) if _is_float(v) else v, inputs) for inputs in data.inputs]
    info.driver.reset(layer, twin64)
    out64 = _run_keras(info, twin64, data, [], None, calls64)[0][-1][0].astype(np.float64)
    diff = np.abs(out32.astype(np.float64) - out64)
    floor = REL_FLOOR * max(1.0, float(np.abs(out64).max()))
    return {"max_abs_error": float(diff.max()), "max_rel_error": float((diff / np.maximum(np.abs(out64), floor)).max())}


def run_error_case(info: LayerInfo, case: ErrorCase) -> CaseResult:
    """Check that a bad construction or input raises the expected error with the expected message."""
    result = CaseResult(info.error_id(case), info.cls.__name__, "cpu", "float32", passed=False)
    start = time.perf_counter()
    clear_session()  # default names in messages are the first of their kind
    try:
        layer = info.cls(**case.kwargs)
        if case.first_input_shape is not None:
            layer(torch.randn(case.first_input_shape))
        if case.input_shape is not None:
            layer(torch.randn(case.input_shape).to(getattr(torch, case.input_dtype)), **case.call)
        result.checks.append(Check("error", False, detail=f"no error; expected {case.error.__name__}"))
    except case.error as error:
        matched = re.search(case.pattern, str(error)) is not None
        result.checks.append(Check("error", matched, detail="" if matched else f"message {str(error)!r} does not match {case.pattern!r}"))
    except Exception as error:
        result.checks.append(Check("error", False, detail=f"{type(error).__name__}: {error} (expected {case.error.__name__})"))
    result.passed = all(c.passed for c in result.checks)
    result.seconds = round(time.perf_counter() - start, 3)
    return result


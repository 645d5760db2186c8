"""Run one conformance case on one device and dtype, and say how far xlayers is from Keras.

Per case, in each direction of weight transfer (xlayers -> Keras, Keras -> xlayers):
every forward output (states included, every consecutive call of a stateful layer), the
gradients with respect to the input, the initial states and every weight (torch autograd
vs ``tf.GradientTape``, same upstream gradient), the output shape against
``compute_output_shape`` of both frameworks, and the kernel path xlayers took. Plus a
bit-exact weight round trip and, for float32, Keras's own float32 error against its
float64 result (the noise floor). float16/bfloat16 check the forward pass against Keras in
float32 on the same rounded weights and inputs.
"""

from __future__ import annotations

import contextlib
import time
import traceback
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from xlayers.layer import Layer, clear_session

from .case import HALF_DTYPES, Case, LayerInfo
from .keras_reference import keras_twin_from_config
from .testing import randomize_weights
from xlayers.tolerance import REL_FLOOR, compare, tolerance
from .transfer import from_keras, keras_weights_by_name, to_keras

__all__ = ["Check", "CaseResult", "run_case"]


@dataclass
class Check:
    """One measured quantity of a case."""

    name: str
    passed: bool
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    tolerance: tuple[float, float] = (0.0, 0.0)
    detail: str = ""


@dataclass
class CaseResult:
    """The record of one case on one device and dtype (one row of ``report.json``)."""

    id: str
    layer: str
    device: str
    dtype: str
    passed: bool
    checks: list[Check] = field(default_factory=list)
    path: str | None = None
    noise_floor: dict[str, float] | None = None
    onnx: str = ""  # "ok", "FAILED", or "n/a: <why ONNX cannot express the case>"
    seconds: float = 0.0
    note: str = ""
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["checks"] = {c["name"]: {k: v for k, v in c.items() if k != "name"} for c in record["checks"]}
        return record


def _torch_dtype(name: str) -> torch.dtype:
    return getattr(torch, name)


def _numpy(value: torch.Tensor) -> np.ndarray:
    value = value.detach().cpu()
    return (value.double() if value.dtype in (torch.float16, torch.bfloat16) else value).numpy()


def _round_to(array: np.ndarray, dtype: str) -> np.ndarray:
    """``array`` rounded to ``dtype`` and back to float32 (the half-precision reference)."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(_torch_dtype(dtype)).float().numpy()


def _mask(kind: str | None, batch: int, steps: int) -> np.ndarray | None:
    if kind is None:
        return None
    mask = np.ones((batch, steps), bool)
    if kind == "right":
        for row in range(batch):
            mask[row, max(1, steps - 2 * row - 1):] = False
        mask[-1] = True
    elif kind == "left":
        mask[0, :2] = False
    elif kind == "holey":
        mask[0, [1, steps - 2]] = False
        mask[1 % batch, 0] = False
    elif kind == "empty-row":
        mask[0, 3:] = False
        mask[1 % batch, :] = False
    return mask


class _Inputs:
    """Seeded random data for a case: inputs per call, states, mask, upstream gradients."""

    def __init__(self, case: Case, seed: int, dtype: str) -> None:
        rng = np.random.default_rng(seed)
        np_dtype = np.float64 if dtype == "float64" else np.float32
        self.calls = [rng.standard_normal(case.input_shape).astype(np_dtype) for _ in range(case.calls)]
        batch = case.input_shape[0]
        units = case.kwargs.get("units", 0)
        self.states = [rng.standard_normal((batch, units)).astype(np_dtype) for _ in range(2)] if case.initial_state else None
        self.mask = _mask(case.mask, batch, case.input_shape[1]) if case.mask else None
        if self.mask is not None and "mask_value" in case.kwargs:  # a Masking case: mask through the data
            for call in self.calls:
                call[~self.mask] = case.kwargs["mask_value"]
            self.mask = None
        self.rng = rng
        self.np_dtype = np_dtype
        self.kwargs = dict(case.kwargs)
        self.training = case.training
        self.dropout_masks: list[tuple[Any, Any]] = []  # per call, as xlayers drew them

    def upstream(self, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
        return [self.rng.standard_normal(s).astype(self.np_dtype) for s in shapes]


def _as_list(outputs: Any) -> list[Any]:
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


@contextlib.contextmanager
def _captured_dropout_masks() -> Iterator[list[tuple[Any, Any]]]:
    """Record the dropout masks xlayers' recurrent layers draw (to hand the same ones to Keras)."""
    from xlayers.layers import recurrent

    drawn: list[tuple[Any, Any]] = []
    original = recurrent.lstm_dropout_masks

    def recording(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        masks = original(*args, **kwargs)
        drawn.append(masks)
        return masks

    recurrent.lstm_dropout_masks = recording
    try:
        yield drawn
    finally:
        recurrent.lstm_dropout_masks = original


def _keras_masks(mask: Any, rate: float) -> Any:
    """The units xlayers kept, as the mask Keras's cell caches (one tensor, or one per gate).

    Only the keep pattern is shared: the values are Keras's own, ``keep / (1 - rate)``, so a
    wrongly scaled mask in xlayers still shows."""
    import tensorflow as tf

    if mask is None:
        return None
    keep = _numpy(mask) != 0
    array = (keep / (1.0 - rate)).astype(np.float32)
    return [tf.constant(m) for m in array] if array.ndim == 3 else tf.constant(array)


def _run_xlayers(layer: Layer, data: _Inputs, device: str, dtype: torch.dtype, upstream: list[np.ndarray] | None, with_grads: bool):
    """All calls; gradients of the last call. Returns (outputs per call, grads by name, path)."""
    outputs_per_call: list[list[np.ndarray]] = []
    grads: dict[str, np.ndarray] = {}
    if getattr(layer, "stateful", False):
        layer.reset_state()
    for index, array in enumerate(data.calls):
        last = index == len(data.calls) - 1
        x = torch.from_numpy(array).to(device=device, dtype=dtype).requires_grad_(with_grads and last)
        kwargs: dict[str, Any] = {}
        states = None
        if data.mask is not None:
            kwargs["mask"] = torch.from_numpy(data.mask).to(device)
        if data.states is not None:
            states = [torch.from_numpy(s).to(device=device, dtype=dtype).requires_grad_(with_grads and last) for s in data.states]
            kwargs["initial_state"] = states
        for p in layer.parameters():
            p.grad = None
        if "training" in _call_args(layer):
            kwargs["training"] = data.training
        outputs = _as_list(layer(x, **kwargs))
        outputs_per_call.append([_numpy(o) for o in outputs])
        if with_grads and last:
            loss = sum((o * torch.from_numpy(g).to(device=device, dtype=o.dtype)).sum() for o, g in zip(outputs, upstream))
            loss.backward()
            # a gradient that never arrived is left out: the comparison reports it missing
            named = {"input": x.grad}
            if states is not None:
                named.update(h0=states[0].grad, c0=states[1].grad)
            for weight in layer.declared_weights():
                parameter = getattr(layer, weight.name)
                if parameter.requires_grad:
                    named[weight.name] = parameter.grad
            grads.update({name: _numpy(grad) for name, grad in named.items() if grad is not None})
    return outputs_per_call, grads, getattr(layer, "last_path", None)


def _call_args(layer: Layer) -> set[str]:
    import inspect

    return set(inspect.signature(layer.call).parameters)


def _run_keras(twin: Any, data: _Inputs, upstream: list[np.ndarray] | None, with_grads: bool, calls: Sequence[np.ndarray] | None = None):
    import tensorflow as tf

    outputs_per_call: list[list[np.ndarray]] = []
    grads: dict[str, np.ndarray] = {}
    calls = data.calls if calls is None else calls
    variables = keras_weights_by_name(twin)
    if getattr(twin, "stateful", False):
        twin.reset_state()
    for index, array in enumerate(calls):
        last = index == len(calls) - 1
        x = tf.constant(array)
        kwargs: dict[str, Any] = {}
        states = None
        if data.mask is not None:
            kwargs["mask"] = tf.constant(data.mask)
        if data.states is not None:
            states = [tf.constant(s.astype(array.dtype)) for s in data.states]
            kwargs["initial_state"] = states
        if data.training:
            kwargs["training"] = True
            cell = getattr(twin, "cell", None)
            if cell is not None and index < len(data.dropout_masks):  # the same units dropped as in xlayers
                drop, recurrent = data.dropout_masks[index]
                cell._dropout_mask = _keras_masks(drop, cell.dropout)
                cell._recurrent_dropout_mask = _keras_masks(recurrent, cell.recurrent_dropout)
        with tf.GradientTape(persistent=False) as tape:
            tape.watch(x)
            if states is not None:
                for s in states:
                    tape.watch(s)
            outputs = _as_list(twin(x, **kwargs))
            loss = tf.add_n([tf.reduce_sum(o * tf.constant(g.astype(array.dtype))) for o, g in zip(outputs, upstream)]) if with_grads and last else None
        outputs_per_call.append([np.asarray(o) for o in outputs])
        if loss is not None:
            names = ["input", *(["h0", "c0"] if states is not None else [])]
            sources = [x, *(states or [])]
            trainable = {n: v for n, v in variables.items() if v.trainable}
            names += list(trainable)
            sources += list(trainable.values())
            for name, grad in zip(names, tape.gradient(loss, sources)):
                grads[name] = np.zeros(tuple(s.shape)) if grad is None else np.asarray(tf.convert_to_tensor(grad))
    return outputs_per_call, grads


def _compare_all(checks: list[Check], prefix: str, ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray], dtype: str, device: str, rtol_atol: tuple[float, float] | None) -> None:
    for name in sorted(set(ours) | set(theirs)):
        if name not in ours or name not in theirs:
            checks.append(Check(f"{prefix}{name}", False, detail="missing on one side"))
            continue
        result = compare(ours[name], theirs[name], dtype, device, override=rtol_atol)
        checks.append(
            Check(f"{prefix}{name}", result.passed, result.max_abs_error, result.max_rel_error, (result.rtol, result.atol),
                  "" if result.passed else result.describe(f"{prefix}{name}"))
        )


def run_case(info: LayerInfo, case: Case, device: str = "cpu", dtype: str = "float32") -> CaseResult:
    """Measure ``case`` on ``device`` in ``dtype``; never raises (errors become a failed record)."""
    start = time.perf_counter()
    result = CaseResult(case.id, info.cls.__name__, device, dtype, passed=False)
    try:
        _run(info, case, device, dtype, result)
        result.passed = all(c.passed for c in result.checks)
        if case.id in info.deviations:  # documented: passes while Keras still differs
            result.note = info.deviations[case.id]
            result.passed = not result.passed
    except Exception as error:  # a crash is a failed case with its traceback, not a crashed run
        result.error = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=4)}"
    result.seconds = round(time.perf_counter() - start, 3)
    return result


def _run(info: LayerInfo, case: Case, device: str, dtype: str, result: CaseResult) -> None:
    seed = zlib.crc32(case.id.encode())
    half = dtype in HALF_DTYPES
    compute = "float32" if half else dtype
    override = info.tolerances.get(case.id) or info.tolerances.get("*")
    rtol_atol = (override.rtol, override.atol) if override else None
    if override:
        result.note = override.reason
    data = _Inputs(case, seed, compute)
    torch_dtype = _torch_dtype(dtype)

    layer = case.layer(**case.kwargs, dtype=compute)
    layer(torch.from_numpy(data.calls[0][: case.input_shape[0]]))  # build on CPU in the compute dtype
    randomize_weights(layer, seed)
    if half:  # the reference sees the same rounded weights and inputs
        with torch.no_grad():
            for p in layer.parameters():
                p.copy_(p.to(torch_dtype).float())
        data.calls = [_round_to(a, dtype) for a in data.calls]
        if data.states is not None:
            data.states = [_round_to(s, dtype) for s in data.states]
    twin = keras_twin_from_config(layer, overrides=dict(case.kwargs))
    checks = result.checks

    # the layer reports the configuration it was given, as Keras does
    ours, theirs = layer.get_config(), getattr(twin, "twin", twin).get_config()
    if getattr(layer, "data_format", None) == "channels_first":
        theirs = {**theirs, "data_format": "channels_first"}  # the twin runs channels_last between transposes
    reported = [k for k in case.kwargs if k in theirs]  # Keras does not report e.g. LSTM's use_cudnn
    differing = {k: (ours.get(k), theirs.get(k)) for k in reported if _normal(ours.get(k)) != _normal(theirs.get(k))}
    checks.append(Check("config", not differing, detail="" if not differing else f"xlayers vs keras config: {differing}"))

    # weight round trip xlayers -> Keras -> xlayers is bit-exact
    before = [p.detach().clone() for p in layer.parameters()]
    to_keras(layer, twin)
    from_keras(layer, twin)
    exact = all(torch.equal(a, b) for a, b in zip(before, layer.parameters()))
    checks.append(Check("weights/round-trip", exact, detail="" if exact else "a weight changed on the round trip"))

    keras_out, keras_grads = None, None
    for direction in ("x2k", "k2x"):
        if direction == "k2x":  # Keras's own (re-randomised) weights into xlayers
            twin = keras_twin_from_config(layer, overrides=dict(case.kwargs))
            rng = np.random.default_rng(seed + 1)
            for variable in keras_weights_by_name(twin).values():
                shape = tuple(variable.shape)
                scale = 1.0 / max(1, shape[0]) ** 0.5 if len(shape) > 1 else 0.5
                value = (rng.standard_normal(shape) * scale + 0.05)
                variable.assign(_round_to(value, dtype).astype(variable.dtype) if half else value.astype(variable.dtype))
            from_keras(layer, twin)
        else:
            to_keras(layer, twin)
        target = layer.to(device=device, dtype=torch_dtype)
        if direction == "x2k":
            with torch.no_grad():
                probe = _run_xlayers(layer, data, "cpu", layer.dtype, None, False)[0][-1]
            upstream = data.upstream([o.shape for o in probe])
        with _captured_dropout_masks() as drawn:
            ours_out, ours_grads, path = _run_xlayers(target, data, device, torch_dtype, upstream, not half)
        data.dropout_masks = drawn
        keras_out, keras_grads = _run_keras(twin, data, upstream, not half)
        result.path = path
        ours_flat = {f"call{c}/output{i}" if case.calls > 1 else f"output{i}": o for c, outs in enumerate(ours_out) for i, o in enumerate(outs)}
        theirs_flat = {f"call{c}/output{i}" if case.calls > 1 else f"output{i}": o for c, outs in enumerate(keras_out) for i, o in enumerate(outs)}
        _compare_all(checks, f"{direction}/", ours_flat, theirs_flat, dtype, device, rtol_atol)
        if not half:
            _compare_all(checks, f"{direction}/grad/", ours_grads, keras_grads, dtype, device, rtol_atol)
        layer.to(device="cpu", dtype=_torch_dtype(compute))

    # output shapes: xlayers' compute_output_shape against what both frameworks actually returned
    predicted = [tuple(s) for s in _shapes(layer.compute_output_shape(case.input_shape))]
    keras_actual = [tuple(o.shape) for o in keras_out[-1]]
    ours_actual = [tuple(o.shape) for o in ours_out[-1]]
    shapes_ok = predicted == keras_actual == ours_actual
    checks.append(Check("shape", shapes_ok, detail="" if shapes_ok else f"predicted {predicted}, keras {keras_actual}, xlayers {ours_actual}"))

    if case.path is not None:
        checks.append(Check("path", result.path == case.path, detail=f"expected {case.path}, took {result.path}"))

    reason = onnx_unsupported(case, device, dtype)
    if reason:
        result.onnx = f"n/a: {reason}"
    else:
        _onnx_check(layer, twin, case, seed, checks, result)

    if dtype == "float32" and not case.training:  # Keras's own float32 error against its float64 result
        result.noise_floor = _noise_floor(layer, twin, data)


def onnx_unsupported(case: Case, device: str, dtype: str) -> str:
    """Why ONNX export cannot be checked for this record ('' when it can)."""
    if device != "cpu":
        return "checked with the cpu record (onnxruntime runs on CPU here)"
    if dtype != "float32":
        return "checked in float32"
    if case.mask in ("holey", "left"):
        return "the exported graph takes masks as right-padded (ONNX's LSTM takes sequence lengths)"
    if case.initial_state:
        return "initial states are call arguments the export does not take"
    if case.kwargs.get("stateful"):
        return "an ONNX graph holds no state between runs"
    if case.training:
        return "dropout in training mode is random"
    standard = case.kwargs.get("activation", "tanh") == "tanh" and case.kwargs.get("recurrent_activation", "sigmoid") == "sigmoid"
    if case.layer.__name__ == "LSTM" and (not standard or case.kwargs.get("use_cudnn") is False):
        return "an LSTM off the fused kernel would export unrolled at a fixed length"
    return ""


def _onnx_check(layer: Layer, twin: Any, case: Case, seed: int, checks: list[Check], result: CaseResult) -> None:
    """Export the layer, run the file in onnxruntime at other sizes, compare with Keras there."""
    import tempfile

    from xlayers.onnx import export, run

    rng = np.random.default_rng(seed + 2)
    shape = list(case.input_shape)
    example = torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
    shape[0] += 2  # another batch size
    if len(shape) == 3 and type(layer).__name__ == "LSTM":
        shape[1] += 3  # and another length
    inputs = rng.standard_normal(shape).astype(np.float32)
    examples, feeds, keras_kwargs = (example,), (inputs,), {}
    if "mask_value" in case.kwargs:  # Masking: masked steps in the data itself
        inputs[0, 1] = case.kwargs["mask_value"]
    elif case.mask is not None:  # the same kind of mask, at the example's and at the new sizes
        example_mask = torch.from_numpy(_mask(case.mask, *case.input_shape[:2]))
        mask = _mask(case.mask, *shape[:2])
        examples, feeds, keras_kwargs = (example, example_mask), (inputs, mask), {"mask": mask}
    with tempfile.TemporaryDirectory() as folder:
        try:
            exported = export(layer.eval(), examples, f"{folder}/layer.onnx", verbose=False)
        except Exception as error:
            checks.append(Check("onnx/export", False, detail=f"{type(error).__name__}: {str(error).splitlines()[0]}"))
            result.onnx = "FAILED"
            return
        ours = run(f"{folder}/layer.onnx", *feeds)
    import tensorflow as tf

    theirs = _as_list(twin(inputs, **{k: tf.constant(v) for k, v in keras_kwargs.items()}))
    theirs = [np.asarray(t) for t in theirs]
    names = {f"onnx/output{i}": o for i, o in enumerate(ours)}
    _compare_all(checks, "", names, {f"onnx/output{i}": t for i, t in enumerate(theirs)}, "float32", "cpu", None)
    passed = all(c.passed for c in checks if c.name.startswith("onnx/"))
    nodes = ", ".join(f"{op} {n}" for op, n in sorted(exported.node_counts.items()))
    result.onnx = f"ok ({exported.nodes} nodes: {nodes})" if passed else "FAILED"


def _normal(value: Any) -> Any:
    """Config values compared up to list/tuple and int/float spelling."""
    if isinstance(value, (list, tuple)):
        return tuple(_normal(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _shapes(shape: Any) -> list[Any]:
    return list(shape) if isinstance(shape, list) else [shape]


def _noise_floor(layer: Layer, twin: Any, data: _Inputs) -> dict[str, float]:
    config_twin = keras_twin_from_config(layer, dtype="float64", overrides=dict(data.kwargs))
    for name, variable in keras_weights_by_name(config_twin).items():
        variable.assign(np.asarray(keras_weights_by_name(twin)[name].numpy(), dtype=np.float64))
    calls64 = [a.astype(np.float64) for a in data.calls]
    states = data.states
    if states is not None:
        data.states = [s.astype(np.float64) for s in states]
    out64 = _run_keras(config_twin, data, None, False, calls=calls64)[0][-1][0]
    data.states = states
    out32 = _run_keras(twin, data, None, False)[0][-1][0]
    diff = np.abs(out32.astype(np.float64) - out64)
    floor = REL_FLOOR * max(1.0, float(np.abs(out64).max()))
    return {"max_abs_error": float(diff.max()), "max_rel_error": float((diff / np.maximum(np.abs(out64), floor)).max())}


def default_tolerance(dtype: str, device: str) -> tuple[float, float]:
    return tolerance(dtype, device)


def run_error_case(info: LayerInfo, case: Any) -> CaseResult:
    """Check that a bad construction or input raises the expected error with the expected message."""
    import re

    result = CaseResult(f"{_snake_name(info)}/error-{case.variant}", info.cls.__name__, "cpu", "float32", passed=False)
    start = time.perf_counter()
    clear_session()  # default names in messages are the first of their kind
    try:
        layer = info.cls(**case.kwargs)
        if case.first_input_shape is not None:
            layer(torch.randn(*case.first_input_shape))
        if case.input_shape is not None:
            layer(torch.randn(*case.input_shape).to(getattr(torch, case.input_dtype)))
        result.checks.append(Check("error", False, detail=f"no error; expected {case.error.__name__}"))
    except case.error as error:
        matched = re.search(case.pattern, str(error)) is not None
        result.checks.append(Check("error", matched, detail="" if matched else f"message {str(error)!r} does not match {case.pattern!r}"))
    except Exception as error:
        result.checks.append(Check("error", False, detail=f"{type(error).__name__}: {error} (expected {case.error.__name__})"))
    result.passed = all(c.passed for c in result.checks)
    result.seconds = round(time.perf_counter() - start, 3)
    return result


def _snake_name(info: LayerInfo) -> str:
    from xlayers.layer import _snake_case

    return _snake_case(info.cls.__name__)

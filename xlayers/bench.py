"""The benchmark: xlayers against native torch, Keras on torch and Keras on TF, same shapes, same weights.

``xlayers bench [--cases PATTERN] [--candidates LIST] [--device cpu|cuda] [--threads N] [--out DIR] [--quick]``
(or ``python tools/bench.py ...``). One registry of cases (``CASES``): a stack of Keras layers by class name and
config, built the same way from ``xlayers.layers`` and ``keras.layers``, or a ``keras.applications`` model. The
parent writes each case's seeded numpy weights (Keras layout, Keras's order) and input once; each framework then
runs in its own process (``python -m xlayers.bench --worker FRAMEWORK``), with the same intra-op thread count (one
inter-op thread), loads those weights (``set_weights``; native torch through the layers' declared torch views)
and prints its results as JSON. Whole models come from a ``.keras`` file a Keras-TF process writes once
(``weights=None``); xlayers reads it with ``from_keras``.

Candidates: ``xlayers``, ``xlayers-compile`` (``torch.compile(fullgraph=True)``) and ``native`` (the best plain
torch formulation: channels-last views, torch's modules) interleaved in one process; ``keras-torch``
(``KERAS_BACKEND=torch``); ``keras-tf`` and ``keras-tf-xla`` (``tf.function``, without and with
``jit_compile``). Each case times ``forward`` (inference) and ``train`` (forward + backward of the output's sum
for the float input and every trainable weight, in training mode): warm-up, then repeats in rotating order until
a time budget is spent, reporting median, min and max. A failure (a compile error) is recorded, never fatal.
Also recorded: floating-point operations (torch's ``FlopCounterMode`` on the xlayers model), GFLOP/s against a
square matmul timed in the same process, the peak memory of one training step, and each candidate's forward
output checked against xlayers' under the tolerance policy.
"""

from __future__ import annotations

import argparse
import ctypes
import fnmatch
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FRAMEWORKS = {  # worker process -> its candidates, interleaved inside it
    "torch": ("xlayers", "xlayers-compile", "native"),
    "keras-torch": ("keras-torch",),
    "keras-tf": ("keras-tf", "keras-tf-xla"),
}
CANDIDATES = tuple(name for names in FRAMEWORKS.values() for name in names)
PASSES = ("forward", "train")
LARGE_FLOPS = 1e8  # a case is "large" (GFLOP/s reported in the table) from this many forward FLOPs
RSS_METHOD = "peak RSS during one step minus RSS before it (sampled every 0.5 ms, after malloc_trim)"
PROGRESS = "bench: "  # a worker's progress lines on stderr, which the parent passes on
SAMPLE = 1 << 16  # output elements kept per candidate for the agreement check
# torchvision 0.28.0 is the release for torch 2.13.0; PyPI's wheel is a CUDA build (checked with
# `pip download --no-deps torchvision==0.28.0`): beside the CPU torch its import fails.
NATIVE_MODELS_NA = ("n/a: torchvision 0.28.0 (torch 2.13.0's) on PyPI is a CUDA build whose import fails beside "
                    "the CPU torch ('operator torchvision::nms does not exist'); no hand-written equivalent")


@dataclass(frozen=True)
class Case:
    """One benchmark case: a stack of Keras layers (class name, config) or a ``keras.applications`` model."""

    name: str
    shape: tuple[int, ...]
    layers: tuple[tuple[str, dict[str, Any]], ...] = ()
    application: str | None = None
    native: Callable[[Any], Any] | None = None  # the built xlayers model -> an equivalent plain torch module
    inputs: str = "normal"  # "normal", "tokens:<vocabulary>", or "padded" (right-padded zeros, for a mask)
    self_attention: bool = False  # the layer is called as layer(x, x)
    training: bool = False  # the forward pass runs in training mode too (BatchNormalization's batch statistics)
    passes: tuple[str, ...] = PASSES
    flops: Callable[[tuple[int, ...]], float] | None = None  # forward FLOPs where torch's counter sees none
    note: str = ""

    @property
    def float_input(self) -> bool:
        return not self.inputs.startswith("tokens")


# -- native torch equivalents (the built xlayers model -> a plain torch module) -----------------------


def _layer(model: Any, index: int = 0) -> Any:
    return [layer for layer in model.layers if layer.__class__.__name__ != "InputLayer"][index]


def _loaded(module: Any, **tensors: Any) -> Any:
    """``module`` with its parameters (by torch name) copied from ``tensors`` (xlayers' torch views)."""
    import torch

    with torch.no_grad():
        for name, value in tensors.items():
            getattr(module, name).copy_(value)
    return module


def _channels_first(inner: Any, rank: int) -> Any:
    """A channels-last input viewed channels-first for ``inner`` (no copy: torch's ``channels_last``), and back."""
    import torch

    class ChannelsFirst(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner.to(memory_format=torch.channels_last) if rank == 2 else inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.inner(x.movedim(-1, 1))
            return y.movedim(1, -1)

    return ChannelsFirst()


def _padded(conv: Any, layer: Any, spatial: tuple[int, ...]) -> Any:
    """``conv`` with TF's 'same' padding: torch's own when symmetric, else an explicit pad first."""
    import torch

    from .padding import same_padding

    pairs = same_padding(spatial, layer.kernel_size, layer.strides, layer.dilation_rate)
    if all(before == after for before, after in pairs):
        conv.padding = tuple(before for before, _ in pairs)
        return conv
    flat = [side for pair in reversed(pairs) for side in pair]
    return torch.nn.Sequential(torch.nn.ZeroPad2d(flat) if len(spatial) == 2 else torch.nn.ConstantPad1d(flat, 0.0), conv)


def _native_dense(model: Any) -> Any:
    import torch

    layer = _layer(model)
    units, features = layer.weight_view("kernel").shape
    linear = _loaded(torch.nn.Linear(features, units), weight=layer.weight_view("kernel"), bias=layer.weight_view("bias"))
    return torch.nn.Sequential(linear, torch.nn.ReLU())


def _native_conv(model: Any) -> Any:
    import torch

    layer = _layer(model)
    kernel = layer.weight_view("kernel")
    rank = kernel.dim() - 2
    spatial = tuple(model.inputs[0].shape[1:-1])
    conv_class = (torch.nn.Conv1d, torch.nn.Conv2d)[rank - 1]
    groups = layer.groups if hasattr(layer, "groups") else 1
    depthwise = layer.__class__.__name__.startswith("Depthwise")
    channels = model.inputs[0].shape[-1]
    conv = conv_class(channels, kernel.shape[0], kernel.shape[2:], stride=layer.strides, dilation=layer.dilation_rate,
                      groups=channels if depthwise else groups)
    conv = _loaded(conv, weight=kernel, bias=layer.weight_view("bias"))
    if layer.padding == "same":
        conv = _padded(conv, layer, spatial)
    return _channels_first(conv, rank)


def _native_conv_transpose(model: Any) -> Any:
    """``ConvTranspose2d`` without padding, then TF's 'same' crop (the odd position off the end), a view."""
    import torch

    layer = _layer(model)
    kernel = layer.weight_view("kernel")
    conv = _loaded(torch.nn.ConvTranspose2d(kernel.shape[0], kernel.shape[1], kernel.shape[2:], stride=layer.strides),
                   weight=kernel, bias=layer.weight_view("bias"))
    size = [s * stride for s, stride in zip(model.inputs[0].shape[1:3], layer.strides, strict=True)]
    full = [(s - 1) * stride + k for s, stride, k in zip(model.inputs[0].shape[1:3], layer.strides, kernel.shape[2:], strict=True)]
    start = [(f - s) // 2 for f, s in zip(full, size, strict=True)]

    class Cropped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = conv

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x)[..., start[0]:start[0] + size[0], start[1]:start[1] + size[1]]

    return _channels_first(Cropped(), 2)


def _native_batch_norm(model: Any) -> Any:
    import torch

    layer = _layer(model)
    norm = torch.nn.BatchNorm2d(layer.gamma.shape[0], eps=layer.epsilon, momentum=1 - layer.momentum)
    norm = _loaded(norm, weight=layer.gamma, bias=layer.beta, running_mean=layer.moving_mean, running_var=layer.moving_variance)
    return _channels_first(norm, 2)


def _native_max_pool(model: Any) -> Any:
    """TF's 'same' max pooling with stride 2 as torch's ``ceil_mode`` (the windows past the end clipped)."""
    import torch

    layer = _layer(model)
    return _channels_first(torch.nn.MaxPool2d(layer.pool_size, layer.strides, ceil_mode=True), 2)


def _rnn(layer: Any, module_name: str) -> Any:
    """torch's own recurrent module with ``layer``'s weights, through the layer's declared torch views."""
    import torch

    kernel = layer.weight_view("kernel")
    module = getattr(torch.nn, module_name)(kernel.shape[1], layer.units, batch_first=True)
    bias = layer.weight_view("bias")
    ih, hh = (bias[0], bias[1]) if bias.dim() == 2 else (bias, torch.zeros_like(bias))  # GRU's reset_after rows
    return _loaded(module, weight_ih_l0=kernel, weight_hh_l0=layer.weight_view("recurrent_kernel"), bias_ih_l0=ih, bias_hh_l0=hh)


def _native_recurrent(model: Any) -> Any:
    import torch

    layer = _layer(model)
    module = _rnn(layer, layer.__class__.__name__)

    class Sequences(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.rnn(x)[0]

    return Sequences()


def _native_masked_lstm(model: Any) -> Any:
    """Packed sequences (the lengths from the all-zero steps at the end); padded steps repeat the last output."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    module = _rnn(_layer(model, 1), "LSTM")

    class Packed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            lengths = (x != 0).any(-1).sum(1)
            out = pad_packed_sequence(self.rnn(pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False))[0],
                                      batch_first=True, total_length=x.shape[1])[0]
            steps = torch.arange(x.shape[1], device=x.device)
            last = out.gather(1, (lengths - 1).view(-1, 1, 1).expand(-1, 1, out.shape[-1]))
            return torch.where((steps[None, :] < lengths[:, None])[..., None], out, last)

    return Packed()


def _native_attention(model: Any) -> Any:
    """``nn.MultiheadAttention`` with the Keras projections' kernels (``(dim, heads, key_dim)``) flattened."""
    import torch

    layer = _layer(model)
    w = [torch.as_tensor(a) for a in layer.get_weights()]  # Keras order: query, key, value kernels and biases, output
    dim, heads, key_dim = w[0].shape
    module = torch.nn.MultiheadAttention(dim, heads, batch_first=True)
    flat = lambda kernel: kernel.reshape(dim, heads * key_dim).T
    module = _loaded(module, in_proj_weight=torch.cat([flat(w[0]), flat(w[2]), flat(w[4])]),
                     in_proj_bias=torch.cat([w[1].flatten(), w[3].flatten(), w[5].flatten()]))
    _loaded(module.out_proj, weight=w[6].reshape(heads * key_dim, dim).T, bias=w[7])

    class SelfAttention(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attention = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.attention(x, x, x, need_weights=False)[0]

    return SelfAttention()


def _native_text(model: Any) -> Any:
    import torch

    embedding, lstm, dense = (_layer(model, i) for i in range(3))
    table = embedding.weight_view("embeddings")

    class Text(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = _loaded(torch.nn.Embedding(*table.shape), weight=table)
            self.rnn = _rnn(lstm, "LSTM")
            self.dense = _loaded(torch.nn.Linear(lstm.units, dense.units), weight=dense.weight_view("kernel"), bias=dense.weight_view("bias"))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.dense(self.rnn(self.embedding(x))[1][0][-1]))

    return Text()


def _lstm_flops(shape: tuple[int, ...], units: int) -> float:
    """An LSTM's forward FLOPs: ``2 * batch * steps * 4 units * (features + units)`` (oneDNN's fused op is opaque
    to torch's counter)."""
    batch, steps, features = shape
    return 2.0 * batch * steps * 4 * units * (features + units)


CASES: tuple[Case, ...] = (
    Case("dense-32x784-128-relu", (32, 784), (("Dense", {"units": 128, "activation": "relu"}),), native=_native_dense),
    Case("conv2d-16x28x28x3-32-3x3-valid", (16, 28, 28, 3), (("Conv2D", {"filters": 32, "kernel_size": 3}),), native=_native_conv),
    Case("conv2d-32x64x64x64-3x3-s2-same", (32, 64, 64, 64),
         (("Conv2D", {"filters": 64, "kernel_size": 3, "strides": 2, "padding": "same"}),), native=_native_conv),
    Case("conv2d-32x56x56x64-3x3-s1-same", (32, 56, 56, 64),
         (("Conv2D", {"filters": 64, "kernel_size": 3, "padding": "same"}),), native=_native_conv),
    Case("lstm-8x20x10-64-seq", (8, 20, 10), (("LSTM", {"units": 64, "return_sequences": True}),),
         native=_native_recurrent, flops=lambda s: _lstm_flops(s, 64)),
    Case("lstm-64x100x128-256-seq", (64, 100, 128), (("LSTM", {"units": 256, "return_sequences": True}),),
         native=_native_recurrent, flops=lambda s: _lstm_flops(s, 256)),
    Case("conv1d-32x200x32-64-k5-same", (32, 200, 32), (("Conv1D", {"filters": 64, "kernel_size": 5, "padding": "same"}),),
         native=_native_conv),
    Case("depthwise2d-32x56x56x64-3x3-same", (32, 56, 56, 64), (("DepthwiseConv2D", {"kernel_size": 3, "padding": "same"}),),
         native=_native_conv),
    Case("conv2dtranspose-16x28x28x64-32-3x3-s2-same", (16, 28, 28, 64),
         (("Conv2DTranspose", {"filters": 32, "kernel_size": 3, "strides": 2, "padding": "same"}),), native=_native_conv_transpose),
    Case("batchnorm-train-32x56x56x64", (32, 56, 56, 64), (("BatchNormalization", {}),), native=_native_batch_norm, training=True),
    Case("maxpool2d-32x56x56x64-3-s2-same", (32, 56, 56, 64), (("MaxPooling2D", {"pool_size": 3, "strides": 2, "padding": "same"}),),
         native=_native_max_pool),
    Case("gru-32x100x64-128-seq", (32, 100, 64), (("GRU", {"units": 128, "return_sequences": True}),), native=_native_recurrent),
    Case("lstm-masked-32x50x32-64-seq", (32, 50, 32), (("Masking", {"mask_value": 0.0}), ("LSTM", {"units": 64, "return_sequences": True})),
         native=_native_masked_lstm, inputs="padded", flops=lambda s: _lstm_flops(s, 64)),
    Case("mha-self-16x128x512-8x64", (16, 128, 512), (("MultiHeadAttention", {"num_heads": 8, "key_dim": 64}),),
         native=_native_attention, self_attention=True),
    Case("text-32x200-embedding-lstm-dense", (32, 200),
         (("Embedding", {"input_dim": 20000, "output_dim": 128}), ("LSTM", {"units": 128}), ("Dense", {"units": 1, "activation": "sigmoid"})),
         native=_native_text, inputs="tokens:20000", flops=lambda s: _lstm_flops((*s, 128), 128)),
    Case("resnet50-b1", (1, 224, 224, 3), application="ResNet50", passes=("forward",), note=NATIVE_MODELS_NA),
    Case("resnet50-b32", (32, 224, 224, 3), application="ResNet50", note=NATIVE_MODELS_NA),
    Case("mobilenetv2-b1", (1, 224, 224, 3), application="MobileNetV2", passes=("forward",), note=NATIVE_MODELS_NA),
    Case("mobilenetv2-b32", (32, 224, 224, 3), application="MobileNetV2", note=NATIVE_MODELS_NA),
)
QUICK_CASES = "dense-*,conv2d-16x28x28x3-*"


def select(pattern: str) -> list[Case]:
    """The cases whose names match any of the comma-separated glob ``pattern``s, in registry order."""
    patterns = [p.strip() for p in pattern.split(",") if p.strip()]
    return [case for case in CASES if any(fnmatch.fnmatch(case.name, p) for p in patterns)]


# -- inputs and weights, written once by the parent -----------------------------------------------------------


def make_input(case: Case) -> np.ndarray:
    """The case's seeded input: normal floats, token ids, or floats right-padded with zero steps."""
    rng = np.random.default_rng(0)
    if case.inputs.startswith("tokens:"):
        return rng.integers(1, int(case.inputs.split(":")[1]), case.shape).astype(np.int32)
    x = rng.standard_normal(case.shape, dtype=np.float32)
    if case.inputs == "padded":  # row i keeps its first steps - i % (steps // 2) steps
        steps = case.shape[1]
        lengths = steps - np.arange(case.shape[0]) % (steps // 2)
        x[np.arange(steps)[None, :] >= lengths[:, None]] = 0.0
    return x


def build(namespace: Any, case: Case) -> Any:
    """The case's layer stack as a functional model from ``namespace`` (``xlayers`` or ``keras``)."""
    inputs = namespace.Input(case.shape[1:], dtype="float32" if case.float_input else "int32")
    hidden = inputs
    for class_name, config in case.layers:
        layer = getattr(namespace.layers, class_name)(**config)
        hidden = layer(hidden, hidden) if case.self_attention else layer(hidden)
    return namespace.Model(inputs, hidden)


def make_weights(model: Any) -> list[np.ndarray]:
    """Seeded weights in Keras layout and order, one array per ``model.get_weights()`` entry (variances positive)."""
    rng = np.random.default_rng(1)
    arrays = []
    for variable, value in zip(model.weights, model.get_weights(), strict=True):
        if "variance" in variable.path:
            arrays.append(rng.uniform(0.5, 1.5, value.shape).astype(value.dtype))
        else:
            fan_in = value.shape[0] if value.ndim else 1
            arrays.append((rng.standard_normal(value.shape) / np.sqrt(max(fan_in, 1))).astype(value.dtype))
    return arrays


def prepare(cases: list[Case], directory: Path) -> None:
    """Each case's input (``<case>.input.npy``) and, for layer stacks, its weights (``<case>.weights.npz``)."""
    import xlayers

    for case in cases:
        np.save(directory / f"{case.name}.input.npy", make_input(case))
        if case.layers:
            arrays = make_weights(build(xlayers, case))
            np.savez(directory / f"{case.name}.weights.npz", *arrays)


def _weights(directory: Path, case: Case) -> list[np.ndarray]:
    with np.load(directory / f"{case.name}.weights.npz") as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


# -- timing -----------------------------------------------------------------------------------------------


def _error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_delta(fn: Callable[[], object]) -> float | None:
    """Peak resident memory during ``fn()`` minus the resident memory before it, in MiB, sampled every 0.5 ms
    by a thread (the libraries release the GIL while they compute), after glibc's ``malloc_trim`` has returned
    the freed memory of earlier calls to the system (else their cached blocks hide the step's own); ``None``
    without ``/proc``."""
    if not os.path.exists("/proc/self/statm"):
        return None
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: cached blocks may hide part of the step's peak
        pass
    before = _rss()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return (max(peak[0], _rss()) - before) / 2**20


@dataclass
class Budget:
    """How long to time: warm-up calls, then rounds (every candidate once, rotating order) until ``seconds``
    are spent, at least ``min_repeats`` and at most ``max_repeats`` rounds."""

    seconds: float = 2.0
    warmup: int = 3
    min_repeats: int = 5
    max_repeats: int = 200

    @classmethod
    def quick(cls) -> Budget:
        return cls(seconds=0.1, warmup=1, min_repeats=3, max_repeats=5)


def interleaved(fns: dict[str, Callable[[], object]], sync: Callable[[], None], budget: Budget) -> dict[str, dict[str, Any]]:
    """Time each candidate: warm-up (a failure there is recorded as the candidate's error), then rounds in
    rotating order; median, min and max in milliseconds."""
    results: dict[str, dict[str, Any]] = {}
    live: dict[str, Callable[[], object]] = {}
    first: dict[str, float] = {}
    for name, fn in fns.items():
        try:
            start = time.perf_counter()
            fn()
            sync()
            first[name] = (time.perf_counter() - start) * 1e3  # torch.compile / tf.function / XLA: the compile
            for _ in range(budget.warmup - 1):
                fn()
            sync()
            live[name] = fn
        except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
            results[name] = {"error": _error(exc)}
    if not live:
        return results
    start = time.perf_counter()
    for fn in live.values():
        fn()
    sync()
    one_round = time.perf_counter() - start
    repeats = max(budget.min_repeats, min(budget.max_repeats, int(budget.seconds / max(one_round, 1e-9))))
    times: dict[str, list[float]] = {name: [] for name in live}
    names = list(live)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            live[name]()
            sync()
            times[name].append((time.perf_counter() - start) * 1e3)
    for name, values in times.items():
        results[name] = {"median_ms": statistics.median(values), "min_ms": min(values), "max_ms": max(values),
                         "repeats": len(values), "first_call_ms": first[name]}
    return results


def _sample(output: Any) -> np.ndarray:
    flat = np.asarray(output, dtype=np.float32).reshape(-1)
    return flat[:: max(1, flat.size // SAMPLE)][:SAMPLE]


# -- workers (one process per framework) ------------------------------------------------------------------


@dataclass
class Worker:
    """What a framework's process must say: how to sync, its matmul peak, and its candidates' callables."""

    device: str
    budget: Budget
    directory: Path
    results: dict[str, Any] = field(default_factory=dict)

    def run(self, cases: list[Case], candidates: list[str]) -> dict[str, Any]:
        self.results["peak_gflops"] = self.peak_gflops()
        self.results["cases"] = {}
        for number, case in enumerate(cases, 1):
            print(f"{PROGRESS}{type(self).__name__.removesuffix('Worker')} {number}/{len(cases)} {case.name}",
                  file=sys.stderr, flush=True)
            entry: dict[str, Any] = {}
            try:
                fns = self.candidates(case, candidates)
            except Exception as exc:  # noqa: BLE001 - a case that cannot be built is recorded
                self.results["cases"][case.name] = {"error": _error(exc)}
                continue
            for name, made in fns.items():  # before any training step moves BatchNormalization's statistics
                if not isinstance(made, str):
                    try:
                        np.save(self.directory / f"{case.name}.{name}.out.npy", _sample(made["output"]()))
                    except Exception as exc:  # noqa: BLE001
                        entry.setdefault("output_errors", {})[name] = _error(exc)
            for pass_name in case.passes:
                calls = {}
                for name, made in fns.items():
                    if isinstance(made, str):
                        entry.setdefault(pass_name, {})[name] = {"error": made}
                        continue
                    calls[name] = made[pass_name]
                timed = interleaved(calls, self.sync, self.budget)
                if pass_name == "train":
                    for name, call in calls.items():
                        if "error" not in timed.get(name, {"error": 1}):
                            timed[name]["peak_memory_mib"] = self.peak_memory(call)
                entry.setdefault(pass_name, {}).update(timed)
            entry.update(self.extra(case, fns))
            self.results["cases"][case.name] = entry
            del fns
            self.release()
        self.results["peak_gflops"] = max(self.results["peak_gflops"], self.peak_gflops())  # before and after: load varies
        return self.results

    def extra(self, case: Case, fns: dict[str, Any]) -> dict[str, Any]:
        return {}

    def release(self) -> None:
        """Free the last case's models (and whatever the framework cached for them) before the next."""
        gc.collect()


class TorchWorker(Worker):
    """xlayers, xlayers under ``torch.compile(fullgraph=True)`` and native torch, interleaved."""

    def __init__(self, *args: Any, threads: int) -> None:
        super().__init__(*args)
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
        self.torch = torch
        self.results.update(threads=torch.get_num_threads(), torch=torch.__version__)
        if self.device == "cuda":
            self.results.update(cudnn=torch.backends.cudnn.version(), cudnn_enabled=torch.backends.cudnn.enabled,
                                tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32,
                                gpu=torch.cuda.get_device_name())
        self.results["peak_memory_method"] = "torch.cuda.max_memory_allocated" if self.device == "cuda" else RSS_METHOD

    def sync(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def release(self) -> None:
        self.torch._dynamo.reset()  # compiled graphs hold the case's model
        super().release()

    def peak_gflops(self) -> float:
        n = 512 if self.budget.warmup == 1 else 2048
        a = self.torch.randn(n, n, device=self.device)
        timed = interleaved({"matmul": lambda: a @ a}, self.sync, Budget(seconds=self.budget.seconds, min_repeats=5))
        return 2 * n**3 / (timed["matmul"]["min_ms"] * 1e6)

    def peak_memory(self, call: Callable[[], object]) -> float | None:
        if self.device != "cuda":
            return peak_rss_delta(call)
        self.torch.cuda.reset_peak_memory_stats()
        before = self.torch.cuda.memory_allocated()
        call()
        self.sync()
        return (self.torch.cuda.max_memory_allocated() - before) / 2**20

    def tensor(self, case: Case) -> Any:
        return self.torch.from_numpy(np.load(self.directory / f"{case.name}.input.npy")).to(self.device)

    def passes(self, model: Any, x: Any, case: Case, params: list[Any]) -> dict[str, Callable[[], object]]:
        """The forward (no grad) and train (forward + backward in training mode) calls of a torch callable."""
        torch = self.torch
        call = model.__call__

        def set_training(flag: bool) -> None:  # a compiled module's mode is its wrapped module's
            if model.training != flag:
                model.train(flag)

        def forward() -> object:
            set_training(case.training)
            with torch.no_grad():
                return call(x)

        def train() -> object:
            set_training(True)
            for p in params:
                p.grad = None
            inputs = x.detach().requires_grad_(True) if case.float_input else x
            out = call(inputs)
            out.float().sum().backward()
            return out

        return {"forward": forward, "train": train, "output": lambda: forward().float().cpu().numpy()}

    def candidates(self, case: Case, names: list[str]) -> dict[str, Any]:
        import xlayers

        torch = self.torch
        x = self.tensor(case)
        if case.application:
            model = xlayers.from_keras(str(self.directory / f"{case.application}.keras"))
        else:
            model = build(xlayers, case)
            model.set_weights(_weights(self.directory, case))
        model = model.to(self.device).eval()
        params = [p for p in model.parameters() if p.requires_grad]
        made: dict[str, Any] = {}
        if "xlayers" in names:
            made["xlayers"] = self.passes(model, x, case, params)
        if "xlayers-compile" in names:
            made["xlayers-compile"] = self.passes(torch.compile(model, fullgraph=True), x, case, params)
        if "native" in names:
            if case.native is None:
                made["native"] = case.note or "n/a: no native formulation"
            else:
                native = case.native(model).to(self.device).eval()
                made["native"] = self.passes(native, x, case, [p for p in native.parameters() if p.requires_grad])
        return made

    def extra(self, case: Case, fns: dict[str, Any]) -> dict[str, Any]:
        """The xlayers model's forward FLOPs, from torch's counter (or the case's formula), and 3x that for
        the train pass (torch 2.13's counter ignores ``groups`` in a grouped convolution's backward: 65x the
        forward for a depthwise 3x3 on 64 channels)."""
        from torch.utils.flop_counter import FlopCounterMode

        if "xlayers" not in fns or isinstance(fns["xlayers"], str):
            return {}
        if case.flops is not None:
            forward = case.flops(case.shape)
        else:
            with FlopCounterMode(display=False) as counter:
                fns["xlayers"]["forward"]()
            forward = counter.get_total_flops()
        return {"flops": {"forward": forward, "train": 3 * forward, "counted_by": "formula" if case.flops else "FlopCounterMode"}}


class KerasTorchWorker(TorchWorker):
    """Keras 3 on the torch backend (``KERAS_BACKEND=torch`` set before keras is imported)."""

    def __init__(self, *args: Any, threads: int) -> None:
        super().__init__(*args, threads=threads)
        import keras

        if keras.backend.backend() != "torch":
            raise RuntimeError(f"Keras runs on {keras.backend.backend()}, not torch (KERAS_BACKEND)")
        self.keras = keras
        self.results["keras"] = keras.__version__

    def release(self) -> None:
        self.keras.backend.clear_session()
        super().release()

    def candidates(self, case: Case, names: list[str]) -> dict[str, Any]:
        torch = self.torch
        x = self.tensor(case)
        model = _keras_model(self.keras, case, self.directory)
        params = [v.value for v in model.trainable_weights]

        def forward() -> object:  # Keras's own training flag
            with torch.no_grad():
                return model(x, training=case.training)

        def train() -> object:
            for p in params:
                p.grad = None
            out = model(x.detach().requires_grad_(True) if case.float_input else x, training=True)
            out.float().sum().backward()
            return out

        return {"keras-torch": {"forward": forward, "train": train, "output": lambda: forward().float().cpu().numpy()}}

    def extra(self, case: Case, fns: dict[str, Any]) -> dict[str, Any]:
        return {}


def _keras_model(keras: Any, case: Case, directory: Path) -> Any:
    if case.application:
        return keras.saving.load_model(directory / f"{case.application}.keras", compile=False)
    model = build(keras, case)
    model.set_weights(_weights(directory, case))
    return model


class KerasTFWorker(Worker):
    """Keras 3 on TensorFlow under ``tf.function``, without and with ``jit_compile`` (XLA)."""

    def __init__(self, *args: Any, threads: int) -> None:
        super().__init__(*args)
        import keras
        import tensorflow as tf

        self.keras = keras
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        self.tf = tf
        gpus = tf.config.list_physical_devices("GPU")
        if self.device == "cuda" and not gpus:
            raise RuntimeError("TensorFlow sees no GPU")
        self.name = "/GPU:0" if self.device == "cuda" else "/CPU:0"
        self.results.update(threads=threads, tensorflow=tf.__version__, keras=keras.__version__, onednn=os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
                            peak_memory_method="tf.config.experimental.get_memory_info peak" if self.device == "cuda" else RSS_METHOD)
        if self.device == "cuda":
            self.results["tf32"] = tf.config.experimental.tensor_float_32_execution_enabled()

    def release(self) -> None:
        self.keras.backend.clear_session()
        super().release()

    def sync(self) -> None:
        return None  # TF's eager calls return when the result is computed (synchronous execution, its default)

    def peak_gflops(self) -> float:
        n = 512 if self.budget.warmup == 1 else 2048
        with self.tf.device(self.name):
            a = self.tf.random.normal((n, n))
            timed = interleaved({"matmul": lambda: self.tf.linalg.matmul(a, a).numpy()}, self.sync,
                                Budget(seconds=self.budget.seconds, min_repeats=5))
        return 2 * n**3 / (timed["matmul"]["min_ms"] * 1e6)

    def peak_memory(self, call: Callable[[], object]) -> float | None:
        if self.device != "cuda":
            return peak_rss_delta(call)
        self.tf.config.experimental.reset_memory_stats("GPU:0")
        before = self.tf.config.experimental.get_memory_info("GPU:0")["current"]
        call()
        return (self.tf.config.experimental.get_memory_info("GPU:0")["peak"] - before) / 2**20

    def candidates(self, case: Case, names: list[str]) -> dict[str, Any]:
        tf = self.tf
        with tf.device(self.name):
            x = tf.constant(np.load(self.directory / f"{case.name}.input.npy"))
            model = _keras_model(self.keras, case, self.directory)
        made: dict[str, Any] = {}
        for name, jit in (("keras-tf", False), ("keras-tf-xla", True)):
            if name not in names:
                continue
            forward = tf.function(lambda inputs: model(inputs, training=case.training), jit_compile=jit)

            def step(inputs: Any) -> Any:
                with tf.GradientTape() as tape:
                    if case.float_input:
                        tape.watch(inputs)
                    loss = tf.reduce_sum(tf.cast(model(inputs, training=True), tf.float32))
                sources = ([inputs] if case.float_input else []) + model.trainable_weights
                return tape.gradient(loss, sources)

            train = tf.function(step, jit_compile=jit)

            def on_device(fn: Callable[[Any], Any]) -> Callable[[], object]:
                def call() -> object:
                    with tf.device(self.name):
                        return fn(x)
                return call

            infer = on_device(forward)
            made[name] = {"forward": infer, "train": on_device(train), "output": (lambda f=infer: f().numpy())}
        return made


def write_application(name: str, directory: Path) -> None:
    """``keras.applications.<name>(weights=None)``, seeded, saved as ``<name>.keras`` (a Keras-TF process)."""
    import keras

    keras.utils.set_random_seed(0)
    path = directory / f"{name}.keras"
    if not path.exists():
        getattr(keras.applications, name)(weights=None).save(path)


def worker_main(args: argparse.Namespace) -> dict[str, Any]:
    """A worker's JSON: its framework's results, or why it could not run."""
    directory = Path(args.dir)
    cases = select(args.cases)
    budget = Budget.quick() if args.quick else Budget()
    candidates = [c for c in args.candidates.split(",") if c in FRAMEWORKS.get(args.worker, ())]
    try:
        if args.worker == "prepare":
            for name in sorted({case.application for case in cases if case.application}):
                write_application(name, directory)
            return {"prepared": True}
        worker_class = {"torch": TorchWorker, "keras-torch": KerasTorchWorker, "keras-tf": KerasTFWorker}[args.worker]
        worker = worker_class(args.device, budget, directory, threads=args.threads)
    except ImportError as exc:
        return {"unavailable": f"{args.worker} not installed ({_error(exc)})"}
    except Exception as exc:  # noqa: BLE001
        return {"unavailable": f"{args.worker} could not start ({_error(exc)})"}
    return worker.run(cases, candidates)


# -- the parent: run the workers, merge, print and write -------------------------------------------------------


def _spawn(worker: str, args: argparse.Namespace, directory: Path, cases: list[Case], candidates: list[str]) -> dict[str, Any]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="torch" if worker == "keras-torch" else "tensorflow")
    if worker in ("keras-tf", "prepare"):
        env["TF_ENABLE_ONEDNN_OPTS"] = "1"  # TensorFlow's own default on x86 (the conformance run turns it off)
    command = [sys.executable, "-m", "xlayers.bench", "--worker", worker, "--dir", str(directory),
               "--cases", ",".join(case.name for case in cases), "--candidates", ",".join(candidates),
               "--threads", str(args.threads), "--device", args.device] + (["--quick"] if args.quick else [])
    last: list[str] = []
    with tempfile.TemporaryFile("w+") as out:  # a file, not a pipe: the JSON may outgrow a pipe's buffer
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, text=True, env=env)
        try:
            for line in process.stderr:  # progress on to our stderr; the rest kept for a failure's message
                if line.startswith(PROGRESS):
                    print(line.rstrip(), file=sys.stderr, flush=True)
                elif line.strip():
                    last[:] = [*last[-19:], line.rstrip()]
            returncode = process.wait()
        finally:
            if process.poll() is None:  # interrupted: no worker outlives the parent
                process.kill()
                process.wait()
        out.seek(0)
        lines = out.read().strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (last or ["no output"])[-1]
        return {"unavailable": f"{worker} worker failed (exit {returncode}): {tail[:300]}"}


def _ratio(results: dict[str, Any], a: str, b: str) -> float | None:
    if "median_ms" in results.get(a, {}) and "median_ms" in results.get(b, {}):
        return results[a]["median_ms"] / results[b]["median_ms"]
    return None


def collect(args: argparse.Namespace) -> dict[str, Any]:
    """Run every needed worker and merge their results into one report."""
    from .tolerance import compare

    cases = select(args.cases)
    if not cases:
        raise SystemExit(f"xlayers bench: no case matches {args.cases!r}; cases: {', '.join(c.name for c in CASES)}")
    wanted = [c.strip() for c in args.candidates.split(",") if c.strip()]
    unknown = sorted(set(wanted) - set(CANDIDATES))
    if unknown:
        raise SystemExit(f"xlayers bench: unknown candidates {unknown}; known: {', '.join(CANDIDATES)}")
    report: dict[str, Any] = {
        "device": args.device, "threads": args.threads, "quick": args.quick, "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus", "frameworks": {}, "cases": {},
        "notes": ["each framework in its own process, one after another; xlayers, xlayers-compile and native interleaved",
                  "train = forward + backward of sum(output) for the float input and all trainable weights, training mode",
                  "train FLOPs = 3 x forward FLOPs; GFLOP/s against the square matmul timed in the same process"],
    }
    with tempfile.TemporaryDirectory(prefix="xlayers-bench-") as tmp:
        directory = Path(tmp)
        prepare(cases, directory)
        if any(case.application for case in cases):
            prepared = _spawn("prepare", args, directory, cases, [])
            if "unavailable" in prepared:
                report["notes"].append(f"whole models unavailable: {prepared['unavailable']}")
        for worker, names in FRAMEWORKS.items():
            chosen = [name for name in names if name in wanted]
            if chosen:
                report["frameworks"][worker] = _spawn(worker, args, directory, cases, chosen)
        for case in cases:
            report["cases"][case.name] = _merge(case, report["frameworks"], wanted, directory, args.device, compare)
    for details in report["frameworks"].values():
        details.pop("cases", None)
    return report


def _merge(case: Case, frameworks: dict[str, Any], wanted: list[str], directory: Path, device: str, compare: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"shape": list(case.shape), "passes": {}, "agreement": {}}
    flops = frameworks.get("torch", {}).get("cases", {}).get(case.name, {}).get("flops", {})
    if flops:
        entry["flops"] = flops
    for worker, names in FRAMEWORKS.items():
        details = frameworks.get(worker, {})
        results = details.get("cases", {}).get(case.name, {})
        for name in (n for n in names if n in wanted):
            for pass_name in case.passes:
                if "unavailable" in details:
                    cell = {"error": details["unavailable"]}
                elif "error" in results:
                    cell = {"error": results["error"]}
                else:
                    cell = dict(results.get(pass_name, {}).get(name, {"error": "not run"}))
                if "median_ms" in cell and pass_name in flops and flops[pass_name] and details.get("peak_gflops"):
                    cell["gflops"] = flops[pass_name] / (cell["median_ms"] * 1e6)
                    cell["percent_of_peak"] = 100 * cell["gflops"] / details["peak_gflops"]
                entry["passes"].setdefault(pass_name, {})[name] = cell
    for pass_name, results in entry["passes"].items():
        entry.setdefault("ratios", {})[pass_name] = {
            f"xlayers/{name}": _ratio(results, "xlayers", name) for name in results if name != "xlayers"}
    for worker in FRAMEWORKS:
        for name, error in frameworks.get(worker, {}).get("cases", {}).get(case.name, {}).get("output_errors", {}).items():
            entry["agreement"][name] = {"passed": False, "error": error}
    reference = directory / f"{case.name}.xlayers.out.npy"
    for name in wanted:
        path = directory / f"{case.name}.{name}.out.npy"
        if name != "xlayers" and reference.exists() and path.exists():
            result = compare(np.load(path), np.load(reference), "float32", device)
            entry["agreement"][name] = {"passed": result.passed, "max_abs_error": result.max_abs_error,
                                        "bound_fraction": result.bound_fraction}
    return entry


def reuse(report: dict[str, Any], earlier: dict[str, Any], source: str) -> None:
    """Fill ``report`` with the candidates it did not run from ``earlier`` (an earlier report of the
    same cases, same seeded weights and inputs, from ``source``), marked ``reused``, and recompute
    the ratios: rerunning one framework keeps the others' quiet measurements."""
    if (earlier.get("device"), earlier.get("threads")) != (report["device"], report["threads"]):
        raise SystemExit(f"xlayers bench: {source} was measured on {earlier.get('device')} with {earlier.get('threads')} "
                         f"threads, this run on {report['device']} with {report['threads']}: not comparable")
    for worker, details in earlier.get("frameworks", {}).items():
        if worker not in report["frameworks"]:
            report["frameworks"][worker] = {**details, "reused_from": source}
    for case_name, case in report["cases"].items():
        before = earlier.get("cases", {}).get(case_name)
        if before is None:
            continue
        for pass_name, results in case["passes"].items():
            for name, cell in before["passes"].get(pass_name, {}).items():
                if name not in results:
                    results[name] = {**cell, "reused": True}
            case.setdefault("ratios", {})[pass_name] = {
                f"xlayers/{name}": _ratio(results, "xlayers", name) for name in results if name != "xlayers"}
        for name, agreement in before.get("agreement", {}).items():
            case["agreement"].setdefault(name, agreement)
    report["notes"].append(f"cells marked reused come from {source}")


def _cell(result: dict[str, Any]) -> str:
    if "median_ms" not in result:
        return "n/a" if result.get("error", "").startswith("n/a") else "error"
    return f"{result['median_ms']:.3g} [{result['min_ms']:.3g}-{result['max_ms']:.3g}]"


def table(report: dict[str, Any]) -> str:
    """The report as a Markdown table: median [min-max] ms per candidate, ratios, GFLOP/s and peak memory."""
    names = [n for n in CANDIDATES if any(n in p for c in report["cases"].values() for p in c["passes"].values())]
    ratio_names = [n for n in ("native", "keras-torch", "keras-tf", "keras-tf-xla") if n in names]
    head = ["case", "pass", *[f"{n} ms" for n in names], *[f"xlayers/{n}" for n in ratio_names],
            "xlayers GFLOP/s (% peak)", "train peak MiB (xlayers)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    for case_name, case in report["cases"].items():
        for pass_name, results in case["passes"].items():
            ratios = case.get("ratios", {}).get(pass_name, {})
            xl = results.get("xlayers", {})
            large = case.get("flops", {}).get("forward", 0) >= LARGE_FLOPS and "gflops" in xl
            row = [case_name, pass_name, *[_cell(results.get(n, {})) for n in names],
                   *[f"{ratios[f'xlayers/{n}']:.2f}" if ratios.get(f"xlayers/{n}") else "-" for n in ratio_names],
                   f"{xl['gflops']:.1f} ({xl['percent_of_peak']:.0f}%)" if large else "-",
                   f"{xl['peak_memory_mib']:.0f}" if xl.get("peak_memory_mib") is not None else "-"]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def footnotes(report: dict[str, Any]) -> str:
    """Peaks, versions, errors and disagreements: what the table's cells do not say."""
    lines = [f"device {report['device']}, {report['threads']} threads (1 inter-op), {report['machine']}"]
    for worker, details in report["frameworks"].items():
        facts = {k: v for k, v in details.items() if k not in ("cases",)}
        if "peak_gflops" in facts:
            facts["peak_gflops"] = round(facts["peak_gflops"], 1)
        lines.append(f"{worker}: {json.dumps(facts)}")
    errors: dict[tuple[str, str], list[str]] = {}
    for case_name, case in report["cases"].items():
        for pass_name, results in case["passes"].items():
            for name, result in results.items():
                if "error" in result:
                    errors.setdefault((name, result["error"]), []).append(f"{case_name} {pass_name}")
    for (name, error), where in errors.items():
        lines.append(f"{name}: {error} ({len(where)} cells: {', '.join(where[:3])}{', ...' if len(where) > 3 else ''})")
    for case_name, case in report["cases"].items():
        for name, agreement in case["agreement"].items():
            if "error" in agreement:
                lines.append(f"{case_name}: {name}'s forward output could not be checked: {agreement['error']}")
            elif not agreement["passed"]:
                lines.append(f"{case_name}: {name}'s forward output differs from xlayers' beyond the tolerance policy "
                             f"(max abs {agreement['max_abs_error']:.3g}, {agreement['bound_fraction']:.3g} x the bound)")
    return "\n".join(f"- {line}" for line in lines)


def _write(path: Path, text: str) -> None:
    """Atomic: a temporary file beside ``path``, renamed onto it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    os.replace(temporary, path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cases", default="*", help="comma-separated glob patterns of case names")
    parser.add_argument("--candidates", default=",".join(CANDIDATES), help="comma-separated candidates")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads in every framework")
    parser.add_argument("--out", default="out", help="directory for bench.json and bench.md")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (one warm-up call, few repeats)")
    parser.add_argument("--reuse", metavar="BENCH_JSON",
                        help="take the candidates this run leaves out from an earlier bench.json of the same cases")


def run(args: argparse.Namespace) -> int:
    """The parent: run the workers, print the table and write ``bench.json`` and ``bench.md`` into ``--out``."""
    report = collect(args)
    if args.reuse:
        reuse(report, json.loads(Path(args.reuse).read_text()), args.reuse)
    text = table(report) + "\n\n" + footnotes(report) + "\n"
    print(text)
    out = Path(args.out)
    _write(out / "bench.json", json.dumps(report, indent=1) + "\n")
    _write(out / "bench.md", text)
    print(f"wrote {out / 'bench.json'} and {out / 'bench.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xlayers bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--worker", choices=["prepare", *FRAMEWORKS], help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker_main(args)))
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

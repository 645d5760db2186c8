"""``xlayers port IN OUT``: a Keras model file to PyTorch weights, safetensors, ONNX or back
to ``.keras``, verified on a random batch.

IN is a Keras 3 ``.keras`` file (or its unzipped folder) or a legacy ``.h5`` model file that
Keras 3 wrote, read without TensorFlow or Keras.
OUT is chosen by its name: ``.keras`` (Keras 3.15 loads it), ``.safetensors`` (sharded above
``--max-shard-size``), ``.weights.h5`` (Keras's weights file), or ``.onnx`` (verified in
onnxruntime against torch). Unless ``--no-verify``, the ported model is also compared with
Keras on a random batch when Keras is installed, under the tolerance policy; a failed
verification exits non-zero. OUT is written atomically: whole or not at all.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ArgumentError
from .layer import Layer, _leaves
from .tolerance import compare

__all__ = ["add_arguments", "port", "random_batch", "run"]

OUTPUTS = (".keras", ".safetensors", ".weights.h5", ".onnx")


def random_batch(model: Layer, batch: int = 2, seed: int = 0) -> list[torch.Tensor]:
    """One random input per model input: its shape with unknown sizes filled (batch ``batch``,
    others 5), normal floats, or integer ids in ``[0, 2)`` (valid for any vocabulary)."""
    generator = torch.Generator().manual_seed(seed)
    tensors = []
    for tensor in getattr(model, "inputs", None) or []:
        shape = tuple(batch if i == 0 else (5 if s is None else s) for i, s in enumerate(tensor.shape))
        if tensor.dtype.is_floating_point:
            tensors.append(torch.randn(shape, generator=generator, dtype=tensor.dtype))
        else:
            tensors.append(torch.randint(0, 2, shape, generator=generator).to(tensor.dtype))
    if not tensors and getattr(model, "_build_shape", None) is not None:  # a Sequential
        shape = tuple(batch if i == 0 else (5 if s is None else s) for i, s in enumerate(model._build_shape))
        tensors.append(torch.randn(shape, generator=generator))
    if not tensors:
        raise ArgumentError(f"{model._label}: the model's input shapes are unknown, so it cannot be verified. Use --no-verify.")
    return tensors


def _outputs(result: Any) -> list[np.ndarray]:
    values = list(result.values()) if isinstance(result, dict) else _leaves(result)
    return [np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v) for v in values]


def _verify_with_keras(source: Path, model: Layer, inputs: list[torch.Tensor], say: Callable[[str], Any]) -> bool | None:
    try:
        import keras
    except ImportError:
        say("verify: Keras is not installed; the ported model was not compared with Keras")
        return None
    import keras

    twin = keras.saving.load_model(source, compile=False)
    feed = [t.numpy() for t in inputs]
    theirs = twin(feed if len(feed) > 1 else feed[0])
    theirs_list = [np.asarray(theirs[k]) for k in theirs] if isinstance(theirs, dict) else [np.asarray(t) for t in _leaves(theirs)]
    with torch.no_grad():
        ours = _outputs(model(inputs if len(inputs) > 1 else inputs[0]))
    passed = True
    for index, (a, b) in enumerate(zip(ours, theirs_list)):
        result = compare(a, b, "float32", "cpu")
        passed &= result.passed
        say(f"verify: output {index} against Keras: max abs error {result.max_abs_error:.3g}, max rel error "
            f"{result.max_rel_error:.3g} ({'within tolerance' if result.passed else 'OUTSIDE tolerance'}, worst element at "
            f"{result.bound_fraction:.0%} of its bound)")
    if len(ours) != len(theirs_list):
        say(f"verify: xlayers gives {len(ours)} outputs, Keras {len(theirs_list)}")
        passed = False
    return passed


def port(source: str | Path, target: str | Path, *, verify: bool = True, max_shard_size: int | None = None,
         print_fn: Callable[[str], Any] = print) -> bool:
    """Port ``source`` to ``target`` (see the module docstring); return whether verification
    passed (``True`` when skipped)."""
    from .saving import from_keras, save_keras

    source, target = Path(source), Path(target)
    if not str(target).endswith(OUTPUTS):
        raise ArgumentError(f"OUT must end in one of {', '.join(OUTPUTS)}. Received: {target}.")
    started = time.perf_counter()
    model = from_keras(source)
    layers = [m for m in model.modules() if isinstance(m, Layer)]
    weights = list(model.walk_weights())
    parameters = sum(e.parameter.numel() for e in weights)
    print_fn(f"read {source}: {len(layers) - 1} layers, {len(weights)} weights, {parameters:,} parameters, "
             f"in {time.perf_counter() - started:.2f} s; skipped: nothing")
    inputs = random_batch(model) if verify or str(target).endswith(".onnx") else []
    name = str(target)
    if name.endswith(".keras"):
        save_keras(model, target)
    elif name.endswith((".safetensors", ".weights.h5")):
        model.save_weights(target, **({"max_shard_size": max_shard_size} if name.endswith(".safetensors") else {}))
    else:
        from .onnx import export

        export(model, tuple(inputs) if len(inputs) > 1 else inputs[0], target, verify=verify, verbose=False)
        if verify:
            print_fn("verify: the ONNX graph agrees with torch in onnxruntime (within tolerance)")
    print_fn(f"wrote {target} in {time.perf_counter() - started:.2f} s")
    if not verify:
        return True
    return _verify_with_keras(source, model, inputs, print_fn) is not False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="IN", help="a Keras 3 .keras file (or its folder), or a legacy .h5 model file")
    parser.add_argument("target", metavar="OUT", help=f"the file to write: {', '.join(OUTPUTS)}")
    parser.add_argument("--no-verify", action="store_true", help="skip the comparison on a random batch")
    parser.add_argument("--max-shard-size", type=int, metavar="BYTES", help="shard .safetensors above this size")


def run(args: argparse.Namespace) -> int:
    try:
        ok = port(args.source, args.target, verify=not args.no_verify, max_shard_size=args.max_shard_size)
    except (ValueError, TypeError, OSError) as error:
        print(f"xlayers port: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    return 0 if ok else 1

"""Cases for `xlayers/layers/core.py`: Dense, Masking, Identity, Embedding and EinsumDense."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from xlayers import Dense, Identity, Masking, activations
from xlayers.errors import ArgumentError, ArgumentTypeError, InputDtypeError, InputShapeError, UnknownNameError

from ..case import Case, ErrorCase, LayerInfo
from ..driver import Driver, sequence_mask

# activations usable by name (Keras's `threshold` needs two more arguments: an error case)
_ACTIVATIONS = [name for name in activations.names() if name != "threshold"]

# one case per initializer family, on a kernel whose fans differ (in 11, out 6)
_INITIALIZERS = (
    "zeros", "ones", {"class_name": "Constant", "config": {"value": -0.75}}, "identity",
    "random_normal", "random_uniform", "truncated_normal", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
    "lecun_uniform", "lecun_normal", "orthogonal",
    {"class_name": "VarianceScaling", "config": {"scale": 3.0, "mode": "fan_out", "distribution": "untruncated_normal"}},
)


def _initializer_variant(initializer: Any) -> str:
    if isinstance(initializer, str):
        return initializer
    config = initializer["config"]
    return initializer["class_name"].lower() + "-" + "-".join(f"{v}" for v in config.values())


DENSE_CASES = (
    *(Case(Dense, f"act={a}", {"units": 6, "activation": a}, (3, 5)) for a in _ACTIVATIONS),
    *(
        Case(Dense, f"rank{len(shape)}-bias{int(bias)}", {"units": 7, "use_bias": bias}, shape, dtypes=("float32", "float64"))
        for shape, bias in itertools.product([(3, 5), (2, 7, 5), (2, 3, 4, 5)], [True, False])
    ),
    *(Case(Dense, f"init={_initializer_variant(i)}", {"units": 6, "kernel_initializer": i,
                                                     "bias_initializer": "zeros" if i in ("identity", "orthogonal") else i}, (3, 11))
      for i in _INITIALIZERS),
    Case(Dense, "square-kernel", {"units": 5}, (4, 5)),
    Case(Dense, "lora-r2", {"units": 7, "lora_rank": 2}, (3, 5)),
    Case(Dense, "lora-r2-alpha3", {"units": 7, "lora_rank": 2, "lora_alpha": 3.0}, (3, 5)),
    Case(Dense, "half-relu", {"units": 9, "activation": "relu"}, (4, 11), dtypes=("float16", "bfloat16")),
    Case(Dense, "mixed-relu", {"units": 9, "activation": "relu"}, (4, 11), dtypes=("mixed_float16", "mixed_bfloat16")),
)

DENSE_ERRORS = (
    ErrorCase("units-zero", {"units": 0}, ArgumentError, r"^`Dense` layer 'dense': `units` must be a positive integer\. Received: units=0"),
    ErrorCase("unknown-activation", {"units": 2, "activation": "nope"}, UnknownNameError, r"^`Dense` layer 'dense': `activation` must be one of .*Received: activation='nope'"),
    ErrorCase("unknown-kwarg", {"units": 2, "bogus": 1}, ArgumentTypeError, r"^`Dense` layer 'dense': unrecognized keyword arguments \['bogus'\]\. Received: bogus=1\."),
    ErrorCase("feature-size", {"units": 2}, InputShapeError, r"^`Dense` layer 'dense': expected axis -1 of the input to have size 4.*\(3, 5\)", (3, 5), (3, 4)),
    ErrorCase("rank-1", {"units": 2}, InputShapeError, r"^`Dense` layer 'dense': expected an input of rank >= 2\. Received: input shape=\(4,\)", (4,)),
    ErrorCase("integer-input", {"units": 2}, InputDtypeError, r"^`Dense` layer 'dense': expected a floating-point input.*Received: dtype=int64", (3, 4), (3, 4), "int64"),
    ErrorCase("unknown-initializer", {"units": 2, "kernel_initializer": "nope"}, UnknownNameError, r"^`Dense` layer 'dense': .*glorot_uniform.*Received: .*'nope'"),
    ErrorCase("units-float", {"units": 3.5}, ArgumentError, r"^`Dense` layer 'dense': `units` must be a positive integer\. Received: units=3\.5"),
    ErrorCase("lora-with-constraint", {"units": 2, "lora_rank": 1, "kernel_constraint": "non_neg"}, ArgumentError, r"^`Dense` layer 'dense': `lora_rank` cannot be combined"),
    ErrorCase("lora-alpha-str", {"units": 2, "lora_rank": 1, "lora_alpha": "x"}, ArgumentTypeError,
              r"^`Dense` layer 'dense': `lora_alpha` must be a number or None\. Received: lora_alpha='x'\."),
    ErrorCase("dtype-int32", {"units": 2, "dtype": "int32"}, ArgumentTypeError, r"^`Dense` layer 'dense': `dtype` must be a floating dtype.*Received: dtype='int32'\."),
    ErrorCase("input-shape-int", {"units": 2, "input_shape": 3}, ArgumentTypeError, r"^`Dense` layer 'dense': `input_shape` must be a tuple.*Received: input_shape=3\."),
    ErrorCase("rank-0", {"units": 2}, InputShapeError, r"^`Dense` layer 'dense': expected an input of rank >= 2\. Received: input shape=\(\)\.", (), (3, 4)),
)


class MaskingDriver(Driver):
    """Masking takes its mask through the data: ``call={"masked_steps": kind}`` sets the
    features of the masked steps of every input to ``mask_value``."""

    def arguments(self, layer: Any, case: Case, inputs: Any, rng: np.random.Generator) -> dict[str, Any]:
        kind = case.call.get("masked_steps")
        if kind is not None:
            keep = sequence_mask(kind, *inputs.shape[:2])
            inputs[~keep] = case.kwargs.get("mask_value", 0.0)
        return super().arguments(layer, case, inputs, rng)


MASKING_ERRORS = (
    ErrorCase("mask-value-str", {"mask_value": "a"}, ArgumentTypeError, r"^`Masking` layer 'masking': `mask_value` must be a number\. Received: mask_value='a'\."),
)

MASKING_CASES = (
    Case(Masking, "zeros-right", {"mask_value": 0.0}, (3, 5, 4), call={"masked_steps": "right"}),
    Case(Masking, "value-1.5-holey", {"mask_value": 1.5}, (2, 6, 3), call={"masked_steps": "holey"}),
)

DENSE_DEVIATIONS = {
    "dense/lora-r2-alpha3": "Keras 3.15's Dense.build calls enable_lora(rank) and drops the constructor's lora_alpha "
    "(scale 1; Conv2D keeps it); xlayers applies the documented lora_alpha / lora_rank (tests/test_core.py).",
    "dense/act=sparsemax": "Keras <= 3.15's sparsemax threshold sums every in-support cumulative sum, so its output "
    "does not sum to 1 (keras-team/keras#23425, fixed upstream by #23469); xlayers follows the paper "
    "(tests/test_core.py checks it against Martins & Astudillo's algorithm).",
}

def _dense_onnx_group(case: Case) -> tuple:
    """The input's rank (``Gemm`` or ``MatMul``), the bias and LoRA decide the graph; ``units`` and
    initializers only the weights, and the activation is one node after the product: the first
    activation case carries the check, and tests/test_onnx.py exports every activation against torch."""
    return (len(case.first_input.shape), case.kwargs.get("use_bias", True), "lora_rank" in case.kwargs)


LAYERS = (
    LayerInfo(Dense, DENSE_CASES, DENSE_ERRORS, deviations=DENSE_DEVIATIONS, onnx_group=_dense_onnx_group),
    LayerInfo(Masking, MASKING_CASES, MASKING_ERRORS, driver=MaskingDriver()),
)


# -- Identity ---------------------------------------------------------------------------------


IDENTITY_CASES = (
    Case(Identity, "tensor", {}, (2, 7, 5)),
    Case(Identity, "list", {}, [(2, 3), (2, 5, 4)]),
)

LAYERS = (*LAYERS, LayerInfo(Identity, IDENTITY_CASES))


# -- Embedding --------------------------------------------------------------------------------

from xlayers import EinsumDense, Embedding  # (appended family block)

from ..case import TensorSpec
from ..records import CaseResult, Check


class EmbeddingDriver(Driver):
    """Embedding: ids are integer inputs (no input gradient; the runner compares the gradient
    of ``embeddings``). The check compares xlayers' ``compute_mask`` with Keras's
    ``compute_mask`` on every id tensor the case fed (``mask_zero``: ``ids != 0``)."""

    def __init__(self) -> None:
        import weakref

        self._twins: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._fed: weakref.WeakKeyDictionary[Any, list[np.ndarray]] = weakref.WeakKeyDictionary()

    def twin(self, layer: Any, case: Case, dtype: str | None = None) -> Any:
        twin = super().twin(layer, case, dtype)
        self._twins.setdefault(layer, twin)
        return twin

    def arguments(self, layer: Any, case: Case, inputs: Any, rng: np.random.Generator) -> dict[str, Any]:
        self._fed.setdefault(layer, []).append(np.array(inputs))
        return super().arguments(layer, case, inputs, rng)

    def check(self, layer: Any, case: Case, result: CaseResult) -> None:
        import tensorflow as tf
        import torch

        twin = self._twins.get(layer)
        wrong = []
        for index, ids in enumerate(self._fed.get(layer, [])):
            ours = layer.compute_mask(torch.from_numpy(ids))
            theirs = twin.compute_mask(tf.constant(ids))
            ours = None if ours is None else ours.numpy()
            theirs = None if theirs is None else np.asarray(theirs)
            if (ours is None) != (theirs is None) or (ours is not None and not np.array_equal(ours, theirs)):
                wrong.append(f"ids {index}: xlayers {None if ours is None else ours.astype(int).tolist()}, "
                             f"keras {None if theirs is None else theirs.astype(int).tolist()}")
        result.checks.append(Check("mask", not wrong, detail="" if not wrong else "compute_mask differs: " + "; ".join(wrong)))


def _ids(shape: tuple[int, ...], high: int, dtype: str = "int64") -> TensorSpec:
    return TensorSpec(shape, dtype, 0, high)


EMBEDDING_CASES = (
    Case(Embedding, "int64-3x7", {"input_dim": 11, "output_dim": 6}, _ids((3, 7), 11), dtypes=("float32", "float64")),
    Case(Embedding, "int32-3x7", {"input_dim": 11, "output_dim": 6}, _ids((3, 7), 11, "int32")),
    Case(Embedding, "int16-4x5", {"input_dim": 9, "output_dim": 5}, _ids((4, 5), 9, "int16")),
    Case(Embedding, "mask-zero-4x9", {"input_dim": 7, "output_dim": 5, "mask_zero": True}, _ids((4, 9), 4)),
    Case(Embedding, "mask-zero-int32-rank3", {"input_dim": 6, "output_dim": 3, "mask_zero": True}, _ids((2, 3, 5), 3, "int32")),
    Case(Embedding, "rank1-5", {"input_dim": 13, "output_dim": 4}, _ids((5,), 13)),
    Case(Embedding, "rank3-2x3x5", {"input_dim": 8, "output_dim": 7}, _ids((2, 3, 5), 8)),
    Case(Embedding, "init=glorot_normal", {"input_dim": 40, "output_dim": 9, "embeddings_initializer": "glorot_normal"}, _ids((3, 4), 40)),
    Case(Embedding, "init=ones", {"input_dim": 5, "output_dim": 3, "embeddings_initializer": "ones"}, _ids((3, 4), 5)),
    Case(Embedding, "lora-r2", {"input_dim": 10, "output_dim": 6, "lora_rank": 2}, _ids((3, 5), 10)),
    Case(Embedding, "lora-r2-alpha3", {"input_dim": 10, "output_dim": 6, "lora_rank": 2, "lora_alpha": 3.0}, _ids((3, 5), 10)),
    Case(Embedding, "half", {"input_dim": 11, "output_dim": 6}, _ids((3, 7), 11), dtypes=("float16", "bfloat16")),
    Case(Embedding, "mixed", {"input_dim": 11, "output_dim": 6}, _ids((3, 7), 11), dtypes=("mixed_float16", "mixed_bfloat16")),
    Case(Embedding, "mask-zero-mixed", {"input_dim": 7, "output_dim": 5, "mask_zero": True}, _ids((4, 9), 4), dtypes=("mixed_float16",)),
)

_EMBEDDING = r"^`Embedding` layer 'embedding': "

EMBEDDING_ERRORS = (
    ErrorCase("input-dim-zero", {"input_dim": 0, "output_dim": 3}, ArgumentError,
              _EMBEDDING + r"`input_dim` must be a positive integer\. Received: input_dim=0\."),
    ErrorCase("output-dim-float", {"input_dim": 4, "output_dim": 2.5}, ArgumentError,
              _EMBEDDING + r"`output_dim` must be a positive integer\. Received: output_dim=2\.5\."),
    ErrorCase("mask-zero-str", {"input_dim": 4, "output_dim": 2, "mask_zero": "yes"}, ArgumentTypeError,
              _EMBEDDING + r"`mask_zero` must be a boolean\. Received: mask_zero='yes'\."),
    ErrorCase("input-length", {"input_dim": 4, "output_dim": 2, "input_length": 5}, ArgumentTypeError,
              _EMBEDDING + r"unrecognized keyword arguments \['input_length'\]\. Received: input_length=5\."),
    ErrorCase("lora-with-constraint", {"input_dim": 4, "output_dim": 2, "lora_rank": 1, "embeddings_constraint": "non_neg"},
              ArgumentError, _EMBEDDING + r"`lora_rank` cannot be combined with `embeddings_constraint`"),
    ErrorCase("float-ids", {"input_dim": 4, "output_dim": 2}, InputDtypeError,
              _EMBEDDING + r"expected an integer input\. Received: dtype=float32\.", (3, 4)),
    # the runner feeds torch.randn(shape) cast to int64: ids in about [-3, 3], against input_dim=1
    ErrorCase("ids-out-of-range", {"input_dim": 1, "output_dim": 2}, ArgumentError,
              _EMBEDDING + r"ids must be in \[0, input_dim\) = \[0, 1\)\. Received: ids in \[-?\d+, -?\d+\], input shape=\(6, 9\)\.",
              (6, 9), input_dtype="int64"),
)

EMBEDDING_DEVIATIONS = {
    "embedding/lora-r2-alpha3": "Keras 3.15's Embedding.build calls enable_lora(rank) and drops the constructor's lora_alpha "
    "(scale 1), as its Dense does; xlayers applies the documented lora_alpha / lora_rank (tests/test_embedding.py).",
}


def _embedding_onnx_group(case: Case) -> tuple:
    """One Gather whatever the ids' rank; the dtype of the ids and LoRA change the graph's inputs or nodes."""
    return (case.first_input.dtype, "lora_rank" in case.kwargs)


LAYERS = (*LAYERS, LayerInfo(Embedding, EMBEDDING_CASES, EMBEDDING_ERRORS, driver=EmbeddingDriver(),
                             deviations=EMBEDDING_DEVIATIONS, onnx_group=_embedding_onnx_group))


# -- ReversibleEmbedding ----------------------------------------------------------------------

from xlayers import ReversibleEmbedding  # (appended family block)


class ReversibleEmbeddingDriver(EmbeddingDriver):
    """ReversibleEmbedding: ``call={"reverse": True}`` feeds float hidden states
    ``(..., output_dim)`` and projects them to logits (their gradient is checked); lookups feed
    ids. Keras's layer attaches its lookup mask to the output in ``call`` (its
    ``compute_mask`` is always ``None``): the check compares xlayers' ``compute_mask`` with
    the mask Keras attached, on every id tensor fed."""

    def arguments(self, layer: Any, case: Case, inputs: Any, rng: np.random.Generator) -> dict[str, Any]:
        if case.call.get("reverse"):
            return {"reverse": True}
        self._fed.setdefault(layer, []).append(np.array(inputs))
        return {}

    def onnx_refusal(self, case: Case) -> str:
        return "the exported graph is the layer's default call (the lookup); a reverse projection is F.linear" if case.call.get("reverse") else ""

    def check(self, layer: Any, case: Case, result: CaseResult) -> None:
        import tensorflow as tf
        import torch
        from keras.src.backend import get_keras_mask

        twin = self._twins.get(layer)
        wrong = []
        for index, ids in enumerate(self._fed.get(layer, [])):
            ours = layer.compute_mask(torch.from_numpy(ids))
            theirs = get_keras_mask(twin(tf.constant(ids)))
            ours = None if ours is None else ours.numpy()
            theirs = None if theirs is None else np.asarray(theirs)
            if (ours is None) != (theirs is None) or (ours is not None and not np.array_equal(ours, theirs)):
                wrong.append(f"ids {index}: xlayers {None if ours is None else ours.astype(int).tolist()}, "
                             f"keras {None if theirs is None else theirs.astype(int).tolist()}")
        if self._fed.get(layer):
            result.checks.append(Check("mask", not wrong, detail="" if not wrong else "mask differs: " + "; ".join(wrong)))


_REVERSE = {"reverse": True}

REVERSIBLE_EMBEDDING_CASES = (
    Case(ReversibleEmbedding, "lookup-mask-zero", {"input_dim": 9, "output_dim": 5, "mask_zero": True}, _ids((3, 7), 4)),
    Case(ReversibleEmbedding, "reverse-tied", {"input_dim": 11, "output_dim": 6}, (3, 5, 6), call=_REVERSE, dtypes=("float32", "float64")),
    Case(ReversibleEmbedding, "reverse-untied", {"input_dim": 11, "output_dim": 6, "tie_weights": False}, (3, 5, 6), call=_REVERSE),
    Case(ReversibleEmbedding, "lookup-untied", {"input_dim": 11, "output_dim": 6, "tie_weights": False}, _ids((2, 9), 11)),
    Case(ReversibleEmbedding, "reverse-soft-cap", {"input_dim": 13, "output_dim": 4, "logit_soft_cap": 1.5}, (2, 3, 4), call=_REVERSE),
    Case(ReversibleEmbedding, "reverse-untied-soft-cap-rank2", {"input_dim": 7, "output_dim": 5, "tie_weights": False, "logit_soft_cap": 2.0},
         (3, 5), call=_REVERSE),
    Case(ReversibleEmbedding, "reverse-dtype-float64", {"input_dim": 8, "output_dim": 5, "reverse_dtype": "float64"}, (3, 4, 5), call=_REVERSE),
    Case(ReversibleEmbedding, "reverse-lora-r2", {"input_dim": 10, "output_dim": 6, "lora_rank": 2}, (3, 5, 6), call=_REVERSE),
    Case(ReversibleEmbedding, "reverse-mixed", {"input_dim": 11, "output_dim": 6}, (3, 5, 6), call=_REVERSE, dtypes=("mixed_bfloat16",)),
    Case(ReversibleEmbedding, "reverse-untied-mixed", {"input_dim": 11, "output_dim": 6, "tie_weights": False}, (3, 5, 6), call=_REVERSE,
         dtypes=("mixed_float16",)),
)

_REVERSIBLE = r"^`ReversibleEmbedding` layer 'reversible_embedding': "

REVERSIBLE_EMBEDDING_ERRORS = (
    ErrorCase("tie-weights-str", {"input_dim": 4, "output_dim": 2, "tie_weights": "no"}, ArgumentTypeError,
              _REVERSIBLE + r"`tie_weights` must be a boolean\. Received: tie_weights='no'\."),
    ErrorCase("soft-cap-negative", {"input_dim": 4, "output_dim": 2, "logit_soft_cap": -1.0}, ArgumentError,
              _REVERSIBLE + r"`logit_soft_cap` must be a positive number or None\. Received: logit_soft_cap=-1\.0\."),
    ErrorCase("reverse-dtype-int", {"input_dim": 4, "output_dim": 2, "reverse_dtype": "int32"}, ArgumentError,
              _REVERSIBLE + r"`reverse_dtype` must be None or a floating dtype"),
    ErrorCase("reverse-features", {"input_dim": 4, "output_dim": 3}, InputShapeError,
              _REVERSIBLE + r"expected axis -1 of the input to have size 3.*Received: input shape=\(2, 5, 4\)\.", (2, 5, 4),
              call={"reverse": True}),
    ErrorCase("float-ids", {"input_dim": 4, "output_dim": 2}, InputDtypeError,
              _REVERSIBLE + r"expected an integer input\. Received: dtype=float32\.", (3, 4)),
)

LAYERS = (*LAYERS, LayerInfo(ReversibleEmbedding, REVERSIBLE_EMBEDDING_CASES, REVERSIBLE_EMBEDDING_ERRORS,
                             driver=ReversibleEmbeddingDriver()))


# -- EinsumDense ------------------------------------------------------------------------------

EINSUM_DENSE_CASES = (
    # keras.layers.MultiHeadAttention's query/key/value projections and its output projection
    Case(EinsumDense, "abc-cde-abde-bias-de", {"equation": "abc,cde->abde", "output_shape": (None, 4, 6), "bias_axes": "de"}, (3, 5, 7),
         dtypes=("float32", "float64")),
    Case(EinsumDense, "abc-cde-abde-nobias", {"equation": "abc,cde->abde", "output_shape": (None, 4, 6)}, (3, 5, 7)),
    Case(EinsumDense, "abc-cde-abde-bias-d", {"equation": "abc,cde->abde", "output_shape": (None, 4, 6), "bias_axes": "d"}, (3, 5, 7)),
    Case(EinsumDense, "abcd-cde-abe-bias-e", {"equation": "abcd,cde->abe", "output_shape": (None, 7), "bias_axes": "e"}, (3, 5, 4, 6)),
    Case(EinsumDense, "abcd-cde-abe-nobias", {"equation": "abcd,cde->abe", "output_shape": (5, 7)}, (3, 5, 4, 6)),
    Case(EinsumDense, "ab-bc-ac-nobias", {"equation": "ab,bc->ac", "output_shape": 7}, (3, 5)),
    Case(EinsumDense, "ab-bc-ac-bias-relu", {"equation": "ab,bc->ac", "output_shape": 7, "bias_axes": "c", "activation": "relu"}, (3, 5)),
    Case(EinsumDense, "ab-bc-ac-bias-tanh", {"equation": "ab,bc->ac", "output_shape": (7,), "bias_axes": "c", "activation": "tanh"}, (3, 5)),
    Case(EinsumDense, "square-kernel", {"equation": "ab,bc->ac", "output_shape": 5, "bias_axes": "c"}, (4, 5)),
    Case(EinsumDense, "ellipsis-b-bc-c-rank3", {"equation": "...b,bc->...c", "output_shape": 7, "bias_axes": "c"}, (2, 3, 5)),
    Case(EinsumDense, "ellipsis-b-bc-c-rank4", {"equation": "...b,bc->...c", "output_shape": 7}, (2, 3, 4, 5)),
    Case(EinsumDense, "ab-ellipsis-bc-ac-bias-c", {"equation": "ab...,bc->ac...", "output_shape": 7, "bias_axes": "c"}, (3, 5, 4, 2)),
    Case(EinsumDense, "lora-r2", {"equation": "abc,cde->abde", "output_shape": (None, 4, 6), "bias_axes": "de", "lora_rank": 2}, (3, 5, 7)),
    Case(EinsumDense, "lora-r2-alpha3", {"equation": "ab,bc->ac", "output_shape": 6, "lora_rank": 2, "lora_alpha": 3.0}, (3, 5)),
    Case(EinsumDense, "init=he_normal", {"equation": "abc,cde->abde", "output_shape": (None, 4, 6), "kernel_initializer": "he_normal"},
         (3, 5, 7)),
    Case(EinsumDense, "half", {"equation": "abc,cde->abde", "output_shape": (None, 4, 6), "bias_axes": "de"}, (3, 5, 7),
         dtypes=("float16", "bfloat16")),
    Case(EinsumDense, "mixed", {"equation": "abc,cde->abde", "output_shape": (None, 4, 6), "bias_axes": "de"}, (3, 5, 7),
         dtypes=("mixed_float16", "mixed_bfloat16")),
)

_EINSUM = r"^`EinsumDense` layer 'einsum_dense': "

EINSUM_DENSE_ERRORS = (
    ErrorCase("equation-two-ellipses", {"equation": "...b,bc...->...c", "output_shape": 3}, ArgumentError,
              _EINSUM + r"`equation` must be of the form .*Received: equation='\.\.\.b,bc\.\.\.->\.\.\.c'\."),
    ErrorCase("equation-int", {"equation": 3, "output_shape": 3}, ArgumentTypeError, _EINSUM + r"`equation` must be a string\. Received: equation=3\."),
    ErrorCase("output-shape-zero", {"equation": "ab,bc->ac", "output_shape": 0}, ArgumentError,
              _EINSUM + r"`output_shape` must be a positive int or a tuple .*Received: output_shape=0\."),
    ErrorCase("bias-axes-not-output", {"equation": "ab,bc->ac", "output_shape": 3, "bias_axes": "b"}, ArgumentError,
              _EINSUM + r"`bias_axes` must be letters of the output 'ac'\. Received: bias_axes='b'\.", (3, 4)),
    ErrorCase("output-shape-length", {"equation": "abc,cde->abde", "output_shape": (4, 6)}, ArgumentError,
              _EINSUM + r"`output_shape` must give the size of each output axis.*Received: output_shape=\(4, 6\)", (3, 5, 7)),
    ErrorCase("kernel-size-unknown", {"equation": "abc,cde->abde", "output_shape": (None, None, 6)}, InputShapeError,
              _EINSUM + r"the sizes of the kernel's axes 'cde' must be known to build\. Received: kernel shape=\(7, None, 6\)", (3, 5, 7)),
    ErrorCase("input-rank", {"equation": "abc,cde->abde", "output_shape": (None, 4, 6)}, InputShapeError,
              _EINSUM + r"expected an input of rank 3\. Received: input shape=\(3, 7\)\.", (3, 7), (3, 5, 7)),
    ErrorCase("feature-size", {"equation": "abc,cde->abde", "output_shape": (None, 4, 6)}, InputShapeError,
              _EINSUM + r"expected axis 2 of the input to have size 7.*Received: input shape=\(3, 5, 8\)\.", (3, 5, 8), (3, 5, 7)),
    ErrorCase("shared-axis-mismatch", {"equation": "abc,cde->abde", "output_shape": (4, 4, 6)}, InputShapeError,
              _EINSUM + r"the input and `output_shape` disagree on the shared axis 'b': 5 in the input, 4 in `output_shape`", (3, 5, 7)),
    ErrorCase("lora-with-constraint", {"equation": "ab,bc->ac", "output_shape": 3, "lora_rank": 1, "kernel_constraint": "non_neg"},
              ArgumentError, _EINSUM + r"`lora_rank` cannot be combined with `kernel_constraint`"),
    ErrorCase("unknown-kwarg", {"equation": "ab,bc->ac", "output_shape": 3, "bogus": 1}, ArgumentTypeError,
              _EINSUM + r"unrecognized keyword arguments \['bogus'\]\. Received: bogus=1\."),
)


def _einsum_onnx_group(case: Case) -> tuple:
    """The equation, the bias and LoRA decide the graph's nodes; sizes and initializers only the weights,
    the activation is one node after the product (tests/test_onnx.py exports every activation)."""
    return (case.kwargs["equation"], case.kwargs.get("bias_axes"), "lora_rank" in case.kwargs)


LAYERS = (*LAYERS, LayerInfo(EinsumDense, EINSUM_DENSE_CASES, EINSUM_DENSE_ERRORS, onnx_group=_einsum_onnx_group))

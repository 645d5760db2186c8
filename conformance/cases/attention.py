"""Cases for `xlayers/layers/attention.py`: MultiHeadAttention, GroupQueryAttention, Attention and
AdditiveAttention.

Inputs are lists ``[query, value]`` or ``[query, value, key]`` (batch 3, query length 5, key
length 7, odd unequal feature sizes), so that every input takes a gradient and the layer builds
from all three shapes. ``call`` names what the driver adds: ``query_mask``/``value_mask``/
``key_mask`` (a `conformance.driver.sequence_mask` kind), ``attention_mask`` (``"random"``, a
``(B, T, S)`` draw; ``"empty-row"``, the same with one query row all False; ``"tk"``, a ``(T, S)``
draw broadcast over the batch), ``mask`` (Attention's ``[query_mask, value_mask]`` kinds),
``return_attention_scores``, ``use_causal_mask`` and ``training``. ``expect={"path": ...}`` is the
path the layer must take (``"sdpa"``: torch's fused kernel; ``"matmul"``).

The Keras twin is called as Keras users call it: ``twin(query, value, key=key, ...)``, the query
mask attached to the query as its Keras mask (Keras 3.15's ``MultiHeadAttention`` reads it only
there). Training cases share the dropout keep pattern: Keras's dropout draws, for that call, the
keep mask xlayers drew (each framework scales its own).
"""

from __future__ import annotations

import weakref
from typing import Any
from unittest import mock

import numpy as np
import torch

from xlayers import AdditiveAttention, Attention, GroupQueryAttention, MultiHeadAttention
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError
from xlayers.layer import _snake_case

from ..case import Case, ErrorCase, LayerInfo
from ..driver import Driver, expectation, sequence_mask
from ..keras_reference import ChannelsFirstTwin, keras
from ..records import CaseResult, Check

B, T, S = 3, 5, 7
Q = (B, T, 6)
V = (B, S, 4)
K = (B, S, 5)
SELF = [Q, Q]
CROSS = [Q, V]
QVK = [Q, V, K]

_MASK_ARGUMENTS = ("query_mask", "value_mask", "key_mask")


class AttentionTwin(ChannelsFirstTwin):
    """The Keras attention layer called as its users call it, recording the mask Keras sets on
    its output; a training call draws the keep pattern xlayers drew (``pending``).

    (A subclass of the generic twin wrapper, so that the runner finds the Keras layer inside.)"""

    def __init__(self, twin: Any, multi_head: bool) -> None:
        super().__init__(twin)
        self.multi_head = multi_head
        self.pending: torch.Tensor | None = None
        self.calls: list[tuple[list[np.ndarray | None], np.ndarray | None]] = []

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        from keras.src import backend

        keep, self.pending = self.pending, None
        if self.multi_head:
            query, value, *rest = inputs
            query_mask = kwargs.pop("query_mask", None)
            if query_mask is not None:  # where MultiHeadAttention reads it (GroupQueryAttention takes it from there too)
                backend.set_keras_mask(query, query_mask)
            masks = [query_mask, kwargs.get("value_mask")]

            def call() -> Any:
                return self.twin(query, value, key=rest[0] if rest else None, **kwargs)
        else:
            masks = list(kwargs.get("mask") or [None, None])

            def call() -> Any:
                return self.twin(list(inputs), **kwargs)

        if keep is None:
            outputs = call()
        else:
            with mock.patch.object(backend.random, "dropout", _shared_dropout(keep)):
                outputs = call()
        first = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
        propagated = backend.get_keras_mask(first)
        self.calls.append(([None if m is None else np.array(m) for m in masks], None if propagated is None else np.array(propagated)))
        return outputs

    def get_config(self) -> dict[str, Any]:
        return self.twin.get_config()


def _shared_dropout(keep: torch.Tensor) -> Any:
    """Keras's ``backend.random.dropout`` keeping what xlayers kept: TF's own arithmetic
    (``x * (1 / (1 - rate))`` where kept, else 0) on xlayers' keep pattern."""
    import tensorflow as tf

    pattern = tf.constant(keep.detach().cpu().numpy())

    def dropout(inputs: Any, rate: float, noise_shape: Any = None, seed: Any = None) -> Any:
        scaled = inputs * tf.constant(1.0 / (1.0 - rate), dtype=inputs.dtype)  # as tf.nn.dropout: the Python scale in x's dtype
        return tf.where(pattern, scaled, tf.zeros_like(scaled))

    return dropout


class AttentionDriver(Driver):
    """Attention layers: masks and flags of the call, the Keras twin built from the three
    shapes, the shared dropout pattern, and checks of the path and of the output's mask."""

    def __init__(self) -> None:
        self._twins: weakref.WeakKeyDictionary[Any, AttentionTwin] = weakref.WeakKeyDictionary()

    def twin(self, layer: Any, case: Case, dtype: str | None = None) -> Any:
        multi_head = isinstance(layer, (MultiHeadAttention, GroupQueryAttention))
        if multi_head:
            klass = getattr(keras().layers, type(layer).__name__)
            config = {**layer.get_config(), **dict(case.kwargs)}
            if dtype is not None:
                config["dtype"] = dtype
            twin = klass.from_config(config)
            twin.build_from_config(layer.get_build_config())  # Keras's own: build(query_shape, value_shape, key_shape)
        else:
            twin = super().twin(layer, case, dtype)
        wrapped = AttentionTwin(twin, multi_head)
        self._twins.setdefault(layer, wrapped)
        return wrapped

    def arguments(self, layer: Any, case: Case, inputs: Any, rng: np.random.Generator) -> dict[str, Any]:
        arguments = super().arguments(layer, case, inputs, rng)
        batch, queries = inputs[0].shape[:2]
        keys = inputs[1].shape[1]
        for name in _MASK_ARGUMENTS:
            kind = case.call.get(name)
            if kind:
                arguments[name] = sequence_mask(kind, batch, queries if name == "query_mask" else keys)
        kind = case.call.get("attention_mask")
        if kind:  # over the last attention axis (the only one where inputs have rank 4)
            queries, keys = inputs[0].shape[-2], inputs[1].shape[-2]
            shape = (queries, keys) if kind == "tk" else (batch, queries, keys)
            mask = rng.random(shape) < 0.7
            mask[..., 0] |= ~mask.any(-1)  # a row with no key left only where the case asks for one
            if kind == "empty-row":
                mask[1, 2, :] = False
            arguments["attention_mask"] = mask
        if case.call.get("mask"):
            arguments["mask"] = [None if kind is None else sequence_mask(kind, batch, size)
                                 for kind, size in zip(case.call["mask"], (queries, keys))]
        for flag in ("return_attention_scores", "use_causal_mask"):
            if case.call.get(flag):
                arguments[flag] = True
        return arguments

    def after_call(self, layer: Any, memo: list[Any]) -> None:
        memo.append(layer.last_dropout_mask)

    def before_keras_call(self, twin: Any, memo: list[Any], index: int) -> None:
        if index < len(memo) and memo[index] is not None:
            twin.pending = memo[index]

    def check(self, layer: Any, case: Case, result: CaseResult) -> None:
        if hasattr(layer, "last_path"):
            result.path = layer.last_path
        check = expectation(case, "path", getattr(layer, "last_path", None))
        if check is not None:
            result.checks.append(check)
        twin = self._twins.get(layer)
        if twin is None:
            return
        wrong = []
        for index, (masks, theirs) in enumerate(twin.calls):
            ours = layer.compute_mask(None, [None if m is None else torch.from_numpy(m) for m in masks])
            ours = None if ours is None else np.asarray(ours)
            if (ours is None) != (theirs is None) or (ours is not None and not np.array_equal(ours, theirs)):
                wrong.append(f"call {index}: xlayers {None if ours is None else ours.astype(int).tolist()}, "
                             f"keras {None if theirs is None else theirs.astype(int).tolist()}")
        twin.calls.clear()
        result.checks.append(Check("mask", not wrong, detail="" if not wrong else "output mask differs: " + "; ".join(wrong)))

    def onnx_refusal(self, case: Case) -> str:
        given = sorted(k for k in case.call if k != "training")
        if given:
            return f"the exported graph takes the inputs only; call arguments {given} are not graph inputs (unmasked cases carry the check)"
        return ""


def _onnx_group(case: Case) -> tuple:
    """What decides the exported graph's kind: the layer, the inputs' rank (fused attention or
    einsums over several axes), the gate, and Attention's score mode. Sizes, the number of
    inputs, biases, heads and output shapes only re-parametrise the same nodes (one check each
    keeps the main job short; tests/test_attention.py exports a biased layer against torch)."""
    kwargs = case.kwargs
    return (case.layer.__name__, len(case.first_input.shape), bool(case.call), kwargs.get("use_gate", False), kwargs.get("score_mode", "dot"))


H2 = {"num_heads": 2, "key_dim": 4}
H3 = {"num_heads": 3, "key_dim": 5, "value_dim": 3}
F64 = ("float64",)
NB = {"use_bias": False}

# The key projection's bias has a gradient that is zero in exact arithmetic (softmax ignores a
# constant added to one query's logits); in float32 both frameworks return its rounding noise
# (about 1e-6, from summing the key gradient over batch and keys), which no float32 bound can
# compare. Cases with biases therefore run in float64 (noise ~1e-16, bounds 1e-10); the float32
# records (initial weights, ONNX, the noise floor) are the cases without biases.
MHA_CASES = (
    Case(MultiHeadAttention, "self-h2-k4", H2, SELF, expect={"path": "sdpa"}, dtypes=F64),
    Case(MultiHeadAttention, "cross-h3-k5-v3", H3, CROSS, expect={"path": "sdpa"}, dtypes=F64),
    Case(MultiHeadAttention, "qvk-h2-k5", {"num_heads": 2, "key_dim": 5}, QVK, expect={"path": "sdpa"}, dtypes=F64),
    Case(MultiHeadAttention, "no-bias-self", {**H2, **NB}, SELF, expect={"path": "sdpa"}),
    Case(MultiHeadAttention, "no-bias-qvk", {**H3, **NB}, QVK, expect={"path": "sdpa"}),
    Case(MultiHeadAttention, "output-shape-2x3", {**H2, "output_shape": (2, 3)}, CROSS, expect={"path": "sdpa"}, dtypes=F64),
    Case(MultiHeadAttention, "output-shape-int-no-bias", {**H3, **NB, "output_shape": 7}, CROSS, expect={"path": "sdpa"}),
    Case(MultiHeadAttention, "rank4-axes-2", {**H2, "attention_axes": (2,)}, [(3, 2, 5, 6), (3, 2, 7, 4)], expect={"path": "matmul"}, dtypes=F64),
    Case(MultiHeadAttention, "rank4-axes-1-2-no-bias", {**H3, **NB, "attention_axes": (1, 2)}, [(3, 2, 5, 6), (3, 3, 4, 4)], expect={"path": "matmul"}),
    Case(MultiHeadAttention, "rank4-axes-2-mask", {**H2, "attention_axes": (2,)}, [(3, 2, 5, 6), (3, 2, 7, 4)],
         call={"attention_mask": "random"}, expect={"path": "matmul"}, dtypes=F64),
    Case(MultiHeadAttention, "value-mask-right", H3, QVK, call={"value_mask": "right"}, expect={"path": "sdpa"}, dtypes=F64),
    Case(MultiHeadAttention, "value-mask-holey-self", H2, SELF, call={"value_mask": "holey"}, expect={"path": "sdpa"}, dtypes=F64),
    Case(MultiHeadAttention, "value-mask-left-key-mask-holey", H3, QVK, call={"value_mask": "left", "key_mask": "holey"}, expect={"path": "sdpa"},
         dtypes=F64),
    Case(MultiHeadAttention, "value-mask-empty-row", H2, CROSS, call={"value_mask": "empty-row"}, expect={"path": "sdpa"}, dtypes=F64),
    Case(MultiHeadAttention, "query-mask-right", H3, CROSS, call={"query_mask": "right", "value_mask": "holey"}, expect={"path": "sdpa"}, dtypes=F64),
    Case(MultiHeadAttention, "attention-mask", H3, QVK, call={"attention_mask": "random"}, expect={"path": "sdpa"}, dtypes=F64),
    Case(MultiHeadAttention, "attention-mask-empty-row", H2, CROSS, call={"attention_mask": "empty-row"}, expect={"path": "sdpa"}, dtypes=F64),
    Case(MultiHeadAttention, "attention-mask-tk-query-mask", H2, CROSS, call={"attention_mask": "tk", "query_mask": "left"}, expect={"path": "sdpa"},
         dtypes=F64),
    Case(MultiHeadAttention, "masks-no-bias", {**H2, **NB}, CROSS, call={"value_mask": "holey", "attention_mask": "empty-row"}, expect={"path": "sdpa"}),
    Case(MultiHeadAttention, "causal", H3, CROSS, call={"use_causal_mask": True}, expect={"path": "sdpa"}, dtypes=F64),
    Case(MultiHeadAttention, "causal-value-mask", H2, SELF, call={"use_causal_mask": True, "value_mask": "right"}, expect={"path": "sdpa"}, dtypes=F64),
    Case(MultiHeadAttention, "scores", H3, QVK, call={"return_attention_scores": True}, expect={"path": "matmul"}, dtypes=F64),
    Case(MultiHeadAttention, "scores-masks-empty-row", H2, CROSS,
         call={"return_attention_scores": True, "attention_mask": "empty-row", "value_mask": "holey"}, expect={"path": "matmul"}, dtypes=F64),
    Case(MultiHeadAttention, "scores-causal-no-bias", {**H2, **NB}, CROSS, call={"return_attention_scores": True, "use_causal_mask": True},
         expect={"path": "matmul"}),
    Case(MultiHeadAttention, "dropout-inference-empty-row", {**H2, "dropout": 0.3}, CROSS, call={"attention_mask": "empty-row"}, expect={"path": "sdpa"},
         dtypes=F64),
    Case(MultiHeadAttention, "training-dropout", {**H3, "dropout": 0.4, "seed": 3}, QVK, call={"training": True, "value_mask": "holey"},
         expect={"path": "matmul"}, dtypes=F64),
    Case(MultiHeadAttention, "training-dropout-no-bias", {**H2, **NB, "dropout": 0.3}, CROSS, call={"training": True}, expect={"path": "matmul"}),
    Case(MultiHeadAttention, "training-no-dropout", H2, CROSS, call={"training": True}, expect={"path": "sdpa"}, dtypes=F64),
    Case(MultiHeadAttention, "sliding-window-causal", {**H2, "sliding_window": 2}, SELF, call={"use_causal_mask": True}, expect={"path": "sdpa"}, dtypes=F64),
    Case(MultiHeadAttention, "sliding-window-scores", {**H3, "sliding_window": 3}, CROSS, call={"return_attention_scores": True}, expect={"path": "matmul"},
         dtypes=F64),
    Case(MultiHeadAttention, "use-gate", {**H3, "use_gate": True}, QVK, expect={"path": "sdpa"}, dtypes=F64),
    Case(MultiHeadAttention, "use-gate-no-bias", {**H2, **NB, "use_gate": True}, CROSS, expect={"path": "sdpa"}),
    Case(MultiHeadAttention, "initializers-regularizers-constraints",
         {**H2, **NB, "kernel_initializer": "he_normal", "kernel_regularizer": "l2", "activity_regularizer": "l2", "kernel_constraint": "max_norm"},
         CROSS, expect={"path": "sdpa"}),
    Case(MultiHeadAttention, "bias-initializer-regularizer-constraint",
         {**H2, "bias_initializer": "ones", "bias_regularizer": "l2", "bias_constraint": "non_neg"}, CROSS, expect={"path": "sdpa"}, dtypes=F64),
    Case(MultiHeadAttention, "half", H2, CROSS, call={"value_mask": "right"}, expect={"path": "sdpa"}, dtypes=("float16", "bfloat16")),
    Case(MultiHeadAttention, "mixed", H2, CROSS, call={"return_attention_scores": True}, expect={"path": "matmul"}, dtypes=("mixed_float16",)),
)

G42 = {"head_dim": 3, "num_query_heads": 4, "num_key_value_heads": 2}
QV6 = [Q, (B, S, 6)]

GQA_CASES = (
    Case(GroupQueryAttention, "q4-kv2", G42, QV6, expect={"path": "sdpa"}, dtypes=F64),
    Case(GroupQueryAttention, "q4-kv2-no-bias", {**G42, **NB}, QV6, expect={"path": "sdpa"}),
    Case(GroupQueryAttention, "q6-kv3-qvk", {"head_dim": 4, "num_query_heads": 6, "num_key_value_heads": 3}, [Q, (B, S, 6), K], expect={"path": "sdpa"},
         dtypes=F64),
    Case(GroupQueryAttention, "q3-kv1", {"head_dim": 5, "num_query_heads": 3, "num_key_value_heads": 1}, SELF, expect={"path": "sdpa"}, dtypes=F64),
    Case(GroupQueryAttention, "q2-kv2", {"head_dim": 3, "num_query_heads": 2, "num_key_value_heads": 2}, QV6, expect={"path": "sdpa"}, dtypes=F64),
    Case(GroupQueryAttention, "masks", G42, [Q, (B, S, 6), K], call={"query_mask": "right", "value_mask": "holey", "attention_mask": "random"},
         expect={"path": "sdpa"}, dtypes=F64),
    Case(GroupQueryAttention, "empty-row", G42, QV6, call={"value_mask": "empty-row"}, expect={"path": "sdpa"}, dtypes=F64),
    Case(GroupQueryAttention, "causal", G42, SELF, call={"use_causal_mask": True}, expect={"path": "sdpa"}, dtypes=F64),
    Case(GroupQueryAttention, "scores-mask-empty-row", G42, QV6, call={"return_attention_scores": True, "attention_mask": "empty-row"},
         expect={"path": "matmul"}, dtypes=F64),
    Case(GroupQueryAttention, "training-dropout", {**G42, "dropout": 0.3, "seed": 5}, QV6, call={"training": True, "use_causal_mask": True},
         expect={"path": "matmul"}, dtypes=F64),
    Case(GroupQueryAttention, "dropout-inference-empty-row", {**G42, "dropout": 0.3}, QV6, call={"attention_mask": "empty-row"},
         expect={"path": "sdpa"}, dtypes=F64),
    Case(GroupQueryAttention, "use-gate-sliding-window", {**G42, "use_gate": True, "sliding_window": 2}, SELF, expect={"path": "sdpa"}, dtypes=F64),
    Case(GroupQueryAttention, "half", G42, QV6, dtypes=("bfloat16",)),
)

AT = [(B, T, 4), (B, S, 4)]
ATK = [(B, T, 4), (B, S, 4), (B, S, 4)]

ATTENTION_CASES = (
    Case(Attention, "dot", {}, AT, dtypes=("float32", "float64")),
    Case(Attention, "dot-scale-key", {"use_scale": True}, ATK),
    Case(Attention, "concat", {"score_mode": "concat"}, AT),
    Case(Attention, "concat-scale-key", {"score_mode": "concat", "use_scale": True}, ATK),
    Case(Attention, "masks", {"use_scale": True}, AT, call={"mask": ["right", "holey"]}),
    Case(Attention, "value-mask-empty-row", {}, AT, call={"mask": [None, "empty-row"]}, dtypes=("float32", "float64")),
    Case(Attention, "causal-scores", {"score_mode": "concat"}, AT, call={"use_causal_mask": True, "return_attention_scores": True, "mask": ["left", "right"]}),
    Case(Attention, "training-dropout", {"dropout": 0.4, "seed": 2}, AT, call={"training": True, "mask": [None, "holey"]}),
    Case(Attention, "half", {}, AT, call={"mask": ["right", "holey"]}, dtypes=("float16",)),  # no scalar weight: the runner rounds 0-d weights to 1-d
)

ADDITIVE_CASES = (
    Case(AdditiveAttention, "scale", {}, AT),
    Case(AdditiveAttention, "no-scale-key", {"use_scale": False}, ATK),
    Case(AdditiveAttention, "masks-scores", {}, AT, call={"mask": ["holey", "left"], "return_attention_scores": True}),
    Case(AdditiveAttention, "causal", {}, ATK, call={"use_causal_mask": True, "mask": [None, "right"]}),
    Case(AdditiveAttention, "training-dropout", {"dropout": 0.3}, AT, call={"training": True}),
)


def _label(cls: type) -> str:
    return rf"^`{cls.__name__}` layer '{_snake_case(cls.__name__)}': "


_MHA = _label(MultiHeadAttention)
_GQA = _label(GroupQueryAttention)
_ATT = _label(Attention)

MHA_ERRORS = (
    ErrorCase("num-heads-zero", {"num_heads": 0, "key_dim": 4}, ArgumentError, _MHA + r"`num_heads` must be a positive integer\. Received: num_heads=0\."),
    ErrorCase("key-dim-float", {"num_heads": 2, "key_dim": 2.5}, ArgumentError, _MHA + r"`key_dim` must be a positive integer\. Received: key_dim=2\.5\."),
    ErrorCase("dropout-one", {"num_heads": 2, "key_dim": 4, "dropout": 1.0}, ArgumentError, _MHA + r"`dropout` must be a float in \[0, 1\)\. Received: dropout=1\.0\."),
    ErrorCase("attention-axes-str", {"num_heads": 2, "key_dim": 4, "attention_axes": "1"}, ArgumentTypeError, _MHA + r"`attention_axes` must be an int"),
    ErrorCase("flash-dropout", {"num_heads": 2, "key_dim": 4, "dropout": 0.1, "flash_attention": True}, ArgumentError,
              _MHA + r"dropout is not supported with flash attention"),
    ErrorCase("sliding-window-zero", {"num_heads": 2, "key_dim": 4, "sliding_window": 0}, ArgumentError,
              _MHA + r"`sliding_window` must be None or a positive integer\. Received: sliding_window=0\."),
    ErrorCase("no-value", {"num_heads": 2, "key_dim": 4}, InputShapeError, _MHA + r"`value` is required", (3, 5, 6), first_input_shape=None),
    ErrorCase("query-features", {"num_heads": 2, "key_dim": 4, "input_shape": (5, 6)}, InputShapeError,
              _MHA + r"expected `query` of rank 3 with 6 features.*Received: query shape=\(3, 5, 7\)\.",
              (3, 5, 7), call={"value": np.zeros((3, 5, 6), np.float32)}),
    ErrorCase("mask-str", {"num_heads": 2, "key_dim": 4}, ArgumentTypeError, _MHA + r"`attention_mask` must be a tensor or array of booleans",
              (3, 5, 6), call={"value": np.zeros((3, 5, 6), np.float32), "attention_mask": "abc"}),
)

GQA_ERRORS = (
    ErrorCase("heads-not-divisible", {"head_dim": 4, "num_query_heads": 3, "num_key_value_heads": 2}, ArgumentError,
              _GQA + r"`num_query_heads` must be divisible by `num_key_value_heads`\. Received: num_query_heads=3, num_key_value_heads=2\."),
    ErrorCase("head-dim-zero", {"head_dim": 0, "num_query_heads": 2, "num_key_value_heads": 2}, ArgumentError, _GQA + r"`head_dim` must be a positive integer"),
)

ATTENTION_ERRORS = (
    ErrorCase("score-mode", {"score_mode": "add"}, ArgumentError, _ATT + r"`score_mode` must be one of 'dot', 'concat'\. Received: score_mode='add'\."),
    ErrorCase("single-input", {}, InputShapeError, _ATT + r"expected a list of 2 or 3 inputs, \[query, value\] or \[query, value, key\]\. Received: a single input\.",
              (3, 5, 4)),
    ErrorCase("seed-str", {"seed": "a"}, ArgumentTypeError, _ATT + r"`seed` must be an int or None\. Received: seed='a'\."),
)

ADDITIVE_ERRORS = (
    ErrorCase("dropout-negative", {"dropout": -0.1}, ArgumentError, _label(AdditiveAttention) + r"`dropout` must be a float in \[0, 1\)"),
)

LAYERS = (
    LayerInfo(MultiHeadAttention, MHA_CASES, MHA_ERRORS, driver=AttentionDriver(), onnx_group=_onnx_group),
    LayerInfo(GroupQueryAttention, GQA_CASES, GQA_ERRORS, driver=AttentionDriver(), onnx_group=_onnx_group),
    LayerInfo(Attention, ATTENTION_CASES, ATTENTION_ERRORS, driver=AttentionDriver(), onnx_group=_onnx_group),
    LayerInfo(AdditiveAttention, ADDITIVE_CASES, ADDITIVE_ERRORS, driver=AttentionDriver(), onnx_group=_onnx_group),
)

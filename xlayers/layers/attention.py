"""Attention layers: `MultiHeadAttention`, `GroupQueryAttention`, `Attention` (Luong) and
`AdditiveAttention` (Bahdanau), with Keras 3.15's weights, masks and results.

The multi-head layers hold Keras's `EinsumDense` sub-layers (``query_dense``, ``key_dense``,
``value_dense``, ``output_dense``), so their weights have Keras's shapes and paths
(``query_dense/kernel (dim, heads, key_dim)``). They run torch's fused
``scaled_dot_product_attention`` whenever that is exact (rank-3 inputs, no scores asked for, no
dropout drawn), else Keras's matmuls and masked softmax; ``layer.last_path`` says which ran
(``"sdpa"`` or ``"matmul"``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .. import constraints, initializers, regularizers
from ..errors import ArgumentError, ArgumentTypeError, InputShapeError, WeightDtypeError, WeightShapeError
from ..layer import Layer, Shape, dtype_name
from ..layout import Weight
from . import attention_ops as ops
from .core import EinsumDense

__all__ = ["AdditiveAttention", "Attention", "GroupQueryAttention", "MultiHeadAttention"]

_CALL_INPUTS = ("query", "value", "key")
_LABEL = re.compile(r"^`\w+` layer '[^']*': ")


def _check_rate(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not 0 <= value < 1:
        raise ArgumentError(f"`dropout` must be a float in [0, 1). Received: dropout={value!r}.")
    return float(value)


def _check_seed(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
        raise ArgumentTypeError(f"`seed` must be an int or None. Received: seed={value!r}.")
    return None if value is None else int(value)


def _mask_tensor(layer: Layer, name: str, value: Any, device: torch.device) -> torch.Tensor | None:
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise ArgumentTypeError(f"`{name}` must be a tensor or array of booleans (True attends). Received: {name} of type {type(value).__name__}.")
    return value.to(device)


def _shape_of(value: Any) -> Shape:
    return tuple(value.shape) if hasattr(value, "shape") else tuple(np.shape(value))


class _Dropout:
    """The dropout of attention probabilities: a seeded (or global) uniform draw kept where
    ``>= rate`` (Keras's rule), scaled by ``1 / (1 - rate)``."""

    def __init__(self, rate: float, seed: int | None) -> None:
        self.rate, self.seed = rate, seed
        self._generator: torch.Generator | None = None

    def __call__(self, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        generator = None
        if self.seed is not None:
            if self._generator is None or self._generator.device != probs.device:
                self._generator = torch.Generator(device=probs.device).manual_seed(self.seed)
            generator = self._generator
        keep = torch.rand(probs.shape, generator=generator, dtype=probs.dtype, device=probs.device) >= self.rate
        return torch.where(keep, probs * (1.0 / (1.0 - self.rate)), 0.0), keep


class _MultiHead(Layer):
    """What `MultiHeadAttention` and `GroupQueryAttention` share: the call contract (``query,
    value, key`` given apart or as one list), building from their three shapes, Keras's mask
    rules, the fused-or-matmul decision and dropout."""

    def _init_common(self, dropout: Any, use_bias: Any, sliding_window: Any, flash_attention: Any, use_gate: Any, seed: Any,
                     kernel_initializer: Any, bias_initializer: Any, kernel_regularizer: Any, bias_regularizer: Any,
                     activity_regularizer: Any, kernel_constraint: Any, bias_constraint: Any) -> None:
        self.dropout = _check_rate(dropout)
        self.use_bias = bool(use_bias)
        self.use_gate = bool(use_gate)
        if sliding_window is not None and (isinstance(sliding_window, bool) or not isinstance(sliding_window, (int, np.integer)) or sliding_window <= 0):
            raise ArgumentError(f"`sliding_window` must be None or a positive integer. Received: sliding_window={sliding_window!r}.")
        self.sliding_window = None if sliding_window is None else int(sliding_window)
        self.flash_attention = flash_attention
        if flash_attention and self.dropout > 0:
            raise ArgumentError(
                f"dropout is not supported with flash attention; set `dropout` to 0.0 or `flash_attention` to None. "
                f"Received: dropout={dropout!r}, flash_attention={flash_attention!r}."
            )
        self.seed = _check_seed(seed)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.supports_masking = True
        self._dropout = _Dropout(self.dropout, self.seed)
        self.last_path: str | None = None
        self.last_dropout_mask: torch.Tensor | None = None
        self._last_scores = False
        self.register_load_state_dict_pre_hook(_MultiHead._check_nested_load)
        # build from the shapes of query, value and key (given apart or as one list)
        self._build_hook.remove()
        self._build_hook = self.register_forward_pre_hook(_MultiHead._build_on_call, with_kwargs=True)

    def _common_config(self) -> dict[str, Any]:
        return {
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "use_gate": self.use_gate,
            "sliding_window": self.sliding_window,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "seed": self.seed,
        }

    def _dense(self, equation: str, output_shape: Sequence[int | None], bias_axes: str, name: str, shape: Shape,
               activation: str | None = None) -> EinsumDense:
        dense = EinsumDense(
            equation, output_shape=output_shape, bias_axes=bias_axes if self.use_bias else None, activation=activation,
            kernel_initializer=self.kernel_initializer, bias_initializer=self.bias_initializer,
            kernel_regularizer=self.kernel_regularizer, bias_regularizer=self.bias_regularizer,
            activity_regularizer=self.activity_regularizer, kernel_constraint=self.kernel_constraint,
            bias_constraint=self.bias_constraint, name=name, dtype=self._policy or self._requested_dtype,
        )
        dense._build(shape, device=self._build_device)
        return dense

    # -- building -------------------------------------------------------------------------

    @staticmethod
    def _split_shapes(input_shape: Any) -> tuple[Shape, Shape, Shape]:
        """``(query, value, key)`` shapes from one shape (self-attention), a list of 2 or 3
        shapes, or Keras's ``shapes_dict`` (``query_shape``, ``value_shape``, ``key_shape``)."""
        if isinstance(input_shape, Mapping):
            shapes = [input_shape.get(f"{name}_shape", input_shape.get(name)) for name in _CALL_INPUTS]
        elif isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
            shapes = list(input_shape) + [None] * (3 - len(input_shape))
        else:
            shapes = [input_shape, None, None]
        query, value, key = (None if s is None else tuple(s) for s in shapes[:3])
        value = query if value is None else value
        return query, value, value if key is None else key

    @staticmethod
    def _build_on_call(layer: _MultiHead, args: tuple, kwargs: dict) -> None:
        if layer.built:
            return
        first = args[0] if args else kwargs.get("query", kwargs.get("inputs"))
        if isinstance(first, (list, tuple)):
            tensors = list(first)
        else:
            tensors = [first] + [args[i] if len(args) > i else kwargs.get(name) for i, name in enumerate(_CALL_INPUTS) if i > 0]
        tensors = [t for t in tensors if t is not None]
        device = tensors[0].device if isinstance(tensors[0], torch.Tensor) else None
        layer._build([_shape_of(t) for t in tensors], device=device)

    def get_build_config(self) -> dict[str, Any] | None:
        """Keras's build config: ``{"shapes_dict": {"query_shape", "value_shape", "key_shape"}}``."""
        if not self.built:
            return None
        query, value, key = self._shapes
        return {"shapes_dict": {"query_shape": list(query), "value_shape": list(value), "key_shape": list(key)}}

    def build_from_config(self, config: Mapping[str, Any] | None) -> None:
        """Build from Keras's build config (``shapes_dict``) or xlayers' (``input_shape``: the query
        shape, or a list of the query, value and key shapes)."""
        if config and not self.built:
            shapes = config.get("shapes_dict", config.get("input_shape"))
            self._build(self._split_shapes(_json_shapes(shapes)), device=None)

    # -- calling --------------------------------------------------------------------------

    def _inputs(self, query: Any, value: Any, key: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if isinstance(query, (list, tuple)):
            if value is not None or key is not None or len(query) not in (2, 3):
                raise InputShapeError(
                    f"expected `query, value[, key]` apart or as one list of 2 or 3 tensors. Received: {len(query)} inputs in a list"
                    f"{' and value/key' if value is not None or key is not None else ''}."
                )
            query, value, key = (list(query) + [None])[:3]
        if value is None:
            raise InputShapeError("`value` is required (the keys and values attended to). Received: value=None.")
        value = self.convert_input(value, False)
        key = value if key is None else self.convert_input(key, False)
        query = self.convert_input(query, False)
        expected = self._shapes
        for name, tensor, shape in zip(_CALL_INPUTS, (query, value, key), expected):
            if tensor.dim() != len(shape) or tensor.shape[-1] != shape[-1]:
                raise InputShapeError(
                    f"expected `{name}` of rank {len(shape)} with {shape[-1]} features (the shape it was built with, "
                    f"{shape}). Received: {name} shape={tuple(tensor.shape)}."
                )
        if value.shape[:-1] != key.shape[:-1]:
            raise InputShapeError(
                f"`value` and `key` must have equal shapes but for the last axis. Received: value shape={tuple(value.shape)}, "
                f"key shape={tuple(key.shape)}."
            )
        return query, value, key

    def _attention_mask(self, query: torch.Tensor, value: torch.Tensor, masks: Mapping[str, Any], use_causal_mask: bool) -> torch.Tensor | None:
        given = {name: _mask_tensor(self, name, mask, query.device) for name, mask in masks.items()}
        return ops.combine_masks(query.shape[1], value.shape[1], query.device, given["query_mask"], given["value_mask"],
                                 given["key_mask"], given["attention_mask"], use_causal_mask, self.sliding_window)

    def _causal_only(self, masks: Mapping[str, Any], use_causal_mask: bool) -> bool:
        return bool(use_causal_mask) and self.sliding_window is None and all(m is None for m in masks.values())

    def _dropped(self, probs: torch.Tensor, training: bool) -> torch.Tensor:
        self.last_dropout_mask = None
        if not (training and self.dropout > 0):
            return probs
        dropped, self.last_dropout_mask = self._dropout(probs)
        return dropped

    def _training(self, training: bool | None) -> bool:
        return self.training if training is None else bool(training)

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set the projections' weights from arrays in Keras's order, all checked first; errors name
        this layer and the weight's path inside it (``query_dense/kernel``)."""
        try:
            super().set_weights(weights)
        except (WeightShapeError, ArgumentTypeError) as error:
            raise type(error)(f"{self._label}: {_LABEL.sub('', str(error))}") from None

    @staticmethod
    def _check_nested_load(layer: Layer, state_dict: Mapping, prefix: str, local_metadata: Mapping, *args: Any) -> None:
        """Before an ``assign=True`` load reaches the projections: refuse one that would leave the
        layer's weights in different dtypes, naming the keys as its state dict has them."""
        if not local_metadata.get("assign_to_params_buffers"):
            return
        dtypes = {key[len(prefix):]: getattr(value, "dtype", None) for key, value in state_dict.items() if key.startswith(prefix)}
        if len(set(dtypes.values())) > 1:
            found = ", ".join(f"{key} {dtype_name(d) if d is not None else 'not a tensor'}" for key, d in dtypes.items())
            raise WeightDtypeError(
                f"{layer._label}: `load_state_dict(assign=True)` would give the layer's weights these dtypes: {found}; they must "
                f"share one floating dtype. Cast the state dict first, or load without `assign=True` (values are then copied "
                f"into the existing weights' dtype)."
            )

    def compute_mask(self, inputs: Any, mask: Any = None) -> torch.Tensor | None:
        """The output's mask: the query's (``mask[0]`` of a list), as Keras."""
        if isinstance(mask, (list, tuple)):
            return mask[0] if mask else None
        return mask


def _json_shapes(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: (None if v is None else tuple(v)) for k, v in value.items()}
    if value and isinstance(value[0], (list, tuple)):
        return [tuple(v) for v in value]
    return tuple(value)


class MultiHeadAttention(_MultiHead):
    """Multi-head attention, as ``keras.layers.MultiHeadAttention`` (Vaswani et al., 2017):
    ``softmax(Q K^T / sqrt(key_dim)) V`` per head, between Keras's einsum projections.

    The projections are Keras's `EinsumDense` sub-layers. With rank-3 inputs, no scores
    asked for and no dropout drawn, the attention is ``torch.nn.functional.scaled_dot_product_attention``
    (``last_path == "sdpa"``); otherwise Keras's einsums and masked softmax over
    ``attention_axes`` (``"matmul"``). A query row with every key masked gives what Keras 3.15
    gives: the average of the values when Keras takes its ``dot_product_attention`` (no
    dropout configured, no scores, rank 3), zeros otherwise. The logits are scaled by Keras's
    ``float32(1 / sqrt(key_dim))`` in every dtype.

    Args:
        num_heads: number of attention heads.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value; default ``key_dim``.
        dropout: dropout rate of the attention probabilities, in [0, 1).
        use_bias: whether the projections have biases.
        output_shape: the output's shape but the batch and query axes; default: the query's
            last axis.
        attention_axes: axes attended over (default: all but batch, heads and features).
        sliding_window: if set, query ``i`` attends keys ``j`` with ``|i - j| < sliding_window``.
        flash_attention: accepted for Keras compatibility (torch picks its fused kernel).
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
            activity_regularizer, kernel_constraint, bias_constraint: of the projections.
        use_gate: multiply the attention output by ``sigmoid(gate projection of the query)``.
        seed: seed of the dropout.
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ...).

    Call arguments:
        query: ``(B, T, dim)`` (or ``(B, *axes, dim)``); or a list ``[query, value, key]``.
        value: ``(B, S, dim_v)``.
        key: ``(B, S, dim_k)``; default ``value``.
        query_mask: ``(B, T)`` booleans; masked queries attend nothing (an all-masked row, see
            above). Keras 3.15 reads it only from the query's Keras mask (``_keras_mask``, as a
            ``Masking`` or ``Embedding(mask_zero=True)`` sets it) and overwrites the argument;
            xlayers has no Keras masks and takes the argument.
        value_mask, key_mask: ``(B, S)`` booleans; masked keys are not attended.
        attention_mask: ``(B, T, S)`` booleans (or broadcastable), ``True`` attends.
        return_attention_scores: also return the ``(B, heads, T, S)`` probabilities.
        training: apply dropout; default ``self.training``.
        use_causal_mask: query ``i`` attends keys ``j <= i``.

    Output shape:
        ``(B, T, dim)`` (``output_shape`` replaces ``dim``), and the scores if asked.

    Weights:
        query_dense/kernel: ``(dim, heads, key_dim)``; query_dense/bias: ``(heads, key_dim)``.
        key_dense/kernel: ``(dim_k, heads, key_dim)``; key_dense/bias: ``(heads, key_dim)``.
        value_dense/kernel: ``(dim_v, heads, value_dim)``; value_dense/bias: ``(heads, value_dim)``.
        output_dense/kernel: ``(heads, value_dim, dim)``; output_dense/bias: ``(dim,)``.
        torch views: the same tensors, used by ``torch.einsum`` as they are.

    Example:
        >>> layer = MultiHeadAttention(num_heads=2, key_dim=4)
        >>> layer(torch.randn(3, 5, 6), torch.randn(3, 7, 8)).shape
        torch.Size([3, 5, 6])
        >>> tuple(layer.query_dense.kernel.shape), tuple(layer.output_dense.kernel.shape), layer.last_path
        ((6, 2, 4), (2, 4, 6), 'sdpa')
    """

    KERAS2_DROPPED = ("query_shape", "key_shape", "value_shape", "softmax_robust_masking")

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        output_shape: int | Sequence[int] | None = None,
        attention_axes: int | Sequence[int] | None = None,
        sliding_window: int | None = None,
        flash_attention: bool | None = None,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        use_gate: bool = False,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        for name, value in (("num_heads", num_heads), ("key_dim", key_dim), ("value_dim", value_dim)):
            if (value is not None or name != "value_dim") and (
                isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0
            ):
                raise ArgumentError(f"`{name}` must be a positive integer. Received: {name}={value!r}.")
        self.num_heads, self.key_dim = int(num_heads), int(key_dim)
        self.value_dim = int(value_dim) if value_dim else self.key_dim
        if output_shape:
            sizes = (output_shape,) if isinstance(output_shape, (int, np.integer)) and not isinstance(output_shape, bool) else output_shape
            if not isinstance(sizes, (list, tuple)) or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in sizes):
                raise ArgumentError(f"`output_shape` must be a positive int or a tuple of positive ints. Received: output_shape={output_shape!r}.")
            output_shape = tuple(int(s) for s in sizes)
        self.output_shape = output_shape or None
        if isinstance(attention_axes, (int, np.integer)) and not isinstance(attention_axes, bool):
            attention_axes = (int(attention_axes),)
        elif attention_axes is not None and (
            not isinstance(attention_axes, (list, tuple)) or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in attention_axes)
        ):
            raise ArgumentTypeError(f"`attention_axes` must be an int, a list or a tuple of ints, or None. Received: attention_axes={attention_axes!r}.")
        self.attention_axes = None if attention_axes is None else tuple(int(a) for a in attention_axes)
        self._init_common(dropout, use_bias, sliding_window, flash_attention, use_gate, seed, kernel_initializer, bias_initializer,
                          kernel_regularizer, bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint)

    def build(self, input_shape: Any) -> None:
        query, value, key = self._split_shapes(input_shape)
        if value[1:-1] != key[1:-1]:
            raise InputShapeError(f"`value` and `key` must have equal shapes but for the last axis. Received: value_shape={value}, key_shape={key}.")
        if len(query) != len(value):
            raise InputShapeError(f"`query` and `value` must have the same rank. Received: query_shape={query}, value_shape={value}.")
        if len(query) < 3:
            raise InputShapeError(f"expected inputs of rank >= 3 (batch, attention axes, features). Received: query_shape={query}.")
        self._shapes = (query, value, key)
        rank = len(query)
        free = rank - 1
        equation, bias = ops.projection_equation(free, 1, 2)
        heads_key = [None] * (free - 1) + [self.num_heads, self.key_dim]
        heads_value = [None] * (free - 1) + [self.num_heads, self.value_dim]
        self.query_dense = self._dense(equation, heads_key, bias, "query", query)
        self.key_dense = self._dense(equation, heads_key, bias, "key", key)
        if self.use_gate:
            self._gate_dense = self._dense(equation, heads_value, bias, "gate", query, activation="sigmoid")
        self.value_dense = self._dense(equation, heads_value, bias, "value", value)
        outputs = list(self.output_shape) if self.output_shape else [query[-1]]
        equation, bias = ops.projection_equation(free, 2, len(outputs))
        projected = (*query[:-1], self.num_heads, self.value_dim)
        self.output_dense = self._dense(equation, [None] * (free - 1) + outputs, bias, "attention_output", projected)
        projected_rank = rank + 1
        axes = tuple(range(1, projected_rank - 2)) if self.attention_axes is None else tuple(
            a if a >= 0 else (projected_rank - 1) + a for a in self.attention_axes)
        self._axes = axes
        self._dot_equation, self._combine_equation, scores_rank = ops.attention_equations(projected_rank, axes)
        self._norm_axes = tuple(range(scores_rank - len(axes), scores_rank))

    def call(self, query: Any, value: Any = None, key: Any = None, query_mask: Any = None, value_mask: Any = None,
             key_mask: Any = None, attention_mask: Any = None, return_attention_scores: bool = False,
             training: bool | None = None, use_causal_mask: bool = False) -> Any:
        query, value, key = self._inputs(query, value, key)
        training = self._training(training)
        self._last_scores = bool(return_attention_scores)
        if self.flash_attention and return_attention_scores:
            raise ArgumentError("attention scores cannot be returned with flash attention. Received: return_attention_scores=True.")
        masks = {"query_mask": query_mask, "value_mask": value_mask, "key_mask": key_mask, "attention_mask": attention_mask}
        causal_only = self._causal_only(masks, use_causal_mask)
        mask = None if causal_only else self._attention_mask(query, value, masks, use_causal_mask)
        gate = _project(self._gate_dense, query) if self.use_gate else None
        q, k, v = _project(self.query_dense, query), _project(self.key_dense, key), _project(self.value_dense, value)
        scores = None
        if query.dim() == 3 and not return_attention_scores and not (training and self.dropout > 0):
            self.last_path, self.last_dropout_mask = "sdpa", None
            empty_rows = "zero" if self.dropout > 0 else "uniform"  # Keras's masked softmax when dropout is configured
            out = ops.sdpa(q, k, v, mask, causal_only, ops.inverse_sqrt(self.key_dim), empty_rows)
        else:
            self.last_path = "matmul"
            if causal_only:
                mask = ops.causal_mask(q.shape[1], v.shape[1], q.device)
            q = q * ops.inverse_sqrt(self.key_dim)
            logits = torch.einsum(self._dot_equation, k, q)
            if mask is not None:
                mask = ops.expand_mask(mask, logits.dim(), len(self._axes))
            scores = ops.masked_softmax(logits, mask, self._norm_axes)
            out = torch.einsum(self._combine_equation, self._dropped(scores, training), v)
        if gate is not None:
            out = out * gate
        out = _project_output(self.output_dense, out)
        return (out, scores) if return_attention_scores else out

    def forward(self, query: Any = None, value: Any = None, key: Any = None, **kwargs: Any) -> Any:
        """``layer(query, value, key=None, ...)``, by position or by name as Keras users call it."""
        return Layer.forward(self, query, value, key, **kwargs)

    def compute_output_shape(self, input_shape: Any, return_attention_scores: bool | None = None) -> Any:
        """The output shape; with ``return_attention_scores`` (default: as the last call) also the
        scores' ``(B, heads, <query attention axes>, <key attention axes>)``."""
        query, value, _ = self._split_shapes(input_shape)
        output = (*query[:-1], *(self.output_shape or (query[-1],)))
        scores_wanted = self._last_scores if return_attention_scores is None else return_attention_scores
        if not scores_wanted:
            return output
        rank = len(query) + 1
        axes = self._axes if self.built else tuple(range(1, rank - 2))
        batch = [query[i] for i in range(rank - 2) if i not in axes]  # the projected axes before the heads
        return [output, (*batch, self.num_heads, *(query[a] for a in axes), *(value[a] for a in axes))]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "output_shape": None if self.output_shape is None else list(self.output_shape),
            "attention_axes": None if self.attention_axes is None else list(self.attention_axes),
            **self._common_config(),
        }


def _project(dense: EinsumDense, inputs: torch.Tensor, bound: int = 1) -> torch.Tensor:
    """``dense(inputs)`` for a projection that contracts the last ``bound`` input axes with the
    first ``bound`` kernel axes (every projection of the attention layers): one ``addmm`` on
    views of the Keras-layout kernel and bias (no einsum planning, the bias fused). A projection
    with an activity regularizer runs the sub-layer itself (it records the loss)."""
    if dense.activity_regularizer is not None:
        return dense(inputs)
    dtype = dense.compute_dtype
    kernel = dense.merged_kernel().to(dtype)
    contracted = math.prod(kernel.shape[:bound])
    flat = inputs.to(dtype).reshape(-1, contracted)
    weights = kernel.reshape(contracted, -1)
    if dense.bias_axes is not None:
        out = torch.addmm(dense.bias.to(dtype).reshape(-1), flat, weights)
    else:
        out = flat @ weights
    return dense.activation(out.reshape(*inputs.shape[:inputs.dim() - bound], *kernel.shape[bound:]))


def _project_output(dense: EinsumDense, heads: torch.Tensor) -> torch.Tensor:
    """The output projection of the per-head results (its kernel is ``(heads, value_dim, out)``)."""
    return _project(dense, heads, bound=2)


class GroupQueryAttention(_MultiHead):
    """Grouped-query attention, as ``keras.layers.GroupQueryAttention`` (Ainslie et al., 2023):
    ``num_query_heads`` query heads share ``num_key_value_heads`` key/value heads, each
    key/value head serving ``num_query_heads // num_key_value_heads`` consecutive query heads
    (Keras's ``ops.repeat`` along the heads axis, torch's ``repeat_interleave``).

    Rank-3 inputs only. The attention runs ``scaled_dot_product_attention`` when no scores are
    asked for and no dropout is drawn (``last_path == "sdpa"``), else Keras's matmuls and masked
    softmax (``"matmul"``); an all-masked query row follows Keras as in `MultiHeadAttention`.

    Args:
        head_dim: size of each head.
        num_query_heads: number of query heads.
        num_key_value_heads: number of key and value heads (divides ``num_query_heads``).
        dropout: dropout rate of the attention probabilities, in [0, 1).
        use_bias: whether the projections have biases.
        sliding_window: if set, query ``i`` attends keys ``j`` with ``|i - j| < sliding_window``.
        flash_attention: accepted for Keras compatibility.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
            activity_regularizer, kernel_constraint, bias_constraint: of the projections.
        use_gate: multiply the attention output by ``sigmoid(gate projection of the query)``.
        seed: seed of the dropout.
        **kwargs: base `Layer` arguments.

    Call arguments:
        As `MultiHeadAttention`'s: ``query, value, key, query_mask, value_mask, key_mask,
        attention_mask, return_attention_scores, training, use_causal_mask``.

    Output shape:
        ``(B, T, dim)``, and the ``(B, num_query_heads, T, S)`` scores if asked.

    Weights:
        _query_dense/kernel: ``(dim, num_query_heads, head_dim)``; bias ``(num_query_heads, head_dim)``.
        _key_dense/kernel, _value_dense/kernel: ``(dim_k or dim_v, num_key_value_heads, head_dim)``.
        _output_dense/kernel: ``(num_query_heads, head_dim, dim)``; bias ``(dim,)``.
        torch views: the same tensors, used by ``torch.einsum``.

    Example:
        >>> layer = GroupQueryAttention(head_dim=4, num_query_heads=4, num_key_value_heads=2)
        >>> layer(torch.randn(3, 5, 6), torch.randn(3, 7, 6)).shape
        torch.Size([3, 5, 6])
        >>> tuple(layer._key_dense.kernel.shape), tuple(layer._output_dense.kernel.shape)
        ((6, 2, 4), (4, 4, 6))
    """

    def __init__(
        self,
        head_dim: int,
        num_query_heads: int,
        num_key_value_heads: int,
        dropout: float = 0.0,
        use_bias: bool = True,
        sliding_window: int | None = None,
        flash_attention: bool | None = None,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        use_gate: bool = False,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        for name, value in (("head_dim", head_dim), ("num_query_heads", num_query_heads), ("num_key_value_heads", num_key_value_heads)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ArgumentError(f"`{name}` must be a positive integer. Received: {name}={value!r}.")
        if num_query_heads % num_key_value_heads:
            raise ArgumentError(
                f"`num_query_heads` must be divisible by `num_key_value_heads`. Received: num_query_heads={num_query_heads}, "
                f"num_key_value_heads={num_key_value_heads}."
            )
        self.head_dim, self.num_query_heads, self.num_key_value_heads = int(head_dim), int(num_query_heads), int(num_key_value_heads)
        self.num_repeats = self.num_query_heads // self.num_key_value_heads
        self._init_common(dropout, use_bias, sliding_window, flash_attention, use_gate, seed, kernel_initializer, bias_initializer,
                          kernel_regularizer, bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint)

    def build(self, input_shape: Any) -> None:
        query, value, key = self._split_shapes(input_shape)
        for name, shape in zip(_CALL_INPUTS, (query, value, key)):
            if len(shape) != 3:
                raise InputShapeError(f"expected `{name}` of rank 3 (batch, length, features). Received: {name}_shape={shape}.")
        self._shapes = (query, value, key)
        heads_q, heads_kv = self.num_query_heads, self.num_key_value_heads
        self._query_dense = self._dense("bqm,muh->bquh", (None, heads_q, self.head_dim), "uh", "query", query)
        self._key_dense = self._dense("bkm,mvh->bkvh", (None, heads_kv, self.head_dim), "vh", "key", key)
        if self.use_gate:
            self._gate_dense = self._dense("bqm,muh->bquh", (None, heads_q, self.head_dim), "uh", "gate", query, activation="sigmoid")
        self._value_dense = self._dense("bkm,mvh->bkvh", (None, heads_kv, self.head_dim), "vh", "value", value)
        self._output_dense = self._dense("bquh,uhm->bqm", (None, query[-1]), "m", "attention_output", (None, None, heads_q, self.head_dim))

    def call(self, query: Any, value: Any = None, key: Any = None, query_mask: Any = None, value_mask: Any = None,
             key_mask: Any = None, attention_mask: Any = None, return_attention_scores: bool = False,
             training: bool | None = None, use_causal_mask: bool = False) -> Any:
        query, value, key = self._inputs(query, value, key)
        training = self._training(training)
        self._last_scores = bool(return_attention_scores)
        if self.flash_attention and return_attention_scores:
            raise ArgumentError("attention scores cannot be returned with flash attention. Received: return_attention_scores=True.")
        masks = {"query_mask": query_mask, "value_mask": value_mask, "key_mask": key_mask, "attention_mask": attention_mask}
        causal_only = self._causal_only(masks, use_causal_mask)
        mask = None if causal_only else self._attention_mask(query, value, masks, use_causal_mask)
        gate = _project(self._gate_dense, query) if self.use_gate else None
        q = _project(self._query_dense, query)
        k = ops.repeat_heads(_project(self._key_dense, key), self.num_repeats)
        v = ops.repeat_heads(_project(self._value_dense, value), self.num_repeats)
        scores = None
        if not return_attention_scores and not (training and self.dropout > 0):
            self.last_path, self.last_dropout_mask = "sdpa", None
            out = ops.sdpa(q, k, v, mask, causal_only, ops.inverse_sqrt(self.head_dim), "zero" if self.dropout > 0 else "uniform")
        else:
            self.last_path = "matmul"
            if causal_only:
                mask = ops.causal_mask(q.shape[1], v.shape[1], q.device)
            q = q * ops.inverse_sqrt(self.head_dim)
            logits = torch.einsum("bquh,bkuh->buqk", q, k)
            if mask is not None:
                mask = ops.expand_mask(mask, 4, 1)
            scores = ops.masked_softmax(logits, mask, (-1,))
            out = torch.einsum("buqk,bkuh->bquh", self._dropped(scores, training), v)
        if gate is not None:
            out = out * gate
        out = _project_output(self._output_dense, out)
        return (out, scores) if return_attention_scores else out

    def forward(self, query: Any = None, value: Any = None, key: Any = None, **kwargs: Any) -> Any:
        """``layer(query, value, key=None, ...)``, by position or by name as Keras users call it."""
        return Layer.forward(self, query, value, key, **kwargs)

    def compute_output_shape(self, input_shape: Any, return_attention_scores: bool | None = None) -> Any:
        """The output shape (the query's); with ``return_attention_scores`` (default: as the last
        call) also the scores' ``(B, num_query_heads, T, S)``."""
        query, value, _ = self._split_shapes(input_shape)
        scores_wanted = self._last_scores if return_attention_scores is None else return_attention_scores
        if not scores_wanted:
            return tuple(query)
        return [tuple(query), (query[0], self.num_query_heads, query[1], value[1])]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "head_dim": self.head_dim,
            "num_query_heads": self.num_query_heads,
            "num_key_value_heads": self.num_key_value_heads,
            **self._common_config(),
        }


# -- Luong and Bahdanau attention ---------------------------------------------------------------


class _BaseDenseAttention(Layer):
    """Keras's dot-product-style attention over ``[query, value(, key)]``: scores, masked by
    subtracting ``1e9`` (``65504`` in float16) where the value mask is False, a softmax over
    the keys, dropout, then ``probs @ value``; masked queries give zeros."""

    def _init_common(self, use_scale: Any, dropout: Any, seed: Any) -> None:
        self.use_scale = bool(use_scale)
        self.dropout = _check_rate(dropout)
        self.seed = _check_seed(seed)
        self._dropout = _Dropout(self.dropout, self.seed)
        self.supports_masking = True
        self.last_dropout_mask: torch.Tensor | None = None
        self._last_scores = False

    @staticmethod
    def _split(input_shape: Any) -> list[Shape]:
        if not isinstance(input_shape, (list, tuple)) or not input_shape or not isinstance(input_shape[0], (list, tuple, torch.Size)) \
                or len(input_shape) not in (2, 3):
            count = len(input_shape) if isinstance(input_shape, list) else "a single input"
            raise InputShapeError(f"expected a list of 2 or 3 inputs, [query, value] or [query, value, key]. Received: {count}.")
        return [tuple(s) for s in input_shape]

    def scores(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def call(self, inputs: Any, mask: Any = None, training: bool | None = None, return_attention_scores: bool = False,
             use_causal_mask: bool = False) -> Any:
        self._split([tuple(t.shape) for t in inputs] if isinstance(inputs, (list, tuple)) else inputs)
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        if mask is not None and (not isinstance(mask, (list, tuple)) or len(mask) not in (2, 3)):
            raise ArgumentError(f"`mask` must be a list [query_mask, value_mask]. Received: mask of type {type(mask).__name__}.")
        q_mask = _mask_tensor(self, "query_mask", mask[0], query.device) if mask else None
        v_mask = _mask_tensor(self, "value_mask", mask[1], query.device) if mask else None
        training = self.training if training is None else bool(training)
        self._last_scores = bool(return_attention_scores)
        scores = self.scores(query, key)
        scores_mask = v_mask.bool() if v_mask is not None else None
        if use_causal_mask:
            causal = ops.causal_mask(scores.shape[-2], scores.shape[-1], scores.device)
            scores_mask = causal if scores_mask is None else scores_mask.unsqueeze(-2) & causal
        if scores_mask is not None and scores_mask.dim() == 2:
            scores_mask = scores_mask.unsqueeze(-2)
        scores = ops.subtract_padding(scores, scores_mask)
        weights = torch.softmax(scores, dim=-1)
        self.last_dropout_mask = None
        dropped = weights
        if training and self.dropout > 0:
            dropped, self.last_dropout_mask = self._dropout(weights)
        out = torch.matmul(dropped, value)
        if q_mask is not None:
            out = torch.where(q_mask.bool().unsqueeze(-1), out, 0.0)
        return (out, weights) if return_attention_scores else out

    def compute_mask(self, inputs: Any, mask: Any = None) -> torch.Tensor | None:
        """The query's mask (``mask[0]``), as Keras."""
        if mask is None or mask[0] is None:
            return None
        return torch.as_tensor(mask[0])

    def compute_output_shape(self, input_shape: Any, return_attention_scores: bool | None = None) -> Any:
        """``(*query[:-1], value[-1])``; with ``return_attention_scores`` (default: as the last
        call) also the scores' ``(*query[:-1], key[-2])``."""
        shapes = self._split(input_shape)
        query, value = shapes[0], shapes[1]
        key = shapes[2] if len(shapes) > 2 else value
        output = (*query[:-1], value[-1])
        wanted = self._last_scores if return_attention_scores is None else return_attention_scores
        return [output, (*query[:-1], key[-2])] if wanted else output


class Attention(_BaseDenseAttention):
    """Dot-product (Luong-style) attention, as ``keras.layers.Attention``:
    ``softmax(scores) @ value`` with ``scores = scale * query @ key^T`` (``"dot"``) or
    ``concat_score_weight * sum(tanh(scale * (query + key)))`` (``"concat"``).

    Args:
        use_scale: learn a scalar ``scale`` (initialized to 1).
        score_mode: ``"dot"`` or ``"concat"``.
        dropout: dropout rate of the attention weights, in [0, 1).
        seed: seed of the dropout.
        **kwargs: base `Layer` arguments.

    Call arguments:
        inputs: ``[query (B, Tq, dim), value (B, Tv, dim)]`` or with ``key (B, Tv, dim)``.
        mask: ``[query_mask (B, Tq), value_mask (B, Tv)]`` booleans.
        training: apply dropout; default ``self.training``.
        return_attention_scores: also return the ``(B, Tq, Tv)`` attention weights.
        use_causal_mask: query ``i`` attends keys ``j <= i``.

    Output shape:
        ``(B, Tq, dim)``.

    Weights:
        scale: ``()``, if ``use_scale``; torch view: the same scalar.
        concat_score_weight: ``()``, if ``score_mode="concat"``; torch view: the same scalar.

    Example:
        >>> layer = Attention(use_scale=True, score_mode="concat")
        >>> layer([torch.randn(2, 3, 4), torch.randn(2, 5, 4)]).shape
        torch.Size([2, 3, 4])
        >>> [w.name for w in layer.weights]
        ['scale', 'concat_score_weight']
    """

    LAYOUT = (
        Weight("scale", (), enabled_by="use_scale"),
        Weight("concat_score_weight", (), enabled_by="concat"),
    )

    def __init__(self, use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ArgumentError(f"`score_mode` must be one of 'dot', 'concat'. Received: score_mode={score_mode!r}.")
        self.score_mode = score_mode
        self._init_common(use_scale, dropout, seed)
        self.scale_initializer = initializers.get("ones")
        self.concat_score_weight_initializer = initializers.get("ones")

    @property
    def concat(self) -> bool:
        return self.score_mode == "concat"

    def build(self, input_shape: Any) -> dict[str, int]:
        self._split(input_shape)
        return {}

    def scores(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        if self.score_mode == "dot":
            scores = torch.matmul(query, key.transpose(-2, -1))
            return scores * self.scale if self.use_scale else scores
        summed = query.unsqueeze(-2) + key.unsqueeze(-3)
        if self.use_scale:
            summed = self.scale * summed
        return self.concat_score_weight * torch.tanh(summed).sum(-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "use_scale": self.use_scale, "score_mode": self.score_mode, "dropout": self.dropout, "seed": self.seed}


class AdditiveAttention(_BaseDenseAttention):
    """Additive (Bahdanau-style) attention, as ``keras.layers.AdditiveAttention``:
    ``scores = sum(scale * tanh(query + key), axis=-1)``, then ``softmax(scores) @ value``.

    Args:
        use_scale: learn a per-feature ``scale`` (glorot-uniform initialized).
        dropout: dropout rate of the attention weights, in [0, 1).
        seed: seed of the dropout.
        **kwargs: base `Layer` arguments.

    Call arguments:
        As `Attention`'s: ``inputs=[query, value(, key)]``, ``mask=[query_mask, value_mask]``,
        ``training``, ``return_attention_scores``, ``use_causal_mask``.

    Output shape:
        ``(B, Tq, dim)``.

    Weights:
        scale: ``(dim,)``, if ``use_scale``; torch view: the same vector.

    Example:
        >>> layer = AdditiveAttention()
        >>> layer([torch.randn(2, 3, 4), torch.randn(2, 5, 4)]).shape
        torch.Size([2, 3, 4])
        >>> tuple(layer.scale.shape)
        (4,)
    """

    LAYOUT = (Weight("scale", ("dim",), enabled_by="use_scale"),)

    def __init__(self, use_scale: bool = True, dropout: float = 0.0, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._init_common(use_scale, dropout, seed)
        self.scale_initializer = initializers.get("glorot_uniform")

    def build(self, input_shape: Any) -> dict[str, int]:
        return {"dim": self._split(input_shape)[0][-1]}

    def scores(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        summed = torch.tanh(query.unsqueeze(-2) + key.unsqueeze(-3))
        return (self.scale * summed if self.use_scale else summed).sum(-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "use_scale": self.use_scale, "dropout": self.dropout, "seed": self.seed}


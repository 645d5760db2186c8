"""Core layers: `Dense`, `Masking`, `Identity`, `Embedding` and `EinsumDense`."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .. import activations, initializers
from ..arguments import check_positive_int, integer
from ..errors import ArgumentError, ArgumentTypeError, InputShapeError
from ..layer import InputSpec, Layer, Shape, dtype_name
from ..layout import Weight

__all__ = ["Dense", "LoraMixin", "Masking"]




class LoraMixin:
    """Keras's LoRA for kernel layers: with ``lora_rank`` set, ``kernel`` is frozen and
    ``(lora_alpha / lora_rank) * lora_kernel_a @ lora_kernel_b`` is added to it.

    The host declares ``lora_kernel_a`` / ``lora_kernel_b`` in its ``LAYOUT`` (enabled by
    ``lora_rank``, axis ``rank``) and calls :meth:`_init_lora` in its constructor.
    """

    LORA_TARGET: ClassVar[str] = "kernel"  # the weight LoRA adapts: lora_<target>_a / lora_<target>_b

    def _init_lora(self, lora_rank: int | None, lora_alpha: float | None) -> None:
        if lora_rank is not None:
            check_positive_int("lora_rank", lora_rank)
            constraint = f"{self.LORA_TARGET}_constraint"
            if getattr(self, constraint) is not None:
                raise ArgumentError(
                    f"`lora_rank` cannot be combined with `{constraint}`. "
                    f"Received: lora_rank={lora_rank}."
                )
        if lora_alpha is not None and (isinstance(lora_alpha, bool) or not isinstance(lora_alpha, (int, float, np.number))):
            raise ArgumentTypeError(f"`lora_alpha` must be a number or None. Received: lora_alpha={lora_alpha!r}.")
        self.lora_rank = lora_rank if lora_rank is None else check_positive_int("lora_rank", lora_rank)
        self.lora_alpha = float(lora_alpha) if lora_alpha is not None else lora_rank

    def _build(self, input_shape: Shape, device: torch.device | None) -> None:
        super()._build(input_shape, device)
        if self.lora_rank:  # as Keras's enable_lora: the adapted weight is frozen
            getattr(self, self.LORA_TARGET).requires_grad_(False)
            self._weight_trainable[self.LORA_TARGET] = False

    def initializer_for(self, weight: Weight) -> Callable[..., torch.Tensor]:
        lora = {f"lora_{self.LORA_TARGET}_a": "he_uniform", f"lora_{self.LORA_TARGET}_b": "zeros"}
        return initializers.get(lora[weight.name]) if weight.name in lora else super().initializer_for(weight)

    def merged_weight(self) -> torch.Tensor:
        """The adapted weight (``kernel``), plus the scaled LoRA update when ``lora_rank`` is set."""
        target = self.LORA_TARGET
        if not self.lora_rank:
            return getattr(self, target)
        update = getattr(self, f"lora_{target}_a") @ getattr(self, f"lora_{target}_b")
        return getattr(self, target) + (self.lora_alpha / self.lora_rank) * update

    merged_kernel = merged_weight

    def lora_config(self) -> dict[str, Any]:
        return {"lora_rank": self.lora_rank, "lora_alpha": self.lora_alpha} if self.lora_rank else {}


class Dense(LoraMixin, Layer):
    """Densely connected layer: ``outputs = activation(inputs @ kernel + bias)``.

    Applies on the last axis of inputs of any rank >= 2; the torch mapping is
    ``F.linear(inputs, kernel_view, bias)`` with ``kernel``'s torch view from ``LAYOUT``
    (a transposed view: no copy).

    Args:
        units: dimensionality of the output space.
        activation: activation function or its Keras name; ``None`` is linear.
        use_bias: whether the layer uses a bias vector.
        kernel_initializer: initializer for ``kernel``.
        bias_initializer: initializer for ``bias``.
        kernel_regularizer: regularizer for ``kernel``.
        bias_regularizer: regularizer for ``bias``.
        activity_regularizer: regularizer for the output.
        kernel_constraint: constraint for ``kernel``.
        bias_constraint: constraint for ``bias``.
        lora_rank: if set, ``kernel`` is frozen and a trainable low-rank update
            ``(lora_alpha / lora_rank) * lora_kernel_a @ lora_kernel_b`` is added to it.
        lora_alpha: LoRA scale numerator; defaults to ``lora_rank``.
        quantization_config: only ``None`` (quantized Dense is not supported).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        ``(batch, ..., input_dim)``.

    Output shape:
        ``(batch, ..., units)``.

    Weights:
        kernel: ``(in, units)``; torch view ``(units, in)``.
        bias: ``(units,)``, if ``use_bias``.
        lora_kernel_a: ``(in, rank)``; torch view ``(rank, in)``, if ``lora_rank``.
        lora_kernel_b: ``(rank, units)``; torch view ``(units, rank)``, if ``lora_rank``.

    Example:
        >>> layer = Dense(128, activation="relu")
        >>> layer(torch.randn(32, 784)).shape
        torch.Size([32, 128])
        >>> tuple(layer.kernel.shape), tuple(layer.bias.shape)
        ((784, 128), (128,))
    """

    LAYOUT = (
        Weight("kernel", ("in", "units"), torch=("units", "in")),
        Weight("bias", ("units",), enabled_by="use_bias"),
        Weight("lora_kernel_a", ("in", "rank"), torch=("rank", "in"), role="kernel", enabled_by="lora_rank"),
        Weight("lora_kernel_b", ("rank", "units"), torch=("units", "rank"), role="kernel", enabled_by="lora_rank"),
    )

    def __init__(
        self,
        units: int,
        activation: str | Callable[[torch.Tensor], torch.Tensor] | None = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        lora_rank: int | None = None,
        lora_alpha: float | None = None,
        quantization_config: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = check_positive_int("units", units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self._set_weight_arguments(locals())
        self._init_lora(lora_rank, lora_alpha)
        if quantization_config is not None:
            raise ArgumentError(f"quantized layers are not supported; `quantization_config` must be None. Received: quantization_config={quantization_config!r}.")
        self.input_spec = InputSpec(min_ndim=2)
        self.supports_masking = True

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ArgumentError(f"{self._label}: the last axis of the input must be known to build. Received: input_shape={input_shape}.")
        self.input_spec = InputSpec(min_ndim=2, axes={-1: input_dim})
        return {"in": input_dim, "units": self.units, "rank": self.lora_rank or 0}

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs = F.linear(inputs, self.weight_view("kernel", value=self.merged_kernel()), self.bias if self.use_bias else None)
        return self.activation(outputs)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        halves = activations.name_of(self.activation) == "glu"  # glu gates one half with the other
        return (*tuple(input_shape)[:-1], self.units // 2 if halves else self.units)

    def get_config(self) -> dict[str, Any]:
        config = {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            **self._weight_argument_config(),
            "quantization_config": None,
            **self.lora_config(),
        }
        return config


class Masking(Layer):
    """Masks timesteps whose features all equal ``mask_value``.

    ``outputs = inputs * any(inputs != mask_value, axis=-1, keepdims=True)``; the mask
    ``any(inputs != mask_value, axis=-1)`` goes to the next layer (in `Sequential`).

    Args:
        mask_value: the value that marks a masked timestep.

    Input shape:
        ``(batch, timesteps, ...features)``.

    Output shape:
        same as the input.

    Example:
        >>> Masking(0.0)(torch.ones(2, 3, 4)).shape
        torch.Size([2, 3, 4])
    """

    def __init__(self, mask_value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(mask_value, bool) or not isinstance(mask_value, (int, float, np.number)):
            raise ArgumentTypeError(f"`mask_value` must be a number. Received: mask_value={mask_value!r}.")
        self.mask_value = float(mask_value)
        self.supports_masking = True
        self.input_spec = InputSpec(min_ndim=2)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        keep = (inputs != self.mask_value).any(dim=-1, keepdim=True)
        return inputs * keep.to(inputs.dtype)

    def compute_mask(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return (torch.as_tensor(inputs) != self.mask_value).any(dim=-1)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mask_value": self.mask_value}


class Identity(Layer):
    """The identity: ``outputs = inputs``, the same tensor (or list/dict of tensors).

    Keras's ``Identity`` layer, a placeholder where no operation is performed; the mask
    passes through.

    Input shape:
        any (a tensor, or a list or dict of tensors).

    Output shape:
        the input's.

    Example:
        >>> x = torch.randn(2, 3)
        >>> Identity()(x) is x
        True
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs: Any) -> Any:
        return inputs

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


__all__ += ["Identity"]


# -- Embedding ----------------------------------------------------------------------------------


class Embedding(LoraMixin, Layer):
    """Turns non-negative integer ids into dense vectors: ``outputs = embeddings[inputs]``.

    Row ``i`` of ``embeddings`` is the vector of id ``i``; the torch mapping is
    ``F.embedding(inputs, embeddings)`` (ONNX ``Gather``). Ids of any integer dtype are
    taken; ids outside ``[0, input_dim)`` raise an error naming the range found (one
    ``aminmax`` reduction per call; eager mode only: under ``torch.compile`` or export
    tracing the check is skipped and torch's own index check applies).

    Args:
        input_dim: size of the vocabulary (largest id + 1).
        output_dim: dimension of the dense embedding.
        embeddings_initializer: initializer for ``embeddings`` (Keras's default ``"uniform"``).
        embeddings_regularizer: regularizer for ``embeddings``.
        embeddings_constraint: constraint for ``embeddings``.
        mask_zero: whether id 0 is a padding value to be masked out
            (``compute_mask`` returns ``inputs != 0``).
        weights: optional initial value of ``embeddings`` (an array or a one-element list);
            builds the layer at once.
        lora_rank: if set, ``embeddings`` is frozen and a trainable low-rank update
            ``(lora_alpha / lora_rank) * lora_embeddings_a @ lora_embeddings_b`` is added to it.
        lora_alpha: LoRA scale numerator; defaults to ``lora_rank``.
        quantization_config: only ``None`` (quantized Embedding is not supported).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ...).

    Input shape:
        integer ids of any shape ``(batch, ...)``.

    Output shape:
        ``(batch, ..., output_dim)``.

    Weights:
        embeddings: ``(input_dim, output_dim)``.
        lora_embeddings_a: ``(input_dim, rank)``, if ``lora_rank``.
        lora_embeddings_b: ``(rank, output_dim)``, if ``lora_rank``.

    Example:
        >>> layer = Embedding(1000, 64)
        >>> layer(torch.randint(0, 1000, (32, 10))).shape
        torch.Size([32, 10, 64])
        >>> tuple(layer.embeddings.shape)
        (1000, 64)
    """

    LAYOUT = (
        Weight("embeddings", ("input_dim", "output_dim")),
        Weight("lora_embeddings_a", ("input_dim", "rank"), role="embeddings", enabled_by="lora_rank"),
        Weight("lora_embeddings_b", ("rank", "output_dim"), role="embeddings", enabled_by="lora_rank"),
    )

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: Any = "uniform",
        embeddings_regularizer: Any = None,
        embeddings_constraint: Any = None,
        mask_zero: bool = False,
        weights: Any = None,
        lora_rank: int | None = None,
        lora_alpha: float | None = None,
        quantization_config: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.input_dim = check_positive_int("input_dim", input_dim)
        self.output_dim = check_positive_int("output_dim", output_dim)
        self._set_weight_arguments(locals())
        if not isinstance(mask_zero, (bool, np.bool_)):
            raise ArgumentTypeError(f"`mask_zero` must be a boolean. Received: mask_zero={mask_zero!r}.")
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        self._init_lora(lora_rank, lora_alpha)
        if quantization_config is not None:
            raise ArgumentError(f"quantized layers are not supported; `quantization_config` must be None. Received: quantization_config={quantization_config!r}.")
        self.input_spec = InputSpec(dtype="int")
        if weights is not None:  # as Keras: build at once (the weights do not depend on the input shape), then set
            self._build((None, None), device=None)
            self.set_weights(weights if isinstance(weights, list) and len(weights) == 1 else [weights])

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        return {"input_dim": self.input_dim, "output_dim": self.output_dim, "rank": self.lora_rank or 0}

    LORA_TARGET = "embeddings"
    merged_embeddings = LoraMixin.merged_weight
    KERAS2_DROPPED = ("input_length",)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        ids = inputs if inputs.dtype in (torch.int32, torch.int64) else inputs.to(torch.int64)
        if ids.numel() and not torch.compiler.is_compiling():
            low, high = (int(v) for v in torch.aminmax(ids))
            if low < 0 or high >= self.input_dim:
                raise ArgumentError(
                    f"ids must be in [0, input_dim) = [0, {self.input_dim}). "
                    f"Received: ids in [{low}, {high}], input shape={tuple(inputs.shape)}."
                )
        return F.embedding(ids, self.merged_embeddings())

    def compute_mask(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor | None:
        if not self.mask_zero:
            return None
        return torch.as_tensor(inputs) != 0

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*tuple(input_shape), self.output_dim)

    def get_config(self) -> dict[str, Any]:
        config = {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            **self._weight_argument_config(),
            "mask_zero": self.mask_zero,
            "quantization_config": None,
        }
        if self.lora_rank:
            config.update(lora_rank=self.lora_rank, lora_alpha=self.lora_alpha)
        return config


__all__ += ["Embedding"]


class ReversibleEmbedding(Embedding):
    """An `Embedding` that also projects back to the vocabulary, as
    ``keras.layers.ReversibleEmbedding`` (the tied input/output embedding of language models).

    ``layer(ids)`` is `Embedding`'s lookup (with its mask when ``mask_zero``);
    ``layer(hidden, reverse=True)`` returns logits ``hidden @ embeddings.T`` (torch:
    ``F.linear(hidden, embeddings)``, no copy), or ``hidden @ reverse_embeddings`` with
    ``tie_weights=False``; with ``logit_soft_cap`` they become
    ``tanh(logits / logit_soft_cap) * logit_soft_cap``.

    Args:
        input_dim: size of the vocabulary (largest id + 1).
        output_dim: dimension of the dense embedding.
        tie_weights: whether the reverse projection reuses ``embeddings`` (default) or has its
            own trainable ``reverse_embeddings``.
        embeddings_initializer, embeddings_regularizer, embeddings_constraint, mask_zero:
            as `Embedding`.
        reverse_dtype: dtype of the reverse projection (default: the compute dtype).
        logit_soft_cap: if set, the reverse logits are soft-capped to ``(-cap, cap)``.
        **kwargs: `Embedding` arguments (``lora_rank``, ``name``, ``dtype``, ...).

    Call arguments:
        inputs: integer ids ``(batch, ...)``, or with ``reverse=True`` hidden states
            ``(batch, ..., output_dim)``.
        reverse: project hidden states to logits instead of looking ids up.

    Output shape:
        ``(batch, ..., output_dim)``; with ``reverse=True`` ``(batch, ..., input_dim)``.

    Weights:
        embeddings: ``(input_dim, output_dim)``.
        lora_embeddings_a: ``(input_dim, rank)``, if ``lora_rank``.
        lora_embeddings_b: ``(rank, output_dim)``, if ``lora_rank``.
        reverse_embeddings: ``(output_dim, input_dim)``, if not ``tie_weights``.

    Example:
        >>> layer = ReversibleEmbedding(100, 16)
        >>> hidden = layer(torch.randint(0, 100, (2, 7)))
        >>> tuple(hidden.shape), tuple(layer(hidden, reverse=True).shape)
        ((2, 7, 16), (2, 7, 100))
    """

    LAYOUT = (
        *Embedding.LAYOUT,  # Keras builds the LoRA factors with `embeddings`, then `reverse_embeddings`
        Weight("reverse_embeddings", ("output_dim", "input_dim"), enabled_by="untied"),
    )

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        tie_weights: bool = True,
        embeddings_initializer: Any = "uniform",
        embeddings_regularizer: Any = None,
        embeddings_constraint: Any = None,
        mask_zero: bool = False,
        reverse_dtype: Any = None,
        logit_soft_cap: float | None = None,
        **kwargs: Any,
    ) -> None:
        self.__dict__["untied"] = tie_weights is False  # read by LAYOUT if the base builds at once (`weights=`)
        super().__init__(
            input_dim, output_dim, embeddings_initializer=embeddings_initializer,
            embeddings_regularizer=embeddings_regularizer, embeddings_constraint=embeddings_constraint,
            mask_zero=mask_zero, **kwargs,
        )
        if not isinstance(tie_weights, (bool, np.bool_)):
            raise ArgumentTypeError(f"`tie_weights` must be a boolean. Received: tie_weights={tie_weights!r}.")
        self.tie_weights = bool(tie_weights)
        self.untied = not self.tie_weights
        self.reverse_dtype = _floating_dtype("reverse_dtype", reverse_dtype)
        if logit_soft_cap is not None and (
            isinstance(logit_soft_cap, bool) or not isinstance(logit_soft_cap, (int, float)) or logit_soft_cap <= 0
        ):
            raise ArgumentError(f"`logit_soft_cap` must be a positive number or None. Received: logit_soft_cap={logit_soft_cap!r}.")
        self.logit_soft_cap = None if logit_soft_cap is None else float(logit_soft_cap)
        self.input_spec = None  # ids, or hidden states with reverse=True: `call` checks each against its own spec

    @classmethod
    def _weight_arguments(cls) -> list[tuple[str, Any]]:
        return Embedding._weight_arguments()  # no arguments of its own for `reverse_embeddings`

    def initializer_for(self, weight: Weight) -> Callable[..., torch.Tensor]:
        """``reverse_embeddings`` starts from ``embeddings_initializer``; as in Keras, the
        embeddings' regularizer and constraint do not apply to it."""
        return self.embeddings_initializer if weight.name == "reverse_embeddings" else super().initializer_for(weight)

    def _convert_inputs(self, inputs: Any) -> torch.Tensor:
        return self._as_tensor(inputs)

    def call(self, inputs: torch.Tensor, reverse: bool = False) -> torch.Tensor:
        if not reverse:
            return super().call(self.convert_input(inputs, InputSpec(dtype="int")))
        hidden = self.convert_input(inputs, InputSpec(min_ndim=1, axes={-1: self.output_dim}))
        # Keras's reverse projection reads its weights without a mixed policy's autocast: the
        # product promotes to the weights' dtype (float32 logits under "mixed_bfloat16")
        if not self.tie_weights:
            kernel = self._parameters["reverse_embeddings"].t()
        elif self.lora_rank:
            kernel = self.merged_embeddings()  # (input_dim, output_dim): F.linear's layout as it is
        else:
            kernel = self._parameters["embeddings"]
        dtype = self.reverse_dtype or torch.promote_types(hidden.dtype, kernel.dtype)
        logits = F.linear(hidden.to(dtype), kernel.to(dtype))
        if self.logit_soft_cap is not None:
            logits = torch.tanh(logits / self.logit_soft_cap) * self.logit_soft_cap
        return logits

    def compute_mask(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor | None:
        """The lookup's mask (``ids != 0`` with ``mask_zero``); reverse calls (floating
        hidden states) carry none."""
        if torch.is_tensor(inputs) and (inputs.is_floating_point() or inputs.is_complex()):
            return None
        return super().compute_mask(inputs, mask)

    def compute_output_shape(self, input_shape: Shape, reverse: bool = False) -> Shape:
        return (*tuple(input_shape)[:-1], self.input_dim) if reverse else super().compute_output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "tie_weights": self.tie_weights,
            "reverse_dtype": None if self.reverse_dtype is None else dtype_name(self.reverse_dtype),
            "logit_soft_cap": self.logit_soft_cap,
        }


def _floating_dtype(argument: str, dtype: Any) -> torch.dtype | None:
    if dtype is None:
        return None
    resolved = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ArgumentError(
            f"`{argument}` must be None or a floating dtype ('float16', 'bfloat16', 'float32', 'float64'). "
            f"Received: {argument}={dtype!r}."
        )
    return resolved


__all__ += ["ReversibleEmbedding"]


# -- EinsumDense ----------------------------------------------------------------------------------

# Keras's three equation forms: no ellipsis, "...X,Y->...Z" (left) and "X...,Y->Z..." (right).
_EINSUM_FORMS = (
    (re.compile(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)"), ""),
    (re.compile(r"\.\.\.([a-zA-Z]+),([a-zA-Z]+)->\.\.\.([a-zA-Z]+)"), "left"),
    (re.compile(r"([a-zA-Z]{2,})\.\.\.,([a-zA-Z]+)->([a-zA-Z]+)\.\.\."), "right"),
)


class _EinsumPlan(NamedTuple):
    kernel_axes: str  # the kernel's letters (its axis names)
    kernel_shape: tuple[int, ...]
    bias_axes: tuple[str, ...] | None  # the bias's axis names: a letter, or "<letter>1" / "ellipsis<i>" for size-1 axes
    bias_shape: tuple[int, ...] | None
    output_shape: tuple[int | None, ...]  # batch included, unknown sizes filled from the input where shared
    input_axes: list[int]  # kernel axes holding input units (for the initializer's fans)
    output_axes: list[int]


def _einsum_plan(equation: str, bias_axes: str | None, input_shape: Shape, partial_output_shape: tuple) -> _EinsumPlan:
    """Keras's ``_analyze_einsum_string``: kernel and bias shapes and the output shape."""
    for pattern, elided_side in _EINSUM_FORMS:
        match = pattern.fullmatch(equation)
        if match:
            break
    else:
        raise ArgumentError(
            "`equation` must be of the form '[X],[Y]->[Z]', '...[X],[Y]->...[Z]' or '[X]...,[Y]->[Z]...'. "
            f"Received: equation={equation!r}."
        )
    input_spec, weight_spec, output_spec = match.groups()
    input_shape = tuple(input_shape)
    elided = len(input_shape) - len(input_spec)
    if elided < 0 or (elided > 0 and not elided_side):
        raise InputShapeError(
            f"the input's rank must match the equation's input '{input_spec}'{' (plus the ellipsis)' if elided_side else ''}. "
            f"Received: equation={equation!r}, input shape={input_shape}."
        )
    partial = list(partial_output_shape)
    if elided_side == "left" and elided > 0:  # the ellipsis (batch included) leads; the output letters follow it
        output = [*input_shape[:elided], *partial]
        input_index = {d: elided + i for i, d in enumerate(input_spec)}
        output_index = {d: elided + i for i, d in enumerate(output_spec)}
    else:  # the batch axis, `output_shape`, then the axes a trailing ellipsis covers
        output = [input_shape[0] if input_shape else None, *partial, *input_shape[len(input_spec):]]
        input_index = {d: i for i, d in enumerate(input_spec)}
        output_index = {d: i for i, d in enumerate(output_spec)}
    if len(output) != len(output_spec) + elided or max(output_index.values()) >= len(output):
        raise ArgumentError(
            f"`output_shape` must give the size of each output axis of the equation but the batch axis "
            f"(or each output letter after a leading ellipsis). Received: output_shape={partial_output_shape}, "
            f"equation={equation!r}, input shape={input_shape}."
        )
    for d in input_spec:
        if d in output_index:
            wanted, found = output[output_index[d]], input_shape[input_index[d]]
            if wanted is not None and found is not None and wanted != found:
                raise InputShapeError(
                    f"the input and `output_shape` disagree on the shared axis '{d}': {found} in the input, "
                    f"{wanted} in `output_shape`. Received: input shape={input_shape}, output_shape={partial_output_shape}."
                )
            if wanted is None:
                output[output_index[d]] = found
    for d in output_spec:
        if d not in input_spec and d not in weight_spec:
            raise ArgumentError(f"output axis '{d}' is in neither the input nor the kernel of the equation. Received: equation={equation!r}.")
    kernel_shape: list[Any] = []
    input_axes: list[int] = []
    output_axes: list[int] = []
    for i, d in enumerate(weight_spec):
        if d in output_index:
            kernel_shape.append(output[output_index[d]])
            output_axes.append(i)
        elif d in input_index:
            kernel_shape.append(input_shape[input_index[d]])
            input_axes.append(i)
        else:
            raise ArgumentError(f"kernel axis '{d}' is in neither the input nor the output of the equation. Received: equation={equation!r}.")
    if any(s is None for s in kernel_shape):
        raise InputShapeError(
            f"the sizes of the kernel's axes '{weight_spec}' must be known to build. "
            f"Received: kernel shape={tuple(kernel_shape)}, input shape={input_shape}, output_shape={partial_output_shape}."
        )
    bias_names = bias_shape = None
    if bias_axes is not None:
        missing = [c for c in bias_axes if c not in output_spec]
        if missing or not bias_axes:
            raise ArgumentError(f"`bias_axes` must be letters of the output '{output_spec}'. Received: bias_axes={bias_axes!r}.")
        spec = output_spec[min(output_spec.find(c) for c in bias_axes):]
        bias_names = tuple(c if c in bias_axes else f"{c}1" for c in spec)
        bias_shape = tuple(output[output_index[c]] if c in bias_axes else 1 for c in spec)
        if elided_side == "right":
            bias_names += tuple(f"ellipsis{i}" for i in range(elided))
            bias_shape += (1,) * elided
    return _EinsumPlan(weight_spec, tuple(kernel_shape), bias_names, bias_shape, tuple(output), input_axes, output_axes)


def einsum_dense_layout(kernel_axes: str, bias_axes: Sequence[str] | None, lora: bool = True) -> tuple[Weight, ...]:
    """``EinsumDense``'s ``LAYOUT`` for an equation whose kernel has the letters ``kernel_axes``:
    ``kernel`` is named by them, ``bias`` (if any) by the output letters it spans (size-1 axes
    ``<letter>1``); LoRA's ``lora_kernel_a`` is the kernel with its last axis replaced by ``rank``."""
    kernel = tuple(kernel_axes)
    weights = [Weight("kernel", kernel)]
    if bias_axes is not None:
        weights.append(Weight("bias", tuple(bias_axes), enabled_by="bias_axes"))
    weights += [
        Weight("lora_kernel_a", (*kernel[:-1], "rank"), role="kernel", enabled_by="lora_rank"),
        Weight("lora_kernel_b", ("rank", kernel[-1]), role="kernel", enabled_by="lora_rank"),
    ]
    return tuple(weights)


class EinsumDense(LoraMixin, Layer):
    """A dense layer of any rank, written as an einsum:
    ``outputs = activation(einsum(equation, inputs, kernel) + bias)``.

    The torch mapping is ``torch.einsum`` with the same equation (ONNX ``Einsum``). The
    kernel's axes are the kernel letters of the equation, sized from the input and
    ``output_shape`` as Keras does; the bias spans the output axes from the first of
    ``bias_axes`` to the last, with size 1 on those not in ``bias_axes``.

    Args:
        equation: ``"ab,bc->ac"``, ``"...b,bc->...c"`` or ``"ab...,bc->ac..."`` forms: input,
            kernel and output letters.
        output_shape: sizes of the output axes but the batch axis (an int for one axis);
            ``None`` for a size taken from the input.
        activation: activation function or its Keras name; ``None`` is linear.
        bias_axes: output letters the bias varies along (``None``: no bias).
        kernel_initializer: initializer for ``kernel`` (variance-scaling fans come from the
            equation's input and output axes, as in Keras).
        bias_initializer: initializer for ``bias``.
        kernel_regularizer: regularizer for ``kernel``.
        bias_regularizer: regularizer for ``bias``.
        kernel_constraint: constraint for ``kernel``.
        bias_constraint: constraint for ``bias``.
        lora_rank: if set, ``kernel`` is frozen and ``(lora_alpha / lora_rank) *
            lora_kernel_a @ lora_kernel_b`` is added to it.
        lora_alpha: LoRA scale numerator; defaults to ``lora_rank``.
        quantization_config: only ``None`` (quantized EinsumDense is not supported).
        **kwargs: base `Layer` arguments (``name``, ``dtype``, ``input_shape``, ...).

    Input shape:
        the equation's input, e.g. ``(batch, a, b)`` for ``"abc,cde->abde"``.

    Output shape:
        ``(batch, *output_shape)`` with unknown sizes taken from the input.

    Weights:
        kernel: ``(b, c)`` for ``"ab,bc->ac"``; in general the kernel letters of the
        equation (the instance's ``LAYOUT`` is ``einsum_dense_layout(...)``).
        bias: ``(c,)`` for ``bias_axes="c"``, if ``bias_axes``.
        lora_kernel_a: ``(b, rank)``, if ``lora_rank``.
        lora_kernel_b: ``(rank, c)``, if ``lora_rank``.

    Example:
        >>> layer = EinsumDense("abc,cde->abde", output_shape=(None, 4, 8), bias_axes="de")
        >>> layer(torch.randn(2, 5, 16)).shape
        torch.Size([2, 5, 4, 8])
        >>> tuple(layer.kernel.shape), tuple(layer.bias.shape)
        ((16, 4, 8), (4, 8))
    """

    LAYOUT = einsum_dense_layout("bc", ("c",))  # for "ab,bc->ac"; `build` declares the instance's

    def __init__(
        self,
        equation: str,
        output_shape: int | Sequence[int | None],
        activation: str | Callable[[torch.Tensor], torch.Tensor] | None = None,
        bias_axes: str | None = None,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        lora_rank: int | None = None,
        lora_alpha: float | None = None,
        quantization_config: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if not isinstance(equation, str):
            raise ArgumentTypeError(f"`equation` must be a string. Received: equation={equation!r}.")
        if not any(pattern.fullmatch(equation) for pattern, _ in _EINSUM_FORMS):
            _einsum_plan(equation, None, (), ())  # raises the equation's error
        self.equation = equation
        sizes = (output_shape,) if integer(output_shape) is not None else output_shape
        if not isinstance(sizes, (list, tuple)) or not all(s is None or (integer(s) is not None and integer(s) > 0) for s in sizes):
            raise ArgumentError(
                f"`output_shape` must be a positive int or a tuple of positive ints or None. Received: output_shape={output_shape!r}."
            )
        self.partial_output_shape = tuple(None if s is None else integer(s) for s in sizes)
        if bias_axes is not None and not isinstance(bias_axes, str):
            raise ArgumentTypeError(f"`bias_axes` must be a string of output letters or None. Received: bias_axes={bias_axes!r}.")
        self.bias_axes = bias_axes
        self.activation = activations.get(activation)
        self._set_weight_arguments(locals())
        self._init_lora(lora_rank, lora_alpha)
        if quantization_config is not None:
            raise ArgumentError(f"quantized layers are not supported; `quantization_config` must be None. Received: quantization_config={quantization_config!r}.")
        self._fans: tuple[list[int], list[int]] | None = None

    def build(self, input_shape: Shape) -> Mapping[str, int]:
        plan = _einsum_plan(self.equation, self.bias_axes, input_shape, self.partial_output_shape)
        self.LAYOUT = einsum_dense_layout(plan.kernel_axes, plan.bias_axes)  # this instance's declaration
        self._fans = (plan.input_axes, plan.output_axes)
        self.input_spec = InputSpec(ndim=len(input_shape), axes=self._fixed_axes(input_shape, plan))
        sizes = dict(zip(plan.kernel_axes, plan.kernel_shape))
        if plan.bias_axes is not None:
            sizes.update(zip(plan.bias_axes, plan.bias_shape))
        return {**sizes, "rank": self.lora_rank or 0}

    def _fixed_axes(self, input_shape: Shape, plan: _EinsumPlan) -> dict[int, int]:
        """The input axes the kernel contracts or shares: their sizes are fixed at build."""
        input_spec = self.equation.replace("...", "").split(",")[0]
        offset = len(input_shape) - len(input_spec) if self.equation.startswith("...") else 0
        return {offset + i: input_shape[offset + i] for i, d in enumerate(input_spec) if d in plan.kernel_axes}

    def initializer_for(self, weight: Weight) -> Callable[..., torch.Tensor]:
        init = super().initializer_for(weight)
        if weight.name == "kernel" and isinstance(init, initializers.VarianceScaling) and self._fans is not None and (
            init.input_axes is None or init.output_axes is None
        ):  # as Keras: the fans come from the equation's input and output axes
            config = {**init.get_config(), "input_axes": self._fans[0], "output_axes": self._fans[1]}
            init = type(init).from_config(config)
        return init

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs = torch.einsum(self.equation, inputs, self.merged_kernel())
        if self.bias_axes is not None:
            outputs = outputs + self.bias
        return self.activation(outputs)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return _einsum_plan(self.equation, self.bias_axes, input_shape, self.partial_output_shape).output_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "output_shape": list(self.partial_output_shape),
            "equation": self.equation,
            "activation": activations.serialize(self.activation),
            "bias_axes": self.bias_axes,
            **self._weight_argument_config(),
            "quantization_config": None,
            **self.lora_config(),
        }


__all__ += ["EinsumDense", "einsum_dense_layout"]

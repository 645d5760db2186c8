"""Functional recurrent math with Keras (TF backend) semantics.

The main entry point is :func:`lstm`. It takes the weights in torch's layout, which the
LSTM layer derives from its ``LAYOUT`` (``Layer.weight_view``: views of its Keras-layout
parameters, no copies):

* ``weight_ih`` ``(4 * units, input_dim)``
* ``weight_hh`` ``(4 * units, units)``
* ``bias``      ``(4 * units,)`` or ``None``

with the gates stacked along the first axis in torch's order ``i, f, g, o``, which is
Keras's ``i, f, c, o`` (torch calls the cell gate ``g``). Per step::

    z = x_t @ weight_ih.T + h @ weight_hh.T + bias
    i, f, o = recurrent_activation(z_i), recurrent_activation(z_f), recurrent_activation(z_o)
    c = f * c + i * activation(z_g);  h = o * activation(c)

Keras semantics reproduced here (Keras 3.15, TF backend; on CPU TF always runs
the generic ``backend.rnn`` loop because ``cudnn_ok`` requires a GPU,
``backend/tensorflow/rnn.py:795-817``):

* Masked time steps do not update the states (``h``/``c`` are carried over);
  the output of a masked step is the previous step's (masked) output, which
  is zero before the first unmasked step, or zero when
  ``zero_output_for_mask=True`` (``backend/tensorflow/rnn.py:337-377``;
  ``layers/rnn/rnn.py:182,204``: LSTM's default is ``False``).
* ``go_backwards=True`` reverses the whole padded sequence *and* the mask,
  and the output sequence is returned in processing order (i.e. reversed,
  it is not flipped back).  With a right-padded mask the reversed mask is
  left-padded, so the leading processed steps are masked and output zeros
  (``backend/tensorflow/rnn.py:245-252,290-297,437-444``).
* The last output of Keras (``return_sequences=False``) is ``outputs[:, -1]``,
  not ``h``: they only differ for a row that is masked at every step (output
  zero, ``h`` = initial state) or when ``zero_output_for_mask=True``
  (``backend/tensorflow/rnn.py:438``, ``layers/rnn/rnn.py:444-451``).
* Dropout masks are drawn once per call and reused for every step.  Without
  recurrent dropout, Keras uses ONE input mask of shape ``(batch, features)``
  shared by all four gates; with recurrent dropout (``implementation=1``) it
  uses FOUR input masks and FOUR recurrent masks (one per gate, in the gate
  order above).  The masks are scaled by ``1 / (1 - rate)`` and are only used
  when training and ``0 < rate < 1`` (``layers/rnn/lstm.py:134-139,234-275``,
  ``layers/rnn/rnn.py:419-436``, ``layers/rnn/dropout_rnn_cell.py:22-53``).
  :func:`lstm_dropout_masks` builds them.  A single input mask keeps the
  fused path (it is applied to the inputs first, as Keras' own cuDNN branch
  does, ``lstm.py:533-544``); per-gate input masks or any recurrent mask
  use the loop.
* The single Keras bias goes in as torch's ``b_ih`` with a zero ``b_hh``, as
  Keras' own cuDNN path does (``backend/tensorflow/rnn.py:909``).
  ``unit_forget_bias`` only affects initialisation (``lstm.py:165-191``).
* Under ``torch.compile`` a mask always takes the loop path (the
  right-padding test and packing are data dependent); without a mask the
  fused call traces with ``fullgraph=True`` (calling ``torch.lstm`` directly
  avoids dynamo's ``allow_rnn`` graph break, which only concerns
  ``nn.LSTM``/``nn.GRU``/``nn.RNN`` modules).

Paths (returned as the fourth element of :func:`lstm`'s result):

* ``"fused"``: a single call of ``aten::lstm`` (oneDNN on CPU for float32 and
  bfloat16, cuDNN on CUDA; torch's own C++ implementation otherwise, e.g.
  float64/float16 on CPU or packed sequences on CPU).  The caller says whether
  the configuration allows it (``fused_ok``: the activations are tanh/sigmoid,
  and the layer's ``use_cudnn`` is not ``False``); each call then also needs no
  recurrent dropout mask, the single shared input dropout mask (if any), a mask
  that is ``None`` or right-padded (eager mode only), and a supported
  device/dtype.
* ``"loop"``: a Python loop over time for the recurrent part only (the input
  projection of all time steps is one matmul).  Used for everything else.

Under ``torch.export`` the fused path is one custom op, ``xlayers::lstm``
(:func:`exported_lstm`), which ``xlayers.layers.recurrent_onnx`` writes as ONNX's
``LSTM``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from xlayers import activations
from xlayers.errors import ArgumentError, InputShapeError, WeightShapeError

__all__ = [
    "GRU_FUSED_ACTIVATIONS",
    "LSTM_FUSED_ACTIVATIONS",
    "SIMPLE_RNN_FUSED_ACTIVATIONS",
    "exported_gru",
    "exported_lstm",
    "exported_simple_rnn",
    "fused_lstm_supported",
    "gru",
    "gru_dropout_masks",
    "is_activation",
    "is_right_padded",
    "lstm",
    "lstm_dropout_masks",
    "simple_rnn",
    "simple_rnn_dropout_masks",
]

Activation = Callable[[Tensor], Tensor] | None
DropoutMask = Tensor | Sequence[Tensor] | None

# The activations aten::lstm computes, by the argument that sets them (Keras's names).
LSTM_FUSED_ACTIVATIONS = {"activation": "tanh", "recurrent_activation": "sigmoid"}

# Each Keras activation a fused kernel computes, as xlayers, torch and torch's modules spell it.
_ACTIVATION_FORMS: dict[str, tuple[tuple[Callable[[Tensor], Tensor], ...], type[torch.nn.Module]]] = {
    "tanh": ((activations.tanh, torch.tanh, F.tanh, Tensor.tanh), torch.nn.Tanh),
    "sigmoid": ((activations.sigmoid, torch.sigmoid, F.sigmoid, Tensor.sigmoid), torch.nn.Sigmoid),
    "relu": ((activations.relu, torch.relu, F.relu, Tensor.relu), torch.nn.ReLU),
}

# Devices where aten::lstm has an implementation for every floating dtype
# (oneDNN / cuDNN when applicable, torch's native C++ kernel otherwise).
_FUSED_DEVICES = ("cpu", "cuda")
_FUSED_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def is_activation(fn: Activation, name: str) -> bool:
    """Whether ``fn`` is Keras's activation ``name`` (``"tanh"``, ``"sigmoid"``) in one of the
    forms a fused kernel stands for: xlayers' function, torch's function, or torch's module."""
    functions, module = _ACTIVATION_FORMS[name]
    return any(fn is f for f in functions) or isinstance(fn, module)


def fused_lstm_supported(dtype: torch.dtype, device: torch.device) -> bool:
    """Whether ``aten::lstm`` can run for this dtype/device.

    On CPU all four floating dtypes work (verified with torch 2.x): float32 and
    bfloat16 use oneDNN (bfloat16 only on CPUs with native bf16 support, the
    native kernel otherwise), float64 and float16 use torch's native kernel.
    """
    return torch.device(device).type in _FUSED_DEVICES and dtype in _FUSED_DTYPES


def is_right_padded(mask: Tensor) -> tuple[bool, Tensor]:
    """Return ``(right_padded, lengths)`` for a ``(batch, time)`` mask.

    A mask is right-padded when every row is a run of ones followed by a run
    of zeros (an all-zero or all-one row qualifies).  Data dependent: eager
    only.
    """
    m = mask.bool()
    lengths = m.sum(dim=1)
    steps = torch.arange(m.shape[1], device=m.device)
    expected = steps.unsqueeze(0) < lengths.unsqueeze(1)
    return bool(torch.equal(expected, m)), lengths


def _dropout_masks(
    inputs: Tensor, units: int, gates: int, dropout: float, recurrent_dropout: float, training: bool,
    generator: torch.Generator | None,
) -> tuple[Tensor | None, Tensor | None]:
    """Keras's ``DropoutRNNCell`` masks for one call: an input mask ``(batch, features)`` and a
    recurrent mask ``(batch, units)``, each stacked ``(gates, batch, dim)`` when ``gates`` (one per
    gate), drawn in that order, scaled by ``1 / (1 - rate)``; ``None`` unless ``training`` and
    ``0 < rate < 1``."""
    n, feat = inputs.shape[0], inputs.shape[-1]

    def draw(dim: int, rate: float) -> Tensor | None:
        if not training or not (0.0 < rate < 1.0):
            return None
        shape = (gates, n, dim) if gates else (n, dim)
        keep = torch.rand(shape, generator=generator, device=inputs.device) >= rate
        return keep.to(inputs.dtype) / (1.0 - rate)

    return draw(feat, dropout), draw(units, recurrent_dropout)


def lstm_dropout_masks(
    inputs: Tensor,
    units: int,
    *,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    training: bool = False,
    per_gate: bool | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor | None, Tensor | None]:
    """Draw the dropout masks Keras would use for one call of an LSTM layer.

    Returns ``(dropout_mask, recurrent_dropout_mask)``, each ``None`` when not
    applicable.  Follows ``LSTMCell`` / ``DropoutRNNCell``:

    * masks are only used when ``training`` and ``0 < rate < 1`` (a rate of
      exactly 1 applies no dropout at all in Keras' cell);
    * ``per_gate`` (Keras ``implementation == 1``) defaults to
      ``recurrent_dropout != 0``: then four masks per kind are drawn, stacked
      as a ``(4, batch, dim)`` tensor in the gate order i, f, c (torch's g), o;
      otherwise a single ``(batch, dim)`` mask;
    * kept entries are scaled by ``1 / (1 - rate)``.

    ``generator`` (if given) must live on ``inputs.device``.
    """
    if per_gate is None:
        per_gate = recurrent_dropout != 0.0
    return _dropout_masks(inputs, units, 4 if per_gate else 0, dropout, recurrent_dropout, training, generator)


def _as_gate_stack(m: DropoutMask, name: str, n: int, dim: int) -> Tensor | None:
    """Normalise a dropout mask to ``None``, ``(batch, d)`` or ``(4, batch, d)``."""
    if m is None:
        return None
    if isinstance(m, (list, tuple)):
        if len(m) != 4:
            raise ArgumentError(
                f"`{name}` must be one tensor or 4 per-gate tensors. Received: len({name})={len(m)}."
            )
        return torch.stack(list(m), 0)
    if tuple(m.shape) in ((n, dim), (4, n, dim)):
        return m
    raise InputShapeError(
        f"`{name}` must have shape {(n, dim)} (shared by the gates) or {(4, n, dim)} "
        f"(one per gate). Received: {name}.shape={tuple(m.shape)}."
    )


def _identity(x: Tensor) -> Tensor:
    return x


def lstm(
    inputs: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias: Tensor | None = None,
    *,
    initial_state: Sequence[Tensor] | None = None,
    mask: Tensor | None = None,
    go_backwards: bool = False,
    zero_output_for_mask: bool = False,
    activation: Activation = torch.tanh,
    recurrent_activation: Activation = torch.sigmoid,
    fused_ok: bool | None = None,
    dropout_mask: DropoutMask = None,
    recurrent_dropout_mask: DropoutMask = None,
) -> tuple[Tensor, Tensor, Tensor, str]:
    """Run a Keras-semantics LSTM over a batch-first sequence.

    Args:
        inputs: ``(N, T, F)``.
        weight_ih, weight_hh, bias: torch-layout weights, gates ``i, f, g, o`` (see the
            module docstring); ``bias=None`` for ``use_bias=False``.
        initial_state: ``(h0, c0)``, each ``(N, units)``; zeros when ``None``.
        mask: ``(N, T)`` bool (or numeric, nonzero = keep) or ``None``.
        go_backwards: process the sequence reversed; outputs are returned in
            processing order (reversed), like Keras.
        zero_output_for_mask: Keras ``RNN(zero_output_for_mask=...)``.
        activation, recurrent_activation: callables (``None`` = linear).
        fused_ok: whether the configuration allows the fused kernel (a layer passes its
            ``fused_ok``); ``None`` -> only if ``activation`` is tanh and
            ``recurrent_activation`` sigmoid (:func:`is_activation`); ``True`` -> the
            caller guarantees they are (they are then not inspected); ``False`` -> the loop.
        dropout_mask: input dropout, already scaled; ``(N, F)`` shared by the
            four gates (Keras implementation 2), or ``(4, N, F)`` / a list of
            four ``(N, F)`` tensors, one per gate (Keras implementation 1).
            Pass it only when training.
        recurrent_dropout_mask: dropout on ``h_{t-1}``, ``(N, units)`` or
            ``(4, N, units)`` / 4 tensors.  Forces the loop path.

    Returns:
        ``(outputs, h, c, path)``: ``outputs`` ``(N, T, units)`` in Keras
        order (processing order); ``h``/``c`` the final states ``(N, units)``;
        ``path`` is ``"fused"`` or ``"loop"``.  Keras' last output
        (``return_sequences=False``) is ``outputs[:, -1]``.
    """
    if inputs.dim() != 3 or inputs.shape[1] == 0:
        raise InputShapeError(
            "`lstm` expects inputs of rank 3 (batch, time, features) with at least one "
            f"time step. Received: inputs.shape={tuple(inputs.shape)}."
        )
    n, t_len, feat = inputs.shape
    units = weight_hh.shape[1] if weight_hh.dim() == 2 else -1
    if weight_hh.dim() != 2 or weight_hh.shape[0] != 4 * units:
        raise WeightShapeError(
            f"`weight_hh` must have shape (4 * units, units). Received: weight_hh.shape={tuple(weight_hh.shape)}."
        )
    if tuple(weight_ih.shape) != (4 * units, feat):
        raise WeightShapeError(
            f"`weight_ih` must have shape {(4 * units, feat)} (4 * units, input_dim). "
            f"Received: weight_ih.shape={tuple(weight_ih.shape)}."
        )
    if bias is not None and tuple(bias.shape) != (4 * units,):
        raise WeightShapeError(f"`bias` must have shape {(4 * units,)}. Received: bias.shape={tuple(bias.shape)}.")

    if initial_state is None:
        h0 = inputs.new_zeros(n, units)
        c0 = inputs.new_zeros(n, units)
    else:
        if len(initial_state) != 2:
            raise ArgumentError(
                f"`initial_state` must be a pair (h, c). Received: len(initial_state)={len(initial_state)}."
            )
        h0, c0 = initial_state
        for nm, st in (("h", h0), ("c", c0)):
            if tuple(st.shape) != (n, units):
                raise InputShapeError(
                    f"`initial_state` {nm} must have shape {(n, units)}. Received: {nm}.shape={tuple(st.shape)}."
                )
        # Keras casts the initial state to the compute dtype.
        h0 = h0.to(inputs.dtype)
        c0 = c0.to(inputs.dtype)

    dmask = _as_gate_stack(dropout_mask, "dropout_mask", n, feat)
    rdmask = _as_gate_stack(recurrent_dropout_mask, "recurrent_dropout_mask", n, units)

    if activation is None:
        activation = _identity
    if recurrent_activation is None:
        recurrent_activation = _identity
    if fused_ok is None:
        fused_ok = is_activation(activation, "tanh") and is_activation(recurrent_activation, "sigmoid")

    # The per-call part of the fused-or-loop decision (the configuration's is `fused_ok`).
    use_fused = (
        bool(fused_ok)
        and rdmask is None
        and (dmask is None or dmask.dim() == 2)
        and fused_lstm_supported(inputs.dtype, inputs.device)
    )

    lengths = None
    if mask is not None:
        if tuple(mask.shape) != (n, t_len):
            raise InputShapeError(
                f"`mask` must have shape {(n, t_len)} (batch, time). Received: mask.shape={tuple(mask.shape)}."
            )
        if use_fused and not torch.compiler.is_exporting():  # exporting: the mask's lengths, below
            if torch.compiler.is_compiling():
                # The right-padding test and packing are data dependent; the
                # loop path traces without graph breaks.
                use_fused = False
            else:
                right_padded, lengths = is_right_padded(mask)
                if not right_padded:
                    use_fused = False
                elif bool((lengths == t_len).all()):
                    lengths = None  # all ones: same as no mask

    if use_fused and dmask is None and torch.compiler.is_exporting():
        # An exported graph sees one op, which becomes ONNX's LSTM; a mask is taken as
        # right-padded (Keras's cuDNN condition) and becomes its sequence_lens.
        out, h, c = exported_lstm(
            inputs, None if mask is None else mask.sum(dim=1), h0, c0, weight_ih, weight_hh, bias,
            go_backwards, zero_output_for_mask,
        )
        return out, h, c, "fused"

    if use_fused:
        x = inputs if dmask is None else inputs * dmask.unsqueeze(1)
        out, h, c = _lstm_fused(x, weight_ih, weight_hh, bias, h0, c0, lengths, go_backwards, zero_output_for_mask)
        return out, h, c, "fused"

    out, h, c = _lstm_loop(
        inputs, weight_ih, weight_hh, bias, h0, c0, mask, go_backwards,
        zero_output_for_mask, activation, recurrent_activation, dmask, rdmask,
    )
    return out, h, c, "loop"


@torch.library.custom_op("xlayers::lstm", mutates_args=())
def exported_lstm(
    inputs: Tensor, lengths: Tensor | None, h0: Tensor, c0: Tensor, weight_ih: Tensor, weight_hh: Tensor,
    bias: Tensor | None, go_backwards: bool, zero_output_for_mask: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """The fused LSTM, over right-padded sequences of the given ``lengths`` if any, as one op.

    Exists for export: torch's exporter sees one node, which the LSTM layer's ONNX
    translation (``recurrent_onnx``) writes as ONNX's ``LSTM`` (with ``sequence_lens`` for
    lengths). Weights in torch's layout, as :func:`lstm` takes them. Run eagerly, it is the
    fused path.
    """
    out, h, c = _lstm_fused(inputs, weight_ih, weight_hh, bias, h0, c0, lengths, go_backwards, zero_output_for_mask)
    return out.clone(), h.clone(), c.clone()


@exported_lstm.register_fake
def _exported_lstm_shapes(
    inputs: Tensor, lengths: Tensor | None, h0: Tensor, c0: Tensor, weight_ih: Tensor, weight_hh: Tensor,
    bias: Tensor | None, go_backwards: bool, zero_output_for_mask: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    n, t_len, _ = inputs.shape
    units = weight_hh.shape[1]
    return inputs.new_empty(n, t_len, units), inputs.new_empty(n, units), inputs.new_empty(n, units)


def _lstm_fused(
    x: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias: Tensor | None,
    h0: Tensor,
    c0: Tensor,
    lengths: Tensor | None,
    go_backwards: bool,
    zero_output_for_mask: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    params = [weight_ih, weight_hh]
    has_biases = bias is not None
    if has_biases:
        # Keras has a single bias; torch adds b_ih + b_hh.
        params += [bias, torch.zeros_like(bias)]
    # `train` only matters for inter-layer dropout (none here) and for whether
    # cuDNN keeps a reserve for backward.
    train = torch.is_grad_enabled() and any(p.requires_grad for p in (x, h0, c0, *params))

    if lengths is None:
        if go_backwards:
            x = x.flip(1)
        if train and _compiled_onednn(x):
            bias = params[2] if has_biases else weight_ih.new_zeros(weight_ih.shape[0])
            out, h, c, _ = lstm_onednn(x.transpose(0, 1).contiguous(), weight_ih, weight_hh, bias, h0, c0)
            return out.transpose(0, 1), h, c
        out, h, c = torch.lstm(
            x, (h0.unsqueeze(0), c0.unsqueeze(0)), params, has_biases,
            1, 0.0, train, False, True,
        )
        return out, h[0], c[0]

    # Right-padded mask: packed sequences.
    t_len = x.shape[1]
    steps = torch.arange(t_len, device=x.device)
    lens = lengths.to(x.device).unsqueeze(1)  # (N, 1)
    valid = steps.unsqueeze(0) < lens  # (N, T): the unmasked prefix
    if go_backwards:
        # Keras flips the padded sequence; the valid part of row n is then
        # x[L-1], ..., x[0], preceded by T-L masked steps.  Feed the valid part
        # reversed in front, run packed, and shift the result back behind the
        # T-L leading (zero-output) steps.
        rev_idx = torch.where(valid, lens - 1 - steps, steps)
        x = x.gather(1, rev_idx.unsqueeze(2).expand_as(x))
    # pack_padded_sequence rejects empty rows: run them with length 1 and
    # overwrite their results below (Keras: zero outputs, initial states).
    packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    hx = (
        h0.index_select(0, packed.sorted_indices).unsqueeze(0),
        c0.index_select(0, packed.sorted_indices).unsqueeze(0),
    )
    out_data, h, c = torch.lstm(packed.data, packed.batch_sizes, hx, params, has_biases, 1, 0.0, train, False)
    h = h[0].index_select(0, packed.unsorted_indices)
    c = c[0].index_select(0, packed.unsorted_indices)
    out, _ = pad_packed_sequence(
        PackedSequence(out_data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices),
        batch_first=True,
        total_length=t_len,
    )
    empty = lens == 0  # (N, 1)
    h = torch.where(empty, h0, h)
    c = torch.where(empty, c0, c)
    if go_backwards:
        lead = t_len - lens  # number of leading masked steps in processing order
        src = (steps.unsqueeze(0) - lead).clamp(min=0)
        out = out.gather(1, src.unsqueeze(2).expand_as(out))
        # Leading masked steps output zeros whatever zero_output_for_mask is.
        out = torch.where((steps.unsqueeze(0) >= lead).unsqueeze(2), out, out.new_zeros(()))
    else:
        if zero_output_for_mask:
            fill = out.new_zeros(())
        else:
            # Carry the last valid output (zero for rows never unmasked).
            fill = torch.where(empty, h.new_zeros(()), h).unsqueeze(1)
        out = torch.where(valid.unsqueeze(2), out, fill)
    return out, h, c


def _compiled_onednn(x: Tensor) -> bool:
    """Whether a differentiated fused LSTM is being compiled where eager torch runs oneDNN
    (CPU, float32): torch 2.13's AOTAutograd cannot differentiate ``aten::mkldnn_rnn_layer``,
    so the call goes through :func:`lstm_onednn`, which carries its own backward."""
    return (
        torch.compiler.is_compiling()
        and not torch.compiler.is_exporting()
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and _ONEDNN
    )


_ONEDNN = torch.backends.mkldnn.is_available()
_LSTM_MODE = 2  # oneDNN's rnn kind for an LSTM (ideep::rnn_kind::LSTM)


@torch.library.custom_op("xlayers::lstm_onednn", mutates_args=())
def lstm_onednn(
    x: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor, h0: Tensor, c0: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """oneDNN's LSTM layer in training mode, time-major ``x`` ``(T, N, F)``, gates i, f, g, o:
    ``(outputs, h, c, workspace)``. One opaque op with the backward registered below, so a
    compiled training step keeps the fused kernel in both directions (eager ``torch.lstm``
    runs the same two kernels)."""
    units = weight_hh.shape[1]
    with torch.enable_grad():  # oneDNN keeps its workspace only in grad mode
        y, h, c, workspace = torch.ops.aten.mkldnn_rnn_layer(
            x.contiguous(), weight_ih, weight_hh, bias, torch.zeros_like(bias), h0.unsqueeze(0).contiguous(),
            c0.unsqueeze(0).contiguous(), False, [], _LSTM_MODE, units, 1, True, False, False, True,
        )
    return y, h.squeeze(0), c.squeeze(0), workspace


@lstm_onednn.register_fake
def _lstm_onednn_shapes(
    x: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor, h0: Tensor, c0: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    t_len, n, _ = x.shape
    units = weight_hh.shape[1]
    workspace_bytes = torch.library.get_ctx().new_dynamic_size()  # oneDNN chooses it
    return x.new_empty(t_len, n, units), x.new_empty(n, units), x.new_empty(n, units), \
        x.new_empty(workspace_bytes, dtype=torch.uint8)


@torch.library.custom_op("xlayers::lstm_onednn_backward", mutates_args=())
def lstm_onednn_backward(
    x: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor, h0: Tensor, c0: Tensor, y: Tensor, h: Tensor,
    c: Tensor, workspace: Tensor, grad_y: Tensor, grad_h: Tensor, grad_c: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The gradients of :func:`lstm_onednn` with respect to ``x``, the weights, the bias and the
    initial states, from oneDNN's backward kernel."""
    units = weight_hh.shape[1]
    grads = torch.ops.aten.mkldnn_rnn_layer_backward(
        x.contiguous(), weight_ih, weight_hh, bias, torch.zeros_like(bias), h0.unsqueeze(0).contiguous(),
        c0.unsqueeze(0).contiguous(), y, h.unsqueeze(0), c.unsqueeze(0), grad_y.contiguous(),
        grad_h.unsqueeze(0).contiguous(), grad_c.unsqueeze(0).contiguous(), False, _LSTM_MODE, units, 1, True, True,
        False, [], False, workspace,
    )
    grad_x, grad_ih, grad_hh, grad_bias, _, grad_h0, grad_c0 = grads
    return grad_x, grad_ih, grad_hh, grad_bias, grad_h0.squeeze(0), grad_c0.squeeze(0)


@lstm_onednn_backward.register_fake
def _lstm_onednn_backward_shapes(
    x: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor, h0: Tensor, c0: Tensor, y: Tensor, h: Tensor,
    c: Tensor, workspace: Tensor, grad_y: Tensor, grad_h: Tensor, grad_c: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    return tuple(torch.empty(t.shape, dtype=t.dtype, device=t.device) for t in (x, weight_ih, weight_hh, bias, h0, c0))


def _lstm_onednn_save(ctx: object, inputs: tuple[Tensor, ...], output: tuple[Tensor, ...]) -> None:
    ctx.save_for_backward(*inputs, *output)


def _lstm_onednn_grad(ctx: object, grad_y: Tensor | None, grad_h: Tensor | None, grad_c: Tensor | None,
                      _grad_workspace: Tensor | None) -> tuple[Tensor, ...]:
    x, weight_ih, weight_hh, bias, h0, c0, y, h, c, workspace = ctx.saved_tensors
    grad_y = torch.zeros_like(y) if grad_y is None else grad_y
    grad_h = torch.zeros_like(h) if grad_h is None else grad_h
    grad_c = torch.zeros_like(c) if grad_c is None else grad_c
    return lstm_onednn_backward(x, weight_ih, weight_hh, bias, h0, c0, y, h, c, workspace, grad_y, grad_h, grad_c)


lstm_onednn.register_autograd(_lstm_onednn_grad, setup_context=_lstm_onednn_save)


def _lstm_loop(
    inputs: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias: Tensor | None,
    h: Tensor,
    c: Tensor,
    mask: Tensor | None,
    go_backwards: bool,
    zero_output_for_mask: bool,
    activation: Callable[[Tensor], Tensor],
    recurrent_activation: Callable[[Tensor], Tensor],
    dmask: Tensor | None,
    rdmask: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor]:
    n, t_len, feat = inputs.shape
    units = weight_hh.shape[1]

    # Input projection for every time step at once: (N, T, 4u).
    if dmask is None:
        xw = F.linear(inputs, weight_ih, bias)
    elif dmask.dim() == 2:
        xw = F.linear(inputs * dmask.unsqueeze(1), weight_ih, bias)
    else:
        # One mask per gate: gate g sees inputs * dmask[g] and its rows of weight_ih.
        xg = inputs.unsqueeze(0) * dmask.unsqueeze(2)  # (4, N, T, F)
        xw = torch.einsum("gntf,guf->ntgu", xg, weight_ih.reshape(4, units, feat)).reshape(n, t_len, 4 * units)
        if bias is not None:
            xw = xw + bias

    # h @ weight_hh.T (F.linear's product), with the step's input term added in the same GEMM.
    recurrent = weight_hh.T
    per_gate_hh = weight_hh.reshape(4, units, units) if rdmask is not None and rdmask.dim() == 3 else None

    keep = None if mask is None else mask.bool().unsqueeze(2)  # (N, T, 1)
    prev_out = None
    outs = []
    for s in range(t_len):
        t = t_len - 1 - s if go_backwards else s
        if rdmask is None:
            z = torch.addmm(xw[:, t], h, recurrent)
        elif per_gate_hh is None:
            z = torch.addmm(xw[:, t], h * rdmask, recurrent)
        else:  # gate g sees h * rdmask[g] and its rows of weight_hh
            rec = torch.einsum("gnk,guk->ngu", h.unsqueeze(0) * rdmask, per_gate_hh)
            z = xw[:, t] + rec.reshape(n, 4 * units)
        zi, zf, zc, zo = z.chunk(4, dim=1)
        i = recurrent_activation(zi)
        f = recurrent_activation(zf)
        o = recurrent_activation(zo)
        c_new = f * c + i * activation(zc)
        h_new = o * activation(c_new)
        if keep is None:
            h, c = h_new, c_new
            outs.append(h_new)
        else:
            k = keep[:, t]
            if zero_output_for_mask or prev_out is None:
                other = h_new.new_zeros(())
            else:
                other = prev_out
            out_t = torch.where(k, h_new, other)
            h = torch.where(k, h_new, h)
            c = torch.where(k, c_new, c)
            prev_out = out_t
            outs.append(out_t)
    return torch.stack(outs, dim=1), h, c


# -- GRU ------------------------------------------------------------------------------------
#
# Keras's GRU (``layers/rnn/gru.py``, gates z, r, h; torch's r, z, n), per step::
#
#     reset_after=True:   z = σ(x W_z + b_z + h U_z + c_z);  r = σ(x W_r + b_r + h U_r + c_r)
#                         hh = act(x W_h + b_h + r * (h U_h + c_h))
#     reset_after=False:  z = σ(x W_z + b_z + h U_z);  r = σ(x W_r + b_r + h U_r)
#                         hh = act(x W_h + b_h + (r * h) U_h)
#     h = z * h + (1 - z) * hh
#
# reset_after=True is torch's ``aten::gru`` (``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``,
# ``h' = (1 - z) * n + z * h``), with Keras's input bias as ``b_ih`` and its recurrent bias as
# ``b_hh``. Masks, go_backwards and empty rows follow the LSTM's rules above.

GRU_FUSED_ACTIVATIONS = {"activation": "tanh", "recurrent_activation": "sigmoid"}
# SimpleRNN's fused kernels: aten::rnn_tanh, and aten::rnn_relu for "relu" (the layer's `fused_ok`).
SIMPLE_RNN_FUSED_ACTIVATIONS = {"activation": "tanh"}


def gru_dropout_masks(
    inputs: Tensor,
    units: int,
    *,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    training: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[Tensor | None, Tensor | None]:
    """The dropout masks Keras's ``GRUCell`` uses for one call: with recurrent dropout
    (Keras ``implementation=1``) three masks per kind stacked ``(3, batch, dim)`` in the gate
    order z, r, h; otherwise one ``(batch, dim)`` input mask. Scaled by ``1 / (1 - rate)``,
    only when ``training`` and ``0 < rate < 1``."""
    gates = 3 if recurrent_dropout != 0.0 else 0
    return _dropout_masks(inputs, units, gates, dropout, recurrent_dropout, training, generator)


def gru(
    inputs: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
    *,
    initial_state: Tensor | None = None,
    mask: Tensor | None = None,
    go_backwards: bool = False,
    zero_output_for_mask: bool = False,
    reset_after: bool = True,
    activation: Activation = torch.tanh,
    recurrent_activation: Activation = torch.sigmoid,
    fused_ok: bool = False,
    dropout_mask: Tensor | None = None,
    recurrent_dropout_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor, str]:
    """Run a Keras-semantics GRU over a batch-first sequence.

    Args:
        inputs: ``(N, T, F)``.
        weight_ih: ``(3 * units, F)``, weight_hh: ``(3 * units, units)``, gates in torch's
            order r, z, n (Keras's r, z, h).
        bias_ih: ``(3 * units,)`` input bias or ``None``; bias_hh: the recurrent bias
            (``reset_after=True`` only) or ``None``.
        initial_state: ``(N, units)`` or ``None`` (zeros).
        mask, go_backwards, zero_output_for_mask: as :func:`lstm`.
        reset_after: Keras's GRU convention (``True``: torch's).
        fused_ok: whether the configuration allows ``aten::gru`` (tanh/sigmoid,
            ``reset_after``); the call then also needs no per-gate or recurrent dropout
            mask and a right-padded mask or none.
        dropout_mask, recurrent_dropout_mask: ``(N, d)`` shared, or ``(3, N, d)`` per gate
            in torch's order r, z, n.

    Returns:
        ``(outputs, h, path)``, outputs in processing order.
    """
    if inputs.dim() != 3 or inputs.shape[1] == 0:
        raise InputShapeError(
            "`gru` expects inputs of rank 3 (batch, time, features) with at least one "
            f"time step. Received: inputs.shape={tuple(inputs.shape)}."
        )
    n, t_len, _ = inputs.shape
    units = weight_hh.shape[1]
    h0 = inputs.new_zeros(n, units) if initial_state is None else initial_state.to(inputs.dtype)
    if activation is None:
        activation = _identity
    if recurrent_activation is None:
        recurrent_activation = _identity
    use_fused = (
        bool(fused_ok)
        and reset_after
        and recurrent_dropout_mask is None
        and (dropout_mask is None or dropout_mask.dim() == 2)
        and fused_lstm_supported(inputs.dtype, inputs.device)
    )
    lengths = None
    if mask is not None and use_fused and not torch.compiler.is_exporting():  # exporting: the mask's lengths
        if torch.compiler.is_compiling():
            use_fused = False
        else:
            right_padded, lengths = is_right_padded(mask)
            if not right_padded:
                use_fused = False
            elif bool((lengths == t_len).all()):
                lengths = None
    if use_fused and dropout_mask is None and torch.compiler.is_exporting():
        # One op, which becomes ONNX's GRU (linear_before_reset=1); a mask is taken as
        # right-padded and becomes its sequence_lens.
        out, h = exported_gru(
            inputs, None if mask is None else mask.sum(dim=1), h0, weight_ih, weight_hh, bias_ih, bias_hh,
            go_backwards, zero_output_for_mask,
        )
        return out, h, "fused"
    if use_fused:
        x = inputs if dropout_mask is None else inputs * dropout_mask.unsqueeze(1)
        out, h = _gru_fused(x, weight_ih, weight_hh, bias_ih, bias_hh, h0, lengths, go_backwards, zero_output_for_mask)
        return out, h, "fused"
    out, h = _gru_loop(
        inputs, weight_ih, weight_hh, bias_ih, bias_hh, h0, mask, go_backwards, zero_output_for_mask,
        reset_after, activation, recurrent_activation, dropout_mask, recurrent_dropout_mask,
    )
    return out, h, "loop"


@torch.library.custom_op("xlayers::gru", mutates_args=())
def exported_gru(
    inputs: Tensor, lengths: Tensor | None, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor | None,
    bias_hh: Tensor | None, go_backwards: bool, zero_output_for_mask: bool,
) -> tuple[Tensor, Tensor]:
    """The fused GRU (reset_after) as one op, for export: ``recurrent_onnx`` writes it as
    ONNX's ``GRU``. Run eagerly, it is the fused path."""
    out, h = _gru_fused(inputs, weight_ih, weight_hh, bias_ih, bias_hh, h0, lengths, go_backwards, zero_output_for_mask)
    return out.clone(), h.clone()


@exported_gru.register_fake
def _exported_gru_shapes(
    inputs: Tensor, lengths: Tensor | None, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor | None,
    bias_hh: Tensor | None, go_backwards: bool, zero_output_for_mask: bool,
) -> tuple[Tensor, Tensor]:
    n, t_len, _ = inputs.shape
    units = weight_hh.shape[1]
    return inputs.new_empty(n, t_len, units), inputs.new_empty(n, units)


def _gru_fused(
    x: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor | None, bias_hh: Tensor | None, h0: Tensor,
    lengths: Tensor | None, go_backwards: bool, zero_output_for_mask: bool,
) -> tuple[Tensor, Tensor]:
    return _fused_one_state(
        torch.gru, x, weight_ih, weight_hh, bias_ih, bias_hh, h0, lengths, go_backwards, zero_output_for_mask
    )


def _fused_one_state(
    kernel: Callable[..., tuple[Tensor, Tensor]], x: Tensor, weight_ih: Tensor, weight_hh: Tensor,
    bias_ih: Tensor | None, bias_hh: Tensor | None, h0: Tensor, lengths: Tensor | None, go_backwards: bool,
    zero_output_for_mask: bool,
) -> tuple[Tensor, Tensor]:
    """One call of torch's single-state recurrent ``kernel`` (``torch.gru``, ``torch.rnn_tanh``,
    ``torch.rnn_relu``) with Keras's mask and go_backwards semantics (as :func:`_lstm_fused`)."""
    params = [weight_ih, weight_hh]
    has_biases = bias_ih is not None
    if has_biases:
        params += [bias_ih, bias_hh if bias_hh is not None else torch.zeros_like(bias_ih)]
    train = torch.is_grad_enabled() and any(p.requires_grad for p in (x, h0, *params))
    if lengths is None:
        if go_backwards:
            x = x.flip(1)
        # Time-major: torch's native kernels project a batch-first input through its transposed
        # view, several times slower than one contiguous copy and a plain matmul.
        x = x.transpose(0, 1).contiguous()
        if train and kernel is torch.gru and _sequence_backward_ok(x):
            biases = params[2:] if has_biases else [weight_ih.new_zeros(weight_ih.shape[0])] * 2
            out, h = _GRUSequence.apply(x, h0, weight_ih, weight_hh, *biases)
            return out.transpose(0, 1), h
        out, h = kernel(x, h0.unsqueeze(0), params, has_biases, 1, 0.0, train, False, False)
        return out.transpose(0, 1), h[0]
    t_len = x.shape[1]
    steps = torch.arange(t_len, device=x.device)
    lens = lengths.to(x.device).unsqueeze(1)
    valid = steps.unsqueeze(0) < lens
    if go_backwards:
        rev_idx = torch.where(valid, lens - 1 - steps, steps)
        x = x.gather(1, rev_idx.unsqueeze(2).expand_as(x))
    packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    hx = h0.index_select(0, packed.sorted_indices).unsqueeze(0)
    out_data, h = kernel(packed.data, packed.batch_sizes, hx, params, has_biases, 1, 0.0, train, False)
    h = h[0].index_select(0, packed.unsorted_indices)
    out, _ = pad_packed_sequence(
        PackedSequence(out_data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices),
        batch_first=True,
        total_length=t_len,
    )
    empty = lens == 0
    h = torch.where(empty, h0, h)
    if go_backwards:
        lead = t_len - lens
        src = (steps.unsqueeze(0) - lead).clamp(min=0)
        out = out.gather(1, src.unsqueeze(2).expand_as(out))
        out = torch.where((steps.unsqueeze(0) >= lead).unsqueeze(2), out, out.new_zeros(()))
    else:
        fill = out.new_zeros(()) if zero_output_for_mask else torch.where(empty, h.new_zeros(()), h).unsqueeze(1)
        out = torch.where(valid.unsqueeze(2), out, fill)
    return out, h


def _sequence_backward_ok(x: Tensor) -> bool:
    """Whether :class:`_GRUSequence` runs: eager (a compiled graph differentiates torch's own
    decomposition), on CPU (cuDNN's GRU has its own fused backward), float32 or float64."""
    return (
        x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and not torch.compiler.is_compiling()
        and not torch.compiler.is_exporting()
    )


class _GRUSequence(torch.autograd.Function):
    """torch's fused CPU GRU (``reset_after``, tanh/sigmoid, whole sequences), time-major, with a
    backward written for the recurrence. Autograd through ``aten::gru`` on CPU replays a dozen
    pointwise nodes and two matmuls per step; here the gates of every step are recomputed at once
    from the saved outputs, the loop over time runs one matmul and three pointwise kernels per step,
    and the weight and input gradients are single matmuls over all steps.

    ``forward(x (T, N, F), h0 (N, U), weight_ih (3U, F), weight_hh (3U, U), bias_ih, bias_hh)``,
    gates r, z, n; returns ``(outputs (T, N, U), h (N, U))``.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor,
                bias_hh: Tensor) -> tuple[Tensor, Tensor]:
        out, h = torch.gru(x, h0.unsqueeze(0), [weight_ih, weight_hh, bias_ih, bias_hh], True, 1, 0.0, False, False, False)
        ctx.save_for_backward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh, out)
        return out, h[0]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: Tensor | None, grad_h: Tensor | None) -> tuple[Tensor | None, ...]:
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh, out = ctx.saved_tensors
        t_len, n, units = out.shape
        h_prev = torch.cat([h0.unsqueeze(0), out[:-1]])
        gi = F.linear(x, weight_ih, bias_ih)
        gh = F.linear(h_prev, weight_hh, bias_hh)
        gi_r, gi_z, gi_n = gi.split(units, dim=2)
        gh_r, gh_z, gh_n = gh.split(units, dim=2)
        r = torch.sigmoid(gi_r + gh_r)
        z = torch.sigmoid(gi_z + gh_z)
        new = torch.tanh(torch.addcmul(gi_n, r, gh_n))
        # h_t = (1 - z) n + z h_{t-1}: what dh_t becomes at each pre-activation, slots r, z, the
        # recurrent part of n (reset applied), then n itself (its input part)
        to_n = (1 - z) * (1 - new * new)
        factors = torch.stack([to_n * gh_n * r * (1 - r), (h_prev - new) * z * (1 - z), to_n * r, to_n], dim=2)
        grads = torch.empty_like(factors)  # (T, N, 4, U): per step, dh_t times its factors
        dh = grad_h if grad_h is not None else out.new_zeros(n, units)
        for t in range(t_len - 1, -1, -1):
            if grad_out is not None:
                dh = dh + grad_out[t]
            torch.mul(dh.unsqueeze(1), factors[t], out=grads[t])
            dh = torch.addmm(dh * z[t], grads[t].view(n, 4 * units)[:, : 3 * units], weight_hh)
        flat_gh = grads[:, :, :3].reshape(-1, 3 * units)
        flat_gi = torch.cat([grads[:, :, :2], grads[:, :, 3:]], dim=2).reshape(-1, 3 * units)
        grad_gi = flat_gi.view(t_len, n, 3 * units)
        needs = ctx.needs_input_grad
        return (
            grad_gi @ weight_ih if needs[0] else None,
            dh if needs[1] else None,
            flat_gi.t() @ x.reshape(-1, x.shape[2]) if needs[2] else None,
            flat_gh.t() @ h_prev.reshape(-1, units) if needs[3] else None,
            flat_gi.sum(0) if needs[4] else None,
            flat_gh.sum(0) if needs[5] else None,
        )


def _gru_loop(
    inputs: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor | None, bias_hh: Tensor | None, h: Tensor,
    mask: Tensor | None, go_backwards: bool, zero_output_for_mask: bool, reset_after: bool,
    activation: Callable[[Tensor], Tensor], recurrent_activation: Callable[[Tensor], Tensor],
    dmask: Tensor | None, rdmask: Tensor | None,
) -> tuple[Tensor, Tensor]:
    n, t_len, feat = inputs.shape
    units = weight_hh.shape[1]
    if dmask is None or dmask.dim() == 2:
        xw = F.linear(inputs if dmask is None else inputs * dmask.unsqueeze(1), weight_ih, bias_ih)
    else:  # one mask per gate (torch's order r, z, n)
        xg = inputs.unsqueeze(0) * dmask.unsqueeze(2)
        xw = torch.einsum("gntf,guf->ntgu", xg, weight_ih.reshape(3, units, feat)).reshape(n, t_len, 3 * units)
        if bias_ih is not None:
            xw = xw + bias_ih
    w_r, w_z, w_n = weight_hh.chunk(3, dim=0)
    b_r, b_z, b_n = (None, None, None) if bias_hh is None else bias_hh.chunk(3)
    if rdmask is None:
        rd_r = rd_z = rd_n = None
    elif rdmask.dim() == 2:
        rd_r = rd_z = rd_n = rdmask
    else:
        rd_r, rd_z, rd_n = rdmask.unbind(0)
    keep = None if mask is None else mask.bool().unsqueeze(2)
    prev_out = None
    outs = []
    for s in range(t_len):
        t = t_len - 1 - s if go_backwards else s
        x_r, x_z, x_n = xw[:, t].chunk(3, dim=1)
        h_r = h if rd_r is None else h * rd_r
        h_z = h if rd_z is None else h * rd_z
        h_n = h if rd_n is None else h * rd_n
        r = recurrent_activation(x_r + F.linear(h_r, w_r, b_r))
        z = recurrent_activation(x_z + F.linear(h_z, w_z, b_z))
        if reset_after:
            hh = activation(x_n + r * F.linear(h_n, w_n, b_n))
        else:
            hh = activation(x_n + F.linear(r * h_n, w_n))
        h_new = z * h + (1 - z) * hh
        if keep is None:
            h = h_new
            outs.append(h_new)
        else:
            k = keep[:, t]
            other = h_new.new_zeros(()) if zero_output_for_mask or prev_out is None else prev_out
            out_t = torch.where(k, h_new, other)
            h = torch.where(k, h_new, h)
            prev_out = out_t
            outs.append(out_t)
    return torch.stack(outs, dim=1), h



# -- SimpleRNN ------------------------------------------------------------------------------
#
# Keras's ``SimpleRNNCell`` (``layers/rnn/simple_rnn.py``): ``h = activation(x W + b + h U)``,
# one input and one recurrent dropout mask. With tanh or relu it is torch's ``aten::rnn_tanh``
# / ``aten::rnn_relu`` (Keras's bias as ``b_ih``, a zero ``b_hh``).


def simple_rnn_dropout_masks(
    inputs: Tensor,
    units: int,
    *,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    training: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[Tensor | None, Tensor | None]:
    """The masks Keras's ``SimpleRNNCell`` uses for one call: one ``(batch, features)`` input
    mask and one ``(batch, units)`` recurrent mask, scaled by ``1 / (1 - rate)``, only when
    ``training`` and ``0 < rate < 1``."""
    return _dropout_masks(inputs, units, 0, dropout, recurrent_dropout, training, generator)


def simple_rnn(
    inputs: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias: Tensor | None = None,
    *,
    initial_state: Tensor | None = None,
    mask: Tensor | None = None,
    go_backwards: bool = False,
    zero_output_for_mask: bool = False,
    activation: Activation = torch.tanh,
    fused_ok: bool = False,
    dropout_mask: Tensor | None = None,
    recurrent_dropout_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor, str]:
    """Run a Keras-semantics SimpleRNN: torch-layout ``weight_ih (units, F)``,
    ``weight_hh (units, units)``, ``bias (units,)`` or ``None``. ``fused_ok``: the activation is
    tanh or relu (``aten::rnn_tanh`` / ``aten::rnn_relu``); a call also needs no recurrent
    dropout mask and a right-padded mask or none. Returns ``(outputs, h, path)``."""
    if inputs.dim() != 3 or inputs.shape[1] == 0:
        raise InputShapeError(
            "`simple_rnn` expects inputs of rank 3 (batch, time, features) with at least one "
            f"time step. Received: inputs.shape={tuple(inputs.shape)}."
        )
    n, t_len, _ = inputs.shape
    units = weight_hh.shape[1]
    h0 = inputs.new_zeros(n, units) if initial_state is None else initial_state.to(inputs.dtype)
    if activation is None:
        activation = _identity
    kernel = torch.rnn_tanh if is_activation(activation, "tanh") else torch.rnn_relu
    use_fused = (
        bool(fused_ok)
        and recurrent_dropout_mask is None
        and fused_lstm_supported(inputs.dtype, inputs.device)
    )
    lengths = None
    if mask is not None and use_fused and not torch.compiler.is_exporting():
        if torch.compiler.is_compiling():
            use_fused = False
        else:
            right_padded, lengths = is_right_padded(mask)
            if not right_padded:
                use_fused = False
            elif bool((lengths == t_len).all()):
                lengths = None
    if use_fused and dropout_mask is None and torch.compiler.is_exporting():
        out, h = exported_simple_rnn(
            inputs, None if mask is None else mask.sum(dim=1), h0, weight_ih, weight_hh, bias,
            kernel is torch.rnn_relu, go_backwards, zero_output_for_mask,
        )
        return out, h, "fused"
    if use_fused:
        x = inputs if dropout_mask is None else inputs * dropout_mask.unsqueeze(1)
        out, h = _fused_one_state(kernel, x, weight_ih, weight_hh, bias, None, h0, lengths, go_backwards, zero_output_for_mask)
        return out, h, "fused"
    x = inputs if dropout_mask is None else inputs * dropout_mask.unsqueeze(1)
    xw = F.linear(x, weight_ih, bias)
    recurrent = weight_hh.T
    h = h0
    keep = None if mask is None else mask.bool().unsqueeze(2)
    prev_out = None
    outs = []
    for s in range(t_len):
        t = t_len - 1 - s if go_backwards else s
        h_in = h if recurrent_dropout_mask is None else h * recurrent_dropout_mask
        h_new = activation(torch.addmm(xw[:, t], h_in, recurrent))
        if keep is None:
            h = h_new
            outs.append(h_new)
        else:
            k = keep[:, t]
            other = h_new.new_zeros(()) if zero_output_for_mask or prev_out is None else prev_out
            out_t = torch.where(k, h_new, other)
            h = torch.where(k, h_new, h)
            prev_out = out_t
            outs.append(out_t)
    return torch.stack(outs, dim=1), h, "loop"


@torch.library.custom_op("xlayers::simple_rnn", mutates_args=())
def exported_simple_rnn(
    inputs: Tensor, lengths: Tensor | None, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor | None,
    relu: bool, go_backwards: bool, zero_output_for_mask: bool,
) -> tuple[Tensor, Tensor]:
    """The fused SimpleRNN (tanh, or relu) as one op, for export as ONNX's ``RNN``."""
    kernel = torch.rnn_relu if relu else torch.rnn_tanh
    out, h = _fused_one_state(kernel, inputs, weight_ih, weight_hh, bias, None, h0, lengths, go_backwards, zero_output_for_mask)
    return out.clone(), h.clone()


@exported_simple_rnn.register_fake
def _exported_simple_rnn_shapes(
    inputs: Tensor, lengths: Tensor | None, h0: Tensor, weight_ih: Tensor, weight_hh: Tensor, bias: Tensor | None,
    relu: bool, go_backwards: bool, zero_output_for_mask: bool,
) -> tuple[Tensor, Tensor]:
    n, t_len, _ = inputs.shape
    units = weight_hh.shape[1]
    return inputs.new_empty(n, t_len, units), inputs.new_empty(n, units)

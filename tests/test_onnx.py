"""ONNX export: every layer family and a Sequential, verified in onnxruntime at sizes other
than the example's; the graph a serving engineer wants; bad input leaves no file."""

from __future__ import annotations

import os
from unittest import mock

import numpy as np
import pytest
import torch

import xlayers
from xlayers import LSTM, Conv2D, Dense, Sequential
from xlayers.errors import ArgumentError, ExportError, NotBuiltError
from xlayers.onnx import export, run
from xlayers.tolerance import assert_close


def _built(module, shape):
    module(torch.randn(*shape))
    return module


@pytest.mark.parametrize(
    "make, shape, expected_ops",
    [
        (lambda: Dense(4, activation="gelu"), (3, 5), {"Gemm": 1}),
        (lambda: Conv2D(6, 3, strides=2, padding="same", activation="relu"), (2, 8, 9, 3), {"Conv": 1, "Transpose": 2}),
        (lambda: Conv2D(6, (2, 3), padding="same", data_format="channels_first", groups=2), (2, 4, 7, 6), {"Conv": 1}),
        (lambda: LSTM(5, return_sequences=True, return_state=True), (3, 7, 4), {"LSTM": 1}),
        (lambda: LSTM(5, go_backwards=True, use_bias=False), (3, 7, 4), {"LSTM": 1}),
        (lambda: xlayers.Masking(0.0), (2, 5, 3), {}),
    ],
    ids=["dense", "conv2d-same-asym", "conv2d-nchw-groups", "lstm-seq-state", "lstm-backwards-nobias", "masking"],
)
def test_each_family_exports_and_agrees_at_other_sizes(tmp_path, make, shape, expected_ops):
    module = _built(make(), shape)
    result = export(module, torch.randn(*shape), tmp_path / "m.onnx")
    assert os.path.exists(tmp_path / "m.onnx") and os.listdir(tmp_path) == ["m.onnx"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "m.onnx").stat().st_mode & 0o777 == 0o666 & ~umask  # as a plain open() would make it
    assert all(s[0] != shape[0] for s in result.checked_shapes)  # another batch size
    if isinstance(module, LSTM):
        assert all(s[1] != shape[1] for s in result.checked_shapes)  # and another length
    for op, count in expected_ops.items():
        assert result.node_counts.get(op, 0) == count, result.node_counts
    assert not {"Pad", "Loop", "Scan"} & set(result.node_counts), result.node_counts  # no Pad+Conv, no unrolled loop
    assert len(result.checked_shapes) == 2 and result.tolerance[0] > 0  # compared twice, under the policy
    # the summary reads under the policy's pass rule, never as a relative error beside an rtol it exceeds
    assert 0.0 <= result.bound_fraction <= 1.0 and "within tolerance" in str(result) and "rel" not in str(result)


# every activation a Dense can take by name (Keras's `threshold` needs arguments)
ACTIVATIONS = [name for name in xlayers.activations.names() if name != "threshold"]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_exports_and_agrees_at_other_sizes(tmp_path, activation):
    """The conformance run checks one Dense export against Keras; each activation's ONNX lowering
    is checked here against torch (which conformance checks against Keras)."""
    result = export(_built(Dense(6, activation=activation), (3, 5)), torch.randn(3, 5), tmp_path / "a.onnx", verbose=False)
    assert len(result.checked_shapes) == 2


def test_sequential_folds_layout_transposes_and_takes_any_batch(tmp_path):
    model = Sequential([
        Conv2D(8, 3, strides=2, padding="same", activation="relu"),
        Conv2D(8, 3, padding="same", activation="relu"),
        Conv2D(4, 1),
        Dense(3),
    ])
    x = torch.randn(2, 9, 10, 3)
    model(x)
    result = export(model, x, tmp_path / "seq.onnx")
    assert result.node_counts["Conv"] == 3 and result.node_counts["Transpose"] == 2  # one in, one out
    bigger = np.random.randn(6, 9, 10, 3).astype(np.float32)
    np.testing.assert_array_equal(run(tmp_path / "seq.onnx", bigger)[0].shape, (6, 5, 5, 3))


def test_sequential_lstm_dynamic_batch_and_time(tmp_path):
    model = Sequential([LSTM(6, return_sequences=True), LSTM(4), Dense(2)])
    x = torch.randn(3, 7, 5)
    model(x)
    result = export(model, x, tmp_path / "rnn.onnx")
    assert result.node_counts["LSTM"] == 2
    out = run(tmp_path / "rnn.onnx", np.random.randn(4, 11, 5).astype(np.float32))[0]
    assert out.shape == (4, 2)


def test_second_export_in_a_process_keeps_time_dynamic(tmp_path):
    for name in ("a", "b"):
        layer = _built(LSTM(3, return_sequences=True), (2, 5, 4))
        export(layer, torch.randn(2, 5, 4), tmp_path / f"{name}.onnx")
    assert run(tmp_path / "b.onnx", np.random.randn(2, 9, 4).astype(np.float32))[0].shape == (2, 9, 3)


def test_unbuilt_layer_is_refused_and_leaves_no_file(tmp_path):
    with pytest.raises(NotBuiltError, match=r"cannot export unbuilt layers \['dense'\]"):
        export(Dense(3), torch.randn(2, 4), tmp_path / "m.onnx")
    assert os.listdir(tmp_path) == []


def test_unsupported_opset(tmp_path):
    layer = _built(Dense(3), (2, 4))
    with pytest.raises(ArgumentError, match=r"`opset` must be one of \[18, 19, 20, 21\].*Received: opset=9"):
        export(layer, torch.randn(2, 4), tmp_path / "m.onnx", opset=9)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("opset", [18, 21])
def test_supported_opsets(tmp_path, opset):
    layer = _built(Conv2D(3, 3, padding="same", strides=2), (2, 6, 7, 2))
    assert export(layer, torch.randn(2, 6, 7, 2), tmp_path / "m.onnx", opset=opset).opset == opset


def test_inexpressible_configurations_are_refused(tmp_path):
    lstm = _built(LSTM(3, stateful=True), (2, 5, 4))
    with pytest.raises(ExportError, match=r"`stateful` layers cannot be exported"):
        export(lstm, torch.randn(2, 5, 4), tmp_path / "m.onnx")
    looped = _built(LSTM(3, activation="relu"), (2, 5, 4))
    with pytest.raises(ExportError, match=r"only LSTMs on the fused kernel .* Received: layers \['lstm_1'\]"):
        export(looped, torch.randn(2, 5, 4), tmp_path / "m.onnx")
    dense = _built(Dense(3), (2, 4))
    with pytest.raises(ExportError, match=r"only layers whose `call` takes a `mask` .*take a mask example input"):
        export(dense, (torch.randn(2, 4), torch.ones(2, 4, dtype=torch.bool)), tmp_path / "m.onnx")
    both = _built(Sequential([LSTM(3, stateful=True, return_sequences=True), LSTM(2, use_cudnn=False)]), (2, 5, 4))
    expected = r"stateful.*Received: layers \['lstm_2'\]\. only LSTMs .*Received: layers \['lstm_3'\]"
    with pytest.raises(ExportError, match=expected):
        export(both, torch.randn(2, 5, 4), tmp_path / "m.onnx")
    assert os.listdir(tmp_path) == []


class _Unexportable(xlayers.Layer):
    """A layer the exporter knows only through the `Layer` hooks."""

    def call(self, inputs):
        return inputs * 2.0

    def compute_output_shape(self, input_shape):
        return input_shape

    def export_refusal(self):
        return "this layer keeps its secrets"


def test_export_asks_the_layers_hooks(tmp_path):
    model = _built(Sequential([Dense(3), _Unexportable(name="secretive")]), (2, 4))
    with pytest.raises(ExportError, match=r"this layer keeps its secrets\. Received: layers \['secretive'\]"):
        export(model, torch.randn(2, 4), tmp_path / "m.onnx")
    lstm = _built(LSTM(3), (2, 5, 4))
    assert lstm.onnx_dynamic_axes() == {0: "batch", 1: "time"} and Dense(2).onnx_dynamic_axes() == {0: "batch"}
    assert torch.ops.xlayers.lstm.default in LSTM.onnx_translations() and Dense.onnx_translations() == {}
    assert lstm.export_refusal() is None


@pytest.mark.parametrize(
    "kwargs",
    [dict(return_sequences=True), dict(return_sequences=True, go_backwards=True), dict(return_state=True),
     dict(return_sequences=True, zero_output_for_mask=True), dict(use_bias=False, return_sequences=True)],
    ids=["seq", "backwards", "state", "zero-output", "no-bias"],
)
def test_masked_lstm_exports_as_lstm_with_sequence_lens(tmp_path, kwargs):
    """Verification feeds right-padded masks with a full and an empty row at other sizes."""
    layer = _built(LSTM(4, **kwargs), (3, 7, 5))
    mask = torch.arange(7).unsqueeze(0) < torch.tensor([[7], [4], [1]])
    result = export(layer, (torch.randn(3, 7, 5), mask), tmp_path / "m.onnx")
    assert result.node_counts["LSTM"] == 1 and not {"Loop", "Scan"} & set(result.node_counts)
    x = np.random.randn(5, 9, 5).astype(np.float32)
    lengths = torch.tensor([9, 0, 3, 8, 1])
    mask = (torch.arange(9).unsqueeze(0) < lengths.unsqueeze(1)).numpy()
    with torch.no_grad():
        expected = layer(torch.from_numpy(x), mask=torch.from_numpy(mask))
    expected = expected if isinstance(expected, list) else [expected]
    for got, want in zip(run(tmp_path / "m.onnx", x, mask), expected):
        assert_close(got, want)


def test_sequential_takes_a_mask_for_its_lstm(tmp_path):
    model = _built(Sequential([LSTM(4, return_sequences=True), LSTM(3)]), (3, 7, 5))
    mask = torch.arange(7).unsqueeze(0) < torch.tensor([[7], [4], [1]])
    result = export(model, (torch.randn(3, 7, 5), mask), tmp_path / "m.onnx")
    assert result.node_counts["LSTM"] == 2 and all(s[1] != 7 for s in result.checked_shapes)


def test_masking_then_lstm_sequential_exports(tmp_path):
    model = Sequential([xlayers.Masking(0.0), LSTM(4, return_sequences=True), LSTM(3)])
    x = torch.randn(3, 6, 5)
    x[1, 4:] = 0.0
    model(x)
    result = export(model, x, tmp_path / "m.onnx")
    assert result.node_counts["LSTM"] == 2


def test_unwritable_paths(tmp_path):
    layer = _built(Dense(3), (2, 4))
    with pytest.raises(FileNotFoundError, match=r"the directory .*missing.* does not exist"):
        export(layer, torch.randn(2, 4), tmp_path / "missing" / "m.onnx")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        export(layer, torch.randn(2, 4), tmp_path / "file" / "m.onnx")


def test_failed_verification_leaves_no_file_and_keeps_an_old_one(tmp_path):
    layer = _built(Dense(3), (2, 4))
    target = tmp_path / "m.onnx"
    target.write_bytes(b"previous export")
    with mock.patch("xlayers.onnx.compare") as fake:
        fake.return_value = mock.Mock(passed=False, max_abs_error=1.0, max_rel_error=1.0, bound_fraction=2.0, rtol=0, atol=0,
                                      describe=lambda what: f"{what}: planted disagreement")
        with pytest.raises(ExportError, match=r"onnxruntime disagrees with torch .*planted disagreement"):
            export(layer, torch.randn(2, 4), target)
    assert target.read_bytes() == b"previous export" and os.listdir(tmp_path) == ["m.onnx"]


def test_dynamic_axes_outside_the_input_are_refused(tmp_path):
    module = _built(Dense(2), (2, 3))
    with pytest.raises(ArgumentError, match=r"`dynamic_axes` must map axes of the first input \(0 to 1\) to names\. Received: dynamic_axes=\{5: 'x'\}"):
        export(module, torch.randn(2, 3), tmp_path / "d.onnx", dynamic_axes={5: "x"})
    assert not os.listdir(tmp_path)


# -- several inputs (merging layers) ---------------------------------------------------------


def _graph_inputs(path):
    import onnx

    return [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]) for i in onnx.load(str(path)).graph.input]


@pytest.mark.parametrize(
    "make, shapes, expected_ops, exact",
    [
        (lambda: xlayers.Add(), [(3, 5, 7), (3, 5, 7)], {"Add": 1}, True),
        (lambda: xlayers.Concatenate(axis=1), [(3, 5, 4), (3, 2, 4), (3, 1, 4)], {"Concat": 1}, True),
        (lambda: xlayers.Add(), [(3, 5, 7), (3, 7)], {"Add": 1, "Unsqueeze": 1}, True),  # Keras's lower-rank broadcast
        (lambda: xlayers.Dot(axes=(1, 2), normalize=True), [(3, 5, 4), (3, 6, 5)], {"Einsum": 1}, False),
    ],
    ids=["add", "concatenate", "add-lower-rank", "dot-normalize"],
)
def test_a_list_input_exports_one_graph_input_per_tensor_with_a_dynamic_batch_each(tmp_path, make, shapes, expected_ops, exact):
    inputs = [torch.randn(*s) for s in shapes]
    layer = make()
    layer(inputs)
    result = export(layer, inputs, tmp_path / "m.onnx", verbose=False)
    for op, count in expected_ops.items():
        assert result.node_counts.get(op, 0) == count, result.node_counts
    if exact:  # one node (and the Unsqueeze of Keras's broadcast), nothing else
        assert result.node_counts == expected_ops, result.node_counts
    graph_inputs = _graph_inputs(tmp_path / "m.onnx")
    assert [name for name, _ in graph_inputs] == [f"inputs_{i}" for i in range(len(shapes))]
    batch = {dims[0] for _, dims in graph_inputs}
    assert len(batch) == 1 and isinstance(batch.pop(), str)  # one dynamic batch, shared by every input
    assert [dims[1:] for _, dims in graph_inputs] == [list(s[1:]) for s in shapes]
    assert all(s[0] != shapes[0][0] for s in result.checked_shapes) and len(result.checked_shapes) == 2
    bigger = [np.random.randn(6, *s[1:]).astype(np.float32) for s in shapes]
    assert_close(run(tmp_path / "m.onnx", *bigger)[0], layer([torch.from_numpy(b) for b in bigger]).detach())


def test_a_list_input_may_also_be_one_positional_argument_and_repeat_a_tensor(tmp_path):
    layer = xlayers.Multiply()
    x = torch.randn(2, 3)
    layer([x, x])
    result = export(layer, ([x, x],), tmp_path / "m.onnx", verbose=False)  # the same tensor twice: still two inputs
    assert result.node_counts == {"Mul": 1}
    assert [name for name, _ in _graph_inputs(tmp_path / "m.onnx")] == ["inputs_0", "inputs_1"]
    a, b = np.random.randn(4, 3).astype(np.float32), np.random.randn(4, 3).astype(np.float32)
    assert_close(run(tmp_path / "m.onnx", a, b)[0], a * b)


def test_dynamic_axes_outside_a_list_input_are_refused(tmp_path):
    layer = xlayers.Add()
    inputs = [torch.randn(2, 3, 4), torch.randn(2, 4)]
    layer(inputs)
    with pytest.raises(ArgumentError, match=r"`dynamic_axes` must map axes of every tensor of the first input \(0 to 1\) to names\. Received: dynamic_axes=\{2: 'x'\}"):
        export(layer, inputs, tmp_path / "d.onnx", dynamic_axes={2: "x"})
    with pytest.raises(ArgumentError, match=r"`example_inputs` must be a tensor, a list of tensors \(one argument holding several inputs\) or a tuple"):
        export(layer, [], tmp_path / "d.onnx")
    assert not os.listdir(tmp_path)


# -- Bidirectional: both directions in one node ------------------------------------------------

# (merge_mode, return_sequences, return_state): every merge mode; per wrapped class and mask, every
# combination of return_sequences and return_state
_BIDIRECTIONAL_MODES = [("concat", True, True), ("sum", True, False), ("mul", False, True), ("ave", False, False),
                        (None, True, True)]


@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask-right"])
@pytest.mark.parametrize("merge_mode, sequences, state", _BIDIRECTIONAL_MODES,
                         ids=[f"{m}-seq{int(s)}-state{int(t)}" for m, s, t in _BIDIRECTIONAL_MODES])
@pytest.mark.parametrize("cls, operator", [(LSTM, "LSTM"), (xlayers.GRU, "GRU"), (xlayers.SimpleRNN, "RNN")],
                         ids=["lstm", "gru", "simple-rnn"])
def test_bidirectional_of_fused_layers_exports_as_one_bidirectional_node(tmp_path, cls, operator, merge_mode, sequences,
                                                                         state, masked):
    """One recurrent node with direction="bidirectional" (weights [forward, backward], a mask's lengths as
    sequence_lens), dynamic batch and time, and onnxruntime equal to torch and to Keras at another batch
    size and length, with a full, an empty and two partial rows."""
    import onnx

    from conformance.keras_reference import keras_call, keras_twin
    from conformance.testing import randomize_weights

    layer = _built(xlayers.Bidirectional(cls(4, return_sequences=sequences, return_state=state), merge_mode=merge_mode),
                   (3, 7, 5))
    randomize_weights(layer, 5)  # distinct weights per direction and per gate
    mask = torch.arange(7).unsqueeze(0) < torch.tensor([[7], [4], [1]])
    example = (torch.randn(3, 7, 5), mask) if masked else torch.randn(3, 7, 5)
    result = export(layer, example, tmp_path / "bi.onnx", verbose=False)
    graph = onnx.load(str(tmp_path / "bi.onnx")).graph
    recurrent = [node for node in graph.node if node.op_type in ("LSTM", "GRU", "RNN")]
    assert [node.op_type for node in recurrent] == [operator], result.node_counts
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in recurrent[0].attribute}
    assert attributes["direction"] == b"bidirectional"
    assert (recurrent[0].input[4] != "") == masked  # sequence_lens
    assert not {"Loop", "Scan"} & set(result.node_counts)
    dims = [tuple(dims[:2]) for _, dims in _graph_inputs(tmp_path / "bi.onnx")]  # the inputs' (batch, time), and the mask's
    assert len(dims) == 1 + masked and len(set(dims)) == 1 and all(isinstance(d, str) for d in dims[0])  # dynamic, shared
    assert all(s[0] != 3 and s[1] != 7 for s in result.checked_shapes)

    x = np.random.default_rng(1).standard_normal((5, 9, 5)).astype(np.float32)
    lengths = np.array([9, 0, 3, 8, 1]) if masked else np.full(5, 9)
    mask = np.arange(9)[None] < lengths[:, None]
    got = run(tmp_path / "bi.onnx", x, mask) if masked else run(tmp_path / "bi.onnx", x)
    with torch.no_grad():
        ours = layer(torch.from_numpy(x), mask=torch.from_numpy(mask) if masked else None)
    ours = [ours] if isinstance(ours, torch.Tensor) else ours
    theirs = keras_call(keras_twin(layer), x, **({"mask": mask} if masked else {}))
    assert len(got) == len(ours) == len(theirs) == (2 if merge_mode is None else 1) + 2 * len(layer.forward_layer.STATES) * state
    for index, (onnx_out, torch_out, keras_out) in enumerate(zip(got, ours, theirs)):
        assert_close(onnx_out, torch_out.numpy(), what=f"output {index}: onnxruntime against torch")
        assert_close(onnx_out, keras_out, what=f"output {index}: onnxruntime against Keras")


def test_bidirectional_of_two_configurations_exports_one_node_per_direction(tmp_path):
    """Layers that differ (here the backward one has no bias) cannot share one node: each direction
    exports as its own (forward, then reverse), verified against torch."""
    import onnx

    backward = LSTM(4, use_bias=False, go_backwards=True, return_sequences=True)
    layer = _built(xlayers.Bidirectional(LSTM(4, return_sequences=True), backward_layer=backward), (3, 7, 5))
    mask = torch.arange(7).unsqueeze(0) < torch.tensor([[7], [4], [1]])
    result = export(layer, (torch.randn(3, 7, 5), mask), tmp_path / "bi.onnx", verbose=False)
    directions = [onnx.helper.get_attribute_value(a) for node in onnx.load(str(tmp_path / "bi.onnx")).graph.node
                  if node.op_type == "LSTM" for a in node.attribute if a.name == "direction"]
    assert sorted(directions) == [b"forward", b"reverse"] and len(result.checked_shapes) == 2


class _WithInitialStates(torch.nn.Module):
    """A Bidirectional fed its initial states as graph inputs (a list: forward's, then backward's)."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, inputs, mask, states):
        return self.layer(inputs, mask=mask, initial_state=states)


@pytest.mark.parametrize("cls", [LSTM, xlayers.GRU], ids=["lstm", "gru"])
def test_bidirectional_node_takes_stacked_initial_states_and_an_empty_row_keeps_them(tmp_path, cls):
    """onnxruntime gives an empty row zero states; Keras keeps its initial ones, and so does the graph."""
    from conformance.keras_reference import keras_call, keras_twin
    from conformance.testing import randomize_weights

    layer = _built(xlayers.Bidirectional(cls(3, return_sequences=True, return_state=True)), (4, 6, 5))
    randomize_weights(layer, 7)
    x = torch.randn(4, 6, 5)
    mask = torch.arange(6).unsqueeze(0) < torch.tensor([[6], [0], [3], [1]])
    states = [torch.randn(4, 3) for _ in range(2 * len(cls.STATES))]
    module = _WithInitialStates(layer)
    result = export(module, (x, mask, states), tmp_path / "bi.onnx", dynamic_axes={}, verbose=False)  # states: static batch
    assert result.node_counts[cls.__name__] == 1
    got = run(tmp_path / "bi.onnx", x.numpy(), mask.numpy(), *(s.numpy() for s in states))
    theirs = keras_call(keras_twin(layer), x.numpy(), mask=mask.numpy(), initial_state=[s.numpy() for s in states])
    assert len(got) == len(theirs) == 1 + len(states)
    for index, (onnx_out, keras_out) in enumerate(zip(got, theirs)):
        assert_close(onnx_out, keras_out, what=f"output {index}: onnxruntime against Keras")
    assert np.array_equal(got[1 + len(cls.STATES)][1], states[len(cls.STATES)][1].numpy())  # the empty row's backward h

"""xlayers.activations against keras.activations (TensorFlow backend)."""

from __future__ import annotations

import os
import re

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from keras.src.activations import ALL_OBJECTS_DICT as KERAS_ACTIVATIONS  # noqa: E402

from xlayers import activations  # noqa: E402
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError, UnknownNameError  # noqa: E402

NAMES = activations.names()

# Extra keyword arguments per name; every name is also tested with its defaults,
# except `threshold`, whose arguments are required (as in Keras).
VARIANTS = {
    "threshold": [dict(threshold=0.5, default_value=-1.0), dict(threshold=-2.0, default_value=3.0)],
    "relu": [
        dict(negative_slope=0.1),
        dict(max_value=6),
        dict(max_value=3.5),
        dict(threshold=1.0),
        dict(negative_slope=0.3, max_value=4.0, threshold=0.5),
        dict(negative_slope=0.2, max_value=6.0),
    ],
    "leaky_relu": [dict(negative_slope=0.05)],
    "elu": [dict(alpha=0.5)],
    "celu": [dict(alpha=2.0)],
    "gelu": [dict(approximate=True)],
    "softmax": [dict(axis=0), dict(axis=(0, 1))],
    "log_softmax": [dict(axis=0)],
    "glu": [dict(axis=0)],
    "hard_shrink": [dict(threshold=1.0)],
    "soft_shrink": [dict(threshold=1.0)],
    "squareplus": [dict(b=1.0)],
}
REQUIRED_ARGS = {"threshold"}


def _cases():
    for name in NAMES:
        variants = VARIANTS.get(name, [])
        if name not in REQUIRED_ARGS:
            variants = [{}] + variants
        for kwargs in variants:
            yield pytest.param(name, kwargs, id=f"{name}-{kwargs}" if kwargs else name)


def _default_kwargs(name):
    return VARIANTS[name][0] if name in REQUIRED_ARGS else {}


def _inputs(dtype: str) -> np.ndarray:
    rng = np.random.default_rng(1234)
    x = rng.standard_normal((4, 6)) * 3.0
    extra = np.array(
        [
            [-1e4, -88.0, -20.0, 20.0, 88.0, 1e4],  # large magnitudes (saturation / overflow)
            [-3.0, -1.0, -0.5, 0.5, 1.0, 3.0],  # breakpoints of the piecewise functions
            [-6.0, -1e-3, 0.0, 1e-3, 6.0, 7.5],
            [-2.0, -0.25, -1e-8, 1e-8, 0.25, 2.0],
        ]
    )
    return np.concatenate([x, extra]).astype(dtype)


def _reference_sparsemax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Martins & Astudillo (2016), Algorithm 1, in numpy."""
    x = np.moveaxis(x, axis, -1)
    z = -np.sort(-x, axis=-1)
    k = np.arange(1, x.shape[-1] + 1)
    cumsum = np.cumsum(z, axis=-1)
    support = 1 + k * z > cumsum
    k_z = support.sum(axis=-1, keepdims=True)
    tau = (np.take_along_axis(cumsum, k_z - 1, axis=-1) - 1) / k_z
    return np.moveaxis(np.maximum(x - tau, 0), -1, axis)


# Keras 3.15's sparsemax sums the cumulative sums over the support instead of
# taking the k-th one (keras-team/keras#23425, fixed upstream by #23469), so its
# output does not sum to 1 when more than one logit survives. xlayers implements
# the published algorithm; it is compared with a numpy reference instead, and
# with Keras only on inputs with a support of size 1 (test_sparsemax_matches_keras_one_hot).
REFERENCE_OVERRIDES = {"sparsemax": _reference_sparsemax}

# Keras-with-TF precision quirks (xlayers is the more accurate side in both):
# * TF's float64 erfc (used by gelu) is only float32-accurate;
# * tf.nn.leaky_relu keeps `alpha` as a float32 attribute, so 0.2 becomes 0.2000000030.
F64_RTOL = {"gelu": 2e-5, "leaky_relu": 1e-7, "relu": 1e-7}


def _keras_result(name, x, kwargs):
    if name in REFERENCE_OVERRIDES:
        return REFERENCE_OVERRIDES[name](x.astype(np.float64), **kwargs).astype(x.dtype)
    return keras.ops.convert_to_numpy(keras.activations.get(name)(x, **kwargs))


def test_registry_matches_keras():
    assert set(NAMES) == set(KERAS_ACTIVATIONS)
    assert NAMES == sorted(NAMES)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, kwargs", list(_cases()))
def test_matches_keras(name, kwargs, dtype):
    x = _inputs(dtype)
    ours = activations.get(name)(torch.from_numpy(x), **kwargs)
    assert ours.dtype == torch.from_numpy(x).dtype
    ours = ours.numpy()
    theirs = _keras_result(name, x, kwargs)
    assert ours.shape == theirs.shape
    if dtype == "float32":
        rtol, atol = 2e-6, 1e-6
    else:
        rtol, atol = F64_RTOL.get(name, 1e-12), 1e-14
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("name", NAMES)
def test_dtype_preserved(name, dtype):
    kwargs = _default_kwargs(name)
    x = torch.from_numpy(np.clip(_inputs("float64")[:4] / 1.5, -5.0, 5.0))
    reference = activations.get(name)(x, **kwargs)
    out = activations.get(name)(x.to(dtype), **kwargs)
    assert out.dtype == dtype
    assert out.shape == reference.shape
    tol = {torch.float16: 1e-2, torch.bfloat16: 5e-2, torch.float64: 0.0}[dtype]
    scale = max(1.0, reference.abs().max().item())
    torch.testing.assert_close(out.double(), reference, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("name", NAMES)
def test_compiles_fullgraph(name):
    torch._dynamo.reset()
    fn = activations.get(name)
    kwargs = _default_kwargs(name)
    compiled = torch.compile(fn, fullgraph=True, backend="eager")
    x = torch.from_numpy(_inputs("float32")[:4])
    torch.testing.assert_close(compiled(x, **kwargs), fn(x, **kwargs))


@pytest.mark.parametrize("name", NAMES)
def test_serialize_matches_keras(name):
    ours = activations.serialize(activations.get(name))
    theirs = keras.activations.serialize(keras.activations.get(name))
    assert ours == theirs
    assert activations.get(ours) is activations.get(name)
    assert activations.serialize(name) == ours


def test_sparsemax_is_a_simplex_projection():
    x = torch.from_numpy(_inputs("float64"))
    for axis in (-1, 0):
        y = activations.sparsemax(x, axis=axis)
        torch.testing.assert_close(y.sum(dim=axis), torch.ones_like(y.sum(dim=axis)))
        assert (y >= 0).all()
        np.testing.assert_allclose(y.numpy(), _reference_sparsemax(x.numpy(), axis=axis), rtol=1e-12, atol=1e-12)
    out = activations.sparsemax(torch.tensor([[0.0, 0.5, 1.0]]))
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.25, 0.75]]))


@pytest.mark.parametrize("axis", [-1, -2, 0])
def test_sparsemax_matches_keras_one_hot(axis):
    # Keras's own test inputs: widely spaced logits give a support of size 1,
    # where Keras's (buggy) threshold agrees with the correct one.
    x = np.linspace(1, 12, num=12).reshape(-1, 1, 3).astype("float32") * 3
    ours = activations.sparsemax(torch.from_numpy(x), axis=axis).numpy()
    theirs = keras.ops.convert_to_numpy(keras.activations.sparsemax(x, axis=axis))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_get_none_and_callables():
    assert activations.get(None) is activations.linear
    assert activations.serialize(None) == "linear"
    fn = lambda x: x * 2  # noqa: E731
    assert activations.get(fn) is fn
    assert activations.get("swish") is activations.silu
    assert activations.get("hard_swish") is activations.hard_silu
    assert activations.serialize(activations.swish) == "silu"
    serialized = {"module": "keras.activations", "class_name": "function", "config": "relu"}
    assert activations.get(serialized) is activations.relu


def test_unknown_name_message():
    pattern = r"^`activation` must be one of \[(.*)\]\. Received: activation='foo'\.$"
    with pytest.raises(UnknownNameError, match=pattern) as info:
        activations.get("foo")
    listed = re.match(pattern, str(info.value)).group(1)
    assert [s.strip().strip("'") for s in listed.split(",")] == NAMES
    assert isinstance(info.value, ValueError)
    with pytest.raises(UnknownNameError, match="Received: activation='Relu'"):
        activations.get("Relu")  # case-sensitive, like Keras


def test_bad_identifiers():
    with pytest.raises(ArgumentTypeError, match=r"Received: activation=3 \(of type int\)"):
        activations.get(3)
    with pytest.raises(ArgumentError, match="custom callables"):
        activations.serialize(lambda x: x)
    with pytest.raises(InputShapeError, match="even size"):
        activations.glu(torch.zeros(2, 5))
    with pytest.raises(TypeError):
        activations.get("threshold")(torch.zeros(3))  # required args, as in Keras


def test_keras_documented_values():
    x = torch.tensor([-10.0, -5.0, 0.0, 5.0, 10.0])
    torch.testing.assert_close(activations.relu(x, negative_slope=0.5), torch.tensor([-5.0, -2.5, 0.0, 5.0, 10.0]))
    torch.testing.assert_close(activations.relu(x, max_value=5.0), torch.tensor([0.0, 0.0, 0.0, 5.0, 5.0]))
    torch.testing.assert_close(activations.relu(x, threshold=5.0), torch.tensor([0.0, 0.0, 0.0, 0.0, 10.0]))
    torch.testing.assert_close(activations.hard_sigmoid(torch.tensor([-3.0, 0.0, 3.0])), torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(activations.leaky_relu(torch.tensor([-1.0])), torch.tensor([-0.2]))
    torch.testing.assert_close(
        activations.selu(torch.tensor([-1.0], dtype=torch.float64)),
        torch.tensor([activations.SELU_SCALE * activations.SELU_ALPHA * (np.exp(-1.0) - 1.0)], dtype=torch.float64),
    )

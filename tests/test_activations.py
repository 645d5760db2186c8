"""xlayers.activations against keras.activations (TensorFlow backend)."""

from __future__ import annotations

import os
import re

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import mpmath  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402
from keras.src.activations import ALL_OBJECTS_DICT as KERAS_ACTIVATIONS  # noqa: E402

from xlayers import activations  # noqa: E402
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError, UnknownNameError  # noqa: E402
from xlayers.tolerance import Comparison, compare  # noqa: E402

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


# --------------------------------------------------------------------------- #
# Truth
# --------------------------------------------------------------------------- #
# Every case compares xlayers with the truth: the value of the activation's formula at the (exactly
# representable) input. By default the truth is Keras itself evaluated in float64: for the float32
# cases its own error is far below the float32 tolerance, and for the float64 cases it is the
# reference xlayers must reproduce. Where Keras's float64 result is not accurate to float64
# precision, an exact evaluation of the same formula is the truth instead (EXACT), and Keras's own
# float64 error against it must stay within its documented quirk (KERAS_F64_ERROR), so Keras's
# semantics are still checked. Keras's float32 error against the same truth is reported beside
# ours in every failure, but not asserted: it is Keras's (cancellation, TF's flush-to-zero).

mpmath.mp.dps = 60  # squareplus's textbook form loses ~2*log10(|x|) digits: 8 at x=-1e4
_SQRT_2_OVER_PI = mpmath.sqrt(2 / mpmath.pi)


def _exact(formula):
    """Applies ``formula(x: mpf, **kwargs) -> mpf`` to every element, in 60-digit arithmetic."""

    def reference(x: np.ndarray, **kwargs) -> np.ndarray:
        values = [float(formula(mpmath.mpf(float(v)), **kwargs)) for v in np.asarray(x, np.float64).ravel()]
        return np.array(values, np.float64).reshape(np.shape(x))

    return reference


def _exact_relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    # Keras: x * (x > threshold), clipped to [0, max_value] if given, minus negative_slope * relu(threshold - x).
    y = x if x > threshold else mpmath.mpf(0)
    if max_value is not None:
        y = min(max(y, 0), mpmath.mpf(max_value))
    return y - mpmath.mpf(negative_slope) * max(mpmath.mpf(threshold) - x, 0)


def _exact_gelu(x, approximate=False):
    if approximate:
        return x * (1 + mpmath.tanh(_SQRT_2_OVER_PI * (x + mpmath.mpf("0.044715") * x**3))) / 2
    return x * mpmath.erfc(-x / mpmath.sqrt(2)) / 2


EXACT = {
    "gelu": _exact(_exact_gelu),
    "leaky_relu": _exact(lambda x, negative_slope=0.2: x if x >= 0 else mpmath.mpf(negative_slope) * x),
    "relu": _exact(_exact_relu),
    "squareplus": _exact(lambda x, b=4: (x + mpmath.sqrt(x * x + b)) / 2),
    # Keras 3.15's sparsemax sums the cumulative sums over the support instead of taking the k-th
    # one (keras-team/keras#23425, fixed upstream by #23469), so its output does not sum to 1 when
    # more than one logit survives. xlayers implements the published algorithm (float64 numpy here);
    # it meets Keras only on supports of size 1 (test_sparsemax_matches_keras_one_hot).
    "sparsemax": _reference_sparsemax,
}

# (rtol, atol) within which Keras's float64 result meets the exact truth, and why it is not closer.
# xlayers is held to F64_TOLERANCE on the same cases.
KERAS_F64_ERROR = {
    "gelu": ((2e-5, 1e-14), "TF's float64 erfc is only float32-accurate"),
    "leaky_relu": ((1e-7, 1e-14), "tf.nn.leaky_relu keeps `alpha` as a float32 attribute: 0.2 becomes 0.2000000030"),
    "relu": ((1e-7, 1e-14), "a `negative_slope` without cap or threshold goes to tf.nn.leaky_relu (float32 alpha)"),
    "squareplus": (
        (1e-6, 1e-14),
        "(x + sqrt(x**2 + b)) / 2 cancels for x << 0, keeping an ulp of |x| in a result of b / (4|x|): "
        "7e-8 relative at x=-1e4 with b=1",
    ),
}
KERAS_DEVIATIONS = {"sparsemax": "keras-team/keras#23425 (see EXACT)"}

# float32: the policy (xlayers/tolerance.py). float64: single elementwise ops with no accumulation,
# held to a few units in the last place, tighter than the policy's float64 row (deep sums).
F64_TOLERANCE = (1e-12, 1e-14)


def _keras_result(name, x, kwargs):
    return keras.ops.convert_to_numpy(keras.activations.get(name)(x, **kwargs))


def _truth(name, x, kwargs):
    """The float64 truth at ``x`` (see above)."""
    x = np.asarray(x, np.float64)
    return EXACT[name](x, **kwargs) if name in EXACT else _keras_result(name, x, kwargs)


def _compare(actual, truth, dtype, override=None) -> Comparison:
    override = override if override is not None else (F64_TOLERANCE if dtype == "float64" else None)
    return compare(actual, truth, dtype, override=override, elementwise=True)


def test_registry_matches_keras():
    assert set(NAMES) == set(KERAS_ACTIVATIONS)
    assert NAMES == sorted(NAMES)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, kwargs", list(_cases()))
def test_matches_keras(name, kwargs, dtype):
    x = _inputs(dtype)
    ours = activations.get(name)(torch.from_numpy(x), **kwargs)
    assert ours.dtype == torch.from_numpy(x).dtype
    theirs = _keras_result(name, x, kwargs)
    assert ours.shape == theirs.shape
    truth = _truth(name, x, kwargs)
    mine, keras_error = _compare(ours, truth, dtype), _compare(theirs, truth, dtype)
    report = f"{mine.describe('xlayers vs truth')}; for reference, {keras_error.describe(f'Keras {dtype} vs truth')}"
    assert mine.passed, report
    if dtype == "float64" and name not in KERAS_DEVIATIONS:
        bound, reason = KERAS_F64_ERROR.get(name, (F64_TOLERANCE, ""))
        keras_error = _compare(theirs, truth, dtype, override=bound)
        assert keras_error.passed, f"Keras moved from the truth ({reason}): {keras_error.describe('Keras vs truth')}"


def _worst_point(x, ours, theirs, truth):
    """Where the two float32 results differ most from the truth, relative to it."""
    rel = lambda a: np.abs(a.astype(np.float64) - truth) / np.abs(truth)  # noqa: E731
    i = int(np.argmax(np.maximum(rel(ours), rel(theirs))))
    return float(x[i]), float(rel(ours)[i]), float(rel(theirs)[i])


@pytest.mark.parametrize("b", [4.0, 1.0])
def test_squareplus_does_not_cancel_where_keras_does(b):
    """Keras's float32 ``(x + sqrt(x**2 + b)) / 2`` subtracts nearly equal numbers for x << 0: it
    gives 0 at x=-1e4 (1e8 + b rounds to 1e8 in float32; the truth is b / 4e4) and keeps ~12 bits
    at x=-88 (how many depends on the CPU's float32 sqrt). xlayers's form keeps full precision."""
    x = np.array([-1e4, -1e3, -88.0, -20.0, -3.0, -0.5, 0.0, 0.5, 3.0, 88.0, 1e4], np.float32)
    truth = EXACT["squareplus"](x, b=b)
    ours = activations.squareplus(torch.from_numpy(x), b=b).numpy()
    theirs = _keras_result("squareplus", x, dict(b=b))
    at, ours_rel, keras_rel = _worst_point(x, ours, theirs, truth)
    report = f"worst point x={at}: xlayers rel error {ours_rel:.2e}, Keras float32 {keras_rel:.2e}"
    mine = _compare(ours, truth, "float32")
    assert mine.passed, f"{mine.describe('xlayers vs truth')}; {report}"
    # Not only within the policy: within a few float32 ulps everywhere.
    assert _max_ulps(ours, truth) < 4, report
    assert theirs[0] == 0.0 and keras_rel == 1.0, f"Keras's squareplus no longer cancels at x=-1e4; {report}"


def _exact_squareplus_derivative(x: np.ndarray, b: float) -> np.ndarray:
    """d/dx (x + s) / 2 = (x + s) / (2 s) with s = sqrt(x**2 + b); undefined (NaN) where s = 0."""

    def derivative(v):
        s = mpmath.sqrt(v * v + b)
        return (v + s) / (2 * s) if s != 0 else mpmath.nan

    return _exact(derivative)(x)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("b", [4.0, 1.0, 0.0])
def test_squareplus_gradient(dtype, b):
    """Autograd through the cancellation-free form gives the derivative to the dtype's precision
    (the textbook form's gradient cancels like its value), with the textbook form's NaN at the one
    point where the derivative is undefined (x = 0 with b = 0)."""
    x = _inputs(dtype)
    leaf = torch.from_numpy(x).requires_grad_()
    activations.squareplus(leaf, b=b).sum().backward()
    truth = _exact_squareplus_derivative(x, b)
    variable = tf.Variable(x)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(keras.activations.squareplus(variable, b=b))
    theirs = tape.gradient(total, variable).numpy()
    mine, keras_error = _compare(leaf.grad, truth, dtype), _compare(theirs, truth, dtype)
    report = f"{mine.describe('xlayers gradient vs truth')}; for reference, {keras_error.describe('Keras')}"
    assert mine.passed, report
    assert np.array_equal(np.isnan(leaf.grad.numpy()), np.isnan(truth)), report
    assert _max_ulps(leaf.grad.numpy(), truth) < 4, report


def _max_ulps(actual: np.ndarray, truth: np.ndarray) -> float:
    """Greatest relative error in units of the dtype's epsilon, over finite non-zero truths."""
    defined = np.isfinite(truth) & (truth != 0)
    rel = np.abs(actual[defined].astype(np.float64) - truth[defined]) / np.abs(truth[defined])
    return float(rel.max() / np.finfo(actual.dtype).eps)


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
    with pytest.raises(ArgumentError, match=r"a custom callable has no Keras name"):
        activations.serialize(lambda x: x)
    with pytest.raises(InputShapeError, match="even size"):
        activations.glu(torch.zeros(2, 5))
    # Required arguments, as in Keras (which raises Python's TypeError for missing positionals).
    pattern = (
        r"^the `threshold` activation needs `threshold` and `default_value` \(required, as in Keras; .*\)\. "
        r"Received: threshold=None, default_value=None\.$"
    )
    with pytest.raises(ArgumentTypeError, match=pattern):
        activations.get("threshold")(torch.zeros(3))
    with pytest.raises(ArgumentTypeError, match=r"Received: threshold=0\.5, default_value=None\.$"):
        activations.threshold(torch.zeros(3), 0.5)
    with pytest.raises(TypeError, match=r"missing 2 required positional arguments"):
        keras.activations.threshold(np.zeros(3, np.float32))


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

"""Cases for `xlayers/layers/regularization.py`: each layer at inference (the identity, and its
ONNX graph) and in training, where Keras makes the same random draw as xlayers (`RandomDriver`):
Dropout (fused kernel, noise_shape, seeded, rate 1), SpatialDropout 1D/2D/3D (both data
formats), GaussianNoise, GaussianDropout, AlphaDropout (noise_shape too), and
ActivityRegularization's loss."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

import numpy as np

from xlayers import (
    ActivityRegularization,
    AlphaDropout,
    Dropout,
    GaussianDropout,
    GaussianNoise,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
)
from xlayers.errors import ArgumentError, ArgumentTypeError, InputShapeError
from xlayers.tolerance import compare

from ..case import Case, ErrorCase, LayerInfo
from ..driver import Driver
from ..keras_reference import ChannelsFirstTwin, unwrap
from ..records import CaseResult, Check

SHAPE = (3, 7, 5)  # batch, steps, features: all different, odd
TRAIN = {"training": True}


class RandomDriver(Driver):
    """Training calls share xlayers' random draw with Keras: after each xlayers call the layer's
    ``last_noise`` (a keep mask, or a standard normal sample) is recorded, and Keras's next call
    of the twin runs with TensorFlow's samplers answering with it: the uniform sampler of
    ``tf.nn.experimental.stateless_dropout`` and ``tf.random.stateless_uniform`` (a kept unit
    reads as 1 - 1e-6, a dropped one as 0: Keras's own ``>= rate`` decides), and
    ``tf.random.stateless_normal`` (``z * stddev + mean``, Keras's own mean and stddev). Only the
    draw is shared: the scaling, the noise shape Keras asks for and everything after are
    Keras's (an xlayers draw of another shape reaches Keras cut or broadcast to the shape Keras
    asks for, and the outputs differ). A channels-first twin sees its draw channels last."""

    def after_call(self, layer: Any, memo: list[Any]) -> None:
        noise = getattr(layer, "last_noise", None)
        memo.append(None if noise is None else noise.detach().cpu().numpy())

    def before_keras_call(self, twin: Any, memo: list[Any], index: int) -> None:
        draw = memo[index] if index < len(memo) else None
        if draw is None:
            return
        if isinstance(twin, ChannelsFirstTwin):
            draw = np.moveaxis(draw, 1, -1)
        keras_layer = unwrap(twin)
        call = type(keras_layer).call

        def once(*args: Any, **kwargs: Any) -> Any:  # this call only: the next call (or an ONNX check) draws its own
            del keras_layer.call
            with keras_draws(draw):
                return call(keras_layer, *args, **kwargs)

        keras_layer.call = once


class LossDriver(Driver):
    """``ActivityRegularization``: after the calls, the losses of xlayers' last call equal those
    of Keras's (its twin's ``losses`` after the same call)."""

    def before_keras_call(self, twin: Any, memo: list[Any], index: int) -> None:
        self._twin = twin  # `check` reads the twin's losses

    def check(self, layer: Any, case: Case, result: CaseResult) -> None:
        ours = np.array([float(loss.detach()) for loss in layer.losses])
        theirs = np.array([float(loss) for loss in unwrap(self._twin).losses])
        if ours.shape != theirs.shape:
            result.checks.append(Check("losses", False, detail=f"losses: xlayers has {ours.size}, keras {theirs.size}"))
            return
        comparison = compare(ours, theirs, "float32", "cpu")
        result.checks.append(Check("losses", comparison.passed, comparison.max_abs_error, comparison.max_rel_error,
                                   (comparison.rtol, comparison.atol), "" if comparison.passed else comparison.describe("losses")))


@contextlib.contextmanager
def keras_draws(draw: np.ndarray) -> Iterator[None]:
    """TensorFlow's stateless samplers answer with ``draw`` (in the shape asked for, see ``checked``)."""
    import tensorflow as tf
    from tensorflow.python.ops import stateless_random_ops

    def checked(shape: Any) -> np.ndarray:
        """The draw in the shape Keras asks for: where xlayers drew more along an axis than Keras
        wants (one mask entry per element where Keras has one per channel), Keras gets the first
        entry, so the difference shows in the outputs; another rank is an error."""
        wanted = tuple(int(s) for s in np.asarray(shape).reshape(-1))
        if len(wanted) != draw.ndim:
            raise AssertionError(f"Keras asks for noise of shape {wanted}; xlayers drew noise of shape {draw.shape}")
        first = draw[tuple(slice(0, 1) if w == 1 else slice(None) for w in wanted)]
        return np.broadcast_to(first, wanted)

    def uniform(shape: Any, seed: Any = None, minval: Any = 0, maxval: Any = None, dtype: Any = tf.float32, **_: Any) -> Any:
        keep = checked(shape)
        if keep.dtype != np.bool_:
            raise AssertionError("Keras asks for uniform noise; xlayers drew normal noise")
        unit = tf.constant(np.where(keep, 1.0 - 1e-6, 0.0), dtype=dtype)
        maxval = 1 if maxval is None else maxval
        return tf.cast(minval, dtype) + (tf.cast(maxval, dtype) - tf.cast(minval, dtype)) * unit

    def normal(shape: Any, seed: Any = None, mean: Any = 0.0, stddev: Any = 1.0, dtype: Any = tf.float32, **_: Any) -> Any:
        z = checked(shape)
        if z.dtype == np.bool_:
            raise AssertionError("Keras asks for normal noise; xlayers drew a keep mask")
        return tf.constant(z, dtype=dtype) * tf.cast(stddev, dtype) + tf.cast(mean, dtype)

    with mock.patch.object(stateless_random_ops, "stateless_random_uniform", uniform), \
            mock.patch.object(tf.random, "stateless_uniform", uniform), mock.patch.object(tf.random, "stateless_normal", normal):
        yield


DROPOUT_CASES = (
    Case(Dropout, "inference", {"rate": 0.3}, SHAPE),
    Case(Dropout, "train-0.4", {"rate": 0.4}, SHAPE, call=TRAIN),
    Case(Dropout, "train-noise-shape", {"rate": 0.3, "noise_shape": (None, 1, 5)}, SHAPE, call=TRAIN),
    Case(Dropout, "train-seeded", {"rate": 0.6, "seed": 7}, (2, 5, 6, 3), call=TRAIN),
    Case(Dropout, "train-rate-1", {"rate": 1.0}, (2, 9), call=TRAIN),
)

_DROPOUT = r"^`Dropout` layer 'dropout': "
DROPOUT_ERRORS = (
    ErrorCase("rate-range", {"rate": 1.5}, ArgumentError, _DROPOUT + r"`rate` must be a float between 0 and 1\. Received: rate=1\.5\."),
    ErrorCase("rate-str", {"rate": "a"}, ArgumentTypeError, _DROPOUT + r"`rate` must be a float between 0 and 1\. Received: rate='a'\."),
    ErrorCase("noise-shape-str", {"rate": 0.5, "noise_shape": "abc"}, ArgumentError, _DROPOUT + r"`noise_shape` must be a tuple of positive ints or None.*Received: noise_shape='abc'\."),
    ErrorCase("noise-shape-zero", {"rate": 0.5, "noise_shape": (2, 0)}, ArgumentError, _DROPOUT + r"`noise_shape` must be a tuple .*Received: noise_shape=\(2, 0\)\."),
    ErrorCase("noise-shape-input", {"rate": 0.5, "noise_shape": (None, 3)}, InputShapeError,
              _DROPOUT + r"`noise_shape` must have one entry per input axis, each None, 1 or the input's size\. Received: noise_shape=\(None, 3\), input shape=\(2, 5\)\.",
              (2, 5), call={"training": True}),
    ErrorCase("seed-str", {"rate": 0.5, "seed": "a"}, ArgumentTypeError, _DROPOUT + r"`seed` must be an int or None\. Received: seed='a'\."),
)

SPATIAL1D_CASES = (
    Case(SpatialDropout1D, "inference", {"rate": 0.3}, SHAPE),
    Case(SpatialDropout1D, "train", {"rate": 0.4}, (3, 9, 5), call=TRAIN),
)

SPATIAL1D_ERRORS = (
    ErrorCase("rank", {"rate": 0.5}, InputShapeError, r"^`SpatialDropout1D` layer 'spatial_dropout1d': expected an input of rank 3\. Received: input shape=\(2, 5\)\.", (2, 5)),
)

SPATIAL2D_CASES = (
    Case(SpatialDropout2D, "inference", {"rate": 0.3}, (2, 5, 6, 3)),
    Case(SpatialDropout2D, "train-nhwc", {"rate": 0.4}, (2, 5, 6, 7), call=TRAIN),
    Case(SpatialDropout2D, "train-nchw", {"rate": 0.4, "data_format": "channels_first"}, (2, 7, 5, 6), call=TRAIN),
)

SPATIAL2D_ERRORS = (
    ErrorCase("data-format", {"rate": 0.5, "data_format": "nhwc"}, ArgumentError,
              r"^`SpatialDropout2D` layer 'spatial_dropout2d': `data_format` must be one of \['channels_last', 'channels_first'\]\. Received: data_format='nhwc'\."),
)

SPATIAL3D_CASES = (
    Case(SpatialDropout3D, "inference", {"rate": 0.3}, (2, 3, 4, 5, 3)),
    Case(SpatialDropout3D, "train-ndhwc", {"rate": 0.5}, (2, 3, 4, 5, 7), call=TRAIN),
    Case(SpatialDropout3D, "train-ncdhw", {"rate": 0.5, "data_format": "channels_first"}, (2, 7, 3, 4, 5), call=TRAIN),
)

SPATIAL3D_ERRORS = (
    ErrorCase("rank", {"rate": 0.5}, InputShapeError, r"^`SpatialDropout3D` layer 'spatial_dropout3d': expected an input of rank 5\. Received: input shape=\(2, 3, 4, 5\)\.", (2, 3, 4, 5)),
)

GAUSSIAN_NOISE_CASES = (
    Case(GaussianNoise, "inference", {"stddev": 0.3}, SHAPE),
    Case(GaussianNoise, "train", {"stddev": 0.3}, SHAPE, call=TRAIN),
)

GAUSSIAN_NOISE_ERRORS = (
    ErrorCase("stddev-range", {"stddev": 2.0}, ArgumentError, r"^`GaussianNoise` layer 'gaussian_noise': `stddev` must be a float between 0 and 1\. Received: stddev=2\.0\."),
)

GAUSSIAN_DROPOUT_CASES = (
    Case(GaussianDropout, "inference", {"rate": 0.3}, SHAPE),
    Case(GaussianDropout, "train", {"rate": 0.3}, SHAPE, call=TRAIN),
)

GAUSSIAN_DROPOUT_ERRORS = (
    ErrorCase("rate-negative", {"rate": -0.1}, ArgumentError, r"^`GaussianDropout` layer 'gaussian_dropout': `rate` must be a float between 0 and 1\. Received: rate=-0\.1\."),
    ErrorCase("train-rate-1", {"rate": 1.0}, ArgumentError, r"^`GaussianDropout` layer 'gaussian_dropout': a training call needs `rate` < 1.*Received: rate=1\.0\.",
              (2, 5), call={"training": True}),
)

ALPHA_DROPOUT_CASES = (
    Case(AlphaDropout, "inference", {"rate": 0.2}, SHAPE),
    Case(AlphaDropout, "train", {"rate": 0.2}, SHAPE, call=TRAIN),
    Case(AlphaDropout, "train-noise-shape", {"rate": 0.35, "noise_shape": (None, 1, 5)}, SHAPE, call=TRAIN),
)

ALPHA_DROPOUT_ERRORS = (
    ErrorCase("rate-range", {"rate": 1.2}, ArgumentError, r"^`AlphaDropout` layer 'alpha_dropout': `rate` must be a float between 0 and 1\. Received: rate=1\.2\."),
    ErrorCase("train-rate-1", {"rate": 1.0}, ArgumentError, r"^`AlphaDropout` layer 'alpha_dropout': a training call needs `rate` < 1.*Received: rate=1\.0\.",
              (2, 5), call={"training": True}),
)

ACTIVITY_CASES = (
    Case(ActivityRegularization, "l1-l2", {"l1": 0.01, "l2": 0.02}, SHAPE),
    Case(ActivityRegularization, "l2-rank2", {"l2": 0.5}, (4, 9)),
)

ACTIVITY_ERRORS = (
    ErrorCase("l1-negative", {"l1": -1.0}, ArgumentError, r"^`ActivityRegularization` layer 'activity_regularization': .*`l1`.*Received: .*-1\.0"),
)

LAYERS = (
    LayerInfo(Dropout, DROPOUT_CASES, DROPOUT_ERRORS, driver=RandomDriver()),
    LayerInfo(SpatialDropout1D, SPATIAL1D_CASES, SPATIAL1D_ERRORS, driver=RandomDriver()),
    LayerInfo(SpatialDropout2D, SPATIAL2D_CASES, SPATIAL2D_ERRORS, driver=RandomDriver()),
    LayerInfo(SpatialDropout3D, SPATIAL3D_CASES, SPATIAL3D_ERRORS, driver=RandomDriver()),
    LayerInfo(GaussianNoise, GAUSSIAN_NOISE_CASES, GAUSSIAN_NOISE_ERRORS, driver=RandomDriver()),
    LayerInfo(GaussianDropout, GAUSSIAN_DROPOUT_CASES, GAUSSIAN_DROPOUT_ERRORS, driver=RandomDriver()),
    LayerInfo(AlphaDropout, ALPHA_DROPOUT_CASES, ALPHA_DROPOUT_ERRORS, driver=RandomDriver()),
    # the graph is the identity whatever the factors and the rank: one ONNX check
    LayerInfo(ActivityRegularization, ACTIVITY_CASES, ACTIVITY_ERRORS, driver=LossDriver(), onnx_group=lambda case: 0),
)

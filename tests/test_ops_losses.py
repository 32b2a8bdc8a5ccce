"""Losses: Keras semantics (BCE clipping, from logits, Dice, categorical), the paper's weighted loss vs
TensorFlow (float32, rtol = atol = 1e-5), gradient checks (float64, norm-based rel_error < 1e-7)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from unet_scratch.gradcheck import numeric_gradient, rel_error
from unet_scratch.ops.losses import (binary_crossentropy, categorical_crossentropy, dice_loss,
                                     sparse_categorical_crossentropy, weighted_softmax_crossentropy)

GRAD_TOL = 1e-7


def _probs(rng, shape):
    p = rng.random(shape)
    p[0, 0, 0, 0], p[0, 0, 1, 0], p[0, 1, 0, 0] = 1e-9, 1 - 1e-9, 0.0     # values Keras clips
    return p


def _keras_loss_and_grad(tf, loss_fn, y_true, y_pred):
    """Loss and dloss/dy_pred from Keras (y_pred as a plain tensor: no cached logits)."""
    pt = tf.constant(y_pred)
    with tf.GradientTape() as tape:
        tape.watch(pt)
        loss = loss_fn(tf.constant(y_true), pt)
    return float(loss), tape.gradient(loss, pt).numpy()


def _assert_close(loss, grad, k_loss, k_grad):
    assert loss == pytest.approx(k_loss, rel=1e-5, abs=1e-5)
    np.testing.assert_allclose(grad, k_grad, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------------------------- BCE
def test_bce_matches_keras_with_clipping(rng, tf, keras):
    p = _probs(rng, (2, 8, 8, 2)).astype(np.float32)
    t = (rng.random(p.shape) > 0.5).astype(np.float32)
    t[0, 0, 0, 0], t[0, 0, 1, 0], t[0, 1, 0, 0] = 1, 0, 1       # the clipped entries cost ~16 nats
    loss, grad = binary_crossentropy(p, t)
    k_loss, k_grad = _keras_loss_and_grad(tf, keras.losses.BinaryCrossentropy(), t, p)
    _assert_close(loss, grad, k_loss, k_grad)
    assert grad[0, 0, 0, 0] == grad[0, 0, 1, 0] == grad[0, 1, 0, 0] == 0   # no gradient through the clip
    assert grad.dtype == np.float32


def test_bce_gradient_passes_at_the_clip_bounds_like_tensorflow(tf, keras):
    eps = np.float32(1e-7)
    p = np.array([[eps, np.float32(1 - 1e-7), 0.5, eps / 2]], np.float32)
    t = np.array([[1, 0, 1, 1]], np.float32)
    _, grad = binary_crossentropy(p, t)
    _, k_grad = _keras_loss_and_grad(tf, keras.losses.BinaryCrossentropy(), t, p)
    np.testing.assert_allclose(grad, k_grad, rtol=1e-5)
    assert grad[0, 0] != 0 and grad[0, 1] != 0 and grad[0, 3] == 0


def test_bce_from_logits_matches_keras_and_is_stable(rng, tf, keras):
    z = (10 * rng.standard_normal((2, 8, 8, 1))).astype(np.float32)
    z[0, 0, 0, 0], z[0, 0, 1, 0], z[0, 1, 0, 0] = 200.0, -200.0, 0.0
    t = (rng.random(z.shape) > 0.5).astype(np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, grad = binary_crossentropy(z, t, from_logits=True)
    k_loss, k_grad = _keras_loss_and_grad(tf, keras.losses.BinaryCrossentropy(from_logits=True), t, z)
    assert np.isfinite(loss)
    _assert_close(loss, grad, k_loss, k_grad)


def test_keras_uses_cached_logits_of_a_sigmoid_output(rng, tf, keras):
    """A tensor made by Keras's sigmoid carries ``_keras_logits``; BinaryCrossentropy then computes from
    those logits (no clipping), even with from_logits=False. It matters once |z| > ~16."""
    z = np.array([[30.0, -30.0, 2.0, -1.0]], np.float32)
    t = np.array([[0, 1, 1, 0]], np.float32)
    p_keras = keras.activations.sigmoid(tf.constant(z))
    k_loss = float(keras.losses.BinaryCrossentropy()(t, p_keras))
    assert k_loss == pytest.approx(binary_crossentropy(z, t, from_logits=True)[0], rel=1e-6)
    assert k_loss > 1.5 * binary_crossentropy(p_keras.numpy(), t)[0]        # clipped: ~16 nats, not 30


@pytest.mark.parametrize("from_logits", [False, True])
def test_bce_gradient_check(rng, from_logits):
    y = 3 * rng.standard_normal((2, 4, 4, 2)) if from_logits else rng.uniform(0.05, 0.95, (2, 4, 4, 2))
    t = rng.random(y.shape)                                   # soft targets work too
    _, grad = binary_crossentropy(y, t, from_logits=from_logits)
    num = numeric_gradient(lambda v: binary_crossentropy(v, t, from_logits=from_logits)[0], y)
    assert rel_error(grad, num) < GRAD_TOL
    assert rel_error(grad, -num) > 1e-2                       # a sign error would fail the check


# ---------------------------------------------------------------------------------------------- Dice
@pytest.mark.parametrize("axis", [None, (1, 2, 3), (1, 2)])
def test_dice_matches_keras(axis, rng, tf, keras):
    p = rng.random((3, 8, 8, 2)).astype(np.float32)
    t = (rng.random(p.shape) > 0.6).astype(np.float32)
    loss, grad = dice_loss(p, t, axis=axis)
    k_loss, k_grad = _keras_loss_and_grad(tf, keras.losses.Dice(axis=axis), t, p)
    _assert_close(loss, grad, k_loss, k_grad)
    assert grad.dtype == np.float32


@pytest.mark.parametrize("axis", [None, (1, 2, 3)])
def test_dice_gradient_check(axis, rng):
    p = rng.random((2, 4, 4, 1))
    t = (rng.random(p.shape) > 0.5).astype(float)
    num = numeric_gradient(lambda v: dice_loss(v, t, axis=axis)[0], p)
    assert rel_error(dice_loss(p, t, axis=axis)[1], num) < GRAD_TOL


def test_dice_of_empty_masks_is_one_as_in_keras():
    z = np.zeros((1, 2, 2, 1), np.float32)
    assert dice_loss(z, z)[0] == 1.0                       # smooth only in the denominator


# ---------------------------------------------------------------------- the paper's weighted loss
def test_weighted_softmax_ce_matches_tensorflow(rng, tf):
    logits = (3 * rng.standard_normal((2, 6, 6, 3))).astype(np.float32)
    labels = rng.integers(0, 3, (2, 6, 6))
    w = rng.uniform(0.5, 10, (2, 6, 6)).astype(np.float32)
    loss, grad = weighted_softmax_crossentropy(logits, labels, w)
    lt = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(lt)
        per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=lt)
        k_loss = tf.reduce_mean(per_pixel * w)
    _assert_close(loss, grad, float(k_loss), tape.gradient(k_loss, lt).numpy())
    assert grad.dtype == np.float32
    onehot = np.eye(3, dtype=np.float32)[labels]
    assert weighted_softmax_crossentropy(logits, onehot, w)[0] == pytest.approx(loss, rel=1e-6)


def test_unweighted_is_keras_sparse_categorical_from_logits(rng, tf, keras):
    logits = (3 * rng.standard_normal((2, 5, 5, 4))).astype(np.float32)
    labels = rng.integers(0, 4, (2, 5, 5))
    loss, grad = weighted_softmax_crossentropy(logits, labels)
    k = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    _assert_close(loss, grad, *_keras_loss_and_grad(tf, k, labels, logits))


def test_weighted_softmax_ce_is_stable_for_huge_logits():
    logits = np.array([[[[1000.0, -1000.0]]]], np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, grad = weighted_softmax_crossentropy(logits, np.array([[[1]]]))
    assert loss == pytest.approx(2000.0) and np.all(np.isfinite(grad))


def test_weighted_softmax_ce_gradient_check(rng):
    logits = rng.standard_normal((2, 4, 4, 3))
    labels = rng.integers(0, 3, (2, 4, 4))
    w = rng.uniform(1, 5, (2, 4, 4))
    _, grad = weighted_softmax_crossentropy(logits, labels, w)
    num = numeric_gradient(lambda v: weighted_softmax_crossentropy(v, labels, w)[0], logits)
    assert rel_error(grad, num) < GRAD_TOL
    _, unweighted = weighted_softmax_crossentropy(logits, labels)
    assert rel_error(unweighted, num) > 1e-2                  # forgetting the weights fails the check


# ------------------------------------------------------------------------ Keras's categorical losses
@pytest.mark.parametrize("from_logits", [False, True])
def test_categorical_crossentropy_matches_keras(from_logits, rng, tf, keras):
    if from_logits:
        y = (3 * rng.standard_normal((2, 5, 5, 3))).astype(np.float32)
    else:
        y = rng.random((2, 5, 5, 3)).astype(np.float32)       # not normalised: Keras renormalises
        y[0, 0, 0] = [1.0, 0.0, 0.0]                         # clipped entries
    labels = rng.integers(0, 3, (2, 5, 5))
    labels[0, 0, 0] = 1
    onehot = np.eye(3, dtype=np.float32)[labels]
    k = keras.losses.CategoricalCrossentropy(from_logits=from_logits)
    _assert_close(*categorical_crossentropy(y, onehot, from_logits=from_logits),
                  *_keras_loss_and_grad(tf, k, onehot, y))
    k = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    _assert_close(*sparse_categorical_crossentropy(y, labels, from_logits=from_logits),
                  *_keras_loss_and_grad(tf, k, labels, y))


@pytest.mark.parametrize("from_logits", [False, True])
def test_categorical_gradient_check(from_logits, rng):
    y = rng.standard_normal((2, 3, 3, 4)) if from_logits else rng.uniform(0.05, 1, (2, 3, 3, 4))
    labels = rng.integers(0, 4, (2, 3, 3))
    soft = rng.dirichlet(np.ones(4), size=(2, 3, 3))
    for loss_fn, target in [(categorical_crossentropy, soft), (sparse_categorical_crossentropy, labels)]:
        _, grad = loss_fn(y, target, from_logits=from_logits)
        num = numeric_gradient(lambda v: loss_fn(v, target, from_logits=from_logits)[0], y)
        assert rel_error(grad, num) < GRAD_TOL, loss_fn.__name__


# ----------------------------------------------------------------------------------------- errors
def test_loss_errors():
    p = np.full((1, 2, 2, 1), 0.5, np.float32)
    with pytest.raises(ValueError, match=r"shape \(1, 2, 2, 1\).*\(1, 2, 2\).*mask\[\.\.\., None\]"):
        binary_crossentropy(p, np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        binary_crossentropy(np.full((1, 2, 2, 1), np.nan, np.float32), np.zeros((1, 2, 2, 1)))
    with pytest.raises(ValueError, match="target contains NaN"):
        dice_loss(p, np.full(p.shape, np.nan))
    with pytest.raises(ValueError, match=r"0/255\? divide by 255"):
        binary_crossentropy(p, np.full(p.shape, 255.0))
    with pytest.raises(TypeError, match="float array"):
        binary_crossentropy(np.ones((1, 2), int), np.ones((1, 2)))
    with pytest.raises(ValueError, match=r"0/255\? divide by 255"):
        weighted_softmax_crossentropy(np.zeros((1, 2, 2, 2)), np.full((1, 2, 2), 255))
    with pytest.raises(TypeError, match="astype\\(int\\)"):
        weighted_softmax_crossentropy(np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="one weight per pixel"):
        weighted_softmax_crossentropy(np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2), int), np.ones((2, 2)))
    with pytest.raises(ValueError, match="weights must be >= 0"):
        weighted_softmax_crossentropy(np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2), int), -np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match="fits neither"):
        weighted_softmax_crossentropy(np.zeros((1, 2, 2, 2)), np.zeros((1, 3, 3), int))


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 2), h=st.integers(1, 4), k=st.integers(2, 4), weighted=st.booleans(),
       seed=st.integers(0, 999))
def test_weighted_ce_property(n, h, k, weighted, seed):
    r = np.random.default_rng(seed)
    logits, labels = 2 * r.standard_normal((n, h, h, k)), r.integers(0, k, (n, h, h))
    w = r.uniform(0.1, 5, (n, h, h)) if weighted else None
    loss, grad = weighted_softmax_crossentropy(logits, labels, w)
    assert loss > 0 and grad.shape == logits.shape
    np.testing.assert_allclose(grad.sum(axis=-1), 0, atol=1e-12)   # softmax - onehot sums to 0 per pixel
    num = numeric_gradient(lambda v: weighted_softmax_crossentropy(v, labels, w)[0], logits)
    assert rel_error(grad, num) < GRAD_TOL


@settings(max_examples=20, deadline=None)
@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 4), st.integers(1, 4), st.integers(1, 2)),
       from_logits=st.booleans(), seed=st.integers(0, 999))
def test_bce_property(shape, from_logits, seed):
    r = np.random.default_rng(seed)
    y = 3 * r.standard_normal(shape) if from_logits else r.uniform(0.02, 0.98, shape)
    t = (r.random(shape) > 0.5).astype(float)
    loss, grad = binary_crossentropy(y, t, from_logits=from_logits)
    assert loss > 0 and grad.shape == shape and grad.dtype == np.float64
    num = numeric_gradient(lambda v: binary_crossentropy(v, t, from_logits=from_logits)[0], y)
    assert rel_error(grad, num) < GRAD_TOL


def test_weighted_bce_from_logits_gradient_and_errors():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, (2, 5, 5, 1))
    t = (rng.random(z.shape) > 0.5).astype(float)
    w = rng.uniform(0.5, 3, z.shape)
    value, dz = binary_crossentropy(z, t, from_logits=True, weights=w)
    num = numeric_gradient(lambda a: binary_crossentropy(a, t, from_logits=True, weights=w)[0], z.copy(), 1.0)
    assert rel_error(dz, num) < 1e-7
    with pytest.raises(ValueError, match="from_logits=True"):
        binary_crossentropy(1 / (1 + np.exp(-z)), t, weights=w)
    with pytest.raises(ValueError, match="weights have shape"):
        binary_crossentropy(z, t, from_logits=True, weights=w[..., 0])


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("keras_weight_shape", ["NHW1", "NHW"])
def test_weighted_bce_is_keras_sample_weight(dtype, tol, keras_weight_shape, tf, keras):
    """weights= is Keras's sample_weight with "sum_over_batch_size": sum(w l) / (number of pixels), NOT
    divided by sum(w). Keras takes the weight map as (N, H, W, 1) or (N, H, W); ours is shaped like the
    one-channel prediction. Value and dloss/dlogits both compared (tf.GradientTape on the logits)."""
    rng = np.random.default_rng(3)
    z = rng.normal(0, 3, (2, 6, 7, 1)).astype(dtype)
    t = (rng.random(z.shape) > 0.5).astype(dtype)
    w = rng.uniform(0.1, 10, z.shape).astype(dtype)            # far from 1 on average: sum(w) != N H W
    loss, dz = binary_crossentropy(z, t, from_logits=True, weights=w)
    k_weight = tf.constant(w if keras_weight_shape == "NHW1" else w[..., 0])
    bce = keras.losses.BinaryCrossentropy(from_logits=True, dtype=np.dtype(dtype).name)
    k_loss, k_dz = _keras_loss_and_grad(tf, lambda y, p: bce(y, p, sample_weight=k_weight), t, z)
    assert loss == pytest.approx(k_loss, rel=tol, abs=tol)
    np.testing.assert_allclose(dz, k_dz, rtol=tol, atol=tol)
    assert dz.dtype == dtype
    # the other reading of "weighted mean", sum(w l) / sum(w), is not Keras's: the comparison sees it
    by_weight_sum = loss * z.size / float(w.sum())
    assert by_weight_sum != pytest.approx(k_loss, rel=1e-3)


def test_weighted_bce_two_channels_is_keras_per_pixel_weight(tf, keras):
    """With C > 1 channels Keras averages l over the channels, then weights each pixel: the same as our
    per-element w when w repeats one per-pixel map over the channels (what the docstring says)."""
    rng = np.random.default_rng(4)
    z = rng.normal(0, 3, (2, 4, 5, 2))
    t = (rng.random(z.shape) > 0.5).astype(np.float64)
    s = rng.uniform(0.1, 10, (2, 4, 5, 1))
    loss, dz = binary_crossentropy(z, t, from_logits=True, weights=np.repeat(s, 2, axis=-1))
    bce = keras.losses.BinaryCrossentropy(from_logits=True, dtype="float64")
    k_loss, k_dz = _keras_loss_and_grad(tf, lambda y, p: bce(y, p, sample_weight=tf.constant(s)), t, z)
    assert loss == pytest.approx(k_loss, rel=1e-12)
    np.testing.assert_allclose(dz, k_dz, rtol=1e-12, atol=1e-12)

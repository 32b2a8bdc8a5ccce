"""Losses: Keras semantics (BCE clipping, from logits, Dice), the paper's weighted loss, gradient checks."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from unet_scratch.gradcheck import numeric_gradient, rel_error
from unet_scratch.ops.losses import binary_crossentropy, dice_loss, weighted_softmax_crossentropy


def _probs(rng, shape):
    p = rng.random(shape)
    p[0, 0, 0, 0], p[0, 0, 1, 0] = 1e-9, 1 - 1e-9            # two values Keras clips
    return p


def _keras_loss_and_grad(tf, loss_fn, y_true, y_pred):
    pt = tf.constant(y_pred)
    with tf.GradientTape() as tape:
        tape.watch(pt)
        loss = loss_fn(tf.constant(y_true), pt)
    return float(loss), tape.gradient(loss, pt).numpy()


def test_bce_matches_keras_with_clipping(rng, tf, keras):
    p = _probs(rng, (2, 8, 8, 1)).astype(np.float32)
    t = (rng.random(p.shape) > 0.5).astype(np.float32)
    t[0, 0, 0, 0], t[0, 0, 1, 0] = 1, 0                        # the clipped entries cost ~16 nats
    loss, grad = binary_crossentropy(p, t)
    k_loss, k_grad = _keras_loss_and_grad(tf, keras.losses.BinaryCrossentropy(), t, p)
    assert abs(loss - k_loss) <= 1e-5 * abs(k_loss)
    np.testing.assert_allclose(grad, k_grad, rtol=1e-5, atol=1e-6)
    assert grad[0, 0, 0, 0] == 0 and grad[0, 0, 1, 0] == 0     # no gradient through the clip
    assert grad.dtype == np.float32


def test_bce_from_logits_matches_keras_and_is_stable(rng, tf, keras):
    z = (10 * rng.standard_normal((2, 8, 8, 1))).astype(np.float32)
    z[0, 0, 0, 0], z[0, 0, 1, 0] = 200.0, -200.0
    t = (rng.random(z.shape) > 0.5).astype(np.float32)
    loss, grad = binary_crossentropy(z, t, from_logits=True)
    k_loss, k_grad = _keras_loss_and_grad(tf, keras.losses.BinaryCrossentropy(from_logits=True), t, z)
    assert np.isfinite(loss) and abs(loss - k_loss) <= 1e-5 * abs(k_loss)
    np.testing.assert_allclose(grad, k_grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("from_logits", [False, True])
def test_bce_gradient_check(rng, from_logits):
    y = rng.standard_normal((2, 4, 4, 1)) if from_logits else rng.uniform(0.05, 0.95, (2, 4, 4, 1))
    t = (rng.random(y.shape) > 0.5).astype(float)
    _, grad = binary_crossentropy(y, t, from_logits=from_logits)
    num = numeric_gradient(lambda v: binary_crossentropy(v, t, from_logits=from_logits)[0], y)
    assert rel_error(grad, num) < 1e-7


def test_dice_matches_keras(rng, tf, keras):
    p = rng.random((2, 8, 8, 1)).astype(np.float32)
    t = (rng.random(p.shape) > 0.6).astype(np.float32)
    loss, grad = dice_loss(p, t)
    k_loss, k_grad = _keras_loss_and_grad(tf, keras.losses.Dice(), t, p)
    assert abs(loss - k_loss) < 1e-6
    np.testing.assert_allclose(grad, k_grad, rtol=1e-5, atol=1e-7)
    num = numeric_gradient(lambda v: dice_loss(v, t)[0], p.astype(float))
    assert rel_error(dice_loss(p.astype(float), t)[1], num) < 1e-7


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
    assert abs(loss - float(k_loss)) <= 1e-5 * float(k_loss)
    np.testing.assert_allclose(grad, tape.gradient(k_loss, lt).numpy(), rtol=1e-5, atol=1e-7)
    onehot = np.eye(3, dtype=np.float32)[labels]
    assert weighted_softmax_crossentropy(logits, onehot, w)[0] == pytest.approx(loss)


def test_weighted_softmax_ce_gradient_check(rng):
    logits = rng.standard_normal((2, 4, 4, 3))
    labels = rng.integers(0, 3, (2, 4, 4))
    w = rng.uniform(1, 5, (2, 4, 4))
    _, grad = weighted_softmax_crossentropy(logits, labels, w)
    num = numeric_gradient(lambda v: weighted_softmax_crossentropy(v, labels, w)[0], logits)
    assert rel_error(grad, num) < 1e-7


def test_loss_errors():
    with pytest.raises(ValueError, match="shape"):
        binary_crossentropy(np.zeros((1, 4, 4, 1), np.float32), np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="NaN"):
        binary_crossentropy(np.full((1, 2, 2, 1), np.nan, np.float32), np.zeros((1, 2, 2, 1)))
    with pytest.raises(ValueError, match=r"0/255\? divide by 255"):
        weighted_softmax_crossentropy(np.zeros((1, 2, 2, 2)), np.full((1, 2, 2), 255))
    with pytest.raises(ValueError, match="one weight per pixel"):
        weighted_softmax_crossentropy(np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2), int), np.ones((2, 2)))


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(1, 5), k=st.integers(2, 4), seed=st.integers(0, 999))
def test_weighted_ce_property(n, h, k, seed):
    r = np.random.default_rng(seed)
    logits, labels = r.standard_normal((n, h, h, k)), r.integers(0, k, (n, h, h))
    loss, grad = weighted_softmax_crossentropy(logits, labels)
    assert loss > 0 and abs(grad.sum()) < 1e-9           # softmax - onehot sums to zero per pixel

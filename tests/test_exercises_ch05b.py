"""Chapter 05b's exercise checks accept right answers, reject stubs, and name each classic mistake when they
are fed a real implementation of it (not the Mistake's own function)."""
import math

import numpy as np
import pytest

from unet_scratch.exercises.ch05b import (check_adam, check_compute_fans, check_dropout, check_glorot_uniform,
                                          check_he_normal, check_sgd_momentum)

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


# ------------------------------------------------------------------ right answers, as a student writes them
def sgd_momentum_step(w, g, v, lr, momentum):
    v = momentum * v - lr * g
    return w + v, v


def adam_step(w, g, m, v, iterations, lr, beta_1, beta_2, epsilon):
    t = iterations + 1
    m = beta_1 * m + (1 - beta_1) * g
    v = beta_2 * v + (1 - beta_2) * g * g
    alpha = lr * math.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
    return w - alpha * m / (np.sqrt(v) + epsilon), m, v


def dropout_forward(x, rate, rng, training):
    if not training or rate == 0:
        return x, None
    mask = ((rng.random(x.shape) >= rate) / (1 - rate)).astype(x.dtype)
    return x * mask, mask


def dropout_backward(dy, mask):
    return dy if mask is None else dy * mask


def compute_fans(shape):
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    field = math.prod(shape[:-2])
    return field * shape[-2], field * shape[-1]


def truncated(shape, rng, std):
    z = rng.standard_normal(shape)
    outside = np.abs(z) > 2
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > 2
    return (z * std).astype(np.float32)


def he_normal(shape, rng, dtype="float32"):
    return truncated(shape, rng, math.sqrt(2 / compute_fans(shape)[0]) / 0.87962566103423978).astype(dtype)


def glorot_uniform(shape, rng, dtype="float32"):
    limit = math.sqrt(6 / sum(compute_fans(shape)))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def test_checks_accept_correct_answers(capsys):
    assert check_sgd_momentum(sgd_momentum_step, against_keras=False)
    assert check_adam(adam_step, against_keras=False)
    assert check_dropout(dropout_forward, dropout_backward)
    assert check_compute_fans(compute_fans)
    assert check_he_normal(he_normal)
    assert check_glorot_uniform(glorot_uniform)
    assert capsys.readouterr().out.count("correct") == 6


def test_other_correct_formulations_pass_too():
    def adam_keras_form(w, g, m, v, iterations, lr, beta_1, beta_2, epsilon):      # Keras's own arithmetic
        t = iterations + 1
        m = m + (g - m) * (1 - beta_1)
        v = v + (np.square(g) - v) * (1 - beta_2)
        alpha = np.float32(lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t))
        return w - (m * alpha) / (np.sqrt(v) + epsilon), m, v

    def he_by_inverse_cdf(shape, rng, dtype="float32"):     # another way to a truncated normal
        from scipy.special import ndtr, ndtri
        u = rng.uniform(ndtr(-2), ndtr(2), size=shape)
        return (ndtri(u) * math.sqrt(2 / compute_fans(shape)[0]) / 0.87962566103423978).astype(dtype)

    def in_place_sgd(w, g, v, lr, momentum):                # editing its own copies is fine
        v = v.copy()
        v *= momentum
        v -= lr * g
        return w + v, v
    assert check_adam(adam_keras_form, against_keras=False)
    assert check_he_normal(he_by_inverse_cdf)
    assert check_sgd_momentum(in_place_sgd, against_keras=False)


def test_optimizers_match_keras_itself(keras, capsys):
    assert check_sgd_momentum(sgd_momentum_step)
    assert check_adam(adam_step)
    out = capsys.readouterr().out
    assert "vs keras.optimizers.SGD passes" in out and "vs keras.optimizers.Adam passes" in out


@pytest.mark.parametrize("check", [
    lambda f: check_sgd_momentum(f, against_keras=False), lambda f: check_adam(f, against_keras=False),
    lambda f: check_dropout(f, dropout_backward), lambda f: check_dropout(dropout_forward, f),
    check_compute_fans, check_he_normal, check_glorot_uniform])
def test_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


# ------------------------------------------------------------------ SGD with momentum
def test_sgd_names_pytorchs_convention():
    def torch_style(w, g, v, lr, momentum):
        v = momentum * v + g
        return w - lr * v, v
    with pytest.raises(AssertionError, match=r"PyTorch's convention"):
        check_sgd_momentum(torch_style, against_keras=False)


def test_sgd_names_momentum_on_w():
    def on_w(w, g, v, lr, momentum):
        v = momentum * w - lr * g
        return w + v, v
    with pytest.raises(AssertionError, match=r"momentum applied to w instead of v"):
        check_sgd_momentum(on_w, against_keras=False)


def test_sgd_names_the_flipped_sign():
    def ascent(w, g, v, lr, momentum):
        v = momentum * v + lr * g
        return w + v, v
    with pytest.raises(AssertionError, match=r"sign flipped"):
        check_sgd_momentum(ascent, against_keras=False)


def test_sgd_names_float64_promotion():
    def promoted(w, g, v, lr, momentum):
        v = np.float64(momentum) * v - np.float64(lr) * g
        return w + v, v
    with pytest.raises(AssertionError, match=r"w came back as float64"):
        check_sgd_momentum(promoted, against_keras=False)


# ------------------------------------------------------------------ Adam
def _adam(kind):
    def step(w, g, m, v, iterations, lr, beta_1, beta_2, epsilon):
        t = iterations if kind == "t0" else iterations + 1
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        if kind == "no_correction":
            return w - lr * m / (np.sqrt(v) + epsilon), m, v
        if kind == "torch":
            m_hat, v_hat = m / (1 - beta_1 ** t), v / (1 - beta_2 ** t)
            return w - lr * m_hat / (np.sqrt(v_hat) + epsilon), m, v
        alpha = lr * math.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
        if kind == "eps_inside":
            return w - alpha * m / np.sqrt(v + epsilon), m, v
        return w - alpha * m / (np.sqrt(v) + epsilon), m, v
    return step


@pytest.mark.parametrize("kind,name", [("no_correction", "without bias correction"),
                                       ("eps_inside", "epsilon inside the square root"),
                                       ("torch", "PyTorch's placement of epsilon"),
                                       ("t0", r"counting t from 0")])
def test_adam_names_each_mistake(kind, name):
    with pytest.raises(AssertionError, match=name):
        check_adam(_adam(kind), against_keras=False)


def test_adam_names_t_from_zero_when_numpy_gives_nan():
    def t0_numpy(w, g, m, v, iterations, lr, beta_1, beta_2, epsilon):
        t = np.float32(iterations)
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        with np.errstate(all="ignore"):
            alpha = np.float32(lr) * np.sqrt(1 - np.float32(beta_2) ** t) / (1 - np.float32(beta_1) ** t)
        return w - alpha * m / (np.sqrt(v) + epsilon), m, v
    with pytest.raises(AssertionError, match=r"counting t from 0"):
        check_adam(t0_numpy, against_keras=False)


def test_adam_names_float64_promotion_by_np_sqrt():
    def promoted(w, g, m, v, iterations, lr, beta_1, beta_2, epsilon):
        t = iterations + 1
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        alpha = lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)      # np.float64: promotes w
        return w - alpha * m / (np.sqrt(v) + epsilon), m, v
    with pytest.raises(AssertionError, match=r"came back as float64.*np\.sqrt"):
        check_adam(promoted, against_keras=False)


# ------------------------------------------------------------------ dropout
def _dropout(kind):
    def forward(x, rate, rng, training):
        if (not training and kind != "at_inference") or rate == 0:
            return x, None
        u = rng.random(x.shape)
        keep = u < 1 - rate if kind == "other_mask" else u >= rate
        if kind == "new_mask":
            return x * keep / (1 - rate), (rng, rate)
        scale = {"not_rescaled": 1.0, "times": 1 - rate, "over_rate": 1 / rate}.get(kind, 1 / (1 - rate))
        mask = (keep * scale).astype(x.dtype)
        return x * mask, mask

    def backward(dy, cache):
        if cache is None:
            return dy
        if kind == "new_mask":
            rng, rate = cache
            return dy * (rng.random(dy.shape) >= rate) / (1 - rate)
        return dy * cache
    return forward, backward


@pytest.mark.parametrize("kind,name", [("not_rescaled", "without rescaling"),
                                       ("times", r"multiplying the kept units by 1 - rate"),
                                       ("over_rate", "dividing the kept units by rate"),
                                       ("at_inference", "applied at inference"),
                                       ("new_mask", "new mask drawn in the backward pass"),
                                       ("other_mask", r"keep = u < 1 - rate")])
def test_dropout_names_each_mistake(kind, name):
    with pytest.raises(AssertionError, match=name):
        check_dropout(*_dropout(kind))


def test_dropout_asks_for_the_cache():
    with pytest.raises(AssertionError, match=r"return \(y, cache\)"):
        check_dropout(lambda x, rate, rng, training: x, dropout_backward)


# ------------------------------------------------------------------ fans and initialisers
def test_fans_name_the_missing_receptive_field_and_the_swap():
    with pytest.raises(AssertionError, match="without the receptive field"):
        check_compute_fans(lambda shape: (shape[-2], shape[-1]) if len(shape) > 1 else compute_fans(shape))
    with pytest.raises(AssertionError, match="fan_in and fan_out swapped"):
        check_compute_fans(lambda shape: compute_fans(shape)[::-1])


def _fan_in_no_field(shape):
    return shape[-2] if len(shape) > 2 else compute_fans(shape)[0]


@pytest.mark.parametrize("wrong,name", [
    (lambda shape, rng, dtype="float32": truncated(shape, rng, math.sqrt(2 / _fan_in_no_field(shape)) / 0.8796),
     "fans without the receptive field"),
    (lambda shape, rng, dtype="float32": truncated(shape, rng, math.sqrt(2 / compute_fans(shape)[1]) / 0.8796),
     "fan_out where fan_in belongs"),
    (lambda shape, rng, dtype="float32": (rng.standard_normal(shape) * math.sqrt(2 / compute_fans(shape)[0]))
     .astype(np.float32), "untruncated normal with std sqrt\\(2 / fan_in\\) \\(the paper's"),
    (lambda shape, rng, dtype="float32": (rng.normal(0, math.sqrt(2 / compute_fans(shape)[0]) / 0.8796, shape))
     .astype(np.float32), "untruncated normal with Keras's std"),
    (lambda shape, rng, dtype="float32": truncated(shape, rng, math.sqrt(2 / compute_fans(shape)[0])),
     "without Keras's 0.8796 correction"),
    (lambda shape, rng, dtype="float32": (np.random.standard_normal(shape) * math.sqrt(2 / compute_fans(shape)[0]))
     .astype(np.float32), "global generator"),
])
def test_he_normal_names_each_mistake(wrong, name):
    with pytest.raises(AssertionError, match=name):
        check_he_normal(wrong)


def _limit(shape, fans=compute_fans):
    return math.sqrt(6 / sum(fans(shape)))


@pytest.mark.parametrize("wrong,name", [
    (lambda shape, rng, dtype="float32": (rng.standard_normal(shape) * math.sqrt(2 / sum(compute_fans(shape))))
     .astype(np.float32), "a normal with Glorot's variance"),
    (lambda shape, rng, dtype="float32": he_normal(shape, rng) * 0 + truncated(
        shape, rng, math.sqrt(2 / sum(compute_fans(shape))) / 0.8796), "a normal with Glorot's variance"),
    (lambda shape, rng, dtype="float32": rng.uniform(-1, 1, shape).astype(np.float32)
     * np.float32(_limit(shape, lambda s: (s[-2], s[-1]))), "fans without the receptive field"),
    (lambda shape, rng, dtype="float32": rng.uniform(-1, 1, shape).astype(np.float32)
     * np.float32(math.sqrt(2 / sum(compute_fans(shape)))), "standard deviation .* used as the limit"),
    (lambda shape, rng, dtype="float32": (rng.random(shape) * _limit(shape)).astype(np.float32),
     r"U\[0, limit\)"),
    (lambda shape, rng, dtype="float32": np.random.uniform(-_limit(shape), _limit(shape), shape).astype(np.float32),
     "global generator"),
])
def test_glorot_uniform_names_each_mistake(wrong, name):
    with pytest.raises(AssertionError, match=name):
        check_glorot_uniform(wrong)


def test_initialisers_insist_on_float32_and_the_shape():
    with pytest.raises(AssertionError, match=r"dtype float64"):
        check_glorot_uniform(lambda shape, rng, dtype="float32": glorot_uniform(shape, rng).astype(np.float64))
    with pytest.raises(AssertionError, match=r"expected shape \(3, 3, 128, 128\)"):
        check_he_normal(lambda shape, rng, dtype="float32": he_normal(shape[::-1], rng))

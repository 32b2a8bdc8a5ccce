"""Chapter 05's exercise checks accept right answers, reject stubs and say what is wrong with wrong ones."""
import re

import numpy as np
import pytest

from unet_scratch.exercises.ch05 import (check_central_difference, check_mini_unet_backward, check_rel_error,
                                         check_unet_backward, check_unet_forward, mini_unet_forward)
from unet_scratch.gradcheck import numeric_gradient, rel_error

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


def _central(f, x, h):
    return numeric_gradient(f, x, h=h)


def _mini_backward(x, w1, w2, w3, dy):
    h = np.maximum(x @ w1, 0)
    b = np.maximum(h @ w2, 0)
    dcat = dy @ w3.T
    dw3 = np.concatenate([b, h], axis=1).T @ dy
    db_pre = dcat[:, :b.shape[1]] * (b > 0)
    dh_pre = (db_pre @ w2.T + dcat[:, b.shape[1]:]) * (h > 0)
    return dh_pre @ w1.T, x.T @ dh_pre, h.T @ db_pre, dw3


def test_checks_accept_correct_answers(capsys):
    assert check_central_difference(_central)
    assert check_rel_error(rel_error)
    assert check_mini_unet_backward(_mini_backward)
    assert capsys.readouterr().out.count("correct") == 3


@pytest.mark.parametrize("check", [check_central_difference, check_rel_error, check_mini_unet_backward])
def test_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


def test_the_reference_backward_matches_central_differences():
    rng = np.random.default_rng(1)
    x, w1, w2, w3 = (rng.standard_normal(s) for s in [(3, 4), (4, 5), (5, 6), (11, 2)])
    dy = rng.standard_normal((3, 2))
    grads = _mini_backward(x, w1, w2, w3, dy)
    for k, arr in enumerate((x, w1, w2, w3)):
        def f(_):
            return mini_unet_forward(x, w1, w2, w3)
        assert rel_error(grads[k], numeric_gradient(f, arr, dy)) < 1e-8


def test_central_difference_rejects_a_forward_difference():
    def forward(f, x, h):
        g, f0 = np.zeros(x.shape), f(x)
        for i in np.ndindex(*x.shape):
            old = x[i]
            x[i] = old + h
            g[i] = (f(x) - f0) / h
            x[i] = old
        return g
    with pytest.raises(AssertionError, match=r"central_difference \(f = sum\(x\*\*3\).*a one-sided \(forward\)"):
        check_central_difference(forward)


def test_central_difference_rejects_not_restoring_x():
    def leaky(f, x, h):
        g = np.zeros(x.shape)
        for i in np.ndindex(*x.shape):
            old = x[i]
            x[i] = old + h
            plus = f(x)
            x[i] = old - h
            g[i] = (plus - f(x)) / (2 * h)
        return g
    with pytest.raises(AssertionError, match="x was changed"):
        check_central_difference(leaky)


def test_rel_error_rejects_nan_for_zeros_and_an_asymmetric_measure():
    with pytest.raises(AssertionError, match=r"both zero"):
        check_rel_error(lambda a, b: float(np.linalg.norm(np.subtract(a, b)) /
                                           (np.linalg.norm(a) + np.linalg.norm(b))) if np.any(a) or np.any(b)
                        else float("nan"))
    with pytest.raises(AssertionError, match=r"relative_error \(case"):
        check_rel_error(lambda a, b: float(np.linalg.norm(np.subtract(a, b)) / max(np.linalg.norm(a), 1e-30)))


def test_mini_unet_rejects_forgetting_the_skip_gradient():
    def no_fork(x, w1, w2, w3, dy):
        h = np.maximum(x @ w1, 0)
        b = np.maximum(h @ w2, 0)
        dcat = dy @ w3.T
        dw3 = np.concatenate([b, h], axis=1).T @ dy
        db_pre = dcat[:, :b.shape[1]] * (b > 0)
        dh_pre = (db_pre @ w2.T) * (h > 0)                  # the skip's dcat[:, H2:] is dropped
        return dh_pre @ w1.T, x.T @ dh_pre, h.T @ db_pre, dw3
    with pytest.raises(AssertionError, match=r"mini_unet_backward \(N=4.*forgetting the skip's gradient"):
        check_mini_unet_backward(no_fork)


def test_mini_unet_rejects_swapping_the_split():
    def swapped(x, w1, w2, w3, dy):
        h = np.maximum(x @ w1, 0)
        b = np.maximum(h @ w2, 0)
        dcat = dy @ w3.T
        dw3 = np.concatenate([h, b], axis=1).T @ dy           # as if the skip came first
        db_pre = dcat[:, h.shape[1]:] * (b > 0)
        dh_pre = (db_pre @ w2.T + dcat[:, :h.shape[1]]) * (h > 0)
        return dh_pre @ w1.T, x.T @ dh_pre, h.T @ db_pre, dw3
    with pytest.raises(AssertionError, match=r"mini_unet_backward \(N=4.*swapping the concatenation's halves"):
        check_mini_unet_backward(swapped)


# ------------------------------------------------------------------ named mistakes, fed as real code
def _one_sided(f, x, h, sign=1):
    g, f0 = np.zeros(x.shape), f(x)
    for i in np.ndindex(*x.shape):
        old = x[i]
        x[i] = old + sign * h
        g[i] = sign * (f(x) - f0) / h
        x[i] = old
    return g


def _over_h(f, x, h):
    g = np.zeros(x.shape)
    for i in np.ndindex(*x.shape):
        old = x[i]
        x[i] = old + h
        plus = f(x)
        x[i] = old - h
        minus = f(x)
        x[i] = old
        g[i] = (plus - minus) / h
    return g


@pytest.mark.parametrize("wrong, name", [
    (_one_sided, "a one-sided (forward) difference"),
    (lambda f, x, h: _one_sided(f, x, h, sign=-1), "a one-sided (backward) difference"),
    (_over_h, "a central difference divided by h instead of 2h"),
])
def test_central_difference_names_each_mistake(wrong, name):
    with pytest.raises(AssertionError, match=r"central_difference \(f = sum\(x\*\*3\).*your answer is what "
                                             + re.escape(name)):
        check_central_difference(wrong)


def _unguarded(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(invalid="ignore"):
        return float(np.sqrt(np.sum((a - b) ** 2)) / (np.sqrt(np.sum(a ** 2)) + np.sqrt(np.sum(b ** 2))))


@pytest.mark.parametrize("wrong, name", [
    (_unguarded, "dividing by ||a|| + ||b|| without the max"),
    (lambda a, b: float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-30)), "dividing by ||a|| alone"),
    (lambda a, b: float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-30))),
     "an element-wise relative error"),
    (lambda a, b: float(np.linalg.norm(a - b)), "the difference without the division"),
])
def test_rel_error_names_each_mistake(wrong, name):
    with pytest.raises(AssertionError, match=r"relative_error \(case .*that is what " + re.escape(name)):
        check_rel_error(wrong)


def _mini_skip_below_relu(x, w1, w2, w3, dy):
    h = np.maximum(x @ w1, 0)
    b = np.maximum(h @ w2, 0)
    dcat = dy @ w3.T
    dw3 = np.concatenate([b, h], axis=1).T @ dy
    db_pre = dcat[:, :b.shape[1]] * (b > 0)
    dh_pre = (db_pre @ w2.T) * (h > 0) + dcat[:, b.shape[1]:]     # skip added after the mask
    return dh_pre @ w1.T, x.T @ dh_pre, h.T @ db_pre, dw3


def test_mini_unet_names_the_skip_added_after_the_relu():
    with pytest.raises(AssertionError, match=r"mini_unet_backward \(N=4.*your answer is what adding the skip's "
                                             "gradient after ReLU's mask"):
        check_mini_unet_backward(_mini_skip_below_relu)


# ------------------------------------------------------------------ the U-Net from its blocks
def _forward(model, x, swap=False, pair_in_order=False, training=False):
    skips, h = [], x
    for block in model.encoder:
        skip, h = block.forward(h, training=training)
        skips.append(skip)
    h = model.bottleneck.forward(h, training=training)
    pairs = zip(model.decoder, skips if pair_in_order else skips[::-1])
    for block, skip in pairs:
        up = block.upconv(h)
        if block.crop is not None:
            skip = block.crop(skip)
        h = block.conv2(block.conv1(block.concat([skip, up] if swap else [up, skip])))
    return model.head(h)


def _backward(model, dy, forget=False, swap=False, pair_in_order=False, no_crop=False):
    dh = model.head.backward(dy)
    dskips = []
    for block in model.decoder[::-1]:
        dh = block.conv2.backward(dh)
        dh = block.conv1.backward(dh)
        parts = block.concat.backward(dh)
        dup, dskip = (parts[1], parts[0]) if swap else (parts[0], parts[1])
        if block.crop is not None and not no_crop:
            dskip = block.crop.backward(dskip)
        dskips.append(dskip)
        dh = block.upconv.backward(dup)
    dh = model.bottleneck.backward(dh)
    for level in range(len(model.encoder) - 1, -1, -1):
        block = model.encoder[level]
        dskip = dskips[len(dskips) - 1 - level] if pair_in_order else dskips[level]
        dh = block.backward(dh, 0 * dskip if forget else dskip)
    return dh


def test_unet_checks_accept_correct_answers(capsys):
    assert check_unet_forward(_forward)
    assert check_unet_backward(_backward)
    assert check_unet_forward(lambda model, x: model.forward(x))
    assert check_unet_backward(lambda model, dy: model.backward(dy))
    out = capsys.readouterr().out
    assert out.count("correct: unet_forward passes 3 cases") == 2 and out.count("correct: unet_backward") == 2


@pytest.mark.parametrize("check", [check_unet_forward, check_unet_backward])
def test_unet_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


@pytest.mark.parametrize("kwargs, name", [
    (dict(pair_in_order=True), "pairing the skips with the wrong decoder levels"),
    (dict(swap=True), "swapping the concatenation's halves"),
    (dict(training=True), "running dropout in training mode"),
])
def test_unet_forward_names_each_mistake(kwargs, name):
    with pytest.raises(AssertionError, match=r"unet_forward \(depth 2, same padding.*" + re.escape(name)):
        check_unet_forward(lambda model, x: _forward(model, x, **kwargs))


@pytest.mark.parametrize("kwargs, name, case", [
    (dict(forget=True), "forgetting the skip's gradient", "depth 2, same"),
    (dict(pair_in_order=True), "pairing the skips' gradients with the wrong encoder levels", "depth 2, same"),
    (dict(swap=True), "swapping the concatenation's halves", "depth 2, same"),
    (dict(no_crop=True), "skipping the crop's backward", "depth 2, valid"),
])
def test_unet_backward_names_each_mistake(kwargs, name, case):
    with pytest.raises(AssertionError, match=rf"unet_backward \({case}.*" + re.escape(name)):
        check_unet_backward(lambda model, dy: _backward(model, dy, **kwargs))


def test_unet_backward_says_which_gradient_is_wrong():
    def no_head_grads(model, dy):          # the head's own gradients never computed: a stale-free check
        dx = model.backward(dy)
        model.head.grads.clear()
        return dx
    with pytest.raises(AssertionError, match=r"unet_backward \(depth 2, same.*model.grads\['head/kernel'\] was "
                                             "not computed"):
        check_unet_backward(no_head_grads)
    with pytest.raises(AssertionError, match=r"unet_backward \(depth 2, same.*dx .* is wrong"):
        check_unet_backward(lambda model, dy: 2 * model.backward(dy))

"""Chapter 08's checks accept the solution, reject stubs and name each classic mistake."""
import re

import numpy as np
import pytest
from scipy import ndimage

from unet_scratch import training
from unet_scratch.exercises import ch08

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


def deform(image, mask, field, order_mask=0, mode="reflect", sign=1, swap=False):
    h, w = image.shape
    yy, xx = np.indices((h, w))
    uy, ux = (field[1], field[0]) if swap else (field[0], field[1])
    coords = [yy + sign * uy, xx + sign * ux]
    out = ndimage.map_coordinates(image, coords, order=3, mode=mode)
    out = np.clip(out, image.min(), image.max()).astype(image.dtype)
    return out, ndimage.map_coordinates(mask, coords, order=order_mask, mode=mode).astype(mask.dtype)


def good_step(model, optimizer, x, t):
    z = model.forward(x, training=True, logits=True)
    loss, dz, _ = training.loss_from_logits(model, z, t, loss="bce")
    model.backward(dz)
    optimizer.apply(model.params, model.grads)
    return loss


def good_dice(p, t):
    pred, truth = p > 0.5, t > 0.5
    total = pred.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * (pred & truth).sum() / total)


def test_solutions_pass(capsys):
    assert ch08.check_deform_pair(deform)
    assert ch08.check_train_step(good_step)
    assert ch08.check_global_dice(good_dice)
    assert capsys.readouterr().out.count("correct") == 3


@pytest.mark.parametrize("check", [ch08.check_deform_pair, ch08.check_train_step, ch08.check_global_dice])
def test_stubs_are_not_implemented_yet(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


def _named(name):
    return "is what " + re.escape(name)


@pytest.mark.parametrize("kw, name", [
    (dict(order_mask=3), "the mask interpolated like the image"),
    (dict(order_mask=1), "the mask interpolated bilinearly"),
    (dict(sign=-1), "the displacement subtracted"),
    (dict(swap=True), "the field's two components swapped"),
    (dict(mode="constant"), "zeros brought in at the border"),
])
def test_deform_names_each_mistake(kw, name):
    with pytest.raises(AssertionError, match=r"deform_pair \(membranes.*" + _named(name)):
        ch08.check_deform_pair(lambda i, m, f: deform(i, m, f, **kw))


def test_deform_rejects_an_unclipped_image():
    def unclipped(image, mask, field):
        yy, xx = np.indices(image.shape)
        coords = [yy + field[0], xx + field[1]]
        return (ndimage.map_coordinates(image, coords, order=3, mode="reflect"),
                ndimage.map_coordinates(mask, coords, order=0, mode="reflect"))
    with pytest.raises(AssertionError, match=r"deform_pair \(membranes.*output 0 is wrong"):
        ch08.check_deform_pair(unclipped)


def no_update(model, optimizer, x, t):
    z = model.forward(x, training=True, logits=True)
    loss, dz, _ = training.loss_from_logits(model, z, t, loss="bce")
    model.backward(dz)
    return loss


def sigmoid_twice(model, optimizer, x, t):
    p = model.forward(x, training=True)                        # probabilities, then a sigmoid again
    loss, dz, _ = training.loss_from_logits(model, p, t, loss="bce")
    model.backward(dz)
    optimizer.apply(model.params, model.grads)
    return loss


def loss_after(model, optimizer, x, t):
    good_step(model, optimizer, x, t)
    z = model.forward(x, training=True, logits=True)
    return training.loss_from_logits(model, z, t, loss="bce")[0]


@pytest.mark.parametrize("wrong, message", [
    (no_update, r"train_step \(step 1\): .* did not change: that is what a step without an update gives"),
    (sigmoid_twice, r"train_step \(step 1\): your loss is what the sigmoid applied twice"),
    (loss_after, r"train_step \(step 1\): your loss is what the loss measured after the update"),
])
def test_train_step_names_each_mistake(wrong, message):
    with pytest.raises(AssertionError, match=message):
        ch08.check_train_step(wrong)


def per_image(p, t):
    return float(np.mean([good_dice(p[i:i + 1], t[i:i + 1]) for i in range(len(p))]))


def soft(p, t):
    return float(2 * (p * t).sum() / (p.sum() + t.sum())) if p.sum() + t.sum() else 1.0


def empty_zero(p, t):
    pred, truth = p > 0.5, t > 0.5
    return float(2 * (pred & truth).sum() / max(pred.sum() + truth.sum(), 1))


@pytest.mark.parametrize("wrong, case, name", [
    (per_image, "random batch of 3", "the mean of per-image Dice values"),
    (soft, "random batch of 3", "the soft Dice of the probabilities"),
    (empty_zero, "empty prediction, empty target", "0 for an empty prediction of an empty target"),
])
def test_global_dice_names_each_mistake(wrong, case, name):
    with pytest.raises(AssertionError, match=rf"global_dice \({case}\): .*" + _named(name)):
        ch08.check_global_dice(wrong)

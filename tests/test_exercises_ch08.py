"""Chapter 08's checks accept the solution, reject stubs and plausible mistakes."""
import numpy as np
import pytest

from unet_scratch import training
from unet_scratch.exercises import ch08

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


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


def test_solutions_pass():
    assert ch08.check_train_step(good_step)
    assert ch08.check_global_dice(good_dice)
    assert ch08.check_steps_per_epoch(lambda n, b: -(-n // b))


@pytest.mark.parametrize("check", [ch08.check_train_step, ch08.check_global_dice, ch08.check_steps_per_epoch])
def test_stubs_are_not_implemented_yet(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


def test_mistakes_are_named():
    def no_update(model, optimizer, x, t):
        z = model.forward(x, training=True, logits=True)
        loss, dz, _ = training.loss_from_logits(model, z, t, loss="bce")
        model.backward(dz)
        return loss
    with pytest.raises(AssertionError, match="did not change"):
        ch08.check_train_step(no_update)

    def per_image(p, t):
        return float(np.mean([good_dice(p[i:i + 1], t[i:i + 1]) for i in range(len(p))]))
    with pytest.raises(AssertionError, match="per-image"):
        ch08.check_global_dice(per_image)
    with pytest.raises(AssertionError, match="expected 17"):
        ch08.check_steps_per_epoch(lambda n, b: n // b)

"""Chapter 08's exercises: a training step, the epoch's global Dice, steps per epoch."""
from __future__ import annotations

import numpy as np

from .base import call_student, check_arrays, check_cases


def check_train_step(fn):
    """fn(model, optimizer, x, t) -> loss: one BCE-from-logits step; compared with the reference step."""
    from ..model import UNet
    from ..optimizers import Adam
    from ..training import loss_from_logits
    rng = np.random.default_rng(0)
    x = rng.random((2, 16, 16, 1), dtype=np.float32)
    t = (rng.random((2, 16, 16, 1)) > 0.5).astype(np.float32)
    mine, ref = (UNet((16, 16, 1), base_filters=2, depth=2, dropout=0, seed=3) for _ in range(2))
    opt_mine, opt_ref = Adam(1e-2), Adam(1e-2)
    for step in range(2):
        loss = call_student(fn, (mine, opt_mine, x, t), "train_step")
        z = ref.forward(x, training=True, logits=True)
        ref_loss, dz, _ = loss_from_logits(ref, z, t, loss="bce")
        ref.backward(dz)
        opt_ref.apply(ref.params, ref.grads)
        if loss is None or not np.isclose(float(loss), ref_loss, rtol=1e-5):
            raise AssertionError(f"train_step: step {step + 1} returned loss {loss!r}, expected {ref_loss:.6f} "
                                 "(binary cross-entropy from the logits, before the update)")
        for name in ref.params:
            if not np.allclose(mine.params[name], ref.params[name], rtol=1e-5, atol=1e-7):
                what = ("the weights did not change: call optimizer.apply(model.params, model.grads)"
                        if np.array_equal(mine.params[name], UNet((16, 16, 1), base_filters=2, depth=2,
                                                                  dropout=0, seed=3).params[name])
                        else "the weights differ from the reference step's (forward with logits=True?)")
                raise AssertionError(f"train_step: after step {step + 1}, {name}: {what}")
    print("correct: train_step matches the reference step twice in a row")
    return True


def check_global_dice(fn):
    """fn(probabilities, targets) -> float, the Dice over the whole batch at threshold 0.5."""
    rng = np.random.default_rng(1)
    p = rng.random((3, 8, 8, 1))
    t = (rng.random((3, 8, 8, 1)) > 0.6).astype(np.float32)
    pred, truth = p > 0.5, t > 0.5
    expected = float(2 * (pred & truth).sum() / (pred.sum() + truth.sum()))
    per_image = float(np.mean([2 * (pred[i] & truth[i]).sum() / (pred[i].sum() + truth[i].sum())
                               for i in range(3)]))
    got = call_student(fn, (p, t), "global_dice")
    if got is not None and np.isclose(got, per_image) and not np.isclose(per_image, expected):
        raise AssertionError("global_dice: that is the mean of per-image Dice values; sum the intersections "
                             "and the sizes over the whole batch first")
    check_arrays(lambda a, b: np.float64(fn(a, b)), [
        ((p, t), np.float64(expected), "random batch"),
        ((np.zeros((1, 4, 4, 1)), np.zeros((1, 4, 4, 1))), np.float64(1.0), "empty prediction, empty target"),
        ((np.ones((1, 4, 4, 1)), np.zeros((1, 4, 4, 1))), np.float64(0.0), "everything predicted, nothing true"),
    ], "global_dice")
    return True


def check_steps_per_epoch(fn):
    """fn(n, batch_size) -> number of batches, the last one possibly smaller."""
    return check_cases(fn, [((64, 4), 16), ((65, 4), 17), ((3, 4), 1), ((1, 1), 1)], "steps_per_epoch")

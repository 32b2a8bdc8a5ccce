"""Chapter 08's exercises: the elastic deformation's resampling, a training step, the epoch's global Dice.

Each check names the classic mistakes of its exercise (see :class:`~unet_scratch.exercises.base.Mistake`).
"""
from __future__ import annotations

import numpy as np

from .base import Mistake, call_student, check_arrays


# ------------------------------------------------------------------ 1. resampling image and mask by one field
def _resample(x, field, order, mode="reflect", sign=1.0, swap=False):
    from scipy import ndimage
    h, w = x.shape
    yy, xx = np.mgrid[0:h, 0:w]
    dy, dx = (field[1], field[0]) if swap else (field[0], field[1])
    return ndimage.map_coordinates(x, [yy + sign * dy, xx + sign * dx], order=order, mode=mode)


def _deformed(image, mask, field, order_mask=0, **kw):
    warped = np.clip(_resample(image, field, 3, **kw), image.min(), image.max()).astype(image.dtype)
    return warped, _resample(mask, field, order_mask, **kw).astype(mask.dtype)


DEFORM_MISTAKES = [
    Mistake("the mask interpolated like the image (bicubic: values between 0 and 1 at every edge)",
            "resample the mask with order=0 (nearest neighbour), so that it keeps exactly the values {0, 1}",
            lambda image, mask, field: _deformed(image, mask, field, order_mask=3)),
    Mistake("the mask interpolated bilinearly (order=1: values between 0 and 1 at every edge)",
            "resample the mask with order=0 (nearest neighbour), so that it keeps exactly the values {0, 1}",
            lambda image, mask, field: _deformed(image, mask, field, order_mask=1)),
    Mistake("the displacement subtracted (in(y - u_y, x - u_x): the field pushed forward)",
            "out(y, x) reads the input AT (y + u_y, x + u_x): add the field to the output pixel's coordinates",
            lambda image, mask, field: _deformed(image, mask, field, sign=-1.0)),
    Mistake("the field's two components swapped (field[0] applied along x)",
            "field[0] is the displacement along the rows (y), field[1] along the columns (x)",
            lambda image, mask, field: _deformed(image, mask, field, swap=True)),
    Mistake("zeros brought in at the border (mode='constant')",
            "mirror at the border: map_coordinates(..., mode='reflect')",
            lambda image, mask, field: _deformed(image, mask, field, mode="constant")),
]


def check_deform_pair(fn):
    """fn(image, mask, field) -> (image', mask'): image (H, W) float32 resampled bicubically at
    (y + field[0], x + field[1]) with mirrored borders and clipped to its value range, mask (H, W) {0, 1}
    by nearest neighbour with the same field. field: (2, H, W) float64 pixels (``augment.displacement_field``)."""
    from ..augment import displacement_field, scaled_sigma
    from ..data import load
    images, masks = load("membranes", "train", n=2, size=64)
    cases = []
    for k, (sigma, label) in enumerate([(scaled_sigma((64, 64)), "membranes 64 x 64, sigma 1.25 px (scaled)"),
                                        (6.0, "membranes 64 x 64, sigma 6 px")]):
        image, mask = images[k, ..., 0], masks[k, ..., 0]
        field = displacement_field(image.shape, np.random.default_rng(10 + k), sigma=sigma)
        cases.append(((image, mask, field), _deformed(image, mask, field), label))
    return check_arrays(fn, cases, "deform_pair", rtol=1e-5, atol=1e-6, mistakes=DEFORM_MISTAKES)


# ------------------------------------------------------------------ 2. one training step
def _fresh_model(weights=None):
    from ..model import UNet
    model = UNet((16, 16, 1), base_filters=2, depth=2, dropout=0, seed=3)
    if weights is not None:
        model.set_weights({k: v.copy() for k, v in weights.items()})
    return model


def _bce(model, x, t, logits=True):
    from ..training import loss_from_logits
    return loss_from_logits(model, model.forward(x, training=True, logits=logits), t, loss="bce")[0]


# answer(weights before the step, weights after the reference step, x, t) -> the loss that mistake returns
TRAIN_STEP_MISTAKES = [
    Mistake("the sigmoid applied twice (forward without logits=True, its probabilities fed to "
            "loss_from_logits)",
            "call model.forward(x, training=True, logits=True): loss_from_logits applies the sigmoid itself",
            lambda before, after, x, t: _bce(_fresh_model(before), x, t, logits=False)),
    Mistake("the loss measured after the update",
            "return the loss of the forward pass the gradient came from, computed before optimizer.apply",
            lambda before, after, x, t: _bce(_fresh_model(after), x, t)),
]


def check_train_step(fn):
    """fn(model, optimizer, x, t) -> loss: one BCE-from-logits step; compared with the reference step."""
    from ..optimizers import Adam
    from ..training import loss_from_logits
    rng = np.random.default_rng(0)
    x = rng.random((2, 16, 16, 1), dtype=np.float32)
    t = (rng.random((2, 16, 16, 1)) > 0.5).astype(np.float32)
    mine, ref = _fresh_model(), _fresh_model()
    start = {k: v.copy() for k, v in ref.params.items()}
    opt_mine, opt_ref = Adam(1e-2), Adam(1e-2)
    for step in range(2):
        before = {k: v.copy() for k, v in ref.params.items()}
        loss = call_student(fn, (mine, opt_mine, x, t), "train_step")
        z = ref.forward(x, training=True, logits=True)
        ref_loss, dz, _ = loss_from_logits(ref, z, t, loss="bce")
        ref.backward(dz)
        opt_ref.apply(ref.params, ref.grads)
        label = f"train_step (step {step + 1})"
        if loss is None:
            raise AssertionError(f"{label}: your function returned None; return the loss (a float)")
        if not np.isclose(float(loss), ref_loss, rtol=1e-5):
            after = {k: v.copy() for k, v in ref.params.items()}
            for mistake in TRAIN_STEP_MISTAKES:
                if np.isclose(float(loss), mistake.answer(before, after, x, t), rtol=1e-5):
                    raise AssertionError(f"{label}: your loss is what {mistake.name} gives. {mistake.fix}")
            raise AssertionError(f"{label}: returned loss {float(loss):.6f}, expected {ref_loss:.6f} (binary "
                                 "cross-entropy from the logits, before the update)")
        for name in ref.params:
            if not np.allclose(mine.params[name], ref.params[name], rtol=1e-5, atol=1e-7):
                if np.array_equal(mine.params[name], start[name]):
                    raise AssertionError(f"{label}: {name} did not change: that is what a step without an update "
                                         "gives. Call model.backward(dz), then optimizer.apply(model.params, "
                                         "model.grads)")
                raise AssertionError(f"{label}: {name} differs from the reference step's (backward given dL/dz "
                                     "of the logits? one apply per step?)")
    print("correct: train_step matches the reference step twice in a row (loss and every weight within 1e-5)")
    return True


# ------------------------------------------------------------------ 3. the epoch's global Dice
def _per_image(p, t):
    pred, truth = p > 0.5, t > 0.5
    values = []
    for i in range(len(p)):
        total = pred[i].sum() + truth[i].sum()
        values.append(1.0 if total == 0 else 2 * (pred[i] & truth[i]).sum() / total)
    return np.float64(np.mean(values))


def _soft(p, t):
    total = p.sum() + t.sum()
    return np.float64(1.0 if total == 0 else 2 * (p * t).sum() / total)


def _empty_is_zero(p, t):
    pred, truth = p > 0.5, t > 0.5
    total = pred.sum() + truth.sum()
    return np.float64(0.0 if total == 0 else 2 * (pred & truth).sum() / total)


DICE_MISTAKES = [
    Mistake("the mean of per-image Dice values",
            "sum the intersections and the sizes over the whole batch first, then divide once",
            _per_image),
    Mistake("the soft Dice of the probabilities (no threshold)",
            "threshold first: P = probabilities > 0.5, T = targets > 0.5, then count pixels",
            _soft),
    Mistake("0 for an empty prediction of an empty target",
            "0 / 0: nothing to find and nothing found is a perfect score, return 1.0",
            _empty_is_zero),
]


def check_global_dice(fn):
    """fn(probabilities, targets) -> float, the Dice over the whole batch at threshold 0.5."""
    rng = np.random.default_rng(1)
    p = rng.random((3, 8, 8, 1))
    t = (rng.random((3, 8, 8, 1)) > 0.6).astype(np.float32)
    pred, truth = p > 0.5, t > 0.5
    expected = float(2 * (pred & truth).sum() / (pred.sum() + truth.sum()))
    return check_arrays(lambda a, b: np.float64(fn(a, b)), [
        ((p, t), np.float64(expected), "random batch of 3"),
        ((np.zeros((1, 4, 4, 1)), np.zeros((1, 4, 4, 1))), np.float64(1.0), "empty prediction, empty target"),
        ((np.ones((1, 4, 4, 1)), np.zeros((1, 4, 4, 1))), np.float64(0.0), "everything predicted, nothing true"),
    ], "global_dice", mistakes=DICE_MISTAKES)

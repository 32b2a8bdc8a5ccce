"""A softmax head with K > 2 classes trains end to end: class-index masks through training.prepare, the
paper's weighted cross-entropy, and fit/evaluate reporting the foreground Dice (every class but 0)."""
import warnings

import numpy as np
import pytest

from unet_scratch import UNet, training
from unet_scratch.ops.activations import softmax


def _three_classes(n=6, size=16, seed=0):
    """Squares on a dark background: class 1 inside, class 2 on a 1-pixel rim; the image shows both."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size, 1), np.float32)
    labels = np.zeros((n, size, size, 1), np.float32)
    for i in range(n):
        top, left = rng.integers(1, size - 9, 2)
        labels[i, top:top + 8, left:left + 8] = 2
        labels[i, top + 1:top + 7, left + 1:left + 7] = 1
        images[i] = np.where(labels[i] == 2, 1.0, np.where(labels[i] == 1, 0.5, 0.0))
    images += 0.05 * rng.standard_normal(images.shape).astype(np.float32)
    return np.clip(images, 0, 1), labels


def _model(classes=3, **kwargs):
    return UNet((16, 16, 1), base_filters=4, depth=1, dropout=0, out_channels=classes,
                out_activation="softmax", kernel_initializer="he_normal", seed=0, **kwargs)


def test_prepare_accepts_class_indices_for_a_softmax_head():
    images, labels = _three_classes()
    x, t, w = training.prepare(_model(), images, labels)
    assert t.shape == labels.shape and np.array_equal(t, labels) and w is None
    x, t, _ = training.prepare(_model(), images, labels[..., 0])          # (N, H, W) works too
    assert t.shape == labels.shape


@pytest.mark.parametrize("masks, message", [
    (lambda m: m * 2, r"3 classes takes class indices 0\.\.2 as masks, found 4"),
    (lambda m: m + 0.5, r"found 0\.5"),
    (lambda m: -m, r"found -2, -1"),
])
def test_prepare_names_bad_class_indices(masks, message):
    images, labels = _three_classes()
    with pytest.raises(ValueError, match=message):
        training.prepare(_model(), images, masks(labels))


def test_prepare_refuses_one_hot_masks_with_the_fix():
    images, labels = _three_classes()
    onehot = np.eye(3, dtype=np.float32)[labels[..., 0].astype(int)]
    with pytest.raises(ValueError, match=r"argmax\(-1\)"):
        training.prepare(_model(), images, onehot)


def test_binary_heads_still_take_binary_masks():
    images, labels = _three_classes()
    sigmoid = UNet((16, 16, 1), base_filters=4, depth=1, dropout=0, seed=0)
    with pytest.raises(ValueError, match="mask values must be 0/1"):
        training.prepare(sigmoid, images, labels)
    with warnings.catch_warnings(record=True) as caught:                  # 2 classes: 0/255 still normalised
        warnings.simplefilter("always")
        _, t, _ = training.prepare(_model(2), images, (labels > 0) * 255.0)
    assert any("0/255" in str(c.message) for c in caught) and set(np.unique(t)) == {0.0, 1.0}


def test_foreground_probability_and_mask_for_three_classes():
    model = _model()
    z = np.random.default_rng(1).standard_normal((2, 16, 16, 3)).astype(np.float32)
    t = np.random.default_rng(2).integers(0, 3, (2, 16, 16, 1)).astype(np.float32)
    value, dz, p = training.loss_from_logits(model, z, t, loss="weighted_ce")
    assert np.allclose(p, 1 - softmax(z)[0][..., :1]) and dz.shape == z.shape and np.isfinite(value)
    assert np.array_equal(training.foreground(model, t), (t > 0).astype(np.float32))
    two = _model(2)
    _, _, p2 = training.loss_from_logits(two, z[..., :2], (t > 0).astype(np.float32), loss="weighted_ce")
    assert np.allclose(p2, softmax(z[..., :2])[0][..., 1:2])
    assert training.foreground(two, t) is t


def test_fit_trains_a_three_class_softmax_head():
    images, labels = _three_classes(n=8)
    model = _model()
    before = training.evaluate(model, (images, labels), loss="weighted_ce")
    h = training.fit(model, (images, labels), (images[:4], labels[:4]), epochs=25, batch_size=4,
                     learning_rate=1e-2, loss="weighted_ce", seed=0, verbose=0)
    after = training.evaluate(model, (images, labels), loss="weighted_ce")
    assert after["loss"] < 0.5 * before["loss"]
    assert 0.0 <= h.history["val_dice"][-1] <= 1.0 and after["dice"] > 0.8
    pred = model.forward(images).argmax(-1)
    for k in (0, 1, 2):                                  # every class is predicted somewhere it belongs
        assert np.any((pred == k) & (labels[..., 0] == k))


# ------------------------------------------------------------------ unet_scratch.multiclass
def test_boundary_classes_of_two_touching_squares():
    from unet_scratch.multiclass import boundary_classes
    inst = np.zeros((8, 10), np.int32)
    inst[1:6, 1:5] = 1
    inst[1:6, 5:9] = 2                                   # touching along columns 4 | 5
    c = boundary_classes(inst)
    assert c.dtype == np.int32 and c.shape == inst.shape
    assert np.array_equal(c == 0, inst == 0)             # background stays background
    assert np.all(c[1:6, 4] == 2) and np.all(c[1:6, 5] == 2)      # the contact is boundary on both sides
    assert np.all(c[1, 1:9] == 2) and np.all(c[5, 1:9] == 2)      # so are the outer rims
    assert np.all(c[2:5, 2:4] == 1) and np.all(c[2:5, 6:8] == 1)  # the interiors
    wide = boundary_classes(inst[None], width=2)[0]
    assert np.all(wide[3, 1:9] == 2) and wide.shape == inst.shape     # 2 px from every edge: no interior left


def test_boundary_classes_refuses_a_mask():
    from unet_scratch.multiclass import boundary_classes
    with pytest.raises(ValueError, match="integer labels"):
        boundary_classes(np.ones((4, 4), np.float32))
    with pytest.raises(ValueError, match="at least 1 pixel"):
        boundary_classes(np.ones((4, 4), np.int32), width=0)


def test_class_balance_weights_give_each_class_the_same_total():
    from unet_scratch.multiclass import class_balance_weights
    labels = np.array([[0, 0, 0, 0, 0, 0, 1, 1, 2, 0]])
    w = class_balance_weights(labels, 4)                  # class 3 absent
    assert w.shape == labels.shape and abs(float(w.mean()) - 1) < 1e-6
    totals = [w[labels == c].sum() for c in range(3)]
    assert np.allclose(totals, totals[0])
    with pytest.raises(ValueError, match="classes = 2"):
        class_balance_weights(labels, 2)


def test_per_class_dice():
    from unet_scratch.multiclass import per_class_dice
    labels = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    d = per_class_dice(pred, labels, 4)
    assert np.allclose(d, [2 * 1 / 4, 2 * 2 / 5, 2 * 1 / 3, 1.0])
    with pytest.raises(ValueError, match="argmax"):
        per_class_dice(np.zeros((6, 3)), labels, 3)

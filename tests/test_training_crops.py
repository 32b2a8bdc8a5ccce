"""Training on images of any size: random crops of the model's tile, part of the bit-exact resume."""
import numpy as np
import pytest

from unet_scratch import UNet, data, training


def _ragged():
    x, y = data.load("membranes", "train", n=4, size=48)[:2]
    images = [x[0], x[1][:40], x[2][:, :44], x[3]]
    masks = [y[0], y[1][:40], y[2][:, :44], y[3]]
    return images, masks


def _model():
    return UNet((32, 32, 1), base_filters=4, depth=2, seed=0)


def test_crops_are_windows_of_the_images_drawn_from_the_step_counter():
    images, masks = _ragged()
    d = training.prepare_crops(_model(), images, masks, size=(32, 32))
    order = training.epoch_order(4, seed=0, epoch=1)
    xb, tb, _ = training.make_batch(d, order, 0, 4, seed=0, epoch=1, crop=(32, 32))
    again, _, _ = training.make_batch(d, order, 0, 4, seed=0, epoch=1, crop=(32, 32))
    other, _, _ = training.make_batch(d, order, 1 - 1, 4, seed=0, epoch=2, crop=(32, 32))
    assert xb.shape == (4, 32, 32, 1) and tb.shape == (4, 32, 32, 1)
    np.testing.assert_array_equal(xb, again)                          # a function of (seed, epoch, step)
    assert not np.array_equal(xb, other)
    for k, i in enumerate(order[:4]):                                 # each crop is a window of its image
        full = d[0][i][..., 0]
        hits = [(r, c) for r in range(full.shape[0] - 31) for c in range(full.shape[1] - 31)
                if np.array_equal(full[r:r + 32, c:c + 32], xb[k, ..., 0])]
        assert hits, f"crop {k} is not a window of image {i}"
        r, c = hits[0]
        np.testing.assert_array_equal(d[1][i][r:r + 32, c:c + 32], tb[k])


def test_grid_crops_cover_every_pixel():
    assert training.tile_origins(40, 32) == [0, 8] and training.tile_origins(32, 32) == [0]
    assert training.tile_origins(100, 32) == [0, 32, 64, 68]
    images, masks = _ragged()
    x, t, _ = training.grid_crops(images, masks, None, (32, 32))
    assert x.shape == (4 + 4 + 4 + 4, 32, 32, 1) and t.shape[0] == x.shape[0]


def test_a_resumed_cropped_run_equals_an_uninterrupted_one(tmp_path):
    images, masks = _ragged()
    settings = dict(epochs=3, batch_size=2, crop=32, augment="flip", seed=5, verbose=0)
    whole = _model()
    training.fit(whole, (images, masks), (images[:2], masks[:2]), **settings)
    parts = _model()
    h = training.fit(parts, (images, masks), (images[:2], masks[:2]), checkpoint_dir=tmp_path, max_steps=3,
                     **settings)
    assert "max_steps" in h.stop_reason
    resumed = _model()
    training.fit(resumed, (images, masks), (images[:2], masks[:2]), checkpoint_dir=tmp_path, resume=True,
                 **settings)
    for name in whole.params:
        np.testing.assert_array_equal(resumed.params[name], whole.params[name], err_msg=name)


def test_resuming_with_another_crop_is_refused(tmp_path):
    images, masks = _ragged()
    training.fit(_model(), (images, masks), epochs=1, batch_size=2, crop=32, checkpoint_dir=tmp_path, verbose=0)
    with pytest.raises(ValueError, match=r"crop \[32, 32\] -> \[16, 16\]"):
        training.fit(UNet((16, 16, 1), base_filters=4, depth=2, seed=0), (images, masks), epochs=2, batch_size=2,
                     crop=16, checkpoint_dir=tmp_path, resume=True, verbose=0)


def test_crop_errors_name_the_problem():
    images, masks = _ragged()
    with pytest.raises(ValueError, match=r"image 1 is 40x48, smaller than the 44x44 crops"):
        training.fit(UNet((44, 44, 1), base_filters=4, depth=2, seed=0), (images, masks), crop=44, verbose=0)
    with pytest.raises(ValueError, match="divisible"):
        training.fit(_model(), (images, masks), crop=30, verbose=0)

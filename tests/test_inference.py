"""predict, predict_tiled (overlap-tile equals untiled where both apply), load_model, PNG files."""
import numpy as np
import pytest

from unet_scratch import UNet, images, training
from unet_scratch.inference import load_model, predict, predict_tiled


@pytest.fixture(scope="module")
def same_model():
    return UNet((32, 32, 1), base_filters=4, depth=2, dropout=0, seed=1)


def test_predict_shapes_for_one_image_and_a_batch(same_model, rng):
    x = rng.random((3, 32, 32, 1), dtype=np.float32)
    assert predict(same_model, x).shape == (3, 32, 32, 1)
    assert predict(same_model, x[0, ..., 0]).shape == (32, 32, 1)
    np.testing.assert_allclose(predict(same_model, x[1]), predict(same_model, x)[1], rtol=1e-5, atol=1e-7)
    u8 = (x[0] * 255).astype(np.uint8)
    np.testing.assert_allclose(predict(same_model, u8), predict(same_model, u8 / 255.0), atol=1e-6)


def test_same_padding_tiles_without_blending_equal_the_untiled_prediction(same_model, rng):
    image = rng.random((96, 96), dtype=np.float32)
    m = 32                                          # more than this small network's receptive field
    tiled = predict_tiled(same_model, image, tile=96, margin=m, blend=False)
    untiled = predict(same_model, np.pad(image, m, mode="reflect"))[m:-m, m:-m]
    np.testing.assert_allclose(tiled, untiled, rtol=1e-5, atol=1e-6)


def test_same_padding_blended_tiles_stay_close_and_one_tile_is_exact(same_model, rng):
    image = rng.random((96, 96), dtype=np.float32)
    untiled = predict(same_model, np.pad(image, 32, mode="reflect"))[32:-32, 32:-32]
    blended = predict_tiled(same_model, image, tile=96, margin=32, blend=True)
    assert np.abs(blended - untiled).max() < 0.02
    one = predict_tiled(same_model, image[:32, :32], tile=64, margin=16)
    np.testing.assert_allclose(one, predict(same_model, np.pad(image[:32, :32], 16, mode="reflect"))[16:-16, 16:-16],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("depth,tile,size", [(2, 84, 88), (4, 204, 36)])
def test_valid_padding_tiles_equal_the_untiled_prediction(rng, depth, tile, size):
    model = UNet((tile, tile, 1), base_filters=2, depth=depth, padding="valid", dropout=0, seed=1)
    image = rng.random((size, size), dtype=np.float32)
    margin = (tile - model.output_shape[1]) // 2
    tiled = predict_tiled(model, image, tile=tile)
    untiled = predict(model, np.pad(image, margin, mode="reflect"))
    assert tiled.shape == untiled.shape == (size, size, 1)
    np.testing.assert_allclose(tiled, untiled, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(70, 53), (17, 100), (5, 5)])
def test_any_image_size_is_covered(same_model, rng, shape):
    p = predict_tiled(same_model, rng.random(shape, dtype=np.float32), tile=32)
    assert p.shape == (*shape, 1) and np.all((p >= 0) & (p <= 1))


def test_tiling_errors_name_the_fix(same_model, rng):
    with pytest.raises(ValueError, match="not divisible by 2\\*\\*depth = 4; use 28"):
        predict_tiled(same_model, rng.random((40, 40)), tile=30)
    with pytest.raises(ValueError, match="3 channels .* expects 1; convert RGB to grey"):
        predict_tiled(same_model, rng.random((40, 40, 3)))
    valid = UNet((188, 188, 1), base_filters=2, depth=4, padding="valid", dropout=0, seed=0)
    with pytest.raises(ValueError, match="use a tile of at least 204"):
        predict_tiled(valid, rng.random((40, 40)), tile=188)


def test_load_model_from_weights_and_from_a_checkpoint(tmp_path, same_model, rng):
    same_model.save_weights(tmp_path / "w.npz")
    x = rng.random((1, 32, 32, 1), dtype=np.float32)
    np.testing.assert_array_equal(predict(load_model(tmp_path / "w.npz"), x), predict(same_model, x))
    from unet_scratch import data
    model = UNet((32, 32, 1), base_filters=4, depth=2, dropout=0, seed=2)
    training.fit(model, data.membranes(2, size=32), epochs=1, batch_size=2, checkpoint_dir=tmp_path, verbose=0)
    np.testing.assert_array_equal(predict(load_model(tmp_path / "checkpoint.npz"), x), predict(model, x))


def test_png_files_are_8_bit_with_full_contrast(tmp_path, rng):
    from PIL import Image
    p = rng.random((20, 30))
    images.save_mask(tmp_path / "m.png", p)
    m = np.asarray(Image.open(tmp_path / "m.png"))
    assert m.dtype == np.uint8 and set(np.unique(m)) == {0, 255}
    np.testing.assert_array_equal(m == 255, p > 0.5)
    images.save_probabilities(tmp_path / "p.png", p)
    q = np.asarray(Image.open(tmp_path / "p.png"))
    assert q.dtype == np.uint8 and np.abs(q / 255 - p).max() <= 0.5 / 255 + 1e-9
    with pytest.raises(ValueError, match="within"):
        images.save_probabilities(tmp_path / "bad.png", p * 3)
    images.save_overlay(tmp_path / "o.png", p, p > 0.5)
    assert np.asarray(Image.open(tmp_path / "o.png")).shape == (20, 30, 3)


def test_read_image_refuses_colour_for_a_grey_model_unless_asked(tmp_path, rng):
    from PIL import Image
    rgb = (rng.random((10, 12, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    with pytest.raises(ValueError, match="colour image .*--grayscale"):
        images.read_image(tmp_path / "c.png")
    g = images.read_image(tmp_path / "c.png", "grey")
    assert g.shape == (10, 12, 1) and g.dtype == np.float32 and 0 <= g.min() <= g.max() <= 1
    assert images.read_image(tmp_path / "c.png", channels=3).shape == (10, 12, 3)

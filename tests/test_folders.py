"""Reading your own images: folders, TIFF stacks, palette masks, and a clear error for every bad case."""
import numpy as np
import pytest

from unet_scratch import data
from unet_scratch.folders import load_folder

Image = pytest.importorskip("PIL.Image")


def _membranes(n=3, size=32):
    x, y = data.load("membranes", "train", n=n, size=size)[:2]
    return (x[..., 0] * 255).round().astype(np.uint8), y[..., 0].astype(np.uint8)


def _write_pair_folder(tmp_path, n=3, size=32, mask_values=(0, 255), ext=".png"):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    x, y = _membranes(n, size)
    for i in range(n):
        Image.fromarray(x[i]).save(images / f"img_{i:02d}{ext}")
        Image.fromarray(np.where(y[i] > 0, mask_values[1], mask_values[0]).astype(np.uint8)).save(
            masks / f"img_{i:02d}.png")
    return images, masks, x, y


def _write_stack(path, pages):
    first, *rest = [Image.fromarray(p) for p in pages]
    first.save(path, save_all=True, append_images=rest)


def test_a_folder_of_png_pairs_reads_as_float_images_and_class_masks(tmp_path):
    images, masks, x, y = _write_pair_folder(tmp_path)
    d = load_folder(images, masks)
    assert len(d) == 3 and d.names == ["img_00.png", "img_01.png", "img_02.png"]
    xs, ys = d.arrays()
    assert xs.shape == (3, 32, 32, 1) and xs.dtype == np.float32
    np.testing.assert_allclose(xs[..., 0], x / 255, atol=1e-7)
    assert ys.shape == (3, 32, 32, 1) and set(np.unique(ys)) <= {0, 1}
    np.testing.assert_array_equal(ys[..., 0], y)


def test_masks_in_zero_one_and_tiff_images_pair_by_name(tmp_path):
    images, masks, _, y = _write_pair_folder(tmp_path, mask_values=(0, 1), ext=".tif")
    d = load_folder(images, masks)
    np.testing.assert_array_equal(np.stack(d.masks), y)


def test_isbi_style_tiff_stacks_pair_slice_by_slice_and_invert(tmp_path):
    x, y = _membranes(4)
    _write_stack(tmp_path / "train-volume.tif", list(x))
    _write_stack(tmp_path / "train-labels.tif", [np.where(m > 0, 0, 255).astype(np.uint8) for m in y])
    d = load_folder(tmp_path / "train-volume.tif", tmp_path / "train-labels.tif", foreground="black")
    assert d.names == [f"train-volume.tif[{k}]" for k in range(4)]
    np.testing.assert_array_equal(np.stack(d.masks), y)            # 0 = membrane became the foreground
    assert any("inverted" in n for n in d.notes)


def test_sixteen_bit_and_twelve_bit_images_use_their_bit_depth(tmp_path):
    a16 = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)       # up to 65520: 16-bit
    a12 = (np.arange(64 * 64).reshape(64, 64) % 4096).astype(np.uint16)     # up to 4095: 12-bit
    Image.fromarray(a16).save(tmp_path / "a16.png")
    Image.fromarray(a12).save(tmp_path / "a12.png")
    d16, d12 = load_folder(tmp_path / "a16.png"), load_folder(tmp_path / "a12.png")
    assert d16.images[0].max() == pytest.approx(65520 / 65535)
    assert d12.images[0].max() == pytest.approx(1.0)                        # not 0.06
    assert any("12-bit" in n for n in d12.notes)


def test_palette_masks_are_class_indices(tmp_path):
    x, _ = _membranes(1)
    Image.fromarray(x[0]).save(tmp_path / "im.png")
    classes = np.zeros((32, 32), np.uint8)
    classes[8:16], classes[16:24] = 1, 2
    m = Image.fromarray(classes, mode="P")
    m.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)              # coloured entries
    (tmp_path / "masks").mkdir()
    m.save(tmp_path / "masks" / "im.png")
    d = load_folder(tmp_path / "im.png", tmp_path / "masks", n_classes=3)
    np.testing.assert_array_equal(d.masks[0], classes)
    with pytest.raises(ValueError, match=r"do not fit 2 classes.*n_classes=3"):
        load_folder(tmp_path / "im.png", tmp_path / "masks")


def test_rgb_images_are_refused_for_a_grey_model_unless_asked(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match=r"rgb\.png is a colour image.*grayscale=True"):
        load_folder(tmp_path / "rgb.png")
    grey = load_folder(tmp_path / "rgb.png", grayscale=True).images[0]
    assert grey.shape == (16, 16, 1)
    assert load_folder(tmp_path / "rgb.png", channels=3).images[0].shape == (16, 16, 3)


@pytest.mark.parametrize("case,match", [
    ("missing mask", r"image img_02\.png has no mask .*expected img_02\.png or img_02\.tif"),
    ("size differs", r"image img_00\.png is 32x32 but its mask img_00\.png is 30x32"),
    ("jpeg mask", r"img_00\.jpg is a JPEG mask.*threshold"),
    ("empty folder", r"no images in .*images"),
    ("values beyond classes", r"mask values \{0, 1, 7\} do not fit 2 classes"),
    ("noisy mask", r"resized or lossy \(JPEG\) copy: threshold it"),
    ("not an image", r"cannot read .*img_00\.png.* as an image"),
    ("colour mask", r"a colour mask; save masks as grey or palette PNGs"),
    ("stack lengths differ", r"has 3 slices but .*labels\.tif has 2"),
    ("no such path", r"does not exist"),
])
def test_every_bad_case_names_the_file_and_the_fix(tmp_path, case, match):
    images, masks, x, y = _write_pair_folder(tmp_path)
    kwargs = {}
    if case == "missing mask":
        (masks / "img_02.png").unlink()
    elif case == "size differs":
        Image.fromarray((y[0, :30] * 255).astype(np.uint8)).save(masks / "img_00.png")
    elif case == "jpeg mask":
        (masks / "img_00.png").unlink()
        Image.fromarray((y[0] * 255).astype(np.uint8)).save(masks / "img_00.jpg")
    elif case == "empty folder":
        for f in images.iterdir():
            f.unlink()
    elif case == "values beyond classes":
        bad = y[0].copy()
        bad[0, 0] = 7
        Image.fromarray(bad).save(masks / "img_00.png")
    elif case == "noisy mask":
        noisy = np.clip(y[0] * 255 + np.random.default_rng(0).integers(-3, 4, y[0].shape), 0, 255)
        Image.fromarray(noisy.astype(np.uint8)).save(masks / "img_00.png")
    elif case == "not an image":
        (images / "img_00.png").write_bytes(b"this is text, not a PNG")
    elif case == "colour mask":
        rgb = np.stack([y[0] * 255, y[0] * 0, y[0] * 0], -1).astype(np.uint8)
        Image.fromarray(rgb).save(masks / "img_00.png")
    elif case == "stack lengths differ":
        _write_stack(tmp_path / "volume.tif", list(x))
        _write_stack(tmp_path / "labels.tif", list(y[:2] * 255))
        images, masks = tmp_path / "volume.tif", tmp_path / "labels.tif"
    elif case == "no such path":
        images = tmp_path / "nowhere"
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        load_folder(images, masks, **kwargs)


def test_arrays_refuses_images_of_different_sizes(tmp_path):
    x, _ = _membranes(1)
    Image.fromarray(x[0]).save(tmp_path / "a.png")
    Image.fromarray(x[0][:20]).save(tmp_path / "b.png")
    d = load_folder(tmp_path)
    assert [im.shape for im in d.images] == [(32, 32, 1), (20, 32, 1)]
    with pytest.raises(ValueError, match="differ in size"):
        d.arrays()


def test_a_binary_mask_read_as_three_classes_says_use_two(tmp_path):
    images, masks, _, _ = _write_pair_folder(tmp_path)
    with pytest.raises(ValueError, match=r"binary mask's values \(0/255\): use n_classes=2"):
        load_folder(images, masks, n_classes=3)

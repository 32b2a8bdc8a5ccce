"""Bad input gets a clear error that names the problem and the fix; saved files are never lost."""
import os

import numpy as np
import pytest

from unet_scratch import UNet


@pytest.fixture(scope="module")
def model():
    return UNet(input_shape=(32, 32, 1), base_filters=4, depth=2, seed=0)


def test_not_4d(model):
    with pytest.raises(ValueError, match=r"4-D NHWC.*x\[None\]"):
        model.forward(np.zeros((32, 32, 1), np.float32))
    with pytest.raises(ValueError, match=r"x\[None, :, :, None\]"):
        model.forward(np.zeros((32, 32), np.float32))


def test_wrong_channels(model):
    with pytest.raises(ValueError, match="3 channels but the model expects 1.*RGB"):
        model.forward(np.zeros((1, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="channels-first"):
        model.forward(np.zeros((2, 1, 32, 32), np.float32))


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, bool])
def test_integer_or_bool_images(model, dtype):
    with pytest.raises(TypeError, match=r"floating-point.*astype\(np.float32\) / 255"):
        model.forward(np.zeros((1, 32, 32, 1), dtype))


def test_nan_and_inf(model):
    x = np.random.default_rng(0).random((1, 32, 32, 1)).astype(np.float32)
    x[0, 3, 4, 0] = np.nan
    x[0, 5, 5, 0] = np.inf
    with pytest.raises(ValueError, match=r"1 NaN and 1 Inf.*\(0, 3, 4, 0\)"):
        model.forward(x)


def test_size_not_divisible(model):
    with pytest.raises(ValueError, match=r"height 30 is not divisible by 2\*\*depth = 4.*28 or 32"):
        model.forward(np.zeros((1, 30, 32, 1), np.float32))
    with pytest.raises(ValueError, match=r"100 is not divisible by 2\*\*depth = 16.*use 96 or 112"):
        UNet(input_shape=(100, 100, 1))


def test_illegal_valid_tile():
    with pytest.raises(ValueError, match=r"570 is not a legal tile.*use 556 or 572") as err:
        UNet(input_shape=(570, 570, 1), padding="valid", base_filters=2)
    assert "16 m + 60" in str(err.value)


def test_kernel_of_wrong_shape(model):
    conv = model.layers[0]
    with pytest.raises(ValueError, match=r"enc1_conv1/kernel: expected shape \(3, 3, 1, 4\), got \(3, 3, 4, 1\)"):
        conv.params["kernel"] = np.zeros((3, 3, 4, 1), np.float32)
    up = next(l for l in model.layers if l.name == "dec2_upconv")
    w = up.params["kernel"]
    with pytest.raises(ValueError, match=r"\(kh, kw, out, in\).*transpose\(0, 1, 3, 2\)"):
        up.params["kernel"] = np.zeros((2, 2, w.shape[3], w.shape[2]), np.float32)
    with pytest.raises(KeyError, match="no parameter 'weights'"):
        conv.params["weights"] = np.zeros(3)
    with pytest.raises(ValueError, match="NaN"):
        model.params["head/bias"] = np.array([np.nan], np.float32)


def test_weights_round_trip(tmp_path, model):
    path = tmp_path / "w.npz"
    model.save_weights(path)
    other = UNet(input_shape=(32, 32, 1), base_filters=4, depth=2, seed=1)
    assert not np.array_equal(other.params["enc1_conv1/kernel"], model.params["enc1_conv1/kernel"])
    other.load_weights(path)
    for name in model.params:
        np.testing.assert_array_equal(other.params[name], model.params[name])
    with np.load(path, allow_pickle=False) as data:       # no pickled objects inside
        assert "__config__" in data.files


def test_weights_from_another_architecture(tmp_path, model):
    path = tmp_path / "big.npz"
    UNet(input_shape=(32, 32, 1), base_filters=8, depth=2, seed=0).save_weights(path)
    before = model.params["enc1_conv1/kernel"].copy()
    with pytest.raises(ValueError, match=r"enc1_conv1/kernel: shape \(3, 3, 1, 8\) in weights file.*"
                                         r"\(3, 3, 1, 4\) in this model.*base_filters=8"):
        model.load_weights(path)
    np.testing.assert_array_equal(model.params["enc1_conv1/kernel"], before)   # nothing loaded


def test_truncated_weights_file(tmp_path, model):
    path = tmp_path / "w.npz"
    model.save_weights(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt.*nothing was loaded"):
        model.load_weights(path)


def test_crash_while_saving_keeps_the_old_file(tmp_path, model, monkeypatch):
    path = tmp_path / "w.npz"
    model.save_weights(path)
    good = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(KeyboardInterrupt):
        model.save_weights(path)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["w.npz"]          # no temporary file left behind

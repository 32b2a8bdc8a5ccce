"""python -m unet_scratch train / predict, end to end on a tiny model."""
import json

import numpy as np
import pytest

from unet_scratch.__main__ import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code = main(["train", "--dataset", "membranes", "--epochs", "2", "--backend", "numpy", "--out", str(out),
                 "--size", "32", "--base-filters", "4", "--depth", "2", "--n-train", "4", "--batch-size", "2"])
    assert code == 0
    return out


def test_train_writes_checkpoint_weights_curves_and_test_dice(run, capsys):
    for name in ("checkpoint.npz", "weights.npz", "history.json", "curves.png", "test.json"):
        assert (run / name).exists(), name
    history = json.loads((run / "history.json").read_text())
    assert len(history["history"]["loss"]) == 2
    assert 0 <= json.loads((run / "test.json").read_text())["test_dice"] <= 1


def test_train_resumes_from_its_folder(run, capsys):
    assert main(["train", "--epochs", "3", "--backend", "numpy", "--out", str(run), "--size", "32",
                 "--base-filters", "4", "--depth", "2", "--n-train", "4", "--batch-size", "2"]) == 0
    assert "resuming from" in capsys.readouterr().out
    assert len(json.loads((run / "history.json").read_text())["history"]["loss"]) == 3


def test_predict_writes_an_8_bit_mask_of_any_size(run, tmp_path, capsys):
    from PIL import Image
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((45, 70)) * 255).astype(np.uint8)).save(tmp_path / "in.png")
    assert main(["predict", "--weights", str(run / "weights.npz"), "--input", str(tmp_path / "in.png"),
                 "--output", str(tmp_path / "mask.png"), "--probabilities", str(tmp_path / "p.png"),
                 "--overlay", str(tmp_path / "o.png")]) == 0
    mask = np.asarray(Image.open(tmp_path / "mask.png"))
    assert mask.shape == (45, 70) and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
    assert np.asarray(Image.open(tmp_path / "o.png")).shape == (45, 70, 3)


def test_predict_errors_are_clear(run, tmp_path, capsys):
    from PIL import Image
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "rgb.png")
    assert main(["predict", "--weights", str(run / "weights.npz"), "--input", str(tmp_path / "rgb.png"),
                 "--output", str(tmp_path / "m.png")]) == 2
    assert "--grayscale" in capsys.readouterr().err
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not really")
    assert main(["predict", "--weights", str(tmp_path / "broken.npz"), "--input", str(tmp_path / "rgb.png"),
                 "--output", str(tmp_path / "m.png"), "--grayscale"]) == 2
    assert "truncated or corrupt" in capsys.readouterr().err

"""Your own images on the command line: train on folders and TIFF stacks, evaluate, predict a folder."""
import json

import numpy as np
import pytest

from unet_scratch import data
from unet_scratch.__main__ import main

Image = pytest.importorskip("PIL.Image")
TINY = ["--size", "32", "--base-filters", "4", "--depth", "2", "--backend", "numpy", "--batch-size", "2"]


def _folders(tmp_path, n=5, size=40):
    x, y = data.load("membranes", "train", n=n, size=size)[:2]
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    for i in range(n):
        Image.fromarray((x[i, ..., 0] * 255).round().astype(np.uint8)).save(images / f"em_{i:02d}.png")
        Image.fromarray((y[i, ..., 0] * 255).astype(np.uint8)).save(masks / f"em_{i:02d}.png")
    return images, masks


def _stacks(tmp_path, n=5, size=40):
    """ISBI 2012's layout: train-volume.tif and train-labels.tif, labels 255 = cell, 0 = membrane."""
    x, y = data.load("membranes", "train", n=n, size=size)[:2]
    vol = [Image.fromarray((x[i, ..., 0] * 255).round().astype(np.uint8)) for i in range(n)]
    lab = [Image.fromarray(((1 - y[i, ..., 0]) * 255).astype(np.uint8)) for i in range(n)]
    vol[0].save(tmp_path / "train-volume.tif", save_all=True, append_images=vol[1:])
    lab[0].save(tmp_path / "train-labels.tif", save_all=True, append_images=lab[1:])
    return tmp_path / "train-volume.tif", tmp_path / "train-labels.tif"


def test_train_on_a_folder_then_evaluate_and_predict_a_folder(tmp_path, capsys):
    images, masks = _folders(tmp_path)
    run = tmp_path / "run"
    code = main(["train", "--images", images, "--masks", masks, "--epochs", "2", "--out", run, *TINY])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "4 image(s) from" in out and "random 32x32 crops" in out
    assert "threshold baseline" in out and "adapted Rand error" in out
    report = json.loads((run / "validation.json").read_text())
    assert report["images"] == 1 and len(report["model"]["dice"]) == 2 and report["baseline"] is not None

    code = main(["evaluate", "--weights", run / "weights.npz", "--images", images, "--masks", masks,
                 "--json", tmp_path / "scores.json"])
    out = capsys.readouterr().out
    assert code == 0 and "5 image(s)" in out and "pixel error" in out
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert 0 <= scores["model"]["pixel_error"] <= 1 and 0 <= scores["baseline"]["pixel_error"] <= 1

    code = main(["predict", "--weights", run / "weights.npz", "--input", images, "--output", tmp_path / "pred"])
    assert code == 0, capsys.readouterr().err
    written = sorted(p.name for p in (tmp_path / "pred").iterdir())
    assert written == [f"em_{i:02d}.png" for i in range(5)]
    assert set(np.unique(np.asarray(Image.open(tmp_path / "pred" / "em_00.png")))) <= {0, 255}


def test_train_on_isbi_style_tiff_stacks_resumes_with_its_crops(tmp_path, capsys):
    volume, labels = _stacks(tmp_path)
    run = tmp_path / "run"
    args = ["train", "--images", volume, "--masks", labels, "--foreground", "black", "--out", run, *TINY]
    assert main([*args, "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "labels inverted" in out
    assert main([*args, "--epochs", "2"]) == 0
    assert "resuming from" in capsys.readouterr().out
    assert main([*args[:-len(TINY)], *TINY[:-2], "--batch-size", "1", "--epochs", "3"]) == 2
    assert "--batch-size 2 (now 1)" in capsys.readouterr().err


@pytest.mark.parametrize("extra,message", [
    (["--dataset", "cells"], "--dataset and --images are two sources"),
    (["--val-fraction", "0.99"], "too few to hold out"),
    (["--val-images", "x"], "--val-images and --val-masks go together"),
    (["--classes", "3", "--loss", "dice"], "softmax head"),
])
def test_train_own_data_mistakes_are_one_line(tmp_path, capsys, extra, message):
    images, masks = _folders(tmp_path)
    code = main(["train", "--images", images, "--masks", masks, "--epochs", "1", "--out", tmp_path / "run",
                 *TINY, *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_a_jpeg_mask_folder_is_refused_by_name(tmp_path, capsys):
    images, masks = _folders(tmp_path, n=2)
    (masks / "em_00.png").unlink()
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(masks / "em_00.jpg")
    code = main(["train", "--images", images, "--masks", masks, "--out", tmp_path / "run", *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "em_00.jpg is a JPEG mask" in err


def test_masks_without_images_is_a_usage_error(tmp_path, capsys):
    images, masks = _folders(tmp_path, n=2)
    assert main(["train", "--masks", masks, "--out", tmp_path / "run", *TINY]) == 2
    assert "--images and --masks go together" in capsys.readouterr().err

"""Chapter 10's checks accept the solution, reject stubs and name each classic mistake."""
import re

import numpy as np
import pytest

from unet_scratch.exercises import ch10

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


def mirror_pad(image, m):                       # written out, without np.pad
    if m == 0:
        return image.copy()
    rows = np.concatenate([image[m:0:-1], image, image[-2:-m - 2:-1]], axis=0)
    return np.concatenate([rows[:, m:0:-1], rows, rows[:, -2:-m - 2:-1]], axis=1)


def tile_predict(f, image, tile, out, mode="reflect", step=None, top_left=True):
    h, w = image.shape
    m = (tile - out) // 2
    step = out if step is None else step
    nh, nw = -(-h // step), -(-w // step)
    before = m if top_left else 0
    after_h, after_w = (nh - 1) * step + tile - h - before, (nw - 1) * step + tile - w - before
    padded = np.pad(image, ((before, after_h), (before, after_w)), mode=mode)
    result = np.zeros(((nh - 1) * step + out, (nw - 1) * step + out))
    for i in range(0, h, step):
        for j in range(0, w, step):
            result[i:i + out, j:j + out] = f(padded[i:i + tile, j:j + tile])
    return result[:h, :w]


def test_solutions_pass(capsys):
    assert ch10.check_mirror_pad(lambda a, m: np.pad(a, m, mode="reflect"))
    assert ch10.check_mirror_pad(mirror_pad)
    assert ch10.check_tile_predict(tile_predict)
    assert ch10.check_skip_crop(lambda s, u: ((s - u) // 2, s - u - (s - u) // 2))
    assert capsys.readouterr().out.count("correct") == 4


@pytest.mark.parametrize("check", [ch10.check_mirror_pad, ch10.check_tile_predict, ch10.check_skip_crop])
def test_stubs_are_not_implemented_yet(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


@pytest.mark.parametrize("mode, name", [("symmetric", "the edge pixel repeated"),
                                        ("constant", "zeros around the image"),
                                        ("wrap", "the opposite edge copied in")])
def test_mirror_pad_names_each_mistake(mode, name):
    def wrong(a, m):
        out = np.zeros((a.shape[0] + 2 * m, a.shape[1] + 2 * m))     # by hand: a loop over the border
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                out[i, j] = np.pad(a, m, mode=mode)[i, j]
        return out
    with pytest.raises(AssertionError, match=r"mirror_pad \(3 x 4, m = 1\): your answer is what " + re.escape(name)):
        ch10.check_mirror_pad(wrong)


@pytest.mark.parametrize("kw, name", [
    (dict(mode="constant"), "zero padding instead of mirroring"),
    (dict(mode="symmetric"), "the edge pixel repeated"),
    (dict(top_left=False), "no margin at the top and left"),
    (dict(step=12), "tiles stepped by the input tile size"),
])
def test_tile_predict_names_each_mistake(kw, name):
    with pytest.raises(AssertionError, match=r"tile_predict \(a 20 x 13 image.*your answer is what " + re.escape(name)):
        ch10.check_tile_predict(lambda f, image, tile, out: tile_predict(f, image, tile, out, **kw))


def test_tile_predict_refuses_one_big_pass():
    with pytest.raises(ValueError, match="takes one tile of 12 x 12 pixels"):
        ch10.check_tile_predict(lambda f, image, tile, out: f(np.pad(image, (tile - out) // 2, mode="reflect")))


@pytest.mark.parametrize("wrong, name", [
    (lambda s, u: (s - u - (s - u) // 2, (s - u) // 2), "the odd pixel cut at the top"),
    (lambda s, u: (0, s - u), "the whole difference cut from one side"),
    (lambda s, u: (s - u, s - u), "the difference not halved"),
])
def test_skip_crop_names_each_mistake(wrong, name):
    with pytest.raises(AssertionError, match=r"skip_crop\(.*that is what " + re.escape(name)):
        ch10.check_skip_crop(wrong)

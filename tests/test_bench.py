"""Smoke test of the benchmark: ``--quick`` runs end to end and writes JSON and Markdown of the expected
structure. No timing is asserted (timings belong to benchmarks, not tests)."""
import json

import numpy as np
import pytest

from unet_scratch import UNet, bench


def test_quick_benchmark_writes_json_and_markdown(tmp_path, tf):
    assert bench.main(["--quick", "--out", str(tmp_path), "--backends", "numpy,numba,tf"]) == 0
    results = json.loads((tmp_path / "bench-quick.json").read_text())
    names = results["meta"]["backends"]
    assert {"numpy", "tf"} <= set(names)
    assert results["meta"]["quick"] is True and results["gemm_peak_gflops"] > 0
    (model,) = results["models"]
    for part in ("forward", "train_step"):
        assert set(model[part]) == set(names)
        for stats in model[part].values():
            assert stats["median_s"] > 0 and len(stats["times_s"]) == results["meta"]["repeats"]
            assert stats["ratio_to_tf"] > 0 and stats["gflops"] > 0
    assert set(model["memory"]) == set(names)
    assert all("train_step_peak_mb" in m for m in model["memory"].values()), model["memory"]
    assert "forward_arrays_peak_mb" in model["memory"]["numpy"]
    ops = {row["op"] for row in results["layers"]}
    assert ops == {"Conv2D", "Conv2DTranspose", "MaxPooling2D"}
    for row in results["layers"]:
        assert set(row["forward"]) == set(row["backward"]) == set(names)
    if "numba" in names:
        assert results["conv_strategies"] and "shifted views" in results["conv_strategies"][0]
    text = (tmp_path / "bench-quick.md").read_text()
    for heading in ("## Whole model", "## Layers", "## Machine", "GEMM peak"):
        assert heading in text
    assert "| tiny" in text


def test_flop_count_of_the_seed_model():
    """2 x MACs of the article's model at 256 x 256: 96.2 GFLOP, counted here by hand from its layers
    (two 3x3 convs per level, 64 -> 1024 channels; 2x2 stride-2 transposed convs costing H_in W_in 4 C_in
    C_out; the 1x1 head), independently of the model object that bench.forward_gflop walks."""
    def conv(size, k, c_in, c_out):
        return size * size * k * k * c_in * c_out
    channels, size, macs = [1, 64, 128, 256, 512, 1024], 256, 0
    for level in range(5):                                    # encoder and bottleneck
        c_in, c_out = channels[level], channels[level + 1]
        macs += conv(size, 3, c_in, c_out) + conv(size, 3, c_out, c_out)
        size = size // 2 if level < 4 else size
    for c in (512, 256, 128, 64):                             # decoder: up-conv, concatenate, two convs
        macs += conv(size, 2, 2 * c, c)
        size *= 2
        macs += conv(size, 3, 2 * c, c) + conv(size, 3, c, c)
    macs += conv(size, 1, 64, 1)
    assert size == 256 and 2 * macs / 1e9 == pytest.approx(96.18, abs=0.005)
    assert bench.forward_gflop(UNet(seed=0)) == pytest.approx(2 * macs / 1e9, rel=1e-12)


def test_shifted_views_equal_im2col(rng):
    from unet_scratch.ops.conv import conv2d
    x = rng.standard_normal((2, 6, 5, 3)).astype(np.float64)
    w = rng.standard_normal((3, 3, 3, 4))
    np.testing.assert_allclose(bench.shifted_views_conv(x, w), conv2d(x, w, None, 1, "same")[0],
                               rtol=1e-12, atol=1e-12)

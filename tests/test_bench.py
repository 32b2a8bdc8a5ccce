"""The benchmark's report, not its timings: ``--quick`` runs end to end and writes JSON and Markdown of the
expected structure (machine, BLAS kernel, PyTorch, a batched workload with its own layer rows); the pieces
that decide what is reported (the BLAS forcing, the re-run without it, the targets) are checked on made-up
inputs; the PyTorch contender computes what the scratch code computes. No timing is asserted (timings belong
to benchmarks, not tests), and no test changes the environment of a process that runs BLAS."""
import importlib.util
import json
import os
import subprocess

import numpy as np
import pytest

from unet_scratch import UNet, bench, bench_machine, bench_report
from unet_scratch.bench_cases import layer_specs, model_and_data

HAS_TORCH = importlib.util.find_spec("torch") is not None


def test_quick_benchmark_writes_json_and_markdown(tmp_path, tf):
    backends = "numpy,numba,tf" + (",torch" if HAS_TORCH else "")
    assert bench.main(["--quick", "--out", str(tmp_path), "--backends", backends, "--keep-blas-env"]) == 0
    results = json.loads((tmp_path / "bench-quick.json").read_text())
    names, meta = results["meta"]["backends"], results["meta"]
    assert {"numpy", "tf"} <= set(names) and ("torch" in names) == HAS_TORCH
    assert meta["quick"] is True and results["gemm_peak_gflops"] > 0
    assert meta["cpu_isa"] in bench_machine.ISA_LEVEL
    assert set(meta["blas_forcing"]) >= {"variables", "cpu_isa", "forced_kernel", "older_than_cpu"}
    openblas = [lib for lib in meta["blas_libraries"] if lib["library"] == "openblas"]   # NumPy's, SciPy's, ...
    assert openblas and all(lib["version"] and lib["kernel"] and lib["threads"] >= 1 for lib in openblas)
    assert [m["name"] for m in results["models"]] == ["tiny", "tiny-batch"]
    for model in results["models"]:
        batch = model["config"].get("batch", 1)
        assert model["gflop_forward"] == pytest.approx(
            bench.forward_gflop(model_and_data(model["config"])[0], batch), rel=1e-12)
        for part in ("forward", "train_step"):
            assert set(model[part]) == set(names)
            for stats in model[part].values():
                assert stats["median_s"] > 0 and len(stats["times_s"]) == results["meta"]["repeats"]
                assert stats["ratio_to_tf"] > 0 and stats["gflops"] > 0 and stats["ratio_to_best"] > 0
            best = min(model[part][n]["median_s"] for n in ("tf", "torch") if n in names)
            assert model[part]["numba"]["ratio_to_best"] == pytest.approx(model[part]["numba"]["median_s"] / best)
        assert set(model["memory"]) == set(names)
        assert all("train_step_peak_mb" in m for m in model["memory"].values()), model["memory"]
        assert "forward_arrays_peak_mb" in model["memory"]["numpy"]
    ops = {row["op"] for row in results["layers"]}
    assert ops == {"Conv2D", "Conv2DTranspose", "MaxPooling2D"}
    for row in results["layers"] + results["workload_layers"]:
        assert set(row["forward"]) == set(row["backward"]) == set(names)
    assert {row["model"] for row in results["layers"]} == {"tiny"}
    assert {row["model"] for row in results["workload_layers"]} == {"tiny-batch"}
    assert all(row["x_shape"][0] == 2 for row in results["workload_layers"])     # the workload's batch
    if "numba" in names:
        assert results["conv_strategies"] and "shifted views" in results["conv_strategies"][0]
    text = (tmp_path / "bench-quick.md").read_text()
    for heading in ("## Whole model", "## Layers", "## Layers of the tiny-batch", "## Machine", "GEMM peak",
                    "NumPy's BLAS: openblas", "numba/best"):
        assert heading in text
    assert "| tiny 32x32x1 base 8 depth 2 batch 1 |" in text and "batch 2 |" in text
    assert "## Targets" not in text                  # the targets are stated for the full run's models
    if HAS_TORCH:
        assert "torch fwd | torch bwd" in text


# ----------------------------------------------------------------------------- the BLAS kernel


AVX512 = {"sse4_2", "avx", "avx2", "fma", "avx512f"}


def test_cpu_isa_from_flags():
    assert bench_machine.cpu_isa(AVX512) == "avx512"
    assert bench_machine.cpu_isa({"sse4_2", "avx", "avx2"}) == "avx2"
    assert bench_machine.cpu_isa({"sse4_2"}) == "sse4" and bench_machine.cpu_isa(set()) == "sse"
    assert bench_machine.cpu_isa(bench_machine.cpu_flags("/nonexistent")) == "sse"


@pytest.mark.parametrize("env,older,rerun", [
    ({}, False, False),
    ({"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576"}, True, True),   # the course machines
    ({"OPENBLAS_CORETYPE": "haswell"}, True, True),
    ({"OPENBLAS_CORETYPE": "SkylakeX"}, False, False),                             # the CPU's own level
    ({"OPENBLAS_CORETYPE": "Frobnicator"}, None, True),                            # unknown: time without
    ({"OPENBLAS_L2_SIZE": "1048576"}, False, False),                              # reported, kernel not forced
])
def test_blas_forcing_on_an_avx512_cpu(env, older, rerun):
    forcing = bench_machine.blas_forcing(env, AVX512)
    assert forcing["variables"] == env and forcing["cpu_isa"] == "avx512"
    assert forcing["older_than_cpu"] is older
    assert bench_machine.needs_cpu_kernel_run(forcing) is rerun


def test_haswell_is_not_older_on_an_avx2_cpu():
    forcing = bench_machine.blas_forcing({"OPENBLAS_CORETYPE": "Haswell"}, {"avx", "avx2"})
    assert forcing["older_than_cpu"] is False and not bench_machine.needs_cpu_kernel_run(forcing)


def test_environment_without_forcing_is_a_copy():
    env = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1", "PATH": "/bin"}
    assert bench_machine.environment_without_forcing(env) == {"PATH": "/bin"}
    assert env["OPENBLAS_CORETYPE"] == "Haswell"
    before = dict(os.environ)
    bench_machine.environment_without_forcing()
    assert dict(os.environ) == before


def test_a_forced_kernel_reruns_the_benchmark_without_it_in_the_child_only(monkeypatch, capsys):
    """main() sees OPENBLAS_CORETYPE=Haswell on an AVX-512 CPU: it starts the benchmark again in a subprocess
    whose environment lacks both variables, and tells the child what was removed; nothing runs here and
    this process's environment keeps them (only os.environ's copy is set: OpenBLAS read the real one at load)."""
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "1048576")
    monkeypatch.setattr(bench_machine, "cpu_flags", lambda path="/proc/cpuinfo": AVX512)
    monkeypatch.setattr(bench, "run", lambda *a, **k: pytest.fail("the forced-kernel run must not happen here"))
    seen = {}

    def fake_run(cmd, env):
        seen.update(cmd=cmd, env=env)
        return subprocess.CompletedProcess(cmd, 0)
    monkeypatch.setattr(subprocess, "run", fake_run)
    assert bench.main(["--quick", "--out", "somewhere"]) == 0
    assert seen["cmd"][1:3] == ["-m", "unet_scratch.bench"] and "--quick" in seen["cmd"]
    removed = json.loads(seen["cmd"][seen["cmd"].index("--blas-env-removed") + 1])
    assert removed == {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576"}
    assert "OPENBLAS_CORETYPE" not in seen["env"] and "OPENBLAS_L2_SIZE" not in seen["env"]
    assert seen["env"]["PATH"] == os.environ["PATH"]
    assert os.environ["OPENBLAS_CORETYPE"] == "Haswell"
    assert "timing in a subprocess without it" in capsys.readouterr().out


def test_keep_blas_env_times_the_forced_kernel(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setattr(bench_machine, "cpu_flags", lambda path="/proc/cpuinfo": AVX512)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("no re-run with --keep-blas-env"))
    monkeypatch.setattr(bench, "run", lambda **k: _made_up_results(meta=bench_machine.describe()))
    assert bench.main(["--quick", "--out", str(tmp_path), "--keep-blas-env"]) == 0
    text = (tmp_path / "bench-quick.md").read_text()
    assert "FORCED by OPENBLAS_CORETYPE=Haswell: an older kernel than the CPU supports" in text


def test_the_child_reports_what_was_removed(monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "run", lambda **k: _made_up_results())
    removed = json.dumps({"OPENBLAS_CORETYPE": "Haswell"})
    assert bench.main(["--quick", "--out", str(tmp_path), "--blas-env-removed", removed]) == 0
    results = json.loads((tmp_path / "bench-quick.json").read_text())
    assert results["meta"]["blas_env_removed"] == {"OPENBLAS_CORETYPE": "Haswell"}
    text = (tmp_path / "bench-quick.md").read_text()
    assert "The environment sets OPENBLAS_CORETYPE=Haswell; this benchmark ran in a subprocess without them" in text


# ----------------------------------------------------------------------------- targets


def _stats(**ms):
    stats = {n: {"median_s": t / 1e3, "min_s": t / 1e3, "times_s": [t / 1e3]} for n, t in ms.items()}
    return bench.with_ratios(stats, 1.0)


def _made_up_results(meta=None, course_step=(70, 60, 80), seed_step=(800, 1000, 1100), numpy_seed=2100):
    """A results dict of the full run's shape with chosen medians (ms) for (numba, tf, torch)."""
    def model(name, config, step, numpy_ms):
        numba, tf, torch = step
        return {"name": name, "config": config, "gflop_forward": 1.0, "gflop_step": 3.0,
                "forward": _stats(numpy=numpy_ms / 3, numba=numba / 3, tf=tf / 3, torch=torch / 3),
                "train_step": _stats(numpy=numpy_ms, numba=numba, tf=tf, torch=torch),
                "memory": {"numba": {"session_peak_mb": 150.0}, "tf": {"session_peak_mb": 120.0}}}
    meta = {"backends": ["numpy", "numba", "tf", "torch"], "quick": True, "repeats": 1, "warmup": 1,
            **(meta or {"cpu_isa": "avx512", "blas_libraries": [], "blas_forcing": {"variables": {}}})}
    return {"meta": meta, "gemm_peak_gflops": 400.0, "layers": [], "workload_layers": [], "conv_strategies": [],
            "models": [model("seed", {"input_shape": [256, 256, 1], "base_filters": 64}, seed_step, numpy_seed),
                       model("course", {"input_shape": [128, 128, 1], "base_filters": 16, "depth": 3,
                                        "batch": 4}, course_step, 300)]}


def test_targets_compare_with_the_faster_framework():
    rows = {t["what"]: t for t in bench_report.targets(_made_up_results())}
    step = rows["numba train step, course model"]
    assert step["ratio"] == pytest.approx(70 / 60) and step["limit"] == 1.0 and not step["met"]
    seed = rows["numba train step, seed model"]
    assert seed["ratio"] == pytest.approx(0.8) and seed["met"]                     # 800 / 1000, at the limit
    assert rows["numpy train step, seed model"]["ratio"] == pytest.approx(2.1)
    assert not rows["numpy train step, seed model"]["met"]
    memory = rows["numba peak memory / TensorFlow's, course model (MB 150 / 120)"]
    assert memory["ratio"] == pytest.approx(1.25) and not memory["met"]
    fast = {t["what"]: t for t in bench_report.targets(_made_up_results(course_step=(55, 60, 58)))}
    assert fast["numba train step, course model"]["met"]                            # faster than both
    assert fast["numba train step, course model"]["ratio"] == pytest.approx(55 / 58)


def test_the_report_states_each_target_and_the_workload():
    text = bench.to_markdown(_made_up_results())
    section = text.split("## Targets (issue 19)")[1].split("## Machine")[0]
    assert "| numba train step, course model | 1.17 | 1.00 | **no** |" in section
    assert "| numba train step, seed model | 0.80 | 0.80 | yes |" in section
    assert "| course 128x128x1 base 16 depth 3 batch 4 | train_step |" in text


# ----------------------------------------------------------------------------- what is timed


def test_layer_specs_and_data_carry_the_batch():
    model, x, target = model_and_data(dict(input_shape=(32, 32, 1), base_filters=4, depth=2, batch=3))
    assert x.shape == (3, 32, 32, 1) and target.shape == (3, 32, 32, 1)
    specs = layer_specs(model, batch=3)
    assert all(s["x_shape"][0] == 3 for s in specs)
    assert sum(s["count"] for s in specs if s["op"] == "Conv2D") == 11     # 2 x 2 + 2 + 2 x 2 + head
    assert bench.forward_gflop(model, 3) == pytest.approx(3 * bench.forward_gflop(model))


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch not installed: pip install -e '.[torch]'")
@pytest.mark.parametrize("spec", [
    dict(op="Conv2D", x_shape=(2, 9, 8, 3), param=(3, 3, 3, 4), strides=(1, 1), padding="same", count=1),
    dict(op="Conv2D", x_shape=(2, 9, 8, 3), param=(2, 2, 3, 4), strides=(1, 1), padding="same", count=1),
    dict(op="Conv2D", x_shape=(1, 9, 8, 3), param=(3, 3, 3, 4), strides=(2, 2), padding="valid", count=1),
    dict(op="Conv2DTranspose", x_shape=(2, 5, 4, 6), param=(2, 2, 3, 6), strides=(2, 2), padding="same",
         count=1),
    dict(op="MaxPooling2D", x_shape=(2, 8, 6, 3), param=(2, 2), strides=(2, 2), padding="valid", count=1),
], ids=["conv3x3", "conv2x2-asymmetric", "conv-stride2-valid", "upconv", "maxpool"])
def test_torch_layer_calls_compute_the_scratch_layer(spec):
    """Same seed, same draws: PyTorch's forward and backward ops equal the NumPy reference's (NCHW vs NHWC),
    so the per-layer rows time the same work."""
    import torch

    import unet_scratch.ops as ref
    from unet_scratch.bench_cases import scratch_layer_calls, torch_layer_calls
    fwd_t, bwd_t = torch_layer_calls(torch, spec, np.random.default_rng(5))
    fwd_s, bwd_s = scratch_layer_calls(ref, spec, np.random.default_rng(5))
    nhwc = lambda a: np.asarray(a).transpose(0, 2, 3, 1)            # noqa: E731
    y_s = fwd_s()[0]
    np.testing.assert_allclose(nhwc(fwd_t()), y_s, rtol=1e-5, atol=1e-5)
    grads_s, grads_t = bwd_s(), bwd_t()
    if spec["op"] == "MaxPooling2D":
        np.testing.assert_allclose(nhwc(grads_t), grads_s, rtol=1e-5, atol=1e-5)
        return
    dx_s, dw_s, db_s = grads_s
    dx_t, dw_t, db_t = grads_t
    np.testing.assert_allclose(nhwc(dx_t), dx_s, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(dw_t.transpose(2, 3, 1, 0), dw_s, rtol=1e-5, atol=1e-4)   # PyTorch -> Keras
    np.testing.assert_allclose(db_t, db_s, rtol=1e-5, atol=1e-4)


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch not installed: pip install -e '.[torch]'")
def test_torch_model_calls_use_the_same_weights():
    from unet_scratch.bench_cases import scratch_model_calls, torch_model_calls
    model, x, target = model_and_data(dict(input_shape=(32, 32, 1), base_filters=4, depth=2, batch=2))
    forward, step = torch_model_calls(model, x, target)
    y_scratch = scratch_model_calls(model, "numpy", x, target)[0]()
    np.testing.assert_allclose(forward().transpose(0, 2, 3, 1), y_scratch, rtol=1e-5, atol=1e-5)
    assert np.isfinite(step())
    assert not np.allclose(forward().transpose(0, 2, 3, 1), y_scratch, rtol=1e-5, atol=1e-5)  # it trained


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

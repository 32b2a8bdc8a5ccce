"""make gpu-check: verify the CuPy backend on a real NVIDIA GPU and time it against PyTorch/cuDNN, in one run.

    python tools/gpu_check.py                 # on a GPU machine: at most about 8 minutes
    python tools/gpu_check.py --smoke         # anywhere: tiny sizes; without a GPU, on tests/strict_cupy.py
    make gpu-check  /  make gpu-check SMOKE=1

Sections (each one's outcome goes into the report, a failure does not stop the others):
  1. versions: Python, NumPy, CuPy, CUDA runtime and driver, the GPU, PyTorch; the backend's self-test
     (its two kernels compiled with NVRTC and run on a few numbers)
  2. the GPU test suite: tests/test_kernels_cupy.py and tests/test_gpu_path.py under pytest with the real
     CuPy (skipped with --smoke: the smoke run is itself one of those tests)
  3. kernels at full size: max pooling and ReLU, forward and backward, at 16 x 512 x 512 x 64 against the
     shared array code (xp_ops) on the same GPU, exactly (NaN where NaN); the largest convolution of the
     seed model (dec1_conv1: 3x3, 128 -> 64 channels, 256 x 256, batch 8), forward and both gradients,
     against PyTorch's cuDNN with TF32 off
  4. the seed model at 256 x 256, batch 2: output and every gradient against the NumPy reference on the CPU
     (output within rtol = atol = 1e-5; gradients reported as the largest relative error), and whether two
     backward passes on the GPU give bitwise the same gradients
  5. timings: the seed model at 256 x 256 batch 1 and 8, 512 x 512 batch 16, forward and one training
     step (binary cross-entropy from logits on the device, SGD), CuPy backend against PyTorch on the same
     GPU with the same weights: warm-up calls, then calls taken in turns, the device synchronised around
     each, medians; PyTorch with TF32 off (float32 like ours) and, as a separate column, with cuDNN's
     default TF32 on; both networks' outputs checked equal before timing; device memory high-water marks
     (CuPy: a memory hook's peak of the pool's live bytes; PyTorch: torch.cuda.max_memory_allocated)
Writes benchmarks/results/gpu-<gpu name>.md and .json (--out to change; --smoke writes gpu-smoke.* to a
temporary folder).
Exit status 0 when every check passed, 1 otherwise (the report says which failed).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

FULL = dict(pool_shape=(16, 512, 512, 64), conv=dict(x=(8, 256, 256, 128), w=(3, 3, 128, 64)),
            seed=dict(input_shape=(256, 256, 1), base_filters=64, depth=4), seed_batch=2,
            timings=[(256, 1), (256, 8), (512, 16)], warmup=3, repeats=10)
SMOKE = dict(pool_shape=(2, 16, 16, 8), conv=dict(x=(2, 16, 16, 16), w=(3, 3, 16, 8)),
             seed=dict(input_shape=(32, 32, 1), base_filters=4, depth=2), seed_batch=2,
             timings=[(32, 1), (32, 2)], warmup=1, repeats=2)


# ----------------------------------------------------------------------------- helpers

def _smoke_standin():
    """Without a GPU, --smoke runs on the strict stand-in (tests/strict_cupy.py) installed as ``cupy``."""
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() > 0:
            return False
    except Exception:  # noqa: BLE001 - no CuPy or no GPU
        pass
    sys.path.insert(0, str(ROOT / "tests"))
    import strict_cupy
    sys.modules["cupy"] = strict_cupy
    return True


def _version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _torch_cuda():
    """torch when it is installed and sees a CUDA GPU, else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def _rel(a, b):
    """max |a - b| / max(max |b|, 1e-30), on host arrays."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30)) if b.size else 0.0


class PeakMemory:
    """The CuPy memory pool's peak of live bytes while active (a cupy.cuda.MemoryHook), above the bytes
    live when it started."""

    def __init__(self, cupy):
        self.cupy, self.peak, self.live = cupy, 0, 0
        outer = self

        class Hook(cupy.cuda.MemoryHook):
            name = "unet_scratch_gpu_check"

            def malloc_postprocess(self, **kw):
                outer.live += int(kw.get("mem_size", 0))
                outer.peak = max(outer.peak, outer.live)

            def free_postprocess(self, **kw):
                outer.live -= int(kw.get("mem_size", 0))
        self.hook = Hook()

    def __enter__(self):
        self.hook.__enter__()
        return self

    def __exit__(self, *exc):
        return self.hook.__exit__(*exc)


def _median_times(calls, warmup, repeats):
    """name -> median seconds of calls taken in turns (each call waits for its device before returning)."""
    for f in calls.values():
        for _ in range(warmup):
            f()
    times = {n: [] for n in calls}
    for _ in range(repeats):
        for n, f in calls.items():
            start = time.perf_counter()
            f()
            times[n].append(time.perf_counter() - start)
    return {n: {"median_s": statistics.median(t), "min_s": min(t), "times_s": t} for n, t in times.items()}


# ----------------------------------------------------------------------------- the sections

def versions(cupy, standin):
    from unet_scratch import backend
    from unet_scratch.kernels import cupy_ops
    info = {"python": platform.python_version(), "numpy": np.__version__, "cupy": cupy.__version__,
            "standin": standin, "torch": _version("torch"), "platform": platform.platform()}
    rt = cupy.cuda.runtime
    info["cuda_runtime"] = rt.runtimeGetVersion()
    info["cuda_driver"] = rt.driverGetVersion()
    props = rt.getDeviceProperties(0)
    name = props["name"]
    info["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
    info["gpu_memory_gib"] = round(props.get("totalGlobalMem", 0) / 2**30, 1)
    info["compute_capability"] = f"{props.get('major')}.{props.get('minor')}"
    info["CUPY_TF32"] = os.environ.get("CUPY_TF32", "(unset)")
    problem = cupy_ops.self_test()
    info["kernels_compile_and_run"] = not problem
    if problem:
        raise RuntimeError(problem)
    backend.set_backend("cupy")
    torch = _torch_cuda()
    if torch is not None:
        info["torch_cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    return info


def gpu_tests(budget_s):
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "-m", "not slow",
           "tests/test_kernels_cupy.py", "tests/test_gpu_path.py"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=budget_s)
    tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
    summary = next((l for l in reversed(tail) if re.search(r"\d+ (passed|failed)", l)), tail[-1] if tail else "")
    if done.returncode != 0:
        raise RuntimeError("the GPU test suite failed:\n" + "\n".join(tail))
    return {"command": " ".join(cmd[2:]), "summary": summary.strip("= ")}


def kernels_full_size(cupy, plan):
    from unet_scratch.kernels import cupy_ops, xp_ops
    rng = np.random.default_rng(0)
    x = cupy.asarray(rng.standard_normal(plan["pool_shape"], dtype=np.float32))
    x[0, 0, 0, :4] = cupy.asarray(np.array([np.nan, 0.0, -0.0, np.inf], np.float32))
    out = {}
    y, cache = cupy_ops.maxpool2d(x)
    y_ref, cache_ref = xp_ops.maxpool2d(x)
    dy = cupy.asarray(rng.standard_normal(y.shape, dtype=np.float32))
    out["maxpool_forward_exact"] = bool(cupy.array_equal(y, y_ref, equal_nan=True))
    out["maxpool_argmax_exact"] = bool(cupy.array_equal(cache["argmax"], cache_ref["argmax"]))
    out["maxpool_backward_exact"] = bool(cupy.array_equal(cupy_ops.maxpool2d_backward(dy, cache),
                                                          xp_ops.maxpool2d_backward(dy, cache_ref)))
    r, r_cache = cupy_ops.relu(x)
    r_ref, _ = xp_ops.relu(x)
    out["relu_forward_exact"] = bool(cupy.array_equal(r, r_ref, equal_nan=True))
    dr = cupy.asarray(rng.standard_normal(x.shape, dtype=np.float32))
    out["relu_backward_exact"] = bool(cupy.array_equal(cupy_ops.relu_backward(dr, r_cache),
                                                       xp_ops.relu_backward(dr, r_cache), equal_nan=True))
    del x, y, y_ref, dy, r, r_ref, dr, cache, cache_ref, r_cache
    torch = _torch_cuda()
    if torch is None:
        out["conv_vs_cudnn"] = "skipped: PyTorch with CUDA is not installed"
    else:
        out.update(_conv_vs_cudnn(cupy, torch, plan["conv"], rng))
    failed = [k for k, v in out.items() if v is False]
    if failed:
        raise AssertionError(f"not exact: {', '.join(failed)}; {out}")
    return out


def _conv_vs_cudnn(cupy, torch, shapes, rng):
    """Forward, dx and dw of one 3x3 'same' conv: the CuPy backend against cuDNN (TF32 off)."""
    import torch.nn.functional as F
    from unet_scratch.kernels import cupy_ops
    x = rng.standard_normal(shapes["x"], dtype=np.float32)
    w = (rng.standard_normal(shapes["w"], dtype=np.float32) * 0.05).astype(np.float32)
    y, cache = cupy_ops.conv2d(cupy.asarray(x), cupy.asarray(w), None, 1, "same")
    dy = rng.standard_normal(tuple(y.shape), dtype=np.float32)
    dx, dw, _ = cupy_ops.conv2d_backward(cupy.asarray(dy), cache)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), device="cuda", requires_grad=True)
    wt = torch.tensor(w.transpose(3, 2, 0, 1).copy(), device="cuda", requires_grad=True)
    yt = F.conv2d(xt, wt, padding="same")
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2).copy(), device="cuda"))
    res = {"conv_shape": f"x {shapes['x']} w {shapes['w']}",
           "conv_forward_rel_err": _rel(cupy.asnumpy(y), yt.detach().cpu().numpy().transpose(0, 2, 3, 1)),
           "conv_dx_rel_err": _rel(cupy.asnumpy(dx), xt.grad.cpu().numpy().transpose(0, 2, 3, 1)),
           "conv_dw_rel_err": _rel(cupy.asnumpy(dw), wt.grad.cpu().numpy().transpose(2, 3, 1, 0))}
    res["conv_within_1e-5"] = all(v <= 1e-5 for k, v in res.items() if k.endswith("rel_err"))
    return res


def seed_model(cupy, plan):
    from unet_scratch import UNet, backend
    kw = dict(plan["seed"], seed=0)
    rng = np.random.default_rng(1)
    x = rng.random((plan["seed_batch"], *kw["input_shape"]), dtype=np.float32)
    ref = UNet(**kw)
    with backend.use_backend("numpy"):
        y_ref = ref.forward(x)
        dy = rng.standard_normal(y_ref.shape).astype(np.float32)
        dx_ref = ref.backward(dy)
    gpu = UNet(**kw).to("gpu")
    xd, dyd = cupy.asarray(x), cupy.asarray(dy)
    with backend.use_backend("cupy"):
        y = gpu.forward(xd)
        dx = gpu.backward(dyd)
        first = {k: cupy.asnumpy(v) for k, v in gpu.grads.items()}
        gpu.forward(xd)
        gpu.backward(dyd)
        second = {k: cupy.asnumpy(v) for k, v in gpu.grads.items()}
    out = {"config": {**kw, "input_shape": list(kw["input_shape"])}, "batch": plan["seed_batch"]}
    y_host = cupy.asnumpy(y)
    out["output_max_abs_err"] = float(np.max(np.abs(y_host - y_ref)))
    out["output_within_1e-5"] = bool(np.allclose(y_host, y_ref, rtol=1e-5, atol=1e-5))
    out["dx_rel_err"] = _rel(cupy.asnumpy(dx), dx_ref)
    errs = {k: _rel(first[k], g) for k, g in ref.grads.items()}
    worst = max(errs, key=errs.get)
    out["grads_max_rel_err"], out["grads_worst_layer"] = errs[worst], worst
    out["grads_bitwise_deterministic"] = all(np.array_equal(first[k], second[k]) for k in first)
    if not out["output_within_1e-5"]:
        raise AssertionError(f"the seed model's output differs from the NumPy reference by "
                             f"{out['output_max_abs_err']:.2e} (> rtol = atol = 1e-5)")
    return out


def timings(cupy, plan, standin):
    from unet_scratch.bench_cases import model_and_data, scratch_model_calls, torch_model_calls
    torch = _torch_cuda()
    rows = []
    for size, batch in plan["timings"]:
        config = dict(plan["seed"], input_shape=(size, size, 1))
        model, x1, t1 = model_and_data(config)
        rng = np.random.default_rng(2)
        x = rng.random((batch, size, size, 1), dtype=np.float32)
        t = (rng.random((batch, *model.output_shape[1:])) > 0.5).astype(np.float32)
        row = {"size": size, "batch": batch}
        calls = {}
        fwd, step = scratch_model_calls(model, "cupy", x, t)
        calls["cupy"] = (fwd, step)
        if torch is not None:
            calls["torch"] = torch_model_calls(model, x, t, device="cuda", tf32=False)
            calls["torch_tf32"] = torch_model_calls(model, x, t, device="cuda", tf32=True)
            y_c = cupy.asnumpy(fwd())
            y_t = calls["torch"][0]().cpu().numpy().transpose(0, 2, 3, 1)
            row["outputs_max_abs_diff_vs_torch"] = float(np.max(np.abs(y_c - y_t)))
            row["outputs_equal_1e-5"] = bool(np.allclose(y_c, y_t, rtol=1e-5, atol=1e-5))
            y_tf32 = calls["torch_tf32"][0]().cpu().numpy().transpose(0, 2, 3, 1)
            row["outputs_max_abs_diff_tf32"] = float(np.max(np.abs(y_c - y_tf32)))
        for part, i in (("forward", 0), ("train_step", 1)):
            stats = _median_times({n: c[i] for n, c in calls.items()}, plan["warmup"], plan["repeats"])
            row[part] = {n: round(s["median_s"] * 1e3, 3) for n, s in stats.items()}
            if "torch" in stats:
                row[part]["cupy_over_torch"] = round(stats["cupy"]["median_s"] / stats["torch"]["median_s"], 3)
        row["memory_mb"] = _memory(cupy, torch, calls)
        rows.append(row)
        del calls, fwd, step, model
        cupy.get_default_memory_pool().free_all_blocks()
        if torch is not None:
            torch.cuda.empty_cache()
    return rows


def _memory(cupy, torch, calls):
    out = {}
    for part, i in (("forward", 0), ("train_step", 1)):
        cupy.cuda.Device().synchronize()
        with PeakMemory(cupy) as peak:
            calls["cupy"][i]()
        out[f"cupy_{part}"] = round(peak.peak / 2**20, 1)
        if torch is not None:
            for name in ("torch", "torch_tf32"):
                torch.cuda.synchronize()
                base = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
                calls[name][i]()
                out[f"{name}_{part}"] = round((torch.cuda.max_memory_allocated() - base) / 2**20, 1)
    return out


# ----------------------------------------------------------------------------- the report

def to_markdown(report):
    v = report.get("versions", {})
    lines = [f"# GPU check: {v.get('gpu', '?')}{' (smoke run on the strict CuPy stand-in)' if v.get('standin') else ''}",
             "", f"{report['date']}, `python tools/gpu_check.py{' --smoke' if report['smoke'] else ''}`, "
             f"{report['seconds']:.0f} s. Verdict: **{'all checks passed' if report['ok'] else 'FAILED: ' + ', '.join(report['failed'])}**.",
             "", "## Versions", ""] + [f"- {k}: {val}" for k, val in v.items()]
    for section in ("gpu_tests", "kernels", "seed_model"):
        lines += ["", f"## {section.replace('_', ' ')}", ""]
        body = report.get(section)
        if isinstance(body, dict):
            lines += [f"- {k}: {val:.3g}" if isinstance(val, float) else f"- {k}: {val}" for k, val in body.items()]
        else:
            lines.append(f"- {body}")
    lines += ["", "## Timings (ms, medians; device synchronised around each call)", "",
              f"U-Net {report.get('plan', {})}, float32, SGD step with binary cross-entropy from logits on the "
              "device. `torch` = PyTorch/cuDNN with TF32 off (float32 like "
              "the scratch code), `torch_tf32` = cuDNN's default TF32 on (10-bit mantissa), shown apart.", "",
              "| input | batch | pass | cupy | torch | torch_tf32 | cupy / torch |", "|---|---|---|---|---|---|---|"]
    rows = report.get("timings")
    if isinstance(rows, list):
        for r in rows:
            for part in ("forward", "train_step"):
                t = r[part]
                lines.append(f"| {r['size']} x {r['size']} | {r['batch']} | {part} | {t.get('cupy', '-')} | "
                             f"{t.get('torch', '-')} | {t.get('torch_tf32', '-')} | {t.get('cupy_over_torch', '-')} |")
        lines += ["", "Outputs and device memory high-water marks (MB, one call after warm-up):", "",
                  "| input | batch | outputs equal (1e-5) | max diff vs torch | max diff vs torch_tf32 | memory |",
                  "|---|---|---|---|---|---|"]
        for r in rows:
            mem = ", ".join(f"{k} {val}" for k, val in r["memory_mb"].items())
            lines.append(f"| {r['size']} x {r['size']} | {r['batch']} | {r.get('outputs_equal_1e-5', '-')} | "
                         f"{r.get('outputs_max_abs_diff_vs_torch', '-')} | {r.get('outputs_max_abs_diff_tf32', '-')} | {mem} |")
    else:
        lines.append(f"- {rows}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny sizes; on the strict stand-in without a GPU")
    p.add_argument("--out", default=None, help="folder for gpu-*.md/.json (default benchmarks/results; "
                                               "with --smoke a temporary folder, never the repository)")
    p.add_argument("--no-tests", action="store_true", help="skip the pytest section")
    args = p.parse_args(argv)
    smoke = args.smoke or os.environ.get("SMOKE") not in (None, "", "0")
    plan = SMOKE if smoke else FULL
    standin = _smoke_standin() if smoke else False
    start = time.perf_counter()
    report = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "smoke": smoke, "failed": [], "plan": {k: plan["seed"][k] for k in ("base_filters", "depth")}}
    try:
        import cupy
    except ImportError:
        print("CuPy is not installed: pip install -e '.[gpu-cuda12]' (or '.[gpu-cuda13]'); "
              "or run with --smoke to check this script on the CPU stand-in", file=sys.stderr)
        return 2

    def section(name, f, *a):
        t0 = time.perf_counter()
        print(f"[gpu-check] {name} ...", flush=True)
        try:
            report[name] = f(*a)
        except Exception as err:  # noqa: BLE001 - recorded, then the next section runs
            report[name] = f"FAILED: {type(err).__name__}: {err}"
            report["failed"].append(name)
            traceback.print_exc()
        print(f"[gpu-check] {name}: {time.perf_counter() - t0:.1f} s", flush=True)

    section("versions", versions, cupy, standin)
    if "versions" in report["failed"]:
        report["gpu_tests"] = report["kernels"] = report["seed_model"] = report["timings"] = \
            "not run: the backend's kernels do not compile and run here"
    else:
        if smoke or args.no_tests:
            report["gpu_tests"] = "skipped (--smoke or --no-tests)"
        else:
            section("gpu_tests", gpu_tests, 240)
        section("kernels", kernels_full_size, cupy, plan)
        section("seed_model", seed_model, cupy, plan)
        section("timings", timings, cupy, plan, standin)
    report["seconds"] = time.perf_counter() - start
    report["ok"] = not report["failed"]
    out = Path(args.out or (Path(tempfile.gettempdir()) / "unet-scratch-gpu-smoke" if smoke
                            else ROOT / "benchmarks" / "results"))
    out.mkdir(parents=True, exist_ok=True)
    gpu = report.get("versions", {}).get("gpu", "gpu") if isinstance(report.get("versions"), dict) else "gpu"
    stem = "gpu-smoke" if smoke else "gpu-" + re.sub(r"[^A-Za-z0-9]+", "-", gpu).strip("-").lower()
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1, default=str))
    (out / f"{stem}.md").write_text(to_markdown(report))
    print(f"[gpu-check] wrote {out / stem}.md and .json; {'all checks passed' if report['ok'] else 'FAILED: ' + ', '.join(report['failed'])}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())

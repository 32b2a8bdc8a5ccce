"""Benchmark: the NumPy and Numba backends against TensorFlow (and PyTorch when installed), in one process.

    python -m unet_scratch.bench [--quick] [--out benchmarks/results] [--repeats 5]

What is timed (every backend on the same weights and inputs, batch 1):
  * each distinct conv, transposed-conv and max-pool shape of the seed model, forward and backward
    (TensorFlow: tf.nn ops and their gradient ops, each inside a ``tf.function``);
  * the whole forward pass and one training step (forward, binary cross-entropy, backward, SGD update)
    of the seed model at 256 x 256 x 1 and of a small one (base 16, 128 x 128). TensorFlow runs the
    Keras model built by ``keras_ref.build_keras_unet`` with the same weights (``keras_ref.to_keras``),
    forward and ``GradientTape`` + SGD step each compiled with ``tf.function``.
Method: warm-up calls first (Numba compiles, TensorFlow traces), then the backends take turns, call by
call (numpy, numba, tf, numpy, numba, tf, ...), with a short pause between calls so that one library's
spinning worker threads do not slow the next; the tables report medians. GFLOP/s count 2 x MACs
(backward = 2 x forward: dx and dw); the machine's float32 GEMM peak comes from one big square
``np.matmul``. Peak memory: a fresh subprocess per backend runs a warm-up call, resets the kernel's
peak-RSS counter (``/proc/self/clear_refs``) and reports VmHWM - VmRSS over one forward and one step,
plus, for the NumPy-based backends, tracemalloc's peak of the arrays allocated during the call.
``--quick`` uses small shapes and 2 repeats (a smoke test, about half a minute).

On a GPU machine ``--backends numpy,cupy,torch`` adds the cupy backend (its calls run a GPU copy of the
model, the loss on the device, and wait for the device before returning) and PyTorch on CUDA twice:
"torch-cuda" with TF32 off (float32 as the scratch code computes it) and "torch-cuda-tf32" with cuDNN's
default TF32 on, reported as its own column. ``make gpu-check`` (tools/gpu_check.py) is the GPU's own
check and benchmark (batches 1 to 16, device memory, correctness at full size).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from . import backend, bench_machine
from . import bench_report as report
from .bench_cases import (forward_gflop, layer_specs, model_and_data, scratch_layer_calls,  # noqa: F401
                          scratch_model_calls, shifted_views_conv, spec_gflop, spec_label,
                          tf_layer_calls, tf_model_calls, torch_layer_calls, torch_model_calls)

# "course": the course's own training workload (chapter 08's `train`, the notebooks that train): 128 x 128,
# base 16, depth 3, batch 4. Layer rows come from each model in layers_from (the first: "layers", with the
# conv-strategy table; the others: "workload_layers").
FULL = dict(models=[("seed", dict(input_shape=(256, 256, 1), base_filters=64)),
                    ("course", dict(input_shape=(128, 128, 1), base_filters=16, depth=3, batch=4))],
            layers_from=("seed", "course"), repeats=5, warmup=2, settle=0.1, gemm_n=4096)
QUICK = dict(models=[("tiny", dict(input_shape=(32, 32, 1), base_filters=8, depth=2)),
                     ("tiny-batch", dict(input_shape=(32, 32, 1), base_filters=4, depth=2, batch=2))],
             layers_from=("tiny", "tiny-batch"), repeats=2, warmup=1, settle=0.01, gemm_n=1024)


# ----------------------------------------------------------------------------- timing helpers


def time_round_robin(calls: dict, repeats: int, warmup: int, settle: float) -> dict:
    """calls: name -> zero-argument function. Returns name -> {"median_s", "min_s", "times_s"}."""
    for f in calls.values():
        for _ in range(warmup):
            f()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, f in calls.items():
            if settle:
                time.sleep(settle)
            start = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - start)
    return {name: {"median_s": statistics.median(t), "min_s": min(t), "times_s": t}
            for name, t in times.items()}


def gemm_peak_gflops(n: int, repeats: int = 3) -> float:
    """float32 GFLOP/s of an n x n x n ``np.matmul`` (best of ``repeats``, after one warm-up)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(f) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def machine_info() -> dict:
    """CPU, cores, library versions and thread settings, for the report."""
    cpu = platform.processor()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": cpu, "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform()}
    try:
        blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
        info["blas"] = f"{blas.get('name')} {blas.get('version')}"
    except (AttributeError, KeyError, TypeError):
        pass
    for name in ("numba", "tensorflow", "keras", "torch"):
        try:
            info[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            info[name] = None
    if info["numba"]:
        from .kernels import numba_loops
        info["numba_parallel"] = numba_loops.PARALLEL
    info["TF_ENABLE_ONEDNN_OPTS"] = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(unset: oneDNN on)")
    if info["torch"]:
        import torch
        info["torch_threads"] = torch.get_num_threads()
    info.update(bench_machine.describe())           # ISA, the BLAS kernel that ran, what the environment forces
    return info


# ----------------------------------------------------------------------------- peak memory


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        return int(next(l.split()[1] for l in fh if l.startswith(field + ":")))


def memory_probe(name: str, config: dict) -> dict:
    """In this (fresh) process: the peak RSS increase (MB) of the first forward and the first step
    ("first": what the process had to grow by, graph tracing and allocator pools included), then of one
    more call after that warm-up (under-counts what an allocator kept), and the whole session's peak
    above the RSS it started from; for the scratch backends also tracemalloc's peak of the arrays
    allocated during one call (NumPy reports its buffers to tracemalloc)."""
    import tracemalloc
    model, x, target = model_and_data(config)
    calls = (tf_model_calls(model, x, target) if name == "tf" else
             torch_model_calls(model, x, target) if name == "torch" else
             scratch_model_calls(model, name, x, target))
    def reset_peak():
        with open("/proc/self/clear_refs", "w") as fh:      # resets VmHWM to the current RSS
            fh.write("5")

    reset_peak()
    out, start, highest = {}, _rss_kb("VmRSS"), 0
    for label, f in zip(("forward", "train_step"), calls):
        highest = max(highest, _rss_kb("VmHWM"))
        base = _rss_kb("VmRSS")                              # the first call: everything it needed,
        reset_peak()                                         # tracing and compiling included
        f()
        out[label + "_first_peak_mb"] = (_rss_kb("VmHWM") - base) / 1024
        highest = max(highest, _rss_kb("VmHWM"))
        base = _rss_kb("VmRSS")
        reset_peak()
        f()
        out[label + "_peak_mb"] = (_rss_kb("VmHWM") - base) / 1024
        highest = max(highest, _rss_kb("VmHWM"))
        if name in ("numpy", "numba"):
            tracemalloc.start()
            f()
            out[label + "_arrays_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
    # the whole session (model and data already built): how far above its starting RSS the process went
    out["session_peak_mb"] = (max(highest, _rss_kb("VmHWM")) - start) / 1024
    return out


def _memory_in_subprocess(name: str, config: dict) -> dict:
    cmd = [sys.executable, "-m", "unet_scratch.bench", "--memory-probe", name, json.dumps(config)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])
    except Exception as err:  # noqa: BLE001 - report, do not abort the benchmark
        return {"error": f"{type(err).__name__}: {str(err)[:200]}"}


# ----------------------------------------------------------------------------- the run


def _contenders(backends):
    names = [b for b in backends if b in ("numpy", "numba", "cupy") and b in backend.available_backends()]
    for name in ("tf", "torch"):
        if name in backends:
            try:
                __import__("tensorflow" if name == "tf" else "torch")
                names.append(name)
            except ImportError:
                pass
    if "torch" in names and "cupy" in names:
        import torch
        if torch.cuda.is_available():
            names += ["torch-cuda", "torch-cuda-tf32"]
    return names


def _model_calls(name, model, x, target):
    """(forward, step) of contender ``name`` (see bench_cases)."""
    if name == "tf":
        return tf_model_calls(model, x, target)
    if name.startswith("torch"):
        cuda = name.startswith("torch-cuda")
        return torch_model_calls(model, x, target, device="cuda" if cuda else "cpu", tf32=name.endswith("tf32"))
    return scratch_model_calls(model, name, x, target)


_ON_DEVICE = ("cupy", "torch-cuda", "torch-cuda-tf32")


def with_ratios(stats: dict, gflop: float) -> dict:
    """Adds "gflops", "ratio_to_tf" (this median / TensorFlow's) and "ratio_to_best" (this median / the
    faster of TensorFlow and PyTorch on the CPU) to each backend's stats; returns stats."""
    tf_time = stats.get("tf", {}).get("median_s")
    frameworks = [stats[n]["median_s"] for n in ("tf", "torch") if n in stats]
    best = min(frameworks) if frameworks else None
    for s in stats.values():
        s["gflops"] = gflop / s["median_s"] if gflop else None
        s["ratio_to_tf"] = s["median_s"] / tf_time if tf_time else None
        s["ratio_to_best"] = s["median_s"] / best if best else None
    return stats


def run(quick=False, backends=("numpy", "numba", "tf", "torch"), repeats=None, memory=True,
        log=print) -> dict:
    """Run the whole benchmark; returns the results as a JSON-ready dict."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    plan = dict(QUICK if quick else FULL)
    repeats = repeats or plan["repeats"]
    names = _contenders(backends)
    timing = dict(repeats=repeats, warmup=plan["warmup"], settle=plan["settle"])
    if "cupy" in names:
        timing["warmup"] = max(timing["warmup"], 2)       # NVRTC compiles each kernel on its first call
    results = {"meta": {**machine_info(), "quick": quick, "backends": names, **timing},
               "gemm_peak_gflops": gemm_peak_gflops(plan["gemm_n"]), "models": [], "layers": [],
               "workload_layers": [], "conv_strategies": []}
    specs_of = {}
    log(f"float32 GEMM peak: {results['gemm_peak_gflops']:.0f} GFLOP/s; backends {names}")
    for label, config in plan["models"]:
        model, x, target = model_and_data(config)
        batch = config.get("batch", 1)
        gflop = forward_gflop(model, batch)
        calls = {name: _model_calls(name, model, x, target) for name in names}
        entry = {"name": label, "config": {**config, "input_shape": list(config["input_shape"])},
                 "gflop_forward": gflop, "gflop_step": 3 * gflop}
        for i, part in enumerate(("forward", "train_step")):
            stats = time_round_robin({n: c[i] for n, c in calls.items()}, **timing)
            entry[part] = with_ratios(stats, entry["gflop_forward" if i == 0 else "gflop_step"])
            log(f"{label} {part}: " + ", ".join(f"{n} {_ms(stats, n)} ms" for n in stats))
        if memory:
            entry["memory"] = {n: _memory_in_subprocess(n, entry["config"]) if n not in _ON_DEVICE else
                               {"note": "device memory: see make gpu-check"} for n in names}
        results["models"].append(entry)
        if label in plan["layers_from"]:
            specs_of[label] = layer_specs(model, batch)
    rng = np.random.default_rng(0)
    for spec, label in [(s, label) for label in plan["layers_from"] for s in specs_of.get(label, [])]:
        fwd, bwd = {}, {}
        for name in names:
            if name == "torch":
                import torch
                fwd[name], bwd[name] = torch_layer_calls(torch, spec, rng)
                continue
            if name.startswith("torch"):
                continue
            if name == "tf":
                import tensorflow as tf
                fwd[name], bwd[name] = tf_layer_calls(tf, spec, rng)
            else:
                with backend.use_backend(name):
                    fwd[name], bwd[name] = scratch_layer_calls(backend.ops(), spec, rng,
                                                               device=backend.backend_device(name))
        gflop = spec_gflop(spec)
        row = {**spec, "model": label, "label": spec_label(spec), "gflop_forward": gflop,
               "forward": with_ratios(time_round_robin(fwd, **timing), gflop),
               "backward": with_ratios(time_round_robin(bwd, **timing), 2 * gflop)}
        first = label == plan["layers_from"][0]
        results["layers" if first else "workload_layers"].append(row)
        log(f"{label} {row['label']} fwd/bwd: "
            + ", ".join(f"{n} {_ms(row['forward'], n)}/{_ms(row['backward'], n)} ms" for n in row["forward"]))
        if first and spec["op"] == "Conv2D" and spec["param"][:2] == (3, 3) and spec["strides"] == (1, 1) \
                and spec["padding"] == "same" and "numba" in names:
            results["conv_strategies"].append(_strategies(spec, rng, timing))
    return results


def _strategies(spec, rng, timing) -> dict:
    """Forward time of one 3x3 conv by full im2col (reference), chunked im2col, Winograd and the direct
    kernels (Numba), shifted views; the Numba columns call numba_conv / numba_winograd / numba_direct
    directly, whatever ``conv2d`` would pick for that shape (the direct kernels need F to be a multiple of
    the vector width, as every layer of the seed model's is but the head)."""
    from .kernels import numba_conv, numba_direct, numba_winograd
    from .ops import conv as ref
    x = rng.standard_normal(spec["x_shape"], dtype=np.float32)
    w = rng.standard_normal(spec["param"], dtype=np.float32)
    expected = ref.conv2d(x, w, None, 1, "same")[0]
    np.testing.assert_allclose(shifted_views_conv(x, w), expected, rtol=1e-4, atol=1e-3)
    kh, kw, c, f = w.shape
    oh, ow, pad_h, pad_w = numba_conv.conv_geometry(x.shape, (kh, kw), (1, 1), "same")
    wmat = w.reshape(kh * kw * c, f)

    def chunked():
        return numba_conv.conv_forward_im2col(x, wmat, (kh, kw), (1, 1), (pad_h, pad_w), (oh, ow))

    def winograd():
        return numba_winograd.winograd_conv(x, wmat, (pad_h, pad_w), (oh, ow))

    def direct_conv():
        return numba_direct.conv_direct(x, wmat, (kh, kw), (1, 1), (pad_h, pad_w), (oh, ow))

    np.testing.assert_allclose(winograd(), expected, rtol=1e-4, atol=1e-3)
    calls = {"full im2col (numpy)": lambda: ref.conv2d(x, w, None, 1, "same"),
             "chunked im2col (numba)": chunked, "winograd (numba)": winograd, "direct (numba)": direct_conv,
             "shifted views": lambda: shifted_views_conv(x, w)}
    if f % numba_direct.lanes(x.dtype):                 # filters not a whole number of vectors
        del calls["direct (numba)"]
    else:
        np.testing.assert_allclose(direct_conv(), expected, rtol=1e-4, atol=1e-3)
    stats = with_ratios(time_round_robin(calls, **timing), spec_gflop(spec))
    stats.setdefault("direct (numba)", None)                          # "-" in the table
    return {"label": spec_label(spec), **stats}


# ----------------------------------------------------------------------------- the report


def _ms(stats, name):
    s = stats.get(name)
    return f"{s['median_s'] * 1e3:.1f}" if s else "-"


def to_markdown(results: dict) -> str:
    """The results as Markdown tables: whole models, layers, conv strategies, machine."""
    meta, names = results["meta"], results["meta"]["backends"]
    peak = results["gemm_peak_gflops"]
    rel = [n for n in names if n != "tf"]
    lines = [f"# unet-scratch benchmark ({'quick' if meta['quick'] else 'full'})", "",
             f"float32, each model's batch in its row. Medians of {meta['repeats']} interleaved repeats after "
             f"{meta['warmup']} warm-up call(s). GEMM peak (float32 np.matmul): **{peak:.0f} GFLOP/s**. "
             "x/best: time over the faster of TensorFlow and PyTorch (CPU).", "",
             bench_machine.blas_summary(meta), "", "## Whole model", ""] + report.whole_model_table(results)
    if any("memory" in m for m in results["models"]):
        lines += ["", "Peak memory of one call (MB), in a fresh process per backend after a warm-up call: "
                  "RSS = VmHWM - VmRSS (what the process had to add; allocators keep memory from the "
                  "warm-up), arrays = tracemalloc peak of the NumPy buffers allocated during the call:", "",
                  "| model | pass | " + " | ".join(f"{n} RSS" for n in names) + " | "
                  + " | ".join(f"{n} arrays" for n in rel if n != "torch") + " |",
                  "|---|---|" + "---|" * (len(names) + len([n for n in rel if n != "torch"]))]
        for m in results["models"]:
            mem = m.get("memory", {})
            for part in ("forward", "train_step"):
                cells = [f"{mem.get(n, {}).get(part + '_peak_mb', float('nan')):.0f}" for n in names]
                cells += [f"{mem.get(n, {}).get(part + '_arrays_peak_mb', float('nan')):.0f}"
                          for n in rel if n != "torch"]
                lines.append(f"| {m['name']} | {part} | " + " | ".join(cells) + " |")
    lines += ["", "## Layers", "", "Forward / backward ms, each distinct layer of the first model; GFLOP/s and "
              "% of the GEMM peak for the fastest scratch backend.", ""]
    lines += report.layer_table(results["layers"], names, peak)
    if results.get("workload_layers"):
        first = results["workload_layers"][0]["model"]
        m = next((m for m in results["models"] if m["name"] == first), None)
        lines += ["", f"## Layers of the {report.model_label(m) if m else first} workload", ""]
        lines += report.layer_table(results["workload_layers"], names, peak)
    if results["conv_strategies"]:
        keys = list(results["conv_strategies"][0].keys())[1:]
        lines += ["", "## Conv strategies (3x3 stride 1 'same', forward ms)", "",
                  "| layer | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
        for row in results["conv_strategies"]:
            lines.append(f"| {row['label']} | " + " | ".join(_ms(row, k) for k in keys) + " |")
    lines += report.targets_section(results)
    lines += ["", "## Machine", ""] + [f"- {k}: {v}" for k, v in meta.items() if k not in ("backends",)]
    return "\n".join(lines) + "\n"


def write_results(results: dict, out_dir) -> tuple:
    """Write bench-<full|quick>.json and .md under out_dir; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = "bench-quick" if results["meta"]["quick"] else "bench-full"
    paths = out / f"{stem}.json", out / f"{stem}.md"
    paths[0].write_text(json.dumps(results, indent=1, default=str))
    paths[1].write_text(to_markdown(results))
    return paths


def run_with_cpu_kernels(argv, forcing, runner=None) -> int:
    """The benchmark again, in a subprocess whose environment lacks OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
    (this process's environment is not touched), so that NumPy's BLAS runs the CPU's own kernels; the
    child's report records what was removed. Returns the child's exit code."""
    removed = forcing["variables"]
    print(f"bench: the environment forces NumPy's BLAS kernel ({', '.join(f'{k}={v}' for k, v in removed.items())}"
          f"; the CPU has {forcing['cpu_isa']}): timing in a subprocess without it (--keep-blas-env to keep it)",
          flush=True)
    cmd = [sys.executable, "-m", "unet_scratch.bench", *argv, "--blas-env-removed", json.dumps(removed)]
    return (runner or subprocess.run)(cmd, env=bench_machine.environment_without_forcing()).returncode


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m unet_scratch bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small shapes, 2 repeats (a smoke test)")
    p.add_argument("--out", default="benchmarks/results", help="folder for the JSON and Markdown")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--backends", default="numpy,numba,tf,torch")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--keep-blas-env", action="store_true",
                   help="time NumPy's BLAS with the kernel the environment forces (OPENBLAS_CORETYPE) instead "
                        "of re-running without it")
    p.add_argument("--memory-probe", nargs=2, metavar=("BACKEND", "CONFIG_JSON"), help=argparse.SUPPRESS)
    p.add_argument("--blas-env-removed", default=None, help=argparse.SUPPRESS)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    unknown = [b for b in args.backends.split(",") if b not in ("numpy", "numba", "cupy", "tf", "torch")]
    if unknown:
        p.error(f"--backends: unknown {', '.join(map(repr, unknown))}; choose from numpy, numba, cupy, tf, torch")
    if args.memory_probe:
        name, config = args.memory_probe
        print(json.dumps(memory_probe(name, json.loads(config))))
        return 0
    forcing = bench_machine.blas_forcing()
    if args.blas_env_removed is None and not args.keep_blas_env and bench_machine.needs_cpu_kernel_run(forcing):
        return run_with_cpu_kernels(argv, forcing)
    results = run(quick=args.quick, backends=args.backends.split(","), repeats=args.repeats,
                  memory=not args.no_memory)
    if args.blas_env_removed:
        results["meta"]["blas_env_removed"] = json.loads(args.blas_env_removed)
    for path in write_results(results, args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

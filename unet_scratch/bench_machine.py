"""What the benchmark ran on: the CPU's vector instruction set, and the BLAS library, version and kernel that
actually ran (which the environment can force to an older one).

    describe()                   the report's machine entries (ISA, BLAS libraries, forcing)
    cpu_isa(flags)               "avx512", "avx2", "avx", "sse4" or "sse" from /proc/cpuinfo's flags
    blas_libraries()             threadpoolctl's view of every BLAS loaded: library, version, kernel
                                 ("architecture"), threads
    blas_forcing(env, flags)     which OpenBLAS variables the environment sets and whether the kernel they
                                 force is older than the CPU's
    environment_without_forcing  a copy of an environment without them, for the benchmark's own subprocess

Why it matters. OpenBLAS picks its matrix-product kernel for the CPU it finds, unless ``OPENBLAS_CORETYPE``
names one (``OPENBLAS_L2_SIZE`` sets the cache size it tunes for). Some course machines set
``OPENBLAS_CORETYPE=Haswell`` because older OpenBLAS builds misbehaved on their CPU: NumPy's products then
run AVX2 kernels (about 250 GFLOP/s on a 2-core AMD EPYC with AVX-512) while TensorFlow's oneDNN and PyTorch
use AVX-512 (NumPy reaches about 450 GFLOP/s there with the CPU's own kernel). A comparison that does not say
which kernel ran is not fair to either side. ``python -m unet_scratch bench`` therefore re-runs itself in a
subprocess whose environment lacks both variables (the parent process, the tests and CI keep theirs) and
says so in its report; ``--keep-blas-env`` times the forced kernel instead.
"""
from __future__ import annotations

import os

FORCING_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

# the widest vector instructions of each OpenBLAS x86-64 core type (OpenBLAS's TargetList.txt)
CORETYPE_ISA = {
    "sapphirerapids": "avx512", "cooperlake": "avx512", "skylakex": "avx512",
    "haswell": "avx2", "zen": "avx2", "excavator": "avx2", "skylake": "avx2",
    "sandybridge": "avx", "bulldozer": "avx", "piledriver": "avx", "steamroller": "avx",
    "nehalem": "sse4", "dunnington": "sse4", "penryn": "sse4", "barcelona": "sse",
    "core2": "sse", "atom": "sse", "prescott": "sse", "opteron": "sse", "katmai": "sse",
}
ISA_LEVEL = {"sse": 0, "sse4": 1, "avx": 2, "avx2": 3, "avx512": 4}
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_tile")


def cpu_flags(path: str = "/proc/cpuinfo") -> set:
    """The first processor's flags in /proc/cpuinfo (an empty set where there is no such file)."""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_isa(flags) -> str:
    """The widest vector instruction set the flags advertise: avx512 (avx512f), avx2, avx, sse4 or sse."""
    for flag, isa in (("avx512f", "avx512"), ("avx2", "avx2"), ("avx", "avx"), ("sse4_2", "sse4")):
        if flag in flags:
            return isa
    return "sse"


def blas_libraries() -> list:
    """Every BLAS loaded in this process, as threadpoolctl reports it: [{"library", "version",
    "kernel" (OpenBLAS's "architecture"), "threads", "file"}]; [] when threadpoolctl is missing."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    out = []
    for lib in threadpool_info():
        if lib.get("user_api") != "blas":
            continue
        out.append({"library": lib.get("internal_api"), "version": lib.get("version"),
                    "kernel": lib.get("architecture"), "threads": lib.get("num_threads"),
                    "file": os.path.basename(lib.get("filepath") or "")})
    return out


def blas_forcing(env=None, flags=None) -> dict:
    """What the environment forces on OpenBLAS. Returns {"variables": {name: value} of FORCING_VARS that are
    set, "cpu_isa", "forced_kernel" (OPENBLAS_CORETYPE or None), "forced_isa" (None when unknown or unset),
    "older_than_cpu": True / False, or None when a core type is forced that this table does not know}."""
    env = os.environ if env is None else env
    flags = cpu_flags() if flags is None else flags
    variables = {k: env[k] for k in FORCING_VARS if k in env}
    isa = cpu_isa(flags)
    forced = variables.get("OPENBLAS_CORETYPE")
    forced_isa = CORETYPE_ISA.get(forced.strip().lower()) if forced else None
    if forced is None:
        older = False
    elif forced_isa is None:
        older = None
    else:
        older = ISA_LEVEL[forced_isa] < ISA_LEVEL[isa]
    return {"variables": variables, "cpu_isa": isa, "forced_kernel": forced, "forced_isa": forced_isa,
            "older_than_cpu": older}


def needs_cpu_kernel_run(forcing: dict) -> bool:
    """True when the benchmark should time the CPU's own kernels in a subprocess: OPENBLAS_CORETYPE forces
    a kernel older than the CPU's, or one this module cannot rank (an OPENBLAS_L2_SIZE alone is reported,
    not removed)."""
    return forcing["forced_kernel"] is not None and forcing["older_than_cpu"] is not False


def environment_without_forcing(env=None) -> dict:
    """A copy of ``env`` (default os.environ, which is not changed) without FORCING_VARS."""
    env = os.environ if env is None else env
    return {k: v for k, v in env.items() if k not in FORCING_VARS}


def describe(env=None) -> dict:
    """The machine entries of the benchmark's report: {"cpu_isa", "cpu_simd_flags", "blas_libraries",
    "blas_forcing"} (call it after the contenders are imported, so that every BLAS they load is listed)."""
    flags = cpu_flags()
    return {"cpu_isa": cpu_isa(flags), "cpu_simd_flags": [f for f in SIMD_FLAGS if f in flags],
            "blas_libraries": blas_libraries(), "blas_forcing": blas_forcing(env, flags)}


def blas_summary(meta: dict) -> str:
    """One sentence for the report: which BLAS kernel NumPy's products ran, and whether it was forced."""
    libs = meta.get("blas_libraries") or []
    ran = ", ".join(f"{lib['library']} {lib['version']} kernel {lib['kernel']} ({lib['threads']} threads)"
                    for lib in libs) or "unknown (threadpoolctl not installed)"
    isa = meta.get("cpu_isa", "?")
    removed = meta.get("blas_env_removed") or {}
    forcing = meta.get("blas_forcing") or {}
    if removed:
        settings = ", ".join(f"{k}={v}" for k, v in removed.items())
        return (f"NumPy's BLAS: {ran}; CPU instruction set {isa}. The environment sets {settings}; this "
                f"benchmark ran in a subprocess without them, so NumPy used the CPU's own kernels "
                f"(the parent process, tests and CI keep the setting).")
    if forcing.get("variables"):
        settings = ", ".join(f"{k}={v}" for k, v in forcing["variables"].items())
        older = forcing.get("older_than_cpu")
        verdict = ("an older kernel than the CPU supports: NumPy's products are slower than they could be, "
                   "while TensorFlow's oneDNN and PyTorch are not affected" if older else
                   "a kernel this table does not rank" if older is None else "not older than the CPU's")
        return f"NumPy's BLAS: {ran}; CPU instruction set {isa}. FORCED by {settings}: {verdict}."
    return f"NumPy's BLAS: {ran}; CPU instruction set {isa}; no kernel forced by the environment."

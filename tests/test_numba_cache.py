"""The Numba on-disk cache keeps the two thread modes apart.

Numba's cache index is keyed by the signature, the CPU and the function's bytecode, not by the jit flags
(numba/numba#6845): with one cache for both modes, a run with ``UNET_SCRATCH_NUMBA_PARALLEL=1`` would leave
parallel machine code that every later default run loads (4-15x slower on 2 cores), and a cache written by
a default run would make the switch do nothing. Four fresh processes share one temporary NUMBA_CACHE_DIR
and call one small kernel, ``numba_loops.relu_forward``, alternating the modes:

    parallel, default, default, parallel

Each reports what actually ran. Parallel machine code starts Numba's threading layer when it is compiled or
loaded from the cache (``numba.threading_layer()`` raises ValueError until then), and its compile result
carries the parfor reload hooks (``reload_init``); serial code does neither. The first default run compiles
and saves; the second must load that serial code from the cache (a cache hit), so caching still works.
"""
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("numba", reason="Numba not installed: pip install -e '.[numba]'")

_PROBE = r"""
import json
import numpy as np
import numba
from unet_scratch.kernels import numba_loops as loops

z = np.linspace(-1.0, 1.0, 33, dtype=np.float32)
y = np.empty_like(z)
loops.relu_forward(z, y)
assert np.array_equal(y, np.maximum(z, 0)), "relu_forward computed the wrong values"
try:
    threads = numba.threading_layer()
except ValueError:                      # no parallel code has run in this process
    threads = None
fn = loops.relu_forward
result = fn.overloads[fn.signatures[0]]
print(json.dumps({"PARALLEL": loops.PARALLEL, "threading_layer": threads,
                  "parfor_hooks": len(getattr(result, "reload_init", []) or []),
                  "cache_hits": sum(fn.stats.cache_hits.values())}))
"""


def _probe(cache_dir, parallel: bool) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="2",
               UNET_SCRATCH_NUMBA_PARALLEL="1" if parallel else "0")
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_each_thread_mode_gets_its_own_machine_code(tmp_path):
    runs = [(mode, _probe(tmp_path, mode == "parallel"))
            for mode in ("parallel", "default", "default", "parallel")]
    for i, (mode, got) in enumerate(runs):
        assert got["PARALLEL"] == (mode == "parallel"), (i, got)
        if mode == "parallel":
            assert got["threading_layer"] is not None and got["parfor_hooks"] > 0, \
                f"run {i} ({mode}) ran serial machine code, e.g. loaded from the default mode's cache: {got}"
        else:
            assert got["threading_layer"] is None and got["parfor_hooks"] == 0, \
                f"run {i} ({mode}) ran parallel machine code, e.g. loaded from the parallel mode's cache: {got}"
    assert runs[2][1]["cache_hits"] > 0, f"the second default run did not load the cache: {runs[2][1]}"

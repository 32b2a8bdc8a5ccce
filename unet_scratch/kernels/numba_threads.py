"""The threads of the Numba backend: a kernel's rows split into blocks, the blocks run at once on the cores.

Numba's own ``parallel=True`` mode is off in this package (see ``numba_loops.py``: its OpenMP threads fought
OpenBLAS's spinning threads on 2 cores, and its machine code cannot share the on-disk cache). Instead the
compiled kernels take a block of rows (``r0, r1``) and release the GIL (``nogil=True``), and
:func:`run_parts` runs one block in the calling thread and the others in a small pool of Python threads,
one per core. Blocks write disjoint parts of the output, so the result does not depend on how many there
are; a kernel that sums over rows (a weight gradient) is split into a fixed number of blocks instead and
adds their sums in a fixed order (``numba_direct.WGRAD_PARTS``).

``UNET_SCRATCH_THREADS=N`` sets the number of threads (1: everything in the calling thread); by default it
is the number of cores this process may use.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

MIN_PARALLEL_ITEMS = 1 << 18    # elementwise passes over fewer numbers than this stay in one thread


def threads() -> int:
    """Threads for the kernels: UNET_SCRATCH_THREADS if set, else the cores this process may use; 1 under
    UNET_SCRATCH_NUMBA_PARALLEL=1, where the loops run Numba's own parallel regions (which must not be
    entered from two threads at once with its default threading layer)."""
    if os.environ.get("UNET_SCRATCH_NUMBA_PARALLEL", "0") == "1":
        return 1
    env = os.environ.get("UNET_SCRATCH_THREADS")
    if env:
        return max(1, int(env))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


_pool = None


def _forget_pool():
    global _pool
    _pool = None                    # a forked child has none of the parent's threads: start a new pool


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def run_parts(kernel, parts):
    """kernel(*args) for each args tuple in parts: the first in this thread, the others in a thread pool
    (one thread per core); returns when all are done. Exceptions propagate."""
    global _pool
    if len(parts) == 1 or threads() == 1:
        for args in parts:
            kernel(*args)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(1, threads() - 1), thread_name_prefix="unet-scratch")
    futures = [_pool.submit(kernel, *args) for args in parts[1:]]
    kernel(*parts[0])
    for future in futures:
        future.result()


def split(n, parts):
    """[(start, stop)] of ``parts`` nearly equal contiguous blocks of range(n) (empty blocks dropped)."""
    edges = [n * k // parts for k in range(parts + 1)]
    return [(edges[k], edges[k + 1]) for k in range(parts) if edges[k + 1] > edges[k]]


def parts_for(items: int, minimum: int = MIN_PARALLEL_ITEMS) -> int:
    """How many blocks to cut ``items`` units of work into: one per thread, or 1 below ``minimum``."""
    return threads() if items >= minimum else 1

"""What the one-core benchmarks share: pinning to one CPU and timing a call (imported as ``timing``:
scripts in benchmarks/ have their own folder on sys.path)."""

from __future__ import annotations

import contextlib
import os
import time

import numpy as np


@contextlib.contextmanager
def one_core():
    """Pin this process to one CPU and BLAS/OpenMP pools to one thread, restoring both after."""
    from threadpoolctl import threadpool_limits

    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if cpus:
        os.sched_setaffinity(0, {min(cpus)})
    try:
        with threadpool_limits(1):
            yield
    finally:
        if cpus:
            os.sched_setaffinity(0, cpus)


def timed(fn, repeats: int):
    """(median wall seconds, median CPU seconds of this process, last result); on a shared machine
    the CPU time is the steadier one (time spent waiting for the core is not in it)."""
    wall, cpu, out = [], [], None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return float(np.median(wall)), float(np.median(cpu)), out

"""Timing of the LETKF kernel and of the machine's attainable float64 rate (pure: no I/O).

``genenkf bench letkf`` calls :func:`bench_letkf` and prints the returned dict as JSON.
"""
from __future__ import annotations

import os
import time

import numpy as np

from .. import rng as rngmod
from .letkf import letkf_analysis


def usable_cores() -> int:
    """CPU cores this process may run on (affinity mask, e.g. a Slurm allocation)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def letkf_flops_per_point(members, local_obs, solve, function_flops=0):
    """Floating-point operations of one grid-point analysis as implemented (FMA = 2 flops).

    Products are counted as executed (full, not exploiting symmetry); LAPACK ``eigh`` of an
    m x m matrix is counted as ``9 m^3`` (tridiagonalisation 4/3 m^3, QR/D&C and back
    transformation ~ 7-8 m^3). function_flops: what the observation-space solve spent on the
    functions of B per point (``letkf_analysis`` stats).
    """
    k, p = members, local_obs
    if solve == "ensemble":
        return int(2 * k * k * p + 9 * k**3 + 2 * p * k + 6 * k * k + 12 * k)
    return int(p * p * k * 2 + 2 * p * k + 2 * p * p  # M = S S^T (tapered), c = S x
               + function_flops  # B^-1 c and (B + B^1/2)^-1 c
               + 2 * p  # mean increment
               + 2 * p * k + 4 * k)  # perturbation update S^T v


def bench_letkf(nx, members, radius, taper="box", obs_interval=1, repeats=5, seed=0,
                solve="auto", threads=None):
    """Time ``letkf_analysis`` end to end on a synthetic ring of ``nx`` points.

    Background: an N(0, 1) field plus N(0, 1) member perturbations (spread ~ obs error),
    identity observation operator on every ``obs_interval``-th point, obs error variance 1.
    One warm-up call, then ``repeats`` timed calls; ``seconds_per_analysis`` is their median.
    ``threads`` defaults to the usable cores. Returns a JSON-ready dict.
    """
    threads = usable_cores() if threads is None else int(threads)
    gen = rngmod.stream(seed, rngmod.Purpose.BENCH, 0)
    truth = gen.standard_normal(nx)
    xb = truth + gen.standard_normal((members, nx)) + 0.5 * gen.standard_normal(nx)
    obs_coords = np.arange(0, nx, obs_interval)
    yo = truth[obs_coords] + gen.standard_normal(obs_coords.size)
    yb = xb[:, obs_coords]
    points = np.arange(nx)
    stats: dict = {}

    def call():
        return letkf_analysis(xb, yb, yo, 1.0, points, obs_coords, nx, radius, taper=taper,
                              solve=solve, threads=threads, stats=stats)

    call()
    times = []
    for _ in range(max(1, int(repeats))):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times))
    return {
        "benchmark": "letkf", "nx": int(nx), "members": int(members), "radius": float(radius),
        "taper": taper, "obs_interval": int(obs_interval), "local_obs": int(stats["local_obs"]),
        "solve": stats["solve"], "threads": threads, "repeats": len(times),
        "seconds_per_analysis": seconds, "seconds_min": float(min(times)),
        "grid_points_per_s": nx / seconds,
        "flops_per_point": letkf_flops_per_point(members, stats["local_obs"], stats["solve"],
                                                 stats["function_flops"]),
    }


def bench_matmul(size=2048, repeats=3, seed=0):
    """Attainable float64 rate of this process: a large ``numpy`` matmul (BLAS, its threads)."""
    gen = rngmod.stream(seed, rngmod.Purpose.BENCH, 1)
    a = gen.standard_normal((size, size))
    b = gen.standard_normal((size, size))
    a @ b
    best = np.inf
    for _ in range(max(1, int(repeats))):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return {"benchmark": "matmul", "size": int(size), "seconds": best,
            "gflops": 2.0 * size**3 / best / 1e9}

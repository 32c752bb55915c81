"""Thread counts of the BLAS library under numpy (OpenBLAS, MKL, BLIS), via threadpoolctl.

A process that already owns its share of the cores (an MPI rank, or a worker thread of the
batched LETKF) must not let BLAS start more threads: OpenBLAS threads spin while they wait, so an
oversubscribed node slows down every rank on it. The LETKF kernel's BLAS calls are small (its
parallelism is over grid points), so it runs them single-threaded (:func:`limited`); a command
sets the process-wide count once at start-up (:func:`set_threads`, from the launcher's layout).
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache


@lru_cache(maxsize=1)
def _controller():
    # inspecting the loaded libraries costs ~2 ms: once per process
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def set_threads(threads: int) -> None:
    """Let BLAS use at most ``threads`` threads from now on (process-wide)."""
    _controller().limit(limits=max(1, int(threads)), user_api="blas")


@contextmanager
def limited(threads: int = 1):
    """BLAS limited to ``threads`` threads inside the block (~20 us to enter and leave)."""
    with _controller().limit(limits=max(1, int(threads)), user_api="blas"):
        yield

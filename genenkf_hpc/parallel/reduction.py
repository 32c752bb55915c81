"""Sums over all ranks that do not depend on how the values are split over them.

A float sum's round-off depends on the order of its terms, so a statistic summed over each
rank's points and then over the ranks differs in its last bits between rank counts, and a
cycled run amplifies such differences. :func:`exact_sum` rounds each value to a fixed
resolution and adds integers, which is exact and so independent of the order: a run stays
the same bit for bit on any rank count (CONTRACT section 6).
"""
from __future__ import annotations

import numpy as np

RESOLUTION = 2.0 ** -20  # ~1e-6: far below what a statistic of the cycle needs
LIMIT = 2.0 ** 30        # |value| beyond this counts as this (a run that has blown up)
CHUNK = 4096             # values per int64 partial sum: 4096 * 2^50 units < 2^63


def exact_sum(comm, values, resolution: float = RESOLUTION) -> np.ndarray:
    """``values (m, n_local)`` summed over the last axis and over the ranks of ``comm``:
    ``(m,)``, identical on every rank and for any split of the n points over the ranks. Each
    value is first rounded to a multiple of ``resolution`` (error <= resolution / 2 each) and
    bounded to +-2^30; the sums are then exact integers (Python ints across chunks and
    ranks, so no overflow). Non-finite values count as the bound, with their sign (NaN: 0)."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=LIMIT,
                           neginf=-LIMIT)
    units = np.rint(np.clip(values, -LIMIT, LIMIT) / resolution).astype(np.int64)
    local = [sum(int(chunk.sum()) for chunk in np.array_split(row, max(1, -(-row.size // CHUNK))))
             for row in units.reshape(units.shape[0], -1)]
    totals = [sum(column) for column in zip(*comm.allgather(local))]
    return np.array([float(total) * resolution for total in totals])

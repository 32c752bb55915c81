"""Block decompositions: contiguous blocks of ``n`` items over ``size`` ranks.

Pure arithmetic, no MPI. Rank ``r`` owns items ``[start_r, stop_r)``; the first ``n % size``
ranks get one item more than the others, so any rank count works, also one that divides
nothing, and ranks beyond ``n`` get empty blocks (``start == stop``). Used for ensemble members
(forecast, pseudo-ensemble sampling) and for grid points (LETKF analysis), CONTRACT section 6.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def block_counts(n: int, size: int) -> np.ndarray:
    """Items per rank ``(size,)`` int64: ``n // size`` each, one more for the first ``n % size``."""
    if n < 0 or size < 1:
        raise ValueError(f"block_counts(n={n}, size={size}): need n >= 0 and size >= 1")
    base, extra = divmod(n, size)
    counts = np.full(size, base, dtype=np.int64)
    counts[:extra] += 1
    return counts


def block_starts(n: int, size: int) -> np.ndarray:
    """First item of every rank's block, ``(size + 1,)``: block r is ``starts[r]:starts[r+1]``."""
    return np.concatenate([[0], np.cumsum(block_counts(n, size))]).astype(np.int64)


def block_range(n: int, size: int, rank: int) -> tuple[int, int]:
    """``(start, stop)`` of ``rank``'s block."""
    if not 0 <= rank < size:
        raise ValueError(f"rank {rank} outside 0..{size - 1}")
    starts = block_starts(n, size)
    return int(starts[rank]), int(starts[rank + 1])


def owner(items, n: int, size: int) -> np.ndarray:
    """Rank owning each item index of ``items`` (array-like of ints in 0..n-1)."""
    items = np.asarray(items, dtype=np.int64)
    if items.size and (items.min() < 0 or items.max() >= n):
        raise ValueError(f"item index outside 0..{n - 1}")
    # searchsorted on the block ends; empty blocks share an end with their neighbour, and
    # side="right" skips them, so an item always maps to the rank that actually holds it.
    return np.searchsorted(block_starts(n, size)[1:], items, side="right")


@dataclass(frozen=True)
class Blocks:
    """A decomposition of ``n`` items over ``size`` ranks (a convenience bundle)."""

    n: int
    size: int

    @property
    def counts(self) -> np.ndarray:
        return block_counts(self.n, self.size)

    @property
    def starts(self) -> np.ndarray:
        return block_starts(self.n, self.size)

    def range(self, rank: int) -> tuple[int, int]:
        return block_range(self.n, self.size, rank)

    def indices(self, rank: int) -> np.ndarray:
        start, stop = self.range(rank)
        return np.arange(start, stop, dtype=np.int64)

    def count(self, rank: int) -> int:
        start, stop = self.range(rank)
        return stop - start

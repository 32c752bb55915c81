"""Block decompositions: contiguous blocks of ``n`` items over ``size`` ranks.

Pure arithmetic, no MPI. Rank ``r`` owns items ``[start_r, stop_r)``; the first ``n % size``
ranks get one item more than the others, so any rank count works, also one that divides
nothing, and ranks beyond ``n`` get empty blocks (``start == stop``). Used for ensemble members
(forecast, pseudo-ensemble sampling) and for grid points (LETKF analysis), CONTRACT section 6.

Domain decomposition of the ring (:mod:`.layout`) adds two things: blocks in units of
``align`` points (a local network's downsampling factor: tiles must start on its coarse grid),
and the ranks arranged as member groups x domains (:class:`RankGrid`, :func:`choose_domains`).
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
    """A decomposition of ``n`` items over ``size`` ranks; with ``align`` > 1 the blocks are
    made of whole units of ``align`` items (``n`` must be a multiple of it)."""

    n: int
    size: int
    align: int = 1

    def __post_init__(self):
        if self.align < 1 or self.n % self.align:
            raise ValueError(f"Blocks(n={self.n}, align={self.align}): n must be a multiple "
                             "of align >= 1")

    @property
    def counts(self) -> np.ndarray:
        return self.align * block_counts(self.n // self.align, self.size)

    @property
    def starts(self) -> np.ndarray:
        return self.align * block_starts(self.n // self.align, self.size)

    def range(self, rank: int) -> tuple[int, int]:
        start, stop = block_range(self.n // self.align, self.size, rank)
        return self.align * start, self.align * stop

    def owner(self, items) -> np.ndarray:
        """Rank owning each item index (ints in 0..n-1)."""
        items = np.asarray(items, dtype=np.int64)
        return owner(items // self.align, self.n // self.align, self.size)

    def indices(self, rank: int) -> np.ndarray:
        start, stop = self.range(rank)
        return np.arange(start, stop, dtype=np.int64)

    def count(self, rank: int) -> int:
        start, stop = self.range(rank)
        return stop - start


# ---------------------------------------------------------------------------------------------
# Ranks as member groups x domains


@dataclass(frozen=True)
class RankGrid:
    """``ranks = groups x domains``: rank r works on domain ``r // groups`` (a contiguous
    segment of the ring) for member group ``r % groups`` (a block of members). The ranks of one
    domain are consecutive, so the member transposes inside a domain stay on a node; halo
    exchanges go between the ranks of one group, to the neighbouring domains."""

    ranks: int
    domains: int

    def __post_init__(self):
        if self.domains < 1 or self.ranks % self.domains:
            raise ValueError(f"RankGrid: {self.domains} domains do not divide {self.ranks} ranks")

    @property
    def groups(self) -> int:
        return self.ranks // self.domains

    def domain(self, rank: int) -> int:
        return rank // self.groups

    def group(self, rank: int) -> int:
        return rank % self.groups

    def rank(self, domain: int, group: int) -> int:
        return domain * self.groups + group


AUTO_MIN_POINTS = 1000  # below this many points per rank, halo latency outweighs the split work


def choose_domains(setting, ranks: int, nx: int, *, supported: bool = True, align: int = 1,
                   reason: str = "") -> int:
    """The number of domains for ``run.domains = setting`` (an int or ``"auto"``).

    ``auto``: every rank its own domain (one member group) when the ring gives each rank at
    least :data:`AUTO_MIN_POINTS` points, else one domain (the member layout of today: member
    blocks, replicated simulations, transposes for the analysis). An explicit count must divide
    the ranks and leave every domain at least one unit of ``align`` points. ``supported=False``
    (with ``reason``) refuses any count above 1 and makes ``auto`` 1. Raises UserError naming
    ``run.domains``."""
    from ..errors import UserError

    if setting == "auto":
        if not supported or ranks == 1 or nx < AUTO_MIN_POINTS * ranks:
            return 1
        return ranks
    domains = int(setting)
    if domains < 1:
        raise UserError(f"run.domains={domains}: must be >= 1 or \"auto\"")
    if domains > 1 and not supported:
        raise UserError(f"run.domains={domains}: {reason}; use run.domains=1 (or \"auto\")")
    if ranks % domains:
        raise UserError(f"run.domains={domains} does not divide the {ranks} ranks (ranks = "
                        "member groups x domains)")
    if domains > nx // align:
        unit = f" units of {align} points" if align > 1 else " points"
        raise UserError(f"run.domains={domains}: more domains than the ring's {nx // align}"
                        + unit)
    return domains


def ghost_indices(start: int, stop: int, n: int, left: int, right: int) -> np.ndarray:
    """Global indices of the ``left`` points before ``[start, stop)`` and the ``right`` points
    after it on a ring of ``n`` (in that order, wrapping; the same point may appear more than
    once, and may be owned by the segment itself, when the ring is shorter than the halo)."""
    before = (start - left + np.arange(left, dtype=np.int64)) % n
    after = (stop + np.arange(right, dtype=np.int64)) % n
    return np.concatenate([before, after])

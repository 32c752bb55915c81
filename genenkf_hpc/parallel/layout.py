"""Where one run's state and ensemble live: the ranks as member groups x domains.

``run.domains = D`` (:func:`~.decomposition.choose_domains`) splits the R ranks into
G = R / D member groups x D domains (:class:`~.decomposition.RankGrid`). Rank (d, g) holds
the segment ``[start_d, stop_d)`` of the ring (contiguous, in units of ``align`` points) for
the members of group g:

- a k-member ensemble: ``(k_g, n_d)``; a simulation: ``(n_d,)``, the same on every group;
- the forecast advances the segment with the dynamics' RK4, filling its ghost points from the
  neighbouring domains at every stage (:class:`~.halo.Halo`); there are no reductions, so it is
  bitwise equal to the whole ring on one process;
- the analysis needs every member at its points plus the observations within the localisation
  radius. With one group (D = R) a rank already holds every member of its segment: one halo
  exchange of the observed points within the radius, no transpose (``analysis = "halo"``).
  With several groups, the halo exchange inside the group, then the member <-> grid
  transposes among the G ranks of the domain (``"halo+transpose"``). With one domain (D = 1,
  the member layout) the transposes of the whole ring (``"transpose"``), as before domains.

A method sees this object as ``ctx.layout``; it has the interface of
:class:`~.transpose.Transposer` (``to_grid``, ``to_members``, ``grid_range``, ``owned_pos``,
``local_columns``, ``gather_points``, ``allgather_points``...), so the analyses run unchanged on
any layout, plus what domains add: ``integrate`` (the forecast), ``segment`` (the rank's part of
a ring-wide array), ``owned`` (the grid block of a simulation state), ``tile_halo`` (the halo of
a network tile), ``member_sum``, ``gather_state`` / ``scatter_state`` (restarts).
"""
from __future__ import annotations

import numpy as np

from .decomposition import Blocks, RankGrid, ghost_indices
from .halo import Halo, HaloPlan
from .transpose import Transposer, halo_columns

ANALYSES = ("transpose", "halo", "halo+transpose")


class Layout:
    """The layout of a ``members`` x ``nx`` ensemble (or a simulation, ``members = 1``) on
    ``comm``; ``radius``/``mask``: the analysis halo (observed points within the radius);
    ``dynamics_halo``: ghost points of one tendency evaluation ``(left, right)``."""

    def __init__(self, comm, *, members: int, nx: int, domains: int = 1, radius: float = 0.0,
                 mask: np.ndarray | None = None, dynamics_halo: tuple[int, int] | None = None,
                 align: int = 1, transposer: Transposer | None = None):
        self.comm, self.members, self.nx = comm, int(members), int(nx)
        self.grid = RankGrid(comm.size, int(domains))
        self.domains, self.groups = self.grid.domains, self.grid.groups
        self.domain, self.group = self.grid.domain(comm.rank), self.grid.group(comm.rank)
        self.segments = Blocks(self.nx, self.domains, align)
        self.segment_range = self.segments.range(self.domain)
        self.member_blocks = Blocks(self.members, self.groups)
        self.member_range = self.member_blocks.range(self.group)
        self.k_local = self.member_blocks.count(self.group)
        self.radius, self.mask = radius, mask
        self._tile_halos: dict[int, Halo] = {}
        self.forecast_halo = self.analysis_halo = None
        if self.domains == 1:
            self.analysis = "transpose"
            self.domain_comm, self.group_comm = None, comm
            self.transposer = transposer or Transposer(comm, members, nx, radius, mask)
            self._grid_from(self.transposer)
            return
        self.domain_comm = comm.split(self.group, self.domain)
        self.group_comm = comm.split(self.domain, self.group)
        if dynamics_halo is not None:
            left, right = dynamics_halo
            self.forecast_halo = self._halo(lambda e: ghost_indices(
                *self.segments.range(e), self.nx, left, right))
        self.columns = halo_columns(*self.segment_range, self.nx, radius, mask)
        self.analysis_halo = self._halo(self._analysis_ghosts)
        start, stop = self.segment_range
        self._owned_in_columns = np.searchsorted(self.columns, np.arange(start, stop))
        self._ghosts_in_columns = np.searchsorted(self.columns, self.analysis_halo.plan.ghosts)
        if self.groups == 1:
            self.analysis, self.transposer = "halo", None
            self.grid_range, self.npts = self.segment_range, stop - start
            self.local_columns, self.owned_pos = self.columns, self._owned_in_columns
        else:
            self.analysis = "halo+transpose"
            self.transposer = Transposer(self.group_comm, members, nx, radius, mask,
                                         segment=self.segment_range, points=self.columns)
            self._grid_from(self.transposer)

    @classmethod
    def of_transposer(cls, t: Transposer) -> "Layout":
        """The member layout around an existing whole-ring :class:`Transposer`."""
        return cls(t.comm, members=t.members, nx=t.nx, transposer=t)

    def _grid_from(self, t: Transposer) -> None:
        self.grid_range, self.npts = t.grid_range, t.npts
        self.local_columns, self.owned_pos = t.local_columns, t.owned_pos

    def _halo(self, ghosts_of) -> Halo:
        return Halo(self.domain_comm, HaloPlan(self.segments, self.domain, ghosts_of))

    def _analysis_ghosts(self, domain: int) -> np.ndarray:
        start, stop = self.segments.range(domain)
        cols = halo_columns(start, stop, self.nx, self.radius, self.mask)
        return cols[(cols < start) | (cols >= stop)]

    # -- what the rank holds
    @property
    def member_ids(self) -> np.ndarray:
        return np.arange(*self.member_range, dtype=np.int64)

    @property
    def segment_points(self) -> int:
        return self.segment_range[1] - self.segment_range[0]

    def segment(self, full: np.ndarray) -> np.ndarray:
        """This rank's part ``(..., n_d)`` of a ring-wide array ``(..., nx)`` (on one domain the
        array itself, whatever its length: a model may carry more than the nx points)."""
        return full if self.domains == 1 else full[..., slice(*self.segment_range)]

    def owned(self, state: np.ndarray) -> np.ndarray:
        """The analysed points (this rank's grid block) of a segment state ``(..., n_d)``."""
        start = self.segment_range[0]
        return state[..., self.grid_range[0] - start:self.grid_range[1] - start]

    def point_counts(self) -> np.ndarray:
        """Grid-block sizes of all ranks, in rank order (ascending global position)."""
        counts = np.empty(self.comm.size, dtype=np.int64)
        for r in range(self.comm.size):
            d, g = self.grid.domain(r), self.grid.group(r)
            counts[r] = Blocks(self.segments.count(d), self.groups).count(g)
        return counts

    # -- forecast
    def integrate(self, dynamics, state: np.ndarray, steps: int) -> np.ndarray:
        """``state (..., n_d)`` after ``steps`` steps of ``dynamics``; on domains every RK4
        stage fills the segment's ghosts from the neighbours (bitwise the whole-ring result)."""
        if self.forecast_halo is None:
            return dynamics.integrate(state, steps)
        left = dynamics.halo[0]
        x = np.array(state, dtype=np.float64, copy=True)
        for _ in range(steps):
            x = dynamics.step_with(x, lambda y: self.forecast_halo.padded(y, left))
        return x

    def tile_halo(self, width: int) -> Halo | None:
        """The halo of ``width`` points on each side of the segment (a network tile); None on
        one domain, where the whole ring is one tile."""
        if self.domains == 1:
            return None
        if width not in self._tile_halos:
            self._tile_halos[width] = self._halo(lambda e: ghost_indices(
                *self.segments.range(e), self.nx, width, width))
        return self._tile_halos[width]

    # -- analysis (the Transposer interface)
    def to_grid(self, block: np.ndarray) -> np.ndarray:
        """Member block ``(k_local, n_d)`` -> every member at this rank's columns
        ``(k, n_columns)`` (owned points + observed points within the radius, ascending)."""
        if self.analysis_halo is None:
            return self.transposer.to_grid(block)
        block = np.asarray(block)
        ext = np.empty(block.shape[:-1] + (self.columns.size,), dtype=block.dtype)
        ext[..., self._owned_in_columns] = block
        ext[..., self._ghosts_in_columns] = self.analysis_halo.ghost_values(block)
        return ext if self.transposer is None else self.transposer.to_grid(ext)

    def to_members(self, grid: np.ndarray) -> np.ndarray:
        """Analysed owned points ``(k, npts)`` -> the member block ``(k_local, n_d)``."""
        if self.transposer is None:
            return np.array(grid, copy=True)
        return self.transposer.to_members(grid)

    def gather_points(self, values: np.ndarray, root: int = 0) -> np.ndarray | None:
        """Per-point fields ``(m, npts)`` -> ``(m, nx)`` on ``root`` (None elsewhere)."""
        if self.domains == 1:
            return self.transposer.gather_points(values, root)
        values = np.asarray(values)
        rows = values.shape[0]
        flat = self.comm.Gatherv(np.ascontiguousarray(values.T), self.point_counts() * rows,
                                 root)
        if flat is None:
            return None
        return flat.reshape(self.nx, rows).T.copy() if rows else flat.reshape(0, self.nx)

    def allgather_points(self, values: np.ndarray) -> np.ndarray:
        """Per-point fields ``(m, npts)`` -> ``(m, n_d)``: the whole segment on every rank of
        the domain (the whole ring on one domain)."""
        if self.transposer is None:
            return np.array(values, copy=True)
        return self.transposer.allgather_points(values)

    def member_sum(self, block: np.ndarray) -> np.ndarray:
        """Sum over all k members of member blocks ``(k_local, n_d)`` -> ``(n_d,)``."""
        return self.group_comm.Allreduce(np.asarray(block).sum(axis=0))

    # -- restarts
    def gather_state(self, state: np.ndarray, kind: str, root: int = 0) -> np.ndarray | None:
        """The full state on ``root``: ensemble ``(k, nx)`` or simulation ``(nx,)``."""
        if self.domains == 1:
            return self.transposer.gather_members(state, root) if kind == "ensemble" else state
        shapes = [(self.member_blocks.count(self.grid.group(r)) if kind == "ensemble" else
                   int(self.grid.group(r) == 0), self.segments.count(self.grid.domain(r)))
                  for r in range(self.comm.size)]
        mine = state if kind == "ensemble" else (state[None] if self.group == 0 else
                                                 np.empty((0, self.segment_points)))
        flat = self.comm.Gatherv(np.ascontiguousarray(mine), [a * b for a, b in shapes], root)
        if flat is None:
            return None
        full = np.empty((self.members if kind == "ensemble" else 1, self.nx))
        offset = 0
        for r, (rows, cols) in enumerate(shapes):
            m0 = self.member_blocks.range(self.grid.group(r))[0] if kind == "ensemble" else 0
            s0 = self.segments.range(self.grid.domain(r))[0]
            full[m0:m0 + rows, s0:s0 + cols] = flat[offset:offset + rows * cols].reshape(rows,
                                                                                          cols)
            offset += rows * cols
        return full if kind == "ensemble" else full[0]

    def scatter_state(self, full: np.ndarray, kind: str) -> np.ndarray:
        """This rank's part of a full state (significant on every rank)."""
        part = full[slice(*self.member_range)] if kind == "ensemble" else full
        return np.array(self.segment(part), dtype=np.float64, copy=True)

    # -- accounting
    @property
    def sent_bytes(self) -> int:
        """Bytes this rank sent to other ranks: transposes and halo exchanges."""
        halos = [self.forecast_halo, self.analysis_halo, *self._tile_halos.values()]
        return (self.transposer.sent_bytes if self.transposer is not None else 0) + \
            sum(h.sent_bytes for h in halos if h is not None)

    def describe(self) -> dict:
        """The layout as recorded in summary.json."""
        return {"domains": self.domains, "member_groups": self.groups,
                "analysis": self.analysis,
                "segment_points": [int(self.segments.counts.min()),
                                   int(self.segments.counts.max())],
                "align": self.segments.align}

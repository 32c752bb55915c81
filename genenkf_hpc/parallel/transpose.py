"""Member-major <-> grid-major transposes of a distributed ensemble (MPI Alltoallv).

Two layouts of a k-member ensemble on a periodic ring of ``nx`` points over R ranks:

- member-major: rank r holds members ``member_blocks.range(r)`` for every point, ``(k_r, nx)``
  (forecasts and pseudo-ensemble sampling are independent per member);
- grid-major: rank r holds every member for its grid block ``grid_blocks.range(r)`` plus a halo
  of columns within ``radius`` (periodic) whose observations can be local to its points,
  ``(k, n_columns_r)`` with the columns in ascending global order (``columns[r]``); the LETKF
  analyses the block's own points (``owned_pos[r]`` inside the columns).

``to_grid`` moves member-major -> grid-major (owned + halo columns), ``to_members`` moves the
analysed owned points back. Both are one buffer-based Alltoallv: the chunk a rank sends to rank
r is contiguous, and the chunks received in rank order stack to a C-order array because member
(resp. grid) blocks are contiguous and in rank order. Bytes moved per cycle: :meth:`volume`.

Inside a domain of a domain decomposition (:mod:`.layout`, member groups x domains) the same
transposes run over the member groups of the domain: the member-major block is then the
domain's segment plus its analysis halo (``points``: their global indices, ascending), and the
grid blocks split the segment ``[segment[0], segment[1])`` instead of the ring.
"""
from __future__ import annotations

import math

import numpy as np

from .decomposition import Blocks


def halo_columns(start: int, stop: int, nx: int, radius: float,
                 needed: np.ndarray | None = None) -> np.ndarray:
    """Ascending global indices of block ``[start, stop)`` plus every point within periodic
    distance ``<= radius`` of it; halo points are kept only where ``needed`` (bool ``(nx,)``,
    e.g. the observation mask) is true. An empty block has no columns."""
    if stop <= start:
        return np.empty(0, dtype=np.int64)
    owned = np.arange(start, stop, dtype=np.int64)
    reach = min(int(math.floor(radius)), nx)
    offsets = np.arange(1, reach + 1, dtype=np.int64)
    halo = np.concatenate([(start - offsets) % nx, (stop - 1 + offsets) % nx])
    halo = np.setdiff1d(halo, owned)
    if needed is not None:
        halo = halo[np.asarray(needed, dtype=bool)[halo]]
    return np.union1d(owned, halo)


class Transposer:
    """Transposes and gathers for a ``members x nx`` ensemble over ``comm``.

    ``halo_radius = 0`` gives grid-major blocks without halo (global ETKF / EnKF).
    ``segment`` and ``points``: transposes inside one domain (see the module doc); the
    member-major blocks are then ``(k_local, len(points))``.
    """

    def __init__(self, comm, members: int, nx: int, halo_radius: float = 0.0,
                 halo_needed: np.ndarray | None = None, *,
                 segment: tuple[int, int] | None = None, points: np.ndarray | None = None):
        self.comm = comm
        self.members = int(members)
        self.nx = int(nx)
        first, last = segment if segment is not None else (0, self.nx)
        self.points = np.arange(self.nx, dtype=np.int64) if points is None else \
            np.asarray(points, dtype=np.int64)
        self.width = self.points.size  # columns of a member-major block
        self.member_blocks = Blocks(self.members, comm.size)
        self.grid_blocks = Blocks(last - first, comm.size)
        ranges = [(first + a, first + b) for a, b in
                  (self.grid_blocks.range(r) for r in range(comm.size))]
        self.columns = [halo_columns(a, b, self.nx, halo_radius, halo_needed) for a, b in ranges]
        # where each rank's columns sit in a member-major block
        self.positions = [np.searchsorted(self.points, c) for c in self.columns]
        assert all(np.array_equal(self.points[p], c) for p, c in
                   zip(self.positions, self.columns)), "points miss a column of the halo"
        self.ncols = np.array([c.size for c in self.columns], dtype=np.int64)
        self.k_counts = self.member_blocks.counts
        self.p_counts = self.grid_blocks.counts
        r = comm.rank
        self.member_range = self.member_blocks.range(r)
        self.grid_range = ranges[r]
        self.k_local = int(self.k_counts[r])
        self.npts = int(self.p_counts[r])
        # positions of the owned points inside this rank's (ascending) columns
        self.owned_pos = np.searchsorted(self.columns[r], np.arange(*self.grid_range))
        self.sent_bytes = 0  # measured: bytes this rank sent to other ranks in transposes

    def _count(self, sendcounts: np.ndarray, itemsize: int) -> None:
        sendcounts = np.asarray(sendcounts)
        self.sent_bytes += int(sendcounts.sum() - sendcounts[self.comm.rank]) * itemsize

    @property
    def local_columns(self) -> np.ndarray:
        return self.columns[self.comm.rank]

    @property
    def member_ids(self) -> np.ndarray:
        return np.arange(*self.member_range, dtype=np.int64)

    # -- transposes
    def to_grid(self, block: np.ndarray) -> np.ndarray:
        """``(k_local, width)`` member-major -> ``(k, n_columns_local)`` grid-major (owned +
        halo)."""
        block = np.asarray(block)
        assert block.shape == (self.k_local, self.width), block.shape
        send = np.concatenate([block[:, pos].reshape(-1) for pos in self.positions])
        self._count(self.k_local * self.ncols, send.itemsize)
        recv = self.comm.Alltoallv(send, self.k_local * self.ncols,
                                   self.k_counts * self.ncols[self.comm.rank])
        return recv.reshape(self.members, self.ncols[self.comm.rank])

    def to_members(self, grid: np.ndarray) -> np.ndarray:
        """``(k, npts_local)`` analysed owned points -> ``(k_local, n)`` member-major, n the
        points of the ring (or of the domain's segment)."""
        grid = np.ascontiguousarray(grid)
        assert grid.shape == (self.members, self.npts), grid.shape
        self._count(self.k_counts * self.npts, grid.itemsize)
        recv = self.comm.Alltoallv(grid, self.k_counts * self.npts, self.k_local * self.p_counts)
        chunks = np.split(recv, np.cumsum(self.k_local * self.p_counts)[:-1])
        return np.concatenate([c.reshape(self.k_local, n) for c, n in zip(chunks, self.p_counts)],
                              axis=1)

    # -- gathers of per-point fields
    def _point_chunks_to_full(self, flat: np.ndarray, rows: int) -> np.ndarray:
        # every rank's chunk is (npts_r, rows): stacking them in rank order gives (n, rows)
        n = int(self.p_counts.sum())
        return flat.reshape(n, rows).T.copy() if rows else flat.reshape(0, n)

    def gather_points(self, values: np.ndarray, root: int = 0) -> np.ndarray | None:
        """Per-point fields ``(m, npts_local)`` -> ``(m, n)`` on ``root`` (None elsewhere); n the
        points of the ring (or of the domain's segment)."""
        values = np.asarray(values)
        rows = values.shape[0]
        flat = self.comm.Gatherv(np.ascontiguousarray(values.T), self.p_counts * rows, root)
        return None if flat is None else self._point_chunks_to_full(flat, rows)

    def allgather_points(self, values: np.ndarray) -> np.ndarray:
        """Per-point fields ``(m, npts_local)`` -> ``(m, n)`` on every rank."""
        values = np.asarray(values)
        rows = values.shape[0]
        flat = self.comm.Allgatherv(np.ascontiguousarray(values.T), self.p_counts * rows)
        return self._point_chunks_to_full(flat, rows)

    def gather_members(self, block: np.ndarray, root: int = 0) -> np.ndarray | None:
        """Member-major blocks ``(k_local, nx)`` -> the whole ensemble ``(k, nx)`` on ``root``."""
        flat = self.comm.Gatherv(np.ascontiguousarray(block), self.k_counts * self.width, root)
        return None if flat is None else flat.reshape(self.members, self.width)

    def scatter_members(self, ensemble: np.ndarray | None) -> np.ndarray:
        """The whole ensemble ``(k, nx)`` (significant on every rank, e.g. read from a restart)
        -> this rank's member block ``(k_local, nx)``."""
        start, stop = self.member_range
        return np.array(ensemble[start:stop], dtype=np.float64, copy=True)

    # -- accounting
    def volume(self, itemsize: int = 8) -> dict[str, int]:
        """Bytes moved between different ranks by one ``to_grid`` and one ``to_members``
        (summed over all ranks; a rank's copy to itself is not communication)."""
        k, p, c = self.k_counts, self.p_counts, self.ncols
        to_grid = int((np.outer(k, c).sum() - (k * c).sum()) * itemsize)
        to_members = int((np.outer(k, p).sum() - (k * p).sum()) * itemsize)
        return {"to_grid_bytes": to_grid, "to_members_bytes": to_members,
                "total_bytes": to_grid + to_members}

"""Run under mpiexec by test_transpose.py: every transpose and gather against the full array.

Usage: python mpi_transpose_check.py MEMBERS NX RADIUS OBS_INTERVAL
"""
import sys

import numpy as np

from genenkf_hpc.parallel.comm import world
from genenkf_hpc.parallel.transpose import Transposer


def main(members: int, nx: int, radius: float, interval: int) -> None:
    comm = world()
    full = np.arange(members * nx, dtype=np.float64).reshape(members, nx) * 1.5 + 0.25
    mask = np.zeros(nx, dtype=bool)
    mask[::interval] = True
    t = Transposer(comm, members, nx, radius, mask)
    block = full[slice(*t.member_range)]
    grid = t.to_grid(block)
    assert np.array_equal(grid, full[:, t.local_columns]), "to_grid"
    owned = grid[:, t.owned_pos]
    assert np.array_equal(owned, full[:, slice(*t.grid_range)]), "owned"
    back = t.to_members(owned)
    assert np.array_equal(back, block), "round trip"
    fields = np.stack([owned.mean(axis=0), owned.std(axis=0)])
    gathered = t.gather_points(fields)
    want = np.stack([full.mean(axis=0), full.std(axis=0)])
    if comm.rank == 0:
        assert np.array_equal(gathered, want), "gather_points"
    else:
        assert gathered is None
    assert np.array_equal(t.allgather_points(fields[:1]), want[:1]), "allgather_points"
    ens = t.gather_members(block)
    if comm.rank == 0:
        assert np.array_equal(ens, full), "gather_members"
    total = comm.Allreduce(np.array([float(t.k_local), float(t.npts)]))
    assert total.tolist() == [members, nx], total
    print(f"rank {comm.rank} OK k_local={t.k_local} npts={t.npts} cols={t.local_columns.size}",
          flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))

"""Transposes and gathers: exact against the full array, serially and under mpiexec -n 2/3/4."""
from pathlib import Path

import numpy as np
import pytest

from genenkf_hpc.parallel.comm import SerialComm
from genenkf_hpc.parallel.transpose import Transposer
from mpi_utils import run_mpi

HERE = Path(__file__).resolve().parent


def test_serial_transposes_are_exact():
    full = np.random.default_rng(0).standard_normal((5, 12))
    t = Transposer(SerialComm(), 5, 12, halo_radius=3)
    grid = t.to_grid(full)
    assert np.array_equal(grid, full)
    assert np.array_equal(t.to_members(grid[:, t.owned_pos]), full)
    assert np.array_equal(t.gather_points(full[:2]), full[:2])
    assert t.volume()["total_bytes"] == 0  # nothing leaves the only rank


def test_volume_formula():
    """to_grid moves k_s * ncols_r doubles for every pair s != r, to_members k_s * npts_r."""
    class Fake:
        size, rank = 2, 0
    t = Transposer(Fake(), 4, 10, halo_radius=1)
    # blocks: members 2+2, points 5+5, columns 5+2 halo each -> 7
    assert t.volume() == {"to_grid_bytes": 8 * (2 * 7 + 2 * 7),
                          "to_members_bytes": 8 * (2 * 5 + 2 * 5),
                          "total_bytes": 8 * (28 + 20)}


@pytest.mark.mpi
@pytest.mark.parametrize("ranks, members, nx, radius, interval", [
    (2, 6, 16, 3.0, 2),
    (3, 7, 18, 3.5, 1),   # neither count divisible by the ranks
    (4, 3, 5, 2.0, 1),    # more ranks than members: empty member blocks
    (3, 4, 2, 1.0, 1),    # more ranks than grid points: an empty grid block
])
def test_mpi_transposes_are_exact(ranks, members, nx, radius, interval):
    proc = run_mpi(ranks, ["python", str(HERE / "mpi_transpose_check.py"), members, nx, radius,
                           interval], timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(" OK ") == ranks, proc.stdout

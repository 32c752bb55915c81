"""Run under mpiexec by test_halo.py: a Layout against the whole ring on one process.

Usage: python mpi_layout_check.py DOMAINS NX MEMBERS RADIUS ALIGN

Checks: the Lorenz-96 forecast on domains is bitwise the whole-ring forecast (ensemble and
simulation), the analysis columns hold every member at the right global points, to_members
inverts them, gathers and restarts reassemble the ring, a tile halo holds the ring around the
segment, and the bytes sent equal the plans' counts.
"""
import sys

import numpy as np

from genenkf_hpc.dynamics.lorenz96 import Lorenz96
from genenkf_hpc.parallel.comm import world
from genenkf_hpc.parallel.layout import Layout


def main(domains: int, nx: int, members: int, radius: float, align: int) -> None:
    comm = world()
    mask = np.zeros(nx, dtype=bool)
    mask[::2] = True
    model = Lorenz96(nx, 0.05, 8.0)
    gen = np.random.default_rng(7)
    full = 8.0 + gen.standard_normal((members, nx))
    lay = Layout(comm, members=members, nx=nx, domains=domains, radius=radius, mask=mask,
                 dynamics_halo=model.halo, align=align)
    block = lay.segment(full[slice(*lay.member_range)])
    # forecast, ensemble and simulation: bitwise
    steps = 7
    assert np.array_equal(lay.integrate(model, block, steps),
                          lay.segment(model.integrate(full, steps)[slice(*lay.member_range)])), \
        "ensemble forecast"
    assert np.array_equal(lay.integrate(model, lay.segment(full[0]), steps),
                          lay.segment(model.integrate(full[0], steps))), "simulation forecast"
    # analysis columns
    grid = lay.to_grid(block)
    assert np.array_equal(grid, full[:, lay.local_columns]), "to_grid"
    owned = grid[:, lay.owned_pos]
    assert np.array_equal(owned, full[:, slice(*lay.grid_range)]), "owned"
    assert np.array_equal(lay.to_members(owned), block), "to_members"
    assert np.array_equal(lay.owned(lay.segment(full[0])), full[0, slice(*lay.grid_range)])
    # gathers
    fields = np.stack([owned.mean(axis=0), owned.std(axis=0)])
    want = np.stack([full.mean(axis=0), full.std(axis=0)])
    gathered = lay.gather_points(fields)
    assert (gathered is None) == (comm.rank != 0)
    if gathered is not None:
        assert np.array_equal(gathered, want), "gather_points"
    assert np.array_equal(lay.allgather_points(fields[:1]), lay.segment(want[:1])), "allgather"
    assert np.allclose(lay.member_sum(block), lay.segment(full.sum(axis=0)), atol=1e-12)
    # restarts
    for kind, state, whole in (("ensemble", block, full),
                               ("simulation", lay.segment(full[0]), full[0])):
        back = lay.gather_state(state, kind)
        if comm.rank == 0:
            assert np.array_equal(back, whole), kind
        assert np.array_equal(lay.scatter_state(whole, kind), state), kind
    # a tile halo of 9 points on each side (may wrap the ring several times)
    halo = lay.tile_halo(9)
    if halo is not None:
        start, stop = lay.segment_range
        tile = halo.padded(block, 9)
        assert np.array_equal(tile, full[slice(*lay.member_range)][
            :, np.arange(start - 9, stop + 9) % nx]), "tile"
    # bytes: every halo's counter equals its plan times the rows it carried
    expect = 0
    if lay.forecast_halo is not None:
        rows = lay.k_local + 1  # ensemble, then simulation
        expect += 4 * steps * rows * lay.forecast_halo.plan.sent_points * 8
        expect += lay.analysis_halo.plan.sent_points * lay.k_local * 8
        expect += halo.plan.sent_points * lay.k_local * 8
    measured = lay.sent_bytes - (lay.transposer.sent_bytes if lay.transposer else 0)
    assert measured == expect, (measured, expect)
    print(f"rank {comm.rank} OK {lay.describe()} grid={lay.grid_range}", flush=True)


if __name__ == "__main__":
    d, n, k, radius, align = sys.argv[1:]
    main(int(d), int(n), int(k), float(radius), int(align))

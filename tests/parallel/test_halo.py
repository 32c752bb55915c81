"""Domain decomposition: aligned blocks, the rank grid, the choice of domains, halo plans
(uneven, wrapping, segments shorter than the halo) and, under mpiexec -n 2/3/4, the layouts
themselves (forecast bitwise, analysis columns, gathers, restarts) against the whole ring."""
from pathlib import Path

import numpy as np
import pytest

from genenkf_hpc.errors import UserError
from genenkf_hpc.parallel.decomposition import (AUTO_MIN_POINTS, Blocks, RankGrid,
                                                choose_domains, ghost_indices)
from genenkf_hpc.parallel.halo import HaloPlan
from mpi_utils import run_mpi

HERE = Path(__file__).resolve().parent


def test_aligned_blocks_are_whole_units():
    b = Blocks(40, 3, align=4)  # 10 units over 3 ranks: 4 + 3 + 3 units
    assert b.counts.tolist() == [16, 12, 12]
    assert [b.range(r) for r in range(3)] == [(0, 16), (16, 28), (28, 40)]
    assert b.owner([0, 15, 16, 27, 28, 39]).tolist() == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError):
        Blocks(42, 3, align=4)


def test_rank_grid_keeps_the_ranks_of_a_domain_together():
    g = RankGrid(6, 3)
    assert g.groups == 2
    assert [(g.domain(r), g.group(r)) for r in range(6)] == [(0, 0), (0, 1), (1, 0), (1, 1),
                                                             (2, 0), (2, 1)]
    assert all(g.rank(g.domain(r), g.group(r)) == r for r in range(6))


def test_choose_domains():
    big = AUTO_MIN_POINTS * 4
    assert choose_domains("auto", 4, big) == 4
    assert choose_domains("auto", 4, big - 1) == 1           # too few points per rank
    assert choose_domains("auto", 4, big, supported=False) == 1
    assert choose_domains("auto", 1, big) == 1
    assert choose_domains(2, 6, 40) == 2                       # 3 member groups x 2 domains
    with pytest.raises(UserError, match="run.domains=4 does not divide the 6 ranks"):
        choose_domains(4, 6, 400)
    with pytest.raises(UserError, match="run.domains=3: the model has no halo; use"):
        choose_domains(3, 3, 400, supported=False, reason="the model has no halo")
    with pytest.raises(UserError, match="more domains than the ring's 2 units of 4 points"):
        choose_domains(3, 3, 8, align=4)


def test_ghost_indices_wrap_and_repeat():
    assert ghost_indices(0, 3, 10, 2, 1).tolist() == [8, 9, 3]
    assert ghost_indices(7, 10, 10, 2, 1).tolist() == [5, 6, 0]
    # a ring of 3 points with a halo of 2 left + 2 right: points repeat, some are its own
    assert ghost_indices(0, 3, 3, 2, 2).tolist() == [1, 2, 0, 1]


def simulate_exchange(n, domains, ghosts_of, field, align=1):
    """Run every domain's plan in one process: what each domain would receive."""
    blocks = Blocks(n, domains, align)
    plans = [HaloPlan(blocks, d, ghosts_of) for d in range(domains)]
    local = [field[..., slice(*blocks.range(d))] for d in range(domains)]
    out = []
    for d, p in enumerate(plans):
        ghosts = np.full(field.shape[:-1] + (p.ghosts.size,), np.nan)
        ghosts[..., p.self_pos] = local[d][..., p.self_local]
        for e, pos in p.recv.items():
            ghosts[..., pos] = local[e][..., plans[e].send[d]]  # what e sends to d
        out.append(ghosts)
    return blocks, plans, out


@pytest.mark.parametrize("n, domains, left, right, align", [
    (12, 3, 2, 1, 1),    # even
    (13, 3, 2, 1, 1),    # uneven
    (5, 3, 2, 1, 1),     # segments of 2, 2, 1 points: shorter than the left halo
    (4, 4, 2, 1, 1),     # one point per domain
    (3, 1, 2, 2, 1),     # one domain: every ghost is its own point
    (40, 3, 20, 20, 4),  # a network tile halo wider than the segments, aligned blocks
])
def test_halo_plans_deliver_the_ring(n, domains, left, right, align):
    field = np.arange(2 * n, dtype=float).reshape(2, n) + 0.5
    blocks = Blocks(n, domains, align)

    def ghosts_of(d):
        return ghost_indices(*blocks.range(d), n, left, right)

    _, plans, received = simulate_exchange(n, domains, ghosts_of, field, align)
    for d, p in enumerate(plans):
        assert np.array_equal(received[d], field[:, p.ghosts]), d
        assert d not in p.recv and d not in p.send  # nothing is sent to oneself
    # every point sent is a point received: the plans agree pairwise
    for d, p in enumerate(plans):
        for e, idx in p.send.items():
            assert idx.size == plans[e].recv[d].size


def test_halo_plan_of_observed_points_only():
    from genenkf_hpc.parallel.transpose import halo_columns

    n, domains, radius = 20, 3, 4.0
    mask = np.zeros(n, bool)
    mask[::2] = True
    blocks = Blocks(n, domains)

    def ghosts_of(d):
        start, stop = blocks.range(d)
        cols = halo_columns(start, stop, n, radius, mask)
        return cols[(cols < start) | (cols >= stop)]

    field = np.random.default_rng(0).standard_normal((3, n))
    _, plans, received = simulate_exchange(n, domains, ghosts_of, field)
    for d, p in enumerate(plans):
        assert np.all(mask[p.ghosts]) and p.ghosts.size == 4
        assert np.array_equal(received[d], field[:, p.ghosts])


@pytest.mark.mpi
@pytest.mark.parametrize("ranks, domains, nx, members, radius, align", [
    (2, 2, 23, 5, 3.0, 1),   # uneven segments, one group: halo analysis
    (3, 3, 5, 4, 2.0, 1),    # segments of 2, 2, 1 points: shorter than the halo
    (3, 3, 24, 4, 6.0, 4),   # aligned segments (a network's factor), radius > segment
    (4, 2, 18, 5, 3.0, 1),   # 2 member groups x 2 domains: halo + transposes
    (3, 1, 16, 5, 3.0, 1),   # one domain: the member layout
    (4, 2, 18, 1, 2.0, 1),   # a lone simulation on 2 groups x 2 domains (empty member block)
])
def test_mpi_layouts_equal_the_whole_ring(ranks, domains, nx, members, radius, align):
    proc = run_mpi(ranks, ["python", str(HERE / "mpi_layout_check.py"), domains, nx, members,
                           radius, align], timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(" OK ") == ranks, proc.stdout

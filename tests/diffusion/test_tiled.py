"""Tiles and positional noise: a tile's segment equals the whole ring, whatever the segment
(also tiles longer than the ring); samplers run unchanged on segments; noise by position."""
import numpy as np
import pytest
import torch

from genenkf_hpc.diffusion.conditioning import make_condition
from genenkf_hpc.diffusion.local_net import LocalNet1D, LocalNetArgs, field_record
from genenkf_hpc.diffusion.sampling import ddim_invert, ddim_sample, ddpm_sample, guided_eps_fn
from genenkf_hpc.diffusion.schedule import Schedule
from genenkf_hpc.diffusion.tiled import (PositionalNoise, TiledNet, periodic_fill,
                                         tile_halo_width)

torch.set_num_threads(1)


def local_net(args=LocalNetArgs(base_width=8, seq_len=2)):
    torch.manual_seed(3)
    return LocalNet1D(args).double().eval()


def ring_inputs(n, seq_len, b=2, seed=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 1, n, generator=g, dtype=torch.float64)
    obs = torch.randn(1, seq_len, n, generator=g, dtype=torch.float64)
    return x, make_condition(obs, torch.rand(1, seq_len, n, generator=g) < 0.5)


def segment_fill(full_x, start, stop, halo):
    """What the parallel layer delivers: the ring around [start, stop) (here from the full
    array; in a run, from the neighbouring ranks)."""
    n = full_x.shape[-1]
    idx = np.arange(start - halo, stop + halo) % n

    def fill(x_segment):
        assert x_segment.shape[-1] == stop - start
        return full_x[:, 0].numpy()[:, idx]
    return fill, idx


def test_tile_halo_rounds_the_reach_up_to_the_factor():
    assert tile_halo_width({"left": 20, "right": 19, "downsampling": 2}) == 20
    assert tile_halo_width({"left": 21, "right": 19, "downsampling": 4}) == 24


@pytest.mark.parametrize("n, start, stop", [(64, 0, 22), (64, 22, 40), (64, 40, 64),
                                            (40, 10, 30),   # the tile (80) is longer than n
                                            (24, 0, 24)])   # one domain: the ring wraps twice
def test_tile_segment_equals_the_ring(n, start, stop):
    net = local_net()
    halo = tile_halo_width(field_record(net.args))
    x, cond = ring_inputs(n, 2)
    cond = cond.expand(2, -1, -1)
    t = torch.tensor([5, 900])
    whole = net(x, t, cond)[..., start:stop]
    fill, idx = segment_fill(x, start, stop, halo)
    tiled = TiledNet(net, halo, fill)(x[..., start:stop], t, cond[..., idx])
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-12)


def test_one_domain_tile_is_the_ring():
    net = local_net()
    halo = tile_halo_width(field_record(net.args))
    x, cond = ring_inputs(40, 2)
    cond = cond.expand(2, -1, -1)
    t = torch.tensor([7, 7])
    tiled = TiledNet(net, halo, periodic_fill(halo))(x, t, cond[..., np.arange(-halo, 40 + halo)
                                                                 % 40])
    torch.testing.assert_close(tiled, net(x, t, cond), rtol=0, atol=1e-12)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm", "ddib"])
def test_samplers_run_unchanged_on_segments(sampler):
    """Two segments sampled separately (halo from the other's current x_t at every
    evaluation) assemble the whole-ring sample."""
    net, sch, n = local_net(), Schedule(20), 48
    halo = tile_halo_width(field_record(net.args))
    x_start, cond = ring_inputs(n, 2, b=1)
    segments = [(0, 20), (20, 48)]
    members, seed, cycle = [3, 4], 11, 2

    def run(eps_fn, x, noise):
        if sampler == "ddpm":
            return ddpm_sample(eps_fn, sch, x, noise, t_start=9)
        times = [3, 7, 11, 15, 19]
        if sampler == "ddib":
            x = ddim_invert(eps_fn, sch, x, times, refine=1)
        return ddim_sample(eps_fn, sch, x, times, eta=0.5, noise=noise)

    def noise_for(segment):
        return PositionalNoise(seed, members, cycle, segment, dtype=torch.float64, block=16)

    noise = noise_for((0, n))
    x0 = x_start.expand(2, -1, -1).clone() if sampler == "ddib" else noise.draw()
    whole = run(guided_eps_fn(net, sch, "eps", cond, 2.0), x0, noise)
    # the segments advance in lock step: each evaluation's halo comes from the other's state
    state = {}
    parts = []
    for a, b in segments:
        noise = noise_for((a, b))
        first = x0[..., a:b] if sampler == "ddib" else noise.draw()
        parts.append((a, b, first, noise))
    outs = _lockstep(net, sch, cond, halo, n, parts, run, state)
    torch.testing.assert_close(torch.cat(outs, dim=-1), whole, rtol=0, atol=1e-10)


def _lockstep(net, sch, cond, halo, n, parts, run, state):
    """Run the sampler on every segment in threads that meet at every network evaluation
    (what MPI ranks do), so each tile's halo holds the neighbours' current x_t."""
    import threading

    barrier = threading.Barrier(len(parts))
    current = [None] * len(parts)
    outs = [None] * len(parts)

    def worker(i, a, b, first, noise):
        def fill(x_seg):
            current[i] = x_seg
            barrier.wait()
            ring = np.concatenate([c for c in current], axis=-1)
            barrier.wait()
            return ring[..., np.arange(a - halo, b + halo) % n]
        idx = np.arange(a - halo, b + halo) % n
        eps_fn = guided_eps_fn(TiledNet(net, halo, fill), sch, "eps", cond[..., idx], 2.0)
        outs[i] = run(eps_fn, first, noise)

    threads = [threading.Thread(target=worker, args=(i, *p)) for i, p in enumerate(parts)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return outs


def test_positional_noise_does_not_depend_on_the_segments():
    whole = PositionalNoise(5, [0, 9], 3, (0, 50), dtype=torch.float64, block=8)
    parts = [PositionalNoise(5, [0, 9], 3, seg, dtype=torch.float64, block=8)
             for seg in [(0, 13), (13, 14), (14, 50)]]
    for _ in range(3):  # successive draws continue every point's stream
        torch.testing.assert_close(torch.cat([p.draw() for p in parts], dim=-1), whole.draw(),
                                   rtol=0, atol=0)
    a, b = PositionalNoise(5, [0], 3, (0, 50)).draw(), PositionalNoise(5, [0], 4, (0, 50)).draw()
    assert not torch.allclose(a, b)  # another cycle, other numbers


@pytest.mark.mpi
@pytest.mark.parametrize("ranks, nx, members, batch", [(2, 40, 3, 2),   # tiles longer than n
                                                      (3, 64, 4, 3)])  # uneven segments
def test_mpi_tiled_sampling_equals_the_whole_ring(ranks, nx, members, batch):
    """DDIB, DDIM and DDPM pseudo-ensembles on domains (float64) equal the whole ring's."""
    from pathlib import Path

    from mpi_utils import run_mpi

    script = Path(__file__).resolve().parent / "mpi_tiled_check.py"
    proc = run_mpi(ranks, ["python", script, nx, members, batch], timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(" OK ") == ranks, proc.stdout

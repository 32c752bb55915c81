"""Run under mpiexec by test_tiled.py: pseudo-ensembles sampled on domains (tiles whose
halo comes from the neighbouring ranks) against the whole ring sampled on every rank.

Usage: python mpi_tiled_check.py NX MEMBERS BATCH_MEMBERS
"""
import sys

import numpy as np
import torch

from genenkf_hpc.diffusion.bundle import build_bundle, sample_pseudo_ensemble
from genenkf_hpc.diffusion.conditioning import Normaliser
from genenkf_hpc.diffusion.local_net import LocalNet1D, LocalNetArgs
from genenkf_hpc.diffusion.schedule import Schedule
from genenkf_hpc.diffusion.tiled import Segment, tile_halo_width
from genenkf_hpc.parallel.comm import world
from genenkf_hpc.parallel.layout import Layout

CASES = [dict(sampler="ddim", steps=4, eta=0.5, guidance=2.0, encoding="ddib", strength=0.6),
         dict(sampler="ddim", steps=5, eta=1.0, guidance=0.0, encoding="noise", strength=1.0),
         dict(sampler="ddim", steps=5, eta=0.3, guidance=1.5, encoding="sdedit", strength=0.5),
         dict(sampler="ddpm", steps=20, eta=0.0, guidance=1.0, encoding="ddib", strength=0.3),
         dict(sampler="ddim", steps=3, eta=0.3, guidance=3.0, encoding="sdedit", strength=0.4,
              unconditional=True)]


def main(nx: int, members: int, batch_members: int) -> None:
    torch.set_num_threads(1)
    comm = world()
    torch.manual_seed(0)
    net = LocalNet1D(LocalNetArgs(base_width=8, seq_len=2)).double()
    bundle = build_bundle(net, Schedule(20), "eps", Normaliser(-10.0, 15.0), 2, 1.0, nx=nx)
    factor = bundle.receptive_field["downsampling"]
    lay = Layout(comm, members=members, nx=nx, domains=comm.size, align=factor)
    h = tile_halo_width(bundle.receptive_field)
    halo = lay.tile_halo(h)
    segment = Segment(nx, *lay.segment_range, h, lambda x: halo.padded(x, h))
    g = np.random.default_rng(3)
    state = 8.0 + 3.0 * g.standard_normal(nx)
    mask = np.zeros(nx, bool)
    mask[::2] = True
    obs = np.where(mask, state + g.standard_normal((2, nx)), np.nan)
    worst = 0.0
    for case in CASES:
        kw = dict(sampler=case["sampler"], steps=case["steps"], eta=case["eta"],
                  guidance=case["guidance"], strength=case["strength"],
                  encoding=case["encoding"])
        seen = None if case.get("unconditional") else obs  # the first cycle of prior mode
        whole = sample_pseudo_ensemble(bundle, seen, mask, range(members), 5, 7,
                                       start_state=state, **kw)
        tiled = sample_pseudo_ensemble(bundle, seen, mask, range(members), 5, 7,
                                       start_state=lay.segment(state), segment=segment,
                                       batch_members=batch_members, **kw)
        diff = float(np.max(np.abs(tiled - lay.segment(whole))))
        assert diff <= 1e-10, (case, diff)
        worst = max(worst, diff)
    print(f"rank {comm.rank} OK segment={lay.segment_range} halo={h} max|diff|={worst:.2e}",
          flush=True)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))

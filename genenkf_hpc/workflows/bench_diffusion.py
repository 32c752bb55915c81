"""``genenkf bench sample|train``: throughput of pseudo-ensemble sampling and of training.

    genenkf bench sample -c configs/demo.toml [--checkpoint FILE] [--members 32] [--steps 20]
    mpiexec -n 4 genenkf bench sample ...        # members split over ranks in blocks
    genenkf bench train -c configs/demo.toml [--batch 64] [--steps 20]
    torchrun --nproc_per_node 4 -m genenkf_hpc bench train ...   # DDP, global batch

``sample`` times ``sample_pseudo_ensemble`` for k members (as in one Generative EnKF cycle,
with the [generative] sampler, guidance and DDIB settings) after one warm-up call, median of
``--repeat``; without ``--checkpoint`` a randomly initialised network of the configured size is
timed (speed does not depend on the weights). ``train`` times optimizer steps on synthetic
states (no dataset needed) through the same code path as ``genenkf train``.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from .. import osse, rng
from ..config import Config
from ..diffusion.bundle import (DTYPES, build_bundle, load_bundle, on_grid,
                                sample_pseudo_ensemble)
from ..diffusion.conditioning import Normaliser
from ..diffusion.networks import build_network, check_grid, network_args
from ..diffusion.schedule import Schedule
from ..parallel import ddp
from ..parallel.decomposition import block_range
from ..parallel.environment import read_environment, threads_per_process
from ..training import data as tdata
from ..training.step import StepParts, optimizer_step

# Range of F = 8 Lorenz-96 states, for the random-weight benchmark's normalisation.
_L96_RANGE = (-8.0, 13.0)


def _random_bundle(cfg: Config, nx: int, device: str, precision: str):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(rng.torch_seed(cfg.train.seed, rng.Purpose.BENCH, 0))
        net = build_network(network_args(cfg, nx))
    net = net.to(device=torch.device(device), dtype=DTYPES[precision])
    return build_bundle(net, Schedule(cfg.diffusion.timesteps, cfg.diffusion.schedule),
                        cfg.diffusion.objective, Normaliser(*_L96_RANGE), cfg.osse.obs_interval,
                        cfg.osse.obs_sigma, nx=nx)


def load_or_random_bundle(args, cfg: Config, nx: int, device):
    """``--checkpoint``'s model, or a randomly initialised network of the [network] settings
    on ``nx`` points (speed does not depend on the weights). A local network samples ``nx``
    points whatever ring it was trained on (``--nx``, checked against its receptive field)."""
    if not args.checkpoint:
        return _random_bundle(cfg, nx, device, cfg.generative.precision)
    bundle = load_bundle(args.checkpoint, device, cfg.generative.precision)
    if bundle.receptive_field is None or not args.nx:
        return bundle
    check_grid(bundle.receptive_field, bundle.nx, args.nx, args.checkpoint)
    return on_grid(bundle, args.nx)


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def bench_sample(args, cfg: Config, comm) -> dict:
    """Pseudo-ensemble members per second (all ranks together) for one DA cycle's draw."""
    gc = cfg.generative
    env = read_environment()
    device = ddp.use_device(args.device or gc.device, env.local_rank,
                            "--device" if args.device else "generative.device")
    torch.set_num_threads(threads_per_process())
    bundle = load_or_random_bundle(args, cfg, args.nx or cfg.model.nx, device)
    nx, k = bundle.nx, args.members or gc.members
    steps = args.steps
    mask = osse.obs_mask(nx, bundle.obs_interval)
    g = rng.stream(cfg.osse.seed, rng.Purpose.BENCH, 1)
    state = cfg.model.forcing + g.standard_normal(nx)
    obs = np.where(mask, state + bundle.obs_sigma * g.standard_normal(nx), np.nan)
    first, last = block_range(k, comm.size, comm.rank)
    # the Generative EnKF's own call (cycling/generative.py): same sampler settings
    kw = dict(sampler=gc.sampler, steps=steps, eta=gc.eta, guidance=gc.guidance,
              start_state=state, encoding=gc.encoding, strength=gc.strength,
              inversion_refine=gc.inversion_refine, clip=gc.clip or None,
              batch_rows=gc.fixed_batch)
    sample_pseudo_ensemble(bundle, obs, mask, range(first, last), 0, 0, **kw)  # warm-up
    times, counter = [], _EvaluationCounter(bundle.net)
    for r in range(args.repeat):
        comm.barrier()
        _sync(device)
        counter.reset()
        t0 = time.perf_counter()
        sample_pseudo_ensemble(bundle, obs, mask, range(first, last), r + 1, 0, **kw)
        _sync(device)
        times.append(comm.allreduce(time.perf_counter() - t0, op="max"))
    counter.remove()
    wall = float(np.median(times))
    rows = comm.allreduce(counter.rows)  # of the last repeat, all ranks: every one is alike
    return {"bench": "sample", "members_per_s": k / wall, "seconds_per_ensemble": wall,
            "network_evaluations_per_s": rows / wall,
            "network_evaluations_per_member": rows / k,
            "network_passes_per_ensemble": comm.allreduce(counter.passes, op="max"),
            "members": k, "steps": steps, "sampler": gc.sampler, "eta": gc.eta,
            "guidance": gc.guidance, "encoding": gc.encoding, "strength": gc.strength,
            "inversion_refine": gc.inversion_refine, "clip": gc.clip,
            "fixed_batch": gc.fixed_batch, "nx": nx,
            "seq_len": bundle.seq_len, "precision": gc.precision, "device": str(device),
            "ranks": comm.size, "repeat": args.repeat,
            "parameters": sum(p.numel() for p in bundle.net.parameters()),
            "checkpoint": args.checkpoint or None, "torch_threads": torch.get_num_threads()}


class _EvaluationCounter:
    """Counts the network's forward passes and the rows (states) they evaluate: a guided step
    evaluates 2 rows per member, a DDIB inversion step 1 row for the whole ensemble."""

    def __init__(self, net: torch.nn.Module):
        self.passes, self.rows = 0, 0
        self._hook = net.register_forward_hook(self._count)

    def _count(self, module, inputs, output) -> None:
        self.passes += 1
        self.rows += int(inputs[0].shape[0])

    def reset(self) -> None:
        self.passes, self.rows = 0, 0

    def remove(self) -> None:
        self._hook.remove()


def bench_train(args, cfg: Config, comm) -> dict | None:
    """Training samples per second per rank (global batch split over the DDP ranks)."""
    env = read_environment()
    ds = ddp.setup(env, args.device or cfg.train.device, comm=comm,
                   key="--device" if args.device else "train.device")
    torch.set_num_threads(threads_per_process())
    try:
        record = _bench_train(args, cfg, ds, env)
    except BaseException:
        ddp.teardown(ds, clean=False)
        raise
    ddp.teardown(ds)
    return record


def _bench_train(args, cfg: Config, ds, env) -> dict | None:
    tc, nx = cfg.train, args.nx or cfg.model.nx
    batch = args.batch or tc.batch_size
    arch = network_args(cfg, nx)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(rng.torch_seed(tc.seed, rng.Purpose.BENCH, 2))
        net, ema = build_network(arch), build_network(arch)
    net, ema = net.to(ds.device), ema.to(ds.device).requires_grad_(False)
    model = ddp.wrap(net, ds)
    schedule = Schedule(cfg.diffusion.timesteps, cfg.diffusion.schedule)
    bf16 = tc.precision == "bf16" or (tc.precision == "auto" and ds.device.type == "cuda")
    parts = StepParts(model, net, ema, torch.optim.Adam(net.parameters(), lr=tc.lr),
                      schedule, cfg.diffusion.objective, cfg.diffusion.loss, tc.ema_decay,
                      batch, ds.world_size, ds.active, bf16, ds.device.type)
    g = rng.stream(tc.seed, rng.Purpose.BENCH, 3)
    states = cfg.model.forcing + 3.5 * g.standard_normal((4, 64 + arch.seq_len, nx))
    maker = tdata.BatchMaker(states, Normaliser(*_L96_RANGE),
                             osse.obs_mask(nx, cfg.osse.obs_interval), cfg.osse.obs_sigma,
                             arch.seq_len, schedule, ds.device)
    lo, hi = block_range(batch, ds.world_size, ds.rank)
    micro = [tuple(lo + np.array(block_range(hi - lo, tc.grad_accum, j)))
             for j in range(tc.grad_accum)]

    def one(step):
        gb = tdata.draw_global_batch(tc.seed, step, batch, 4, states.shape[1], arch.seq_len,
                                     nx, cfg.diffusion.timesteps, cfg.diffusion.p_uncond)
        optimizer_step(parts, gb, maker, micro, tc.lr, step)

    for s in range(2):
        one(s)  # warm-up (allocator, DDP buckets)
    _sync(ds.device)
    t0 = time.perf_counter()
    for s in range(args.steps):
        one(2 + s)
    _sync(ds.device)
    wall = time.perf_counter() - t0
    wall = ddp.all_reduce_values([wall], ds)[0] / ds.world_size  # mean over ranks
    if not ds.is_main:
        return None  # under torchrun every rank sees a one-process comm: rank 0 reports
    return {"bench": "train", "samples_per_s_per_rank": args.steps * batch / wall
            / ds.world_size, "samples_per_s": args.steps * batch / wall,
            "steps_per_s": args.steps / wall, "global_batch": batch,
            # one forward + backward pass per training sample
            "network_evaluations_per_s": args.steps * batch / wall,
            "grad_accum": tc.grad_accum, "steps": args.steps, "nx": nx,
            "network": cfg.network.kind, "base_width": arch.base_width,
            "multipliers": list(arch.multipliers), "attention": getattr(arch, "attention", False),
            "seq_len": arch.seq_len,
            "parameters": sum(p.numel() for p in net.parameters()), "bf16": bf16,
            "device": str(ds.device), "ranks": ds.world_size, "backend": ds.backend,
            "launcher": env.launcher, "torch_threads": torch.get_num_threads()}

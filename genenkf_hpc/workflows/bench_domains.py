"""``genenkf bench forecast|letkf|sample --domains D``: the parts of a domain-decomposed cycle.

    mpiexec -n 2 genenkf bench forecast --nx 1000000 --members 32 --domains 2 --steps 5
    mpiexec -n 2 genenkf bench letkf --nx 1000000 --members 32 --domains 2
    mpiexec -n 2 genenkf bench sample --nx 100000 --members 32 --domains 2 \\
        --checkpoint models/l96_local.pt [generative.batch_members=8]

Every rank holds its segment of the ring for its member group, as in ``genenkf assimilate
run.domains=D`` (:mod:`genenkf_hpc.parallel.layout`; ``--domains auto`` chooses the same way).
Inputs are random fields drawn by position (:func:`rng.positional_normal`), so no rank ever
holds the whole ring. One JSON record per run: the slowest rank's median time of ``--repeat``
repetitions after a warm-up, the throughput, the bytes sent between ranks per cycle as measured
(counted in every exchange and transpose) and by formula, and every rank's peak resident memory
(``peak_rss_mb``, getrusage: the whole process, imports included).

- ``forecast``: ``--steps`` RK4 steps of a ``(k_g, n_d)`` block (``--members 1``: one
  simulation), the dynamics' halo exchanged at every stage. Formula: ``32 k (l + r) D`` bytes per
  step (4 stages, k members, l + r ghost points per domain, float64; 0 on one domain).
- ``letkf``: analysis halo exchange (+ member transposes with several groups), local LETKF of
  the rank's points, back to the member block. Halo formula: ``8 k D h``, h the observed points
  within ``floor(radius)`` of a segment (``2 floor(radius) / obs_interval``).
- ``sample``: a pseudo-ensemble of k members on the segments (the [generative] settings,
  ``--steps`` sampling steps), a tile halo of the network's receptive field refreshed at every
  evaluation. Formula: ``2 h s D`` bytes per network row evaluation (h the tile halo, s the
  itemsize), times the row evaluations of one ensemble.
"""
from __future__ import annotations

import dataclasses
import resource
import time

import numpy as np

from .. import osse, rng
from ..dynamics.from_config import forecast_model
from ..parallel.decomposition import choose_domains
from ..parallel.layout import Layout


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def _random_block(lay: Layout, key: int, mean: float = 8.0) -> np.ndarray:
    """Lorenz-96-like members (mean + N(0, 1)) on this rank's segment, by position."""
    start, stop = lay.segment_range
    rows = [mean + rng.positional_normal(key, rng.Purpose.BENCH, int(m), start, stop)
            for m in lay.member_ids]
    return np.stack(rows) if rows else np.empty((0, stop - start))


def _timed(comm, fn, repeat: int) -> tuple[float, list[float]]:
    """Warm-up, then ``repeat`` timed calls; the slowest rank's time of each, and their median."""
    fn()
    times = []
    for _ in range(repeat):
        comm.barrier()
        t0 = time.perf_counter()
        fn()
        times.append(comm.allreduce(time.perf_counter() - t0, op="max"))
    return float(np.median(times)), times


def _per_rank(comm, lay: Layout, **extra) -> list[dict] | None:
    return comm.gather({"rank": comm.rank, "domain": lay.domain, "group": lay.group,
                        "points": lay.segment_points, "members": lay.k_local,
                        "peak_rss_mb": round(_peak_rss_mb(), 1), **extra})


def _layout_record(lay: Layout, per_rank: list[dict]) -> dict:
    return {"ranks": lay.comm.size, "layout": lay.describe(), "per_rank": per_rank,
            "peak_rss_mb_max": max(r["peak_rss_mb"] for r in per_rank)}


def _domains(args, comm, nx: int, supported=True, reason="", align=1) -> int:
    setting = args.domains if args.domains == "auto" else int(args.domains)
    return choose_domains(setting, comm.size, nx, supported=supported, reason=reason,
                          align=align)


def bench_forecast(args, cfg, comm, settings: dict) -> list[dict]:
    nx, k, steps = settings["nx"], settings["members"], args.steps
    model = forecast_model(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, nx=nx)))
    domains = _domains(args, comm, nx, model.halo is not None, "the model declares no halo")
    lay = Layout(comm, members=k, nx=nx, domains=domains, dynamics_halo=model.halo)
    block = _random_block(lay, 3)
    before = lay.sent_bytes
    seconds, times = _timed(comm, lambda: lay.integrate(model, block, steps), args.repeat)
    measured = comm.allreduce(lay.sent_bytes - before) / ((args.repeat + 1) * steps)
    per_rank = _per_rank(comm, lay)
    if comm.rank != 0:
        return []
    left, right = model.halo or (0, 0)
    formula = 32 * k * (left + right) * domains if domains > 1 else 0
    return [{"bench": "forecast", "nx": nx, "members": k, "steps": steps, "dt": model.dt,
             "repeat": args.repeat, "seconds": seconds, "seconds_per_step": seconds / steps,
             "grid_point_steps_per_s": k * nx * steps / seconds,
             "bytes_per_step_measured": measured, "bytes_per_step_formula": formula,
             "times": times, **_layout_record(lay, per_rank)}]


def bench_letkf(args, cfg, comm, settings: dict) -> list[dict]:
    from ..cycling.base import CycleContext, local_letkf

    s = settings
    nx, k = s["nx"], s["members"]
    sub = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, nx=nx),
                              filter=dataclasses.replace(cfg.filter, radius=s["radius"],
                                                         taper=s["taper"], solve=s["solve"]))
    model = forecast_model(sub)
    mask = osse.obs_mask(nx, s["obs_interval"])
    lay = Layout(comm, members=k, nx=nx, domains=_domains(args, comm, nx), radius=s["radius"],
                 mask=mask, dynamics_halo=model.halo)
    ctx = CycleContext(sub, comm, lay, mask, s["obs_sigma"] ** 2, model)
    block = _random_block(lay, 1)
    obs = np.where(mask, 8.0 + rng.positional_normal(2, rng.Purpose.BENCH, 0, 0, nx), np.nan)
    parts = np.zeros(3)

    def analysis():
        t0 = time.perf_counter()
        grid = lay.to_grid(block)
        t1 = time.perf_counter()
        xa = local_letkf(ctx, grid, obs)
        t2 = time.perf_counter()
        lay.to_members(xa)
        parts[:] += (t1 - t0, t2 - t1, time.perf_counter() - t2)

    before = lay.sent_bytes
    seconds, times = _timed(comm, analysis, args.repeat)
    measured = comm.allreduce(lay.sent_bytes - before) / (args.repeat + 1)
    per_rank = _per_rank(comm, lay, exchange_s=parts[0] / (args.repeat + 1),
                         letkf_s=parts[1] / (args.repeat + 1),
                         back_s=parts[2] / (args.repeat + 1))
    if comm.rank != 0:
        return []
    halo = 2 * np.floor(s["radius"]) / s["obs_interval"]
    formula = 8 * k * lay.domains * halo if lay.domains > 1 else 0.0
    if lay.transposer is not None and lay.comm.size > 1:
        formula += lay.domains * lay.transposer.volume()["total_bytes"]
    return [{"bench": "letkf", "mode": "domains", **s, "seconds_per_analysis": seconds,
             "grid_points_per_s": nx / seconds,
             "letkf_seconds_max": max(r["letkf_s"] for r in per_rank),
             "exchange_seconds_max": max(r["exchange_s"] + r["back_s"] for r in per_rank),
             "bytes_per_cycle_measured": measured, "bytes_per_cycle_formula": formula,
             "times": times, **_layout_record(lay, per_rank)}]


def bench_sample(args, cfg, comm, settings: dict) -> list[dict]:
    import torch

    from ..cycling.generative import sampling_segment
    from ..diffusion.bundle import sample_pseudo_ensemble
    from ..diffusion.networks import check_grid
    from ..diffusion.tiled import tile_halo_width
    from ..parallel.environment import read_environment, select_device, threads_per_process
    from .bench_diffusion import load_or_random_bundle

    gc = cfg.generative
    env = read_environment()
    device = select_device(args.device or gc.device, env.local_rank, torch.cuda.is_available())
    torch.set_num_threads(threads_per_process())
    nx, k = settings["nx"], settings["members"]
    bundle = load_or_random_bundle(args, cfg, nx, device)
    field = bundle.receptive_field
    check_grid(field, bundle.nx, nx, args.checkpoint or "(random weights)")
    align = field["downsampling"] if field else 1
    domains = _domains(args, comm, nx, field is not None, "a whole-ring network (network.kind="
                       "unet) samples the whole ring only", align)
    lay = Layout(comm, members=k, nx=nx, domains=domains, align=align if domains > 1 else 1)
    segment = sampling_segment(lay, bundle)
    mask = osse.obs_mask(nx, bundle.obs_interval)
    start, stop = lay.segment_range
    state = 8.0 + 3.5 * rng.positional_normal(cfg.osse.seed, rng.Purpose.BENCH, 1, 0, nx)
    obs = np.where(mask, state + bundle.obs_sigma * rng.positional_normal(
        cfg.osse.seed, rng.Purpose.BENCH, 2, 0, nx), np.nan)
    history = np.repeat(obs[None], bundle.seq_len, axis=0)
    cycle = [0]

    def draw():
        cycle[0] += 1
        sample_pseudo_ensemble(bundle, history, mask, lay.member_ids, cycle[0], 0,
                               sampler=gc.sampler, steps=args.steps, eta=gc.eta,
                               guidance=gc.guidance, start_state=lay.segment(state),
                               encoding=gc.encoding, strength=gc.strength,
                               inversion_refine=gc.inversion_refine, clip=gc.clip or None,
                               segment=segment, batch_members=gc.batch_members)
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()

    before = lay.sent_bytes
    seconds, times = _timed(comm, draw, args.repeat)
    measured = comm.allreduce(lay.sent_bytes - before) / (args.repeat + 1)
    per_rank = _per_rank(comm, lay)
    if comm.rank != 0:
        return []
    halo = tile_halo_width(field) if field and domains > 1 else 0
    itemsize = torch.empty(0, dtype=bundle.dtype).element_size()
    rows = _row_evaluations(cfg, bundle, args.steps, lay)
    return [{"bench": "sample", "nx": nx, "members": k, "steps": args.steps,
             "sampler": gc.sampler, "encoding": gc.encoding, "strength": gc.strength,
             "guidance": gc.guidance, "batch_members": gc.batch_members,
             "precision": gc.precision, "device": str(device), "tile_halo": halo,
             "receptive_field": field, "seconds_per_ensemble": seconds,
             "members_per_s": k / seconds, "point_members_per_s": k * nx / seconds,
             "row_evaluations_per_rank": rows,
             "bytes_per_cycle_measured": measured,
             "bytes_per_cycle_formula": 2 * halo * itemsize * lay.domains * rows,
             "checkpoint": args.checkpoint or None, "torch_threads": torch.get_num_threads(),
             "times": times, **_layout_record(lay, per_rank)}]


def _row_evaluations(cfg, bundle, steps: int, lay: Layout) -> int:
    """Network rows one rank evaluates per ensemble: members x decoding steps (twice with
    guidance other than 0 and 1), plus the DDIB inversion (batch 1, guidance 1)."""
    from ..diffusion.sampling import strided_times

    g, timesteps = cfg.generative, bundle.schedule.timesteps
    ddpm = g.sampler == "ddpm" or steps >= timesteps
    encoded = g.encoding != "noise"
    n = len(strided_times(timesteps, timesteps if ddpm else steps,
                          g.strength if encoded else 1.0))
    doubled = 1 if g.guidance in (0.0, 1.0) else 2
    inversion = n * (1 + g.inversion_refine) if g.encoding == "ddib" else 0
    return lay.k_local * n * doubled + inversion

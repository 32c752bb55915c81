"""``genenkf bench letkf|forecast|sample|train``: measured figures, one JSON object per line.

    genenkf bench letkf --nx 2000 --members 32 --radius 4 [--threads T]  # da.bench.bench_letkf
    mpiexec -n 4 genenkf bench letkf --nx 20000 --members 32          # + transposes, per rank
    mpiexec -n 4 genenkf bench forecast --nx 2000 --members 32 --steps 50
    genenkf bench sample -c configs/demo.toml [--checkpoint FILE]     # workflows.bench_diffusion
    genenkf bench train -c configs/demo.toml
    mpiexec -n 2 genenkf bench forecast|letkf|sample --nx N --domains 2  # workflows.bench_domains

Under MPI, ``letkf`` times what one parallel LETKF analysis costs in ``genenkf assimilate``:
member -> grid transpose (with the observation halo), local analysis of every rank's grid block,
grid -> member transpose; ``forecast`` times every rank's member block. Both report per-rank
figures and the total throughput (work / slowest rank). ``sample``/``train`` are implemented in
:mod:`genenkf_hpc.workflows.bench_diffusion` as ``bench_sample(args, cfg, comm)`` and
``bench_train(args, cfg, comm)`` returning a dict or a list of dicts (imported lazily, so
``letkf``/``forecast`` never import torch). With ``--domains`` (a count or ``auto``),
``forecast``, ``letkf`` and ``sample`` run on the domain-decomposed layout of ``genenkf
assimilate run.domains=...`` instead, with bytes exchanged and peak memory per rank
(:mod:`genenkf_hpc.workflows.bench_domains`).
"""
from __future__ import annotations

import dataclasses
import json
import time

import numpy as np

from .. import osse, rng
from ..config import load_config
from ..dynamics.from_config import forecast_model
from ..parallel.comm import world
from ..parallel.transpose import Transposer

HELP = "benchmarks: letkf, forecast, sample, train (JSON lines)"
USES_CONFIG = False
TAKES_OVERRIDES = True  # section.key=value arguments refine -c CONFIG (load_config below)
TARGETS = ("letkf", "forecast", "sample", "train")


def add_arguments(parser) -> None:
    parser.add_argument("what", choices=TARGETS, help="what to measure")
    parser.add_argument("-c", "--config", help="TOML config (defaults for unset options)")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value",
                        help="override any config key")
    parser.add_argument("--nx", type=int, help="grid points (default model.nx)")
    parser.add_argument("--members", type=int, help="ensemble size (default filter.members)")
    parser.add_argument("--radius", type=float, help="localisation radius (default filter.radius)")
    parser.add_argument("--taper", choices=("box", "gaspari_cohn"), help="default filter.taper")
    parser.add_argument("--solve", choices=("auto", "ensemble", "observation"),
                        help="LETKF local solve (default filter.solve)")
    parser.add_argument("--obs-interval", type=int, help="default osse.obs_interval")
    parser.add_argument("--mode", choices=("auto", "kernel", "parallel"), default="auto",
                        help="letkf: the kernel alone (da.bench) or transposes + local analysis "
                        "per rank (parallel); auto = kernel on one process, else parallel")
    parser.add_argument("--threads", type=int, help="letkf kernel mode: worker threads of the "
                        "kernel (default: the usable cores)")
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions (median)")
    parser.add_argument("--steps", type=int, default=20, help="forecast: RK4 steps per repeat; "
                        "sample/train: steps of the measured loop")
    parser.add_argument("--batch", type=int, help="sample/train: batch size")
    parser.add_argument("--device", help="sample/train: torch device")
    parser.add_argument("--checkpoint", help="sample: a trained checkpoint (default: random init)")
    parser.add_argument("--domains", help="forecast/letkf/sample on the domain layout: a number "
                        "of domains (dividing the ranks) or auto; peak memory and bytes per rank")


def run(args) -> int:
    from ..errors import UserError

    cfg = load_config(args.config, args.overrides)
    for name in ("nx", "members", "repeat", "steps", "obs_interval", "batch", "threads"):
        value = getattr(args, name, None)
        if value is not None and value < (4 if name == "nx" else 1):
            raise UserError(f"--{name.replace('_', '-')}={value}: too small")
    if args.members is not None and args.members < 2:
        raise UserError(f"--members={args.members}: must be >= 2")
    if args.radius is not None and not args.radius > 0:
        raise UserError(f"--radius={args.radius}: must be > 0")
    comm = world()
    if args.domains is not None:
        if args.what == "train" or not (args.domains == "auto" or args.domains.isdigit()):
            raise UserError(f"--domains={args.domains}: expected a number of domains or auto "
                            "(for forecast, letkf or sample)")
        from . import bench_domains

        records = getattr(bench_domains, f"bench_{args.what}")(args, cfg, comm,
                                                                _settings(args, cfg))
    elif args.what == "letkf":
        parallel = args.mode == "parallel" or (args.mode == "auto" and comm.size > 1)
        records = bench_letkf_parallel(args, cfg, comm) if parallel else \
            _bench_letkf_serial(args, cfg)
    elif args.what == "forecast":
        records = bench_forecast(args, cfg, comm)
    else:
        try:
            from . import bench_diffusion
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.bench_diffusion":
                raise
            raise UserError(f"bench {args.what}: the diffusion benchmarks are not part of this "
                            "installation") from None
        records = getattr(bench_diffusion, f"bench_{args.what}")(args, cfg, comm)
    if comm.rank == 0 and records is not None:
        for record in [records] if isinstance(records, dict) else records:
            print(json.dumps(record), flush=True)
    return 0


def _settings(args, cfg) -> dict:
    f = cfg.filter
    return {"nx": args.nx or cfg.model.nx, "members": args.members or f.members,
            "radius": args.radius or f.radius, "taper": args.taper or f.taper,
            "solve": args.solve or f.solve,
            "obs_interval": args.obs_interval or cfg.osse.obs_interval,
            "obs_sigma": cfg.osse.obs_sigma, "inflation": f.inflation, "repeat": args.repeat}


def _bench_letkf_serial(args, cfg):
    from ..da.bench import bench_letkf

    s = _settings(args, cfg)
    return bench_letkf(nx=s["nx"], members=s["members"], radius=s["radius"], taper=s["taper"],
                       obs_interval=s["obs_interval"], solve=s["solve"], repeats=s["repeat"],
                       threads=args.threads)


def _random_block(member_ids, nx: int, purpose_key: int) -> np.ndarray:
    """Lorenz-96-like random members (8 + N(0, 1)), member m from its own stream."""
    out = np.empty((len(member_ids), nx))
    for row, m in enumerate(member_ids):  # setup only, not timed
        out[row] = 8.0 + rng.stream(purpose_key, rng.Purpose.BENCH, m).standard_normal(nx)
    return out


def bench_letkf_parallel(args, cfg, comm) -> list[dict]:
    """Transposes + local LETKF per rank, the way ``assimilate --method letkf`` runs it."""
    from ..cycling.base import CycleContext, local_letkf

    s = _settings(args, cfg)
    nx, k = s["nx"], s["members"]
    sub = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, nx=nx),
                              filter=dataclasses.replace(cfg.filter, radius=s["radius"],
                                                         taper=s["taper"], solve=s["solve"]))
    mask = osse.obs_mask(nx, s["obs_interval"])
    t = Transposer(comm, k, nx, s["radius"], mask)
    ctx = CycleContext(sub, comm, t, mask, s["obs_sigma"] ** 2, forecast_model(sub))
    block = _random_block(t.member_ids, nx, 1)
    obs = np.where(mask, 8.0 + rng.stream(2, rng.Purpose.BENCH, 0).standard_normal(nx), np.nan)
    times = np.empty((args.repeat + 1, 3))
    for i in range(args.repeat + 1):  # the first repetition warms up and is dropped
        comm.barrier()
        t0 = time.perf_counter()
        grid = t.to_grid(block)
        t1 = time.perf_counter()
        xa = local_letkf(ctx, grid, obs)
        t2 = time.perf_counter()
        t.to_members(xa)
        t3 = time.perf_counter()
        times[i] = (t1 - t0, t2 - t1, t3 - t2)
    med = np.median(times[1:], axis=0)
    measured = comm.allreduce(t.sent_bytes) // (args.repeat + 1)
    per_rank = comm.gather({"rank": comm.rank, "points": t.npts, "columns": int(t.ncols[comm.rank]),
                            "members": t.k_local, "to_grid_s": med[0], "letkf_s": med[1],
                            "to_members_s": med[2]})
    if comm.rank != 0:
        return []
    total = max(r["to_grid_s"] + r["letkf_s"] + r["to_members_s"] for r in per_rank)
    for r in per_rank:
        r["grid_points_per_s"] = r["points"] / r["letkf_s"] if r["letkf_s"] > 0 else None
    volume = t.volume()
    return [{"bench": "letkf", "mode": "parallel", "ranks": comm.size, **s,
             "seconds_per_analysis": total, "grid_points_per_s": nx / total,
             "letkf_seconds_max": max(r["letkf_s"] for r in per_rank),
             "transpose_seconds_max": max(r["to_grid_s"] + r["to_members_s"] for r in per_rank),
             "bytes_per_cycle": volume["total_bytes"], "bytes_per_cycle_measured": measured,
             "volume": volume, "per_rank": per_rank}]


def bench_forecast(args, cfg, comm) -> list[dict]:
    """RK4 steps of every rank's member block; throughput in member-steps per second."""
    s = _settings(args, cfg)
    nx, k, steps = s["nx"], s["members"], args.steps
    t = Transposer(comm, k, nx)
    dt = cfg.model.dt
    model = forecast_model(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, nx=nx)))
    # The model's own random states (its whole state vector): any model.dynamics runs here.
    block = np.stack([model.random_state(rng.stream(3, rng.Purpose.BENCH, m))
                      for m in t.member_ids]) if t.k_local else np.empty((0, model.state_size))
    model.integrate(block, 1)  # warm-up
    times = []
    for _ in range(args.repeat):
        comm.barrier()
        t0 = time.perf_counter()
        model.integrate(block, steps)
        times.append(time.perf_counter() - t0)
    sec = float(np.median(times))
    per_rank = comm.gather({"rank": comm.rank, "members": t.k_local, "seconds": sec,
                            "member_steps_per_s": t.k_local * steps / sec if sec > 0 else None})
    if comm.rank != 0:
        return []
    slowest = max(r["seconds"] for r in per_rank)
    return [{"bench": "forecast", "ranks": comm.size, "nx": nx, "members": k, "steps": steps,
             "dt": dt, "repeat": args.repeat, "seconds": slowest,
             "member_steps_per_s": k * steps / slowest,
             "grid_point_steps_per_s": k * steps * nx / slowest, "per_rank": per_rank}]

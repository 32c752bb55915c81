"""``genenkf dataset``: trajectories for training the diffusion model.

The runs are of the forecast model (``dataset.source = "model"``, F = model.forcing, as in the
paper) or of the nature model (``"nature"``: a reanalysis-like archive of the truth, with its
own seeds and times, never those of a scored run). Trajectory i starts from a random state of
that model drawn from ``rng.stream(seed, DATASET_INITIAL, i)`` (Lorenz-96: F + N(0, 1)), is spun
up for ``dataset.spinup_steps`` forecast-model steps' worth of time (discarded) and then stores
what DA sees of it once per cycle interval (``model.dt * osse.steps_per_cycle``), for
``dataset.steps`` cycles: consecutive stored states are one analysis cycle apart, the spacing
of the observation history in the cycle. Shards of ``dataset.shard_trajectories`` trajectories are spread
over the MPI ranks in contiguous blocks; since each trajectory has its own stream, the files do
not depend on the rank count. The train / val / test split is by trajectory (a permutation from
``rng.stream(seed, DATASET_SPLIT)``), never by time step. Normalisation statistics come from the
training trajectories only. Observations are not stored: training draws them afresh
(osse.obs_interval, osse.obs_sigma), so every epoch sees new observation noise.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import __version__, rng
from ..config import Config
from ..dynamics.from_config import forecast_model, nature_clock, nature_model
from ..errors import UserError
from ..io import hdf5
from ..io.provenance import provenance
from ..parallel.decomposition import block_range

HELP = "training trajectories for the diffusion model -> HDF5 shards + metadata.json"


def add_arguments(parser) -> None:
    pass  # everything is in the [dataset] and [model] config sections


def split_trajectories(n: int, val_fraction: float, test_fraction: float,
                       seed: int) -> dict[str, list[int]]:
    """Trajectory ids per split; each non-zero fraction gets at least one trajectory."""
    def count(f):
        return 0 if f <= 0 else max(1, int(round(f * n)))

    n_val, n_test = count(val_fraction), count(test_fraction)
    if n - n_val - n_test < 1:
        raise UserError(f"dataset.trajectories={n} leaves no training trajectory after "
                        f"{n_val} validation and {n_test} test trajectories")
    perm = rng.stream(seed, rng.Purpose.DATASET_SPLIT).permutation(n)
    return {"train": sorted(int(i) for i in perm[n_val + n_test:]),
            "val": sorted(int(i) for i in perm[:n_val]),
            "test": sorted(int(i) for i in perm[n_val:n_val + n_test])}


def training_runs(cfg: Config):
    """``(model, steps per stored state, spin-up steps)`` of the dataset's source."""
    d, m, o = cfg.dataset, cfg.model, cfg.osse
    if d.source == "model":
        return forecast_model(cfg), o.steps_per_cycle, d.spinup_steps
    if len(o.forcings) != 1:
        raise UserError(f"dataset.source=\"nature\" needs a single osse.forcings entry (the "
                        f"truth's F), got {o.forcings}")
    model = nature_model(cfg, o.forcings[0])
    clock = nature_clock(cfg)
    ratio = clock.steps_per_cycle / o.steps_per_cycle  # nature steps per forecast-model step
    return model, clock.steps_per_cycle, round(d.spinup_steps * ratio)


def simulate_trajectories(ids, model, spinup_steps: int, steps: int, seed: int,
                          every: int = 1) -> np.ndarray:
    """States ``(len(ids), steps, nx)`` of the trajectories ``ids``, one stored every
    ``every`` model steps (pure; the trajectories advance as one batch)."""
    x0 = np.stack([model.random_state(rng.stream(seed, rng.Purpose.DATASET_INITIAL, int(i)))
                   for i in ids])
    x = model.integrate(x0, spinup_steps)
    return np.moveaxis(model.trajectory(x, steps * every, every), 0, 1)


def partial_stats(states: np.ndarray) -> np.ndarray:
    """``[count, sum, sum of squares, min, max]`` of the values (combined across ranks)."""
    if states.size == 0:
        return np.array([0.0, 0.0, 0.0, np.inf, -np.inf])
    return np.array([states.size, states.sum(), np.square(states).sum(), states.min(),
                     states.max()], dtype=np.float64)


def run(args, cfg: Config, ctx) -> int:
    make_dataset(cfg, ctx)
    return 0


def make_dataset(cfg: Config, ctx) -> Path:
    """Write the dataset into the run directory ``ctx.path`` (shards over the ranks of
    ``ctx.comm``, then ``metadata.json``); returns the directory. Collective."""
    d, m = cfg.dataset, cfg.model
    comm = ctx.comm
    if ctx.env.world_size > comm.size and ctx.env.rank != 0:
        return ctx.path  # launched without MPI (e.g. torchrun): rank 0 alone builds it
    n = d.trajectories
    splits = split_trajectories(n, d.val_fraction, d.test_fraction, d.seed)
    n_shards = -(-n // d.shard_trajectories)
    first, last = block_range(n_shards, comm.size, comm.rank)
    model, every, spinup = training_runs(cfg)
    info = model.describe()
    forcing = info.get("forcing", m.forcing)
    interval = m.dt * cfg.osse.steps_per_cycle
    ctx.log.info("dataset: %d trajectories x %d states every %g time units of %s (%s, nx=%d, "
                 "F=%g), %d shards over %d rank(s) -> %s", n, d.steps, interval,
                 info["dynamics"], d.source, m.nx, forcing, n_shards, comm.size, ctx.path)
    train = set(splits["train"])
    stats = partial_stats(np.empty(0))
    attrs = dict(nx=m.nx, dt=m.dt, interval=interval, forcing=forcing, seed=d.seed,
                 spinup_steps=d.spinup_steps, data_source=d.source, dynamics=info["dynamics"],
                 **provenance(cfg))
    t0 = time.perf_counter()
    for s in range(first, last):
        ids = np.arange(s * d.shard_trajectories, min(n, (s + 1) * d.shard_trajectories))
        states = simulate_trajectories(ids, model, spinup, d.steps, d.seed, every)
        if not np.all(np.isfinite(states)):
            raise UserError(f"dataset: trajectory in shard {s} diverged (model.dt={m.dt} too "
                            "large?)")
        hdf5.write_shard(ctx.path / hdf5.shard_name(s), states, ids, interval, attrs)
        in_train = np.array([i in train for i in ids])
        stats = combine(stats, partial_stats(states[in_train]))
    counts = comm.allreduce(stats[:3].copy(), op="sum")
    lo = comm.allreduce(float(stats[3]), op="min")
    hi = comm.allreduce(float(stats[4]), op="max")
    comm.barrier()  # every shard is on disk before the metadata declares the dataset complete
    if comm.rank == 0:
        mean = counts[1] / counts[0]
        std = float(np.sqrt(max(counts[2] / counts[0] - mean ** 2, 0.0)))
        shards = [{"file": hdf5.shard_name(s),
                   "trajectories": list(range(s * d.shard_trajectories,
                                              min(n, (s + 1) * d.shard_trajectories)))}
                  for s in range(n_shards)]
        hdf5.write_metadata(ctx.path, {
            "nx": m.nx, "dt": m.dt, "interval": interval, "forcing": forcing, "seed": d.seed,
            "source": d.source, "dynamics": info,
            "spinup_steps": d.spinup_steps, "steps": d.steps, "trajectories": n,
            "obs": {"interval": cfg.osse.obs_interval, "sigma": cfg.osse.obs_sigma,
                    "note": "drawn afresh at training time"},
            "normalisation": {"min": lo, "max": hi, "mean": float(mean), "std": std,
                              "lo": lo, "hi": hi, "from": "train split"},
            "splits": splits, "shards": shards, "genenkf_version": __version__})
        ctx.log.info("wrote %d shards and %s in %.1f s (train/val/test trajectories: %d/%d/%d; "
                     "train range [%.3f, %.3f])", n_shards, hdf5.METADATA,
                     time.perf_counter() - t0, len(splits["train"]), len(splits["val"]),
                     len(splits["test"]), lo, hi)
    return ctx.path


def combine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([a[0] + b[0], a[1] + b[1], a[2] + b[2], min(a[3], b[3]), max(a[4], b[4])])

"""``genenkf nature``: nature runs for every F in ``osse.forcings`` and their observations.

Spin-up from a random state of the nature model (``[nature]``, by default the forecast model
with F_nature), then ``osse.cycles`` cycles of one cycle interval each, streamed to
``nature.nc`` in chunks, or kept in memory (:func:`make_nature` with no output directory: the
Python API's ``genenkf_hpc.nature(cfg)``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import osse
from ..config import Config
from ..dynamics.from_config import nature_clock, nature_model
from ..errors import UserError
from ..io.nature_file import NatureData, NatureMemory, NatureWriter
from ..io.provenance import provenance

HELP = "nature runs (truth) and noisy observations -> nature.nc"
NATURE_FILE = "nature.nc"


def add_arguments(parser) -> None:
    parser.add_argument("--chunk", type=int, default=256, help="cycles per write (memory bound)")


def nature_attrs(cfg: Config) -> dict:
    """File attributes: the cycle clock in forecast-model steps (what assimilation checks) and
    which dynamics made the truth."""
    return dict(dt=cfg.model.dt, steps_per_cycle=cfg.osse.steps_per_cycle,
                obs_interval=cfg.osse.obs_interval, obs_sigma=cfg.osse.obs_sigma,
                seed=cfg.osse.seed, spinup_steps=cfg.model.spinup_steps, nx=cfg.model.nx,
                nature_dynamics=cfg.nature.dynamics or cfg.model.dynamics,
                nature_dt=cfg.nature.dt or cfg.model.dt, **provenance(cfg))


def _observe_block(cfg: Config, forcings, first: int, truth: np.ndarray,
                   mask: np.ndarray) -> np.ndarray:
    """Observations ``(n, n_forcings, nx)`` of a truth block starting at cycle ``first``."""
    obs = np.empty_like(truth)
    for t in range(truth.shape[0]):
        for j, f in enumerate(forcings):
            obs[t, j] = osse.observe(truth[t, j], mask, cfg.osse.obs_sigma, cfg.osse.seed, f,
                                     first + t)
    return obs


def simulate_nature(cfg: Config, forcings, cycles: int | None = None, chunk: int = 256):
    """Yield ``(first_cycle, truth, obs)`` blocks ``(n, n_forcings, nx)``."""
    cycles = cfg.osse.cycles if cycles is None else cycles
    mask = osse.obs_mask(cfg.model.nx, cfg.osse.obs_interval)
    clock = nature_clock(cfg)
    models = [nature_model(cfg, f) for f in forcings]
    for first, truth in osse.nature_chunks(models, forcings, cfg.osse.seed, clock.spinup_steps,
                                           cycles, clock.steps_per_cycle, chunk):
        yield first, truth, _observe_block(cfg, forcings, first, truth, mask)


def nature_in_memory(cfg: Config, forcing: float, cycles: int | None = None) -> NatureData:
    """The same truth and observations as ``nature.nc`` would hold, without a file."""
    blocks = list(simulate_nature(cfg, [forcing], cycles))
    truth = np.concatenate([b[1][:, 0] for b in blocks])
    obs = np.concatenate([b[2][:, 0] for b in blocks])
    return NatureData(forcing=float(forcing), truth=truth, obs=obs,
                      mask=osse.obs_mask(cfg.model.nx, cfg.osse.obs_interval),
                      attrs=nature_attrs(cfg))


def make_nature(cfg: Config, out: Path | None, log, chunk: int = 256):
    """The nature runs of ``osse.forcings``: written to ``out/nature.nc`` (returns its path), or
    kept in memory when ``out`` is None (returns the ``xarray.Dataset`` the file would hold).
    Serial: rank 0 calls it."""
    _check_chunk(chunk)
    forcings = list(cfg.osse.forcings)
    mask = osse.obs_mask(cfg.model.nx, cfg.osse.obs_interval)
    layout = (forcings, cfg.model.nx, cfg.osse.cycles, mask, nature_attrs(cfg))
    writer = NatureMemory(*layout) if out is None else NatureWriter(out / NATURE_FILE, *layout)
    log.info("nature: F_nature=%s nx=%d cycles=%d obs every %d (sigma %g) -> %s",
             forcings, cfg.model.nx, cfg.osse.cycles, cfg.osse.obs_interval,
             cfg.osse.obs_sigma, "memory" if out is None else out / NATURE_FILE)
    try:
        for first, truth, obs in simulate_nature(cfg, forcings, chunk=chunk):
            writer.write(first, truth, obs)
    except BaseException:
        writer.abandon()  # a failed run leaves no complete-looking nature.nc
        raise
    result = writer.close()
    if out is not None:
        log.info("wrote %s", result)
    return result


def _check_chunk(chunk: int) -> None:
    if chunk < 1:
        raise UserError(f"--chunk={chunk}: must be >= 1")


def run(args, cfg: Config, ctx) -> int:
    _check_chunk(args.chunk)  # every rank: a bad argument is one collective error
    if ctx.is_main:  # nature runs are cheap and serial; other ranks have nothing to do
        make_nature(cfg, ctx.path, ctx.log, args.chunk)
    return 0

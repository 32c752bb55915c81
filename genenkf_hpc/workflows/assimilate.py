"""``genenkf assimilate``: cycle a DA method over every nature run -> analysis.nc, summary.json.

    genenkf assimilate -c configs/l96_standard.toml --method letkf [--nature nature.nc]
    mpiexec -n 4 genenkf assimilate ... --method etkf
    genenkf assimilate ... run.checkpoint_every=100        # restart files
    genenkf assimilate ... --out DIR --resume              # continue after a kill / SIGTERM

Truth and observations come from ``--nature FILE`` (a ``genenkf nature`` output) or are
generated in memory from the config, with the same numbers either way. With several
``osse.forcings`` every nature run gets a sub-directory ``forcing_<F>``.
:func:`run_assimilation` is the workflow; the command and ``genenkf_hpc.assimilate`` (which may
keep everything in memory) both call it.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

import numpy as np

from ..config import Config
from ..cycling.base import NatureInput
from ..cycling.driver import Outcome, assimilate_forcing
from ..cycling.registry import check_method_name, method_names
from ..cycling.signals import StopRequest
from ..errors import UserError
from ..io.nature_file import check_compatible, read_nature_forcing
from ..parallel.comm import run_on_root

HELP = "cycle a DA method -> analysis.nc, summary.json"


def add_arguments(parser) -> None:
    parser.add_argument("--method", default="letkf", type=_method_arg,
                        help="DA method: " + ", ".join(method_names()) + " (default letkf)")
    parser.add_argument("--nature", metavar="FILE",
                        help="nature.nc from `genenkf nature` (default: generate from the config)")
    parser.add_argument("--model", metavar="FILE",
                        help="trained diffusion checkpoint (for --method genenkf)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest restart in --out (skip finished forcings)")


def _method_arg(name: str) -> str:
    import argparse

    try:
        return check_method_name(name)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("--method ", "")) from None


def forcing_dirname(forcing: float) -> str:
    return f"forcing_{forcing:g}"


def run(args, cfg: Config, ctx) -> int:
    nature = Path(args.nature).resolve() if args.nature else None
    with StopRequest() as stop:
        outcomes = run_assimilation(cfg, args.method, ctx.path, comm=ctx.comm, log=ctx.log,
                                    nature=nature, model=args.model, resume=args.resume,
                                    stop=stop)
    if outcomes[-1].status == "stopped":
        if ctx.is_main:
            ctx.log.warning("%s", _stopped_message(outcomes[-1], ctx.path))
        return 0
    if ctx.is_main:
        for outcome in outcomes:
            ctx.log.info("%s", summary_line(outcome))
    return 0


def run_assimilation(cfg: Config, method: str, out: Path | None, *, comm, log, nature=None,
                     model: str | None = None, resume: bool = False,
                     stop: StopRequest | None = None) -> list[Outcome]:
    """Assimilate every nature run of ``osse.forcings`` with ``method``; collective.

    ``out``: the run directory (one sub-directory per forcing when there are several), or None
    to keep each run in memory (``Outcome.analysis`` on rank 0; no file is written).
    ``nature``: None (generated from the config), a nature file's path or an
    ``xarray.Dataset`` with its variables. ``model``: a diffusion checkpoint (genenkf). Stops
    after the forcing that ``stop`` interrupted (its outcome is the last, ``"stopped"``).
    """
    check_method_name(method)
    forcings = list(cfg.osse.forcings)
    log.info("assimilate: method=%s F_nature=%s members=%d cycles=%d ranks=%d -> %s",
             method, forcings, cfg.filter.members, cfg.osse.cycles, comm.size,
             "memory" if out is None else out)
    outcomes: list[Outcome] = []
    for forcing in forcings:
        path = None if out is None else out if len(forcings) == 1 \
            else out / forcing_dirname(forcing)
        data = load_nature(cfg, forcing, nature, comm)
        outcome = assimilate_forcing(cfg, method, data, path, comm, log, resume=resume,
                                     model_path=None if model is None else str(model),
                                     progress=cfg.run.progress, stop=stop)
        outcomes.append(outcome)
        if outcome.status == "stopped":
            break
        if comm.rank == 0:
            _warn_if_lost(outcome, log)
    return outcomes


def _warn_if_lost(outcome: Outcome, log) -> None:
    """An ensemble whose spread is far below its error has stopped following the truth (filter
    divergence in the DA sense: nothing explodes, so no error is raised)."""
    s = outcome.summary
    if s and s["members"] > 1 and s["spread"] < 0.2 * s["rmse"]:
        log.warning("F_nature=%g %s: spread %.3f << rmse %.3f, the filter lost track of the truth "
                    "(try more filter.inflation, filter.rtps or members)", s["forcing_nature"],
                    s["method"], s["spread"], s["rmse"])


def load_nature(cfg: Config, forcing: float, nature, comm) -> NatureInput:
    """Truth and observations on every rank: rank 0 reads (or generates) and checks them, then
    broadcasts the arrays (a bad file is one collective error, not R of them). ``nature``: None
    (generate from the config), a nature file's path, or an ``xarray.Dataset`` with its
    variables."""
    def read():
        if nature is None:
            from .nature import nature_in_memory

            data = nature_in_memory(cfg, forcing)
            finite = np.all(np.isfinite(data.truth)) and np.all(np.isfinite(data.obs[:, data.mask]))
            if not finite:
                raise UserError(f"the nature run for F_nature={forcing:g} is not finite: "
                                f"model.dt={cfg.model.dt} is too large for this forcing")
        else:
            data = read_nature_forcing(nature, forcing, cfg.osse.cycles, cfg.model.nx)
            check_compatible(data, cfg)
        return data

    data = run_on_root(comm, read)
    truth = comm.Bcast(data.truth if comm.rank == 0 else None)
    obs = comm.Bcast(data.obs if comm.rank == 0 else None)
    mask = comm.Bcast(data.mask if comm.rank == 0 else None).astype(bool)
    source = "generated from the config" if nature is None else \
        str(nature) if isinstance(nature, (str, Path)) else "an xarray.Dataset"
    return NatureInput(forcing=float(forcing), truth=truth, obs=obs, mask=mask, source=source)


def summary_line(outcome: Outcome) -> str:
    s = outcome.summary
    if s is None:
        return f"{outcome.path}: {outcome.status}"
    skipped = ", skipped: already complete" if outcome.status == "skipped" else ""
    return (f"F_nature={s['forcing_nature']:g} {s['method']}: rmse={s['rmse']:.4f} "
            f"spread={s['spread']:.4f} crps={s['crps']:.4f} ({s['cycles']} cycles, burn-in "
            f"{s['burn_in']}, {s['members']} members, {s['ranks']} ranks, "
            f"{s['wall_seconds']:.1f} s{skipped}) -> {outcome.path}")


def _stopped_message(outcome: Outcome, run_dir: Path) -> str:
    argv = list(sys.argv[1:]) or ["assimilate"]
    if "--out" not in argv and not any(a.startswith("--out=") for a in argv):
        argv += ["--out", str(run_dir)]
    if "--resume" not in argv:
        argv.append("--resume")
    launcher = "mpiexec -n N " if _under_mpi() else ""
    return (f"stopped by {outcome.signal_name} after cycle {outcome.cycle}; restart written to "
            f"{outcome.restart}\nresume with: {launcher}genenkf "
            + " ".join(shlex.quote(a) for a in argv))


def _under_mpi() -> bool:
    from ..parallel.environment import read_environment

    return read_environment().world_size > 1

"""The Python API, ``import genenkf_hpc as gk`` (README "Python API", CONTRACT section 9).

    cfg = gk.load_config("configs/tiny.toml", "osse.cycles=200")
    truth = gk.nature(cfg)                        # the variables of nature.nc, in memory
    ds = gk.assimilate(cfg, "letkf", nature=truth)
    ds.rmse.to_series()                           # time-mean RMSE per F_nature

Thin: every function validates its config as the command line does, sets up what the command
sets up (communicator, BLAS threads, and with an output directory ``config.toml``, ``log.txt``
and ``error.txt`` on failure) and calls the same workflow function as the command, so results
equal the CLI's. ``nature`` and ``assimilate`` write nothing unless ``out=DIR`` is given; the
commands whose products are files (``dataset``, ``train``, ``campaign``) write under ``out``
(default ``runs/<command>-<time>/``, as the CLI). Under ``mpiexec`` every rank calls the same
function: the work is spread over the ranks and every rank gets the full result; an exception
on some ranks only ends the whole job (as the CLI; launch scripts with ``python -m mpi4py``).
Bad input raises :class:`UserError` with the CLI's message.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from pathlib import Path

from . import config as _config
from . import logs
from .config import Config
from .dynamics import Dynamics, GridDynamics, dynamics_names, register_dynamics
from .errors import UserError

__all__ = ["Config", "Dynamics", "GridDynamics", "UserError", "assimilate", "campaign",
           "dataset", "dynamics_names", "load_config", "nature", "register_dynamics", "train"]


def load_config(path: str | Path | None = None, *overrides: str) -> Config:
    """The typed config: defaults, then the TOML file ``path``, then the CLI's
    ``"section.key=value"`` overrides (a list of them is accepted too), validated; a bad key or
    value raises :class:`UserError` naming it, with the CLI's message.

    >>> cfg = load_config(None, "model.nx=40", "osse.forcings=[8.0, 10.0]")
    """
    items: list = []
    for item in overrides:
        items.extend(item if isinstance(item, (list, tuple)) else [item])
    for item in items:
        if not isinstance(item, str):
            raise UserError(f"override {item!r}: expected a 'section.key=value' string")
    return _config.load_config(path, items)


def nature(cfg: Config | str | Path | None = None, *, out: str | Path | None = None):
    """Nature runs of every F in ``osse.forcings`` and their observations: an
    ``xarray.Dataset`` with exactly the variables, coordinates and attributes of ``nature.nc``
    (``truth``, ``obs`` ``(forcing, time, x)``, ``obs_mask (x)``). Written to ``out/nature.nc``
    only when ``out`` is given."""
    from .parallel.comm import run_on_root
    from .workflows.nature import make_nature

    cfg = _validated(cfg)
    with _session("nature", cfg, out) as ctx:
        made = run_on_root(ctx.comm, lambda: make_nature(cfg, ctx.path, ctx.log))
        return _share(ctx.comm, _load(made) if ctx.comm.rank == 0 and out is not None else made)


def assimilate(cfg: Config | str | Path | None = None, method: str = "letkf", nature=None,
               model: str | Path | None = None, out: str | Path | None = None, *,
               resume: bool = False):
    """Cycle ``method`` over the nature run of every F in ``osse.forcings``.

    ``nature``: None (truth and observations generated from the config, as the CLI without
    ``--nature``), a ``nature.nc`` path or the Dataset of :func:`nature`. ``model``: a diffusion
    checkpoint (``method="genenkf"``). ``out``: write what ``genenkf assimilate --out`` writes
    (``analysis.nc``, ``summary.json``, one sub-directory per forcing); without it nothing is
    written. ``resume`` continues an interrupted run in ``out``.

    Returns an ``xarray.Dataset``: the fields of ``analysis.nc`` with a ``forcing`` dimension,
    ``truth``, ``obs``, ``analysis_mean``, ``analysis_spread`` ``(forcing, time, x)``; its time
    series as ``rmse_series``, ``spread_series``, ``crps_series`` ``(forcing, time)``; the time
    means of ``summary.json`` (after the burn-in) as ``rmse``, ``spread``, ``spread_ratio``,
    ``crps``, ``wall_seconds`` ``(forcing)``; the run's settings and config as attributes.
    """
    from .cycling.registry import check_method_name
    from .io.analysis_file import ANALYSIS_FILE, forcing_dataset
    from .workflows.assimilate import run_assimilation

    cfg = _validated(cfg)
    check_method_name(method)
    with _session("assimilate", cfg, out) as ctx:
        outcomes = run_assimilation(cfg, method, ctx.path, comm=ctx.comm, log=ctx.log,
                                    nature=nature, model=model, resume=resume)
        result = None
        if ctx.comm.rank == 0:
            result = forcing_dataset([(o.analysis if o.analysis is not None
                                       else _load(o.path / ANALYSIS_FILE), o.summary)
                                      for o in outcomes])
        return _share(ctx.comm, result)


def dataset(cfg: Config | str | Path | None = None, out: str | Path | None = None) -> Path:
    """Training trajectories for the diffusion model (``genenkf dataset``): HDF5 shards and
    ``metadata.json`` in ``out``; returns that directory (the ``data`` of :func:`train`)."""
    from .workflows.dataset import make_dataset

    cfg = _validated(cfg)
    with _session("dataset", cfg, out, files=True) as ctx:
        return make_dataset(cfg, ctx)


def train(cfg: Config | str | Path | None = None, data: str | Path | None = None,
          out: str | Path | None = None, *, resume: bool = False, stop_at: int | None = None,
          eval_states: int = 16, eval_members: int = 32) -> Path:
    """Train the observation-conditioned diffusion model on ``data`` (a :func:`dataset`
    directory), as ``genenkf train``: one process, or DDP over the ranks of an ``mpiexec`` or
    ``torchrun`` launch. Writes ``checkpoints/``, ``loss.csv``, ``loss.png`` in ``out``;
    returns ``checkpoints/latest.pt`` (the ``model`` of :func:`assimilate`)."""
    from .workflows.train import TrainOptions, train_model

    cfg = _validated(cfg)
    opts = TrainOptions("" if data is None else str(data), resume, stop_at, eval_states,
                        eval_members)
    with _session("train", cfg, out, files=True) as ctx:
        return train_model(cfg, ctx, opts)


def campaign(cfg: Config | str | Path | None = None, out: str | Path | None = None, *,
             model: str | Path | None = None, nature=None, resume: bool = False):
    """Every method of ``campaign.methods`` for every F in ``osse.forcings`` on the same truth,
    as ``genenkf campaign`` (per-run directories, ``results.csv``, ``results.md`` and figures in
    ``out``). Returns the results table as an ``xarray.Dataset`` over ``(da_method, forcing)``
    (``rmse``, ``spread``, ``spread_ratio``, ``crps``, ``wall_seconds``, ...), e.g.
    ``table.rmse.sel(da_method="letkf")``."""
    from .workflows.campaign import run_campaign

    cfg = _validated(cfg)
    with _session("campaign", cfg, out, files=True) as ctx:
        rows = run_campaign(cfg, ctx, model=model, nature=nature, resume=resume)
        return _results_table(rows, ctx.path)


# ---------------------------------------------------------------------------------------------
# what the command line does around a workflow


def _validated(cfg) -> Config:
    """A validated copy of ``cfg``: a Config (possibly edited in place, so validated again), a
    TOML path, or None (the defaults)."""
    if cfg is None or isinstance(cfg, (str, Path)):
        return load_config(cfg)
    if not isinstance(cfg, Config):
        raise UserError(f"cfg={type(cfg).__name__}: expected a Config "
                        "(genenkf_hpc.load_config) or the path of a TOML config")
    return _config.config_from_dict(cfg.to_dict())


@contextlib.contextmanager
def _session(command: str, cfg: Config, out, files: bool = False):
    """The run context the CLI would build: the communicator, BLAS threads under a parallel
    launch, and the run directory when there is one (``files`` or ``out``). A failure leaves
    ``error.txt`` there; one raised on some ranks only ends the whole job, like the CLI."""
    from .io.rundir import RunContext, close_run, open_run, record_failure
    from .parallel.comm import world
    from .parallel.environment import read_environment, threads_per_process

    env = read_environment()
    comm = world()
    if env.world_size > 1:
        from .blas import set_threads

        set_threads(threads_per_process())  # ranks sharing a node: no oversubscribed BLAS
    log = logs.get_logger()
    level, ctx = log.level, None
    try:
        if files or out is not None:
            if level == logging.NOTSET:
                log.setLevel(logging.INFO)  # log.txt records what the command's records
            ctx = open_run(command, None if out is None else str(out), cfg, comm, env, log)
        else:
            ctx = RunContext(path=None, comm=comm, env=env, log=log, cfg=cfg)
        yield ctx
    except BaseException as exc:
        message = f"error: {exc}" if isinstance(exc, UserError) else traceback.format_exc()
        if ctx is not None and ctx.path is not None and ctx.is_main:
            record_failure(ctx.path, message)
        if comm.size > 1 and not getattr(exc, "collective", False):
            # The other ranks may be blocked in a collective: end the whole job, no hang.
            print(message.rstrip(), file=sys.stderr, flush=True)
            comm.abort(2 if isinstance(exc, UserError) else 1)
        raise
    finally:
        if ctx is not None:
            close_run(ctx)
        log.setLevel(level)


def _load(path: Path):
    """A netCDF output of this package, read into memory (rank 0)."""
    import xarray as xr

    with xr.open_dataset(path, engine="netcdf4") as ds:
        return ds.load()


def _share(comm, ds):
    """Rank 0's Dataset on every rank: the layout pickled, each numeric variable as one buffer
    broadcast (no pickle size limit on large fields)."""
    if comm.size == 1:
        return ds
    import xarray as xr

    root = comm.rank == 0
    layout = comm.bcast(({name: (var.dims, var.attrs, var.dtype.kind in "biuf")
                          for name, var in ds.variables.items()},
                         list(ds.coords), ds.attrs) if root else None)
    variables, coord_names, attrs = layout
    built = {}
    for name, (dims, var_attrs, numeric) in variables.items():
        values = ds.variables[name].values if root else None
        values = comm.Bcast(values) if numeric else comm.bcast(values)
        built[name] = xr.Variable(dims, values, var_attrs)
    if root:
        return ds
    coords = {name: built.pop(name) for name in coord_names}
    return xr.Dataset(built, coords=coords, attrs=attrs)


# Units and long names of the campaign table's columns.
_RESULT_ATTRS = {
    "rmse": ("1", "time-mean analysis RMSE after the burn-in"),
    "spread": ("1", "time-mean analysis spread after the burn-in"),
    "spread_ratio": ("1", "spread / rmse (1: well calibrated)"),
    "crps": ("1", "time-mean CRPS after the burn-in"),
    "wall_seconds": ("s", "wall-clock time of the run"),
    "seconds_per_cycle": ("s", "wall-clock time per cycle"),
    "model_steps_per_cycle": ("1", "forecast-model steps per cycle (all members)"),
    "network_evaluations_per_cycle": ("1", "diffusion network passes per cycle"),
    "settings": ("1", "the method's settings"),
    "da_method": ("1", "DA method (campaign label)"),
    "forcing": ("1", "forcing F of the nature run"),
    "seed": ("1", "seed of the OSSE"),
}


def _results_table(rows: list[dict], run_dir: Path):
    """The campaign's rows as a Dataset over (da_method, forcing[, seed]), in campaign order.
    results.csv's ``method`` column is the ``da_method`` dimension: xarray's ``sel`` and
    ``reindex`` take a ``method`` argument of their own."""
    import pandas as pd
    import xarray as xr

    frame = pd.DataFrame(rows).rename(columns={"forcing_nature": "forcing",
                                               "method": "da_method"})
    keys = [k for k in ("da_method", "forcing", "seed") if k in frame.columns]
    table = xr.Dataset.from_dataframe(frame.set_index(keys))
    table = table.reindex({"da_method": list(dict.fromkeys(frame["da_method"]))})
    for name in table.variables:
        units, long_name = _RESULT_ATTRS.get(name, ("1", name.replace("_", " ")))
        table[name].attrs.update(units=units, long_name=long_name)
    table.attrs["run_directory"] = str(run_dir)
    return table

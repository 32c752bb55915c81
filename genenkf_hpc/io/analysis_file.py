"""``analysis.nc`` and ``summary.json`` of ``genenkf assimilate`` (CONTRACT section 5).

``analysis.nc``: ``truth``, ``obs`` (NaN where not observed), ``analysis_mean``,
``analysis_spread`` ``(time, x)``; ``rmse``, ``spread``, ``crps`` ``(time)``; coordinates
``time`` (model time units) and ``x``; CF units/long_name on every variable.

Rank 0 streams the cycles into ``analysis.nc.partial`` and renames it when the run is complete.
The partial file is netCDF classic (64-bit offset): every variable has a fixed place in the file
and a write is an in-place update, so a run killed at any moment leaves the cycles synced before
its last restart intact and a resumed run simply continues writing (``resume=True``). (An HDF5
file killed while open can lose its metadata.) ``summary.json`` is written atomically and last.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from .atomic import partial_path, write_json

ANALYSIS_FILE = "analysis.nc"
SUMMARY_FILE = "summary.json"
FIELDS = ("truth", "obs", "analysis_mean", "analysis_spread")
SERIES = ("rmse", "spread", "crps")
_LONG_NAMES = {
    "truth": "true state (nature run)",
    "obs": "observation (NaN where not observed)",
    "analysis_mean": "analysis ensemble mean",
    "analysis_spread": "analysis ensemble standard deviation",
    "rmse": "root-mean-square error of the analysis mean against the truth",
    "spread": "sqrt of the grid-mean analysis ensemble variance",
    "crps": "continuous ranked probability score of the analysis ensemble (grid mean)",
}


class AnalysisWriter:
    """Write cycles ``first..first+n-1`` with :meth:`write`; :meth:`sync` makes them durable;
    :meth:`close` renames the partial file to ``analysis.nc``.

    With ``resume=True`` the existing ``analysis.nc.partial`` is reopened (it must match the
    grid and the number of cycles) and later writes overwrite whatever follows the restart.
    """

    def __init__(self, path: str | Path, nx: int, cycles: int, time: np.ndarray, attrs: dict,
                 resume: bool = False):
        import netCDF4

        self.path = Path(path)
        self.tmp = partial_path(self.path)
        if resume:
            if not self.tmp.is_file():
                raise UserError(f"cannot resume: {self.tmp} is missing (it holds the cycles "
                                "before the restart); run again without --resume")
            try:
                ds = netCDF4.Dataset(self.tmp, "a")
            except OSError as exc:
                raise UserError(f"cannot resume: {self.tmp} is not readable ({exc})") from None
            if (ds.dimensions["time"].size, ds.dimensions["x"].size) != (cycles, nx):
                ds.close()
                raise UserError(f"cannot resume: {self.tmp} has another grid or length than the "
                                "config; run again without --resume")
        else:
            self.tmp.unlink(missing_ok=True)
            ds = netCDF4.Dataset(self.tmp, "w", format="NETCDF3_64BIT_OFFSET")
            ds.createDimension("time", cycles)
            ds.createDimension("x", nx)
            _var(ds, "time", ("time",), "model time units", "model time of the analysis")[:] = time
            x = ds.createVariable("x", "i4", ("x",))
            x.units, x.long_name = "1", "grid point index"
            x[:] = np.arange(nx)
            for name in FIELDS:
                _var(ds, name, ("time", "x"), "1", _LONG_NAMES[name])
            for name in SERIES:
                _var(ds, name, ("time",), "1", _LONG_NAMES[name])
            ds.setncatts({k: _attr(v) for k, v in attrs.items()})
            ds.Conventions = "CF-1.8"
            ds.title = "genenkf_hpc analysis cycles"
        ds.set_auto_mask(False)
        self.ds = ds

    def write(self, first_cycle: int, fields: dict[str, np.ndarray],
              series: dict[str, np.ndarray]) -> None:
        """``fields[name]`` ``(n, nx)`` and ``series[name]`` ``(n,)`` for cycles from
        ``first_cycle`` (1-based)."""
        i = first_cycle - 1
        for name in FIELDS:
            block = fields[name]
            self.ds[name][i:i + block.shape[0], :] = block
        for name in SERIES:
            block = series[name]
            self.ds[name][i:i + block.shape[0]] = block

    def sync(self) -> None:
        self.ds.sync()

    def close(self) -> Path:
        self.ds.close()
        self.tmp.replace(self.path)
        return self.path

    def abandon(self, keep: bool) -> None:
        """Close without completing; ``keep`` the partial file when a restart refers to it."""
        if self.ds.isopen():
            self.ds.close()
        if not keep:
            self.tmp.unlink(missing_ok=True)


def _var(ds, name, dims, units, long_name):
    v = ds.createVariable(name, "f8", dims, fill_value=np.nan)
    v.units = units
    v.long_name = long_name
    return v


def _attr(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (list, tuple)):
        return np.asarray(value)
    return value


def read_analysis(path: str | Path) -> dict[str, np.ndarray]:
    """Every variable of an ``analysis.nc`` as numpy arrays (tests, reports)."""
    import netCDF4

    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        return {name: np.array(var[:]) for name, var in ds.variables.items()}


def write_summary(path: str | Path, summary: dict) -> None:
    write_json(path, summary)


def prepare_fresh_dir(path: str | Path) -> None:
    """Create ``path`` for a run starting at cycle 1 and remove an earlier run's results there,
    so nothing in it looks complete until this run completes."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output directory {path} ({exc.strerror})") from None
    for name in (SUMMARY_FILE, ANALYSIS_FILE):
        (path / name).unlink(missing_ok=True)
        partial_path(path / name).unlink(missing_ok=True)

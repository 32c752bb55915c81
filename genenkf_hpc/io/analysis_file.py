"""``analysis.nc`` and ``summary.json`` of ``genenkf assimilate`` (CONTRACT section 5).

``analysis.nc``: ``truth``, ``obs`` (NaN where not observed), ``analysis_mean``,
``analysis_spread`` ``(time, x)``; ``rmse``, ``spread``, ``crps`` ``(time)``; coordinates
``time`` (model time units) and ``x``; CF units/long_name on every variable; the run's settings
and provenance (config, package version) as attributes.

Rank 0 streams the cycles into ``analysis.nc.partial`` and renames it when the run is complete.
The partial file is netCDF classic (64-bit offset): every variable has a fixed place in the file
and a write is an in-place update, so a run killed at any moment leaves the cycles synced before
its last restart intact and a resumed run simply continues writing (``resume=True``). (An HDF5
file killed while open can lose its metadata.) ``summary.json`` is written atomically and last.
:class:`AnalysisMemory` is the writer's in-memory twin (``genenkf_hpc.assimilate`` without
``out``): the same interface, no file, an ``xarray.Dataset`` at the end;
:func:`forcing_dataset` stacks the runs of several F_nature with their summaries.
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
COORDS = {"time": ("model time units", "model time of the analysis"),
          "x": ("1", "grid point index")}
FILE_ATTRS = {"Conventions": "CF-1.8", "title": "genenkf_hpc analysis cycles"}
_LONG_NAMES = {
    "truth": "true state (nature run)",
    "obs": "observation (NaN where not observed)",
    "analysis_mean": "analysis ensemble mean",
    "analysis_spread": "analysis ensemble standard deviation",
    "rmse": "RMSE of the analysis mean against the truth",
    "spread": "analysis spread (sqrt of the grid-mean ensemble variance)",
    "crps": "CRPS of the analysis ensemble (grid mean)",
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
            _var(ds, "time", ("time",), *COORDS["time"])[:] = time
            x = ds.createVariable("x", "i4", ("x",))
            x.units, x.long_name = COORDS["x"]
            x[:] = np.arange(nx)
            for name in FIELDS:
                _var(ds, name, ("time", "x"), "1", _LONG_NAMES[name])
            for name in SERIES:
                _var(ds, name, ("time",), "1", _LONG_NAMES[name])
            ds.setncatts(file_attrs(attrs))
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


class AnalysisMemory:
    """:class:`AnalysisWriter`'s in-memory twin: the same ``write``/``sync``/``close``/
    ``abandon``; ``close()`` returns the ``xarray.Dataset`` that ``xarray.open_dataset`` of the
    file would give (same variables, dtypes and attributes). Writes no file."""

    def __init__(self, nx: int, cycles: int, time: np.ndarray, attrs: dict):
        self.time = np.asarray(time, dtype="f8")
        self.attrs = file_attrs(attrs)
        self.fields = {name: np.full((cycles, nx), np.nan) for name in FIELDS}
        self.series = {name: np.full(cycles, np.nan) for name in SERIES}

    def write(self, first_cycle: int, fields: dict[str, np.ndarray],
              series: dict[str, np.ndarray]) -> None:
        i = first_cycle - 1
        for name in FIELDS:
            self.fields[name][i:i + fields[name].shape[0]] = fields[name]
        for name in SERIES:
            self.series[name][i:i + series[name].shape[0]] = series[name]

    def sync(self) -> None:
        pass

    def close(self):
        import xarray as xr

        nx = next(iter(self.fields.values())).shape[1]
        coords = {"time": ("time", self.time, _cf(*COORDS["time"])),
                  "x": ("x", np.arange(nx, dtype="i4"), _cf(*COORDS["x"]))}
        variables = {**{name: (("time", "x"), values, _cf("1", _LONG_NAMES[name]))
                        for name, values in self.fields.items()},
                     **{name: (("time",), values, _cf("1", _LONG_NAMES[name]))
                        for name, values in self.series.items()}}
        return xr.Dataset(variables, coords=coords, attrs=self.attrs)

    def abandon(self, keep: bool) -> None:
        self.fields.clear()


def open_writer(directory: Path | None, nx: int, cycles: int, time: np.ndarray, attrs: dict,
                resume: bool = False):
    """The writer of one run: ``directory/analysis.nc``, or in memory when ``directory`` is
    None."""
    if directory is None:
        return AnalysisMemory(nx, cycles, time, attrs)
    return AnalysisWriter(Path(directory) / ANALYSIS_FILE, nx, cycles, time, attrs,
                          resume=resume)


def file_attrs(attrs: dict) -> dict:
    """The global attributes as netCDF stores them (booleans as 0/1, lists as arrays)."""
    return {**{k: _attr(v) for k, v in attrs.items()}, **FILE_ATTRS}


def _cf(units: str, long_name: str) -> dict:
    return {"units": units, "long_name": long_name}


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


# The time means of summary.json, per forcing, in the Dataset of genenkf_hpc.assimilate.
SUMMARY_MEANS = {
    "rmse": ("1", "time mean after the burn-in of the analysis RMSE (summary.json rmse)"),
    "spread": ("1", "time mean after the burn-in of the analysis spread (summary.json spread)"),
    "spread_ratio": ("1", "spread / rmse of the time means (1: well calibrated)"),
    "crps": ("1", "time mean after the burn-in of the CRPS (summary.json crps)"),
    "wall_seconds": ("s", "wall-clock time of the run"),
}


def forcing_dataset(runs) -> "xarray.Dataset":
    """One Dataset for the runs of several F_nature: ``runs`` is ``[(analysis Dataset, summary
    dict), ...]``, one per forcing.

    The fields of ``analysis.nc`` gain a leading ``forcing`` dimension ``(forcing, time, x)``;
    its time series become ``rmse_series``, ``spread_series``, ``crps_series``
    ``(forcing, time)``, since ``rmse``, ``spread``, ``spread_ratio``, ``crps`` and
    ``wall_seconds`` ``(forcing)`` are the time means of ``summary.json``. The attributes are the
    files' (the same for every forcing) less ``forcing_nature``, which is the coordinate.
    """
    import xarray as xr

    from .nature_file import SCHEMA

    parts = []
    for ds, summary in runs:
        ds = ds.rename({name: f"{name}_series" for name in SERIES})
        ds.attrs = {k: v for k, v in ds.attrs.items() if k != "forcing_nature"}
        for name, (units, long_name) in SUMMARY_MEANS.items():
            value = summary.get(name)
            ds[name] = xr.Variable((), np.nan if value is None else float(value),
                                   _cf(units, long_name))
        parts.append(ds.expand_dims(forcing=[float(summary["forcing_nature"])]))
    out = xr.concat(parts, dim="forcing", data_vars="all", coords="minimal", join="exact",
                    combine_attrs="override")
    _, _, units, long_name = SCHEMA["forcing"]
    out["forcing"].attrs = _cf(units, long_name)
    return out

"""``nature.nc``: truth and observations of the nature runs (CONTRACT section 5).

Variables ``truth(forcing, time, x)``, ``obs(forcing, time, x)`` (NaN where not observed),
``obs_mask(x)``; coordinates ``forcing``, ``time`` (model time units), ``x``; attributes dt,
obs_interval, obs_sigma, seed. Written with netCDF4 chunk by chunk in time under a temporary
name and renamed when complete; read with xarray.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .atomic import partial_path

NATURE_VARIABLES = ("truth", "obs", "obs_mask")


class NatureWriter:
    """Stream a nature file: ``write(first_cycle, truth, obs)`` blocks, then ``close()``.

    Until ``close()`` succeeds the data live in ``nature.nc.partial``; an exception inside a
    ``with`` block removes it, so a failed run leaves no complete-looking ``nature.nc``.
    """

    def __init__(self, path: str | Path, forcings, nx: int, cycles: int, mask: np.ndarray,
                 attrs: dict):
        import netCDF4

        self.path = Path(path)
        self.tmp = partial_path(self.path)
        dt = attrs["dt"] * attrs.get("steps_per_cycle", 1)
        ds = netCDF4.Dataset(self.tmp, "w", format="NETCDF4")
        ds.createDimension("forcing", len(forcings))
        ds.createDimension("time", cycles)
        ds.createDimension("x", nx)
        chunks = (1, min(cycles, 256), nx)
        _var(ds, "forcing", "f8", ("forcing",), "1", "forcing F of the nature run")[:] = forcings
        _var(ds, "time", "f8", ("time",), "model time units",
             "model time of the analysis cycle")[:] = dt * np.arange(1, cycles + 1)
        _var(ds, "x", "i4", ("x",), "1", "grid point index")[:] = np.arange(nx)
        _var(ds, "truth", "f8", ("forcing", "time", "x"), "1", "true state (nature run)",
             chunks=chunks)
        _var(ds, "obs", "f8", ("forcing", "time", "x"), "1",
             "observation of the truth (NaN where not observed)", chunks=chunks, fill=np.nan)
        m = _var(ds, "obs_mask", "i1", ("x",), "1", "1 where the grid point is observed")
        m.flag_values = np.array([0, 1], dtype="i1")
        m.flag_meanings = "unobserved observed"
        m[:] = mask.astype("i1")
        ds.setncatts({k: v for k, v in attrs.items()})
        ds.Conventions = "CF-1.8"
        ds.title = "genenkf_hpc nature runs and observations"
        self.ds = ds

    def write(self, first_cycle: int, truth: np.ndarray, obs: np.ndarray) -> None:
        """``truth``, ``obs``: ``(n, n_forcings, nx)`` for cycles first_cycle..first_cycle+n-1."""
        i = first_cycle - 1
        self.ds["truth"][:, i:i + truth.shape[0], :] = np.moveaxis(truth, 0, 1)
        self.ds["obs"][:, i:i + obs.shape[0], :] = np.moveaxis(obs, 0, 1)

    def close(self) -> None:
        self.ds.close()
        os.replace(self.tmp, self.path)

    def abandon(self) -> None:
        if self.ds.isopen():
            self.ds.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abandon()
        return False


def _var(ds, name, dtype, dims, units, long_name, chunks=None, fill=None):
    kwargs = dict(zlib=True, complevel=1, chunksizes=chunks) if chunks else {}
    v = ds.createVariable(name, dtype, dims, fill_value=fill, **kwargs)
    v.units = units
    v.long_name = long_name
    return v


@dataclass
class NatureData:
    """One forcing's truth and observations, validated; arrays ``(cycles, nx)``."""

    forcing: float
    truth: np.ndarray
    obs: np.ndarray
    mask: np.ndarray
    attrs: dict


def open_nature(path: str | Path):
    """Open and check a nature file; returns the xarray Dataset (lazy)."""
    import xarray as xr

    path = Path(path)
    if not path.is_file():
        raise UserError(f"nature file {path} does not exist")
    try:
        ds = xr.open_dataset(path, engine="netcdf4")
    except Exception as exc:  # netCDF4/HDF5 raise several types for a non-netCDF file
        raise UserError(f"nature file {path} is not a readable netCDF file ({exc})") from None
    missing = [v for v in NATURE_VARIABLES if v not in ds.variables]
    if missing:
        ds.close()
        raise UserError(f"nature file {path} lacks variable(s) {', '.join(missing)}: "
                        "expected a `genenkf nature` output")
    for name in ("truth", "obs"):
        if ds[name].dims != ("forcing", "time", "x"):
            ds.close()
            raise UserError(f"nature file {path}: {name} has dims {ds[name].dims}, "
                            "expected (forcing, time, x)")
    return ds


def read_nature_forcing(path: str | Path, forcing: float, cycles: int, nx: int) -> NatureData:
    """The first ``cycles`` cycles of the nature run with F = ``forcing``, checked against the
    experiment's grid and length."""
    path = Path(path)
    ds = open_nature(path)
    with ds:
        if ds.sizes["x"] != nx:
            raise UserError(f"nature file {path} has {ds.sizes['x']} grid points but "
                            f"model.nx={nx}")
        if ds.sizes["time"] < cycles:
            raise UserError(f"nature file {path} has {ds.sizes['time']} cycles but "
                            f"osse.cycles={cycles}")
        forcings = np.asarray(ds["forcing"].values, dtype=float)
        match = np.flatnonzero(np.isclose(forcings, forcing))
        if match.size == 0:
            raise UserError(f"nature file {path} has no nature run with forcing {forcing} "
                            f"(it has {', '.join(map(str, forcings))})")
        i = int(match[0])
        truth = np.asarray(ds["truth"][i, :cycles].values, dtype=np.float64)
        obs = np.asarray(ds["obs"][i, :cycles].values, dtype=np.float64)
        mask = np.asarray(ds["obs_mask"].values).astype(bool)
        attrs = dict(ds.attrs)
    if not np.all(np.isfinite(truth)):
        raise UserError(f"nature file {path}: truth for forcing {forcing} contains NaN/Inf")
    if not np.all(np.isfinite(obs[:, mask])):
        bad = int(np.argwhere(~np.isfinite(obs[:, mask]))[0, 0]) + 1
        raise UserError(f"nature file {path}: obs for forcing {forcing} has NaN/Inf at an "
                        f"observed point in cycle {bad}")
    return NatureData(forcing=float(forcings[i]), truth=truth, obs=obs, mask=mask, attrs=attrs)


def check_compatible(data: NatureData, path: str | Path, cfg) -> None:
    """The nature run must match the experiment: the model time step between cycles, the
    observed points and the observation error the filter assumes. Each mismatch names the key."""
    attrs = data.attrs
    dt = float(attrs.get("dt", cfg.model.dt)) * int(attrs.get("steps_per_cycle", 1))
    want = cfg.model.dt * cfg.osse.steps_per_cycle
    if "dt" in attrs and not np.isclose(dt, want, rtol=1e-12, atol=0.0):
        raise UserError(f"nature file {path} has {dt:g} model time units between cycles but "
                        f"model.dt * osse.steps_per_cycle = {want:g}")
    from ..osse import obs_mask

    expected = obs_mask(cfg.model.nx, cfg.osse.obs_interval)
    if not np.array_equal(data.mask, expected):
        interval = attrs.get("obs_interval", "?")
        raise UserError(f"nature file {path} observes other grid points (obs_interval="
                        f"{interval}) than osse.obs_interval={cfg.osse.obs_interval}")
    if "obs_sigma" in attrs and not np.isclose(float(attrs["obs_sigma"]), cfg.osse.obs_sigma):
        raise UserError(f"nature file {path} has obs_sigma={float(attrs['obs_sigma']):g} but "
                        f"osse.obs_sigma={cfg.osse.obs_sigma:g}")

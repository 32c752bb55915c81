"""``nature.nc``: truth and observations of the nature runs (CONTRACT section 5).

Variables ``truth(forcing, time, x)``, ``obs(forcing, time, x)`` (NaN where not observed),
``obs_mask(x)``; coordinates ``forcing``, ``time`` (model time units), ``x``; each with CF
``units`` and ``long_name``; attributes dt, obs_interval, obs_sigma, seed and the provenance
(config, package version). :class:`NatureWriter` streams the file with netCDF4 chunk by chunk
in time under a temporary name and renames it when complete; :class:`NatureMemory` has the same
interface and builds the same ``xarray.Dataset`` in memory (``genenkf_hpc.nature(cfg)``).
Readers accept either the file or such a Dataset.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .atomic import partial_path

NATURE_VARIABLES = ("truth", "obs", "obs_mask")
FIELD_DIMS = ("forcing", "time", "x")
# name -> (dims, dtype, units, long_name); coordinates first, the order of the file
SCHEMA = {
    "forcing": (("forcing",), "f8", "1", "forcing F of the nature run"),
    "time": (("time",), "f8", "model time units", "model time of the analysis cycle"),
    "x": (("x",), "i4", "1", "grid point index"),
    "truth": (FIELD_DIMS, "f8", "1", "true state (nature run)"),
    "obs": (FIELD_DIMS, "f8", "1", "observation of the truth (NaN where not observed)"),
    "obs_mask": (("x",), "i1", "1", "1 where the grid point is observed"),
}
MASK_FLAGS = {"flag_values": np.array([0, 1], dtype="i1"), "flag_meanings": "unobserved observed"}
FILE_ATTRS = {"Conventions": "CF-1.8", "title": "genenkf_hpc nature runs and observations"}


def _fixed_values(forcings, nx: int, cycles: int, mask: np.ndarray, attrs: dict) -> dict:
    """The coordinates and the mask, as stored."""
    dt = attrs["dt"] * attrs.get("steps_per_cycle", 1)
    return {"forcing": np.asarray(forcings, dtype="f8"),
            "time": dt * np.arange(1, cycles + 1, dtype="f8"),
            "x": np.arange(nx, dtype="i4"), "obs_mask": np.asarray(mask).astype("i1")}


def _variable_attrs(name: str) -> dict:
    _, _, units, long_name = SCHEMA[name]
    extra = MASK_FLAGS if name == "obs_mask" else {}
    return {"units": units, "long_name": long_name, **extra}


class _Stream:
    """``with`` a writer: ``close()`` on success, ``abandon()`` on an exception."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abandon()
        return False


class NatureWriter(_Stream):
    """Stream a nature file: ``write(first_cycle, truth, obs)`` blocks, then ``close()``.

    Until ``close()`` succeeds the data live in ``nature.nc.partial``; an exception inside a
    ``with`` block removes it, so a failed run leaves no complete-looking ``nature.nc``.
    """

    def __init__(self, path: str | Path, forcings, nx: int, cycles: int, mask: np.ndarray,
                 attrs: dict):
        import netCDF4

        self.path = Path(path)
        self.tmp = partial_path(self.path)
        ds = netCDF4.Dataset(self.tmp, "w", format="NETCDF4")
        ds.createDimension("forcing", len(forcings))
        ds.createDimension("time", cycles)
        ds.createDimension("x", nx)
        fixed = _fixed_values(forcings, nx, cycles, mask, attrs)
        for name, (dims, dtype, _, _) in SCHEMA.items():
            field = dims == FIELD_DIMS
            kwargs = dict(zlib=True, complevel=1, chunksizes=(1, min(cycles, 256), nx)) \
                if field else {}
            v = ds.createVariable(name, dtype, dims, fill_value=np.nan if name == "obs" else None,
                                  **kwargs)
            v.setncatts(_variable_attrs(name))
            if name in fixed:
                v[:] = fixed[name]
        ds.setncatts({**attrs, **FILE_ATTRS})
        self.ds = ds

    def write(self, first_cycle: int, truth: np.ndarray, obs: np.ndarray) -> None:
        """``truth``, ``obs``: ``(n, n_forcings, nx)`` for cycles first_cycle..first_cycle+n-1."""
        i = first_cycle - 1
        self.ds["truth"][:, i:i + truth.shape[0], :] = np.moveaxis(truth, 0, 1)
        self.ds["obs"][:, i:i + obs.shape[0], :] = np.moveaxis(obs, 0, 1)

    def close(self) -> Path:
        self.ds.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abandon(self) -> None:
        if self.ds.isopen():
            self.ds.close()
        self.tmp.unlink(missing_ok=True)


class NatureMemory(_Stream):
    """The in-memory twin of :class:`NatureWriter` (no file): ``close()`` returns the
    ``xarray.Dataset`` that ``xarray.open_dataset`` of the file would give."""

    def __init__(self, forcings, nx: int, cycles: int, mask: np.ndarray, attrs: dict):
        self.fixed = _fixed_values(forcings, nx, cycles, mask, attrs)
        self.attrs = {**attrs, **FILE_ATTRS}
        shape = (len(forcings), cycles, nx)
        self.fields = {"truth": np.full(shape, np.nan), "obs": np.full(shape, np.nan)}

    def write(self, first_cycle: int, truth: np.ndarray, obs: np.ndarray) -> None:
        i = first_cycle - 1
        self.fields["truth"][:, i:i + truth.shape[0]] = np.moveaxis(truth, 0, 1)
        self.fields["obs"][:, i:i + obs.shape[0]] = np.moveaxis(obs, 0, 1)

    def close(self):
        import xarray as xr

        values = {**self.fixed, **self.fields}
        variables = {name: xr.Variable(dims, values[name], _variable_attrs(name))
                     for name, (dims, _, _, _) in SCHEMA.items()}
        coords = {name: variables.pop(name) for name in ("forcing", "time", "x")}
        return xr.Dataset(variables, coords=coords, attrs=self.attrs)

    def abandon(self) -> None:
        self.fields.clear()


@dataclass
class NatureData:
    """One forcing's truth and observations, validated; arrays ``(cycles, nx)``. ``label`` names
    where they came from in messages (``nature file PATH`` or ``nature Dataset``)."""

    forcing: float
    truth: np.ndarray
    obs: np.ndarray
    mask: np.ndarray
    attrs: dict
    label: str = "nature run"


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
    try:
        check_nature_variables(ds, f"nature file {path}")
    except UserError:
        ds.close()
        raise
    return ds


def check_nature_variables(ds, label: str) -> None:
    """The variables and dimensions of a nature run (a file or an in-memory Dataset)."""
    missing = [v for v in NATURE_VARIABLES if v not in ds.variables]
    if missing:
        raise UserError(f"{label} lacks variable(s) {', '.join(missing)}: "
                        "expected a `genenkf nature` output")
    for name in ("truth", "obs"):
        if ds[name].dims != FIELD_DIMS:
            raise UserError(f"{label}: {name} has dims {ds[name].dims}, "
                            "expected (forcing, time, x)")


def read_nature_forcing(nature, forcing: float, cycles: int, nx: int) -> NatureData:
    """The first ``cycles`` cycles of the nature run with F = ``forcing``, checked against the
    experiment's grid and length. ``nature``: a nature file's path, or an ``xarray.Dataset``
    with its variables (``genenkf_hpc.nature(cfg)``)."""
    if isinstance(nature, (str, Path)):
        label = f"nature file {Path(nature)}"
        with open_nature(nature) as ds:
            return _forcing_from(ds, label, forcing, cycles, nx)
    import xarray as xr

    if not isinstance(nature, xr.Dataset):
        raise UserError(f"nature={type(nature).__name__}: expected the path of a nature.nc or "
                        "an xarray.Dataset from genenkf_hpc.nature(cfg)")
    check_nature_variables(nature, "nature Dataset")
    return _forcing_from(nature, "nature Dataset", forcing, cycles, nx)


def _forcing_from(ds, label: str, forcing: float, cycles: int, nx: int) -> NatureData:
    if ds.sizes["x"] != nx:
        raise UserError(f"{label} has {ds.sizes['x']} grid points but model.nx={nx}")
    if ds.sizes["time"] < cycles:
        raise UserError(f"{label} has {ds.sizes['time']} cycles but osse.cycles={cycles}")
    forcings = np.asarray(ds["forcing"].values, dtype=float)
    match = np.flatnonzero(np.isclose(forcings, forcing))
    if match.size == 0:
        raise UserError(f"{label} has no nature run with forcing {forcing} "
                        f"(it has {', '.join(map(str, forcings))})")
    i = int(match[0])
    truth = np.array(ds["truth"][i, :cycles].values, dtype=np.float64)
    obs = np.array(ds["obs"][i, :cycles].values, dtype=np.float64)
    mask = np.asarray(ds["obs_mask"].values).astype(bool)
    if not np.all(np.isfinite(truth)):
        raise UserError(f"{label}: truth for forcing {forcing} contains NaN/Inf")
    if not np.all(np.isfinite(obs[:, mask])):
        bad = int(np.argwhere(~np.isfinite(obs[:, mask]))[0, 0]) + 1
        raise UserError(f"{label}: obs for forcing {forcing} has NaN/Inf at an "
                        f"observed point in cycle {bad}")
    return NatureData(forcing=float(forcings[i]), truth=truth, obs=obs, mask=mask,
                      attrs=dict(ds.attrs), label=label)


def check_compatible(data: NatureData, cfg) -> None:
    """The nature run must match the experiment: the model time step between cycles, the
    observed points and the observation error the filter assumes. Each mismatch names the key."""
    attrs, label = data.attrs, data.label
    dt = float(attrs.get("dt", cfg.model.dt)) * int(attrs.get("steps_per_cycle", 1))
    want = cfg.model.dt * cfg.osse.steps_per_cycle
    if "dt" in attrs and not np.isclose(dt, want, rtol=1e-12, atol=0.0):
        raise UserError(f"{label} has {dt:g} model time units between cycles but "
                        f"model.dt * osse.steps_per_cycle = {want:g}")
    from ..osse import obs_mask

    expected = obs_mask(cfg.model.nx, cfg.osse.obs_interval)
    if not np.array_equal(data.mask, expected):
        interval = attrs.get("obs_interval", "?")
        raise UserError(f"{label} observes other grid points (obs_interval="
                        f"{interval}) than osse.obs_interval={cfg.osse.obs_interval}")
    if "obs_sigma" in attrs and not np.isclose(float(attrs["obs_sigma"]), cfg.osse.obs_sigma):
        raise UserError(f"{label} has obs_sigma={float(attrs['obs_sigma']):g} but "
                        f"osse.obs_sigma={cfg.osse.obs_sigma:g}")

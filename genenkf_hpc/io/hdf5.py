"""Diffusion training data on disk: HDF5 shards of trajectories plus ``metadata.json``.

Layout of a ``genenkf dataset`` directory::

    metadata.json          written last: its presence marks a complete dataset
    shard_00000.h5 ...     states (trajectory, time, x) float64, chunked + gzip, with the
                           coordinates trajectory (global ids), time, x as HDF5 dimension
                           scales, so ``xarray.open_dataset(shard)`` reads it as netCDF-4

``metadata.json`` holds nx, dt, forcing, seed, spin-up, the observation settings, the shards
with the trajectory ids each holds, the split lists (train / val / test trajectory ids: the
split is by trajectory, never by time step) and the normalisation statistics of the training
trajectories. Every variable of a shard has CF ``units`` and ``long_name``; the shard's
attributes hold the dataset settings and the provenance (config, package version). Every file
is written under a temporary name and renamed when complete.
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from ..errors import UserError
from .atomic import atomic_path, write_json

METADATA = "metadata.json"
FORMAT = "genenkf-dataset/1"


def shard_name(index: int) -> str:
    return f"shard_{index:05d}.h5"


# name -> (units, long_name) of a shard's variables
SHARD_VARIABLES = {
    "states": ("1", "model state seen by data assimilation"),
    "trajectory": ("1", "global trajectory index"),
    "time": ("model time units", "model time after the spin-up"),
    "x": ("1", "grid point index"),
}


def write_shard(path: str | Path, states: np.ndarray, trajectories: np.ndarray,
                interval: float, attrs: dict) -> None:
    """Write ``states (n, steps, nx)`` of global trajectory ids ``trajectories (n,)``, stored
    every ``interval`` model time units after the spin-up."""
    states = np.asarray(states, dtype=np.float64)
    n, steps, nx = states.shape
    coords = {"trajectory": np.asarray(trajectories, dtype=np.int64),
              "time": interval * np.arange(1, steps + 1, dtype=np.float64),
              "x": np.arange(nx, dtype=np.int32)}
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as fh:
            data = fh.create_dataset("states", data=states, chunks=(1, min(steps, 1024), nx),
                                     compression="gzip", compression_opts=4, shuffle=True)
            for axis, (name, values) in enumerate(coords.items()):
                scale = fh.create_dataset(name, data=values)
                scale.make_scale(name)
                data.dims[axis].attach_scale(scale)
            for name, (units, long_name) in SHARD_VARIABLES.items():
                fh[name].attrs["units"] = units
                fh[name].attrs["long_name"] = long_name
            for key, value in attrs.items():
                fh.attrs[key] = value


def read_shard(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(trajectory ids (n,), states (n, steps, nx))`` of one shard."""
    try:
        with h5py.File(path, "r") as fh:
            return fh["trajectory"][...], fh["states"][...]
    except (OSError, KeyError) as exc:
        raise UserError(f"dataset shard {path}: unreadable ({exc})") from None


def write_metadata(directory: str | Path, meta: dict) -> None:
    write_json(Path(directory) / METADATA, {"format": FORMAT, **meta})


def read_metadata(directory: str | Path) -> dict:
    """The metadata of a complete dataset directory (UserError naming the path otherwise)."""
    path = Path(directory) / METADATA
    if not Path(directory).is_dir():
        raise UserError(f"--data {directory}: not a directory")
    if not path.is_file():
        raise UserError(f"--data {directory}: no {METADATA} (not a complete genenkf dataset "
                        "output)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path}: not a {FORMAT} metadata file")
    return meta


def load_trajectories(directory: str | Path, meta: dict, ids) -> np.ndarray:
    """States ``(len(ids), steps, nx)`` float64 of the given global trajectory ids, in order."""
    ids = [int(i) for i in ids]
    wanted = set(ids)
    found: dict[int, np.ndarray] = {}
    for shard in meta["shards"]:
        if wanted.isdisjoint(shard["trajectories"]):
            continue
        traj, states = read_shard(Path(directory) / shard["file"])
        for j, t in enumerate(traj):
            if int(t) in wanted:
                found[int(t)] = states[j]
    missing = wanted - set(found)
    if missing:
        raise UserError(f"dataset {directory}: trajectories {sorted(missing)[:5]} missing from "
                        "its shards")
    if not ids:
        return np.empty((0, int(meta["steps"]), int(meta["nx"])))
    return np.stack([found[i] for i in ids])

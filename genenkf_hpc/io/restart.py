"""Restart files of ``genenkf assimilate``: ``restart/restart_<cycle 8 digits>.npz``.

A restart holds the full cycling state after a cycle: the ensemble ``(k, nx)`` (gathered from
the member blocks, so a run may resume on another rank count) or the simulation ``(nx,)``, the
observation history, the time series written so far and metadata (method, cycle, output
position, config fingerprint) as JSON text. No RNG state is needed: every random stream is
derived from ``(seed, purpose, member, cycle)`` and the cycle index is stored. Written
atomically (temp + fsync + rename) by rank 0; the last ``keep`` files are kept. Read with
``allow_pickle=False``: a restart cannot execute anything.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from ..errors import UserError
from .atomic import atomic_path

RESTART_DIR = "restart"
FORMAT_VERSION = 1
_NAME = re.compile(r"^restart_(\d{8})\.npz$")


def restart_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / RESTART_DIR


def restart_path(run_dir: str | Path, cycle: int) -> Path:
    return restart_dir(run_dir) / f"restart_{cycle:08d}.npz"


def list_restarts(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``(cycle, path)`` of every complete restart file, oldest first."""
    folder = restart_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def latest_restart(run_dir: str | Path) -> Path | None:
    found = list_restarts(run_dir)
    return found[-1][1] if found else None


def write_restart(run_dir: str | Path, cycle: int, arrays: dict[str, np.ndarray], meta: dict,
                  keep: int = 2) -> Path:
    """Write ``arrays`` + ``meta`` as the restart after ``cycle``; drop all but the newest
    ``keep`` restarts. Returns the path."""
    path = restart_path(run_dir, cycle)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(meta, format=FORMAT_VERSION, cycle=int(cycle))
    payload = {name: np.asarray(a) for name, a in arrays.items()}
    assert all(a.dtype != object for a in payload.values()), "restart arrays must be numeric"
    payload["meta_json"] = np.array(json.dumps(meta, sort_keys=True))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **payload)
            fh.flush()
            os.fsync(fh.fileno())
    for _, old in list_restarts(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def read_restart(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """``(arrays, meta)`` of a restart file; a damaged or foreign file is a :class:`UserError`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: np.array(data[name]) for name in data.files}
        meta = json.loads(str(arrays.pop("meta_json")))
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise UserError(f"restart file {path} is not a readable genenkf restart ({exc})") from None
    if meta.get("format") != FORMAT_VERSION:
        raise UserError(f"restart file {path} has format {meta.get('format')!r}, expected "
                        f"{FORMAT_VERSION}")
    return arrays, meta


def clear_restarts(run_dir: str | Path) -> None:
    """Remove the restart files of an earlier run (a fresh run starts from cycle 1)."""
    for _, path in list_restarts(run_dir):
        path.unlink(missing_ok=True)
    folder = restart_dir(run_dir)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()

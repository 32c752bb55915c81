"""What one assimilation run records: rank 0's buffer of cycles for ``analysis.nc``, the
per-point diagnostics, the file attributes and ``summary.json`` (CONTRACT section 5)."""
from __future__ import annotations

import json

import numpy as np

from .. import metrics
from ..config import Config
from ..io import analysis_file
from ..io.provenance import provenance
from .base import Diagnostics, NatureInput


FLUSH_EVERY = 64  # cycles buffered on rank 0 between writes to analysis.nc.partial


class Recorder:
    """Rank 0's buffer of recorded cycles, written to the partial analysis file in blocks."""

    def __init__(self, writer, nx: int, first_cycle: int):
        self.writer, self.nx = writer, nx
        self.first = first_cycle
        self.fields: dict[str, list] = {name: [] for name in analysis_file.FIELDS}
        self.series: dict[str, list] = {name: [] for name in analysis_file.SERIES}

    def add(self, cycle: int, fields: dict, series: dict) -> None:
        assert cycle == self.first + len(self.series["rmse"])
        for name, value in fields.items():
            self.fields[name].append(value)
        for name, value in series.items():
            self.series[name].append(value)
        if len(self.series["rmse"]) >= FLUSH_EVERY:
            self.flush(sync=False)

    def flush(self, sync: bool) -> None:
        n = len(self.series["rmse"])
        if n:
            self.writer.write(self.first, {k: np.stack(v) for k, v in self.fields.items()},
                              {k: np.asarray(v) for k, v in self.series.items()})
            self.first += n
            for store in (self.fields, self.series):
                for values in store.values():
                    values.clear()
        if sync:
            self.writer.sync()


def build_summary(cfg: Config, method, nature: NatureInput, series: dict, ranks: int,
                  wall_seconds: float) -> dict:
    """summary.json (CONTRACT section 5): time means after the burn-in, plus the settings."""
    after = slice(cfg.osse.burn_in, cfg.osse.cycles)
    rmse = float(np.mean(series["rmse"][after]))
    spread = float(np.mean(series["spread"][after]))
    return {
        "method": method.name,
        "forcing_nature": nature.forcing,
        "forcing_model": cfg.model.forcing,
        "members": method.members(),
        "cycles": cfg.osse.cycles,
        "burn_in": cfg.osse.burn_in,
        "rmse": rmse,
        "spread": spread,
        "spread_ratio": spread / rmse if rmse > 0 else None,
        "crps": float(np.mean(series["crps"][after])),
        "ranks": ranks,
        "wall_seconds": wall_seconds,
        "nx": cfg.model.nx,
        "obs_interval": cfg.osse.obs_interval,
        "obs_sigma": cfg.osse.obs_sigma,
        "steps_per_cycle": cfg.osse.steps_per_cycle,
        "seed": cfg.osse.seed,
        "nature": nature.source,
        "settings": method.settings(),
        **method.results(),
    }


def point_fields(diag: Diagnostics, truth: np.ndarray) -> np.ndarray:
    """``(3, npts_local)``: analysis mean, ensemble variance, CRPS at this rank's points."""
    if diag.ensemble is None:
        mean = np.asarray(diag.mean, dtype=np.float64)
        return np.stack([mean, np.zeros_like(mean), np.abs(mean - truth)])
    ens = diag.ensemble
    mean = ens.mean(axis=0) if diag.mean is None else np.asarray(diag.mean, dtype=np.float64)
    var = ens.var(axis=0, ddof=1) if ens.shape[0] > 1 else np.zeros(ens.shape[1])
    return np.stack([mean, var, metrics.crps_ensemble(ens, truth, average=False)])


def file_attrs(cfg: Config, method, nature: NatureInput) -> dict:
    """Global attributes of analysis.nc: the run's settings and how it was made."""
    return {**provenance(cfg), "method": method.name, "forcing_nature": nature.forcing,
            "forcing_model": cfg.model.forcing, "members": method.members(),
            "dt": cfg.model.dt, "steps_per_cycle": cfg.osse.steps_per_cycle,
            "obs_interval": cfg.osse.obs_interval, "obs_sigma": cfg.osse.obs_sigma,
            "seed": cfg.osse.seed, "burn_in": cfg.osse.burn_in,
            "settings": json.dumps(method.settings(), sort_keys=True)}

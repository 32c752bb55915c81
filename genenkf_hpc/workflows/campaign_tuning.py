"""Tuning the campaign's tuned entries, only on the separate tuning OSSE.

For every tuned entry (a grid of ``section.key`` values) and every F_nature, the settings with
the lowest time-mean analysis RMSE on the OSSE of ``campaign.tune_seed`` (``tune_cycles``
cycles, a third of them burn-in) are chosen; the scored seeds are never seen. Two searches
(``campaign.tune_search``):

- ``"grid"``: every point of the product of the grids (4 keys x 5, 5, 3, 3 values: 225 runs per
  entry and F);
- ``"coordinate"`` (default): start from the entry's configured values (or each grid's first
  value), then for one key at a time try all its values with the others fixed and keep the
  best; repeat the pass over the keys until nothing changes or ``tune_sweeps`` passes are done
  (at most ``sweeps x sum(len(grid))`` runs: 32 for that grid with 2 passes, a 7th of the
  product). Coordinate search finds the optimum of a separable score; for the interacting
  inflation settings the second pass revisits each key once the others moved.

A candidate that diverges scores infinity. Every run is a normal run directory under
``tuning/<label>/F<F>/<settings>/`` (so ``--resume`` skips finished candidates), and the record
of every candidate (settings, RMSE, wall time) goes to ``tuning.csv``.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..config import Config
from ..errors import DivergenceError, UserError
from .campaign_entries import Entry, run_config

Point = tuple


@dataclass
class TuningResult:
    """The outcome of tuning one entry at one F_nature."""

    label: str
    forcing: float
    keys: list[str]
    best: Point
    rmse: float
    evaluated: list[tuple[Point, float, float]] = field(default_factory=list)  # point, rmse, s

    @property
    def overrides(self) -> list[str]:
        return overrides(self.keys, self.best)

    @property
    def seconds(self) -> float:
        return sum(s for _, _, s in self.evaluated if math.isfinite(s))


def overrides(keys: list[str], point: Point) -> list[str]:
    return [f"{k}={v!r}" for k, v in zip(keys, point)]


def candidate_name(keys: list[str], point: Point) -> str:
    """e.g. ``radius4_inflation1.1_rtps0.5_additive0``."""
    return "_".join(f"{k.split('.')[1]}{v:g}" for k, v in zip(keys, point))


def search(grids: list[list], score: Callable[[Point], float], start: Point, mode: str,
           sweeps: int) -> tuple[Point, float]:
    """The best point of the product of ``grids`` by ``mode`` ("grid" or "coordinate", module
    doc); ``score`` is called once per distinct point (pure: no runs of its own)."""
    cache: dict[Point, float] = {}

    def value(point: Point) -> float:
        if point not in cache:
            cache[point] = score(point)
        return cache[point]

    if mode == "grid":
        best = min(itertools.product(*grids), key=value)
        return best, value(best)
    best = tuple(start)
    for _ in range(sweeps):
        before = best
        for i, values in enumerate(grids):
            best = min((best[:i] + (v,) + best[i + 1:] for v in values), key=value)
        if best == before:
            break
    return best, value(best)


def start_point(cfg: Config, keys: list[str], grids: list[list]) -> Point:
    """The configured value of each key when it is in its grid, else the grid's first value."""
    data = cfg.to_dict()
    out = []
    for key, values in zip(keys, grids):
        section, name = key.split(".")
        current = data[section][name]
        out.append(current if current in values else values[0])
    return tuple(out)


def tuning_config(cfg: Config, entry: Entry) -> Config:
    c = cfg.campaign
    return run_config(cfg, entry.overrides + [
        f"osse.cycles={c.tune_cycles}", f"osse.burn_in={max(1, c.tune_cycles // 3)}",
        "run.progress=false"], seed=c.tune_seed)


def tune(cfg: Config, entry: Entry, forcing: float, out: Path, run: Callable, log
         ) -> TuningResult:
    """Tune ``entry`` at F_nature = ``forcing``; ``run(cfg, method, forcing, path)`` runs one
    assimilation (on this rank alone) and returns its summary."""
    keys = list(entry.grid)
    grids = [list(entry.grid[k]) for k in keys]
    for key, values in zip(keys, grids):
        if not values:
            raise UserError(f"{entry.label}: the tuning grid of {key} is empty")
    base = tuning_config(cfg, entry)
    result = TuningResult(entry.label, forcing, keys, (), math.inf)

    def score(point: Point) -> float:
        name = candidate_name(keys, point)
        path = out / "tuning" / entry.label / f"F{forcing:g}" / name
        try:
            summary = run(run_config(base, overrides(keys, point), forcing), entry.method,
                          forcing, path)
            rmse, seconds = summary["rmse"], summary["wall_seconds"]
        except DivergenceError as exc:  # a diverging candidate is simply a bad one
            log.info("tuning %s F=%g %s: %s", entry.label, forcing, name, exc)
            rmse, seconds = math.inf, math.nan
        result.evaluated.append((point, rmse, seconds))
        return rmse if math.isfinite(rmse) else math.inf

    c = cfg.campaign
    result.best, result.rmse = search(grids, score, start_point(base, keys, grids),
                                      c.tune_search, c.tune_sweeps)
    if not math.isfinite(result.rmse):
        raise UserError(f"{entry.label}: every tuning candidate diverged for F={forcing:g}")
    log.info("%s F=%g: best %s (tuning RMSE %.4f, %d runs)", entry.label, forcing,
             " ".join(result.overrides), result.rmse, len(result.evaluated))
    return result


def tuning_rows(results: list[TuningResult]) -> list[dict]:
    """One row per evaluated candidate, for tuning.csv."""
    rows = []
    for r in results:
        for point, rmse, seconds in r.evaluated:
            rows.append({"method": r.label, "forcing_nature": r.forcing,
                         "settings": " ".join(overrides(r.keys, point)), "rmse": rmse,
                         "wall_seconds": seconds, "chosen": point == r.best})
    return rows


TUNING_COLUMNS = ("method", "forcing_nature", "settings", "rmse", "wall_seconds", "chosen")

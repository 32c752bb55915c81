"""Reading finished runs: ``summary.json`` and ``analysis.nc`` (CONTRACT section 5), and writing
the comparison tables (CSV and Markdown)."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import UserError
from .atomic import write_text

SUMMARY = "summary.json"
ANALYSIS = "analysis.nc"


def find_runs(paths: Sequence[str | Path]) -> list[Path]:
    """Run directories (holding ``summary.json``) at or below each path, in a stable order."""
    runs: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise UserError(f"run directory {p} does not exist")
        if (p / SUMMARY).is_file():
            runs.append(p)
            continue
        found = sorted(s.parent for s in p.rglob(SUMMARY))
        if not found:
            raise UserError(f"{p} holds no finished run (no {SUMMARY}; a failed or "
                            "interrupted run has none)")
        runs.extend(found)
    return runs


def load_summary(run: Path) -> dict:
    try:
        return json.loads((run / SUMMARY).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{run / SUMMARY}: unreadable summary ({exc})") from None


def load_series(run: Path) -> dict[str, np.ndarray]:
    """time, truth, analysis_mean, analysis_spread, rmse, spread from ``analysis.nc``."""
    import xarray as xr

    path = run / ANALYSIS
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            out = {name: np.asarray(ds[name].values) for name in
                   ("truth", "analysis_mean", "analysis_spread", "rmse", "spread")}
            out["time"] = np.asarray(ds["time"].values, dtype=float) if "time" in ds.coords \
                else np.arange(out["rmse"].shape[0], dtype=float)
    except KeyError as exc:
        raise UserError(f"{path} lacks variable {exc}: expected a `genenkf assimilate` output") \
            from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable netCDF file ({exc})") from None
    return out


def write_table_csv(path: Path, rows: Sequence[dict], columns: Sequence[str]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"

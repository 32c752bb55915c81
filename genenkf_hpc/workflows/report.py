"""``genenkf report RUN_DIR...``: a table of the runs' summaries and figures.

Writes ``report.md`` and ``report.csv`` (one row per run), ``rmse_time_F<forcing>.png`` (RMSE over
time of every run with that F_nature) and ``hovmoller_<run>.png`` (truth / analysis / error).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ..config import Config
from ..io import figures
from ..io.atomic import write_text
from ..io.results import find_runs, load_series, load_summary, markdown_table, write_table_csv

HELP = "tables and figures from finished run directories"
COLUMNS = ("run", "method", "forcing_nature", "members", "cycles", "burn_in", "rmse", "spread",
           "spread_ratio", "ranks", "wall_seconds")


def add_arguments(parser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR",
                        help="run directories (searched recursively for summary.json)")
    parser.add_argument("--no-hovmoller", action="store_true", help="skip the Hovmoller plots")


def _label(run: Path, common: Path) -> str:
    try:
        rel = run.relative_to(common)
    except ValueError:
        rel = run
    return str(rel).replace("/", "_") or run.name


def run(args, cfg: Config, ctx) -> int:
    runs = find_runs(args.runs)
    if not ctx.is_main:
        return 0
    common = Path(_common_parent(runs))
    rows, by_forcing = [], defaultdict(list)
    for run_dir in runs:
        summary = load_summary(run_dir)
        series = load_series(run_dir)
        label = _label(run_dir, common)
        row = {"run": label, **{k: summary.get(k, "") for k in COLUMNS if k != "run"}}
        if row["spread_ratio"] == "" and summary.get("rmse"):
            row["spread_ratio"] = summary["spread"] / summary["rmse"]
        rows.append(row)
        forcing = summary.get("forcing_nature", "?")
        by_forcing[forcing].append((f"{summary.get('method', '?')} ({label})", series,
                                    summary))
        if not args.no_hovmoller:
            figures.hovmoller(series["time"], series["truth"], series["analysis_mean"],
                              ctx.path / f"hovmoller_{label}.png",
                              title=f"{summary.get('method')} F_nature={forcing}: "
                                    f"RMSE {summary.get('rmse', float('nan')):.3f}")
    for forcing, entries in by_forcing.items():
        time = entries[0][1]["time"]
        burn = entries[0][2].get("burn_in")
        figures.rmse_over_time([(name, s["time"], s["rmse"]) for name, s, _ in entries],
                               ctx.path / f"rmse_time_F{forcing}.png",
                               title=f"F_nature = {forcing}",
                               burn_in_time=float(time[burn - 1]) if burn else None)
    table = markdown_table(rows, COLUMNS)
    write_table_csv(ctx.path / "report.csv", rows, COLUMNS)
    write_text(ctx.path / "report.md", "# Runs\n\n" + table)
    print(table, end="")
    ctx.log.info("report: %d run(s) -> %s", len(rows), ctx.path)
    return 0


def _common_parent(paths) -> str:
    import os

    parents = [str(p.resolve().parent) for p in paths]
    return os.path.commonpath(parents) if parents else "."

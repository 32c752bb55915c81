"""The campaign's tables and figures: one row per run (entry, F_nature, seed) in results.csv;
results.md with mean +- standard deviation over the seeds of RMSE, spread, spread/RMSE and CRPS
per entry and F_nature, the cost per cycle, the tuning record and every run; PNG figures (RMSE
against F_nature with the seeds' spread as error bars, RMSE over time and Hovmoller diagrams of
the first seed, rank histograms per F_nature pooled over the seeds)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..config import Config
from ..cycling.registry import method_class
from ..io import figures
from ..io.results import load_series, markdown_table
from .campaign_entries import Entry
from .campaign_tuning import TuningResult

COLUMNS = ("method", "seed", "forcing_nature", "rmse", "spread", "spread_ratio", "crps",
           "forcing_estimate", "wall_seconds", "seconds_per_cycle", "model_steps_per_cycle",
           "network_evaluations_per_cycle", "settings")
METRICS = ("rmse", "spread", "spread_ratio", "crps")
NAN = float("nan")


def result_row(entry: Entry, forcing: float, seed: int, summary: dict, cfg: Config) -> dict:
    """The results.csv row of one run (``summary``: its summary.json, or a divergence stub)."""
    settings = summary.get("settings", {})
    rmse, spread = summary["rmse"], summary["spread"]
    # a lone simulation has no spread to compare (NaN: shown as a dash)
    kind = method_class(entry.method).state_kind
    members = summary.get("members", 1)
    cycles = summary["cycles"]
    return {"method": entry.label, "seed": seed, "forcing_nature": forcing, "rmse": rmse,
            "spread": spread, "spread_ratio": spread / rmse if rmse and spread else NAN,
            "crps": summary.get("crps", NAN),
            "forcing_estimate": summary.get("forcing_estimate", {}).get("mean", NAN),
            "wall_seconds": summary["wall_seconds"],
            "seconds_per_cycle": summary["wall_seconds"] / cycles,
            "model_steps_per_cycle": cfg.osse.steps_per_cycle * (members if kind == "ensemble"
                                                                 else 1),
            "network_evaluations_per_cycle": settings.get("network_evaluations_per_cycle", 0),
            "settings": " ".join(f"{k}={v}" for k, v in settings.items()
                                 if k != "network_evaluations_per_cycle"),
            "rank_histogram": summary.get("rank_histogram")}


def aggregate(rows: list[dict]) -> list[dict]:
    """Per (method, F_nature): ``n`` seeds, ``diverged`` count, mean and standard deviation
    (ddof=1, 0 for one seed) of each metric over the runs that did not diverge, the mean cost,
    the summed rank histogram."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["forcing_nature"]), []).append(r)
    out = []
    for (method, forcing), runs in groups.items():
        ok = [r for r in runs if math.isfinite(r["rmse"])]
        agg = {"method": method, "forcing_nature": forcing, "n": len(runs),
               "diverged": len(runs) - len(ok)}
        for name in METRICS + ("forcing_estimate", "seconds_per_cycle"):
            values = np.array([r[name] for r in ok], dtype=float)
            values = values[np.isfinite(values)]
            agg[name] = float(values.mean()) if values.size else NAN
            agg[f"{name}_std"] = float(values.std(ddof=1)) if values.size > 1 else 0.0
        for name in ("model_steps_per_cycle", "network_evaluations_per_cycle"):
            agg[name] = runs[0][name]
        hists = [np.asarray(r["rank_histogram"]) for r in ok if r.get("rank_histogram")]
        agg["rank_histogram"] = np.sum(hists, axis=0) if hists else None
        out.append(agg)
    return out


def _cell(agg: dict, name: str, bold: bool = False) -> str:
    if agg["diverged"] == agg["n"]:
        return "diverged"
    if not math.isfinite(agg[name]):
        return "-"
    text = f"{agg[name]:.3f}"
    if agg["n"] - agg["diverged"] > 1:
        text += f" ± {agg[f'{name}_std']:.3f}"
    if bold:
        text = f"**{text}**"
    if agg["diverged"]:
        text += f" ({agg['diverged']}/{agg['n']} diverged)"
    return text


def _wide(aggs: list[dict], name: str, best_low: bool = False) -> str:
    methods = list(dict.fromkeys(a["method"] for a in aggs))
    forcings = list(dict.fromkeys(a["forcing_nature"] for a in aggs))
    lookup = {(a["method"], a["forcing_nature"]): a for a in aggs}
    best = {}
    if best_low:
        for f in forcings:
            vals = [(lookup[m, f][name], m) for m in methods if math.isfinite(lookup[m, f][name])]
            best[f] = min(vals)[1] if vals else None
    cols = [f"F={f:g}" for f in forcings]
    table = [{"method": m, **{c: _cell(lookup[m, f], name, best.get(f) == m)
                              for c, f in zip(cols, forcings)}} for m in methods]
    return markdown_table(table, ["method"] + cols)


def results_markdown(cfg: Config, rows: list[dict], aggs: list[dict], seeds: list[int],
                     tuning: list[TuningResult], entries: list[Entry]) -> str:
    o, c = cfg.osse, cfg.campaign
    over = (f"mean ± standard deviation over {len(seeds)} seeds ({', '.join(map(str, seeds))})"
            if len(seeds) > 1 else f"seed {seeds[0]}")
    text = ("# Campaign results\n\n"
            f"Time means after a burn-in of {o.burn_in} of {o.cycles} cycles, {over}; model "
            f"F = {cfg.model.forcing:g} ({cfg.model.dynamics}), every {o.obs_interval} point(s) "
            f"observed, sigma = {o.obs_sigma:g}. Tuned entries were tuned on seed {c.tune_seed} "
            f"only ({c.tune_cycles} cycles per run). Best mean RMSE per F_nature in bold.\n\n"
            "## Analysis RMSE\n\n" + _wide(aggs, "rmse", best_low=True)
            + "\n## Spread\n\n" + _wide(aggs, "spread")
            + "\n## Spread / RMSE (1 is calibrated)\n\n" + _wide(aggs, "spread_ratio")
            + "\n## CRPS\n\n" + _wide(aggs, "crps", best_low=True))
    estimated = [a for a in aggs if math.isfinite(a["forcing_estimate"])]
    if estimated:
        text += ("\n## Estimated forcing F (letkf_paramest: time mean after the burn-in)\n\n"
                 + _wide(estimated, "forcing_estimate"))
    text += "\n## Cost per cycle\n\n" + _cost_table(aggs)
    if tuning:
        text += "\n## Tuning (seed %d)\n\n%s" % (c.tune_seed, _tuning_text(cfg, tuning, entries))
    hist = sorted({a["forcing_nature"] for a in aggs if a["rank_histogram"] is not None})
    if hist:
        text += ("\n## Rank histograms\n\nThe truth's rank among the analysis members after the "
                 "burn-in, pooled over points, cycles and seeds (flat: calibrated; U: too little "
                 "spread): " + ", ".join(f"`rank_histogram_F{f:g}.png`" for f in hist) + ".\n")
    return text + "\n## All runs\n\n" + markdown_table(rows, COLUMNS)


def _cost_table(aggs: list[dict]) -> str:
    seen: dict[str, dict] = {}
    for a in aggs:
        entry = seen.setdefault(a["method"], {"method": a["method"], "s": [],
                                              "model steps": a["model_steps_per_cycle"],
                                              "network passes": a["network_evaluations_per_cycle"]})
        entry["s"].append(a["seconds_per_cycle"])
    rows = [{"method": m, "seconds per cycle": float(np.nanmean(e["s"])),
             "model steps per cycle": e["model steps"],
             "network passes per cycle": e["network passes"]} for m, e in seen.items()]
    return markdown_table(rows, list(rows[0]))


def _tuning_text(cfg: Config, tuning: list[TuningResult], entries: list[Entry]) -> str:
    c = cfg.campaign
    grids = {}
    for e in entries:
        if e.grid:
            grids.setdefault(tuple((k, tuple(v)) for k, v in e.grid.items()), []).append(e.label)
    lines = [f"Search: {c.tune_search}"
             + (f" (at most {c.tune_sweeps} passes over the keys)"
                if c.tune_search == "coordinate" else "") + "; grids:\n"]
    for grid, labels in grids.items():
        lines.append(f"- {', '.join(labels)}: "
                     + "; ".join(f"`{k}` in {list(v)}" for k, v in grid) + "\n")
    chosen = [{"method": r.label, "F": r.forcing, "chosen": " ".join(r.overrides),
               "tuning RMSE": r.rmse, "runs": len(r.evaluated), "seconds": r.seconds}
              for r in tuning]
    cost: dict[str, list] = {}
    for r in tuning:
        cost.setdefault(r.label, [0, 0.0])
        cost[r.label][0] += len(r.evaluated)
        cost[r.label][1] += r.seconds
    total = [{"method": m, "runs": n, "seconds (sum of run wall times)": s}
             for m, (n, s) in cost.items()]
    return ("".join(lines) + "\n" + markdown_table(chosen, list(chosen[0]))
            + "\nTuning cost:\n\n" + markdown_table(total, list(total[0]))
            + "\nEvery candidate: `tuning.csv`.\n")


def draw(cfg: Config, rows: list[dict], aggs: list[dict], run_dir, out: Path,
         first_seed: int) -> None:
    """The figures; ``run_dir(label, forcing, seed)`` is a run's directory."""
    figures.rmse_vs_forcing(rows, out / "rmse_vs_forcing.png", cfg.model.forcing,
                            cfg.osse.obs_sigma)
    methods = list(dict.fromkeys(a["method"] for a in aggs))
    forcings = list(dict.fromkeys(a["forcing_nature"] for a in aggs))
    finished = {(m, f): run_dir(m, f, first_seed) for m in methods for f in forcings
                if (run_dir(m, f, first_seed) / "summary.json").is_file()}  # not diverged
    for f in forcings:
        series = [(m, load_series(finished[m, f])) for m in methods if (m, f) in finished]
        figures.rmse_over_time([(m, s["time"], s["rmse"]) for m, s in series],
                               out / f"rmse_time_F{f:g}.png",
                               title=f"F_nature = {f:g}, seed {first_seed}",
                               obs_sigma=cfg.osse.obs_sigma)
        panels = [(a["method"], a["rank_histogram"],
                   f"spread/RMSE {a['spread_ratio']:.2f}")
                  for a in aggs if a["forcing_nature"] == f and a["rank_histogram"] is not None]
        if panels:
            figures.rank_histograms(panels, out / f"rank_histogram_F{f:g}.png",
                                    title=f"Rank histograms, F_nature = {f:g} (model F = "
                                          f"{cfg.model.forcing:g})")
    biased = [f for f in forcings if f != cfg.model.forcing]
    if biased:
        f = max(biased, key=lambda x: (abs(x - cfg.model.forcing), x))
        for m in methods:
            if (m, f) in finished:
                s = load_series(finished[m, f])
                figures.hovmoller(s["time"], s["truth"], s["analysis_mean"],
                                  out / f"hovmoller_{m}_F{f:g}.png",
                                  title=f"{m}, F_nature = {f:g} (model F = "
                                        f"{cfg.model.forcing:g}), seed {first_seed}")

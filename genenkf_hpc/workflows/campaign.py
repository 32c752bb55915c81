"""``genenkf campaign``: every method for every F_nature on the same truth and observations.

    genenkf campaign -c configs/paper.toml --model checkpoints/latest.pt --out runs/paper
    mpiexec -n 4 genenkf campaign ...      # independent runs spread over the ranks

For each F in ``osse.forcings`` one nature run (truth + observations, every method sees the
same) and, for each method in ``campaign.methods``, one assimilation in ``<method>/F<F>/``.
Tuned baselines (``letkf_tuned``, ``gaussian_pseudo``) first pick their settings per F by a grid
search on a *separate* OSSE (seed ``campaign.tune_seed``, ``campaign.tune_cycles`` cycles), so
nothing is tuned on the data it is scored on. Writes ``results.csv``, ``results.md`` and PNG
figures (RMSE against F_nature, RMSE over time per F, Hovmoller diagrams of a biased case).
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config, parse_override, to_toml
from ..cycling.driver import assimilate_forcing
from ..cycling.registry import check_method_name, method_class
from ..errors import DivergenceError, UserError
from ..io import figures
from ..io.atomic import write_text
from ..io.results import load_series, markdown_table, write_table_csv
from ..parallel.comm import SerialComm
from .assimilate import load_nature

HELP = "compare methods over F_nature -> results.csv/md, figures"
COLUMNS = ("method", "forcing_nature", "rmse", "spread", "spread_ratio", "crps",
           "wall_seconds", "seconds_per_cycle", "model_steps_per_cycle",
           "network_evaluations_per_cycle", "settings")


@dataclass
class Variant:
    """A campaign entry: a registered method, fixed overrides, an optional tuning grid."""

    label: str
    method: str
    overrides: list[str] = field(default_factory=list)
    grid: dict[str, list] = field(default_factory=dict)


def variants(cfg: Config) -> list[Variant]:
    c = cfg.campaign
    tuned = {
        "letkf_tuned": Variant("letkf_tuned", "letkf", grid={
            "filter.radius": c.tune_radius, "filter.inflation": c.tune_inflation,
            "filter.rtps": c.tune_rtps}),
        "gaussian_pseudo": Variant("gaussian_pseudo", "gaussian_pseudo", grid={
            "generative.gaussian_scale": c.tune_gaussian_scale}),
    }
    out = []
    for label in c.methods:
        v = copy.deepcopy(tuned.get(label, Variant(label, label)))
        check_method_name(v.method)
        for item in c.method_overrides:
            name, sep, override = item.partition(":")
            if not sep:
                raise UserError(f"campaign.method_overrides entry {item!r}: expected "
                                "'method:section.key=value'")
            if name == label:
                v.overrides.append(override)
        out.append(v)
    unknown = {i.partition(":")[0] for i in c.method_overrides} - set(c.methods)
    if unknown:
        raise UserError(f"campaign.method_overrides names {', '.join(sorted(unknown))}, which "
                        "is not in campaign.methods")
    return out


def with_overrides(cfg: Config, overrides: list[str], forcing: float | None = None) -> Config:
    """A copy of ``cfg`` with ``section.key=value`` overrides (validated like the CLI's)."""
    from ..config import config_from_dict

    data = cfg.to_dict()
    for item in overrides:
        section, key, value = parse_override(item)
        if section not in data or key not in data[section]:
            raise UserError(f"override {item!r}: unknown key {section}.{key}")
        data[section][key] = value
    if forcing is not None:
        data["osse"]["forcings"] = [forcing]
    return config_from_dict(data)


def add_arguments(parser) -> None:
    parser.add_argument("--model", metavar="FILE", help="diffusion checkpoint for genenkf")
    parser.add_argument("--nature", metavar="FILE", help="nature.nc (default: generated)")
    parser.add_argument("--resume", action="store_true",
                        help="keep finished runs in --out and continue interrupted ones")


def _run(cfg: Config, method: str, forcing: float, path: Path, nature_path, log, model,
         resume: bool):
    """One assimilation on this rank alone (independent runs are spread over the ranks)."""
    comm = SerialComm()
    nature = load_nature(cfg, forcing, nature_path, comm)
    outcome = assimilate_forcing(cfg, method, nature, path, comm, log, resume=resume,
                                 model_path=model, progress=False)
    write_text(path / "config.toml", to_toml(cfg))  # the run's exact settings, beside it
    return outcome.summary


def _spread(tasks, comm, fn):
    """Run ``fn(task)`` for this rank's share of ``tasks``; every rank gets all results."""
    mine = {i: fn(t) for i, t in enumerate(tasks) if i % comm.size == comm.rank}
    merged = {}
    for part in comm.allgather(mine):
        merged.update(part)
    return [merged[i] for i in range(len(tasks))]


def tune(cfg: Config, variant: Variant, forcings, out: Path, comm, log, model,
         resume: bool) -> dict:
    """Best grid point per forcing, scored on the separate tuning OSSE."""
    if not variant.grid:
        return {f: [] for f in forcings}
    keys = list(variant.grid)
    points = list(itertools.product(*variant.grid.values()))
    c = cfg.campaign
    tune_cfg = with_overrides(cfg, variant.overrides + [
        f"osse.seed={c.tune_seed}", f"osse.cycles={c.tune_cycles}",
        f"osse.burn_in={max(1, c.tune_cycles // 3)}", "run.progress=false"])
    tasks = [(f, p) for f in forcings for p in points]

    def score(task):
        f, p = task
        ov = [f"{k}={v!r}" for k, v in zip(keys, p)]
        name = "_".join(f"{k.split('.')[1]}{v:g}" for k, v in zip(keys, p))
        try:
            summary = _run(with_overrides(tune_cfg, ov, f), variant.method, f,
                           out / "tuning" / variant.label / f"F{f:g}" / name, None, log, model,
                           resume)
            return summary["rmse"]
        except DivergenceError as exc:  # a diverging candidate is simply a bad one
            log.info("tuning %s F=%g %s: %s", variant.label, f, name, exc)
            return float("inf")

    scores = _spread(tasks, comm, score)
    best = {}
    for f in forcings:
        cand = [(s, p) for (tf, p), s in zip(tasks, scores) if tf == f]
        s, p = min(cand, key=lambda sp: sp[0])
        if s == float("inf"):
            raise UserError(f"{variant.label}: every tuning candidate diverged for F={f:g}")
        best[f] = [f"{k}={v!r}" for k, v in zip(keys, p)]
        log.info("%s F=%g: best %s (tuning RMSE %.4f)", variant.label, f, " ".join(best[f]), s)
    return best


def run(args, cfg: Config, ctx) -> int:
    nature = Path(args.nature).resolve() if args.nature else None
    rows = run_campaign(cfg, ctx, model=args.model, nature=nature, resume=args.resume)
    if ctx.is_main:
        print(markdown_table(rows, COLUMNS[:7]), end="")
    return 0


def run_campaign(cfg: Config, ctx, *, model=None, nature=None, resume: bool = False) -> list[dict]:
    """Every variant for every forcing into the run directory ``ctx.path``: per-run
    directories, then (rank 0) results.csv, results.md and the figures. Returns the result rows
    on every rank. ``nature``: None (generated), a nature file or an ``xarray.Dataset``."""
    comm, log, out = ctx.comm, ctx.log, ctx.path
    forcings = list(cfg.osse.forcings)
    entries = variants(cfg)
    model = str(model) if model else cfg.generative.checkpoint or None
    if any(v.method == "genenkf" for v in entries) and not model:
        raise UserError("campaign includes genenkf: pass --model FILE or set "
                        "generative.checkpoint (a `genenkf train` checkpoint)")
    best = {v.label: tune(cfg, v, forcings, out, comm, log, model, resume)
            for v in entries}
    tasks = [(v, f) for v in entries for f in forcings]

    def assimilate(task):
        v, f = task
        run_cfg = with_overrides(cfg, v.overrides + best[v.label][f] + ["run.progress=false"],
                                 f)
        try:
            summary = _run(run_cfg, v.method, f, out / v.label / f"F{f:g}", nature, log,
                           model, resume)
        except DivergenceError as exc:  # a result of the comparison, not a failure of it
            log.warning("%s F=%g: %s", v.label, f, exc)
            return {"rmse": float("nan"), "spread": float("nan"), "crps": float("nan"),
                    "wall_seconds": float("nan"), "cycles": run_cfg.osse.cycles,
                    "members": run_cfg.filter.members, "settings": {"diverged": str(exc)}}
        log.info("%s F=%g: rmse %.4f spread %.4f", v.label, f, summary["rmse"],
                 summary["spread"])
        return summary

    summaries = _spread(tasks, comm, assimilate)
    rows = [result_row(v, f, s, cfg) for (v, f), s in zip(tasks, summaries)]
    if ctx.is_main:
        write_table_csv(out / "results.csv", rows, COLUMNS)
        write_text(out / "results.md", results_markdown(cfg, rows))
        draw(cfg, tasks, rows, out)
    return rows


def result_row(v: Variant, forcing: float, summary: dict, cfg: Config) -> dict:
    settings = summary.get("settings", {})
    ratio = summary["spread"] / summary["rmse"] if summary["rmse"] else float("nan")
    kind = method_class(v.method).state_kind
    members = summary.get("members", 1)
    steps = cfg.osse.steps_per_cycle * (members if kind == "ensemble" else 1)
    return {"method": v.label, "forcing_nature": forcing, "rmse": summary["rmse"],
            "spread": summary["spread"], "spread_ratio": ratio,
            "crps": summary.get("crps", float("nan")), "wall_seconds": summary["wall_seconds"],
            "seconds_per_cycle": summary["wall_seconds"] / summary["cycles"],
            "model_steps_per_cycle": steps,
            "network_evaluations_per_cycle": settings.get("network_evaluations_per_cycle", 0),
            "settings": " ".join(f"{k}={v}" for k, v in settings.items()
                                 if k != "network_evaluations_per_cycle")}


def results_markdown(cfg: Config, rows: list[dict]) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    forcings = list(dict.fromkeys(r["forcing_nature"] for r in rows))
    lookup = {(r["method"], r["forcing_nature"]): r for r in rows}
    wide = [{"method": m, **{f"F={f:g}": lookup[m, f]["rmse"] for f in forcings}}
            for m in methods]
    cost = [{k: lookup[m, forcings[0]][k] for k in ("method", "seconds_per_cycle",
                                                     "model_steps_per_cycle",
                                                     "network_evaluations_per_cycle")}
            for m in methods]
    o = cfg.osse
    return ("# Campaign results\n\n"
            f"Time-mean analysis RMSE after a burn-in of {o.burn_in} of {o.cycles} cycles; "
            f"model F = {cfg.model.forcing:g}, every {o.obs_interval} point(s) observed, "
            f"sigma = {o.obs_sigma:g}, seed {o.seed}.\n\n"
            + markdown_table(wide, ["method"] + [f"F={f:g}" for f in forcings])
            + "\n## Cost per cycle\n\n"
            + markdown_table(cost, list(cost[0]))
            + "\n## All runs\n\n" + markdown_table(rows, COLUMNS))


def _finished(run_dir: Path) -> bool:
    return (run_dir / "summary.json").is_file()  # a diverged run has no results to draw


def draw(cfg: Config, tasks, rows, out: Path) -> None:
    figures.rmse_vs_forcing(rows, out / "rmse_vs_forcing.png", cfg.model.forcing,
                            cfg.osse.obs_sigma)
    forcings = list(dict.fromkeys(f for _, f in tasks))
    for f in forcings:
        series = [(v.label, load_series(out / v.label / f"F{f:g}")) for v, tf in tasks
                  if tf == f and _finished(out / v.label / f"F{f:g}")]
        figures.rmse_over_time([(label, s["time"], s["rmse"]) for label, s in series],
                               out / f"rmse_time_F{f:g}.png", title=f"F_nature = {f:g}",
                               obs_sigma=cfg.osse.obs_sigma)
    biased = [f for f in forcings if f != cfg.model.forcing]
    if biased:
        f = max(biased, key=lambda x: (abs(x - cfg.model.forcing), x))
        for v, tf in tasks:
            if tf == f and _finished(out / v.label / f"F{f:g}"):
                s = load_series(out / v.label / f"F{f:g}")
                figures.hovmoller(s["time"], s["truth"], s["analysis_mean"],
                                  out / f"hovmoller_{v.label}_F{f:g}.png",
                                  title=f"{v.label}, F_nature = {f:g} (model F = "
                                        f"{cfg.model.forcing:g})")

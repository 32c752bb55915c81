"""``genenkf campaign``: every entry for every F_nature and seed on the same truth and observations.

    genenkf campaign -c configs/paper.toml --out runs/paper       # model: generative.checkpoint
    mpiexec -n 2 genenkf campaign -c configs/paper.toml --out runs/paper --resume
    gk.campaign("configs/paper.toml", out="runs/paper")            # Python API: run_campaign

For each seed in ``campaign.seeds`` (or ``osse.seed``) and each F in ``osse.forcings``, one
nature run (truth + observations: every entry sees the same) and, for each entry
(:mod:`.campaign_entries`: methods, built-in tuned entries, variants), one assimilation in
``<label>/F<F>/`` (``<label>/seed<S>/F<F>/`` with several seeds). Tuned entries first choose
their settings per F on the separate tuning OSSE (:mod:`.campaign_tuning`). Writes results.csv,
results.md, tuning.csv and PNG figures (:mod:`.campaign_report`).

Parallel: the runs are independent, one rank each, balanced by estimated cost, longest first
(:mod:`~genenkf_hpc.parallel.tasks`). Phase 1 runs the tuning searches together with the entries
that need no tuning (the Generative EnKF's long runs among them); phase 2 the tuned entries with
their chosen settings. ``--resume`` skips every finished run (tuning candidates included) whose
settings and data match, and continues interrupted ones from their restarts.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from ..config import Config, to_toml
from ..cycling.driver import assimilate_forcing
from ..cycling.registry import method_class
from ..errors import DivergenceError, UserError
from ..io.atomic import write_text
from ..io.results import markdown_table, write_table_csv
from ..parallel.comm import SerialComm, run_on_root
from ..parallel.tasks import run_spread
from .assimilate import load_nature
from .campaign_entries import BUILT_IN, Entry, campaign_entries, run_config, scored_seeds
from .campaign_report import COLUMNS, aggregate, draw, result_row, results_markdown
from .campaign_tuning import TUNING_COLUMNS, tune, tuning_rows

HELP = "compare methods over F_nature and seeds -> results.csv/md, figures"

# Relative cost of a network pass on one member against one model step of one member (the
# shipped model on 2 CPU cores: 0.17 s per cycle for 12 passes x 32 members, against 0.0008 s
# for a 32-member LETKF cycle); only the ordering of the runs depends on it.
NETWORK_PASS_COST = 20.0
# Fixed cost of a run in the same units (set-up, nature run, files: about 0.3 s, while a model
# step of one member with its share of the analysis costs about 1.2e-5 s).
RUN_OVERHEAD = 24000.0


def add_arguments(parser) -> None:
    parser.add_argument("--model", metavar="FILE", help="diffusion checkpoint for genenkf "
                        "(default: generative.checkpoint, relative to the config file)")
    parser.add_argument("--nature", metavar="FILE", help="nature.nc (default: generated; one "
                        "seed only)")
    parser.add_argument("--resume", action="store_true",
                        help="keep finished runs in --out and continue interrupted ones")
    parser.epilog = ((parser.epilog or "") + " Entries (campaign.methods): registered methods, "
                     "the built-in tuned entries " + ", ".join(BUILT_IN) + ", and labels of "
                     "campaign.variants ('label:base'); campaign.seeds scores several seeds. "
                     "See docs/baselines.md.")


def run(args, cfg: Config, ctx) -> int:
    nature = Path(args.nature).resolve() if args.nature else None
    rows = run_campaign(cfg, ctx, model=args.model, nature=nature, resume=args.resume)
    if ctx.is_main:
        aggs = aggregate(rows)
        print(markdown_table([{"method": a["method"], "F": a["forcing_nature"],
                               "rmse": a["rmse"], "rmse_std": a["rmse_std"],
                               "spread_ratio": a["spread_ratio"], "seeds": a["n"]}
                              for a in aggs],
                             ["method", "F", "rmse", "rmse_std", "spread_ratio", "seeds"]),
              end="")
    return 0


def run_campaign(cfg: Config, ctx, *, model=None, nature=None, resume: bool = False
                 ) -> list[dict]:
    """Every entry for every forcing and seed into the run directory ``ctx.path``: per-run
    directories, then (rank 0) results.csv, results.md, tuning.csv and the figures. Returns the
    result rows (results.csv's columns; ``seed`` only with several seeds) on every rank.
    ``nature``: None (generated), a nature file or an ``xarray.Dataset`` (one seed only)."""
    comm, log, out = ctx.comm, ctx.log, ctx.path
    forcings = list(cfg.osse.forcings)
    seeds = scored_seeds(cfg)
    entries = campaign_entries(cfg)
    models = _models(model, cfg, entries)
    if nature is not None and len(seeds) > 1:
        given = nature if isinstance(nature, (str, Path)) else "an xarray.Dataset"
        raise UserError(f"the nature run given ({given}) holds one seed's truth, but "
                        f"campaign.seeds={seeds}: leave it out to generate each seed's nature "
                        "run")
    run_on_root(comm, lambda: check_model_fits(cfg, entries, forcings, models, nature))
    runner = _Runner(nature, log, str(model) if model else None, resume)

    def run_dir(label: str, forcing: float, seed: int) -> Path:
        return out / label / (f"seed{seed}" if len(seeds) > 1 else "") / f"F{forcing:g}"

    def score(task):
        entry, forcing, seed, chosen = task
        run_cfg = run_config(cfg, entry.overrides + chosen + ["run.progress=false"], forcing,
                             seed)
        return runner.score(run_cfg, entry, forcing, run_dir(entry.label, forcing, seed))

    # Phase 1: the tuning searches and the runs that need no tuning, balanced together.
    chains = [(e, f) for e in entries if e.grid for f in forcings]
    fixed = [(e, f, s, []) for e in entries if not e.grid for f in forcings for s in seeds]
    log.info("campaign: %d entries x %d F_nature x %d seeds on %d rank(s); %d tuning searches",
             len(entries), len(forcings), len(seeds), comm.size, len(chains))
    phase1 = [("tune", c) for c in chains] + [("score", t) for t in fixed]
    costs = [_chain_cost(cfg, *t) if kind == "tune" else
             runner.cost(cfg, t[0], run_dir(t[0].label, t[1], t[2])) for kind, t in phase1]

    def phase1_task(item):
        kind, task = item
        if kind == "tune":
            return tune(cfg, task[0], task[1], out, runner.run, log)
        return score(task)

    done = run_spread(comm, phase1, phase1_task, costs, _progress(log, "phase 1", comm.rank))
    tuning = [r for (kind, _), r in zip(phase1, done) if kind == "tune"]
    chosen = {(r.label, r.forcing): r.overrides for r in tuning}
    # Phase 2: the tuned entries with their chosen settings.
    tuned = [(e, f, s, chosen[e.label, f]) for e in entries if e.grid for f in forcings
             for s in seeds]
    costs = [runner.cost(cfg, e, run_dir(e.label, f, s)) for e, f, s, _ in tuned]
    tuned_done = run_spread(comm, tuned, score, costs, _progress(log, "phase 2", comm.rank))
    fixed_done = [r for (kind, _), r in zip(phase1, done) if kind == "score"]
    summaries = {(e.label, f, s): summary for (e, f, s, _), summary
                 in zip(fixed + tuned, fixed_done + tuned_done)}
    rows = [result_row(e, f, s, summaries[e.label, f, s], run_config(cfg, e.overrides))
            for e in entries for f in forcings for s in seeds]
    if ctx.is_main:
        aggs = aggregate(rows)
        write_table_csv(out / "results.csv", rows, COLUMNS)
        if tuning:
            write_table_csv(out / "tuning.csv", tuning_rows(tuning), TUNING_COLUMNS)
        write_text(out / "results.md", results_markdown(cfg, rows, aggs, seeds, tuning, entries))
        draw(cfg, rows, aggs, run_dir, out, seeds[0])
    # The rank histograms stay in the files; with one seed the rows need no seed (the API's
    # table is then over (da_method, forcing), with several over (da_method, forcing, seed)).
    keys = [k for k in COLUMNS if k != "seed" or len(seeds) > 1]
    return [{k: r[k] for k in keys} for r in rows]


def check_model_fits(cfg: Config, entries: list[Entry], forcings, models: dict[str, str],
                     nature) -> None:
    """Every Generative EnKF run of the campaign must fit its model (``models``: entry label
    -> checkpoint; CONTRACT section 7). Checked once before anything runs, by one rank for
    all: inside the runs, which are spread over the ranks, a mismatch would stop one rank and
    the job would have to be aborted."""
    from ..diffusion import compatibility
    from ..io.checkpoint import load_checkpoint

    checkpoints = {path: load_checkpoint(path) for path in set(models.values())}
    for entry in entries:
        if entry.method != "genenkf":
            continue
        model = models[entry.label]
        for forcing in forcings:
            run_cfg = run_config(cfg, entry.overrides, forcing)
            mask = load_nature(run_cfg, forcing, nature, SerialComm()).mask
            compatibility.check(checkpoints[model], compatibility.Experiment(run_cfg, mask,
                                                                             forcing),
                                run_cfg.generative.allow_mismatch, model)


def _progress(log, phase: str, rank: int):
    """Rank 0 reports its share (the other ranks' logs are quiet; their shares are balanced)."""
    def report(done: int, total: int, spent: float, planned: float) -> None:
        log.info("%s: %d of rank %d's %d tasks done (%.0f%% of its estimated work)", phase,
                 done, rank, total, 100.0 * spent / planned if planned else 100.0)
    return report


def _models(given, cfg: Config, entries: list[Entry]) -> dict[str, str]:
    """The checkpoint of every Generative EnKF entry: ``--model`` (``given``) for all, else each
    entry's ``generative.checkpoint`` (a variant may name its own; already absolute when it
    came from a config file). Checked before any run."""
    models = {}
    for entry in entries:
        if entry.method != "genenkf":
            continue
        model = str(given) if given else run_config(cfg, entry.overrides).generative.checkpoint
        if not model:
            raise UserError(f"campaign entry {entry.label} needs a trained model: pass --model "
                            "FILE or set generative.checkpoint (a `genenkf train` checkpoint)")
        if not Path(model).is_file():
            key = "--model" if given else "generative.checkpoint"
            raise UserError(f"{key}={model}: no such file (campaign entry {entry.label} needs "
                            "a trained model)")
        models[entry.label] = model
    return models


def _per_cycle_cost(run_cfg: Config, method: str) -> float:
    """Relative cost of one cycle (units: one model step of one member)."""
    cls = method_class(method)
    instance = cls(run_cfg)
    members = instance.members()
    steps = run_cfg.osse.steps_per_cycle * (members if cls.state_kind == "ensemble" else 1)
    passes = instance.network_evaluations() if hasattr(instance, "network_evaluations") else 0
    return steps + members + NETWORK_PASS_COST * passes * members


def _chain_cost(cfg: Config, entry: Entry, forcing: float) -> float:
    c = cfg.campaign
    sizes = [len(v) for v in entry.grid.values()]
    runs = sum(sizes) * min(c.tune_sweeps, 2) if c.tune_search == "coordinate" else \
        math.prod(sizes)
    per_cycle = _per_cycle_cost(run_config(cfg, entry.overrides), entry.method)
    return runs * (RUN_OVERHEAD + c.tune_cycles * per_cycle)


class _Runner:
    """Runs one assimilation on this rank alone, with the nature runs cached per rank (every
    candidate of a tuning search shares its truth)."""

    def __init__(self, nature, log, model, resume: bool):
        self.nature, self.log, self.model, self.resume = nature, log, model, resume
        self.natures: dict[str, object] = {}

    def cost(self, cfg: Config, entry: Entry, path: Path) -> float:
        if self.resume and (path / "summary.json").is_file():
            return 0.0  # skipped (or refused) at once
        per_cycle = _per_cycle_cost(run_config(cfg, entry.overrides), entry.method)
        return RUN_OVERHEAD + cfg.osse.cycles * per_cycle

    def run(self, cfg: Config, method: str, forcing: float, path: Path) -> dict:
        comm = SerialComm()
        data = cfg.to_dict()
        key = json.dumps({s: data[s] for s in ("model", "nature", "osse")}, sort_keys=True)
        if key not in self.natures:
            self.natures[key] = load_nature(cfg, forcing, self.nature, comm)
        outcome = assimilate_forcing(cfg, method, self.natures[key], path, comm, self.log,
                                     resume=self.resume, model_path=self.model, progress=False)
        write_text(path / "config.toml", to_toml(cfg))  # the run's exact settings, beside it
        return outcome.summary

    def score(self, cfg: Config, entry: Entry, forcing: float, path: Path) -> dict:
        try:
            summary = self.run(cfg, entry.method, forcing, path)
        except DivergenceError as exc:  # a result of the comparison, not a failure of it
            self.log.warning("%s F=%g seed %d: %s", entry.label, forcing, cfg.osse.seed, exc)
            return {"rmse": float("nan"), "spread": float("nan"), "crps": float("nan"),
                    "wall_seconds": float("nan"), "cycles": cfg.osse.cycles,
                    "members": cfg.filter.members, "settings": {"diverged": str(exc)}}
        self.log.info("%s F=%g seed %d: rmse %.4f spread %.4f", entry.label, forcing,
                      cfg.osse.seed, summary["rmse"], summary["spread"])
        return summary

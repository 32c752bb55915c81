#!/usr/bin/env python
"""The figures of issue 14 in one run: domain decomposition and the local generator.

    .venv/bin/python tools/bench_domains.py --out docs/benchmarks/domains --max-load 0.5

Sections (``--only``, default all):

- ``weak``: ``genenkf bench forecast|letkf|sample --domains R`` on R = 1, 2, 4 ranks with N
  growing with R: forecast and LETKF at N = 500,000 R (N = 10^6 at R = 2), k = 32, radius 4,
  every 2nd point observed; sampling at N = 50,000 R (10^5 at R = 2), k = 32 members of
  ``models/l96_local.pt`` (SDEdit encoding to 0.6 T, 5 DDIM steps: 3 network passes per
  member, guidance 1, 8 members per network batch). Efficiency T(1) / T(R); peak RSS per rank;
  bytes sent between ranks per cycle, measured and by formula;
- ``memory``: forecast and LETKF at N = 10^6 on one rank (the weak R = 2 rows hold the same N
  on two ranks: per-rank memory should halve);
- ``cycle``: ``mpiexec -n 2 genenkf assimilate -c configs/large.toml --method genenkf
  model.nx=1000000`` for 3 cycles: the Generative EnKF cycle at N = 10^6 on 2 cores;
- ``rmse``: the Generative EnKF (and the LETKF) on configs/large.toml's settings at N = 40
  (seeds 0-4: the seed-to-seed spread), 4,000 and 100,000: per-point RMSE (time means after
  the burn-in). Lorenz-96 is statistically homogeneous, so they should agree within the spread;
- ``gpu``: the GPU command (sampling 32 members at N = 10^6) is printed, not run.

Every record carries the 1-minute load average measured just before it ran. With
``--max-load L`` the script waits (up to ``--wait`` seconds) for the load to fall below L before
each measurement and marks records taken above it ``"busy": true``: timings on a shared machine
are not figures. Writes ``records.jsonl`` and ``domains.md`` (the tables) in ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
from bench_suite import display_command, machine_info, run_env  # noqa: E402
from scaling import mpiexec_prefix  # noqa: E402

SECTIONS = ("weak", "memory", "cycle", "rmse", "gpu")
MODEL = "models/l96_local.pt"
SAMPLE_SETTINGS = ["generative.encoding=sdedit", "generative.strength=0.6",
                   "generative.guidance=1.0", "generative.batch_members=8"]
GPU_COMMAND = ("genenkf bench sample --nx 1000000 --members 32 --domains 1 --steps 5 "
               f"--checkpoint {MODEL} --device cuda " + " ".join(SAMPLE_SETTINGS))


def wait_for_quiet(max_load: float | None, wait: float) -> tuple[float, bool]:
    """The 1-minute load average (after waiting up to ``wait`` s for it to drop below
    ``max_load``) and whether it is still above."""
    deadline = time.monotonic() + wait
    while True:
        load = os.getloadavg()[0]
        if max_load is None or load <= max_load or time.monotonic() > deadline:
            return round(load, 2), max_load is not None and load > max_load
        time.sleep(15)


def run(ranks: int, argv: list[str], args, timeout: float = 3600) -> dict:
    """``mpiexec -n ranks python -m genenkf_hpc argv`` (one process when ranks = 1); the last
    JSON line it prints, with the command and the load."""
    cmd = [sys.executable, "-m", "genenkf_hpc", *map(str, argv)]
    if ranks > 1:
        cmd = [*mpiexec_prefix(ranks), *cmd]
    load, busy = wait_for_quiet(args.max_load, args.wait)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=run_env(), cwd=REPO,
                          timeout=timeout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    record = json.loads(lines[-1]) if lines else {}
    record.update(command=display_command(cmd, {"OMP_NUM_THREADS": "1"}), load_1min=load,
                  busy=busy, wall_seconds_total=round(wall, 2))
    return record


def bench(ranks: int, what: str, nx: int, args, *extra) -> dict:
    argv = ["bench", what, "--nx", nx, "--members", args.members, "--domains", ranks,
            "--repeat", args.repeat, *extra]
    if what == "letkf":
        argv += ["--radius", 4, "--obs-interval", 2, "--taper", "gaspari_cohn"]
    elif what == "forecast":
        argv += ["--steps", args.forecast_steps]
    else:
        argv += ["--steps", 5, "--checkpoint", args.model, *SAMPLE_SETTINGS]
    return run(ranks, argv, args)


def section_weak(args, out) -> list[dict]:
    rows = []
    for what, per_rank in (("forecast", args.weak_nx), ("letkf", args.weak_nx),
                           ("sample", args.sample_weak_nx)):
        base = None
        for ranks in args.ranks:
            r = bench(ranks, what, per_rank * ranks, args)
            seconds = _seconds(r)
            base = base or seconds
            r.update(section="weak", efficiency=base / seconds)
            rows.append(r)
            out(r)
    return rows


def section_memory(args, out) -> list[dict]:
    rows = []
    for what in ("forecast", "letkf"):
        r = bench(1, what, 1_000_000, args)
        r.update(section="memory")
        rows.append(r)
        out(r)
    return rows


def section_cycle(args, out) -> list[dict]:
    run_dir = Path(args.out) / "cycle_1e6"
    r = run(2, ["assimilate", "-c", "configs/large.toml", "--method", "genenkf",
                "--model", args.model, "model.nx=1000000", "osse.cycles=3", "osse.burn_in=1",
                "run.progress=false",
                "--out", run_dir], args, timeout=7200)
    summary = json.loads((run_dir / "summary.json").read_text())
    r.update(section="cycle", nx=summary["nx"], cycles=summary["cycles"],
             wall_seconds=summary["wall_seconds"],
             seconds_per_cycle=summary["wall_seconds"] / summary["cycles"],
             layout=summary.get("layout"), rmse=summary["rmse"])
    out(r)
    return [r]


def section_rmse(args, out) -> list[dict]:
    rows = []
    cases = [(40, seed) for seed in range(5)] + [(4000, 0), (100_000, 0)]
    for method in ("genenkf", "letkf"):
        for nx, seed in cases:
            run_dir = Path(args.out) / f"rmse_{method}_{nx}_{seed}"
            ranks = 1 if nx < 4000 else 2
            model = ["--model", args.model] if method == "genenkf" else []
            r = run(ranks, ["assimilate", "-c", "configs/large.toml", "--method", method, *model,
                            f"model.nx={nx}", f"osse.seed={seed}", "run.progress=false",
                            "--out", run_dir], args, timeout=7200)
            s = json.loads((run_dir / "summary.json").read_text())
            r.update(section="rmse", method=method, nx=nx, seed=seed, rmse=s["rmse"],
                     spread=s["spread"], wall_seconds=s["wall_seconds"],
                     layout=s.get("layout"))
            rows.append(r)
            out(r)
    return rows


def _seconds(r: dict) -> float:
    return r.get("seconds_per_analysis") or r.get("seconds_per_ensemble") or r["seconds"]


def tables(rows: list[dict], info: dict) -> str:
    lines = [f"# Domain decomposition figures ({info['date']}, {info['host']}, "
             f"{info.get('cpu', '')})", ""]
    weak = [r for r in rows if r.get("section") in ("weak", "memory")]
    if weak:
        lines += ["| bench | R | N | k | s / cycle | efficiency | bytes / cycle measured | "
                  "formula | peak RSS / rank MB | load |", "|" + " --- |" * 10]
        for r in weak:
            per_step = r["bench"] == "forecast"
            measured = r.get("bytes_per_step_measured" if per_step else
                             "bytes_per_cycle_measured")
            formula = r.get("bytes_per_step_formula" if per_step else "bytes_per_cycle_formula")
            rss = [p["peak_rss_mb"] for p in r["per_rank"]]
            lines.append(f"| {r['bench']} | {r['ranks']} | {r['nx']:,} | {r['members']} | "
                         f"{_seconds(r):.4g} | {r.get('efficiency', float('nan')):.2f} | "
                         f"{measured:,.0f} | {formula:,.0f} | "
                         f"{', '.join(f'{x:.0f}' for x in rss)} | {r['load_1min']}"
                         f"{' (busy)' if r['busy'] else ''} |")
        lines.append("")
    for r in (r for r in rows if r.get("section") == "cycle"):
        lines += [f"Generative EnKF at N = {r['nx']:,} on 2 ranks: {r['seconds_per_cycle']:.1f} s "
                  f"per cycle ({r['cycles']} cycles, {r['wall_seconds']:.0f} s; load "
                  f"{r['load_1min']}); `{r['command']}`", ""]
    rm = [r for r in rows if r.get("section") == "rmse"]
    if rm:
        lines += ["| method | N | seeds | per-point RMSE | spread | load |", "|" + " --- |" * 6]
        for method in sorted({r["method"] for r in rm}):
            for nx in sorted({r["nx"] for r in rm if r["method"] == method}):
                group = [r for r in rm if r["method"] == method and r["nx"] == nx]
                values = [r["rmse"] for r in group]
                spread = statistics.stdev(values) if len(values) > 1 else float("nan")
                lines.append(f"| {method} | {nx:,} | {len(values)} | "
                             f"{statistics.mean(values):.4f} +- {spread:.4f} | "
                             f"{statistics.mean(r['spread'] for r in group):.4f} | "
                             f"{max(r['load_1min'] for r in group)} |")
        lines.append("")
    lines += [f"GPU (not run here): `{GPU_COMMAND}`", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--out", default="runs/bench-domains")
    p.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--members", type=int, default=32)
    p.add_argument("--weak-nx", type=int, default=500_000, help="forecast/letkf points per rank")
    p.add_argument("--sample-weak-nx", type=int, default=50_000, help="sampling points per rank")
    p.add_argument("--forecast-steps", type=int, default=5)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--model", default=MODEL)
    p.add_argument("--max-load", type=float, help="wait for the 1-minute load to drop below this")
    p.add_argument("--wait", type=float, default=1800, help="seconds to wait for a quiet machine")
    args = p.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []

    def out(record):
        print(json.dumps({k: v for k, v in record.items() if k not in ("per_rank", "times")}),
              flush=True)
        with open(out_dir / "records.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")

    for name in args.only:
        if name == "gpu":
            print(f"GPU command (not run): {GPU_COMMAND}", flush=True)
            continue
        rows += globals()[f"section_{name}"](args, out)
    (out_dir / "domains.md").write_text(tables(rows, machine_info()))
    print(f"wrote {out_dir / 'records.jsonl'} and {out_dir / 'domains.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Benchmark suite: ``genenkf bench`` sweeps run as subprocesses -> CSV + PNG tables.

    .venv/bin/python tools/bench_suite.py --out docs/benchmarks          # every sweep (~8 min)
    .venv/bin/python tools/bench_suite.py --only letkf_nx letkf_members --repeat 3 --out DIR
    .venv/bin/python tools/bench_suite.py --dry-run                       # the commands only
    .venv/bin/python tools/bench_suite.py --collect RESULTS --out DIR     # a Slurm array's results

Sweeps (:data:`SWEEPS`): the LETKF kernel against the grid size N and the ensemble size k (one
process, the kernel's own threads = the usable cores); and, under ``mpiexec -n R`` with
single-threaded ranks (oversubscribed when R exceeds the cores), strong and weak scaling of the
parallel LETKF (member -> grid transpose, local analyses, grid -> member transpose), the
ensemble forecast, pseudo-ensemble sampling (members split over ranks) and DDP training (gloo,
global batch split over ranks). Strong: fixed problem, speedup = throughput_R / throughput_R0;
weak: the decomposed dimension grows with R (grid points for the LETKF, members for forecast
and sampling, the global batch for training), efficiency = (throughput_R / R) / (throughput_R0
/ R0). Every row of the tables carries the exact command that produced it and the 1-minute load
average just before it ran (the timings of a shared machine depend on it).

Writes under ``--out``: ``results.csv`` (every row), ``size.csv`` / ``strong.csv`` /
``weak.csv``, ``size.png``, ``scaling.png``, ``records.jsonl`` (the raw JSON of every run),
``summary.md`` (markdown tables) and ``machine.json`` (cores, load, versions, matmul rate).
``tools/bench_slurm_array.py`` renders the same sweeps as one Slurm job array; ``--collect``
turns its per-index JSON lines into the same tables.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
for _p in (str(REPO), str(TOOLS)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

SWEEPS = ("letkf_nx", "letkf_members", "letkf_strong", "letkf_weak", "forecast_strong",
          "forecast_weak", "sample_strong", "sample_weak", "train_strong", "train_weak")
# What each benchmark's JSON reports as its throughput, the unit, and its seconds field.
THROUGHPUT = {"letkf": ("grid_points_per_s", "grid points/s"),
              "forecast": ("grid_point_steps_per_s", "grid-point steps/s"),
              "sample": ("members_per_s", "members/s"),
              "train": ("samples_per_s", "samples/s")}
COLUMNS = ("sweep", "bench", "scale", "ranks", "nx", "members", "batch", "threads", "seconds",
           "throughput", "unit", "speedup", "efficiency", "local_obs", "solve", "flops_per_point",
           "gflops", "letkf_seconds", "transpose_seconds", "bytes_per_cycle", "load_1min",
           "attempts", "error", "command")
# Issue 3: N = 2000, k = 32, radius 4, float64, 2 cores: >= 300,000 grid-point analyses/s.
TARGET_POINTS_PER_S = 300_000
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# The machine's attainable float64 rate: one large matmul (BLAS), all threads and one.
MATMUL_CODE = ("import json; from genenkf_hpc.da.bench import bench_matmul; "
               "print(json.dumps(bench_matmul(2048, 3)))")


@dataclass(frozen=True)
class Settings:
    """Sizes of the sweeps. Defaults: seconds per run on a 2-core machine."""

    nx_list: tuple[int, ...] = (2000, 20000, 200000)
    members_list: tuple[int, ...] = (8, 16, 32, 64)
    ranks: tuple[int, ...] = (1, 2, 3, 4)
    train_ranks: tuple[int, ...] = (1, 2, 3)
    sample_ranks: tuple[int, ...] = ()  # () = ``ranks`` (on a cluster: up to the GPU count)
    members: int = 32
    radius: float = 4.0
    taper: str = "box"  # radius 4 -> 9 local observations (issue 3's reference case)
    members_nx: int = 2000  # N of the k sweep
    strong_nx: int = 20000
    weak_nx: int = 5000  # LETKF weak scaling: grid points per rank
    forecast_nx: int = 4000
    forecast_steps: int = 10
    weak_members: int = 8  # forecast and sampling weak scaling: members per rank
    sample_members: int = 32
    sample_steps: int = 5  # DDIM steps
    train_batch: int = 32
    weak_batch: int = 16  # training weak scaling: samples per rank
    train_steps: int = 5
    config: str = "configs/demo.toml"  # network of sample/train (demo: 0.38 M parameters)
    device: str = ""  # sample/train: torch device ("" = the config's)
    overrides: tuple[str, ...] = ()  # sample/train: section.key=value
    repeat: int = 3


@dataclass(frozen=True)
class Case:
    """One run: ``[mpiexec -n ranks] genenkf bench <bench> <args>`` (``mpi``: under a launcher)."""

    sweep: str
    bench: str
    ranks: int
    args: tuple[str, ...]
    mpi: bool

    @property
    def scale(self) -> str:
        return self.sweep.split("_", 1)[1] if self.mpi else "size"

    def bench_argv(self) -> list[str]:
        return ["bench", self.bench, *self.args]


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _words(*pairs) -> tuple[str, ...]:
    return tuple(_num(w) for w in pairs)


def plan(s: Settings, only=SWEEPS) -> list[Case]:
    """The runs of the chosen sweeps, in order (pure)."""
    unknown = sorted(set(only) - set(SWEEPS))
    if unknown:
        raise ValueError(f"unknown sweep(s) {', '.join(unknown)}; valid: {', '.join(SWEEPS)}")

    def letkf(nx, k, mode):
        return _words("--nx", nx, "--members", k, "--radius", float(s.radius), "--taper",
                      s.taper, "--mode", mode, "--repeat", s.repeat)

    def forecast(k):
        return _words("--nx", s.forecast_nx, "--members", k, "--steps", s.forecast_steps,
                      "--repeat", s.repeat)

    def torch_args(extra):
        dev = ("--device", s.device) if s.device else ()
        return (*s.overrides, *_words("-c", s.config, *extra, *dev))

    def sample(k):
        return torch_args(("--members", k, "--steps", s.sample_steps, "--repeat", s.repeat))

    def train(batch):
        return torch_args(("--batch", batch, "--steps", s.train_steps))

    ranks = sorted(set(s.ranks))
    sample_ranks = sorted(set(s.sample_ranks or s.ranks))
    per_sweep = {
        "letkf_nx": [Case("letkf_nx", "letkf", 1, letkf(n, s.members, "kernel"), False)
                     for n in s.nx_list],
        "letkf_members": [Case("letkf_members", "letkf", 1,
                               letkf(s.members_nx, k, "kernel"), False)
                          for k in s.members_list],
        "letkf_strong": [Case("letkf_strong", "letkf", r, letkf(s.strong_nx, s.members,
                                                                "parallel"), True)
                         for r in ranks],
        "letkf_weak": [Case("letkf_weak", "letkf", r,
                            letkf(s.weak_nx * r, s.members, "parallel"), True) for r in ranks],
        # more ranks than members would leave ranks idle: not a scaling measurement
        "forecast_strong": [Case("forecast_strong", "forecast", r, forecast(s.members), True)
                            for r in ranks if r <= s.members],
        "forecast_weak": [Case("forecast_weak", "forecast", r, forecast(s.weak_members * r),
                               True) for r in ranks],
        "sample_strong": [Case("sample_strong", "sample", r, sample(s.sample_members), True)
                          for r in sample_ranks if r <= s.sample_members],
        "sample_weak": [Case("sample_weak", "sample", r, sample(s.weak_members * r), True)
                        for r in sample_ranks],
        "train_strong": [Case("train_strong", "train", r, train(s.train_batch), True)
                         for r in sorted(set(s.train_ranks)) if r <= s.train_batch],
        "train_weak": [Case("train_weak", "train", r, train(s.weak_batch * r), True)
                       for r in sorted(set(s.train_ranks))],
    }
    return [case for name in SWEEPS if name in only for case in per_sweep[name]]


def row_from_record(case: Case, record: dict) -> dict:
    """One table row from a benchmark's JSON record (pure)."""
    key, unit = THROUGHPUT[case.bench]
    thr = record.get(key)
    if case.bench == "letkf":
        seconds = record["seconds_per_analysis"]
    elif case.bench == "forecast":
        seconds = record["seconds"]
    elif case.bench == "sample":
        seconds = record["seconds_per_ensemble"]
    else:
        seconds = 1.0 / record["steps_per_s"]
    row = {"sweep": case.sweep, "bench": case.bench, "scale": case.scale, "ranks": case.ranks,
           "nx": record.get("nx"), "members": record.get("members"),
           "batch": record.get("global_batch"),
           "threads": record.get("threads", record.get("torch_threads", 1)),
           "seconds": seconds, "throughput": thr, "unit": unit}
    if "flops_per_point" in record and thr:
        row.update(local_obs=record.get("local_obs"), solve=record.get("solve"),
                   flops_per_point=record["flops_per_point"],
                   gflops=thr * record["flops_per_point"] / 1e9)
    if record.get("mode") == "parallel":
        row.update(letkf_seconds=record["letkf_seconds_max"],
                   transpose_seconds=record["transpose_seconds_max"],
                   bytes_per_cycle=record["bytes_per_cycle"])
    return {k: v for k, v in row.items() if v is not None}


def add_scaling(rows: list[dict]) -> list[dict]:
    """Speedup and efficiency per scaling sweep, relative to its smallest rank count (pure).

    strong: speedup = T_R / T_R0 (throughputs), efficiency = speedup * R0 / R;
    weak: efficiency = (T_R / R) / (T_R0 / R0), speedup = T_R / T_R0 (scaled speedup).
    """
    out = [dict(r) for r in rows]
    for sweep in dict.fromkeys(r["sweep"] for r in out):
        group = [r for r in out if r["sweep"] == sweep and r.get("throughput")]
        if not group or group[0]["scale"] not in ("strong", "weak"):
            continue
        base = min(group, key=lambda r: r["ranks"])
        for r in group:
            r["speedup"] = r["throughput"] / base["throughput"]
            r["efficiency"] = r["speedup"] * base["ranks"] / r["ranks"]
    return out


def display_command(argv: list[str], env: dict[str, str]) -> str:
    """The command as typed in the repository root (paths below it relative)."""
    root = str(REPO) + os.sep
    words = [w[len(root):] if w.startswith(root) else w for w in argv]
    return shlex.join([f"{k}={v}" for k, v in env.items()] + words)


def local_argv(case: Case, python: str = sys.executable) -> list[str]:
    """The command on this machine: ``mpiexec -n R [--oversubscribe] python -m genenkf_hpc``."""
    cmd = [python, "-m", "genenkf_hpc", *case.bench_argv()]
    if not case.mpi:
        return cmd
    from scaling import mpiexec_prefix  # tools/scaling.py: the launcher and its flags

    return [*mpiexec_prefix(case.ranks), *cmd]


def run_env() -> dict[str, str]:
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                        os.environ.get("PYTHONPATH")])))
    env.update({k: "1" for k in THREAD_ENV})  # one thread per rank (the kernel has its own)
    return env


def run_case(case: Case, timeout: float = 900, retries: int = 1) -> tuple[dict, list[dict]]:
    """Run one case (again, up to ``retries`` times, when it fails: a shared machine's MPI
    launcher fails now and then); returns its row and the records it printed, or a failure
    record with the end of stderr."""
    argv = local_argv(case)
    command = display_command(argv, {"OMP_NUM_THREADS": "1"})
    failures = []
    for attempt in range(1, retries + 2):
        load = round(os.getloadavg()[0], 2)
        stderr = ""
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, env=run_env(),
                                  cwd=REPO, timeout=timeout)
            stderr = proc.stderr
            error = "" if proc.returncode == 0 else \
                f"exit {proc.returncode}: " + (stderr.strip().splitlines() or [""])[-1]
            records = [json.loads(line) for line in proc.stdout.splitlines()
                       if line.startswith("{")]
        except subprocess.TimeoutExpired:
            error, records = f"timed out after {timeout:g} s", []
        if not error and not records:
            error = "no JSON record printed"
        if not error:
            break
        failures.append({"failed_attempt": attempt, "error": error,
                         "stderr_tail": stderr.strip().splitlines()[-30:]})
    row = row_from_record(case, records[-1]) if not error else \
        {"sweep": case.sweep, "bench": case.bench, "scale": case.scale, "ranks": case.ranks}
    row.update(load_1min=load, error=error, attempts=attempt, command=command)
    return row, failures + ([] if error else records)


def machine_info() -> dict:
    import numpy

    info = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "host": platform.node(),
            "cpu": _cpu_model(), "usable_cores": len(os.sched_getaffinity(0)),
            "python": platform.python_version(), "numpy": numpy.__version__,
            "load_average": [round(x, 2) for x in os.getloadavg()]}
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:  # pragma: no cover
        pass
    for threads in (str(info["usable_cores"]), "1"):
        env = dict(run_env(), **{k: threads for k in THREAD_ENV})
        argv = [sys.executable, "-c", MATMUL_CODE]
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO)
        if proc.returncode == 0:
            info[f"matmul_gflops_{threads}_threads"] = json.loads(proc.stdout)["gflops"]
            info[f"matmul_command_{threads}_threads"] = display_command(
                argv, {"OMP_NUM_THREADS": threads})
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover
        pass
    return platform.processor()


def write_tables(rows: list[dict], records: list[dict], out: Path, info: dict) -> None:
    """results.csv, size/strong/weak.csv, records.jsonl, summary.md, machine.json, PNGs."""
    from genenkf_hpc.io.atomic import write_json, write_text
    from genenkf_hpc.io.results import markdown_table, write_table_csv

    out.mkdir(parents=True, exist_ok=True)
    rows = add_scaling(rows)
    write_table_csv(out / "results.csv", rows, COLUMNS)
    md = [f"Load average (1, 5, 15 min) at the start: {info.get('load_average')}; "
          f"usable cores {info.get('usable_cores')}.\n"]
    for scale in ("size", "strong", "weak"):
        part = [r for r in rows if r.get("scale") == scale]
        if part:
            write_table_csv(out / f"{scale}.csv", part, COLUMNS)
            cols = [c for c in COLUMNS if c not in ("scale", "unit", "error")
                    and any(r.get(c) not in (None, "") for r in part)]
            md += [f"## {scale}\n", markdown_table(part, cols)]
    write_text(out / "records.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    write_text(out / "summary.md", "\n".join(md))
    write_json(out / "machine.json", info)
    from bench_plots import plot_scaling, plot_size

    plot_size(rows, out / "size.png", TARGET_POINTS_PER_S)
    plot_scaling(rows, out / "scaling.png")


def collect(results: Path) -> tuple[list[dict], list[dict]]:
    """Rows from a job array's ``*.jsonl`` files: a meta line (index, sweep, bench, ranks,
    mpi, command, load_1min), then the benchmark's records (tools/bench_slurm_array.py)."""
    rows, records = [], []
    for path in sorted(results.glob("*.jsonl")):
        lines = [json.loads(x) for x in path.read_text().splitlines() if x.startswith("{")]
        if not lines or "sweep" not in lines[0]:
            continue
        meta = lines[0]
        case = Case(meta["sweep"], meta["bench"], meta["ranks"], tuple(meta.get("args", ())),
                    meta["mpi"])
        if len(lines) < 2:
            row = {"sweep": case.sweep, "bench": case.bench, "scale": case.scale,
                   "ranks": case.ranks, "error": "no JSON record (see the job log)"}
        else:
            row = row_from_record(case, lines[-1])
            records.append(lines[-1])
        row.update(load_1min=meta.get("load_1min"), command=meta.get("command", ""))
        rows.append(row)
    return rows, records


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Sweeps: " + ", ".join(SWEEPS))
    p.add_argument("--out", default="runs/bench", help="output directory")
    p.add_argument("--only", nargs="+", choices=SWEEPS, metavar="SWEEP", default=SWEEPS,
                   help="sweeps to run (default: all)")
    p.add_argument("--nx-list", type=int, nargs="+", help="letkf_nx: grid sizes")
    p.add_argument("--members-list", type=int, nargs="+", help="letkf_members: ensemble sizes")
    p.add_argument("--ranks", type=int, nargs="+", help="rank counts of the scaling sweeps")
    p.add_argument("--train-ranks", type=int, nargs="+", help="rank counts of train_*")
    p.add_argument("--repeat", type=int, help="timed repetitions per run (median)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="any Settings field, e.g. --set strong_nx=8000 (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument("--collect", metavar="RESULTS", help="tables from a Slurm array's results")
    return p.parse_args(argv)


def settings_from(args, base: Settings | None = None) -> Settings:
    """``base`` (default: :class:`Settings`) changed by ``--set`` and the sweep options."""
    s = Settings() if base is None else base
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    changes = {}
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in fields or not value:
            raise ValueError(f"--set {item}: expected FIELD=VALUE, FIELD one of "
                             + ", ".join(fields))
        current = getattr(s, name)
        try:
            if isinstance(current, tuple):
                kind = type(current[0]) if current else (str if name == "overrides" else int)
                changes[name] = tuple(kind(v) for v in value.split(","))
            else:
                changes[name] = type(current)(value)
        except ValueError:
            raise ValueError(f"--set {item}: not a valid {name} ({current!r} now)") from None
    for name in ("nx_list", "members_list", "ranks", "train_ranks", "repeat"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = tuple(value) if isinstance(value, list) else value
    return dataclasses.replace(s, **changes)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    if args.collect:
        rows, records = collect(Path(args.collect))
        write_tables(rows, records, out, {"collected_from": args.collect})
        print(f"{len(rows)} rows from {args.collect} -> {out}")
        return 0
    try:
        cases = plan(settings_from(args), args.only)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        for case in cases:
            print(display_command(local_argv(case), {"OMP_NUM_THREADS": "1"}))
        return 0
    info = machine_info()
    start = time.perf_counter()
    rows, records = [], []
    for i, case in enumerate(cases, 1):
        row, recs = run_case(case)
        rows.append(row)
        records += [dict(r, sweep=case.sweep, command=row["command"]) for r in recs]
        status = row["error"] or f"{row['throughput']:.4g} {row['unit']}"
        print(f"[{i}/{len(cases)}] {case.sweep} R={case.ranks}: {status}  "
              f"(load {row['load_1min']})\n    {row['command']}", flush=True)
    info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    info["suite_seconds"] = round(time.perf_counter() - start, 1)
    write_tables(rows, records, out, info)
    print(f"wrote {out}/results.csv, size.csv, strong.csv, weak.csv, size.png, scaling.png, "
          f"summary.md ({info['suite_seconds']} s)")
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

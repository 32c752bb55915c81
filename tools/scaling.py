#!/usr/bin/env python
"""Strong and weak scaling of the parallel LETKF analysis and the ensemble forecast.

    .venv/bin/python tools/scaling.py --ranks 1 2 3 4 --nx 8000 --weak-nx 2000 \
        --members 32 --out docs/scaling

runs ``mpiexec -n R genenkf bench letkf --mode parallel`` and ``... bench forecast`` for every R
(oversubscribed when R exceeds the cores), strong scaling at ``--nx`` points and weak scaling at
``--weak-nx`` points per rank, and writes ``scaling.csv`` and ``scaling.png`` in ``--out``.
Every rank is single-threaded (OMP_NUM_THREADS=1), so R ranks use R cores; the 1-minute load
average at each measurement is recorded, since other jobs on the machine distort the timings.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def mpiexec_prefix(ranks: int) -> list[str]:
    beside = Path(sys.executable).parent / "mpiexec"
    exe = str(beside) if beside.exists() else shutil.which("mpiexec")
    if exe is None:
        sys.exit("tools/scaling.py: no mpiexec found")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.lower()
    flags = ["--oversubscribe"] if ("open mpi" in version or "prte" in version) else []
    return [exe, "-n", str(ranks), *flags]


def bench(ranks: int, what: str, nx: int, args) -> dict:
    cmd = [*mpiexec_prefix(ranks), sys.executable, "-m", "genenkf_hpc", "bench", what,
           "--nx", str(nx), "--members", str(args.members), "--repeat", str(args.repeat)]
    if what == "letkf":
        cmd += ["--radius", str(args.radius), "--mode", "parallel"]
    else:
        cmd += ["--steps", str(args.steps)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=1800)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr}")
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    record["command"] = " ".join(["mpiexec", "-n", str(ranks)] + cmd[cmd.index("-m") - 1:])
    return record


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 3, 4])
    p.add_argument("--nx", type=int, default=8000, help="strong scaling: total grid points")
    p.add_argument("--weak-nx", type=int, default=2000, help="weak scaling: points per rank")
    p.add_argument("--members", type=int, default=32)
    p.add_argument("--radius", type=float, default=4.0)
    p.add_argument("--steps", type=int, default=20, help="forecast: RK4 steps per repetition")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--out", default="docs/scaling")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for kind in ("strong", "weak"):
        for what in ("letkf", "forecast"):
            base = None
            for ranks in args.ranks:
                nx = args.nx if kind == "strong" else args.weak_nx * ranks
                r = bench(ranks, what, nx, args)
                seconds = r["seconds_per_analysis"] if what == "letkf" else r["seconds"]
                base = base or (seconds, ranks)
                # strong: speedup T1/TR; weak: efficiency T1/TR (the work grows with R)
                ratio = base[0] / seconds
                rows.append({"kind": kind, "bench": what, "ranks": ranks, "nx": nx,
                             "load_average": round(os.getloadavg()[0], 2),
                             "members": args.members, "seconds": seconds,
                             "throughput": r.get("grid_points_per_s") or
                             r.get("grid_point_steps_per_s"),
                             "speedup" if kind == "strong" else "efficiency": ratio,
                             "bytes_per_cycle": r.get("bytes_per_cycle", 0),
                             "command": r["command"]})
                print(json.dumps(rows[-1]), flush=True)
    fields = ["kind", "bench", "ranks", "nx", "members", "seconds", "throughput", "speedup",
              "efficiency", "bytes_per_cycle", "load_average", "command"]
    with open(out / "scaling.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, out / "scaling.png", args)
    print(f"wrote {out / 'scaling.csv'} and {out / 'scaling.png'}")


def plot(rows, path: Path, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for what, marker in (("letkf", "o"), ("forecast", "s")):
        strong = [r for r in rows if r["kind"] == "strong" and r["bench"] == what]
        weak = [r for r in rows if r["kind"] == "weak" and r["bench"] == what]
        a.plot([r["ranks"] for r in strong], [r["speedup"] for r in strong], marker=marker,
               label=what)
        b.plot([r["ranks"] for r in weak], [r["efficiency"] for r in weak], marker=marker,
               label=what)
    ranks = args.ranks
    a.plot(ranks, [r / ranks[0] for r in ranks], "k--", label="ideal")
    b.axhline(1.0, color="k", ls="--", label="ideal")
    a.set(xlabel="MPI ranks", ylabel="speedup", title=f"strong scaling, nx = {args.nx}")
    b.set(xlabel="MPI ranks", ylabel="efficiency T1 / TR",
          title=f"weak scaling, nx = {args.weak_nx} per rank", ylim=(0, 1.2))
    for ax in (a, b):
        ax.set_xticks(ranks)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"genenkf parallel LETKF + forecast, k = {args.members}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()

"""How far a Generative EnKF run on R MPI ranks departs from the one-process run, per precision.

    .venv/bin/python tools/rank_reproducibility.py --out runs/repro            # 720 cycles
    .venv/bin/python tools/rank_reproducibility.py --out runs/repro --cycles 50 --ranks 3
    .venv/bin/python tools/rank_reproducibility.py --out runs/repro --ranks 3 \
        --precisions float32 --set generative.fixed_batch=8

Runs ``genenkf assimilate -c configs/paper.toml --method genenkf --model
models/l96_paper_prior.pt`` with the paper campaign's Generative EnKF settings (its
``campaign.method_overrides``), F_nature = ``--forcing``, once on one process and once under
``mpiexec -n R``, for ``generative.precision`` float32 and float64 (every process
single-threaded, ``OMP_NUM_THREADS=1``), then prints one JSON line per precision: the largest
difference of the analysis means over all cycles and up to given cycles, and the time-mean
RMSEs (after the burn-in) of both runs. Runs already complete in ``--out`` are reused
(``--resume``), so an interrupted measurement continues. The burn-in is the paper's 200 cycles
(a quarter of shorter runs). The README quotes these figures.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genenkf_hpc.config import load_config  # noqa: E402
from genenkf_hpc.io.analysis_file import read_analysis  # noqa: E402
from genenkf_hpc.workflows.campaign_entries import campaign_entries  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))
from mpi_utils import mpi_command, mpi_env  # noqa: E402

PAPER = REPO / "configs" / "paper.toml"
MODEL = REPO / "models" / "l96_paper_prior.pt"
MARKS = (10, 50, 100, 200, 400, 720)  # cycles at which the running maximum is reported


def assimilate_argv(out: Path, precision: str, cycles: int, forcing: float,
                    extra: list[str] = ()) -> list[str]:
    settings = next(e.overrides for e in campaign_entries(load_config(PAPER))
                    if e.label == "genenkf")
    settings = [*settings, *extra]
    return ["assimilate", "-c", str(PAPER), "--method", "genenkf", "--model", str(MODEL),
            "--out", str(out), "--resume", f"osse.forcings=[{forcing}]",
            f"osse.cycles={cycles}", f"osse.burn_in={min(200, cycles // 4)}",
            "run.progress=false", "run.checkpoint_every=50",
            f"generative.precision={precision}", *settings]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory of the runs")
    parser.add_argument("--cycles", type=int, default=720)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--forcing", type=float, default=10.0)
    parser.add_argument("--precisions", nargs="+", default=["float32", "float64"])
    parser.add_argument("--set", nargs="*", default=[], metavar="section.key=value",
                        help="more overrides of both runs (e.g. generative.fixed_batch=8); "
                        "their runs get their own directories")
    args = parser.parse_args(argv)
    tag = "".join("_" + item.replace("=", "").split(".")[-1] for item in args.set)
    out = Path(args.out).resolve()
    env = mpi_env({"OMP_NUM_THREADS": "1"})
    for precision in args.precisions:
        runs = {}
        for ranks in (1, args.ranks):
            run_dir = out / f"{precision}{tag}_ranks{ranks}"
            cmd = assimilate_argv(run_dir, precision, args.cycles, args.forcing, args.set)
            full = [sys.executable, "-m", "genenkf_hpc", *cmd] if ranks == 1 else \
                mpi_command(ranks, cmd)
            proc = subprocess.run(full, env=env, cwd=REPO, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return proc.returncode
            runs[ranks] = run_dir
        one, many = (read_analysis(runs[r] / "analysis.nc") for r in (1, args.ranks))
        diff = np.max(np.abs(one["analysis_mean"] - many["analysis_mean"]), axis=1)
        running = np.maximum.accumulate(diff)
        rmse = {r: json.loads((runs[r] / "summary.json").read_text())["rmse"]
                for r in (1, args.ranks)}
        print(json.dumps({
            "precision": precision, "overrides": args.set, "ranks": [1, args.ranks],
            "cycles": args.cycles,
            "forcing_nature": args.forcing, "max_abs_diff": float(running[-1]),
            "max_abs_diff_up_to": {str(c): float(running[c - 1]) for c in MARKS
                                   if c <= args.cycles},
            "rmse_one_process": rmse[1], f"rmse_{args.ranks}_ranks": rmse[args.ranks],
            "rmse_difference": rmse[args.ranks] - rmse[1],
            "omp_num_threads": env["OMP_NUM_THREADS"], "load": os.getloadavg()[0]}),
            flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

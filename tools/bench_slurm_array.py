#!/usr/bin/env python3
"""The benchmark suite's sweeps as ONE Slurm job array: one configuration per array index.

    .venv/bin/python tools/bench_slurm_array.py --nodes 4 --tasks-per-node 64 \
        --gpus-per-node 4 --partition compute --account myproject --time 00:30:00 \
        --venv .venv --results runs/bench-array -o bench_array.sh
    sbatch bench_array.sh                  # or by node count, as the script's header lists
    .venv/bin/python tools/bench_suite.py --collect runs/bench-array --out runs/bench-tables

The sweeps and their commands are ``tools/bench_suite.py``'s (:func:`bench_suite.plan`), sized
for the allocation (:func:`cluster_settings`): rank counts 1, 2, 4, ... up to nodes x
tasks-per-node (sampling and training: up to the GPUs when there are any, with ``--device
cuda``; training then runs in bf16). Index i runs configuration i with ``srun`` on the nodes it
needs (MPI programs as ``python -m mpi4py -m genenkf_hpc``, so a failing rank aborts the step)
and writes ``RESULTS/index_<i>.jsonl``: a first line describing the configuration (sweep,
ranks, nodes, the command, the load average), then the JSON lines ``genenkf bench`` prints;
the file appears complete or not at all (``.partial`` + rename).

Every array task asks for the same allocation (Slurm's rule for arrays), the largest any index
needs; indices that need fewer nodes leave the rest idle. The script's header lists one
``sbatch --array=... --nodes=n`` line per node count (options on the command line override the
``#SBATCH`` lines), which avoids that. ``--exclusive`` (default) keeps other jobs off the
nodes: timings of shared nodes are not benchmarks.

Resource options are validated by ``genenkf_hpc.scheduler.make_job`` (as for the stage scripts
of ``genenkf jobs render``) and every value that reaches the shell is quoted.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
for _p in (str(REPO), str(TOOLS)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import bench_suite  # noqa: E402
from bench_suite import SWEEPS, Case, Settings  # noqa: E402

from genenkf_hpc.errors import UserError  # noqa: E402
from genenkf_hpc.scheduler.common import join_command, q, setup_lines  # noqa: E402
from genenkf_hpc.scheduler.slurm import resource_directives  # noqa: E402
from genenkf_hpc.scheduler.spec import JobSpec, make_job  # noqa: E402

DISTRIBUTIONS = ("block", "cyclic")


def powers_of_two(top: int) -> tuple[int, ...]:
    """1, 2, 4, ... up to ``top``, and ``top`` itself."""
    out = [1 << i for i in range(int(math.log2(top)) + 1)] if top >= 1 else []
    return tuple(sorted(set(out + [top])))


def cluster_settings(nodes: int, tasks_per_node: int, gpus_per_node: int = 0,
                     **changes) -> Settings:
    """Sweep sizes for a cluster allocation (seconds to a minute per index)."""
    cpu_ranks = powers_of_two(nodes * tasks_per_node)
    torch_ranks = powers_of_two(nodes * gpus_per_node) if gpus_per_node else \
        tuple(r for r in cpu_ranks if r <= 64)  # gloo DDP on CPUs: a few dozen ranks at most
    base = dict(nx_list=(2000, 20000, 200000, 2000000), members_list=(8, 16, 32, 64, 128),
                ranks=cpu_ranks, sample_ranks=torch_ranks, train_ranks=torch_ranks,
                strong_nx=1_000_000, weak_nx=20000, forecast_nx=100000, forecast_steps=10,
                sample_members=max(32, torch_ranks[-1]), sample_steps=20,
                train_batch=max(256, torch_ranks[-1]), weak_batch=64, train_steps=20,
                config="configs/paper.toml", device="cuda" if gpus_per_node else "cpu",
                repeat=5)
    base.update(changes)
    return dataclasses.replace(Settings(), **base)


def layout(case: Case, spec: JobSpec, gpu_torch: bool) -> dict:
    """Nodes, tasks and threads of one index inside the allocation."""
    if not case.mpi:  # the LETKF kernel: one process, its threads on one whole node
        return {"nodes": 1, "ntasks": 1, "per_node": 1,
                "threads": spec.tasks_per_node * spec.cpus_per_task}
    capacity = spec.gpus_per_node if gpu_torch else spec.tasks_per_node
    nodes = math.ceil(case.ranks / capacity)
    if nodes > spec.nodes:
        raise UserError(f"{case.sweep}: {case.ranks} ranks need {nodes} nodes of {capacity} "
                        f"{'GPUs' if gpu_torch else 'tasks'}; the allocation has --nodes "
                        f"{spec.nodes}")
    return {"nodes": nodes, "ntasks": case.ranks, "per_node": math.ceil(case.ranks / nodes),
            "threads": spec.cpus_per_task}


def step_words(case: Case, lay: dict, spec: JobSpec, distribution: str,
               python: str = '"$PYTHON"') -> list[str]:
    """The srun command of one index, as shell words."""
    if case.mpi:
        srun = ["srun", "--kill-on-bad-exit=1"]
        if spec.srun_mpi:
            srun.append(f"--mpi={q(spec.srun_mpi)}")
        srun += [f"--nodes={lay['nodes']}", f"--ntasks={lay['ntasks']}",
                 f"--ntasks-per-node={lay['per_node']}", f"--cpus-per-task={lay['threads']}",
                 f"--distribution={distribution}", python, "-m", "mpi4py"]
    else:
        srun = ["srun", "--nodes=1", "--ntasks=1", f"--cpus-per-task={lay['threads']}", python]
    return [*srun, "-m", "genenkf_hpc", *[q(w) for w in case.bench_argv()]]


def index_table(cases: list[Case], spec: JobSpec, settings: Settings,
                distribution: str = "block") -> list[dict]:
    """One entry per array index: the case, its layout, srun words and meta line (pure)."""
    gpu = bool(spec.gpus_per_node) and settings.device.startswith("cuda")
    out = []
    for i, case in enumerate(cases):
        lay = layout(case, spec, gpu and case.bench in ("sample", "train"))
        command = " ".join([f"OMP_NUM_THREADS={lay['threads']}",
                            *step_words(case, lay, spec, distribution, "python")])
        meta = {"index": i, "sweep": case.sweep, "bench": case.bench, "ranks": case.ranks,
                "mpi": case.mpi, "nodes": lay["nodes"],
                "threads": lay["threads"], "command": command}
        out.append({"case": case, **lay, "meta": meta,
                    "words": step_words(case, lay, spec, distribution)})
    return out


def submit_lines(table: list[dict]) -> list[str]:
    """``sbatch --array=LIST --nodes=n SCRIPT`` per node count, LIST as Slurm ranges."""
    lines = []
    for nodes in sorted({e["nodes"] for e in table}):
        idx = [e["meta"]["index"] for e in table if e["nodes"] == nodes]
        ranges, start = [], idx[0]
        for a, b in zip(idx, idx[1:] + [None]):
            if b != a + 1:
                ranges.append(f"{start}-{a}" if a > start else f"{start}")
                start = b
        lines.append(f"sbatch --array={','.join(ranges)} --nodes={nodes} SCRIPT")
    return lines


def render_array(spec: JobSpec, settings: Settings, only=SWEEPS, max_parallel: int = 0,
                 exclusive: bool = True, distribution: str = "block") -> str:
    """The job-array script (pure)."""
    if distribution not in DISTRIBUTIONS:
        raise UserError(f"--distribution {distribution!r}: one of {', '.join(DISTRIBUTIONS)}")
    if isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 0:
        raise UserError(f"--max-parallel {max_parallel!r}: expected an integer >= 0")
    try:
        cases = bench_suite.plan(settings, only)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if not cases:
        raise UserError("no benchmark configurations: check --only and the rank counts")
    table = index_table(cases, spec, settings, distribution)
    last = len(table) - 1
    array = f"0-{last}" + (f"%{max_parallel}" if max_parallel else "")
    d = [f"--job-name={q(spec.name)}", f"--array={array}",
         *resource_directives(spec, spec.tasks_per_node, spec.cpus_per_task)]
    if exclusive:
        d.append("--exclusive")
    if spec.log_dir:
        d.append(f"--output={q(spec.log_dir.rstrip('/') + '/%x-%A_%a.out')}")
    header = [
        f"# genenkf benchmark sweep: {len(table)} configurations, one per array index "
        "(rendered by",
        "# tools/bench_slurm_array.py; the same sweeps as tools/bench_suite.py). Every index "
        "gets the",
        "# allocation above and uses the nodes it needs; to leave no node idle, submit by "
        "node count:",
        *[f"#   {line}" for line in submit_lines(table)],
        "# Results: one JSON-lines file per index in the results directory; tables and plots:",
        f"#   python tools/bench_suite.py --collect {q(spec.out)} --out TABLES",
    ]
    lines = ["#!/bin/bash", *[f"#SBATCH {x}" for x in d], "#", *header,
             "set -euo pipefail", ""]
    lines += setup_lines(spec, workdir_default=None)
    lines += ['mkdir -p -- "$OUT"', "",
              "# Index -> configuration: the nodes it needs, its threads per process, a JSON",
              "# description (first line of the result file) and the job step's command.",
              'index="${SLURM_ARRAY_TASK_ID:?run this script with sbatch (an array task)}"',
              'case "$index" in']
    for e in table:
        meta = e["meta"]
        lines.append(f"    {meta['index']}) nodes={e['nodes']} threads={e['threads']}")
        lines.append(f"       meta={q(json.dumps(meta))}")
        lines.append("       " + join_command(["set", "--", *e["words"]], indent="           ",
                                              width=89) + " ;;")
    lines += [f'    *) echo "genenkf bench array: no configuration for index $index (0-{last})"'
              " >&2; exit 2 ;;",
              "esac",
              'if [ "$nodes" -gt "${SLURM_JOB_NUM_NODES:-1}" ]; then',
              '    echo "genenkf bench array: index $index needs $nodes node(s), the job has '
              '${SLURM_JOB_NUM_NODES:-1}; submit it with --nodes=$nodes" >&2',
              "    exit 2",
              "fi",
              'export OMP_NUM_THREADS="$threads"',
              'result="$OUT/$(printf \'index_%04d\' "$index").jsonl"',
              "load=\"$(cut -d ' ' -f 1 /proc/loadavg)\"",
              "# the description plus the load average, then the records of `genenkf bench`;",
              "# the file gets its final name only when the step succeeded",
              "printf '%s, \"load_1min\": %s}\\n' \"${meta%\\}}\" \"$load\" > \"$result.partial\"",
              '"$@" >> "$result.partial"',
              'mv -f -- "$result.partial" "$result"',
              'echo "genenkf bench array: index $index done: $result"']
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", help="write the script here (default: standard output)")
    p.add_argument("--results", default="runs/bench-array", help="results directory")
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--tasks-per-node", type=int, default=32)
    p.add_argument("--gpus-per-node", type=int, default=0)
    p.add_argument("--cpus-per-task", type=int, default=1)
    p.add_argument("--time", default="00:30:00", help="walltime of each index")
    p.add_argument("--mem", default="")
    p.add_argument("--partition", default="")
    p.add_argument("--account", default="")
    p.add_argument("--qos", default="")
    p.add_argument("--job-name", default="genenkf-bench")
    p.add_argument("--log-dir", default="", help="directory of the Slurm output files")
    p.add_argument("--workdir", default="", help="where the job starts (default: submission "
                   "directory, which must be the repository root for the default --config)")
    p.add_argument("--python", default="python3")
    p.add_argument("--venv", default="")
    p.add_argument("--module", action="append", default=[], dest="modules")
    p.add_argument("--srun-mpi", default="", help="srun --mpi plugin, e.g. pmix")
    p.add_argument("--distribution", default="block", choices=DISTRIBUTIONS,
                   help="srun task distribution over nodes (cyclic spreads member owners)")
    p.add_argument("--max-parallel", type=int, default=0, help="array throttle (%%M)")
    p.add_argument("--shared", action="store_true", help="no --exclusive")
    p.add_argument("--allow-run-as-root", action="store_true", help="Open MPI as root (CI)")
    p.add_argument("--only", nargs="+", choices=SWEEPS, metavar="SWEEP", default=SWEEPS)
    p.add_argument("--ranks", type=int, nargs="+", help="rank counts (default: powers of 2)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="any bench_suite.Settings field (repeatable)")
    return p.parse_args(argv)


def build(args) -> str:
    spec = make_job(scheduler="slurm", stage="dataset",  # an MPI job with the same resources
                    config="configs/paper.toml", out=args.results, nodes=args.nodes,
                    tasks_per_node=args.tasks_per_node, gpus_per_node=args.gpus_per_node,
                    cpus_per_task=args.cpus_per_task, time=args.time, mem=args.mem,
                    partition=args.partition, account=args.account, qos=args.qos,
                    job_name=args.job_name, log_dir=args.log_dir, workdir=args.workdir,
                    python=args.python, venv=args.venv, modules=args.modules,
                    srun_mpi=args.srun_mpi, allow_run_as_root=args.allow_run_as_root)
    changes = {}
    if args.ranks:
        changes["ranks"] = tuple(args.ranks)
    settings = cluster_settings(args.nodes, args.tasks_per_node, args.gpus_per_node, **changes)
    ns = argparse.Namespace(set=args.set, nx_list=None, members_list=None, ranks=None,
                            train_ranks=None, repeat=None)
    try:
        settings = bench_suite.settings_from(ns, settings)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return render_array(spec, settings, args.only, args.max_parallel, not args.shared,
                        args.distribution)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        text = build(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.output:
        from genenkf_hpc.io.atomic import write_text

        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        if args.log_dir:  # Slurm does not create it, and a job without it fails silently
            Path(args.log_dir).mkdir(parents=True, exist_ok=True)
        write_text(args.output, text)
        os.chmod(args.output, 0o755)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

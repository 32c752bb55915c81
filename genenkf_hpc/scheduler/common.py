"""Pieces shared by the Slurm and PBS renderers: the stage's command line, the environment
set-up, the signal-forwarding launch helper, and the end of the script.

Everything that comes from the user is passed through :func:`q` (``shlex.quote``); the only
unquoted expansions in a script are the shell's own variables (``"$OUT"``, ``"$PYTHON"``, ...),
always inside double quotes.
"""
from __future__ import annotations

import shlex
import textwrap

from .spec import JobSpec

q = shlex.quote

# How a re-submitted job resumes. train: --resume needs a checkpoint, so only when one exists;
# assimilate and campaign: --resume is always safe (it starts afresh when there is nothing to
# resume and skips finished runs). nature and dataset are short and simply run again.
RESUME_MARKER = {"train": "checkpoints/latest.pt", "assimilate": None, "campaign": None}

# Exit status of a job that was stopped (walltime warning, preemption) after checkpointing:
# non-zero so that `afterok` dependants do not start on incomplete results (EX_TEMPFAIL).
STOPPED_STATUS = 75


def describe(spec: JobSpec, launch: str) -> list[str]:
    """What the job runs and how, as comment lines for the script's header."""
    layout = f"{spec.nodes} node(s) x {spec.tasks_per_node} process(es) per node"
    if spec.kind == "serial":
        text = f"genenkf {spec.stage}: one process."
    elif spec.kind == "ddp":
        dev = (f"one process per GPU ({spec.gpus_per_node} per node)" if spec.gpus_per_node
               else "CPUs (gloo)")
        text = f"genenkf {spec.stage}: DistributedDataParallel on {dev}, {layout}, via {launch}."
    else:
        text = (f"genenkf {spec.stage}: MPI, {layout}, via {launch} + mpi4py (an exception on "
                "any rank aborts the whole job).")
    tool = "sbatch" if spec.scheduler == "slurm" else "qsub"
    text += (f" Rendered by `genenkf jobs render`; submit with `{tool} SCRIPT`. Submitting it "
             "again after a walltime or preemption stop continues where it stopped.")
    return ["# " + line for line in textwrap.wrap(text, 94)]


def stage_args(spec: JobSpec) -> list[str]:
    """The genenkf command's arguments, each already a shell word (``--out "$OUT"``)."""
    words = [spec.stage, "-c", q(spec.config), "--out", '"$OUT"']
    if spec.method:
        words += ["--method", q(spec.method)]
    for flag, value in (("--data", spec.data), ("--nature", spec.nature),
                        ("--model", spec.model)):
        if value:
            words += [flag, q(value)]
    if spec.stage in RESUME_MARKER:
        words.append('"$@"' if RESUME_MARKER[spec.stage] else "--resume")
    words += [q(item) for item in spec.overrides]
    return words


def setup_lines(spec: JobSpec, workdir_default: str | None) -> list[str]:
    """cd, modules, venv, interpreter and launcher look-up, thread count, OUT."""
    lines = []
    workdir = q(spec.workdir) if spec.workdir else workdir_default
    if workdir:
        lines.append(f"cd -- {workdir}")
    if spec.modules or spec.venv:
        lines.append("set +u  # module and venv activation scripts are not written for set -u")
        lines += [f"module load {q(m)}" for m in spec.modules]
        if spec.venv:
            lines.append(f"source {q(spec.venv.rstrip('/') + '/bin/activate')}")
        lines.append("set -u")
    lines.append(_lookup("PYTHON", spec.python, "Python interpreter"))
    if spec.scheduler == "pbs" and (spec.kind == "mpi" or
                                    (spec.kind == "ddp" and spec.launcher == "mpiexec")):
        lines.append(_lookup("MPIEXEC", spec.mpiexec, "MPI launcher"))
    lines.append(f"export OMP_NUM_THREADS={spec.cpus_per_task}")
    if spec.allow_run_as_root:
        lines.append("export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
    lines.append(f"OUT={q(spec.out)}")
    marker = RESUME_MARKER.get(spec.stage)
    if marker:
        lines += ["# Resume when an earlier run of this job left a checkpoint (walltime, "
                  "preemption).",
                  "set --",
                  f'if [ -e "$OUT"/{q(marker)} ]; then set -- --resume; fi']
    return lines


def _lookup(var: str, program: str, what: str) -> str:
    message = q(f"genenkf job: {what} {program} not found")
    return f'{var}="$(command -v -- {q(program)})" || {{ echo {message} >&2; exit 2; }}'


RUN_STEP = r'''# The job step runs in the background so that this shell can catch the walltime warning
# or a TERM and pass it on as USR1: the program writes a checkpoint and exits cleanly (a
# TERM would make the launcher kill the processes at once).
stop_signal=""
on_signal() {
    stop_signal=$1
    interrupted=1
    echo "genenkf job: caught SIG$1, asking the job step to checkpoint and stop" >&2
    kill -USR1 "$step_pid" 2>/dev/null || true
}
run_step() {
    "$@" &
    step_pid=$!
    trap 'on_signal USR1' USR1
    trap 'on_signal TERM' TERM
    local status=0
    while :; do
        interrupted=0
        wait "$step_pid" && status=0 || status=$?
        # A trapped signal ends `wait` early (status > 128): wait again for the step itself.
        [ "$interrupted" = 1 ] && [ "$status" -gt 128 ] || break
    done
    trap - USR1 TERM
    return "$status"
}'''


def finish_lines(spec: JobSpec, requeue_command: str | None) -> list[str]:
    """After the step: exit with its status, or mark a signalled stop as incomplete."""
    again = ("submit this script again to resume" if spec.stage in RESUME_MARKER
             else "submit this script again to rerun it")
    lines = ['if [ -n "$stop_signal" ]; then']
    if requeue_command:
        lines += ['    echo "genenkf job: stopped by SIG$stop_signal; requeueing to resume" >&2',
                  f"    {requeue_command}",
                  "    exit 0",
                  "fi"]
    else:
        lines += [f'    echo "genenkf job: stopped by SIG$stop_signal before the end; {again}"'
                  " >&2",
                  f"    exit {STOPPED_STATUS}",
                  "fi"]
    lines.append('exit "$status"')
    return lines


def join_command(words: list[str], indent: str = "    ", width: int = 96) -> str:
    """Shell words on continuation lines no wider than ``width`` (words are never split)."""
    lines, current = [], ""
    for word in words:
        if current and len(current) + 1 + len(word) > width - 2:
            lines.append(current + " \\")
            current = indent + word
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return "\n".join(lines)

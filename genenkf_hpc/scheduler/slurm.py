"""Slurm batch scripts: ``render_slurm(spec) -> str`` (pure).

MPI stages start as ``srun python -m mpi4py -m genenkf_hpc ...`` (mpi4py's runner calls
MPI_Abort on an unhandled exception, and ``--kill-on-bad-exit`` ends the step when any task
fails). ``train`` runs one task per GPU under ``srun`` (ranks from SLURM_PROCID/SLURM_LOCALID/
SLURM_NTASKS or PMIx) or one ``torchrun`` per node; without GPUs it runs on CPUs with gloo.
``--signal=B:USR1@N`` warns the batch shell N seconds before the time limit; the shell forwards
the warning to the step, whose program checkpoints and exits (see ``common.RUN_STEP``).
"""
from __future__ import annotations

from .common import (RUN_STEP, describe, finish_lines, join_command, q, setup_lines,
                     stage_args)
from .spec import JobSpec

# DDP rendezvous: the allocation's first node and a port derived from the job id, so jobs
# sharing a node do not collide.
_RENDEZVOUS = [
    'MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
    'MASTER_PORT="$((20000 + SLURM_JOB_ID % 20000))"',
    "export MASTER_ADDR MASTER_PORT",
]


def render_slurm(spec: JobSpec) -> str:
    assert spec.scheduler == "slurm"
    torchrun = spec.kind == "ddp" and spec.launcher == "torchrun"
    launch = "torchrun per node" if torchrun else "srun"
    lines = ["#!/bin/bash"] + [f"#SBATCH {d}" for d in directives(spec, torchrun)]
    lines += ["#", *describe(spec, launch),
              "set -euo pipefail",
              ""]
    lines += setup_lines(spec, workdir_default=None)
    if spec.kind == "ddp":
        lines += _RENDEZVOUS
    lines += ["", RUN_STEP, "", "status=0",
              join_command(["run_step", *step_command(spec, torchrun)]) + " || status=$?"]
    requeue = 'scontrol requeue "$SLURM_JOB_ID"' if spec.requeue else None
    lines += finish_lines(spec, requeue)
    return "\n".join(lines) + "\n"


def directives(spec: JobSpec, torchrun: bool) -> list[str]:
    tasks, cpus = spec.tasks_per_node, spec.cpus_per_task
    if torchrun:  # one launcher task per node starts tasks_per_node workers
        tasks, cpus = 1, spec.tasks_per_node * spec.cpus_per_task
    out = [f"--job-name={q(spec.name)}", *resource_directives(spec, tasks, cpus)]
    if spec.log_dir:
        out.append(f"--output={q(spec.log_dir.rstrip('/') + '/%x-%j.out')}")
    out.append("--open-mode=append")  # a requeued job adds to its log instead of replacing it
    if spec.signal_lead:
        out.append(f"--signal=B:USR1@{spec.signal_lead}")
    if spec.requeue:
        out.append("--requeue")
    out.append("--kill-on-invalid-dep=yes")  # a failed upstream stage cancels this one
    return out


def resource_directives(spec: JobSpec, tasks: int, cpus: int) -> list[str]:
    """Nodes, tasks and CPUs (as given), GPUs, time, memory, partition, account, QOS."""
    out = [f"--nodes={spec.nodes}", f"--ntasks-per-node={tasks}", f"--cpus-per-task={cpus}"]
    if spec.gpus_per_node:
        out.append(f"--gpus-per-node={spec.gpus_per_node}")
    out.append(f"--time={spec.time}")
    for key in ("mem", "partition", "account", "qos"):
        if getattr(spec, key):
            out.append(f"--{key}={q(getattr(spec, key))}")
    return out


def step_command(spec: JobSpec, torchrun: bool) -> list[str]:
    srun = ["srun", "--kill-on-bad-exit=1"]
    if spec.srun_mpi:
        srun.append(f"--mpi={q(spec.srun_mpi)}")
    args = stage_args(spec)
    if spec.kind == "serial":
        return ["srun", "--ntasks=1", '"$PYTHON"', "-m", "genenkf_hpc", *args]
    if spec.kind == "mpi":
        return [*srun, '"$PYTHON"', "-m", "mpi4py", "-m", "genenkf_hpc", *args]
    if torchrun:
        return [*srun, "--ntasks-per-node=1", '"$PYTHON"', "-m", "torch.distributed.run",
                '--nnodes="$SLURM_JOB_NUM_NODES"', f"--nproc-per-node={spec.tasks_per_node}",
                "--rdzv-backend=c10d", '--rdzv-endpoint="$MASTER_ADDR:$MASTER_PORT"',
                '--rdzv-id="$SLURM_JOB_ID"', "-m", "genenkf_hpc", *args]
    return [*srun, '"$PYTHON"', "-m", "genenkf_hpc", *args]

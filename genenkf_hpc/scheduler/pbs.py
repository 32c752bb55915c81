"""PBS (PBS Pro / OpenPBS; Torque reads the same script) batch scripts: ``render_pbs(spec)``.

Resources as ``-l select=N:ncpus=..:mpiprocs=..:ngpus=..``; the job starts in
``$PBS_O_WORKDIR``; the number of processes and the hosts come from ``$PBS_NODEFILE`` (one line
per MPI process). MPI stages run ``mpiexec -n $NP python -m mpi4py -m genenkf_hpc ...``;
variables the processes need are passed through ``env`` on the command line because Open MPI
does not export the batch shell's environment to other nodes. PBS sends SIGTERM before it kills
a job (walltime, qdel, preemption); the script forwards it as USR1, the program checkpoints.
"""
from __future__ import annotations

from .common import (RUN_STEP, describe, finish_lines, join_command, q, setup_lines,
                     stage_args)
from .spec import JobSpec

_NODEFILE = [
    ': "${PBS_NODEFILE:?is not set: submit this script with qsub}"',
    'NP="$(wc -l < "$PBS_NODEFILE")"  # PBS lists each node once per MPI process (mpiprocs)',
]
# DDP rendezvous: the first host of the job and a port derived from the job id.
_RENDEZVOUS = [
    'MASTER_ADDR="$(head -n 1 "$PBS_NODEFILE")"',
    'MASTER_PORT="$((20000 + $(printf %s "$PBS_JOBID" | cksum | cut -d " " -f 1) % 20000))"',
    "export MASTER_ADDR MASTER_PORT",
]


def render_pbs(spec: JobSpec) -> str:
    assert spec.scheduler == "pbs"
    torchrun = spec.kind == "ddp" and spec.launcher == "torchrun"
    launch = "torchrun" if torchrun else "mpiexec"
    lines = ["#!/bin/bash"] + [f"#PBS {d}" for d in directives(spec, torchrun)]
    lines += ["#", *describe(spec, launch),
              "set -euo pipefail",
              ""]
    lines += setup_lines(spec, workdir_default='"$PBS_O_WORKDIR"')
    uses_mpiexec = spec.kind == "mpi" or (spec.kind == "ddp" and not torchrun)
    if uses_mpiexec:
        lines += _NODEFILE
    if spec.kind == "ddp" and not torchrun:
        lines += _RENDEZVOUS
    lines += ["", RUN_STEP, "", "status=0",
              join_command(["run_step", *step_command(spec, torchrun)]) + " || status=$?"]
    lines += finish_lines(spec, None)  # qrerun needs operator rights: the user resubmits
    return "\n".join(lines) + "\n"


def directives(spec: JobSpec, torchrun: bool) -> list[str]:
    procs = 1 if torchrun else spec.tasks_per_node
    chunk = (f"select={spec.nodes}:ncpus={spec.tasks_per_node * spec.cpus_per_task}"
             f":mpiprocs={procs}")
    if spec.gpus_per_node:
        chunk += f":ngpus={spec.gpus_per_node}"
    if spec.mem:
        chunk += f":mem={spec.mem[:-1]}{spec.mem[-1].lower()}b"
    out = [f"-N {q(spec.name)}", f"-l {chunk}"]
    if spec.nodes > 1:
        out.append("-l place=scatter")  # one chunk per node
    out.append(f"-l walltime={spec.time}")
    if spec.partition:
        out.append(f"-q {q(spec.partition)}")
    if spec.account:
        out.append(f"-A {q(spec.account)}")
    out.append("-j oe")
    if spec.log_dir:
        out.append(f"-o {q(spec.log_dir.rstrip('/') + '/')}")
    if spec.requeue:
        out.append("-r y")
    return out


def step_command(spec: JobSpec, torchrun: bool) -> list[str]:
    args = stage_args(spec)
    if spec.kind == "serial":
        return ['"$PYTHON"', "-m", "genenkf_hpc", *args]
    if torchrun:
        return ['"$PYTHON"', "-m", "torch.distributed.run", "--standalone",
                f"--nproc-per-node={spec.tasks_per_node}", "-m", "genenkf_hpc", *args]
    env = ["env", '"OMP_NUM_THREADS=$OMP_NUM_THREADS"']
    if spec.kind == "ddp":
        env += ['"MASTER_ADDR=$MASTER_ADDR"', '"MASTER_PORT=$MASTER_PORT"']
    mpi = ["-m", "mpi4py"] if spec.kind == "mpi" else []
    return ['"$MPIEXEC"', "-n", '"$NP"', "-machinefile", '"$PBS_NODEFILE"', *env,
            '"$PYTHON"', *mpi, "-m", "genenkf_hpc", *args]

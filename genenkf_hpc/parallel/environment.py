"""The one reader of launcher environments (torchrun, Slurm, PBS, Open MPI, MPICH/Hydra).

Maps whichever launcher started the process to rank, local rank, world size and device, for both
the MPI layer and torch DistributedDataParallel. Pure: it reads a mapping (``os.environ`` by
default) and imports neither mpi4py nor torch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

# (launcher, rank, local rank, world size) variables, in order of precedence: torchrun sets its
# own even under Slurm; an MPI launcher's variables come before Slurm's because `srun` inside an
# `mpiexec` would be unusual while `mpiexec` inside an allocation is common. PBS sets no rank
# variables of its own: its jobs launch through mpiexec, whose variables are read here.
_LAUNCHERS = (
    ("torchrun", "RANK", "LOCAL_RANK", "WORLD_SIZE"),
    ("openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_SIZE"),
    ("mpich", "PMI_RANK", "MPI_LOCALRANKID", "PMI_SIZE"),
    ("pmix", "PMIX_RANK", "MPI_LOCALRANKID", "PMIX_SIZE"),
    # `srun --mpi=pmix` sets PMIX_RANK but no PMIX_SIZE: an MPI job all the same.
    ("pmix", "PMIX_RANK", "SLURM_LOCALID", "SLURM_NTASKS"),
    ("slurm", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS"),
)
_MPI_LAUNCHERS = {"openmpi", "mpich", "pmix"}


@dataclass(frozen=True)
class LaunchEnvironment:
    launcher: str  # "single", "torchrun", "openmpi", "mpich", "pmix", "slurm"
    rank: int
    local_rank: int
    world_size: int

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def under_mpi(self) -> bool:
        """True when an MPI launcher started us (mpi4py's COMM_WORLD then spans the job)."""
        return self.launcher in _MPI_LAUNCHERS

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def read_environment(env: Mapping[str, str] | None = None) -> LaunchEnvironment:
    """Rank/local rank/world size from the first launcher whose variables are all present."""
    env = os.environ if env is None else env
    for name, rank_var, local_var, size_var in _LAUNCHERS:
        if size_var.startswith("SLURM_") and not in_slurm_step(env):
            continue  # a batch script sees SLURM_NTASKS of its allocation but is one process
        if rank_var in env and size_var in env:
            rank = _int(env, rank_var)
            size = _int(env, size_var)
            local = _int(env, local_var) if local_var in env else rank
            if size > 1 or name == "torchrun":
                return LaunchEnvironment(name, rank, local, size)
    return LaunchEnvironment("single", 0, 0, 1)


def in_slurm_step(env: Mapping[str, str]) -> bool:
    """True inside an ``srun`` job step (a batch script itself is not a parallel launch)."""
    return "SLURM_STEP_ID" in env or "SLURM_STEPID" in env


def _int(env: Mapping[str, str], key: str) -> int:
    try:
        return int(env[key])
    except ValueError:
        raise ValueError(f"launcher variable {key}={env[key]!r} is not an integer") from None


def select_device(requested: str, local_rank: int, cuda_available: bool) -> str:
    """``auto`` -> ``cuda:<local_rank>`` when a GPU is present, else ``cpu``."""
    if requested == "auto":
        return f"cuda:{local_rank}" if cuda_available else "cpu"
    if requested == "cuda":
        return f"cuda:{local_rank}"
    return requested


def rendezvous(env: Mapping[str, str] | None = None) -> tuple[str, int]:
    """MASTER_ADDR/MASTER_PORT for torch.distributed, with single-node defaults."""
    env = os.environ if env is None else env
    addr = env.get("MASTER_ADDR", "127.0.0.1")
    port = int(env.get("MASTER_PORT", "29511"))
    return addr, port


# Processes of this job on this node, by launcher (torchrun, Open MPI, MPICH/Hydra, Slurm).
_LOCAL_SIZE_VARS = ("LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS",
                    "SLURM_NTASKS_PER_NODE")


def threads_per_process(env: Mapping[str, str] | None = None, cores: int | None = None) -> int:
    """CPU threads one process should use: OMP_NUM_THREADS when set, else the node's cores
    shared by the job's processes on the node. Oversubscribed OpenMP pools spin against each
    other (a 20x slowdown of torch here), so this never exceeds cores / local processes."""
    env = os.environ if env is None else env
    if env.get("OMP_NUM_THREADS", "").isdigit() and int(env["OMP_NUM_THREADS"]) > 0:
        return int(env["OMP_NUM_THREADS"])
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else (os.cpu_count() or 1)
    local = next((int(env[v].split("(")[0]) for v in _LOCAL_SIZE_VARS
                  if env.get(v, "").split("(")[0].isdigit()), 1)
    return max(1, cores // max(1, local))

"""Communicator wrapper: mpi4py when launched under MPI with several ranks, else a serial stand-in.

Everything above this layer receives a :class:`Comm` explicitly (no module-level COMM_WORLD).
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .environment import read_environment


class SerialComm:
    """One process: collectives are identities."""

    rank = 0
    size = 1
    is_main = True

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return obj

    def barrier(self) -> None:
        pass

    def allreduce(self, value, op: str = "sum"):
        return value

    def gather(self, obj: Any, root: int = 0) -> list | None:
        return [obj]

    def allgather(self, obj: Any) -> list:
        return [obj]

    def abort(self, code: int = 1) -> None:
        sys.exit(code)


class MPIComm:
    """Thin wrapper over an mpi4py communicator."""

    def __init__(self, comm):
        self.mpi = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.is_main = self.rank == 0

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return self.mpi.bcast(obj, root=root)

    def barrier(self) -> None:
        self.mpi.Barrier()

    def allreduce(self, value, op: str = "sum"):
        from mpi4py import MPI

        mpi_op = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]
        if isinstance(value, np.ndarray):
            out = np.empty_like(value)
            self.mpi.Allreduce(np.ascontiguousarray(value), out, op=mpi_op)
            return out
        return self.mpi.allreduce(value, op=mpi_op)

    def gather(self, obj: Any, root: int = 0) -> list | None:
        return self.mpi.gather(obj, root=root)

    def allgather(self, obj: Any) -> list:
        return self.mpi.allgather(obj)

    def abort(self, code: int = 1) -> None:
        self.mpi.Abort(code)


def world() -> SerialComm | MPIComm:
    """The job's communicator: MPI only when an MPI launcher started several ranks."""
    env = read_environment()
    if env.under_mpi and env.world_size > 1:
        try:
            from mpi4py import MPI
        except ImportError:  # pragma: no cover - mpi4py is a dependency
            raise RuntimeError("launched under MPI but mpi4py is not importable") from None
        return MPIComm(MPI.COMM_WORLD)
    return SerialComm()

"""Communicator wrapper: mpi4py when launched under MPI with several ranks, else a serial stand-in.

Everything above this layer receives a :class:`SerialComm` or :class:`MPIComm` explicitly (no
module-level COMM_WORLD). Both have the same interface:

- object collectives (pickled, for small metadata): ``bcast``, ``gather``, ``allgather``,
  ``allreduce``, ``barrier``;
- buffer collectives on numpy arrays (no pickling; what the cycle uses): ``Allreduce``,
  ``Bcast``, ``Alltoallv``, ``Allgatherv``, ``Gatherv``. Counts are numbers of *elements* per
  rank; buffers are flattened C-order arrays and the result is a new 1-D array;
- ``Exchange``: point-to-point messages with a few neighbours (halo exchanges);
- ``split(color, key)``: sub-communicators (the domains of a member group, the member groups
  of a domain);
- ``abort(code)``: end the whole job now (an exception on one rank must not leave the others
  blocked in a collective, CONTRACT section 6).
"""
from __future__ import annotations

import os
import sys
from typing import Any, Sequence

import numpy as np

from ..errors import UserError
from .environment import read_environment


_EXCHANGE_TAG = 14  # halo exchanges: one message per pair of ranks per exchange


def _flat(array) -> np.ndarray:
    return np.ascontiguousarray(array).reshape(-1)


def _displacements(counts: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)


class SerialComm:
    """One process: every collective is a copy (so callers may mutate results freely)."""

    rank = 0
    size = 1
    is_main = True

    # -- object collectives
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

    # -- buffer collectives
    def Allreduce(self, array: np.ndarray, op: str = "sum") -> np.ndarray:
        return np.array(array, copy=True)

    def Bcast(self, array: np.ndarray | None, root: int = 0) -> np.ndarray:
        return np.array(array, copy=True)

    def Alltoallv(self, sendbuf: np.ndarray, sendcounts, recvcounts) -> np.ndarray:
        assert int(sendcounts[0]) == int(recvcounts[0]) == np.size(sendbuf)
        return _flat(sendbuf).copy()

    def Allgatherv(self, sendbuf: np.ndarray, counts) -> np.ndarray:
        assert int(counts[0]) == np.size(sendbuf)
        return _flat(sendbuf).copy()

    def Gatherv(self, sendbuf: np.ndarray, counts, root: int = 0) -> np.ndarray | None:
        assert int(counts[0]) == np.size(sendbuf)
        return _flat(sendbuf).copy()

    def Exchange(self, sends: dict, recv_counts: dict, dtype) -> dict:
        assert not sends and not recv_counts, "one rank copies its own points, it sends nothing"
        return {}

    def split(self, color: int, key: int) -> "SerialComm":
        return SerialComm()

    def abort(self, code: int = 1) -> None:
        sys.exit(code)


class MPIComm:
    """Thin wrapper over an mpi4py communicator."""

    def __init__(self, comm):
        from mpi4py import MPI

        self._MPI = MPI
        self.mpi = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.is_main = self.rank == 0

    def _op(self, op: str):
        return {"sum": self._MPI.SUM, "max": self._MPI.MAX, "min": self._MPI.MIN}[op]

    def _type(self, array: np.ndarray):
        from mpi4py.util.dtlib import from_numpy_dtype

        return from_numpy_dtype(array.dtype)

    # -- object collectives
    def bcast(self, obj: Any, root: int = 0) -> Any:
        return self.mpi.bcast(obj, root=root)

    def barrier(self) -> None:
        self.mpi.Barrier()

    def allreduce(self, value, op: str = "sum"):
        if isinstance(value, np.ndarray):
            return self.Allreduce(value, op)
        return self.mpi.allreduce(value, op=self._op(op))

    def gather(self, obj: Any, root: int = 0) -> list | None:
        return self.mpi.gather(obj, root=root)

    def allgather(self, obj: Any) -> list:
        return self.mpi.allgather(obj)

    # -- buffer collectives
    def Allreduce(self, array: np.ndarray, op: str = "sum") -> np.ndarray:
        send = np.ascontiguousarray(array)
        out = np.empty_like(send)
        self.mpi.Allreduce(send, out, op=self._op(op))
        return out

    def Bcast(self, array: np.ndarray | None, root: int = 0) -> np.ndarray:
        """Broadcast an array; non-root ranks may pass None (shape and dtype travel first)."""
        meta = self.mpi.bcast((array.shape, array.dtype.str) if self.rank == root else None,
                              root=root)
        buf = np.ascontiguousarray(array) if self.rank == root else np.empty(meta[0], meta[1])
        self.mpi.Bcast(buf, root=root)
        return buf

    def Alltoallv(self, sendbuf: np.ndarray, sendcounts, recvcounts) -> np.ndarray:
        send = _flat(sendbuf)
        scounts = np.asarray(sendcounts, dtype=np.int64)
        rcounts = np.asarray(recvcounts, dtype=np.int64)
        recv = np.empty(int(rcounts.sum()), dtype=send.dtype)
        mtype = self._type(send)
        self.mpi.Alltoallv([send, (scounts.tolist(), _displacements(scounts).tolist()), mtype],
                           [recv, (rcounts.tolist(), _displacements(rcounts).tolist()), mtype])
        return recv

    def Allgatherv(self, sendbuf: np.ndarray, counts) -> np.ndarray:
        send = _flat(sendbuf)
        counts = np.asarray(counts, dtype=np.int64)
        recv = np.empty(int(counts.sum()), dtype=send.dtype)
        self.mpi.Allgatherv([send, self._type(send)],
                            [recv, (counts.tolist(), _displacements(counts).tolist()),
                             self._type(send)])
        return recv

    def Gatherv(self, sendbuf: np.ndarray, counts, root: int = 0) -> np.ndarray | None:
        send = _flat(sendbuf)
        counts = np.asarray(counts, dtype=np.int64)
        if self.rank == root:
            recv = np.empty(int(counts.sum()), dtype=send.dtype)
            spec = [recv, (counts.tolist(), _displacements(counts).tolist()), self._type(send)]
        else:
            recv, spec = None, None
        self.mpi.Gatherv([send, self._type(send)], spec, root=root)
        return recv

    def Exchange(self, sends: dict, recv_counts: dict, dtype) -> dict:
        """Send ``sends[r]`` (flattened) to every rank r and receive ``recv_counts[r]`` elements
        of ``dtype`` from every rank r; returns the received 1-D arrays by rank. Non-blocking
        sends and receives, one wait: no ordering deadlock whatever the pattern."""
        dtype = np.dtype(dtype)
        mtype = self._type(np.empty(0, dtype))
        received, requests = {}, []
        for source, count in recv_counts.items():
            received[source] = np.empty(int(count), dtype)
            requests.append(self.mpi.Irecv([received[source], mtype], source=source,
                                           tag=_EXCHANGE_TAG))
        buffers = [np.ascontiguousarray(sends[dest], dtype=dtype).reshape(-1) for dest in sends]
        for dest, buf in zip(sends, buffers):
            requests.append(self.mpi.Isend([buf, mtype], dest=dest, tag=_EXCHANGE_TAG))
        self._MPI.Request.Waitall(requests)
        return received

    def split(self, color: int, key: int) -> "MPIComm":
        return MPIComm(self.mpi.Split(color, key))

    def abort(self, code: int = 1) -> None:
        # Flush first: MPI_Abort kills the process without running Python's exit handlers.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # pragma: no cover - a closed stream must not block the abort
                pass
        self.mpi.Abort(code)


def world(environ=None) -> SerialComm | MPIComm:
    """The job's communicator: MPI when an MPI launcher (mpiexec, srun with MPI support) started
    several ranks, else :class:`SerialComm`.

    Refuses (:class:`UserError`) when the launcher started N ranks but MPI sees a different
    number, e.g. ``srun -n 4`` without an MPI plug-in, which would silently run N copies of the
    same serial job.
    """
    environ = os.environ if environ is None else environ
    env = read_environment(environ)
    if env.world_size <= 1 or env.launcher == "torchrun":
        return SerialComm()
    if not (env.under_mpi or env.launcher == "slurm"):
        return SerialComm()
    try:
        from mpi4py import MPI
    except ImportError:
        raise UserError(f"started by {env.launcher} with {env.world_size} ranks but mpi4py is not "
                        "importable: install it (pip install mpi4py) or run one process") from None
    size = MPI.COMM_WORLD.Get_size()
    if size != env.world_size:
        if env.launcher == "slurm":
            who = "srun"
            how = "srun --mpi=pmix (or --mpi=pmi2, matching your MPI library) or mpiexec"
        else:
            who, how = "mpiexec", "the mpiexec of the MPI library that mpi4py was built with"
        raise UserError(f"{who} started {env.world_size} tasks but MPI sees {size}: the tasks "
                        f"are not connected to each other; launch with {how}")
    return MPIComm(MPI.COMM_WORLD)


def collective_error(error: UserError, comm=None) -> UserError:
    """Mark a :class:`UserError` as raised by every rank of ``comm`` at the same point, so the
    CLI reports it once (rank 0) and lets all ranks exit with status 2 instead of aborting the
    job. The mark keeps ``comm``'s size: the CLI trusts it only when that communicator spans
    the whole job. An error of a one-rank communicator inside a larger job (a campaign runs
    each assimilation on one rank) concerns that rank alone, and the job must be aborted
    (:func:`is_collective`). Without ``comm`` the caller vouches that every rank raises it."""
    error.collective = True
    error.collective_size = None if comm is None else comm.size
    return error


def is_collective(error: BaseException, job_size: int) -> bool:
    """True when ``error`` was raised by every rank of a job of ``job_size`` ranks."""
    if not getattr(error, "collective", False):
        return False
    size = getattr(error, "collective_size", None)
    return size is None or size == job_size


class RootFailure(RuntimeError):
    """Raised on the other ranks when ``run_on_root``'s function failed on the root with an
    error other than a UserError (a bug, an OSError): they stop too instead of waiting."""


def run_on_root(comm, fn, root: int = 0):
    """``fn()`` on ``root`` only (e.g. reading and validating an input file); a UserError it
    raises is raised on every rank, collectively, and any other exception ends every rank
    (the root re-raises it, the others raise :class:`RootFailure`): no rank waits for a root
    that has gone. Returns ``fn()``'s result on ``root``, None elsewhere."""
    result, failure = None, None
    if comm.rank == root:
        try:
            result = fn()
        except UserError as exc:
            failure = ("user", str(exc))
        except BaseException as exc:
            comm.bcast(("other", f"{type(exc).__name__}: {exc}"), root=root)
            raise
    failure = comm.bcast(failure, root=root)
    if failure is not None:
        kind, message = failure
        if kind == "user":
            raise collective_error(UserError(message), comm)
        raise RootFailure(f"rank {root} failed: {message}")
    return result

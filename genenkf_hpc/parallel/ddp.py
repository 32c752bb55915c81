"""torch.distributed set-up and teardown for DistributedDataParallel training.

Rank, world size and local rank come from :mod:`.environment` (torchrun, srun, mpiexec alike).
The process group uses ``init_method="env://"``: MASTER_ADDR / MASTER_PORT are taken from the
environment when the launcher set them (torchrun does); otherwise they are agreed here:
- under an MPI launcher, rank 0 picks a free port (and its host name when the job spans several
  nodes) and broadcasts them over the MPI communicator, so concurrent jobs never collide;
- under srun without MPI, the first host of the Slurm node list and a port derived from the job
  id (every task computes the same values without communicating).
Backend: nccl on GPUs, gloo on CPUs. NCCL moves only CUDA tensors, so every collective here
puts its tensor on the group's device (``DistributedSetup.device``) first: callers pass plain
numbers or tensors wherever they live and get CPU results back (:func:`all_reduce_values`).
Under torchrun a process group is formed even for one process, so a one-GPU run exercises the
same code path as a multi-GPU one.
"""
from __future__ import annotations

import datetime
import os
import re
import socket
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
import torch.distributed as dist

from ..errors import UserError
from .environment import LaunchEnvironment, rendezvous, select_device


@dataclass(frozen=True)
class DistributedSetup:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None  # None: one process, no process group

    @property
    def active(self) -> bool:
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def first_host(nodelist: str) -> str:
    """First host of a Slurm node list: ``"gpu[03-05,09],cpu1"`` -> ``"gpu03"`` (pure)."""
    match = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if not match:
        raise ValueError(f"cannot parse Slurm node list {nodelist!r}")
    prefix, ranges = match.groups()
    if not ranges:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def agree_rendezvous(env: LaunchEnvironment, comm=None,
                     environ: Mapping[str, str] | None = None) -> tuple[str, int]:
    """MASTER_ADDR and MASTER_PORT every rank of the job agrees on."""
    environ = os.environ if environ is None else environ
    if "MASTER_ADDR" in environ and "MASTER_PORT" in environ:
        return rendezvous(environ)
    if comm is not None and getattr(comm, "size", 1) > 1:
        choice = None
        if comm.rank == 0:
            hosts = comm.gather(socket.gethostname())
            addr = environ.get("MASTER_ADDR") or (
                "127.0.0.1" if len(set(hosts)) == 1 else socket.getfqdn())
            port = int(environ["MASTER_PORT"]) if "MASTER_PORT" in environ else _free_port()
            choice = (addr, port)
        else:
            comm.gather(socket.gethostname())
        return tuple(comm.bcast(choice))
    if env.launcher == "slurm" and "SLURM_JOB_ID" in environ:
        nodes = environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_NODELIST", "")
        addr = environ.get("MASTER_ADDR") or (first_host(nodes) if nodes else "127.0.0.1")
        port = int(environ.get("MASTER_PORT", 20000 + int(environ["SLURM_JOB_ID"]) % 20000))
        return addr, port
    return rendezvous(environ)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def use_device(requested: str, local_rank: int, key: str = "device") -> torch.device:
    """The torch device of this process, made current: ``auto``/``cuda`` -> GPU ``local_rank``
    of the node (each rank of a multi-GPU job its own GPU), else ``cpu``; an explicit
    ``cuda:N`` or ``cpu`` is kept. ``key`` names the config key in errors."""
    try:
        dev = torch.device(select_device(requested, local_rank, torch.cuda.is_available()))
    except RuntimeError:
        raise UserError(f"{key}={requested!r}: expected auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"{key}={requested!r}: no CUDA GPU is visible to this process "
                            f"(torch {torch.__version__}, CUDA {torch.version.cuda})")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise UserError(f"{key}={requested!r}: this process wants GPU {dev.index} (local "
                            f"rank {local_rank}) but only {count} GPU(s) are visible: start one "
                            "process per GPU")
        torch.cuda.set_device(dev)
    return dev


def setup(env: LaunchEnvironment, device: str = "auto", comm=None,
          timeout_s: float = 1800.0, key: str = "train.device") -> DistributedSetup:
    """Choose the device and, with several processes (or under torchrun), join the process
    group."""
    dev = use_device(device, env.local_rank, key)
    if not env.distributed and env.launcher != "torchrun":
        return DistributedSetup(0, 1, 0, dev, None)
    addr, port = agree_rendezvous(env, comm)
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = addr, str(port)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    dist.init_process_group(backend, init_method="env://", rank=env.rank,
                            world_size=env.world_size,
                            timeout=datetime.timedelta(seconds=timeout_s))
    return DistributedSetup(env.rank, env.world_size, env.local_rank, dev, backend)


def teardown(ds: DistributedSetup, clean: bool = True) -> None:
    """Leave the process group. After success every rank first waits for the others (rank 0
    may still be writing files; a peer that destroys its group early can abort gloo's
    threads); after an error no collective is attempted, so nothing can hang."""
    if ds.active and dist.is_initialized():
        if clean:
            # NCCL's barrier runs on a device: name it, or torch guesses from the rank.
            if ds.backend == "nccl":
                dist.barrier(device_ids=[ds.device.index])
            else:
                dist.barrier()
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, ds: DistributedSetup) -> torch.nn.Module:
    """DistributedDataParallel around ``model`` when distributed, else ``model`` itself."""
    if not ds.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [ds.device.index] if ds.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def all_reduce_sum(tensor: torch.Tensor, ds: DistributedSetup) -> torch.Tensor:
    """Sum over ranks, reduced on the group's device; returns a new CPU tensor (the input is
    left alone). Identity (on CPU) for one process."""
    if not ds.active:
        return tensor.detach().cpu()
    out = tensor.detach().to(ds.device, copy=True)
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.cpu()


def all_reduce_values(values: Sequence, ds: DistributedSetup) -> list[float]:
    """Sums over ranks of a few numbers (python numbers or 0-d tensors on any device: loss
    sums, stop flags, timings), as float64 in one collective on the group's device."""
    packed = torch.stack([torch.as_tensor(v, dtype=torch.float64).detach().to(ds.device)
                          for v in values])
    return [float(v) for v in all_reduce_sum(packed, ds)]


def broadcast_tensor(tensor: torch.Tensor, ds: DistributedSetup, src: int = 0) -> torch.Tensor:
    """``src``'s tensor on every rank (sent on the group's device); returns a CPU tensor."""
    if not ds.active:
        return tensor.detach().cpu()
    out = tensor.detach().to(ds.device, copy=True)
    dist.broadcast(out, src=src)
    return out.cpu()


def broadcast_object(obj, ds: DistributedSetup, src: int = 0):
    """A small picklable object from ``src`` to every rank (run paths, flags)."""
    if not ds.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, device=ds.device)  # NCCL: pickles travel on the GPU
    return box[0]

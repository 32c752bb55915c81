"""The run directory: where a command writes its results, with config.toml and log.txt.

Rank 0 creates it and writes the resolved config; other ranks only learn its path. A run that
fails leaves ``error.txt`` (and no ``summary.json``), so nothing looks complete when it is not.
"""
from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from pathlib import Path

from .. import logs
from ..config import Config, to_toml
from ..errors import UserError
from ..parallel.environment import LaunchEnvironment
from .atomic import write_text

ERROR_FILE = "error.txt"


@dataclass
class RunContext:
    path: Path
    comm: object  # parallel.comm.SerialComm | MPIComm
    env: LaunchEnvironment
    log: logging.Logger
    cfg: Config | None = None
    log_file: logging.Handler | None = None  # rank 0's log.txt handler

    @property
    def is_main(self) -> bool:
        """Rank 0 of the job: the process that writes the run's files."""
        return self.env.rank == 0


def default_out(command: str) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{command}-{stamp}"


def open_run(command: str, out: str | None, cfg: Config | None, comm, env,
             log: logging.Logger) -> RunContext:
    """Create the run directory (rank 0), write config.toml, start log.txt."""
    path = Path(out) if out else default_out(command)
    path = Path(comm.bcast(str(path)))  # all MPI ranks agree on rank 0's choice
    if env.rank == 0:
        if path.exists() and not path.is_dir():
            raise UserError(f"--out {path}: exists and is not a directory")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"--out {path}: cannot create directory ({exc.strerror})") from None
        stale = path / ERROR_FILE
        if stale.exists():
            stale.unlink()
        if cfg is not None:
            write_text(path / "config.toml", to_toml(cfg))
        handler = logs.add_file(path / "log.txt")
    else:
        handler = None
    return RunContext(path=path, comm=comm, env=env, log=log, cfg=cfg, log_file=handler)


def close_run(ctx: RunContext) -> None:
    """Stop logging to the run's log.txt (a process that runs several, the Python API)."""
    logs.remove_handler(ctx.log_file)
    ctx.log_file = None


def record_failure(path: Path, message: str) -> None:
    """Leave a visible marker that the run failed (rank 0 calls this)."""
    try:
        if path.is_dir():
            write_text(path / ERROR_FILE, message.rstrip() + "\n")
    except OSError:
        pass


def sub_run(ctx: RunContext, name: str, cfg: Config | None = None) -> RunContext:
    """A stage of a composite command (demo): ``<run>/<name>/`` with its own config.toml, the
    parent's communicator and log (its log.txt records every stage)."""
    path = ctx.path / name
    if ctx.is_main:
        path.mkdir(parents=True, exist_ok=True)
        if cfg is not None:
            write_text(path / "config.toml", to_toml(cfg))
    ctx.comm.barrier()
    return RunContext(path=path, comm=ctx.comm, env=ctx.env, log=ctx.log, cfg=cfg)

"""Logging set-up, rank-aware: rank 0 logs INFO to the terminal and to the run's log.txt; other
ranks log warnings only, prefixed with their rank. Configured by the CLI, never at import.

Progress messages go to stdout and warnings to stderr, so that a failing command's stderr is
exactly its one ``error: ...`` line (CONTRACT section 2)."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

LOGGER_NAME = "genenkf"


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


def configure(rank: int = 0, verbose: bool = False) -> logging.Logger:
    log = get_logger()
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    log.propagate = False
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    if rank == 0:
        info = logging.StreamHandler(sys.stdout)
        info.setLevel(logging.DEBUG if verbose else logging.INFO)
        info.addFilter(lambda record: record.levelno < logging.WARNING)
        info.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(info)
    warn = logging.StreamHandler(sys.stderr)
    warn.setLevel(logging.WARNING)
    prefix = "" if rank == 0 else f"[rank {rank}] "
    warn.setFormatter(logging.Formatter(prefix + "%(levelname)s %(message)s"))
    log.addHandler(warn)
    return log


def add_file(path: str | Path) -> logging.Handler:
    """Also write the log to ``path`` (rank 0 only; the caller decides); returns the handler
    for :func:`remove_handler`."""
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    get_logger().addHandler(handler)
    return handler


def remove_handler(handler: logging.Handler | None) -> None:
    """Stop writing to ``handler`` (a run of the Python API has ended)."""
    if handler is not None:
        get_logger().removeHandler(handler)
        handler.close()

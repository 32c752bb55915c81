"""Shared test set-up: MPI may run as root (CI), single-threaded BLAS/torch for stable timings."""
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


@pytest.fixture
def genenkf_cmd():
    """The CLI as a subprocess argv prefix (the same interpreter as the tests)."""
    return [sys.executable, "-m", "genenkf_hpc"]

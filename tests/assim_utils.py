"""Helpers shared by the cycling tests: run the CLI in this process or as a subprocess, compare
analysis files."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from genenkf_hpc.cli import main
from genenkf_hpc.io.analysis_file import read_analysis

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "configs" / "tiny.toml")
STANDARD = str(REPO / "configs" / "l96_standard.toml")


def genenkf(*args) -> int:
    """``genenkf ARGS`` in this process (fast); returns the exit status."""
    return main([str(a) for a in args])


def genenkf_subprocess(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genenkf_hpc", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=timeout)


def summary(run_dir) -> dict:
    return json.loads((Path(run_dir) / "summary.json").read_text())


def analysis(run_dir) -> dict:
    return read_analysis(Path(run_dir) / "analysis.nc")


def max_abs_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(np.nanmax(np.abs(a[k] - b[k]))) if a[k].size else 0.0 for k in a)


def identical(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)


def assert_user_error(proc, fragment: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in proc.stderr

"""CONTRACT section 6: an exception on one rank ends the whole job quickly, non-zero, with that
rank's message; a bad input found by all ranks is one `error:` line and exit 2."""
import subprocess
import time

import pytest

from assim_utils import TINY
from mpi_utils import run_mpi

pytestmark = pytest.mark.mpi


def test_rank_exception_aborts_the_job(tmp_path):
    """Rank 1 raises at cycle 5 while rank 0 waits in the transpose: no hang."""
    t0 = time.monotonic()
    proc = run_mpi(2, ["assimilate", "-c", TINY, "--method", "letkf", "--out", tmp_path,
                       "osse.forcings=[8.0]", "osse.cycles=400"],
                   env={"GENENKF_FAIL_AT_CYCLE": "1:5"}, timeout=120)
    elapsed = time.monotonic() - t0
    assert proc.returncode != 0
    assert elapsed < 30, elapsed
    assert "injected failure (GENENKF_FAIL_AT_CYCLE) on rank 1 at cycle 5" in proc.stderr
    assert not (tmp_path / "summary.json").exists() and not (tmp_path / "analysis.nc").exists()


def test_bad_input_under_mpi_is_one_error_line(tmp_path):
    proc = run_mpi(2, ["assimilate", "-c", TINY, "--out", tmp_path,
                       "--nature", tmp_path / "missing.nc"], timeout=120)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "missing.nc does not exist" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


# What each rank of `genenkf ARGS` returns, written by the rank itself before a barrier that
# only ranks which returned can reach: Open MPI's launcher kills the other ranks when one exits
# with an error, other launchers (srun without --kill-on-bad-exit) do not, so a rank-0-only
# failure must make every rank return on its own.
_EACH_RANK_RETURNS = """
import sys
from pathlib import Path
from mpi4py import MPI
from genenkf_hpc.cli import main
rc = main(sys.argv[2:])
Path(sys.argv[1], f"rank{MPI.COMM_WORLD.Get_rank()}.rc").write_text(str(rc))
MPI.COMM_WORLD.Barrier()
"""


def test_out_is_a_file_every_rank_exits_2_on_its_own(tmp_path):
    """Issue 12, defect 5: `--out` an existing file failed on rank 0 alone while the other
    ranks went on to their first collective and waited there for ever."""
    out = tmp_path / "taken"
    out.write_text("not a directory")
    t0 = time.monotonic()
    proc = run_mpi(2, ["assimilate", "-c", TINY, "--out", out], timeout=60)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: --out {out}: exists and is not a directory"], proc.stderr
    assert time.monotonic() - t0 < 30
    try:
        proc = run_mpi(2, ["python", "-c", _EACH_RANK_RETURNS, tmp_path, "assimilate", "-c",
                           TINY, "--out", out], timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("a rank never returned: it waits for rank 0, which has failed")
    assert proc.returncode == 0, proc.stderr
    assert [(tmp_path / f"rank{r}.rc").read_text() for r in (0, 1)] == ["2", "2"]

"""CONTRACT section 6: an exception on one rank ends the whole job quickly, non-zero, with that
rank's message; a bad input found by all ranks is one `error:` line and exit 2."""
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

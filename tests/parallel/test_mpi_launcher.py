"""tests/mpi_utils.py: a missing mpiexec fails the MPI tests instead of skipping them."""
import pytest

import mpi_utils


def test_missing_mpiexec_is_a_failure_not_a_skip(monkeypatch):
    monkeypatch.setattr(mpi_utils, "find_mpiexec", lambda: None)
    with pytest.raises(BaseException) as outcome:  # a skip is an exception too: catch it here
        mpi_utils.mpi_command(2, ["assimilate"])
    assert outcome.type is pytest.fail.Exception, outcome.type
    assert "no mpiexec" in str(outcome.value)


def test_found_mpiexec_runs_the_cli_on_n_ranks():
    argv = mpi_utils.mpi_command(3, ["assimilate", "--method", "letkf"])
    assert argv[:3] == [mpi_utils.find_mpiexec(), "-n", "3"]
    assert argv[-5:] == ["-m", "genenkf_hpc", "assimilate", "--method", "letkf"]

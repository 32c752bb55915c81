"""CONTRACT section 9 under ``mpiexec -n 2``: every rank calls the API and gets the full result,
equal to the serial CLI's (max abs difference <= 1e-10, as CONTRACT section 6); ``out=`` writes
what the CLI writes; an exception on one rank ends the whole job."""
import time

import numpy as np
import pytest
import xarray as xr

from assim_utils import TINY, analysis, genenkf, max_abs_diff
from mpi_utils import REPO, run_mpi

pytestmark = pytest.mark.mpi
SCRIPT = REPO / "tests" / "parallel" / "mpi_api_check.py"


def test_every_rank_gets_the_full_result_equal_to_the_cli(tmp_path):
    proc = run_mpi(2, ["python", SCRIPT, TINY, tmp_path], timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert genenkf("nature", "-c", TINY, "--out", tmp_path / "cli_nature") == 0
    assert genenkf("assimilate", "-c", TINY, "--method", "letkf", "--out", tmp_path / "letkf") == 0
    with xr.open_dataset(tmp_path / "cli_nature" / "nature.nc") as cli_nature:
        for rank in (0, 1):
            with xr.open_dataset(tmp_path / f"nature_rank{rank}.nc") as ds:
                xr.testing.assert_identical(ds, cli_nature)
    for method in ("letkf", "etkf"):
        with xr.open_dataset(tmp_path / f"{method}_rank0.nc") as r0, \
                xr.open_dataset(tmp_path / f"{method}_rank1.nc") as r1:
            xr.testing.assert_identical(r0, r1)  # the same result on every rank
            assert set(r0.attrs["config"].splitlines()) >= {"nx = 16", "members = 6"}
    # the ranks' letkf equals one process's CLI run
    with xr.open_dataset(tmp_path / "letkf_rank1.nc") as ds:
        for forcing in (8, 10):
            serial = analysis(tmp_path / "letkf" / f"forcing_{forcing}")
            one = ds.sel(forcing=float(forcing))
            parallel = {name: one[name].values for name in
                        ("truth", "obs", "analysis_mean", "analysis_spread")}
            parallel.update({name: one[f"{name}_series"].values
                             for name in ("rmse", "spread", "crps")})
            serial = {k: v for k, v in serial.items() if k in parallel}
            assert max_abs_diff(serial, parallel) <= 1e-10
    # out= under MPI writes what the CLI writes, with ranks = 2
    assert sorted(p.name for p in (tmp_path / "api").iterdir()) == \
        ["config.toml", "forcing_10", "forcing_8", "log.txt"]
    assert genenkf("assimilate", "-c", TINY, "--method", "etkf", "--out", tmp_path / "etkf") == 0
    for sub in ("forcing_8", "forcing_10"):
        assert max_abs_diff(analysis(tmp_path / "api" / sub), analysis(tmp_path / "etkf" / sub)) \
            <= 1e-10
    with xr.open_dataset(tmp_path / "etkf_rank0.nc") as ds:
        assert np.isfinite(ds.rmse.values).all() and ds.rmse.dims == ("forcing",)


def test_an_exception_on_one_rank_ends_the_job(tmp_path):
    t0 = time.monotonic()
    proc = run_mpi(2, ["python", SCRIPT, TINY, tmp_path, "osse.cycles=400"],
                   env={"GENENKF_FAIL_AT_CYCLE": "1:5"}, timeout=120)
    assert proc.returncode != 0
    assert time.monotonic() - t0 < 60
    assert "injected failure (GENENKF_FAIL_AT_CYCLE) on rank 1 at cycle 5" in proc.stderr
    assert not list(tmp_path.glob("*.nc"))

"""CONTRACT section 6: `mpiexec -n R genenkf assimilate` writes the analysis.nc of one process
(max abs difference <= 1e-10), also for member and grid counts the rank count does not divide
and for more ranks than members; ETKF/EnKF sums are Allreduced."""
import pytest

from assim_utils import TINY, analysis, genenkf, max_abs_diff, summary
from mpi_utils import run_mpi

pytestmark = pytest.mark.mpi

CASES = [
    # (method, ranks, overrides)
    ("letkf", 2, []),
    ("etkf", 2, []),
    ("enkf", 2, []),
    ("letkf", 3, ["filter.members=7", "model.nx=18"]),
    ("etkf", 3, ["filter.members=7", "model.nx=18"]),
    ("enkf", 3, ["filter.members=7", "model.nx=16"]),
    ("letkf", 3, ["filter.members=2", "osse.forcings=[8.0]"]),  # a rank without members
    ("nudging", 2, ["osse.forcings=[8.0]"]),
    ("noda", 3, ["osse.forcings=[8.0]"]),
    # the forcing estimated online: a (k,) parameter ensemble Allreduced over grid blocks
    ("letkf_paramest", 2, []),
    ("letkf_paramest", 3, ["filter.members=7", "model.nx=18", "osse.forcings=[10.0]"]),
    # additive inflation: member streams, centred with an Allreduce over member blocks
    ("letkf", 3, ["filter.members=7", "filter.additive=0.3", "osse.forcings=[10.0]"]),
    ("enkf", 2, ["filter.additive=0.3", 'filter.additive_covariance="climatological"',
                 "osse.forcings=[10.0]"]),
]


@pytest.mark.parametrize("method, ranks, overrides", CASES,
                         ids=[f"{m}-n{r}-{'-'.join(o) or 'tiny'}" for m, r, o in CASES])
def test_mpi_equals_one_process(tmp_path, method, ranks, overrides):
    args = ["assimilate", "-c", TINY, "--method", method, *overrides]
    assert genenkf(*args, "--out", tmp_path / "serial") == 0
    proc = run_mpi(ranks, [*args, "--out", tmp_path / "mpi"], timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    subdirs = sorted(p.name for p in (tmp_path / "serial").iterdir() if p.is_dir()) or [""]
    for sub in subdirs:
        serial, parallel = tmp_path / "serial" / sub, tmp_path / "mpi" / sub
        diff = max_abs_diff(analysis(serial), analysis(parallel))
        assert diff <= 1e-10, (sub, diff)
        assert summary(parallel)["ranks"] == ranks
        assert abs(summary(parallel)["rmse"] - summary(serial)["rmse"]) <= 1e-10
        # counted on each rank's points, summed once (round-off never moves a truth past a
        # member here: the values differ by far more than 1e-10)
        assert summary(parallel).get("rank_histogram") == summary(serial).get("rank_histogram")
        if method == "letkf_paramest":
            est, ref = summary(parallel)["forcing_estimate"], summary(serial)["forcing_estimate"]
            assert all(abs(est[key] - ref[key]) <= 1e-10 for key in ref), (est, ref)


@pytest.mark.slow
def test_more_ranks_than_grid_points(tmp_path):
    """5 ranks, 4 grid points, 3 members: empty grid and member blocks still work."""
    args = ["assimilate", "-c", TINY, "--method", "letkf", "osse.forcings=[8.0]", "model.nx=4",
            "filter.members=3", "osse.obs_interval=1", "filter.radius=1.5"]
    assert genenkf(*args, "--out", tmp_path / "serial") == 0
    proc = run_mpi(5, [*args, "--out", tmp_path / "mpi"], timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert max_abs_diff(analysis(tmp_path / "serial"), analysis(tmp_path / "mpi")) <= 1e-10

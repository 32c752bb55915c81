"""Regression table: configs/l96_standard.toml (Lorenz-96, N = 40, F = 8, every point observed
with sigma = 1, 32 members; ALGORITHM.md section 9, Sakov & Oke 2008) against the published
time-mean analysis RMSE of a well-tuned square-root filter (0.18-0.21) and the free run.

Values measured with these exact runs (seed 0): letkf 0.2056, etkf 0.2084, noda 5.03,
enkf (filter.inflation=1.2) 0.301, letkf with obs_interval=2 0.325.
"""
import pytest

from assim_utils import STANDARD, genenkf, summary

# method, overrides, bound on the time-mean RMSE after burn-in
TABLE = [
    ("letkf", [], ("<=", 0.21)),
    ("etkf", [], ("<=", 0.21)),
    ("noda", ["osse.cycles=400"], (">", 3.0)),
    # the perturbed-observation EnKF needs more inflation than the square-root filters to lock
    # on from the climatological initial ensemble (at 1.06 it loses track): stable, less accurate
    ("enkf", ["filter.inflation=1.2"], ("<=", 0.35)),
    # every 2nd point observed: stable over the 1000 cycles, no filter divergence
    ("letkf", ["osse.obs_interval=2"], ("<=", 0.5)),
]


@pytest.mark.slow
@pytest.mark.parametrize("method, overrides, bound", TABLE,
                         ids=[f"{m}-{'-'.join(o)}" for m, o, _ in TABLE])
def test_l96_standard_rmse(tmp_path, method, overrides, bound):
    assert genenkf("assimilate", "-c", STANDARD, "--method", method, "--out", tmp_path,
                   *overrides) == 0
    rmse = summary(tmp_path)["rmse"]
    op, value = bound
    assert (rmse <= value) if op == "<=" else (rmse > value), (method, overrides, rmse)

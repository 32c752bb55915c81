"""Regression table: configs/l96_standard.toml (Lorenz-96, N = 40, F = 8, every point observed
with sigma = 1, 32 members; ALGORITHM.md section 9, Sakov & Oke 2008) against the published
time-mean analysis RMSE of a well-tuned square-root filter (0.18-0.21; DAPPER's best LETKF
0.177) and the free run.

Values measured with these exact runs (seed 0; the shipped [filter] was tuned on seeds
1000-1002): letkf 0.1697, etkf (filter.inflation=1.06) 0.1882, enkf (filter.inflation=1.2)
0.2442, noda 4.91, letkf with obs_interval=2 (radius 20, inflation 1.06) 0.3131.
"""
import pytest

from assim_utils import STANDARD, genenkf, summary

# method, overrides, bound on the time-mean RMSE after burn-in
TABLE = [
    ("letkf", [], ("<=", 0.18)),
    # the global ETKF needs more inflation than the LETKF to lock on from the climatological
    # initial ensemble (at the LETKF's 1.02 it loses track)
    ("etkf", ["filter.inflation=1.06"], ("<=", 0.20)),
    ("noda", ["osse.cycles=400"], (">", 3.0)),
    # the perturbed-observation EnKF needs more inflation than the square-root filters to lock
    # on from the climatological initial ensemble: stable, less accurate
    ("enkf", ["filter.inflation=1.2"], ("<=", 0.27)),
    # every 2nd point observed: stable over the 1000 cycles, no filter divergence
    ("letkf", ["osse.obs_interval=2", "filter.radius=20.0", "filter.inflation=1.06"],
     ("<=", 0.35)),
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

"""letkf_paramest: the LETKF with the forcing F as an augmented global parameter recovers a
constant F_nature, the parameter is analysed with the LETKF's own local weights, and restarts
carry the parameter ensemble."""
import os

import numpy as np

from assim_utils import (REPO, TINY, analysis, assert_user_error, genenkf, genenkf_subprocess,
                         identical, summary)
from genenkf_hpc import osse
from genenkf_hpc.config import load_config
from genenkf_hpc.cycling.base import CycleContext
from genenkf_hpc.cycling.paramest import initial_forcing
from genenkf_hpc.cycling.registry import method_class
from genenkf_hpc.da import letkf
from genenkf_hpc.da.inflation import conditional_inflation
from genenkf_hpc.dynamics.from_config import forecast_model
from genenkf_hpc.parallel.comm import SerialComm
from genenkf_hpc.parallel.transpose import Transposer

# Perfect-model OSSE except for the unknown F: nature F = 10, every member starts from the
# model's F = 8 (+- paramest.spread); 40 points, every 2nd observed.
RECOVERY = ["osse.forcings=[10.0]", "model.nx=40", "filter.members=16", "filter.radius=10.0",
            "filter.inflation=1.05", "osse.cycles=400", "osse.burn_in=150"]


def test_recovers_a_constant_forcing(tmp_path):
    args = ["assimilate", "-c", TINY, *RECOVERY]
    assert genenkf(*args, "--method", "letkf_paramest", "--out", tmp_path / "pe") == 0
    assert genenkf(*args, "--method", "letkf", "--out", tmp_path / "letkf") == 0
    s, plain = summary(tmp_path / "pe"), summary(tmp_path / "letkf")
    est = s["forcing_estimate"]
    assert est["initial"] == 8.0
    assert abs(est["mean"] - 10.0) < 0.1, est
    assert abs(est["final"] - 10.0) < 0.2, est
    assert est["final_spread"] >= 0.1 - 1e-12  # conditional inflation: never below min_spread
    # knowing F, the filter is far better than the same LETKF with the biased model
    assert s["rmse"] < 0.5 * plain["rmse"], (s["rmse"], plain["rmse"])
    assert s["settings"]["forcing_min_spread"] == 0.1


def test_initial_forcing_is_centred_on_the_model_forcing():
    f = initial_forcing(8.0, 0.7, 9, seed=3)
    assert np.isclose(f.mean(), 8.0) and np.isclose(f.std(ddof=1), 0.7)
    assert np.array_equal(f, initial_forcing(8.0, 0.7, 9, seed=3))
    assert not np.allclose(f, initial_forcing(8.0, 0.7, 9, seed=4))


def test_conditional_inflation_only_raises_a_small_spread():
    ens = np.array([[1.0], [1.02], [0.98], [1.0]])
    out = conditional_inflation(ens, 0.5)
    assert np.isclose(out.std(ddof=1), 0.5) and np.isclose(out.mean(), 1.0)
    wide = np.array([[0.0], [2.0], [4.0]])
    assert np.array_equal(conditional_inflation(wide, 0.5), wide)
    assert np.array_equal(conditional_inflation(np.ones((3, 1)), 0.5), np.ones((3, 1)))


def test_parameter_analysis_is_the_mean_of_the_local_analyses():
    """One analysis: the state is the plain LETKF's, the new F ensemble the mean over the
    points of the parameter analysed as a second variable with each point's weights."""
    cfg = load_config(TINY, ["filter.members=7", "filter.inflation=1.1", "filter.rtps=0.0",
                             "paramest.min_spread=0.0"])
    method = method_class("letkf_paramest")(cfg)
    mask = osse.obs_mask(16, cfg.osse.obs_interval)
    t = Transposer(SerialComm(), 7, 16, cfg.filter.radius, mask)
    ctx = CycleContext(cfg, SerialComm(), t, mask, 1.0, forecast_model(cfg))
    method.setup(ctx)
    xb = method.initial_state(ctx)
    fb = method.forcing.copy()
    obs = np.where(mask, 8.0 + np.random.default_rng(1).standard_normal(16), np.nan)
    xa, _ = method.analyse(ctx, xb, obs, 3, obs[None])
    o = np.flatnonzero(mask)
    f = cfg.filter
    kw = dict(taper=f.taper, inflation=f.inflation)
    want = letkf.letkf_analysis(xb, xb[:, o], obs[o], 1.0, np.arange(16), o, 16, f.radius, **kw)
    assert np.allclose(xa, want, atol=1e-12)
    # F as a variable at point i: the background column fb, analysed with point i's weights
    local = [letkf.letkf_analysis(np.column_stack([xb[:, i], fb]), xb[:, o], obs[o], 1.0,
                                  np.array([i, i]), o, 16, f.radius, **kw)[:, 1]
             for i in range(16)]
    assert np.allclose(method.forcing, np.mean(local, axis=0), atol=1e-12)
    assert method.forcing_series[2] == method.forcing.mean()


def test_forecast_uses_each_members_forcing():
    cfg = load_config(TINY, ["filter.members=3"])
    method = method_class("letkf_paramest")(cfg)
    mask = osse.obs_mask(16, 2)
    t = Transposer(SerialComm(), 3, 16, cfg.filter.radius, mask)
    ctx = CycleContext(cfg, SerialComm(), t, mask, 1.0, forecast_model(cfg))
    method.setup(ctx)
    x = method.initial_state(ctx)
    got = method.forecast(ctx, x, 2)
    for m in range(3):
        want = forecast_model(cfg, forcing=method.forcing[m]).integrate(x[m], 2)
        assert np.array_equal(got[m], want)


def test_resume_equals_uninterrupted(tmp_path):
    """The parameter ensemble and its series travel in the restart files."""
    args = ["assimilate", "-c", TINY, "--method", "letkf_paramest", "osse.forcings=[10.0]",
            "osse.cycles=20", "run.checkpoint_every=5"]
    assert genenkf(*args, "--out", tmp_path / "ref") == 0
    proc = genenkf_subprocess(*args, "--out", tmp_path / "cut",
                              env={**os.environ, "GENENKF_FAIL_AT_CYCLE": "0:13"})
    assert proc.returncode == 1 and not (tmp_path / "cut" / "summary.json").exists()
    assert genenkf(*args, "--out", tmp_path / "cut", "--resume") == 0
    assert identical(analysis(tmp_path / "ref"), analysis(tmp_path / "cut"))
    ref, cut = summary(tmp_path / "ref"), summary(tmp_path / "cut")
    ref.pop("wall_seconds"), cut.pop("wall_seconds")
    assert ref == cut  # forcing_estimate and the rank histogram included
    assert sum(ref["rank_histogram"]) == (20 - 5) * 16  # cycles after the burn-in x points


def test_a_model_without_forcing_is_a_user_error(tmp_path):
    plugins = REPO / "tests" / "dynamics"  # plugin_models.Diffusion1D has no with_forcing
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(plugins)])}
    proc = genenkf_subprocess("assimilate", "-c", TINY, "--method", "letkf_paramest",
                              "--out", tmp_path, "osse.forcings=[8.0]",
                              'model.dynamics="plugin_models:make"', env=env)
    assert_user_error(proc, "has no forcing F to estimate")

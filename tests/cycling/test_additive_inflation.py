"""Additive inflation (filter.additive): perturbations with the stated statistics, keyed by
(seed, member, cycle) so they do not depend on the rank layout, and applied by every ensemble
filter before its analysis."""
import numpy as np
import pytest

from assim_utils import TINY, genenkf, summary
from genenkf_hpc import osse
from genenkf_hpc.config import load_config
from genenkf_hpc.cycling import model_error
from genenkf_hpc.cycling.base import CycleContext
from genenkf_hpc.cycling.registry import method_class
from genenkf_hpc.dynamics.from_config import forecast_model
from genenkf_hpc.parallel.comm import SerialComm
from genenkf_hpc.parallel.transpose import Transposer


def _ctx(*overrides, members=7):
    cfg = load_config(TINY, [f"filter.members={members}", *overrides])
    mask = osse.obs_mask(cfg.model.nx, cfg.osse.obs_interval)
    t = Transposer(SerialComm(), members, cfg.model.nx, cfg.filter.radius, mask)
    return CycleContext(cfg, SerialComm(), t, mask, 1.0, forecast_model(cfg))


@pytest.mark.parametrize("shape", ["identity", "climatological"])
def test_perturbations_have_the_stated_covariance_and_zero_member_mean(shape):
    ctx = _ctx("filter.additive=0.3", f'filter.additive_covariance="{shape}"', members=40)
    nx, k = ctx.nx, 40
    zero = np.zeros((k, nx))
    draws = np.stack([model_error.perturb_background(ctx, zero, c) for c in range(1, 301)])
    # centred over the members in every cycle: the forecast mean does not move
    assert np.abs(draws.mean(axis=1)).max() < 1e-12
    # the unbiased ensemble covariance grows by additive^2 C in expectation
    cov = np.mean([np.cov(d, rowvar=False) for d in draws], axis=0)
    root = model_error.covariance_root(ctx)
    want = 0.09 * (np.eye(nx) if root is None else root @ root.T)
    assert np.isclose(np.mean(np.diag(want)), 0.09)  # amplitude = per-point std in both cases
    # 300 x 39 degrees of freedom: sampling error of a covariance entry ~ 0.09 / sqrt(11700)
    assert np.abs(cov - want).max() < 0.006, np.abs(cov - want).max()
    if shape == "climatological":  # Lorenz-96: x_i and x_{i+2} anti-correlated in its climate
        assert want[0, 2] < -0.02


def test_member_streams_do_not_depend_on_the_member_block():
    """Member m's draw is the same whether a rank owns members 0..6 or only m."""
    nx = 16
    whole = model_error.draw(0, np.arange(7), 5, nx, 0.5)
    for m in range(7):
        assert np.array_equal(model_error.draw(0, [m], 5, nx, 0.5)[0], whole[m])
    assert not np.allclose(model_error.draw(0, [3], 6, nx, 0.5), whole[3])  # a new cycle
    assert not np.allclose(model_error.draw(1, [3], 5, nx, 0.5), whole[3])  # a new seed


def test_zero_amplitude_is_the_plain_filter():
    ctx = _ctx()
    block = np.arange(7 * 16, dtype=float).reshape(7, 16)
    assert model_error.perturb_background(ctx, block, 3) is block


@pytest.mark.parametrize("name", ["letkf", "etkf", "enkf"])
def test_filters_analyse_the_perturbed_background(name):
    """The analysis with additive inflation equals the plain analysis of the background plus
    the centred perturbations of that cycle."""
    ctx = _ctx("filter.additive=0.4")
    plain_ctx = _ctx()
    method = method_class(name)(ctx.cfg)
    xb = method.initial_state(ctx)
    obs = np.where(ctx.mask, 8.0 + np.random.default_rng(2).standard_normal(16), np.nan)
    xa, _ = method.analyse(ctx, xb, obs, 4, obs[None])
    eta = model_error.draw(ctx.cfg.osse.seed, np.arange(7), 4, 16, 0.4)
    want, _ = method_class(name)(plain_ctx.cfg).analyse(plain_ctx, xb + eta - eta.mean(axis=0),
                                                        obs, 4, obs[None])
    assert np.allclose(xa, want, atol=1e-12)
    assert not np.allclose(xa, method_class(name)(plain_ctx.cfg).analyse(
        plain_ctx, xb, obs, 4, obs[None])[0])


def test_additive_inflation_is_recorded_and_helps_under_model_bias(tmp_path):
    """Under a forcing bias (F_nature = 10, model 8) without multiplicative inflation the plain
    LETKF loses track; additive inflation keeps it near the observation error."""
    args = ["assimilate", "-c", TINY, "--method", "letkf", "osse.forcings=[10.0]",
            "model.nx=40", "filter.members=16", "filter.radius=4.0", "filter.inflation=1.0",
            "osse.cycles=200", "osse.burn_in=50"]
    assert genenkf(*args, "--out", tmp_path / "plain") == 0
    assert genenkf(*args, "filter.additive=0.3", "--out", tmp_path / "additive") == 0
    plain, additive = summary(tmp_path / "plain"), summary(tmp_path / "additive")
    assert additive["settings"]["additive"] == 0.3
    assert additive["settings"]["additive_covariance"] == "identity"
    assert additive["rmse"] < 0.6 * plain["rmse"], (additive["rmse"], plain["rmse"])

"""Inflation / relaxation, nudging and the method registry."""
import numpy as np
import pytest

from genenkf_hpc.da import ANALYSES, get_analysis
from genenkf_hpc.da.inflation import (inflate, innovation_inflation, innovation_terms, rtpp,
                                      rtps)
from genenkf_hpc.da.nudging import nudge
from genenkf_hpc.errors import UserError


def ensembles(seed=0):
    rng = np.random.default_rng(seed)
    xb = rng.standard_normal((6, 10)) * rng.uniform(0.5, 2, 10) + 1.0
    xa = xb.mean(0) + 0.4 * (xb - xb.mean(0)) @ np.diag(rng.uniform(0.3, 1.0, 10)) + 0.2
    xa = xa + 0.05 * rng.standard_normal(xa.shape)
    return xa, xb


def test_alpha_zero_is_the_identity():
    xa, xb = ensembles()
    np.testing.assert_array_equal(rtps(xa, xb, 0.0), xa)
    np.testing.assert_array_equal(rtpp(xa, xb, 0.0), xa)
    np.testing.assert_allclose(inflate(xa, 1.0), xa, atol=1e-15)


def test_rtps_one_restores_prior_spread_per_point_and_keeps_the_mean():
    xa, xb = ensembles(1)
    out = rtps(xa, xb, 1.0)
    np.testing.assert_allclose(out.std(0, ddof=1), xb.std(0, ddof=1), rtol=1e-13)
    np.testing.assert_allclose(out.mean(0), xa.mean(0), atol=1e-14)
    half = rtps(xa, xb, 0.5).std(0, ddof=1)
    np.testing.assert_allclose(half, 0.5 * (xa.std(0, ddof=1) + xb.std(0, ddof=1)), rtol=1e-13)


def test_rtps_leaves_zero_spread_points_alone():
    xa, xb = ensembles(2)
    xa[:, 3] = 1.5
    out = rtps(xa, xb, 0.7)
    np.testing.assert_array_equal(out[:, 3], 1.5)
    assert np.all(np.isfinite(out))


def test_rtpp_blends_perturbations():
    xa, xb = ensembles(3)
    out = rtpp(xa, xb, 1.0)
    np.testing.assert_allclose(out, xa.mean(0) + xb - xb.mean(0), atol=1e-14)
    out = rtpp(xa, xb, 0.25)
    np.testing.assert_allclose(out - out.mean(0),
                               0.75 * (xa - xa.mean(0)) + 0.25 * (xb - xb.mean(0)), atol=1e-14)


def test_inflate_scales_covariance_about_the_mean():
    xa, _ = ensembles(4)
    out = inflate(xa, 1.44)
    np.testing.assert_allclose(out.mean(0), xa.mean(0), atol=1e-14)
    np.testing.assert_allclose(np.cov(out.T), 1.44 * np.cov(xa.T), rtol=1e-12)
    stack = np.stack([xa, 2 * xa])  # leading axes (e.g. time) are kept
    np.testing.assert_allclose(inflate(stack, 1.44)[1], inflate(2 * xa, 1.44))


def test_innovation_inflation_by_hand():
    # members (0, 2) and (2, 0): mean 1 and variance 2 at both points; innovations 2 and 0
    terms = innovation_terms(np.array([[0.0, 2.0], [2.0, 0.0]]), np.array([3.0, 1.0]))
    np.testing.assert_array_equal(terms, [[4.0, 0.0], [2.0, 2.0]])
    assert innovation_inflation(4.0, 4.0, 2, obs_var=0.5) == (4.0 - 2 * 0.5) / 4.0
    assert np.isnan(innovation_inflation(3.0, 0.0, 2, 1.0))  # no spread
    assert np.isnan(innovation_inflation(0.0, 0.0, 0, 1.0))  # no observations
    assert innovation_terms(np.ones((3, 0)), np.zeros(0)).shape == (2, 0)


@pytest.mark.parametrize("rho", [0.5, 1.0, 4.0])
def test_innovation_inflation_recovers_the_factor_the_truth_was_drawn_with(rho):
    """The truth drawn about the ensemble mean with rho times the ensemble's covariance and
    observed with noise: the estimate finds rho (200,000 points, sampling error ~1%)."""
    rng = np.random.default_rng(7)
    points, obs_var = 200_000, 0.3
    members = rng.standard_normal((8, points)) * rng.uniform(0.5, 2.0, points)
    sigma = members.std(axis=0, ddof=1)
    truth = members.mean(axis=0) + np.sqrt(rho) * sigma * rng.standard_normal(points)
    obs = truth + np.sqrt(obs_var) * rng.standard_normal(points)
    d2, var = innovation_terms(members, obs).sum(axis=1)
    assert abs(innovation_inflation(d2, var, points, obs_var) - rho) < 0.03 * rho + 0.02


def test_relaxations_do_not_modify_inputs():
    xa, xb = ensembles(5)
    a, b = xa.copy(), xb.copy()
    rtps(xa, xb, 0.5), rtpp(xa, xb, 0.5), inflate(xa, 1.3)
    np.testing.assert_array_equal(xa, a)
    np.testing.assert_array_equal(xb, b)


def test_nudge():
    x = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    obs = np.array([3.0, np.nan, 1.0, np.nan])
    mask = ~np.isnan(obs)
    out = nudge(x, obs, mask, 0.5)
    np.testing.assert_array_equal(out, [[2.0, 2.0, 2.0, 4.0], [1.5, 0.0, 0.5, 0.0]])
    np.testing.assert_array_equal(nudge(x, obs, mask, 0.0), x)
    np.testing.assert_array_equal(nudge(x[0], obs, mask, 1.0), [3.0, 2.0, 1.0, 4.0])
    assert np.isnan(obs[1]) and x[0, 0] == 1.0  # inputs untouched
    with pytest.raises(ValueError, match="NaN"):
        nudge(x, obs, np.ones(4, bool), 0.5)


def test_registry_uses_exact_names():
    assert set(ANALYSES) == {"noda", "nudging", "enkf", "etkf", "letkf"}
    assert get_analysis("letkf").is_local and get_analysis("letkf").is_ensemble
    assert not get_analysis("etkf").is_local and get_analysis("enkf").is_ensemble
    assert not get_analysis("noda").is_ensemble and not get_analysis("nudging").is_ensemble
    for bad in ("LETKF", "let", "letkf ", "enkf_po"):
        with pytest.raises(UserError, match="valid methods: noda, nudging, enkf, etkf, letkf"):
            get_analysis(bad)

"""Global ETKF and perturbed-observation EnKF: additivity, exactness, Kalman limits."""
import numpy as np
import pytest

from genenkf_hpc.da.enkf import (center_perturbations, enkf_analysis, enkf_weights,
                                 perturbation_sums)
from genenkf_hpc.da.etkf import apply_weights, etkf_analysis, etkf_weights, obs_space_sums


def case(seed, k=7, n=15, p=9):
    rng = np.random.default_rng(seed)
    xb = rng.standard_normal((k, n)) * 1.5 + 2.0
    obs = rng.choice(n, p, replace=False)
    yo = rng.standard_normal(p)
    var = rng.uniform(0.3, 2.0, p)
    return rng, xb, obs, yo, var


def test_etkf_sums_are_additive_over_observations():
    rng, xb, obs, yo, var = case(0)
    yb = np.sin(xb[:, obs])
    gram, proj = obs_space_sums(yb, yo, var)
    parts = [obs_space_sums(yb[:, s], yo[s], var[s]) for s in (slice(0, 4), slice(4, None))]
    np.testing.assert_allclose(sum(g for g, _ in parts), gram, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(sum(p for _, p in parts), proj, rtol=1e-13, atol=1e-13)
    w = np.r_[np.ones(4), np.zeros(5)]  # zero weight drops observations
    g4, p4 = obs_space_sums(yb, yo, var, weights=w)
    np.testing.assert_allclose(g4, parts[0][0], atol=1e-14)
    np.testing.assert_allclose(p4, parts[0][1], atol=1e-14)


def test_etkf_weights_symmetric_mean_preserving_and_blockwise():
    rng, xb, obs, yo, var = case(1)
    k = xb.shape[0]
    for rho in (1.0, 1.3):
        w_mean, w = etkf_weights(*obs_space_sums(xb[:, obs], yo, var), k, inflation=rho)
        np.testing.assert_array_equal(w, w.T)
        np.testing.assert_allclose(w @ np.ones(k), np.sqrt(rho) * np.ones(k), atol=1e-13)
        np.testing.assert_allclose(w_mean.sum(), 0.0, atol=1e-13)
        full = apply_weights(xb, w_mean, w)
        blocks = np.hstack([apply_weights(xb[:, s], w_mean, w)
                            for s in (slice(0, 6), slice(6, 10), slice(10, None))])
        np.testing.assert_allclose(blocks, full, atol=1e-13)


def test_etkf_inflation_equals_analysing_the_inflated_background():
    rng, xb, obs, yo, var = case(2)
    rho = 1.5
    xi = xb.mean(0) + np.sqrt(rho) * (xb - xb.mean(0))
    np.testing.assert_allclose(etkf_analysis(xb, xb[:, obs], yo, var, inflation=rho),
                               etkf_analysis(xi, xi[:, obs], yo, var), atol=1e-12)


def direct_enkf(xb, obs, yo, var, eps, rho=1.0):
    """State-space perturbed-observation EnKF with K = P H^T (H P H^T + R)^-1, linear H."""
    mean = xb.mean(0)
    xb = mean + np.sqrt(rho) * (xb - mean)
    k, n = xb.shape
    anom = (xb - xb.mean(0)).T  # (n, k)
    p = anom @ anom.T / (k - 1)
    h = np.eye(n)[obs]
    gain = p @ h.T @ np.linalg.inv(h @ p @ h.T + np.diag(var))
    return xb + ((yo + eps - xb @ h.T) @ gain.T)


@pytest.mark.parametrize("rho", [1.0, 1.21])
@pytest.mark.parametrize("k, p", [(5, 9), (12, 4), (2, 3)])
def test_enkf_equals_state_space_update_with_the_same_perturbations(rho, k, p):
    rng, xb, obs, yo, var = case(3, k=k, p=p)
    eps = rng.standard_normal((k, p)) * np.sqrt(var)
    got = enkf_analysis(xb, xb[:, obs], yo, var, eps, inflation=rho)
    np.testing.assert_allclose(got, direct_enkf(xb, obs, yo, var, eps, rho), rtol=0, atol=1e-12)


def test_enkf_sums_are_additive_and_weights_state_the_update():
    rng, xb, obs, yo, var = case(4)
    k = xb.shape[0]
    eps = center_perturbations(rng.standard_normal((k, obs.size)))
    np.testing.assert_allclose(eps.mean(0), 0.0, atol=1e-15)
    yb = xb[:, obs]
    gram, proj = perturbation_sums(yb, yo, var, eps)
    halves = [perturbation_sums(yb[:, s], yo[s], var[s], eps[:, s])
              for s in (slice(0, 5), slice(5, None))]
    np.testing.assert_allclose(sum(g for g, _ in halves), gram, atol=1e-13)
    np.testing.assert_allclose(sum(q for _, q in halves), proj, atol=1e-13)
    t = enkf_weights(gram, proj, k)
    np.testing.assert_allclose(xb + t.T @ (xb - xb.mean(0)),
                               enkf_analysis(xb, yb, yo, var, eps), atol=1e-14)


def test_enkf_with_many_members_approaches_the_kalman_analysis(gaussian_toy):
    toy = gaussian_toy(nx=6, k=1500, obs_interval=2, obs_var=0.5, seed=1)
    xb, idx, yo = toy["xb"], toy["obs_idx"], toy["yo"]
    rng = np.random.default_rng(12)
    eps = rng.standard_normal((xb.shape[0], idx.size)) * np.sqrt(0.5)
    xa = enkf_analysis(xb, xb[:, idx], yo, 0.5, eps)
    scale = np.sqrt(np.diag(toy["cov_a"]))
    # sampling error of the perturbations ~ 1 / sqrt(k): allow 4 standard errors
    tol = 4.0 / np.sqrt(xb.shape[0])
    np.testing.assert_allclose(xa.mean(0), toy["mean_a"], atol=tol * scale.max())
    np.testing.assert_allclose(np.cov(xa.T), toy["cov_a"], atol=tol * np.sqrt(2) * scale.max() ** 2)
    # centred perturbations: the analysis mean is the Kalman mean exactly (exact prior moments)
    xa_c = enkf_analysis(xb, xb[:, idx], yo, 0.5, center_perturbations(eps))
    np.testing.assert_allclose(xa_c.mean(0), toy["mean_a"], rtol=0, atol=1e-10)


def test_kernels_do_not_modify_inputs():
    rng, xb, obs, yo, var = case(5)
    eps = rng.standard_normal((xb.shape[0], obs.size))
    yb = xb[:, obs].copy()
    copies = [a.copy() for a in (xb, yb, yo, var, eps)]
    etkf_analysis(xb, yb, yo, var, inflation=1.2, rtps=0.5, rtpp=0.1)
    enkf_analysis(xb, yb, yo, var, eps, inflation=1.2)
    for a, b in zip((xb, yb, yo, var, eps), copies):
        np.testing.assert_array_equal(a, b)

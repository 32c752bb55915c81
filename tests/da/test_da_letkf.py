"""LETKF: exact Kalman analysis, equality with the ETKF, the two solves, invariances."""
import numpy as np
import pytest

from genenkf_hpc.da.etkf import etkf_analysis
from genenkf_hpc.da import letkf as letkf_module
from genenkf_hpc.da.letkf import letkf_analysis


def letkf_global(xb, obs_idx, yo, obs_var, **kw):
    """LETKF whose box radius covers the whole ring, with H = selection of obs_idx."""
    nx = xb.shape[1]
    return letkf_analysis(xb, xb[:, obs_idx], yo, obs_var, np.arange(nx), obs_idx, nx,
                          radius=nx, taper="box", **kw)


@pytest.mark.parametrize("obs_interval, obs_var", [(1, 1.0), (2, 1.0), (1, 0.49), (2, 2.5),
                                                   (1, np.linspace(0.3, 3.0, 8))])
@pytest.mark.parametrize("solve", ["observation", "ensemble"])
def test_letkf_and_etkf_reproduce_the_kalman_analysis(gaussian_toy, obs_interval, obs_var, solve):
    toy = gaussian_toy(nx=8, k=120, obs_interval=obs_interval, obs_var=obs_var)
    xb, idx, yo = toy["xb"], toy["obs_idx"], toy["yo"]
    var = obs_var if np.isscalar(obs_var) else obs_var[idx]
    for xa in (letkf_global(xb, idx, yo, var, solve=solve),
               etkf_analysis(xb, xb[:, idx], yo, var)):
        np.testing.assert_allclose(xa.mean(axis=0), toy["mean_a"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(np.cov(xa.T), toy["cov_a"], rtol=0, atol=1e-9)


def test_letkf_global_box_equals_etkf():
    rng = np.random.default_rng(5)
    k, nx = 8, 12
    xb = rng.standard_normal((k, nx)) * 2 + 1
    idx = np.arange(0, nx, 2)
    yb = xb[:, idx] ** 2 / 3  # any (nonlinear) observation operator
    yo = rng.standard_normal(idx.size)
    var = rng.uniform(0.5, 2.0, idx.size)
    for kw in ({}, {"inflation": 1.3}, {"inflation": 1.1, "rtps": 0.5}, {"rtpp": 0.7}):
        a = letkf_analysis(xb, yb, yo, var, np.arange(nx), idx, nx, radius=6.0, taper="box", **kw)
        b = etkf_analysis(xb, yb, yo, var, **kw)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def random_case(rng, k, nx, nobs):
    xb = rng.standard_normal((k, nx)) * rng.uniform(0.2, 3.0, nx)
    obs = np.sort(rng.choice(nx, nobs, replace=False))
    yb = xb[:, obs] + 0.3 * rng.standard_normal((k, nobs))
    yo = rng.standard_normal(nobs)
    var = rng.uniform(0.2, 2.0, nobs)
    return xb, yb, yo, var, obs


@pytest.mark.parametrize("taper", ["box", "gaspari_cohn"])
@pytest.mark.parametrize("k, radius", [(2, 1.0), (2, 3.0), (3, 5.0), (8, 2.0), (8, 7.0),
                                       (20, 4.0), (5, 30.0)])
def test_observation_space_solve_equals_ensemble_space(taper, k, radius):
    rng = np.random.default_rng(k * 100 + int(radius))
    xb, yb, yo, var, obs = random_case(rng, k, nx=30, nobs=22)
    kw = dict(taper=taper, inflation=1.15)
    ens = letkf_analysis(xb, yb, yo, var, np.arange(30), obs, 30, radius, solve="ensemble", **kw)
    obs_sp = letkf_analysis(xb, yb, yo, var, np.arange(30), obs, 30, radius,
                            solve="observation", **kw)
    scale = np.abs(xb).max()
    np.testing.assert_allclose(obs_sp, ens, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("spread, iteration", [(30.0, True), (0.3, False)])
def test_wide_and_narrow_spectra_are_round_off_exact(monkeypatch, spread, iteration):
    """A climatological-size spread (wide B spectrum) takes the matrix iteration of matfun;
    a cycling-size one the Chebyshev expansion. Both give the ensemble-space analysis."""
    calls = []
    real = letkf_module.inv_sqrtm
    monkeypatch.setattr(letkf_module, "inv_sqrtm", lambda *a: calls.append(1) or real(*a))
    rng = np.random.default_rng(11)
    xb, yb, yo, var, obs = random_case(rng, 16, nx=40, nobs=40)
    yb *= spread
    args = (xb, yb, yo, 0.01 if iteration else 1.0, np.arange(40), obs, 40, 4.0)
    ens = letkf_analysis(*args, solve="ensemble")
    obs_sp = letkf_analysis(*args, solve="observation")
    np.testing.assert_allclose(obs_sp, ens, rtol=0, atol=1e-11 * np.abs(xb).max())
    assert bool(calls) == iteration


def test_translation_equivariance():
    rng = np.random.default_rng(2)
    nx, shift = 24, 7
    xb, yb, yo, var, obs = random_case(rng, 6, nx, 10)
    base = letkf_analysis(xb, yb, yo, var, np.arange(nx), obs, nx, 4.0)
    rolled = letkf_analysis(np.roll(xb, shift, axis=1), yb, yo, var, np.arange(nx),
                            (obs + shift) % nx, nx, 4.0)
    np.testing.assert_allclose(rolled, np.roll(base, shift, axis=1), rtol=0, atol=1e-13)


def test_subsets_of_points_and_observations_give_the_same_analysis():
    """What a parallel caller does: a block of points with only a halo of observations."""
    rng = np.random.default_rng(4)
    nx, radius = 40, 3.0
    xb, yb, yo, var, obs = random_case(rng, 8, nx, 25)
    full = letkf_analysis(xb, yb, yo, var, np.arange(nx), obs, nx, radius)
    pts = np.arange(30, 45) % nx  # a block crossing the periodic boundary
    near = np.flatnonzero(np.min(np.abs((obs[:, None] - pts[None, :] + nx / 2) % nx - nx / 2),
                                 axis=1) <= radius + 2)
    part = letkf_analysis(xb[:, pts], yb[:, near], yo[near], var[near], pts, obs[near], nx, radius)
    np.testing.assert_allclose(part, full[:, pts], rtol=0, atol=1e-13)


@pytest.mark.parametrize("block_size, threads", [(1, 1), (5, 3), (1000, 1), (7, 2)])
def test_blocking_and_threads_do_not_change_the_result(block_size, threads):
    rng = np.random.default_rng(8)
    xb, yb, yo, var, obs = random_case(rng, 10, 33, 20)
    args = (xb, yb, yo, var, np.arange(33), obs, 33, 5.0)
    ref = letkf_analysis(*args)
    got = letkf_analysis(*args, block_size=block_size, threads=threads)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-13)


def test_inflation_equals_analysing_the_inflated_background():
    rng = np.random.default_rng(6)
    nx, rho = 20, 1.44
    xb, _, yo, var, _ = random_case(rng, 7, nx, 5)
    obs = np.arange(nx)
    yo = rng.standard_normal(nx)
    xi = xb.mean(0) + np.sqrt(rho) * (xb - xb.mean(0))
    for solve in ("observation", "ensemble"):
        a = letkf_analysis(xb, xb, yo, 0.8, obs, obs, nx, 3.0, inflation=rho, solve=solve)
        b = letkf_analysis(xi, xi, yo, 0.8, obs, obs, nx, 3.0, solve=solve)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_points_without_local_obs_keep_the_uninflated_background():
    rng = np.random.default_rng(7)
    nx = 30
    xb = rng.standard_normal((5, nx))
    obs = np.array([3, 4, 5])
    xa = letkf_analysis(xb, xb[:, obs], np.zeros(3), 1.0, np.arange(nx), obs, nx, 2.0,
                        inflation=1.5, rtps=0.3)
    far = np.r_[8:nx]
    np.testing.assert_array_equal(xa[:, far], xb[:, far])
    assert not np.allclose(xa[:, 3:6], xb[:, 3:6])
    np.testing.assert_array_equal(
        letkf_analysis(xb, xb[:, :0], np.zeros(0), 1.0, np.arange(nx), obs[:0], nx, 2.0), xb)


def test_rtps_one_restores_the_prior_spread_and_keeps_the_mean():
    rng = np.random.default_rng(9)
    xb, yb, yo, var, obs = random_case(rng, 9, 25, 25)
    args = (xb, yb, yo, var, np.arange(25), obs, 25, 4.0)
    plain = letkf_analysis(*args)
    relaxed = letkf_analysis(*args, rtps=1.0)
    np.testing.assert_allclose(relaxed.std(0, ddof=1), xb.std(0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(relaxed.mean(0), plain.mean(0), rtol=0, atol=1e-13)
    assert np.all(plain.std(0, ddof=1) <= xb.std(0, ddof=1) + 1e-12)


def test_inputs_are_not_modified():
    rng = np.random.default_rng(10)
    xb, yb, yo, var, obs = random_case(rng, 6, 20, 12)
    pts = np.arange(20)
    copies = [a.copy() for a in (xb, yb, yo, var, obs, pts)]
    for solve in ("observation", "ensemble"):
        letkf_analysis(xb, yb, yo, var, pts, obs, 20, 3.0, inflation=1.2, rtps=0.5, rtpp=0.2,
                       solve=solve)
    for a, b in zip((xb, yb, yo, var, obs, pts), copies):
        np.testing.assert_array_equal(a, b)


def test_bad_arguments():
    xb = np.zeros((4, 6))
    with pytest.raises(ValueError, match="yb"):
        letkf_analysis(xb, np.zeros((3, 2)), np.zeros(2), 1.0, np.arange(6), [0, 1], 6, 2.0)
    with pytest.raises(ValueError, match="solve"):
        letkf_analysis(xb, np.zeros((4, 2)), np.zeros(2), 1.0, np.arange(6), [0, 1], 6, 2.0,
                       solve="fast")

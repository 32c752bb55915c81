"""Metrics against hand-computed values."""
import numpy as np
import pytest

from genenkf_hpc import metrics


def test_rmse_over_last_axis_with_time():
    mean = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    truth = np.array([[1.0, 2.0, 3.0, 6.0], [1.0, -1.0, 1.0, -1.0]])
    np.testing.assert_allclose(metrics.rmse(mean, truth), [1.0, 1.0])  # sqrt(4/4), sqrt(4/4)
    assert metrics.rmse([3.0, 4.0], [0.0, 0.0]) == pytest.approx(np.sqrt(12.5))


def test_spread_uses_member_variance_ddof1_averaged_before_the_root():
    ens = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])  # (k=3, nx=2)
    # variances (ddof=1): point 0: ((−2)^2 + 0 + 2^2) / 2 = 4; point 1: 0 -> sqrt(mean) = sqrt(2)
    assert metrics.spread(ens) == pytest.approx(np.sqrt(2.0))
    series = np.stack([ens, 2 * ens])  # (time, k, nx)
    np.testing.assert_allclose(metrics.spread(series), [np.sqrt(2.0), 2 * np.sqrt(2.0)])


def test_spread_ratio():
    ens = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])  # mean (2, 1), spread sqrt(2)
    truth = np.array([2.0 + np.sqrt(2.0), 1.0 - np.sqrt(2.0)])  # rmse sqrt(2)
    assert metrics.spread_ratio(ens, truth) == pytest.approx(1.0)


def test_crps_hand_computed():
    ens = np.array([[0.0], [1.0], [3.0]])  # k = 3, one point
    truth = np.array([2.0])
    # E|X - y| = (2 + 1 + 1) / 3 = 4/3; sum_{k,l}|x_k - x_l| = 2 (1 + 3 + 2) = 12
    assert metrics.crps_ensemble(ens, truth) == pytest.approx(4 / 3 - 12 / 18)
    assert metrics.crps_ensemble(ens, truth, fair=True) == pytest.approx(4 / 3 - 12 / 12)
    # one member: CRPS is the absolute error
    assert metrics.crps_ensemble(np.array([[1.5, -1.0]]), np.array([2.0, 1.0])) == 1.25


def test_crps_matches_the_integral_definition():
    rng = np.random.default_rng(0)
    ens = rng.standard_normal((5, 3))
    truth = rng.standard_normal(3)
    grid = np.linspace(-10, 10, 200001)
    dx = grid[1] - grid[0]
    for i in range(3):  # CRPS = int (F(z) - 1{z >= y})^2 dz with the empirical CDF F
        cdf = (ens[:, i][:, None] <= grid).mean(axis=0)
        ref = np.sum((cdf - (grid >= truth[i])) ** 2) * dx
        got = metrics.crps_ensemble(ens[:, i:i + 1], truth[i:i + 1])
        assert got == pytest.approx(ref, abs=2e-4)
    per_point = metrics.crps_ensemble(ens, truth, average=False)
    assert per_point.shape == (3,)
    assert metrics.crps_ensemble(ens, truth) == pytest.approx(per_point.mean())


def test_rank_histogram():
    ens = np.array([[[0.0, 5.0], [1.0, 6.0], [2.0, 7.0]],
                    [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]])  # (time=2, k=3, nx=2)
    truth = np.array([[1.5, 4.0], [9.0, 1.0]])
    # ranks: t0: 2 (above 0, 1), 0; t1: 3, tie with one member -> 1 below + 1 // 2 = 1
    np.testing.assert_array_equal(metrics.rank_histogram(ens, truth), [1, 1, 1, 1])
    assert metrics.rank_histogram(ens, truth).sum() == 4

"""Shared helpers of the DA kernel tests: exact-moment Gaussian ensembles and the Kalman filter."""
import numpy as np
import pytest


def exact_ensemble(rng, mean, cov, k):
    """k members (k, n) whose sample mean and covariance (ddof=1) are exactly mean and cov."""
    n = mean.size
    z = rng.standard_normal((k, n))
    z -= z.mean(axis=0)
    chol = np.linalg.cholesky(z.T @ z / (k - 1))
    z = np.linalg.solve(chol, z.T).T  # whitened: sample covariance exactly I
    return mean + z @ np.linalg.cholesky(cov).T


def kalman(mean, cov, obs_idx, yo, obs_var):
    """Exact Kalman analysis (mean, covariance) for H = rows obs_idx of I, R = diag(obs_var)."""
    h = np.eye(mean.size)[obs_idx]
    r = np.diag(np.broadcast_to(obs_var, (len(obs_idx),)))
    gain = cov @ h.T @ np.linalg.inv(h @ cov @ h.T + r)
    return mean + gain @ (yo - h @ mean), (np.eye(mean.size) - gain @ h) @ cov


def random_spd(rng, n, scale=1.0):
    a = rng.standard_normal((n, n))
    return scale * (a @ a.T / n + 0.5 * np.eye(n))


@pytest.fixture
def gaussian_toy():
    """Factory: prior (mean, cov), exact ensemble xb (k, nx), obs_idx, yo and the Kalman answer."""

    def make(nx=8, k=200, obs_interval=1, obs_var=1.0, seed=0):
        rng = np.random.default_rng(seed)
        mean = rng.standard_normal(nx)
        cov = random_spd(rng, nx, scale=2.0)
        xb = exact_ensemble(rng, mean, cov, k)
        obs_idx = np.arange(0, nx, obs_interval)
        var = np.broadcast_to(np.asarray(obs_var, dtype=float), obs_idx.shape)
        yo = mean[obs_idx] + rng.standard_normal(obs_idx.size) * np.sqrt(var) + 0.3
        mean_a, cov_a = kalman(mean, cov, obs_idx, yo, var)
        return dict(xb=xb, obs_idx=obs_idx, yo=yo, obs_var=obs_var, mean_a=mean_a, cov_a=cov_a)

    return make


@pytest.fixture
def da_helpers():
    """The helper functions above, for tests that build their own set-ups."""
    from types import SimpleNamespace

    return SimpleNamespace(exact_ensemble=exact_ensemble, kalman=kalman, random_spd=random_spd)

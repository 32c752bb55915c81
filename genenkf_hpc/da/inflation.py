"""Covariance inflation and relaxation, on ensembles (..., members, points).

Each function returns a new array; inputs are never modified.
"""
from __future__ import annotations

import numpy as np


def inflate(ens, rho):
    """Multiplicative inflation about the ensemble mean: covariance times ``rho``.

    ens (..., k, n); the anomalies are scaled by ``sqrt(rho)``, the same convention as the
    ``(k - 1) / rho`` term of the LETKF (Hunt et al. 2007, eq. 21 area).
    """
    ens = np.asarray(ens, dtype=np.float64)
    mean = ens.mean(axis=-2, keepdims=True)
    return mean + np.sqrt(rho) * (ens - mean)


def rtpp(xa, xb, alpha):
    """Relaxation to prior perturbations (Zhang et al. 2004).

    ``xa' <- (1 - alpha) xa' + alpha xb'`` with the analysis mean kept; xa, xb (..., k, n).
    """
    xa = np.asarray(xa, dtype=np.float64)
    if alpha == 0.0:
        return xa.copy()
    xb = np.asarray(xb, dtype=np.float64)
    mean_a = xa.mean(axis=-2, keepdims=True)
    return mean_a + (1.0 - alpha) * (xa - mean_a) + alpha * (xb - xb.mean(axis=-2, keepdims=True))


def rtps(xa, xb, alpha):
    """Relaxation to prior spread (Whitaker & Hamill 2012), per point.

    ``xa' <- xa' * (alpha * sigma_b / sigma_a + 1 - alpha)``, sigma the ensemble standard
    deviation (ddof=1) at each point; xa, xb (..., k, n). Points whose analysis spread is 0 are
    left unchanged (nothing to rescale).
    """
    xa = np.asarray(xa, dtype=np.float64)
    if alpha == 0.0:
        return xa.copy()
    xb = np.asarray(xb, dtype=np.float64)
    mean_a = xa.mean(axis=-2, keepdims=True)
    sig_a = xa.std(axis=-2, ddof=1, keepdims=True)
    sig_b = xb.std(axis=-2, ddof=1, keepdims=True)
    ratio = np.divide(sig_b, sig_a, out=np.ones_like(sig_a), where=sig_a > 0)
    factor = np.where(sig_a > 0, alpha * ratio + 1.0 - alpha, 1.0)
    return mean_a + factor * (xa - mean_a)


def conditional_inflation(ens, min_spread):
    """Conditional covariance inflation (Aksoy, Zhang & Nielsen-Gammon 2006, MWR 134,
    2951-2970): the anomalies of a parameter ensemble are scaled up so that its standard
    deviation (ddof=1) is at least ``min_spread``; a wider ensemble is returned unchanged.

    ens (..., k, n): each of the n parameters (columns) on its own. An ensemble without spread
    stays as it is (no direction to inflate).
    """
    ens = np.asarray(ens, dtype=np.float64)
    mean = ens.mean(axis=-2, keepdims=True)
    sig = ens.std(axis=-2, ddof=1, keepdims=True)
    factor = np.where((sig < min_spread) & (sig > 0),
                      min_spread / np.where(sig > 0, sig, 1.0), 1.0)
    return mean + factor * (ens - mean)


def innovation_terms(background, obs):
    """Per observed point, what innovation-based inflation sums: ``(2, p)``, row 0 the squared
    innovation d_j^2 of the ensemble mean, row 1 the ensemble variance var_j (ddof=1).

    background (k, p): the members at the p observed points (the identity observation
    operator); obs (p,). Sums over disjoint sets of points (the ranks') add up.
    """
    background = np.asarray(background, dtype=np.float64)
    if background.shape[-1] == 0:
        return np.zeros((2, 0))
    innovation = np.asarray(obs, dtype=np.float64) - background.mean(axis=0)
    return np.stack([innovation ** 2, background.var(axis=0, ddof=1)])


def innovation_inflation(d2_sum, var_sum, count, obs_var):
    """The multiplicative inflation that makes an ensemble's spread explain its innovations
    (Wang & Bishop 2003, JAS 60, 1140-1158; Li, Kalnay & Miyoshi 2009, QJRMS 135, 523-533):
    E[d^T d] = rho tr(H P H^T) + tr(R), so ``rho = (sum d^2 - p obs_var) / sum var`` over the
    p observed points (:func:`innovation_terms`). One cycle's estimate is noisy (and negative
    when the innovations are smaller than the observation error alone); callers bound and
    smooth it. NaN when the ensemble has no spread or there are no observations."""
    if count == 0 or not var_sum > 0:
        return float("nan")
    return (float(d2_sum) - count * obs_var) / float(var_sum)

"""Global ensemble transform Kalman filter (Bishop et al. 2001; Hunt et al. 2007 form).

Split so that a parallel caller can distribute the work:

1. :func:`obs_space_sums` over any subset of the observations -> ``(gram, proj)``; both are sums
   over observations, so the results of disjoint subsets add (``Allreduce``);
2. :func:`etkf_weights` (k x k, cheap, identical on every rank) -> ``(w_mean, W)``;
3. :func:`apply_weights` to any block of grid points.

With ``Yhat = R^-1/2 (yb - mean(yb))`` (k, p) and ``a = (k - 1) / rho``:
``Pa~ = (a I + Yhat Yhat^T)^-1``, ``w_mean = Pa~ Yhat R^-1/2 (yo - mean(yb))``,
``W = [(k - 1) Pa~]^{1/2}`` (symmetric), ``xa_i = mean(xb) + sum_m xb'_m (w_mean_m + W_mi)``.
"""
from __future__ import annotations

import numpy as np

from . import inflation as infl


def obs_space_sums(yb, yo, obs_var, weights=None):
    """Observation-space sums of the ETKF for the observations given.

    yb (k, p) background observation equivalents, yo (p,), obs_var scalar or (p,), weights
    optional (p,) multiplying R^-1 (0 drops an observation, e.g. one counted on another rank).
    Returns ``gram`` (k, k) = Yhat Yhat^T and ``proj`` (k,) = Yhat R^-1/2 (yo - mean(yb)), with
    ``Yhat = R^-1/2 (yb - mean(yb))`` (k, p); both are additive over observations.
    """
    yhat, dhat, _ = _scaled(yb, yo, obs_var, weights)
    return yhat @ yhat.T, yhat @ dhat


def etkf_weights(gram, proj, k, inflation=1.0):
    """Mean weights (k,) and symmetric transform W (k, k) from the summed gram and proj.

    ``inflation`` rho enters as ``(k - 1) / rho`` (Hunt et al. 2007, eq. 21 area).
    """
    a = (k - 1) / inflation
    lam, vec = np.linalg.eigh(gram + a * np.eye(k))  # a I + gram = V diag(lam) V^T, lam >= a
    w_mean = vec @ ((vec.T @ proj) / lam)
    transform = (vec * np.sqrt((k - 1) / lam)) @ vec.T
    return w_mean, 0.5 * (transform + transform.T)


def apply_weights(xb, w_mean, transform):
    """Analysis ensemble (k, n) of a block of points xb (k, n) from the ETKF weights."""
    xb = np.asarray(xb, dtype=np.float64)
    mean = xb.mean(axis=0)
    return mean + (w_mean[:, None] + transform).T @ (xb - mean)


def etkf_analysis(xb, yb, yo, obs_var, inflation=1.0, rtps=0.0, rtpp=0.0):
    """Serial global ETKF: xb (k, n), yb (k, p), yo (p,), obs_var scalar or (p,) -> xa (k, n).

    RTPS / RTPP (:mod:`.inflation`) relax towards the un-inflated background afterwards.
    """
    xb = np.asarray(xb, dtype=np.float64)
    k = xb.shape[0]
    gram, proj = obs_space_sums(yb, yo, obs_var)
    xa = apply_weights(xb, *etkf_weights(gram, proj, k, inflation))
    if rtpp:
        xa = infl.rtpp(xa, xb, rtpp)
    if rtps:
        xa = infl.rtps(xa, xb, rtps)
    return xa


def _scaled(yb, yo, obs_var, weights):
    """``R^-1/2 (yb - mean)`` (k, p), ``R^-1/2 (yo - mean)`` (p,) and ``R^-1/2`` (p,), where
    R^-1 is multiplied by the weights."""
    yb = np.asarray(yb, dtype=np.float64)
    yo = np.asarray(yo, dtype=np.float64).reshape(-1)
    if yb.ndim != 2 or yb.shape[1] != yo.size:
        raise ValueError(f"yb {yb.shape} must be (members, obs={yo.size})")
    var = np.broadcast_to(np.asarray(obs_var, dtype=np.float64), yo.shape)
    if not np.all(var > 0):
        raise ValueError("obs_var: observation error variances must be > 0")
    rinv = 1.0 / var
    if weights is not None:
        rinv = rinv * np.asarray(weights, dtype=np.float64)
    scale = np.sqrt(rinv)
    ybar = yb.mean(axis=0)
    return (yb - ybar) * scale, (yo - ybar) * scale, scale

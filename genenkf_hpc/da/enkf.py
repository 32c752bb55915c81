"""Stochastic EnKF with perturbed observations (Burgers et al. 1998; Evensen 2003), k x k form.

Each member is updated with its own perturbed observation ``yo + eps_m``, ``eps_m ~ N(0, R)``:

    xa_m = xb_m + K (yo + eps_m - yb_m),   K = P H^T (H P H^T + R)^-1,

with ``P H^T = X'^T Y' / (k - 1)``, ``H P H^T = Y'^T Y' / (k - 1)`` from the anomalies
``X' = xb - mean(xb)`` (k, n), ``Y' = yb - mean(yb)`` (k, p). With ``Yhat = Y' R^-1/2`` the
push-through identity ``Y' (Y'^T Y' + (k-1) R)^-1 = (Yhat Yhat^T + (k-1) I)^-1 Yhat R^-1/2``
gives the k x k form

    xa = xb + T^T X',   T = (Yhat Yhat^T + (k - 1) I)^-1 P,
    P[:, m] = Yhat R^-1/2 (yo + eps_m - yb_m),

where the gram ``Yhat Yhat^T`` and ``P`` are sums over observations (additive over ranks).
The perturbations are drawn by the caller (random streams keyed by member and cycle, not here).
"""
from __future__ import annotations

import numpy as np

from .etkf import _scaled


def perturbation_sums(yb, yo, obs_var, perturbations, weights=None):
    """Observation-space sums of the perturbed-observation EnKF.

    yb (k, p), yo (p,), obs_var scalar or (p,), perturbations (k, p): eps_m ~ N(0, R) in
    observation units, one row per member; weights optional (p,) multiplying R^-1.
    Returns ``gram`` (k, k) = Yhat Yhat^T and ``proj`` (k, k) with
    ``proj[:, m] = Yhat R^-1/2 (yo + eps_m - yb_m)``; both are additive over observations.
    """
    yhat, _, scale = _scaled(yb, yo, obs_var, weights)
    yb = np.asarray(yb, dtype=np.float64)
    eps = np.asarray(perturbations, dtype=np.float64)
    if eps.shape != yb.shape:
        raise ValueError(f"perturbations {eps.shape} must be (members, obs) = {yb.shape}")
    innov = (np.asarray(yo, dtype=np.float64).reshape(-1) + eps - yb) * scale  # (k, p)
    return yhat @ yhat.T, yhat @ innov.T


def enkf_weights(gram, proj, k, inflation=1.0):
    """Transform T (k, k) such that ``xa = xb + T^T X'``, X' = xb - mean(xb) (k, n).

    In state-space notation (members as columns, X' (n, k)) this is ``Xa = Xb + X' T``.
    ``inflation`` rho: the background is first inflated about its mean (covariance times rho,
    anomalies times sqrt(rho), observation anomalies likewise, i.e. linear H), then updated:

        T = (sqrt(rho) - 1) I + (gram + (k - 1) / rho I)^-1 (proj + (1 - sqrt(rho)) gram),

    which is the rho = 1 formula ``(gram + (k - 1) I)^-1 proj`` applied to the inflated
    ensemble (derivation in docs/letkf.md). gram, proj from :func:`perturbation_sums` with the
    un-inflated yb.
    """
    root = np.sqrt(inflation)
    lhs = gram + (k - 1) / inflation * np.eye(k)
    rhs = proj + (1.0 - root) * gram
    return (root - 1.0) * np.eye(k) + np.linalg.solve(lhs, rhs)


def center_perturbations(perturbations):
    """Perturbations (k, p) with their ensemble mean removed (the analysis mean then equals the
    Kalman update of the background mean); optional, the caller decides."""
    eps = np.asarray(perturbations, dtype=np.float64)
    return eps - eps.mean(axis=0)


def enkf_analysis(xb, yb, yo, obs_var, perturbations, inflation=1.0):
    """Serial stochastic EnKF: xb (k, n), yb (k, p), yo (p,), perturbations (k, p) -> xa (k, n)."""
    xb = np.asarray(xb, dtype=np.float64)
    k = xb.shape[0]
    gram, proj = perturbation_sums(yb, yo, obs_var, perturbations)
    transform = enkf_weights(gram, proj, k, inflation)
    return xb + transform.T @ (xb - xb.mean(axis=0))

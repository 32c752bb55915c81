"""Fitting a forecast model to an archive of the truth (pure least squares).

The single-scale Lorenz-96 misses the coupling to unresolved scales. Given an archive of the
resolved variables X at the forecast interval, the forecast model's error over one interval,
per unit time,

    U_k = [M(X(t))_k - X_k(t + Delta)] / Delta,

(M: one interval of the single-scale model with forcing F) is what a parameterisation
``dX/dt = ... - U(X)`` must supply. Two fits of it (Wilks 2005, section 3; Arnold et al. 2013
fit the same "one-step" error):
- a constant: the single-scale model with an effective forcing F - mean(U);
- a cubic polynomial U(X) = b0 + b1 X + b2 X^2 + b3 X^3 by least squares.
"""
from __future__ import annotations

import numpy as np


def one_step_errors(model, X: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``X (times, K)`` consecutive archive states one interval apart; ``model`` the resolved
    model advancing one interval in ``steps`` steps. Returns ``(X(t) (n K,), U (n K,))``."""
    forecast = model.integrate(X[:-1], steps)
    interval = steps * model.dt
    U = (forecast - X[1:]) / interval
    return X[:-1].reshape(-1), U.reshape(-1)


def fit_polynomial(x: np.ndarray, u: np.ndarray, degree: int = 3) -> np.ndarray:
    """Least-squares coefficients ``(b0, ..., b_degree)`` of u ~ sum_i b_i x^i."""
    A = np.vander(np.asarray(x, dtype=np.float64), degree + 1, increasing=True)
    coef, *_ = np.linalg.lstsq(A, np.asarray(u, dtype=np.float64), rcond=None)
    return coef


def residual_rms(x: np.ndarray, u: np.ndarray, coef: np.ndarray) -> float:
    """RMS of u - polynomial(x): how much of the model error the fit leaves."""
    return float(np.sqrt(np.mean((u - np.polynomial.polynomial.polyval(x, coef)) ** 2)))

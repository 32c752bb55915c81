"""Nudging towards observations, and NoDA.

Nudging (Newtonian relaxation, as in the original experiments): at observed points
``x <- (1 - alpha) x + alpha y``, unobserved points unchanged. NoDA (a free run) is the identity
analysis ``xa = xb``: it needs no function, the driver simply skips the analysis step.
"""
from __future__ import annotations

import numpy as np


def nudge(x, obs, mask, alpha):
    """Relax x (..., nx) towards obs (nx,) where mask (nx,) is True; returns a new array.

    obs is NaN where unobserved; NaNs outside the mask are ignored, a NaN inside it is an error.
    """
    x = np.asarray(x, dtype=np.float64)
    obs = np.asarray(obs, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if obs.shape != mask.shape or x.shape[-1:] != mask.shape:
        raise ValueError(f"x {x.shape}, obs {obs.shape} and mask {mask.shape} disagree")
    if np.isnan(obs[mask]).any():
        raise ValueError("obs is NaN at a point where mask is True")
    target = np.where(mask, obs, 0.0)  # NaNs never enter the arithmetic
    return np.where(mask, (1.0 - alpha) * x + alpha * target, x)

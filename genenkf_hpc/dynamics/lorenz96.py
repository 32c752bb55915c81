"""Lorenz-96 (Lorenz 1996) as a pure, batched kernel.

    dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F,   i = 0..N-1, periodic.

States are arrays ``(..., nx)``: any leading axes (members, forcings, trajectories) are batched,
so an ensemble or a set of nature runs advances with no Python loop. ``forcing`` broadcasts
against the leading axes: a scalar, or e.g. shape ``(n_forcings, 1)`` for states
``(n_forcings, nx)``. Float64 throughout; inputs are never modified.
"""
from __future__ import annotations

import numpy as np


def tendency(x: np.ndarray, forcing) -> np.ndarray:
    """dx/dt for states ``(..., nx)``, nx >= 4."""
    return (np.roll(x, -1, axis=-1) - np.roll(x, 2, axis=-1)) * np.roll(x, 1, axis=-1) - x + forcing


def rk4_step(x: np.ndarray, forcing, dt: float) -> np.ndarray:
    """One classical 4th-order Runge-Kutta step."""
    k1 = tendency(x, forcing)
    k2 = tendency(x + 0.5 * dt * k1, forcing)
    k3 = tendency(x + 0.5 * dt * k2, forcing)
    k4 = tendency(x + dt * k3, forcing)
    return x + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def integrate(x: np.ndarray, forcing, dt: float, steps: int) -> np.ndarray:
    """State after ``steps`` RK4 steps (the input is left untouched)."""
    x = np.array(x, dtype=np.float64, copy=True)
    for _ in range(steps):
        x = rk4_step(x, forcing, dt)
    return x


def trajectory(x: np.ndarray, forcing, dt: float, steps: int, every: int = 1) -> np.ndarray:
    """States after every ``every``-th step: shape ``(steps // every, ..., nx)``."""
    out = np.empty((steps // every,) + np.shape(x), dtype=np.float64)
    x = np.array(x, dtype=np.float64, copy=True)
    for i in range(steps // every):
        for _ in range(every):
            x = rk4_step(x, forcing, dt)
        out[i] = x
    return out


def standard_initial_state(nx: int, forcing: float) -> np.ndarray:
    """The classic start: x = F everywhere with x_{nx/2 - 1} *= 1.001 (x_19 for nx = 40)."""
    x = np.full(nx, float(forcing))
    x[nx // 2 - 1] *= 1.001
    return x

"""Lorenz-96 (Lorenz 1996) as a pure, batched kernel.

    dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F - U(x_i),   i = 0..N-1, periodic,

with ``U(x) = b0 + b1 x + b2 x^2 + b3 x^3`` an optional polynomial parameterisation of the
coupling to unresolved scales (Wilks 2005; zero by default, the classic model).

States are arrays ``(..., nx)``: any leading axes (members, forcings, trajectories) are batched,
so an ensemble or a set of nature runs advances with no Python loop. ``forcing`` broadcasts
against the leading axes: a scalar, or e.g. shape ``(members, 1)`` for one F per member
(parameter estimation). Float64 throughout; inputs are never modified.

:class:`Lorenz96` is the model behind the :mod:`.base` interface (``model.dynamics =
"lorenz96"``); the functions below are the same kernel for callers that hold an F and a dt.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .base import GridDynamics

HALO = (2, 1)  # x_{i-2}, x_{i-1} on the left, x_{i+1} on the right


def tendency_ghosted(xg: np.ndarray, forcing, poly=None) -> np.ndarray:
    """dx/dt of the points of a ghosted segment ``(..., 2 + n + 1)`` -> ``(..., n)``."""
    n = xg.shape[-1] - 3
    x = xg[..., 2:n + 2]
    out = (xg[..., 3:] - xg[..., :n]) * xg[..., 1:n + 1] - x + forcing
    if poly is not None:
        b0, b1, b2, b3 = poly
        out = out - (b0 + x * (b1 + x * (b2 + x * b3)))
    return out


def tendency(x: np.ndarray, forcing) -> np.ndarray:
    """dx/dt for states ``(..., nx)``, nx >= 4."""
    return Lorenz96(x.shape[-1], 1.0, forcing).tendency(x)


def rk4_step(x: np.ndarray, forcing, dt: float) -> np.ndarray:
    """One classical 4th-order Runge-Kutta step."""
    return Lorenz96(x.shape[-1], dt, forcing).step(x)


def integrate(x: np.ndarray, forcing, dt: float, steps: int) -> np.ndarray:
    """State after ``steps`` RK4 steps (the input is left untouched)."""
    return Lorenz96(np.shape(x)[-1], dt, forcing).integrate(x, steps)


def trajectory(x: np.ndarray, forcing, dt: float, steps: int, every: int = 1) -> np.ndarray:
    """States after every ``every``-th step: shape ``(steps // every, ..., nx)``."""
    return Lorenz96(np.shape(x)[-1], dt, forcing).trajectory(x, steps, every)


def standard_initial_state(nx: int, forcing: float) -> np.ndarray:
    """The classic start: x = F everywhere with x_{nx/2 - 1} *= 1.001 (x_19 for nx = 40)."""
    x = np.full(nx, float(forcing))
    x[nx // 2 - 1] *= 1.001
    return x


@dataclass(frozen=True, eq=False)
class Lorenz96(GridDynamics):
    """Lorenz-96 on ``nx`` points with forcing F, time step dt and an optional cubic
    parameterisation ``poly = (b0, b1, b2, b3)`` of unresolved coupling."""

    nx: int
    dt: float
    forcing: float | np.ndarray = 8.0
    poly: tuple[float, float, float, float] | None = None
    name = "lorenz96"
    halo = HALO

    def tendency_local(self, x_ghosted: np.ndarray) -> np.ndarray:
        return tendency_ghosted(x_ghosted, self.forcing, self.poly)

    def random_state(self, gen: np.random.Generator) -> np.ndarray:
        """F + N(0, 1) at every point (the original's random initial states)."""
        return float(np.mean(self.forcing)) + gen.standard_normal(self.nx)

    def reference_state(self) -> np.ndarray:
        return standard_initial_state(self.nx, float(np.mean(self.forcing)))

    def with_forcing(self, forcing) -> "Lorenz96":
        """The same model with another F (a scalar, or ``(members, 1)`` for one F per member)."""
        return dataclasses.replace(self, forcing=forcing)

    def describe(self) -> dict:
        out = {**super().describe(), "forcing": float(np.mean(self.forcing))}
        if self.poly is not None:
            out["poly"] = [float(b) for b in self.poly]
        return out


def make_lorenz96(nx: int, dt: float, forcing: float, b0: float = 0.0, b1: float = 0.0,
                  b2: float = 0.0, b3: float = 0.0) -> Lorenz96:
    """Factory behind ``model.dynamics = "lorenz96"``; ``model.params`` may set b0..b3."""
    poly = (float(b0), float(b1), float(b2), float(b3))
    return Lorenz96(int(nx), float(dt), float(forcing), poly if any(poly) else None)

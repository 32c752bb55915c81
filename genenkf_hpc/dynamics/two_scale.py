"""Two-scale Lorenz-96 (Lorenz 1996): K slow variables X, J fast variables Y per slow one.

    dX_k/dt    = -X_{k-1} (X_{k-2} - X_{k+1}) - X_k + F - (h c / b) sum_j Y_{j,k}
    dY_{j,k}/dt = -c b Y_{j+1,k} (Y_{j+2,k} - Y_{j-1,k}) - c Y_{j,k} + (h c / b) X_k

k = 0..K-1 cyclic; the fast variables form one ring of J K values (Y_{J,k} = Y_{0,k+1}).
The state vector is ``[X (K), Y (J K)]`` with Y ordered k-major (``Y[k J + j] = Y_{j,k}``);
DA sees X only (``observable``), so ``nx = K`` and ``state_size = K (J + 1)``.

Energy: the advection terms conserve sum X^2 and sum Y^2 separately and the coupling terms
cancel in ``X . dX + Y . dY``, so d/dt (|X|^2 + |Y|^2) / 2 = -|X|^2 - c |Y|^2 + F sum X exactly
(the budget the tests check).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Dynamics, rk4


@dataclass(frozen=True, eq=False)
class Lorenz96TwoScale(Dynamics):
    nx: int                # K
    dt: float
    forcing: float = 10.0
    J: int = 10
    h: float = 1.0
    b: float = 10.0
    c: float = 10.0
    name = "lorenz96_two_scale"
    halo = None

    @property
    def state_size(self) -> int:
        return self.nx * (self.J + 1)

    def split(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(..., K (J + 1))`` -> X ``(..., K)``, Y ``(..., K J)`` (views)."""
        return state[..., :self.nx], state[..., self.nx:]

    def coupling(self, Y: np.ndarray) -> np.ndarray:
        """(h c / b) sum_j Y_{j,k}: the fast variables' effect on X_k, ``(..., K)``."""
        return (self.h * self.c / self.b) * Y.reshape(Y.shape[:-1] + (self.nx, self.J)).sum(-1)

    def tendency(self, state: np.ndarray) -> np.ndarray:
        X, Y = self.split(state)
        dX = (np.roll(X, -1, -1) - np.roll(X, 2, -1)) * np.roll(X, 1, -1) - X + self.forcing \
            - self.coupling(Y)
        cb = self.c * self.b
        dY = -cb * np.roll(Y, -1, -1) * (np.roll(Y, -2, -1) - np.roll(Y, 1, -1)) - self.c * Y \
            + (self.h * self.c / self.b) * np.repeat(X, self.J, axis=-1)
        return np.concatenate([dX, dY], axis=-1)

    def step(self, x: np.ndarray) -> np.ndarray:
        return rk4(x, self.tendency, self.dt)

    def observable(self, x: np.ndarray) -> np.ndarray:
        return x[..., :self.nx]

    def random_state(self, gen: np.random.Generator) -> np.ndarray:
        """X = F + N(0, 1), Y = N(0, 0.1^2): the fast ring settles within a spin-up."""
        return np.concatenate([self.forcing + gen.standard_normal(self.nx),
                               0.1 * gen.standard_normal(self.nx * self.J)])

    def describe(self) -> dict:
        return {**super().describe(), "forcing": float(self.forcing), "J": self.J,
                "h": self.h, "b": self.b, "c": self.c}


def make_two_scale(nx: int, dt: float, forcing: float, J: int = 10, h: float = 1.0,
                   b: float = 10.0, c: float = 10.0) -> Lorenz96TwoScale:
    """Factory behind ``dynamics = "lorenz96_two_scale"`` (Lorenz 1996 defaults)."""
    if int(J) != J or J < 1:
        from ..errors import UserError

        raise UserError(f"lorenz96_two_scale: J={J} must be a positive integer")
    return Lorenz96TwoScale(int(nx), float(dt), float(forcing), int(J), float(h), float(b),
                            float(c))

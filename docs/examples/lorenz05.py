"""Lorenz (2005) model II: a user's dynamical model for genenkf_hpc, outside the package.

Lorenz, E. N. (2005): Designing chaotic models. J. Atmos. Sci. 62, 1574-1587, eqs. (9)-(10).
Lorenz-96 with spatially continuous waves: the quadratic term couples running means of the
state over K neighbouring points instead of single neighbours,

    dX_n/dt = [X, X]_{K,n} - X_n + F,
    [X, X]_{K,n} = -W_{n-2K} W_{n-K} + (1/K) sum'_{j=-J..J} W_{n-K+j} X_{n+K+j},
    W_n = (1/K) sum'_{i=-J..J} X_{n-i},

on a periodic ring of N points, with J = K/2 and the first and last terms of each sum' halved
when K is even (J = (K-1)/2 and plain sums when K is odd). K = 1 is Lorenz-96 exactly.

Use it from a config (``PYTHONPATH=docs/examples``)::

    [model]
    dynamics = "lorenz05:model_ii"
    params = {K = 8}

or from Python: ``gk.register_dynamics("lorenz05_ii", lorenz05.model_ii)``.
"""
from dataclasses import dataclass

import numpy as np

import genenkf_hpc as gk


@dataclass(frozen=True, eq=False)
class LorenzModelII(gk.GridDynamics):
    """Model II on ``nx`` points, forcing F, averaging width K; states ``(..., nx)``."""

    nx: int
    dt: float
    forcing: float = 15.0
    K: int = 8
    name = "lorenz05_model_ii"

    @property
    def J(self) -> int:
        return self.K // 2

    @property
    def halo(self) -> tuple[int, int]:
        """Ghost points of one tendency: W_{n-2K} reaches X_{n-2K-J}, X_{n+K+J} the right."""
        return 2 * self.K + self.J, self.K + self.J

    def weights(self) -> np.ndarray:
        """The sum' weights divided by K, ``(2J + 1,)``: ends halved for even K."""
        w = np.ones(2 * self.J + 1)
        if self.K % 2 == 0:
            w[0] = w[-1] = 0.5
        return w / self.K

    def tendency_local(self, x_ghosted: np.ndarray) -> np.ndarray:
        """dX/dt of the ``n`` points of a ghosted segment ``(..., left + n + right)``."""
        K, J, w = self.K, self.J, self.weights()
        left, right = self.halo
        n = x_ghosted.shape[-1] - left - right
        m = x_ghosted.shape[-1] - 2 * J
        # W at ghosted positions J .. J + m - 1 (every position with its whole window)
        W = sum(w[i] * x_ghosted[..., i:i + m] for i in range(2 * J + 1))

        def W_at(offset):  # W_{p + offset} for the segment's points p
            return W[..., offset + left - J:offset + left - J + n]

        def X_at(offset):
            return x_ghosted[..., offset + left:offset + left + n]

        bracket = -W_at(-2 * K) * W_at(-K) + sum(
            w[j + J] * W_at(-K + j) * X_at(K + j) for j in range(-J, J + 1))
        return bracket - X_at(0) + self.forcing

    def random_state(self, gen: np.random.Generator) -> np.ndarray:
        """F + N(0, 1) at every point (as Lorenz-96); the spin-up forgets it."""
        return self.forcing + gen.standard_normal(self.nx)

    def describe(self) -> dict:
        return {**super().describe(), "forcing": float(self.forcing), "K": self.K}


def model_ii(nx: int, dt: float, forcing: float, K: float = 8) -> LorenzModelII:
    """The factory genenkf calls: ``model_ii(nx=..., dt=..., forcing=..., **model.params)``
    (TOML numbers may arrive as floats; a bad value is a UserError, exit status 2)."""
    if K != int(K) or K < 1:
        raise gk.UserError(f"lorenz05: K={K} must be a positive integer")
    if nx < 4 * K:
        raise gk.UserError(f"lorenz05: model.nx={nx} must be at least 4 K = {4 * int(K)}")
    return LorenzModelII(int(nx), float(dt), float(forcing), int(K))

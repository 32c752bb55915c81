"""The interface of a dynamical model, and the time stepping every model shares.

A dynamical model is a small object (STYLE.md 15) that the package runs for nature runs,
forecasts and training data:

- ``nx``: grid points of the state that data assimilation sees (observed, analysed, generated);
- ``state_size``: length of the full state vector (``nx`` unless the model carries variables
  DA never sees, e.g. the fast variables of the two-scale Lorenz-96);
- ``dt``: the model time step;
- ``halo``: ``(left, right)`` ghost points one tendency evaluation needs on a periodic ring
  (Lorenz-96: ``(2, 1)``), or ``None`` when the model cannot run on domains;
- ``step(x)``: the state after one ``dt``, pure and batched over leading axes
  ``(..., state_size)``;
- ``observable(x)``: the ``(..., nx)`` part DA sees (default: the state itself);
- ``random_state(gen)`` / ``reference_state()``: initial states (ensembles and training
  trajectories start from random ones; nature runs from the reference state).

A model on a periodic grid with a local tendency subclasses :class:`GridDynamics` and writes
only ``tendency_local``: its ``step`` is classical RK4 and the same tendency runs on a domain
segment whose ghost points the decomposition filled, bit for bit as on the whole ring. A model
never sees MPI.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


class Dynamics:
    """Base of every dynamical model (see the module doc for the interface)."""

    name: str = ""
    nx: int
    dt: float
    halo: tuple[int, int] | None = None

    @property
    def state_size(self) -> int:
        return self.nx

    def step(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def observable(self, x: np.ndarray) -> np.ndarray:
        return x

    def random_state(self, gen: np.random.Generator) -> np.ndarray:
        """A random state ``(state_size,)`` from ``gen`` (spun up by the caller)."""
        return gen.standard_normal(self.state_size)

    def reference_state(self) -> np.ndarray | None:
        """The deterministic start of nature runs, or None (then a random state is used)."""
        return None

    # -- time stepping built on step()
    def integrate(self, x: np.ndarray, steps: int) -> np.ndarray:
        """State after ``steps`` steps (the input is left untouched)."""
        x = np.array(x, dtype=np.float64, copy=True)
        for _ in range(steps):
            x = self.step(x)
        return x

    def trajectory(self, x: np.ndarray, steps: int, every: int = 1) -> np.ndarray:
        """Observables after every ``every``-th step: ``(steps // every, ..., nx)``; the full
        state is advanced, only what DA sees is stored."""
        x = np.array(x, dtype=np.float64, copy=True)
        out = np.empty((steps // every,) + x.shape[:-1] + (self.nx,), dtype=np.float64)
        for i in range(steps // every):
            for _ in range(every):
                x = self.step(x)
            out[i] = self.observable(x)
        return out

    def describe(self) -> dict:
        """What identifies the model in records (summary.json, checkpoints)."""
        return {"dynamics": self.name, "nx": self.nx, "dt": self.dt}


def rk4(x: np.ndarray, tendency: Callable[[np.ndarray], np.ndarray], dt: float) -> np.ndarray:
    """One classical 4th-order Runge-Kutta step of dx/dt = tendency(x)."""
    k1 = tendency(x)
    k2 = tendency(x + 0.5 * dt * k1)
    k3 = tendency(x + 0.5 * dt * k2)
    k4 = tendency(x + dt * k3)
    return x + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def pad_periodic(x: np.ndarray, halo: tuple[int, int]) -> np.ndarray:
    """``(..., n)`` -> ``(..., left + n + right)`` with the ring's wrap-around as ghosts."""
    left, right = halo
    parts = ([x[..., x.shape[-1] - left:]] if left else []) + [x] + \
        ([x[..., :right]] if right else [])
    return np.concatenate(parts, axis=-1)


class GridDynamics(Dynamics):
    """A model on a periodic ring whose tendency at a point needs ``halo`` neighbours.

    Subclasses write ``tendency_local(x_ghosted) -> (..., n)`` for ghosted segments
    ``(..., halo[0] + n + halo[1])``; :meth:`step` pads the ring periodically, and a domain
    decomposition calls :meth:`step_with` with its own ghost filler instead."""

    halo: tuple[int, int] = (1, 1)

    def tendency_local(self, x_ghosted: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def tendency(self, x: np.ndarray) -> np.ndarray:
        """dx/dt on the whole ring ``(..., nx)``."""
        return self.tendency_local(pad_periodic(x, self.halo))

    def step(self, x: np.ndarray) -> np.ndarray:
        return rk4(x, self.tendency, self.dt)

    def step_with(self, x: np.ndarray, fill_ghosts: Callable[[np.ndarray], np.ndarray]
                  ) -> np.ndarray:
        """One step of a segment ``(..., n)``: ``fill_ghosts`` returns it with ``halo`` ghost
        points (from the neighbouring segments) for every RK4 stage."""
        return rk4(x, lambda y: self.tendency_local(fill_ghosts(y)), self.dt)

"""Dynamical models outside the package, for the registry tests (imported by name)."""
from dataclasses import dataclass

import numpy as np

from genenkf_hpc.dynamics import GridDynamics


@dataclass(frozen=True)
class Diffusion1D(GridDynamics):
    """du/dt = kappa (u_{i+1} - 2 u_i + u_{i-1}) + F: a linear model with a known mean."""

    nx: int
    dt: float
    forcing: float = 0.0
    kappa: float = 0.5
    name = "diffusion1d"
    halo = (1, 1)

    def tendency_local(self, ug):
        return self.kappa * (ug[..., 2:] - 2 * ug[..., 1:-1] + ug[..., :-2]) + self.forcing


def make(nx, dt, forcing, kappa=0.5):
    return Diffusion1D(nx, dt, forcing, kappa)


def wrong_size(nx, dt, forcing):
    return Diffusion1D(nx + 1, dt, forcing)


def not_a_model(nx, dt, forcing):
    return object()


def raises_on_import():  # a factory that is not one (takes no arguments)
    return None

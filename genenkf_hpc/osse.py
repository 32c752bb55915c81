"""Observing-system simulation experiment: nature runs, observation masks and noise, initial
ensembles. Pure functions; randomness from :mod:`genenkf_hpc.rng` streams keyed by what they
randomise (forcing, cycle, member), so any subset of cycles or members can be regenerated alone.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from . import rng
from .dynamics import lorenz96


def forcing_key(forcing: float) -> int:
    """A stream key for an F value (milli-units), so F = 8 gets the same noise in any list."""
    return int(round(float(forcing) * 1000)) % (2**32)


def obs_mask(nx: int, interval: int) -> np.ndarray:
    """Observed grid points: 0, interval, 2 interval, ... -> bool ``(nx,)``."""
    mask = np.zeros(nx, dtype=bool)
    mask[::interval] = True
    return mask


def observe(truth: np.ndarray, mask: np.ndarray, sigma: float, seed: int, forcing: float,
            cycle: int) -> np.ndarray:
    """Noisy observation of ``truth (nx,)`` at ``cycle``: N(0, sigma^2) noise, NaN elsewhere."""
    gen = rng.stream(seed, rng.Purpose.OBSERVATION_NOISE, forcing_key(forcing), cycle)
    noise = gen.standard_normal(truth.shape[-1])
    return np.where(mask, truth + sigma * noise, np.nan)


def nature_initial_states(forcings, nx: int, dt: float, spinup_steps: int) -> np.ndarray:
    """Spun-up nature states ``(n_forcings, nx)`` from the standard perturbed start."""
    f = np.asarray(forcings, dtype=np.float64)[:, None]
    x0 = np.stack([lorenz96.standard_initial_state(nx, fi) for fi in f[:, 0]])
    return lorenz96.integrate(x0, f, dt, spinup_steps)


def nature_chunks(forcings, nx: int, dt: float, spinup_steps: int, cycles: int,
                  steps_per_cycle: int, chunk: int = 256) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_cycle, truth (n, n_forcings, nx))`` for cycles 1..cycles, ``chunk`` at a
    time, so a long run never holds the whole trajectory in memory."""
    f = np.asarray(forcings, dtype=np.float64)[:, None]
    x = nature_initial_states(forcings, nx, dt, spinup_steps)
    for start in range(1, cycles + 1, chunk):
        n = min(chunk, cycles + 1 - start)
        block = lorenz96.trajectory(x, f, dt, n * steps_per_cycle, every=steps_per_cycle)
        x = block[-1]
        yield start, block


def initial_ensemble(members, nx: int, forcing: float, dt: float, spinup_steps: int,
                     seed: int) -> np.ndarray:
    """States ``(len(members), nx)`` of the (possibly biased) model: F + N(0, 1) per member,
    spun up with the model's own F; member m's state depends only on (seed, m)."""
    x0 = np.stack([forcing + rng.stream(seed, rng.Purpose.ENSEMBLE_INITIAL, m).standard_normal(nx)
                   for m in members]) if len(members) else np.empty((0, nx))
    return lorenz96.integrate(x0, forcing, dt, spinup_steps)

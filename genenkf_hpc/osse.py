"""Observing-system simulation experiment: nature runs, observation masks and noise, initial
ensembles. Pure functions of dynamical models (:mod:`genenkf_hpc.dynamics`); randomness from
:mod:`genenkf_hpc.rng` streams keyed by what they randomise (forcing, cycle, member), so any
subset of cycles or members can be regenerated alone.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from . import rng


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


def nature_initial_state(model, spinup_steps: int, seed: int, forcing: float) -> np.ndarray:
    """The spun-up start ``(state_size,)`` of the nature run with F = ``forcing``: a random
    state of the nature model from ``(seed, forcing)``, so every seed is its own truth."""
    gen = rng.stream(seed, rng.Purpose.NATURE_INITIAL, forcing_key(forcing))
    return model.integrate(model.random_state(gen), spinup_steps)


def nature_chunks(models, forcings, seed: int, spinup_steps: int, cycles: int,
                  steps_per_cycle: int, chunk: int = 256) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_cycle, truth (n, n_forcings, nx))`` for cycles 1..cycles, ``chunk`` at a
    time, so a long run never holds the whole trajectory in memory. ``models[j]`` is the nature
    model of ``forcings[j]``; ``truth`` is what DA sees of it (its observable)."""
    states = [nature_initial_state(m, spinup_steps, seed, f) for m, f in zip(models, forcings)]
    for start in range(1, cycles + 1, chunk):
        n = min(chunk, cycles + 1 - start)
        blocks = []
        for j, m in enumerate(models):
            # The last stored observable is not the full state (hidden variables): advance the
            # full state alongside, one cycle at a time.
            out = np.empty((n, m.nx))
            x = states[j]
            for i in range(n):
                x = m.integrate(x, steps_per_cycle)
                out[i] = m.observable(x)
            states[j] = x
            blocks.append(out)
        yield start, np.stack(blocks, axis=1)


def random_states(members, model, seed: int) -> np.ndarray:
    """Members' random states ``(len(members), state_size)`` (Lorenz-96: F + N(0, 1)), member
    m's from ``rng.stream(seed, ENSEMBLE_INITIAL, m)``, before spin-up."""
    if not len(members):
        return np.empty((0, model.state_size))
    return np.stack([model.random_state(rng.stream(seed, rng.Purpose.ENSEMBLE_INITIAL, m))
                     for m in members])


def initial_ensemble(members, model, spinup_steps: int, seed: int) -> np.ndarray:
    """States ``(len(members), state_size)`` of the (possibly biased) forecast model: a random
    state per member, spun up with the model itself; member m's state depends only on
    (seed, m)."""
    return model.integrate(random_states(members, model, seed), spinup_steps)

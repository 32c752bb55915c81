"""Random streams tied to what they randomise, never to the MPI rank.

Every stream is derived with :class:`numpy.random.SeedSequence` from ``(seed, purpose, *keys)``,
e.g. ``stream(seed, Purpose.ENKF_OBS_PERTURBATION, member, cycle)``. Because a member's stream
does not depend on which rank owns it, ``mpiexec -n R`` reproduces the one-process run.
"""
from enum import IntEnum

import numpy as np


class Purpose(IntEnum):
    """One value per kind of randomness, so streams for different purposes never collide."""

    NATURE_INITIAL = 1
    OBSERVATION_NOISE = 2
    ENSEMBLE_INITIAL = 3
    ENKF_OBS_PERTURBATION = 4
    DIFFUSION_SAMPLING = 5
    DATASET_INITIAL = 6
    DATASET_SPLIT = 7
    TRAINING = 8
    TRAINING_OBS_NOISE = 9
    GAUSSIAN_PSEUDO = 10
    TUNING = 11
    BENCH = 12
    ADDITIVE_INFLATION = 13
    PARAMETER_INITIAL = 14


def seed_sequence(seed: int, purpose: Purpose, *keys: int) -> np.random.SeedSequence:
    """The entropy ends with the number of keys: SeedSequence pads its entropy with zeros, so
    without it ``(seed, purpose, m, 0)`` would be the same stream as ``(seed, purpose, m)``."""
    return np.random.SeedSequence([int(seed), int(purpose), *(int(k) for k in keys), len(keys)])


def stream(seed: int, purpose: Purpose, *keys: int) -> np.random.Generator:
    """A numpy Generator for ``(seed, purpose, *keys)``; keys are non-negative ints."""
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, purpose, *keys)))


def torch_seed(seed: int, purpose: Purpose, *keys: int) -> int:
    """A 63-bit seed for a ``torch.Generator`` derived the same way as :func:`stream`."""
    return int(seed_sequence(seed, purpose, *keys).generate_state(2, np.uint64)[0] >> np.uint64(1))


def positional_normal(seed: int, purpose: Purpose, key: int, start: int, stop: int,
                      block: int = 4096) -> np.ndarray:
    """N(0, 1) numbers for the points ``[start, stop)`` of a ring: point i's from the stream
    ``(seed, purpose, key, i // block)``, so a segment draws exactly what the whole ring would
    at its points, and no rank generates the whole ring."""
    first, last = start // block, -(-stop // block)
    numbers = [stream(seed, purpose, key, b).standard_normal(block) for b in range(first, last)]
    whole = np.concatenate(numbers) if numbers else np.empty(0)
    return whole[start - first * block:stop - first * block]

"""Training batches. Every random draw of optimizer step s (which states, diffusion times, noise,
observation noise, condition drop-out) comes from ``rng.stream(seed, TRAINING, 1, s)`` and is
made for the whole GLOBAL batch on every rank; each rank then takes its contiguous slice. So the
gradient (averaged over ranks) is the same for any rank count, and resuming at step s needs no
saved RNG state.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import rng
from ..diffusion.conditioning import Normaliser, make_condition
from ..diffusion.schedule import Schedule
from ..errors import UserError
from ..io import hdf5

BATCH_KEY, HELD_OUT_KEY = 1, 2


def load_split(directory: str | Path, meta: dict, split: str) -> np.ndarray:
    """Physical states ``(n_traj, steps, nx)`` float64 of one split."""
    return hdf5.load_trajectories(directory, meta, meta["splits"][split])


@dataclass
class GlobalBatch:
    """Random draws of one optimizer step for the whole global batch (numpy, B rows)."""

    traj: np.ndarray      # (B,) trajectory index within the split
    time: np.ndarray      # (B,) time index of the generated state (>= seq_len - 1 + lag)
    t: np.ndarray         # (B,) diffusion time
    eps: np.ndarray       # (B, 1, nx)
    obs_noise: np.ndarray  # (B, seq_len, nx)
    drop: np.ndarray      # (B,) bool: null condition


def draw_global_batch(seed: int, step: int, batch: int, n_traj: int, steps: int, seq_len: int,
                      nx: int, timesteps: int, p_uncond: float, lag: int = 0) -> GlobalBatch:
    """``lag``: the condition ends ``lag`` stored states before the generated one."""
    if steps < seq_len + lag:
        raise UserError(f"network.seq_len={seq_len} + network.obs_lag={lag} exceeds the "
                        f"dataset's {steps} states per trajectory")
    g = rng.stream(seed, rng.Purpose.TRAINING, BATCH_KEY, step)
    return GlobalBatch(traj=g.integers(0, n_traj, batch),
                       time=g.integers(seq_len - 1 + lag, steps, batch),
                       t=g.integers(0, timesteps, batch),
                       eps=g.standard_normal((batch, 1, nx)),
                       obs_noise=g.standard_normal((batch, seq_len, nx)),
                       drop=g.random(batch) < p_uncond)


class BatchMaker:
    """Turns rows ``[a, b)`` of a :class:`GlobalBatch` into network inputs on ``device``.

    The target is the state at ``time``; the condition is noisy observations of the ``seq_len``
    states ending ``lag`` states earlier (lag 0: posterior mode, the generated state's own
    observation is the newest row; lag 1: prior mode, only earlier ones)."""

    def __init__(self, states: np.ndarray, normaliser: Normaliser, mask: np.ndarray,
                 obs_sigma: float, seq_len: int, schedule: Schedule, device, lag: int = 0):
        self.states = torch.as_tensor(normaliser.forward(states), dtype=torch.float32)
        self.sigma_n = float(obs_sigma * normaliser.scale)
        self.mask = torch.as_tensor(mask, dtype=torch.bool)
        self.seq_len, self.schedule, self.device = seq_len, schedule, device
        self.lag = lag

    def inputs(self, gb: GlobalBatch, a: int, b: int) -> dict:
        traj = torch.as_tensor(gb.traj[a:b])
        time = torch.as_tensor(gb.time[a:b])
        offsets = torch.arange(-self.seq_len + 1, 1) - self.lag
        history = self.states[traj[:, None], time[:, None] + offsets[None]]  # (n, S, nx)
        x0 = self.states[traj, time][:, None]
        obs_n = history + self.sigma_n * torch.as_tensor(gb.obs_noise[a:b], dtype=torch.float32)
        cond = make_condition(obs_n, self.mask)
        t = torch.as_tensor(gb.t[a:b])
        eps = torch.as_tensor(gb.eps[a:b], dtype=torch.float32)
        x_t = self.schedule.q_sample(x0, t, eps)
        to = {"device": self.device}
        return {"x0": x0.to(**to), "x_t": x_t.to(**to), "t": t.to(**to), "eps": eps.to(**to),
                "cond": cond.to(**to), "drop": torch.as_tensor(gb.drop[a:b]).to(**to)}

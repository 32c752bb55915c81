"""Normalisation and the observation condition fed to the U-Net.

Normalisation is one fixed affine map of the state to the unit range [-1, 1], from the training
data's minimum and maximum (global scalars: Lorenz-96 is homogeneous, and a per-point map would
break the circular symmetry the network relies on). It is stored with the model and undone after
sampling. The map itself never clips. The samplers do, by default: ``generative.clip = 1.0``
clamps the x0 predictions while decoding to [-1, 1], exactly the training data's range [min, max]
(the original clipped its [0, 1] data to [-1, 1], i.e. to a range twice too wide on one side).
States of a biased nature run may leave the training range; ``generative.clip = 0`` turns the
clamp off, a value > 1 widens it.

The condition of a batch is ``cond (B, 2 S, nx)``: S normalised observation rows (0 where not
observed) then S mask rows (1.0 observed, 0.0 not), oldest first, latest last.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UserError


@dataclass(frozen=True)
class Normaliser:
    """x_n = 2 (x - lo) / (hi - lo) - 1; works on numpy arrays and torch tensors alike."""

    lo: float
    hi: float

    def __post_init__(self):
        if not (np.isfinite(self.lo) and np.isfinite(self.hi) and self.hi > self.lo):
            raise UserError(f"normalisation range [{self.lo}, {self.hi}] is empty or not finite")

    @property
    def scale(self) -> float:
        return 2.0 / (self.hi - self.lo)

    def forward(self, x):
        return (x - self.lo) * self.scale - 1.0

    def inverse(self, z):
        return (z + 1.0) / self.scale + self.lo

    def to_dict(self) -> dict:
        return {"lo": float(self.lo), "hi": float(self.hi)}

    @classmethod
    def from_dict(cls, d: dict) -> "Normaliser":
        return cls(float(d["lo"]), float(d["hi"]))


def make_condition(obs_n: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``obs_n (B, S, nx)`` normalised observations, ``mask (B, S, nx)`` or ``(nx,)`` bool ->
    ``cond (B, 2 S, nx)``; unobserved values (NaN or anything) become 0."""
    mask = torch.as_tensor(mask, device=obs_n.device).to(torch.bool).expand(obs_n.shape)
    values = torch.where(mask, obs_n, torch.zeros((), dtype=obs_n.dtype, device=obs_n.device))
    return torch.cat([values, mask.to(obs_n.dtype)], dim=1)


def history_rows(obs: np.ndarray, mask: np.ndarray, seq_len: int, nx: int):
    """Accept ``obs (nx,)`` or ``(n, nx)`` (oldest first) and ``mask (nx,)`` or ``(n, nx)``;
    return ``(seq_len, nx)`` rows. A history shorter than seq_len (the first DA cycles) is
    padded by repeating its oldest row; a longer one keeps its latest seq_len rows."""
    obs = np.atleast_2d(np.asarray(obs, dtype=np.float64))
    mask = np.asarray(mask, dtype=bool)
    if obs.shape[-1] != nx:
        raise UserError(f"observation has {obs.shape[-1]} grid points, the model {nx}")
    mask = np.broadcast_to(mask if mask.ndim == 2 else mask[None], obs.shape).copy()
    if obs.shape[0] < seq_len:
        pad = seq_len - obs.shape[0]
        obs = np.concatenate([np.repeat(obs[:1], pad, axis=0), obs])
        mask = np.concatenate([np.repeat(mask[:1], pad, axis=0), mask])
    obs, mask = obs[-seq_len:], mask[-seq_len:]
    if not np.all(np.isfinite(obs[mask])):
        raise UserError("observation is NaN or infinite at an observed grid point")
    return obs, mask


def condition_from_obs(obs, mask, normaliser: Normaliser, seq_len: int, nx: int,
                       dtype=torch.float32) -> torch.Tensor:
    """Physical observations (NaN where unobserved is fine) -> ``cond (1, 2 S, nx)``."""
    obs, mask = history_rows(obs, mask, seq_len, nx)
    obs_n = torch.as_tensor(np.where(mask, normaliser.forward(np.nan_to_num(obs)), 0.0),
                            dtype=dtype)[None]
    return make_condition(obs_n, torch.as_tensor(mask)[None])

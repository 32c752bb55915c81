"""The forward diffusion process q(x_t | x_0) and the conversions between parameterisations.

Notation (Ho et al. 2020; Nichol & Dhariwal 2021; Salimans & Ho 2022 for v):
    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,       abar_t = prod_{s<=t} (1 - beta_s),
    v   = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0.
Time indices run t = 0..T-1; t = -1 denotes the clean data (abar = 1), which lets DDIM end its
strided schedule exactly at x_0. The schedule is computed once in float64; the gathered
coefficients are cast to the dtype of the state they multiply. Pure: no input is modified.
"""
from __future__ import annotations

import math

import torch

SCHEDULES = ("cosine", "linear")


def cosine_betas(timesteps: int, s: float = 0.008) -> torch.Tensor:
    """Nichol & Dhariwal (2021) eq. 17: abar(t) = cos^2((t/T + s)/(1 + s) pi/2), betas <= 0.999."""
    x = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64)
    abar = torch.cos(((x / timesteps) + s) / (1 + s) * math.pi * 0.5) ** 2
    abar = abar / abar[0]
    return (1 - abar[1:] / abar[:-1]).clamp(0.0, 0.999)


def linear_betas(timesteps: int) -> torch.Tensor:
    """Ho et al. (2020): beta from 1e-4 to 0.02 over T = 1000, rescaled for other T (and
    capped at 0.999 so very short schedules stay valid)."""
    scale = 1000.0 / timesteps
    return torch.linspace(min(scale * 1e-4, 0.1), min(scale * 0.02, 0.999), timesteps,
                          dtype=torch.float64)


class Schedule:
    """A beta schedule with its cumulative products; methods take integer times ``t (B,)``
    and states ``(B, ...)`` and broadcast the coefficients over the trailing axes."""

    def __init__(self, timesteps: int, kind: str = "cosine"):
        if kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {kind!r}")  # config validation catches users
        self.timesteps = int(timesteps)
        self.kind = kind
        self.betas = cosine_betas(timesteps) if kind == "cosine" else linear_betas(timesteps)
        self.alphas_cumprod = torch.cumprod(1.0 - self.betas, dim=0)
        # abar with abar(-1) = 1 in front, so index t + 1 works for t = -1 .. T-1.
        self._abar = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod])
        self._abar_on = {self._abar.device: self._abar}  # copies per device, made once

    def abar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """abar_t for ``t (B,)`` (t = -1 gives 1), shaped (B, 1, ...) like ``like``. Gathered
        on ``t``'s device: no copy to the host, so a GPU sampler never waits for it."""
        t = torch.as_tensor(t, dtype=torch.long)
        table = self._abar_on.get(t.device)
        if table is None:
            table = self._abar_on[t.device] = self._abar.to(t.device)
        a = table[t + 1].to(device=like.device, dtype=like.dtype)
        return a.reshape(a.shape + (1,) * (like.dim() - 1))

    # --- forward process and parameterisations -------------------------------------------
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        a = self.abar(t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * eps

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        a = self.abar(t, x_t)
        return (x_t - (1 - a).sqrt() * eps) / a.sqrt()

    def predict_eps(self, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        a = self.abar(t, x_t)
        return (x_t - a.sqrt() * x0) / (1 - a).sqrt()

    def v_target(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        a = self.abar(t, x0)
        return a.sqrt() * eps - (1 - a).sqrt() * x0

    def eps_from_v(self, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        a = self.abar(t, x_t)
        return a.sqrt() * v + (1 - a).sqrt() * x_t

    def x0_from_v(self, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        a = self.abar(t, x_t)
        return a.sqrt() * x_t - (1 - a).sqrt() * v

    def q_posterior(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor):
        """Mean and variance of q(x_{t-1} | x_t, x_0) (Ho et al. eq. 6-7); variance 0 at t = 0."""
        a_t = self.abar(t, x_t)
        a_prev = self.abar(t - 1, x_t)
        beta = 1 - a_t / a_prev
        var = beta * (1 - a_prev) / (1 - a_t)
        mean = (a_prev.sqrt() * beta / (1 - a_t)) * x0 \
            + ((1 - beta).sqrt() * (1 - a_prev) / (1 - a_t)) * x_t
        return mean, var


def training_target(schedule: Schedule, objective: str, x0: torch.Tensor, t: torch.Tensor,
                    eps: torch.Tensor) -> torch.Tensor:
    """What the network learns to output: ``eps`` or ``v``."""
    if objective == "eps":
        return eps
    if objective == "v":
        return schedule.v_target(x0, t, eps)
    raise ValueError(f"unknown objective {objective!r}")


def output_to_eps(schedule: Schedule, objective: str, x_t: torch.Tensor, t: torch.Tensor,
                  out: torch.Tensor) -> torch.Tensor:
    """The network output converted to a noise prediction (guidance mixes eps)."""
    if objective == "eps":
        return out
    if objective == "v":
        return schedule.eps_from_v(x_t, t, out)
    raise ValueError(f"unknown objective {objective!r}")


def per_sample_loss(pred: torch.Tensor, target: torch.Tensor, loss: str) -> torch.Tensor:
    """Mean L1 or L2 error per sample: ``(B, ...) -> (B,)``."""
    diff = pred - target
    err = diff.abs() if loss == "l1" else diff.square()
    return err.flatten(1).mean(dim=1)

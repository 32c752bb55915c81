"""Samplers: DDPM ancestral, DDIM (with eta) on a strided schedule, deterministic DDIM
inversion, DDIB (invert, then decode), SDEdit's stochastic encoding (noise, then decode), and
classifier-free guidance.

All samplers take an ``eps_fn(x (B, 1, nx), t (B,) long) -> eps`` so they can be tested with an
analytic denoiser independently of any network, and a ``noise`` object whose ``draw()`` returns
``(B, 1, nx)`` standard normal noise; :class:`MemberNoise` draws each batch row from that
member's own ``torch.Generator``, so a member's sample never depends on the batch it shares.

References: Ho et al. (2020) DDPM; Song et al. (2021) DDIM, eq. 12 and 16; Su et al. (2023)
DDIB (dual diffusion implicit bridges); Meng et al. (2022) SDEdit; Ho & Salimans (2022)
classifier-free guidance.
"""
from __future__ import annotations

from typing import Callable

import torch

from .schedule import Schedule, output_to_eps

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class MemberNoise:
    """Standard normal noise ``(len(generators), *shape)``, row i from generator i (on CPU,
    so a seed gives the same numbers on every device), moved to ``device``/``dtype``."""

    def __init__(self, generators: list[torch.Generator], shape: tuple[int, ...],
                 dtype=torch.float32, device="cpu"):
        self.generators, self.shape = generators, tuple(shape)
        self.dtype, self.device = dtype, device

    def draw(self) -> torch.Tensor:
        rows = [torch.randn(self.shape, generator=g, dtype=torch.float64) for g in self.generators]
        return torch.stack(rows).to(device=self.device, dtype=self.dtype)


def strided_times(timesteps: int, steps: int, strength: float = 1.0) -> list[int]:
    """Ascending times ``t_1 < ... < t_n`` ending at the start time t_s = round(strength T) - 1,
    with the stride T / steps of the full schedule (so fewer steps when strength < 1).
    Decoding walks them downwards to t = -1 (clean data); inversion walks them upwards."""
    t_end = max(1, min(timesteps, round(strength * timesteps)))  # t_s + 1
    n = max(1, min(t_end, round(steps * t_end / timesteps)))
    return [round((i + 1) * t_end / n) - 1 for i in range(n)]


def _full(t: int, like: torch.Tensor) -> torch.Tensor:
    return torch.full((like.shape[0],), t, dtype=torch.long, device=like.device)


def _x0_eps(schedule: Schedule, x: torch.Tensor, tt: torch.Tensor, eps: torch.Tensor,
            clip: float | None):
    """x0 prediction and the eps consistent with it; with ``clip`` x0 is clamped to
    [-clip, clip] (the data range in normalised units) and eps recomputed from it."""
    x0 = schedule.predict_x0(x, tt, eps)
    if clip is None:
        return x0, eps
    x0 = x0.clamp(-clip, clip)
    return x0, schedule.predict_eps(x, tt, x0)


def ddim_step(schedule: Schedule, x: torch.Tensor, eps: torch.Tensor, t: int, t_prev: int,
              eta: float, noise: torch.Tensor | None, clip: float | None = None) -> torch.Tensor:
    """x_t -> x_{t_prev} (Song et al. eq. 12), sigma = eta sqrt((1-a')/(1-a)) sqrt(1-a/a')."""
    tt = _full(t, x)
    a, ap = schedule.abar(tt, x), schedule.abar(_full(t_prev, x), x)
    x0, eps = _x0_eps(schedule, x, tt, eps, clip)
    sigma = eta * ((1 - ap) / (1 - a) * (1 - a / ap)).clamp(min=0).sqrt()
    out = ap.sqrt() * x0 + (1 - ap - sigma ** 2).clamp(min=0).sqrt() * eps
    if eta > 0 and noise is not None:
        out = out + sigma * noise
    return out


def ddim_sample(eps_fn: EpsFn, schedule: Schedule, x: torch.Tensor, times: list[int],
                eta: float = 0.0, noise: MemberNoise | None = None,
                clip: float | None = None) -> torch.Tensor:
    """Decode ``x`` at time ``times[-1]`` down to clean data along ``times`` (ascending)."""
    prev = [-1] + list(times[:-1])
    for t, t_prev in zip(reversed(times), reversed(prev)):
        eps = eps_fn(x, _full(t, x))
        z = noise.draw() if (eta > 0 and noise is not None) else None
        x = ddim_step(schedule, x, eps, t, t_prev, eta, z, clip)
    return x


def ddim_invert(eps_fn: EpsFn, schedule: Schedule, x0: torch.Tensor, times: list[int],
                refine: int = 0) -> torch.Tensor:
    """Deterministic DDIM inversion: clean ``x0`` -> x at ``times[-1]`` along the SAME strided
    times that :func:`ddim_sample` decodes.

    The step t_prev -> t solves x_t = sqrt(a/a') x_{t_prev} + c eps(x_t, t) with
    c = sqrt(1-a) - sqrt(a (1-a') / a'), i.e. the exact inverse of the eta = 0 decoding step
    t -> t_prev. The classic inversion takes eps at the known state x_{t_prev} (first order in
    the stride); ``refine`` fixed-point iterations re-evaluate eps at the new x_t (each costs
    one network pass, and contracts by about |c d eps/dx|, small for any sensible stride)."""
    x = x0
    prev = [-1] + list(times[:-1])
    for t_prev, t in zip(prev, times):
        tt = _full(t, x)
        ap, a = schedule.abar(_full(t_prev, x), x), schedule.abar(tt, x)
        ratio = (a / ap).sqrt()
        c = (1 - a).sqrt() - (a * (1 - ap) / ap).sqrt()
        x_new = ratio * x + c * eps_fn(x, tt)
        for _ in range(refine):
            x_new = ratio * x + c * eps_fn(x_new, tt)
        x = x_new
    return x


def stochastic_encode(schedule: Schedule, x_start: torch.Tensor, t: int,
                      noise: torch.Tensor) -> torch.Tensor:
    """SDEdit's encoding (Meng et al. 2022): x_t ~ q(x_t | x_start) = sqrt(abar_t) x_start +
    sqrt(1 - abar_t) noise, one noise row per member; decoding from x_t then samples the
    (conditional) data distribution near ``x_start``, the closer the smaller t."""
    return schedule.q_sample(x_start.expand_as(noise), _full(t, noise), noise)


def ddpm_sample(eps_fn: EpsFn, schedule: Schedule, x: torch.Tensor, noise: MemberNoise,
                t_start: int | None = None, clip: float | None = None) -> torch.Tensor:
    """Ancestral sampling x_t ~ q(x_{t-1} | x_t, x0_pred) for t = t_start .. 0 (Ho et al. alg. 2
    with the posterior variance beta-tilde)."""
    t_start = schedule.timesteps - 1 if t_start is None else t_start
    for t in range(t_start, -1, -1):
        tt = _full(t, x)
        x0, _ = _x0_eps(schedule, x, tt, eps_fn(x, tt), clip)
        mean, var = schedule.q_posterior(x0, x, tt)
        z = noise.draw()
        x = mean + var.sqrt() * z if t > 0 else mean
    return x


def guided_eps_fn(net, schedule: Schedule, objective: str, cond: torch.Tensor,
                  scale: float) -> EpsFn:
    """Classifier-free guidance: eps = eps_u + s (eps_c - eps_u), eps_u from the NULL condition
    ALWAYS (the original dropped it only 10% of the time). s = 1 is the conditional model alone
    (one network pass), s = 0 the unconditional alone; otherwise both run as one batch."""
    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        c = cond.expand(b, -1, -1) if cond.shape[0] == 1 else cond
        if scale == 1.0:
            return output_to_eps(schedule, objective, x, t, net(x, t, c))
        if scale == 0.0:
            return output_to_eps(schedule, objective, x, t, net(x, t, None))
        x2, t2 = torch.cat([x, x]), torch.cat([t, t])
        drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)])
        out = output_to_eps(schedule, objective, x2, t2, net(x2, t2, torch.cat([c, c]), drop))
        eps_c, eps_u = out[:b], out[b:]
        return eps_u + scale * (eps_c - eps_u)
    return eps_fn

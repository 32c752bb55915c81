"""Sampling-based validation and evaluation on held-out trajectories.

Held-out cases are (truth, noisy observation history) pairs drawn from the val or test split with
``rng.stream(seed, TRAINING, HELD_OUT_KEY, which)``: fixed for a run, so validation values are
comparable between steps (and identical after a resume).

:func:`evaluate` is the quality check of docs/diffusion.md: per held-out state, the mean of k
conditional samples against the truth, compared with periodic linear interpolation of the
observations, plus the sample spread.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import rng
from ..diffusion.bundle import ModelBundle, sample_pseudo_ensemble
from .data import HELD_OUT_KEY


@dataclass
class HeldOut:
    truth: np.ndarray  # (n, nx)
    obs: np.ndarray    # (n, seq_len, nx), NaN where unobserved
    mask: np.ndarray   # (nx,) bool


def held_out_cases(states: np.ndarray, n: int, seq_len: int, mask: np.ndarray, sigma: float,
                   seed: int, which: int, lag: int = 0) -> HeldOut:
    """``n`` cases from split states ``(n_traj, steps, nx)``: the truth at a time t and noisy
    observations of the ``seq_len`` states ending at t - lag."""
    g = rng.stream(seed, rng.Purpose.TRAINING, HELD_OUT_KEY, which)
    traj = g.integers(0, states.shape[0], n)
    time = g.integers(seq_len - 1 + lag, states.shape[1], n)
    hist = np.stack([states[i, t - lag - seq_len + 1:t - lag + 1] for i, t in zip(traj, time)])
    obs = hist + sigma * g.standard_normal(hist.shape)
    truth = np.stack([states[i, t] for i, t in zip(traj, time)])
    return HeldOut(truth=truth, obs=np.where(mask, obs, np.nan), mask=mask)


def interpolate_obs(obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Periodic linear interpolation of ``obs (nx,)`` from the observed points."""
    nx = obs.shape[-1]
    xp = np.flatnonzero(mask)
    return np.interp(np.arange(nx), xp, obs[xp], period=nx)


def validation_rmse(bundle: ModelBundle, cases: HeldOut, seed: int, step: int, *, steps: int,
                    eta: float, guidance: float) -> float:
    """RMSE (state units) of one sample per held-out state (member = case index, cycle = step)."""
    sq = []
    for i in range(cases.truth.shape[0]):
        x = sample_pseudo_ensemble(bundle, cases.obs[i], cases.mask, [i], step, seed,
                                   sampler="ddim", steps=steps, eta=eta, guidance=guidance)
        sq.append(np.mean((x[0] - cases.truth[i]) ** 2))
    return float(np.sqrt(np.mean(sq)))


def evaluate(bundle: ModelBundle, cases: HeldOut, seed: int, *, members: int, steps: int,
             eta: float, guidance: float, sampler: str = "ddim") -> dict:
    """Ensemble-mean RMSE, spread and the interpolation baseline over the held-out cases."""
    err_mean, spread, err_interp, err_member = [], [], [], []
    for i in range(cases.truth.shape[0]):
        ens = sample_pseudo_ensemble(bundle, cases.obs[i], cases.mask, range(members), i, seed,
                                     sampler=sampler, steps=steps, eta=eta, guidance=guidance)
        truth = cases.truth[i]
        err_mean.append(np.mean((ens.mean(0) - truth) ** 2))
        spread.append(np.mean(ens.var(0, ddof=1)))
        err_member.append(np.mean((ens - truth) ** 2))
        err_interp.append(np.mean((interpolate_obs(cases.obs[i, -1], cases.mask) - truth) ** 2))
    rmse, spr = float(np.sqrt(np.mean(err_mean))), float(np.sqrt(np.mean(spread)))
    return {"cases": int(cases.truth.shape[0]), "members": members, "sampler": sampler,
            "steps": steps, "eta": eta, "guidance": guidance,
            "rmse_ensemble_mean": rmse, "spread": spr, "spread_over_rmse": spr / rmse,
            "rmse_member": float(np.sqrt(np.mean(err_member))),
            "rmse_linear_interpolation": float(np.sqrt(np.mean(err_interp)))}

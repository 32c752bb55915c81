"""Additive inflation: random perturbations added to the background ensemble, the standard
remedy for model error in ensemble filters (Hamill & Whitaker 2005, MWR 133, 3132-3147;
Whitaker et al. 2008, MWR 136, 463-482).

Every cycle, before the analysis, member m's forecast gets ``eta_m - mean_l(eta_l)`` with
``eta_m = filter.additive * L z_m``, ``z_m ~ N(0, I)`` drawn from
``rng.stream(osse.seed, ADDITIVE_INFLATION, m, cycle)`` on the rank that owns m, so the numbers
do not depend on the rank count. Removing the member mean keeps the forecast mean unchanged and
adds ``filter.additive^2 C`` to the ensemble covariance in expectation (sample covariance with
``k - 1`` in the denominator): the perturbations model the forecast error the model cannot
represent, they do not move the forecast.

``C = L L^T`` (``filter.additive_covariance``):

- ``"identity"`` (default): independent N(0, additive^2) at every grid point. The forcing bias
  of the paper's OSSE adds ``(F_nature - F_model) dt`` at every point every step, a model error
  with no preferred spatial structure among the growing modes; white noise needs no climatology
  and is the same for any forecast model.
- ``"climatological"``: the covariance of the dataset's model runs (the Gaussian ablation's, see
  :func:`~genenkf_hpc.cycling.generative.climatological_covariance`) scaled to unit mean
  variance, so ``filter.additive`` is the per-point standard deviation in both cases; the
  perturbations then follow the model's own correlation length.
"""
from __future__ import annotations

import numpy as np

from .. import rng
from .base import CycleContext


def covariance_root(ctx: CycleContext) -> np.ndarray | None:
    """``L (nx, nx)`` with ``L L^T = C`` of unit mean variance, or None for the identity;
    computed once per run (``ctx.cache``)."""
    f = ctx.cfg.filter
    if f.additive_covariance == "identity":
        return None
    if "additive_root" not in ctx.cache:
        from .generative import climatological_covariance

        cov = climatological_covariance(ctx.cfg)
        cov = cov / np.mean(np.diag(cov))
        w, v = np.linalg.eigh(cov)  # symmetric root: robust where C is near-singular
        ctx.cache["additive_root"] = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    return ctx.cache["additive_root"]


def draw(seed: int, member_ids, cycle: int, nx: int, amplitude: float,
         root: np.ndarray | None = None) -> np.ndarray:
    """Uncentred perturbations ``(len(member_ids), nx)``: ``amplitude * L z_m``, member m's
    ``z_m`` from its own stream (pure)."""
    z = np.stack([rng.stream(seed, rng.Purpose.ADDITIVE_INFLATION, int(m), cycle)
                  .standard_normal(nx) for m in member_ids]) if len(member_ids) \
        else np.empty((0, nx))
    return amplitude * (z if root is None else z @ root.T)


def perturb_background(ctx: CycleContext, block: np.ndarray, cycle: int) -> np.ndarray:
    """This rank's member block on its segment ``(k_local, n_d)`` plus its centred additive
    perturbations (member m's drawn on the whole ring and cut to the segment, so any layout
    adds the same numbers; collective: one Allreduce of ``n_d`` values among the member groups
    for the member mean). The block itself when ``filter.additive`` is 0."""
    f = ctx.cfg.filter
    if f.additive == 0.0:
        return block
    t = ctx.layout
    eta = t.segment(draw(ctx.cfg.osse.seed, t.member_ids, cycle, ctx.nx, f.additive,
                         covariance_root(ctx)))
    return block + (eta - t.member_sum(eta) / t.members)

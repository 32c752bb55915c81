"""The classical methods, parallel: noda, nudging, enkf (perturbed obs), etkf, letkf.

Ensemble methods bring the member blocks together on grid blocks (all members, a block of
points: ``ctx.layout.to_grid``, transposes and/or a halo exchange) and back; the analysis
kernels are the pure functions of :mod:`genenkf_hpc.da`:

- letkf: each rank analyses its points from its block plus the halo of observations within
  ``filter.radius`` (:func:`~genenkf_hpc.cycling.base.local_letkf`);
- etkf: the ensemble-space sums over observations (Hunt et al. 2007, eqs. 14-21) are additive
  over observations: each rank sums its own observed points, one ``Allreduce`` completes them,
  every rank computes the same weights and applies them to its points;
- enkf: the same with perturbed observations; member m's perturbations of all observations come
  from ``rng.stream(osse.seed, ENKF_OBS_PERTURBATION, m, cycle)`` on the rank owning m, and
  travel with the ensemble through the transpose.

The three ensemble filters first add ``filter.additive`` inflation to the background
(:mod:`.model_error`); their settings (summary.json) record every [filter] key they use.
"""
from __future__ import annotations

import numpy as np

from .. import rng
from .base import (CycleContext, Diagnostics, EnsembleMethod, SimulationMethod, local_letkf)
from .model_error import perturb_background

ADDITIVE_KEYS = ("additive", "additive_covariance")
# What the classical methods read ("dataset": the climatological additive-inflation shape).
CLASSICAL_SECTIONS = ("model", "nature", "osse", "filter", "nudging", "dataset")


class NoDA(SimulationMethod):
    """Free run of the simulation model (no observations used)."""

    name = "noda"
    fingerprint_sections = CLASSICAL_SECTIONS

    def analyse(self, ctx, state, obs, cycle, obs_history):
        return state, self.simulation_diagnostics(ctx, state)


class Nudging(SimulationMethod):
    """x <- (1 - alpha) x + alpha y at the observed points (``nudging.alpha``)."""

    name = "nudging"
    fingerprint_sections = CLASSICAL_SECTIONS

    def settings(self) -> dict:
        return {"alpha": self.cfg.nudging.alpha}

    def analyse(self, ctx, state, obs, cycle, obs_history):
        from ..da.nudging import nudge

        segment = ctx.layout.segment
        new = nudge(state, segment(obs), segment(ctx.mask), self.cfg.nudging.alpha)
        return new, self.simulation_diagnostics(ctx, new)


def _filter_settings(cfg, keys) -> dict:
    return {key: getattr(cfg.filter, key) for key in keys}


class LETKF(EnsembleMethod):
    """Local ETKF (Hunt et al. 2007), parallel over grid blocks with an observation halo."""

    name = "letkf"
    fingerprint_sections = CLASSICAL_SECTIONS

    def halo_radius(self) -> float:
        return self.cfg.filter.radius

    def settings(self) -> dict:
        return _filter_settings(self.cfg, ("radius", "taper", "inflation", "rtps", "rtpp", "solve")
                                + ADDITIVE_KEYS)

    def analyse(self, ctx, state, obs, cycle, obs_history):
        t = ctx.layout
        xa = local_letkf(ctx, t.to_grid(perturb_background(ctx, state, cycle)), obs)
        return t.to_members(xa), Diagnostics(ensemble=xa)


def _owned_obs(ctx: CycleContext, grid: np.ndarray, obs: np.ndarray):
    """``(yb (k, p_local), yo (p_local,), observed (npts,) bool)`` on this rank's points."""
    points = np.arange(*ctx.layout.grid_range)
    observed = ctx.mask[points]
    return grid[:, observed], obs[points[observed]], observed


def _relax(ctx: CycleContext, xb: np.ndarray, xa: np.ndarray) -> np.ndarray:
    """RTPS / RTPP (pointwise in the grid block, so the same on any decomposition)."""
    from ..da import inflation

    f = ctx.cfg.filter
    if f.rtpp > 0:
        xa = inflation.rtpp(xa, xb, f.rtpp)
    if f.rtps > 0:
        xa = inflation.rtps(xa, xb, f.rtps)
    return xa


class ETKF(EnsembleMethod):
    """Global ETKF (symmetric square root); ensemble-space sums reduced with Allreduce."""

    name = "etkf"
    fingerprint_sections = CLASSICAL_SECTIONS

    def settings(self) -> dict:
        return _filter_settings(self.cfg, ("inflation", "rtps", "rtpp") + ADDITIVE_KEYS)

    def analyse(self, ctx, state, obs, cycle, obs_history):
        from ..da import etkf

        t, k = ctx.layout, ctx.layout.members
        xb = t.to_grid(perturb_background(ctx, state, cycle))
        yb, yo, _ = _owned_obs(ctx, xb, obs)
        gram, proj = etkf.obs_space_sums(yb, yo, ctx.obs_var)
        sums = ctx.comm.Allreduce(np.concatenate([np.ravel(gram), np.ravel(proj)]))
        w_mean, W = etkf.etkf_weights(sums[:k * k].reshape(k, k), sums[k * k:], k,
                                      self.cfg.filter.inflation)
        xa = _relax(ctx, xb, etkf.apply_weights(xb, w_mean, W))
        return t.to_members(xa), Diagnostics(ensemble=xa)


class EnKF(EnsembleMethod):
    """Stochastic EnKF with perturbed observations (Burgers et al. 1998), global."""

    name = "enkf"
    fingerprint_sections = CLASSICAL_SECTIONS

    def settings(self) -> dict:
        return _filter_settings(self.cfg, ("inflation", "rtps", "rtpp", "center_perturbations")
                                + ADDITIVE_KEYS)

    def perturbations(self, ctx: CycleContext, cycle: int) -> np.ndarray:
        """This rank's members' observation perturbations on its segment ``(k_local, n_d)``
        (zero where not observed): N(0, obs_var) over all observations, member m from its own
        stream."""
        t = ctx.layout
        observed = np.flatnonzero(ctx.mask)
        out = np.zeros((t.k_local, ctx.nx))
        sigma = np.sqrt(ctx.obs_var)
        # One stream per member is what ties the numbers to (seed, member, cycle), not to the
        # rank; the draws themselves are vectorised over the observations.
        for row, member in enumerate(t.member_ids):
            gen = rng.stream(ctx.cfg.osse.seed, rng.Purpose.ENKF_OBS_PERTURBATION, member, cycle)
            out[row, observed] = sigma * gen.standard_normal(observed.size)
        return t.segment(out)

    def analyse(self, ctx, state, obs, cycle, obs_history):
        from ..da import enkf

        t, k = ctx.layout, ctx.layout.members
        xb = t.to_grid(perturb_background(ctx, state, cycle))
        yb, yo, observed = _owned_obs(ctx, xb, obs)
        eps = t.to_grid(self.perturbations(ctx, cycle))[:, observed]
        if self.cfg.filter.center_perturbations:
            eps = enkf.center_perturbations(eps)  # per observation: local to the grid block
        gram, proj = enkf.perturbation_sums(yb, yo, ctx.obs_var, eps)
        sums = ctx.comm.Allreduce(np.concatenate([np.ravel(gram), np.ravel(proj)]))
        T = enkf.enkf_weights(sums[:k * k].reshape(k, k), sums[k * k:].reshape(k, k), k,
                              self.cfg.filter.inflation)
        xa = _relax(ctx, xb, xb + T.T @ (xb - xb.mean(axis=0)))  # da.enkf.enkf_weights
        return t.to_members(xa), Diagnostics(ensemble=xa)

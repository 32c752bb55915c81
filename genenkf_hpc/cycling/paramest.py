"""``letkf_paramest``: the LETKF estimating the forcing F online (augmented state).

The forcing is a *global* parameter: one value for the whole ring, but every member carries its
own ``F_m`` and forecasts with it (``ctx.dynamics.with_forcing(F[:, None])``), so the ensemble
learns the covariance between F and the observed state. Each analysis (the global-parameter
form of Ruiz, Pulido & Miyoshi 2013, JMSJ 91, 453-469, after Aksoy et al. 2006, GRL 33, L12801):

1. the parameter ensemble is analysed as a further variable at every grid point with that
   point's LETKF weights (:func:`~.base.local_letkf` with ``extra``: the same kernel, the state
   and the parameter columns in one call);
2. the new global ensemble is the spatial mean of these local analyses over the points that
   have local observations (points without any keep the background, an increment of zero that
   would only dilute the mean); one Allreduce of ``k + 1`` numbers;
3. spread collapse: an ensemble that sees the same parameter in every member loses its spread
   geometrically, after which the filter stops learning (and, with model error, cannot follow a
   slowly varying truth). Conditional covariance inflation (Aksoy, Zhang & Nielsen-Gammon 2006,
   MWR 134, 2951-2970) scales the parameter anomalies back to ``paramest.min_spread`` whenever
   they fall below it: it keeps the estimate adaptive without adding noise to the mean, whereas
   a relaxation towards a fixed spread would also inflate an ensemble that is still learning.

The state analysis is the plain LETKF's (multiplicative inflation, RTPS and additive inflation
of [filter] apply; the parameter receives the multiplicative inflation and RTPS at each point,
not the additive one). Every rank holds the whole ``(k,)`` parameter ensemble; restarts carry
it with the series of its mean. summary.json records ``forcing_estimate``: the time mean of the
ensemble-mean F after the burn-in, its standard deviation over that period, the final mean and
the final spread.
"""
from __future__ import annotations

import numpy as np

from .. import rng
from ..errors import UserError
from .base import CycleContext, Diagnostics, local_letkf, local_table
from .classical import CLASSICAL_SECTIONS, LETKF
from .model_error import perturb_background


def initial_forcing(model_forcing: float, spread: float, members: int, seed: int) -> np.ndarray:
    """``(members,)`` initial F: member m's draw from ``(seed, PARAMETER_INITIAL, m)``, then
    shifted and scaled so that the ensemble's mean is exactly ``model_forcing`` and its standard
    deviation (ddof=1) exactly ``spread`` (the prior guess is the model's F)."""
    z = np.array([rng.stream(seed, rng.Purpose.PARAMETER_INITIAL, m).standard_normal()
                  for m in range(members)])
    z = (z - z.mean()) / z.std(ddof=1)
    return model_forcing + spread * z


def global_parameter(local: np.ndarray, has_obs: np.ndarray, comm) -> np.ndarray | None:
    """Spatial mean ``(k, m)`` over every rank's points with local observations of the local
    parameter analyses ``local (k, m, npts_local)``; None when no point has any."""
    k, m, _ = local.shape
    part = np.concatenate([local[:, :, has_obs].sum(axis=2).ravel(), [float(has_obs.sum())]])
    total = comm.Allreduce(part)
    if total[-1] == 0:
        return None
    return total[:-1].reshape(k, m) / total[-1]


class LETKFParamEst(LETKF):
    """LETKF + online estimation of the global forcing F (module doc)."""

    name = "letkf_paramest"
    fingerprint_sections = CLASSICAL_SECTIONS + ("paramest",)

    def settings(self) -> dict:
        p = self.cfg.paramest
        return {**super().settings(), "forcing_initial": self.cfg.model.forcing,
                "forcing_spread": p.spread, "forcing_min_spread": p.min_spread}

    def setup(self, ctx: CycleContext) -> None:
        if not hasattr(ctx.dynamics, "with_forcing"):
            raise UserError(f"--method {self.name}: model.dynamics={self.cfg.model.dynamics!r} "
                            "has no forcing F to estimate (no with_forcing)")
        cfg = self.cfg
        self.forcing = initial_forcing(cfg.model.forcing, cfg.paramest.spread, self.members(),
                                       cfg.osse.seed)
        self.forcing_series = np.full(cfg.osse.cycles, np.nan)  # ensemble mean per cycle

    def forecast(self, ctx, state, steps):
        own = self.forcing[ctx.layout.member_ids]
        return ctx.layout.integrate(ctx.dynamics.with_forcing(own[:, None]), state, steps)

    def analyse(self, ctx, state, obs, cycle, obs_history):
        from ..da.inflation import conditional_inflation

        t = ctx.layout
        grid = t.to_grid(perturb_background(ctx, state, cycle))
        repeated = np.broadcast_to(self.forcing[:, None, None], (t.members, 1, t.npts))
        xa, local = local_letkf(ctx, grid, obs, extra=repeated)
        has_obs = local_table(ctx)[1][:, 0] > 0  # local entries come first in each row
        analysed = global_parameter(local, has_obs, ctx.comm)
        if analysed is not None:
            self.forcing = conditional_inflation(analysed, self.cfg.paramest.min_spread)[:, 0]
        self.forcing_series[cycle - 1] = self.forcing.mean()
        return t.to_members(xa), Diagnostics(ensemble=xa)

    def results(self) -> dict:
        after = self.forcing_series[self.cfg.osse.burn_in:]
        return {"forcing_estimate": {
            "mean": float(np.mean(after)), "std": float(np.std(after)),
            "final": float(self.forcing.mean()), "final_spread": float(self.forcing.std(ddof=1)),
            "initial": self.cfg.model.forcing}}

    def extra_state(self) -> dict[str, np.ndarray]:
        return {"forcing": self.forcing, "forcing_series": self.forcing_series}

    def load_extra_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.forcing = np.array(arrays["forcing"], dtype=np.float64)
        self.forcing_series = np.array(arrays["forcing_series"], dtype=np.float64)

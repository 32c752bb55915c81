"""Data-assimilation analysis kernels (pure numpy) and the registry of methods.

Ensembles are (members, points). Kernels never modify their inputs, never log, never touch files
or MPI. ``ANALYSES`` maps each exact method name to a small descriptor; the cycling driver decides
how to call the kernels (a ``genenkf`` method adds the diffusion pseudo-ensemble on top of
``letkf`` and is registered by the driver, not here).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError


@dataclass(frozen=True)
class Analysis:
    """What the driver needs to know about an analysis method."""

    name: str
    is_ensemble: bool  # needs an ensemble forecast (k members)
    is_local: bool  # analysis per grid point with localisation (decomposable over points)
    doc: str


ANALYSES = {
    a.name: a
    for a in (
        Analysis("noda", False, False, "no assimilation: free run of the model (xa = xb)"),
        Analysis("nudging", False, True,
                 "x <- (1 - alpha) x + alpha y at observed points (da.nudging.nudge)"),
        Analysis("enkf", True, False,
                 "stochastic EnKF, perturbed observations (Burgers et al. 1998; da.enkf)"),
        Analysis("etkf", True, False,
                 "global ensemble transform Kalman filter (Bishop et al. 2001; da.etkf)"),
        Analysis("letkf", True, True,
                 "local ETKF, R-localisation (Hunt et al. 2007; da.letkf.letkf_analysis)"),
    )
}


def get_analysis(name: str) -> Analysis:
    """The descriptor of method ``name`` (exact match); unknown names raise UserError."""
    try:
        return ANALYSES[name]
    except KeyError:
        raise UserError(f"method={name!r}: unknown; valid methods: "
                        f"{', '.join(ANALYSES)}") from None

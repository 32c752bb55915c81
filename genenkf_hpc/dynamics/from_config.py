"""The experiment's models from a config: the forecast model ([model]) and the nature model
([nature], the [model] one with F_nature when unset), with the step counts that put both on the
same cycle clock."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError
from .registry import build_dynamics


def forecast_model(cfg, forcing: float | None = None):
    """The [model] dynamics (F = ``model.forcing`` unless ``forcing`` is given)."""
    m = cfg.model
    return build_dynamics(m.dynamics, nx=m.nx, dt=m.dt,
                          forcing=m.forcing if forcing is None else forcing, params=m.params)


@dataclass(frozen=True)
class NatureClock:
    """Steps of the nature model per cycle and for its spin-up."""

    steps_per_cycle: int
    spinup_steps: int


def nature_model(cfg, forcing: float):
    """The truth's dynamics for F_nature = ``forcing``."""
    n, m = cfg.nature, cfg.model
    if not n.dynamics:
        return build_dynamics(m.dynamics, nx=m.nx, dt=m.dt, forcing=forcing, params=m.params)
    return build_dynamics(n.dynamics, nx=m.nx, dt=n.dt or m.dt, forcing=forcing,
                          params=n.params, key="nature.dynamics")


def nature_clock(cfg) -> NatureClock:
    """Nature steps per cycle and spin-up steps: the cycle interval and the model's spin-up
    time divided by the nature time step (which must divide the interval)."""
    m, o = cfg.model, cfg.osse
    dt = cfg.nature.dt or m.dt
    if not cfg.nature.dynamics or dt == m.dt:
        return NatureClock(o.steps_per_cycle, m.spinup_steps)
    interval = m.dt * o.steps_per_cycle
    steps = round(interval / dt)
    if steps < 1 or abs(steps * dt - interval) > 1e-9 * interval:
        raise UserError(f"nature.dt={dt:g} does not divide the cycle interval model.dt * "
                        f"osse.steps_per_cycle = {interval:g}")
    return NatureClock(steps, round(m.spinup_steps * m.dt / dt))


def configured_dynamics(cfg, source: str = "model") -> str:
    """The configured name (registered or ``module:factory``) of the forecast model
    (``source = "model"``) or of the nature model (``"nature"``)."""
    if source == "nature":
        return cfg.nature.dynamics or cfg.model.dynamics
    return cfg.model.dynamics

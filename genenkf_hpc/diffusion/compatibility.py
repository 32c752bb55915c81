"""Does a trained diffusion model fit the experiment it is used in? (CONTRACT section 7)

A network conditioned on sparse observations has learnt one observing system (the grid, the
observed points, the error sigma), one time spacing of its observation history and one
distribution of states (the training data's model, its forcing and time step). Used in another
experiment it still produces samples, only wrong ones: nothing fails, the scores just get
worse. So before a run, every entry of :data:`REQUIREMENTS` compares what the checkpoint was
trained for with what the experiment needs, and a mismatch stops the run with exit 2 and one
line naming the key and both values, unless ``generative.allow_mismatch`` lists the key.

The table is the whole mechanism: each :class:`Requirement` says how to read the model's value
from a checkpoint dict (with fallbacks for checkpoints written before the value was recorded,
e.g. ``models/l96_local.pt``), how to compute the experiment's value and how
to compare them. Adding a key is adding one entry; ``genenkf train`` must then record what the
entry reads (``workflows/train.py``, ``Trainer._static``).

Pure: reads dicts and the config, never files, torch or MPI.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..dynamics.from_config import configured_dynamics
from ..errors import UserError
from ..osse import obs_mask

ALLOW_KEY = "generative.allow_mismatch"


@dataclass(frozen=True)
class Experiment:
    """What a run asks of the model: its config, the observed points of its nature run
    ``mask (nx,)`` and the nature run's forcing F."""

    cfg: Any  # genenkf_hpc.config.Config
    mask: np.ndarray
    forcing_nature: float


# --- reading a checkpoint ----------------------------------------------------------------------


def _dataset(ckpt: dict) -> dict:
    return ckpt["dataset"]


def training_source(ckpt: dict) -> str:
    """"model" (trajectories of the forecast model, as in the paper) or "nature" (a
    reanalysis-like archive of the truth); checkpoints before dataset.source: "model"."""
    return str(_dataset(ckpt).get("source", "model"))


def _model_nx(ckpt: dict) -> int:
    return int(ckpt["arch"]["nx"])


def model_mask(ckpt: dict) -> tuple[int, ...]:
    """The observed points the network was trained on."""
    obs = ckpt["obs"]
    if "mask" in obs:
        return tuple(int(i) for i in obs["mask"])
    # before the mask was recorded, training always observed every interval-th point from 0
    return tuple(int(i) for i in np.flatnonzero(obs_mask(_model_nx(ckpt), int(obs["interval"]))))


def _model_history_interval(ckpt: dict) -> float:
    data = _dataset(ckpt)
    # datasets before `interval` was recorded stored consecutive model steps
    return float(data.get("interval", data["dt"]))


def _model_dynamics(ckpt: dict) -> str:
    name = _dataset(ckpt).get("dynamics", "lorenz96")  # before models were pluggable: L96
    return str(name["dynamics"] if isinstance(name, dict) else name)


def _seq_len(ckpt: dict) -> int:
    return int(ckpt["arch"].get("seq_len", 1))


# --- the experiment ----------------------------------------------------------------------------


def _mask_of(exp: Experiment) -> tuple[int, ...]:
    return tuple(int(i) for i in np.flatnonzero(exp.mask))


def experiment_obs_lag(cfg) -> int:
    """Cycles between the newest observation the members may see and the analysis time:
    1 in prior mode (observations before t only), 0 in the paper's posterior mode."""
    return 1 if cfg.generative.mode == "prior" else 0


def _forcing_of(exp: Experiment, ckpt: dict) -> float:
    """The F the network must have seen: the forecast model's, or for a network trained on the
    nature model (a reanalysis) that of the nature run it is used in."""
    if training_source(ckpt) == "nature":
        return float(exp.forcing_nature)
    return float(exp.cfg.model.forcing)


def _dynamics_of(exp: Experiment, ckpt: dict) -> str:
    return configured_dynamics(exp.cfg, training_source(ckpt))


def _forcing_where(ckpt: dict) -> str:
    return "F_nature of the run" if training_source(ckpt) == "nature" else "model.forcing"


def _dynamics_where(ckpt: dict) -> str:
    return "nature.dynamics" if training_source(ckpt) == "nature" else "model.dynamics"


# --- comparing and showing ---------------------------------------------------------------------


def _equal(a, b) -> bool:
    return a == b


def _close(a, b) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)


def _show(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _show_points(points: tuple[int, ...]) -> str:
    listed = ", ".join(map(str, points)) if len(points) <= 8 else \
        ", ".join(map(str, points[:3])) + ", ..., " + ", ".join(map(str, points[-2:]))
    return f"[{listed}] ({len(points)} points)"


def _show_lag(lag: int) -> str:
    return f"{lag} ({'prior' if lag else 'posterior'} mode)"


def _always(ckpt: dict) -> bool:
    return True


def _whole_ring(ckpt: dict) -> bool:
    """A whole-ring network (no receptive field recorded) applies to its own ring only."""
    return "receptive_field" not in ckpt


def _local(ckpt: dict) -> bool:
    return not _whole_ring(ckpt)


def _pattern(mask: np.ndarray) -> str:
    """A local network sees an observation pattern, not a ring: "every k-th point from 0"
    when the mask is one, else the observed points."""
    points = np.flatnonzero(mask)
    k = int(points[1] - points[0]) if len(points) > 1 else len(mask)
    if k > 0 and len(mask) % k == 0 and np.array_equal(mask, obs_mask(len(mask), k)):
        return f"every {k}-th point from 0"
    return "points " + _show_points(tuple(int(i) for i in points))


@dataclass(frozen=True)
class Requirement:
    """One thing a model and an experiment must agree on.

    ``model(ckpt)`` reads the model's value, ``experiment(exp, ckpt)`` computes the
    experiment's (the checkpoint is passed for values that depend on how the model was
    trained), ``same`` compares, ``show`` formats for the error line, ``where`` names the
    experiment's setting (a string, or a function of the checkpoint), ``applies(ckpt)`` says
    whether the key matters for this model at all."""

    key: str
    model: Callable[[dict], Any]
    experiment: Callable[[Experiment, dict], Any]
    where: str | Callable[[dict], str]
    same: Callable[[Any, Any], bool] = _equal
    show: Callable[[Any], str] = _show
    applies: Callable[[dict], bool] = _always


REQUIREMENTS: tuple[Requirement, ...] = (
    # a local network samples any ring its receptive field allows (networks.check_grid)
    Requirement("nx", _model_nx, lambda e, c: int(e.cfg.model.nx), "model.nx",
                applies=_whole_ring),
    Requirement("obs_interval", lambda c: int(c["obs"]["interval"]),
                lambda e, c: int(e.cfg.osse.obs_interval), "osse.obs_interval"),
    Requirement("obs_sigma", lambda c: float(c["obs"]["sigma"]),
                lambda e, c: float(e.cfg.osse.obs_sigma), "osse.obs_sigma", same=_close),
    Requirement("obs_mask", model_mask, lambda e, c: _mask_of(e),
                "the observed points of the nature run", show=_show_points,
                applies=_whole_ring),
    Requirement("obs_mask", lambda c: f"every {int(c['obs']['interval'])}-th point from 0",
                lambda e, c: _pattern(np.asarray(e.mask, dtype=bool)),
                "the observed points of the nature run", applies=_local),
    # checkpoints before network.obs_lag: conditioned on the current observation (posterior)
    Requirement("obs_lag", lambda c: int(c["obs"].get("lag", 0)),
                lambda e, c: experiment_obs_lag(e.cfg), "generative.mode", show=_show_lag),
    Requirement("dt", lambda c: float(_dataset(c)["dt"]), lambda e, c: float(e.cfg.model.dt),
                "model.dt", same=_close),
    # Only a network that sees an observation history knows its time spacing.
    Requirement("history_interval", _model_history_interval,
                lambda e, c: float(e.cfg.model.dt * e.cfg.osse.steps_per_cycle),
                "model.dt * osse.steps_per_cycle", same=_close,
                applies=lambda c: _seq_len(c) >= 2),
    Requirement("forcing", lambda c: float(_dataset(c)["forcing"]), _forcing_of, _forcing_where,
                same=_close),
    Requirement("dynamics", _model_dynamics, _dynamics_of, _dynamics_where),
)
KEYS: tuple[str, ...] = tuple(dict.fromkeys(r.key for r in REQUIREMENTS))


@dataclass(frozen=True)
class Mismatch:
    key: str
    model: Any
    experiment: Any
    where: str
    text: str  # "key: model M, experiment E (where)"

    def to_dict(self) -> dict:
        """JSON-ready record (summary.json)."""
        def plain(v):
            return list(v) if isinstance(v, tuple) else v
        return {"key": self.key, "model": plain(self.model),
                "experiment": plain(self.experiment), "where": self.where}


def mismatches(ckpt: dict, exp: Experiment, name: str = "checkpoint") -> list[Mismatch]:
    """Every requirement the model and the experiment disagree on, in table order."""
    found = []
    for req in REQUIREMENTS:
        try:
            if not req.applies(ckpt):
                continue
            model = req.model(ckpt)
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"checkpoint {name}: not a genenkf train checkpoint (cannot read "
                            f"{req.key}: {type(exc).__name__} {exc})") from None
        wanted = req.experiment(exp, ckpt)
        if not req.same(model, wanted):
            where = req.where(ckpt) if callable(req.where) else req.where
            found.append(Mismatch(req.key, model, wanted, where,
                                  f"{req.key}: model {req.show(model)}, experiment "
                                  f"{req.show(wanted)} ({where})"))
    return found


def check(ckpt: dict, exp: Experiment, allow, name: str) -> list[Mismatch]:
    """Raise :class:`UserError` (one line: the checkpoint, each key with both values) for any
    mismatch not listed in ``allow``; return the accepted ones (to log and record)."""
    check_allowed(allow)
    found = mismatches(ckpt, exp, name)
    refused = [m for m in found if m.key not in allow]
    if refused:
        keys = json.dumps([m.key for m in refused])
        raise UserError(f"model {name} does not fit this experiment: "
                        + "; ".join(m.text for m in refused)
                        + f"; to use it anyway, set {ALLOW_KEY} = {keys}")
    return found


def check_allowed(names) -> None:
    """``generative.allow_mismatch`` may only name keys of :data:`REQUIREMENTS`."""
    unknown = [n for n in names if n not in KEYS]
    if unknown:
        raise UserError(f"{ALLOW_KEY}={list(names)!r}: unknown key(s) "
                        f"{', '.join(map(repr, unknown))}; valid keys: {', '.join(KEYS)}")

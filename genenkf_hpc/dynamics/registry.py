"""Dynamical models by name: built-ins, models registered from Python, ``module:factory``.

Every failure a user can cause (an unknown name, a module that does not import, a factory that
rejects its parameters, an object without the interface) is a :class:`UserError` naming the
config key and the model.
"""
from __future__ import annotations

import importlib
from typing import Callable

from ..errors import UserError

FACTORIES: dict[str, Callable | str] = {
    "lorenz96": "genenkf_hpc.dynamics.lorenz96:make_lorenz96",
    "lorenz96_two_scale": "genenkf_hpc.dynamics.two_scale:make_two_scale",
}


def register_dynamics(name: str, factory: Callable | str) -> None:
    """Make ``factory`` (a callable or ``"module:function"``) available as ``name``."""
    if not name or ":" in name:
        raise UserError(f"dynamics name {name!r}: expected a plain name without ':'")
    FACTORIES[name] = factory


def dynamics_names() -> list[str]:
    return list(FACTORIES)


def _import(target: str, key: str) -> Callable:
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise UserError(f"{key}={target!r}: expected a registered name ("
                        + ", ".join(FACTORIES) + ") or 'package.module:factory'")
    try:
        obj = importlib.import_module(module)
    except Exception as exc:  # ImportError, or anything the module raises on import
        raise UserError(f"{key}={target!r}: cannot import module {module!r} "
                        f"({type(exc).__name__}: {exc})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UserError(f"{key}={target!r}: module {module!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UserError(f"{key}={target!r}: {attr} is not callable")
    return obj


def _factory(name: str, key: str) -> Callable:
    target = FACTORIES.get(name, name)
    if callable(target):
        return target
    if name not in FACTORIES and ":" not in name:
        raise UserError(f"{key}={name!r}: unknown dynamics; registered: "
                        + ", ".join(FACTORIES) + " (or give 'package.module:factory')")
    return _import(target, key)


def build_dynamics(name: str, *, nx: int, dt: float, forcing: float, params: dict | None = None,
                   key: str = "model.dynamics"):
    """The model ``name`` built for ``nx`` points and time step ``dt``, checked against the
    interface of :class:`~genenkf_hpc.dynamics.base.Dynamics`."""
    factory = _factory(name, key)
    params = dict(params or {})
    try:
        model = factory(nx=nx, dt=dt, forcing=forcing, **params)
    except UserError:
        raise
    except TypeError as exc:
        raise UserError(f"{key}={name!r}: the factory rejected its arguments (nx, dt, forcing"
                        + (", " + ", ".join(params) if params else "") + f"): {exc}") from None
    check_interface(model, name, nx, key)
    return model


def check_interface(model, name: str, nx: int, key: str = "model.dynamics") -> None:
    missing = [a for a in ("nx", "dt", "step", "integrate", "trajectory", "observable",
                           "random_state", "state_size", "halo") if not hasattr(model, a)]
    if missing:
        raise UserError(f"{key}={name!r}: the model lacks {', '.join(missing)} (subclass "
                        "genenkf_hpc.dynamics.Dynamics; see docs/dynamics.md)")
    if int(model.nx) != int(nx):
        raise UserError(f"{key}={name!r}: the factory returned a model with nx={model.nx}, "
                        f"asked for {nx}")
    halo = model.halo
    if halo is not None and (len(halo) != 2 or min(halo) < 0):
        raise UserError(f"{key}={name!r}: halo={halo!r} must be None or (left, right) >= 0")

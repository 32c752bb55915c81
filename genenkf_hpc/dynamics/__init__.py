"""Dynamical models behind one interface (:mod:`.base`), registered by name.

Built-ins: ``lorenz96`` (the default) and ``lorenz96_two_scale``. A user's model plugs in from
Python with :func:`register_dynamics` or from a config as ``model.dynamics =
"package.module:factory"``. A factory is called as ``factory(nx=..., dt=..., forcing=...,
**params)`` (``params``: the config's ``model.params`` / ``nature.params`` table) and returns an
object with the interface of :class:`.base.Dynamics`.
"""
from .base import Dynamics, GridDynamics, pad_periodic, rk4
from .registry import build_dynamics, dynamics_names, register_dynamics

__all__ = ["Dynamics", "GridDynamics", "build_dynamics", "dynamics_names", "pad_periodic",
           "register_dynamics", "rk4"]

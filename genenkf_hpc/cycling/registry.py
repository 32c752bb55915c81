"""DA methods by exact name -> ``"module:Class"``, imported only when used.

Adding a method is one line here plus a small class (see :mod:`.base`); e.g. the Generative
EnKF registers ``"genenkf": "genenkf_hpc.cycling.generative:GenerativeEnKF"``.
"""
from __future__ import annotations

import importlib

from ..errors import UserError

METHODS: dict[str, str] = {
    "noda": "genenkf_hpc.cycling.classical:NoDA",
    "nudging": "genenkf_hpc.cycling.classical:Nudging",
    "enkf": "genenkf_hpc.cycling.classical:EnKF",
    "etkf": "genenkf_hpc.cycling.classical:ETKF",
    "letkf": "genenkf_hpc.cycling.classical:LETKF",
    "letkf_paramest": "genenkf_hpc.cycling.paramest:LETKFParamEst",
    "genenkf": "genenkf_hpc.cycling.generative:GenerativeEnKF",
    "gaussian_pseudo": "genenkf_hpc.cycling.generative:GaussianPseudo",
}


def register(name: str, target: str | type) -> None:
    """Add a method at run time (tests, plug-ins): ``target`` is a class or ``"module:Class"``."""
    METHODS[name] = target


def method_names() -> list[str]:
    return list(METHODS)


def check_method_name(name: str) -> str:
    """``name`` if registered, else a UserError naming it and the valid methods."""
    if name not in METHODS:
        raise UserError(f"--method {name!r}: unknown method; valid methods: "
                        + ", ".join(METHODS))
    return name


def method_class(name: str) -> type:
    target = METHODS[check_method_name(name)]
    if isinstance(target, type):
        return target
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)

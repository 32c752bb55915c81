"""genenkf_hpc: Generative EnKF (diffusion-model pseudo-ensembles + parallel LETKF) for HPC.

The Python API (:mod:`genenkf_hpc.api`), loaded on first use so that ``import genenkf_hpc``
and ``genenkf --help`` stay fast and torch / xarray are imported only by what needs them::

    import genenkf_hpc as gk
    cfg = gk.load_config("configs/tiny.toml", "osse.cycles=200")
    ds = gk.assimilate(cfg, "letkf")          # xarray.Dataset: analysis.nc's variables per F
"""

__version__ = "0.1.0"

_API = ("Config", "Dynamics", "GridDynamics", "UserError", "assimilate", "campaign", "dataset",
        "dynamics_names", "load_config", "nature", "register_dynamics", "train")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    """PEP 562: the API's names resolve on first access (importing :mod:`.api`)."""
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'genenkf_hpc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))

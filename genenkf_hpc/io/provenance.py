"""How an output was made, as global attributes every output file carries.

CF global attributes (``source``, ``references``) plus ``genenkf_version`` and ``config``, the
fully resolved config as TOML text (it round-trips through ``genenkf_hpc.load_config``), so a
file alone tells which settings and which version of the package produced it:

    cfg = tomllib.loads(xr.open_dataset("analysis.nc").attrs["config"])
"""
from __future__ import annotations

from .. import __version__
from ..config import Config, to_toml

REFERENCES = ("Asahi et al. (2023), Generating observation guided ensembles for data assimilation "
              "with denoising diffusion probabilistic model, ICML 2023 workshop SynS & ML")


def provenance(cfg: Config) -> dict[str, str]:
    """``source``, ``references``, ``genenkf_version`` and ``config`` (TOML text)."""
    return {"source": f"genenkf_hpc {__version__}", "references": REFERENCES,
            "genenkf_version": __version__, "config": to_toml(cfg)}

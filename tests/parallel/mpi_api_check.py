"""Run by every rank of ``mpiexec -n R`` (tests/parallel/test_mpi_api.py): the Python API in a
parallel launch. Each rank saves what it got as ``<out>/<what>_rank<r>.nc``; ``out/api`` is the
``out=`` run directory of the assimilation that writes files. Arguments: CONFIG OUT
[section.key=value ...]."""
import os
import sys
from pathlib import Path

import genenkf_hpc as gk

config, out, overrides = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", "0")))
cfg = gk.load_config(config, *overrides)
truth = gk.nature(cfg)
in_memory = gk.assimilate(cfg, "letkf", nature=truth)
written = gk.assimilate(cfg, "etkf", out=out / "api")
truth.to_netcdf(out / f"nature_rank{rank}.nc")
in_memory.to_netcdf(out / f"letkf_rank{rank}.nc")
written.to_netcdf(out / f"etkf_rank{rank}.nc")

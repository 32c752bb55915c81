"""Slurm and PBS job scripts for the pipeline stages: pure rendering + submission.

- :mod:`.spec`     the validated job description (``make_job(**params) -> JobSpec``);
- :mod:`.slurm`, :mod:`.pbs`  ``JobSpec -> script text``, pure;
- :mod:`.common`   the stage command line and the shell pieces both share;
- :mod:`.pipeline` the whole pipeline as a plan of jobs with dependencies, pure;
- :mod:`.submit`   ``sbatch`` / ``qsub`` with ``afterok`` dependencies.
"""
from __future__ import annotations

from .pbs import render_pbs
from .slurm import render_slurm
from .spec import PARAMETERS, SCHEDULERS, STAGES, JobSpec, make_job


def render(spec: JobSpec) -> str:
    """The job script for ``spec`` (a :class:`JobSpec` from :func:`make_job`)."""
    return render_slurm(spec) if spec.scheduler == "slurm" else render_pbs(spec)


__all__ = ["JobSpec", "PARAMETERS", "SCHEDULERS", "STAGES", "make_job", "render"]

"""The example scripts shipped in ``jobs/slurm/`` and ``jobs/pbs/`` (the paper campaign on a
typical cluster), as job descriptions. ``tools/render_job_examples.py`` writes them and
``tests/scheduler/test_examples.py`` checks that the shipped files are up to date."""
from __future__ import annotations

from .spec import JobSpec, make_job

ROOT = "runs/paper"
CONFIG = "configs/paper.toml"
_STAGE = {
    "nature": dict(time="00:30:00"),
    "dataset": dict(tasks_per_node=16, time="01:00:00"),
    "train": dict(nodes=2, tasks_per_node=4, gpus_per_node=4, cpus_per_task=8,
                  time="12:00:00", data=f"{ROOT}/dataset", partition="gpu", requeue=True),
    "assimilate": dict(tasks_per_node=32, time="04:00:00", method="genenkf",
                       nature=f"{ROOT}/nature/nature.nc",
                       model=f"{ROOT}/train/checkpoints/latest.pt"),
    "campaign": dict(nodes=2, tasks_per_node=32, time="12:00:00",
                     nature=f"{ROOT}/nature/nature.nc",
                     model=f"{ROOT}/train/checkpoints/latest.pt"),
}


def example_specs() -> dict[str, JobSpec]:
    """``{"jobs/slurm/train.sh": spec, ...}`` for both schedulers and every stage."""
    out = {}
    for scheduler in ("slurm", "pbs"):
        for stage, extra in _STAGE.items():
            params = dict(scheduler=scheduler, stage=stage, config=CONFIG,
                          out=f"{ROOT}/{stage}", partition="compute", account="myproject",
                          venv=".venv", log_dir=f"{ROOT}/jobs/logs")
            params.update(extra)
            if scheduler == "pbs":  # PBS queues instead of partitions
                params["partition"] = {"compute": "workq", "gpu": "gpuq"}[params["partition"]]
            out[f"jobs/{scheduler}/{stage}.sh"] = make_job(**params)
    return out

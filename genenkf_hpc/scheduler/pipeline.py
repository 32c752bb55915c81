"""The pipeline nature -> dataset -> train -> assimilate / campaign as a plan of jobs (pure).

Layout under the pipeline root ``ROOT`` (``genenkf jobs submit --out ROOT``)::

    ROOT/nature/nature.nc          genenkf nature
    ROOT/dataset/                  genenkf dataset
    ROOT/train/checkpoints/        genenkf train --data ROOT/dataset
    ROOT/assimilate/               genenkf assimilate --method M --nature .. [--model ..]
    ROOT/campaign/                 genenkf campaign --nature .. --model ..
    ROOT/jobs/<stage>.sh           the rendered scripts;  ROOT/jobs/logs/  scheduler logs

Each job waits (``afterok``) for the jobs whose outputs it reads, so independent stages
(nature and dataset) may run side by side. An input is passed when its stage is part of this
submission or its output already exists (``existing``: from an earlier submission).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

from ..errors import UserError
from .spec import STAGES, JobSpec, make_job

DEFAULT_STAGES = ("nature", "dataset", "train", "assimilate")
# What a stage produces for the others (path under ROOT), and who reads it with which flag.
OUTPUTS = {"nature": "nature/nature.nc", "dataset": "dataset",
           "train": "train/checkpoints/latest.pt"}
_INPUTS = {"train": [("data", "dataset")],
           "assimilate": [("nature", "nature"), ("model", "train")],
           "campaign": [("nature", "nature"), ("model", "train")]}
# Parameters that do not apply to a stage (they would be refused by the job validation).
_SERIAL_RESET = dict(nodes=1, tasks_per_node=1, gpus_per_node=0)


@dataclass(frozen=True)
class PlannedJob:
    stage: str
    spec: JobSpec
    after: tuple[str, ...]  # stages this job waits for
    script: str             # path of the rendered script


def parse_stages(text: str) -> tuple[str, ...]:
    """``"nature,train"`` -> ``("nature", "train")`` in pipeline order, validated."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in STAGES]
    if bad or not names:
        raise UserError(f"--stages {text!r}: expected a comma-separated list of "
                        + ", ".join(STAGES))
    return tuple(s for s in STAGES if s in names)


def plan_pipeline(root: str, stages: tuple[str, ...], params: dict, method: str = "genenkf",
                  existing: frozenset[str] = frozenset()) -> list[PlannedJob]:
    """One :class:`PlannedJob` per stage. ``params``: the job parameters shared by all stages
    (scheduler, config, resources...); GPUs go to ``train`` only, ``nature`` runs on one
    process; ``job_name`` (if given) becomes a prefix. ``existing``: stages not submitted now
    whose :data:`OUTPUTS` are already there."""
    root_path = PurePath(root)
    jobs = []
    for stage in stages:
        p = dict(params, stage=stage, out=str(root_path / stage))
        prefix = p.pop("job_name", "") or "genenkf"
        p["job_name"] = f"{prefix}-{stage}"
        if stage == "nature":
            p.update(_SERIAL_RESET)
        if stage != "train":
            p["gpus_per_node"] = 0
            p.pop("launcher", None)
        elif p.get("gpus_per_node"):
            p["tasks_per_node"] = p["gpus_per_node"]  # one process per GPU
        if stage == "assimilate":
            p["method"] = method
        after = []
        for flag, producer in _INPUTS.get(stage, []):
            if flag == "model" and stage == "assimilate" and method != "genenkf":
                continue
            if producer in stages:
                after.append(producer)
            elif producer not in existing:
                continue
            p[flag] = str(root_path / OUTPUTS[producer])
        script = str(root_path / "jobs" / f"{stage}.sh")
        jobs.append(PlannedJob(stage, make_job(**p), tuple(after), script))
    return jobs

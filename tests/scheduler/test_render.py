"""Rendered job scripts: golden files for both schedulers and every stage, shell syntax, and the
shipped examples in jobs/ being up to date.

Regenerate after an intended change:  UPDATE_GOLDEN=1 .venv/bin/pytest tests/scheduler
(the shipped examples: .venv/bin/python tools/render_job_examples.py).
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from genenkf_hpc.scheduler import STAGES, make_job, render
from genenkf_hpc.scheduler.examples import example_specs

GOLDEN = Path(__file__).parent / "golden"
REPO = Path(__file__).resolve().parents[2]
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

# Every stage with the options a user would typically give it.
STAGE_PARAMS = {
    "nature": dict(time="00:20:00"),
    "dataset": dict(nodes=2, tasks_per_node=8, time="00:45:00"),
    "train": dict(nodes=2, tasks_per_node=4, gpus_per_node=4, cpus_per_task=6,
                  time="10:00:00", data="/scratch/exp 1/dataset", mem="64G"),
    "assimilate": dict(tasks_per_node=32, method="genenkf",
                       nature="/scratch/exp 1/nature/nature.nc",
                       model="/scratch/exp 1/train/checkpoints/latest.pt", qos="normal"),
    "campaign": dict(nodes=2, tasks_per_node=16, time="08:00:00",
                     model="/scratch/exp 1/train/checkpoints/latest.pt"),
}
# Variants that exercise the other branches of the renderers.
VARIANTS = {
    "train_cpu": dict(stage="train", tasks_per_node=2, data="data", signal_seconds=0),
    "train_torchrun": dict(stage="train", nodes=2, tasks_per_node=4, gpus_per_node=4,
                           launcher="torchrun", data="data", requeue=True),
    "assimilate_root": dict(stage="assimilate", method="letkf", tasks_per_node=2,
                            allow_run_as_root=True, srun_mpi="pmix", workdir="/work dir",
                            modules=("gcc/12", "openmpi/4.1"), mpiexec="/opt/mpi/bin/mpiexec",
                            overrides=("osse.forcings=[5.0, 8.0]", "filter.members=16")),
}


def base(scheduler, stage):
    return dict(scheduler=scheduler, stage=stage, config="configs/paper.toml",
                out=f"/scratch/exp 1/{stage}", account="proj42", partition="compute",
                log_dir="/scratch/logs", python="/opt/genenkf/venv/bin/python")


def check_golden(name, text):
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} differs from the golden file (UPDATE_GOLDEN=1)"


def golden_cases():
    for scheduler in ("slurm", "pbs"):
        for stage in STAGES:
            params = dict(base(scheduler, stage), **STAGE_PARAMS[stage])
            if scheduler == "pbs":
                params.pop("qos", None)  # a Slurm-only option
            yield f"{scheduler}_{stage}.sh", params
        for name, variant in VARIANTS.items():
            params = dict(base(scheduler, variant["stage"]), **variant)
            if scheduler == "pbs":
                params.pop("srun_mpi", None)
                if params.get("launcher") == "torchrun":
                    params["nodes"] = 1
            yield f"{scheduler}_{name}.sh", params


CASES = dict(golden_cases())


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name):
    check_golden(name, render(make_job(**CASES[name])))


def test_every_stage_and_scheduler_has_a_golden_file():
    names = {p.name for p in GOLDEN.glob("*.sh")}
    assert {f"{s}_{t}.sh" for s in ("slurm", "pbs") for t in STAGES} <= names
    assert names == set(CASES), "stale golden files: " + ", ".join(sorted(names - set(CASES)))


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
@pytest.mark.parametrize("name", sorted(CASES))
def test_bash_syntax(name):
    proc = subprocess.run(["bash", "-n"], input=render(make_job(**CASES[name])), text=True,
                          capture_output=True)
    assert proc.returncode == 0, proc.stderr


def test_shipped_examples_up_to_date():
    stale = [rel for rel, spec in example_specs().items()
             if not (REPO / rel).is_file() or (REPO / rel).read_text() != render(spec)]
    assert not stale, ("out of date: " + ", ".join(stale)
                       + "; run .venv/bin/python tools/render_job_examples.py")
    for rel in example_specs():
        assert os.access(REPO / rel, os.X_OK), f"{rel} is not executable"


def test_slurm_directives():
    text = render(make_job(**CASES["slurm_train.sh"]))
    for line in ["#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4", "#SBATCH --gpus-per-node=4",
                 "#SBATCH --cpus-per-task=6", "#SBATCH --time=10:00:00", "#SBATCH --mem=64G",
                 "#SBATCH --signal=B:USR1@120", "#SBATCH --account=proj42",
                 "#SBATCH --output=/scratch/logs/%x-%j.out"]:
        assert line + "\n" in text
    assert "srun --kill-on-bad-exit=1 \"$PYTHON\" -m genenkf_hpc train" in text
    assert 'scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1' in text
    mpi = render(make_job(**CASES["slurm_dataset.sh"]))
    assert '"$PYTHON" -m mpi4py -m genenkf_hpc dataset' in mpi


def test_pbs_directives():
    text = render(make_job(**CASES["pbs_train.sh"]))
    assert "#PBS -l select=2:ncpus=24:mpiprocs=4:ngpus=4:mem=64gb\n" in text
    assert "#PBS -l walltime=10:00:00\n" in text and "#PBS -q compute\n" in text
    assert "#PBS -A proj42\n" in text and "#PBS -l place=scatter\n" in text
    assert 'cd -- "$PBS_O_WORKDIR"' in text
    mpi = render(make_job(**CASES["pbs_dataset.sh"]))
    assert '"$MPIEXEC" -n "$NP" -machinefile "$PBS_NODEFILE"' in mpi
    assert '-m mpi4py -m genenkf_hpc dataset' in mpi


def test_run_as_root_only_when_asked():
    for name, params in CASES.items():
        text = render(make_job(**params))
        assert ("OMPI_ALLOW_RUN_AS_ROOT" in text) == bool(params.get("allow_run_as_root")), name


def test_torchrun_slurm_one_task_per_node():
    text = render(make_job(**CASES["slurm_train_torchrun.sh"]))
    assert "#SBATCH --ntasks-per-node=1\n" in text and "#SBATCH --cpus-per-task=4\n" in text
    assert "--nproc-per-node=4" in text and "-m torch.distributed.run" in text

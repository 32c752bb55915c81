"""`genenkf jobs submit`: the pipeline plan (inputs, dependencies) and the submission with
stub sbatch/qsub/scancel commands that record how they were called."""
import json
import os
import stat
import subprocess
import sys

import pytest

from genenkf_hpc.errors import UserError
from genenkf_hpc.scheduler.pipeline import parse_stages, plan_pipeline
from genenkf_hpc.scheduler.submit import parse_job_id, submit_argv

from testpaths import CONFIGS, REPO

PARAMS = dict(scheduler="slurm", config="/c.toml", gpus_per_node=2, nodes=2)


def test_plan_inputs_and_dependencies():
    jobs = {j.stage: j for j in plan_pipeline("/r", parse_stages("campaign,nature,dataset,"
                                                                 "train,assimilate"), PARAMS)}
    assert list(jobs) == ["nature", "dataset", "train", "assimilate", "campaign"]
    assert jobs["nature"].after == () and jobs["dataset"].after == ()
    assert jobs["train"].after == ("dataset",) and jobs["train"].spec.data == "/r/dataset"
    assert jobs["assimilate"].after == ("nature", "train")
    assert jobs["assimilate"].spec.method == "genenkf"
    assert jobs["assimilate"].spec.nature == "/r/nature/nature.nc"
    assert jobs["assimilate"].spec.model == "/r/train/checkpoints/latest.pt"
    assert jobs["campaign"].after == ("nature", "train")
    # resources: nature on one process, GPUs (one process each) for train only
    assert (jobs["nature"].spec.nodes, jobs["nature"].spec.ntasks) == (1, 1)
    assert jobs["train"].spec.gpus_per_node == 2 and jobs["train"].spec.tasks_per_node == 2
    assert jobs["dataset"].spec.gpus_per_node == 0 and jobs["dataset"].spec.nodes == 2
    assert jobs["train"].script == "/r/jobs/train.sh"
    assert jobs["train"].spec.out == "/r/train"


def test_plan_partial_pipeline_uses_existing_outputs():
    jobs = plan_pipeline("/r", ("assimilate",), PARAMS, method="letkf",
                         existing=frozenset({"nature"}))
    (a,) = jobs
    assert a.after == () and a.spec.nature == "/r/nature/nature.nc" and a.spec.model == ""
    (a,) = plan_pipeline("/r", ("assimilate",), PARAMS, method="letkf")
    assert a.spec.nature == ""  # generated from the config


def test_parse_stages_rejects_unknown():
    with pytest.raises(UserError, match="--stages 'nature,bench'"):
        parse_stages("nature,bench")


def test_submit_argv_and_ids():
    assert submit_argv("slurm", "/j/a.sh", ["1", "2"]) == [
        "sbatch", "--parsable", "--dependency=afterok:1:2", "/j/a.sh"]
    assert submit_argv("pbs", "/j/a.sh", ["1.srv"]) == [
        "qsub", "-W", "depend=afterok:1.srv", "/j/a.sh"]
    assert parse_job_id("slurm", "123\n") == "123"
    assert parse_job_id("slurm", "123;cluster\n") == "123"
    assert parse_job_id("slurm", "Submitted batch job 5") is None
    assert parse_job_id("pbs", "4711.pbs-server.example\n") == "4711.pbs-server.example"
    assert parse_job_id("pbs", "qsub: error") is None


# ---------------------------------------------------------------------------------------------
# The command, with stub scheduler commands on PATH.

STUB = """#!{python}
import json, os, sys
log = os.environ["STUB_LOG"]
calls = open(log).read().splitlines() if os.path.exists(log) else []
with open(log, "a") as fh:
    fh.write(json.dumps([os.path.basename(sys.argv[0])] + sys.argv[1:]) + "\\n")
if os.path.basename(sys.argv[0]) in ("sbatch", "qsub"):
    n = len([c for c in calls if '"scancel"' not in c and '"qdel"' not in c]) + 1
    if str(n) == os.environ.get("STUB_FAIL_AT"):
        print("sbatch: error: Batch job submission failed: Invalid account", file=sys.stderr)
        sys.exit(1)
    print({fmt})
"""


def stub_path(tmp_path, scheduler):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fmt = 'f"{100 + n};cluster"' if scheduler == "slurm" else 'f"{100 + n}.pbs-server"'
    names = ("sbatch", "scancel") if scheduler == "slurm" else ("qsub", "qdel")
    for name in names:
        path = bin_dir / name
        path.write_text(STUB.format(python=sys.executable, fmt=fmt))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def submit(tmp_path, scheduler, *extra, path=None, fail_at=None):
    env = dict(os.environ, STUB_LOG=str(tmp_path / "calls"),
               PATH=path if path is not None else f"{stub_path(tmp_path, scheduler)}:"
               f"{os.environ['PATH']}")
    if fail_at:
        env["STUB_FAIL_AT"] = str(fail_at)
    return subprocess.run([sys.executable, "-m", "genenkf_hpc", "jobs", "submit", "--scheduler",
                           scheduler, "-c", str(CONFIGS / "tiny.toml"), "--out",
                           str(tmp_path / "run"), *extra], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=60)


def calls(tmp_path):
    return [json.loads(line) for line in (tmp_path / "calls").read_text().splitlines()]


def test_submit_slurm_chains_dependencies(tmp_path):
    proc = submit(tmp_path, "slurm", "--stages", "nature,dataset,train,assimilate,campaign",
                  "--partition", "debug", "osse.cycles=20")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["nature 101", "dataset 102", "train 103",
                                        "assimilate 104", "campaign 105"]
    jobs = tmp_path / "run" / "jobs"
    assert [c[1:] for c in calls(tmp_path)] == [
        ["--parsable", str(jobs / "nature.sh")],
        ["--parsable", str(jobs / "dataset.sh")],
        ["--parsable", "--dependency=afterok:102", str(jobs / "train.sh")],
        ["--parsable", "--dependency=afterok:101:103", str(jobs / "assimilate.sh")],
        ["--parsable", "--dependency=afterok:101:103", str(jobs / "campaign.sh")]]
    train = (jobs / "train.sh").read_text().replace(" \\\n    ", " ")  # join continuations
    assert f"--data {tmp_path / 'run' / 'dataset'}" in train and "osse.cycles=20" in train
    assert f"#SBATCH --output={jobs / 'logs'}/%x-%j.out" in train
    assert (jobs / "logs").is_dir() and os.access(jobs / "train.sh", os.X_OK)


def test_submit_pbs_chains_dependencies(tmp_path):
    proc = submit(tmp_path, "pbs", "--method", "letkf")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["nature 101.pbs-server", "dataset 102.pbs-server",
                                        "train 103.pbs-server", "assimilate 104.pbs-server"]
    deps = [c[1:-1] for c in calls(tmp_path)]
    assert deps == [[], [], ["-W", "depend=afterok:102.pbs-server"],
                    ["-W", "depend=afterok:101.pbs-server"]]  # letkf needs no model


def test_submit_failure_cancels_submitted_jobs(tmp_path):
    proc = submit(tmp_path, "slurm", fail_at=3)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: sbatch ") and "stage train" in line and "Invalid account" in line
    assert "cancelled the jobs already submitted (101, 102)" in line
    assert calls(tmp_path)[-1] == ["scancel", "101", "102"]
    assert proc.stdout == ""


def test_submit_without_sbatch(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = submit(tmp_path, "slurm", path=str(empty))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: sbatch not found on PATH")
    assert "Traceback" not in proc.stderr


def test_submit_dry_run(tmp_path):
    proc = submit(tmp_path, "slurm", "--dry-run", "--stages", "dataset,train")
    assert proc.returncode == 0, proc.stderr
    jobs = tmp_path / "run" / "jobs"
    assert proc.stdout.splitlines() == [
        f"dataset_id=$(sbatch --parsable {jobs / 'dataset.sh'})",
        f'train_id=$(sbatch --parsable "--dependency=afterok:${{dataset_id}}" {jobs / "train.sh"})']
    assert not (tmp_path / "calls").exists()


def test_submit_genenkf_without_model_refused(tmp_path):
    proc = submit(tmp_path, "slurm", "--stages", "nature,assimilate")
    assert proc.returncode == 2
    assert "stage assimilate runs genenkf but there is no model" in proc.stderr
    assert not (tmp_path / "calls").exists()

"""The job scripts on a real Slurm: a one-node cluster on localhost (tools/slurm_local.sh
installs slurm-wlm + munge when missing and starts munged, slurmctld, slurmd).

1. `genenkf jobs submit` renders and submits nature -> dataset -> train -> assimilate and
   campaign on configs/tiny.toml with afterok dependencies and 2 MPI ranks per stage; every job
   must end COMPLETED with exit code 0, in dependency order, and leave its outputs.
2. A walltime warning (the USR1 that `#SBATCH --signal=B:USR1@N` sends, here sent at once with
   `scancel --signal=USR1 --batch`) makes the train job checkpoint and end with status 75;
   submitting the same script again resumes and finishes. With `--requeue` the job requeues
   itself instead and finishes under the same job id.

Skipped, with the reason, only where Slurm cannot be installed or started (no root, no apt).
"""
import os
import re
import subprocess
import sys
import time

import pytest

from testpaths import CONFIGS, REPO

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.timeout(900)]

FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
         "PREEMPTED", "BOOT_FAIL", "DEADLINE"}
STAGES = ["nature", "dataset", "train", "assimilate", "campaign"]
# Small and quick: LETKF for assimilate (the tiny 4-step model is no use for genenkf), two
# cheap methods for the campaign.
OVERRIDES = ['campaign.methods=["noda", "letkf"]', "run.progress=false"]


def job_info(env, job_id):
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True,
                         text=True, env=env, timeout=30).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def wait_for(env, ids, timeout):
    deadline = time.monotonic() + timeout
    while True:
        info = {i: job_info(env, i) for i in ids}
        if all(v.get("JobState") in FINAL for v in info.values()):
            return info
        if time.monotonic() > deadline:
            subprocess.run(["scancel", *ids], env=env, capture_output=True, timeout=30)
            pytest.fail("jobs still not finished after %d s: %s" % (
                timeout, {i: v.get("JobState") for i, v in info.items()}))
        time.sleep(1)


def root_flag():
    return ["--allow-run-as-root"] if os.geteuid() == 0 else []


def test_pipeline_with_dependencies(slurm_env, tmp_path):
    root = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "genenkf_hpc", "jobs", "submit", "--scheduler", "slurm",
         "-c", str(CONFIGS / "tiny.toml"), "--out", str(root), "--stages", ",".join(STAGES),
         "--method", "letkf", "--tasks-per-node", "2", "--time", "00:10:00", *root_flag(),
         *OVERRIDES], capture_output=True, text=True, env=slurm_env, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    ids = dict(line.split() for line in proc.stdout.splitlines())
    assert list(ids) == STAGES
    info = wait_for(slurm_env, list(ids.values()), timeout=240)

    logs = root / "jobs" / "logs"
    for stage, job_id in ids.items():
        log = next(logs.glob(f"*-{job_id}.out"), None)
        text = log.read_text() if log else "(no log)"
        assert info[job_id]["JobState"] == "COMPLETED", f"{stage}:\n{text[-3000:]}"
        assert info[job_id]["ExitCode"] == "0:0", f"{stage}:\n{text[-3000:]}"

    # dependencies held: no stage started before the stages it reads had ended
    def t(stage, key):
        return info[ids[stage]][key]
    assert t("train", "StartTime") >= t("dataset", "EndTime")
    for stage in ("assimilate", "campaign"):
        assert t(stage, "StartTime") >= max(t("nature", "EndTime"), t("train", "EndTime"))

    assert (root / "nature" / "nature.nc").is_file()
    assert (root / "dataset" / "metadata.json").is_file()
    assert sorted(root.glob("dataset/shard_*.h5"))
    assert "over 2 rank(s)" in (root / "dataset" / "log.txt").read_text()  # srun + mpi4py
    assert (root / "train" / "checkpoints" / "latest.pt").is_file()
    assert (root / "train" / "loss.csv").is_file()
    assert '"ranks": 2' in (root / "train" / "summary.json").read_text()  # DDP over srun tasks
    for forcing in ("8", "10"):
        run = root / "assimilate" / f"forcing_{forcing}"
        assert (run / "analysis.nc").is_file() and (run / "summary.json").is_file()
        assert '"ranks": 2' in (run / "summary.json").read_text()
    assert (root / "campaign" / "results.csv").is_file()
    assert (root / "campaign" / "results.md").is_file()
    assert not list(root.rglob("error.txt"))


@pytest.mark.parametrize("requeue", [False, True], ids=["resubmit", "requeue"])
def test_walltime_signal_checkpoints_and_job_resumes(slurm_env, tmp_path, requeue):
    data = tmp_path / "dataset"
    subprocess.run([sys.executable, "-m", "genenkf_hpc", "dataset", "-c",
                    str(CONFIGS / "tiny.toml"), "--out", str(data)], check=True,
                   capture_output=True, env=slurm_env, cwd=REPO, timeout=120)
    out = tmp_path / "train"
    script = tmp_path / "train.sh"
    subprocess.run([sys.executable, "-m", "genenkf_hpc", "jobs", "render", "--scheduler",
                    "slurm", "--stage", "train", "-c", str(CONFIGS / "tiny.toml"), "--out",
                    str(out), "--data", str(data), "--time", "00:10:00", "--log-dir",
                    str(tmp_path), *root_flag(), *(["--requeue"] if requeue else []),
                    "-o", str(script), "train.steps=30", "train.checkpoint_every=1",
                    "run.progress=false"],
                   check=True, capture_output=True, env=slurm_env, cwd=REPO, timeout=120)

    def sbatch():
        proc = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True,
                              text=True, env=slurm_env, cwd=REPO, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip().split(";")[0]

    first = sbatch()
    deadline = time.monotonic() + 120
    while not (out / "checkpoints" / "latest.pt").exists():
        assert job_info(slurm_env, first).get("JobState") not in FINAL, "train ended early"
        assert time.monotonic() < deadline, "no checkpoint after 120 s"
        time.sleep(0.2)
    # What `#SBATCH --signal=B:USR1@N` does N seconds before the time limit:
    subprocess.run(["scancel", "--signal=USR1", "--batch", first], check=True, env=slurm_env,
                   timeout=30)
    if requeue:  # the job puts itself back in the queue, keeps its id, resumes and finishes
        deadline = time.monotonic() + 120
        while job_info(slurm_env, first).get("Restarts") != "1":
            assert time.monotonic() < deadline, "the job did not requeue itself"
            time.sleep(0.5)
        # Slurm holds a requeued job for two minutes before it may start again. Waiting costs
        # CI two minutes; moving its StartTime with `scontrol update` while the job is still
        # completing its first run made it end FAILED on a loaded machine.
        info = wait_for(slurm_env, [first], timeout=330)[first]
        log = (tmp_path / f"genenkf-train-{first}.out").read_text()
        assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", log
        assert info["Restarts"] == "1", log
        assert "requeueing to resume" in log and "resumed from" in log
        assert (out / "checkpoints" / "step_00000030.pt").is_file()
        return
    info = wait_for(slurm_env, [first], timeout=120)[first]
    log = (tmp_path / f"genenkf-train-{first}.out").read_text()
    assert info["ExitCode"] == "75:0", log  # incomplete: afterok dependants would not start
    assert "caught SIGUSR1" in log and "stopped by SIGUSR1" in log
    stopped = sorted((out / "checkpoints").glob("step_*.pt"))
    assert stopped and stopped[-1].name != "step_00000030.pt", log

    second = sbatch()  # the same script, submitted again
    info = wait_for(slurm_env, [second], timeout=120)[second]
    log = (tmp_path / f"genenkf-train-{second}.out").read_text()
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", log
    assert "resumed from" in log
    assert (out / "checkpoints" / "step_00000030.pt").is_file()

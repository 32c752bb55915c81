"""The PBS scripts of `genenkf jobs submit --scheduler pbs` run to completion under plain bash
with the variables a PBS server sets for a job (PBS_NODEFILE with one line per MPI process,
PBS_O_WORKDIR, PBS_JOBID, ...) on configs/tiny.toml: every stage, in pipeline order, on 2 MPI
ranks through the rendered `mpiexec -n $NP -machinefile $PBS_NODEFILE ...` lines."""
import os
import socket
import subprocess
import sys

import pytest

from testpaths import CONFIGS, REPO

pytestmark = [pytest.mark.slow, pytest.mark.mpi]

STAGES = ["nature", "dataset", "train", "assimilate", "campaign"]


def pbs_env(tmp_path, stage, n, ranks):
    """A job's environment as PBS Pro / Torque set it (no variables of ours leak in)."""
    nodefile = tmp_path / f"nodefile.{n}"
    nodefile.write_text(f"{socket.gethostname()}\n" * ranks)
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "USER", "LANG", "TMPDIR")
            if k in os.environ}
    return dict(keep, PBS_ENVIRONMENT="PBS_BATCH", PBS_JOBID=f"{n}.pbs-test",
                PBS_JOBNAME=f"genenkf-{stage}", PBS_QUEUE="workq", PBS_O_WORKDIR=str(REPO),
                PBS_O_HOST=socket.gethostname(), PBS_O_PATH=os.environ.get("PATH", ""),
                PBS_NODEFILE=str(nodefile), PBS_NP=str(ranks), PBS_NUM_NODES="1",
                PBS_NUM_PPN=str(ranks), NCPUS=str(ranks), OMP_NUM_THREADS="1")


def test_pbs_pipeline_under_bash(tmp_path):
    root = tmp_path / "run"
    flags = ["--allow-run-as-root"] if os.geteuid() == 0 else []
    proc = subprocess.run(
        [sys.executable, "-m", "genenkf_hpc", "jobs", "submit", "--scheduler", "pbs", "-c",
         str(CONFIGS / "tiny.toml"), "--out", str(root), "--stages", ",".join(STAGES),
         "--method", "letkf", "--tasks-per-node", "2", "--dry-run", *flags,
         'campaign.methods=["noda", "letkf"]', "run.progress=false"],
        capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for n, stage in enumerate(STAGES, start=1):
        script = root / "jobs" / f"{stage}.sh"
        ranks = 1 if stage == "nature" else 2
        run = subprocess.run(["bash", str(script)], capture_output=True, text=True,
                             cwd=tmp_path, env=pbs_env(tmp_path, stage, n, ranks), timeout=300)
        assert run.returncode == 0, f"{stage}:\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
    assert (root / "nature" / "nature.nc").is_file()
    assert "over 2 rank(s)" in (root / "dataset" / "log.txt").read_text()
    assert (root / "train" / "checkpoints" / "latest.pt").is_file()
    assert '"ranks": 2' in (root / "train" / "summary.json").read_text()
    for forcing in ("8", "10"):
        summary = root / "assimilate" / f"forcing_{forcing}" / "summary.json"
        assert '"ranks": 2' in summary.read_text()
    assert (root / "campaign" / "results.csv").is_file()
    assert not list(root.rglob("error.txt"))


def test_pbs_script_outside_pbs_says_so(tmp_path):
    root = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "genenkf_hpc", "jobs", "submit", "--scheduler", "pbs",
                    "-c", str(CONFIGS / "tiny.toml"), "--out", str(root), "--stages", "dataset",
                    "--dry-run"], check=True, capture_output=True, cwd=REPO, timeout=60)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PBS_")}
    env["PBS_O_WORKDIR"] = str(REPO)
    run = subprocess.run(["bash", str(root / "jobs" / "dataset.sh")], capture_output=True,
                         text=True, env=env, timeout=60)
    assert run.returncode != 0 and "PBS_NODEFILE: is not set: submit this script with qsub" \
        in run.stderr

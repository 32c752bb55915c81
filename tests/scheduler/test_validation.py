"""Every value a user gives a job is validated (UserError, exit 2 with one `error:` line) or
shell-quoted: nothing reaches the script unquoted."""
import json
import os
import stat
import subprocess
import sys

import pytest

from genenkf_hpc.errors import UserError
from genenkf_hpc.scheduler import PARAMETERS, make_job, render

from testpaths import CONFIGS, REPO


def job(**kw):
    params = dict(scheduler="slurm", stage="nature", config="c.toml", out="out")
    params.update(kw)
    return make_job(**params)


@pytest.mark.parametrize("kw, fragment", [
    (dict(time="1:00"), "--time '1:00': expected HH:MM:SS"),
    (dict(time="01:61:00"), "expected HH:MM:SS"),
    (dict(time="00:00:00"), "longer than zero"),
    (dict(time="01:00:00; rm -rf ~"), "expected HH:MM:SS"),
    (dict(nodes=-1), "--nodes -1: must be between 1"),
    (dict(nodes=0), "--nodes 0"),
    (dict(nodes="2"), "--nodes '2': expected an integer"),
    (dict(stage="dataset", tasks_per_node=0), "--tasks-per-node 0"),
    (dict(gpus_per_node=-2), "--gpus-per-node -2"),
    (dict(cpus_per_task=True), "expected an integer"),
    (dict(partition="debug;touch /tmp/pwned"), "--partition 'debug;touch /tmp/pwned'"),
    (dict(partition="$(reboot)"), "--partition"),
    (dict(account="a b"), "--account 'a b'"),
    (dict(qos="x\n#SBATCH --uid=0"), "--qos"),
    (dict(job_name="1job"), "--job-name '1job'"),
    (dict(job_name="a'b"), "--job-name"),
    (dict(mem="4GB"), "--mem '4GB'"),
    (dict(log_dir="/logs dir"), "--log-dir '/logs dir'"),
    (dict(out="a\nb"), "control characters"),
    (dict(modules=("gcc; rm",)), "--module 'gcc; rm'"),
    (dict(srun_mpi="pmix --x"), "--srun-mpi"),
    (dict(overrides=("novalue",)), "override 'novalue'"),
    (dict(scheduler="lsf"), "--scheduler 'lsf': expected one of slurm, pbs"),
    (dict(stage="report"), "--stage 'report'"),
    (dict(tasks_per_node=2), "--stage nature runs as one process"),
    (dict(stage="assimilate"), "--stage assimilate needs --method"),
    (dict(stage="assimilate", method="kalman"), "--method 'kalman'"),
    (dict(method="letkf"), "--method applies to --stage assimilate"),
    (dict(stage="dataset", data="d"), "--data applies to --stage train"),
    (dict(stage="train", gpus_per_node=4, tasks_per_node=2), "one process per GPU"),
    (dict(stage="train", launcher="mpirun"), "--launcher 'mpirun'"),
    (dict(launcher="srun"), "--launcher applies to --stage train"),
    (dict(scheduler="pbs", qos="high"), "--qos is a Slurm option"),
    (dict(scheduler="pbs", stage="train", launcher="torchrun", nodes=2), "one node"),
    (dict(time="00:01:00", signal_seconds=60), "--signal-seconds 60: must be shorter"),
    (dict(config=""), "--config: must not be empty"),
    (dict(modules="gcc"), "modules='gcc': expected a list"),
    (dict(requeue="yes"), "requeue='yes': expected true or false"),
])
def test_bad_values_rejected(kw, fragment):
    with pytest.raises(UserError) as exc:
        job(**kw)
    assert fragment in str(exc.value)
    assert "\n" not in str(exc.value)


def test_unknown_parameter_lists_valid_ones():
    with pytest.raises(UserError) as exc:
        job(walltime="01:00:00", gpus=2)
    msg = str(exc.value)
    assert msg.startswith("Unavailable parameter(s): gpus, walltime. Valid parameters are: ")
    for name in ("nodes", "tasks_per_node", "gpus_per_node", "time", "partition"):
        assert name in PARAMETERS and name in msg


def test_directive_values_need_no_quoting():
    """Directive values pass validation only if shlex would leave them as they are (sbatch and
    qsub read directives without a shell, so quotes there would be taken literally)."""
    text = render(job(partition="gpu-a100,gpu.v100", account="proj_1+x", qos="high@x",
                      job_name="run.1-x", log_dir="/scratch/a=b/%u/logs", mem="12G"))
    directives = [line for line in text.splitlines() if line.startswith("#SBATCH")]
    assert not any("'" in line or '"' in line for line in directives)


# ---------------------------------------------------------------------------------------------
# Quoting: run the rendered script with stub launchers that record the argv they receive.

STUB = """#!{python}
import json, os, sys
with open(os.environ["STUB_LOG"], "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
"""
SRUN_STUB = """#!/bin/bash
# drop srun's own options, run the command (like srun on one task)
while [[ "$1" == --* ]]; do shift; done
exec "$@"
"""


def _stub_dir(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "fakepython").write_text(STUB.format(python=sys.executable))
    (bin_dir / "srun").write_text(SRUN_STUB)
    for f in bin_dir.iterdir():
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    return bin_dir


NASTY = ["/tmp/a b/$(touch PWNED)/`touch PWNED2`/x;y&z|w", "it's \"quoted\" $HOME \\ *"]


@pytest.mark.parametrize("scheduler", ["slurm", "pbs"])
def test_hostile_paths_reach_the_program_verbatim(tmp_path, scheduler):
    bin_dir = _stub_dir(tmp_path)
    spec = make_job(scheduler=scheduler, stage="assimilate", method="letkf", config=NASTY[1],
                    out=NASTY[0], nature=NASTY[1], model=NASTY[0], overrides=("run.progress=$x",),
                    python=str(bin_dir / "fakepython"), workdir=str(tmp_path), signal_seconds=0)
    script = tmp_path / "job.sh"
    script.write_text(render(spec))
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("localhost\n")
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", STUB_LOG=str(tmp_path / "log"),
               PBS_O_WORKDIR=str(tmp_path), PBS_NODEFILE=str(nodefile), PBS_JOBID="1.server",
               SLURM_JOB_ID="1")
    if scheduler == "pbs":  # mpiexec -> a stub that drops its options up to `env`
        (bin_dir / "mpiexec").write_text('#!/bin/bash\nwhile [ "$1" != env ]; do shift; done\n'
                                         'exec "$@"\n')
        (bin_dir / "mpiexec").chmod(0o755)
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    argv = json.loads((tmp_path / "log").read_text().splitlines()[0])
    assert argv == ["-m", "mpi4py", "-m", "genenkf_hpc", "assimilate", "-c", NASTY[1],
                    "--out", NASTY[0], "--method", "letkf", "--nature", NASTY[1], "--model",
                    NASTY[0], "--resume", "run.progress=$x"]
    assert not list(tmp_path.rglob("PWNED*"))


# ---------------------------------------------------------------------------------------------
# The command line: bad values exit 2 with one `error:` line, no traceback, no file.

def run_cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "genenkf_hpc", "jobs", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=60)


RENDER = ["render", "--scheduler", "slurm", "--stage", "nature", "-c", str(CONFIGS / "tiny.toml")]


@pytest.mark.parametrize("extra, fragment", [
    (["--time", "90"], "--time '90'"),
    (["--nodes", "-3"], "--nodes -3"),
    (["--nodes", "two"], "--nodes"),
    (["--partition", "a;reboot"], "--partition 'a;reboot'"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["model.nxx=3"], "unknown config key model.nxx"),
    (["--extra", "filter.members=1"], "filter.members=1"),
    (["--extra", "nodot"], "override 'nodot'"),
    (["--scheduler", "lsf"], "invalid choice: 'lsf'"),
])
def test_cli_bad_input(tmp_path, extra, fragment):
    proc = run_cli(*RENDER, *extra, "-o", str(tmp_path / "job.sh"))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert not (tmp_path / "job.sh").exists()


def test_cli_missing_config(tmp_path):
    proc = run_cli("render", "--scheduler", "pbs", "--stage", "nature", "-c",
                   str(tmp_path / "none.toml"))
    assert proc.returncode == 2 and "none.toml" in proc.stderr


def test_cli_render_to_file_and_stdout(tmp_path):
    out = tmp_path / "job.sh"
    proc = run_cli(*RENDER, "--time", "00:05:00", "train.steps=3", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert os.access(out, os.X_OK) and "#SBATCH --time=00:05:00" in text
    assert "train.steps=3" in text
    proc = run_cli(*RENDER, "--time", "00:05:00", "--extra", "train.steps=3")
    assert proc.returncode == 0 and proc.stdout == text


def test_cli_train_gpus_sets_one_task_per_gpu():
    proc = run_cli("render", "--scheduler", "slurm", "--stage", "train", "-c",
                   str(CONFIGS / "tiny.toml"), "--data", "d", "--gpus-per-node", "4")
    assert proc.returncode == 0, proc.stderr
    assert "#SBATCH --ntasks-per-node=4" in proc.stdout
    assert "#SBATCH --gpus-per-node=4" in proc.stdout

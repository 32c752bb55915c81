"""Walltime warning / preemption: the batch shell forwards USR1 or TERM to the job step as USR1,
waits for it to checkpoint, and ends with status 75 (or requeues itself on Slurm with
--requeue), so that `afterok` dependants never start on an incomplete stage. Runs the rendered
scripts under bash with stub launchers; the real-Slurm test covers the same with sbatch."""
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from genenkf_hpc.scheduler import make_job, render

STEP = """#!{python}
import os, signal, sys, time
log = os.environ["STUB_LOG"]
def stop(signum, frame):
    with open(log, "a") as fh:
        fh.write(signal.Signals(signum).name + " " + " ".join(sys.argv[1:]) + "\\n")
    sys.exit(0)  # as genenkf does after writing its checkpoint
signal.signal(signal.SIGUSR1, stop)
signal.signal(signal.SIGTERM, stop)
open(os.environ["STUB_READY"], "w").close()
time.sleep(60)
sys.exit(3)
"""
SRUN = '#!/bin/bash\nwhile [[ "$1" == --* ]]; do shift; done\nexec "$@"\n'
SCONTROL = ('#!/bin/bash\nif [ "$1" = show ]; then echo localhost; exit; fi\n'
            'echo "scontrol $*" >> "$STUB_LOG"\n')


@pytest.fixture
def stubs(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("step", STEP.format(python=sys.executable)), ("srun", SRUN),
                       ("scontrol", SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755 | stat.S_IEXEC)
    return bin_dir


def start(tmp_path, stubs, **kw):
    params = dict(stage="train", config="c.toml", out=str(tmp_path / "out"), data="d",
                  python=str(stubs / "step"), workdir=str(tmp_path))
    params.update(kw)
    script = tmp_path / "job.sh"
    script.write_text(render(make_job(**params)))
    env = dict(os.environ, PATH=f"{stubs}:{os.environ['PATH']}", STUB_LOG=str(tmp_path / "log"),
               STUB_READY=str(tmp_path / "ready"), SLURM_JOB_ID="77",
               SLURM_JOB_NODELIST="localhost", PBS_O_WORKDIR=str(tmp_path))
    proc = subprocess.Popen(["bash", str(script)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "ready").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the job step did not start"
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize("scheduler", ["slurm", "pbs"])
@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGTERM])
def test_signal_forwarded_as_usr1_and_job_marked_incomplete(tmp_path, stubs, scheduler, sig):
    launcher = "srun" if scheduler == "slurm" else "torchrun"  # PBS torchrun: no mpiexec stub
    proc = start(tmp_path, stubs, scheduler=scheduler, launcher=launcher)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 75, err
    step_log = (tmp_path / "log").read_text().splitlines()
    assert len(step_log) == 1 and step_log[0].startswith("SIGUSR1 ")
    assert f"caught SIG{sig.name[3:]}" in err and "submit this script again to resume" in err


def test_slurm_requeue_after_signal(tmp_path, stubs):
    proc = start(tmp_path, stubs, scheduler="slurm", requeue=True)
    proc.send_signal(signal.SIGUSR1)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert (tmp_path / "log").read_text().splitlines()[-1] == "scontrol requeue 77"


def test_resume_flag_only_with_a_checkpoint(tmp_path, stubs):
    proc = start(tmp_path, stubs, scheduler="slurm")
    proc.send_signal(signal.SIGUSR1)
    proc.communicate(timeout=30)
    assert "--resume" not in (tmp_path / "log").read_text()
    (tmp_path / "out" / "checkpoints").mkdir(parents=True)
    (tmp_path / "out" / "checkpoints" / "latest.pt").write_bytes(b"")
    (tmp_path / "ready").unlink()
    proc = start(tmp_path, stubs, scheduler="slurm")
    proc.send_signal(signal.SIGUSR1)
    proc.communicate(timeout=30)
    assert "--resume" in (tmp_path / "log").read_text().splitlines()[-1]


def test_step_status_passed_through(tmp_path, stubs):
    fail = stubs / "fail"
    fail.write_text("#!/bin/bash\nexit 7\n")
    fail.chmod(0o755)
    script = tmp_path / "job.sh"
    script.write_text(render(make_job(scheduler="pbs", stage="nature", config="c", out="o",
                                      python=str(fail), workdir=str(tmp_path))))
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, PBS_O_WORKDIR=str(tmp_path)))
    assert proc.returncode == 7

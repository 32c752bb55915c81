"""Restartable runs (issue "Reliability"): a run killed at a random cycle (SIGKILL, serial and
mpiexec -n 2) or stopped by SIGTERM, then resumed, writes the same analysis.nc and summary.json
(except wall_seconds) as an uninterrupted run, bit for bit."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from assim_utils import (REPO, TINY, analysis, assert_user_error, genenkf, genenkf_subprocess,
                           identical, summary)
from mpi_utils import popen_mpi, run_mpi

LONG = ["osse.forcings=[8.0]", "osse.cycles=2500", "osse.burn_in=10"]


def _args(method, out, *extra):
    return ["assimilate", "-c", TINY, "--method", method, "--out", str(out), *LONG, *extra]


def _same_results(a: Path, b: Path) -> None:
    assert identical(analysis(a), analysis(b))
    sa, sb = summary(a), summary(b)
    sa.pop("wall_seconds"), sb.pop("wall_seconds")
    # measurements of the processes, not results: the bytes count since the last start
    sa["layout"].pop("bytes_sent"), sb["layout"].pop("bytes_sent")
    assert sa == sb


def _wait_for_restart(out: Path, proc, timeout=120.0) -> None:
    deadline = time.monotonic() + timeout
    while not list((out / "restart").glob("restart_*.npz")):
        assert proc.poll() is None, "the run ended before writing a restart"
        assert time.monotonic() < deadline, "no restart file appeared"
        time.sleep(0.02)


def _kill_session(sid: int) -> None:
    """SIGKILL every process of the session we started (mpiexec and its ranks, like a node
    failure or a walltime kill; killing mpiexec alone would orphan the ranks)."""
    ps = subprocess.run(["ps", "-o", "pid=", "--sid", str(sid)], capture_output=True, text=True)
    for pid in map(int, ps.stdout.split()):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs, one per method."""
    runs = {}
    for method in ("letkf", "enkf"):
        out = tmp_path_factory.mktemp(f"ref_{method}")
        assert genenkf(*_args(method, out)) == 0
        runs[method] = out
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("method", ["letkf", "enkf"])  # enkf: its random streams resume too
def test_sigkill_then_resume_serial(tmp_path, reference, method):
    proc = subprocess.Popen([sys.executable, "-m", "genenkf_hpc",
                             *_args(method, tmp_path, "run.checkpoint_every=40")],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_restart(tmp_path, proc)
    time.sleep(random.uniform(0.0, 0.3))
    proc.kill()
    proc.wait(timeout=30)
    assert not (tmp_path / "summary.json").exists(), "killed too late to test anything"
    assert (tmp_path / "analysis.nc.partial").exists() and not (tmp_path / "analysis.nc").exists()
    assert genenkf(*_args(method, tmp_path, "run.checkpoint_every=40", "--resume")) == 0
    _same_results(tmp_path, reference[method])
    assert not (tmp_path / "restart").exists()  # a complete run needs no restarts


MPI_SHORT = ["osse.cycles=1200", "run.checkpoint_every=20"]


@pytest.fixture(scope="module")
def mpi_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpi_ref")
    proc = run_mpi(2, _args("letkf", out, *MPI_SHORT))
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.slow
@pytest.mark.mpi
def test_sigkill_then_resume_mpi(tmp_path, mpi_reference):
    args = _args("letkf", tmp_path, *MPI_SHORT)
    job = popen_mpi(2, args, start_new_session=True)
    try:
        _wait_for_restart(tmp_path, job)
        time.sleep(random.uniform(0.0, 0.5))
    finally:
        _kill_session(job.pid)
        job.communicate(timeout=60)
    assert not (tmp_path / "summary.json").exists(), "killed too late to test anything"
    proc = run_mpi(2, args + ["--resume"])
    assert proc.returncode == 0, proc.stderr
    # bit for bit against the uninterrupted run on the same rank count (against one process
    # it agrees to round-off, grown by the chaotic dynamics over many cycles)
    _same_results(tmp_path, mpi_reference)


@pytest.mark.slow
@pytest.mark.mpi
def test_sigusr1_to_mpiexec_then_resume(tmp_path, mpi_reference):
    """mpiexec forwards SIGUSR1 (Slurm: --signal=USR1@120) to every rank: restart, exit 0."""
    args = _args("letkf", tmp_path, *MPI_SHORT)
    job = popen_mpi(2, args)
    _wait_for_restart(tmp_path, job)
    job.send_signal(signal.SIGUSR1)
    out, err = job.communicate(timeout=120)
    assert job.returncode == 0, out + err
    assert "stopped by SIGUSR1 after cycle" in err and "resume with: mpiexec" in err, err
    proc = run_mpi(2, args + ["--resume"])
    assert proc.returncode == 0, proc.stderr
    _same_results(tmp_path, mpi_reference)


@pytest.mark.slow
def test_sigterm_checkpoints_and_exits_0(tmp_path, reference):
    argv = _args("letkf", tmp_path, "run.checkpoint_every=40")
    proc = subprocess.Popen([sys.executable, "-m", "genenkf_hpc", *argv], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_restart(tmp_path, proc)
    time.sleep(random.uniform(0.0, 0.3))
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert "stopped by SIGTERM after cycle" in err and "--resume" in err, out + err
    resume_line = [line for line in err.splitlines() if line.startswith("resume with:")][0]
    assert "--out" in resume_line
    assert not (tmp_path / "summary.json").exists(), out + err
    assert genenkf(*_args("letkf", tmp_path, "run.checkpoint_every=40", "--resume")) == 0
    _same_results(tmp_path, reference["letkf"])


def test_resume_without_restart_starts_from_cycle_1(tmp_path):
    args = ["assimilate", "-c", TINY, "--method", "etkf", "osse.forcings=[8.0]"]
    assert genenkf(*args, "--out", tmp_path / "a") == 0
    assert genenkf(*args, "--out", tmp_path / "b", "--resume") == 0
    assert identical(analysis(tmp_path / "a"), analysis(tmp_path / "b"))


def test_resume_skips_finished_forcings(tmp_path):
    args = ["assimilate", "-c", TINY, "--method", "letkf", "--out", tmp_path]
    assert genenkf(*args) == 0
    before = (tmp_path / "forcing_8" / "summary.json").stat().st_mtime_ns
    proc = genenkf_subprocess(*args, "--resume")
    assert proc.returncode == 0 and "already complete" in proc.stdout
    assert (tmp_path / "forcing_8" / "summary.json").stat().st_mtime_ns == before


def test_resume_refuses_other_settings(tmp_path):
    base = ["assimilate", "-c", TINY, "--method", "letkf", "--out", tmp_path,
            "osse.forcings=[8.0]", "run.checkpoint_every=5", "osse.cycles=12"]
    # a run with another inflation fails at cycle 8 (injected), leaving the restart of cycle 5
    proc = genenkf_subprocess(*base, "filter.inflation=1.3",
                              env={**os.environ, "GENENKF_FAIL_AT_CYCLE": "0:8"})
    assert proc.returncode == 1 and list((tmp_path / "restart").glob("restart_*.npz"))
    proc = genenkf_subprocess(*base, "--resume")
    assert_user_error(proc, "cannot resume from")


def test_resume_refuses_a_complete_run_with_other_settings(tmp_path):
    """A finished forcing is skipped only when it was computed with the same settings and data;
    otherwise --resume stops with one error line and leaves the old results alone."""
    base = ["assimilate", "-c", TINY, "--method", "letkf", "--out", tmp_path,
            "osse.forcings=[8.0]"]
    assert genenkf(*base) == 0
    before = (tmp_path / "summary.json").read_bytes()
    assert json.loads(before)["fingerprint"]
    proc = genenkf_subprocess(*base, "filter.inflation=1.3", "--resume")
    assert_user_error(proc, "cannot resume:")
    assert "holds a complete letkf run with other settings" in proc.stderr
    assert (tmp_path / "summary.json").read_bytes() == before
    proc = genenkf_subprocess(*base, "--resume")
    assert proc.returncode == 0 and "already complete" in proc.stdout


def test_restart_files_are_atomic_and_pickle_free(tmp_path):
    from genenkf_hpc.io import restart

    path = restart.write_restart(tmp_path, 7, {"state": np.ones((3, 4))}, {"method": "letkf"})
    assert path.name == "restart_00000007.npz" and not list(tmp_path.rglob("*.partial"))
    arrays, meta = restart.read_restart(path)
    assert meta["cycle"] == 7 and np.array_equal(arrays["state"], np.ones((3, 4)))
    for cycle in (8, 9):
        restart.write_restart(tmp_path, cycle, {"state": np.ones(2)}, {})
    assert [c for c, _ in restart.list_restarts(tmp_path)] == [8, 9]  # the newest two kept
    bad = restart.restart_path(tmp_path, 10)
    np.save(bad.with_suffix(""), np.array([{"a": 1}], dtype=object), allow_pickle=True)
    bad.with_suffix(".npy").rename(bad)
    from genenkf_hpc.errors import UserError
    with pytest.raises(UserError, match="not a readable genenkf restart"):
        restart.read_restart(bad)


def test_resume_keeps_a_classical_run_when_only_generative_settings_change(tmp_path):
    """The fingerprint covers the sections a method reads: a new diffusion model in the config
    (a campaign resumed after shipping one) keeps the LETKF's finished runs, while the
    Generative EnKF's own runs would be refused."""
    base = ["assimilate", "-c", TINY, "--method", "letkf", "--out", tmp_path,
            "osse.forcings=[8.0]"]
    assert genenkf(*base) == 0
    before = (tmp_path / "summary.json").read_bytes()
    proc = genenkf_subprocess(*base, "generative.guidance=2.0", "network.base_width=4",
                              "--resume")
    assert proc.returncode == 0 and "already complete" in proc.stdout, proc.stderr
    assert (tmp_path / "summary.json").read_bytes() == before
    proc = genenkf_subprocess(*base, "filter.additive=0.1", "--resume")
    assert_user_error(proc, "cannot resume:")

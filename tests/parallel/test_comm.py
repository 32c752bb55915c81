"""The communicator: serial stand-in semantics and the launcher checks of world()."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from testpaths import CONFIGS, REPO
from genenkf_hpc.parallel.comm import (RootFailure, SerialComm, is_collective,
                                       run_on_root, world)
from genenkf_hpc.errors import UserError


def test_serial_buffer_collectives_are_copies():
    comm = SerialComm()
    a = np.arange(6.0).reshape(2, 3)
    for out in (comm.Allreduce(a), comm.Bcast(a), comm.Alltoallv(a, [6], [6]),
                comm.Allgatherv(a, [6]), comm.Gatherv(a, [6])):
        assert np.array_equal(out.reshape(a.shape), a)
        out.reshape(-1)[0] = 99.0
    assert a[0, 0] == 0.0  # results never alias the input


@pytest.mark.parametrize("environ", [
    {},
    {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"},                # torchrun: DDP, not MPI
    {"SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_LOCALID": "0"},  # a batch script itself
    {"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "1"},
])
def test_world_is_serial_without_a_parallel_launch(environ):
    assert isinstance(world(environ), SerialComm)


def test_run_on_root_raises_collectively():
    def bad():
        raise UserError("nature file x.nc is broken")
    with pytest.raises(UserError) as info:
        run_on_root(SerialComm(), bad)
    assert info.value.collective and "x.nc" in str(info.value)
    assert run_on_root(SerialComm(), lambda: 3) == 3


class _Rank1Of2(SerialComm):
    """Rank 1 of a 2-rank job whose root broadcasts ``sent``."""

    rank, size, is_main = 1, 2, False

    def __init__(self, sent):
        self.sent = sent

    def bcast(self, obj, root=0):
        return self.sent


def test_run_on_root_failures_stop_the_other_ranks_too():
    with pytest.raises(UserError, match="x.nc") as info:
        run_on_root(_Rank1Of2(("user", "nature file x.nc is broken")), lambda: 1 / 0)
    assert is_collective(info.value, 2)
    # a bug on the root: the other ranks stop as well instead of waiting for it
    with pytest.raises(RootFailure, match="rank 0 failed: OSError: disk full"):
        run_on_root(_Rank1Of2(("other", "OSError: disk full")), lambda: 1 / 0)


def test_a_collective_error_of_a_one_rank_comm_is_not_the_jobs():
    """A campaign runs each assimilation on one rank: its errors concern that rank alone, so
    the CLI must abort the job (the other ranks would wait for it)."""
    with pytest.raises(UserError) as info:
        run_on_root(SerialComm(), lambda: (_ for _ in ()).throw(UserError("bad")))
    assert is_collective(info.value, 1) and not is_collective(info.value, 4)


def test_srun_without_mpi_is_refused(tmp_path):
    """srun started 2 tasks, but MPI (singleton) sees 1: exit 2 with one line saying so."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMPI_COMM_WORLD", "PMI_", "PMIX_", "SLURM_"))}
    env.update({"SLURM_PROCID": "0", "SLURM_NTASKS": "2", "SLURM_LOCALID": "0",
                "SLURM_STEP_ID": "0"})
    proc = subprocess.run([sys.executable, "-m", "genenkf_hpc", "nature", "-c",
                           str(CONFIGS / "tiny.toml"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "srun started 2 tasks but MPI sees 1" in lines[0], proc.stderr


def _local_slurm_env():
    """Environment for the local Slurm cluster (tools/slurm_local.sh), or None when it is down."""
    import shutil

    script = REPO / "tools" / "slurm_local.sh"
    if not script.exists() or shutil.which("srun") is None:
        return None
    if subprocess.run([str(script), "status"], capture_output=True).returncode != 0:
        return None
    conf = subprocess.run([str(script), "env"], capture_output=True, text=True).stdout
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for word in conf.split():
        if word.startswith("SLURM_CONF="):
            env["SLURM_CONF"] = word.split("=", 1)[1].strip("'\"")
    return env


@pytest.mark.slurm
@pytest.mark.mpi
def test_srun_with_and_without_mpi_support(tmp_path):
    env = _local_slurm_env()
    if env is None:
        pytest.skip("no local Slurm cluster (tools/slurm_local.sh start)")
    base = [sys.executable, "-m", "genenkf_hpc", "assimilate", "-c", str(CONFIGS / "tiny.toml"),
            "osse.forcings=[8.0]"]
    # --immediate: a busy one-node cluster (other jobs) is a reason to skip, not to wait
    srun = ["srun", "-n", "2", "--overcommit", "--immediate=30"]
    ok = subprocess.run([*srun, "--mpi=pmix", *base, "--out", str(tmp_path / "pmix")],
                        capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    if ok.returncode != 0 and "allocat" in ok.stderr.lower():
        pytest.skip(f"the local Slurm cluster is busy: {ok.stderr.strip()[:200]}")
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "pmix" / "summary.json").read_text())["ranks"] == 2
    bad = subprocess.run([*srun, "--mpi=none", *base, "--out", str(tmp_path / "none")],
                         capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    if bad.returncode != 2 and "allocat" in bad.stderr.lower():
        pytest.skip(f"the local Slurm cluster is busy: {bad.stderr.strip()[:200]}")
    assert bad.returncode == 2, bad.stderr
    assert "srun started 2 tasks but MPI sees 1" in bad.stderr

"""Shared fixture of the real-Slurm tests: the one-node local Slurm of tools/slurm_local.sh."""
import os
import re
import subprocess

import pytest

from testpaths import REPO

SLURM_LOCAL = REPO / "tools" / "slurm_local.sh"


@pytest.fixture(scope="session")
def slurm_env():
    """Environment for sbatch/squeue against the local Slurm, started here when it is not
    running (and stopped again afterwards); skips, with the reason, where Slurm cannot be
    installed or started (no root, no apt)."""
    was_running = subprocess.run(["bash", str(SLURM_LOCAL), "status"],
                                 capture_output=True).returncode == 0
    try:
        proc = subprocess.run(["bash", str(SLURM_LOCAL), "start"], capture_output=True,
                              text=True, timeout=900)
    except subprocess.TimeoutExpired:
        pytest.skip("tools/slurm_local.sh start took more than 15 minutes")
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        pytest.skip(f"a local Slurm could not be installed or started: {reason}")
    m = re.search(r"export SLURM_CONF=(\S+)", proc.stdout)
    assert m, proc.stdout
    # nothing of an enclosing job or launcher may leak into ours
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "OMPI_", "PMIX_"))}
    env["SLURM_CONF"] = m.group(1)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    yield env
    if not was_running:
        subprocess.run(["bash", str(SLURM_LOCAL), "stop"], capture_output=True, timeout=120)

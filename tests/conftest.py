"""Shared test set-up: MPI may run as root (CI), single-threaded BLAS/torch for stable timings."""
import os
import sys

import pytest

os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from testpaths import CONFIGS, REPO  # noqa: F401  (re-exported for fixtures below)


def _train_tiny(root, *overrides, dataset_overrides=()):
    """`genenkf dataset` + `genenkf train` on tiny.toml -> the checkpoint."""
    import subprocess

    base = [sys.executable, "-m", "genenkf_hpc"]
    tiny = ["-c", str(CONFIGS / "tiny.toml")]
    for argv in (["dataset", *tiny, "--out", str(root / "data"), *dataset_overrides],
                 ["train", *tiny, "--data", str(root / "data"), "--out", str(root / "train"),
                  "--eval-states", "0", "run.progress=false", *overrides]):
        proc = subprocess.run(base + argv, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
    return root / "train" / "checkpoints" / "latest.pt"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny diffusion model trained by this project's code on tiny.toml with the defaults:
    for the prior mode (conditioned on the observations before the analysis time)."""
    return _train_tiny(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_posterior_model(tmp_path_factory):
    """The same for the paper's posterior mode (conditioned on the current observation too),
    with a history of 2 observations."""
    return _train_tiny(tmp_path_factory.mktemp("tiny_posterior_model"), "network.obs_lag=0",
                       "network.seq_len=2")


@pytest.fixture(scope="session")
def tiny_local_model(tmp_path_factory):
    """A tiny local network (receptive field 40 points, factor 2) trained on a 48-point ring."""
    ring = ["model.nx=48"]
    return _train_tiny(tmp_path_factory.mktemp("tiny_local_model"), "network.kind=local",
                       "network.blocks_per_level=1", *ring, dataset_overrides=ring)


@pytest.fixture
def genenkf_cmd():
    """The CLI as a subprocess argv prefix (the same interpreter as the tests)."""
    return [sys.executable, "-m", "genenkf_hpc"]

"""The shipped local network (models/l96_local.pt): it loads safely, records its receptive field
and downsampling factor, samples rings of any admissible size, runs on domains with one-process
results at N = 4,000 (float64 1e-10), and a fresh run of its recorded training command retraces
the recorded loss curve."""
import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from assim_utils import analysis, genenkf, max_abs_diff, summary
from mpi_utils import run_mpi
from testpaths import REPO

MODEL = REPO / "models" / "l96_local.pt"
RECORD = REPO / "models" / "l96_local"
LARGE = str(REPO / "configs" / "large.toml")


def test_shipped_local_model_loads_and_matches_its_record():
    import torch

    from genenkf_hpc.config import load_config
    from genenkf_hpc.diffusion.bundle import load_bundle
    from genenkf_hpc.diffusion.local_net import LocalNetArgs, receptive_field

    ckpt = torch.load(MODEL, weights_only=True)
    cfg = load_config(RECORD / "config.toml")
    assert ckpt["arch"]["kind"] == cfg.network.kind == "local"
    assert ckpt["step"] == cfg.train.steps and ckpt["dataset"]["nx"] == cfg.model.nx
    field = ckpt["receptive_field"]
    assert (field["left"], field["right"]) == \
        receptive_field(LocalNetArgs.from_dict(ckpt["arch"]))
    assert field["width"] <= 40 <= cfg.model.nx and field["downsampling"] == 2
    bundle = load_bundle(MODEL)
    assert bundle.receptive_field == field and bundle.obs_interval == 2
    assert MODEL.stat().st_size < 1e6


@pytest.mark.parametrize("nx, ok", [(40, True), (4000, True), (38, False), (41, False)])
def test_the_model_check_by_ring_size(nx, ok):
    import torch

    from genenkf_hpc.diffusion.networks import check_grid
    from genenkf_hpc.errors import UserError

    ckpt = torch.load(MODEL, weights_only=True)
    if ok:
        check_grid(ckpt["receptive_field"], ckpt["dataset"]["nx"], nx, str(MODEL))
    else:
        with pytest.raises(UserError, match=f"model.nx={nx}"):
            check_grid(ckpt["receptive_field"], ckpt["dataset"]["nx"], nx, str(MODEL))


@pytest.mark.slow
@pytest.mark.mpi
def test_genenkf_at_4000_points_on_domains_equals_one_process(tmp_path):
    """The Done-when check of issue 14: mpiexec -n 2 and -n 3 (every rank its own segment)
    give the one-process Generative EnKF at N = 4,000 in float64 to 1e-10."""
    args = ["assimilate", "-c", LARGE, "--method", "genenkf", "--model", MODEL, "model.nx=4000",
            "generative.precision=float64", "generative.members=4", "osse.cycles=3",
            "osse.burn_in=1", "model.spinup_steps=100", "run.progress=false"]
    assert genenkf(*args, "--out", tmp_path / "one") == 0
    for ranks in (2, 3):
        proc = run_mpi(ranks, [*args, "--out", tmp_path / f"n{ranks}"], timeout=900)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert summary(tmp_path / f"n{ranks}")["layout"]["domains"] == ranks  # auto
        diff = max_abs_diff(analysis(tmp_path / "one"), analysis(tmp_path / f"n{ranks}"))
        assert diff <= 1e-10, (ranks, diff)


def loss_rows(path):
    with open(path) as fh:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(fh)}


@pytest.mark.slow
def test_fresh_training_retraces_the_recorded_loss(tmp_path):
    cmd = [sys.executable, "-m", "genenkf_hpc"]
    cfg = str(RECORD / "config.toml")
    for argv in (["dataset", "-c", cfg, "--out", str(tmp_path / "data")],
                 ["train", "-c", cfg, "--data", str(tmp_path / "data"), "--out",
                  str(tmp_path / "train"), "--stop-at", "100", "--eval-states", "0",
                  "run.progress=false"]):
        proc = subprocess.run(cmd + argv, capture_output=True, text=True, timeout=900,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert proc.returncode == 0, proc.stderr
    fresh = loss_rows(tmp_path / "train" / "loss.csv")
    recorded = loss_rows(RECORD / "loss.csv")
    steps = sorted(fresh)
    assert steps == [50, 100]
    np.testing.assert_allclose([fresh[s] for s in steps], [recorded[s] for s in steps],
                               rtol=0.02)

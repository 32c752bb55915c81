"""The Generative EnKF refuses a model that does not fit the experiment (exit 2, one line),
accepts named mismatches on purpose (warned, recorded), checks before anything runs also under
MPI and in a campaign, and --resume refuses to continue or skip a run made with another model
(issue 12, defects 3 and 4)."""
import json
import time

import pytest
import torch

from assim_utils import TINY, assert_user_error, genenkf_subprocess, summary
from mpi_utils import run_mpi

GENENKF = ["--method", "genenkf", "osse.forcings=[10.0]", "osse.cycles=8", "osse.burn_in=2",
           "run.progress=false"]


def assimilate(out, model, *extra, **kw):
    return genenkf_subprocess("assimilate", "-c", TINY, "--model", model, "--out", out,
                              *GENENKF, *extra, **kw)


def test_train_records_what_the_model_fits(tiny_model):
    ckpt = torch.load(tiny_model, weights_only=True)
    assert ckpt["obs"]["mask"] == list(range(0, 16, 2))
    data = ckpt["dataset"]
    assert data["interval"] == 0.05 and data["source"] == "model"
    assert data["dynamics"] == "lorenz96" and data["forcing"] == 8.0


def test_a_mismatch_stops_before_the_run(tmp_path, tiny_model):
    proc = assimilate(tmp_path, tiny_model, "osse.obs_sigma=0.5")
    assert_user_error(proc, "obs_sigma: model 1, experiment 0.5 (osse.obs_sigma)")
    assert str(tiny_model) in proc.stderr
    assert not (tmp_path / "summary.json").exists()
    assert not list(tmp_path.glob("analysis.nc*"))


def test_an_allowed_mismatch_is_warned_and_recorded(tmp_path, tiny_model):
    proc = assimilate(tmp_path, tiny_model, "osse.obs_sigma=0.5",
                      'generative.allow_mismatch=["obs_sigma"]')
    assert proc.returncode == 0, proc.stderr
    assert "used despite a mismatch" in proc.stderr and "obs_sigma: model 1" in proc.stderr
    s = summary(tmp_path)
    assert s["accepted_mismatches"] == [{"key": "obs_sigma", "model": 1.0, "experiment": 0.5,
                                         "where": "osse.obs_sigma"}]
    assert s["model_step"] == 4 and len(s["model_sha256"]) == 64


@pytest.mark.mpi
def test_a_mismatch_under_mpi_is_one_line_on_every_rank(tmp_path, tiny_model):
    t0 = time.monotonic()
    proc = run_mpi(2, ["assimilate", "-c", TINY, "--model", tiny_model, "--out", tmp_path,
                       *GENENKF, "model.forcing=9.0"], timeout=120)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "forcing: model 8, experiment 9" in errors[0], proc.stderr
    assert "MPI_ABORT" not in proc.stderr and time.monotonic() - t0 < 60


@pytest.mark.mpi
def test_a_campaign_checks_every_genenkf_run_first(tmp_path, tiny_model):
    """The runs are spread over the ranks: the check comes before, once, for all of them."""
    proc = run_mpi(2, ["campaign", "-c", TINY, "--model", tiny_model, "--out", tmp_path,
                       "osse.cycles=8", "osse.burn_in=2", 'campaign.methods=["noda", "genenkf"]',
                       'campaign.method_overrides=["genenkf:osse.obs_sigma=0.7"]'], timeout=120)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "obs_sigma: model 1, experiment 0.7" in errors[0], proc.stderr
    assert not (tmp_path / "noda").exists()  # nothing ran


def test_resume_refuses_a_finished_run_of_another_model(tmp_path, tiny_model):
    other = tiny_model.parent / "step_00000002.pt"  # the same training run, 2 steps earlier
    assert assimilate(tmp_path, tiny_model).returncode == 0
    before = (tmp_path / "summary.json").read_bytes()
    proc = assimilate(tmp_path, other, "--resume")
    assert_user_error(proc, "cannot resume:")
    assert "model_sha256" in proc.stderr and "model_step 4 (this run: 2)" in proc.stderr
    assert (tmp_path / "summary.json").read_bytes() == before
    proc = assimilate(tmp_path, tiny_model, "--resume")
    assert proc.returncode == 0 and "already complete" in proc.stdout


def test_resume_refuses_a_restart_of_another_model(tmp_path, tiny_model):
    other = tiny_model.parent / "step_00000002.pt"
    import os

    env = {**os.environ, "GENENKF_FAIL_AT_CYCLE": "0:7"}
    proc = assimilate(tmp_path, tiny_model, "run.checkpoint_every=5", env=env)
    assert proc.returncode == 1 and list((tmp_path / "restart").glob("restart_*.npz"))
    proc = assimilate(tmp_path, other, "run.checkpoint_every=5", "--resume")
    assert_user_error(proc, "cannot resume from")
    assert "model_step 4 (this run: 2)" in proc.stderr
    # the original model continues
    proc = assimilate(tmp_path, tiny_model, "run.checkpoint_every=5", "--resume")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["model_step"] == 4

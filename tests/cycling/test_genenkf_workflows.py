"""The Generative EnKF through the workflows users run: killed and resumed (bit for bit), inside
a campaign, and the end-to-end `genenkf demo` (issue 12, "Tests that must exist")."""
import csv
import math
import random
import subprocess
import sys
import time

import pytest

from assim_utils import REPO, TINY, analysis, identical, summary

GENENKF = ["--method", "genenkf", "osse.forcings=[10.0]", "osse.cycles=100", "osse.burn_in=10",
           "run.checkpoint_every=10", "run.progress=false"]


def _cli(*args):
    return [sys.executable, "-m", "genenkf_hpc", *map(str, args)]


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tmp_path, tiny_model):
    args = ["assimilate", "-c", TINY, "--model", tiny_model, *GENENKF]
    ref = subprocess.run(_cli(*args, "--out", tmp_path / "ref"), capture_output=True, text=True,
                         cwd=REPO, timeout=600)
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen(_cli(*args, "--out", out), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list((out / "restart").glob("restart_*.npz")):
        assert proc.poll() is None, "the run ended before writing a restart"
        assert time.monotonic() < deadline, "no restart file appeared"
        time.sleep(0.02)
    time.sleep(random.uniform(0.0, 0.3))
    proc.kill()
    proc.wait(timeout=30)
    assert not (out / "summary.json").exists(), "killed too late to test anything"
    resumed = subprocess.run(_cli(*args, "--out", out, "--resume"), capture_output=True,
                             text=True, cwd=REPO, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming genenkf after cycle" in resumed.stdout
    assert identical(analysis(out), analysis(tmp_path / "ref"))
    a, b = summary(out), summary(tmp_path / "ref")
    a.pop("wall_seconds"), b.pop("wall_seconds")
    assert a == b


def test_genenkf_inside_a_campaign(tmp_path, tiny_model):
    proc = subprocess.run(_cli("campaign", "-c", TINY, "--model", tiny_model, "--out", tmp_path,
                               "osse.cycles=12", "osse.burn_in=2",
                               'campaign.methods=["noda", "letkf", "genenkf"]'),
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "results.csv") as fh:
        rows = {(r["method"], float(r["forcing_nature"])): r for r in csv.DictReader(fh)}
    assert set(rows) == {(m, f) for m in ("noda", "letkf", "genenkf") for f in (8.0, 10.0)}
    for f in (8.0, 10.0):
        row = rows["genenkf", f]
        assert math.isfinite(float(row["rmse"])) and float(row["spread"]) > 0
        assert int(row["network_evaluations_per_cycle"]) > 0
        assert summary(tmp_path / "genenkf" / f"F{f:g}")["model_step"] == 4


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    """`genenkf demo` (its embedded configs/demo.toml), shrunk to seconds by overrides (the
    tuning of letkf_tuned to 2 runs per F)."""
    small = ["dataset.trajectories=6", "dataset.steps=40", "dataset.spinup_steps=100",
             "dataset.shard_trajectories=2", "dataset.val_fraction=0.2",
             "dataset.test_fraction=0.2", "network.base_width=8", "network.multipliers=[1,2]",
             "network.groups=4", "train.steps=4", "train.batch_size=4", "train.log_every=1",
             "train.checkpoint_every=2", "osse.cycles=12", "osse.burn_in=2", "filter.members=6",
             "generative.members=6", "model.spinup_steps=100", "run.progress=false",
             "campaign.tune_cycles=12", "campaign.tune_radius=[4.0]",
             "campaign.tune_inflation=[1.05, 1.1]", "campaign.tune_additive=[0.0]"]
    proc = subprocess.run(_cli("demo", "--out", tmp_path, *small), capture_output=True,
                          text=True, cwd=REPO, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "demo finished" in proc.stdout and "genenkf" in proc.stdout
    camp = tmp_path / "campaign"
    with open(camp / "results.csv") as fh:
        methods = {r["method"] for r in csv.DictReader(fh)}
    assert methods == {"noda", "nudging", "letkf", "letkf_tuned", "genenkf"}
    # the comparison uses the shipped model; the demo's own one only shows training
    shipped = str((REPO / "models" / "l96_paper_prior.pt").resolve())
    assert summary(camp / "genenkf" / "F10")["settings"]["checkpoint"] == shipped
    for name in ("results.md", "rmse_vs_forcing.png", "rmse_time_F10.png"):
        assert (camp / name).stat().st_size > 0, name
    assert (tmp_path / "train" / "checkpoints" / "latest.pt").is_file()

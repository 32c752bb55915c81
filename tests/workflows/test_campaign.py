"""The campaign: same truth for every method, tuning on a separate seed, complete outputs."""
import csv
import subprocess
import sys


import pytest

from genenkf_hpc.config import tomllib

from testpaths import CONFIGS

TINY = ["-c", str(CONFIGS / "tiny.toml"), "osse.forcings=[8.0, 10.0]", "osse.cycles=24",
        "campaign.tune_cycles=12", "campaign.tune_radius=[2.0, 4.0]",
        "campaign.tune_inflation=[1.05]", "campaign.tune_rtps=[0.0, 0.5]",
        "campaign.tune_gaussian_scale=[0.3]",
        'campaign.methods=["noda", "nudging", "enkf", "letkf", "letkf_tuned", "gaussian_pseudo"]',
        'campaign.method_overrides=["letkf:filter.taper=\\"box\\""]']


@pytest.fixture(scope="module")
def campaign_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("campaign")
    proc = subprocess.run([sys.executable, "-m", "genenkf_hpc", "campaign", "--out", str(out)] + TINY,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out


def read_rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_results_table_has_every_method_and_forcing(campaign_dir):
    rows = read_rows(campaign_dir / "results.csv")
    pairs = {(r["method"], float(r["forcing_nature"])) for r in rows}
    methods = ["noda", "nudging", "enkf", "letkf", "letkf_tuned", "gaussian_pseudo"]
    assert pairs == {(m, f) for m in methods for f in (8.0, 10.0)}
    for r in rows:
        assert float(r["rmse"]) > 0 and float(r["wall_seconds"]) > 0
    md = (campaign_dir / "results.md").read_text()
    assert "letkf_tuned" in md and "Cost per cycle" in md
    for name in ["rmse_vs_forcing.png", "rmse_time_F8.png", "rmse_time_F10.png",
                 "hovmoller_letkf_tuned_F10.png"]:
        assert (campaign_dir / name).stat().st_size > 1000, name


def test_every_method_saw_the_same_truth_and_observations(campaign_dir):
    import numpy as np
    import xarray as xr

    for f in ("8", "10"):
        ref = xr.open_dataset(campaign_dir / "noda" / f"F{f}" / "analysis.nc")
        for m in ["nudging", "enkf", "letkf", "letkf_tuned", "gaussian_pseudo"]:
            ds = xr.open_dataset(campaign_dir / m / f"F{f}" / "analysis.nc")
            np.testing.assert_array_equal(ds.truth.values, ref.truth.values)
            np.testing.assert_array_equal(ds.obs.values, ref.obs.values)


def test_tuning_used_a_separate_seed_and_the_best_point(campaign_dir):
    import json

    best_rmse, best_cfg = None, None
    for run in (campaign_dir / "tuning" / "letkf_tuned" / "F10").iterdir():
        cfg = tomllib.loads((run / "config.toml").read_text())
        assert cfg["osse"]["seed"] == 1000 and cfg["osse"]["cycles"] == 12
        rmse = json.loads((run / "summary.json").read_text())["rmse"]
        if best_rmse is None or rmse < best_rmse:
            best_rmse, best_cfg = rmse, cfg
    final = tomllib.loads((campaign_dir / "letkf_tuned" / "F10" / "config.toml").read_text())
    assert final["osse"]["seed"] == 0
    assert final["filter"]["radius"] == best_cfg["filter"]["radius"]
    assert final["filter"]["rtps"] == best_cfg["filter"]["rtps"]


def test_method_overrides_apply_to_their_method_only(campaign_dir):
    letkf = tomllib.loads((campaign_dir / "letkf" / "F8" / "config.toml").read_text())
    enkf = tomllib.loads((campaign_dir / "enkf" / "F8" / "config.toml").read_text())
    assert letkf["filter"]["taper"] == "box" and enkf["filter"]["taper"] == "gaspari_cohn"


def test_bad_method_override_is_a_user_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "genenkf_hpc", "campaign", "--out", str(tmp_path),
                           "-c", str(CONFIGS / "tiny.toml"), 'campaign.methods=["noda"]',
                           'campaign.method_overrides=["letkf:filter.radius=2"]'],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: campaign.method_overrides")

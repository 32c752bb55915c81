"""`genenkf assimilate` serially: files and summary per CONTRACT section 5, every method, inputs."""
import shutil

import numpy as np
import pytest

from assim_utils import (TINY, analysis, assert_user_error, genenkf, genenkf_subprocess,
                           identical, summary)

METHODS = ["noda", "nudging", "enkf", "etkf", "letkf"]
SUMMARY_KEYS = {"method", "forcing_nature", "members", "cycles", "burn_in", "rmse", "spread",
                "ranks", "wall_seconds", "spread_ratio", "crps", "settings"}


@pytest.fixture(scope="module")
def letkf_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("letkf")
    assert genenkf("assimilate", "-c", TINY, "--method", "letkf", "--out", out) == 0
    return out


def test_files_and_summary(letkf_run):
    out = letkf_run
    assert {p.name for p in out.iterdir()} == {"config.toml", "log.txt", "forcing_8", "forcing_10"}
    for forcing in (8.0, 10.0):
        d = out / f"forcing_{forcing:g}"
        assert {p.name for p in d.iterdir()} == {"analysis.nc", "summary.json"}
        s = summary(d)
        assert SUMMARY_KEYS <= s.keys()
        assert s["method"] == "letkf" and s["forcing_nature"] == forcing and s["ranks"] == 1
        assert s["members"] == 6 and s["cycles"] == 30 and s["burn_in"] == 5
        a = analysis(d)
        assert a["truth"].shape == a["analysis_mean"].shape == (30, 16)
        # the series are what the fields say, and the summary is their mean after the burn-in
        rmse = np.sqrt(np.mean((a["analysis_mean"] - a["truth"]) ** 2, axis=1))
        assert np.allclose(a["rmse"], rmse, rtol=1e-12)
        spread = np.sqrt(np.mean(a["analysis_spread"] ** 2, axis=1))
        assert np.allclose(a["spread"], spread, rtol=1e-12)
        assert s["rmse"] == pytest.approx(a["rmse"][5:].mean(), rel=1e-12)
        assert s["spread"] == pytest.approx(a["spread"][5:].mean(), rel=1e-12)
        assert np.all(np.isnan(a["obs"][:, 1::2])) and np.all(np.isfinite(a["obs"][:, ::2]))
        assert np.all(a["crps"] > 0)


def test_cf_attributes(letkf_run):
    import xarray as xr

    with xr.open_dataset(letkf_run / "forcing_8" / "analysis.nc") as ds:
        for name in ["truth", "obs", "analysis_mean", "analysis_spread", "rmse", "spread", "time",
                     "x"]:
            assert "units" in ds[name].attrs and "long_name" in ds[name].attrs, name
        assert ds["analysis_mean"].dims == ("time", "x") and ds["rmse"].dims == ("time",)
        assert ds.attrs["method"] == "letkf"
        assert np.allclose(ds["time"].values, 0.05 * np.arange(1, 31))


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs(tmp_path, method):
    assert genenkf("assimilate", "-c", TINY, "--method", method, "--out", tmp_path,
                   "osse.forcings=[8.0]") == 0
    s = summary(tmp_path)
    assert s["method"] == method and np.isfinite(s["rmse"])
    if method in ("noda", "nudging"):
        assert s["members"] == 1 and s["spread"] == 0.0
    else:
        assert s["spread"] > 0


def test_data_assimilation_beats_free_run(tmp_path):
    """On the tiny ring (16 points, every 2nd observed) the global ETKF needs 16 members; the
    stochastic EnKF stays finite but is not expected to lock on there (it does on
    l96_standard, test_reference_rmse)."""
    rmse = {}
    for method in METHODS:
        out = tmp_path / method
        members = "filter.members=16" if method == "etkf" else "filter.members=6"
        assert genenkf("assimilate", "-c", TINY, "--method", method, "--out", out,
                       "osse.forcings=[8.0]", "osse.cycles=120", "osse.burn_in=40", members) == 0
        rmse[method] = summary(out)["rmse"]
    assert rmse["noda"] > 2.0
    for method in ("nudging", "etkf", "letkf"):
        assert rmse[method] < 0.6 * rmse["noda"], rmse
    assert rmse["enkf"] < 2 * rmse["noda"], rmse


def test_nature_file_gives_the_same_numbers(tmp_path):
    assert genenkf("nature", "-c", TINY, "--out", tmp_path / "nat") == 0
    nature = tmp_path / "nat" / "nature.nc"
    assert genenkf("assimilate", "-c", TINY, "--method", "enkf", "--out", tmp_path / "file",
                   "--nature", nature) == 0
    assert genenkf("assimilate", "-c", TINY, "--method", "enkf", "--out", tmp_path / "mem") == 0
    for sub in ("forcing_8", "forcing_10"):
        assert identical(analysis(tmp_path / "file" / sub), analysis(tmp_path / "mem" / sub))
        a, b = summary(tmp_path / "file" / sub), summary(tmp_path / "mem" / sub)
        assert a["rmse"] == b["rmse"] and a["nature"].endswith("nature.nc")


def test_rerun_without_resume_starts_again(tmp_path):
    args = ["assimilate", "-c", TINY, "--method", "letkf", "--out", tmp_path,
            "osse.forcings=[8.0]"]
    assert genenkf(*args) == 0
    first = analysis(tmp_path)
    assert genenkf(*args) == 0
    assert identical(first, analysis(tmp_path))


def test_summary_printed_one_line_per_forcing(tmp_path):
    proc = genenkf_subprocess("assimilate", "-c", TINY, "--method", "etkf", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()[-2:]
    assert lines[0].startswith("F_nature=8 etkf: rmse=") and "F_nature=10" in lines[1]
    assert lines[0].endswith("forcing_8")


# --- bad input: exit 2, one line naming the problem, nothing that looks complete ---------------

def _bad_nature_files(tmp_path):
    import netCDF4

    good = tmp_path / "nat" / "nature.nc"
    assert genenkf("nature", "-c", TINY, "--out", good.parent) == 0
    text = tmp_path / "text.nc"
    text.write_text("not netcdf")
    wrong = tmp_path / "wrong.nc"
    with netCDF4.Dataset(wrong, "w") as ds:
        ds.createDimension("x", 16)
        ds.createVariable("truth", "f8", ("x",))
    nan_obs = tmp_path / "nan.nc"
    shutil.copy(good, nan_obs)
    with netCDF4.Dataset(nan_obs, "a") as ds:
        ds["obs"][0, 3, 0] = np.nan  # an observed point (x = 0) at cycle 4
    return good, text, wrong, nan_obs


def test_bad_inputs(tmp_path):
    good, text, wrong, nan_obs = _bad_nature_files(tmp_path)
    cases = [
        (["--method", "kalman"], "unknown method; valid methods: noda, nudging, enkf, etkf, letkf"),
        (["--nature", tmp_path / "missing.nc"], "missing.nc does not exist"),
        (["--nature", text], "is not a readable netCDF file"),
        (["--nature", wrong], "lacks variable(s) obs, obs_mask"),
        (["--nature", good, "model.nx=18"], "has 16 grid points but model.nx=18"),
        (["--nature", good, "osse.cycles=40"], "has 30 cycles but osse.cycles=40"),
        (["--nature", good, "osse.obs_interval=1"], "osse.obs_interval=1"),
        (["--nature", good, "osse.obs_sigma=0.5"], "osse.obs_sigma=0.5"),
        (["--nature", good, "model.dt=0.01"], "model.dt * osse.steps_per_cycle"),
        (["--nature", good, "osse.forcings=[9.0]"], "no nature run with forcing 9.0"),
        (["--nature", nan_obs], "NaN/Inf at an observed point in cycle 4"),
        (["filter.members=1"], "filter.members=1"),
    ]
    for i, (extra, fragment) in enumerate(cases):
        out = tmp_path / f"out{i}"
        proc = genenkf_subprocess("assimilate", "-c", TINY, "--out", out, *extra)
        assert_user_error(proc, fragment)
        assert not list(out.rglob("summary.json")) and not list(out.rglob("analysis.nc"))


def test_divergence_stops_with_a_clear_message(tmp_path):
    """RK4 with dt = 0.14 from an unbalanced start explodes at cycle 5 (the nature run, with
    the same dt from its own start, survives): DivergenceError naming cycle, method, variable;
    the last restart stays."""
    proc = genenkf_subprocess("assimilate", "-c", TINY, "--method", "noda", "--out", tmp_path,
                              "osse.forcings=[8.0]", "model.dt=0.14", "model.spinup_steps=0",
                              "run.checkpoint_every=2")
    assert_user_error(proc, "filter divergence at cycle 5")
    line = proc.stderr.strip()
    assert "method noda" in line and "variable forecast simulation" in line
    assert "last good restart is kept" in line
    assert (tmp_path / "error.txt").is_file() and not (tmp_path / "summary.json").exists()
    assert list((tmp_path / "restart").glob("restart_*.npz"))
    assert not (tmp_path / "analysis.nc").exists()

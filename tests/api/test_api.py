"""The Python API (CONTRACT section 9): the same numbers and the same errors as the CLI, nothing
written without ``out``, lazy imports."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import genenkf_hpc as gk
from genenkf_hpc.cli import main
from genenkf_hpc.io.analysis_file import read_analysis

from testpaths import CONFIGS, REPO

TINY = str(CONFIGS / "tiny.toml")
FIELDS = ("truth", "obs", "analysis_mean", "analysis_spread")


def cli(*args) -> int:
    return main([str(a) for a in args])


def assert_same_as_file(ds: xr.Dataset, run_dir, forcing: float):
    """The API's Dataset at one forcing holds exactly what the CLI wrote for it."""
    with xr.open_dataset(run_dir / "analysis.nc") as f:
        one = ds.sel(forcing=forcing).drop_vars("forcing")
        for name in FIELDS:
            xr.testing.assert_identical(one[name], f[name])
        for name in ("rmse", "spread", "crps"):
            xr.testing.assert_identical(one[f"{name}_series"].rename(name), f[name])
        attrs = {k: v for k, v in f.attrs.items() if k != "forcing_nature"}
        assert attrs.keys() == ds.attrs.keys()
        for key, value in attrs.items():
            assert np.array_equal(ds.attrs[key], value), key
    summary = json.loads((run_dir / "summary.json").read_text())
    for name in ("rmse", "spread", "spread_ratio", "crps"):
        assert float(one[name]) == summary[name], name


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    assert cli("nature", "-c", TINY, "--out", root / "nature") == 0
    assert cli("assimilate", "-c", TINY, "--method", "letkf", "--out", root / "letkf") == 0
    return root


def test_import_is_light_and_names_resolve_lazily():
    code = ("import sys, genenkf_hpc as gk; gk.load_config(); "
            "heavy = [m for m in ('torch', 'xarray', 'netCDF4', 'mpi4py') if m in sys.modules]; "
            "assert not heavy, heavy; assert 'assimilate' in dir(gk)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert gk.register_dynamics is gk.api.register_dynamics
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        gk.nosuch


@pytest.mark.parametrize("override", ["model.nxx=3", "nosuch.key=1", "model.nx=abc",
                                      "filter.members=1", "osse.burn_in=40"])
def test_config_errors_are_the_clis(override, tmp_path, capsys):
    with pytest.raises(gk.UserError) as info:
        gk.load_config(TINY, override)
    assert cli("nature", "-c", TINY, override, "--out", tmp_path) == 2
    assert capsys.readouterr().err.strip() == f"error: {info.value}"


def test_an_edited_config_is_validated_again():
    cfg = gk.load_config(TINY)
    cfg.filter.members = 1
    with pytest.raises(gk.UserError, match="filter.members=1: must be >= 2"):
        gk.assimilate(cfg, "letkf")
    with pytest.raises(gk.UserError, match="expected a Config"):
        gk.nature({"model": {}})
    with pytest.raises(gk.UserError, match="expected a 'section.key=value' string"):
        gk.load_config(TINY, 3)


def test_nature_equals_the_cli(cli_runs, tmp_path):
    cfg = gk.load_config(TINY)
    with xr.open_dataset(cli_runs / "nature" / "nature.nc") as f:
        xr.testing.assert_identical(gk.nature(cfg), f)
        xr.testing.assert_identical(gk.nature(TINY, out=tmp_path), f)
    assert {p.name for p in tmp_path.iterdir()} == {"nature.nc", "config.toml", "log.txt"}
    assert (tmp_path / "config.toml").read_text() == \
        (cli_runs / "nature" / "config.toml").read_text()


def test_assimilate_equals_the_cli(cli_runs):
    cfg = gk.load_config(TINY)
    ds = gk.assimilate(cfg, "letkf")
    assert ds["analysis_mean"].dims == ("forcing", "time", "x")
    assert ds["rmse"].dims == ds["spread"].dims == ("forcing",)
    assert ds["rmse_series"].dims == ("forcing", "time")
    for forcing in (8.0, 10.0):
        assert_same_as_file(ds, cli_runs / "letkf" / f"forcing_{forcing:g}", forcing)
    # the same truth given as the Dataset of gk.nature or as the CLI's file: the same analysis
    for nature in (gk.nature(cfg), cli_runs / "nature" / "nature.nc"):
        again = gk.assimilate(cfg, "letkf", nature=nature)
        xr.testing.assert_identical(again.drop_vars("wall_seconds"),
                                    ds.drop_vars("wall_seconds"))


def test_assimilate_with_out_writes_what_the_cli_writes(cli_runs, tmp_path):
    ds = gk.assimilate(TINY, "letkf", out=tmp_path)
    cli_dir = cli_runs / "letkf"
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == \
        sorted(str(p.relative_to(cli_dir)) for p in cli_dir.rglob("*"))
    for sub in ("forcing_8", "forcing_10"):
        a, b = read_analysis(tmp_path / sub / "analysis.nc"), read_analysis(cli_dir / sub /
                                                                             "analysis.nc")
        assert all(np.array_equal(a[k], b[k], equal_nan=True) for k in a) and a.keys() == b.keys()
        sa, sb = (json.loads((d / sub / "summary.json").read_text()) for d in (tmp_path, cli_dir))
        assert {k: v for k, v in sa.items() if k != "wall_seconds"} == \
            {k: v for k, v in sb.items() if k != "wall_seconds"}
        assert_same_as_file(ds, tmp_path / sub, float(sub.split("_")[1]))
    assert "assimilate: method=letkf" in (tmp_path / "log.txt").read_text()


def test_nothing_is_written_without_out(tmp_path, monkeypatch):
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir(), tmp.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr("tempfile.tempdir", str(tmp))
    cfg = gk.load_config(TINY, "osse.forcings=[8.0]")
    truth = gk.nature(cfg)
    for method in ("noda", "nudging", "etkf", "letkf"):
        ds = gk.assimilate(cfg, method, nature=truth)
        assert np.isfinite(ds.rmse.values).all()
    assert not list(cwd.iterdir()) and not list(tmp.iterdir())


def test_api_errors(tmp_path):
    cfg = gk.load_config(TINY)
    with pytest.raises(gk.UserError, match="unknown method; valid methods: noda"):
        gk.assimilate(cfg, "kalman")
    with pytest.raises(gk.UserError, match="needs an output directory"):
        gk.assimilate(cfg, "letkf", resume=True)
    with pytest.raises(gk.UserError, match="run.checkpoint_every=5 needs an output directory"):
        gk.assimilate(gk.load_config(TINY, "run.checkpoint_every=5"), "letkf")
    wrong = gk.nature(gk.load_config(TINY, "model.nx=18"))
    with pytest.raises(gk.UserError, match="nature Dataset has 18 grid points but model.nx=16"):
        gk.assimilate(cfg, "letkf", nature=wrong)
    with pytest.raises(gk.UserError, match="expected the path of a nature.nc or an xarray"):
        gk.assimilate(cfg, "letkf", nature=42)
    with pytest.raises(gk.UserError, match="nature file .*missing.nc does not exist"):
        gk.assimilate(cfg, "letkf", nature=tmp_path / "missing.nc")
    with pytest.raises(gk.UserError, match="--data DIR is required"):
        gk.train(cfg, out=tmp_path / "train")
    assert (tmp_path / "train" / "error.txt").read_text().startswith("error: train: --data")


def test_a_registered_python_model_runs(tmp_path):
    """gk.register_dynamics: a model defined in this process, by name in the config; the
    built-in Lorenz-96 under another name gives the same numbers as "lorenz96"."""
    from genenkf_hpc.dynamics.lorenz96 import make_lorenz96

    gk.register_dynamics("my_l96", lambda **kw: make_lorenz96(**kw))
    assert "my_l96" in gk.dynamics_names()
    cfg = gk.load_config(TINY, "osse.forcings=[10.0]", "osse.cycles=12", "osse.burn_in=2")
    mine = gk.load_config(TINY, "osse.forcings=[10.0]", "osse.cycles=12", "osse.burn_in=2",
                          'model.dynamics="my_l96"')
    a, b = gk.assimilate(cfg, "etkf"), gk.assimilate(mine, "etkf")
    for name in FIELDS:
        np.testing.assert_array_equal(a[name].values, b[name].values)


def test_dataset_and_train_equal_the_cli(tmp_path):
    import torch

    tiny = ["dataset.trajectories=4", "dataset.steps=20", "dataset.shard_trajectories=2",
            "train.steps=2", "train.checkpoint_every=2", "run.progress=false"]
    cfg = gk.load_config(TINY, *tiny)
    data = gk.dataset(cfg, out=tmp_path / "api_data")
    assert data == tmp_path / "api_data"
    assert cli("dataset", "-c", TINY, *tiny, "--out", tmp_path / "cli_data") == 0
    shards = sorted(data.glob("shard_*.h5"))
    assert len(shards) == 2
    for shard in shards:
        with xr.open_dataset(shard) as a, xr.open_dataset(tmp_path / "cli_data" / shard.name) as b:
            xr.testing.assert_identical(a, b)
    ckpt = gk.train(cfg, data=data, out=tmp_path / "api_train", eval_states=0)
    assert ckpt == tmp_path / "api_train" / "checkpoints" / "latest.pt"
    assert cli("train", "-c", TINY, *tiny, "--data", data, "--out", tmp_path / "cli_train",
               "--eval-states", "0") == 0
    a = torch.load(ckpt, weights_only=True)["model"]
    b = torch.load(tmp_path / "cli_train" / "checkpoints" / "latest.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_campaign_equals_the_cli(tmp_path):
    import csv

    settings = ['campaign.methods=["noda", "nudging", "letkf"]', "osse.cycles=16"]
    table = gk.campaign(gk.load_config(TINY, *settings), out=tmp_path / "api")
    assert cli("campaign", "-c", TINY, *settings, "--out", tmp_path / "cli") == 0
    assert list(table.da_method.values) == ["noda", "nudging", "letkf"]
    assert table.rmse.dims == ("da_method", "forcing") and table.rmse.attrs["long_name"]
    assert (tmp_path / "api" / "results.csv").read_text().count("\n") == 7
    with open(tmp_path / "cli" / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6
    for row in rows:
        value = table.rmse.sel(da_method=row["method"], forcing=float(row["forcing_nature"]))
        assert float(value) == pytest.approx(float(row["rmse"]), rel=1e-12)

"""Every class of bad input: exit status 2, one `error:` line naming the culprit, no traceback,
and nothing that looks like a finished result (CONTRACT section 2; reliability issue)."""
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from testpaths import CONFIGS

TINY = str(CONFIGS / "tiny.toml")
CLI = [sys.executable, "-m", "genenkf_hpc"]


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_model):
    """Good and broken inputs, built once."""
    import netCDF4
    import torch

    d = tmp_path_factory.mktemp("inputs")
    proc = subprocess.run(CLI + ["nature", "-c", TINY, "--out", str(d / "nature")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    good = d / "nature" / "nature.nc"
    (d / "text.nc").write_text("this is not netCDF\n")
    with netCDF4.Dataset(d / "novars.nc", "w") as ds:
        ds.createDimension("x", 16)
        ds.createVariable("something", "f8", ("x",))[:] = 0.0
    nan = d / "nan.nc"
    nan.write_bytes(good.read_bytes())
    with netCDF4.Dataset(nan, "a") as ds:
        ds["obs"][0, 3, 0] = np.nan       # grid point 0 is observed
    (d / "random.pt").write_bytes(b"\x00\x01garbage" * 50)

    class Evil:
        def __reduce__(self):
            return (Path.touch, (d / "EXECUTED",))

    ckpt = torch.load(tiny_model, weights_only=True)
    ckpt["note"] = Evil()
    torch.save(ckpt, d / "evil.pt")
    wrong = torch.load(tiny_model, weights_only=True)
    wrong["arch"]["base_width"] = wrong["arch"]["base_width"] * 2
    torch.save(wrong, d / "wrong_arch.pt")
    torch.save({"model": {}, "step": 1}, d / "not_ours.pt")
    with open(d / "pickle.pt", "wb") as fh:
        pickle.dump({"a": 1}, fh)
    return {"good": good, "dir": d, "model": tiny_model}


def cases():
    A = ["assimilate", "-c", TINY, "run.progress=false"]
    G = A + ["--method", "genenkf"]
    return [
        # config values
        ("members", ["nature", "-c", TINY, "filter.members=1"], "filter.members=1"),
        ("inflation", A + ["filter.inflation=0.5"], "filter.inflation=0.5"),
        ("radius", A + ["filter.radius=0"], "filter.radius=0"),
        ("obs_interval vs nx", A + ["osse.obs_interval=17"], "osse.obs_interval=17"),
        ("forcings type", A + ["osse.forcings=8"], "osse.forcings=8"),
        ("forcings empty", A + ["osse.forcings=[]"], "osse.forcings=[]"),
        ("type", A + ["osse.cycles=many"], "osse.cycles='many'"),
        ("unknown key", A + ["filter.radious=3"], "filter.radious"),
        ("unknown section", A + ["filtre.radius=3"], "[filtre]"),
        ("rtps range", A + ["filter.rtps=1.5"], "filter.rtps=1.5"),
        ("burn-in", A + ["osse.burn_in=30"], "osse.burn_in=30"),
        ("unknown method", A + ["--method", "kalman"], "kalman"),
        ("bad toml", ["assimilate", "-c", "{dir}/text.nc"], "text.nc"),
        # files
        ("nature missing", A + ["--nature", "{dir}/nope.nc"], "nope.nc"),
        ("nature not netCDF", A + ["--nature", "{dir}/text.nc"], "text.nc"),
        ("nature wrong variables", A + ["--nature", "{dir}/novars.nc"], "novars.nc"),
        ("nature grid mismatch", A + ["--nature", "{good}", "model.nx=20"], "model.nx=20"),
        ("nature too short", A + ["--nature", "{good}", "osse.cycles=99"], "osse.cycles=99"),
        ("nature forcing absent", A + ["--nature", "{good}", "osse.forcings=[6.0]"], "6"),
        ("nature NaN obs", A + ["--nature", "{dir}/nan.nc"], "NaN"),
        ("nature obs_interval", A + ["--nature", "{good}", "osse.obs_interval=4"],
         "osse.obs_interval=4"),
        ("train data missing", ["train", "-c", TINY, "--data", "{dir}/nodata"], "nodata"),
        ("report nothing", ["report", "{dir}/nature"], "summary.json"),
        # checkpoints
        ("ckpt missing", G + ["--model", "{dir}/missing.pt"], "missing.pt"),
        ("ckpt garbage", G + ["--model", "{dir}/random.pt"], "random.pt"),
        ("ckpt unsafe pickle", G + ["--model", "{dir}/evil.pt"], "evil.pt"),
        ("ckpt plain pickle", G + ["--model", "{dir}/pickle.pt"], "pickle.pt"),
        ("ckpt wrong arch", G + ["--model", "{dir}/wrong_arch.pt"], "wrong_arch.pt"),
        ("ckpt not ours", G + ["--model", "{dir}/not_ours.pt"], "not_ours.pt"),
        ("ckpt grid", G + ["--model", "{model}", "model.nx=20"],
         "nx: model 16, experiment 20 (model.nx)"),
    ]


@pytest.mark.parametrize("name, argv, fragment", cases(), ids=[c[0] for c in cases()])
def test_bad_input(files, tmp_path, name, argv, fragment):
    argv = [a.format(dir=files["dir"], good=files["good"], model=files["model"]) for a in argv]
    out = tmp_path / "out"
    proc = subprocess.run(CLI + argv + ["--out", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in proc.stderr
    finished = [p for p in out.rglob("*") if p.name in ("summary.json", "analysis.nc",
                                                          "nature.nc", "latest.pt")]
    assert not finished, finished
    assert not (files["dir"] / "EXECUTED").exists()


def test_more_ranks_than_members_and_points_works(tmp_path):
    from mpi_utils import run_mpi

    proc = run_mpi(3, ["assimilate", "-c", TINY, "--method", "letkf",
                       "--out", str(tmp_path), "model.nx=4", "osse.obs_interval=1",
                       "filter.members=2", "osse.forcings=[8.0]", "osse.cycles=6",
                       "osse.burn_in=1", "filter.radius=1", "run.progress=false"], timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "summary.json").is_file()

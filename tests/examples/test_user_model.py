"""The user model of docs/dynamics.md (Lorenz 2005 model II, docs/examples/lorenz05.py), from
outside the package: its equations, and a run through nature, assimilate --method letkf,
dataset and train by the CLI (PYTHONPATH pointing at the example's folder) and by the API."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import genenkf_hpc as gk
from genenkf_hpc.dynamics.lorenz96 import Lorenz96
from genenkf_hpc.io.analysis_file import read_analysis

from testpaths import REPO

EXAMPLES = REPO / "docs" / "examples"
CONFIG = str(EXAMPLES / "lorenz05.toml")
# seconds-scale settings of the example: N = 40, K = 2 keeps N / K of the shipped N = 240, K = 8
SMALL = ["model.nx=40", "model.params={K = 2}", "model.spinup_steps=200", "osse.cycles=40",
         "osse.burn_in=10", "osse.obs_interval=2", "filter.members=8", "filter.radius=8.0",
         "dataset.trajectories=4", "dataset.steps=20", "dataset.spinup_steps=100",
         "dataset.shard_trajectories=2", "network.base_width=8", "network.multipliers=[1, 2]",
         "diffusion.timesteps=20", "generative.sampling_steps=4", "generative.members=4",
         "train.steps=2", "train.batch_size=4", "train.checkpoint_every=2", "train.val_every=0",
         "run.progress=false"]


@pytest.fixture
def lorenz05(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import lorenz05

    return lorenz05


def brute_force_bracket(x, K, F):
    """[X, X]_{K,n} - X_n + F by the double sum of Lorenz (2005) eq. (9), point by point."""
    N = len(x)
    J = K // 2
    weight = (lambda i: 0.5 if K % 2 == 0 and abs(i) == J else 1.0)
    out = np.empty(N)
    for n in range(N):
        s = sum(weight(i) * weight(j) * (-x[(n - 2 * K - i) % N] * x[(n - K - j) % N]
                                         + x[(n - K + j - i) % N] * x[(n + K + j) % N])
                for i in range(-J, J + 1) for j in range(-J, J + 1))
        out[n] = s / K ** 2 - x[n] + F
    return out


def test_model_ii_is_lorenz_2005_and_lorenz_96_for_k_1(lorenz05):
    x = 8.0 + 3.0 * np.random.default_rng(0).standard_normal((2, 30))
    for K in (2, 3, 4):
        m = lorenz05.model_ii(30, 0.025, 15.0, K)
        expected = np.stack([brute_force_bracket(row, K, 15.0) for row in x])
        np.testing.assert_allclose(m.tendency(x), expected, rtol=1e-12, atol=1e-12)
    one = lorenz05.model_ii(30, 0.05, 8.0, 1)
    np.testing.assert_allclose(one.tendency(x), Lorenz96(30, 0.05, 8.0).tendency(x),
                               rtol=1e-13, atol=1e-13)  # the same sum in another order
    assert one.halo == Lorenz96.halo and lorenz05.model_ii(240, 0.025, 15.0, 8).halo == (20, 12)


def test_the_docs_show_the_whole_example():
    text = (REPO / "docs" / "dynamics.md").read_text()
    listing = re.search(r"```python\n(\"\"\"Lorenz \(2005\) model II.*?)```", text, re.S)
    assert listing, "docs/dynamics.md lacks the listing of docs/examples/lorenz05.py"
    assert listing.group(1) == (EXAMPLES / "lorenz05.py").read_text()


def run_cli(*args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(EXAMPLES)])}
    return subprocess.run([sys.executable, "-m", "genenkf_hpc", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)


@pytest.mark.slow
def test_the_user_model_runs_through_the_cli_and_the_api(tmp_path, lorenz05):
    base = ["-c", CONFIG, *SMALL]
    for command, extra in (("nature", []), ("assimilate", ["--method", "letkf", "--nature",
                                                           tmp_path / "nature" / "nature.nc"]),
                           ("dataset", []),
                           ("train", ["--data", tmp_path / "dataset", "--eval-states", "0"])):
        proc = run_cli(command, *base, *extra, "--out", tmp_path / command)
        assert proc.returncode == 0, proc.stderr
    proc = run_cli("assimilate", *base, "--method", "noda", "--out", tmp_path / "noda")
    assert proc.returncode == 0, proc.stderr
    cli_letkf = read_analysis(tmp_path / "assimilate" / "analysis.nc")
    # data assimilation works on the user's model: the LETKF tracks the truth, the free run not
    assert cli_letkf["rmse"][10:].mean() < 0.3 * read_analysis(
        tmp_path / "noda" / "analysis.nc")["rmse"][10:].mean()
    with xr.open_dataset(tmp_path / "dataset" / "shard_00000.h5") as shard:
        assert shard.attrs["dynamics"] == "lorenz05_model_ii"
    assert (tmp_path / "train" / "checkpoints" / "latest.pt").is_file()

    # the API, the model given by its config name: the same truth and analysis
    cfg = gk.load_config(CONFIG, *SMALL)
    truth = gk.nature(cfg)
    with xr.open_dataset(tmp_path / "nature" / "nature.nc") as f:
        xr.testing.assert_identical(truth, f)
    ds = gk.assimilate(cfg, "letkf", nature=truth)
    for name in ("truth", "obs", "analysis_mean", "analysis_spread"):
        np.testing.assert_array_equal(ds[name].values[0], cli_letkf[name])
    np.testing.assert_array_equal(ds["rmse_series"].values[0], cli_letkf["rmse"])
    data = gk.dataset(cfg, out=tmp_path / "api_dataset")
    with xr.open_dataset(data / "shard_00000.h5") as a, \
            xr.open_dataset(tmp_path / "dataset" / "shard_00000.h5") as b:
        xr.testing.assert_identical(a, b)
    assert gk.train(cfg, data=data, out=tmp_path / "api_train", eval_states=0).is_file()

    # and registered from Python under a name of the user's choice: the same numbers
    gk.register_dynamics("lorenz05_ii", lorenz05.model_ii)
    named = gk.load_config(CONFIG, *SMALL, 'model.dynamics="lorenz05_ii"')
    again = gk.assimilate(named, "letkf")
    np.testing.assert_array_equal(again["analysis_mean"].values, ds["analysis_mean"].values)


def test_a_bad_user_parameter_is_exit_2(tmp_path):
    proc = run_cli("nature", "-c", CONFIG, "model.params={K = 2.5}", "--out", tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: lorenz05: K=2.5 must be a positive integer"
    assert not list(tmp_path.glob("nature.nc*"))
    proc = subprocess.run([sys.executable, "-m", "genenkf_hpc", "nature", "-c", CONFIG,
                           "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: model.dynamics='lorenz05:model_ii': cannot import "
                                  "module 'lorenz05'")

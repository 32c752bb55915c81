"""The Generative EnKF cycle: runs from a checkpoint of our own trainer, MPI == one process,
DDIB/variant options, and the Gaussian ablation."""
import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from testpaths import CONFIGS
from mpi_utils import run_mpi

TINY = ["-c", str(CONFIGS / "tiny.toml")]
CLI = [sys.executable, "-m", "genenkf_hpc"]


def cli(*args, timeout=600):
    proc = subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc


def assimilate(out, model, *extra, ranks=1):
    argv = ["assimilate", *TINY, "--method", "genenkf", "--model", str(model), "--out", str(out),
            "osse.forcings=[10.0]", "osse.cycles=12", "run.progress=false", *extra]
    if ranks == 1:
        cli(*argv)
    else:
        proc = run_mpi(ranks, argv, timeout=600)
        assert proc.returncode == 0, proc.stderr
    return xr.open_dataset(out / "analysis.nc"), json.loads((out / "summary.json").read_text())


def test_genenkf_writes_the_contract_outputs(tmp_path, tiny_model):
    ds, summary = assimilate(tmp_path / "g", tiny_model)
    for name in ["truth", "analysis_mean", "analysis_spread", "rmse", "spread"]:
        assert name in ds and np.all(np.isfinite(ds[name].values)), name
    assert np.all(np.isnan(ds.obs.values[:, 1::2])) and np.all(np.isfinite(ds.obs[:, ::2]))
    assert summary["method"] == "genenkf" and summary["members"] == 6
    assert summary["spread"] > 0
    # the shipped best variant is the default (CONTRACT section 8)
    settings = summary["settings"]
    assert (settings["mode"], settings["encoding"], settings["strength"]) == ("prior", "sdedit",
                                                                              0.15)
    assert settings["pseudo_inflation"] == 3.0 and settings["alpha"] == 1.0
    assert settings["adaptive_inflation"] == 0.05
    learnt = summary["pseudo_inflation"]  # the running value left its starting point
    assert learnt["initial"] == 3.0 and learnt["final"] != 3.0 and learnt["mean"] >= 1.0


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [2, 3])
# float32: a state's network output depends on how many states share the call (~5e-6 per
# draw, docs/diffusion.md; generative.fixed_batch removes it, tested below)
@pytest.mark.parametrize("precision, tol", [("float64", 1e-10), ("float32", 5e-5)])
def test_mpi_equals_one_process(tmp_path, tiny_model, ranks, precision, tol):
    # 6 members over 3 ranks, and 7 members over 2 (a count the ranks do not divide)
    members = "generative.members=7" if ranks == 2 else "generative.members=6"
    extra = [members, f"generative.precision={precision}"]
    one, _ = assimilate(tmp_path / "one", tiny_model, *extra)
    many, s = assimilate(tmp_path / "many", tiny_model, *extra, ranks=ranks)
    assert s["ranks"] == ranks
    for name in ["analysis_mean", "analysis_spread", "rmse", "spread"]:
        assert np.max(np.abs(one[name].values - many[name].values)) <= tol, name


@pytest.mark.mpi
def test_fixed_batches_make_float32_independent_of_the_rank_count(tmp_path, tiny_model):
    """generative.fixed_batch: float32 as reproducible as float64 (7 members over 3 ranks)."""
    extra = ["generative.members=7", "generative.precision=float32", "generative.fixed_batch=4"]
    one, _ = assimilate(tmp_path / "one", tiny_model, *extra)
    many, s = assimilate(tmp_path / "many", tiny_model, *extra, ranks=3)
    assert s["ranks"] == 3 and s["settings"]["fixed_batch"] == 4
    for name in ["analysis_mean", "analysis_spread", "rmse", "spread"]:
        assert np.max(np.abs(one[name].values - many[name].values)) <= 1e-10, name


@pytest.mark.mpi
def test_adaptive_inflation_is_independent_of_the_rank_count(tmp_path, tiny_model):
    """The innovation statistics are summed over every rank's points exactly: with fixed
    batches (float32 members the same bit for bit) the learnt inflation is too."""
    extra = ["generative.members=7", "generative.precision=float32", "generative.fixed_batch=4",
             "generative.adaptive_inflation=0.2"]
    one, s1 = assimilate(tmp_path / "one", tiny_model, *extra)
    many, s3 = assimilate(tmp_path / "many", tiny_model, *extra, ranks=3)
    assert s3["ranks"] == 3 and s1["pseudo_inflation"]["final"] != 3.0
    assert s1["pseudo_inflation"] == s3["pseudo_inflation"]
    for name in ["analysis_mean", "analysis_spread", "rmse", "spread"]:
        assert np.max(np.abs(one[name].values - many[name].values)) <= 1e-10, name


@pytest.mark.parametrize("obs_value, estimate", [(3.0, 8.0), (100.0, 50.0)])
def test_adaptive_inflation_moves_a_fraction_towards_the_innovation_estimate(obs_value,
                                                                             estimate):
    """Members of variance 1 about 0 at every point, observations obs_value with error variance
    1: this cycle's estimate is obs_value^2 - 1, bounded to 50. The grid is inflated by the
    value learnt before this cycle (2), and the running value moves a quarter of the way."""
    from genenkf_hpc.config import load_config
    from genenkf_hpc.cycling.base import CycleContext
    from genenkf_hpc.cycling.generative import GenerativeEnKF
    from genenkf_hpc.parallel.comm import SerialComm
    from genenkf_hpc.parallel.layout import Layout

    cfg = load_config(CONFIGS / "tiny.toml", ["generative.inflation=2.0",
                                              "generative.adaptive_inflation=0.25"])
    nx, k = cfg.model.nx, 4
    mask = np.arange(nx) % 2 == 0
    layout = Layout(SerialComm(), members=k, nx=nx, radius=cfg.filter.radius, mask=mask)
    ctx = CycleContext(cfg, SerialComm(), layout, mask, 1.0, dynamics=None)
    method = GenerativeEnKF(cfg)
    method.pseudo_inflation, method.inflation_series = 2.0, np.full(cfg.osse.cycles, np.nan)
    signs = np.array([1.0, -1.0, 1.0, -1.0])[:, None]
    members = np.sqrt(0.75) * signs * np.ones((k, nx))  # variance (ddof=1) exactly 1
    obs = np.where(mask, obs_value, np.nan)
    grid = layout.to_grid(members)
    np.testing.assert_allclose(method.adjust_grid(ctx, grid, obs, cycle=1),
                               np.sqrt(2.0) * grid, rtol=1e-14)
    assert method.inflation_series[0] == 2.0
    assert method.pseudo_inflation == pytest.approx(0.75 * 2.0 + 0.25 * estimate, rel=1e-12)


@pytest.mark.parametrize("extra", [
    ['generative.encoding="noise"'],
    ['generative.encoding="sdedit"', "generative.strength=0.5"],
    ["generative.use_ensemble_mean=false", "generative.alpha=0.5"],
    ["generative.strength=0.3", "generative.guidance=1.0"],
    ["generative.sampler=ddpm"],
])
def test_variants_run_and_differ(tmp_path, tiny_model, extra):
    base, _ = assimilate(tmp_path / "base", tiny_model)
    other, _ = assimilate(tmp_path / "other", tiny_model, *extra)
    assert np.all(np.isfinite(other.analysis_mean.values))
    assert not np.allclose(base.analysis_mean.values, other.analysis_mean.values)


def test_missing_model_is_a_user_error(tmp_path):
    proc = subprocess.run(CLI + ["assimilate", *TINY, "--method", "genenkf", "--out",
                                 str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "--model" in proc.stderr


def test_model_for_another_grid_is_refused(tmp_path, tiny_model):
    proc = subprocess.run(CLI + ["assimilate", *TINY, "--method", "genenkf", "--model",
                                 str(tiny_model), "--out", str(tmp_path), "model.nx=20"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "nx: model 16, experiment 20 (model.nx)" in proc.stderr


def test_gaussian_pseudo_members_are_centred_on_the_simulation():
    from genenkf_hpc.config import load_config
    from genenkf_hpc.cycling.generative import GaussianPseudo

    cfg = load_config(CONFIGS / "tiny.toml", ["generative.gaussian_scale=0.5"])
    method = GaussianPseudo(cfg)
    method.setup(None)
    state = np.linspace(-2, 2, cfg.model.nx)
    members = method.sample_members(np.arange(400), 3, state, None)
    assert members.shape == (400, cfg.model.nx)
    assert np.abs(members.mean(0) - state).max() < 0.35
    # the same member and cycle give the same draw whatever block it is drawn in
    np.testing.assert_array_equal(method.sample_members(np.array([5, 6]), 3, state, None),
                                  members[5:7])


def _method(model, mode):
    from genenkf_hpc.config import load_config
    from genenkf_hpc.cycling.generative import GenerativeEnKF
    from genenkf_hpc.parallel.comm import SerialComm

    cfg = load_config(CONFIGS / "tiny.toml", [f'generative.mode="{mode}"',
                                              'generative.encoding="sdedit"',
                                              "generative.strength=0.5"])
    method = GenerativeEnKF(cfg, str(model))

    class Ctx:  # what setup() reads
        nx = cfg.model.nx
        mask = np.arange(cfg.model.nx) % 2 == 0
        forcing_nature = 10.0
        comm = SerialComm()
        layout = None  # one process: the whole ring

    method.setup(Ctx())
    return method, cfg


@pytest.mark.parametrize("mode", ["prior", "posterior"])
def test_only_the_posterior_mode_sees_the_current_observation(tiny_model, tiny_posterior_model,
                                                              mode):
    """Prior mode: the members are conditioned on the observations before the analysis time,
    so changing the current one changes nothing (the LETKF uses it once); posterior mode: it
    changes the members (and the LETKF uses it a second time)."""
    method, cfg = _method(tiny_model if mode == "prior" else tiny_posterior_model, mode)
    nx, rows = cfg.model.nx, method.history_length()
    assert rows == method.bundle.seq_len + (1 if mode == "prior" else 0)
    g = np.random.default_rng(0)
    history = np.where(np.arange(nx) % 2 == 0, 8 + 3 * g.standard_normal((rows, nx)), np.nan)
    other = history.copy()
    other[-1, ::2] += 5.0  # another current observation
    state = 8 + 3 * g.standard_normal(nx)
    a = method.sample_members(np.arange(4), 5, state, history)
    b = method.sample_members(np.arange(4), 5, state, other)
    assert np.all(np.isfinite(a)) and a.std(axis=0).mean() > 0.1  # SDEdit: a real spread
    if mode == "prior":
        np.testing.assert_array_equal(a, b)
    else:
        assert np.abs(a - b).max() > 1e-3


def test_mode_must_match_the_model(tmp_path, tiny_posterior_model):
    proc = subprocess.run(CLI + ["assimilate", *TINY, "--method", "genenkf", "--model",
                                 str(tiny_posterior_model), "--out", str(tmp_path),
                                 'generative.mode="prior"'],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "obs_lag: model 0 (posterior mode), experiment 1 (prior mode) (generative.mode)" \
        in proc.stderr


@pytest.mark.mpi
def test_prior_mode_with_stochastic_encoding_mpi_equals_one_process(tmp_path, tiny_model):
    extra = ['generative.mode="prior"', 'generative.encoding="sdedit"', "generative.strength=0.5",
             "generative.members=7", "generative.precision=float64"]
    one, s1 = assimilate(tmp_path / "one", tiny_model, *extra)
    many, s2 = assimilate(tmp_path / "many", tiny_model, *extra, ranks=2)
    assert s1["settings"]["mode"] == "prior" and s2["ranks"] == 2
    assert s1["spread"] > 0
    for name in ["analysis_mean", "analysis_spread"]:
        assert np.max(np.abs(one[name].values - many[name].values)) <= 1e-10, name


@pytest.mark.parametrize("inflation", [1.0, 3.0])
def test_pseudo_inflation_scales_the_anomalies_about_their_mean(inflation):
    """generative.inflation with adaptive_inflation = 0: the members' mean is kept, every
    anomaly is multiplied by sqrt(inflation) (the pseudo-ensemble covariance is inflation times
    the sampled one) and the factor stays as it is."""
    from genenkf_hpc.config import load_config
    from genenkf_hpc.cycling.base import CycleContext
    from genenkf_hpc.cycling.generative import GenerativeEnKF
    from genenkf_hpc.parallel.comm import SerialComm
    from genenkf_hpc.parallel.layout import Layout

    cfg = load_config(CONFIGS / "tiny.toml", ["generative.members=5",
                                              f"generative.inflation={inflation}",
                                              "generative.adaptive_inflation=0"])
    mask = np.arange(cfg.model.nx) % 2 == 0
    layout = Layout(SerialComm(), members=5, nx=cfg.model.nx, radius=cfg.filter.radius,
                    mask=mask)
    ctx = CycleContext(cfg, SerialComm(), layout, mask, 1.0, dynamics=None)
    method = GenerativeEnKF(cfg)
    method.pseudo_inflation, method.inflation_series = inflation, np.full(cfg.osse.cycles, np.nan)
    g = np.random.default_rng(1)
    grid = layout.to_grid(g.normal(size=(5, cfg.model.nx)))
    out = method.adjust_grid(ctx, grid, np.where(mask, 10.0, np.nan), cycle=1)
    np.testing.assert_allclose(out.mean(axis=0), grid.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(np.cov(out, rowvar=False), inflation * np.cov(grid, rowvar=False),
                               atol=1e-12)
    assert method.pseudo_inflation == inflation  # innovations of 10 would have raised it


def test_recentre_puts_the_members_anomalies_around_the_simulation():
    """generative.recentre (configs/paper.toml): the mean becomes the simulation forecast,
    the anomalies are the network's."""
    from genenkf_hpc.config import load_config
    from genenkf_hpc.cycling.base import CycleContext
    from genenkf_hpc.cycling.generative import GenerativeEnKF
    from genenkf_hpc.parallel.comm import SerialComm
    from genenkf_hpc.parallel.layout import Layout

    cfg = load_config(CONFIGS / "tiny.toml", ["generative.members=5", "generative.recentre=true"])
    nx = cfg.model.nx
    layout = Layout(SerialComm(), members=5, nx=nx)
    ctx = CycleContext(cfg, SerialComm(), layout, np.ones(nx, bool), 1.0, dynamics=None)
    g = np.random.default_rng(3)
    block, state = g.normal(size=(5, nx)) + 4.0, g.normal(size=nx)
    out = GenerativeEnKF(cfg).adjust_members(ctx, block, state)
    np.testing.assert_allclose(out.mean(axis=0), state, atol=1e-12)
    np.testing.assert_allclose(out - out.mean(axis=0), block - block.mean(axis=0), atol=1e-12)

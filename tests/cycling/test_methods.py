"""One analysis of each method class (one process) equals the serial kernel of genenkf_hpc.da
on the whole grid: the decomposition only reorganises the same arithmetic."""
import numpy as np
import pytest

from assim_utils import TINY
from genenkf_hpc import osse, rng
from genenkf_hpc.config import load_config
from genenkf_hpc.dynamics.from_config import forecast_model
from genenkf_hpc.cycling.base import CycleContext
from genenkf_hpc.cycling.registry import method_class
from genenkf_hpc.da import enkf, etkf, letkf, nudging
from genenkf_hpc.parallel.comm import SerialComm
from genenkf_hpc.parallel.layout import Layout

CYCLE = 3


def _setup(name, *overrides):
    cfg = load_config(TINY, ["filter.members=7", "filter.rtps=0.3", *overrides])
    method = method_class(name)(cfg)
    mask = osse.obs_mask(cfg.model.nx, cfg.osse.obs_interval)
    t = Layout(SerialComm(), members=method.members(), nx=cfg.model.nx,
               radius=method.halo_radius(), mask=mask)
    ctx = CycleContext(cfg, SerialComm(), t, mask, cfg.osse.obs_sigma ** 2, forecast_model(cfg))
    state = method.initial_state(ctx)
    obs = np.where(mask, 8.0 + np.random.default_rng(1).standard_normal(cfg.model.nx), np.nan)
    return cfg, method, ctx, state, obs, np.flatnonzero(mask)


def test_letkf_class_equals_kernel():
    cfg, method, ctx, xb, obs, o = _setup("letkf")
    xa, diag = method.analyse(ctx, xb, obs, CYCLE, obs[None])
    f = cfg.filter
    want = letkf.letkf_analysis(xb, xb[:, o], obs[o], 1.0, np.arange(16), o, 16, f.radius,
                                taper=f.taper, inflation=f.inflation, rtps=f.rtps)
    assert np.allclose(xa, want, atol=1e-12) and np.allclose(diag.ensemble, want, atol=1e-12)


def test_etkf_class_equals_kernel():
    cfg, method, ctx, xb, obs, o = _setup("etkf")
    xa, _ = method.analyse(ctx, xb, obs, CYCLE, obs[None])
    want = etkf.etkf_analysis(xb, xb[:, o], obs[o], 1.0, inflation=cfg.filter.inflation,
                              rtps=cfg.filter.rtps)
    assert np.allclose(xa, want, atol=1e-12)


@pytest.mark.parametrize("center", [True, False])
def test_enkf_class_equals_kernel_with_member_streams(center):
    cfg, method, ctx, xb, obs, o = _setup("enkf", "filter.rtps=0.0",
                                          f"filter.center_perturbations={str(center).lower()}")
    xa, _ = method.analyse(ctx, xb, obs, CYCLE, obs[None])
    eps = np.stack([rng.stream(cfg.osse.seed, rng.Purpose.ENKF_OBS_PERTURBATION, m, CYCLE)
                    .standard_normal(o.size) for m in range(7)])
    if center:
        eps = enkf.center_perturbations(eps)
    want = enkf.enkf_analysis(xb, xb[:, o], obs[o], 1.0, eps, inflation=cfg.filter.inflation)
    assert np.allclose(xa, want, atol=1e-12)


def test_simulation_methods():
    cfg, method, ctx, x, obs, o = _setup("nudging")
    assert x.shape == (16,) and method.members() == 1
    xa, diag = method.analyse(ctx, x, obs, CYCLE, obs[None])
    assert np.array_equal(xa, nudging.nudge(x, obs, ctx.mask, cfg.nudging.alpha))
    assert diag.ensemble is None and np.array_equal(diag.mean, xa)
    cfg, method, ctx, x, obs, o = _setup("noda")
    xa, diag = method.analyse(ctx, x, obs, CYCLE, obs[None])
    assert np.array_equal(xa, x)

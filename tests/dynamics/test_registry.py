"""Dynamics by name: built-ins, registration from Python, 'module:factory' from a config, and
one clear UserError for each way a plug-in can be wrong."""
import numpy as np
import pytest

from genenkf_hpc.config import load_config
from genenkf_hpc.dynamics import build_dynamics, dynamics_names, register_dynamics
from genenkf_hpc.dynamics.from_config import forecast_model, nature_clock, nature_model
from genenkf_hpc.errors import UserError

import plugin_models


def test_builtins_are_registered():
    assert {"lorenz96", "lorenz96_two_scale"} <= set(dynamics_names())
    m = build_dynamics("lorenz96", nx=40, dt=0.05, forcing=8.0)
    assert (m.nx, m.dt, m.halo, m.state_size) == (40, 0.05, (2, 1), 40)


def test_module_factory_from_a_config_and_its_mass_budget():
    cfg = load_config(None, ['model.dynamics="plugin_models:make"', "model.nx=12",
                             "model.forcing=0.25", "model.params={kappa=0.3}"])
    m = forecast_model(cfg)
    assert isinstance(m, plugin_models.Diffusion1D) and m.kappa == 0.3
    u = np.random.default_rng(0).normal(size=12)
    # diffusion conserves the mean; the forcing raises it by F per unit time (RK4 is exact
    # for this linear mean equation)
    out = m.integrate(u, 10)
    np.testing.assert_allclose(out.mean(), u.mean() + 0.25 * 10 * m.dt, rtol=1e-12)


def test_register_from_python():
    register_dynamics("diffusion_test", plugin_models.make)
    m = build_dynamics("diffusion_test", nx=5, dt=0.1, forcing=0.0)
    assert m.nx == 5


@pytest.mark.parametrize("name, message", [
    ("no_such_model", "unknown dynamics"),
    ("no_such_module_xyz:make", "cannot import module 'no_such_module_xyz'"),
    ("plugin_models:missing", "has no attribute 'missing'"),
    ("plugin_models:raises_on_import", "rejected its arguments"),
    ("plugin_models:wrong_size", "nx=13, asked for 12"),
    ("plugin_models:not_a_model", "lacks nx, dt, step"),
])
def test_each_plugin_error_names_the_key_and_the_model(name, message):
    with pytest.raises(UserError, match="model.dynamics") as info:
        build_dynamics(name, nx=12, dt=0.1, forcing=0.0)
    assert message in str(info.value)


def test_unknown_parameter_is_refused():
    with pytest.raises(UserError, match="rejected its arguments"):
        build_dynamics("lorenz96", nx=8, dt=0.05, forcing=8.0, params={"gamma": 1.0})


def test_nature_model_and_its_clock():
    cfg = load_config(None, ['nature.dynamics="lorenz96_two_scale"', "nature.dt=0.005",
                             "nature.params={J=4}", "model.nx=8", "osse.steps_per_cycle=2",
                             "model.spinup_steps=30"])
    truth = nature_model(cfg, 10.0)
    assert truth.state_size == 8 * 5 and truth.forcing == 10.0
    clock = nature_clock(cfg)
    assert (clock.steps_per_cycle, clock.spinup_steps) == (20, 300)
    same = load_config(None, ["model.nx=8"])
    assert nature_model(same, 6.0).forcing == 6.0 and nature_clock(same).steps_per_cycle == 1


def test_nature_time_step_must_divide_the_cycle():
    with pytest.raises(UserError, match="nature.dt=0.03 does not divide"):
        load_config(None, ['nature.dynamics="lorenz96_two_scale"', "nature.dt=0.03"])

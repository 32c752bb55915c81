"""Two-scale Lorenz-96 (Lorenz 1996): the coupling term, the energy budget, and consistency of
the slow and fast scales with the single-scale model."""
import numpy as np
import pytest

from genenkf_hpc.dynamics import build_dynamics
from genenkf_hpc.dynamics.lorenz96 import Lorenz96
from genenkf_hpc.dynamics.two_scale import Lorenz96TwoScale


def model(**kw):
    args = dict(nx=6, dt=0.005, forcing=10.0, J=4, h=1.0, b=10.0, c=10.0)
    args.update(kw)
    return Lorenz96TwoScale(**args)


def state(m, seed=0):
    return m.random_state(np.random.default_rng(seed)) + np.random.default_rng(seed + 1) \
        .normal(0, 0.5, m.state_size)


def test_tendency_against_a_hand_computation_point_by_point():
    m = model()
    s = state(m)
    K, J = m.nx, m.J
    X, Y = s[:K], s[K:].reshape(K, J)  # Y[k, j] = Y_{j,k}
    ring = s[K:]
    hcb = m.h * m.c / m.b
    dX = [-X[k - 1] * (X[k - 2] - X[(k + 1) % K]) - X[k] + m.forcing - hcb * Y[k].sum()
          for k in range(K)]
    n = K * J
    dY = [-m.c * m.b * ring[(i + 1) % n] * (ring[(i + 2) % n] - ring[i - 1]) - m.c * ring[i]
          + hcb * X[i // J] for i in range(n)]
    np.testing.assert_allclose(m.tendency(s), np.concatenate([dX, dY]), rtol=0, atol=1e-12)


def test_coupling_term_is_hc_over_b_times_the_sum_of_each_slow_points_fast_variables():
    m = model(h=0.7, c=8.0, b=5.0)
    s = state(m, 3)
    Y = s[m.nx:].reshape(m.nx, m.J)
    np.testing.assert_allclose(m.coupling(s[m.nx:]), 0.7 * 8.0 / 5.0 * Y.sum(axis=1), atol=1e-13)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_energy_budget(seed):
    """X . dX + Y . dY = -|X|^2 - c |Y|^2 + F sum X: advection conserves energy and the coupling
    terms exchange it between the scales without creating any."""
    m = model(c=7.0)
    s = state(m, seed)
    X, Y = m.split(s)
    budget = -np.sum(X ** 2) - m.c * np.sum(Y ** 2) + m.forcing * np.sum(X)
    np.testing.assert_allclose(np.dot(s, m.tendency(s)), budget, rtol=1e-12)


def test_without_coupling_the_slow_scale_is_the_single_scale_model():
    m = model(h=0.0)
    s = state(m)
    single = Lorenz96(m.nx, m.dt, m.forcing)
    two = m.integrate(s, 50)
    np.testing.assert_allclose(two[:m.nx], single.integrate(s[:m.nx], 50), rtol=0, atol=1e-12)
    assert np.array_equal(m.observable(two), two[:m.nx])


def test_fast_variables_relax_to_the_forced_equilibrium_when_their_advection_is_off():
    """From a uniform state the advection terms vanish (Y_{j+2} - Y_{j-1} = 0 and likewise for
    X), so the uniform state stays uniform and settles where both scales balance: Y = (h / b) X,
    the fixed point of dY/dt = -c Y + (h c / b) X, and -X + F - (h c / b) J Y = 0."""
    m = model()
    K, J = m.nx, m.J
    X = np.full(K, 3.0)
    s = np.concatenate([X, np.zeros(K * J)])
    out = m.integrate(s, 2000)  # 10 time units = 100 fast relaxation times
    Yeq = out[K:]
    assert np.allclose(Yeq, Yeq[0]) and np.allclose(out[:K], out[0])
    Xeq = out[0]
    np.testing.assert_allclose(Yeq[0], m.h / m.b * Xeq, rtol=1e-6)
    np.testing.assert_allclose(Xeq, m.forcing / (1 + m.h ** 2 * m.c * J / m.b ** 2), rtol=1e-6)


def test_registered_and_built_from_config_names():
    m = build_dynamics("lorenz96_two_scale", nx=8, dt=0.005, forcing=10.0, params={"J": 5})
    assert m.state_size == 8 * 6 and m.halo is None
    x = m.integrate(m.random_state(np.random.default_rng(0)), 200)
    assert np.all(np.isfinite(x)) and np.std(x[:8]) > 0.5

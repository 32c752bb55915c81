import numpy as np
import pytest

from genenkf_hpc.dynamics import lorenz96 as l96


def tendency_loop(x, forcing):
    n = len(x)
    return np.array([(x[(i + 1) % n] - x[(i - 2) % n]) * x[(i - 1) % n] - x[i] + forcing
                     for i in range(n)])


def test_tendency_matches_the_equation_point_by_point():
    x = np.random.default_rng(0).normal(size=7)
    np.testing.assert_allclose(l96.tendency(x, 8.0), tendency_loop(x, 8.0), rtol=0, atol=1e-13)


def test_rk4_step_matches_a_hand_computed_step():
    x = np.array([1.0, 2.0, -1.0, 0.5, 3.0])
    f, dt = 8.0, 0.05
    k1 = tendency_loop(x, f)
    k2 = tendency_loop(x + dt / 2 * k1, f)
    k3 = tendency_loop(x + dt / 2 * k2, f)
    k4 = tendency_loop(x + dt * k3, f)
    expected = x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    np.testing.assert_allclose(l96.rk4_step(x, f, dt), expected, rtol=0, atol=1e-13)


def test_zero_state_with_zero_forcing_stays_zero():
    assert np.all(l96.integrate(np.zeros((3, 10)), 0.0, 0.05, 50) == 0.0)


def test_uniform_state_x_equal_f_is_a_fixed_point():
    x = np.full(12, 8.0)
    np.testing.assert_allclose(l96.integrate(x, 8.0, 0.05, 20), x, atol=1e-12)


@pytest.mark.parametrize("shift", [1, 3, -2])
def test_translation_equivariance(shift):
    x = np.random.default_rng(1).normal(8, 1, size=(4, 9))
    a = l96.integrate(np.roll(x, shift, axis=-1), 8.0, 0.05, 10)
    b = np.roll(l96.integrate(x, 8.0, 0.05, 10), shift, axis=-1)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_batched_members_and_forcings_equal_separate_runs():
    rng = np.random.default_rng(2)
    x = rng.normal(8, 1, size=(3, 2, 8))          # (forcings, members, nx)
    forcing = np.array([5.0, 8.0, 11.0])[:, None, None]
    batched = l96.integrate(x, forcing, 0.05, 15)
    for i, f in enumerate([5.0, 8.0, 11.0]):
        for m in range(2):
            np.testing.assert_array_equal(batched[i, m], l96.integrate(x[i, m], f, 0.05, 15))


def test_inputs_are_not_modified():
    x = np.random.default_rng(3).normal(size=(2, 6))
    copy = x.copy()
    l96.integrate(x, 8.0, 0.05, 3)
    l96.trajectory(x, 8.0, 0.05, 3)
    np.testing.assert_array_equal(x, copy)


def test_trajectory_equals_repeated_integration():
    x = np.random.default_rng(4).normal(8, 1, size=6)
    traj = l96.trajectory(x, 8.0, 0.05, 6, every=2)
    assert traj.shape == (3, 6)
    np.testing.assert_allclose(traj[-1], l96.integrate(x, 8.0, 0.05, 6), atol=1e-12)


def test_attractor_statistics_f8_n40():
    # Long-run climatology of L96 with F = 8, N = 40: mean about 2.3, std about 3.6.
    x0 = 8.0 + np.random.default_rng(5).normal(size=(8, 40))
    x = l96.integrate(x0, 8.0, 0.05, 500)
    traj = l96.trajectory(x, 8.0, 0.05, 4000, every=2)
    assert abs(traj.mean() - 2.3) < 0.1
    assert abs(traj.std() - 3.6) < 0.1


def test_standard_initial_state():
    x = l96.standard_initial_state(40, 8.0)
    assert x[19] == pytest.approx(8.008) and np.all(np.delete(x, 19) == 8.0)

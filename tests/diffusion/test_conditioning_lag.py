"""Prior and posterior mode in training: the condition ends ``obs_lag`` states before the
state the network learns to generate (states are labelled by their time index here, so every
row can be checked exactly)."""
import numpy as np
import pytest

from genenkf_hpc.diffusion.conditioning import Normaliser
from genenkf_hpc.diffusion.schedule import Schedule
from genenkf_hpc.errors import UserError
from genenkf_hpc.training import data as tdata
from genenkf_hpc.training.validation import held_out_cases

NX, STEPS, S = 6, 30, 3


def labelled_states():
    """(2 trajectories, STEPS, NX): state value = 100 * trajectory + time index."""
    t = np.arange(STEPS, dtype=float)[None, :, None]
    return np.broadcast_to(100.0 * np.arange(2)[:, None, None] + t, (2, STEPS, NX)).copy()


@pytest.mark.parametrize("lag", [0, 1])
def test_batch_rows_end_lag_states_before_the_target(lag):
    states = labelled_states()
    norm = Normaliser(0.0, 200.0)
    mask = np.arange(NX) % 2 == 0
    maker = tdata.BatchMaker(states, norm, mask, 0.0, S, Schedule(10), "cpu", lag=lag)
    gb = tdata.draw_global_batch(0, 3, 64, 2, STEPS, S, NX, 10, 0.0, lag=lag)
    assert gb.time.min() >= S - 1 + lag
    inp = maker.inputs(gb, 0, 64)
    x0 = norm.inverse(inp["x0"][:, 0, 0].double().numpy())
    np.testing.assert_allclose(x0, 100 * gb.traj + gb.time, atol=1e-3)
    obs = norm.inverse(inp["cond"][:, :S, 0].double().numpy())  # observed point 0, S rows
    expected = (100 * gb.traj + gb.time)[:, None] - lag + np.arange(-S + 1, 1)[None]
    np.testing.assert_allclose(obs, expected, atol=1e-3)
    assert np.all(inp["cond"][:, S:, 1].numpy() == 0)  # point 1 unobserved


@pytest.mark.parametrize("lag", [0, 1])
def test_held_out_cases_follow_the_same_convention(lag):
    states = labelled_states()
    mask = np.ones(NX, dtype=bool)
    cases = held_out_cases(states, 20, S, mask, 0.0, seed=1, which=0, lag=lag)
    newest = cases.obs[:, -1, 0]
    np.testing.assert_allclose(cases.truth[:, 0] - newest, lag)
    np.testing.assert_allclose(np.diff(cases.obs[:, :, 0], axis=1), 1.0)


def test_history_longer_than_the_trajectories_is_refused():
    with pytest.raises(UserError, match="obs_lag=1"):
        tdata.draw_global_batch(0, 0, 4, 2, S, S, NX, 10, 0.0, lag=1)

"""Periodic distance, tapers and the local-observation table against brute force."""
import numpy as np
import pytest

from genenkf_hpc.da.localization import (gaspari_cohn, local_obs_table, periodic_distance,
                                         taper_weights)
from genenkf_hpc.errors import UserError


def test_periodic_distance_wraps_and_broadcasts():
    assert periodic_distance(1, 39, 40) == 2
    assert periodic_distance(39, 1, 40) == 2
    assert periodic_distance(0, 20, 40) == 20
    d = periodic_distance(np.arange(4)[:, None], np.array([0, 3]), 4)
    np.testing.assert_array_equal(d, [[0, 1], [1, 2], [2, 1], [1, 0]])


def test_gaspari_cohn_values_and_shape():
    c = 2.0
    assert gaspari_cohn(0.0, c) == 1.0
    assert gaspari_cohn(2 * c, c) == 0.0
    assert gaspari_cohn(5 * c, c) == 0.0
    # both branches give 5/24 at z = 1 (continuity, GC99 eq. 4.10)
    np.testing.assert_allclose(gaspari_cohn(c, c), 5.0 / 24.0, rtol=1e-14)
    np.testing.assert_allclose(gaspari_cohn(np.nextafter(c, 3 * c), c), 5.0 / 24.0, rtol=1e-12)
    d = np.linspace(0.0, 2.5 * c, 2001)
    w = gaspari_cohn(d, c)
    assert np.all(np.diff(w) <= 0.0), "monotone non-increasing"
    assert np.all((w >= 0.0) & (w <= 1.0))
    assert np.all(w[d < 2 * c] > 0.0) and np.all(w[d >= 2 * c] == 0.0)


def test_taper_weights_box_and_radius_convention():
    d = np.array([0.0, 3.9, 4.0, 4.1])
    np.testing.assert_array_equal(taper_weights(d, 4.0, "box"), [1, 1, 1, 0])
    gc = taper_weights(d, 4.0, "gaspari_cohn")  # half-width radius / 2: zero at the radius
    assert gc[0] == 1.0 and gc[1] > 0.0 and gc[2] == 0.0 and gc[3] == 0.0
    with pytest.raises(UserError, match="taper='tent'"):
        taper_weights(d, 4.0, "tent")
    with pytest.raises(UserError, match="radius"):
        taper_weights(d, 0.0, "box")


def brute_force_table(points, obs, nx, radius, taper):
    rows = []
    for x in points:
        row = {}
        for j, y in enumerate(obs):
            w = float(taper_weights(periodic_distance(x, y, nx), radius, taper))
            if w > 0:
                row[j] = w
        rows.append(row)
    return rows


@pytest.mark.parametrize("taper", ["box", "gaspari_cohn"])
@pytest.mark.parametrize("radius", [0.5, 1.0, 3.0, 4.0, 9.5, 10.0, 25.0])
def test_local_table_matches_brute_force(taper, radius):
    rng = np.random.default_rng(3)
    nx = 20
    cases = [
        (np.arange(nx), np.arange(0, nx, 2)),  # regular
        (rng.permutation(nx)[:7], rng.permutation(nx)[:11]),  # unsorted subsets (halo-like)
        (np.arange(5, 12), np.array([3, 3, 19, 0, 7, 7, 12.5])),  # duplicates, float coords
        (np.arange(nx), np.array([10])),  # most points see no observation
    ]
    for points, obs in cases:
        index, weight = local_obs_table(points, obs, nx, radius, taper)
        expected = brute_force_table(points, obs, nx, radius, taper)
        assert index.shape == weight.shape
        assert index.shape[1] == max(len(r) for r in expected)
        for i, row in enumerate(expected):
            got = {int(j): w for j, w in zip(index[i], weight[i]) if w > 0}
            assert got.keys() == row.keys()
            for j in row:
                np.testing.assert_allclose(got[j], row[j], rtol=1e-14)
            n = len(row)
            assert np.all(weight[i, :n] > 0) and np.all(weight[i, n:] == 0)
            assert np.all(index[i, n:] == 0)


def test_local_counts_for_dense_observations():
    pts = np.arange(40)
    assert local_obs_table(pts, pts, 40, 4.0, "box")[0].shape == (40, 9)
    assert local_obs_table(pts, pts, 40, 4.0, "gaspari_cohn")[0].shape == (40, 7)
    index, weight = local_obs_table(pts, pts[::2], 40, 4.0, "box")
    assert index.shape == (40, 5)


def test_local_table_empty_inputs():
    index, weight = local_obs_table(np.arange(5), np.array([]), 10, 2.0, "box")
    assert index.shape == (5, 0) and weight.shape == (5, 0)

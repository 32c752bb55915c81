"""The matmul-only inverse square root against LAPACK eigh."""
import numpy as np
import pytest

from genenkf_hpc.da.matfun import diagonal_view, inv_sqrtm, matmul_count, schedule


@pytest.mark.parametrize("scale", [1e-6, 0.1, 1.0, 10.0, 1e3, 1e6])
@pytest.mark.parametrize("m, rank", [(1, 1), (7, 7), (9, 4), (12, 12)])
def test_inv_sqrtm_matches_eigh(scale, m, rank):
    rng = np.random.default_rng(m + rank)
    f = rng.standard_normal((50, m, rank)) * scale * rng.uniform(0.1, 1.0, (50, 1, 1))
    b = np.eye(m) + f @ f.transpose(0, 2, 1)  # I + PSD, possibly singular PSD part
    lam, vec = np.linalg.eigh(b)
    ref = (vec / np.sqrt(lam)[:, None, :]) @ vec.transpose(0, 2, 1)
    z, orders = inv_sqrtm(b)
    # both sides carry the conditioning error eps * cond(B) (||Z|| <= 1); checked against 60-digit
    # mpmath: the iteration is as accurate as eigh or better, up to cond(B) = 1e13
    cond = lam.max() / lam.min()
    eps = np.finfo(float).eps
    np.testing.assert_allclose(z, ref, rtol=0, atol=20 * eps * cond + 1e-15)
    np.testing.assert_allclose(z @ b @ z, np.broadcast_to(np.eye(m), b.shape),
                               atol=20 * eps * cond + 1e-14)
    assert orders == schedule(steps_ratio(b))


def steps_ratio(b):
    """The spectral ratio bound inv_sqrtm uses (recomputed here to check the schedule)."""
    c = b - np.eye(b.shape[-1])
    upper = 1.0 + np.sqrt(np.linalg.norm(c @ c, axis=(1, 2)))
    lam = np.linalg.eigvalsh(b)
    tol = 100 * np.finfo(float).eps * lam[:, -1]
    assert np.all(lam[:, -1] <= upper + tol) and np.all(lam[:, 0] >= 1 - tol)
    return float(upper.max())


def test_inv_sqrtm_of_identity_and_input_untouched():
    b = np.broadcast_to(np.eye(5), (3, 5, 5)).copy()
    z, _ = inv_sqrtm(b)
    np.testing.assert_allclose(z, b, atol=1e-15)
    np.testing.assert_array_equal(b, np.eye(5)[None].repeat(3, 0))


def test_step_counts_and_diagonal_view():
    counts = [len(schedule(r)) for r in (1.0, 1.5, 3.0, 30.0, 1e4, 1e8)]
    assert counts == [0, 3, 4, 6, 11, 18]
    assert schedule(3.0) == [3, 3, 3, 2] and schedule(1.5) == [3, 3, 3]
    # B^2, then 1 (first step), 4 per middle third-order step, 2 for a last quadratic step
    assert matmul_count([3, 3, 3, 2]) == 1 + 1 + 4 + 4 + 2
    assert matmul_count([3, 3, 3]) == 1 + 1 + 4 + 3 and matmul_count([]) == 1
    a = np.zeros((2, 3, 3))
    diagonal_view(a)[...] += 1.0
    np.testing.assert_array_equal(a, np.broadcast_to(np.eye(3), (2, 3, 3)))

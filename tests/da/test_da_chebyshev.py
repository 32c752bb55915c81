"""Chebyshev / Paterson-Stockmeyer functions of I + PSD matrices against eigendecompositions."""
import numpy as np
import pytest
from numpy.polynomial import chebyshev as npcheb

from genenkf_hpc.da import chebyshev as ch


def reference(c, v):
    """f(I + C) v for both functions, by LAPACK eigh: (nb, 2, p)."""
    lam, vec = np.linalg.eigh(np.eye(c.shape[-1]) + c)
    coords = np.einsum("npi,np->ni", vec, v)
    out = [np.einsum("npi,ni->np", vec, f(lam) * coords)
           for f in (ch.inverse, ch.inverse_plus_root)]
    return np.stack(out, axis=1)


def random_psd(rng, nb, p, rank, scale):
    f = rng.standard_normal((nb, p, rank)) * rng.uniform(0.2, 1.0, (nb, 1, 1))
    c = f @ f.transpose(0, 2, 1)
    # rescale so that the largest eigenvalue in the batch is `scale`
    return c * (scale / np.linalg.eigvalsh(c)[:, -1].max())


@pytest.mark.parametrize("scale", [1e-9, 0.05, 0.5, 2.0, 6.0, 12.0])
@pytest.mark.parametrize("p, rank", [(1, 1), (4, 2), (9, 9), (13, 5)])
def test_apply_matches_eigendecomposition(scale, p, rank):
    rng = np.random.default_rng(p * 100 + rank)
    nb = 37
    c = random_psd(rng, nb, p, rank, scale)
    v = rng.standard_normal((nb, p))
    upper = float(ch.spectral_upper(c, c @ c).max())
    plan = ch.plan(upper)
    assert plan is not None and plan.degree <= ch.MAX_DEGREE
    got = ch.apply(plan, c, v, ch.Buffers(64, p, 2))  # buffers larger than the block
    want = reference(c, v)
    assert got.shape == (2, p, nb)
    scale_v = np.abs(v).max()
    np.testing.assert_allclose(got.transpose(2, 0, 1), want, rtol=0, atol=2e-14 * scale_v)


def test_block_lengths_cover_two_four_and_eight():
    lengths = {ch.plan(u).s for u in (1.0 + 1e-9, 1.05, 3.0, 14.0)}
    assert lengths == {2, 4, 8}
    for u in (1.0 + 1e-9, 1.05, 3.0, 14.0):
        pl = ch.plan(u)
        assert pl.s * pl.nq >= pl.degree + 1 and pl.coefficients.shape == (2, pl.nq, pl.s)


@pytest.mark.parametrize("s", [2, 3, 4, 8])
@pytest.mark.parametrize("deg", [0, 1, 7, 8, 17, 40])
def test_mixed_basis_reproduces_the_chebyshev_polynomials(s, deg):
    x = np.linspace(-1.0, 1.0, 23)
    t = [npcheb.chebval(x, np.eye(max(s, deg) + 1)[j]) for j in range(max(s, deg) + 1)]
    conv = ch.mixed_basis(deg, s)
    for j in range(deg + 1):
        got = sum(conv[j, q, r] * t[s] ** q * t[r]
                  for q in range(conv.shape[1]) for r in range(s))
        # exact identity; the terms grow with q (up to 1e5 for s = 2, deg = 40), cancelling
        np.testing.assert_allclose(got, t[j], rtol=0, atol=1e-15 * np.abs(conv[j]).sum())


def test_plans_are_well_conditioned():
    """The coefficients in the Y^q T_r basis sum to ~1 in absolute value for every interval a
    plan covers: the decay of the Chebyshev coefficients outpaces the growth of the basis
    change, so evaluating the polynomial costs no digits (|Y^q T_r| <= 1 on the spectrum)."""
    u = 1.0 + 2.0**-20
    while (pl := ch.plan(u)) is not None:
        assert np.abs(pl.coefficients).sum(axis=(1, 2)).max() < 1.5
        u = 1.0 + 1.3 * (u - 1.0) + 1e-3
    assert u > 13.0  # plans up to a spectral ratio of ~14


@pytest.mark.parametrize("upper", [1.0 + 1e-6, 1.3, 2.0, 4.5, 9.0, 14.0])
def test_truncated_series_reach_round_off(upper):
    pl = ch.plan(upper)
    x = np.linspace(1.0, pl.upper, 2001)
    t = (x - pl.m) / pl.h
    for name in ("inverse", "inverse_plus_root"):
        f = ch.FUNCTIONS[name]
        coef = ch.chebyshev_coefficients(f, 1.0, pl.upper, pl.degree + 1)
        # the plan's series (from more points, then truncated) evaluated by numpy
        series = ch.chebyshev_coefficients(f, 1.0, pl.upper,
                                           ch.degree_bound(pl.upper) + 8)[: pl.degree + 1]
        # truncation below 1.1e-16; the rest is float64 evaluation (Clenshaw) round-off
        assert np.max(np.abs(npcheb.chebval(t, series) - f(x))) <= 2e-15
        assert np.max(np.abs(npcheb.chebval(t, coef) - f(x))) <= 3e-15


def test_intervals_round_up_onto_a_shared_grid():
    for u in (1.0, 1.0 + 1e-12, 1.37, 2.0, 5.5, 13.9):
        end = ch.interval_end(u)
        assert end >= u and end >= 1.0 + 2.0**-20
        assert end <= 1.0 + max(u - 1.0, 2.0**-20) * 2.0 ** (1 / 16) * (1 + 1e-12)
    assert ch.plan(2.0) is ch.plan(1.999)  # same grid cell: one cached plan
    assert ch.plan(1e4) is None and ch.plan(30.0) is None  # the matrix iteration's domain


def test_inputs_untouched_and_buffers_reused_for_smaller_blocks():
    rng = np.random.default_rng(5)
    c = random_psd(rng, 20, 6, 6, 3.0)
    v = rng.standard_normal((20, 6))
    c0, v0 = c.copy(), v.copy()
    plan = ch.plan(float(ch.spectral_upper(c, c @ c).max()))
    buffers = ch.Buffers(20, 6, 2)
    full = ch.apply(plan, c, v, buffers).copy()
    part = ch.apply(plan, c[:7], v[:7], buffers)
    np.testing.assert_allclose(part, full[..., :7], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(c, c0)
    np.testing.assert_array_equal(v, v0)


def test_flop_count_grows_with_the_degree():
    assert ch.plan(1.2).flops(9) < ch.plan(3.0).flops(9) < ch.plan(12.0).flops(9)

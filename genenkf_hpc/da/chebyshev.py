"""Functions of a batch of ``B = I + C`` matrices (``C`` PSD) applied to vectors, by Chebyshev
expansion evaluated with few batched products (Paterson & Stockmeyer 1973).

The observation-space LETKF needs, per grid point, two functions of ``B`` (order p ~ 9) applied
to one vector ``c``: ``B^-1 c`` (the mean increment is ``d . B^-1 c / a``) and
``(B + B^{1/2})^-1 c`` (the perturbations). A batched p x p ``matmul`` costs ~0.1 us per matrix
and a matrix-vector product ~0.03-0.06 us, whatever their flops (per-call overhead), so the
cost is the number of batched operations, not the flop count. Here:

1. ``X = (B - m I) / h`` maps an interval ``[1, upper]`` holding every spectrum in the block to
   ``[-1, 1]`` (``upper`` a rigorous per-point bound, the block maximum is used).
2. ``f(x) ~ sum_j c_j T_j(X)``, Chebyshev coefficients by interpolation (scalar work, cached per
   interval). Both functions are analytic except at ``x <= 0``, so ``|c_j| <= K rho^-j`` with
   ``rho`` the Bernstein-ellipse parameter of the point ``x = 0`` (Trefethen, *Approximation
   Theory and Approximation Practice*, SIAM 2013, ch. 8): the degree follows from the interval.
3. Paterson-Stockmeyer in the Chebyshev basis: ``Y = T_s(X)`` (``s`` a power of two, by
   doubling), and ``T_{qs + r}`` rewritten in the basis ``Y^q T_r`` (``r < s``) through
   ``T_j = 2 T_s T_{j - s} - T_{|2s - j|}``. Then ``f(B) c = sum_q Y^q w_q`` with
   ``w_q = sum_r a_qr T_r c``: the ``T_r c`` by the three-term recurrence on vectors, the
   ``w_q`` of all points in one GEMM per function, and Horner in ``Y`` on vectors.

Cost for degree ``d``: ``log2 s`` matrix products and about ``s + d / s`` matrix-vector
products per point (~1 us at degree 37, the benchmark's spectra), against ~13 products and an LU
solve for the matrix iteration of :mod:`.matfun`. The degree grows like ``sqrt(upper)`` where
the iteration's step count grows like ``log log upper``, so above :data:`MAX_DEGREE` the caller
uses :func:`.matfun.inv_sqrtm`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .matfun import diagonal_view

# truncation tolerance relative to the largest value of each function on the interval
_TOL = 2.0**-53
# beyond this degree (spectral bound ~ 14) the matrix iteration of matfun is the cheaper one
MAX_DEGREE = 72
# the interval's upper end is rounded up to this geometric grid of (upper - 1), so that plans
# (coefficients) are reused between blocks and cycles; any interval holding the spectra will do
_GRID_PER_OCTAVE = 16
_MIN_WIDTH = 2.0**-20


def inverse(x):
    """``1 / x``: gives ``B^-1 v``."""
    return 1.0 / x


def inverse_plus_root(x):
    """``1 / (x + sqrt(x))``: gives ``(B + B^{1/2})^-1 v``."""
    return 1.0 / (x + np.sqrt(x))


FUNCTIONS = {"inverse": inverse, "inverse_plus_root": inverse_plus_root}


def interval_end(upper):
    """``upper`` rounded up onto the cache grid (never below ``1 + 2^-20``)."""
    width = max(float(upper) - 1.0, _MIN_WIDTH)
    return 1.0 + 2.0 ** (math.ceil(_GRID_PER_OCTAVE * math.log2(width)) / _GRID_PER_OCTAVE)


def bernstein_rho(upper):
    """Bernstein-ellipse parameter of ``x = 0`` for the interval ``[1, upper]``: with
    ``t0 = (upper + 1) / (upper - 1)`` (where 0 lands once [1, upper] is mapped to [-1, 1]),
    ``rho = t0 + sqrt(t0^2 - 1)``; Chebyshev coefficients of functions analytic off
    ``(-inf, 0]`` decay like ``rho^-j``."""
    t0 = (upper + 1.0) / (upper - 1.0)
    return t0 + math.sqrt(t0 * t0 - 1.0)


def degree_bound(upper):
    """A priori degree at which ``rho^-d`` is below the tolerance, two terms of margin."""
    return int(math.ceil(math.log(1.0 / _TOL) / math.log(bernstein_rho(upper)))) + 2


def chebyshev_coefficients(f, lower, upper, n):
    """Coefficients ``c_0 .. c_{n-1}`` of the interpolant of ``f`` at ``n`` Chebyshev points of
    the first kind on ``[lower, upper]`` (``f ~ sum_j c_j T_j(x)``, ``x`` mapped to [-1, 1]).
    Computed in extended precision (``longdouble``, with its own pi), so that the coefficients
    decay cleanly below float64 round-off instead of levelling off near 1e-16."""
    ld = np.longdouble
    pi = np.arccos(ld(-1.0))
    j = np.arange(n, dtype=ld)
    theta = pi * (j + ld(0.5)) / n
    lo, hi = ld(lower), ld(upper)
    values = f((hi + lo) / 2 + (hi - lo) / 2 * np.cos(theta))
    c = (ld(2.0) / n) * (np.cos(np.outer(j, theta)) @ values)
    c[0] /= 2
    return c.astype(np.float64)


def truncation_degree(c, rho):
    """Smallest ``d`` whose discarded tail, estimated as ``max_{j > d} |c_j| rho / (rho - 1)``
    (geometric decay), is below the tolerance relative to ``sum |c_j|`` (>= max |f|)."""
    tail = np.maximum.accumulate(np.abs(c[::-1]))[::-1] * (rho / (rho - 1.0))
    ok = np.flatnonzero(tail[1:] <= _TOL * np.abs(c).sum())
    return int(ok[0]) if ok.size else len(c) - 1


@lru_cache(maxsize=64)
def mixed_basis(deg, s):
    """(deg + 1, nq, s): ``T_j(x) = sum_qr out[j, q, r] T_s(x)^q T_r(x)``, ``nq = deg // s + 1``."""
    nq = deg // s + 1
    rep = np.zeros((max(deg, s) + 1, nq + 1, s))
    for j in range(min(s, deg + 1)):
        rep[j, 0, j] = 1.0
    rep[s, 1, 0] = 1.0
    for j in range(s + 1, deg + 1):
        rep[j, 1:] = 2.0 * rep[j - s, :-1]
        rep[j] -= rep[abs(2 * s - j)]
    out = rep[: deg + 1, :nq].copy()
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class Plan:
    """What :func:`apply` needs for one interval: ``[1, upper]``, ``X = (B - m I) / h``, the
    degree, ``s`` and the coefficients ``a[f, q, r]`` of each function in the ``Y^q T_r`` basis."""

    upper: float
    m: float
    h: float
    degree: int
    s: int
    coefficients: np.ndarray  # (nfun, nq, s)

    @property
    def nq(self):
        return self.coefficients.shape[1]

    def flops(self, p):
        """Floating-point operations of :func:`apply` per matrix of order ``p`` (FMA = 2);
        products counted in full."""
        nfun, nq, s = self.coefficients.shape
        return int(3 * p * p  # 2X, X
                   + int(math.log2(s)) * (2 * p**3 + 2 * p)  # T_s by doubling (products)
                   + (s - 1) * (2 * p * p + p)  # T_r v
                   + 2 * nfun * nq * s * p  # the w_q
                   + (nq - 1) * (2 * p * p + p) * nfun)  # Horner in Y


def plan(upper, functions=("inverse", "inverse_plus_root")):
    """:class:`Plan` for ``[1, interval_end(upper)]``; ``None`` above :data:`MAX_DEGREE`."""
    return _plan(interval_end(upper), tuple(functions))


@lru_cache(maxsize=256)
def _plan(end, functions):
    bound = degree_bound(end)
    if bound > MAX_DEGREE + 16:
        return None
    rho = bernstein_rho(end)
    series = [chebyshev_coefficients(FUNCTIONS[f], 1.0, end, bound + 8) for f in functions]
    deg = max(truncation_degree(c, rho) for c in series)
    if deg > MAX_DEGREE:
        return None
    s = block_length(deg)
    conv = mixed_basis(deg, s)
    coefficients = np.stack([np.einsum("j,jqr->qr", c[: deg + 1], conv) for c in series])
    coefficients.setflags(write=False)
    return Plan(end, 0.5 * (end + 1.0), 0.5 * (end - 1.0), deg, s, coefficients)


def spectral_upper(c, c2):
    """Rigorous per-matrix bound on ``lambda_max(I + C)``: ``1 + ||C^2||_F^{1/2}`` (C PSD).

    c2: ``C @ C`` (nb, p, p). Tight both for ``C`` near 0 and for one dominant eigenvalue."""
    return 1.0 + np.sqrt(np.sqrt(np.einsum("nij,nij->n", c2, c2)))


def block_length(deg):
    """``s`` for degree ``deg``: a power of two (``T_s`` by repeated doubling, one product each)
    near ``sqrt((deg + 1) / 2)``, which balances the matrix products against the cheaper
    matrix-vector products of the Horner steps (measured: ~0.13 against ~0.05 us per point)."""
    return 2 ** max(1, round(math.log2(math.sqrt((deg + 1) / 2.0))))


def _largest_shapes():
    """Largest ``s`` and ``nq`` of any plan up to :data:`MAX_DEGREE`."""
    return (max(block_length(d) for d in range(MAX_DEGREE + 1)),
            max(d // block_length(d) + 1 for d in range(MAX_DEGREE + 1)))


class Buffers:
    """Reusable arrays of :func:`apply` for blocks of up to ``nb`` matrices of order ``p`` and
    ``nfun`` functions (no allocation in the block loop; see ``letkf._Work``). Flat storage:
    each call carves contiguous views for its own ``nb``.

    buffer: optional flat float64 array of at least ``Buffers.size(nb, p, nfun)`` elements.
    """

    @staticmethod
    def sizes(nb, p, nfun):
        s, nq = _largest_shapes()
        return {"t": 2 * nb * p * p, "two_x": nb * p * p, "xl": p * p * nb, "yl": p * p * nb,
                "v": s * p * nb, "w": nq * nfun * p * nb, "acc": nfun * p * nb,
                "step": nfun * p * nb}

    @classmethod
    def size(cls, nb, p, nfun):
        return sum(cls.sizes(nb, p, nfun).values())

    def __init__(self, nb, p, nfun, buffer=None):
        if buffer is None:
            buffer = np.empty(self.size(nb, p, nfun))
        offset = 0
        for name, n in self.sizes(nb, p, nfun).items():
            setattr(self, name, buffer[offset:offset + n])
            offset += n

    def view(self, name, shape):
        return getattr(self, name)[: math.prod(shape)].reshape(shape)


def apply(pl, c, v, buffers):
    """``f_i(I + C) v`` for every function ``f_i`` of plan ``pl``.

    c (nb, p, p): the PSD parts ``C``; v (nb, p). Every spectrum must lie in
    ``[1, pl.upper]`` (:func:`spectral_upper`). Returns (nfun, p, nb), points last, a view into
    ``buffers`` valid until their next use. Inputs are not modified.

    Layouts, chosen by measurement: the few matrix products (``T_s`` by doubling,
    ``T_2n = 2 T_n^2 - I``) are batched BLAS calls on points-first stacks; the many
    matrix-vector products run points-last (``einsum`` over (p, p, nb) arrays, about half the
    cost of a batched BLAS call per point); the ``w_q`` for all points are one GEMM per
    function. Elementwise work only touches contiguous arrays.
    """
    nb, p, _ = c.shape
    nfun, nq, s = pl.coefficients.shape
    # 2X = 2 C / h + 2 g I with g = (1 - m) / h, points first
    two_x = np.multiply(c, 2.0 / pl.h, out=buffers.view("two_x", (nb, p, p)))
    diagonal_view(two_x)[...] += 2.0 * (1.0 - pl.m) / pl.h
    xl = buffers.view("xl", (p, p, nb))
    np.copyto(xl, two_x.transpose(1, 2, 0))
    # Y = T_s: T_1 = X, then T_2n = 2 T_n^2 - I
    pair = buffers.view("t", (2, nb, p, p))
    tn = np.multiply(two_x, 0.5, out=pair[0])
    for step in range(1, int(math.log2(s)) + 1):
        t2n = np.matmul(tn, tn, out=pair[step % 2])
        t2n *= 2.0
        diagonal_view(t2n)[...] -= 1.0
        tn = t2n
    yl = buffers.view("yl", (p, p, nb))
    np.copyto(yl, tn.transpose(1, 2, 0))
    # V_r = T_r v, r < s, points last: V_r = 2 X V_{r-1} - V_{r-2}
    vr = buffers.view("v", (s, p, nb))
    vr[0] = v.T
    np.einsum("ijn,jn->in", xl, vr[0], out=vr[1])
    vr[1] *= 0.5
    for r in range(2, s):
        np.einsum("ijn,jn->in", xl, vr[r - 1], out=vr[r])
        vr[r] -= vr[r - 2]
    # w_q = sum_r a_qr V_r for every point: one GEMM per function, q-major
    w = buffers.view("w", (nq, nfun, p, nb))
    flat = vr.reshape(s, p * nb)
    for i in range(nfun):
        np.matmul(pl.coefficients[i], flat, out=w[:, i].reshape(nq, p * nb))
    acc = buffers.view("acc", (nfun, p, nb))
    acc[...] = w[nq - 1]
    step_out = buffers.view("step", (nfun, p, nb))
    for q in range(nq - 2, -1, -1):  # Horner in Y = T_s
        np.einsum("ijn,fjn->fin", yl, acc, out=step_out)
        np.add(step_out, w[q], out=acc)
    return acc

"""Batched functions of small symmetric positive definite matrices, built on ``matmul``.

LAPACK's ``eigh`` costs ~6 us per 9 x 9 matrix whatever the batch (per-call overhead), more
than the whole LETKF budget of ~3 us per grid point, while a batched 9 x 9 ``matmul`` costs
~0.1 us per matrix. The local LETKF transforms therefore use matmul-only iterations:

- :func:`inv_sqrtm`: ``B^{-1/2}`` for ``B = I + (PSD)`` by the third-order,
  inverse-free member of the Pade family of iterations (Kenney & Laub 1991; Higham,
  *Functions of Matrices*, SIAM 2008, ch. 5-6; ``p`` is the degree-2 Taylor polynomial of
  ``(1 - x)^{-1/2}`` at ``x = I - P``; the degree-1 member is Newton-Schulz)
  in coupled form (stable, like coupled Newton-Schulz: Higham 1997): ``T = Z Y``,
  ``Y <- Y p(T)``, ``Z <- p(T) Z``, ``p(T) = (15 I - 10 T + 3 T^2) / 8``, from ``Y = A = B / s``,
  ``Z = I``; then ``T -> I``, ``Y -> A^{1/2}``, ``Z -> A^{-1/2}``. The number of
  steps is fixed in advance from the spectral bounds (:func:`schedule`), so every
  matrix reaches round-off; there is no data-dependent stopping test.
"""
from __future__ import annotations

import numpy as np

# the worst-case eigenvalue error bound (exact arithmetic) at which the iteration stops;
# 2**-60 ~ 8.7e-19 is below float64 round-off, which then dominates
_TOL = 2.0**-60
_MAX_STEPS = 60


def _cubic(e):
    """Eigenvalue error after a third-order step: ``q = 1 - e -> q p(q)^2``."""
    return e**3 * (40.0 + 15.0 * e + 9.0 * e * e) / 64.0


def _quadratic(e):
    """Eigenvalue error after a Newton-Schulz step: ``q = 1 - e -> q (3 - q)^2 / 4``."""
    return e * e * (3.0 + e) / 4.0


def schedule(ratio):
    """Orders (3 or 2) of the steps of :func:`inv_sqrtm` for ``upper / lower <= ratio``.

    With ``A = B / s``, ``s = (lower + upper) / 2``, every eigenvalue ``q`` of ``T = A`` lies in
    ``[1 - e0, 1 + e0]``, ``e0 = (ratio - 1) / (ratio + 1)``. Both step maps are monotone on
    that interval, so tracking its two ends bounds every eigenvalue. Third-order steps until
    one more step reaches the tolerance; that last step is a cheaper Newton-Schulz (second
    order) step when it suffices. Typical lengths: 3 for ratio 1.5, 4 for 3, 6 for 30.
    """
    ends = [(ratio - 1.0) / (ratio + 1.0), -(ratio - 1.0) / (ratio + 1.0)]
    orders = []
    while max(abs(e) for e in ends) > _TOL:
        if len(orders) >= _MAX_STEPS:
            raise FloatingPointError(f"matrix square root: spectrum ratio {ratio} too wide")
        last_quadratic = all(abs(_quadratic(e)) <= _TOL for e in ends)
        orders.append(2 if last_quadratic and orders else 3)
        ends = [(_quadratic if orders[-1] == 2 else _cubic)(e) for e in ends]
    return orders


def inv_sqrtm(b, work=None):
    """Symmetric inverse square root of a batch of ``B = I + (PSD)`` matrices.

    b: (nb, m, m) with every eigenvalue >= 1 (not modified). Returns ``(b^{-1/2}, orders)``: the
    (nb, m, m) roots, accurate to round-off, and the orders of the steps (:func:`schedule`).
    Spectral bounds per matrix, both rigorous: lower 1, upper ``1 + ||(B - I)^2||_F^{1/2}``
    (costs the one product ``(B - I)^2``, from which the first step's ``B^2`` follows).
    work: optional :class:`Workspace` with at least nb matrices; the result is then a view
    into it, valid until its next use. Without it, fresh arrays are allocated.
    """
    nb, m, _ = b.shape
    w = (work or Workspace(nb, m)).view(nb)
    # lambda_max(B) = 1 + lambda_max(C) <= 1 + ||C^2||_F^{1/2} with C = B - I PSD: tight both
    # for B near I and for one dominant eigenvalue; the lower bound is 1. C^2 is formed from C,
    # not as B^2 - 2 B + I, whose cancellation could make the bound too small.
    c = w.pop()
    c[...] = b
    diagonal_view(c)[...] -= 1.0
    c2 = np.matmul(c, c, out=w.pop())
    upper = 1.0 + np.sqrt(np.sqrt(np.einsum("nij,nij->n", c2, c2)))
    lower = 1.0
    scale = (0.5 * (lower + upper))[:, None, None]
    b2 = c2  # B^2 = C^2 + 2 C + I, without cancellation (all terms PSD)
    b2 += np.multiply(c, 2.0, out=c)
    diagonal_view(b2)[...] += 1.0
    orders = schedule(float(upper.max()))
    y = np.divide(b, scale, out=w.pop())  # Y_0 = A, Z_0 = I, T_0 = Z_0 Y_0 = A
    z = None
    for step, order in enumerate(orders):
        # coupled form: T from the actual iterates (stable, Higham 1997)
        t = y if z is None else np.matmul(z, y, out=w.pop())
        poly = w.pop()
        if order == 3:  # p(T) = (15 I - 10 T + 3 T^2) / 8
            if z is None:
                np.divide(b2, scale * scale, out=poly)
            else:
                np.matmul(t, t, out=poly)
            poly *= 0.375
            poly -= np.multiply(t, 1.25, out=b2 if z is None else w.pop())
            diagonal_view(poly)[...] += 1.875
        else:  # p(T) = (3 I - T) / 2
            np.multiply(t, -0.5, out=poly)
            diagonal_view(poly)[...] += 1.5
        if step < len(orders) - 1:
            y = np.matmul(y, poly, out=w.pop())
        z = poly if z is None else np.matmul(poly, z, out=w.pop())
        w.keep(y, z)  # the other buffers are free for the next step
    if z is None:  # B = I exactly (upper bound 1)
        z = w.pop()
        z[...] = np.eye(m)
    z /= np.sqrt(scale)
    return z, orders


class Workspace:
    """Reusable (nb, m, m) buffers for :func:`inv_sqrtm`, so that repeated calls on blocks of
    the same size allocate nothing (fresh arrays are page-faulted on first touch, which costs
    more than the arithmetic, especially in a virtual machine).

    buffer: optional flat float64 array of at least ``Workspace.size(nb, m)`` elements to carve
    the buffers from (e.g. one large, huge-page backed arena shared with other buffers).
    """

    COUNT = 8

    @classmethod
    def size(cls, nb, m):
        return cls.COUNT * nb * m * m

    def __init__(self, nb, m, buffer=None):
        n = nb * m * m
        if buffer is None:
            buffer = np.empty(self.size(nb, m))
        self._all = [buffer[i * n:(i + 1) * n].reshape(nb, m, m) for i in range(self.COUNT)]
        self._free = []

    def view(self, nb):
        self._views = [a[:nb] for a in self._all]
        self._free = list(self._views)
        return self

    def pop(self):
        return self._free.pop()

    def keep(self, *arrays):
        """Mark every buffer free except those holding ``arrays``."""
        self._free = [a for a in self._views if not any(a is x for x in arrays)]


def matmul_count(orders):
    """m x m products :func:`inv_sqrtm` performs for a step schedule (``B^2`` included)."""
    count = 1
    for step, order in enumerate(orders):
        first, last = step == 0, step == len(orders) - 1
        count += (0 if first else 1 + (order == 3) + 1) + (0 if last else 1)
    return count


def diagonal_view(a):
    """Writable strided view of the diagonals of a C-contiguous stack (..., m, m)."""
    m = a.shape[-1]
    return a.reshape(a.shape[:-2] + (m * m,))[..., :: m + 1]

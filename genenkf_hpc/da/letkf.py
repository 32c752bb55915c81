"""Local ensemble transform Kalman filter (Hunt, Kostelich & Szunyogh 2007), batched over points.

Notation (Hunt et al. 2007, section 2.3 and eqs. 20-25): k members, for one analysed point the
``p`` local observations with tapered inverse error variances ``R^-1_loc = w / r`` (R-localisation:
the error variance divided by the taper weight). ``S = R_loc^{-1/2} Yb`` (p, k) are the scaled
background observation anomalies, ``d = R_loc^{-1/2} (yo - mean(yb))``, ``x`` (k,) the background
state anomalies at the point, ``rho`` the multiplicative prior inflation and ``a = (k - 1) / rho``:

    Pa~ = [a I + S^T S]^-1,   wa = Pa~ S^T d,   Wa = [(k - 1) Pa~]^{1/2} (symmetric),
    xa_i = mean(xb) + x . (wa + Wa[:, i]).

Two solves give the same analysis to round-off (derivation in docs/letkf.md):

- ``"ensemble"``: eigendecomposition ``a I + S^T S = V diag(l) V^T`` (k x k), then
  ``x . wa = (V^T x) . (V^T S^T d) / l`` and ``Wa x = sqrt(k - 1) V diag(l^-1/2) V^T x``.
- ``"observation"``: with ``M = S S^T`` (p x p) and ``B = I + M / a``, the push-through identity
  gives ``x . wa = (B^-1/2 c) . (B^-1/2 d) / a`` with ``c = S x``, and
  ``Wa x = sqrt(rho) (x + S^T h(M) c)`` with ``h(l) = ((1 + l/a)^-1/2 - 1) / l``, evaluated in
  the division-free form ``h(M) = -(1/a) (B + B^{1/2})^-1 = -(1/a) Z (I + Z)^-1 Z``,
  ``Z = B^-1/2``. ``Z`` comes from a third-order Newton-Schulz-type iteration
  (:mod:`.matfun`), far cheaper than LAPACK ``eigh`` for stacks of small matrices.

``solve="auto"`` uses observation space when the largest local observation count is below k.
Points are processed in blocks (a loop over blocks of ``block_size`` points, never over points)
so that temporaries stay in cache; the cost is linear in the number of points.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import inflation as infl
from .localization import local_obs_table
from .matfun import Workspace, diagonal_view, inv_sqrtm, matmul_count

SOLVES = ("auto", "ensemble", "observation")


def letkf_analysis(xb, yb, yo, obs_var, point_coords, obs_coords, nx, radius,
                   taper="gaspari_cohn", inflation=1.0, rtps=0.0, rtpp=0.0, solve="auto",
                   block_size=None, threads=1, table=None, stats=None):
    """LETKF analysis of the points ``point_coords``; returns xa (k, npts). Inputs unchanged.

    xb:  (k, npts) background at the analysed points.
    yb:  (k, p) background observation equivalents of the observations that may be local to
         these points (any superset, e.g. a halo subset of all observations).
    yo:  (p,) observations; obs_var: scalar or (p,) observation error variances (R diagonal).
    point_coords (npts,), obs_coords (p,): global grid coordinates; nx: ring length.
    radius, taper: localisation (:mod:`.localization`; R^-1 multiplied by the taper weight).
    inflation: multiplicative prior covariance inflation rho via ``(k - 1) / rho`` in Pa~.
    rtps, rtpp: relaxation to prior spread (Whitaker & Hamill 2012) / perturbations (Zhang et al.
    2004), per point, after the analysis, relative to the un-inflated background.
    solve: "auto", "ensemble" or "observation" (module doc). A point without local observations
    keeps its un-inflated background.
    block_size: points per vectorised block (results do not depend on it beyond round-off).
    Default 512 for pmax <= 12, fewer for more local observations (larger blocks amortise the
    per-call overhead of numpy; the block buffers stay a few MiB).
    threads: worker threads sharing the blocks (numpy releases the GIL in its loops); keep 1
    when each MPI rank already has its own core.
    table: optional precomputed ``local_obs_table(point_coords, obs_coords, nx, radius, taper)``
    (the same for every cycle of a fixed observing network).
    stats: optional dict that receives ``solve``, ``local_obs`` (largest local count) and
    ``sqrt_products`` (most p x p products spent on B^-1/2 in a block; observation space).
    """
    xb = np.asarray(xb, dtype=np.float64)
    yb = np.asarray(yb, dtype=np.float64)
    yo = np.asarray(yo, dtype=np.float64).reshape(-1)
    k, npts = _check_shapes(xb, yb, yo, point_coords, obs_coords)
    if solve not in SOLVES:
        raise ValueError(f"solve={solve!r}: must be one of {', '.join(SOLVES)}")
    if not inflation > 0:
        raise ValueError(f"inflation={inflation}: must be > 0")
    if table is None:
        table = local_obs_table(point_coords, obs_coords, nx, radius, taper)
    index, weight = table
    pmax = index.shape[1]
    if solve == "auto":
        solve = "observation" if pmax < k else "ensemble"
    if stats is not None:
        stats.update(solve=solve, local_obs=pmax, sqrt_products=0)
    if pmax == 0:
        return xb.copy()

    r = np.broadcast_to(np.asarray(obs_var, dtype=np.float64), yo.shape)
    if not np.all(r > 0):
        raise ValueError("obs_var: observation error variances must be > 0")
    inv_sd = 1.0 / np.sqrt(r)
    ybar = yb.mean(axis=0)
    xbar = xb.mean(axis=0)
    local = _Local(
        # obs-major (p, k) layout: blocks gather whole rows
        yhat_t=np.subtract(yb.T, ybar[:, None], order="C") * inv_sd[:, None],
        dhat=(yo - ybar) * inv_sd,
        xb=xb,
        xbar=xbar, index=index, sqrt_w=np.sqrt(weight), unit_w=bool(np.all(weight == 1.0)),
        a=(k - 1) / inflation, rho=inflation,
        solve=_obs_space_block if solve == "observation" else _ens_space_block)
    if block_size is None:
        block_size = int(np.clip(512 * 144 // pmax**2, 32, 512))
    xa_t = np.empty((npts, k))
    starts = list(range(0, npts, block_size))
    if threads > 1 and len(starts) > 1:
        chunks = [starts[i::threads] for i in range(threads)]
        with ThreadPoolExecutor(threads) as pool:
            products = max(pool.map(lambda c: local.run(c, block_size, xa_t), chunks))
    else:
        products = local.run(starts, block_size, xa_t)
    if stats is not None:
        stats["sqrt_products"] = products
    xa = xa_t.T.copy()

    if rtpp:
        xa = infl.rtpp(xa, xb, rtpp)
    if rtps:
        xa = infl.rtps(xa, xb, rtps)
    no_obs = weight[:, 0] == 0  # local entries come first in each row of the table
    if no_obs.any():  # last, so that they are bit-for-bit the background
        xa[:, no_obs] = xb[:, no_obs]
    return xa


@dataclass
class _Local:
    """Read-only inputs of the per-block analyses (shared by the worker threads)."""

    yhat_t: np.ndarray  # (p, k) R^-1/2 (yb - mean), obs-major
    dhat: np.ndarray  # (p,) R^-1/2 (yo - mean(yb))
    xb: np.ndarray  # (k, npts) background
    xbar: np.ndarray  # (npts,)
    index: np.ndarray  # (npts, pmax)
    sqrt_w: np.ndarray  # (npts, pmax)
    unit_w: bool  # every weight is 1 (box taper, no padding): S needs no row scaling
    a: float  # (k - 1) / rho
    rho: float
    solve: object

    def run(self, starts, block_size, xa_t):
        """Analyse the blocks beginning at ``starts``; writes rows of xa_t (npts, k).

        Returns the most p x p products a block spent on B^-1/2 (0: ensemble space).
        """
        work = _Work(block_size, self.index.shape[1], self.yhat_t.shape[1])
        most = 0
        for start in starts:
            sl = slice(start, start + block_size)
            idx, sw = self.index[sl], self.sqrt_w[sl]
            nb = idx.shape[0]
            s = np.take(self.yhat_t, idx, axis=0, out=work.s[:nb])
            if not self.unit_w:
                s *= sw[..., None]  # rows of S = R_loc^-1/2 Yb', (nb, pmax, k)
            d = self.dhat[idx] * sw
            x = np.subtract(self.xb[:, sl].T, self.xbar[sl, None], out=work.x[:nb])
            mean_inc, products = self.solve(s, d, x, self.a, self.rho, work, xa_t[sl])
            xa_t[sl] += (self.xbar[sl] + mean_inc)[:, None]
            most = max(most, products)
        return most


class _Work:
    """Buffers reused by every block of one worker, carved from one arena. Fresh arrays would
    be page-faulted on every block (glibc returns large blocks to the system on free), which
    costs more than the arithmetic in a VM and serialises threads on the memory-map lock; an
    arena of at least 4 MiB is madvised for transparent huge pages by numpy."""

    def __init__(self, nb, p, k):
        shapes = {"s": (nb, p, k), "st": (nb, k, p), "x": (nb, k), "b": (nb, p, p),
                  "zi": (nb, p, p)}
        sizes = {name: int(np.prod(shape)) for name, shape in shapes.items()}
        total = sum(sizes.values()) + Workspace.size(nb, p)
        if total * 8 >= 2**19:  # >= 512 KiB: round up past numpy's 4 MiB huge-page threshold
            total = max(total, 2**22 // 8 + 1)
        arena = np.empty(total)
        offset = 0
        for name, shape in shapes.items():
            setattr(self, name, arena[offset:offset + sizes[name]].reshape(shape))
            offset += sizes[name]
        self.sqrt = Workspace(nb, p, buffer=arena[offset:])


def _obs_space_block(s, d, x, a, rho, work, out):
    """Analysis of one block via p x p matrices (module doc).

    s (nb, p, k): rows of S = R_loc^-1/2 Yb' of the local observations; d (nb, p);
    x (nb, k) background anomalies; work: the worker's :class:`_Work` buffers; out (nb, k)
    receives the analysis anomalies. Returns the mean increments (nb,) and the number of
    p x p products spent on B^-1/2.
    """
    nb = s.shape[0]
    st = work.st[:nb]
    np.copyto(st, s.transpose(0, 2, 1))  # matmul takes the BLAS path on contiguous operands
    b = np.matmul(s, st, out=work.b[:nb])
    b /= a
    diagonal_view(b)[...] += 1.0  # B = I + S S^T / a
    c = (s @ x[..., None])[..., 0]  # c = S x
    z, orders = inv_sqrtm(b, work.sqrt)  # Z = B^-1/2
    u = z @ np.stack([c, d], axis=-1)  # Z c, Z d
    mean_inc = (u[..., 0] * u[..., 1]).sum(axis=-1) / a
    # (B + B^1/2)^-1 c = Z (I + Z)^-1 Z c; I + Z has its spectrum in (1, 2]
    z_plus_i = work.zi[:nb]
    z_plus_i[...] = z
    diagonal_view(z_plus_i)[...] += 1.0
    v = z @ np.linalg.solve(z_plus_i, u[..., :1])
    np.matmul(v.transpose(0, 2, 1), s, out=out[:, None, :])  # (S^T v)^T
    out *= -1.0 / a
    out += x
    out *= np.sqrt(rho)
    return mean_inc, matmul_count(orders)


def _ens_space_block(s, d, x, a, rho, work, out):
    """Analysis of one block via k x k eigendecompositions; arguments as
    :func:`_obs_space_block`."""
    k = s.shape[-1]
    amat = s.transpose(0, 2, 1) @ s
    diagonal_view(amat)[...] += a  # a I + S^T S = V diag(lam) V^T
    lam, vec = np.linalg.eigh(amat)
    vx = (x[:, None, :] @ vec)[:, 0, :]
    vd = ((d[:, None, :] @ s) @ vec)[:, 0, :]
    mean_inc = (vx * vd / lam).sum(axis=-1)
    out[...] = np.sqrt(k - 1) * (vec @ (vx / np.sqrt(lam))[..., None])[..., 0]
    return mean_inc, 0


def _check_shapes(xb, yb, yo, point_coords, obs_coords):
    if xb.ndim != 2 or yb.ndim != 2:
        raise ValueError(f"xb {xb.shape} and yb {yb.shape} must be (members, points/obs)")
    k, npts = xb.shape
    if k < 2:
        raise ValueError(f"ensemble of {k} member(s): the LETKF needs k >= 2")
    if yb.shape != (k, yo.size):
        raise ValueError(f"yb {yb.shape} must be (members={k}, obs={yo.size})")
    if np.shape(point_coords) != (npts,) or np.shape(obs_coords) != (yo.size,):
        raise ValueError(f"point_coords {np.shape(point_coords)} / obs_coords "
                         f"{np.shape(obs_coords)} must be ({npts},) / ({yo.size},)")
    return k, npts

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
  gives ``x . wa = c . (B^-1 d) / a`` with ``c = S x``, and
  ``Wa x = sqrt(rho) (x + S^T h(M) c)`` with ``h(l) = ((1 + l/a)^-1/2 - 1) / l``, evaluated in
  the division-free form ``h(M) = -(1/a) (B + B^{1/2})^-1``. Only these two functions of ``B``
  applied to one vector each are needed: Chebyshev expansions evaluated with few batched
  products (:mod:`.chebyshev`), or for wide spectra ``Z = B^-1/2`` by a matrix iteration
  (:mod:`.matfun`) and ``(B + B^{1/2})^-1 = Z (I + Z)^-1 Z``; both far cheaper than LAPACK
  ``eigh`` for stacks of small matrices.

``solve="auto"`` uses observation space when the largest local observation count is below k.
Points are processed in blocks (a loop over blocks of ``block_size`` points, never over points)
so that temporaries stay in cache; the cost is linear in the number of points.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import inflation as infl
from .localization import local_obs_table
from .. import blas
from . import chebyshev
from .matfun import Workspace, diagonal_view, inv_sqrtm, matmul_count, schedule

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
    Default 1024 for pmax <= 12 and k <= 32, fewer for more local observations or members
    (larger blocks amortise the per-call overhead of numpy; the block's arrays must stay in
    cache).
    threads: worker threads sharing the blocks (numpy releases the GIL in its loops); keep 1
    when each MPI rank already has its own core.
    table: optional precomputed ``local_obs_table(point_coords, obs_coords, nx, radius, taper)``
    (the same for every cycle of a fixed observing network).
    stats: optional dict that receives ``solve``, ``local_obs`` (largest local count) and
    ``function_flops`` (most flops per point a block spent on the functions of B;
    observation space, 0 for ensemble space).
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
        stats.update(solve=solve, local_obs=pmax, function_flops=0)
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
        # large blocks amortise numpy's per-call cost; past ~2.4 MB of S per block the block's
        # arrays fall out of cache (k = 64: 3.9 us per point at 1024 points, 2.45 at 512)
        block_size = int(np.clip(min(1024 * 144 // pmax**2, 294_912 // (pmax * k)), 32, 1024))
    xa_t = np.empty((npts, k))
    # one contiguous share of the points per thread, each in as few blocks as possible: every
    # numpy call re-takes the GIL, so threads gain only with large blocks (measured: 1.4-1.6x
    # with 2 threads at 1000 points per block, none at 256)
    nshare = max(1, min(int(threads), npts // 64))
    bounds = np.linspace(0, npts, nshare + 1).astype(int)
    shares = list(zip(bounds[:-1], bounds[1:]))
    block_size = min(block_size, int(np.diff(bounds).max()))
    with blas.limited(1):  # small products; the parallelism is over points (threads, ranks)
        if nshare > 1:
            flops = max(_pool(nshare).map(lambda sh: local.run(*sh, block_size, xa_t), shares))
        else:
            flops = local.run(0, npts, block_size, xa_t)
    if stats is not None:
        stats["function_flops"] = flops
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

    def run(self, lo, hi, block_size, xa_t):
        """Analyse points ``lo:hi`` in blocks of ``block_size``; writes rows of xa_t (npts, k).

        Returns the most flops per point a block spent on the functions of B (0: ensemble
        space).
        """
        work = _work(block_size, self.index.shape[1], self.yhat_t.shape[1])
        most = 0
        for start in range(lo, hi, block_size):
            sl = slice(start, min(start + block_size, hi))
            idx, sw = self.index[sl], self.sqrt_w[sl]
            nb = idx.shape[0]
            s = np.take(self.yhat_t, idx, axis=0, out=work.s[:nb])
            if not self.unit_w:
                s *= sw[..., None]  # rows of S = R_loc^-1/2 Yb', (nb, pmax, k)
            d = self.dhat[idx] * sw
            x = np.subtract(self.xb[:, sl].T, self.xbar[sl, None], out=work.x[:nb])
            mean_inc, flops = self.solve(s, d, x, self.a, self.rho, work, xa_t[sl])
            xa_t[sl] += (self.xbar[sl] + mean_inc)[:, None]
            most = max(most, flops)
        return most


@lru_cache(maxsize=4)
def _pool(threads):
    """A lasting pool of ``threads`` workers (starting threads on every call costs ~0.1 ms)."""
    return ThreadPoolExecutor(threads, thread_name_prefix="letkf")


_PER_THREAD = threading.local()


def _work(nb, p, k):
    """This thread's :class:`_Work` for blocks of ``nb`` points, kept between calls (a fresh
    arena is page-faulted in on first use); only the latest shape is kept."""
    key = (nb, p, k)
    if getattr(_PER_THREAD, "key", None) != key:
        _PER_THREAD.work, _PER_THREAD.key = _Work(nb, p, k), key
    return _PER_THREAD.work


class _Work:
    """Buffers reused by every block of one worker, carved from one arena. Fresh arrays would
    be page-faulted on every block (glibc returns large blocks to the system on free), which
    costs more than the arithmetic in a VM and serialises threads on the memory-map lock; an
    arena of at least 4 MiB is madvised for transparent huge pages by numpy."""

    def __init__(self, nb, p, k):
        shapes = {"s": (nb, p, k), "st": (nb, k, p), "x": (nb, k), "c": (nb, p, p),
                  "c2": (nb, p, p), "cvec": (nb, p, 1), "v": (nb, 1, p), "zi": (nb, p, p)}
        sizes = {name: int(np.prod(shape)) for name, shape in shapes.items()}
        extra = {"sqrt": Workspace.size(nb, p), "cheb": chebyshev.Buffers.size(nb, p, 2)}
        total = sum(sizes.values()) + sum(extra.values())
        if total * 8 >= 2**19:  # >= 512 KiB: round up past numpy's 4 MiB huge-page threshold
            total = max(total, 2**22 // 8 + 1)
        arena = np.empty(total)
        offset = 0
        for name, shape in shapes.items():
            setattr(self, name, arena[offset:offset + sizes[name]].reshape(shape))
            offset += sizes[name]
        self.sqrt = Workspace(nb, p, buffer=arena[offset:offset + extra["sqrt"]])
        offset += extra["sqrt"]
        self.cheb = chebyshev.Buffers(nb, p, 2, buffer=arena[offset:offset + extra["cheb"]])


def _obs_space_block(s, d, x, a, rho, work, out):
    """Analysis of one block via p x p matrices (module doc).

    s (nb, p, k): rows of S = R_loc^-1/2 Yb' of the local observations; d (nb, p);
    x (nb, k) background anomalies; work: the worker's :class:`_Work` buffers; out (nb, k)
    receives the analysis anomalies. Returns the mean increments (nb,) and the flops per point
    spent on the functions of B.

    ``B^-1 c`` and ``(B + B^1/2)^-1 c`` come from Chebyshev expansions on an interval holding
    the block's spectra (:mod:`.chebyshev`); when the spectra are too wide for a low degree,
    from ``Z = B^-1/2`` by the matrix iteration of :mod:`.matfun`, with
    ``(B + B^1/2)^-1 = Z (I + Z)^-1 Z``.
    """
    nb, p, _ = s.shape
    st = work.st[:nb]
    np.copyto(st, s.transpose(0, 2, 1))  # matmul takes the BLAS path on contiguous operands
    c = np.matmul(s, st, out=work.c[:nb])
    c /= a  # C = S S^T / a, B = I + C
    c2 = np.matmul(c, c, out=work.c2[:nb])
    upper = float(chebyshev.spectral_upper(c, c2).max())
    cvec = np.matmul(s, x[..., None], out=work.cvec[:nb])[..., 0]  # c = S x
    plan = chebyshev.plan(upper)
    if plan is not None:
        u = chebyshev.apply(plan, c, cvec, work.cheb)  # B^-1 c, (B + B^1/2)^-1 c, points last
        mean_inc = np.einsum("np,pn->n", d, u[0]) / a  # d . B^-1 c / a (B symmetric)
        v = work.v[:nb]
        np.copyto(v[:, 0, :], u[1].T)  # (nb, 1, p)
        flops = observation_function_flops(p, upper)
    else:
        b = c
        diagonal_view(b)[...] += 1.0
        z, orders = inv_sqrtm(b, work.sqrt)  # Z = B^-1/2
        u = z @ np.stack([cvec, d], axis=-1)  # Z c, Z d
        mean_inc = (u[..., 0] * u[..., 1]).sum(axis=-1) / a
        # (B + B^1/2)^-1 c = Z (I + Z)^-1 Z c; I + Z has its spectrum in (1, 2]
        z_plus_i = work.zi[:nb]
        z_plus_i[...] = z
        diagonal_view(z_plus_i)[...] += 1.0
        v = (z @ np.linalg.solve(z_plus_i, u[..., :1])).transpose(0, 2, 1)
        flops = iteration_flops(p, orders)
    np.matmul(v, s, out=out[:, None, :])  # (S^T v)^T
    out *= -1.0 / a
    out += x
    out *= np.sqrt(rho)
    return mean_inc, flops


def observation_function_flops(p, upper):
    """Flops per point :func:`_obs_space_block` spends on the functions of B when the block's
    spectral bound is ``upper`` (either branch)."""
    plan = chebyshev.plan(upper)
    if plan is not None:
        return 2 * p**3 + 2 * p * p + plan.flops(p)
    return iteration_flops(p, schedule(upper))


def iteration_flops(p, orders):
    """Flops per point of the matrix-iteration branch of :func:`_obs_space_block` (products
    counted in full, LU as ``2 p^3 / 3``)."""
    return int(2 * p**3 + 2 * p * p  # C^2 and the spectral bound
               + matmul_count(orders) * (2 * p**3 + 4 * p * p)  # B^-1/2 (matfun.inv_sqrtm)
               + 4 * p * p  # Z [c, d]
               + 2 * p**3 / 3 + 2 * p * p + 2 * p * p)  # (I + Z)^-1 (LU), times Z


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

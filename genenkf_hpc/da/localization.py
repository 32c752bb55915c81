"""Distances on the periodic ring, localisation tapers and the local-observation table.

Coordinates are global grid indices (floats allowed) on a ring of ``nx`` points. An observation
is *local* to a grid point when its taper weight is positive:

- ``"box"``: weight 1 for ``distance <= radius``, else 0;
- ``"gaspari_cohn"``: the 5th-order piecewise rational function of Gaspari & Cohn (1999),
  eq. (4.10), with half-width ``c = radius / 2`` so that it reaches 0 at ``distance = radius``.
  Observations exactly at ``distance = radius`` have weight 0 and are therefore *not* local:
  on a unit grid with every point observed, radius 4 gives 9 local observations with the box
  taper and 7 with Gaspari-Cohn.
"""
from __future__ import annotations

import numpy as np

from ..errors import UserError

TAPERS = ("box", "gaspari_cohn")


def periodic_distance(a, b, nx):
    """``|a - b|`` on a ring of ``nx`` points (broadcasting), in ``[0, nx / 2]``."""
    d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) % nx
    return np.minimum(d, nx - d)


def gaspari_cohn(distance, c):
    """Gaspari & Cohn (1999) eq. (4.10): compactly supported 5th-order correlation function.

    ``distance`` (any shape, >= 0), half-width ``c`` > 0; 1 at 0, exactly 0 for
    ``distance >= 2 c``.
    """
    z = np.asarray(distance, dtype=np.float64) / c
    # both polynomials evaluated everywhere (cheaper than boolean-mask indexing), then selected
    zs = np.where(z > 0.0, z, 1.0)  # keeps 1/z finite where the outer branch is not used
    inner = (((-0.25 * z + 0.5) * z + 0.625) * z - 5.0 / 3.0) * z * z + 1.0
    outer = ((((z / 12.0 - 0.5) * z + 0.625) * z + 5.0 / 3.0) * z - 5.0) * z + 4.0 \
        - 2.0 / (3.0 * zs)
    w = np.where(z <= 1.0, inner, np.where(z < 2.0, outer, 0.0))
    # the polynomial is ~1e-16 (either sign) just inside 2c: a weight must never be negative
    return np.maximum(w, 0.0)


def taper_weights(distance, radius, taper):
    """Localisation weight in [0, 1] for each ``distance`` (any shape); see the module doc."""
    if radius <= 0:
        raise UserError(f"localisation radius={radius}: must be > 0")
    if taper == "box":
        return (np.asarray(distance) <= radius).astype(np.float64)
    if taper == "gaspari_cohn":
        return gaspari_cohn(distance, 0.5 * radius)
    raise UserError(f"taper={taper!r}: must be one of {', '.join(TAPERS)}")


def local_obs_table(point_coords, obs_coords, nx, radius, taper):
    """Observations local to each analysed point, as a padded table.

    point_coords: (npts,) grid coordinates of the analysed points.
    obs_coords:   (p,) grid coordinates of the observations.
    Returns ``index`` (npts, pmax) int64, positions into the observation arrays, and
    ``weight`` (npts, pmax) float64, the taper weights; ``pmax`` is the largest number of local
    observations of any point. Each row lists its local observations (weight > 0) first, then
    padding entries with weight 0 and index 0. Cost O(p log p + npts * pmax): a sorted sweep,
    no (npts, p) distance matrix.
    """
    points = _on_ring(point_coords, nx)
    obs = _on_ring(obs_coords, nx)
    npts, p = points.size, obs.size
    if radius <= 0:
        raise UserError(f"localisation radius={radius}: must be > 0")
    if taper not in TAPERS:
        raise UserError(f"taper={taper!r}: must be one of {', '.join(TAPERS)}")
    if p == 0 or npts == 0:
        return np.zeros((npts, 0), np.int64), np.zeros((npts, 0))
    if 2 * radius >= nx:
        # the window covers the whole ring: every observation is a candidate (once)
        cand = np.broadcast_to(np.arange(p), (npts, p))
        valid = np.ones((npts, p), bool)
        dist = periodic_distance(points[:, None], obs[cand], nx)
    else:
        # candidates: the obs in [x - radius, x + radius], found in the sorted coordinates
        # repeated three times (shifted by -nx, 0, +nx) so that windows wrap round the ring;
        # as the window is shorter than nx, |x - unwrapped coordinate| is the ring distance
        order = np.argsort(obs, kind="stable")
        ext = np.concatenate([obs[order] - nx, obs[order], obs[order] + nx])
        ext_order = np.concatenate([order, order, order])
        # box: distance <= radius is local; Gaspari-Cohn is 0 at the radius: keep it out
        closed = taper == "box"
        lo = np.searchsorted(ext, points - radius, side="left" if closed else "right")
        hi = np.searchsorted(ext, points + radius, side="right" if closed else "left")
        width = int((hi - lo).max())
        pos = lo[:, None] + np.arange(width)
        valid = pos < hi[:, None]
        pos = np.minimum(pos, len(ext) - 1)  # any index will do where not valid
        cand = ext_order[pos]
        dist = np.abs(points[:, None] - ext[pos])
    weight = taper_weights(dist, radius, taper)
    weight *= valid
    local = weight > 0
    if 2 * radius < nx and np.array_equal(local, valid):
        pmax = width  # the usual case: every candidate is local, already first in its row
    else:
        # move the local entries to the front of each row (stable: keeps the west-east order)
        front = np.argsort(~local, axis=1, kind="stable")
        cand = np.take_along_axis(cand, front, axis=1)
        weight = np.take_along_axis(weight, front, axis=1)
        pmax = int(local.sum(axis=1).max())
    weight = np.ascontiguousarray(weight[:, :pmax])
    index = np.where(weight > 0, cand[:, :pmax], 0)
    return index.astype(np.int64, copy=False), weight


def _on_ring(coords, nx):
    """Coordinates as float64 in [0, nx) (the modulo is skipped when already there)."""
    c = np.asarray(coords, dtype=np.float64).reshape(-1)
    if c.size and (c.min() < 0 or c.max() >= nx):
        c = c % nx
    return c

"""Sampling on a segment of the ring: the network evaluated on a tile, noise by position.

A local network (:mod:`.local_net`) with receptive field ``(left, right)`` and downsampling
factor f gives, at a point, a value that depends only on the inputs within the field. On a
*tile* ``[start - h, stop + h)`` of the ring, ``h >= max(left, right)`` and the tile aligned to
f (start and h multiples of f), its outputs at the segment ``[start, stop)`` are therefore
those of the whole ring (circular padding on the ring is the periodic extension a tile holds;
this holds even when the tile is longer than the ring). Everything else a sampler does is
elementwise. So every sampler (DDPM, DDIM, DDIM inversion, DDIB, SDEdit-like encodings, ...)
runs unchanged on a segment when

- its network is :class:`TiledNet`: before each evaluation the halo of x_t is refreshed from the
  neighbouring segments (``fill``, supplied by the parallel layer: kernels never see the
  communicator), the tile is evaluated, the segment kept;
- its condition is the tile's (observations are known everywhere: no exchange);
- its noise is :class:`PositionalNoise`: member m's numbers at point i depend on (seed, m,
  cycle, i), never on the decomposition, drawn block by block of :data:`NOISE_BLOCK` points from
  counter-based streams keyed by (seed, m, cycle, block), so no rank generates the whole ring.

On one domain the tile is the ring itself (``fill`` pads it periodically).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .. import rng

NOISE_BLOCK = 4096  # points per noise stream: small waste at segment ends, few stream calls


def tile_halo_width(receptive_field: dict) -> int:
    """Halo of a tile: the receptive radius rounded up to the downsampling factor."""
    factor = int(receptive_field["downsampling"])
    reach = max(int(receptive_field["left"]), int(receptive_field["right"]))
    return -(-reach // factor) * factor


def periodic_fill(halo: int) -> Callable[[np.ndarray], np.ndarray]:
    """The ``fill`` of one domain: the ring with ``halo`` points of its own wrap-around on each
    side (any halo, also longer than the ring)."""
    def fill(x: np.ndarray) -> np.ndarray:
        n = x.shape[-1]
        return x[..., np.arange(-halo, n + halo) % n]
    return fill


@dataclass(frozen=True)
class Segment:
    """Where a sampler works: points ``[start, stop)`` of a ring of ``nx``, a tile halo of
    ``halo`` points on each side, and ``fill(x (B, n) numpy) -> (B, n + 2 halo)`` bringing the
    halo (from the neighbouring ranks: ``Layout.tile_halo(halo).padded``)."""

    nx: int
    start: int
    stop: int
    halo: int
    fill: Callable[[np.ndarray], np.ndarray]

    @property
    def points(self) -> int:
        return self.stop - self.start

    @property
    def tile(self) -> np.ndarray:
        """Global indices of the tile (wrapping the ring, repeating it when it is longer)."""
        return np.arange(self.start - self.halo, self.stop + self.halo) % self.nx


class TiledNet(torch.nn.Module):
    """``net`` evaluated on tiles: ``forward(x (B, 1, n_d), t, cond (B, 2S, n_d + 2h), drop)``
    -> ``(B, 1, n_d)``. ``fill(x (B, n_d) numpy) -> (B, n_d + 2h)`` brings the halo (all ranks
    of a domain group call it together: same batches, same order)."""

    def __init__(self, net: torch.nn.Module, halo: int, fill: Callable[[np.ndarray], np.ndarray]):
        super().__init__()
        self.net, self.halo, self.fill = net, int(halo), fill
        self.args = net.args

    def forward(self, x, t, cond=None, drop=None):
        h = self.halo
        tile = torch.as_tensor(self.fill(x[:, 0].detach().cpu().numpy()))[:, None]
        out = self.net(tile.to(device=x.device, dtype=x.dtype), t, cond, drop)
        return out[..., h:out.shape[-1] - h]


class PositionalNoise:
    """Standard normal noise ``(len(members), 1, stop - start)`` for the segment ``[start,
    stop)``; every ``draw()`` is the next draw of each point's stream.

    Member m's numbers at points ``[b B, (b + 1) B)`` (B = :data:`NOISE_BLOCK`) come from
    ``rng.stream(seed, DIFFUSION_SAMPLING, m, cycle, b)``, ``B`` per draw, so a point's numbers
    are the same on any decomposition. Float64 on the CPU, then moved to ``device``/``dtype``."""

    def __init__(self, seed: int, members, cycle: int, segment: tuple[int, int],
                 dtype=torch.float32, device="cpu", block: int = NOISE_BLOCK):
        self.start, self.stop = (int(v) for v in segment)
        self.block, self.dtype, self.device = int(block), dtype, device
        self.first = self.start // self.block
        last = -(-self.stop // self.block)
        self.streams = [[rng.stream(seed, rng.Purpose.DIFFUSION_SAMPLING, int(m), int(cycle), b)
                         for b in range(self.first, last)] for m in members]

    def draw(self) -> torch.Tensor:
        offset = self.start - self.first * self.block
        rows = [np.concatenate([g.standard_normal(self.block) for g in streams])
                [offset:offset + self.stop - self.start] for streams in self.streams]
        out = torch.as_tensor(np.stack(rows)[:, None]) if rows else \
            torch.empty((0, 1, self.stop - self.start), dtype=torch.float64)
        return out.to(device=self.device, dtype=self.dtype)

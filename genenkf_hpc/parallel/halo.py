"""Ghost points of a domain decomposition of the ring: which points go from which domain to
which, and the exchange itself.

Domain d of ``blocks`` owns the segment ``[start_d, stop_d)`` of a ring of ``blocks.n`` points
and needs the values at a list of *ghost* global indices (``ghosts_of(d)``: the dynamics' halo
of 2 left and 1 right points, the observations within the localisation radius, a network
tile's halo). :class:`HaloPlan` is the pure arithmetic: from ``ghosts_of`` of every domain it
derives what this domain receives from whom and what it sends to whom; every domain computes
the same plans, so nothing is negotiated at run time. Ghost lists may wrap around the ring,
repeat a point, and hold points of the domain itself (a ring shorter than the halo, or one
domain): those are copied, not sent.

:class:`Halo` runs a plan on a communicator of the domains (one message per neighbour and
exchange, ``comm.Exchange``) and counts the bytes it sends. Arrays are ``(..., n_d)``: any
leading axes (members, a network batch) travel together; all domains of the communicator pass
the same leading shape.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .decomposition import Blocks


class HaloPlan:
    """Receive and send lists of domain ``domain`` (pure)."""

    def __init__(self, blocks: Blocks, domain: int, ghosts_of: Callable[[int], np.ndarray]):
        self.blocks, self.domain = blocks, domain
        self.start, self.stop = blocks.range(domain)
        self.ghosts = np.asarray(ghosts_of(domain), dtype=np.int64)
        source = blocks.owner(self.ghosts)
        own = source == domain
        self.self_pos = np.flatnonzero(own)
        self.self_local = self.ghosts[own] - self.start
        # what arrives from each other domain, in the order of this domain's ghost list
        self.recv = {int(e): np.flatnonzero(source == e) for e in np.unique(source[~own])}
        # what each other domain needs from this one, in the order of ITS ghost list
        self.send = {}
        for e in range(blocks.size):
            if e == domain:
                continue
            theirs = np.asarray(ghosts_of(e), dtype=np.int64)
            mine = theirs[blocks.owner(theirs) == domain]
            if mine.size:
                self.send[e] = mine - self.start

    @property
    def received_points(self) -> int:
        """Ghost points that arrive from other domains (per row of the leading axes)."""
        return int(sum(pos.size for pos in self.recv.values()))

    @property
    def sent_points(self) -> int:
        return int(sum(idx.size for idx in self.send.values()))


class Halo:
    """A :class:`HaloPlan` on ``comm`` (the communicator of the domains, rank = domain)."""

    def __init__(self, comm, plan: HaloPlan):
        assert comm.size == plan.blocks.size and comm.rank == plan.domain, \
            (comm.size, comm.rank, plan.blocks.size, plan.domain)
        self.comm, self.plan = comm, plan
        self.sent_bytes = 0  # measured: bytes this rank passed to Exchange
        self.exchanges = 0

    @property
    def size(self) -> int:
        """Number of ghost points."""
        return self.plan.ghosts.size

    def ghost_values(self, local: np.ndarray) -> np.ndarray:
        """``local (..., n_d)`` -> the values at the ghost list, ``(..., n_ghosts)``."""
        p = self.plan
        local = np.asarray(local)
        assert local.shape[-1] == p.stop - p.start, (local.shape, p.start, p.stop)
        lead = local.shape[:-1]
        rows = int(np.prod(lead)) if lead else 1
        out = np.empty(lead + (p.ghosts.size,), dtype=local.dtype)
        out[..., p.self_pos] = local[..., p.self_local]
        if rows == 0 or (not p.send and not p.recv):
            return out
        sends = {e: local[..., idx] for e, idx in p.send.items()}
        counts = {e: rows * pos.size for e, pos in p.recv.items()}
        received = self.comm.Exchange(sends, counts, local.dtype)
        for e, pos in p.recv.items():
            out[..., pos] = received[e].reshape(lead + (pos.size,))
        self.sent_bytes += rows * p.sent_points * local.dtype.itemsize
        self.exchanges += 1
        return out

    def padded(self, local: np.ndarray, left: int) -> np.ndarray:
        """For a ghost list of ``left`` points before the segment and the rest after it:
        ``(..., left + n_d + right)``, the segment with its ghosts in place."""
        ghosts = self.ghost_values(local)
        return np.concatenate([ghosts[..., :left], local, ghosts[..., left:]], axis=-1)

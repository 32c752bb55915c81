"""A trained model ready for sampling, and the one entry point the Generative EnKF calls.

:func:`sample_pseudo_ensemble` draws pseudo-ensemble members conditioned on observations, in
physical units. Member m's sample is a function of ``(seed, m, cycle)`` only: its noise comes
from its own ``torch.Generator`` seeded with ``rng.torch_seed(seed, DIFFUSION_SAMPLING, m,
cycle)`` (a whole-ring network) or from streams by position (a local network, whose samples
also do not depend on how the ring is cut into segments, :mod:`.tiled`), so a rank that owns
members [a, b) draws exactly what one process would (to the round-off of the batched network;
use ``precision="float64"`` for 1e-10 agreement).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import rng
from ..errors import UserError
from .conditioning import Normaliser, condition_from_obs
from .networks import args_from_dict, build_network, locality
from .sampling import (MemberNoise, ddim_invert, ddim_sample, ddpm_sample, fixed_batches,
                       guided_eps_fn, stochastic_encode, strided_times)
from .schedule import Schedule
from .tiled import PositionalNoise, Segment, TiledNet

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class ModelBundle:
    """Network (EMA weights, eval mode) + diffusion schedule + normalisation + obs settings.

    ``nx``: the ring the bundle samples (a whole-ring U-Net: the one it was trained on; a local
    network: its training ring until :func:`on_grid` moves it to another); ``receptive_field``:
    the local network's receptive field record (``left``, ``right``, ``width``, ``downsampling``),
    None for a whole-ring network."""

    net: torch.nn.Module
    schedule: Schedule
    objective: str
    normaliser: Normaliser
    nx: int
    seq_len: int
    obs_interval: int
    obs_sigma: float
    obs_lag: int = 0  # 1: conditioned on observations before the generated state (prior mode)
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32
    info: dict = field(default_factory=dict)
    receptive_field: dict | None = None


def build_bundle(net, schedule: Schedule, objective: str, normaliser: Normaliser,
                 obs_interval: int, obs_sigma: float, info: dict | None = None,
                 obs_lag: int = 0, nx: int | None = None) -> ModelBundle:
    """``nx``: the ring of a local network (a whole-ring network knows its own)."""
    p = next(net.parameters())
    return ModelBundle(net=net.eval(), schedule=schedule, objective=objective,
                       normaliser=normaliser, nx=int(getattr(net.args, "nx", nx)),
                       seq_len=net.args.seq_len, obs_interval=obs_interval, obs_sigma=obs_sigma,
                       obs_lag=obs_lag, device=p.device, dtype=p.dtype, info=dict(info or {}),
                       receptive_field=locality(net.args))


def on_grid(bundle: ModelBundle, nx: int) -> ModelBundle:
    """The same local network sampling a ring of ``nx`` points (checked by the caller against
    its receptive field and downsampling factor)."""
    assert bundle.receptive_field is not None, "a whole-ring network applies to its own nx only"
    return dataclasses.replace(bundle, nx=int(nx))


def bundle_from_checkpoint(ckpt: dict, device: str = "cpu", precision: str = "float32",
                           use_ema: bool = True, name: str = "checkpoint") -> ModelBundle:
    """Rebuild the sampling model from a checkpoint dict (see io.checkpoint)."""
    if precision not in DTYPES:
        raise UserError(f"precision={precision!r}: expected one of {', '.join(DTYPES)}")
    try:
        args = args_from_dict(ckpt["arch"])
        diff = ckpt["diffusion"]
        norm = Normaliser.from_dict(ckpt["normalisation"])
        obs = ckpt["obs"]
        weights = ckpt["ema" if use_ema and "ema" in ckpt else "model"]
    except (KeyError, TypeError) as exc:
        raise UserError(f"{name}: not a genenkf train checkpoint (missing {exc})") from None
    net = build_network(args)
    try:
        net.load_state_dict(weights)
    except RuntimeError as exc:
        raise UserError(f"{name}: weights do not match the stored architecture: "
                        f"{str(exc).splitlines()[0]}") from None
    net = net.to(device=torch.device(device), dtype=DTYPES[precision])
    return build_bundle(net, Schedule(int(diff["timesteps"]), str(diff["schedule"])),
                        str(diff["objective"]), norm, int(obs["interval"]), float(obs["sigma"]),
                        info={"step": int(ckpt.get("step", 0)), "source": name},
                        obs_lag=int(obs.get("lag", 0)),
                        nx=int(ckpt.get("dataset", {}).get("nx", 0)) or None)


def load_bundle(path, device: str = "cpu", precision: str = "float32") -> ModelBundle:
    """Read a ``genenkf train`` checkpoint (weights_only) and build the sampling model."""
    from ..io.checkpoint import load_checkpoint

    return bundle_from_checkpoint(load_checkpoint(path), device, precision, name=str(path))


def member_generators(seed: int, members, cycle: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(rng.torch_seed(seed, rng.Purpose.DIFFUSION_SAMPLING,
                                                         int(m), int(cycle))) for m in members]


def member_noise(bundle: ModelBundle, seed: int, cycle: int, segment: Segment | None = None):
    """``noise_for(members)``: a noise object for a batch of members. A whole-ring network: one
    torch generator per (seed, member, cycle). A local network: numbers by position
    (:class:`~.tiled.PositionalNoise`), so any decomposition of the ring draws the same."""
    dt, dev = bundle.dtype, bundle.device
    if bundle.receptive_field is None:
        return lambda members: MemberNoise(member_generators(seed, members, cycle),
                                           (1, bundle.nx), dtype=dt, device=dev)
    span = (segment.start, segment.stop) if segment is not None else (0, bundle.nx)
    return lambda members: PositionalNoise(seed, members, cycle, span, dtype=dt, device=dev)


ENCODINGS = ("noise", "ddib", "sdedit")


@torch.inference_mode()
def sample_normalised(bundle: ModelBundle, cond: torch.Tensor | None, members, noise_for, *,
                      sampler: str, steps: int, eta: float, guidance: float,
                      x_start: torch.Tensor | None = None, encoding: str = "noise",
                      strength: float = 1.0, refine: int = 2,
                      clip: float | None = 1.0, net=None, batch_members: int = 0,
                      cond_points: int | None = None, batch_rows: int = 0) -> torch.Tensor:
    """Core sampler in normalised units: ``cond (1 or k, 2S, n)`` (None: unconditional),
    ``noise_for(batch of member ids)`` their noise -> ``(k, 1, n)``. How the reverse process
    starts (``encoding``):

    - ``"noise"``: from pure noise at T (``x_start`` unused);
    - ``"ddib"``: deterministic DDIM inversion of ``x_start (1, 1, n)`` with guidance 1 to
      t_s = strength T (``refine`` fixed-point iterations per step, see :func:`ddim_invert`),
      the same start for every member (computed once);
    - ``"sdedit"``: stochastic encoding (Meng et al. 2022, SDEdit): ``x_start`` noised to t_s
      with fresh noise per member, q(x_{t_s} | x_start), so the members are samples of the
      conditional distribution near ``x_start``; ``strength`` sets how far.

    Then guided decoding from t_s (DDIM with ``eta`` or DDPM). ``clip``: bound of the x0
    predictions in normalised units (1.0 = the training data's range), None for no clipping.
    ``net``: the network to evaluate (default the bundle's; a :class:`~.tiled.TiledNet` on a
    segment, whose condition covers ``cond_points`` tile points); ``batch_members``: members
    per network batch (0: all at once), which bounds the memory at large n. ``batch_rows > 0``:
    every network call runs on a batch of exactly that many states
    (:func:`~.sampling.fixed_batches`), so float32 results do not depend on the rank count.
    """
    sch, members = bundle.schedule, list(members)
    dev, dt = bundle.device, bundle.dtype
    net = bundle.net if net is None else net
    if cond is None:  # no observation yet: the unconditional model (the learned null)
        cond, guidance = torch.zeros(1, 2 * bundle.seq_len, cond_points or bundle.nx), 0.0
    cond = cond.to(device=dev, dtype=dt)
    ddpm = sampler == "ddpm" or steps >= sch.timesteps
    encoded = x_start is not None and encoding != "noise"
    times = strided_times(sch.timesteps, sch.timesteps if ddpm else steps,
                          strength if encoded else 1.0)
    eps_fn = guided_eps_fn(fixed_batches(net, batch_rows), sch, bundle.objective, cond,
                           guidance)
    inverted = None
    if encoding == "ddib" and encoded:
        # Inversion is deterministic and identical for all members: run it once (batch 1).
        invert_fn = guided_eps_fn(net, sch, bundle.objective, cond[:1], 1.0)
        inverted = ddim_invert(invert_fn, sch, x_start.to(device=dev, dtype=dt), times, refine)
    batch = batch_members if batch_members > 0 else max(1, len(members))
    out = []
    for first in range(0, len(members), batch):
        chunk = members[first:first + batch]
        noise = noise_for(chunk)
        if not encoded:
            x = noise.draw()
        elif inverted is not None:
            x = inverted.expand(len(chunk), -1, -1).clone()
        else:  # sdedit: q(x_t | x_start) with each member's own noise
            x = stochastic_encode(sch, x_start.to(device=dev, dtype=dt), times[-1],
                                  noise.draw())
        if ddpm:
            out.append(ddpm_sample(eps_fn, sch, x, noise, t_start=times[-1], clip=clip))
        else:
            out.append(ddim_sample(eps_fn, sch, x, times, eta, noise, clip=clip))
    return torch.cat(out)


def sample_pseudo_ensemble(bundle: ModelBundle, obs, mask, members, cycle: int, seed: int, *,
                           sampler: str = "ddim", steps: int = 100, eta: float = 0.3,
                           guidance: float = 3.0, start_state=None, encoding: str = "noise",
                           strength: float = 1.0, inversion_refine: int = 2,
                           clip: float | None = 1.0, segment: Segment | None = None,
                           batch_members: int = 0, batch_rows: int = 0) -> np.ndarray:
    """Pseudo-ensemble ``(len(members), n)`` float64, physical units, n = bundle.nx or the
    segment's points.

    obs: ``(nx,)`` or ``(n, nx)`` history (oldest first), NaN allowed where not observed;
    ``None`` or no rows: no observation to condition on (the unconditional model);
    mask: ``(nx,)`` or ``(n, nx)`` bool; members: member ids (e.g. this rank's block);
    start_state: ``(n,)`` simulation state the members start from, with ``encoding``
    ``"ddib"`` (deterministic inversion, then decoding) or ``"sdedit"`` (noised to the start
    time with fresh noise per member, then decoded); ``"noise"`` ignores it;
    strength: start time t_s / T in (0, 1] of the encodings (smaller: closer to start_state);
    inversion_refine: DDIB fixed-point iterations per inversion step (0: classic inversion);
    clip: x0 predictions are clamped to [-clip, clip] in normalised units while decoding; 1.0 is
    exactly the training data's range [min, max] (None: no clipping);
    segment: sample only the points ``[segment.start, segment.stop)`` of the ring (a local
    network on a domain, :class:`~.tiled.Segment`; its ``fill`` exchanges the tile halo, so all
    ranks of a domain group call this together); batch_members: members per network batch;
    batch_rows: network calls on batches of exactly this many states (0: as they come); a
    fixed size makes float32 members independent of how they are split over ranks.
    Sampler ``ddpm`` (or steps >= T) is ancestral sampling over every step; ``ddim`` uses
    ``steps`` strided steps with stochasticity ``eta``.
    """
    members = [int(m) for m in members]
    n = bundle.nx if segment is None else segment.points
    if not members:
        return np.empty((0, n))
    if sampler not in ("ddim", "ddpm"):
        raise UserError(f"sampler={sampler!r}: expected ddim or ddpm")
    if encoding not in ENCODINGS:
        raise UserError(f"encoding={encoding!r}: expected one of {', '.join(ENCODINGS)}")
    if steps < 1:
        raise UserError(f"sampling steps={steps}: must be >= 1")
    if not 0.0 < strength <= 1.0:
        raise UserError(f"strength={strength}: must be in (0, 1]")
    has_obs = obs is not None and np.size(obs) > 0
    net, tile = None, None
    if segment is not None:
        tile = segment.tile
        net = TiledNet(bundle.net, segment.halo, segment.fill)
    if not has_obs:
        cond = None
    elif segment is None:
        cond = condition_from_obs(obs, mask, bundle.normaliser, bundle.seq_len, bundle.nx)
    else:
        cond = condition_from_obs(np.asarray(obs)[..., tile], np.asarray(mask)[..., tile],
                                  bundle.normaliser, bundle.seq_len, tile.size)
    x_start = None
    if start_state is not None and encoding != "noise":
        state = np.asarray(start_state, dtype=np.float64)
        if state.shape != (n,):
            raise UserError(f"start state has shape {state.shape}, expected ({n},)")
        x_start = torch.as_tensor(bundle.normaliser.forward(state))[None, None]
    x = sample_normalised(bundle, cond, members, member_noise(bundle, seed, cycle, segment),
                          sampler=sampler, steps=steps, eta=eta, guidance=guidance,
                          x_start=x_start, encoding=encoding, strength=strength,
                          refine=inversion_refine, clip=clip, net=net,
                          batch_members=batch_members,
                          cond_points=None if tile is None else tile.size, batch_rows=batch_rows)
    return bundle.normaliser.inverse(x[:, 0].to(torch.float64).cpu().numpy())

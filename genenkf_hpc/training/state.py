"""Optimizer-side state of a training run: learning-rate schedule, EMA weights, and the
checkpoint dict (plain tensors / numbers / strings only, so ``weights_only=True`` loads it)."""
from __future__ import annotations

import math

import torch

from .. import __version__

FORMAT = "genenkf-diffusion/1"


def lr_at(step: int, base_lr: float, total: int, warmup: int, schedule: str) -> float:
    """Learning rate of optimizer step ``step`` (0-based): linear warm-up, then constant or
    cosine decay to 0 at ``total``. A pure function of the step: nothing to save."""
    if warmup > 0 and step < warmup:
        return base_lr * (step + 1) / warmup
    if schedule == "constant":
        return base_lr
    span = max(total - warmup, 1)
    return base_lr * 0.5 * (1 + math.cos(math.pi * min(step - warmup, span) / span))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, net: torch.nn.Module, step: int, decay: float) -> None:
    """ema <- d ema + (1 - d) net with d = min(decay, (1 + step) / (10 + step)): the warm-up
    keeps early EMA weights from being dominated by the random initialisation."""
    d = min(decay, (1 + step) / (10 + step))
    for pe, p in zip(ema.parameters(), net.parameters()):
        pe.lerp_(p.detach(), 1 - d)
    for be, b in zip(ema.buffers(), net.buffers()):
        be.copy_(b)


def rng_state(seed: int, step: int) -> dict:
    """Stored for completeness: every draw is a function of (seed, step), so resuming needs none
    of this, but the process RNG states are kept (as tensors) for inspection."""
    state = {"torch": torch.get_rng_state(), "seed_step": torch.tensor([seed, step])}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def make_checkpoint(*, step: int, net, ema, optimizer, cfg_dict: dict, arch: dict,
                    diffusion: dict, normalisation: dict, obs: dict, dataset: dict,
                    history: list, window: tuple[float, int], seed: int,
                    world_size: int, receptive_field: dict | None = None) -> dict:
    """``receptive_field``: a local network's record (``left``, ``right``, ``width``,
    ``downsampling``), which the compatibility check reads instead of nx."""
    ckpt = {
        "format": FORMAT, "version": __version__, "step": int(step),
        "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "ema": {k: v.detach().cpu() for k, v in ema.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "config": cfg_dict, "arch": arch, "diffusion": diffusion,
        "normalisation": normalisation, "obs": obs, "dataset": dataset,
        "loss_history": torch.tensor(history, dtype=torch.float64).reshape(-1, 4),
        "window": torch.tensor([window[0], window[1]], dtype=torch.float64),
        "rng": rng_state(seed, step), "world_size": int(world_size),
    }
    if receptive_field is not None:
        ckpt["receptive_field"] = dict(receptive_field)
    return ckpt

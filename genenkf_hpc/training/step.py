"""One optimizer step over a rank's slice of the global batch (shared by ``genenkf train`` and
``genenkf bench train``)."""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch

from ..diffusion.schedule import Schedule, per_sample_loss, training_target
from ..errors import UserError
from .data import BatchMaker, GlobalBatch
from .state import ema_update


@dataclass
class StepParts:
    model: torch.nn.Module       # the DDP wrapper (or the network itself)
    net: torch.nn.Module         # the bare network
    ema: torch.nn.Module
    opt: torch.optim.Optimizer
    schedule: Schedule
    objective: str
    loss: str
    ema_decay: float
    batch_size: int              # GLOBAL batch
    world_size: int
    distributed: bool
    bf16: bool
    device_type: str


def optimizer_step(p: StepParts, gb: GlobalBatch, maker: BatchMaker, micro, lr: float,
                   step: int) -> torch.Tensor:
    """Accumulate gradients over the micro-batches ``micro = [(a, b), ...]`` (rows of the global
    batch this rank owns), step Adam, update the EMA; return the SUM of per-sample losses as a
    0-d float64 tensor on the training device (no host synchronisation here: the caller reduces
    it over ranks and checks it with :func:`check_loss`).

    Each micro-batch's loss is sum(per-sample) * world / B: DDP averages gradients over ranks,
    so the result is the gradient of the global-batch mean, whatever the split."""
    for group in p.opt.param_groups:
        group["lr"] = lr
    p.opt.zero_grad(set_to_none=True)
    scale = p.world_size / p.batch_size
    total = torch.zeros((), dtype=torch.float64)
    for j, (a, b) in enumerate(micro):
        sync = p.model.no_sync() if p.distributed and j < len(micro) - 1 \
            else contextlib.nullcontext()
        inp = maker.inputs(gb, a, b)
        # autocast knows only real device types: no context at all when it is off
        cast = torch.autocast(p.device_type, dtype=torch.bfloat16) if p.bf16 \
            else contextlib.nullcontext()
        with sync:
            with cast:
                out = p.model(inp["x_t"], inp["t"], inp["cond"], inp["drop"])
            target = training_target(p.schedule, p.objective, inp["x0"], inp["t"], inp["eps"])
            per = per_sample_loss(out.float(), target, p.loss)
            (per.sum() * scale).backward()
        total = total.to(per.device) + per.detach().sum().double()
    p.opt.step()
    ema_update(p.ema, p.net, step, p.ema_decay)
    return total


def check_loss(loss: float, step: int) -> None:
    """A non-finite (global) loss stops the run; every rank sees the same reduced value, so all
    raise this together."""
    if not math.isfinite(loss):
        raise UserError(f"train: loss became {loss} at step {step}; lower train.lr")

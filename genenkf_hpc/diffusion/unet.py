"""1D U-Net denoiser over a periodic grid, conditioned on observations.

Architecture after lucidrains/denoising-diffusion-pytorch (Unet1D), as used by the original
Generative EnKF: sinusoidal time embedding -> MLP; per level two ResNet blocks (GroupNorm,
SiLU, scale-shift by the time embedding) and linear attention (Shen et al. 2021), then a
stride-2 down-sampling; full softmax attention at the bottleneck; the mirror image going up with
skip connections. Lorenz-96 is periodic, so every convolution pads CIRCULARLY and nothing
depends on absolute position: rolling the input by a multiple of 2^(levels-1) rolls the output.

Conditioning (``cond (B, 2 S, nx)``, S = seq_len): channels 0..S-1 hold the normalised
observations of the last S steps (0 where unobserved), channels S..2S-1 the masks (1 observed).
The latest observation and mask are concatenated to the noisy state as input channels; with
S >= 2 a convolutional embedding of the whole history is added to the first feature map.
Classifier-free guidance (Ho & Salimans 2022): the NULL condition is a learned vector of 2 S
values broadcast over the grid; ``cond=None`` uses it for every sample, ``drop (B,) bool`` for
the samples where it is True.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError


@dataclass(frozen=True)
class UNetArgs:
    """Everything needed to rebuild the network (stored in checkpoints as a plain dict)."""

    nx: int
    base_width: int = 40
    multipliers: tuple[int, ...] = (1, 2, 4, 8)
    groups: int = 8
    attention: bool = True
    seq_len: int = 1
    attn_heads: int = 4
    attn_dim_head: int = 32
    blocks_per_level: int = 2
    extra: dict = field(default_factory=dict)  # reserved for forward-compatible additions

    def to_dict(self) -> dict:
        d = asdict(self)
        d["multipliers"] = list(self.multipliers)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "UNetArgs":
        d = dict(d)
        d["multipliers"] = tuple(int(m) for m in d["multipliers"])
        return cls(**d)


def check_args(args: UNetArgs) -> None:
    """User-facing checks of the architecture against the grid (UserError names the key)."""
    levels = len(args.multipliers)
    factor = 2 ** (levels - 1)
    if args.nx % factor:
        raise UserError(f"model.nx={args.nx} is not divisible by 2^(levels-1)={factor}: "
                        f"network.multipliers={list(args.multipliers)} has {levels} levels, "
                        f"each halving the grid; use fewer levels or an nx divisible by {factor}")
    for m in args.multipliers:
        if (args.base_width * m) % args.groups:
            raise UserError(f"network.groups={args.groups} does not divide the {m} x "
                            f"network.base_width={args.base_width} channels of a level")
    if args.seq_len < 1:
        raise UserError(f"network.seq_len={args.seq_len}: must be >= 1")


def _conv(c_in: int, c_out: int, k: int = 3, stride: int = 1) -> nn.Conv1d:
    return nn.Conv1d(c_in, c_out, k, stride=stride, padding=k // 2, padding_mode="circular")


class SinusoidalEmbedding(nn.Module):
    """Transformer-style embedding of the (integer) diffusion time, ``(B,) -> (B, dim)``."""

    def __init__(self, dim: int, theta: float = 10000.0):
        super().__init__()
        self.dim, self.theta = dim, theta

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        t = t if t.is_floating_point() else t.float()
        freq = torch.exp(-math.log(self.theta) / max(half - 1, 1)
                         * torch.arange(half, device=t.device, dtype=t.dtype))
        arg = t[:, None] * freq[None]
        return torch.cat([arg.sin(), arg.cos()], dim=-1)


class Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, groups: int):
        super().__init__()
        self.proj = _conv(c_in, c_out)
        self.norm = nn.GroupNorm(groups, c_out)

    def forward(self, x, scale_shift=None):
        x = self.norm(self.proj(x))
        if scale_shift is not None:
            scale, shift = scale_shift
            x = x * (scale + 1) + shift
        return F.silu(x)


class ResnetBlock(nn.Module):
    """Two conv blocks; the time embedding scales and shifts the first (FiLM)."""

    def __init__(self, c_in: int, c_out: int, time_dim: int, groups: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(time_dim, 2 * c_out))
        self.block1 = Block(c_in, c_out, groups)
        self.block2 = Block(c_out, c_out, groups)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, temb):
        scale_shift = self.mlp(temb)[:, :, None].chunk(2, dim=1)
        return self.block2(self.block1(x, scale_shift)) + self.skip(x)


class LinearAttention(nn.Module):
    """O(n) attention: softmax over features for q, over positions for k (Shen et al. 2021)."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads, self.scale = heads, dim_head ** -0.5
        hidden = heads * dim_head
        self.norm = nn.GroupNorm(1, dim)
        self.to_qkv = nn.Conv1d(dim, 3 * hidden, 1, bias=False)
        self.to_out = nn.Sequential(nn.Conv1d(hidden, dim, 1), nn.GroupNorm(1, dim))

    def forward(self, x):
        b, _, n = x.shape
        q, k, v = (z.reshape(b, self.heads, -1, n) for z in self.to_qkv(self.norm(x)).chunk(3, 1))
        q = q.softmax(dim=-2) * self.scale
        k = k.softmax(dim=-1)
        context = torch.einsum("bhdn,bhen->bhde", k, v)
        out = torch.einsum("bhde,bhdn->bhen", context, q).reshape(b, -1, n)
        return x + self.to_out(out)


class Attention(nn.Module):
    """Full softmax self-attention over the grid points (bottleneck only)."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads, self.scale = heads, dim_head ** -0.5
        hidden = heads * dim_head
        self.norm = nn.GroupNorm(1, dim)
        self.to_qkv = nn.Conv1d(dim, 3 * hidden, 1, bias=False)
        self.to_out = nn.Conv1d(hidden, dim, 1)

    def forward(self, x):
        b, _, n = x.shape
        q, k, v = (z.reshape(b, self.heads, -1, n) for z in self.to_qkv(self.norm(x)).chunk(3, 1))
        attn = (torch.einsum("bhdi,bhdj->bhij", q, k) * self.scale).softmax(dim=-1)
        out = torch.einsum("bhij,bhdj->bhdi", attn, v).reshape(b, -1, n)
        return x + self.to_out(out)


class Upsample(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = _conv(c_in, c_out)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class UNet1D(nn.Module):
    """``forward(x (B, 1, nx), t (B,), cond (B, 2 S, nx) | None, drop (B,) bool | None)``
    -> network output ``(B, 1, nx)`` (eps or v, depending on the training objective)."""

    def __init__(self, args: UNetArgs):
        super().__init__()
        check_args(args)
        self.args = args
        s, w, g = args.seq_len, args.base_width, args.groups
        heads, dh = args.attn_heads, args.attn_dim_head
        tdim = 4 * w
        self.null_cond = nn.Parameter(torch.cat([torch.zeros(s), -torch.ones(s)]))
        sdim = 2 * max(2, w // 2)
        self.time_mlp = nn.Sequential(SinusoidalEmbedding(sdim), nn.Linear(sdim, tdim), nn.GELU(),
                                      nn.Linear(tdim, tdim))
        self.init_conv = _conv(3, w, k=7)
        self.history = (nn.Sequential(_conv(2 * s, w), nn.SiLU(), nn.Conv1d(w, w, 1))
                        if s >= 2 else None)
        widths = [w * m for m in args.multipliers]
        ins = [w] + widths[:-1]
        attn = (lambda c: LinearAttention(c, heads, dh)) if args.attention \
            else (lambda c: nn.Identity())
        nb = args.blocks_per_level
        self.downs = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(zip(ins, widths)):
            last = i == len(widths) - 1
            self.downs.append(nn.ModuleList([
                nn.ModuleList([ResnetBlock(c_in, c_in, tdim, g) for _ in range(nb)]),
                attn(c_in),
                _conv(c_in, c_out) if last else _conv(c_in, c_out, stride=2)]))
        mid = widths[-1]
        self.mid1 = ResnetBlock(mid, mid, tdim, g)
        self.mid_attn = Attention(mid, heads, dh) if args.attention else nn.Identity()
        self.mid2 = ResnetBlock(mid, mid, tdim, g)
        self.ups = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(reversed(list(zip(ins, widths)))):
            last = i == len(widths) - 1
            self.ups.append(nn.ModuleList([
                nn.ModuleList([ResnetBlock(c_out + c_in, c_out, tdim, g) for _ in range(nb)]),
                attn(c_out),
                _conv(c_out, c_in) if last else Upsample(c_out, c_in)]))
        self.final_block = ResnetBlock(2 * w, w, tdim, g)
        self.final_conv = nn.Conv1d(w, 1, 1)

    def condition(self, cond: torch.Tensor | None, drop: torch.Tensor | None,
                  like: torch.Tensor) -> torch.Tensor:
        """The condition actually fed to the network: the learned null where dropped."""
        b, n = like.shape[0], like.shape[-1]
        null = self.null_cond.to(like.dtype)[None, :, None].expand(b, -1, n)
        if cond is None:
            return null
        cond = cond.to(like.dtype)
        if drop is None:
            return cond
        return torch.where(drop.to(like.device)[:, None, None], null, cond)

    def forward(self, x, t, cond=None, drop=None):
        s = self.args.seq_len
        c = self.condition(cond, drop, x)
        h = self.init_conv(torch.cat([x, c[:, s - 1:s], c[:, 2 * s - 1:2 * s]], dim=1))
        if self.history is not None:
            h = h + self.history(c)
        r = h
        temb = self.time_mlp(t.to(x.dtype))
        skips = []
        for blocks, attn, down in self.downs:
            for block in blocks:
                h = block(h, temb)
                skips.append(h)
            h = down(attn(h))
        h = self.mid2(self.mid_attn(self.mid1(h, temb)), temb)
        for blocks, attn, up in self.ups:
            for block in blocks:
                h = block(torch.cat([h, skips.pop()], dim=1), temb)
            h = up(attn(h))
        h = self.final_block(torch.cat([h, r], dim=1), temb)
        return self.final_conv(h)

"""A local, translation-equivariant denoiser: applies to any ring length and tile by tile.

ALGORITHM.md section 12. The 1D U-Net of :mod:`.unet` mixes distant points twice: GroupNorm
normalises over the whole domain and attention attends to all of it, so one far-away point
changes every output. Here nothing does:

- normalisation is per position over the channels (:class:`ChannelNorm`, a LayerNorm over
  channels), never over positions;
- no attention; the time embedding scales and shifts whole channels (FiLM), which depends on t
  only;
- every convolution pads circularly, so on a ring the network is equivariant under shifts by a
  multiple of the downsampling factor ``2^(levels-1)``.

Output point i therefore depends only on inputs ``i - left .. i + right`` (its receptive field,
:func:`receptive_field`, computed from the layer structure and recorded in checkpoints), and
the network applies to any N that is a multiple of the factor. On a tile that holds a segment
plus a halo of at least the receptive radius on each side, aligned to the factor, the
segment's outputs equal those of the whole ring: that is how domain-decomposed sampling
evaluates it (:mod:`.tiled`).

Structure: ``init conv -> [blocks, down] per level -> mid blocks -> [blocks with skip, up] per
level -> final pointwise block -> 1x1 conv``, ResNet blocks with two ``kernel``-wide
convolutions. The condition is the same as the U-Net's (``cond (B, 2 S, n)``: S observation rows
then S mask rows; a learned null vector for classifier-free guidance).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from .unet import SinusoidalEmbedding

KIND = "local"


@dataclass(frozen=True)
class LocalNetArgs:
    """Everything needed to rebuild the network (stored in checkpoints as ``arch``)."""

    base_width: int = 32
    multipliers: tuple[int, ...] = (1, 2)
    blocks_per_level: int = 1
    mid_blocks: int = 1
    kernel: int = 3
    seq_len: int = 1
    kind: str = KIND

    def to_dict(self) -> dict:
        d = asdict(self)
        d["multipliers"] = list(self.multipliers)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LocalNetArgs":
        d = dict(d)
        d["multipliers"] = tuple(int(m) for m in d["multipliers"])
        return cls(**d)

    @property
    def factor(self) -> int:
        """Downsampling factor: the ring length must be a multiple of it."""
        return 2 ** (len(self.multipliers) - 1)


def check_local_args(args: LocalNetArgs) -> None:
    """User-facing checks of the architecture (UserError names the key)."""
    if args.kernel < 1 or args.kernel % 2 == 0:
        raise UserError(f"network.kernel={args.kernel}: must be odd and >= 1 (centred "
                        "convolutions)")
    if args.seq_len < 1:
        raise UserError(f"network.seq_len={args.seq_len}: must be >= 1")
    if not args.multipliers or min(args.multipliers) < 1:
        raise UserError(f"network.multipliers={list(args.multipliers)}: expected integers >= 1")


def _conv(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Conv1d:
    return nn.Conv1d(c_in, c_out, k, stride=stride, padding=k // 2, padding_mode="circular")


class ChannelNorm(nn.Module):
    """LayerNorm over the channels at every position ``(B, C, n)``: no mixing of positions."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(dim=1, keepdim=True)
        var = (x - mean).square().mean(dim=1, keepdim=True)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight[:, None] \
            + self.bias[:, None]


class Block(nn.Module):
    """conv -> ChannelNorm -> FiLM -> SiLU."""

    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__()
        self.proj = _conv(c_in, c_out, k)
        self.norm = ChannelNorm(c_out)

    def forward(self, x, scale_shift=None):
        x = self.norm(self.proj(x))
        if scale_shift is not None:
            scale, shift = scale_shift
            x = x * (scale + 1) + shift
        return F.silu(x)


class ResBlock(nn.Module):
    """Two conv blocks, the time embedding scales and shifts the first, 1x1 skip."""

    def __init__(self, c_in: int, c_out: int, time_dim: int, k: int):
        super().__init__()
        self.kernel = k
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(time_dim, 2 * c_out))
        self.block1 = Block(c_in, c_out, k)
        self.block2 = Block(c_out, c_out, k)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, temb):
        scale_shift = self.mlp(temb)[:, :, None].chunk(2, dim=1)
        return self.block2(self.block1(x, scale_shift)) + self.skip(x)


class Down(nn.Module):
    """Stride-2 convolution: position q of the output sits at input position 2q."""

    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__()
        self.kernel = k
        self.conv = _conv(c_in, c_out, k, stride=2)

    def forward(self, x):
        return self.conv(x)


class Up(nn.Module):
    """Nearest-neighbour upsampling by 2, then a convolution."""

    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__()
        self.kernel = k
        self.conv = _conv(c_in, c_out, k)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class LocalNet1D(nn.Module):
    """``forward(x (B, 1, n), t (B,), cond (B, 2 S, n) | None, drop (B,) bool | None)`` ->
    ``(B, 1, n)``, for any n that is a multiple of ``args.factor``."""

    def __init__(self, args: LocalNetArgs):
        super().__init__()
        check_local_args(args)
        self.args = args
        s, w, k = args.seq_len, args.base_width, args.kernel
        tdim = 4 * w
        self.null_cond = nn.Parameter(torch.cat([torch.zeros(s), -torch.ones(s)]))
        sdim = 2 * max(2, w // 2)
        self.time_mlp = nn.Sequential(SinusoidalEmbedding(sdim), nn.Linear(sdim, tdim), nn.GELU(),
                                      nn.Linear(tdim, tdim))
        self.init_conv = _conv(3, w, k)
        self.history = (nn.Sequential(_conv(2 * s, w, k), nn.SiLU(), nn.Conv1d(w, w, 1))
                        if s >= 2 else None)
        widths = [w * m for m in args.multipliers]
        ins = [w] + widths[:-1]
        nb = args.blocks_per_level
        self.downs = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(zip(ins, widths)):
            last = i == len(widths) - 1
            self.downs.append(nn.ModuleList([
                nn.ModuleList([ResBlock(c_in, c_in, tdim, k) for _ in range(nb)]),
                nn.Conv1d(c_in, c_out, 1) if last else Down(c_in, c_out, k)]))
        mid = widths[-1]
        self.mids = nn.ModuleList([ResBlock(mid, mid, tdim, k) for _ in range(args.mid_blocks)])
        self.ups = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(reversed(list(zip(ins, widths)))):
            last = i == len(widths) - 1
            self.ups.append(nn.ModuleList([
                nn.ModuleList([ResBlock(c_out + c_in, c_out, tdim, k) for _ in range(nb)]),
                nn.Conv1d(c_out, c_in, 1) if last else Up(c_out, c_in, k)]))
        # Pointwise (kernel 1): it merges the first feature map without widening the field.
        self.final_block = ResBlock(2 * w, w, tdim, 1)
        self.final_conv = nn.Conv1d(w, 1, 1)

    def condition(self, cond, drop, like):
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
        if x.shape[-1] % self.args.factor:
            raise UserError(f"a grid of {x.shape[-1]} points is not a multiple of the network's "
                            f"downsampling factor {self.args.factor}")
        c = self.condition(cond, drop, x)
        h = self.init_conv(torch.cat([x, c[:, s - 1:s], c[:, 2 * s - 1:2 * s]], dim=1))
        if self.history is not None:
            h = h + self.history(c)
        r = h
        temb = self.time_mlp(t.to(x.dtype))
        skips = []
        for blocks, down in self.downs:
            for block in blocks:
                h = block(h, temb)
                skips.append(h)
            h = down(h)
        for block in self.mids:
            h = block(h, temb)
        for blocks, up in self.ups:
            for block in blocks:
                h = block(torch.cat([h, skips.pop()], dim=1), temb)
            h = up(h)
        h = self.final_block(torch.cat([h, r], dim=1), temb)
        return self.final_conv(h)


# ---------------------------------------------------------------------------------------------
# Receptive field: which inputs an output point depends on, from the layer structure.
#
# A feature map at stride s (s fine points per position; the coarsest stride is the factor f)
# is described by its dependency interval per phase: position p sits at fine point p s and
# depends on the input fine points p s + [lo, hi] of phase p mod (f / s). Convolutions,
# stride-2 convolutions, nearest upsampling and concatenations map these intervals exactly
# (without cancellations, which random weights do not produce), so the result is the exact
# structural receptive field; tests/diffusion/test_local_net.py checks it by perturbation.


def _conv_support(dep: list, stride: int, k: int) -> list:
    """Intervals after a stride-1 convolution of width k at stride ``stride``."""
    phases, h = len(dep), k // 2
    out = []
    for p in range(phases):
        lo = min(j * stride + dep[(p + j) % phases][0] for j in range(-h, h + 1))
        hi = max(j * stride + dep[(p + j) % phases][1] for j in range(-h, h + 1))
        out.append((lo, hi))
    return out


def _down_support(dep: list, stride: int, k: int) -> list:
    """Stride-2 convolution: output q (stride 2s) reads input positions 2q + j."""
    phases, h = len(dep), k // 2
    out = []
    for q in range(max(1, phases // 2)):
        lo = min(j * stride + dep[(2 * q + j) % phases][0] for j in range(-h, h + 1))
        hi = max(j * stride + dep[(2 * q + j) % phases][1] for j in range(-h, h + 1))
        out.append((lo, hi))
    return out


def _up_support(dep: list, stride: int) -> list:
    """Nearest upsampling: output p (stride s/2) copies input p // 2, which sits
    ``(p % 2) s / 2`` fine points to its left."""
    phases = len(dep)
    return [(dep[(p // 2) % phases][0] - (p % 2) * stride // 2,
             dep[(p // 2) % phases][1] - (p % 2) * stride // 2) for p in range(2 * phases)]


def _union(a: list, b: list) -> list:
    return [(min(x[0], y[0]), max(x[1], y[1])) for x, y in zip(a, b)]


def _res_support(dep: list, stride: int, k: int) -> list:
    return _union(_conv_support(_conv_support(dep, stride, k), stride, k), dep)


def receptive_field(args: LocalNetArgs) -> tuple[int, int]:
    """``(left, right)``: output point i depends on inputs ``i - left .. i + right`` at most
    (the maximum over the ``factor`` phases of the output grid)."""
    f, k = args.factor, args.kernel
    dep = [(0, 0)] * f  # the input itself, at stride 1 (f phases)
    dep = _conv_support(dep, 1, k)  # init conv (the history conv has the same width)
    first, stride, skips = dep, 1, []
    levels = len(args.multipliers)
    for i in range(levels):
        for _ in range(args.blocks_per_level):
            dep = _res_support(dep, stride, k)
            skips.append(dep)
        if i < levels - 1:
            dep, stride = _down_support(dep, stride, k), 2 * stride
    for _ in range(args.mid_blocks):
        dep = _res_support(dep, stride, k)
    for i in range(levels):
        for _ in range(args.blocks_per_level):
            dep = _res_support(_union(dep, skips.pop()), stride, k)
        if i < levels - 1:
            dep, stride = _conv_support(_up_support(dep, stride), stride // 2, k), stride // 2
    dep = _union(dep, first)  # the final pointwise block and the 1x1 conv add no width
    return -min(lo for lo, _ in dep), max(hi for _, hi in dep)


def field_record(args: LocalNetArgs) -> dict:
    """What a checkpoint records about the network's locality (CONTRACT section 7)."""
    left, right = receptive_field(args)
    return {"left": left, "right": right, "width": left + right + 1,
            "downsampling": args.factor}

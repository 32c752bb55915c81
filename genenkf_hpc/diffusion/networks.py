"""The denoiser networks by kind, so the trainer, the benchmarks and the sampler build either.

- ``"unet"`` (default, :mod:`.unet`): the original's 1D U-Net over the whole ring of ``nx``
  points (GroupNorm, attention); it only applies to the ``nx`` it was trained on;
- ``"local"`` (:mod:`.local_net`): a fully convolutional, translation-equivariant network with a
  finite receptive field; it applies to any ring length that is a multiple of its
  downsampling factor, and can be evaluated tile by tile on domains.

A checkpoint's ``arch`` dict names the kind (absent: ``"unet"``, as in older checkpoints).
"""
from __future__ import annotations

from ..errors import UserError
from .local_net import KIND as LOCAL, LocalNet1D, LocalNetArgs, check_local_args, field_record
from .unet import UNet1D, UNetArgs, check_args

KINDS = ("unet", LOCAL)


def network_args(cfg, nx: int):
    """The architecture the [network] section asks for, on a ring of ``nx`` points."""
    n = cfg.network
    if n.kind == LOCAL:
        return LocalNetArgs(base_width=n.base_width, multipliers=tuple(n.multipliers),
                            blocks_per_level=n.blocks_per_level, seq_len=n.seq_len)
    return UNetArgs(nx=nx, base_width=n.base_width, multipliers=tuple(n.multipliers),
                    groups=n.groups, attention=n.attention, seq_len=n.seq_len,
                    blocks_per_level=n.blocks_per_level)


def check_network(args, nx: int) -> None:
    """User-facing checks of an architecture for training on ``nx`` points."""
    if isinstance(args, UNetArgs):
        check_args(args)
        return
    check_local_args(args)
    rf = field_record(args)
    if nx % rf["downsampling"]:
        raise UserError(f"model.nx={nx} is not a multiple of the local network's downsampling "
                        f"factor {rf['downsampling']} (network.multipliers="
                        f"{list(args.multipliers)})")
    if nx < rf["width"]:
        raise UserError(f"model.nx={nx} is smaller than the local network's receptive field of "
                        f"{rf['width']} points: it would learn its own wrap-around; train on a "
                        "longer ring")


def build_network(args):
    return LocalNet1D(args) if isinstance(args, LocalNetArgs) else UNet1D(args)


def args_from_dict(arch: dict):
    """A checkpoint's ``arch`` -> :class:`UNetArgs` or :class:`LocalNetArgs`."""
    kind = arch.get("kind", "unet")
    if kind == LOCAL:
        return LocalNetArgs.from_dict(arch)
    if kind != "unet":
        raise UserError(f"network kind {kind!r}: expected one of {', '.join(KINDS)}")
    return UNetArgs.from_dict({k: v for k, v in arch.items() if k != "kind"})


def locality(args) -> dict | None:
    """The receptive field record of a local network (``left``, ``right``, ``width``,
    ``downsampling``), None for a whole-ring network."""
    return field_record(args) if isinstance(args, LocalNetArgs) else None


def check_grid(receptive_field: dict | None, trained_nx: int, nx: int, name: str) -> None:
    """Can the model ``name`` sample a ring of ``nx`` points? A whole-ring network only the
    ``trained_nx`` it was trained on; a local network any multiple of its downsampling factor
    that is at least its receptive field (a shorter ring would make the network see its own
    wrap-around, an input it never met in training). UserError naming model.nx and both
    values."""
    if receptive_field is None:
        if nx != trained_nx:
            raise UserError(f"model {name} was trained for nx={trained_nx}, but model.nx={nx}")
        return
    factor, width = int(receptive_field["downsampling"]), int(receptive_field["width"])
    if nx % factor:
        raise UserError(f"model.nx={nx} is not a multiple of the downsampling factor {factor} "
                        f"of model {name} (a local network)")
    if nx < width:
        raise UserError(f"model.nx={nx} is smaller than the receptive field of {width} points "
                        f"of model {name}: the network would see its own wrap-around")

"""The samplers run with the network on another device than the CPU (issue 12: the GPU paths).

A CPU machine has no GPU, but it has the "meta" device (shapes without data): a tensor left
behind on the CPU meets one on the network's device and torch raises, exactly as it would on
CUDA; and any copy to the host (``.cpu()``, ``float()``) fails, which on a GPU is a stall of
every sampling step. So every sampler, encoding and guidance mode runs here on "meta".
"""
import pytest
import torch

from genenkf_hpc.diffusion.bundle import build_bundle, member_noise, sample_normalised
from genenkf_hpc.diffusion.conditioning import Normaliser
from genenkf_hpc.diffusion.schedule import Schedule
from genenkf_hpc.diffusion.unet import UNet1D, UNetArgs

META = torch.device("meta")


@pytest.fixture(scope="module")
def bundle():
    net = UNet1D(UNetArgs(nx=16, base_width=8, multipliers=(1, 2), groups=4, seq_len=2))
    return build_bundle(net.to(META), Schedule(8, "cosine"), "v", Normaliser(-8.0, 13.0), 2, 1.0)


@pytest.mark.parametrize("sampler, encoding, guidance", [
    ("ddim", "noise", 3.0), ("ddim", "ddib", 1.0), ("ddim", "ddib", 3.0),
    ("ddim", "sdedit", 3.0), ("ddpm", "noise", 3.0), ("ddpm", "sdedit", 1.0)])
def test_sampling_stays_on_the_network_device(bundle, sampler, encoding, guidance):
    cond = torch.zeros(1, 2 * bundle.seq_len, bundle.nx)  # built on the CPU, as the caller does
    start = None if encoding == "noise" else torch.zeros(1, 1, bundle.nx)
    x = sample_normalised(bundle, cond, range(3), member_noise(bundle, 0, 1), sampler=sampler,
                          steps=2, eta=0.3, guidance=guidance, x_start=start,
                          encoding=encoding, strength=0.5, refine=1, clip=1.0)
    assert x.device == META and x.shape == (3, 1, bundle.nx)


def test_unconditional_sampling_stays_on_the_network_device(bundle):
    x = sample_normalised(bundle, None, range(2), member_noise(bundle, 0, 1), sampler="ddim",
                          steps=2, eta=0.3, guidance=3.0)
    assert x.device == META

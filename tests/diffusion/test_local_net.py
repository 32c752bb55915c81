"""The local network: translation equivariance, its receptive field (exact, by perturbation),
any ring length, and the trainer's checks of the training ring."""
import pytest
import torch

from genenkf_hpc.diffusion.conditioning import make_condition
from genenkf_hpc.diffusion.local_net import LocalNet1D, LocalNetArgs, receptive_field
from genenkf_hpc.diffusion.networks import args_from_dict, check_network
from genenkf_hpc.errors import UserError

torch.set_num_threads(1)

ARCHS = [LocalNetArgs(base_width=8),                                   # the shipped layout
         LocalNetArgs(base_width=8, multipliers=(1, 2, 2), seq_len=2),  # factor 4, history
         LocalNetArgs(base_width=8, blocks_per_level=2, mid_blocks=0, kernel=5)]


def net_for(args, seed=0):
    torch.manual_seed(seed)
    net = LocalNet1D(args).double().eval()
    with torch.no_grad():
        net.null_cond.copy_(torch.randn(net.null_cond.shape, dtype=torch.float64))
    return net


def inputs(b, n, seq_len, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 1, n, generator=g, dtype=torch.float64)
    obs = torch.randn(b, seq_len, n, generator=g, dtype=torch.float64)
    mask = torch.rand(b, seq_len, n, generator=g) < 0.5
    return x, make_condition(obs, mask)


@pytest.mark.parametrize("args", ARCHS, ids=["shipped", "factor4-history", "k5"])
def test_translation_equivariance(args):
    net, n = net_for(args), 96
    x, cond = inputs(2, n, args.seq_len)
    t = torch.tensor([3, 700])
    out = net(x, t, cond)
    for shift in (args.factor, 5 * args.factor, n - args.factor):
        rolled = net(torch.roll(x, shift, -1), t, torch.roll(cond, shift, -1))
        torch.testing.assert_close(rolled, torch.roll(out, shift, -1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("args", ARCHS, ids=["shipped", "factor4-history", "k5"])
@pytest.mark.parametrize("what", ["state", "condition"])
def test_receptive_field_is_exact(args, what):
    """A perturbation outside [i - left, i + right] changes nothing at i; for the point at the
    field's edge (of the phase that reaches it) it changes something."""
    left, right = receptive_field(args)
    net, n = net_for(args), 2 * (left + right + 1) // args.factor * args.factor
    x, cond = inputs(1, n, args.seq_len)
    t = torch.tensor([250])
    # row j of the batch perturbs point j (one forward pass for all of them); the base is the
    # same batch unperturbed, so both run the same convolution code path
    xs, cs, tt = x.repeat(n, 1, 1), cond.repeat(n, 1, 1), t.repeat(n)
    base = net(xs, tt, cs)[:, 0]
    bump = torch.eye(n, dtype=torch.float64)
    if what == "state":
        xs[:, 0] += bump
    else:
        cs[:, args.seq_len - 1] += bump  # the latest observation row
    changed = (net(xs, tt, cs)[:, 0] - base).abs() > 0
    reach_left, reach_right = 0, 0
    for j in range(n):
        offsets = [(j - int(i) + n // 2) % n - n // 2 for i in torch.nonzero(changed[j])]
        assert offsets, f"perturbing point {j} changed nothing"
        reach_left = max(reach_left, max(-o for o in offsets))
        reach_right = max(reach_right, max(offsets))
    assert (reach_left, reach_right) == (left, right)


def test_shipped_layout_fits_a_40_point_ring():
    left, right = receptive_field(LocalNetArgs(base_width=24, seq_len=8))
    assert left + right + 1 <= 40


@pytest.mark.parametrize("n", [40, 64, 130])
def test_any_multiple_of_the_factor(n):
    net = net_for(ARCHS[0])
    x, cond = inputs(2, n, 1)
    assert net(x, torch.tensor([1, 2]), cond).shape == (2, 1, n)


def test_a_ring_not_a_multiple_of_the_factor_is_refused():
    net = net_for(ARCHS[1])  # factor 4
    x, cond = inputs(1, 42, 2)
    with pytest.raises(UserError, match="42 points is not a multiple .* factor 4"):
        net(x, torch.tensor([1]), cond)


def test_training_ring_checks():
    args = LocalNetArgs(base_width=8)
    check_network(args, 128)
    with pytest.raises(UserError, match="model.nx=39 is not a multiple .* factor 2"):
        check_network(args, 39)
    with pytest.raises(UserError, match="model.nx=32 is smaller than .* receptive field of 40"):
        check_network(args, 32)


def test_arch_round_trip_and_old_unet_checkpoints():
    args = ARCHS[1]
    assert args_from_dict(args.to_dict()) == args
    unet = args_from_dict({"nx": 16, "base_width": 8, "multipliers": [1, 2], "groups": 4,
                           "attention": True, "seq_len": 1, "attn_heads": 4,
                           "attn_dim_head": 32, "blocks_per_level": 2, "extra": {}})
    assert unet.nx == 16
    with pytest.raises(UserError, match="network kind 'transformer'"):
        args_from_dict({"kind": "transformer"})

"""U-Net: circular equivariance, the learned null condition, guidance, member independence."""
import numpy as np
import pytest
import torch

from genenkf_hpc.diffusion.bundle import build_bundle, sample_pseudo_ensemble
from genenkf_hpc.diffusion.conditioning import Normaliser, make_condition
from genenkf_hpc.diffusion.sampling import guided_eps_fn
from genenkf_hpc.diffusion.schedule import Schedule
from genenkf_hpc.diffusion.unet import UNet1D, UNetArgs
from genenkf_hpc.errors import UserError

torch.set_num_threads(1)


def tiny_net(nx=16, multipliers=(1, 2), seq_len=1, attention=True, seed=0):
    torch.manual_seed(seed)
    net = UNet1D(UNetArgs(nx=nx, base_width=8, multipliers=multipliers, groups=4,
                          attention=attention, seq_len=seq_len, attn_dim_head=8)).double()
    with torch.no_grad():  # a trained-looking null, so "null" differs from any real condition
        net.null_cond.copy_(torch.randn(net.null_cond.shape, dtype=torch.float64))
    return net.eval()


def random_inputs(b, nx, seq_len, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 1, nx, generator=g, dtype=torch.float64)
    obs = torch.randn(b, seq_len, nx, generator=g, dtype=torch.float64)
    mask = torch.rand(b, seq_len, nx, generator=g) < 0.5
    return x, make_condition(obs, mask)


@pytest.mark.parametrize("nx,multipliers,seq_len", [(16, (1, 2), 1), (16, (1, 2, 4), 2),
                                                    (40, (1, 2, 4, 8), 1)])
def test_circular_equivariance(nx, multipliers, seq_len):
    net = tiny_net(nx, multipliers, seq_len)
    x, cond = random_inputs(3, nx, seq_len)
    t = torch.tensor([0, 17, 99])
    out = net(x, t, cond)
    step = 2 ** (len(multipliers) - 1)
    for j in (1, 2, nx // step - 1):
        shift = step * j
        rolled = net(torch.roll(x, shift, -1), t, torch.roll(cond, shift, -1))
        torch.testing.assert_close(rolled, torch.roll(out, shift, -1), rtol=1e-9, atol=1e-10)


def test_nx_not_divisible_is_a_user_error():
    with pytest.raises(UserError, match="model.nx=36 is not divisible by 2\\^\\(levels-1\\)=8"):
        UNet1D(UNetArgs(nx=36, base_width=8, multipliers=(1, 2, 4, 8), groups=4))
    with pytest.raises(UserError, match="network.groups"):
        UNet1D(UNetArgs(nx=16, base_width=6, multipliers=(1, 2), groups=4))


def test_null_condition_replaces_the_condition():
    net = tiny_net(seq_len=2)
    x, cond = random_inputs(4, 16, 2)
    t = torch.tensor([3, 3, 40, 40])
    null = net(x, t, None)
    torch.testing.assert_close(net(x, t, cond, torch.ones(4, dtype=torch.bool)), null)
    assert not torch.allclose(net(x, t, cond), null)
    drop = torch.tensor([True, False, True, False])
    mixed = net(x, t, cond, drop)
    torch.testing.assert_close(mixed[drop], null[drop])
    torch.testing.assert_close(mixed[~drop], net(x, t, cond)[~drop])


@pytest.mark.parametrize("objective", ["eps", "v"])
def test_guidance_unconditional_pass_ignores_the_observations(objective):
    """guided(A) - guided(B) = s (eps_c(A) - eps_c(B)) holds iff eps_u never sees the obs."""
    net, sch = tiny_net(), Schedule(100)
    x, cond_a = random_inputs(3, 16, 1)
    _, cond_b = random_inputs(3, 16, 1, seed=9)
    t = torch.tensor([5, 50, 99])
    s = 3.0
    ga = guided_eps_fn(net, sch, objective, cond_a, s)(x, t)
    gb = guided_eps_fn(net, sch, objective, cond_b, s)(x, t)
    ca = guided_eps_fn(net, sch, objective, cond_a, 1.0)(x, t)
    cb = guided_eps_fn(net, sch, objective, cond_b, 1.0)(x, t)
    torch.testing.assert_close(ga - gb, s * (ca - cb))
    u = guided_eps_fn(net, sch, objective, cond_a, 0.0)(x, t)
    torch.testing.assert_close(u, guided_eps_fn(net, sch, objective, cond_b, 0.0)(x, t))
    torch.testing.assert_close(ga, u + s * (ca - u))


def test_pseudo_ensemble_member_depends_only_on_seed_member_cycle():
    bundle = build_bundle(tiny_net(), Schedule(50), "eps", Normaliser(-10.0, 15.0), 2, 1.0)
    rng = np.random.default_rng(0)
    obs = np.where(np.arange(16) % 2 == 0, rng.normal(size=16), np.nan)
    mask = np.arange(16) % 2 == 0
    kw = dict(sampler="ddim", steps=5, eta=0.3, guidance=2.0)
    full = sample_pseudo_ensemble(bundle, obs, mask, [0, 1, 2, 3], 7, 11, **kw)
    part = sample_pseudo_ensemble(bundle, obs, mask, [2, 3], 7, 11, **kw)
    assert full.shape == (4, 16) and full.dtype == np.float64
    np.testing.assert_allclose(part, full[2:], rtol=0, atol=1e-10)
    other_cycle = sample_pseudo_ensemble(bundle, obs, mask, [2, 3], 8, 11, **kw)
    assert np.abs(other_cycle - part).max() > 1e-3
    # DDIB starts from a state, DDPM runs every step; both keep the member property.
    state = rng.normal(size=16) * 3
    for extra in (dict(start_state=state, encoding="ddib", strength=0.5), dict(sampler="ddpm")):
        f = sample_pseudo_ensemble(bundle, obs, mask, [0, 1, 2], 7, 11, **{**kw, **extra})
        p = sample_pseudo_ensemble(bundle, obs, mask, [1], 7, 11, **{**kw, **extra})
        np.testing.assert_allclose(p, f[1:2], rtol=0, atol=1e-10)
        assert np.all(np.isfinite(f))

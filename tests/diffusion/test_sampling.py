"""Samplers checked with an ANALYTIC denoiser: for Gaussian data N(mu, s^2 I) the exact noise
prediction is eps*(x_t, t) = sqrt(1-a) (x_t - sqrt(a) mu) / (a s^2 + 1 - a), a = abar_t,
so the samplers are tested independently of any training."""
import pytest
import torch

from genenkf_hpc.diffusion.sampling import (MemberNoise, ddim_invert, ddim_sample, ddpm_sample,
                                            strided_times)
from genenkf_hpc.diffusion.schedule import Schedule

torch.set_num_threads(1)
MU, S = 0.4, 0.3


def gaussian_eps(schedule, mu=MU, s=S):
    def eps_fn(x, t):
        a = schedule.abar(t, x)
        return (1 - a).sqrt() * (x - a.sqrt() * mu) / (a * s * s + 1 - a)
    return eps_fn


def noise_for(n, nx, seed=0, dtype=torch.float64):
    gens = [torch.Generator().manual_seed(seed + i) for i in range(n)]
    return MemberNoise(gens, (1, nx), dtype=dtype)


def test_strided_times():
    assert strided_times(1000, 100) == list(range(9, 1000, 10))
    assert strided_times(1000, 1000) == list(range(1000))
    half = strided_times(1000, 100, strength=0.5)
    assert half == list(range(9, 500, 10))  # same stride, ends at t_s = 499
    assert strided_times(10, 3, strength=0.05) == [0]


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_ddim_inversion_then_decoding_returns_input(kind):
    sch = Schedule(1000, kind)
    eps_fn = gaussian_eps(sch)
    g = torch.Generator().manual_seed(1)
    x0 = MU + S * torch.randn(16, 1, 8, generator=g, dtype=torch.float64)
    # Classic inversion is first order in the stride; fixed-point refinement makes it the
    # inverse of the decoding step.
    for steps, strength, refine, tol in [(1000, 1.0, 0, 1e-2), (100, 1.0, 3, 5e-3),
                                         (100, 0.4, 3, 1e-3), (100, 1.0, 0, 0.1)]:
        times = strided_times(1000, steps, strength)
        xt = ddim_invert(eps_fn, sch, x0, times, refine=refine)
        back = ddim_sample(eps_fn, sch, xt, times, eta=0.0)
        assert (back - x0).abs().max() < tol, (steps, strength, refine)
    # Full inversion reaches (approximately) standard normal latents for in-distribution data.
    x0 = MU + S * torch.randn(4000, 1, 4, generator=g, dtype=torch.float64)
    z = ddim_invert(eps_fn, sch, x0, strided_times(1000, 50), refine=2)
    assert abs(z.mean().item()) < 0.1 and abs(z.std().item() - 1) < 0.1


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_samples_have_the_data_distribution(eta):
    sch = Schedule(1000, "cosine")
    n, nx = 200, 32
    noise = noise_for(n, nx)
    x = ddim_sample(gaussian_eps(sch), sch, noise.draw(), strided_times(1000, 100), eta, noise)
    assert abs(x.mean().item() - MU) < 0.02
    assert abs(x.std().item() / S - 1) < 0.05


def test_ddpm_ancestral_samples_have_the_data_distribution():
    sch = Schedule(1000, "linear")
    n, nx = 100, 64
    noise = noise_for(n, nx)
    x = ddpm_sample(gaussian_eps(sch), sch, noise.draw(), noise)
    assert abs(x.mean().item() - MU) < 0.02
    assert abs(x.std().item() / S - 1) < 0.05


def test_member_noise_depends_only_on_its_generator():
    a = noise_for(3, 5, seed=10).draw()
    b = MemberNoise([torch.Generator().manual_seed(12)], (1, 5), dtype=torch.float64).draw()
    torch.testing.assert_close(a[2], b[0], rtol=0, atol=0)


@pytest.mark.parametrize("t_s", [200, 500, 800])
def test_stochastic_encoding_samples_the_gaussian_posterior_of_the_start(t_s):
    """SDEdit from x_start: noise to t_s, then exact-denoiser ancestral sampling. For data
    N(mu, s^2) the members are x0 ~ p(x0 | x_ts) averaged over the encoding noise:
    mean mu + a s^2 / D (x_start - mu), variance s^2 (1 - a) / D + a s^4 (1 - a) / D^2,
    with a = abar(t_s) and D = a s^2 + 1 - a."""
    from genenkf_hpc.diffusion.sampling import stochastic_encode

    sch = Schedule(1000, "cosine")
    n, nx = 400, 16
    noise = noise_for(n, nx, seed=7)
    start = torch.full((1, 1, nx), MU + 2 * S, dtype=torch.float64)  # far from the mean
    x_t = stochastic_encode(sch, start, t_s, noise.draw())
    x = ddpm_sample(gaussian_eps(sch), sch, x_t, noise, t_start=t_s)
    a = float(sch.alphas_cumprod[t_s])
    d = a * S * S + 1 - a
    mean = MU + a * S * S / d * (2 * S)
    std = (S * S * (1 - a) / d + a * S ** 4 * (1 - a) / d ** 2) ** 0.5
    assert abs(x.mean().item() - mean) < 0.02 * S + 3 * std / (n * nx) ** 0.5
    assert abs(x.std().item() / std - 1) < 0.05


def test_deterministic_encoding_has_no_spread_and_stochastic_encoding_does():
    """DDIB (invert, then decode with eta 0) returns the start for every member: the
    pseudo-ensemble collapses; SDEdit's fresh noise per member gives it a spread."""
    from genenkf_hpc.diffusion.sampling import stochastic_encode

    sch = Schedule(1000, "cosine")
    eps_fn = gaussian_eps(sch)
    times = strided_times(1000, 100, 0.5)
    start = torch.full((1, 1, 8), MU + S, dtype=torch.float64)
    noise = noise_for(64, 8, seed=3)
    ddib = ddim_sample(eps_fn, sch, ddim_invert(eps_fn, sch, start, times, refine=3)
                       .expand(64, -1, -1), times, eta=0.0)
    assert ddib.std(dim=0).max() < 1e-3 and (ddib - start).abs().max() < 1e-3
    sdedit = ddim_sample(eps_fn, sch, stochastic_encode(sch, start, times[-1], noise.draw()),
                         times, eta=0.0)
    assert sdedit.std(dim=0).min() > 0.3 * S

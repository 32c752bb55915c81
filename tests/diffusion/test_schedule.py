"""Identities of the forward process and the parameterisations."""
import pytest
import torch

from genenkf_hpc.diffusion.schedule import (Schedule, output_to_eps, per_sample_loss,
                                            training_target)

torch.set_num_threads(1)


@pytest.mark.parametrize("kind", ["cosine", "linear"])
@pytest.mark.parametrize("T", [10, 1000])
def test_alphas_cumprod_monotone_in_unit_interval(kind, T):
    s = Schedule(T, kind)
    a = s.alphas_cumprod
    assert a.dtype == torch.float64 and a.shape == (T,)
    assert torch.all(a[1:] < a[:-1])
    assert 0 < a[-1] < 0.05 and a[0] < 1
    assert torch.all((s.betas > 0) & (s.betas <= 0.999))
    x = torch.zeros(3, 1, 4)
    assert torch.all(s.abar(torch.tensor([-1, -1, -1]), x) == 1)


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_round_trips(kind):
    g = torch.Generator().manual_seed(0)
    s = Schedule(200, kind)
    x0 = torch.randn(6, 1, 8, generator=g, dtype=torch.float64)
    eps = torch.randn(6, 1, 8, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 1, 50, 100, 198, 199])
    xt = s.q_sample(x0, t, eps)
    torch.testing.assert_close(s.predict_x0(xt, t, eps), x0)
    torch.testing.assert_close(s.predict_eps(xt, t, x0), eps)
    v = s.v_target(x0, t, eps)
    torch.testing.assert_close(s.eps_from_v(xt, t, v), eps)
    torch.testing.assert_close(s.x0_from_v(xt, t, v), x0)
    torch.testing.assert_close(training_target(s, "v", x0, t, eps), v)
    torch.testing.assert_close(output_to_eps(s, "v", xt, t, v), eps)
    torch.testing.assert_close(output_to_eps(s, "eps", xt, t, eps), eps)


def test_posterior_matches_bayes_for_consecutive_steps():
    """q(x_{t-1}|x_t,x0) mean/var agree with the Gaussian product formula."""
    s = Schedule(50, "cosine")
    x0 = torch.full((1, 1, 1), 0.7, dtype=torch.float64)
    xt = torch.full((1, 1, 1), -0.3, dtype=torch.float64)
    t = torch.tensor([20])
    mean, var = s.q_posterior(x0, xt, t)
    ap, a = s.alphas_cumprod[19], s.alphas_cumprod[20]
    beta = 1 - a / ap
    # prior x_{t-1} ~ N(sqrt(ap) x0, 1-ap); likelihood x_t ~ N(sqrt(1-beta) x_{t-1}, beta)
    prec = 1 / (1 - ap) + (1 - beta) / beta
    m = (ap.sqrt() * 0.7 / (1 - ap) + (1 - beta).sqrt() * -0.3 / beta) / prec
    torch.testing.assert_close(var.flatten(), (1 / prec).reshape(1))
    torch.testing.assert_close(mean.flatten(), m.reshape(1))


def test_losses():
    p = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    q = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    torch.testing.assert_close(per_sample_loss(p, q, "l1"), torch.tensor([1.5, 1.0]))
    torch.testing.assert_close(per_sample_loss(p, q, "l2"), torch.tensor([2.5, 1.0]))

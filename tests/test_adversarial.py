"""Tests of the adversarial losses (``cvloss_ref/adversarial.py``).

References: ``F.binary_cross_entropy_with_logits``, ``F.mse_loss``, ``F.l1_loss``
and brute-force loops over samples written from the papers in this file (Python
``math`` on each logit; for WGAN-GP one ``torch.autograd.grad`` per sample).
Values and gradients are compared in float64.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cvloss_ref import (
    cycle_consistency_loss,
    gan_discriminator_loss,
    gan_generator_loss,
    gradient_penalty,
)
from tests._tolerances import TOLERANCES

KINDS = ["minimax", "nonsaturating", "lsgan", "wgan", "hinge"]
REDUCTIONS = ["none", "mean", "sum"]
HALF_DTYPES = [torch.float16, torch.bfloat16]


# ----------------------------------------------------------------------------- brute force


def _log_sigmoid(t: float) -> float:
    """log(sigmoid(t)) in plain Python, stable for large |t|."""
    return -math.log1p(math.exp(-t)) if t >= 0 else t - math.log1p(math.exp(t))


def _brute_d_terms(real, fake, kind):
    """The discriminator's per-sample terms, one Python float each, from the papers."""
    if kind in ("minimax", "nonsaturating"):  # -log D(x), -log(1 - D(G(z)))
        return [-_log_sigmoid(r) for r in real], [-_log_sigmoid(-f) for f in fake]
    if kind == "lsgan":  # Mao et al. eq. (2) with a = 0, b = 1
        return [0.5 * (r - 1) ** 2 for r in real], [0.5 * f**2 for f in fake]
    if kind == "wgan":
        return [-r for r in real], list(fake)
    return [max(0.0, 1 - r) for r in real], [max(0.0, 1 + f) for f in fake]


def _brute_g_terms(fake, kind):
    if kind == "minimax":  # log(1 - D(G(z)))
        return [_log_sigmoid(-f) for f in fake]
    if kind == "nonsaturating":  # -log D(G(z))
        return [-_log_sigmoid(f) for f in fake]
    if kind == "lsgan":
        return [0.5 * (f - 1) ** 2 for f in fake]
    return [-f for f in fake]


def _brute_reduce(terms, reduction):
    if reduction == "sum":
        return sum(terms)
    return sum(terms) / len(terms)


def _logits(generator, *shape, scale=3.0, dtype=torch.float64):
    return (scale * torch.randn(*shape, generator=generator, dtype=torch.float64)).to(dtype)


def _value_and_grads(fn, inputs, *args, **kwargs):
    leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    out = fn(*leaves, *args, **kwargs)
    grads = torch.autograd.grad(out.sum(), leaves)
    return out.detach(), grads


# ----------------------------------------------------------------------------- discriminator


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("kind", KINDS)
def test_gan_discriminator_loss_value_same_as_brute_force(generator, kind, reduction):
    real, fake = _logits(generator, 5), _logits(generator, 7)
    real_terms, fake_terms = _brute_d_terms(real.tolist(), fake.tolist(), kind)
    expected = _brute_reduce(real_terms, reduction) + _brute_reduce(fake_terms, reduction)
    out = gan_discriminator_loss(real, fake, kind=kind, reduction=reduction)
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float64))


@pytest.mark.parametrize("kind", KINDS)
def test_gan_discriminator_loss_none_is_real_terms_then_fake_terms(generator, kind):
    real, fake = _logits(generator, 2, 3), _logits(generator, 4, 1)
    real_terms, fake_terms = _brute_d_terms(real.flatten().tolist(), fake.flatten().tolist(), kind)
    out = gan_discriminator_loss(real, fake, kind=kind, reduction="none")
    assert out.shape == (10,)
    torch.testing.assert_close(out, torch.tensor(real_terms + fake_terms, dtype=torch.float64))


def test_gan_discriminator_loss_mean_is_sum_of_two_means_for_different_batch_sizes(generator):
    real, fake = _logits(generator, 3), _logits(generator, 9)
    out = gan_discriminator_loss(real, fake, kind="wgan")
    torch.testing.assert_close(out, fake.mean() - real.mean())
    # ... which is not the mean of the concatenated terms of reduction="none"
    terms = gan_discriminator_loss(real, fake, kind="wgan", reduction="none")
    assert not torch.allclose(out, terms.mean())


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gan_discriminator_loss_minimax_same_as_bce_with_logits(generator, reduction):
    real, fake = _logits(generator, 6, 1), _logits(generator, 6, 1)

    def bce(real, fake, reduction):
        r = F.binary_cross_entropy_with_logits(real, torch.ones_like(real), reduction="none")
        f = F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake), reduction="none")
        if reduction == "none":
            return torch.cat([r.flatten(), f.flatten()])
        return r.mean() + f.mean() if reduction == "mean" else r.sum() + f.sum()

    expected = _value_and_grads(bce, (real, fake), reduction)
    received = _value_and_grads(gan_discriminator_loss, (real, fake), "minimax", reduction)
    torch.testing.assert_close(received, expected)


def test_gan_discriminator_loss_nonsaturating_equals_minimax(generator):
    real, fake = _logits(generator, 6), _logits(generator, 4)
    torch.testing.assert_close(
        _value_and_grads(gan_discriminator_loss, (real, fake), "nonsaturating"),
        _value_and_grads(gan_discriminator_loss, (real, fake), "minimax"),
    )


def test_gan_discriminator_loss_lsgan_is_half_the_sum_of_two_mse(generator):
    # pix2pix/CycleGAN: (MSE(D(x), 1) + MSE(D(G(z)), 0)) * 0.5 -- Mao et al.'s 1/2.
    real, fake = _logits(generator, 8), _logits(generator, 8)

    def cyclegan(real, fake):
        ones, zeros = torch.ones_like(real), torch.zeros_like(fake)
        return 0.5 * (F.mse_loss(real, ones) + F.mse_loss(fake, zeros))

    torch.testing.assert_close(
        _value_and_grads(gan_discriminator_loss, (real, fake), "lsgan"),
        _value_and_grads(cyclegan, (real, fake)),
    )


# ----------------------------------------------------------------------------- generator


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("kind", KINDS)
def test_gan_generator_loss_value_same_as_brute_force(generator, kind, reduction):
    fake = _logits(generator, 7)
    expected = _brute_reduce(_brute_g_terms(fake.tolist(), kind), reduction)
    out = gan_generator_loss(fake, kind=kind, reduction=reduction)
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float64))


@pytest.mark.parametrize("kind", KINDS)
def test_gan_generator_loss_gradient_same_as_torch(generator, kind):
    fake = _logits(generator, 3, 4)
    peers = {
        "minimax": lambda f: F.logsigmoid(-f).mean(),
        "nonsaturating": lambda f: F.binary_cross_entropy_with_logits(f, torch.ones_like(f)),
        "lsgan": lambda f: 0.5 * F.mse_loss(f, torch.ones_like(f)),
        "wgan": lambda f: -f.mean(),
        "hinge": lambda f: -f.mean(),
    }
    torch.testing.assert_close(
        _value_and_grads(gan_generator_loss, (fake,), kind),
        _value_and_grads(peers[kind], (fake,)),
    )


def test_gan_generator_loss_minimax_saturates_and_nonsaturating_does_not():
    # A discriminator that confidently rejects the fakes: f = -20.
    fake = torch.full((4,), -20.0, dtype=torch.float64)
    _, (grad_minimax,) = _value_and_grads(gan_generator_loss, (fake,), "minimax", "sum")
    _, (grad_nonsat,) = _value_and_grads(gan_generator_loss, (fake,), "nonsaturating", "sum")
    assert grad_minimax.abs().max() < 1e-8  # -sigmoid(-20)
    torch.testing.assert_close(grad_nonsat, torch.full_like(fake, -1.0))


def test_gan_generator_loss_minimax_is_the_negative_of_the_discriminator_fake_term(generator):
    fake = _logits(generator, 6)
    real = torch.full((1,), 1e4, dtype=torch.float64)  # real term softplus(-1e4) = 0
    d_loss = gan_discriminator_loss(real, fake, kind="minimax")
    torch.testing.assert_close(gan_generator_loss(fake, kind="minimax"), -d_loss)


# ----------------------------------------------------------------------------- both


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_numeric_stability_logits_of_1e4(kind, dtype):
    logits = torch.tensor([1e4, -1e4, 0.0, 30.0, -30.0], dtype=dtype)
    for reduction in REDUCTIONS:
        d_out, d_grads = _value_and_grads(
            gan_discriminator_loss, (logits, logits.flip(0)), kind, reduction
        )
        g_out, g_grads = _value_and_grads(gan_generator_loss, (logits,), kind, reduction)
        for tensor in (d_out, g_out, *d_grads, *g_grads):
            assert torch.isfinite(tensor).all(), (kind, reduction)
    expected = _brute_g_terms(logits.double().tolist(), kind)
    out = gan_generator_loss(logits, kind=kind, reduction="none")
    torch.testing.assert_close(out.double(), torch.tensor(expected).double(), **TOLERANCES[dtype])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_shape(generator, kind, reduction):
    real, fake = _logits(generator, 2, 1, 3, 3), _logits(generator, 3, 1, 3, 3)
    d_out = gan_discriminator_loss(real, fake, kind=kind, reduction=reduction)
    g_out = gan_generator_loss(fake, kind=kind, reduction=reduction)
    assert d_out.shape == ((45,) if reduction == "none" else ())
    assert g_out.shape == ((3, 1, 3, 3) if reduction == "none" else ())


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_half_precision_returns_input_dtype_close_to_float32(generator, kind, dtype):
    real, fake = _logits(generator, 6, dtype=dtype), _logits(generator, 6, dtype=dtype)
    d_out = gan_discriminator_loss(real, fake, kind=kind)
    g_out = gan_generator_loss(fake, kind=kind)
    assert d_out.dtype == g_out.dtype == dtype
    d_expected = gan_discriminator_loss(real.float(), fake.float(), kind=kind)
    torch.testing.assert_close(d_out.float(), d_expected, **TOLERANCES[dtype])
    torch.testing.assert_close(
        g_out.float(), gan_generator_loss(fake.float(), kind=kind), **TOLERANCES[dtype]
    )


def test_empty_fake_batch_gives_the_real_mean(generator):
    real = _logits(generator, 4)
    fake = torch.empty(0, dtype=torch.float64)
    torch.testing.assert_close(gan_discriminator_loss(real, fake, kind="wgan"), -real.mean())
    assert gan_generator_loss(fake).item() == 0.0


@pytest.mark.parametrize("kind", KINDS)
def test_meta_tensors(kind):
    real, fake = torch.randn(4, 1, device="meta"), torch.randn(6, 1, device="meta")
    for reduction in REDUCTIONS:
        d_out = gan_discriminator_loss(real, fake, kind=kind, reduction=reduction)
        g_out = gan_generator_loss(fake, kind=kind, reduction=reduction)
        assert d_out.device.type == g_out.device.type == "meta"
        assert d_out.shape == ((10,) if reduction == "none" else ())


@pytest.mark.parametrize("kind", KINDS)
def test_device_result_same_as_cpu(generator, device, kind):
    real, fake = _logits(generator, 5), _logits(generator, 3)
    out = gan_discriminator_loss(real.to(device), fake.to(device), kind=kind, reduction="none")
    assert out.device.type == device.type
    expected = gan_discriminator_loss(real, fake, kind=kind, reduction="none")
    torch.testing.assert_close(out.cpu(), expected)
    out = gan_generator_loss(fake.to(device), kind=kind, reduction="none")
    torch.testing.assert_close(out.cpu(), gan_generator_loss(fake, kind=kind, reduction="none"))


def test_invalid_kind():
    logits = torch.zeros(3)
    with pytest.raises(ValueError, match=r"kind must be one of 'minimax', .*got 'bce'"):
        gan_discriminator_loss(logits, logits, kind="bce")
    with pytest.raises(ValueError, match=r"kind must be one of .*'hinge', got 'saturating'"):
        gan_generator_loss(logits, kind="saturating")


def test_invalid_reduction():
    logits = torch.zeros(3)
    with pytest.raises(ValueError, match="reduction must be one of 'none', 'mean' or 'sum'"):
        gan_discriminator_loss(logits, logits, reduction="avg")
    with pytest.raises(ValueError, match="reduction must be one of"):
        gan_generator_loss(logits, reduction=None)


def test_invalid_logits():
    with pytest.raises(TypeError, match="real_logits must be a floating-point tensor"):
        gan_discriminator_loss(torch.ones(3, dtype=torch.long), torch.zeros(3))
    with pytest.raises(TypeError, match=r"fake_logits must be a torch\.Tensor, got list"):
        gan_generator_loss([0.5, 1.0])
    with pytest.raises(ValueError, match=r"fake_logits must be on the same device as real_logits"):
        gan_discriminator_loss(torch.zeros(3), torch.zeros(3, device="meta"))


# ----------------------------------------------------------------------------- WGAN-GP


def _critic(dim: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(dim, 8), nn.Tanh(), nn.Linear(8, 1)).double()


def _brute_gradient_penalty(critic, real, fake, epsilon, weight):
    """One autograd.grad per sample, each sample alone through the critic."""
    terms = []
    for i in range(real.shape[0]):
        x_hat = (epsilon[i] * real[i] + (1 - epsilon[i]) * fake[i]).unsqueeze(0)
        x_hat = x_hat.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
        norm = torch.sqrt((grad**2).sum())  # the gradient is not 0 for this critic
        terms.append(weight * (norm - 1) ** 2)
    return torch.stack(terms).mean()


def test_gradient_penalty_value_same_as_brute_force(generator):
    critic = _critic()
    real = torch.randn(6, 4, generator=generator, dtype=torch.float64)
    fake = torch.randn(6, 4, generator=generator, dtype=torch.float64)
    epsilon = torch.rand(6, generator=generator, dtype=torch.float64)
    out = gradient_penalty(critic, real, fake, epsilon=epsilon)
    expected = _brute_gradient_penalty(critic, real, fake, epsilon, 10.0)
    torch.testing.assert_close(out, expected)


def test_gradient_penalty_gradient_reaches_the_critic_parameters(generator):
    critic = _critic()
    real = torch.randn(5, 4, generator=generator, dtype=torch.float64)
    fake = torch.randn(5, 4, generator=generator, dtype=torch.float64)
    epsilon = torch.rand(5, generator=generator, dtype=torch.float64)
    # The last bias shifts D but not its gradient ∇x D, so the penalty ignores it.
    params = list(critic.parameters())[:3]
    grads = torch.autograd.grad(gradient_penalty(critic, real, fake, epsilon=epsilon), params)
    expected = torch.autograd.grad(
        _brute_gradient_penalty(critic, real, fake, epsilon, 10.0), params
    )
    assert all(g.abs().sum() > 0 for g in grads)
    torch.testing.assert_close(grads, expected)


def test_gradient_penalty_is_zero_for_a_unit_norm_linear_critic(generator):
    critic = nn.Linear(3, 1, bias=True).double()
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[2.0, -1.0, 2.0]]) / 3.0)
    real = torch.randn(7, 3, generator=generator, dtype=torch.float64)
    fake = torch.randn(7, 3, generator=generator, dtype=torch.float64)
    out = gradient_penalty(critic, real, fake)
    torch.testing.assert_close(out, torch.zeros((), dtype=torch.float64))
    # Scaled by 3, the gradient norm is 3: the penalty is weight * (3 - 1)².
    with torch.no_grad():
        critic.weight.mul_(3.0)
    torch.testing.assert_close(
        gradient_penalty(critic, real, fake, weight=2.0), torch.tensor(8.0).double()
    )


def test_gradient_penalty_gradient_is_finite_where_the_critic_gradient_is_zero(generator):
    # A critic that ignores its input (gradient exactly 0 everywhere) ...
    bias = nn.Parameter(torch.tensor(0.3, dtype=torch.float64))

    def constant(x):
        return bias + 0.0 * x.flatten(1).sum(1)

    real = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    fake = torch.randn(4, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    out = gradient_penalty(constant, real, fake, weight=5.0)
    torch.testing.assert_close(out.detach(), torch.tensor(5.0).double())
    # ... and a quadratic critic on blank samples, where its gradient x_hat is 0.
    real, fake = real.clone(), fake.detach().clone()
    real[1], fake[1] = 0.0, 0.0
    fake.requires_grad_(True)
    out = gradient_penalty(lambda x: 0.5 * (x * x).sum(1), real, fake)
    (grad,) = torch.autograd.grad(out, fake)
    assert torch.isfinite(grad).all()
    assert torch.equal(grad[1], torch.zeros(3, dtype=torch.float64))

    def vector_norm_penalty(fake):  # vector_norm's gradient at 0 is 0
        x_hat = fake  # epsilon = 0
        g = x_hat  # gradient of 0.5 ||x||²
        return (10.0 * (torch.linalg.vector_norm(g, dim=1) - 1) ** 2).mean()

    eps0 = torch.zeros(4, dtype=torch.float64)
    out = gradient_penalty(lambda x: 0.5 * (x * x).sum(1), real, fake, epsilon=eps0)
    (grad,) = torch.autograd.grad(out, fake)
    (expected,) = torch.autograd.grad(vector_norm_penalty(fake), fake)
    torch.testing.assert_close(grad, expected)


def test_gradient_penalty_per_sample_norm_over_image_dimensions(generator):
    w = torch.randn(2, 3, 3, generator=generator, dtype=torch.float64)

    def critic(x):
        return torch.tanh((x * w).sum(dim=(1, 2, 3)))

    real = torch.randn(3, 2, 3, 3, generator=generator, dtype=torch.float64)
    fake = torch.randn(3, 2, 3, 3, generator=generator, dtype=torch.float64)
    epsilon = torch.rand(3, 1, 1, 1, generator=generator, dtype=torch.float64)
    out = gradient_penalty(critic, real, fake, reduction="none", epsilon=epsilon)
    x_hat = epsilon * real + (1 - epsilon) * fake
    norms = (1 - torch.tanh((x_hat * w).sum(dim=(1, 2, 3))) ** 2) * w.norm()
    torch.testing.assert_close(out, 10.0 * (norms - 1) ** 2)


def test_gradient_penalty_epsilon_from_a_generator_is_reproducible(generator):
    critic = _critic()
    real = torch.randn(5, 4, generator=generator, dtype=torch.float64)
    fake = torch.randn(5, 4, generator=generator, dtype=torch.float64)
    first = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(3))
    second = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(3))
    epsilon = torch.rand(5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    given = gradient_penalty(critic, real, fake, epsilon=epsilon)
    assert torch.equal(first, second)
    torch.testing.assert_close(first, given)


def test_gradient_penalty_gradcheck(generator):
    critic = _critic(3)
    real = torch.randn(3, 3, generator=generator, dtype=torch.float64)
    fake = torch.randn(3, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    epsilon = torch.rand(3, generator=generator, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda f: gradient_penalty(critic, real, f, epsilon=epsilon), (fake,)
    )


def test_gradient_penalty_under_no_grad_is_a_plain_value(generator):
    critic = _critic()
    real = torch.randn(4, 4, generator=generator, dtype=torch.float64)
    fake = torch.randn(4, 4, generator=generator, dtype=torch.float64)
    epsilon = torch.rand(4, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        out = gradient_penalty(critic, real, fake, epsilon=epsilon)
    assert not out.requires_grad
    torch.testing.assert_close(out, gradient_penalty(critic, real, fake, epsilon=epsilon).detach())


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradient_penalty_shape(generator, reduction):
    real = torch.randn(5, 4, generator=generator, dtype=torch.float64)
    out = gradient_penalty(_critic(), real, real.flip(0), reduction=reduction)
    assert out.shape == ((5,) if reduction == "none" else ())


def test_gradient_penalty_empty_batch_and_scalar_samples():
    empty = torch.zeros(0, 3, dtype=torch.float64)
    assert gradient_penalty(lambda x: (x * x).sum(1), empty, empty).item() == 0.0
    # Samples of shape (N,): the critic 2 t has gradient norm 2, penalty weight * 1.
    x = torch.randn(5, dtype=torch.float64)
    torch.testing.assert_close(
        gradient_penalty(lambda t: 2 * t, x, x.flip(0)), torch.tensor(10.0).double()
    )


def test_gradient_penalty_meta_tensors():
    def critic(x):
        w = torch.linspace(-1, 1, x.shape[1], device=x.device, dtype=x.dtype)
        return torch.tanh(x) @ w

    real = torch.randn(4, 3, device="meta")
    fake = torch.randn(4, 3, device="meta", requires_grad=True)
    out = gradient_penalty(critic, real, fake)
    assert out.device.type == "meta" and out.shape == ()
    (grad,) = torch.autograd.grad(out, fake)
    assert grad.device.type == "meta" and grad.shape == (4, 3)


def test_gradient_penalty_device_result_same_as_cpu(generator, device):
    critic = _critic()
    real = torch.randn(4, 4, generator=generator, dtype=torch.float64)
    fake = torch.randn(4, 4, generator=generator, dtype=torch.float64)
    epsilon = torch.rand(4, generator=generator, dtype=torch.float64)
    out = gradient_penalty(
        critic.to(device), real.to(device), fake.to(device), epsilon=epsilon.to(device)
    )
    assert out.device.type == device.type
    expected = gradient_penalty(critic.cpu(), real, fake, epsilon=epsilon)
    torch.testing.assert_close(out.cpu(), expected)


def test_gradient_penalty_invalid_arguments():
    real = torch.zeros(4, 3)
    with pytest.raises(TypeError, match=r"critic must be callable .* got Tensor"):
        gradient_penalty(real, real, real)
    with pytest.raises(ValueError, match=r"fake must have the same shape as real \(4, 3\), got"):
        gradient_penalty(_critic(3), real, torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"epsilon must have shape \(4,\) or \(4, 1\).*got \(3,\)"):
        gradient_penalty(_critic(3), real, real, epsilon=torch.zeros(3))
    with pytest.raises(ValueError, match=r"weight must be >= 0\.0, got -1"):
        gradient_penalty(_critic(3), real, real, weight=-1.0)
    with pytest.raises(ValueError, match="real must have a batch dimension"):
        gradient_penalty(_critic(3), torch.tensor(1.0), torch.tensor(1.0))


# ----------------------------------------------------------------------------- CycleGAN


def test_cycle_consistency_loss_value_and_gradient_same_as_l1_loss(generator):
    real_a = torch.rand(2, 3, 4, 4, generator=generator, dtype=torch.float64)
    rec_a = torch.rand(2, 3, 4, 4, generator=generator, dtype=torch.float64)
    real_b = torch.rand(3, 1, 5, 5, generator=generator, dtype=torch.float64)
    rec_b = torch.rand(3, 1, 5, 5, generator=generator, dtype=torch.float64)

    def peer(real_a, rec_a, real_b, rec_b):
        return 10.0 * (F.l1_loss(rec_a, real_a) + F.l1_loss(rec_b, real_b))

    inputs = (real_a, rec_a, real_b, rec_b)
    torch.testing.assert_close(
        _value_and_grads(cycle_consistency_loss, inputs), _value_and_grads(peer, inputs)
    )


def test_cycle_consistency_loss_value_same_as_brute_force(generator):
    real_a, rec_a = torch.rand(2, 6, generator=generator), torch.rand(2, 6, generator=generator)
    real_b, rec_b = torch.rand(4, 2, generator=generator), torch.rand(4, 2, generator=generator)
    term_a = sum(abs(x - y) for x, y in zip(real_a.flatten().tolist(), rec_a.flatten().tolist()))
    term_b = sum(abs(x - y) for x, y in zip(real_b.flatten().tolist(), rec_b.flatten().tolist()))
    expected = 2.5 * (term_a / 12 + term_b / 8)
    out = cycle_consistency_loss(real_a, rec_a, real_b, rec_b, weight=2.5)
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float32))


def test_cycle_consistency_loss_gradient_flows_to_the_reconstructions(generator):
    real_a, real_b = torch.rand(2, 3, generator=generator), torch.rand(2, 3, generator=generator)
    rec_a = real_a.clone().requires_grad_(True)  # a perfect reconstruction: the kink
    rec_b = (real_b + 0.5).requires_grad_(True)
    cycle_consistency_loss(real_a, rec_a, real_b, rec_b, weight=6.0).backward()
    assert torch.equal(rec_a.grad, torch.zeros(2, 3))
    torch.testing.assert_close(rec_b.grad, torch.full((2, 3), 1.0))  # 6 * sign / 6


def test_cycle_consistency_loss_meta_half_and_device(generator, device):
    meta = torch.rand(2, 3, device="meta")
    out = cycle_consistency_loss(meta, meta, meta, meta)
    assert out.device.type == "meta" and out.shape == ()
    half = torch.rand(2, 3, generator=generator).half()
    assert cycle_consistency_loss(half, half + 0.1, half, half).dtype == torch.float16
    x, y = torch.rand(2, 3, generator=generator), torch.rand(2, 3, generator=generator)
    out = cycle_consistency_loss(x.to(device), y.to(device), y.to(device), x.to(device))
    torch.testing.assert_close(out.cpu(), cycle_consistency_loss(x, y, y, x))


def test_cycle_consistency_loss_invalid_arguments():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"rec_a must have the same shape as real_a \(2, 3\)"):
        cycle_consistency_loss(x, torch.zeros(2, 4), x, x)
    with pytest.raises(ValueError, match=r"rec_b must have the same shape as real_b"):
        cycle_consistency_loss(x, x, x, torch.zeros(3))
    with pytest.raises(TypeError, match="real_b must be a floating-point tensor"):
        cycle_consistency_loss(x, x, torch.zeros(2, 3, dtype=torch.long), x)
    with pytest.raises(ValueError, match=r"weight must be >= 0\.0, got -2"):
        cycle_consistency_loss(x, x, x, x, weight=-2)


def _cycle_before_reduction(real_a, rec_a, real_b, rec_b, weight=10.0):
    """The loss as it was before ``reduction=`` existed (float32/float64 inputs)."""
    term_a = (rec_a - real_a).abs().mean()
    term_b = (rec_b - real_b).abs().mean()
    return weight * (term_a + term_b)


def _brute_cycle_terms(real, rec, weight):
    """One Python float per sample: weight * mean |rec - real| over the sample's elements."""
    terms = []
    for x, y in zip(real.flatten(1).tolist(), rec.flatten(1).tolist()):
        terms.append(weight * sum(abs(u - v) for u, v in zip(x, y)) / len(y))
    return terms


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cycle_consistency_loss_mean_is_the_value_it_had_before_reduction(generator, dtype):
    real_a, rec_a = (torch.rand(4, 3, 5, 5, generator=generator, dtype=dtype) for _ in range(2))
    real_b, rec_b = (torch.rand(7, 1, 3, 3, generator=generator, dtype=dtype) for _ in range(2))
    expected = _cycle_before_reduction(real_a, rec_a, real_b, rec_b, weight=2.5)
    out = cycle_consistency_loss(real_a, rec_a, real_b, rec_b, weight=2.5)
    assert torch.equal(out, expected)
    assert torch.equal(
        out, cycle_consistency_loss(real_a, rec_a, real_b, rec_b, 2.5, reduction="mean")
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cycle_consistency_loss_unequal_domains_same_as_brute_force(generator, reduction):
    # Two unpaired domains of different batch sizes and sample shapes.
    real_a, rec_a = (torch.rand(2, 3, 4, 4, generator=generator) for _ in range(2))
    real_b, rec_b = (torch.rand(3, 1, 5, 5, generator=generator) for _ in range(2))
    terms_a = _brute_cycle_terms(real_a, rec_a, 3.0)
    terms_b = _brute_cycle_terms(real_b, rec_b, 3.0)
    expected = {
        "none": terms_a + terms_b,
        "mean": sum(terms_a) / len(terms_a) + sum(terms_b) / len(terms_b),
        "sum": sum(terms_a) + sum(terms_b),
    }[reduction]
    out = cycle_consistency_loss(real_a, rec_a, real_b, rec_b, weight=3.0, reduction=reduction)
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float32))


def test_cycle_consistency_loss_per_sample_gradient_same_as_l1_loss(generator):
    inputs = (
        torch.rand(2, 3, 4, 4, generator=generator, dtype=torch.float64),
        torch.rand(2, 3, 4, 4, generator=generator, dtype=torch.float64),
        torch.rand(3, 1, 5, 5, generator=generator, dtype=torch.float64),
        torch.rand(3, 1, 5, 5, generator=generator, dtype=torch.float64),
    )
    weights = torch.rand(5, generator=generator, dtype=torch.float64)

    def peer(real_a, rec_a, real_b, rec_b):
        pairs = [*zip(real_a, rec_a), *zip(real_b, rec_b)]
        return 10.0 * torch.stack([F.l1_loss(rec, real) for real, rec in pairs]) * weights

    def weighted(*args):  # a per-sample weighting: the use of reduction="none"
        return cycle_consistency_loss(*args, reduction="none") * weights

    torch.testing.assert_close(_value_and_grads(weighted, inputs), _value_and_grads(peer, inputs))


def test_cycle_consistency_loss_empty_domain_is_zero_with_a_zero_gradient(generator):
    real_b = torch.rand(3, 2, generator=generator)
    rec_b = real_b + 0.5
    real_a, rec_a = torch.empty(0, 3, 4), torch.empty(0, 3, 4, requires_grad=True)
    out = cycle_consistency_loss(real_a, rec_a, real_b, rec_b, weight=2.0)
    torch.testing.assert_close(out, torch.tensor(1.0))  # domain A adds 0, not NaN
    (grad,) = torch.autograd.grad(out, rec_a)
    assert grad.shape == (0, 3, 4)
    none = cycle_consistency_loss(real_a, rec_a, real_b, rec_b, weight=2.0, reduction="none")
    torch.testing.assert_close(none, torch.full((3,), 1.0))  # B's samples only
    both_empty = cycle_consistency_loss(real_a, rec_a, real_a, rec_a)
    assert torch.equal(both_empty, torch.tensor(0.0))
    (grad,) = torch.autograd.grad(both_empty, rec_a)
    assert torch.isfinite(grad).all()
    # Samples without elements have the value 0.
    empty_samples = torch.empty(2, 0, requires_grad=True)
    none = cycle_consistency_loss(empty_samples, empty_samples, real_b, rec_b, reduction="none")
    assert torch.equal(none[:2], torch.zeros(2))
    (grad,) = torch.autograd.grad(none.sum(), empty_samples)
    assert grad.shape == (2, 0)


def test_cycle_consistency_loss_none_meta_half_and_device(generator, device):
    meta_a, meta_b = torch.rand(2, 3, device="meta"), torch.rand(5, 1, 2, device="meta")
    out = cycle_consistency_loss(meta_a, meta_a, meta_b, meta_b, reduction="none")
    assert out.device.type == "meta" and out.shape == (7,)
    half = torch.rand(2, 3, generator=generator).half()
    out = cycle_consistency_loss(half, half + 0.25, half, half, reduction="none")
    assert out.dtype == torch.float16
    torch.testing.assert_close(out, torch.tensor([2.5, 2.5, 0.0, 0.0], dtype=torch.float16))
    x, y = torch.rand(2, 3, generator=generator), torch.rand(4, 1, generator=generator)
    for reduction in REDUCTIONS:
        out = cycle_consistency_loss(
            x.to(device), x.to(device) + 1, y.to(device), y.to(device), reduction=reduction
        )
        expected = cycle_consistency_loss(x, x + 1, y, y, reduction=reduction)
        torch.testing.assert_close(out.cpu(), expected)


def test_cycle_consistency_loss_invalid_reduction():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="reduction must be one of 'none', 'mean' or 'sum'"):
        cycle_consistency_loss(x, x, x, x, reduction="avg")
    with pytest.raises(TypeError):  # keyword only: a sixth positional argument is refused
        cycle_consistency_loss(x, x, x, x, 10.0, "none")
    scalar = torch.tensor(1.0)
    with pytest.raises(ValueError, match=r"real_a must have a batch dimension.*got shape \(\)"):
        cycle_consistency_loss(scalar, scalar, x, x, reduction="none")
    with pytest.raises(ValueError, match=r"real_b must have a batch dimension.*'sum'"):
        cycle_consistency_loss(x, x, scalar, scalar, reduction="sum")
    # 'mean' has no per-sample values and accepts a 0-dim input, as before.
    torch.testing.assert_close(cycle_consistency_loss(scalar, scalar + 1, x, x), torch.tensor(10.0))

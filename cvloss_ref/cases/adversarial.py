"""Catalogue cases for the adversarial losses (book part V).

Inputs are raw discriminator outputs (logits, critic values), samples for the
gradient penalty and images with their reconstructions for the cycle loss.  The
edge cases are saturated logits of ±1e4 (where ``log(sigmoid(x))`` is -inf in
float32), real and fake batches of different sizes (the discriminator's mean is
the sum of two means), PatchGAN outputs, and for the gradient penalty critics
whose gradient is exactly 0 (the square root of the norm) or of norm exactly 1.

``gradient_penalty`` takes a critic: here a plain function with fixed weights
built on the input's device and in its dtype, so that the case runs on every
device and on ``meta`` (a module made in ``make`` would stay on the CPU).  The
interpolation weights ``epsilon`` are passed as a keyword argument so that the
reference and the student use the same ones; the gradient compared is the one
with respect to ``fake`` (through the interpolates, a second-order derivative
that only exists with ``create_graph=True``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._catalogue import Case, LossSpec, Mistake, register

# ----------------------------------------------------------------------------- inputs


def _randn(g: torch.Generator, dtype: torch.dtype, *shape: int, scale: float = 2.0):
    return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype)


def _saturated(dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor([1e4, -1e4, 0.0, 3.0, -1e4, 1e4], dtype=dtype)


def _discriminator(shape_real, shape_fake, **kwargs):
    def make(g: torch.Generator, dtype: torch.dtype):
        return (_randn(g, dtype, *shape_real), _randn(g, dtype, *shape_fake)), dict(kwargs)

    return make


def _discriminator_saturated(**kwargs):
    def make(g: torch.Generator, dtype: torch.dtype):
        return (_saturated(dtype), _saturated(dtype).flip(0)[:5]), dict(kwargs)

    return make


def _generator(*shape: int, **kwargs):
    def make(g: torch.Generator, dtype: torch.dtype):
        return (_randn(g, dtype, *shape),), dict(kwargs)

    return make


def _generator_saturated(**kwargs):
    def make(g: torch.Generator, dtype: torch.dtype):
        return (_saturated(dtype),), dict(kwargs)

    return make


# Critics with fixed weights, created on the input's device and in its dtype.


def _weights(x: torch.Tensor) -> torch.Tensor:
    flat = x.flatten(1)
    return torch.linspace(-1.0, 1.0, flat.shape[1], dtype=x.dtype, device=x.device)


def smooth_critic(x: torch.Tensor) -> torch.Tensor:
    """tanh features and a quadratic term: a gradient that depends on x."""
    flat = x.flatten(1)
    return torch.tanh(flat) @ _weights(x) + 0.2 * (flat * flat).sum(dim=1)


def relu_squared_critic(x: torch.Tensor) -> torch.Tensor:
    """relu(x·w)² / 2: the gradient is exactly 0 for the samples with x·w <= 0."""
    return 0.5 * F.relu(x.flatten(1) @ _weights(x)) ** 2


def unit_linear_critic(x: torch.Tensor) -> torch.Tensor:
    """x·w with ||w|| = 1: 1-Lipschitz, gradient norm exactly 1, penalty 0."""
    w = _weights(x)
    return x.flatten(1) @ (w / torch.linalg.vector_norm(w))


def quadratic_critic(x: torch.Tensor) -> torch.Tensor:
    """||x||² / 2: the gradient is x itself, exactly 0 at x = 0."""
    flat = x.flatten(1)
    return 0.5 * (flat * flat).sum(dim=1)


def constant_critic(x: torch.Tensor) -> torch.Tensor:
    """The same score for every input: gradient 0, penalty weight * 1."""
    return 0.0 * x.flatten(1).sum(dim=1) + 0.5


def _penalty(critic, shape, epsilon=None, **kwargs):
    def make(g: torch.Generator, dtype: torch.dtype):
        real = _randn(g, dtype, *shape, scale=1.0)
        fake = _randn(g, dtype, *shape, scale=1.0)
        eps = torch.rand(shape[0], generator=g, dtype=torch.float64).to(dtype)
        if epsilon is not None:
            eps = torch.tensor(epsilon, dtype=dtype)
        return (critic, real, fake), {"epsilon": eps, **kwargs}

    return make


def _penalty_half_dead(g: torch.Generator, dtype: torch.dtype):
    """relu² critic; samples 0 and 2 sit where x·w < 0 (zero gradient), the others not."""
    w = torch.linspace(-1.0, 1.0, 4, dtype=torch.float64)
    base = torch.randn(4, 4, generator=g, dtype=torch.float64)
    base = base - (base @ w).unsqueeze(1) * w / (w @ w)  # x·w = 0
    sign = torch.tensor([-1.0, 1.0, -1.0, 1.0], dtype=torch.float64).unsqueeze(1)
    real = base + sign * (1.0 + torch.rand(4, 1, generator=g, dtype=torch.float64)) * w
    fake = base + sign * (0.5 + torch.rand(4, 1, generator=g, dtype=torch.float64)) * w
    eps = torch.rand(4, generator=g, dtype=torch.float64)
    return (relu_squared_critic, real.to(dtype), fake.to(dtype)), {"epsilon": eps.to(dtype)}


def _penalty_blank_samples(g: torch.Generator, dtype: torch.dtype):
    """Quadratic critic; samples 1 and 3 are all zeros in real and fake (x_hat = 0)."""
    real = torch.randn(4, 2, 2, generator=g, dtype=torch.float64)
    fake = torch.randn(4, 2, 2, generator=g, dtype=torch.float64)
    real[1], fake[1], real[3], fake[3] = 0.0, 0.0, 0.0, 0.0
    eps = torch.rand(4, generator=g, dtype=torch.float64)
    return (quadratic_critic, real.to(dtype), fake.to(dtype)), {"epsilon": eps.to(dtype)}


def _cycle(shape_a, shape_b, **kwargs):
    def make(g: torch.Generator, dtype: torch.dtype):
        real_a = torch.rand(*shape_a, generator=g, dtype=torch.float64)
        rec_a = real_a + 0.3 * torch.randn(*shape_a, generator=g, dtype=torch.float64)
        real_b = torch.rand(*shape_b, generator=g, dtype=torch.float64)
        rec_b = real_b + 0.3 * torch.randn(*shape_b, generator=g, dtype=torch.float64)
        return tuple(t.to(dtype) for t in (real_a, rec_a, real_b, rec_b)), dict(kwargs)

    return make


def _cycle_perfect(g: torch.Generator, dtype: torch.dtype):
    real_a = torch.rand(2, 3, 4, 4, generator=g, dtype=torch.float64).to(dtype)
    real_b = torch.rand(2, 3, 4, 4, generator=g, dtype=torch.float64).to(dtype)
    return (real_a, real_a.clone(), real_b, real_b.clone()), {}


def _cycle_half_perfect(g: torch.Generator, dtype: torch.dtype):
    real_a = torch.rand(2, 3, 4, 4, generator=g, dtype=torch.float64)
    real_b = torch.rand(2, 3, 4, 4, generator=g, dtype=torch.float64)
    rec_b = real_b + 0.2 * torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    return tuple(t.to(dtype) for t in (real_a, real_a.clone(), real_b, rec_b)), {}


# ----------------------------------------------------------------------------- mistakes
# Hand-written wrong implementations, as a student might write them.  Each is right
# except for its one error, so that its hint fits whenever its output matches.


def _mean(values: torch.Tensor) -> torch.Tensor:
    return values.mean() if values.numel() else 0.0 * values.sum()


def _student_reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return values
    return values.sum() if reduction == "sum" else _mean(values)


def _d_terms(r, f, kind, lsgan_half=True):
    if kind in ("minimax", "nonsaturating"):
        return F.softplus(-r), F.softplus(f)
    if kind == "lsgan":
        scale = 0.5 if lsgan_half else 1.0
        return scale * (r - 1) ** 2, scale * f**2
    if kind == "wgan":
        return -r, f
    return F.relu(1 - r), F.relu(1 + f)


def _d_combine(real_terms, fake_terms, reduction):
    if reduction == "none":
        return torch.cat([real_terms.reshape(-1), fake_terms.reshape(-1)])
    return _student_reduce(real_terms, reduction) + _student_reduce(fake_terms, reduction)


def _d_swapped_labels(real_logits, fake_logits, kind="minimax", reduction="mean"):
    # Real labelled 0 and fake labelled 1, in every kind.
    real_terms, fake_terms = _d_terms(fake_logits, real_logits, kind)
    return _d_combine(fake_terms, real_terms, reduction)


def _d_log_sigmoid(real_logits, fake_logits, kind="minimax", reduction="mean"):
    if kind in ("minimax", "nonsaturating"):
        real_terms = -torch.log(torch.sigmoid(real_logits))
        fake_terms = -torch.log(1 - torch.sigmoid(fake_logits))
    else:
        real_terms, fake_terms = _d_terms(real_logits, fake_logits, kind)
    return _d_combine(real_terms, fake_terms, reduction)


def _d_mean_of_all(real_logits, fake_logits, kind="minimax", reduction="mean"):
    real_terms, fake_terms = _d_terms(real_logits, fake_logits, kind)
    both = torch.cat([real_terms.reshape(-1), fake_terms.reshape(-1)])
    return _student_reduce(both, reduction)


def _d_lsgan_no_half(real_logits, fake_logits, kind="minimax", reduction="mean"):
    terms = _d_terms(real_logits, fake_logits, kind, lsgan_half=False)
    return _d_combine(*terms, reduction)


def _d_hinge_no_margin(real_logits, fake_logits, kind="minimax", reduction="mean"):
    if kind == "hinge":
        real_terms, fake_terms = F.relu(-real_logits), F.relu(fake_logits)
    else:
        real_terms, fake_terms = _d_terms(real_logits, fake_logits, kind)
    return _d_combine(real_terms, fake_terms, reduction)


def _d_lsgan_sigmoid(real_logits, fake_logits, kind="minimax", reduction="mean"):
    if kind == "lsgan":
        real_logits, fake_logits = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)
    return _d_combine(*_d_terms(real_logits, fake_logits, kind), reduction)


def _g_loss(f, kind, saturating=False, lsgan_half=True, wgan_sign=1.0, minimax_sign=1.0):
    if kind == "minimax" or (kind == "nonsaturating" and saturating):
        return -minimax_sign * F.softplus(f)
    if kind == "nonsaturating":
        return F.softplus(-f)
    if kind == "lsgan":
        return (0.5 if lsgan_half else 1.0) * (f - 1) ** 2
    return -wgan_sign * f


def _g_saturating(fake_logits, kind="nonsaturating", reduction="mean"):
    return _student_reduce(_g_loss(fake_logits, kind, saturating=True), reduction)


def _g_log_sigmoid(fake_logits, kind="nonsaturating", reduction="mean"):
    if kind == "nonsaturating":
        loss = -torch.log(torch.sigmoid(fake_logits))
    elif kind == "minimax":
        loss = torch.log(1 - torch.sigmoid(fake_logits))
    else:
        loss = _g_loss(fake_logits, kind)
    return _student_reduce(loss, reduction)


def _g_minimax_sign(fake_logits, kind="nonsaturating", reduction="mean"):
    return _student_reduce(_g_loss(fake_logits, kind, minimax_sign=-1.0), reduction)


def _g_lsgan_no_half(fake_logits, kind="nonsaturating", reduction="mean"):
    return _student_reduce(_g_loss(fake_logits, kind, lsgan_half=False), reduction)


def _g_critic_sign(fake_logits, kind="nonsaturating", reduction="mean"):
    return _student_reduce(_g_loss(fake_logits, kind, wgan_sign=-1.0), reduction)


def _interpolate(real, fake, epsilon):
    eps = epsilon.reshape((real.shape[0],) + (1,) * (real.dim() - 1))
    return eps * real + (1 - eps) * fake


def _critic_grad(critic, x, create_graph=True):
    # enable_grad: the harness evaluates mistakes under torch.no_grad().
    with torch.enable_grad():
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        scores = critic(x)
        if not scores.requires_grad:
            return torch.zeros_like(x)
        (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=create_graph, allow_unused=True)
    return torch.zeros_like(x) if grad is None else grad


def _guarded_norm(grad):
    squared = grad.flatten(1).pow(2).sum(1)
    positive = squared > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, squared, 1.0)), 0.0)


def _gp_no_create_graph(critic, real, fake, weight=10.0, reduction="mean", *, epsilon=None):
    grad = _critic_grad(critic, _interpolate(real, fake, epsilon), create_graph=False)
    return _student_reduce(weight * (_guarded_norm(grad) - 1) ** 2, reduction)


def _gp_squared_norm(critic, real, fake, weight=10.0, reduction="mean", *, epsilon=None):
    grad = _critic_grad(critic, _interpolate(real, fake, epsilon))
    return _student_reduce(weight * (grad.flatten(1).pow(2).sum(1) - 1) ** 2, reduction)


def _gp_batch_norm(critic, real, fake, weight=10.0, reduction="mean", *, epsilon=None):
    grad = _critic_grad(critic, _interpolate(real, fake, epsilon))
    penalty = weight * (_guarded_norm(grad.reshape(1, -1)) - 1) ** 2
    return penalty.expand(real.shape[0]) if reduction == "none" else penalty.sum()


def _gp_unguarded_sqrt(critic, real, fake, weight=10.0, reduction="mean", *, epsilon=None):
    grad = _critic_grad(critic, _interpolate(real, fake, epsilon))
    norm = torch.sqrt(grad.flatten(1).pow(2).sum(1))
    return _student_reduce(weight * (norm - 1) ** 2, reduction)


def _gp_at_real(critic, real, fake, weight=10.0, reduction="mean", *, epsilon=None):
    grad = _critic_grad(critic, real)
    return _student_reduce(weight * (_guarded_norm(grad) - 1) ** 2, reduction)


def _cycle_mse(real_a, rec_a, real_b, rec_b, weight=10.0):
    return weight * (_mean((rec_a - real_a) ** 2) + _mean((rec_b - real_b) ** 2))


def _cycle_sum(real_a, rec_a, real_b, rec_b, weight=10.0):
    return weight * ((rec_a - real_a).abs().sum() + (rec_b - real_b).abs().sum())


def _cycle_averaged(real_a, rec_a, real_b, rec_b, weight=10.0):
    return weight * 0.5 * (_mean((rec_a - real_a).abs()) + _mean((rec_b - real_b).abs()))


def _cycle_weight_once(real_a, rec_a, real_b, rec_b, weight=10.0):
    return weight * _mean((rec_a - real_a).abs()) + _mean((rec_b - real_b).abs())


# ----------------------------------------------------------------------------- specs

register(
    LossSpec(
        name="gan_discriminator_loss",
        cases=(
            Case("random logits (8,), minimax", _discriminator((8,), (8,))),
            Case(
                "real (6, 1) and fake (10, 1): different batch sizes",
                _discriminator((6, 1), (10, 1)),
                note="'mean' is the mean over the real terms plus the mean over the fake terms",
            ),
            Case(
                "saturated logits (±1e4), minimax",
                _discriminator_saturated(),
                note="softplus keeps -log(sigmoid(x)) finite where sigmoid rounds to 0 or 1",
            ),
            Case(
                "kind='nonsaturating' (the discriminator's loss is the minimax one)",
                _discriminator((5,), (7,), kind="nonsaturating"),
            ),
            Case(
                "kind='lsgan'",
                _discriminator((6,), (6,), kind="lsgan"),
                note="least squares with the factor 1/2 of Mao et al.: ½(r-1)² + ½f²",
            ),
            Case("kind='wgan'", _discriminator((6,), (9,), kind="wgan")),
            Case(
                "kind='hinge'",
                _discriminator((8,), (8,), kind="hinge"),
                note="relu(1 - r) + relu(1 + f)",
            ),
            Case(
                "saturated logits (±1e4), kind='hinge'",
                _discriminator_saturated(kind="hinge"),
            ),
            Case(
                "reduction='none': [real terms, fake terms]",
                _discriminator((4,), (3,), reduction="none"),
                note="'none' returns the real terms then the fake terms, flattened",
            ),
            Case(
                "PatchGAN logits (2, 1, 3, 3), kind='lsgan', reduction='sum'",
                _discriminator((2, 1, 3, 3), (2, 1, 3, 3), kind="lsgan", reduction="sum"),
            ),
        ),
        grad_inputs=(0, 1),
        mistakes=(
            Mistake(
                _d_swapped_labels,
                "the labels are swapped: real samples must get high scores and fake "
                "samples low ones, i.e. softplus(-r) + softplus(f) (= -log D(x) - "
                "log(1 - D(G(z)))), ½(r - 1)² + ½f² for lsgan, -r + f for wgan, "
                "relu(1 - r) + relu(1 + f) for hinge.",
            ),
            Mistake(
                _d_log_sigmoid,
                "log(sigmoid(x)) is -inf once sigmoid(x) rounds to 0 (x = -1e4 in "
                "float32), and log(1 - sigmoid(x)) once it rounds to 1: write "
                "-log(sigmoid(r)) = softplus(-r) and -log(1 - sigmoid(f)) = softplus(f).",
            ),
            Mistake(
                _d_mean_of_all,
                "'mean' averages the real terms and the fake terms separately and adds "
                "the two means (two expectations), not the mean over all terms together.",
            ),
            Mistake(
                _d_lsgan_no_half,
                "this course's LSGAN loss keeps the factor 1/2 of Mao et al. (2017, "
                "eq. 2): ½(r - 1)² + ½f².",
            ),
            Mistake(
                _d_hinge_no_margin,
                "the hinge loss has a margin of 1: relu(1 - r) + relu(1 + f); without it "
                "the discriminator stops pushing as soon as the signs are right.",
            ),
            Mistake(
                _d_lsgan_sigmoid,
                "LSGAN applies the least squares to the raw outputs (a linear last layer, "
                "no sigmoid): ½(r - 1)² + ½f².",
            ),
        ),
    )
)

register(
    LossSpec(
        name="gan_generator_loss",
        cases=(
            Case("random logits (8,), nonsaturating", _generator(8)),
            Case(
                "saturated logits (±1e4), nonsaturating",
                _generator_saturated(reduction="none"),
                note="-log(sigmoid(f)) = softplus(-f) stays finite at f = -1e4",
            ),
            Case(
                "kind='minimax' (saturating)",
                _generator(8, kind="minimax"),
                note="the minimax generator minimises log(1 - D(G(z))) = -softplus(f)",
            ),
            Case(
                "saturated logits (±1e4), kind='minimax'",
                _generator_saturated(kind="minimax", reduction="none"),
            ),
            Case(
                "kind='lsgan'",
                _generator(6, kind="lsgan"),
                note="½(f - 1)², with the factor 1/2 of Mao et al.",
            ),
            Case("kind='wgan'", _generator(6, kind="wgan")),
            Case("kind='hinge', reduction='sum'", _generator(7, kind="hinge", reduction="sum")),
            Case(
                "PatchGAN logits (2, 1, 3, 3), reduction='none'",
                _generator(2, 1, 3, 3, reduction="none"),
            ),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _g_saturating,
                "this is the saturating (minimax) loss log(1 - D(G(z))) = -softplus(f); "
                "the non-saturating generator minimises -log D(G(z)) = softplus(-f), "
                "whose gradient does not vanish when the discriminator rejects the fakes.",
            ),
            Mistake(
                _g_log_sigmoid,
                "log(sigmoid(f)) is -inf once sigmoid(f) rounds to 0 (f = -1e4 in "
                "float32): write -log(sigmoid(f)) = softplus(-f) and "
                "log(1 - sigmoid(f)) = -softplus(f).",
            ),
            Mistake(
                _g_minimax_sign,
                "the minimax generator *minimises* log(1 - D(G(z))) = -softplus(f), a "
                "negative number; softplus(f) = -log(1 - D(G(z))) is the "
                "discriminator's term for fakes.",
            ),
            Mistake(
                _g_lsgan_no_half,
                "this course's LSGAN generator loss keeps the factor 1/2 of Mao et al. "
                "(2017, eq. 2): ½(f - 1)².",
            ),
            Mistake(
                _g_critic_sign,
                "the WGAN and hinge generators maximise the critic's score on their "
                "samples, so the loss is -mean(f).",
            ),
        ),
    )
)

register(
    LossSpec(
        name="gradient_penalty",
        cases=(
            Case("smooth critic, vectors (6, 4)", _penalty(smooth_critic, (6, 4))),
            Case(
                "smooth critic, images (3, 2, 3, 3)",
                _penalty(smooth_critic, (3, 2, 3, 3)),
                note="the gradient norm is taken over all of a sample's dimensions",
            ),
            Case(
                "critic with a zero gradient on some samples",
                _penalty_half_dead,
                note="where the critic's gradient is exactly 0 the norm's square root "
                "needs a safe gradient (no NaN)",
            ),
            Case(
                "blank samples (x_hat = 0, where the critic's gradient is 0)",
                _penalty_blank_samples,
                note="a zero gradient has norm 0, whose square root needs a safe gradient",
            ),
            Case(
                "constant critic (gradient 0 everywhere)",
                _penalty(constant_critic, (4, 3)),
                note="a zero gradient has norm 0: the penalty is weight * (0 - 1)²",
            ),
            Case(
                "1-Lipschitz linear critic (unit-norm weight)",
                _penalty(unit_linear_critic, (5, 3)),
                note="a gradient of norm exactly 1 gives no penalty",
            ),
            Case(
                "epsilon 0 and 1 (the end points)",
                _penalty(smooth_critic, (4, 3), epsilon=[0.0, 1.0, 0.0, 1.0]),
                note="x_hat = epsilon * real + (1 - epsilon) * fake",
            ),
            Case(
                "weight=1, reduction='none'",
                _penalty(smooth_critic, (5, 2), weight=1.0, reduction="none"),
            ),
            Case(
                "batch of one, reduction='sum'",
                _penalty(relu_squared_critic, (1, 6), reduction="sum"),
            ),
        ),
        grad_inputs=(2,),
        mistakes=(
            Mistake(
                _gp_no_create_graph,
                "compute the gradient with torch.autograd.grad(..., create_graph=True): "
                "without it the penalty has no graph and cannot train the critic.",
            ),
            Mistake(
                _gp_squared_norm,
                "the penalty is (||grad|| - 1)², with the Euclidean norm, not the squared "
                "norm (||grad||² - 1)².",
            ),
            Mistake(
                _gp_batch_norm,
                "take the gradient norm per sample (flatten each sample's gradient, norm "
                "over dim 1) and average the per-sample penalties; not one norm over the "
                "whole batch.",
            ),
            Mistake(
                _gp_unguarded_sqrt,
                "where the critic's gradient is exactly 0, sqrt(sum(g²)) has an infinite "
                "derivative and the penalty's gradient is NaN: guard the square root "
                "(double torch.where), or use torch.linalg.vector_norm.",
            ),
            Mistake(
                _gp_at_real,
                "the gradient is taken at the interpolates x_hat = epsilon * real + "
                "(1 - epsilon) * fake, one epsilon per sample, not at the real samples.",
            ),
        ),
    )
)

register(
    LossSpec(
        name="cycle_consistency_loss",
        cases=(
            Case("random images (2, 3, 4, 4)", _cycle((2, 3, 4, 4), (2, 3, 4, 4))),
            Case(
                "domains of different shapes (2, 3, 4, 4) and (3, 1, 5, 5)",
                _cycle((2, 3, 4, 4), (3, 1, 5, 5)),
                note="each domain's L1 is a mean over its own elements",
            ),
            Case(
                "perfect reconstructions",
                _cycle_perfect,
                grad="finite",
                note="zero error gives 0 and a finite gradient",
            ),
            Case(
                "one domain reconstructed perfectly",
                _cycle_half_perfect,
                grad="finite",
            ),
            Case("weight=1", _cycle((2, 2, 3, 3), (2, 2, 3, 3), weight=1.0)),
            Case("weight=2.5", _cycle((4, 5), (4, 5), weight=2.5)),
        ),
        grad_inputs=(1, 3),
        mistakes=(
            Mistake(
                _cycle_mse,
                "the cycle loss is an L1 loss (mean absolute error), not the squared error.",
            ),
            Mistake(
                _cycle_sum,
                "each L1 term is a mean over its elements (F.l1_loss), not a sum.",
            ),
            Mistake(
                _cycle_averaged,
                "the two cycle terms are added, not averaged: weight * (L1_a + L1_b).",
            ),
            Mistake(
                _cycle_weight_once,
                "the weight multiplies both terms: weight * (L1_a + L1_b).",
            ),
        ),
    )
)

r"""Adversarial losses: the GAN objectives, the WGAN-GP gradient penalty, CycleGAN's cycle loss.

A discriminator (or *critic*) :math:`D` outputs one raw score per sample, or per
patch for a PatchGAN: a *logit* for the minimax and least-squares games, an
unbounded critic value for WGAN and the hinge loss.  Every loss here takes those
raw outputs, never probabilities: :math:`D(x) = \sigma(\text{logit})` only appears
inside the formulas, written with ``softplus`` so that values *and* gradients stay
finite for logits of :math:`\pm 10^4` in float32:

.. math::

    -\log \sigma(t) = \operatorname{softplus}(-t), \qquad
    -\log\bigl(1 - \sigma(t)\bigr) = \operatorname{softplus}(t).

``torch.log(torch.sigmoid(t))`` is :math:`-\infty` (and its gradient NaN) for
``t = -1e4`` in float32, because :math:`\sigma(-10^4)` rounds to 0.

Each loss is a quantity to *minimise* (the discriminator's loss is the negative of
the value it maximises).  The two players' losses are separate functions because
the generator is not trained on the negative of the discriminator's loss except in
the saturating minimax game (see :func:`gan_generator_loss`).

float16/bfloat16 inputs are computed in float32 and the result is returned in the
input dtype.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ._numerics import safe_sqrt
from ._numerics import upcast as _upcast
from ._reduction import _check_reduction, _reduce
from ._validation import (
    _check_floating,
    _check_number,
    _check_same_device,
    _check_same_shape,
    _check_tensor,
)

__all__ = [
    "cycle_consistency_loss",
    "gan_discriminator_loss",
    "gan_generator_loss",
    "gradient_penalty",
]

DISCRIMINATOR_KINDS = ("minimax", "nonsaturating", "lsgan", "wgan", "hinge")
GENERATOR_KINDS = ("minimax", "nonsaturating", "lsgan", "wgan", "hinge")


# --------------------------------------------------------------------------- helpers


def _check_kind(kind: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(kind, str) or kind not in allowed:
        names = ", ".join(repr(k) for k in allowed)
        raise ValueError(f"kind must be one of {names}, got {kind!r}")
    return kind


def _check_batched(tensor: torch.Tensor, name: str, what: str) -> None:
    if tensor.dim() < 1:
        raise ValueError(
            f"{name} must have a batch dimension, shape (N, ...) ({what}), got shape ()"
        )


# --------------------------------------------------------------------------- GAN losses


def gan_discriminator_loss(
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    kind: str = "minimax",
    reduction: str = "mean",
) -> torch.Tensor:
    r"""The discriminator's (critic's) loss of a GAN, from its raw outputs on real and fake samples.

    With :math:`r = D(x)` the raw outputs on real samples and :math:`f = D(G(z))`
    those on generated ones, and :math:`\sigma` the logistic sigmoid:

    .. math::

        \begin{aligned}
        \text{minimax}:\quad & -\log\sigma(r) - \log\bigl(1 - \sigma(f)\bigr)
            = \operatorname{softplus}(-r) + \operatorname{softplus}(f) \\
        \text{lsgan}:\quad & \tfrac12 (r - 1)^2 + \tfrac12 f^2 \\
        \text{wgan}:\quad & -r + f \\
        \text{hinge}:\quad & \max(0, 1 - r) + \max(0, 1 + f)
        \end{aligned}

    * ``"minimax"`` is the binary cross entropy of a classifier that labels real
      samples 1 and fake samples 0 (Goodfellow et al. 2014): the negative of the
      value :math:`V(D, G) = \mathbb{E}\log D(x) + \mathbb{E}\log(1 - D(G(z)))` the
      discriminator maximises.  ``"nonsaturating"`` is accepted as a synonym: the
      non-saturating trick changes only the *generator's* loss; the
      discriminator's loss is the same binary cross entropy.
    * ``"lsgan"`` is the least-squares GAN with the labels :math:`a = 0` (fake) and
      :math:`b = 1` (real) of Mao et al. 2017, equation (9), **with the factor**
      :math:`\tfrac12` **of their equation (2)** on each term.  pix2pix/CycleGAN
      code reaches the same discriminator loss by averaging two ``MSELoss`` terms
      (``(mse(r, 1) + mse(f, 0)) * 0.5``).  The outputs are raw scores (no sigmoid).
    * ``"wgan"``: the critic estimates the Wasserstein-1 distance
      :math:`\mathbb{E} D(x) - \mathbb{E} D(G(z))`, which it maximises (Arjovsky et
      al. 2017); the loss is its negative.  It needs a Lipschitz constraint: weight
      clipping, or :func:`gradient_penalty` (WGAN-GP).
    * ``"hinge"``: the hinge loss of Lim & Ye 2017 and Miyato et al. 2018 (SNGAN),
      also used by SAGAN and BigGAN.

    **Reduction.**  ``real_logits`` and ``fake_logits`` may have different sizes
    (say 64 real and 128 fake samples): ``"mean"`` is the mean over the real terms
    *plus* the mean over the fake terms, the estimate of the two expectations of the
    formula (not the mean over all terms together, which weighs the larger batch
    more); ``"sum"`` is the sum of all terms; ``"none"`` returns the terms
    flattened and concatenated, ``[real terms, fake terms]``, shape
    ``(real_logits.numel() + fake_logits.numel(),)``.

    Args:
        real_logits: raw discriminator outputs on real samples, any shape ``(N, *)``
            (``(N,)``, ``(N, 1)`` or a PatchGAN map ``(N, 1, H, W)``).
        fake_logits: raw outputs on generated samples, any shape ``(M, *)``, same
            device.
        kind: ``"minimax"`` (= ``"nonsaturating"``) | ``"lsgan"`` | ``"wgan"`` |
            ``"hinge"``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``, as above.

    Returns:
        A scalar, or for ``"none"`` the concatenated terms, shape
        ``(real_logits.numel() + fake_logits.numel(),)``; in the promoted dtype of
        the two inputs.

    References: Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014;
    Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017;
    Arjovsky et al., "Wasserstein GAN", ICML 2017; Lim & Ye, "Geometric GAN",
    arXiv:1705.02894, 2017; Miyato et al., "Spectral Normalization for Generative
    Adversarial Networks", ICLR 2018.

    Example:
        >>> real = torch.tensor([2.0, 0.0])
        >>> fake = torch.tensor([-1.0, 0.5, 1e4])
        >>> gan_discriminator_loss(real, fake, kind="hinge", reduction="none")
        tensor([0.0000e+00, 1.0000e+00, 0.0000e+00, 1.5000e+00, 1.0001e+04])
        >>> gan_discriminator_loss(real, fake, kind="hinge")  # 1/2 + 10002.5/3
        tensor(3334.6667)
    """
    _check_floating(real_logits, "real_logits")
    _check_floating(fake_logits, "fake_logits")
    _check_same_device([real_logits, fake_logits], ["real_logits", "fake_logits"])
    kind = _check_kind(kind, DISCRIMINATOR_KINDS)
    _check_reduction(reduction)

    out_dtype = torch.promote_types(real_logits.dtype, fake_logits.dtype)
    r = _upcast(real_logits)
    f = _upcast(fake_logits)
    if kind in ("minimax", "nonsaturating"):
        real_terms, fake_terms = F.softplus(-r), F.softplus(f)
    elif kind == "lsgan":
        real_terms, fake_terms = 0.5 * (r - 1) ** 2, 0.5 * f**2
    elif kind == "wgan":
        real_terms, fake_terms = -r, f
    else:  # hinge
        real_terms, fake_terms = F.relu(1 - r), F.relu(1 + f)

    if reduction == "none":
        loss = torch.cat([real_terms.reshape(-1), fake_terms.reshape(-1)])
    else:
        loss = _reduce(real_terms, reduction) + _reduce(fake_terms, reduction)
    return loss.to(out_dtype)


def gan_generator_loss(
    fake_logits: torch.Tensor, kind: str = "nonsaturating", reduction: str = "mean"
) -> torch.Tensor:
    r"""The generator's loss of a GAN, from the discriminator's raw outputs on generated samples.

    With :math:`f = D(G(z))` the raw outputs on generated samples:

    .. math::

        \begin{aligned}
        \text{minimax (saturating)}:\quad & \log\bigl(1 - \sigma(f)\bigr)
            = -\operatorname{softplus}(f) \\
        \text{nonsaturating}:\quad & -\log\sigma(f) = \operatorname{softplus}(-f) \\
        \text{lsgan}:\quad & \tfrac12 (f - 1)^2 \\
        \text{wgan},\ \text{hinge}:\quad & -f
        \end{aligned}

    * ``"minimax"`` is the generator's side of the zero-sum game of Goodfellow et
      al. 2014: it minimises :math:`\log(1 - D(G(z)))`, a negative number.  Its
      gradient :math:`\partial/\partial f = -\sigma(f)` vanishes when the
      discriminator confidently rejects the fakes (:math:`f \to -\infty`), which is
      exactly the situation early in training: it *saturates*.
    * ``"nonsaturating"`` (the default, and the generator loss of the paper's
      experiments) minimises :math:`-\log D(G(z))` instead: the same fixed point,
      but a gradient :math:`-\sigma(-f) \to -1` where the minimax one vanishes.
    * ``"lsgan"``: Mao et al. 2017 with :math:`c = 1`, with the factor
      :math:`\tfrac12` of their equation (2), as in :func:`gan_discriminator_loss`.
      (pix2pix/CycleGAN code uses ``MSELoss(f, 1)``, twice this value.)
    * ``"wgan"`` and ``"hinge"``: the generator maximises the critic's score on its
      samples, :math:`-\mathbb{E} D(G(z))` (Arjovsky et al. 2017; Lim & Ye 2017 and
      Miyato et al. 2018 use the same generator loss with the hinge discriminator).

    Args:
        fake_logits: raw discriminator outputs on generated samples, any shape
            ``(*)``.
        kind: ``"minimax"`` | ``"nonsaturating"`` | ``"lsgan"`` | ``"wgan"`` |
            ``"hinge"``.
        reduction: ``"none"`` (shape ``(*)``) | ``"mean"`` | ``"sum"``.

    Returns:
        The loss in the dtype of ``fake_logits``: shape ``(*)`` for ``"none"``, else
        a scalar.

    References: Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014,
    section 3; Mao et al., ICCV 2017; Arjovsky et al., ICML 2017; Miyato et al.,
    ICLR 2018.

    Example:
        >>> fake = torch.tensor([-1e4, 0.0], requires_grad=True)
        >>> gan_generator_loss(fake, kind="minimax", reduction="sum").backward()
        >>> fake.grad  # saturated: no gradient from a confident discriminator
        tensor([-0.0000, -0.5000])
        >>> fake.grad = None
        >>> gan_generator_loss(fake, kind="nonsaturating", reduction="sum").backward()
        >>> fake.grad
        tensor([-1.0000, -0.5000])
    """
    _check_floating(fake_logits, "fake_logits")
    kind = _check_kind(kind, GENERATOR_KINDS)
    _check_reduction(reduction)

    f = _upcast(fake_logits)
    if kind == "minimax":
        loss = -F.softplus(f)
    elif kind == "nonsaturating":
        loss = F.softplus(-f)
    elif kind == "lsgan":
        loss = 0.5 * (f - 1) ** 2
    else:  # wgan, hinge
        loss = -f
    return _reduce(loss, reduction).to(fake_logits.dtype)


# --------------------------------------------------------------------------- WGAN-GP


def _check_epsilon(epsilon: object, real: torch.Tensor) -> torch.Tensor:
    """``epsilon`` of shape ``(N,)`` or ``(N, 1, ..., 1)``; returned as ``(N, 1, ..., 1)``."""
    _check_floating(epsilon, "epsilon")
    n = real.shape[0]
    column = (n,) + (1,) * (real.dim() - 1)
    if tuple(epsilon.shape) not in ((n,), column):
        raise ValueError(
            f"epsilon must have shape ({n},) or {column} (one value per sample of real "
            f"{tuple(real.shape)}), got {tuple(epsilon.shape)}"
        )
    _check_same_device([real, epsilon], ["real", "epsilon"])
    return epsilon.reshape(column)


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    weight: float = 10.0,
    reduction: str = "mean",
    *,
    epsilon: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""WGAN-GP's gradient penalty: the critic's gradient norm pushed to 1 between real and fake.

    .. math::

        \hat x = \varepsilon\, x + (1 - \varepsilon)\, \tilde x, \quad
        \varepsilon \sim U[0, 1], \qquad
        \mathcal{L}_{GP} = \lambda\, \mathbb{E}_{\hat x}
            \bigl(\lVert \nabla_{\hat x} D(\hat x) \rVert_2 - 1\bigr)^2

    with one :math:`\varepsilon` per sample.  An optimal WGAN critic is 1-Lipschitz
    with gradient norm 1 almost everywhere on the lines between the two
    distributions, so Gulrajani et al. penalise the deviation there (a soft
    constraint, in place of the weight clipping of the original WGAN).  Add it to
    :func:`gan_discriminator_loss` with ``kind="wgan"``.

    The gradient :math:`\nabla_{\hat x} D(\hat x)` is computed with
    ``torch.autograd.grad(..., create_graph=True)``, so the penalty is itself
    differentiable: back-propagating it reaches the critic's parameters (a
    second-order derivative), and also ``real`` and ``fake`` through
    :math:`\hat x`.  In the training loop pass ``fake.detach()``: the penalty
    trains only the critic.  Under ``torch.no_grad()`` the gradient is still
    computed, but without a graph, and the result is a plain value.

    The norm is per sample, over all of a sample's dimensions; its square root is
    guarded (double ``where``), so a sample where the critic's gradient is exactly
    0 (a constant or saturated critic) contributes :math:`\lambda` with a finite
    (zero) gradient instead of NaN.  Samples must be independent: a critic with
    batch normalisation couples them and breaks the per-sample gradient (the paper
    uses layer normalisation instead).

    Args:
        critic: the critic, any callable mapping a batch ``(N, *)`` to scores
            ``(N,)`` or ``(N, 1)`` (an ``nn.Module`` or a function).
        real: real samples ``(N, *)``, floating point.
        fake: generated samples, the same shape and device.
        weight: :math:`\lambda \ge 0` (10 in the paper).
        reduction: ``"none"`` (the weighted per-sample penalties, shape ``(N,)``) |
            ``"mean"`` (the paper's) | ``"sum"``.
        epsilon: the interpolation weights, shape ``(N,)`` or ``(N, 1, ..., 1)``, for
            reproducible calls; drawn from :math:`U[0, 1]` when ``None``.
        generator: the ``torch.Generator`` that draws ``epsilon`` when it is not
            given (on the generator's device, then moved to ``real``'s).

    Returns:
        The penalty in the promoted dtype of ``real`` and ``fake``: shape ``(N,)``
        for ``"none"``, else a scalar.

    Reference: Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS
    2017, Algorithm 1 and equation (3).

    Example:
        >>> w = torch.tensor([0.6, 0.8])  # a linear critic with unit-norm weight
        >>> critic = lambda x: x @ w
        >>> real, fake = torch.randn(4, 2), torch.randn(4, 2)
        >>> gradient_penalty(critic, real, fake)  # 1-Lipschitz, gradient norm 1
        tensor(0.)
        >>> gradient_penalty(lambda x: 3 * critic(x), real, fake, weight=1.0)  # (3 - 1)^2
        tensor(4.)
    """
    if not callable(critic):
        raise TypeError(
            f"critic must be callable (an nn.Module or a function), got {type(critic).__name__}"
        )
    _check_floating(real, "real")
    _check_floating(fake, "fake")
    _check_batched(real, "real", "a batch of samples")
    _check_same_shape(real, fake, "real", "fake")
    _check_same_device([real, fake], ["real", "fake"])
    weight = _check_number(weight, "weight", minimum=0.0)
    _check_reduction(reduction)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")

    out_dtype = torch.promote_types(real.dtype, fake.dtype)
    n = real.shape[0]
    column = (n,) + (1,) * (real.dim() - 1)
    if epsilon is None:
        draw_on = generator.device if generator is not None else real.device
        epsilon = torch.rand(n, generator=generator, device=draw_on, dtype=out_dtype)
        epsilon = epsilon.to(real.device).reshape(column)
    else:
        epsilon = _check_epsilon(epsilon, real)
    epsilon = epsilon.to(out_dtype)

    # A graph of the gradient is only needed when the caller will back-propagate.
    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        x_hat = epsilon * real + (1 - epsilon) * fake
        if not x_hat.requires_grad:
            x_hat = x_hat.detach().requires_grad_(True)
        scores = critic(x_hat)
        _check_tensor(scores, "critic(x)")
        grad = None
        if scores.requires_grad:
            (grad,) = torch.autograd.grad(
                scores,
                x_hat,
                grad_outputs=torch.ones_like(scores),
                create_graph=create_graph,
                allow_unused=True,
            )
    if grad is None:  # the scores do not depend on x_hat: a constant critic
        grad = torch.zeros_like(x_hat)

    squared_norm = (
        _upcast(grad).flatten(1).pow(2).sum(dim=1) if grad.dim() > 1 else _upcast(grad) ** 2
    )
    norm = safe_sqrt(squared_norm)
    penalty = weight * (norm - 1) ** 2
    return _reduce(penalty, reduction).to(out_dtype)


# --------------------------------------------------------------------------- CycleGAN


def cycle_consistency_loss(
    real_a: torch.Tensor,
    rec_a: torch.Tensor,
    real_b: torch.Tensor,
    rec_b: torch.Tensor,
    weight: float = 10.0,
    *,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""CycleGAN's cycle-consistency loss: mean L1 between images and their reconstructions.

    With generators :math:`G: A \to B` and :math:`F: B \to A`, the reconstructions
    are :math:`\mathrm{rec}_a = F(G(a))` and :math:`\mathrm{rec}_b = G(F(b))`:

    .. math::

        \mathcal{L}_{cyc} = \lambda \Bigl(
            \tfrac{1}{|a|} \lVert F(G(a)) - a \rVert_1
            + \tfrac{1}{|b|} \lVert G(F(b)) - b \rVert_1 \Bigr)

    where :math:`|a|` is the number of elements of ``real_a``: each term is a mean
    absolute error over all of its elements (``F.l1_loss``), as in the authors'
    code, and the two terms are *added*.  Gradients flow to the reconstructions
    (and through them to both generators); ``real_a`` and ``real_b`` are data.  At
    a perfect reconstruction the gradient is 0 (the subgradient of ``abs`` at 0,
    as in PyTorch).

    **Reduction.**  The two domains are unpaired: they may differ in batch size
    and in sample shape (say 4 RGB images and 6 grey ones), so sample :math:`i`
    of A has no partner in B.  The per-sample value of an image is its own weighted
    reconstruction error, :math:`\ell_i = \lambda \cdot \mathrm{mean}
    \lvert \mathrm{rec}_i - \mathrm{real}_i \rvert` over that image's elements,
    and the two domains are kept apart as in :func:`gan_discriminator_loss`:

    * ``"none"`` returns the per-sample values of A, then those of B, shape
      ``(N + M,)``: ``out[:N]`` are domain A's, ``out[N:]`` domain B's;
    * ``"mean"`` (the default, the formula above) is the mean over A's samples
      *plus* the mean over B's samples, the two expectations of Zhu et al.'s
      equation (2), not the mean of the ``N + M`` values together (which would
      weigh the larger batch more).  It is computed as the formula is written,
      one mean over all the elements of each domain (the same value: every
      sample of a domain has the same number of elements);
    * ``"sum"`` is the sum of the ``N + M`` per-sample values.

    An empty domain (``N = 0``) contributes 0 to ``"mean"`` with a zero gradient,
    not NaN, and no value to ``"none"``; a sample with no elements has the value 0.
    ``"none"`` and ``"sum"`` need a batch dimension: 0-dim inputs are refused.

    Args:
        real_a: images of domain A, any shape ``(N, *)``, floating point.
        rec_a: their reconstructions :math:`F(G(a))`, the same shape and device.
        real_b: images of domain B, any shape ``(M, *)``.
        rec_b: their reconstructions :math:`G(F(b))`, the same shape as ``real_b``.
        weight: :math:`\lambda \ge 0` (10 in the paper); it multiplies every
            per-sample value.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``, as above (keyword only).

    Returns:
        In the promoted dtype of the inputs: a scalar, or for ``"none"`` the
        per-sample values ``(N + M,)``.  ``"mean"`` of empty inputs is 0.

    Reference: Zhu et al., "Unpaired Image-to-Image Translation using
    Cycle-Consistent Adversarial Networks", ICCV 2017, equations (2) and (3).

    Example:
        >>> a, b = torch.zeros(1, 3, 2, 2), torch.ones(1, 1, 2, 2)
        >>> cycle_consistency_loss(a, a + 0.1, b, b - 0.2)  # 10 * (0.1 + 0.2)
        tensor(3.)
        >>> a = torch.zeros(2, 3, 2, 2)  # two images in A, one in B
        >>> rec_a = torch.stack([a[0] + 0.25, a[1] + 0.75])
        >>> cycle_consistency_loss(a, rec_a, b, b - 0.5, reduction="none")
        tensor([2.5000, 7.5000, 5.0000])
        >>> cycle_consistency_loss(a, rec_a, b, b - 0.5)  # (2.5 + 7.5) / 2 + 5
        tensor(10.)
    """
    for tensor, name in (
        (real_a, "real_a"),
        (rec_a, "rec_a"),
        (real_b, "real_b"),
        (rec_b, "rec_b"),
    ):
        _check_floating(tensor, name)
    _check_same_shape(real_a, rec_a, "real_a", "rec_a")
    _check_same_shape(real_b, rec_b, "real_b", "rec_b")
    _check_same_device([real_a, rec_a, real_b, rec_b], ["real_a", "rec_a", "real_b", "rec_b"])
    weight = _check_number(weight, "weight", minimum=0.0)
    _check_reduction(reduction)

    out_dtype = torch.promote_types(
        torch.promote_types(real_a.dtype, rec_a.dtype),
        torch.promote_types(real_b.dtype, rec_b.dtype),
    )
    error_a = (_upcast(rec_a) - _upcast(real_a)).abs()
    error_b = (_upcast(rec_b) - _upcast(real_b)).abs()
    if reduction == "mean":
        # The formula as written: one mean per domain, over all of its elements.
        loss = weight * (_reduce(error_a, "mean") + _reduce(error_b, "mean"))
    else:
        per_sample = torch.cat(
            [
                _per_sample_mean(error_a, "real_a", reduction),
                _per_sample_mean(error_b, "real_b", reduction),
            ]
        )
        loss = _reduce(weight * per_sample, reduction)
    return loss.to(out_dtype)


def _per_sample_mean(error: torch.Tensor, name: str, reduction: str) -> torch.Tensor:
    """The mean of ``error`` over each sample's elements, ``(N,)``; 0 for a sample
    with no elements (a mean over nothing, as :func:`_reduce`'s)."""
    if error.dim() == 0:
        raise ValueError(
            f"{name} must have a batch dimension, shape (N, ...), for reduction={reduction!r}, "
            "got shape ()"
        )
    flat = error.flatten(1) if error.dim() > 1 else error.unsqueeze(1)
    # flat.shape[1] is shape metadata, not a value: no host synchronisation.
    return flat.mean(1) if flat.shape[1] else 0.0 * flat.sum(1)

"""Assignment source: a07_adversarial (see :mod:`grading.sources`)."""

from __future__ import annotations

import json

from . import Exercise


def _cases(*names: str) -> str:
    """The ``cases=[...]`` argument of a test call."""
    return ", cases=" + json.dumps(list(names), ensure_ascii=False)


EXERCISES = [
    Exercise(
        function="gan_discriminator_loss",
        title="1. The discriminator's loss",
        task=r"""
With $r = D(x)$ the discriminator's raw outputs (logits, critic values) on real samples
and $f = D(G(z))$ those on generated samples (the minimax loss is the binary
cross-entropy $-\log\sigma(r) - \log(1 - \sigma(f))$, written with softplus):

| `kind` | loss |
|---|---|
| `"minimax"`, `"nonsaturating"` | $\mathrm{softplus}(-r) + \mathrm{softplus}(f)$ |
| `"lsgan"` | $\tfrac12 (r - 1)^2 + \tfrac12 f^2$ |
| `"wgan"` | $-r + f$ |
| `"hinge"` | $\max(0, 1 - r) + \max(0, 1 + f)$ |

`"mean"` is the mean of the real terms **plus** the mean of the fake terms (two
expectations; the batches may differ in size), `"sum"` the sum of all terms and `"none"`
the real terms followed by the fake terms, flattened into one vector. Logits of
$\pm 10^4$ must give finite values: $-\log\sigma(x) = \mathrm{softplus}(-x)$.
`F.binary_cross_entropy_with_logits` and `F.binary_cross_entropy` are off limits
(use `F.softplus` or `F.logsigmoid`).

*Hint:* [GAN losses](../../book/gan-losses.md), the discriminator's side of each game.
""",
        signature='def gan_discriminator_loss(real_logits, fake_logits, kind="minimax", '
        'reduction="mean"):',
        docstring="The discriminator's loss from its raw outputs on real and fake samples.",
        solution="""
    if kind in ("minimax", "nonsaturating"):
        real_terms, fake_terms = F.softplus(-real_logits), F.softplus(fake_logits)
    elif kind == "lsgan":
        real_terms, fake_terms = 0.5 * (real_logits - 1) ** 2, 0.5 * fake_logits**2
    elif kind == "wgan":
        real_terms, fake_terms = -real_logits, fake_logits
    elif kind == "hinge":
        real_terms, fake_terms = F.relu(1 - real_logits), F.relu(1 + fake_logits)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    if reduction == "none":
        return torch.cat([real_terms.reshape(-1), fake_terms.reshape(-1)])
    return reduce_loss(real_terms, reduction) + reduce_loss(fake_terms, reduction)
""",
        forbid="[F.binary_cross_entropy_with_logits, F.binary_cross_entropy]",
        visible=[
            (
                "minimax",
                "Check gan_discriminator_loss (minimax) on random and saturated logits",
                _cases(
                    "random logits (8,), minimax",
                    "real (6, 1) and fake (10, 1): different batch sizes",
                    "saturated logits (±1e4), minimax",
                ),
            ),
            (
                "kinds",
                "Check gan_discriminator_loss for the LSGAN, WGAN and hinge losses",
                _cases(
                    "kind='lsgan'",
                    "kind='wgan'",
                    "kind='hinge'",
                    "reduction='none': [real terms, fake terms]",
                ),
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="gan_generator_loss",
        title="2. The generator's loss",
        task=r"""
With $f = D(G(z))$ the discriminator's raw outputs on generated samples:

| `kind` | loss |
|---|---|
| `"minimax"` (saturating) | $\log(1 - \sigma(f)) = -\mathrm{softplus}(f)$ |
| `"nonsaturating"` | $-\log\sigma(f) = \mathrm{softplus}(-f)$ |
| `"lsgan"` | $\tfrac12 (f - 1)^2$ |
| `"wgan"`, `"hinge"` | $-f$ |

reduced over all elements by `reduction`. Logits of $\pm 10^4$ must give finite values.
`F.binary_cross_entropy_with_logits` and `F.binary_cross_entropy` are off limits.

*Hint:* [GAN losses](../../book/gan-losses.md), why the non-saturating loss trains
where the minimax one stalls.
""",
        signature='def gan_generator_loss(fake_logits, kind="nonsaturating", reduction="mean"):',
        docstring="The generator's loss from the discriminator's raw outputs on fakes.",
        solution="""
    if kind == "minimax":
        loss = -F.softplus(fake_logits)
    elif kind == "nonsaturating":
        loss = F.softplus(-fake_logits)
    elif kind == "lsgan":
        loss = 0.5 * (fake_logits - 1) ** 2
    elif kind in ("wgan", "hinge"):
        loss = -fake_logits
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return reduce_loss(loss, reduction)
""",
        forbid="[F.binary_cross_entropy_with_logits, F.binary_cross_entropy]",
        visible=[
            (
                "saturating",
                "Check gan_generator_loss (non-saturating and minimax) on saturated logits",
                _cases(
                    "random logits (8,), nonsaturating",
                    "saturated logits (±1e4), nonsaturating",
                    "kind='minimax' (saturating)",
                    "saturated logits (±1e4), kind='minimax'",
                ),
            ),
            (
                "kinds",
                "Check gan_generator_loss for the LSGAN, WGAN and hinge losses",
                _cases(
                    "kind='lsgan'",
                    "kind='wgan'",
                    "kind='hinge', reduction='sum'",
                    "PatchGAN logits (2, 1, 3, 3), reduction='none'",
                ),
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="gradient_penalty",
        title="3. Gradient penalty (WGAN-GP)",
        task=r"""
Between real samples $x$ and fake samples $\tilde x$, one $\varepsilon$ per sample,

$$\hat x = \varepsilon\, x + (1 - \varepsilon)\, \tilde x, \qquad
\mathcal{L}_{GP} = \lambda\, \mathbb{E}\big(\lVert \nabla_{\hat x} D(\hat x) \rVert_2 - 1\big)^2 ,$$

with the norm per sample over all of a sample's dimensions, `weight` $= \lambda$ and
`reduction` over the samples (`"none"`: one penalty per sample). `critic` is a callable
(a module or a function) that maps a batch to one score per sample. The tests pass
`epsilon` (shape `(N,)`) so that everyone uses the same interpolates; draw it with
`torch.rand` when it is `None`.

Compute $\nabla_{\hat x} D(\hat x)$ with `torch.autograd.grad(..., create_graph=True)`:
the penalty must itself be differentiable (it trains the critic), here with respect to
`fake`. Where the critic's gradient is exactly 0 (a constant critic, a dead ReLU) the
norm's square root has an infinite derivative: the penalty is then $\lambda$ with a
finite gradient. `F.mse_loss` is off limits.

*Hint:* [GAN losses](../../book/gan-losses.md), the gradient penalty; use
`with torch.enable_grad():` so that it also works when called under `torch.no_grad()`.
""",
        signature=(
            "def gradient_penalty(\n"
            '    critic, real, fake, weight=10.0, reduction="mean", *, epsilon=None\n'
            "):"
        ),
        docstring="WGAN-GP's penalty weight * (||grad D(x_hat)|| - 1)^2 at the interpolates.",
        solution="""
    n = real.shape[0]
    if epsilon is None:
        epsilon = torch.rand(n, dtype=real.dtype, device=real.device)
    eps = epsilon.to(real.dtype).reshape((n,) + (1,) * (real.dim() - 1))
    create_graph = torch.is_grad_enabled()  # a graph only when someone back-propagates
    with torch.enable_grad():
        x_hat = eps * real + (1 - eps) * fake
        if not x_hat.requires_grad:
            x_hat = x_hat.detach().requires_grad_(True)
        scores = critic(x_hat)
        grad = None
        if scores.requires_grad:
            (grad,) = torch.autograd.grad(
                scores.sum(), x_hat, create_graph=create_graph, allow_unused=True
            )
    if grad is None:  # the scores do not depend on x_hat
        grad = torch.zeros_like(x_hat)
    squared = (grad * grad).flatten(1).sum(1)
    positive = squared > 0
    safe = torch.where(positive, squared, torch.ones_like(squared))
    norm = torch.where(positive, torch.sqrt(safe), torch.zeros_like(squared))
    return reduce_loss(weight * (norm - 1) ** 2, reduction)
""",
        forbid="[F.mse_loss]",
        visible=[
            (
                "smooth",
                "Check gradient_penalty with smooth and linear critics",
                _cases(
                    "smooth critic, vectors (6, 4)",
                    "smooth critic, images (3, 2, 3, 3)",
                    "1-Lipschitz linear critic (unit-norm weight)",
                    "weight=1, reduction='none'",
                ),
            ),
            (
                "zero_gradient",
                "Check gradient_penalty where the critic's gradient is exactly 0",
                _cases(
                    "critic with a zero gradient on some samples",
                    "constant critic (gradient 0 everywhere)",
                    "epsilon 0 and 1 (the end points)",
                ),
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="cycle_consistency_loss",
        title="4. Cycle consistency (CycleGAN)",
        task=r"""
With reconstructions $\mathrm{rec}_a = F(G(a))$ and $\mathrm{rec}_b = G(F(b))$,

$$\mathcal{L}_{cyc} = \lambda\,\Big(\tfrac{1}{|a|}\lVert \mathrm{rec}_a - a\rVert_1
    + \tfrac{1}{|b|}\lVert \mathrm{rec}_b - b\rVert_1\Big),$$

each term the mean absolute error over all of its elements (the two domains may have
different shapes), the two terms *added*, times `weight` $= \lambda$. The result is a
scalar. `F.l1_loss` is off limits.

*Hint:* [GAN losses](../../book/gan-losses.md), CycleGAN's cycle-consistency loss.
""",
        signature="def cycle_consistency_loss(real_a, rec_a, real_b, rec_b, weight=10.0):",
        docstring="weight * (mean |rec_a - real_a| + mean |rec_b - real_b|).",
        solution="""
    loss_a = reduce_loss((rec_a - real_a).abs(), "mean")
    loss_b = reduce_loss((rec_b - real_b).abs(), "mean")
    return weight * (loss_a + loss_b)
""",
        forbid="[F.l1_loss]",
        visible=[
            (
                "random",
                "Check cycle_consistency_loss on random images of one or two shapes",
                _cases(
                    "random images (2, 3, 4, 4)",
                    "domains of different shapes (2, 3, 4, 4) and (3, 1, 5, 5)",
                ),
            ),
            (
                "weights",
                "Check cycle_consistency_loss with perfect reconstructions and other weights",
                _cases("perfect reconstructions", "weight=1", "weight=2.5"),
            ),
        ],
        hidden=[""],
    ),
]


ASSIGNMENT = {
    "notebook": "adversarial",
    "title": "Assignment 7: adversarial losses",
    "chapter": "../../book/gan-losses.md",
    "chapter_title": "GAN losses (Part V: image synthesis)",
    "functions": "the discriminator's and the generator's losses of the minimax, "
    "non-saturating, least-squares, Wasserstein and hinge GANs, WGAN-GP's gradient penalty "
    "and CycleGAN's cycle-consistency loss",
    "rules": "The binary cross-entropy built-ins (`F.binary_cross_entropy_with_logits`, "
    "`F.binary_cross_entropy`), `F.mse_loss` and `F.l1_loss` are off limits (each exercise "
    "names them).",
    "exercises": EXERCISES,
}

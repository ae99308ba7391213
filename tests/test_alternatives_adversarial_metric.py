"""The harness accepts correct formulations of the adversarial and metric losses.

Same idea as ``tests/test_alternatives.py``: each function below is a correct
implementation written differently from the reference (``F.binary_cross_entropy_with_logits``
instead of ``softplus``, ``torch.linalg.vector_norm`` of all differences instead of
the Gram matrix, ``torch.max`` instead of a masked ``amax``, ...), and each must
pass the whole catalogue of its loss, values and gradients, on every device and
on ``meta``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import cvloss_ref
from cvloss_ref.testing import assert_loss_matches

# --------------------------------------------------------------------------- helpers


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum" or loss.numel() == 0:
        return loss.sum()
    return loss.mean()


def _all_distances(x):
    """All pairwise distances from the (B, B, D) differences; the norm's gradient
    at 0 is 0 in PyTorch."""
    return torch.linalg.vector_norm(x.unsqueeze(1) - x.unsqueeze(0), dim=-1)


def _label_masks(labels):
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    not_self = ~torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & not_self, ~same


def _mean_where(values, keep):
    keep = keep.to(values.dtype)
    count = keep.sum()
    return torch.where(count > 0, (values * keep).sum() / count.clamp_min(1), 0.0)


# --------------------------------------------------------------------------- adversarial


def gan_discriminator_loss(real_logits, fake_logits, kind="minimax", reduction="mean"):
    if kind in ("minimax", "nonsaturating"):
        real = F.binary_cross_entropy_with_logits(
            real_logits, torch.ones_like(real_logits), reduction="none"
        )
        fake = F.binary_cross_entropy_with_logits(
            fake_logits, torch.zeros_like(fake_logits), reduction="none"
        )
    elif kind == "lsgan":
        real = 0.5 * F.mse_loss(real_logits, torch.ones_like(real_logits), reduction="none")
        fake = 0.5 * F.mse_loss(fake_logits, torch.zeros_like(fake_logits), reduction="none")
    elif kind == "wgan":
        real, fake = -real_logits, fake_logits
    else:
        real = torch.clamp(1 - real_logits, min=0)
        fake = torch.clamp(1 + fake_logits, min=0)
    if reduction == "none":
        return torch.cat([real.flatten(), fake.flatten()])
    return _reduce(real, reduction) + _reduce(fake, reduction)


def gan_generator_loss(fake_logits, kind="nonsaturating", reduction="mean"):
    if kind == "minimax":
        loss = F.logsigmoid(-fake_logits)  # log(1 - sigmoid(f))
    elif kind == "nonsaturating":
        loss = -F.logsigmoid(fake_logits)
    elif kind == "lsgan":
        loss = 0.5 * (fake_logits - 1) ** 2
    else:
        loss = -fake_logits
    return _reduce(loss, reduction)


def gradient_penalty(critic, real, fake, weight=10.0, reduction="mean", *, epsilon=None):
    eps = epsilon.view(-1, *([1] * (real.dim() - 1)))
    x_hat = torch.lerp(fake, real, eps)  # fake + eps * (real - fake)
    with torch.enable_grad():
        if not x_hat.requires_grad:
            x_hat.requires_grad_(True)
        scores = critic(x_hat)
        if scores.requires_grad:
            (grad,) = torch.autograd.grad(
                scores, x_hat, torch.ones_like(scores), create_graph=True, allow_unused=True
            )
        else:
            grad = None
    if grad is None:
        grad = torch.zeros_like(x_hat)
    # vector_norm's gradient at 0 is 0, so a zero critic gradient stays finite.
    norm = torch.linalg.vector_norm(grad.flatten(1), dim=1)
    return _reduce(weight * (1 - norm) ** 2, reduction)


def cycle_consistency_loss(real_a, rec_a, real_b, rec_b, weight=10.0):
    # Each mean absolute error as an L1 norm divided by the count, not a mean of |d|.
    def mae(real, rec):
        return torch.linalg.vector_norm(real - rec, ord=1) / max(real.numel(), 1)

    return weight * (mae(real_a, rec_a) + mae(real_b, rec_b))


# --------------------------------------------------------------------------- metric


def pairwise_distances(embeddings, squared=False, eps=1e-12):
    diff = embeddings.unsqueeze(1) - embeddings.unsqueeze(0)
    if squared:
        return (diff * diff).sum(-1)
    return torch.linalg.vector_norm(diff, dim=-1)


def contrastive_loss(x1, x2, same, margin=1.0, reduction="mean"):
    d = torch.linalg.vector_norm(x1 - x2, dim=-1)
    similar = same.bool() if same.dtype != torch.bool else same
    loss = torch.where(similar, d**2, torch.clamp(margin - d, min=0) ** 2)
    if same.is_floating_point():  # soft labels interpolate
        y = same.to(d.dtype)
        loss = y * d**2 + (1 - y) * torch.clamp(margin - d, min=0) ** 2
    return _reduce(loss, reduction)


def triplet_margin_loss(
    anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, reduction="mean"
):
    # The p-norm as a power sum, not F.pairwise_distance (the ATen norm kernel, like
    # the reference's vector_norm): other roundings.
    def distance(u, v):
        return ((u - v + eps).abs() ** p).sum(-1) ** (1 / p)

    d_pos = distance(anchor, positive)
    d_neg = distance(anchor, negative)
    if swap:
        d_neg = torch.min(d_neg, distance(positive, negative))
    return _reduce((margin + d_pos - d_neg).clamp(min=0), reduction)


def batch_all_triplet_loss(embeddings, labels, margin=1.0):
    d = _all_distances(embeddings)
    positive, negative = _label_masks(labels)
    # d[a, p] - d[a, n] for every (a, p, n), by einsum-free broadcasting
    losses = (d[:, :, None] - d[:, None, :] + margin).clamp(min=0)
    valid = positive[:, :, None] & negative[:, None, :]
    losses = losses * valid
    return _mean_where(losses, losses > 0)


def batch_hard_triplet_loss(embeddings, labels, margin=1.0, soft=False):
    d = _all_distances(embeddings)
    positive, negative = _label_masks(labels)
    hardest_pos = (d * positive).max(dim=1).values  # d >= 0
    far = d.detach().max() + 1.0
    hardest_neg = (d + far * (~negative)).min(dim=1).values
    has = positive.any(1) & negative.any(1)
    gap = torch.where(has, hardest_pos - hardest_neg, 0.0)
    losses = torch.log1p(torch.exp(-gap.abs())) + gap.clamp(min=0) if soft else F.relu(gap + margin)
    return _mean_where(losses, has)


def circle_loss(embeddings, labels, margin=0.25, gamma=256.0):
    s = F.cosine_similarity(embeddings.unsqueeze(1), embeddings.unsqueeze(0), dim=-1)
    positive, negative = _label_masks(labels)
    with torch.no_grad():  # the weights are constants in the gradient
        alpha_p = (1 + margin - s).clamp(min=0)
        alpha_n = (s + margin).clamp(min=0)
    logit_p = (-gamma * alpha_p * (s - 1 + margin)).masked_fill(~positive, -1e30)
    logit_n = (gamma * alpha_n * (s - margin)).masked_fill(~negative, -1e30)
    has = positive.any(1) & negative.any(1)
    # log(1 + sum_p sum_n exp(logit_p + logit_n)) = logaddexp(0, lse_p + lse_n)
    z = torch.logsumexp(logit_p, 1) + torch.logsumexp(logit_n, 1)
    losses = torch.logaddexp(torch.zeros_like(z), torch.where(has, z, 0.0))
    return _mean_where(losses, has)


ALTERNATIVES = {
    fn.__name__: fn
    for fn in (
        gan_discriminator_loss,
        gan_generator_loss,
        gradient_penalty,
        cycle_consistency_loss,
        pairwise_distances,
        contrastive_loss,
        triplet_margin_loss,
        batch_all_triplet_loss,
        batch_hard_triplet_loss,
        circle_loss,
    )
}


@pytest.mark.parametrize("name", sorted(ALTERNATIVES))
def test_harness_accepts_a_correct_alternative(name):
    assert_loss_matches(ALTERNATIVES[name], name)


def test_every_catalogued_adversarial_and_metric_loss_has_an_alternative():
    from cvloss_ref._catalogue import CATALOGUE
    from cvloss_ref.testing import loss_names

    modules = {"cvloss_ref.adversarial", "cvloss_ref.metric"}
    names = {
        name
        for name in loss_names()
        if getattr(getattr(cvloss_ref, name), "__module__", "") in modules
    }
    assert names == set(ALTERNATIVES)
    assert all(name in CATALOGUE for name in ALTERNATIVES)

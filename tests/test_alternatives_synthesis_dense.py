"""The harness accepts correct formulations of the dense and synthesis losses.

As in ``tests/test_alternatives.py``: each function below is a correct
implementation written differently from the reference (``torch.diff`` instead of
slicing, a sum of outer products instead of ``bmm``, ``F.one_hot`` instead of a
comparison, one forward pass over the concatenated batch instead of two, lists of
layers summed in one reduction instead of layer by layer), and each must pass
the whole catalogue of its loss, values and gradients, on every device and on
``meta``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cvloss_ref.testing import assert_loss_matches

# --------------------------------------------------------------------------- helpers


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum" or loss.numel() == 0:
        return loss.sum()
    return loss.mean()


def _ratio(total, norm):
    """total / norm, 0 where norm is 0 (with a zero gradient)."""
    nonzero = norm != 0
    return torch.where(nonzero, total / torch.where(nonzero, norm, torch.ones_like(norm)), 0.0)


# --------------------------------------------------------------------------- dense


def weighted_pixel_cross_entropy(
    logits, target, pixel_weight, weight=None, ignore_index=-100, reduction="mean"
):
    kept = target != ignore_index
    safe = torch.where(kept, target, torch.zeros_like(target))
    log_probs = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    nll = -log_probs.gather(1, safe.unsqueeze(1)).squeeze(1)
    if weight is not None:
        nll = nll * weight[safe]
    per_pixel = torch.where(kept, pixel_weight * nll, torch.zeros_like(nll))
    if reduction != "mean":
        return _reduce(per_pixel, reduction)
    return _ratio(per_pixel.sum(), (pixel_weight * kept).sum())


def dice_loss(logits_or_probs, target, smooth=1.0, from_logits=True, reduction="mean"):
    scores = logits_or_probs
    if target.is_floating_point():
        truth = target if target.shape == scores.shape else target.unsqueeze(1)
        probs = F.logsigmoid(scores).exp() if from_logits else scores
    else:
        truth = F.one_hot(target, scores.shape[1]).movedim(-1, 1).to(scores.dtype)
        probs = F.log_softmax(scores, dim=1).exp() if from_logits else scores
    n, c = scores.shape[:2]
    p, g = probs.reshape(n, c, -1), truth.reshape(n, c, -1)
    overlap = torch.einsum("ncx,ncx->nc", p, g)
    denominator = p.sum(-1) + g.sum(-1) + smooth
    dice = torch.where(
        denominator > 0,
        (2 * overlap + smooth) / torch.where(denominator > 0, denominator, 1.0),
        1.0,
    )
    return _reduce(1 - dice, reduction)


def topology_loss(pred, target, feature_extractor, layers, reduction="mean"):
    layers = [layers] if isinstance(layers, str) else list(layers)
    if pred.dim() == 3:
        pred, target = pred[:, None], target[:, None]
    n = pred.shape[0]
    # One forward pass over both batches; the ground truth's half is detached.
    features = feature_extractor(torch.cat([pred, target]))
    loss = torch.zeros(n, dtype=pred.dtype, device=pred.device)
    for name in layers:
        ours, theirs = features[name][:n], features[name][n:].detach()
        loss = loss + F.mse_loss(ours, theirs, reduction="none").flatten(1).mean(-1)
    return _reduce(loss, reduction)


# --------------------------------------------------------------------------- synthesis


def perceptual_loss(pred, target, feature_extractor, layers, weights=None, reduction="mean"):
    layers = [layers] if isinstance(layers, str) else list(layers)
    if weights is None:
        weights = [1.0] * len(layers)
    elif isinstance(weights, dict):
        weights = [weights[name] for name in layers]
    ours = feature_extractor(pred)
    with torch.no_grad():
        theirs = feature_extractor(target)
    n = pred.shape[0]
    loss = torch.zeros(n, dtype=pred.dtype, device=pred.device)
    for name, weight in zip(layers, weights):
        diff = (ours[name] - theirs[name]).flatten(1)
        size = diff.shape[1]
        loss = loss + weight * torch.linalg.vector_norm(diff, dim=1) ** 2 / size
    return _reduce(loss, reduction)


def gram_matrix(features, normalize=True):
    # A sum over positions of outer products, not a matrix product (einsum and @ both
    # call the same bmm kernel as the reference): other summation order, other rounding.
    flat = features.flatten(2)
    gram = (flat.unsqueeze(2) * flat.unsqueeze(1)).sum(-1)
    if normalize and flat.shape[2] > 0:
        gram = gram / (flat.shape[1] * flat.shape[2])
    return gram


def _as_layers(pred_feats, other_feats):
    if isinstance(pred_feats, torch.Tensor):
        return [pred_feats], [other_feats]
    return list(pred_feats), list(other_feats)


def style_loss(pred_feats, style_feats, weights=None):
    preds, styles = _as_layers(pred_feats, style_feats)
    weights = [1.0] * len(preds) if weights is None else list(weights)
    # All layers' weighted squared Gram differences, each divided by its own count,
    # concatenated and summed once (the reference adds one mean per layer).
    terms = []
    for pred, style, weight in zip(preds, styles, weights):
        target = gram_matrix(style).expand(pred.shape[0], -1, -1)
        squared = (gram_matrix(pred) - target).pow(2).flatten()
        terms.append(squared * (weight / max(squared.numel(), 1)))
    return torch.cat(terms).sum()


def content_loss(pred_feats, content_feats):
    preds, contents = _as_layers(pred_feats, content_feats)
    total = torch.zeros((), dtype=preds[0].dtype, device=preds[0].device)
    for pred, content in zip(preds, contents):
        if pred.numel() == 0:
            total = total + (pred - content).sum()
        else:
            total = total + F.mse_loss(pred, content)
    return total


def total_variation(images, p=1, reduction="mean"):
    vertical = torch.diff(images, dim=-2).abs().pow(p)
    horizontal = torch.diff(images, dim=-1).abs().pow(p)
    per_image = vertical.flatten(-3).sum(-1) + horizontal.flatten(-3).sum(-1)
    return _reduce(per_image, reduction)


ALTERNATIVES = {
    fn.__name__: fn
    for fn in (
        weighted_pixel_cross_entropy,
        dice_loss,
        topology_loss,
        perceptual_loss,
        gram_matrix,
        style_loss,
        content_loss,
        total_variation,
    )
}


@pytest.mark.parametrize("name", sorted(ALTERNATIVES))
def test_harness_accepts_a_correct_alternative(name):
    assert_loss_matches(ALTERNATIVES[name], name)


def test_every_catalogued_dense_and_synthesis_loss_has_an_alternative():
    import cvloss_ref
    from cvloss_ref._catalogue import CATALOGUE
    from cvloss_ref.testing import loss_names

    loss_names()  # loads the catalogue
    modules = {"cvloss_ref.dense", "cvloss_ref.synthesis"}
    names = {
        name
        for name in CATALOGUE
        if getattr(getattr(cvloss_ref, name), "__module__", "") in modules
    }
    assert names == set(ALTERNATIVES)

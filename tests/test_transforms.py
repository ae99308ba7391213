"""The losses with a hand-written autograd Function under ``torch.func`` transforms.

``giou_loss``, ``diou_loss``, ``ciou_loss``, ``sigmoid_focal_loss``,
``binary_cross_entropy_with_logits``, ``softmax_focal_loss``, ``total_variation`` and
the near pairs of ``pairwise_distances`` run an autograd Function of
``cvloss_ref/_fused.py`` that supports no ``torch.func`` transform; while one is active
(``_fused.transforms_active()``) they take their readable composition instead.  Here
``vmap(grad(...))``, ``jvp`` and ``jacrev`` must give what ordinary autograd gives on
the fused path, one sample at a time in a Python loop (float64, to rounding), and for
the sigmoid losses what torchvision's and PyTorch's own losses give under the same
transforms.  (``cross_entropy`` is tested in ``tests/test_fast_paths.py``.)
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch.func import grad, jacrev, jvp, vmap

from cvloss_ref import metric
from cvloss_ref.boxes import ciou_loss, diou_loss, giou_loss
from cvloss_ref.classification import (
    binary_cross_entropy_with_logits,
    sigmoid_focal_loss,
    softmax_focal_loss,
)
from cvloss_ref.synthesis import total_variation

TIGHT = {"rtol": 1e-10, "atol": 1e-12}
DTYPE = torch.float64
BATCH = 3


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _per_sample_gradients(f, *inputs, argnums=(0,)):
    """``d f(*inputs[b]) / d inputs[b][k]`` for every sample ``b`` and ``k`` in
    ``argnums``, by ordinary autograd one sample at a time (the fused path)."""
    grads = [[] for _ in argnums]
    for sample in zip(*inputs, strict=True):
        sample = [
            t.detach().clone().requires_grad_(i in argnums) if t.is_floating_point() else t
            for i, t in enumerate(sample)
        ]
        found = torch.autograd.grad(f(*sample), [sample[i] for i in argnums])
        for kept, g in zip(grads, found, strict=True):
            kept.append(g)
    return tuple(torch.stack(g) for g in grads)


def _autograd_jacobian(f, x):
    """``f(x)`` and its Jacobian ``(*f(x).shape, *x.shape)``, one output entry at a time
    by ordinary autograd (the fused path)."""
    x = x.detach().clone().requires_grad_(True)
    out = f(x)
    rows = [torch.autograd.grad(o, x, retain_graph=True)[0] for o in out.reshape(-1)]
    return out.detach(), torch.stack(rows).reshape(*out.shape, *x.shape)


def _check_jvp_and_jacrev(f, x, tangent, *, check_jacrev=True):
    """``jvp`` (and ``jacrev``) of ``f`` at ``x`` against the autograd Jacobian."""
    value, jacobian = _autograd_jacobian(f, x)
    out, out_tangent = jvp(f, (x,), (tangent,))
    torch.testing.assert_close(out, value, **TIGHT)
    expected = (jacobian.reshape(value.numel(), -1) @ tangent.reshape(-1)).reshape(value.shape)
    torch.testing.assert_close(out_tangent, expected, **TIGHT)
    if check_jacrev:
        torch.testing.assert_close(jacrev(f)(x), jacobian, **TIGHT)


def _reduced(loss_fn, reduction, upstream):
    """A scalar of ``loss_fn(...)``: the loss itself for ``"mean"``/``"sum"``, a weighted
    sum with the fixed ``upstream`` (not all ones) for ``"none"``."""
    if reduction == "none":
        return lambda *args: (loss_fn(*args, reduction="none") * upstream).sum()
    return lambda *args: loss_fn(*args, reduction=reduction)


# --------------------------------------------------------------------------- box losses


def _random_boxes(generator, *shape):
    corner = torch.rand(*shape, 2, generator=generator, dtype=DTYPE) * 10
    size = torch.rand(*shape, 2, generator=generator, dtype=DTYPE) * 5 + 0.1
    return torch.cat((corner, corner + size), -1)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("loss", [giou_loss, diou_loss, ciou_loss], ids=["giou", "diou", "ciou"])
def test_box_losses_under_torch_func_as_autograd_on_the_fused_path(loss, reduction):
    gen = _generator(1)
    # Overlapping, disjoint and nested pairs: each term of each loss has a gradient.
    pred = _random_boxes(gen, BATCH, 6)
    target = _random_boxes(gen, BATCH, 6)
    upstream = torch.randn(6, generator=gen, dtype=DTYPE)
    f = _reduced(loss, reduction, upstream)
    ours = vmap(grad(f, argnums=(0, 1)))(pred, target)
    expected = _per_sample_gradients(f, pred, target, argnums=(0, 1))
    for got, want in zip(ours, expected, strict=True):
        torch.testing.assert_close(got, want, **TIGHT)
    tangent = torch.randn(6, 4, generator=gen, dtype=DTYPE)
    _check_jvp_and_jacrev(lambda p: loss(p, target[0], reduction=reduction), pred[0], tangent)


def test_ciou_jvp_holds_alpha_constant_as_the_gradient_does():
    """CIoU's trade-off alpha carries no gradient (torchvision's convention); forward
    mode must hold it constant too, so that a jvp is the gradient's Jacobian times the
    tangent (torch.no_grad alone leaves alpha's tangent in)."""
    gen = _generator(2)
    pred, target = _random_boxes(gen, 5), _random_boxes(gen, 5)
    pred[:, 2] += 4.0  # wide predictions: v, and so alpha's own derivative, far from 0
    tangent = torch.randn(5, 4, generator=gen, dtype=DTYPE)
    _check_jvp_and_jacrev(lambda p: ciou_loss(p, target, reduction="none"), pred, tangent)
    # torchvision's reverse-mode gradient, dotted with the tangent (its own jvp is the
    # one that moves alpha: it relies on torch.no_grad).
    leaf = pred.clone().requires_grad_(True)
    torchvision.ops.complete_box_iou_loss(leaf, target, reduction="sum").backward()
    _, ours = jvp(lambda p: ciou_loss(p, target, reduction="sum"), (pred,), (tangent,))
    torch.testing.assert_close(ours, (leaf.grad * tangent).sum(), **TIGHT)


def test_box_loss_with_box_format_under_vmap_grad():
    gen = _generator(3)
    boxes = torch.rand(BATCH, 4, 4, generator=gen, dtype=DTYPE) + 0.2
    targets = torch.rand(BATCH, 4, 4, generator=gen, dtype=DTYPE) + 0.2

    def f(p, t):
        return giou_loss(p, t, box_format="cxcywh")

    torch.testing.assert_close(
        vmap(grad(f))(boxes, targets), _per_sample_gradients(f, boxes, targets)[0], **TIGHT
    )


# ------------------------------------------------------------------ sigmoid losses


def _sigmoid_inputs(seed, soft):
    gen = _generator(seed)
    logits = torch.randn(BATCH, 4, 5, generator=gen, dtype=DTYPE) * 3
    if soft:
        target = torch.rand(BATCH, 4, 5, generator=gen, dtype=DTYPE)
    else:
        target = torch.randint(0, 2, (BATCH, 4, 5), generator=gen).to(DTYPE)
    return logits, target, gen


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize(
    ("alpha", "gamma"), [(0.25, 2.0), (-1.0, 0.5), (0.6, 0.0)], ids=["default", "g05", "g0"]
)
def test_sigmoid_focal_loss_under_torch_func_as_autograd_and_torchvision(
    alpha, gamma, soft, reduction
):
    logits, target, gen = _sigmoid_inputs(4, soft)
    upstream = torch.randn(4, 5, generator=gen, dtype=DTYPE)

    def ours_fn(x, y, reduction):
        return sigmoid_focal_loss(x, y, alpha, gamma, reduction)

    def theirs_fn(x, y, reduction):
        return torchvision.ops.sigmoid_focal_loss(x, y, alpha, gamma, reduction)

    f = _reduced(ours_fn, reduction, upstream)
    ours = vmap(grad(f))(logits, target)
    torch.testing.assert_close(ours, _per_sample_gradients(f, logits, target)[0], **TIGHT)
    peer = _reduced(theirs_fn, reduction, upstream)
    torch.testing.assert_close(ours, vmap(grad(peer))(logits, target), **TIGHT)

    tangent = torch.randn(4, 5, generator=gen, dtype=DTYPE)
    y = target[0]
    _check_jvp_and_jacrev(lambda x: ours_fn(x, y, reduction), logits[0], tangent)
    out, out_tangent = jvp(lambda x: ours_fn(x, y, reduction), (logits[0],), (tangent,))
    peer_out, peer_tangent = jvp(lambda x: theirs_fn(x, y, reduction), (logits[0],), (tangent,))
    torch.testing.assert_close(out, peer_out, **TIGHT)
    torch.testing.assert_close(out_tangent, peer_tangent, **TIGHT)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_bce_with_logits_under_torch_func_as_autograd_and_pytorch(soft, reduction):
    logits, target, gen = _sigmoid_inputs(5, soft)
    upstream = torch.randn(4, 5, generator=gen, dtype=DTYPE)
    f = _reduced(binary_cross_entropy_with_logits, reduction, upstream)
    ours = vmap(grad(f))(logits, target)
    torch.testing.assert_close(ours, _per_sample_gradients(f, logits, target)[0], **TIGHT)
    peer = _reduced(F.binary_cross_entropy_with_logits, reduction, upstream)
    torch.testing.assert_close(ours, vmap(grad(peer))(logits, target), **TIGHT)

    tangent = torch.randn(4, 5, generator=gen, dtype=DTYPE)
    y = target[0]
    _check_jvp_and_jacrev(
        lambda x: binary_cross_entropy_with_logits(x, y, reduction=reduction), logits[0], tangent
    )
    out = jvp(
        lambda x: binary_cross_entropy_with_logits(x, y, reduction=reduction),
        (logits[0],),
        (tangent,),
    )
    theirs = jvp(
        lambda x: F.binary_cross_entropy_with_logits(x, y, reduction=reduction),
        (logits[0],),
        (tangent,),
    )
    torch.testing.assert_close(out, theirs, **TIGHT)


# ------------------------------------------------------------------ softmax focal loss


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize(
    "kwargs",
    [{"gamma": 2.0}, {"gamma": 0.0}, {"gamma": 0.5, "alpha": "random"}, {"ignore_index": 1}],
    ids=["gamma2", "gamma0", "alpha", "ignore_index"],
)
def test_softmax_focal_loss_under_torch_func_as_autograd_on_the_fused_path(kwargs, reduction):
    gen = _generator(6)
    logits = torch.randn(BATCH, 6, 5, generator=gen, dtype=DTYPE) * 2
    target = torch.randint(0, 5, (BATCH, 6), generator=gen)
    if kwargs.get("alpha") == "random":
        kwargs = {**kwargs, "alpha": torch.rand(5, generator=gen, dtype=DTYPE)}
    upstream = torch.randn(6, generator=gen, dtype=DTYPE)

    def loss(x, y, reduction):
        return softmax_focal_loss(x, y, reduction=reduction, **kwargs)

    f = _reduced(loss, reduction, upstream)
    ours = vmap(grad(f))(logits, target)
    torch.testing.assert_close(ours, _per_sample_gradients(f, logits, target)[0], **TIGHT)
    tangent = torch.randn(6, 5, generator=gen, dtype=DTYPE)
    y = target[0]
    _check_jvp_and_jacrev(lambda x: loss(x, y, reduction), logits[0], tangent)


def test_softmax_focal_loss_with_gamma_0_under_vmap_grad_is_cross_entropy():
    gen = _generator(7)
    logits = torch.randn(BATCH, 6, 5, 3, generator=gen, dtype=DTYPE)
    target = torch.randint(0, 5, (BATCH, 6, 3), generator=gen)
    ours = vmap(grad(lambda x, y: softmax_focal_loss(x, y, gamma=0.0)))(logits, target)
    theirs = vmap(grad(lambda x, y: F.cross_entropy(x, y)))(logits, target)
    torch.testing.assert_close(ours, theirs, **TIGHT)


# ------------------------------------------------------------------ total variation


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("p", [1, 2])
def test_total_variation_under_torch_func_as_autograd_on_the_fused_path(p, reduction):
    gen = _generator(8)
    images = torch.randn(BATCH, 2, 2, 4, 5, generator=gen, dtype=DTYPE)
    upstream = torch.randn(2, generator=gen, dtype=DTYPE)
    f = _reduced(lambda x, reduction: total_variation(x, p, reduction), reduction, upstream)
    ours = vmap(grad(f))(images)
    torch.testing.assert_close(ours, _per_sample_gradients(f, images)[0], **TIGHT)
    tangent = torch.randn(2, 4, 5, generator=gen, dtype=DTYPE)
    one_image = images[0, 0]
    _check_jvp_and_jacrev(lambda x: total_variation(x, p, reduction), one_image, tangent)
    batch_tangent = torch.randn(2, 2, 4, 5, generator=gen, dtype=DTYPE)
    _check_jvp_and_jacrev(lambda x: total_variation(x, p, reduction), images[0], batch_tangent)


# ------------------------------------------------------------------ pairwise distances


def _embeddings_with_near_pairs(gen):
    x = torch.randn(6, 4, generator=gen, dtype=DTYPE)
    x[1] = x[0] + 1e-3 * torch.randn(4, generator=gen, dtype=DTYPE)
    x[4] = x[3] + 1e-2 * torch.randn(4, generator=gen, dtype=DTYPE)
    return x


@pytest.mark.parametrize("squared", [False, True])
def test_pairwise_distances_near_pairs_under_torch_func_as_autograd(squared):
    """grad, jvp and jacrev (vmap cannot run: the near pairs are found with nonzero,
    whose output shape depends on the values)."""
    gen = _generator(9)
    x = _embeddings_with_near_pairs(gen)
    # The near pairs (0, 1) and (3, 4) are computed again from their differences.
    centred = x - x.mean(0)
    norms = (centred * centred).sum(1)
    for i, j in ((0, 1), (3, 4)):
        near = (x[i] - x[j]).square().sum() * metric.GRAM_RECOMPUTE_RATIO < norms[i] + norms[j]
        assert near, (i, j)
    upstream = torch.randn(6, 6, generator=gen, dtype=DTYPE)

    def f(e):
        return (metric.pairwise_distances(e, squared=squared) * upstream).sum()

    (expected,) = _per_sample_gradients(f, x.unsqueeze(0))
    torch.testing.assert_close(grad(f)(x), expected[0], **TIGHT)
    tangent = torch.randn(6, 4, generator=gen, dtype=DTYPE)
    _check_jvp_and_jacrev(lambda e: metric.pairwise_distances(e, squared=squared), x, tangent)

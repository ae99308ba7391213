"""Tests of the metric-learning losses (``cvloss_ref/metric.py``).

References: ``torch.cdist``, ``F.triplet_margin_loss``, pytorch-metric-learning
(``TripletMarginLoss`` with and without ``BatchHardMiner``, ``CircleLoss``, its
triplet index helpers) and brute-force loops over pairs and triplets written from
the papers in this file.  Values and gradients are compared in float64.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses, miners
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

from cvloss_ref import (
    batch_all_triplet_loss,
    batch_hard_triplet_loss,
    circle_loss,
    contrastive_loss,
    mine_triplets,
    pairwise_distances,
    triplet_margin_loss,
)
from tests._tolerances import TOLERANCES

REDUCTIONS = ["none", "mean", "sum"]
HALF_DTYPES = [torch.float16, torch.bfloat16]
LABELS = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 3, 3])  # classes of 3, 3, 2 and 2
BATCH_LOSSES = [batch_all_triplet_loss, batch_hard_triplet_loss, circle_loss]
L2 = LpDistance(normalize_embeddings=False)


# ----------------------------------------------------------------------------- helpers


def _embeddings(generator, batch=10, dim=4, dtype=torch.float64, scale=1.0):
    x = scale * torch.randn(batch, dim, generator=generator, dtype=torch.float64)
    return x.to(dtype)


def _value_and_grad(fn, x, *args, cotangent=None, **kwargs):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x, *args, **kwargs)
    if cotangent is None:
        cotangent = torch.ones_like(out)
    (grad,) = torch.autograd.grad(out, x, cotangent)
    return out.detach(), grad


def _value_and_grads(fn, inputs, *args, **kwargs):
    leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    out = fn(*leaves, *args, **kwargs)
    return out.detach(), torch.autograd.grad(out.sum(), leaves)


def _brute_distance(u, v):
    """Euclidean distance of two rows, differentiable, 0 with gradient 0 when u = v."""
    squared = ((u - v) ** 2).sum()
    return torch.sqrt(squared) if squared > 0 else 0.0 * squared


def _brute_triplets(labels):
    """Every valid (a, p, n): same label, a != p, and a negative of another label."""
    labels = labels.tolist()
    rng = range(len(labels))
    return [
        (a, p, n)
        for a, p, n in itertools.product(rng, rng, rng)
        if a != p and labels[a] == labels[p] and labels[n] != labels[a]
    ]


def _sorted_triplets(a, p, n):
    return sorted(zip(a.tolist(), p.tolist(), n.tolist()))


# ----------------------------------------------------------------------------- pairwise_distances


@pytest.mark.parametrize("squared", [False, True])
def test_pairwise_distances_value_same_as_brute_force_and_cdist(generator, squared):
    x = _embeddings(generator, 7, 3)
    rows = x.tolist()
    brute = torch.tensor([[math.dist(u, v) for v in rows] for u in rows], dtype=torch.float64)
    expected = brute**2 if squared else brute
    out = pairwise_distances(x, squared=squared)
    torch.testing.assert_close(out, expected)
    cdist = torch.cdist(x, x)
    torch.testing.assert_close(out, cdist**2 if squared else cdist)


def test_pairwise_distances_gradient_same_as_cdist(generator):
    x = _embeddings(generator, 6, 4)
    cotangent = torch.randn(6, 6, generator=generator, dtype=torch.float64)
    received = _value_and_grad(pairwise_distances, x, cotangent=cotangent)
    expected = _value_and_grad(lambda x: torch.cdist(x, x), x, cotangent=cotangent)
    torch.testing.assert_close(received, expected)


@pytest.mark.parametrize("squared", [False, True])
def test_pairwise_distances_gradcheck(generator, squared):
    x = _embeddings(generator, 5, 3).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: pairwise_distances(x, squared=squared), (x,))


def test_pairwise_distances_diagonal_is_exactly_zero(generator):
    x = _embeddings(generator, 33, 8, dtype=torch.float32, scale=30.0) + 500.0
    out = pairwise_distances(x)
    assert torch.equal(out.diagonal(), torch.zeros(33))
    assert (out >= 0).all()
    torch.testing.assert_close(out, out.T)


def test_pairwise_distances_gradient_is_zero_not_nan_at_zero_distance(generator):
    x = _embeddings(generator, 5, 3)
    x[3], x[4] = x[0], x[1]  # duplicated rows: zero distances off the diagonal
    out, grad = _value_and_grad(pairwise_distances, x)
    assert out[0, 3] == 0 and out[1, 4] == 0
    assert torch.isfinite(grad).all()
    _, expected = _value_and_grad(lambda x: torch.cdist(x, x), x)
    torch.testing.assert_close(grad, expected)

    # The plain square root has the NaN gradient of PyTorch issues 37154 and 57690.
    def naive(x):
        return torch.sqrt(((x.unsqueeze(1) - x.unsqueeze(0)) ** 2).sum(-1))

    assert torch.isnan(_value_and_grad(naive, x)[1]).all()


def test_pairwise_distances_identical_embeddings_are_all_zero_with_zero_gradient(generator):
    x = _embeddings(generator, 1, 4).expand(6, 4).clone()
    out, grad = _value_and_grad(pairwise_distances, x)
    assert torch.equal(out, torch.zeros(6, 6, dtype=torch.float64))
    assert torch.equal(grad, torch.zeros(6, 4, dtype=torch.float64))


def test_pairwise_distances_float32_accurate_far_from_the_origin(generator):
    # Without centring, the Gram expansion loses about 0.4 here to cancellation.
    x = (_embeddings(generator, 16, 8) + 1000.0).float()
    expected = torch.cdist(x.double(), x.double())
    torch.testing.assert_close(pairwise_distances(x).double(), expected, rtol=1e-5, atol=1e-4)


def test_pairwise_distances_float32_clusters_within_a_few_ulps(generator):
    # Tight clusters of every spread (1e-6 to 1) far from the origin: the near pairs
    # come from their differences (the Gram form alone loses all their digits), the
    # others from the Gram form within about GRAM_RECOMPUTE_RATIO of its few ulps.
    centres = 3 * torch.randn(8, 64, generator=generator, dtype=torch.float64)
    labels = torch.arange(96) % 8
    spread = 10.0 ** torch.empty(96, 1, dtype=torch.float64).uniform_(-6, 0, generator=generator)
    noise = spread * torch.randn(96, 64, generator=generator, dtype=torch.float64)
    x = (centres[labels] + noise + 100.0).float()
    exact = torch.cdist(x.double(), x.double(), compute_mode="donot_use_mm_for_euclid_dist")
    out = pairwise_distances(x).double()
    off_diagonal = ~torch.eye(96, dtype=torch.bool)
    relative = ((out - exact).abs() / exact)[off_diagonal]
    assert relative.max() <= 16 * torch.finfo(torch.float32).eps, relative.max()


def test_pairwise_distances_gradient_of_a_tiny_distance_is_the_unit_direction():
    # Rows 2^-50 apart: the distance is exact and the gradient of D_01 in x_0 is
    # (x_0 - x_1) / D = -e_0, where the Gram form (and a clamp of D^2 at eps) gives 0.
    gap = 2.0**-50
    x = torch.tensor([[1.0, 2.0], [1.0 + gap, 2.0], [5.0, -3.0]], dtype=torch.float64)
    x.requires_grad_(True)
    out = pairwise_distances(x)
    (grad,) = torch.autograd.grad(out[0, 1], x)
    assert out[0, 1].item() == gap
    expected = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    assert torch.equal(grad, expected)


def test_pairwise_distances_eps_no_longer_zeroes_small_distances():
    # eps (kept in the signature) used to zero squared distances at or below it; small
    # distances are now exact, and only an exactly zero one is guarded.
    x = torch.tensor([[0.0, 0.0], [1e-7, 0.0], [1.0, 0.0]], dtype=torch.float64)
    for eps in (0.0, 1e-12, 1.0):
        out = pairwise_distances(x, eps=eps)
        assert out[0, 1] == 1e-7 and out[0, 2] == 1


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_pairwise_distances_half_precision(generator, dtype):
    x = _embeddings(generator, 6, 3, dtype=dtype, scale=3.0)
    out = pairwise_distances(x)
    assert out.dtype == dtype
    expected = pairwise_distances(x.float())
    torch.testing.assert_close(out.float(), expected, **TOLERANCES[dtype])


def test_pairwise_distances_invalid_arguments():
    with pytest.raises(ValueError, match=r"embeddings must have shape \(B, D\).*got \(4,\)"):
        pairwise_distances(torch.zeros(4))
    with pytest.raises(TypeError, match="embeddings must be a floating-point tensor"):
        pairwise_distances(torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"eps must be >= 0\.0, got -1"):
        pairwise_distances(torch.zeros(4, 2), eps=-1.0)


# ----------------------------------------------------------------------------- contrastive_loss


def _brute_contrastive(x1, x2, same, margin, half=False):
    """Hadsell et al. (2006) eq. (4), pair by pair; ``half`` keeps their factor 1/2."""
    values = []
    for u, v, y in zip(x1.tolist(), x2.tolist(), same.tolist()):
        d = math.dist(u, v)
        values.append(d * d if y else max(0.0, margin - d) ** 2)
    values = torch.tensor(values, dtype=torch.float64)
    return 0.5 * values if half else values


@pytest.mark.parametrize("margin", [0.5, 1.0, 2.0])
def test_contrastive_loss_value_same_as_brute_force(generator, margin):
    x1, x2 = _embeddings(generator, 12, 3, scale=0.6), _embeddings(generator, 12, 3, scale=0.6)
    same = torch.rand(12, generator=generator) < 0.5
    expected = _brute_contrastive(x1, x2, same, margin)
    out = contrastive_loss(x1, x2, same, margin=margin, reduction="none")
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(contrastive_loss(x1, x2, same, margin), expected.mean())
    torch.testing.assert_close(contrastive_loss(x1, x2, same, margin, "sum"), expected.sum())


def test_contrastive_loss_is_twice_hadsells_halved_loss(generator):
    x1, x2 = _embeddings(generator, 8, 3), _embeddings(generator, 8, 3)
    same = torch.tensor([1, 0, 1, 0, 0, 1, 0, 0])
    hadsell = _brute_contrastive(x1, x2, same, 2.0, half=True)
    torch.testing.assert_close(contrastive_loss(x1, x2, same, 2.0, "none"), 2 * hadsell)


def test_contrastive_loss_gradient_same_as_brute_force(generator):
    x1, x2 = _embeddings(generator, 6, 3, scale=0.5), _embeddings(generator, 6, 3, scale=0.5)
    same = torch.tensor([True, False, True, False, False, False])

    def brute(x1, x2):
        terms = []
        for u, v, y in zip(x1, x2, same.tolist()):
            d = _brute_distance(u, v)
            terms.append(d * d if y else torch.clamp(1.0 - d, min=0) ** 2)
        return torch.stack(terms).mean()

    torch.testing.assert_close(
        _value_and_grads(contrastive_loss, (x1, x2), same),
        _value_and_grads(brute, (x1, x2)),
    )


def test_contrastive_loss_bool_integer_and_float_labels_agree(generator):
    x1, x2 = _embeddings(generator, 5, 3), _embeddings(generator, 5, 3)
    flags = torch.tensor([True, False, False, True, False])
    out = contrastive_loss(x1, x2, flags, reduction="none")
    torch.testing.assert_close(contrastive_loss(x1, x2, flags.long(), reduction="none"), out)
    torch.testing.assert_close(contrastive_loss(x1, x2, flags.double(), reduction="none"), out)


def test_contrastive_loss_identical_embeddings_finite_zero_gradient(generator):
    x = _embeddings(generator, 4, 3)
    same = torch.tensor([True, False, True, False])
    out, grads = _value_and_grads(contrastive_loss, (x, x.clone()), same, 1.5, "none")
    torch.testing.assert_close(out, torch.tensor([0.0, 2.25, 0.0, 2.25]).double())
    for grad in grads:
        assert torch.equal(grad, torch.zeros_like(grad))


def test_contrastive_loss_invalid_arguments():
    x = torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"same must have shape \(4,\).*got \(4, 1\)"):
        contrastive_loss(x, x, torch.ones(4, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"x2 must have the same shape as x1 \(4, 3\)"):
        contrastive_loss(x, torch.zeros(4, 2), torch.ones(4, dtype=torch.bool))
    with pytest.raises(
        ValueError, match=r"same must only hold values in the set \{0, 1\}, got \[2\]"
    ):
        contrastive_loss(x, x, torch.tensor([0, 1, 2, 1]), validate=True)
    with pytest.raises(ValueError, match=r"margin must be >= 0\.0, got -1"):
        contrastive_loss(x, x, torch.ones(4, dtype=torch.bool), margin=-1.0)


# ----------------------------------------------------------------------------- triplet_margin_loss


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("p", [1, 2, 3])
def test_triplet_margin_loss_same_as_f_triplet_margin_loss(generator, p, swap, reduction):
    inputs = tuple(_embeddings(generator, 8, 4) for _ in range(3))
    kwargs = {"margin": 0.7, "p": p, "swap": swap, "reduction": reduction}
    torch.testing.assert_close(
        _value_and_grads(triplet_margin_loss, inputs, **kwargs),
        _value_and_grads(F.triplet_margin_loss, inputs, **kwargs),
    )


@pytest.mark.parametrize("eps", [0.0, 1e-6, 1e-2])
def test_triplet_margin_loss_eps_is_added_to_the_difference(generator, eps):
    anchor, positive = _embeddings(generator, 5, 3), _embeddings(generator, 5, 3)
    negative = _embeddings(generator, 5, 3)
    expected = []
    for a, p, n in zip(anchor.tolist(), positive.tolist(), negative.tolist()):
        d_pos = math.sqrt(sum((x - y + eps) ** 2 for x, y in zip(a, p)))
        d_neg = math.sqrt(sum((x - y + eps) ** 2 for x, y in zip(a, n)))
        expected.append(max(0.0, 1.0 + d_pos - d_neg))
    out = triplet_margin_loss(anchor, positive, negative, eps=eps, reduction="none")
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float64))


def test_triplet_margin_loss_unbatched_and_anchor_equal_to_positive(generator):
    a, n = _embeddings(generator, 1, 4)[0], _embeddings(generator, 1, 4)[0]
    inputs = (a, a.clone(), n)
    torch.testing.assert_close(
        _value_and_grads(triplet_margin_loss, inputs, swap=True),
        _value_and_grads(F.triplet_margin_loss, inputs, swap=True),
    )


def test_triplet_margin_loss_invalid_arguments():
    x = torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"negative must have the same shape as anchor \(4, 3\)"):
        triplet_margin_loss(x, x, torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"p must be > 0\.0, got 0"):
        triplet_margin_loss(x, x, x, p=0)
    with pytest.raises(TypeError, match="swap must be a bool, got str"):
        triplet_margin_loss(x, x, x, swap="yes")
    with pytest.raises(TypeError, match="positive must be a floating-point tensor"):
        triplet_margin_loss(x, x.long(), x)


# ----------------------------------------------------------------------------- mine_triplets


def _brute_mine(x, labels, margin, strategy):
    rows, lab = x.tolist(), labels.tolist()
    d = [[math.dist(u, v) for v in rows] for u in rows]
    rng = range(len(rows))
    if strategy == "all":
        return _brute_triplets(labels)
    if strategy == "easy":
        return [(a, p, n) for a, p, n in _brute_triplets(labels) if d[a][n] > d[a][p] + margin]
    out = []
    for a in rng:
        pos = [p for p in rng if p != a and lab[p] == lab[a]]
        neg = [n for n in rng if lab[n] != lab[a]]
        if strategy == "hard":
            if pos and neg:
                out.append((a, max(pos, key=lambda p: d[a][p]), min(neg, key=lambda n: d[a][n])))
            continue
        for p in pos:  # semihard
            inside = [n for n in neg if d[a][p] < d[a][n] < d[a][p] + margin]
            if inside:
                out.append((a, p, min(inside, key=lambda n: d[a][n])))
    return sorted(out)


@pytest.mark.parametrize("margin", [0.3, 1.0, 2.5])
@pytest.mark.parametrize("strategy", ["all", "hard", "semihard", "easy"])
def test_mine_triplets_same_as_brute_force(generator, strategy, margin):
    x = _embeddings(generator, 12, 3)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 3, 4])  # 4: no positive
    a, p, n = mine_triplets(x, labels, margin=margin, strategy=strategy)
    assert a.dtype == p.dtype == n.dtype == torch.long
    assert _sorted_triplets(a, p, n) == _brute_mine(x, labels, margin, strategy)


def test_mine_triplets_all_same_as_pytorch_metric_learning(generator):
    x = _embeddings(generator, 10, 3)
    ours = mine_triplets(x, LABELS, strategy="all")
    theirs = lmu.get_all_triplets_indices(LABELS)
    for mine, peer in zip(ours, theirs):
        assert torch.equal(mine, peer)  # the same order too: by anchor, positive, negative


def test_mine_triplets_hard_same_as_batch_hard_miner(generator):
    x = _embeddings(generator, 10, 3)
    ours = mine_triplets(x, LABELS, strategy="hard")
    theirs = miners.BatchHardMiner(distance=L2)(x, LABELS)
    for mine, peer in zip(ours, theirs):
        assert torch.equal(mine, peer)


@pytest.mark.parametrize("strategy", ["all", "hard", "semihard", "easy"])
@pytest.mark.parametrize("labels", [[3, 3, 3, 3], [0, 1, 2, 3]], ids=["one class", "distinct"])
def test_mine_triplets_without_valid_triplet_is_empty(generator, strategy, labels):
    x = _embeddings(generator, 4, 2)
    for index in mine_triplets(x, torch.tensor(labels), strategy=strategy):
        assert index.shape == (0,) and index.dtype == torch.long


# The bound on the peak memory growth of the script below, between what O(B^2) and
# O(B^3) intermediates take.  O(B^2): at B = 2048 one (B, B) float32 matrix is
# 2048^2 * 4 B = 16 MiB (a bool mask 4 MiB, int64 sort indices 32 MiB); the whole
# script grows by about 180 MB.  O(B^3): the smallest one here, a (B, B, B) bool mask
# for strategy="all" at B = 1024, is 1024^3 B = 1024 MiB (1056 MB measured); at
# B = 2048 (hard, semihard) it would be 8 GiB as bool, 32 GiB as float32.  512 MB
# leaves the quadratic implementation almost 3x headroom and rejects any cubic one.
QUADRATIC_MEMORY_BOUND_MB = 512


def test_mine_triplets_hard_and_semihard_use_quadratic_memory():
    # Peak RSS growth is measured in a fresh process (ru_maxrss, in KiB on Linux).
    script = textwrap.dedent(
        """
        import resource, torch
        from cvloss_ref import batch_hard_triplet_loss, mine_triplets
        torch.set_num_threads(1)
        g = torch.Generator().manual_seed(0)
        small = torch.randn(16, 8, generator=g)
        for s in ("hard", "semihard", "all"):
            mine_triplets(small, torch.arange(16) % 4, strategy=s)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        x = torch.randn(2048, 8, generator=g)
        labels = torch.randint(0, 64, (2048,), generator=g)
        hard = mine_triplets(x, labels, strategy="hard")
        semihard = mine_triplets(x, labels, margin=0.5, strategy="semihard")
        loss = batch_hard_triplet_loss(x, labels)
        # "all" with many classes: small output, so small memory (no (B, B, B) mask)
        few = mine_triplets(x[:1024], torch.arange(1024) // 2, strategy="all")
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(hard[0].numel(), semihard[0].numel(), few[0].numel(), (after - before) / 1024)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    n_hard, n_semihard, n_all, peak_mb = result.stdout.split()
    assert int(n_hard) == 2048 and int(n_semihard) > 0 and int(n_all) == 1024 * 1022
    assert float(peak_mb) < QUADRATIC_MEMORY_BOUND_MB, (
        f"peak memory grew by {peak_mb} MB: an O(B^3) intermediate?"
    )


def test_mine_triplets_invalid_arguments():
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match=r"strategy must be one of 'all', .*got 'hardest'"):
        mine_triplets(x, torch.zeros(4, dtype=torch.long), strategy="hardest")
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\).*got \(3,\)"):
        mine_triplets(x, torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="labels must be an integer tensor"):
        mine_triplets(x, torch.zeros(4))


# ---------------------------------------- batch_all_triplet_loss


def _brute_batch_all(x, labels, margin):
    """Hermans et al.'s BA≠0: the mean over valid triplets with a positive loss."""
    positive_losses = []
    for a, p, n in _brute_triplets(labels):
        loss = margin + _brute_distance(x[a], x[p]) - _brute_distance(x[a], x[n])
        if loss > 0:
            positive_losses.append(loss)
    if not positive_losses:
        return 0.0 * x.sum()
    return torch.stack(positive_losses).mean()


@pytest.mark.parametrize("margin", [0.2, 1.0, 3.0])
def test_batch_all_triplet_loss_same_as_brute_force(generator, margin):
    x = _embeddings(generator, 10, 3)
    torch.testing.assert_close(
        _value_and_grad(batch_all_triplet_loss, x, LABELS, margin),
        _value_and_grad(_brute_batch_all, x, LABELS, margin),
    )


@pytest.mark.parametrize("margin", [0.1, 1.0])
def test_batch_all_triplet_loss_same_as_pytorch_metric_learning(generator, margin):
    x = _embeddings(generator, 10, 4)
    peer = losses.TripletMarginLoss(margin=margin, distance=L2)  # all triplets, AvgNonZero
    torch.testing.assert_close(
        _value_and_grad(batch_all_triplet_loss, x, LABELS, margin),
        _value_and_grad(peer, x, LABELS),
    )


# ---------------------------------------- batch_hard_triplet_loss


def _brute_batch_hard(x, labels, margin, soft=False):
    lab = labels.tolist()
    losses_ = []
    for a in range(len(lab)):
        pos = [_brute_distance(x[a], x[p]) for p in range(len(lab)) if p != a and lab[p] == lab[a]]
        neg = [_brute_distance(x[a], x[n]) for n in range(len(lab)) if lab[n] != lab[a]]
        if not pos or not neg:
            continue
        gap = torch.stack(pos).max() - torch.stack(neg).min()
        losses_.append(torch.log1p(torch.exp(gap)) if soft else torch.clamp(margin + gap, min=0))
    if not losses_:
        return 0.0 * x.sum()
    return torch.stack(losses_).mean()


@pytest.mark.parametrize(("margin", "soft"), [(0.2, False), (1.0, False), (1.0, True)])
def test_batch_hard_triplet_loss_same_as_brute_force(generator, margin, soft):
    x = _embeddings(generator, 10, 3)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 3, 5])  # 5: an anchor without positive
    torch.testing.assert_close(
        _value_and_grad(batch_hard_triplet_loss, x, labels, margin, soft),
        _value_and_grad(_brute_batch_hard, x, labels, margin, soft),
    )


def test_batch_hard_triplet_loss_same_as_pytorch_metric_learning(generator):
    # A margin large enough that every anchor's loss is positive: AvgNonZeroReducer
    # then averages over the same anchors as Hermans et al.
    x = _embeddings(generator, 10, 4)
    miner = miners.BatchHardMiner(distance=L2)
    peer = losses.TripletMarginLoss(margin=5.0, distance=L2)
    assert (batch_hard_triplet_loss(x, LABELS, 5.0) > 0).all()
    torch.testing.assert_close(
        _value_and_grad(batch_hard_triplet_loss, x, LABELS, 5.0),
        _value_and_grad(lambda x: peer(x, LABELS, miner(x, LABELS)), x),
    )
    # The soft margin is pytorch-metric-learning's smooth_loss with margin 0.
    smooth = losses.TripletMarginLoss(margin=0.0, smooth_loss=True, distance=L2)
    torch.testing.assert_close(
        _value_and_grad(batch_hard_triplet_loss, x, LABELS, soft=True),
        _value_and_grad(lambda x: smooth(x, LABELS, miner(x, LABELS)), x),
    )


def test_batch_hard_triplet_loss_gradcheck(generator):
    x = _embeddings(generator, 8, 3).requires_grad_(True)
    labels = LABELS[:8]
    assert torch.autograd.gradcheck(lambda x: batch_hard_triplet_loss(x, labels, 2.0), (x,))


def _dense_batch_hard(x, labels, margin=1.0, soft=False):
    """Hermans et al. eq. (5)/(6) from the full (B, B, D) tensor of differences: the
    farthest positive and nearest negative by masked amax/amin of ``.norm``."""
    dist = (x.unsqueeze(1) - x.unsqueeze(0)).norm(dim=-1)  # norm's gradient at 0 is 0
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    positive = same & ~torch.eye(len(labels), dtype=torch.bool)
    negative = ~same
    has = positive.any(1) & negative.any(1)
    hardest_pos = torch.where(positive, dist, 0.0).amax(1)
    hardest_neg = torch.where(negative, dist, math.inf).amin(1)
    gap = (hardest_pos - hardest_neg)[has]
    losses_ = F.softplus(gap) if soft else F.relu(margin + gap)
    return losses_.mean() if has.any() else 0.0 * x.sum()


def _batch_of_classes(generator, batch=64, dim=8, classes=6, singleton=False):
    x = _embeddings(generator, batch, dim)
    labels = torch.randint(0, classes, (batch,), generator=generator)
    if singleton:
        labels[5] = classes  # a class of one: an anchor without a positive
    return x, labels


@pytest.mark.parametrize(
    ("margin", "soft", "singleton"),
    [
        (0.2, False, False),
        (1.0, False, True),
        (3.0, False, False),
        (1.0, True, False),
        (1.0, True, True),
    ],
)
def test_batch_hard_triplet_loss_same_as_dense_reference(generator, margin, soft, singleton):
    # B = 64: mining (a (B, B) matrix, no autograd) then recomputing the 2B chosen
    # distances gives the value and gradient of the definition.
    x, labels = _batch_of_classes(generator, singleton=singleton)
    torch.testing.assert_close(
        _value_and_grad(batch_hard_triplet_loss, x, labels, margin, soft),
        _value_and_grad(_dense_batch_hard, x, labels, margin, soft),
    )


def test_batch_hard_triplet_loss_far_from_origin_in_float32(generator):
    # The mining Gram matrix is of centred rows and the chosen distances are
    # recomputed from differences: an offset of 1e3 costs no accuracy in float32.
    x, labels = _batch_of_classes(generator)
    x = (x + 1e3).float()
    out, grad = _value_and_grad(batch_hard_triplet_loss, x, labels, 1.0)
    expected, expected_grad = _value_and_grad(_dense_batch_hard, x.double(), labels, 1.0)
    torch.testing.assert_close(out, expected.float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad, expected_grad.float(), rtol=1e-4, atol=1e-5)


def test_batch_hard_triplet_loss_saves_no_quadratic_tensor_for_backward(generator):
    # The (B, B) matrices of the mining step are not part of the autograd graph: every
    # tensor kept for the backward pass is O(B D), here far below B^2.
    batch = 256
    x, labels = _batch_of_classes(generator, batch, 8, classes=16)
    x.requires_grad_(True)
    saved = []

    def pack(tensor):
        saved.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = batch_hard_triplet_loss(x, labels)
    assert saved and max(saved) < batch * batch, max(saved)
    (grad,) = torch.autograd.grad(out, x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize("soft", [False, True])
def test_batch_hard_triplet_loss_identical_embeddings_large_batch(generator, soft):
    # Every chosen distance is exactly 0 (the differences of equal rows): the loss is
    # the margin (softplus(0) when soft) with a finite, exactly zero gradient.
    x = (100.0 + _embeddings(generator, 1, 8)).expand(64, 8).clone()
    labels = torch.arange(64) % 5
    out, grad = _value_and_grad(batch_hard_triplet_loss, x, labels, 0.7, soft)
    expected = math.log(2.0) if soft else 0.7
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float64))
    assert torch.equal(grad, torch.zeros_like(grad))


def test_batch_hard_triplet_loss_ties_give_the_same_value(generator):
    # Duplicated rows make exact ties among the hardest candidates: the value is the
    # definition's, the gradient (sent to one of the tied pairs) finite.
    x, labels = _batch_of_classes(generator, 32, 4, classes=4)
    x = torch.cat([x, x])
    labels = torch.cat([labels, labels])
    out, grad = _value_and_grad(batch_hard_triplet_loss, x, labels, 1.0)
    expected, expected_grad = _value_and_grad(_dense_batch_hard, x, labels, 1.0)
    torch.testing.assert_close(out, expected)
    assert torch.isfinite(grad).all()
    # Which copy of a tied pair gets the gradient differs (amax splits it), but the
    # sum over the two copies of each row is the same.
    torch.testing.assert_close(grad[:32] + grad[32:], expected_grad[:32] + expected_grad[32:])


# ----------------------------------------------------------------------------- circle_loss


def _brute_circle(x, labels, margin, gamma):
    """Sun et al. (2020) eq. (6) per anchor, the double sum written out, with the
    weights alpha as constants (eq. 8)."""
    lab = labels.tolist()
    unit = x / torch.linalg.vector_norm(x, dim=1, keepdim=True)
    losses_ = []
    for a in range(len(lab)):
        s_p = [unit[a] @ unit[p] for p in range(len(lab)) if p != a and lab[p] == lab[a]]
        s_n = [unit[a] @ unit[n] for n in range(len(lab)) if lab[n] != lab[a]]
        if not s_p or not s_n:
            continue
        total = 0.0
        for sp in s_p:
            for sn in s_n:
                alpha_p = max(0.0, 1 + margin - sp.item())
                alpha_n = max(0.0, sn.item() + margin)
                total = total + torch.exp(
                    gamma * (alpha_n * (sn - margin) - alpha_p * (sp - (1 - margin)))
                )
        losses_.append(torch.log(1 + total))
    if not losses_:
        return 0.0 * x.sum()
    return torch.stack(losses_).mean()


@pytest.mark.parametrize(("margin", "gamma"), [(0.25, 4.0), (0.4, 8.0), (0.1, 1.0)])
def test_circle_loss_same_as_brute_force(generator, margin, gamma):
    x = _embeddings(generator, 10, 4)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 3, 5])
    torch.testing.assert_close(
        _value_and_grad(circle_loss, x, labels, margin, gamma),
        _value_and_grad(_brute_circle, x, labels, margin, gamma),
    )


@pytest.mark.parametrize(("margin", "gamma"), [(0.25, 256.0), (0.4, 80.0), (0.25, 32.0)])
def test_circle_loss_same_as_pytorch_metric_learning(generator, margin, gamma):
    # Every anchor has a positive and a negative, and every loss is positive, so
    # AvgNonZeroReducer averages over the same anchors.
    x = _embeddings(generator, 10, 4)
    peer = losses.CircleLoss(m=margin, gamma=gamma)
    torch.testing.assert_close(
        _value_and_grad(circle_loss, x, LABELS, margin, gamma),
        _value_and_grad(peer, x, LABELS),
    )


def test_circle_loss_weights_are_detached(generator):
    x = _embeddings(generator, 8, 3)
    labels = LABELS[:8]

    def not_detached(x):
        unit = F.normalize(x, dim=1)
        s = unit @ unit.T
        same = labels[:, None] == labels[None]
        positive = same & ~torch.eye(8, dtype=torch.bool)
        logit_p = -8.0 * F.relu(1.25 - s) * (s - 0.75)
        logit_n = 8.0 * F.relu(s + 0.25) * (s - 0.25)
        lse_p = torch.logsumexp(logit_p.masked_fill(~positive, -1e30), 1)
        lse_n = torch.logsumexp(logit_n.masked_fill(same, -1e30), 1)
        return F.softplus(lse_p + lse_n).mean()

    value, grad = _value_and_grad(circle_loss, x, labels, 0.25, 8.0)
    other_value, other_grad = _value_and_grad(not_detached, x)
    torch.testing.assert_close(value, other_value)
    assert not torch.allclose(grad, other_grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_circle_loss_identical_embeddings_gamma_256_is_finite(generator, dtype):
    x = _embeddings(generator, 1, 4, dtype=dtype).expand(6, 4).clone()
    labels = torch.tensor([0, 0, 0, 1, 1, 2])  # anchors with 2, 2, 2, 1, 1, 0 positives
    out, grad = _value_and_grad(circle_loss, x, labels)
    # s = 1 everywhere: log-sum-exp of (240 over the negatives) and (-16 over the positives)
    expected = [
        F.softplus(torch.tensor(224.0 + math.log(n_pos * n_neg), dtype=torch.float64))
        for n_pos, n_neg in [(2, 3), (2, 3), (2, 3), (1, 4), (1, 4)]
    ]
    torch.testing.assert_close(out.double(), torch.stack(expected).mean(), **TOLERANCES[dtype])
    assert torch.isfinite(grad).all()
    assert grad.abs().max() < 1e-3


# ---------------------------------------- batch losses together


@pytest.mark.parametrize("loss", BATCH_LOSSES)
@pytest.mark.parametrize(
    "labels",
    [[4, 4, 4, 4, 4], [0, 1, 2, 3, 4]],
    ids=["single class", "all labels distinct"],
)
def test_no_valid_triplet_gives_zero_with_zero_gradient(generator, loss, labels):
    x = _embeddings(generator, 5, 3)
    out, grad = _value_and_grad(loss, x, torch.tensor(labels))
    assert out.item() == 0.0
    assert torch.equal(grad, torch.zeros_like(grad))


@pytest.mark.parametrize("loss", BATCH_LOSSES)
def test_empty_batch_gives_zero_with_a_gradient(loss):
    x = torch.zeros(0, 3, dtype=torch.float64, requires_grad=True)
    out = loss(x, torch.zeros(0, dtype=torch.long))
    assert out.item() == 0.0
    out.backward()
    assert x.grad.shape == (0, 3)
    for index in mine_triplets(x, torch.zeros(0, dtype=torch.long), strategy="semihard"):
        assert index.shape == (0,)


@pytest.mark.parametrize("loss", [batch_all_triplet_loss, batch_hard_triplet_loss])
def test_identical_embeddings_give_the_margin_with_zero_gradient(generator, loss):
    x = _embeddings(generator, 1, 3).expand(6, 3).clone()
    out, grad = _value_and_grad(loss, x, torch.tensor([0, 0, 1, 1, 2, 2]), 0.7)
    torch.testing.assert_close(out, torch.tensor(0.7, dtype=torch.float64))
    assert torch.equal(grad, torch.zeros_like(grad))


def test_batch_all_triplet_loss_all_triplets_satisfied_gives_zero_with_zero_gradient(generator):
    centres = 10.0 * torch.eye(3, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    x = centres[labels] + 0.1 * _embeddings(generator, 6, 3)
    out, grad = _value_and_grad(batch_all_triplet_loss, x, labels, 1.0)
    assert out.item() == 0.0 and torch.equal(grad, torch.zeros_like(grad))


@pytest.mark.parametrize("loss", BATCH_LOSSES)
@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_half_precision_returns_input_dtype_close_to_float32(generator, loss, dtype):
    x = _embeddings(generator, 10, 4, dtype=dtype)
    kwargs = {"gamma": 16.0} if loss is circle_loss else {}
    out = loss(x, LABELS, **kwargs)
    assert out.dtype == dtype
    expected = loss(x.float(), LABELS, **kwargs)
    torch.testing.assert_close(out.float(), expected, **TOLERANCES[dtype])


@pytest.mark.parametrize(
    ("loss", "inputs"),
    [
        (pairwise_distances, lambda x, y: (x,)),
        (batch_all_triplet_loss, lambda x, y: (x, y)),
        (batch_hard_triplet_loss, lambda x, y: (x, y)),
        (circle_loss, lambda x, y: (x, y)),
        (contrastive_loss, lambda x, y: (x, x, y > 1)),
        (triplet_margin_loss, lambda x, y: (x, x, x)),
    ],
)
def test_meta_tensors(loss, inputs):
    x = torch.randn(6, 3, device="meta")
    labels = torch.zeros(6, dtype=torch.long, device="meta")
    out = loss(*inputs(x, labels))
    assert out.device.type == "meta"
    assert out.shape == ((6, 6) if loss is pairwise_distances else ())


@pytest.mark.parametrize("loss", [pairwise_distances, *BATCH_LOSSES])
def test_device_result_same_as_cpu(generator, device, loss):
    x = _embeddings(generator, 10, 4)
    args = () if loss is pairwise_distances else (LABELS,)
    out = loss(x.to(device), *(a.to(device) for a in args))
    assert out.device.type == device.type
    torch.testing.assert_close(out.cpu(), loss(x, *args))


def test_pair_and_triplet_losses_on_device(generator, device):
    x1, x2, x3 = (_embeddings(generator, 5, 3) for _ in range(3))
    same = torch.tensor([True, False, True, False, False])
    out = contrastive_loss(x1.to(device), x2.to(device), same.to(device))
    torch.testing.assert_close(out.cpu(), contrastive_loss(x1, x2, same))
    out = triplet_margin_loss(x1.to(device), x2.to(device), x3.to(device), swap=True)
    torch.testing.assert_close(out.cpu(), triplet_margin_loss(x1, x2, x3, swap=True))
    labels = torch.tensor([0, 0, 1, 1, 2]).to(device)
    for index in mine_triplets(x1.to(device), labels, strategy="hard"):
        assert index.device.type == device.type


@pytest.mark.parametrize("loss", BATCH_LOSSES)
def test_invalid_labels(loss):
    x = torch.zeros(4, 3)
    with pytest.raises(TypeError, match="labels must be an integer tensor"):
        loss(x, torch.zeros(4))
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\) .*got \(4, 1\)"):
        loss(x, torch.zeros(4, 1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must be on the same device as embeddings"):
        loss(x, torch.zeros(4, dtype=torch.long, device="meta"))
    with pytest.raises(ValueError, match=r"embeddings must have shape \(B, D\)"):
        loss(torch.zeros(2, 2, 2), torch.zeros(2, dtype=torch.long))


def test_invalid_numbers():
    x, labels = torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"gamma must be > 0\.0, got 0"):
        circle_loss(x, labels, gamma=0.0)
    with pytest.raises(ValueError, match=r"margin must be >= 0\.0, got -0\.5"):
        batch_all_triplet_loss(x, labels, margin=-0.5)
    with pytest.raises(TypeError, match="soft must be a bool, got int"):
        batch_hard_triplet_loss(x, labels, soft=1)


# ------------------------------------------------------------------------ reduction=


def _batch(generator, n=7):
    x = torch.randn(n, 3, generator=generator, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 3][:n])  # classes 2 and 3: no positive
    return x, labels


def _brute_force_triplets(x, labels, margin):
    """``[a, p, n]`` losses of the valid triplets, from the definition, one at a time."""
    n = len(labels)
    out = torch.zeros(n, n, n, dtype=x.dtype)
    for a, p, q in itertools.product(range(n), repeat=3):
        if a != p and labels[a] == labels[p] and labels[q] != labels[a]:
            out[a, p, q] = max(
                margin + float(torch.dist(x[a], x[p])) - float(torch.dist(x[a], x[q])), 0
            )
    return out


def _brute_force_batch_hard(x, labels, margin):
    """Per-anchor batch-hard losses (0 without a positive and a negative)."""
    out = []
    for a in range(len(labels)):
        pos = [
            float(torch.dist(x[a], x[p]))
            for p in range(len(labels))
            if p != a and labels[p] == labels[a]
        ]
        neg = [float(torch.dist(x[a], x[q])) for q in range(len(labels)) if labels[q] != labels[a]]
        out.append(max(margin + max(pos) - min(neg), 0.0) if pos and neg else 0.0)
    return torch.tensor(out, dtype=x.dtype)


def _brute_force_circle(x, labels, margin, gamma):
    """Per-anchor circle losses, equation (6) of Sun et al. as a double sum."""
    unit = x / x.norm(dim=1, keepdim=True)
    out = []
    for a in range(len(labels)):
        s_p = [
            float(unit[a] @ unit[p])
            for p in range(len(labels))
            if p != a and labels[p] == labels[a]
        ]
        s_n = [float(unit[a] @ unit[q]) for q in range(len(labels)) if labels[q] != labels[a]]
        if not (s_p and s_n):
            out.append(0.0)
            continue
        total = sum(
            math.exp(
                gamma * max(sn + margin, 0) * (sn - margin)
                - gamma * max(1 + margin - sp, 0) * (sp - 1 + margin)
            )
            for sp in s_p
            for sn in s_n
        )
        out.append(math.log1p(total))
    return torch.tensor(out, dtype=x.dtype)


def test_batch_all_triplet_loss_reduction_none_and_sum_same_as_brute_force(generator):
    x, labels = _batch(generator)
    expected = _brute_force_triplets(x, labels, 1.0)
    torch.testing.assert_close(batch_all_triplet_loss(x, labels, reduction="none"), expected)
    torch.testing.assert_close(batch_all_triplet_loss(x, labels, reduction="sum"), expected.sum())
    # "mean" (the default) stays the mean over the triplets with a positive loss.
    mean = expected[expected > 0].mean()
    torch.testing.assert_close(batch_all_triplet_loss(x, labels), mean)
    torch.testing.assert_close(batch_all_triplet_loss(x, labels, reduction="mean"), mean)


def test_batch_hard_triplet_loss_reduction_none_and_sum_same_as_brute_force(generator):
    x, labels = _batch(generator)
    expected = _brute_force_batch_hard(x, labels, 1.0)
    torch.testing.assert_close(batch_hard_triplet_loss(x, labels, reduction="none"), expected)
    torch.testing.assert_close(batch_hard_triplet_loss(x, labels, reduction="sum"), expected.sum())
    kept = expected[:5]  # the anchors of classes 2 and 3 have no positive: not in the mean
    torch.testing.assert_close(batch_hard_triplet_loss(x, labels), kept.mean())


def test_circle_loss_reduction_none_and_sum_same_as_brute_force(generator):
    x, labels = _batch(generator)
    expected = _brute_force_circle(x, labels, 0.25, 8.0)
    got = circle_loss(x, labels, gamma=8.0, reduction="none")
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(circle_loss(x, labels, gamma=8.0, reduction="sum"), expected.sum())
    torch.testing.assert_close(circle_loss(x, labels, gamma=8.0), expected[:5].mean())


@pytest.mark.parametrize("loss", BATCH_LOSSES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_batch_losses_without_any_triplet_are_zero_with_a_zero_gradient(loss, reduction):
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    out = loss(x, torch.tensor([0, 1, 2]), reduction=reduction)  # no positive anywhere
    (grad,) = torch.autograd.grad(out, x)
    assert out.item() == 0.0 and not grad.any()


@pytest.mark.parametrize("loss", BATCH_LOSSES)
def test_batch_losses_reject_an_unknown_reduction(loss):
    x, labels = torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"reduction must be one of 'none', 'mean' or 'sum'"):
        loss(x, labels, reduction="batchmean")

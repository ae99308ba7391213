"""Catalogue cases for the metric-learning losses (book part VI).

Inputs are small batches of embeddings ``(B, D)`` with integer labels (or pairs
and triplets of embeddings).  The edge cases are where the definitions bite:
identical embeddings (zero distances: the square root's infinite derivative, and
ties for the hardest positive/negative), a single class and all-distinct labels
(no valid triplet: the loss is 0 with a zero gradient, not 0/0), a class with a
single member (an anchor without positive, which must not count itself), and
circle loss at the paper's scale gamma = 256.

``mine_triplets`` returns indices and is tested directly in ``tests/test_metric.py``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._catalogue import Case, LossSpec, Mistake, register

# ----------------------------------------------------------------------------- inputs


def _randn(g: torch.Generator, dtype: torch.dtype, *shape: int, scale: float = 1.0):
    return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype)


def _embeddings(batch: int, dim: int, labels=None, scale: float = 1.0, **kwargs):
    """Random embeddings; ``labels`` a list, or ``None`` for no labels (distances)."""

    def make(g: torch.Generator, dtype: torch.dtype):
        x = _randn(g, dtype, batch, dim, scale=scale)
        if labels is None:
            return (x,), dict(kwargs)
        return (x, torch.tensor(labels)), dict(kwargs)

    return make


def _identical(batch: int, dim: int, labels=None, **kwargs):
    """Every embedding the same (a collapsed model): all distances 0."""

    def make(g: torch.Generator, dtype: torch.dtype):
        x = _randn(g, dtype, 1, dim).expand(batch, dim).clone()
        if labels is None:
            return (x,), dict(kwargs)
        return (x, torch.tensor(labels)), dict(kwargs)

    return make


def _duplicated_rows(g: torch.Generator, dtype: torch.dtype):
    x = _randn(g, dtype, 5, 3)
    x[3] = x[0]
    x[4] = x[1]
    return (x,), {}


def _clusters(labels, spread: float, **kwargs):
    """Tight clusters (noise ``spread``) around well-separated class centres."""

    def make(g: torch.Generator, dtype: torch.dtype):
        label_tensor = torch.tensor(labels)
        centres = 10.0 * torch.eye(4, dtype=torch.float64)
        noise = spread * torch.randn(len(labels), 4, generator=g, dtype=torch.float64)
        return ((centres[label_tensor] + noise).to(dtype), label_tensor), dict(kwargs)

    return make


def _pairs(same, **kwargs):
    def make(g: torch.Generator, dtype: torch.dtype):
        n = len(same)
        x1 = _randn(g, dtype, n, 3, scale=0.6)
        x2 = _randn(g, dtype, n, 3, scale=0.6)
        flags = torch.tensor(same)
        if flags.is_floating_point():
            flags = flags.to(dtype)
        return (x1, x2, flags), dict(kwargs)

    return make


def _identical_pairs(g: torch.Generator, dtype: torch.dtype):
    x1 = _randn(g, dtype, 4, 3)
    x2 = x1.clone()
    x2[2:] += _randn(g, dtype, 2, 3)
    return (x1, x2, torch.tensor([True, False, True, False])), {}


def _triplets(*shape: int, **kwargs):
    def make(g: torch.Generator, dtype: torch.dtype):
        return tuple(_randn(g, dtype, *shape) for _ in range(3)), dict(kwargs)

    return make


def _triplets_same_anchor_positive(g: torch.Generator, dtype: torch.dtype):
    anchor = _randn(g, dtype, 5, 3)
    negative = _randn(g, dtype, 5, 3)
    return (anchor, anchor.clone(), negative), {"reduction": "none"}


def _triplets_satisfied(g: torch.Generator, dtype: torch.dtype):
    anchor = _randn(g, dtype, 4, 3)
    positive = anchor + 0.1 * _randn(g, dtype, 4, 3)
    negative = anchor + 5.0
    return (anchor, positive, negative), {}


# ----------------------------------------------------------------------------- mistakes
# Hand-written wrong implementations, as a student might write them.


def _mean(values: torch.Tensor) -> torch.Tensor:
    return values.mean() if values.numel() else 0.0 * values.sum()


def _student_reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return values
    return values.sum() if reduction == "sum" else _mean(values)


def _guarded_sqrt(x: torch.Tensor) -> torch.Tensor:
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, 1.0)), 0.0)


def _squared_differences(x: torch.Tensor) -> torch.Tensor:
    diff = x.unsqueeze(1) - x.unsqueeze(0)
    return (diff * diff).sum(-1)


def _distances(x: torch.Tensor) -> torch.Tensor:
    return _guarded_sqrt(_squared_differences(x))


def _masks(labels: torch.Tensor, own_positive: bool = False):
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    if own_positive:
        return same, ~same
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def _safe_mean(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    count = keep.sum().to(values.dtype)
    total = (values * keep).sum()
    return torch.where(count > 0, total / count.clamp_min(1), 0.0)


# pairwise_distances


def _pd_squared(embeddings, squared=False, eps=1e-12):
    return _squared_differences(embeddings)


def _pd_unguarded_sqrt(embeddings, squared=False, eps=1e-12):
    d2 = _squared_differences(embeddings)
    return d2 if squared else torch.sqrt(d2)


def _pd_eps_inside(embeddings, squared=False, eps=1e-12):
    d2 = _squared_differences(embeddings)
    return d2 if squared else torch.sqrt(d2 + eps)


def _pd_missing_two(embeddings, squared=False, eps=1e-12):
    gram = embeddings @ embeddings.T
    sq = gram.diagonal()
    d2 = (sq.unsqueeze(1) + sq.unsqueeze(0) - gram).clamp_min(0)
    return d2 if squared else _guarded_sqrt(d2)


# contrastive_loss


def _pair_distance(x1, x2):
    return _guarded_sqrt(((x1 - x2) ** 2).sum(-1))


def _contrastive(x1, x2, same, margin, reduction, half=1.0, swap=False, square_hinge=True):
    d = _pair_distance(x1, x2)
    y = same.to(d.dtype)
    if swap:
        y = 1 - y
    hinge = F.relu(margin - d)
    loss = y * d**2 + (1 - y) * (hinge**2 if square_hinge else hinge)
    return _student_reduce(half * loss, reduction)


def _cl_half(x1, x2, same, margin=1.0, reduction="mean"):
    return _contrastive(x1, x2, same, margin, reduction, half=0.5)


def _cl_swapped(x1, x2, same, margin=1.0, reduction="mean"):
    return _contrastive(x1, x2, same, margin, reduction, swap=True)


def _cl_hinge_not_squared(x1, x2, same, margin=1.0, reduction="mean"):
    return _contrastive(x1, x2, same, margin, reduction, square_hinge=False)


def _cl_unguarded_sqrt(x1, x2, same, margin=1.0, reduction="mean"):
    d = torch.sqrt(((x1 - x2) ** 2).sum(-1))
    y = same.to(d.dtype)
    return _student_reduce(y * d**2 + (1 - y) * F.relu(margin - d) ** 2, reduction)


def _cl_squared_distance_in_hinge(x1, x2, same, margin=1.0, reduction="mean"):
    d2 = ((x1 - x2) ** 2).sum(-1)
    y = same.to(d2.dtype)
    return _student_reduce(y * d2 + (1 - y) * F.relu(margin - d2) ** 2, reduction)


# triplet_margin_loss


def _tml(anchor, positive, negative, margin, p, eps, swap, reduction, **change):
    def dist(u, v):
        if change.get("no_eps"):
            return torch.linalg.vector_norm(u - v, ord=p, dim=-1)
        return torch.linalg.vector_norm(u - v + eps, ord=p, dim=-1)

    d_pos, d_neg = dist(anchor, positive), dist(anchor, negative)
    if change.get("squared"):
        d_pos, d_neg = d_pos**2, d_neg**2
    if swap and not change.get("ignore_swap"):
        other = dist(positive, negative)
        d_neg = (
            torch.maximum(d_neg, other) if change.get("swap_max") else torch.minimum(d_neg, other)
        )
    loss = (0.0 if change.get("no_margin") else margin) + d_pos - d_neg
    if not change.get("no_clamp"):
        loss = loss.clamp_min(0)
    return _student_reduce(loss, reduction)


def _tml_squared(
    anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, reduction="mean"
):
    return _tml(anchor, positive, negative, margin, p, eps, swap, reduction, squared=True)


def _tml_no_clamp(
    anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, reduction="mean"
):
    return _tml(anchor, positive, negative, margin, p, eps, swap, reduction, no_clamp=True)


def _tml_no_margin(
    anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, reduction="mean"
):
    return _tml(anchor, positive, negative, margin, p, eps, swap, reduction, no_margin=True)


def _tml_swap_max(
    anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, reduction="mean"
):
    return _tml(anchor, positive, negative, margin, p, eps, swap, reduction, swap_max=True)


def _tml_no_eps(
    anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, reduction="mean"
):
    return _tml(anchor, positive, negative, margin, p, eps, swap, reduction, no_eps=True)


# batch_all_triplet_loss


def _ba(embeddings, labels, margin, squared=False, own_positive=False, over="positive"):
    d2 = _squared_differences(embeddings)
    d = d2 if squared else _guarded_sqrt(d2)
    positive, negative = _masks(labels, own_positive)
    valid = positive.unsqueeze(2) & negative.unsqueeze(1)
    losses = F.relu(margin + d.unsqueeze(2) - d.unsqueeze(1))
    if over == "valid":
        return _safe_mean(losses, valid)
    if over == "unguarded":
        keep = (valid & (losses > 0)).to(losses.dtype)
        return (losses * keep).sum() / keep.sum()
    return _safe_mean(losses, valid & (losses > 0))


def _ba_all_valid(embeddings, labels, margin=1.0):
    return _ba(embeddings, labels, margin, over="valid")


def _ba_own_positive(embeddings, labels, margin=1.0):
    return _ba(embeddings, labels, margin, own_positive=True)


def _ba_squared(embeddings, labels, margin=1.0):
    return _ba(embeddings, labels, margin, squared=True)


def _ba_zero_over_zero(embeddings, labels, margin=1.0):
    return _ba(embeddings, labels, margin, over="unguarded")


# batch_hard_triplet_loss


def _bh(embeddings, labels, margin, soft, **change):
    d2 = _squared_differences(embeddings)
    d = d2 if change.get("squared") else _guarded_sqrt(d2)
    positive, negative = _masks(labels, change.get("own_positive", False))
    big = torch.finfo(d.dtype).max
    if change.get("nearest_positive"):
        hardest_pos = torch.where(positive, d, big).amin(1)
    else:
        hardest_pos = torch.where(positive, d, 0.0).amax(1)
    if change.get("farthest_negative"):
        hardest_neg = torch.where(negative, d, 0.0).amax(1)
    else:
        hardest_neg = torch.where(negative, d, big).amin(1)
    has = positive.any(1) & negative.any(1)
    gap = torch.where(has, hardest_pos - hardest_neg, 0.0)
    if soft:
        losses = F.softplus(gap + margin) if change.get("soft_margin") else F.softplus(gap)
    else:
        losses = F.relu(margin + gap)
    return _safe_mean(losses, has)


def _bh_farthest_negative(embeddings, labels, margin=1.0, soft=False):
    return _bh(embeddings, labels, margin, soft, farthest_negative=True)


def _bh_own_positive(embeddings, labels, margin=1.0, soft=False):
    return _bh(embeddings, labels, margin, soft, own_positive=True)


def _bh_squared(embeddings, labels, margin=1.0, soft=False):
    return _bh(embeddings, labels, margin, soft, squared=True)


def _bh_nearest_positive(embeddings, labels, margin=1.0, soft=False):
    return _bh(embeddings, labels, margin, soft, nearest_positive=True)


def _bh_soft_with_margin(embeddings, labels, margin=1.0, soft=False):
    return _bh(embeddings, labels, margin, soft, soft_margin=True)


# circle_loss


def _circle(embeddings, labels, margin, gamma, **change):
    x = embeddings if change.get("no_normalize") else F.normalize(embeddings, dim=1)
    s = x @ x.T
    positive, negative = _masks(labels, change.get("own_positive", False))
    weights = s if change.get("no_detach") else s.detach()
    alpha_p = F.relu(1 + margin - weights)
    alpha_n = F.relu(weights + margin)
    delta_p, delta_n = (margin, 1 - margin) if change.get("swap_deltas") else (1 - margin, margin)
    logit_p = -gamma * alpha_p * (s - delta_p)
    logit_n = gamma * alpha_n * (s - delta_n)
    if change.get("naive_exp"):
        lse_p = torch.log((torch.exp(logit_p) * positive).sum(1))
        lse_n = torch.log((torch.exp(logit_n) * negative).sum(1))
    else:
        low = torch.finfo(s.dtype).min
        lse_p = torch.logsumexp(torch.where(positive, logit_p, low), 1)
        lse_n = torch.logsumexp(torch.where(negative, logit_n, low), 1)
    has = positive.any(1) & negative.any(1)
    losses = F.softplus(torch.where(has, lse_p + lse_n, 0.0))
    return _safe_mean(losses, has)


def _circle_not_detached(embeddings, labels, margin=0.25, gamma=256.0):
    return _circle(embeddings, labels, margin, gamma, no_detach=True)


def _circle_own_positive(embeddings, labels, margin=0.25, gamma=256.0):
    return _circle(embeddings, labels, margin, gamma, own_positive=True)


def _circle_swapped_deltas(embeddings, labels, margin=0.25, gamma=256.0):
    return _circle(embeddings, labels, margin, gamma, swap_deltas=True)


def _circle_naive_exp(embeddings, labels, margin=0.25, gamma=256.0):
    return _circle(embeddings, labels, margin, gamma, naive_exp=True)


def _circle_not_normalized(embeddings, labels, margin=0.25, gamma=256.0):
    return _circle(embeddings, labels, margin, gamma, no_normalize=True)


# ----------------------------------------------------------------------------- specs

THREE_CLASSES = [0, 1, 2, 0, 1, 2, 0, 1]
WITH_SINGLETON = [0, 0, 1, 1, 1, 2, 3, 3]  # class 2 has a single member
HINT_SQUARED = (
    "distances are asked for, not squared distances: take the square root of the "
    "squared norm (guarded at 0)."
)
HINT_OWN_POSITIVE = (
    "an anchor is not its own positive: exclude the diagonal (a = p) from the positive "
    "mask, so that an anchor whose class has no other member has no positive."
)

register(
    LossSpec(
        name="pairwise_distances",
        cases=(
            Case("random (6, 3)", _embeddings(6, 3)),
            Case("random (5, 4), squared=True", _embeddings(5, 4, squared=True)),
            Case(
                "identical embeddings",
                _identical(4, 3),
                note="all distances are 0, with a zero gradient (no NaN from sqrt at 0)",
            ),
            Case(
                "duplicated rows",
                _duplicated_rows,
                note="zero distances off the diagonal too",
            ),
            Case("one embedding (1, 5)", _embeddings(1, 5)),
            Case(
                "large values (scale 100)",
                _embeddings(6, 2, scale=100.0),
                # In float32 the Gram form, as the chapter teaches it, carries an error
                # of about eps * |x|^2 (1e-4 relative on a close pair at this scale)
                # that the reference, which recomputes near pairs, does not.
                dtypes=(torch.float64,),
            ),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(_pd_squared, HINT_SQUARED),
            Mistake(
                _pd_unguarded_sqrt,
                "the derivative of sqrt is infinite at 0, so the diagonal (and any two "
                "identical embeddings) gets a NaN gradient: take the root of a safe value "
                "where the squared distance is 0 (double torch.where) and return 0 there.",
            ),
            Mistake(
                _pd_eps_inside,
                "sqrt(d² + eps) is not 0 on the diagonal but sqrt(eps): guard the square "
                "root with torch.where instead of shifting it.",
            ),
            Mistake(
                _pd_missing_two,
                "the expansion is ||x_i||² + ||x_j||² - 2 x_i·x_j: the cross term has the "
                "factor 2.",
            ),
        ),
    )
)

register(
    LossSpec(
        name="contrastive_loss",
        cases=(
            Case(
                "random pairs, boolean labels",
                _pairs([True, False, True, False, False, True, False, False]),
            ),
            Case("integer labels 0/1, reduction='none'", _pairs([1, 0, 0, 1, 0], reduction="none")),
            Case("float labels, margin=2", _pairs([1.0, 0.0, 0.0, 1.0], margin=2.0)),
            Case(
                "all dissimilar, reduction='sum'",
                _pairs([False] * 6, margin=1.5, reduction="sum"),
                note="dissimilar pairs cost max(0, m - d)², 0 beyond the margin",
            ),
            Case(
                "identical embeddings (d = 0)",
                _identical_pairs,
                grad="finite",
                note="d = 0 gives m² for a dissimilar pair, with a finite gradient",
            ),
        ),
        grad_inputs=(0, 1),
        mistakes=(
            Mistake(
                _cl_half,
                "this course's contrastive loss has no factor 1/2 (Hadsell et al. write "
                "½ d² and ½ max(0, m - d)²; the factor only halves the gradient): "
                "y d² + (1 - y) max(0, m - d)².",
            ),
            Mistake(
                _cl_swapped,
                "same = 1 marks pairs of the same class, which are pulled together (d²); "
                "dissimilar pairs (same = 0) get max(0, m - d)².",
            ),
            Mistake(
                _cl_hinge_not_squared,
                "the dissimilar term is squared: max(0, m - d)².",
            ),
            Mistake(
                _cl_unguarded_sqrt,
                "at d = 0 the derivative of sqrt is infinite and the gradient is NaN: "
                "guard the square root (double torch.where) or use "
                "torch.linalg.vector_norm.",
            ),
            Mistake(
                _cl_squared_distance_in_hinge,
                "the margin is compared with the distance d, not with the squared "
                "distance: max(0, m - d)².",
            ),
        ),
    )
)

register(
    LossSpec(
        name="triplet_margin_loss",
        cases=(
            Case("random (8, 4)", _triplets(8, 4)),
            Case(
                "swap=True",
                _triplets(8, 4, swap=True, reduction="none"),
                note="the negative distance is min(d(a, n), d(p, n))",
            ),
            Case("p=1, margin=0.5", _triplets(6, 3, p=1, margin=0.5)),
            Case("reduction='sum', margin=2", _triplets(5, 3, margin=2.0, reduction="sum")),
            Case(
                "anchor equal to positive",
                _triplets_same_anchor_positive,
                note="d(a, p) = ||eps|| (eps is added to the difference), finite gradient",
            ),
            Case(
                "every triplet satisfied (loss 0)",
                _triplets_satisfied,
                note="max(0, .) gives 0 and a zero gradient",
            ),
            Case("one triplet (4,)", _triplets(4)),
        ),
        grad_inputs=(0, 1, 2),
        mistakes=(
            Mistake(_tml_squared, HINT_SQUARED),
            Mistake(
                _tml_no_clamp,
                "a satisfied triplet costs 0: clamp m + d(a, p) - d(a, n) at 0 "
                "(max(0, .)), or negative losses reward easy triplets.",
            ),
            Mistake(
                _tml_no_margin,
                "the margin is missing: max(0, m + d(a, p) - d(a, n)).",
            ),
            Mistake(
                _tml_swap_max,
                "the swap takes the *harder* negative distance: min(d(a, n), d(p, n)).",
            ),
            Mistake(
                _tml_no_eps,
                "F.triplet_margin_loss adds eps to the difference before the norm: "
                "||u - v + eps||_p.",
            ),
        ),
    )
)

register(
    LossSpec(
        name="batch_all_triplet_loss",
        cases=(
            Case("random (8, 3), three classes", _embeddings(8, 3, THREE_CLASSES)),
            Case(
                "a class with a single member, margin=0.5",
                _embeddings(8, 3, WITH_SINGLETON, margin=0.5),
            ),
            Case(
                "identical embeddings",
                _identical(6, 3, [0, 0, 1, 1, 2, 2]),
                note="every distance is 0: each triplet costs the margin, with a zero gradient",
            ),
            Case(
                "single class (no valid triplet)",
                _embeddings(5, 3, [4] * 5),
                note="no negative: the loss is 0 with a zero gradient, not 0/0",
            ),
            Case(
                "all labels distinct (no valid triplet)",
                _embeddings(5, 3, [0, 1, 2, 3, 4]),
                note="no positive: the loss is 0 with a zero gradient, not 0/0",
            ),
            Case(
                "no triplet violates the margin",
                _clusters([0, 0, 1, 1, 2, 2], spread=0.1, margin=1.0),
                note="all losses are 0: the mean over no positive losses is 0",
            ),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _ba_all_valid,
                "batch all averages over the triplets with a positive loss (Hermans et "
                "al.'s BA≠0), not over all valid triplets.",
            ),
            Mistake(_ba_own_positive, HINT_OWN_POSITIVE),
            Mistake(_ba_squared, HINT_SQUARED),
            Mistake(
                _ba_zero_over_zero,
                "when no triplet has a positive loss the mean is 0/0 = NaN: return 0 "
                "(torch.where on the count), which also gives a zero gradient.",
            ),
        ),
    )
)

register(
    LossSpec(
        name="batch_hard_triplet_loss",
        cases=(
            Case("random (8, 3), three classes", _embeddings(8, 3, THREE_CLASSES)),
            Case(
                "soft margin",
                _embeddings(8, 3, THREE_CLASSES, soft=True),
                note="soft=True is softplus(d_ap - d_an), without the margin",
            ),
            Case(
                "a class with a single member, margin=0.3",
                _embeddings(8, 3, WITH_SINGLETON, margin=0.3),
                note="an anchor without another member of its class has no positive",
            ),
            Case(
                "identical embeddings",
                _identical(6, 3, [0, 0, 1, 1, 2, 2]),
                note="all distances are 0: the loss is the margin, with a zero gradient",
            ),
            Case(
                "single class (no valid triplet)",
                _embeddings(5, 3, [1] * 5),
                note="the loss is 0 with a zero gradient, not 0/0",
            ),
            Case(
                "all labels distinct (no valid triplet)",
                _embeddings(5, 3, [0, 1, 2, 3, 4], soft=True),
            ),
            Case(
                "tight clusters, margin=0.1",
                _clusters([0, 1, 0, 1, 2, 2], spread=0.3, margin=0.1),
            ),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _bh_farthest_negative,
                "the hardest negative is the *nearest* one (the minimum distance over "
                "negatives), not the farthest.",
            ),
            Mistake(_bh_own_positive, HINT_OWN_POSITIVE),
            Mistake(_bh_squared, HINT_SQUARED),
            Mistake(
                _bh_nearest_positive,
                "the hardest positive is the *farthest* one (the maximum distance over "
                "positives), not the nearest.",
            ),
            Mistake(
                _bh_soft_with_margin,
                "Hermans et al.'s soft margin replaces the margin: softplus(d_ap - d_an), "
                "without m.",
            ),
        ),
    )
)

register(
    LossSpec(
        name="circle_loss",
        cases=(
            Case("random (8, 4), three classes", _embeddings(8, 4, THREE_CLASSES)),
            Case(
                "gamma=64, margin=0.4",
                _embeddings(8, 4, THREE_CLASSES, margin=0.4, gamma=64.0),
            ),
            Case(
                "identical embeddings, gamma=256",
                _identical(6, 4, [0, 0, 1, 1, 2, 2]),
                note="all similarities are 1: large logits, finite value and gradient",
            ),
            Case(
                "a class with a single member",
                _embeddings(8, 4, WITH_SINGLETON, gamma=32.0),
                note="an anchor without another member of its class is left out",
            ),
            Case(
                "single class (no negative)",
                _embeddings(5, 3, [2] * 5),
                note="the loss is 0 with a zero gradient, not 0/0 or NaN",
            ),
            Case(
                "all labels distinct (no positive)",
                _embeddings(5, 3, [0, 1, 2, 3, 4]),
            ),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _circle_not_detached,
                "the weights alpha_p = relu(1 + m - s_p) and alpha_n = relu(s_n + m) are "
                "constants in the gradient (detach them): the values agree, the "
                "gradients do not.",
            ),
            Mistake(
                _circle_own_positive,
                HINT_OWN_POSITIVE + " (Its similarity to itself is 1.)",
            ),
            Mistake(
                _circle_swapped_deltas,
                "the margins are Delta_p = 1 - m for positives and Delta_n = m for negatives.",
            ),
            Mistake(
                _circle_naive_exp,
                "exp(gamma * ...) overflows for gamma = 256 (and log of a masked sum of "
                "0 is -inf): use torch.logsumexp with masked entries set to a very "
                "negative finite value.",
            ),
            Mistake(
                _circle_not_normalized,
                "circle loss works on cosine similarities: normalise the embeddings "
                "(F.normalize) before the dot products.",
            ),
        ),
    )
)

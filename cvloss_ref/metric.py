r"""Metric-learning losses: distances, pair and triplet losses, online mining, circle loss.

An embedding network maps each image to a vector; these losses pull embeddings of
the same identity together and push different identities apart.  Batches are
``embeddings`` of shape ``(B, D)`` with integer ``labels`` of shape ``(B,)``;
a *positive* of an anchor is another sample with the same label (never the anchor
itself), a *negative* one with a different label.

Distances are Euclidean and computed once per batch by :func:`pairwise_distances`,
from the Gram matrix with the near pairs computed again from their differences (so
that small distances keep their digits), whose gradient is 0 (not NaN) at zero
distance: the diagonal, duplicates and a collapsed model where every embedding is
the same.  The batch losses (:func:`batch_all_triplet_loss`, :func:`circle_loss`)
work on masks over the ``(B, B)`` matrix; :func:`batch_hard_triplet_loss` mines its
pairs on that matrix without autograd and then differentiates only the :math:`2B`
distances it selected.  The losses use no boolean indexing: ``torch.compile``-friendly,
and they run on ``meta`` tensors.  Host synchronisation: none in
:func:`batch_hard_triplet_loss`, :func:`circle_loss` and the pair losses;
:func:`pairwise_distances`, and :func:`batch_all_triplet_loss` through it, read back
which pairs are near (``nonzero``: one synchronisation on a GPU, a graph break under
``torch.compile``).  A batch without any valid triplet (one class, or every label
distinct) gives a loss of 0 with a zero gradient, not NaN.
:func:`mine_triplets` returns indices, whose number depends on the data, so it
does synchronise.

float16/bfloat16 inputs are computed in float32 (the Gram matrix of the distance
computation loses too many digits, and overflows, in half precision) and returned
in the input dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import _fused
from ._numerics import masked_mean, safe_sqrt
from ._numerics import upcast as _upcast
from ._reduction import _check_reduction, _reduce
from ._validation import (
    _check_floating,
    _check_integer,
    _check_number,
    _check_same_device,
    _check_same_shape,
    _check_tensor,
    _check_values_in,
)

__all__ = [
    "batch_all_triplet_loss",
    "batch_hard_triplet_loss",
    "circle_loss",
    "contrastive_loss",
    "mine_triplets",
    "pairwise_distances",
    "triplet_margin_loss",
]

MINING_STRATEGIES = ("all", "hard", "semihard", "easy")


# --------------------------------------------------------------------------- helpers


def _check_embeddings(embeddings: object, name: str = "embeddings") -> torch.Tensor:
    _check_floating(embeddings, name)
    if embeddings.dim() != 2:
        raise ValueError(
            f"{name} must have shape (B, D) (one row per sample), got {tuple(embeddings.shape)}"
        )
    return embeddings


def _check_labels(labels: object, embeddings: torch.Tensor) -> torch.Tensor:
    _check_integer(labels, "labels")
    if labels.shape != embeddings.shape[:1]:
        raise ValueError(
            f"labels must have shape ({embeddings.shape[0]},) (one label per row of "
            f"embeddings {tuple(embeddings.shape)}), got {tuple(labels.shape)}"
        )
    _check_same_device([embeddings, labels], ["embeddings", "labels"])
    return labels


def _pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(positive, negative)`` boolean ``(B, B)`` masks: same label but not the
    anchor itself, and different label."""
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


# --------------------------------------------------------------------------- distances


def pairwise_distances(
    embeddings: torch.Tensor, squared: bool = False, eps: float = 1e-12
) -> torch.Tensor:
    r"""Euclidean distances between all rows of a batch, with a zero gradient at zero distance.

    .. math::

        D_{ij}^2 = \lVert x_i \rVert^2 + \lVert x_j \rVert^2 - 2\, x_i^\top x_j,
        \qquad D_{ij} = \sqrt{\max(D_{ij}^2, 0)}

    computed from the Gram matrix :math:`X X^\top` (one matrix product, ``(B, B)``
    memory, instead of the ``(B, B, D)`` tensor of all differences).  Rounding can
    make :math:`D_{ij}^2` slightly negative, hence the clamp at 0; the diagonal is
    set to exactly 0.  The rows are first centred (distances do not change under a
    translation), which keeps the cancellation error small for embeddings far from
    the origin.

    **Accuracy.**  The Gram form cancels: :math:`D_{ij}^2` carries an absolute error
    of a few units of :math:`\epsilon_{\text{mach}} (\lVert x_i \rVert^2 +
    \lVert x_j \rVert^2)` (norms after centring), which is all of a small distance
    (two embeddings :math:`10^{-4}` apart at norm 1 come out as 0 or :math:`3
    \cdot 10^{-4}` in float32).  So the pairs with
    :math:`D_{ij}^2 < (\lVert x_i \rVert^2 + \lVert x_j \rVert^2) / T`, :math:`T = 8`
    (:data:`GRAM_RECOMPUTE_RATIO`), are computed again from their differences,
    :math:`\sum_d (x_{id} - x_{jd})^2`, accurate to a few ulps however close they
    are; every entry kept from the Gram form has a relative error of at most about
    :math:`T` times its few :math:`\epsilon_{\text{mach}}` (half that in
    :math:`D`).  :math:`T = 8` recomputes the pairs at a cosine similarity above
    :math:`7/8` (after centring): in a batch of clusters, the positives, a small part
    of the :math:`B^2` pairs.  The recomputation takes the near pairs' indices
    (``nonzero``, one host synchronisation on a GPU) and runs in chunks of
    :data:`PAIR_CHUNK_ELEMENTS` differences, with a hand-written backward that
    recomputes them chunk by chunk too (``cvloss_ref/_fused.py``), so that neither
    pass holds more than one chunk however many pairs are near.

    The derivative of :math:`\sqrt{z}` is infinite at :math:`z = 0`, so a plain
    ``torch.sqrt`` gives NaN gradients on the diagonal and for identical
    embeddings (PyTorch issues 37154 and 57690), which poison every loss built on
    the matrix.  Here the square root is guarded with a double ``where``
    (``_numerics.safe_sqrt``): where :math:`D_{ij}^2 = 0` the distance is 0 and its
    gradient is 0 (a subgradient of the norm); every other distance, however small,
    keeps its exact value and its exact gradient
    :math:`(x_i - x_j) / D_{ij}`, of norm 1.

    Args:
        embeddings: ``(B, D)``, floating point.
        squared: return :math:`D^2` (smooth everywhere, no square root needed).
        eps: accepted for compatibility, ``>= 0``; it no longer changes the result.
            It used to count squared distances at or below it as 0, to keep the
            gradient of the Gram form's noisy small distances finite; small
            distances are now exact, and only an exactly zero one needs (and gets)
            the guarded square root.

    Returns:
        ``(B, B)`` symmetric, non-negative, with a zero diagonal, in the dtype of
        ``embeddings``.

    Peers: ``torch.cdist`` (the same values; ``compute_mode=
    "donot_use_mm_for_euclid_dist"`` for the accuracy of every difference, at
    :math:`O(B^2 D)` work); Schroff et al., "FaceNet", CVPR 2015 and Hermans et al.
    2017 compute their triplet losses from this matrix.

    Example:
        >>> x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [3.0, 4.0]], requires_grad=True)
        >>> d = pairwise_distances(x)
        >>> d.detach()
        tensor([[0., 5., 5.],
                [5., 0., 0.],
                [5., 0., 0.]])
        >>> d.sum().backward()  # finite at the zero distances
        >>> x.grad  # each pair counted twice (d is symmetric); 0 from the zero distance
        tensor([[-2.4000, -3.2000],
                [ 1.2000,  1.6000],
                [ 1.2000,  1.6000]])
        >>> near = torch.tensor([[1.0, 1.0], [1.0, 1.0 + 2**-20], [9.0, 9.0]])
        >>> pairwise_distances(near)[0, 1].item() == 2**-20  # the Gram form alone: 0
        True
    """
    _check_embeddings(embeddings)
    _check_number(eps, "eps", minimum=0.0)
    rows = _upcast(embeddings)
    # Centring: the distances are translation invariant, so their gradient through
    # the mean is exactly 0; detaching it only saves that computation.
    x = rows - rows.mean(dim=0, keepdim=True).detach()
    gram = x @ x.T
    sq_norms = gram.diagonal()
    norm_sums = sq_norms.unsqueeze(1) + sq_norms.unsqueeze(0)
    squared_dist = (norm_sums - 2 * gram).clamp_min(0)
    eye = torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
    squared_dist = torch.where(eye, torch.zeros_like(squared_dist), squared_dist)
    # The near pairs from the rows as given: the difference of two close numbers is
    # exact (Sterbenz), that of two centred ones carries the centring's rounding.
    squared_dist = _recompute_near_pairs(rows, squared_dist, norm_sums)
    if squared:
        return squared_dist.to(embeddings.dtype)
    return safe_sqrt(squared_dist).to(embeddings.dtype)


#: The Gram form's squared distances below ``1 / GRAM_RECOMPUTE_RATIO`` of the sum of
#: the two squared norms are computed again from the differences (see
#: :func:`pairwise_distances`).
GRAM_RECOMPUTE_RATIO = 8.0
#: Differences (pairs times dimensions) formed at once by the recomputation.
PAIR_CHUNK_ELEMENTS = 1 << 20


def _recompute_near_pairs(
    x: torch.Tensor, squared_dist: torch.Tensor, norm_sums: torch.Tensor
) -> torch.Tensor:
    """``squared_dist`` with its near pairs (above the diagonal and mirrored) replaced by
    the squared norms of the differences of the rows ``x``, differentiable.  Meta tensors have no
    values to select by: returned as they are."""
    if x.device.type == "meta" or x.shape[0] < 2:
        return squared_dist
    with torch.no_grad():  # the selection of pairs, not part of the function
        near = squared_dist * GRAM_RECOMPUTE_RATIO < norm_sums
        first, second = torch.triu(near, diagonal=1).nonzero(as_tuple=True)
    if first.numel() == 0:
        return squared_dist
    if _fused.transforms_active():
        # torch.func transforms (grad, jvp, jacrev) or forward-mode AD, which the chunked
        # autograd Function does not support: every pair at once, autograd's gradient.
        exact = _pair_squared_distances_composed(x, first, second)
    else:
        chunk = max(1, PAIR_CHUNK_ELEMENTS // max(x.shape[1], 1))
        exact = _fused.pair_squared_distances(x, first, second, chunk)
    return squared_dist.index_put((first, second), exact).index_put((second, first), exact)


def _pair_squared_distances_composed(
    x: torch.Tensor, first: torch.Tensor, second: torch.Tensor
) -> torch.Tensor:
    """``|x[first] - x[second]|^2`` for every pair at once, with autograd's gradient:
    the reference that ``_fused.pair_squared_distances`` (the same in chunks) is
    tested against."""
    diff = x[first] - x[second]
    return (diff * diff).sum(dim=1)


# --------------------------------------------------------------------------- pair, triplet losses


def contrastive_loss(
    x1: torch.Tensor,
    x2: torch.Tensor,
    same: torch.Tensor,
    margin: float = 1.0,
    reduction: str = "mean",
    *,
    validate: bool = False,
) -> torch.Tensor:
    r"""Contrastive (pairwise ranking) loss of Hadsell, Chopra and LeCun.

    With :math:`d = \lVert x_1 - x_2 \rVert_2` and :math:`y = 1` for a pair of the
    same class (``same``), :math:`y = 0` otherwise:

    .. math::

        \ell = y\, d^2 + (1 - y) \max(0, m - d)^2

    Similar pairs are pulled together; dissimilar pairs are pushed apart until they
    are at least the margin :math:`m` apart, and then ignored.  **No factor**
    :math:`\tfrac12`: Hadsell et al. (2006, equation 4) write
    :math:`\tfrac12 d^2` and :math:`\tfrac12 \max(0, m - d)^2`, which halves the
    loss and its gradient and changes nothing else; this course follows the
    unscaled form of the catalogue.  (pytorch-metric-learning's ``ContrastiveLoss``
    uses unsquared terms, :math:`[d - m_{pos}]_+` and :math:`[m_{neg} - d]_+`.)
    Note that Hadsell et al.'s :math:`Y = 0` means *similar*; ``same`` here is 1
    (or ``True``) for similar pairs.

    :math:`d` is the exact Euclidean norm (``F.pairwise_distance`` adds ``1e-6`` to
    the difference first), guarded at :math:`d = 0`: identical embeddings give the
    value :math:`m^2` for a dissimilar pair with a zero gradient, not NaN (the
    direction to push them apart is undefined there).

    Args:
        x1, x2: the two embeddings of each pair, ``(N, D)`` (or ``(D,)``), same
            shape and device.
        same: ``(N,)`` (or ``()``): ``True``/1 for pairs of the same class,
            ``False``/0 otherwise; bool, integer or floating.
        margin: :math:`m \ge 0`.
        reduction: ``"none"`` (shape ``(N,)``) | ``"mean"`` | ``"sum"``.
        validate: check that an integer or floating ``same`` holds only 0 and 1
            (synchronises the GPU).

    Returns:
        The loss in the promoted dtype of ``x1`` and ``x2``: shape ``(N,)`` for
        ``"none"``, else a scalar.

    Reference: Hadsell, Chopra and LeCun, "Dimensionality Reduction by Learning an
    Invariant Mapping", CVPR 2006, equation (4).

    Example:
        >>> x1 = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
        >>> x2 = torch.tensor([[0.3, 0.4], [0.3, 0.4], [3.0, 4.0]])
        >>> same = torch.tensor([True, False, False])
        >>> contrastive_loss(x1, x2, same, margin=1.0, reduction="none")
        tensor([0.2500, 0.2500, 0.0000])
    """
    _check_floating(x1, "x1")
    _check_floating(x2, "x2")
    _check_same_shape(x1, x2, "x1", "x2")
    if x1.dim() < 1:
        raise ValueError("x1 must have shape (N, D) or (D,), got shape ()")
    _check_tensor(same, "same")
    if same.shape != x1.shape[:-1]:
        raise ValueError(
            f"same must have shape {tuple(x1.shape[:-1])} (one flag per pair of x1 "
            f"{tuple(x1.shape)}), got {tuple(same.shape)}"
        )
    _check_same_device([x1, x2, same], ["x1", "x2", "same"])
    margin = _check_number(margin, "margin", minimum=0.0)
    _check_reduction(reduction)
    if same.dtype != torch.bool:
        _check_values_in(same, (0, 1), "same", validate)

    out_dtype = torch.promote_types(x1.dtype, x2.dtype)
    diff = _upcast(x1) - _upcast(x2)
    squared_dist = (diff * diff).sum(dim=-1)
    dist = safe_sqrt(squared_dist)
    y = same.to(squared_dist.dtype)
    loss = y * squared_dist + (1 - y) * F.relu(margin - dist) ** 2
    return _reduce(loss, reduction).to(out_dtype)


def triplet_margin_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Triplet margin loss of FaceNet; equals ``torch.nn.functional.triplet_margin_loss``.

    .. math::

        \ell = \max\bigl(0,\; m + d(a, p) - d(a, n)\bigr), \qquad
        d(u, v) = \lVert u - v + \epsilon \rVert_p

    The anchor must be closer to the positive than to the negative by at least the
    margin.  As in PyTorch, :math:`\epsilon` is added to the *difference* before
    the norm (``F.pairwise_distance``), which keeps the norm away from its
    non-differentiable point at 0.  With ``swap=True`` (Balntas et al. 2016) the
    negative distance is :math:`\min(d(a, n), d(p, n))`, the harder of the two.

    Args:
        anchor, positive, negative: ``(N, D)`` (or ``(D,)``), same shape and device.
        margin: :math:`m \ge 0`.
        p: the norm degree, ``> 0``.
        eps: added to each difference before the norm.
        swap: use the distance swap.
        reduction: ``"none"`` (shape ``(N,)``) | ``"mean"`` | ``"sum"``.

    Returns:
        The loss, shape ``(N,)`` for ``"none"``, else a scalar.

    Reference: Schroff, Kalenichenko and Philbin, "FaceNet", CVPR 2015, equation
    (1); Balntas et al., "Learning local feature descriptors with triplets and
    shallow convolutional neural networks", BMVC 2016 (the swap).
    Peer: ``torch.nn.functional.triplet_margin_loss``.

    Example:
        >>> a = torch.tensor([[0.0, 0.0]])
        >>> p = torch.tensor([[1.0, 0.0]])
        >>> n = torch.tensor([[0.0, 1.5]])
        >>> triplet_margin_loss(a, p, n, margin=1.0, eps=0.0)  # 1 + 1 - 1.5
        tensor(0.5000)
    """
    for tensor, name in ((anchor, "anchor"), (positive, "positive"), (negative, "negative")):
        _check_floating(tensor, name)
    _check_same_shape(anchor, positive, "anchor", "positive")
    _check_same_shape(anchor, negative, "anchor", "negative")
    if anchor.dim() < 1:
        raise ValueError("anchor must have shape (N, D) or (D,), got shape ()")
    _check_same_device([anchor, positive, negative], ["anchor", "positive", "negative"])
    margin = _check_number(margin, "margin", minimum=0.0)
    p = _check_number(p, "p", minimum=0.0, strict=True)
    eps = _check_number(eps, "eps")
    if not isinstance(swap, bool):
        raise TypeError(f"swap must be a bool, got {type(swap).__name__}")
    _check_reduction(reduction)

    out_dtype = torch.promote_types(
        torch.promote_types(anchor.dtype, positive.dtype), negative.dtype
    )
    a, pos, neg = _upcast(anchor), _upcast(positive), _upcast(negative)

    def distance(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(u - v + eps, ord=p, dim=-1)

    dist_pos = distance(a, pos)
    dist_neg = distance(a, neg)
    if swap:
        dist_neg = torch.minimum(dist_neg, distance(pos, neg))
    loss = torch.clamp_min(margin + dist_pos - dist_neg, 0)
    return _reduce(loss, reduction).to(out_dtype)


# --------------------------------------------------------------------------- mining


def mine_triplets(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    margin: float = 1.0,
    strategy: str = "all",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Select triplets (anchor, positive, negative) from a batch by their Euclidean distances.

    A triplet :math:`(a, p, n)` is *valid* when :math:`y_a = y_p`, :math:`a \ne p`
    and :math:`y_n \ne y_a`.  With :math:`d` the distances of
    :func:`pairwise_distances`:

    * ``"all"``: every valid triplet.
    * ``"hard"`` (batch hard, Hermans et al. 2017): one triplet per anchor, with its
      *farthest* positive :math:`\arg\max_p d(a, p)` and its *nearest* negative
      :math:`\arg\min_n d(a, n)`; anchors without a positive or a negative are
      skipped.
    * ``"semihard"`` (FaceNet, Schroff et al. 2015, equation 4): for each positive
      pair :math:`(a, p)` the nearest negative that is farther than the positive
      but inside the margin,

      .. math:: d(a, p) < d(a, n) < d(a, p) + m ;

      pairs without such a negative are dropped (FaceNet's TensorFlow code falls
      back to the farthest negative there instead; this function does not).
    * ``"easy"``: every valid triplet that already satisfies the margin,
      :math:`d(a, n) > d(a, p) + m` (zero loss; for analysis).

    ``"all"`` and ``"easy"`` are returned sorted by anchor, then positive, then
    negative index (``"easy"``: by negative distance); ``"hard"`` by anchor,
    ``"semihard"`` by anchor and positive.  Ties (equal distances) go to the
    lowest index.

    Memory: ``"hard"`` and ``"semihard"`` use :math:`O(B^2)` memory (the semihard
    search sorts each anchor's negatives and binary-searches them, instead of
    comparing all :math:`B^3` triplets); ``"all"`` and ``"easy"`` need
    :math:`O(B^2)` plus the output, which itself can hold up to :math:`O(B^3)`
    triplets.  Selection is not differentiable: the distances are computed without
    gradient.  The number of triplets depends on the data, so this function
    synchronises with the GPU (as :func:`pairwise_distances` does, but not most losses).

    Args:
        embeddings: ``(B, D)``, floating point.
        labels: ``(B,)`` integer class labels, same device.
        margin: :math:`m \ge 0`, used by ``"semihard"`` and ``"easy"``.
        strategy: ``"all"`` | ``"hard"`` | ``"semihard"`` | ``"easy"``.

    Returns:
        ``(a, p, n)``: three ``torch.long`` index tensors of the same length ``(T,)``.

    References: Schroff, Kalenichenko and Philbin, "FaceNet", CVPR 2015, section
    3.2; Hermans, Beyer and Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification", arXiv:1703.07737, 2017.

    Example:
        >>> x = torch.tensor([[0.0], [0.5], [1.0], [3.0]])
        >>> labels = torch.tensor([0, 0, 1, 1])
        >>> mine_triplets(x, labels, strategy="hard")
        (tensor([0, 1, 2, 3]), tensor([1, 0, 3, 2]), tensor([2, 2, 1, 1]))
        >>> mine_triplets(x, labels, margin=1.0, strategy="semihard")
        (tensor([0, 3]), tensor([1, 2]), tensor([2, 1]))
    """
    _check_embeddings(embeddings)
    _check_labels(labels, embeddings)
    margin = _check_number(margin, "margin", minimum=0.0)
    if not isinstance(strategy, str) or strategy not in MINING_STRATEGIES:
        names = ", ".join(repr(s) for s in MINING_STRATEGIES)
        raise ValueError(f"strategy must be one of {names}, got {strategy!r}")

    # Selection only: no gradient flows through the choice of indices.
    with torch.no_grad():
        dist = pairwise_distances(embeddings.detach())
    positive, negative = _pair_masks(labels)
    batch = dist.shape[0]
    device = dist.device

    if batch == 0:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty.clone(), empty.clone()

    if strategy == "hard":
        hardest_pos = torch.where(positive, dist, -1.0).argmax(dim=1)
        hardest_neg = torch.where(negative, dist, torch.inf).argmin(dim=1)
        anchors = (positive.any(dim=1) & negative.any(dim=1)).nonzero().squeeze(1)
        return anchors, hardest_pos[anchors], hardest_neg[anchors]

    # Each anchor's negatives sorted by distance, the non-negatives (inf) at the end.
    neg_dist, neg_order = torch.sort(torch.where(negative, dist, torch.inf), dim=1, stable=True)

    if strategy == "semihard":
        # First negative strictly farther than each d(a, j): a binary search per row.
        first = torch.searchsorted(neg_dist, dist, right=True)
        first_c = first.clamp(max=max(batch - 1, 0))
        candidate = neg_dist.gather(1, first_c)
        keep = positive & (first < batch) & (candidate < dist + margin)
        anchors, positives = keep.nonzero(as_tuple=True)
        return anchors, positives, neg_order[anchors, first_c[anchors, positives]]

    if strategy == "all":
        # Negatives in index order (a stable sort of the mask), starting at 0.
        neg_order = torch.sort((~negative).to(torch.uint8), dim=1, stable=True).indices
        start = torch.zeros(batch, batch, dtype=torch.long, device=device)
    else:  # easy: negatives beyond d(a, p) + m, i.e. from the first one farther
        start = torch.searchsorted(neg_dist, dist + margin, right=True)
    num_neg = negative.sum(dim=1)

    anchors, positives = positive.nonzero(as_tuple=True)
    first_neg = start[anchors, positives]
    counts = (num_neg[anchors] - first_neg).clamp_min(0)
    # Expand each pair (a, p) into its counts[k] triplets without a (B, B, B) mask.
    pair = torch.repeat_interleave(torch.arange(anchors.numel(), device=device), counts)
    offsets = torch.arange(pair.numel(), device=device) - (counts.cumsum(0) - counts)[pair]
    a = anchors[pair]
    return a, positives[pair], neg_order[a, first_neg[pair] + offsets]


# --------------------------------------------------------------------------- batch losses


def batch_all_triplet_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    margin: float = 1.0,
    *,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Batch-all triplet loss: the mean over the valid triplets of a batch that violate the margin.

    .. math::

        \mathcal{L}_{BA} = \frac{1}{|T_+|} \sum_{(a, p, n) \in T_+}
            \bigl[m + d(a, p) - d(a, n)\bigr]_+ ,
        \qquad
        T_+ = \{(a, p, n) \text{ valid} : m + d(a, p) - d(a, n) > 0\}

    over the valid triplets (:math:`y_a = y_p`, :math:`a \ne p`,
    :math:`y_n \ne y_a`) with Euclidean distances :math:`d` (not squared).
    Averaging over the triplets with a *positive* loss only (Hermans et al.'s
    "BA≠0") keeps the loss from shrinking as more triplets become easy; the mean
    over all valid triplets would be dominated by zeros late in training.  The
    number :math:`|T_+|` is treated as a constant.  When :math:`T_+` is empty (no
    valid triplet, or all satisfied) the loss is 0 with a zero gradient, not NaN
    (pytorch-metric-learning issue 107).

    Memory: the definition compares all :math:`B^3` triplets, and so does this
    implementation (a ``(B, B, B)`` tensor: 16 M entries at :math:`B = 256`); use
    :func:`batch_hard_triplet_loss` (:math:`O(B^2)`) for large batches.

    Args:
        embeddings: ``(B, D)``, floating point.
        labels: ``(B,)`` integer class labels, same device.
        margin: :math:`m \ge 0`.
        reduction: ``"mean"`` (the mean over :math:`T_+` above) | ``"sum"`` (the sum
            over the valid triplets) | ``"none"``: the ``(B, B, B)`` tensor of
            :math:`[m + d(a, p) - d(a, n)]_+` indexed ``[a, p, n]``, 0 where the
            triplet is not valid.

    Returns:
        A scalar (``"mean"``, ``"sum"``) or ``(B, B, B)`` (``"none"``) in the dtype of
        ``embeddings``.

    Reference: Hermans, Beyer and Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification", arXiv:1703.07737, 2017, section 2.  Peer:
    ``pytorch_metric_learning.losses.TripletMarginLoss`` (no miner, its default
    ``AvgNonZeroReducer``, ``distance=LpDistance(normalize_embeddings=False)``).

    Example:
        >>> x = torch.tensor([[0.0], [0.5], [1.0], [3.0]])
        >>> labels = torch.tensor([0, 0, 1, 1])
        >>> batch_all_triplet_loss(x, labels, margin=1.0)  # (0.5 + 1 + 2 + 2.5 + 0.5) / 5
        tensor(1.3000)
    """
    _check_embeddings(embeddings)
    _check_labels(labels, embeddings)
    margin = _check_number(margin, "margin", minimum=0.0)
    _check_reduction(reduction)

    dist = _upcast(pairwise_distances(embeddings))
    positive, negative = _pair_masks(labels)
    valid = positive.unsqueeze(2) & negative.unsqueeze(1)  # (a, p, n)
    losses = F.relu(margin + dist.unsqueeze(2) - dist.unsqueeze(1))
    if reduction == "mean":
        return masked_mean(losses, valid & (losses > 0)).to(embeddings.dtype)
    losses = torch.where(valid, losses, torch.zeros_like(losses))
    return _reduce(losses, reduction).to(embeddings.dtype)


def batch_hard_triplet_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    margin: float = 1.0,
    soft: bool = False,
    *,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Batch-hard triplet loss: each anchor with its farthest positive and nearest negative.

    .. math::

        \mathcal{L}_{BH} = \frac{1}{|A|} \sum_{a \in A}
            \Bigl[m + \max_{p:\, y_p = y_a,\, p \ne a} d(a, p)
                    - \min_{n:\, y_n \ne y_a} d(a, n)\Bigr]_+

    over the anchors :math:`A` that have at least one positive and one negative,
    with Euclidean distances :math:`d`.  With ``soft=True`` the hinge
    :math:`[m + x]_+` is replaced by Hermans et al.'s soft margin
    :math:`\operatorname{softplus}(x) = \log(1 + e^{x})`, which has no margin
    (``margin`` is then ignored) and keeps pulling satisfied triplets together.
    The mean is over all anchors in :math:`A`, including those whose loss is 0
    (unlike pytorch-metric-learning's default ``AvgNonZeroReducer``).  An empty
    :math:`A` (one class, or every label distinct) gives 0 with a zero gradient.

    The loss is computed in two steps, "mine, then recompute".  Mining, without
    autograd: the squared distances of all pairs come from one matrix product of
    the centred rows (as in :func:`pairwise_distances`), and a masked
    ``max``/``min`` per row gives the *index* of each anchor's hardest positive
    and negative (the square root is monotone, so it is not needed).  Recomputing,
    with autograd: only the :math:`2B` selected distances
    :math:`\lVert x_a - x_p \rVert` and :math:`\lVert x_a - x_n \rVert`, from the
    differences of the rows (accurate however close they are), with the guarded
    square root of :func:`pairwise_distances`, so a zero distance has a zero
    gradient.  Memory: one ``(B, B)`` matrix of squared distances (and
    a boolean one of label equality) exists during mining only; the backward pass
    keeps :math:`O(B D)` tensors, none of size :math:`B^2`.  No host
    synchronisation: indices are gathered, anchors without a triplet are masked.
    Where several candidates tie exactly in distance, the gradient goes to one of
    them (a valid subgradient of the max/min; masked ``amax``/``amin`` would
    share it among them); the value is the same.

    Args:
        embeddings: ``(B, D)``, floating point.
        labels: ``(B,)`` integer class labels, same device.
        margin: :math:`m \ge 0` (unused when ``soft``).
        soft: use the soft margin.
        reduction: ``"mean"`` (over the anchors in :math:`A`) | ``"sum"`` | ``"none"``
            (one value per anchor, ``(B,)``, 0 for an anchor outside :math:`A`).

    Returns:
        A scalar, or ``(B,)`` for ``"none"``, in the dtype of ``embeddings``.

    Reference: Hermans, Beyer and Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification", arXiv:1703.07737, 2017, equations (5) and (6).  Peer:
    ``pytorch_metric_learning`` ``TripletMarginLoss`` with ``BatchHardMiner``.

    Example:
        >>> x = torch.tensor([[0.0], [0.5], [1.0], [3.0]])
        >>> labels = torch.tensor([0, 0, 1, 1])
        >>> batch_hard_triplet_loss(x, labels, margin=1.0)  # (0.5 + 1 + 2.5 + 0.5) / 4
        tensor(1.1250)
    """
    _check_embeddings(embeddings)
    _check_labels(labels, embeddings)
    margin = _check_number(margin, "margin", minimum=0.0)
    if not isinstance(soft, bool):
        raise TypeError(f"soft must be a bool, got {type(soft).__name__}")
    _check_reduction(reduction)

    if embeddings.shape[0] == 0:  # an empty batch (a shape, not a value: no sync)
        return _reduce(0.0 * embeddings.sum(dim=1), reduction)
    x = _upcast(embeddings)
    positive_index, negative_index = _hardest_indices(x, labels)
    has_triplet = _has_positive_and_negative(labels)
    hardest_pos = _row_distances(x, positive_index)
    hardest_neg = _row_distances(x, negative_index)
    # Anchors without a triplet are masked out below (their indices are arbitrary).
    gap = torch.where(has_triplet, hardest_pos - hardest_neg, torch.zeros_like(hardest_pos))
    losses = F.softplus(gap) if soft else F.relu(margin + gap)
    if reduction == "mean":
        return masked_mean(losses, has_triplet).to(embeddings.dtype)
    losses = torch.where(has_triplet, losses, torch.zeros_like(losses))
    return _reduce(losses, reduction).to(embeddings.dtype)


def _hardest_indices(x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of ``x`` ``(B, D)``, the index of its farthest positive and of its
    nearest negative, without autograd; an arbitrary valid index where there is none.

    The ``(B, B)`` scores are ``|x_j|^2 - 2 x_i . x_j``: the squared distance minus
    ``|x_i|^2``, a constant per row, which changes no row's argmax or argmin.  The
    rows are centred first to keep the cancellation small (as in
    :func:`pairwise_distances`).
    """
    with torch.no_grad():
        xc = x.detach()
        xc = xc - xc.mean(dim=0, keepdim=True)
        sq_norms = (xc * xc).sum(dim=1)
        scores = torch.addmm(sq_norms.unsqueeze(0), xc, xc.T, beta=1, alpha=-2)
        scores.diagonal().fill_(-torch.inf)  # the anchor itself: never the farthest positive
        same = labels.unsqueeze(0) == labels.unsqueeze(1)
        positive_index = torch.where(same, scores, -torch.inf).max(dim=1).indices
        # In place: the positives' scores are no longer needed (the diagonal is in ``same``).
        negative_index = scores.masked_fill_(same, torch.inf).min(dim=1).indices
    return positive_index, negative_index


def _has_positive_and_negative(labels: torch.Tensor) -> torch.Tensor:
    """``(B,)`` boolean: the anchor's class has another member and is not the whole
    batch.  Class sizes from a sort, ``O(B log B)``, with no data-dependent shape."""
    ordered = labels.sort().values
    size = torch.searchsorted(ordered, labels, right=True) - torch.searchsorted(ordered, labels)
    return (size > 1) & (size < labels.shape[0])


def _row_distances(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``|x_i - x_index[i]|`` for every row, differentiable, from the differences; a
    zero distance has a zero gradient (as in :func:`pairwise_distances`)."""
    diff = x - x.index_select(0, index)
    return safe_sqrt((diff * diff).sum(dim=1))


def circle_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    margin: float = 0.25,
    gamma: float = 256.0,
    *,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Circle loss (pair-similarity form) on cosine similarities, averaged over anchors.

    For an anchor with positive similarities :math:`s_p` and negative similarities
    :math:`s_n` (cosine similarities to the other samples of the batch; the anchor
    itself is not its own positive):

    .. math::

        \mathcal{L} = \operatorname{softplus}\Bigl(
            \log \sum_{n} e^{\gamma \alpha_n (s_n - \Delta_n)}
            + \log \sum_{p} e^{-\gamma \alpha_p (s_p - \Delta_p)} \Bigr),

    .. math::

        \alpha_p = [1 + m - s_p]_+, \quad \alpha_n = [s_n + m]_+, \quad
        \Delta_p = 1 - m, \quad \Delta_n = m .

    :math:`\operatorname{softplus}(\log\sum + \log\sum) = \log(1 + \sum_n \sum_p e^{\dots})`,
    the paper's equation (6), evaluated with two ``logsumexp`` and a ``softplus``
    so that :math:`\gamma = 256` does not overflow.  Each similarity gets its own
    weight :math:`\alpha`: the farther it is from its optimum (:math:`O_p = 1 + m`,
    :math:`O_n = -m`), the larger its step; the decision boundary becomes the
    circle :math:`(s_n - 0)^2 + (s_p - 1)^2 = 2m^2`.  The weights are constants in
    the gradient (*detached*), as in the paper (section 3.2: gradients are taken
    with :math:`\alpha` fixed) and in the authors' and pytorch-metric-learning's
    code; differentiating them too changes the gradient, not the value.

    The mean is over the anchors with at least one positive and one negative; a
    batch without any gives 0 with a zero gradient.  The two ``logsumexp`` are
    masked with the dtype's most negative finite value, not :math:`-\infty`, whose
    gradient would be NaN for an anchor with no positive.

    Args:
        embeddings: ``(B, D)``, floating point; normalised to unit length inside
            (``F.normalize``).
        labels: ``(B,)`` integer class labels, same device.
        margin: the relaxation :math:`m` (0.25 for face recognition in the paper).
        gamma: the scale :math:`\gamma > 0` (256 for face recognition).
        reduction: ``"mean"`` (over the anchors with a positive and a negative) |
            ``"sum"`` | ``"none"`` (one value per anchor, ``(B,)``, 0 for an anchor
            without a positive or a negative).

    Returns:
        A scalar, or ``(B,)`` for ``"none"``, in the dtype of ``embeddings``.

    Reference: Sun et al., "Circle Loss: A Unified Perspective of Pair Similarity
    Optimization", CVPR 2020, equations (6)-(8).  Peer:
    ``pytorch_metric_learning.losses.CircleLoss`` (which averages over the anchors
    with a non-zero loss: the same where no anchor's softplus underflows to 0).

    Example:
        >>> labels = torch.tensor([0, 0, 1, 1])
        >>> separated = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
        >>> circle_loss(separated, labels)
        tensor(1.4599e-10)
        >>> circle_loss(torch.ones(4, 2), labels)  # collapsed: s = 1 everywhere
        tensor(224.6931)
    """
    _check_embeddings(embeddings)
    _check_labels(labels, embeddings)
    margin = _check_number(margin, "margin")
    gamma = _check_number(gamma, "gamma", minimum=0.0, strict=True)
    _check_reduction(reduction)

    x = F.normalize(_upcast(embeddings), dim=1)
    sim = x @ x.T
    positive, negative = _pair_masks(labels)
    # The weights alpha are constants in the gradient (Sun et al., section 3.2): they
    # only scale each similarity's step; detaching keeps their own derivative out.
    alpha_p = F.relu(1 + margin - sim.detach())
    alpha_n = F.relu(sim.detach() + margin)
    logit_p = -gamma * alpha_p * (sim - (1 - margin))
    logit_n = gamma * alpha_n * (sim - margin)
    lowest = torch.finfo(sim.dtype).min
    lse_p = torch.logsumexp(torch.where(positive, logit_p, lowest), dim=1)
    lse_n = torch.logsumexp(torch.where(negative, logit_n, lowest), dim=1)
    has_pair = positive.any(dim=1) & negative.any(dim=1)
    # Anchors without a positive or a negative are masked out; keep their value finite.
    losses = F.softplus(torch.where(has_pair, lse_p + lse_n, torch.zeros_like(lse_p)))
    if reduction == "mean":
        return masked_mean(losses, has_pair).to(embeddings.dtype)
    losses = torch.where(has_pair, losses, torch.zeros_like(losses))
    return _reduce(losses, reduction).to(embeddings.dtype)

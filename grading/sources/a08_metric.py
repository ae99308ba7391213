"""Assignment source: a08_metric (see :mod:`grading.sources`).

``mine_triplets`` returns indices, not a loss: it has no catalogue entry, so its test cells
call ``assert_outputs_match`` (defined by this notebook's harness cell, below) on batches
built by ``mining_batch``, fixed ones in the visible tests and ones drawn from
``HIDDEN_SEED`` in the hidden test.  The grader re-runs those cells in its trusted process
with the student's function called in the sandbox (``grading.autograde.run_test_cell``).
The memory bound (no ``(B, B, B)`` tensor) is measured in the notebook run, where the
student's code runs under the recording mode; in the trusted re-run the computation
happens in the sandbox, so only the outputs are compared there.
"""

from __future__ import annotations

import json

from . import HARNESS, SETUP, Exercise
from ._outputs import OutputExercise


def _cases(*names: str) -> str:
    """The ``cases=[...]`` argument of a test call."""
    return ", cases=" + json.dumps(list(names), ensure_ascii=False)


#: The distances of exercise 1, repeated inside the later solutions so that each solution
#: stands alone (a mistake in one exercise costs the points of that exercise only).
_DISTANCES = """
    def distances(x):  # pairwise_distances of exercise 1
        x = x - x.mean(dim=0, keepdim=True).detach()  # translation invariant
        gram = x @ x.T
        sq_norms = gram.diagonal()
        squared = (sq_norms.unsqueeze(1) + sq_norms.unsqueeze(0) - 2 * gram).clamp_min(0)
        eye = torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
        squared = torch.where(eye, torch.zeros_like(squared), squared)
        positive = squared > 1e-12
        safe = torch.where(positive, squared, torch.ones_like(squared))
        return torch.where(positive, torch.sqrt(safe), torch.zeros_like(squared))
"""

_MASKS = """
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    positive, negative = same & ~eye, ~same
"""

MINING_HARNESS = '''
import copy

from torch.overrides import TorchFunctionMode

from cvloss_ref.testing import _Guard


def mining_batch(seed, batch, dim=4, classes=4):
    """Clustered float64 embeddings (batch, dim) and their labels (batch,), drawn from seed."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (batch,), generator=generator)
    centres = 1.5 * torch.randn(classes, dim, generator=generator, dtype=torch.float64)
    noise = torch.randn(batch, dim, generator=generator, dtype=torch.float64)
    return centres[labels] + noise, labels


class _LargestTensor(TorchFunctionMode):
    """Records the largest tensor (in bytes of storage) that any torch call creates."""

    def __init__(self):
        super().__init__()
        self.nbytes = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(value, torch.Tensor) and value.device.type != "meta":
                self.nbytes = max(self.nbytes, value.untyped_storage().nbytes())
        return out


def _shown(tensor, limit=8):
    values = tensor.flatten()[:limit].tolist()
    return f"{values}{', ...' if tensor.numel() > limit else ''} ({tensor.numel()} values)"


def assert_outputs_match(fn, name, cases, *, forbid=(), reference=None, max_bytes=None):
    """Check that fn returns the reference's index tensors (same values, same order).

    cases: (description, args, kwargs) triples.  With max_bytes, also check that no tensor
    fn creates is larger than max_bytes.  Raises AssertionError with a message for the
    student at the first difference.
    """
    import cvloss_ref

    reference = reference or getattr(cvloss_ref, name)
    for description, args, kwargs in cases:
        where = f'{name} does not match the reference on case "{description}"'
        expected = reference(*copy.deepcopy(args), **copy.deepcopy(kwargs))
        given = copy.deepcopy(args)
        guard, largest = _Guard(reference, forbid), _LargestTensor()
        try:
            with largest:
                received = guard.call(fn, *given, **copy.deepcopy(kwargs))
        except Exception as error:
            raise AssertionError(
                f'{name} raised {type(error).__name__} on case "{description}": {error}'
            ) from None
        if guard.hits:
            raise AssertionError(
                f"{name} calls {' and '.join(guard.hits)}, which this exercise does not allow"
            )
        for before, after in zip(args, given):
            if isinstance(before, torch.Tensor) and not torch.equal(before, after):
                raise AssertionError(f"{where}: your function changed one of its inputs")
        if not isinstance(received, (tuple, list)) or len(received) != len(expected):
            raise AssertionError(
                f"{where}: expected a tuple of {len(expected)} index tensors, "
                f"got {type(received).__name__}"
            )
        for label, exp, rec in zip("apn", expected, received):
            if not isinstance(rec, torch.Tensor) or rec.dtype != exp.dtype:
                kind = rec.dtype if isinstance(rec, torch.Tensor) else type(rec).__name__
                raise AssertionError(f"{where}: {label} must be a torch.long tensor, got {kind}")
            if rec.shape != exp.shape or not torch.equal(rec, exp):
                raise AssertionError(
                    f"{where} ({len(expected[0])} triplets expected, {len(rec)} received):\\n"
                    f"  expected {label} = {_shown(exp)}\\n  received {label} = {_shown(rec)}"
                )
        if max_bytes is not None and largest.nbytes > max_bytes:
            raise AssertionError(
                f'{name} created a tensor of {largest.nbytes / 2**20:.0f} MiB on case '
                f'"{description}" (at most {max_bytes / 2**20:.0f} MiB allowed): compare each '
                "positive distance with the sorted negative distances (torch.sort, "
                "torch.searchsorted) instead of building all B^3 triplets"
            )
'''


MINING_FORBID = "[torch.cdist, TripletMarginMiner, BatchHardMiner]"

EXERCISES = [
    Exercise(
        function="pairwise_distances",
        title="1. Pairwise distances with a safe gradient",
        task=r"""
For a batch of embeddings $X$ of shape `(B, D)`, return the `(B, B)` matrix of Euclidean
distances, computed from the Gram matrix $X X^\top$ (one matrix product and `(B, B)`
memory, not the `(B, B, D)` tensor of all differences):

$$D_{ij}^2 = \lVert x_i \rVert^2 + \lVert x_j \rVert^2 - 2\, x_i^\top x_j ,
\qquad D_{ij} = \sqrt{\max(D_{ij}^2, 0)} .$$

Rounding makes some $D_{ij}^2$ slightly negative (clamp them at 0) and the diagonal must
be exactly 0. `squared=True` returns $D^2$. The derivative of $\sqrt{z}$ is infinite at
$z = 0$: on the diagonal and for identical embeddings a plain `torch.sqrt` gives NaN
gradients. Where $D^2_{ij} \le$ `eps`, the distance must be 0 **with a zero gradient**
(the double-`where` trick). Subtracting the batch mean first (distances do not change
under a translation; detach the mean) keeps the cancellation error small for large values.
`torch.cdist`, `torch.pdist` and `F.pairwise_distance` are off limits.

*Hint:* [Triplet loss](../../book/triplet-loss.md), computing all distances at once.
""",
        signature="def pairwise_distances(embeddings, squared=False, eps=1e-12):",
        docstring="Euclidean distances (B, B) between the rows, with a zero gradient at 0.",
        solution="""
    x = embeddings - embeddings.mean(dim=0, keepdim=True).detach()  # translation invariant
    gram = x @ x.T
    sq_norms = gram.diagonal()
    squared_dist = (sq_norms.unsqueeze(1) + sq_norms.unsqueeze(0) - 2 * gram).clamp_min(0)
    eye = torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
    squared_dist = torch.where(eye, torch.zeros_like(squared_dist), squared_dist)
    if squared:
        return squared_dist
    positive = squared_dist > eps
    safe = torch.where(positive, squared_dist, torch.ones_like(squared_dist))
    return torch.where(positive, torch.sqrt(safe), torch.zeros_like(squared_dist))
""",
        forbid="[torch.cdist, torch.pdist, F.pairwise_distance]",
        visible=[
            (
                "random",
                "Check pairwise_distances on random embeddings, squared or not",
                _cases("random (6, 3)", "random (5, 4), squared=True", "one embedding (1, 5)"),
            ),
            (
                "zero_distance",
                "Check pairwise_distances' gradient at zero distances and for large values",
                _cases("identical embeddings", "duplicated rows", "large values (scale 100)"),
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="contrastive_loss",
        title="2. Contrastive loss",
        task=r"""
For pairs of embeddings $x_1, x_2$ (shape `(N, D)` or `(D,)`) with $d = \lVert x_1 - x_2
\rVert_2$ and $y = 1$ where `same` is true (same class), $y = 0$ otherwise,

$$\ell = y\, d^2 + (1 - y) \max(0, m - d)^2$$

(Hadsell, Chopra and LeCun, without their factor $\tfrac12$). `same` may be bool, integer
or floating. Identical embeddings ($d = 0$) must give a finite gradient: guard the square
root. `F.pairwise_distance` (which adds `1e-6` to the difference) and `torch.cdist` are
off limits.

*Hint:* [Triplet loss](../../book/triplet-loss.md), the contrastive loss that came first.
""",
        signature='def contrastive_loss(x1, x2, same, margin=1.0, reduction="mean"):',
        docstring="Contrastive loss y d^2 + (1 - y) max(0, m - d)^2 of embedding pairs.",
        solution="""
    diff = x1 - x2
    squared = (diff * diff).sum(dim=-1)
    positive = squared > 0
    safe = torch.where(positive, squared, torch.ones_like(squared))
    dist = torch.where(positive, torch.sqrt(safe), torch.zeros_like(squared))
    y = same.to(squared.dtype)
    loss = y * squared + (1 - y) * torch.clamp_min(margin - dist, 0) ** 2
    return reduce_loss(loss, reduction)
""",
        forbid="[F.pairwise_distance, torch.cdist]",
        visible=[
            (
                "random",
                "Check contrastive_loss on random pairs with boolean, integer and float labels",
                _cases(
                    "random pairs, boolean labels",
                    "integer labels 0/1, reduction='none'",
                    "float labels, margin=2",
                ),
            ),
            (
                "zero_distance",
                "Check contrastive_loss on identical embeddings and dissimilar pairs",
                _cases("all dissimilar, reduction='sum'", "identical embeddings (d = 0)"),
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="triplet_margin_loss",
        title="3. Triplet margin loss",
        task=r"""
For anchors $a$, positives $p$ and negatives $n$ (each `(N, D)` or `(D,)`),

$$\ell = \max\big(0,\ m + d(a, p) - d(a, n)\big), \qquad d(u, v) = \lVert u - v + \epsilon
\rVert_p ,$$

with `eps` $= \epsilon$ added to the *difference* before the `p`-norm (as PyTorch does).
With `swap=True` the negative distance is $\min(d(a, n), d(p, n))$. This is what
`F.triplet_margin_loss` computes, which is off limits (and so are `F.pairwise_distance`
and `torch.cdist`); `torch.linalg.vector_norm` is allowed.

*Hint:* [Triplet loss](../../book/triplet-loss.md), the FaceNet loss.
""",
        signature=(
            "def triplet_margin_loss(\n"
            "    anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, "
            'reduction="mean"\n'
            "):"
        ),
        docstring="Triplet margin loss max(0, m + d(a, p) - d(a, n)).",
        solution="""
    def distance(u, v):
        return torch.linalg.vector_norm(u - v + eps, ord=p, dim=-1)

    dist_pos = distance(anchor, positive)
    dist_neg = distance(anchor, negative)
    if swap:
        dist_neg = torch.minimum(dist_neg, distance(positive, negative))
    return reduce_loss(torch.clamp_min(margin + dist_pos - dist_neg, 0), reduction)
""",
        forbid="[F.triplet_margin_loss, F.pairwise_distance, torch.cdist]",
        visible=[
            (
                "random",
                "Check triplet_margin_loss on random triplets, with another p and margin",
                _cases("random (8, 4)", "p=1, margin=0.5", "reduction='sum', margin=2"),
            ),
            (
                "swap_and_edges",
                "Check triplet_margin_loss with swap, satisfied triplets and one triplet",
                _cases(
                    "swap=True",
                    "anchor equal to positive",
                    "every triplet satisfied (loss 0)",
                    "one triplet (4,)",
                ),
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="batch_hard_triplet_loss",
        title="4. Batch-hard triplet loss",
        task=r"""
For a batch of embeddings `(B, D)` with integer `labels` `(B,)`, each anchor $a$ takes its
*farthest* positive (same label, not $a$ itself) and its *nearest* negative (another
label), with the Euclidean distances of exercise 1 (not squared):

$$\mathcal{L}_{BH} = \frac{1}{|A|} \sum_{a \in A}
    \Big[m + \max_{p} d(a, p) - \min_{n} d(a, n)\Big]_+$$

over the anchors $A$ that have at least one positive and one negative (the mean includes
anchors whose loss is 0). `soft=True` replaces $[m + x]_+$ with
$\mathrm{softplus}(x)$ (no margin). An empty $A$ (one class, or all labels distinct)
gives 0 with a zero gradient, not NaN. Use masks over the `(B, B)` matrix
(`torch.where`, `amax`, `amin`): $O(B^2)$ memory, no boolean indexing. `torch.cdist` and
`F.triplet_margin_loss` are off limits.

*Hint:* [Triplet loss](../../book/triplet-loss.md), batch-hard mining (Hermans et al.).
""",
        signature="def batch_hard_triplet_loss(embeddings, labels, margin=1.0, soft=False):",
        docstring="Batch-hard triplet loss: farthest positive and nearest negative per anchor.",
        solution=_DISTANCES
        + _MASKS
        + """
    if embeddings.shape[0] == 0:
        return 0.0 * embeddings.sum()
    dist = distances(embeddings)
    hardest_pos = torch.where(positive, dist, torch.zeros_like(dist)).amax(dim=1)
    largest = torch.full_like(dist, torch.finfo(dist.dtype).max)
    hardest_neg = torch.where(negative, dist, largest).amin(dim=1)
    has_triplet = positive.any(dim=1) & negative.any(dim=1)
    gap = torch.where(has_triplet, hardest_pos - hardest_neg, torch.zeros_like(hardest_pos))
    losses = F.softplus(gap) if soft else torch.clamp_min(margin + gap, 0)
    count = has_triplet.sum().to(losses.dtype)
    total = torch.where(has_triplet, losses, torch.zeros_like(losses)).sum()
    return torch.where(count > 0, total / count.clamp_min(1), torch.zeros_like(total))
""",
        forbid="[torch.cdist, F.triplet_margin_loss]",
        visible=[
            (
                "random",
                "Check batch_hard_triplet_loss on random batches, with the soft margin",
                _cases(
                    "random (8, 3), three classes",
                    "soft margin",
                    "a class with a single member, margin=0.3",
                ),
            ),
            (
                "no_triplet",
                "Check batch_hard_triplet_loss on collapsed batches and batches without a triplet",
                _cases(
                    "identical embeddings",
                    "single class (no valid triplet)",
                    "all labels distinct (no valid triplet)",
                ),
            ),
        ],
        hidden=[""],
    ),
    OutputExercise(
        drawn="batches",
        function="mine_triplets",
        title="5. Batch-hard and semi-hard mining without O(B³) memory",
        task=r"""
Return the triplets `(a, p, n)` (three `torch.long` index tensors of the same length) that
a strategy selects from a batch, with the distances $d$ of exercise 1. A triplet is valid
when $y_a = y_p$, $a \ne p$ and $y_n \ne y_a$.

* `strategy="hard"`: one triplet per anchor (in anchor order), with its farthest positive
  and its nearest negative; anchors without a positive or a negative are skipped.
* `strategy="semihard"` (FaceNet): for each positive pair $(a, p)$, in the order of $a$
  then $p$, the **nearest** negative that is farther than the positive but inside the
  margin, $d(a, p) < d(a, n) < d(a, p) + m$; pairs without such a negative are dropped
  (no fall-back to the hardest negative).

Ties go to the lowest index. Selection is not differentiable: compute the distances under
`torch.no_grad()`. This function may use `nonzero` and boolean indexing (its output size
depends on the data). **Memory:** comparing all $B^3$ triplets needs a `(B, B, B)` tensor,
128 MiB of booleans at $B = 512$; the tests allow $O(B^2)$ only. Sort each anchor's
negative distances once (`torch.sort`) and find, for every positive distance, the first
negative beyond it with a binary search (`torch.searchsorted`). The other strategies of
`cvloss_ref.mine_triplets` (`"all"`, `"easy"`) are not asked for. `torch.cdist` and
pytorch-metric-learning's miners are off limits.

*Hint:* [Triplet loss](../../book/triplet-loss.md), online mining.
""",
        signature='def mine_triplets(embeddings, labels, margin=1.0, strategy="semihard"):',
        docstring="Indices (a, p, n) of the batch-hard or semi-hard triplets of a batch.",
        solution=_DISTANCES
        + _MASKS
        + """
    with torch.no_grad():  # selection only: no gradient flows through indices
        dist = distances(embeddings)
    batch = dist.shape[0]
    if batch == 0:
        empty = torch.zeros(0, dtype=torch.long, device=dist.device)
        return empty, empty.clone(), empty.clone()
    if strategy == "hard":
        hardest_pos = torch.where(positive, dist, -1.0).argmax(dim=1)
        hardest_neg = torch.where(negative, dist, torch.inf).argmin(dim=1)
        anchors = (positive.any(dim=1) & negative.any(dim=1)).nonzero().squeeze(1)
        return anchors, hardest_pos[anchors], hardest_neg[anchors]
    if strategy != "semihard":
        raise ValueError(f"strategy must be 'hard' or 'semihard', got {strategy!r}")
    # Each anchor's negative distances sorted, the non-negatives (inf) at the end.
    neg_dist, neg_order = torch.sort(torch.where(negative, dist, torch.inf), dim=1, stable=True)
    first = torch.searchsorted(neg_dist, dist, right=True)  # first negative beyond d(a, j)
    first_c = first.clamp(max=batch - 1)
    candidate = neg_dist.gather(1, first_c)
    keep = positive & (first < batch) & (candidate < dist + margin)
    anchors, positives = keep.nonzero(as_tuple=True)
    return anchors, positives, neg_order[anchors, first_c[anchors, positives]]
""",
        forbid=MINING_FORBID,
        visible=[
            (
                "hard",
                "Check mine_triplets (hard) on fixed batches",
                f"""
x = torch.tensor([[0.0], [0.5], [1.0], [3.0]], dtype=torch.float64)
embeddings, labels = mining_batch(0, 12, classes=3)
singleton = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3])  # class 2 has one member
cases = [
    ("four points on a line", (x, torch.tensor([0, 0, 1, 1])), {{"strategy": "hard"}}),
    ("12 embeddings, 3 classes", (embeddings, labels), {{"strategy": "hard"}}),
    ("a class with a single member", (embeddings[:8], singleton), {{"strategy": "hard"}}),
]
assert_outputs_match(mine_triplets, "mine_triplets", cases, forbid={MINING_FORBID})
""",
            ),
            (
                "semihard",
                "Check mine_triplets (semihard) on fixed batches and margins",
                f"""
x = torch.tensor([[0.0], [0.5], [1.0], [3.0]], dtype=torch.float64)
embeddings, labels = mining_batch(1, 16, classes=4)
semihard = {{"strategy": "semihard"}}
cases = [
    ("four points on a line, margin=1", (x, torch.tensor([0, 0, 1, 1])), semihard),
    ("16 embeddings, margin=1", (embeddings, labels), semihard),
    ("16 embeddings, margin=0.2", (embeddings, labels), {{**semihard, "margin": 0.2}}),
    ("16 embeddings, margin=3", (embeddings, labels), {{**semihard, "margin": 3.0}}),
    ("one class (no triplet)", (embeddings, torch.zeros_like(labels)), semihard),
]
assert_outputs_match(mine_triplets, "mine_triplets", cases, forbid={MINING_FORBID})
""",
            ),
            (
                "memory",
                "Check that mine_triplets (semihard) needs no (B, B, B) tensor for B = 512",
                f"""
embeddings, labels = mining_batch(2, 512, dim=8, classes=16)
cases = [("B = 512, margin=0.5", (embeddings, labels), {{"strategy": "semihard", "margin": 0.5}})]
assert_outputs_match(
    mine_triplets, "mine_triplets", cases, forbid={MINING_FORBID}, max_bytes=64 * 512**2
)
""",
            ),
        ],
        hidden=[
            "cases = []",
            "for k, (batch, classes) in enumerate([(10, 2), (24, 3), (40, 6), (33, 12)]):",
            "    embeddings, labels = mining_batch(HIDDEN_SEED + k, batch, classes=classes)",
            "    margin = 0.1 + 2 * torch.rand(1, generator=torch.Generator().manual_seed("
            "HIDDEN_SEED + k)).item()",
            '    cases.append((f"B = {batch}, hard", (embeddings, labels), {"strategy": "hard"}))',
            '    semihard = {"strategy": "semihard", "margin": margin}',
            '    cases.append((f"B = {batch}, margin {margin:.3f}", (embeddings, labels), '
            "semihard))",
            f'assert_outputs_match(mine_triplets, "mine_triplets", cases, forbid={MINING_FORBID})',
            "embeddings, labels = mining_batch(HIDDEN_SEED, 640, dim=8, classes=20)",
            'cases = [("B = 640, margin=1", (embeddings, labels), {"strategy": "semihard"})]',
            "assert_outputs_match(",
            f'    mine_triplets, "mine_triplets", cases, forbid={MINING_FORBID}, '
            "max_bytes=64 * 640**2",
            ")",
        ],
    ),
    Exercise(
        function="circle_loss",
        title="6. Circle loss",
        task=r"""
On cosine similarities $s$ between the unit-normalised embeddings of a batch (the anchor is
not its own positive), for each anchor with positive similarities $s_p$ and negative
similarities $s_n$:

$$\mathcal{L} = \mathrm{softplus}\Big(
    \log \sum_{n} e^{\gamma \alpha_n (s_n - \Delta_n)}
    + \log \sum_{p} e^{-\gamma \alpha_p (s_p - \Delta_p)} \Big),$$

$$\alpha_p = [1 + m - s_p]_+, \quad \alpha_n = [s_n + m]_+, \quad
\Delta_p = 1 - m, \quad \Delta_n = m ,$$

averaged over the anchors with at least one positive and one negative (0, with a zero
gradient, when there is none). The weights $\alpha$ are constants in the gradient
(detach them, as the paper does). With $\gamma = 256$ the exponentials overflow: use
`torch.logsumexp` over masked logits, filling the masked entries with the dtype's most
negative finite value (`torch.finfo(dtype).min`), not $-\infty$ (whose gradient is NaN
for an anchor without positives). pytorch-metric-learning's `CircleLoss` is off limits.

*Hint:* [Circle loss](../../book/circle-loss.md), the unified pair-similarity loss.
""",
        signature="def circle_loss(embeddings, labels, margin=0.25, gamma=256.0):",
        docstring="Circle loss on the cosine similarities of a batch, averaged over anchors.",
        solution=_MASKS
        + """
    x = F.normalize(embeddings, dim=1)
    sim = x @ x.T
    # The weights alpha are constants in the gradient (Sun et al., section 3.2).
    alpha_p = torch.clamp_min(1 + margin - sim.detach(), 0)
    alpha_n = torch.clamp_min(sim.detach() + margin, 0)
    logit_p = -gamma * alpha_p * (sim - (1 - margin))
    logit_n = gamma * alpha_n * (sim - margin)
    lowest = torch.finfo(sim.dtype).min
    lse_p = torch.logsumexp(torch.where(positive, logit_p, lowest), dim=1)
    lse_n = torch.logsumexp(torch.where(negative, logit_n, lowest), dim=1)
    has_pair = positive.any(dim=1) & negative.any(dim=1)
    losses = F.softplus(torch.where(has_pair, lse_p + lse_n, torch.zeros_like(lse_p)))
    count = has_pair.sum().to(losses.dtype)
    total = torch.where(has_pair, losses, torch.zeros_like(losses)).sum()
    return torch.where(count > 0, total / count.clamp_min(1), torch.zeros_like(total))
""",
        forbid="[CircleLoss]",
        visible=[
            (
                "random",
                "Check circle_loss on random batches and another margin and scale",
                _cases(
                    "random (8, 4), three classes",
                    "gamma=64, margin=0.4",
                    "a class with a single member",
                ),
            ),
            (
                "degenerate",
                "Check circle_loss on collapsed batches and batches without pairs",
                _cases(
                    "identical embeddings, gamma=256",
                    "single class (no negative)",
                    "all labels distinct (no positive)",
                ),
            ),
        ],
        hidden=[""],
    ),
]

SETUP_A08 = (
    SETUP
    + """
try:  # imported only so that the tests can forbid them
    from pytorch_metric_learning.losses import CircleLoss
    from pytorch_metric_learning.miners import BatchHardMiner, TripletMarginMiner
except ImportError:
    CircleLoss = "pytorch_metric_learning.losses.CircleLoss"
    BatchHardMiner = "pytorch_metric_learning.miners.BatchHardMiner"
    TripletMarginMiner = "pytorch_metric_learning.miners.TripletMarginMiner"
"""
)

ASSIGNMENT = {
    "notebook": "metric",
    "title": "Assignment 8: metric-learning losses",
    "chapter": "../../book/triplet-loss.md",
    "chapter_title": "Triplet loss (Part VI: metric learning)",
    "functions": "pairwise distances with a safe gradient, the contrastive and triplet "
    "losses, the batch-hard triplet loss, batch-hard and semi-hard mining in O(B²) memory "
    "and the circle loss (chapter [Circle loss](../../book/circle-loss.md))",
    "rules": "`torch.cdist`, `F.triplet_margin_loss`, `F.pairwise_distance` and "
    "pytorch-metric-learning are off limits (each exercise names what it forbids).",
    "exercises": EXERCISES,
    "setup": SETUP_A08,
    "harness": HARNESS.rstrip("\n") + "\n" + MINING_HARNESS,
}

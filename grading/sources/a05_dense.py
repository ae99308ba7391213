"""Assignment source: a05_dense (see :mod:`grading.sources`)."""

from __future__ import annotations

from . import Exercise
from ._outputs import OutputExercise, harness

#: Cases of unet_weight_map: hand-made masks and random rectangles drawn from a seed.
WEIGHT_MAP_HELPERS = '''

def _rectangles(height, width, rectangles):
    """An instance mask: each (label, (row0, col0, row1, col1)) fills a rectangle."""
    mask = torch.zeros(height, width, dtype=torch.int64)
    for label, (row0, col0, row1, col1) in rectangles:
        mask[row0:row1, col0:col1] = label
    return mask


_TWO_CELLS = _rectangles(10, 12, [(1, (1, 1, 9, 5)), (2, (1, 6, 9, 11))])
_THREE_CELLS = _rectangles(12, 12, [(1, (1, 1, 5, 5)), (2, (1, 7, 5, 11)), (3, (7, 2, 11, 10))])

WEIGHT_MAP_EXAMPLES = [
    (
        "two cells one pixel apart, w0=0 (class balance only)",
        (torch.tensor([[1, 1, 0, 2, 2]]),),
        {"w0": 0.0},
    ),
    (
        "the same, sigma=1 and class_weights=(1, 1) (border term only)",
        (torch.tensor([[1, 1, 0, 2, 2]]),),
        {"sigma": 1.0, "class_weights": (1.0, 1.0)},
    ),
    ("two cells one pixel apart in a 10 x 12 image", (_TWO_CELLS,), {}),
    ("three cells, sigma=2: the border term uses the two nearest", (_THREE_CELLS,), {"sigma": 2.0}),
    ("a single cell: no border term", (_rectangles(6, 7, [(1, (1, 1, 4, 5))]),), {}),
    ("only background", (torch.zeros(4, 5, dtype=torch.int64),), {}),
    ("labels 3 and 7 (not consecutive)", (3 * _TWO_CELLS + (_TWO_CELLS == 2).long(),), {}),
    (
        "a batch (2, H, W): the class balance is per image",
        (torch.stack((_THREE_CELLS[:10, :12], (_TWO_CELLS > 0).long())),),
        {"sigma": 3.0},
    ),
]


def weight_map_cases(seed):
    """Masks of 2 to 5 random rectangles (later ones cover earlier ones)."""
    gen = torch.Generator().manual_seed(seed)

    def draw(high):
        return int(torch.randint(0, high, (), generator=gen))

    cases = []
    for k in range(4):
        masks = []
        for _ in range(1 + k % 2):
            mask = torch.zeros(14, 16, dtype=torch.int64)
            for label in range(1, 3 + draw(4)):
                row, col = draw(12), draw(14)
                mask[row : row + 2 + draw(4), col : col + 2 + draw(5)] = 3 * label
            masks.append(mask)
        mask = masks[0] if len(masks) == 1 else torch.stack(masks)
        w0 = 5 + 10 * float(torch.rand((), generator=gen))
        sigma = 1.5 + 4 * float(torch.rand((), generator=gen))
        kwargs = {"w0": w0, "sigma": sigma}
        if k == 3:
            kwargs["class_weights"] = (0.5, 2.0)
        label = f"random rectangles {tuple(mask.shape)}, w0={w0:.2f}, sigma={sigma:.2f}"
        cases.append((label + (", class_weights" if k == 3 else ""), (mask,), kwargs))
    return cases
'''

EXERCISES = [
    Exercise(
        function="weighted_pixel_cross_entropy",
        title="1. Pixel-wise weighted cross-entropy",
        task=r"""
For logits of shape `(N, C, H, W)` (or `(N, C, d1, ...)`, or `(N, C)`), class indices
`target` of shape `(N, H, W)` and a weight map `pixel_weight` $\omega$ of the same shape,
let $\ell_x = -w_{y_x} \log \mathrm{softmax}(\text{logits}_x)_{y_x}$ be the cross-entropy
of pixel $x$ (with the class weight $w_{y_x}$ when `weight` is given, else 1). Then

$$\mathcal{L}_{\mathrm{mean}} = \frac{\sum_x \omega(x)\, \ell_x}
{\sum_{x:\ y_x \ne \text{ignore}} \omega(x)}, \qquad
\mathcal{L}_{\mathrm{sum}} = \sum_x \omega(x)\, \ell_x,$$

and `"none"` returns $\omega(x)\,\ell_x$ per pixel. Pixels whose target is `ignore_index`
contribute 0 and are left out of the denominator; the class weights scale the loss but are
**not** in the denominator. When the denominator is 0 (every pixel ignored, every weight 0)
return 0 with a zero gradient. Use the log-sum-exp trick (`torch.logsumexp` or
`torch.log_softmax` are fine); `F.cross_entropy` and `F.nll_loss` are off limits.
""",
        signature=(
            "def weighted_pixel_cross_entropy(\n"
            '    logits, target, pixel_weight, weight=None, ignore_index=-100, reduction="mean"\n'
            "):"
        ),
        docstring="Pixel-wise cross-entropy weighted by a per-pixel weight map.",
        solution="""
    log_probs = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    kept = target != ignore_index
    safe_target = torch.where(kept, target, torch.zeros_like(target))
    loss = -log_probs.gather(1, safe_target.unsqueeze(1)).squeeze(1)
    if weight is not None:
        loss = loss * weight.to(logits.dtype)[safe_target]
    pixel_weight = torch.where(kept, pixel_weight.to(logits.dtype), torch.zeros_like(loss))
    weighted = torch.where(kept, pixel_weight * loss, torch.zeros_like(loss))
    if reduction != "mean":
        return reduce_loss(weighted, reduction)
    norm = pixel_weight.sum()
    safe_norm = torch.where(norm != 0, norm, torch.ones_like(norm))
    return torch.where(norm != 0, weighted.sum() / safe_norm, torch.zeros_like(norm))
""",
        forbid="[F.cross_entropy, F.nll_loss]",
        visible=[
            (
                "random",
                "Check weighted_pixel_cross_entropy on random maps and unit weights",
                ', cases=["random (2, 3, 4, 4), weights in [0.5, 3]", '
                '"pixel_weight all 1 (plain cross entropy)", "logits (N, C) = (6, 4)"]',
            ),
            (
                "ignored_and_reductions",
                "Check weighted_pixel_cross_entropy with ignored pixels, class weights and "
                "each reduction",
                ', cases=["ignored pixels (-100)", "class weights", "reduction=\'none\'", '
                '"reduction=\'sum\'", "every pixel ignored", "every pixel weight 0"]',
            ),
        ],
        hidden=[""],
    ),
    OutputExercise(
        function="unet_weight_map",
        title="2. The U-Net weight map",
        task=r"""
U-Net weights each pixel of an instance mask (0 = background, any positive integer = an
instance; labels need not be consecutive) by

$$\omega(x) = w_c(x) + w_0 \exp\!\Bigl(-\frac{(d_1(x) + d_2(x))^2}{2\sigma^2}\Bigr),$$

where $d_1(x)$ and $d_2(x)$ are the Euclidean distances (in pixels) from $x$ to the nearest
pixel of the nearest and of the second-nearest instance. As computed here:

* the border term is added on **background** pixels only, and only when the image holds at
  least 2 instances (and $w_0 > 0$);
* $w_c$ balances background and foreground **in each image**: $w_c(x) = n / (k\, n_{c(x)})$,
  with $n$ the number of pixels of the image, $n_c$ those of class $c$ (background, or any
  instance) and $k$ the number of classes present (1 or 2); `class_weights=(w_bg, w_fg)`
  replaces this balance by fixed weights.

`mask` is `(H, W)` or a batch `(N, H, W)` (each image on its own); return float32 weights
of the same shape. This is preprocessing, not a loss: Python loops over images and
instances, `.item()` and NumPy are fine, and `scipy.ndimage.distance_transform_edt` **is
allowed** (`distance_transform_edt(mask != k)` is the distance of every pixel to instance
`k`). Nothing is differentiated.
""",
        signature="def unet_weight_map(mask, w0=10.0, sigma=5.0, class_weights=None):",
        docstring="U-Net's pixel weight map (class balance plus border term) of instance masks.",
        solution="""
    from scipy.ndimage import distance_transform_edt

    maps = []
    for labels in mask.reshape(-1, *mask.shape[-2:]):
        foreground = labels > 0
        if class_weights is None:
            total = labels.numel()
            n_foreground = int(foreground.sum())
            n_background = total - n_foreground
            present = (n_foreground > 0) + (n_background > 0)
            w_foreground = total / (present * n_foreground) if n_foreground else 0.0
            w_background = total / (present * n_background) if n_background else 0.0
        else:
            w_background, w_foreground = class_weights
        weights = torch.where(foreground, w_foreground, w_background).float()
        instances = torch.unique(labels[foreground])
        if len(instances) >= 2 and w0 > 0:
            distances = torch.stack(
                [
                    torch.from_numpy(distance_transform_edt((labels != k).cpu().numpy()))
                    for k in instances
                ]
            )
            d1, d2 = distances.topk(2, dim=0, largest=False).values
            border = w0 * torch.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
            weights = weights + torch.where(foreground, 0.0, border).float()
        maps.append(weights)
    return torch.stack(maps).reshape(mask.shape).to(mask.device)
""",
        forbid="[]",
        visible=[
            (
                "examples",
                "Check unet_weight_map on small hand-made masks (see each case's name)",
                """
assert_outputs_match(
    unet_weight_map, "unet_weight_map", WEIGHT_MAP_EXAMPLES, forbid=[], rtol=1e-4, atol=1e-4
)
""",
            ),
            (
                "random",
                "Check unet_weight_map on masks of random rectangles",
                """
assert_outputs_match(
    unet_weight_map, "unet_weight_map", weight_map_cases(0), forbid=[], rtol=1e-4, atol=1e-4
)
""",
            ),
        ],
        hidden=[
            """
assert_outputs_match(
    unet_weight_map,
    "unet_weight_map",
    weight_map_cases(HIDDEN_SEED),
    forbid=[],
    rtol=1e-4,
    atol=1e-4,
)
"""
        ],
    ),
    Exercise(
        function="dice_loss",
        title="3. Soft Dice loss",
        task=r"""
For each sample $i$ and class (channel) $c$, with probabilities $p$ and target masks $g$
summed over the spatial positions $x$,

$$\ell_{i,c} = 1 - \frac{2 \sum_x p_{i,c,x}\, g_{i,c,x} + s}
{\sum_x p_{i,c,x} + \sum_x g_{i,c,x} + s}$$

with the smoothing constant $s$ (`smooth`) in the numerator **and** the denominator. The
target decides the activation:

* integer class indices `(N, d1, ...)` with scores `(N, C, d1, ...)`, $C \ge 2$: softmax over
  dim 1, and $g$ is the one-hot encoding of the target;
* a floating mask of the shape of the scores, or `(N, d1, ...)` for scores `(N, 1, d1, ...)`:
  a sigmoid per element (binary or multi-label segmentation).

`from_logits=False` takes probabilities as they are. `reduction="none"` returns the
`(N, C)` losses, `"mean"` and `"sum"` reduce them. With `smooth=0`, a 0/0 (nothing
predicted, nothing to find) is a perfect match: loss 0 with a zero gradient. Use soft
probabilities (no argmax or threshold) and the linear denominator
$\sum p + \sum g$ (not V-Net's squares). No torch function computes a Dice loss: only
`cvloss_ref` is off limits.
""",
        signature=(
            "def dice_loss(\n"
            '    logits_or_probs, target, smooth=1.0, from_logits=True, reduction="mean"\n'
            "):"
        ),
        docstring="Soft Dice loss, one term per sample and class.",
        solution="""
    scores = logits_or_probs
    if target.is_floating_point():
        truth = target if target.shape == scores.shape else target.unsqueeze(1)
        truth = truth.to(scores.dtype)
        probs = torch.sigmoid(scores) if from_logits else scores
    else:
        probs = torch.softmax(scores, dim=1) if from_logits else scores
        classes = torch.arange(scores.shape[1], device=target.device)
        classes = classes.view(1, -1, *([1] * (scores.dim() - 2)))
        truth = (target.unsqueeze(1) == classes).to(scores.dtype)
    overlap = probs * truth
    spatial = tuple(range(2, scores.dim()))
    if spatial:
        overlap, probs, truth = overlap.sum(spatial), probs.sum(spatial), truth.sum(spatial)
    numerator = 2 * overlap + smooth
    denominator = probs + truth + smooth
    positive = denominator > 0
    safe = torch.where(positive, denominator, torch.ones_like(denominator))
    dice = torch.where(positive, numerator / safe, torch.ones_like(numerator))
    return reduce_loss(1 - dice, reduction)
""",
        forbid="[]",
        visible=[
            (
                "multiclass",
                "Check dice_loss on multi-class logits, an absent class and probabilities",
                ', cases=["multi-class logits (2, 3, 4, 4)", "a class absent from the target", '
                '"probabilities (from_logits=False)", "reduction=\'none\' (N, C)"]',
            ),
            (
                "binary_and_empty",
                "Check dice_loss on binary and multi-label masks, empty masks and smooth=0",
                ', cases=["binary logits (2, 1, 4, 4), float mask", '
                '"binary logits (2, 1, 5, 5), mask (2, 5, 5)", '
                '"multi-label logits (2, 3, 4, 4), float masks", "empty masks", '
                '"nothing predicted, nothing to find", "smooth=0"]',
            ),
        ],
        hidden=[""],
    ),
]


ASSIGNMENT = {
    "notebook": "dense",
    "title": "Assignment 5: dense-prediction losses",
    "chapter": "../../book/pixel-losses.md",
    "chapter_title": "Pixel-wise losses for segmentation (Part IV)",
    "functions": "the pixel-wise weighted cross-entropy, U-Net's weight map and the soft Dice loss",
    "rules": "`F.cross_entropy` and `F.nll_loss` are off limits where an exercise says so, and "
    "so are the test helpers of this notebook.",
    "harness": harness(WEIGHT_MAP_HELPERS),
    "exercises": EXERCISES,
}

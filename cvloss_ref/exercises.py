"""Inputs for the course's exercises on functions that are not losses of the catalogue.

A non-maximum suppression, a weight map, a fitted line or a triplet miner has no
gradient to compare and no catalogue entry: the exercise notebooks check them with
:func:`cvloss_ref.testing.assert_outputs_match` on the cases built here, fixed ones in
the visible tests and ones drawn from the grading seed in the hidden tests::

    from cvloss_ref.exercises import nms_cases
    from cvloss_ref.testing import assert_outputs_match

    assert_outputs_match(diou_nms, "diou_nms", nms_cases(HIDDEN_SEED), forbid=[...])

Every function returns new tensors on the CPU and draws from its own
``torch.Generator``: the same seed gives the same cases on every machine, and the
global random state is left alone.  A case is an
:data:`~cvloss_ref.testing.OutputCase`, a triple ``(description, args, kwargs)``.

==========================  ===================================  =================
exercise                    cases                                 assignment
==========================  ===================================  =================
``weighted_reduce``          :func:`reduce_examples`,               a01_information
                            :func:`reduce_cases`
                            (expected: :func:`weighted_reduce`)
``numerical_gradient``      :func:`gradient_examples`,             a01_information
                            :func:`gradient_cases`
                            (expected: :func:`central_difference`)
``fit_line``                :func:`line_data`, :func:`line_cases`  a03_regression
                            (expected: :func:`exact_line_fit`)
``diou_nms``                :func:`nms_examples`, :func:`nms_cases`  a04_boxes
``unet_weight_map``         :func:`weight_map_examples`,           a05_dense
                            :func:`weight_map_cases`
``mine_triplets``           :func:`mining_batch`,                  a08_metric
                            :func:`mining_cases`
==========================  ===================================  =================
"""

from __future__ import annotations

import torch

from .testing import OutputCase

__all__ = [
    "LineRisk",
    "MeanHinge",
    "SoftmaxCrossEntropy",
    "central_difference",
    "exact_line_fit",
    "gradient_cases",
    "gradient_examples",
    "line_cases",
    "line_data",
    "mining_batch",
    "mining_cases",
    "nms_cases",
    "nms_examples",
    "reduce_cases",
    "reduce_examples",
    "weight_map_cases",
    "weight_map_examples",
    "weighted_reduce",
]


# --------------------------------------------------------------------------- fit_line


def line_data(
    seed: int = 0,
    n: int = 40,
    outliers: int = 4,
    slope: float = 2.0,
    intercept: float = 1.0,
    noise: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points on a line with noise, some of the rightmost ones moved far up.

    Args:
        seed: seeds the noise and the choice of outliers.
        n: the number of points; ``x`` is ``torch.linspace(-1, 1, n)``.
        outliers: how many of the rightmost ``n // 4`` points are moved up, each by
            15 to 25.
        slope, intercept, noise: ``y = slope * x + intercept + noise * N(0, 1)``.

    Returns:
        ``(x, y)``, float64 tensors of shape ``(n,)``.

    Example:
        >>> x, y = line_data(seed=0, outliers=0)
        >>> x.shape, y.dtype
        (torch.Size([40]), torch.float64)
        >>> bool(((y - (2 * x + 1)).abs() < 0.5).all())
        True
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.linspace(-1, 1, n, dtype=torch.float64)
    y = slope * x + intercept + noise * torch.randn(n, generator=gen, dtype=torch.float64)
    moved = n - 1 - torch.randperm(n // 4, generator=gen)[:outliers]
    y[moved] += 15 + 10 * torch.rand(len(moved), generator=gen, dtype=torch.float64)
    return x, y


def exact_line_fit(
    x: torch.Tensor,
    y: torch.Tensor,
    loss: str = "mse",
    delta: float = 1.0,
    steps: int = 500,
    lr: float = 0.5,
) -> torch.Tensor:
    """The minimiser ``(slope, intercept)`` of the mean loss of ``slope * x + intercept``.

    What gradient descent on the loss converges to, computed directly: least squares for
    ``loss="mse"``; for ``loss="huber"`` (threshold ``delta``), iteratively reweighted
    least squares (weight 1 within ``delta``, ``delta / |residual|`` beyond), 300 rounds.
    ``steps`` and ``lr`` are accepted for the signature of ``fit_line`` and ignored.

    Returns:
        A tensor ``[slope, intercept]`` in the dtype of ``x``.

    Example:
        >>> x = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
        >>> [round(value, 9) for value in exact_line_fit(x, 3 * x - 1).tolist()]
        [3.0, -1.0]
    """
    design = torch.stack((x, torch.ones_like(x)), dim=1)
    weights = torch.ones_like(x)
    for _ in range(1 if loss == "mse" else 300):
        root = weights.sqrt()[:, None]
        fit = torch.linalg.lstsq(design * root, y[:, None] * root).solution[:, 0]
        residual = (design @ fit - y).abs()
        weights = torch.where(residual <= delta, 1.0, delta / residual.clamp_min(1e-12))
    return fit


def line_cases(seed: int) -> list[OutputCase]:
    """Two data sets drawn from ``seed``, each to fit under the MSE and under Huber.

    Each data set has a random slope in ``[-3, 3]``, intercept in ``[-2, 2]``, 0 to 5
    outliers and 48 points (:func:`line_data`); the Huber case has a random ``delta`` in
    ``[0.5, 2]``.  Arguments are ``(x, y, loss)`` for ``fit_line(x, y, loss, delta)``.

    Example:
        >>> [description.split(", ")[-1][:5] for description, _, _ in line_cases(0)]
        ['MSE', 'Huber', 'MSE', 'Huber']
    """
    gen = torch.Generator().manual_seed(seed)
    cases: list[OutputCase] = []
    for k in range(2):
        slope = float(6 * torch.rand((), generator=gen) - 3)
        intercept = float(4 * torch.rand((), generator=gen) - 2)
        outliers = int(torch.randint(0, 6, (), generator=gen))
        delta = float(0.5 + 1.5 * torch.rand((), generator=gen))
        data = line_data(seed + k, 48, outliers, slope, intercept)
        label = f"slope {slope:.2f}, intercept {intercept:.2f}, {outliers} outliers"
        cases.append((f"{label}, MSE", (*data, "mse"), {}))
        cases.append((f"{label}, Huber delta={delta:.2f}", (*data, "huber"), {"delta": delta}))
    return cases


# --------------------------------------------------------------------------- diou_nms


def _boxes(rows: list[list[float]], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.tensor(rows, dtype=dtype).reshape(-1, 4)


def nms_examples() -> list[OutputCase]:
    """Small hand-made cases of ``diou_nms(boxes, scores, iou_threshold, ...)``.

    Each description says what the case tests: the distance penalty keeping a box that
    plain NMS removes, scores out of order, a chain of overlaps (greedy suppression),
    identical, point and zero-width boxes, the ``cxcywh`` format with ``beta``, and no
    boxes at all.

    Example:
        >>> description, (boxes, scores), kwargs = nms_examples()[0]
        >>> description
        'two boxes, threshold 0.52: DIoU 0.505 keeps both'
        >>> boxes.shape, kwargs
        (torch.Size([2, 4]), {'iou_threshold': 0.52})
    """
    return [
        (
            "two boxes, threshold 0.52: DIoU 0.505 keeps both",
            (_boxes([[0, 0, 10, 10], [3, 0, 13, 10]]), torch.tensor([0.9, 0.8])),
            {"iou_threshold": 0.52},
        ),
        (
            "the same two boxes, distance_penalty=False (plain NMS) suppresses one",
            (_boxes([[0, 0, 10, 10], [3, 0, 13, 10]]), torch.tensor([0.9, 0.8])),
            {"iou_threshold": 0.52, "distance_penalty": False},
        ),
        (
            "scores not in the order of the boxes",
            (
                _boxes([[0, 0, 10, 10], [1, 1, 11, 11], [30, 30, 40, 40], [31, 30, 41, 40]]),
                torch.tensor([0.3, 0.9, 0.5, 0.8]),
            ),
            {"iou_threshold": 0.5},
        ),
        (
            "a chain: A suppresses B, so C (which only B overlaps much) is kept",
            (
                _boxes([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]]),
                torch.tensor([0.9, 0.8, 0.7]),
            ),
            {"iou_threshold": 0.3},
        ),
        (
            "identical boxes, point boxes and a zero-width box",
            (
                _boxes([[5, 5, 15, 15], [5, 5, 15, 15], [2, 2, 2, 2], [2, 2, 2, 2], [6, 0, 6, 9]]),
                torch.tensor([0.6, 0.7, 0.5, 0.4, 0.9]),
            ),
            {"iou_threshold": 0.5},
        ),
        (
            "boxes in cxcywh format, beta=0.6",
            (
                _boxes([[5, 5, 10, 10], [7, 5, 10, 10], [9, 6, 8, 12], [30, 30, 4, 4]]),
                torch.tensor([0.9, 0.8, 0.7, 0.6]),
            ),
            {"iou_threshold": 0.4, "beta": 0.6, "box_format": "cxcywh"},
        ),
        ("no boxes", (torch.zeros(0, 4), torch.zeros(0)), {"iou_threshold": 0.5}),
    ]


def nms_cases(seed: int) -> list[OutputCase]:
    """Six sets of 15 float64 boxes with random scores, as a detector outputs them.

    Five are 3 clusters of 5 overlapping boxes (centres within a quarter of the box size,
    sizes within ``exp(±0.2)``), under various thresholds, ``beta``, plain NMS and the
    ``cxcywh`` format; the last is a row of 15 boxes, each overlapping the next ones, so
    that suppressions chain.

    Example:
        >>> cases = nms_cases(0)
        >>> len(cases), cases[0][1][0].shape, cases[4][2]
        (6, torch.Size([15, 4]), {'iou_threshold': 0.5, 'box_format': 'cxcywh'})
    """
    gen = torch.Generator().manual_seed(seed)
    settings = [
        {"iou_threshold": 0.5},
        {"iou_threshold": 0.35},
        {"iou_threshold": 0.45, "distance_penalty": False},
        {"iou_threshold": 0.4, "beta": 0.6},
        {"iou_threshold": 0.5, "box_format": "cxcywh"},
        {"iou_threshold": 0.4},
    ]
    cases: list[OutputCase] = []
    for k, kwargs in enumerate(settings):
        centre = 100 * torch.rand(3, 1, 2, generator=gen, dtype=torch.float64)
        size = 20 + 20 * torch.rand(3, 1, 2, generator=gen, dtype=torch.float64)
        shift = 0.25 * size * (2 * torch.rand(3, 5, 2, generator=gen, dtype=torch.float64) - 1)
        scale = torch.exp(0.2 * (2 * torch.rand(3, 5, 2, generator=gen, dtype=torch.float64) - 1))
        centres, sizes = (centre + shift).reshape(-1, 2), (size * scale).reshape(-1, 2)
        if k == len(settings) - 1:  # a row of boxes, each overlapping the next ones: chains
            steps = 1.5 + 2.5 * torch.rand(15, generator=gen, dtype=torch.float64)
            centres = torch.stack((steps.cumsum(0), torch.zeros(15, dtype=torch.float64)), -1)
            sizes = torch.full((15, 2), 10.0, dtype=torch.float64)
        if kwargs.get("box_format") == "cxcywh":
            boxes = torch.cat((centres, sizes), dim=-1)
        else:
            boxes = torch.cat((centres - sizes / 2, centres + sizes / 2), dim=-1)
        scores = torch.rand(15, generator=gen, dtype=torch.float64)
        options = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
        what = "a row of 15 boxes" if k == len(settings) - 1 else "3 clusters of 5 boxes"
        cases.append((f"{what} ({k + 1}), {options}", (boxes, scores), kwargs))
    return cases


# --------------------------------------------------------------------------- unet_weight_map


def _rectangles(
    height: int, width: int, rectangles: list[tuple[int, tuple[int, int, int, int]]]
) -> torch.Tensor:
    """An instance mask: each ``(label, (row0, col0, row1, col1))`` fills a rectangle."""
    mask = torch.zeros(height, width, dtype=torch.int64)
    for label, (row0, col0, row1, col1) in rectangles:
        mask[row0:row1, col0:col1] = label
    return mask


def weight_map_examples() -> list[OutputCase]:
    """Small hand-made instance masks for ``unet_weight_map(mask, w0, sigma, ...)``.

    Two cells one pixel apart (with the class balance only, the border term only, and
    both), three cells, a single cell, only background, labels that are not consecutive
    and a batch of two masks.

    Example:
        >>> description, (mask,), kwargs = weight_map_examples()[2]
        >>> description, tuple(mask.shape), mask.unique().tolist()
        ('two cells one pixel apart in a 10 x 12 image', (10, 12), [0, 1, 2])
    """
    two_cells = _rectangles(10, 12, [(1, (1, 1, 9, 5)), (2, (1, 6, 9, 11))])
    three_cells = _rectangles(12, 12, [(1, (1, 1, 5, 5)), (2, (1, 7, 5, 11)), (3, (7, 2, 11, 10))])
    return [
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
        ("two cells one pixel apart in a 10 x 12 image", (two_cells,), {}),
        (
            "three cells, sigma=2: the border term uses the two nearest",
            (three_cells,),
            {"sigma": 2.0},
        ),
        ("a single cell: no border term", (_rectangles(6, 7, [(1, (1, 1, 4, 5))]),), {}),
        ("only background", (torch.zeros(4, 5, dtype=torch.int64),), {}),
        ("labels 3 and 7 (not consecutive)", (3 * two_cells + (two_cells == 2).long(),), {}),
        (
            "a batch (2, H, W): the class balance is per image",
            (torch.stack((three_cells[:10, :12], (two_cells > 0).long())),),
            {"sigma": 3.0},
        ),
    ]


def weight_map_cases(seed: int) -> list[OutputCase]:
    """Four masks of 2 to 5 random rectangles (later ones cover earlier ones), drawn
    from ``seed``, two of them batches of 2, with random ``w0`` in ``[5, 15]`` and
    ``sigma`` in ``[1.5, 5.5]``; the last one with ``class_weights=(0.5, 2.0)``.

    Example:
        >>> [tuple(mask.shape) for _, (mask,), _ in weight_map_cases(0)]
        [(14, 16), (2, 14, 16), (14, 16), (2, 14, 16)]
    """
    gen = torch.Generator().manual_seed(seed)

    def draw(high: int) -> int:
        return int(torch.randint(0, high, (), generator=gen))

    cases: list[OutputCase] = []
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
        kwargs: dict = {"w0": w0, "sigma": sigma}
        if k == 3:
            kwargs["class_weights"] = (0.5, 2.0)
        label = f"random rectangles {tuple(mask.shape)}, w0={w0:.2f}, sigma={sigma:.2f}"
        cases.append((label + (", class_weights" if k == 3 else ""), (mask,), kwargs))
    return cases


# --------------------------------------------------------------------------- mine_triplets


def mining_batch(
    seed: int, batch: int, dim: int = 4, classes: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clustered embeddings and their labels, drawn from ``seed``.

    Each of ``classes`` centres is drawn from ``N(0, 1.5²)`` per coordinate; each
    embedding is its class's centre plus ``N(0, 1)`` noise.

    Returns:
        float64 embeddings ``(batch, dim)`` and int64 labels ``(batch,)`` in
        ``[0, classes)``.

    Example:
        >>> embeddings, labels = mining_batch(0, 12, classes=3)
        >>> tuple(embeddings.shape), embeddings.dtype, int(labels.max()) < 3
        ((12, 4), torch.float64, True)
    """
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (batch,), generator=generator)
    centres = 1.5 * torch.randn(classes, dim, generator=generator, dtype=torch.float64)
    noise = torch.randn(batch, dim, generator=generator, dtype=torch.float64)
    return centres[labels] + noise, labels


def mining_cases(seed: int) -> list[OutputCase]:
    """Batches of 10, 24, 40 and 33 embeddings (2, 3, 6 and 12 classes) drawn from
    ``seed``, each mined with ``strategy="hard"`` and with ``"semihard"`` at a random
    margin in ``[0.1, 2.1]``.

    Example:
        >>> cases = mining_cases(0)
        >>> len(cases), cases[0][0], cases[1][2]["strategy"]
        (8, 'B = 10, hard', 'semihard')
    """
    cases: list[OutputCase] = []
    for k, (batch, classes) in enumerate([(10, 2), (24, 3), (40, 6), (33, 12)]):
        embeddings, labels = mining_batch(seed + k, batch, classes=classes)
        generator = torch.Generator().manual_seed(seed + k)
        margin = 0.1 + 2 * torch.rand(1, generator=generator).item()
        cases.append((f"B = {batch}, hard", (embeddings, labels), {"strategy": "hard"}))
        semihard = {"strategy": "semihard", "margin": margin}
        cases.append((f"B = {batch}, margin {margin:.3f}", (embeddings, labels), semihard))
    return cases


# --------------------------------------------------------------------- weighted_reduce


def weighted_reduce(
    values: torch.Tensor, reduction: str = "mean", weight: torch.Tensor | None = None
) -> torch.Tensor:
    r"""The reduction of per-example losses, optionally weighted (the reference of the
    ``weighted_reduce`` exercise).

    .. math::

        \texttt{"none"}: w_i \ell_i, \qquad \texttt{"sum"}: \sum_i w_i \ell_i, \qquad
        \texttt{"mean"}: \frac{\sum_i w_i \ell_i}{\sum_i w_i}

    without ``weight`` every :math:`w_i` is 1 (the mean divides by the number of
    elements).  Where the denominator is 0 (no element, or every weight 0: every target
    ignored) the mean is 0, with a zero gradient (a double ``torch.where``), not 0/0.

    Args:
        values: per-example losses, any shape.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        weight: ``None`` or non-negative weights of the shape of ``values``.

    Returns:
        ``values`` weighted for ``"none"``, else a scalar, in the dtype of ``values``.

    Example:
        >>> values = torch.tensor([1.0, 2.0, 4.0])
        >>> weighted_reduce(values, "mean", torch.tensor([1.0, 1.0, 0.0]))
        tensor(1.5000)
        >>> weighted_reduce(values, "mean", torch.zeros(3))
        tensor(0.)
    """
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    weighted = values if weight is None else values * weight
    if reduction == "none":
        return weighted
    total = weighted.sum()
    if reduction == "sum":
        return total
    norm = values.new_tensor(values.numel()) if weight is None else weight.sum().to(values.dtype)
    nonzero = norm != 0
    return torch.where(nonzero, total / torch.where(nonzero, norm, 1.0), 0.0)


def _losses(generator: torch.Generator, *shape: int, dtype=torch.float64) -> torch.Tensor:
    """Non-negative per-example losses."""
    return 3 * torch.rand(*shape, generator=generator, dtype=torch.float64).to(dtype)


def _weights(generator: torch.Generator, *shape: int, zeros: float = 0.0) -> torch.Tensor:
    """Weights in [0.2, 3], a fraction ``zeros`` of them set to 0 (ignored examples)."""
    weight = 0.2 + 2.8 * torch.rand(*shape, generator=generator, dtype=torch.float64)
    ignored = torch.rand(*shape, generator=generator, dtype=torch.float64) < zeros
    return torch.where(ignored, 0.0, weight)


def reduce_examples() -> list[OutputCase]:
    """Fixed cases of ``weighted_reduce(values, reduction, weight)``: each reduction with
    and without weights, weights with zeros, every weight zero, an empty batch, losses per
    pixel and float32 losses.

    Example:
        >>> [description for description, _, _ in reduce_examples()][:2]
        ['mean of 8 losses', "reduction='sum'"]
    """
    g = torch.Generator().manual_seed(0)
    some_zero = _weights(g, 8, zeros=0.4)
    some_zero[0] = 0.0
    return [
        ("mean of 8 losses", (_losses(g, 8),), {}),
        ("reduction='sum'", (_losses(g, 8), "sum"), {}),
        ("reduction='none' keeps the shape (2, 3)", (_losses(g, 2, 3), "none"), {}),
        ("empty batch: the mean is 0, not 0/0", (torch.zeros(0, dtype=torch.float64),), {}),
        ("empty batch, reduction='sum'", (torch.zeros(0, dtype=torch.float64), "sum"), {}),
        (
            "weighted mean: divide by the sum of the weights",
            (_losses(g, 8),),
            {"weight": _weights(g, 8)},
        ),
        ("weights with zeros (ignored examples)", (_losses(g, 8), "mean", some_zero), {}),
        (
            "every weight 0 (every target ignored): 0, not 0/0",
            (_losses(g, 5), "mean", torch.zeros(5, dtype=torch.float64)),
            {},
        ),
        ("weighted, reduction='sum'", (_losses(g, 6), "sum"), {"weight": _weights(g, 6)}),
        ("weighted, reduction='none'", (_losses(g, 6), "none"), {"weight": _weights(g, 6)}),
        (
            "per-pixel losses (2, 3, 3) with per-pixel weights",
            (_losses(g, 2, 3, 3),),
            {"weight": _weights(g, 2, 3, 3, zeros=0.3)},
        ),
        ("float32 losses: the result keeps their dtype", (_losses(g, 7, dtype=torch.float32),), {}),
    ]


def reduce_cases(seed: int) -> list[OutputCase]:
    """Cases of ``weighted_reduce`` drawn from ``seed``: random shapes, each reduction
    with and without weights (some of them 0), one mean whose weights are all 0 and one
    empty batch.

    Example:
        >>> len(reduce_cases(0)), reduce_cases(0)[-1][0]
        (8, 'empty batch (0, 3)')
    """
    g = torch.Generator().manual_seed(seed)
    cases: list[OutputCase] = []
    for reduction in ("none", "mean", "sum"):
        shape = tuple(int(n) for n in torch.randint(1, 6, (2,), generator=g))
        label = f"losses {shape}, reduction={reduction!r}"
        cases.append((label, (_losses(g, *shape), reduction), {}))
        weight = _weights(g, *shape, zeros=0.3)
        cases.append((f"{label}, weighted", (_losses(g, *shape), reduction), {"weight": weight}))
    zero = torch.zeros(4, dtype=torch.float64)
    cases.append(("every weight 0", (_losses(g, 4), "mean"), {"weight": zero}))
    cases.append(("empty batch (0, 3)", (torch.zeros(0, 3, dtype=torch.float64),), {}))
    return cases


# ------------------------------------------------------------------ numerical_gradient


def central_difference(f, x: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    r"""The central-difference estimate of the gradient of a scalar function (the reference
    of the ``numerical_gradient`` exercise).

    .. math:: g_i = \frac{f(x + h\,e_i) - f(x - h\,e_i)}{2h}

    for every element :math:`i` of ``x`` (:math:`e_i` the unit tensor of element
    :math:`i`): :math:`2 \times` ``x.numel()`` evaluations of ``f``.  Its truncation error
    is of order :math:`h^2`; at a kink it gives the mean of the two one-sided slopes.

    Args:
        f: a function of a tensor of the shape of ``x`` that returns a scalar tensor.
        x: the point, any shape (float64 for a precise estimate).
        h: the step.

    Returns:
        The estimate, the shape and dtype of ``x``.

    Example:
        >>> x = torch.tensor([1.0, -2.0], dtype=torch.float64)
        >>> central_difference(lambda t: (t**3).sum(), x, h=0.1)  # 3 x**2 + h**2
        tensor([ 3.0100, 12.0100], dtype=torch.float64)
    """
    grad = torch.zeros_like(x)
    for i in range(x.numel()):
        step = torch.zeros_like(x)
        step.view(-1)[i] = h
        grad.view(-1)[i] = (f(x + step) - f(x - step)) / (2 * h)
    return grad


class LineRisk:
    """The mean squared error of the line ``theta[0] * x + theta[1]`` on the points
    ``(x, y)``, as a function of ``theta`` (the line of "What a loss function is")."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x = x
        self.y = y

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        return ((theta[0] * self.x + theta[1] - self.y) ** 2).mean()


class SoftmaxCrossEntropy:
    """The mean softmax cross-entropy of logits ``(N, C)`` against fixed class indices."""

    def __init__(self, labels: torch.Tensor) -> None:
        self.labels = labels

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        true_logit = logits.gather(1, self.labels[:, None])[:, 0]
        return (torch.logsumexp(logits, dim=1) - true_logit).mean()


class MeanHinge:
    """The mean hinge loss ``max(0, margin - y * s)`` of scores ``s`` against labels ±1."""

    def __init__(self, target: torch.Tensor, margin: float = 1.0) -> None:
        self.target = target
        self.margin = margin

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.margin - self.target * scores).mean()


def gradient_examples() -> list[OutputCase]:
    """Fixed cases of ``numerical_gradient(f, x, h)``: the risk of a line (quadratic, so
    the central difference is exact), a cross-entropy with the default and with a large
    step (where it differs from the derivative by about :math:`h^2 f'''/6`), a hinge at its
    kink (the mean of the two slopes) and a single logit.

    Example:
        >>> description, (f, x), kwargs = gradient_examples()[0]
        >>> description, tuple(x.shape), kwargs
        ('MSE of a line at (w, b) = (0.5, 0)', (2,), {})
    """
    g = torch.Generator().manual_seed(0)
    x = 2 * torch.rand(16, generator=g, dtype=torch.float64) - 1
    y = 2 * x - 0.5 + 0.1 * torch.randn(16, generator=g, dtype=torch.float64)
    line = LineRisk(x, y)
    labels = torch.tensor([0, 2, 1, 2])
    logits = torch.randn(4, 3, generator=g, dtype=torch.float64)
    signs = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0], dtype=torch.float64)
    # y * s = 1 (the margin) for the first two: a kink, where the slopes are 0 and -y.
    scores = torch.tensor([1.0, -1.0, 0.3, 2.0, -0.5], dtype=torch.float64)
    return [
        (
            "MSE of a line at (w, b) = (0.5, 0)",
            (line, torch.tensor([0.5, 0.0], dtype=torch.float64)),
            {},
        ),
        ("cross-entropy of logits (4, 3)", (SoftmaxCrossEntropy(labels), logits), {}),
        (
            "cross-entropy with the large step h=0.1 (the difference quotient, not the derivative)",
            (SoftmaxCrossEntropy(labels), logits),
            {"h": 0.1},
        ),
        ("hinge at its kink: the mean of the two slopes", (MeanHinge(signs), scores), {}),
        (
            "one example of 2 classes, h=1e-4",
            (
                SoftmaxCrossEntropy(torch.tensor([1])),
                torch.tensor([[2.0, -1.0]], dtype=torch.float64),
            ),
            {"h": 1e-4},
        ),
    ]


def gradient_cases(seed: int) -> list[OutputCase]:
    """Cases of ``numerical_gradient`` drawn from ``seed``: the risk of a random line at a
    random point, cross-entropies of random logits with a large step (in ``[0.05, 0.2]``,
    where the difference quotient is not the derivative) and a small one (in
    ``[1e-6, 1e-4]``), and a hinge with some scores at its kink.

    Example:
        >>> [description[:13] for description, _, _ in gradient_cases(0)]
        ['MSE of a line', 'cross-entropy', 'cross-entropy', 'hinge, 3 of 7']
    """
    g = torch.Generator().manual_seed(seed)

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=g, dtype=torch.float64))

    slope, intercept = uniform(-2, 2), uniform(-2, 2)
    x = 2 * torch.rand(12, generator=g, dtype=torch.float64) - 1
    y = slope * x + intercept + 0.1 * torch.randn(12, generator=g, dtype=torch.float64)
    theta = 2 * torch.randn(2, generator=g, dtype=torch.float64)
    cases: list[OutputCase] = [(f"MSE of a line, slope {slope:.2f}", (LineRisk(x, y), theta), {})]
    for (n, c), h in [((5, 4), uniform(0.05, 0.2)), ((3, 6), 10 ** uniform(-6, -4))]:
        labels = torch.randint(0, c, (n,), generator=g)
        logits = 2 * torch.randn(n, c, generator=g, dtype=torch.float64)
        f = SoftmaxCrossEntropy(labels)
        cases.append((f"cross-entropy of logits ({n}, {c}), h={h:.2g}", (f, logits), {"h": h}))
    signs = (2 * torch.randint(0, 2, (7,), generator=g) - 1).to(torch.float64)
    scores = 3 * torch.rand(7, generator=g, dtype=torch.float64) - 1.5
    scores[:3] = signs[:3]  # y * s = 1, the margin: the hinge's kink
    cases.append(("hinge, 3 of 7 scores at the margin", (MeanHinge(signs), scores), {}))
    return cases

"""Relative accuracy of every path of the losses where their exact values are small.

A loss of a confident, correct prediction is tiny (:math:`\\log(1 + e^{-x})` at
:math:`x = 15` is :math:`3.06 \\cdot 10^{-7}`), and so are the losses of two boxes a
hair apart or two embeddings at a near-zero distance.  Those values can be computed to
a few units in the last place (ulp) of the dtype; a formula that forms ``1 - p`` or
``log(sigmoid(x))`` loses every digit of them instead.  Each test evaluates the loss and
its gradient on a grid of such inputs, on each path the package takes (the fast path
with a hand-written gradient, the ``no_grad`` path, the autograd composition taken when
the target needs a gradient, float32 and float64), and compares them with the
definition evaluated in 360-digit arithmetic (``mpmath``), gradients by ``mpmath.diff``.

The tolerance: :data:`ULPS` units of the dtype's epsilon relative to the exact value
where that is a normal number; below the smallest normal number (float32 beyond
:math:`|x| \\approx 87`), where the exact value is not representable to full precision,
an absolute error up to the smallest normal number.

Known gaps are marked ``xfail(strict=True)`` with their cause, so that a fix shows up
as an unexpected pass.
"""

from __future__ import annotations

import math

import mpmath
import pytest
import torch

import cvloss_ref as cv
from cvloss_ref import _numerics, boxes

# 1 - p_y of a float64 logit of 700 is e^{-700}: the definitions are evaluated with
# enough digits to hold it next to 1.
DIGITS = 360

#: Allowed error, in units of the dtype's epsilon relative to the exact value.
ULPS = 16

# Confident logits: the loss of the right class is about e^{-x}.  float32 reaches the
# subnormal range beyond x = 87 (the values from there on are judged absolutely).
CONFIDENT = {
    torch.float32: [15.0, 16.0, 17.5, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 87.0, 100.0],
    torch.float64: [30.0, 35.0, 40.0, 50.0, 75.0, 100.0, 200.0, 300.0, 500.0, 600.0, 700.0],
}
MODERATE = [-12.0, -7.5, -3.0, -1.0, -0.25, 0.0, 0.25, 1.0, 3.0, 7.5, 12.0]
DTYPES = [torch.float32, torch.float64]


def assert_accurate(
    got: torch.Tensor,
    exact: list[float],
    dtype: torch.dtype,
    what: str,
    scale: list[float] | None = None,
) -> None:
    """``got`` within :data:`ULPS` epsilons of ``exact`` (relative), or within the
    smallest normal number of it where ``exact`` is below that.  With ``scale``, the
    error is judged relative to ``max(|exact|, scale)``: the size of the terms whose
    sum (with cancellation) the exact value is."""
    finfo = torch.finfo(dtype)
    got = got.detach().double().flatten()
    want = torch.tensor(exact, dtype=torch.float64).flatten()
    size = want.abs()
    if scale is not None:
        size = torch.maximum(size, torch.tensor(scale, dtype=torch.float64).flatten())
    bound = torch.where(size >= finfo.tiny, ULPS * finfo.eps * size, finfo.tiny)
    error = (got - want).abs()
    bad = ~(error <= bound)
    if bad.any():
        i = int(bad.nonzero()[0])
        rel = float(error[i] / size[i]) if size[i] != 0 else float("inf")
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.numel()} values off; first at index {i}: "
            f"got {float(got[i]):.10g}, exact {float(want[i]):.10g} "
            f"(relative error {rel:.3g}, {rel / finfo.eps:.3g} eps; allowed {ULPS} eps)"
        )


def _mp(value: float) -> mpmath.mpf:
    return mpmath.mpf(float(value))


# ------------------------------------------------------------------ sigmoid losses


def _softplus(z: mpmath.mpf) -> mpmath.mpf:
    return mpmath.log1p(mpmath.exp(z))


def _focal_exact(x: float, y: float, alpha: float, gamma: float) -> tuple[float, float]:
    """Sigmoid focal loss from its definition (Lin et al. 2017, soft targets as in
    torchvision) and its derivative in the logit."""
    y = _mp(y)

    def loss(z):
        p = 1 / (1 + mpmath.exp(-z))
        p_bar = 1 / (1 + mpmath.exp(z))
        bce = y * _softplus(-z) + (1 - y) * _softplus(z)  # -[y log p + (1 - y) log(1 - p)]
        q = y * p_bar + (1 - y) * p  # 1 - p_t
        value = bce if gamma == 0 else q ** _mp(gamma) * bce
        if alpha >= 0:
            value = (_mp(alpha) * y + (1 - _mp(alpha)) * (1 - y)) * value
        return value

    with mpmath.workdps(DIGITS):
        z = _mp(x)
        return float(loss(z)), float(mpmath.diff(loss, z))


def _logit_grid(dtype: torch.dtype) -> tuple[list[float], list[float]]:
    """(logits, targets): confident and right (x with 1, -x with 0), confident and
    wrong, moderate logits with hard and soft targets."""
    confident = CONFIDENT[dtype]
    logits = confident + [-x for x in confident] + [-x for x in confident[:3]] + MODERATE * 3
    targets = (
        [1.0] * len(confident)
        + [0.0] * len(confident)
        + [1.0] * 3
        + [1.0] * len(MODERATE)
        + [0.0] * len(MODERATE)
        + [0.3] * len(MODERATE)
    )
    return logits, targets


# "fast_log1p" and "fast_kahan": the fast path with each form of log(1 - s), whichever
# this CPU computes faster (cvloss_ref._numerics.log1p_is_faster).


def _force_log1p_form(monkeypatch, dtype: torch.dtype, use_log1p: bool) -> None:
    """Every CPU log1p of ``dtype`` in the package in one form, whatever its size."""
    monkeypatch.setattr(_numerics, "KAHAN_MIN_ELEMENTS", 0)
    monkeypatch.setitem(_numerics._LOG1P_FASTER, dtype, use_log1p)


FOCAL_PATHS = ["fast_log1p", "fast_kahan", "no_grad", "target_grad"]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("path", FOCAL_PATHS)
@pytest.mark.parametrize(("alpha", "gamma"), [(-1.0, 0.0), (0.25, 0.0), (0.25, 0.5), (0.25, 2.0)])
def test_sigmoid_focal_loss_is_accurate_at_confident_logits(dtype, path, alpha, gamma, monkeypatch):
    if path.startswith("fast_"):
        _force_log1p_form(monkeypatch, dtype, path == "fast_log1p")
    logits, targets = _logit_grid(dtype)
    x = torch.tensor(logits, dtype=dtype, requires_grad=path != "no_grad")
    y = torch.tensor(targets, dtype=dtype, requires_grad=path == "target_grad")
    exact = [_focal_exact(a, b, alpha, gamma) for a, b in zip(logits, targets, strict=True)]
    if path == "no_grad":
        with torch.no_grad():
            loss = cv.sigmoid_focal_loss(x, y, alpha, gamma, reduction="none")
    else:
        loss = cv.sigmoid_focal_loss(x, y, alpha, gamma, reduction="none")
        (grad,) = torch.autograd.grad(loss.sum(), x)
        assert_accurate(grad, [g for _, g in exact], dtype, f"{path} gradient")
    assert_accurate(loss, [v for v, _ in exact], dtype, f"{path} value")


BCE_PATHS = ["fast_log1p", "fast_kahan", "weighted", "no_grad"]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("path", BCE_PATHS)
def test_binary_cross_entropy_with_logits_is_accurate_at_confident_logits(dtype, path, monkeypatch):
    if path.startswith("fast_"):
        _force_log1p_form(monkeypatch, dtype, path == "fast_log1p")
    logits, targets = _logit_grid(dtype)
    x = torch.tensor(logits, dtype=dtype, requires_grad=path != "no_grad")
    y = torch.tensor(targets, dtype=dtype)
    weight = torch.ones_like(y) if path == "weighted" else None
    exact = [_focal_exact(a, b, -1.0, 0.0) for a, b in zip(logits, targets, strict=True)]
    with torch.set_grad_enabled(path != "no_grad"):
        loss = cv.binary_cross_entropy_with_logits(x, y, weight, reduction="none")
    if path != "no_grad":
        (grad,) = torch.autograd.grad(loss.sum(), x)
        assert_accurate(grad, [g for _, g in exact], dtype, f"{path} gradient")
    assert_accurate(loss, [v for v, _ in exact], dtype, f"{path} value")


# ------------------------------------------------------------------ softmax losses

# Rows (x, 0, -1) with class 0 the target: p_0 -> 1 as x grows, -log p_0 ~ e^{-x}.
SOFTMAX_TAIL = (0.0, -1.0)


def _softmax_rows(dtype: torch.dtype) -> list[list[float]]:
    return [[x, *SOFTMAX_TAIL] for x in CONFIDENT[dtype]] + [[x, *SOFTMAX_TAIL] for x in MODERATE]


def _mp_gradient(loss, z: list) -> list[float]:
    """The gradient of ``loss(*z)`` by mpmath's differentiation, one partial at a time
    (at the working precision of the caller)."""
    grad = []
    for c in range(len(z)):
        order = [0] * len(z)
        order[c] = 1
        grad.append(float(mpmath.diff(loss, z, tuple(order))))
    return grad


def _softmax_focal_exact(row: list[float], target: int, gamma: float) -> tuple[float, list[float]]:
    """(1 - p_y)^gamma (-log p_y) from the softmax's definition, and its gradient."""

    def loss(*z):
        total = mpmath.fsum(mpmath.exp(v) for v in z)
        p_y = mpmath.exp(z[target]) / total
        rest = mpmath.fsum(mpmath.exp(v) for c, v in enumerate(z) if c != target) / total
        nll = -mpmath.log(p_y)
        return nll if gamma == 0 else rest ** _mp(gamma) * nll

    with mpmath.workdps(DIGITS):
        z = [_mp(v) for v in row]
        return float(loss(*z)), _mp_gradient(loss, z)


def _cross_entropy_exact(
    row: list[float], target: int, weight: list[float] | None, smoothing: float
) -> tuple[float, list[float], list[float]]:
    """F.cross_entropy's definition for one sample, (1 - eps) w_y (-log p_y) +
    (eps / C) sum_c w_c (-log p_c), with -log p_c = logsumexp(z) - z_c in 360 digits;
    its gradient; and the size of the gradient's terms, (1 - eps) w_y |p_c - [c = y]|
    + (eps / C)(W p_c + w_c): with smoothing the terms cancel where the two parts of
    the loss balance, and no formula evaluated in the dtype keeps more than the
    terms' relative accuracy there (without smoothing the size is the gradient's)."""
    weight = weight or [1.0] * len(row)
    eps = _mp(smoothing)

    def loss(*z):
        log_total = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in z))
        neg_log_p = [log_total - v for v in z]
        spread = mpmath.fsum(_mp(w) * v for w, v in zip(weight, neg_log_p, strict=True))
        return (1 - eps) * _mp(weight[target]) * neg_log_p[target] + eps / len(z) * spread

    with mpmath.workdps(DIGITS):
        z = [_mp(v) for v in row]
        grad = _mp_gradient(loss, z)
        total = mpmath.fsum(mpmath.exp(v) for v in z)
        p = [mpmath.exp(v) / total for v in z]
        w_sum = mpmath.fsum(_mp(w) for w in weight)
        size = [
            float(
                (1 - eps) * _mp(weight[target]) * abs(p[c] - (c == target))
                + eps / len(z) * (w_sum * p[c] + _mp(weight[c]))
            )
            for c in range(len(z))
        ]
        return float(loss(*z)), grad, size


def _cross_entropy_grid(dtype: torch.dtype) -> tuple[list[list[float]], list[int]]:
    """Rows (x, 0, -1): confident and right (target 0), confident and wrong (target 1,
    whose p_y underflows in float32 beyond x = 87), and moderate logits (target 0)."""
    confident = [[x, *SOFTMAX_TAIL] for x in CONFIDENT[dtype]]
    moderate = [[x, *SOFTMAX_TAIL] for x in MODERATE]
    rows = confident + confident + moderate
    targets = [0] * len(confident) + [1] * len(confident) + [0] * len(moderate)
    return rows, targets


CLASS_WEIGHT = [0.5, 2.0, 3.0]


def _one_hot(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.one_hot(t, x.shape[1]).to(x.dtype)


def _spatial(x: torch.Tensor, t: torch.Tensor, **kwargs) -> torch.Tensor:
    """The samples as the pixels of one (1, C, N) map."""
    loss = cv.cross_entropy(x.T.unsqueeze(0), t.unsqueeze(0), reduction="none", **kwargs)
    return loss.squeeze(0)


# name: (per-sample loss of (N, C) logits and class indices, class weights, smoothing)
CROSS_ENTROPY_PATHS = {
    # (N, C) float logits and long indices: the common call, checked in microseconds.
    "fast": (lambda x, t: cv.cross_entropy(x, t, reduction="none"), None, 0.0),
    "fast, smoothing": (
        lambda x, t: cv.cross_entropy(x, t, label_smoothing=0.1, reduction="none"),
        None,
        0.1,
    ),
    # Any other index dtype goes through the full checks.
    "int32 target": (lambda x, t: cv.cross_entropy(x, t.int(), reduction="none"), None, 0.0),
    "class weights": (
        lambda x, t: cv.cross_entropy(
            x, t, weight=torch.tensor(CLASS_WEIGHT, dtype=x.dtype), reduction="none"
        ),
        CLASS_WEIGHT,
        0.0,
    ),
    "class weights, smoothing, ignore_index": (
        lambda x, t: cv.cross_entropy(
            x,
            t,
            weight=torch.tensor(CLASS_WEIGHT, dtype=x.dtype),
            ignore_index=7,
            label_smoothing=0.25,
            reduction="none",
        ),
        CLASS_WEIGHT,
        0.25,
    ),
    "spatial (1, C, N)": (_spatial, None, 0.0),
    "spatial, smoothing": (lambda x, t: _spatial(x, t, label_smoothing=0.1), None, 0.1),
    "unbatched": (
        lambda x, t: torch.stack([cv.cross_entropy(row, y) for row, y in zip(x, t, strict=True)]),
        None,
        0.0,
    ),
    "probability target": (
        lambda x, t: cv.cross_entropy(x, _one_hot(x, t), reduction="none"),
        None,
        0.0,
    ),
    "probability target, weights, smoothing": (
        lambda x, t: cv.cross_entropy(
            x,
            _one_hot(x, t),
            weight=torch.tensor(CLASS_WEIGHT, dtype=x.dtype),
            label_smoothing=0.1,
            reduction="none",
        ),
        CLASS_WEIGHT,
        0.1,
    ),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("grad_enabled", [True, False], ids=["grad", "no_grad"])
@pytest.mark.parametrize("path", list(CROSS_ENTROPY_PATHS))
def test_cross_entropy_is_accurate_at_confident_logits(dtype, grad_enabled, path):
    call, weight, smoothing = CROSS_ENTROPY_PATHS[path]
    rows, targets = _cross_entropy_grid(dtype)
    x = torch.tensor(rows, dtype=dtype, requires_grad=grad_enabled)
    target = torch.tensor(targets)
    exact = [
        _cross_entropy_exact(r, y, weight, smoothing) for r, y in zip(rows, targets, strict=True)
    ]
    with torch.set_grad_enabled(grad_enabled):
        loss = call(x, target)
    assert_accurate(loss, [v for v, _, _ in exact], dtype, f"{path} value")
    if grad_enabled:
        (grad,) = torch.autograd.grad(loss.sum(), x)
        want = [g for _, row, _ in exact for g in row]
        size = [m for _, _, row in exact for m in row]
        assert_accurate(grad, want, dtype, f"{path} gradient", scale=size)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_cross_entropy_reductions_with_ignored_targets_are_accurate(
    dtype, reduction, smoothing, weighted
):
    # The grid once with its targets and once ignored (-100): the sum of small positive
    # values, and the mean by the kept targets' weights; ignored samples give 0.
    rows, targets = _cross_entropy_grid(dtype)
    x = torch.tensor(rows + rows, dtype=dtype, requires_grad=True)
    target = torch.tensor(targets + [-100] * len(targets))
    weight = CLASS_WEIGHT if weighted else None
    w = None if weight is None else torch.tensor(weight, dtype=dtype)
    loss = cv.cross_entropy(x, target, w, label_smoothing=smoothing, reduction=reduction)
    (grad,) = torch.autograd.grad(loss, x)
    exact = [
        _cross_entropy_exact(r, y, weight, smoothing) for r, y in zip(rows, targets, strict=True)
    ]
    with mpmath.workdps(DIGITS):
        kept_weight = mpmath.fsum(_mp((weight or [1.0] * 3)[y]) for y in targets)
        scale = 1 if reduction == "sum" else 1 / kept_weight
        value = float(mpmath.fsum(_mp(v) for v, _, _ in exact) * scale)
        want = [float(_mp(g) * scale) for _, row, _ in exact for g in row]
        size = [float(_mp(m) * scale) for _, _, row in exact for m in row]
    assert_accurate(loss, [value], dtype, "value")
    zeros = [0.0] * (3 * len(rows))
    assert_accurate(grad, want + zeros, dtype, "gradient", scale=size + zeros)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("smoothing", [0.1, 0.5, 0.75, 1.0])
@pytest.mark.parametrize("classes", [8, 512])
def test_cross_entropy_with_any_smoothing_is_accurate_where_the_target_is_the_lowest(
    dtype, smoothing, classes
):
    # The target's logit far below all the others: -log p_y and the smoothing's
    # (eps / C) sum_c (x_y - x_c) are large and of opposite signs, and their sum is
    # up to 2C times smaller as eps -> 1.  The unweighted form holds up to eps = 1/2; a
    # larger smoothing takes the weighted form (with weights of 1), or the 512-class
    # rows lose 20-30 ulps at eps = 1.  The gradient on the 8-class rows (its exact
    # value costs a 360-digit differentiation per logit).
    g = torch.Generator().manual_seed(classes)
    spreads = [1.0, 10.0, 100.0] if dtype == torch.float32 else [1.0, 100.0, 1000.0]
    others = 1 + 0.01 * torch.rand(len(spreads), classes - 1, generator=g, dtype=torch.float64)
    rows = [[-a, *(a * row).tolist()] for a, row in zip(spreads, others, strict=True)]
    x = torch.tensor(rows, dtype=dtype, requires_grad=True)
    rows = x.detach().double().tolist()  # the logits as rounded to the dtype
    target = torch.zeros(len(rows), dtype=torch.long)
    loss = cv.cross_entropy(x, target, label_smoothing=smoothing, reduction="none")
    if classes > 8:
        with mpmath.workdps(DIGITS):
            exact = [_cross_entropy_value(r, smoothing) for r in rows]
        assert_accurate(loss, exact, dtype, "value")
        return
    exact = [_cross_entropy_exact(r, 0, None, smoothing) for r in rows]
    assert_accurate(loss, [v for v, _, _ in exact], dtype, "value")
    (grad,) = torch.autograd.grad(loss.sum(), x)
    want = [v for _, row, _ in exact for v in row]
    size = [v for _, _, row in exact for v in row]
    assert_accurate(grad, want, dtype, "gradient", scale=size)


def _cross_entropy_value(row: list[float], smoothing: float) -> float:
    """(1 - eps)(-log p_0) + (eps / C) sum_c (-log p_c), at the working precision."""
    log_total = mpmath.log(mpmath.fsum(mpmath.exp(_mp(v)) for v in row))
    neg_log_p = [log_total - _mp(v) for v in row]
    eps = _mp(smoothing)
    return float((1 - eps) * neg_log_p[0] + eps / len(row) * mpmath.fsum(neg_log_p))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("grad_enabled", [True, False], ids=["fast", "no_grad"])
def test_softmax_focal_loss_is_accurate_at_confident_logits(dtype, gamma, grad_enabled):
    rows = _softmax_rows(dtype)
    x = torch.tensor(rows, dtype=dtype, requires_grad=grad_enabled)
    target = torch.zeros(len(rows), dtype=torch.long)
    exact = [_softmax_focal_exact(row, 0, gamma) for row in rows]
    with torch.set_grad_enabled(grad_enabled):
        loss = cv.softmax_focal_loss(x, target, gamma=gamma, reduction="none")
    assert_accurate(loss, [v for v, _ in exact], dtype, "value")
    if grad_enabled:
        (grad,) = torch.autograd.grad(loss.sum(), x)
        assert_accurate(grad, [g for _, row in exact for g in row], dtype, "gradient")


# ---------------------------------------------------------------------- box losses


def _box_loss_exact(pred: list[float], target: list[float], kind: str) -> tuple[float, list[float]]:
    """IoU (linear and log), GIoU, DIoU or CIoU loss (eps = 0) of one pair of xyxy
    boxes from the definitions (Yu et al. 2016; Rezatofighi et al. 2019; Zheng et al.
    2020), and its gradient in ``pred``; CIoU's trade-off weight alpha is a constant
    in the gradient, as the losses document."""
    t = [_mp(v) for v in target]

    def angle(box):
        return mpmath.atan2(box[2] - box[0], box[3] - box[1])

    def terms(*p):
        inter_w = max(min(p[2], t[2]) - max(p[0], t[0]), 0)
        inter_h = max(min(p[3], t[3]) - max(p[1], t[1]), 0)
        inter = inter_w * inter_h
        union = (p[2] - p[0]) * (p[3] - p[1]) + (t[2] - t[0]) * (t[3] - t[1]) - inter
        enclosing_w = max(p[2], t[2]) - min(p[0], t[0])
        enclosing_h = max(p[3], t[3]) - min(p[1], t[1])
        enclosing = enclosing_w * enclosing_h
        centre_dist2 = ((p[0] + p[2] - t[0] - t[2]) ** 2 + (p[1] + p[3] - t[1] - t[3]) ** 2) / 4
        v = 4 / mpmath.pi**2 * (angle(t) - angle(p)) ** 2
        return {
            "iou": 1 - inter / union,
            "iou_log": -mpmath.log(inter / union),
            "giou": (enclosing - union) / enclosing,
            "diou": centre_dist2 / (enclosing_w**2 + enclosing_h**2),
            "v": v,
        }

    # DIGITS, not fewer: mpmath.diff leaves about 10^-(digits + 5) where the derivative
    # is 0, which must fall below the smallest normal float64 to be judged as 0.
    with mpmath.workdps(DIGITS):
        z = [_mp(v) for v in pred]
        at_z = terms(*z)
        alpha = at_z["v"] / (at_z["iou"] + at_z["v"]) if at_z["v"] != 0 else 0

        def loss(*p):
            parts = terms(*p)
            if kind == "iou_log":
                return parts["iou_log"]
            if kind in ("iou", "giou"):
                return parts["iou"] + (parts["giou"] if kind == "giou" else 0)
            return parts["iou"] + parts["diou"] + (alpha * parts["v"] if kind == "ciou" else 0)

        grad = []
        for c in range(4):
            order = [0] * 4
            order[c] = 1
            grad.append(float(mpmath.diff(loss, z, tuple(order))))
        return float(loss(*z)), grad


def _tiny_gap_boxes(dtype: torch.dtype) -> tuple[list[list[float]], list[list[float]]]:
    """A box against boxes grown, shifted diagonally, or squeezed in x and stretched in
    y by 2^-k: 1 - IoU of about 2^-k, and |C| - U of 0, 0 and about 2^-2k; and a box
    of other (rounded) coordinates shifted by about 2^-k.  Every coordinate is exact
    in the dtype (the references take them as given), and no edge is tied
    (autograd's min/max split a tie's gradient, the definition's derivative does not
    exist)."""
    eps = torch.finfo(dtype).eps
    gaps = [2.0**-k for k in range(6, 60) if 2.0**-k >= 64 * eps]
    # A box of coordinates that are not short dyadic fractions (rounded in the dtype).
    odd = torch.tensor([0.3, 0.6, 1.7, 1.9], dtype=dtype)
    preds, targets = [], []
    for gap in gaps:
        preds += [[0.25, 0.5, 1.5, 1.75]] * 3 + [odd.tolist()]
        targets += [
            [0.25 - gap, 0.5 - gap, 1.5 + gap, 1.75 + gap],
            [0.25 + gap, 0.5 + gap, 1.5 + gap, 1.75 + gap],
            [0.25 + gap, 0.5 - gap, 1.5 - gap, 1.75 + gap],
            (odd + gap).tolist(),
        ]
    return preds, targets


BOX_LOSSES = {
    "iou": cv.iou_loss,
    "iou_log": lambda pred, target, **kwargs: cv.iou_loss(pred, target, "log", **kwargs),
    "giou": cv.giou_loss,
    "diou": cv.diou_loss,
    "ciou": cv.ciou_loss,
}
# "fast": the hand-written gradient of _fused.py (the iou loss: autograd on its
# composition); "target_grad": the same with the target differentiable too;
# "composition": the readable composition under autograd (boxes._box_loss_reference).
BOX_PATHS = ["fast", "no_grad", "target_grad", "composition"]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("path", BOX_PATHS)
@pytest.mark.parametrize("kind", list(BOX_LOSSES))
def test_box_losses_are_accurate_at_tiny_iou_gaps(dtype, path, kind):
    if kind in ("iou", "iou_log") and path == "composition":
        pytest.skip("iou_loss is its composition (the 'fast' path)")
    preds, targets = _tiny_gap_boxes(dtype)
    pred = torch.tensor(preds, dtype=dtype, requires_grad=path != "no_grad")
    target = torch.tensor(targets, dtype=dtype, requires_grad=path == "target_grad")
    exact = [_box_loss_exact(p, t, kind) for p, t in zip(preds, targets, strict=True)]
    with torch.set_grad_enabled(path != "no_grad"):
        if path == "composition":
            loss = boxes._box_loss_reference(pred, target, kind, eps=0.0, reduction="none")
        else:
            loss = BOX_LOSSES[kind](pred, target, eps=0.0, reduction="none")
    assert_accurate(loss, [v for v, _ in exact], dtype, f"{path} value")
    if path != "no_grad":
        (grad,) = torch.autograd.grad(loss.sum(), pred)
        assert_accurate(grad, [g for _, row in exact for g in row], dtype, f"{path} gradient")


# -------------------------------------------------------------------- metric losses


def _near_pairs(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings of norm about 1 and partners 2^-k away (k up to the dtype's
    resolution), in a fixed direction so that every difference is exact."""
    generator = torch.Generator().manual_seed(0)
    eps = torch.finfo(dtype).eps
    gaps = [2.0**-k for k in range(2, 60) if 2.0**-k >= 64 * eps]
    base = torch.rand(len(gaps), 3, generator=generator, dtype=torch.float64) + 0.5
    base = base.to(dtype)
    step = torch.tensor([1.0, -0.5, 0.25], dtype=dtype)
    other = base + torch.tensor(gaps, dtype=dtype)[:, None] * step
    return base, other


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_contrastive_loss_is_accurate_at_near_zero_distances(dtype):
    x1, x2 = _near_pairs(dtype)
    x1 = x1.requires_grad_()
    same = torch.ones(len(x1), dtype=torch.bool)
    loss = cv.contrastive_loss(x1, x2, same, reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), x1)
    values, grads = [], []
    for a, b in zip(x1.detach().tolist(), x2.tolist(), strict=True):
        diff = [_mp(u) - _mp(v) for u, v in zip(a, b, strict=True)]
        values.append(float(mpmath.fsum(d * d for d in diff)))  # d^2 for a positive pair
        grads += [float(2 * d) for d in diff]
    assert_accurate(loss, values, dtype, "value")
    assert_accurate(grad, grads, dtype, "gradient")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_triplet_margin_loss_is_accurate_at_near_zero_distances(dtype):
    # anchor ~ positive (distance 2^-k), negative 3 sqrt(3) away: the loss
    # m + d(a, p) - d(a, n) is active (m = 6), with PyTorch's eps = 0 here, so that d is
    # the exact norm.
    anchor, positive = _near_pairs(dtype)
    negative = anchor + 3.0
    anchor = anchor.requires_grad_()
    loss = cv.triplet_margin_loss(anchor, positive, negative, margin=6.0, eps=0.0, reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), anchor)
    values, grads = [], []
    for a, p, n in zip(anchor.detach().tolist(), positive.tolist(), negative.tolist(), strict=True):
        to_pos = [_mp(u) - _mp(v) for u, v in zip(a, p, strict=True)]
        to_neg = [_mp(u) - _mp(v) for u, v in zip(a, n, strict=True)]
        d_pos = mpmath.sqrt(mpmath.fsum(d * d for d in to_pos))
        d_neg = mpmath.sqrt(mpmath.fsum(d * d for d in to_neg))
        values.append(float(6 + d_pos - d_neg))
        grads += [float(u / d_pos - v / d_neg) for u, v in zip(to_pos, to_neg, strict=True)]
    assert_accurate(loss, values, dtype, "value")
    assert_accurate(grad, grads, dtype, "gradient")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_pairwise_distances_are_accurate_at_near_zero_distances(dtype):
    # A third embedding far away, so that centring the batch does not remove the
    # common part of the two near ones.
    x1, x2 = _near_pairs(dtype)
    distances = []
    got = []
    for a, b in zip(x1, x2, strict=True):
        matrix = cv.pairwise_distances(torch.stack((a, b, a + 8.0)))
        got.append(matrix[0, 1])
        diff = [_mp(u) - _mp(v) for u, v in zip(a.tolist(), b.tolist(), strict=True)]
        distances.append(float(mpmath.sqrt(mpmath.fsum(d * d for d in diff))))
    assert_accurate(torch.stack(got), distances, dtype, "distance")


def test_the_faster_form_of_log1p_is_measured_once_per_dtype(monkeypatch):
    monkeypatch.setattr(_numerics, "_LOG1P_FASTER", {})
    measured = []
    real = _numerics._measure_log1p
    monkeypatch.setattr(
        _numerics, "_measure_log1p", lambda dtype: measured.append(dtype) or real(dtype)
    )
    big = _numerics.KAHAN_MIN_ELEMENTS
    first = _numerics.log1p_is_faster(torch.zeros(big))
    assert isinstance(first, bool)
    assert _numerics.log1p_is_faster(torch.zeros(big)) is first
    _numerics.log1p_is_faster(torch.zeros(big, dtype=torch.float64))
    assert measured == [torch.float32, torch.float64]
    # Small tensors and a GPU (here: any device but the CPU) take log1p, unmeasured.
    monkeypatch.setattr(_numerics, "_LOG1P_FASTER", {})
    assert _numerics.log1p_is_faster(torch.zeros(big - 1)) is True
    assert _numerics.log1p_is_faster(torch.zeros(big, device="meta")) is True
    assert len(measured) == 2


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("form", ["log1p", "kahan"])
def test_both_forms_of_log1p_are_accurate(dtype, form, monkeypatch):
    """log1p(z) of each form against 360-digit arithmetic, from z near -1 through tiny
    and moderate z (where log(1 + z) would lose the digits) to large z."""
    _force_log1p_form(monkeypatch, dtype, form == "log1p")
    kahan_calls = []
    real_kahan = _numerics._kahan_log1p
    monkeypatch.setattr(_numerics, "_kahan_log1p", lambda z: kahan_calls.append(1) or real_kahan(z))
    tiny = torch.finfo(dtype).tiny
    grid = [
        -1 + 2**-20,
        -0.75,
        -0.5,
        -1e-3,
        -3e-8,
        -tiny,
        0.0,
        tiny,
        1e-30,
        3e-8,
        1e-7,
        1e-5,
        1e-3,
        0.1,
        0.5,
        1.0,
        3.0,
        1e3,
        1e20,
    ]
    z = torch.tensor(grid, dtype=dtype)
    exact = [float(mpmath.log1p(mpmath.mpf(v))) for v in z.tolist()]
    assert_accurate(_numerics.log1p(z), exact, dtype, f"{form} log1p")
    own = z.clone()
    in_place = _numerics.log1p_(own)
    assert_accurate(in_place, exact, dtype, f"{form} log1p_")
    assert (in_place.data_ptr() == own.data_ptr()) == (form == "log1p")  # its buffer, if log1p
    assert _numerics.log1p(torch.tensor([-1.0], dtype=dtype)).item() == -math.inf
    assert _numerics.log1p(torch.tensor([-2.0, math.nan], dtype=dtype)).isnan().all()
    assert bool(kahan_calls) == (form == "kahan")  # the form under test is the one that ran

"""Tests of the bounding-box family (``cvloss_ref/boxes.py`` and its catalogue).

References, all independent of the code under test:

* brute-force float64 definitions written from the papers in this file (one box
  at a time, Python floats and :mod:`math`), and central finite differences of
  them for the gradients;
* ``torchvision.ops`` (``box_convert``, ``box_area``, ``box_iou``,
  ``generalized_box_iou``, ``generalized_box_iou_loss``, ``distance_box_iou_loss``,
  ``complete_box_iou_loss``, ``nms``) wherever torchvision is finite;
* a brute-force greedy DIoU-NMS;
* alternative formulations written from centres and sizes (``cxcywh``), which the
  harness must accept.
"""

from __future__ import annotations

import math
import shutil
import types

import pytest
import torch
import torchvision.ops as tvops
from torch.autograd import gradcheck

import cvloss_ref
from cvloss_ref import (
    alpha_iou_loss,
    box_area,
    box_convert,
    box_iou,
    ciou_loss,
    diou_loss,
    diou_nms,
    eiou_loss,
    focal_eiou_loss,
    generalized_box_iou,
    giou_loss,
    iou_loss,
    riou_loss,
)
from cvloss_ref._catalogue import CATALOGUE
from cvloss_ref.testing import assert_loss_matches, check_loss
from tests._tolerances import TOLERANCES

F64 = torch.float64
TOL64 = TOLERANCES[F64]
FORMATS = ["xyxy", "xywh", "cxcywh"]
REDUCTIONS = ["none", "mean", "sum"]
HALF_DTYPES = [torch.float16, torch.bfloat16]
EPS = 1e-7

BOX_LOSSES = [
    iou_loss,
    giou_loss,
    diou_loss,
    ciou_loss,
    eiou_loss,
    focal_eiou_loss,
    alpha_iou_loss,
    riou_loss,
]
BOX_NAMES = [
    "box_convert",
    "box_area",
    "box_iou",
    "generalized_box_iou",
    *(fn.__name__ for fn in BOX_LOSSES),
]

# (id, loss called with its parameters): every loss and every variant of a loss.
CONFIGS = [
    ("iou_loss-linear", lambda p, t, **kw: iou_loss(p, t, **kw)),
    ("iou_loss-log", lambda p, t, **kw: iou_loss(p, t, mode="log", **kw)),
    ("giou_loss", lambda p, t, **kw: giou_loss(p, t, **kw)),
    ("diou_loss", lambda p, t, **kw: diou_loss(p, t, **kw)),
    ("ciou_loss", lambda p, t, **kw: ciou_loss(p, t, **kw)),
    ("eiou_loss", lambda p, t, **kw: eiou_loss(p, t, **kw)),
    ("focal_eiou_loss-gamma0.5", lambda p, t, **kw: focal_eiou_loss(p, t, **kw)),
    ("focal_eiou_loss-gamma2", lambda p, t, **kw: focal_eiou_loss(p, t, gamma=2.0, **kw)),
    *(
        (
            f"alpha_iou_loss-{variant}-alpha{alpha:g}",
            (lambda v, a: lambda p, t, **kw: alpha_iou_loss(p, t, alpha=a, variant=v, **kw))(
                variant, alpha
            ),
        )
        for variant in ("iou", "giou", "diou", "ciou")
        for alpha in (3.0, 0.5)
    ),
    ("riou_loss-beta0.95", lambda p, t, **kw: riou_loss(p, t, **kw)),
    ("riou_loss-beta0.5", lambda p, t, **kw: riou_loss(p, t, beta=0.5, **kw)),
]
CONFIG_IDS = [name for name, _ in CONFIGS]
CONFIG_FNS = dict(CONFIGS)


# ------------------------------------------------------------------------------ boxes


def _random_boxes(generator, n, low=0.0, high=100.0, min_size=2.0, max_size=40.0):
    corner = low + (high - low) * torch.rand(n, 2, generator=generator, dtype=F64)
    size = min_size + (max_size - min_size) * torch.rand(n, 2, generator=generator, dtype=F64)
    return torch.cat((corner, corner + size), dim=-1)


def _near(generator, boxes, shift, scale):
    """Boxes whose centres move by up to ``shift`` sizes and sizes scale by exp(±scale)."""
    size = boxes[:, 2:] - boxes[:, :2]
    noise = torch.rand(boxes.shape[0], 4, generator=generator, dtype=F64) * 2 - 1
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2 + shift * noise[:, :2] * size
    size = size * torch.exp(scale * noise[:, 2:])
    return torch.cat((centre - size / 2, centre + size / 2), dim=-1)


def _mixed_pairs(generator):
    """(pred, target), 20 pairs, no ties between coordinates: 8 overlapping, 4 nearly
    identical (IoU > 0.95), 4 contained and 4 disjoint."""
    target = _random_boxes(generator, 20, min_size=10.0)
    pred = torch.cat(
        (
            _near(generator, target[:8], 0.3, 0.4),
            _near(generator, target[8:12], 0.004, 0.008),
            target[12:16] + torch.tensor([1.0, 2.0, -2.0, -1.0], dtype=F64),
            target[16:] + torch.tensor([60.0, 70.0, 60.0, 70.0], dtype=F64),
        )
    )
    return pred, target


def _overlapping_pairs(generator, n=8):
    target = _random_boxes(generator, n, min_size=10.0)
    return _near(generator, target, 0.3, 0.4), target


# Degenerate situations (pred, target), each a few pairs in xyxy.
DEGENERATE = {
    "zero width": (
        [[3.0, 1.0, 3.0, 5.0], [2.0, -3.0, 2.0, 9.0]],
        [[0.0, 0.0, 8.0, 6.0], [0.0, 0.0, 8.0, 6.0]],
    ),
    "zero height": (
        [[1.0, 2.0, 7.0, 2.0], [-4.0, 3.0, 12.0, 3.0]],
        [[0.0, 0.0, 8.0, 6.0], [0.0, 0.0, 8.0, 6.0]],
    ),
    "point": (
        [[4.0, 3.0, 4.0, 3.0], [12.0, 9.0, 12.0, 9.0]],
        [[0.0, 0.0, 8.0, 6.0], [0.0, 0.0, 8.0, 6.0]],
    ),
    "identical degenerate": (
        [[4.0, 3.0, 4.0, 3.0], [3.0, 1.0, 3.0, 5.0], [1.0, 2.0, 7.0, 2.0]],
        [[4.0, 3.0, 4.0, 3.0], [3.0, 1.0, 3.0, 5.0], [1.0, 2.0, 7.0, 2.0]],
    ),
    "degenerate target": (
        [[0.0, 0.0, 8.0, 6.0], [0.0, 0.0, 8.0, 6.0]],
        [[4.0, 3.0, 4.0, 3.0], [1.0, 2.0, 7.0, 2.0]],
    ),
    "disjoint": (
        [[20.0, 30.0, 25.0, 40.0], [9.0, 1.0, 12.0, 5.0]],
        [[0.0, 0.0, 8.0, 6.0], [0.0, 0.0, 8.0, 6.0]],
    ),
    "far apart (1e4)": (
        [[1e4, 1e4, 1e4 + 12.0, 1e4 + 7.0], [-1e4, 5.0, -1e4 + 3.0, 9.0]],
        [[0.0, 0.0, 8.0, 6.0], [0.0, 0.0, 8.0, 6.0]],
    ),
}


def _degenerate(situation, dtype=F64):
    pred, target = DEGENERATE[situation]
    return torch.tensor(pred, dtype=dtype), torch.tensor(target, dtype=dtype)


def _value_and_grad(fn, pred, target, **kwargs):
    """``fn(pred, target)`` and the gradient of its sum w.r.t. ``pred``."""
    pred = pred.detach().clone().requires_grad_(True)
    out = fn(pred, target, **kwargs)
    (grad,) = torch.autograd.grad(out.sum(), pred, allow_unused=True)
    return out.detach(), torch.zeros_like(pred) if grad is None else grad


# ------------------------------------------------------- brute force, from the papers


def _geometry(p, t):
    """Everything the papers' formulas use, for one pair of xyxy boxes (Python floats)."""
    x1, y1, x2, y2 = p
    a1, b1, a2, b2 = t
    w, h, gw, gh = x2 - x1, y2 - y1, a2 - a1, b2 - b1
    inter = max(0.0, min(x2, a2) - max(x1, a1)) * max(0.0, min(y2, b2) - max(y1, b1))
    union = w * h + gw * gh - inter
    cw = max(x2, a2) - min(x1, a1)
    ch = max(y2, b2) - min(y1, b1)
    rho2 = ((x1 + x2) / 2 - (a1 + a2) / 2) ** 2 + ((y1 + y2) / 2 - (b1 + b2) / 2) ** 2
    v = 4 / math.pi**2 * (math.atan(gw / gh) - math.atan(w / h)) ** 2
    return types.SimpleNamespace(
        iou=inter / union,
        union=union,
        area_c=cw * ch,
        cw=cw,
        ch=ch,
        c2=cw**2 + ch**2,
        rho2=rho2,
        w=w,
        h=h,
        gw=gw,
        gh=gh,
        v=v,
    )


def _ciou_weight(g):
    """CIoU's alpha = v / ((1 - IoU) + v) (Zheng et al.)."""
    return g.v / ((1 - g.iou) + g.v)


def _bf_iou_linear(g):
    return 1 - g.iou  # UnitBox / IoU loss


def _bf_iou_log(g):
    return -math.log(max(g.iou, EPS))  # UnitBox: -ln IoU (clamped at eps as documented)


def _bf_giou(g):
    return 1 - g.iou + (g.area_c - g.union) / g.area_c  # Rezatofighi et al. (GIoU)


def _bf_diou(g):
    return 1 - g.iou + g.rho2 / g.c2  # Zheng et al. (DIoU)


def _bf_ciou(g, weight=None):
    alpha = _ciou_weight(g) if weight is None else weight
    return 1 - g.iou + g.rho2 / g.c2 + alpha * g.v  # Zheng et al. (CIoU)


def _bf_eiou(g):
    # Zhang et al.: 1 - IoU + rho²(b, b_gt)/c² + rho²(w, w_gt)/C_w² + rho²(h, h_gt)/C_h²
    return 1 - g.iou + g.rho2 / g.c2 + (g.w - g.gw) ** 2 / g.cw**2 + (g.h - g.gh) ** 2 / g.ch**2


def _bf_focal_eiou(g, gamma, weight=None):
    return (g.iou**gamma if weight is None else weight) * _bf_eiou(g)


def _bf_alpha_iou(g, alpha, variant, weight=None):
    """He et al. (alpha-IoU): the power on the IoU and on each penalty term."""
    loss = 1 - g.iou**alpha
    if variant == "giou":
        # max(0, .): the exact penalty is >= 0; rounding must not make a complex power.
        loss += max(0.0, (g.area_c - g.union) / g.area_c) ** alpha
    if variant in ("diou", "ciou"):
        loss += g.rho2**alpha / g.c2**alpha
    if variant == "ciou":
        beta = _ciou_weight(g) if weight is None else weight
        loss += (beta * g.v) ** alpha
    return loss


def _bf_riou(g, beta):
    # Our documented form: |dL/dIoU| rises as 2 IoU / beta, then falls as 2 (1 - IoU)/(1 - beta).
    if g.iou < beta:
        return 1 - g.iou**2 / beta
    return (1 - g.iou) ** 2 / (1 - beta)


# id -> (brute-force loss of one geometry, the detached weight of the method or None)
BRUTE = {
    "iou_loss-linear": (_bf_iou_linear, None),
    "iou_loss-log": (_bf_iou_log, None),
    "giou_loss": (_bf_giou, None),
    "diou_loss": (_bf_diou, None),
    "ciou_loss": (lambda g, w=None: _bf_ciou(g, w), _ciou_weight),
    "eiou_loss": (_bf_eiou, None),
    "focal_eiou_loss-gamma0.5": (lambda g, w=None: _bf_focal_eiou(g, 0.5, w), lambda g: g.iou**0.5),
    "focal_eiou_loss-gamma2": (lambda g, w=None: _bf_focal_eiou(g, 2.0, w), lambda g: g.iou**2),
    **{
        f"alpha_iou_loss-{variant}-alpha{alpha:g}": (
            (lambda v, a: lambda g, w=None: _bf_alpha_iou(g, a, v, w))(variant, alpha),
            _ciou_weight if variant == "ciou" else None,
        )
        for variant in ("iou", "giou", "diou", "ciou")
        for alpha in (3.0, 0.5)
    },
    "riou_loss-beta0.95": (lambda g: _bf_riou(g, 0.95), None),
    "riou_loss-beta0.5": (lambda g: _bf_riou(g, 0.5), None),
}


def _brute(config, pred, target):
    loss, _ = BRUTE[config]
    rows = zip(pred.tolist(), target.tolist())
    return torch.tensor([loss(_geometry(p, t)) for p, t in rows], dtype=F64)


def _brute_grad(config, pred, target, h=1e-6):
    """Central differences of the brute-force loss (its weight, if any, held fixed at
    the unperturbed boxes, as the method treats it as a constant)."""
    loss, weight_of = BRUTE[config]
    grad = torch.zeros_like(pred)
    for i, (p, t) in enumerate(zip(pred.tolist(), target.tolist())):
        kwargs = {} if weight_of is None else {"w": weight_of(_geometry(p, t))}
        for j in range(4):
            up, down = list(p), list(p)
            up[j] += h
            down[j] -= h
            grad[i, j] = loss(_geometry(up, t), **kwargs) - loss(_geometry(down, t), **kwargs)
            grad[i, j] /= 2 * h
    return grad


@pytest.mark.parametrize("config", CONFIG_IDS)
def test_value_same_as_brute_force(config, generator):
    pred, target = _mixed_pairs(generator)
    out = CONFIG_FNS[config](pred, target, reduction="none")
    torch.testing.assert_close(out, _brute(config, pred, target), **TOL64)


@pytest.mark.parametrize("config", CONFIG_IDS)
def test_gradient_same_as_finite_differences_of_brute_force(config, generator):
    pred, target = _mixed_pairs(generator)
    _, grad = _value_and_grad(CONFIG_FNS[config], pred, target)
    expected = _brute_grad(config, pred, target) / pred.shape[0]  # reduction="mean"
    if config == "alpha_iou_loss-giou-alpha0.5":
        # Contained boxes (rows 12-15): the GIoU penalty is 0, where x^alpha (alpha < 1)
        # has an infinite slope; ours is 0 there by convention, and finite differences
        # only see the rounding noise of |C| - |A ∪ B| (about 1e-14, amplified by sqrt).
        keep = torch.ones(pred.shape[0], dtype=torch.bool)
        keep[12:16] = False
        grad, expected = grad[keep], expected[keep]
    torch.testing.assert_close(grad, expected, rtol=1e-5, atol=1e-9)


def test_mixed_pairs_cover_both_riou_branches(generator):
    pred, target = _mixed_pairs(generator)
    iou = torch.tensor([_geometry(p, t).iou for p, t in zip(pred.tolist(), target.tolist())])
    assert (iou > 0.95).sum() >= 3 and ((iou > 0.1) & (iou < 0.95)).sum() >= 8
    assert (iou == 0).sum() == 4


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        # pred (0, 0, 2, 2), target (1, 1, 3, 4): IoU 1/9, rho² 3.25, enclosing 3 x 4.
        ("iou_loss-linear", 1 - 1 / 9),
        ("giou_loss", 1 - 1 / 9 + (12 - 9) / 12),
        ("diou_loss", 1 - 1 / 9 + 3.25 / 25),
        ("eiou_loss", 1 - 1 / 9 + 3.25 / 25 + 0 / 9 + 1 / 16),
        ("focal_eiou_loss-gamma0.5", (1 / 3) * (1 - 1 / 9 + 3.25 / 25 + 1 / 16)),
    ],
)
def test_value_by_hand(config, expected):
    pred = torch.tensor([[0.0, 0.0, 2.0, 2.0]], dtype=F64)
    target = torch.tensor([[1.0, 1.0, 3.0, 4.0]], dtype=F64)
    assert CONFIG_FNS[config](pred, target).item() == pytest.approx(expected, rel=1e-7)


# --------------------------------------------------------------------------- properties


def test_ciou_alpha_carries_no_gradient(generator):
    """Ours equals finite differences with alpha frozen, not of the full formula."""
    pred, target = _overlapping_pairs(generator)
    _, grad = _value_and_grad(ciou_loss, pred, target, reduction="sum")
    frozen = _brute_grad("ciou_loss", pred, target)
    loss_fn, _ = BRUTE["ciou_loss"]
    full = torch.zeros_like(pred)
    for i, (p, t) in enumerate(zip(pred.tolist(), target.tolist())):
        for j in range(4):
            up, down = list(p), list(p)
            up[j] += 1e-6
            down[j] -= 1e-6
            full[i, j] = (loss_fn(_geometry(up, t)) - loss_fn(_geometry(down, t))) / 2e-6
    torch.testing.assert_close(grad, frozen, rtol=1e-5, atol=1e-9)
    assert not torch.allclose(grad, full, rtol=1e-5, atol=1e-9)


def test_focal_eiou_gradient_is_iou_power_times_eiou_gradient(generator):
    pred, target = _overlapping_pairs(generator)
    _, focal_grad = _value_and_grad(focal_eiou_loss, pred, target, gamma=0.5, reduction="none")
    _, eiou_grad = _value_and_grad(eiou_loss, pred, target, reduction="none")
    iou = box_iou(pred, target).diagonal()
    torch.testing.assert_close(focal_grad, iou[:, None] ** 0.5 * eiou_grad, **TOL64)


def test_focal_eiou_with_gamma_zero_equals_eiou(generator):
    pred, target = _mixed_pairs(generator)
    torch.testing.assert_close(
        focal_eiou_loss(pred, target, gamma=0.0, reduction="none"),
        eiou_loss(pred, target, reduction="none"),
        **TOL64,
    )


@pytest.mark.parametrize(
    ("variant", "base"),
    [("iou", iou_loss), ("giou", giou_loss), ("diou", diou_loss), ("ciou", ciou_loss)],
)
def test_alpha_iou_with_alpha_one_equals_base_loss(variant, base, generator):
    pred, target = _mixed_pairs(generator)
    ours = alpha_iou_loss(pred, target, alpha=1.0, variant=variant, reduction="none")
    torch.testing.assert_close(ours, base(pred, target, reduction="none"), **TOL64)
    _, grad = _value_and_grad(alpha_iou_loss, pred, target, alpha=1.0, variant=variant)
    _, base_grad = _value_and_grad(base, pred, target)
    torch.testing.assert_close(grad, base_grad, **TOL64)


def test_giou_loss_is_in_zero_two_and_tends_to_two_far_apart(generator):
    pred, target = _mixed_pairs(generator)
    out = giou_loss(pred, target, reduction="none")
    assert (out >= 0).all() and (out <= 2).all()
    far = giou_loss(torch.tensor([[1e4, 1e4, 1e4 + 1, 1e4 + 1]]), torch.tensor([[0, 0, 1.0, 1]]))
    assert far.item() == pytest.approx(2.0, abs=1e-6)


def test_iou_loss_log_mode_is_minus_log_eps_for_disjoint_boxes():
    pred, target = _degenerate("disjoint")
    out, grad = _value_and_grad(iou_loss, pred, target, mode="log", reduction="none")
    torch.testing.assert_close(out, torch.full((2,), -math.log(EPS), dtype=F64))
    assert (grad == 0).all()


def test_identical_degenerate_boxes_have_iou_zero_as_in_torchvision():
    pred, target = _degenerate("identical degenerate")
    torch.testing.assert_close(iou_loss(pred, target, reduction="none"), torch.ones(3, dtype=F64))
    torch.testing.assert_close(
        giou_loss(pred, target, reduction="none"),
        tvops.generalized_box_iou_loss(pred, target),
    )


def _iou_grid():
    """pred (0, 0, 1, u) against target (0, 0, 1, 1): IoU = u (up to eps)."""
    u = torch.linspace(0.02, 0.98, 49, dtype=F64)
    pred = torch.stack((torch.zeros_like(u), torch.zeros_like(u), torch.ones_like(u), u), -1)
    return u, pred, torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=F64).expand(49, 4)


@pytest.mark.parametrize("beta", [0.95, 0.6])
def test_riou_loss_gradient_rises_to_beta_then_falls_to_zero(beta):
    u, pred, target = _iou_grid()
    out, grad = _value_and_grad(riou_loss, pred, target, beta=beta, eps=0.0, reduction="none")
    slope = -grad[:, 3]  # d IoU / d y2 = 1 here, so this is -dL/dIoU
    expected = torch.where(u < beta, 2 * u / beta, 2 * (1 - u) / (1 - beta))
    torch.testing.assert_close(slope, expected, rtol=1e-6, atol=1e-6)
    peak = u[slope.argmax()]
    assert abs(peak - beta) <= 0.02 + 1e-12
    assert (out[1:] < out[:-1]).all()  # decreasing in the IoU


def test_riou_loss_is_continuous_at_beta_and_zero_at_identical_boxes():
    beta = 0.7
    below = torch.tensor([[0.0, 0.0, 1.0, beta - 1e-9]], dtype=F64)
    above = torch.tensor([[0.0, 0.0, 1.0, beta + 1e-9]], dtype=F64)
    target = torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=F64)
    a, b = riou_loss(below, target, beta=beta), riou_loss(above, target, beta=beta)
    assert a.item() == pytest.approx(1 - beta, abs=1e-6) and b.item() == pytest.approx(a.item())
    out, grad = _value_and_grad(riou_loss, target, target)
    assert out.item() == pytest.approx(0.0, abs=1e-12)
    assert (grad.abs() < 1e-6).all()


# --------------------------------------------------------------------------- torchvision


def test_box_convert_same_as_torchvision(generator):
    boxes = _random_boxes(generator, 10)
    for in_fmt in FORMATS:
        for out_fmt in FORMATS:
            given = tvops.box_convert(boxes, "xyxy", in_fmt)
            torch.testing.assert_close(
                box_convert(given, in_fmt, out_fmt), tvops.box_convert(given, in_fmt, out_fmt)
            )


@pytest.mark.parametrize(("in_fmt", "out_fmt"), [(a, b) for a in FORMATS for b in FORMATS])
def test_box_convert_round_trips(in_fmt, out_fmt, generator):
    boxes = box_convert(_random_boxes(generator, 6).reshape(2, 3, 4), "xyxy", in_fmt)
    back = box_convert(box_convert(boxes, in_fmt, out_fmt), out_fmt, in_fmt)
    torch.testing.assert_close(back, boxes, **TOL64)


def test_box_area_same_as_torchvision(generator):
    boxes = _random_boxes(generator, 10)
    torch.testing.assert_close(box_area(boxes), tvops.box_area(boxes))
    half = boxes.half() * 10
    assert box_area(half).dtype == tvops.box_area(half).dtype == torch.float32


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(box_iou, tvops.box_iou), (generalized_box_iou, tvops.generalized_box_iou)],
)
def test_pairwise_same_as_torchvision(ours, theirs, generator):
    boxes1 = torch.cat(_mixed_pairs(generator))[:25]
    boxes2 = _random_boxes(generator, 7)
    a = boxes1.clone().requires_grad_(True)
    b = boxes1.clone().requires_grad_(True)
    out, expected = ours(a, boxes2), theirs(b, boxes2)
    assert out.shape == (25, 7)
    torch.testing.assert_close(out, expected, **TOL64)
    cotangent = torch.randn(out.shape, generator=generator, dtype=F64)
    (grad,) = torch.autograd.grad(out, a, cotangent)
    (expected_grad,) = torch.autograd.grad(expected, b, cotangent)
    torch.testing.assert_close(grad, expected_grad, **TOL64)


@pytest.mark.parametrize("ours", [box_iou, generalized_box_iou])
def test_pairwise_is_zero_not_nan_for_identical_points(ours):
    points = torch.tensor([[2.0, 2.0, 2.0, 2.0]], requires_grad=True)
    out = ours(points, points.detach())
    (grad,) = torch.autograd.grad(out.sum(), points)
    assert out.item() == 0.0 and torch.isfinite(grad).all()
    assert torch.isnan(tvops.box_iou(points.detach(), points.detach())).all()


# ------------------------------------------------------------------ integer boxes

INTEGER_DTYPES = [torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8]


def _integer_boxes(generator, n, dtype, *, high=None):
    """``(n, 4)`` xyxy boxes with integer corners in ``[0, high]`` (the dtype's range)."""
    if high is None:
        high = 127 if dtype in (torch.int8, torch.uint8) else 1000
        high = 255 if dtype == torch.uint8 else high
    corners = torch.randint(0, high + 1, (n, 2, 2), generator=generator)
    low, top = corners.min(1).values, corners.max(1).values
    return torch.cat((low, top), -1).to(dtype)


@pytest.mark.parametrize("dtype", INTEGER_DTYPES, ids=str)
def test_box_area_of_integer_boxes_same_as_torchvision(dtype, generator):
    boxes = _integer_boxes(generator, 20, dtype)
    area = box_area(boxes)
    expected = tvops.box_area(boxes)
    assert area.dtype == expected.dtype  # int32 for 8/16-bit boxes, as torchvision
    torch.testing.assert_close(area, expected, rtol=0, atol=0)
    # ... and exact: the brute-force product of the sides, in Python integers.
    exact = [(x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in boxes.tolist()]
    assert area.tolist() == exact


@pytest.mark.parametrize(
    ("dtype", "side", "area"),
    [(torch.int8, 100, 10000), (torch.int16, 200, 40000), (torch.uint8, 255, 65025)],
    ids=["int8 side 100", "int16 side 200", "uint8 side 255"],
)
def test_box_area_widens_small_integer_types_before_multiplying(dtype, side, area):
    boxes = torch.tensor([[0, 0, side, side]], dtype=dtype)
    # The product in the boxes' own dtype wraps around (int8: 16, int16: -25536).
    naive = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    assert naive.item() != area
    assert box_area(boxes).item() == area and box_area(boxes).dtype == torch.int32


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(box_iou, tvops.box_iou), (generalized_box_iou, tvops.generalized_box_iou)],
)
@pytest.mark.parametrize("dtype", INTEGER_DTYPES, ids=str)
def test_pairwise_of_integer_boxes_same_as_torchvision(ours, theirs, dtype, generator):
    boxes1 = _integer_boxes(generator, 12, dtype)
    boxes2 = _integer_boxes(generator, 9, dtype)
    if dtype == torch.uint8:
        # torchvision subtracts uint8 corners before widening them, which wraps around
        # for disjoint boxes: compare on boxes that all overlap (every one contains the
        # square [100, 150]^2); the next test covers disjoint ones.
        low = torch.randint(0, 101, (21, 2), generator=generator)
        high = torch.randint(150, 256, (21, 2), generator=generator)
        boxes = torch.cat((low, high), -1).to(dtype)
        boxes1, boxes2 = boxes[:12], boxes[12:]
    out = ours(boxes1, boxes2)
    expected = theirs(boxes1, boxes2)
    assert out.dtype == expected.dtype == torch.float32
    finite = torch.isfinite(expected)  # torchvision: NaN for identical degenerate boxes
    torch.testing.assert_close(out[finite], expected[finite], **TOLERANCES[torch.float32])
    # The same boxes as float64: integer boxes give the float32 rounding of that.
    wide = ours(boxes1.double(), boxes2.double())
    torch.testing.assert_close(out, wide.float(), **TOLERANCES[torch.float32])


@pytest.mark.parametrize("ours", [box_iou, generalized_box_iou])
def test_pairwise_of_disjoint_uint8_boxes_does_not_wrap_around(ours):
    # The intersection's width min(x2) - max(x1) is negative for disjoint boxes: in uint8
    # it wraps around to 246 unless the corners are widened first (torchvision does not).
    boxes1 = torch.tensor([[10, 20, 50, 60]], dtype=torch.uint8)
    boxes2 = torch.tensor([[0, 0, 0, 0], [60, 0, 70, 10]], dtype=torch.uint8)
    expected = ours(boxes1.double(), boxes2.double()).float()
    torch.testing.assert_close(ours(boxes1, boxes2), expected, rtol=0, atol=0)


def test_pairwise_of_mixed_integer_and_floating_boxes_is_floating():
    boxes1 = torch.tensor([[0, 0, 4, 4]], dtype=torch.int16)
    boxes2 = torch.tensor([[2.0, 2.0, 6.0, 6.0]], dtype=torch.float64)
    out = box_iou(boxes1, boxes2)
    assert out.dtype == torch.float64 and out.item() == pytest.approx(4 / 28)


def test_integer_boxes_are_rejected_by_the_losses_and_bool_boxes_everywhere():
    boxes = torch.tensor([[0, 0, 4, 4]])
    with pytest.raises(TypeError, match=r"pred must be a floating-point tensor"):
        giou_loss(boxes, boxes.double())
    flags = torch.ones(1, 4, dtype=torch.bool)
    with pytest.raises(TypeError, match=r"boxes1 must be a floating-point or integer tensor"):
        box_iou(flags, boxes)
    with pytest.raises(TypeError, match=r"boxes must be a floating-point or integer tensor"):
        box_area(flags)


TORCHVISION_LOSSES = [
    (giou_loss, tvops.generalized_box_iou_loss),
    (diou_loss, tvops.distance_box_iou_loss),
    (ciou_loss, tvops.complete_box_iou_loss),
]


@pytest.mark.parametrize(("ours", "theirs"), TORCHVISION_LOSSES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_value_and_gradient_same_as_torchvision(ours, theirs, reduction, generator):
    pred, target = _mixed_pairs(generator)
    out, grad = _value_and_grad(ours, pred, target, reduction=reduction)
    expected, expected_grad = _value_and_grad(theirs, pred, target, reduction=reduction)
    torch.testing.assert_close(out, expected, **TOL64)
    torch.testing.assert_close(grad, expected_grad, **TOL64)


@pytest.mark.parametrize(("ours", "theirs"), TORCHVISION_LOSSES)
def test_reduction_defaults_to_mean_where_torchvision_defaults_to_none(ours, theirs, generator):
    pred, target = _overlapping_pairs(generator)
    assert ours(pred, target).shape == ()
    assert theirs(pred, target).shape == (8,)
    torch.testing.assert_close(ours(pred, target), theirs(pred, target).mean(), **TOL64)


@pytest.mark.parametrize(("ours", "theirs"), TORCHVISION_LOSSES)
@pytest.mark.parametrize("situation", list(DEGENERATE))
def test_same_as_torchvision_on_degenerate_boxes_where_torchvision_is_finite(
    ours, theirs, situation
):
    pred, target = _degenerate(situation)
    out = ours(pred, target, reduction="none")
    expected = theirs(pred, target)
    finite = torch.isfinite(expected)
    torch.testing.assert_close(out[finite], expected[finite], **TOL64)
    assert torch.isfinite(out).all()


def test_torchvision_ciou_is_nan_for_degenerate_boxes():
    """Why ciou_loss exists: torchvision's CIoU is NaN where ours is finite."""
    pred, target = _degenerate("zero height")
    pred.requires_grad_(True)
    tvops.complete_box_iou_loss(pred, target).sum().backward()
    assert torch.isnan(pred.grad).any(), "torchvision: NaN gradient for a zero-height box"
    points, target = _degenerate("point")
    assert torch.isnan(tvops.complete_box_iou_loss(points, target)).all(), (
        "torchvision: NaN loss for point boxes (atan(0 / 0))"
    )


# ----------------------------------------------------------------- degenerate numerics


@pytest.mark.parametrize("situation", list(DEGENERATE))
@pytest.mark.parametrize("config", CONFIG_IDS)
def test_value_and_gradient_are_finite_for_degenerate_boxes(config, situation):
    for dtype in (torch.float32, F64):
        pred, target = _degenerate(situation, dtype)
        for reduction in ("none", "mean"):
            out, grad = _value_and_grad(CONFIG_FNS[config], pred, target, reduction=reduction)
            assert torch.isfinite(out).all(), f"{config}, {situation}, {dtype}: value {out}"
            assert torch.isfinite(grad).all(), f"{config}, {situation}, {dtype}: grad {grad}"


def test_ciou_gradient_is_finite_for_zero_height_box():
    pred, target = _degenerate("zero height")
    out, grad = _value_and_grad(ciou_loss, pred, target, reduction="none")
    assert torch.isfinite(out).all() and torch.isfinite(grad).all()
    # The aspect angle atan2(w, 0) = π/2 has the finite slope -1/w in h: not zero.
    assert (grad[:, 3] != 0).all()


def test_ciou_value_is_finite_for_point_boxes():
    pred, target = _degenerate("point")
    out, grad = _value_and_grad(ciou_loss, pred, target, reduction="none")
    assert torch.isfinite(out).all() and torch.isfinite(grad).all()


def test_alpha_iou_below_one_has_finite_gradient_at_zero_iou():
    pred = torch.tensor([[0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 2.0, 1.0]], dtype=F64)  # touching
    target = torch.tensor([[1.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 1.0]], dtype=F64)
    for variant in ("iou", "giou", "diou", "ciou"):
        _, grad = _value_and_grad(alpha_iou_loss, pred, target, alpha=0.5, variant=variant)
        assert torch.isfinite(grad).all(), variant


@pytest.mark.parametrize("config", CONFIG_IDS)
def test_empty_batch_mean_is_zero_with_zero_gradient(config):
    pred = torch.zeros(0, 4, dtype=F64)
    out, grad = _value_and_grad(CONFIG_FNS[config], pred, pred.clone())
    assert out.shape == () and out.item() == 0.0 and grad.shape == (0, 4)


# --------------------------------------------------------------------- shapes, formats


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("fn", BOX_LOSSES)
def test_shape_of_reduction(fn, reduction, generator):
    pred, target = _overlapping_pairs(generator, 6)
    out = fn(pred.reshape(2, 3, 4), target.reshape(2, 3, 4), reduction=reduction)
    unreduced = fn(pred, target, reduction="none")
    assert out.shape == ((2, 3) if reduction == "none" else ())
    expected = {"none": unreduced.reshape(2, 3), "mean": unreduced.mean(), "sum": unreduced.sum()}[
        reduction
    ]
    torch.testing.assert_close(out, expected, **TOL64)


@pytest.mark.parametrize("box_format", ["xywh", "cxcywh"])
@pytest.mark.parametrize("fn", BOX_LOSSES)
def test_box_format_equals_loss_on_converted_boxes(fn, box_format, generator):
    pred, target = _mixed_pairs(generator)
    converted = (
        tvops.box_convert(pred, "xyxy", box_format),
        tvops.box_convert(target, "xyxy", box_format),
    )
    out, grad = _value_and_grad(fn, *converted, box_format=box_format, reduction="none")
    expected, expected_grad = _value_and_grad(
        lambda p, t, **kw: fn(
            tvops.box_convert(p, box_format, "xyxy"), tvops.box_convert(t, box_format, "xyxy"), **kw
        ),
        *converted,
        reduction="none",
    )
    torch.testing.assert_close(out, expected, **TOL64)
    torch.testing.assert_close(grad, expected_grad, **TOL64)


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("config", CONFIG_IDS)
def test_half_precision_returns_input_dtype_and_matches_float32(config, dtype, generator):
    """Boxes of about 1000 px: their areas (1e6) overflow float16 (max 65504)."""
    target = _random_boxes(generator, 8, high=500.0, min_size=800.0, max_size=1200.0)
    pred = _near(generator, target, 0.2, 0.2)
    pred, target = pred.to(dtype), target.to(dtype)
    fn = CONFIG_FNS[config]
    out, grad = _value_and_grad(fn, pred, target, reduction="none")
    expected, expected_grad = _value_and_grad(fn, pred.float(), target.float(), reduction="none")
    assert out.dtype == dtype and grad.dtype == dtype
    assert torch.isfinite(out).all() and torch.isfinite(grad).all()
    torch.testing.assert_close(out, expected.to(dtype), **TOLERANCES[dtype])
    torch.testing.assert_close(grad.float(), expected_grad, rtol=2e-2, atol=1e-6)


def test_float16_box_area_overflows_without_upcasting():
    boxes = torch.tensor([[0.0, 0.0, 1000.0, 1000.0]], dtype=torch.float16)
    naive = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    assert torch.isinf(naive).all()
    assert giou_loss(boxes, boxes).item() == 0.0


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("config", CONFIG_IDS)
def test_runs_on_meta_tensors(config, reduction):
    pred = torch.empty(2, 5, 4, device="meta")
    out = CONFIG_FNS[config](pred, torch.empty(2, 5, 4, device="meta"), reduction=reduction)
    assert out.device.type == "meta"
    assert out.shape == ((2, 5) if reduction == "none" else ())


def test_utilities_run_on_meta_tensors():
    boxes = torch.empty(5, 4, device="meta")
    assert box_convert(boxes, "xyxy", "cxcywh").device.type == "meta"
    assert box_area(boxes).shape == (5,)
    assert box_iou(boxes, torch.empty(3, 4, device="meta")).shape == (5, 3)
    assert generalized_box_iou(boxes, torch.empty(3, 4, device="meta")).shape == (5, 3)


@pytest.mark.parametrize("fn", BOX_LOSSES)
def test_runs_on_device(fn, device, generator):
    pred, target = _overlapping_pairs(generator)
    pred = pred.float().to(device).requires_grad_(True)
    out = fn(pred, target.float().to(device))
    out.backward()
    assert out.device.type == device.type and pred.grad.device.type == device.type
    assert torch.isfinite(pred.grad).all()


# -------------------------------------------------------------- compile and autograd


@pytest.mark.parametrize("config", CONFIG_IDS)
def test_compiles_with_fullgraph(config, generator):
    """No graph break (no .item(), no data-dependent branch); aot_eager also traces the
    backward.  inductor would only change the generated kernels."""
    torch._dynamo.reset()
    fn = CONFIG_FNS[config]
    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    pred, target = _mixed_pairs(generator)
    pred, target = pred.float(), target.float()
    out, grad = _value_and_grad(compiled, pred, target)
    expected, expected_grad = _value_and_grad(fn, pred, target)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(grad, expected_grad)


@pytest.mark.slow
@pytest.mark.skipif(
    not any(shutil.which(cc) for cc in ("g++", "c++", "clang++")),
    reason="inductor needs a C++ compiler on the CPU",
)
def test_compiles_with_inductor(generator):
    """The whole pipeline once (about 7 s on 2 cores), on the most intricate loss: CIoU's
    atan2 with its double where, and alpha computed under no_grad."""
    torch._dynamo.reset()
    compiled = torch.compile(ciou_loss, fullgraph=True)
    pred, target = (x.float() for x in _mixed_pairs(generator))
    out, grad = _value_and_grad(compiled, pred, target)
    expected, expected_grad = _value_and_grad(ciou_loss, pred, target)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(grad, expected_grad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
@pytest.mark.parametrize("config", CONFIG_IDS)
def test_captures_in_a_cuda_graph(config, generator):
    fn = CONFIG_FNS[config]
    pred, target = (x.float().cuda() for x in _mixed_pairs(generator))
    static_pred = pred.clone().requires_grad_(True)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up outside the graph, as the docs ask
        for _ in range(2):
            static_pred.grad = None
            fn(static_pred, target).backward()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    static_pred.grad = None
    with torch.cuda.graph(graph):
        static_out = fn(static_pred, target)
        static_out.backward()
    graph.replay()
    expected, expected_grad = _value_and_grad(fn, pred, target)
    torch.testing.assert_close(static_out.detach(), expected)
    torch.testing.assert_close(static_pred.grad, expected_grad)


@pytest.mark.parametrize(
    "config",
    [
        "iou_loss-linear",
        "iou_loss-log",
        "giou_loss",
        "diou_loss",
        "eiou_loss",
        "alpha_iou_loss-giou-alpha3",
        "alpha_iou_loss-diou-alpha0.5",
        "riou_loss-beta0.5",
    ],
)
def test_gradcheck(config, generator):
    pred, target = _mixed_pairs(generator)
    pred = pred[:12].clone().requires_grad_(True)  # overlapping, nearly identical, contained
    fn = CONFIG_FNS[config]
    assert gradcheck(lambda p: fn(p, target[:12], reduction="none"), (pred,), eps=1e-6, atol=1e-5)


# --------------------------------------------------------------------------- validation


def test_invalid_pred_shape():
    with pytest.raises(ValueError, match=r"pred must have shape \(\.\.\., 4\), got \(8, 5\)"):
        giou_loss(torch.zeros(8, 5), torch.zeros(8, 4))


def test_invalid_target_shape():
    with pytest.raises(ValueError, match=r"target must have shape \(\.\.\., 4\), got \(\)"):
        diou_loss(torch.zeros(4), torch.tensor(1.0))
    with pytest.raises(
        ValueError,
        match=r"target must have the same shape as pred \(8, 4\), "
        r"got \(2, 4\)",
    ):
        ciou_loss(torch.zeros(8, 4), torch.zeros(2, 4))


def test_invalid_dtype():
    with pytest.raises(
        TypeError, match=r"pred must be a floating-point tensor.*got dtype torch\.int64"
    ):
        iou_loss(torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 4))
    with pytest.raises(TypeError, match=r"target must be a torch\.Tensor, got list"):
        iou_loss(torch.zeros(1, 4), [[0, 0, 1, 1]])


def test_invalid_devices():
    with pytest.raises(ValueError, match="target must be on the same device as pred"):
        eiou_loss(torch.zeros(2, 4, device="meta"), torch.zeros(2, 4))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda b: iou_loss(b, b, box_format="xyxz"),
            "box_format must be one of 'xyxy', 'xywh' or 'cxcywh', got 'xyxz'",
        ),
        (
            lambda b: giou_loss(b, b, reduction="avg"),
            "reduction must be one of 'none', 'mean' or 'sum', got 'avg'",
        ),
        (lambda b: iou_loss(b, b, mode="square"), "mode must be 'linear' or 'log', got 'square'"),
        (
            lambda b: alpha_iou_loss(b, b, variant="eiou"),
            "variant must be one of 'iou', 'giou', 'diou' or 'ciou', got 'eiou'",
        ),
        (lambda b: alpha_iou_loss(b, b, alpha=0.0), "alpha must be > 0.0, got 0.0"),
        (lambda b: riou_loss(b, b, beta=1.0), "beta must be < 1, got 1.0"),
        (lambda b: riou_loss(b, b, beta=1.5), "beta must be <= 1.0, got 1.5"),
        (lambda b: focal_eiou_loss(b, b, gamma=-1.0), "gamma must be >= 0.0, got -1.0"),
        (lambda b: diou_loss(b, b, eps=-1e-7), "eps must be >= 0.0, got -1e-07"),
        (
            lambda b: box_convert(b, "xyxy", "yxyx"),
            "out_fmt must be one of 'xyxy', 'xywh' or 'cxcywh', got 'yxyx'",
        ),
        (lambda b: box_iou(b[0], b), r"boxes1 must have shape \(N, 4\), got \(4,\)"),
    ],
)
def test_invalid_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call(torch.zeros(3, 4))


def test_validate_rejects_x2_less_than_x1():
    pred = torch.tensor([[0.0, 0.0, 1.0, 1.0], [5.0, 0.0, 2.0, 1.0]])
    giou_loss(pred, pred.flip(0))  # no value check by default: no GPU sync
    with pytest.raises(
        ValueError,
        match=r"pred must have x2 >= x1 and y2 >= y1, got a box of "
        r"width -3 and height 1 at index \(1,\)",
    ):
        giou_loss(pred, pred.flip(0).abs(), validate=True)


def test_validate_names_the_box_format():
    boxes = torch.tensor([[5.0, 5.0, -2.0, 4.0]])
    with pytest.raises(
        ValueError,
        match=r"target must have x2 >= x1 and y2 >= y1 "
        r"\(box_format='cxcywh'\), got a box of width -2",
    ):
        ciou_loss(boxes.abs(), boxes, box_format="cxcywh", validate=True)


def test_validate_rejects_non_finite_coordinates():
    boxes = torch.tensor([[0.0, 0.0, float("nan"), 1.0], [0.0, 0.0, float("inf"), 1.0]])
    with pytest.raises(ValueError, match=r"pred must hold finite coordinates, got 2 non-finite"):
        diou_loss(boxes, torch.ones(2, 4), validate=True)


def test_debug_mode_turns_value_checks_on():
    bad = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    eiou_loss(bad, bad)
    cvloss_ref.set_debug(True)
    try:
        with pytest.raises(ValueError, match="x2 >= x1"):
            eiou_loss(bad, bad)
    finally:
        cvloss_ref.set_debug(False)


def test_diou_nms_invalid_arguments():
    with pytest.raises(ValueError, match=r"scores must have shape \(3,\) to match boxes"):
        diou_nms(torch.zeros(3, 4), torch.zeros(2))
    with pytest.raises(ValueError, match=r"boxes must have shape \(N, 4\), got \(2, 3, 4\)"):
        diou_nms(torch.zeros(2, 3, 4), torch.zeros(2))


# -------------------------------------------------------------------------------- NMS


def _brute_diou_nms(boxes, scores, threshold, distance_penalty=True):
    """Greedy NMS with the DIoU rule of Zheng et al.: a box is dropped when
    IoU(M, B) - rho²(M, B) / c² exceeds the threshold for a kept box M."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep = []
    for i in order:
        suppressed = False
        for k in keep:
            g = _geometry(boxes[k], boxes[i])
            iou = g.iou if g.union > 0 else 0.0
            penalty = g.rho2 / g.c2 if distance_penalty and g.c2 > 0 else 0.0
            if iou - penalty > threshold:
                suppressed = True
                break
        if not suppressed:
            keep.append(i)
    return keep


def _crowd(generator, n=60):
    """Clusters of heavily overlapping boxes with distinct scores."""
    centres = _random_boxes(generator, 6, high=200.0, min_size=20.0, max_size=60.0)
    boxes = _near(generator, centres.repeat(n // 6, 1), 0.15, 0.15)
    scores = torch.rand(n, generator=generator, dtype=F64)
    return boxes, scores


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_diou_nms_same_as_brute_force(threshold, generator):
    boxes, scores = _crowd(generator)
    keep = diou_nms(boxes, scores, threshold)
    assert keep.tolist() == _brute_diou_nms(boxes.tolist(), scores.tolist(), threshold)


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_diou_nms_without_distance_penalty_same_as_torchvision_nms(threshold, dtype, generator):
    boxes, scores = _crowd(generator)
    boxes, scores = boxes.to(dtype), scores.to(dtype)
    keep = diou_nms(boxes, scores, threshold, distance_penalty=False)
    assert keep.dtype == torch.int64
    assert torch.equal(keep, tvops.nms(boxes, scores, threshold))


def test_diou_nms_keeps_an_offset_box_that_nms_suppresses():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [3.0, 0.0, 13.0, 10.0]])
    scores = torch.tensor([0.9, 0.8])  # IoU 7/13 = 0.54; rho²/c² = 9/269
    assert tvops.nms(boxes, scores, 0.52).tolist() == [0]
    assert diou_nms(boxes, scores, 0.52).tolist() == [0, 1]


def test_diou_nms_returns_indices_sorted_by_decreasing_score(generator):
    boxes, scores = _crowd(generator)
    keep = diou_nms(boxes, scores, 0.5)
    assert (scores[keep][1:] <= scores[keep][:-1]).all()


def test_diou_nms_box_format_and_empty_input(generator):
    boxes, scores = _crowd(generator)
    cxcywh = tvops.box_convert(boxes, "xyxy", "cxcywh")
    assert torch.equal(
        diou_nms(cxcywh, scores, 0.5, box_format="cxcywh"), diou_nms(boxes, scores, 0.5)
    )
    empty = diou_nms(torch.zeros(0, 4), torch.zeros(0))
    assert empty.shape == (0,) and empty.dtype == torch.int64


# --------------------------------------------------------------------- the catalogue


def _renamed(function):
    """The reference under another code object (the harness refuses the original)."""
    code = function.__code__.replace(co_name=function.__name__ + "_copy")
    copy = types.FunctionType(
        code, function.__globals__, code.co_name, function.__defaults__, function.__closure__
    )
    copy.__kwdefaults__ = function.__kwdefaults__
    return copy


@pytest.mark.parametrize("name", BOX_NAMES)
def test_reference_passes_its_own_catalogue(name):
    assert_loss_matches(_renamed(getattr(cvloss_ref, name)), name)


NAMED_MISTAKES = [
    # item 4 of the issue: (loss, mistake function name, text of its hint)
    ("iou_loss", "no_clamp", "Clamp the intersection"),
    ("giou_loss", "plus_one", "+1 pixel"),
    ("giou_loss", "giou_over_union", "not by the union"),
    ("diou_loss", "diou_distance_not_squared", "*squared* distance"),
    ("diou_loss", "diou_target_diagonal", "not of the target box"),
    ("ciou_loss", "ciou_without_four_over_pi2", "4/π²"),
    ("box_iou", "box_iou_no_clamp", "Clamp the intersection"),
]


@pytest.mark.parametrize(("name", "mistake", "hint"), NAMED_MISTAKES)
def test_typical_mistake_is_rejected_with_its_hint(name, mistake, hint):
    found = [m for m in CATALOGUE[name].mistakes if m.fn.__name__ == mistake]
    assert found, f"{name} has no mistake {mistake}"
    with pytest.raises(AssertionError, match="hint: ") as error:
        assert_loss_matches(found[0].fn, name, check_meta=False)
    assert hint in str(error.value)


def test_ciou_alpha_not_detached_is_rejected_on_the_gradient_with_its_hint():
    (mistake,) = [
        m for m in CATALOGUE["ciou_loss"].mistakes if m.fn.__name__ == "ciou_alpha_not_detached"
    ]
    result = check_loss(mistake.fn, "ciou_loss", check_meta=False)
    assert not result.ok
    assert "the values match, but the gradients with respect to pred differ" in result.message()
    assert mistake.hint in result.message()


def test_every_mistake_is_wrong_on_some_case():
    """Cheaper than the harness (tests/test_catalogue.py runs it on every mistake)."""
    for name in BOX_NAMES:
        for mistake in CATALOGUE[name].mistakes:
            assert not check_loss(mistake.fn, name, check_meta=False, dtypes=[F64]).ok, (
                name,
                mistake.fn.__name__,
            )


# Correct alternative formulations, from centres and sizes: the harness must accept them.


def _reduced(loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum" or loss.numel() == 0:
        return loss.sum() * (1.0 if reduction == "sum" else 0.0)
    return loss.mean()


def _centre_terms(pred, target, box_format, eps):
    cx, cy, w, h = tvops.box_convert(pred, box_format, "cxcywh").unbind(-1)
    gcx, gcy, gw, gh = tvops.box_convert(target, box_format, "cxcywh").unbind(-1)
    dx, dy = (cx - gcx).abs(), (cy - gcy).abs()
    # Two intervals overlap by (w + gw)/2 - |dx|, at most the smaller one; their hull is
    # (w + gw)/2 + |dx|, at least the larger one.
    inter_w = torch.minimum((w + gw) / 2 - dx, torch.minimum(w, gw)).clamp(min=0)
    inter_h = torch.minimum((h + gh) / 2 - dy, torch.minimum(h, gh)).clamp(min=0)
    hull_w = torch.maximum((w + gw) / 2 + dx, torch.maximum(w, gw))
    hull_h = torch.maximum((h + gh) / 2 + dy, torch.maximum(h, gh))
    inter = inter_w * inter_h
    union = w * h + gw * gh - inter
    return types.SimpleNamespace(
        iou=inter / (union + eps),
        inter=inter,
        union=union,
        hull_w=hull_w,
        hull_h=hull_h,
        rho2=dx**2 + dy**2,
        c2=hull_w**2 + hull_h**2,
        w=w,
        h=h,
        gw=gw,
        gh=gh,
    )


def _angle(w, h):
    flat = (w == 0) & (h == 0)
    return torch.where(flat, 0.0, torch.atan2(torch.where(flat, 1.0, w), torch.where(flat, 1.0, h)))


def _alt_v(t):
    return 4 / math.pi**2 * (_angle(t.gw, t.gh) - _angle(t.w, t.h)) ** 2


def _alternative(elementwise):
    def loss(pred, target, *args, eps=1e-7, reduction="mean", box_format="xyxy", **params):
        terms = _centre_terms(pred, target, box_format, eps)
        return _reduced(elementwise(terms, eps, **params), reduction)

    return loss


def _alt_eiou(t, eps):
    return (
        1
        - t.iou
        + t.rho2 / (t.c2 + eps)
        + (t.w - t.gw) ** 2 / (t.hull_w**2 + eps)
        + (t.h - t.gh) ** 2 / (t.hull_h**2 + eps)
    )


def _alt_ciou(t, eps):
    v = _alt_v(t)
    with torch.no_grad():  # CIoU's weight is a constant
        alpha = v / (1 - t.iou + v + eps)
    return 1 - t.iou + t.rho2 / (t.c2 + eps) + alpha * v


def _alt_penalty_power(x, alpha):
    x = x.clamp(min=0)
    return x**alpha if alpha >= 1 else torch.where(x > 0, torch.where(x > 0, x, 1.0) ** alpha, 0.0)


def _alt_alpha_iou(t, eps, alpha=3.0, variant="iou"):
    loss = 1 - _alt_penalty_power(t.iou, alpha)
    area_c = t.hull_w * t.hull_h
    if variant == "giou":
        loss = loss + _alt_penalty_power((area_c - t.union) / (area_c + eps), alpha)
    if variant in ("diou", "ciou"):
        loss = loss + _alt_penalty_power(t.rho2 / (t.c2 + eps), alpha)
    if variant == "ciou":
        v = _alt_v(t)
        with torch.no_grad():
            beta = v / (1 - t.iou + v + eps)
        loss = loss + _alt_penalty_power(beta * v, alpha)
    return loss


def _safe_ratio(num, den):
    nonzero = den != 0
    return torch.where(nonzero, num / torch.where(nonzero, den, 1.0), 0.0)


def _alt_pairwise(giou):
    def pairwise(boxes1, boxes2):
        n, m = boxes1.shape[0], boxes2.shape[0]
        t = _centre_terms(
            boxes1[:, None, :].expand(n, m, 4), boxes2[None, :, :].expand(n, m, 4), "xyxy", 0.0
        )
        iou = _safe_ratio(t.inter, t.union)
        if not giou:
            return iou
        area_c = t.hull_w * t.hull_h
        return iou - _safe_ratio(area_c - t.union, area_c)

    return pairwise


ALTERNATIVES = {
    "box_convert": lambda boxes, in_fmt, out_fmt: tvops.box_convert(boxes, in_fmt, out_fmt),
    "box_area": lambda boxes: tvops.box_area(boxes),
    "box_iou": _alt_pairwise(giou=False),
    "generalized_box_iou": _alt_pairwise(giou=True),
    "iou_loss": _alternative(
        lambda t, eps, mode="linear": (
            1 - t.iou
            if mode == "linear"
            else -torch.log(torch.maximum(t.iou, torch.full_like(t.iou, eps)))
        )
    ),
    "giou_loss": _alternative(
        lambda t, eps: 1 - t.iou + (t.hull_w * t.hull_h - t.union) / (t.hull_w * t.hull_h + eps)
    ),
    "diou_loss": _alternative(lambda t, eps: 1 - t.iou + t.rho2 / (t.c2 + eps)),
    "ciou_loss": _alternative(_alt_ciou),
    "eiou_loss": _alternative(_alt_eiou),
    "focal_eiou_loss": _alternative(
        lambda t, eps, gamma=0.5: t.iou.detach().clamp(min=0) ** gamma * _alt_eiou(t, eps)
    ),
    "alpha_iou_loss": _alternative(_alt_alpha_iou),
    "riou_loss": _alternative(
        lambda t, eps, beta=0.95: torch.where(
            t.iou < beta, 1 - t.iou**2 / beta, (1 - t.iou) ** 2 / (1 - beta)
        )
    ),
}


@pytest.mark.parametrize("name", BOX_NAMES)
def test_alternative_formulation_is_accepted(name):
    assert_loss_matches(ALTERNATIVES[name], name)

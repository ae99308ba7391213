r"""Catalogue cases for the bounding-box losses.

Every box loss is checked on the same geometric situations (identical,
overlapping, contained, disjoint, touching, degenerate and far-apart boxes, the
three box formats, batched leading dimensions, every reduction, an empty batch),
plus cases for its own parameters.  Boxes are drawn in float64 from the seeded
generator and then cast, so that every dtype sees the same boxes.

Gradients are compared (``grad="compare"``) where the loss is differentiable.
Where it has a kink (identical boxes: ``max``/``min`` ties; touching edges and
degenerate boxes: the intersection's clamp at 0; a point box: the undefined
angle of CIoU's aspect term), correct implementations may pick different
subgradients, and only finiteness is required (``grad="finite"``).

The mistakes are hand-written wrong implementations that students do write:
the intersection not clamped at zero, the ``+1`` pixel convention, GIoU
divided by the union, DIoU's distance not squared or normalised by the wrong
diagonal, CIoU's α not detached or without :math:`4/\pi^2`, ...
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._catalogue import Case, LossSpec, Mistake, register
from .._reduction import _reduce
from ..boxes import box_convert

# ----------------------------------------------------------------- box builders
# Each builder takes the generator and returns (pred, target) in xyxy, float64.

Builder = Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]]


def _uniform(gen: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=gen, dtype=torch.float64)


def _random_boxes(
    gen: torch.Generator,
    n: int,
    *,
    low: float = 0.0,
    high: float = 100.0,
    min_size: float = 2.0,
    max_size: float = 40.0,
) -> torch.Tensor:
    corner = _uniform(gen, (n, 2), low, high)
    size = _uniform(gen, (n, 2), min_size, max_size)
    return torch.cat((corner, corner + size), dim=-1)


def _jitter(gen: torch.Generator, boxes: torch.Tensor, shift: float, scale: float) -> torch.Tensor:
    """Boxes near ``boxes``: centres moved by up to ``shift`` times the size, sizes
    scaled by ``exp(±scale)``.  With ``shift <= 0.3`` and ``scale <= 0.4`` they
    always overlap their originals."""
    n = boxes.shape[0]
    size = boxes[:, 2:] - boxes[:, :2]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2 + _uniform(gen, (n, 2), -shift, shift) * size
    new_size = size * torch.exp(_uniform(gen, (n, 2), -scale, scale))
    return torch.cat((centre - new_size / 2, centre + new_size / 2), dim=-1)


def _overlapping(gen: torch.Generator, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    target = _random_boxes(gen, n)
    return _jitter(gen, target, 0.3, 0.4), target


def _nearly_identical(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    target = _random_boxes(gen, 6, min_size=20.0, max_size=40.0)
    return _jitter(gen, target, 0.005, 0.01), target


def _identical(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    target = _random_boxes(gen, 4)
    return target.clone(), target


def _contained(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    outer = _random_boxes(gen, 6, min_size=20.0, max_size=40.0)
    size = outer[:, 2:] - outer[:, :2]
    low = outer[:, :2] + _uniform(gen, (6, 2), 0.05, 0.3) * size
    high = outer[:, 2:] - _uniform(gen, (6, 2), 0.05, 0.3) * size
    inner = torch.cat((low, high), dim=-1)
    # pred inside target for the first half, target inside pred for the rest.
    pred = torch.cat((inner[:3], outer[3:]))
    target = torch.cat((outer[:3], inner[3:]))
    return pred, target


def _disjoint(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    target = _random_boxes(gen, 6, high=50.0)
    size = _uniform(gen, (6, 2), 2.0, 30.0)
    gap = _uniform(gen, (6, 2), 1.0, 20.0)
    corner = target[:, 2:] + gap
    # Rows 0-3 are apart in x and in y (a "negative intersection" is then positive);
    # rows 4-5 are apart in x only and overlap in y.
    corner[4:, 1] = target[4:, 1] + 0.5 * (target[4:, 3] - target[4:, 1])
    return torch.cat((corner, corner + size), dim=-1), target


def _touching(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    target = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 3, dtype=torch.float64)
    pred = torch.tensor(
        [
            [10.0, 2.0, 16.0, 8.0],  # shares the right edge of the target
            [3.0, 10.0, 9.0, 14.0],  # shares its bottom edge
            [10.0, 10.0, 13.0, 12.0],
        ],  # shares its corner
        dtype=torch.float64,
    )
    return pred, target


def _degenerate(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    target = torch.tensor([[0.0, 0.0, 8.0, 6.0]] * 5, dtype=torch.float64)
    pred = torch.tensor(
        [
            [3.0, 1.0, 3.0, 5.0],  # zero width, inside the target
            [1.0, 2.0, 7.0, 2.0],  # zero height, inside the target
            [4.0, 3.0, 4.0, 3.0],  # a point inside the target
            [12.0, 9.0, 12.0, 9.0],  # a point outside the target
            [2.0, -3.0, 2.0, 9.0],
        ],  # zero width, crossing the target
        dtype=torch.float64,
    )
    return pred, target


def _identical_degenerate(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    target = torch.tensor(
        [[3.0, 1.0, 3.0, 5.0], [1.0, 2.0, 7.0, 2.0], [4.0, 3.0, 4.0, 3.0]],
        dtype=torch.float64,
    )
    return target.clone(), target


def _all_degenerate(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    pred, target = _degenerate(gen)
    same_pred, same_target = _identical_degenerate(gen)
    return torch.cat((pred, same_pred)), torch.cat((target, same_target))


def _disjoint_and_degenerate(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    pred, target = _disjoint(gen)
    more_pred, more_target = _all_degenerate(gen)
    return torch.cat((pred, more_pred)), torch.cat((target, more_target))


def _mixed(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    parts = (_overlapping(gen, 4), _contained(gen), _disjoint(gen))
    return torch.cat([p for p, _ in parts]), torch.cat([t for _, t in parts])


def _far_apart(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    target = _random_boxes(gen, 4, high=20.0, min_size=5.0, max_size=20.0)
    pred = _random_boxes(gen, 4, low=1e4, high=1e4 + 20.0, min_size=5.0, max_size=20.0)
    return pred, target


def _batched(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    pred, target = _overlapping(gen, 6)
    return pred.reshape(2, 3, 4), target.reshape(2, 3, 4)


def _empty(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    empty = torch.zeros(0, 4, dtype=torch.float64)
    return empty, empty.clone()


def _maker(build: Builder, box_format: str = "xyxy", **kwargs: object):
    """A ``Case.make``: build xyxy boxes, convert them to ``box_format``, cast them."""

    def make(gen: torch.Generator, dtype: torch.dtype) -> tuple[tuple, dict]:
        pred, target = build(gen)
        pred = box_convert(pred, "xyxy", box_format).to(dtype)
        target = box_convert(target, "xyxy", box_format).to(dtype)
        extra = dict(kwargs)
        if box_format != "xyxy":
            extra["box_format"] = box_format
        return (pred, target), extra

    return make


def _geometry_cases(**kwargs: object) -> list[Case]:
    """The cases every box loss runs, with ``kwargs`` (loss parameters) added."""
    return [
        Case(
            "random overlapping boxes",
            _maker(_overlapping, **kwargs),
            note="8 random pairs of overlapping boxes, reduction='mean'.",
        ),
        Case(
            "random overlapping boxes, reduction='sum'",
            _maker(_overlapping, reduction="sum", **kwargs),
        ),
        Case(
            "identical boxes",
            _maker(_identical, reduction="none", **kwargs),
            grad="finite",
            note="identical boxes have IoU 1 (the gradient is a subgradient at a kink).",
        ),
        Case(
            "one box inside the other",
            _maker(_contained, reduction="none", **kwargs),
            note="the intersection is the inner box; the enclosing box the outer one.",
        ),
        Case(
            "disjoint boxes",
            _maker(_disjoint, reduction="none", **kwargs),
            note="IoU is 0: the intersection is clamped at zero, never negative.",
        ),
        Case(
            "touching edges",
            _maker(_touching, reduction="none", **kwargs),
            grad="finite",
            note="boxes sharing an edge or a corner intersect in zero area.",
        ),
        Case(
            "degenerate boxes (zero width, zero height, point)",
            _maker(_all_degenerate, reduction="none", **kwargs),
            grad="finite",
            note="values and gradients must stay finite (no 0/0, no division by a zero "
            "height); for two identical points or segments the union and the "
            "enclosing box are empty, and the IoU is 0 / (0 + eps) = 0, as in "
            "torchvision.",
        ),
        Case(
            "far apart boxes (1e4)",
            _maker(_far_apart, reduction="none", **kwargs),
            note="boxes 10 000 pixels apart: no overflow, no loss of the small terms.",
        ),
        Case(
            "cxcywh boxes",
            _maker(_overlapping, "cxcywh", reduction="none", **kwargs),
            note="box_format='cxcywh': (centre x, centre y, width, height).",
        ),
        Case(
            "xywh boxes",
            _maker(_overlapping, "xywh", reduction="none", **kwargs),
            note="box_format='xywh': (corner x, corner y, width, height).",
        ),
        Case(
            "batched leading dimensions (2, 3, 4)",
            _maker(_batched, reduction="none", **kwargs),
            note="boxes of shape (..., 4): the loss has the leading shape (2, 3).",
        ),
        Case(
            "empty batch",
            _maker(_empty, **kwargs),
            note="no boxes: the mean is 0 (with a zero gradient), not NaN.",
        ),
    ]


# ------------------------------------------------------------- student mistakes


def _student(core: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Give an elementwise ``core(pred_xyxy, target_xyxy, eps, **params)`` the public
    signature (``box_format``, ``reduction``); the mistake is in ``core``."""

    def loss(
        pred: torch.Tensor,
        target: torch.Tensor,
        *,
        eps: float = 1e-7,
        reduction: str = "mean",
        box_format: str = "xyxy",
        validate: bool = False,
        **params: object,
    ) -> torch.Tensor:
        pred = box_convert(pred, box_format, "xyxy")
        target = box_convert(target, box_format, "xyxy")
        return _reduce(core(pred, target, eps, **params), reduction)

    loss.__name__ = loss.__qualname__ = core.__name__.lstrip("_")
    loss.__doc__ = core.__doc__
    return loss


def _pieces(
    pred: torch.Tensor,
    target: torch.Tensor,
    eps: float,
    *,
    clamp: bool = True,
    plus_one: bool = False,
) -> dict[str, torch.Tensor]:
    """What a student computes first: IoU, enclosing box, centre distance (with the
    two classic slips available as switches)."""
    x1, y1, x2, y2 = pred.unbind(-1)
    gx1, gy1, gx2, gy2 = target.unbind(-1)
    one = 1.0 if plus_one else 0.0
    w, h = x2 - x1 + one, y2 - y1 + one
    gw, gh = gx2 - gx1 + one, gy2 - gy1 + one
    iw = torch.minimum(x2, gx2) - torch.maximum(x1, gx1) + one
    ih = torch.minimum(y2, gy2) - torch.maximum(y1, gy1) + one
    if clamp:
        iw, ih = iw.clamp(min=0), ih.clamp(min=0)
    inter = iw * ih
    union = w * h + gw * gh - inter
    cw = torch.maximum(x2, gx2) - torch.minimum(x1, gx1) + one
    ch = torch.maximum(y2, gy2) - torch.minimum(y1, gy1) + one
    dx = (x1 + x2) / 2 - (gx1 + gx2) / 2
    dy = (y1 + y2) / 2 - (gy1 + gy2) / 2
    return {
        "iou": inter / (union + eps),
        "inter": inter,
        "union": union,
        "w": w,
        "h": h,
        "gw": gw,
        "gh": gh,
        "cw": cw,
        "ch": ch,
        "rho2": dx**2 + dy**2,
        "c2": cw**2 + ch**2,
    }


def _angle(w: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    point = (w == 0) & (h == 0)
    return torch.where(
        point,
        torch.zeros_like(w),
        torch.atan2(
            torch.where(point, torch.ones_like(w), w), torch.where(point, torch.ones_like(h), h)
        ),
    )


def _v(p: dict[str, torch.Tensor]) -> torch.Tensor:
    return 4 / math.pi**2 * (_angle(p["gw"], p["gh"]) - _angle(p["w"], p["h"])) ** 2


def _ciou(p: dict[str, torch.Tensor], eps: float) -> torch.Tensor:
    v = _v(p)
    with torch.no_grad():  # the weight alpha is a constant, as in the reference
        alpha = v / (1 - p["iou"] + v + eps)
    return 1 - p["iou"] + p["rho2"] / (p["c2"] + eps) + alpha * v


def _eiou(p: dict[str, torch.Tensor], eps: float) -> torch.Tensor:
    return (
        1
        - p["iou"]
        + p["rho2"] / (p["c2"] + eps)
        + (p["w"] - p["gw"]) ** 2 / (p["cw"] ** 2 + eps)
        + (p["h"] - p["gh"]) ** 2 / (p["ch"] ** 2 + eps)
    )


def _giou(p: dict[str, torch.Tensor], eps: float) -> torch.Tensor:
    area_c = p["cw"] * p["ch"]
    return 1 - p["iou"] + (area_c - p["union"]) / (area_c + eps)


def _diou(p: dict[str, torch.Tensor], eps: float) -> torch.Tensor:
    return 1 - p["iou"] + p["rho2"] / (p["c2"] + eps)


def _iou_mode(iou: torch.Tensor, mode: str, eps: float) -> torch.Tensor:
    return 1 - iou if mode == "linear" else -torch.log(iou.clamp(min=eps))


_HINT_CLAMP = (
    "Clamp the intersection's width and height at zero: for disjoint boxes "
    "min(x2) - max(x1) is negative, and two negative sides multiply into a "
    "positive 'intersection'."
)
_HINT_PLUS_ONE = (
    "Don't add 1 to widths and heights: the '+1 pixel' convention belongs to "
    "integer pixel indices in old Pascal VOC code; these are continuous "
    "coordinates, width = x2 - x1."
)


def _clamp_and_plus_one(loss_of_pieces: Callable[..., torch.Tensor]) -> tuple[Mistake, ...]:
    """The two classic IoU slips, applied to a correct ``loss_of_pieces(p, eps, **params)``."""

    @_student
    def no_clamp(pred, target, eps, **params):
        return loss_of_pieces(_pieces(pred, target, eps, clamp=False), eps, **params)

    @_student
    def plus_one(pred, target, eps, **params):
        return loss_of_pieces(_pieces(pred, target, eps, plus_one=True), eps, **params)

    return (Mistake(no_clamp, _HINT_CLAMP), Mistake(plus_one, _HINT_PLUS_ONE))


# ------------------------------------------------------------------------ iou_loss


@_student
def _iou_union_without_minus_intersection(pred, target, eps, mode="linear", **_):
    p = _pieces(pred, target, eps)
    iou = p["inter"] / (p["w"] * p["h"] + p["gw"] * p["gh"] + eps)
    return _iou_mode(iou, mode, eps)


@_student
def _iou_log_unguarded(pred, target, eps, mode="linear", **_):
    iou = _pieces(pred, target, eps)["iou"]
    return 1 - iou if mode == "linear" else -torch.log(iou)


register(
    LossSpec(
        name="iou_loss",
        cases=(
            *_geometry_cases(),
            Case(
                "log mode, overlapping boxes",
                _maker(_overlapping, mode="log", reduction="none"),
                note="mode='log' is UnitBox's -ln IoU.",
            ),
            Case(
                "log mode, disjoint and degenerate boxes",
                _maker(_disjoint_and_degenerate, mode="log", reduction="none"),
                grad="finite",
                note="IoU = 0: the IoU is clamped at eps, so the loss is -ln(eps), not inf.",
            ),
        ),
        mistakes=(
            *_clamp_and_plus_one(lambda p, eps, mode="linear", **_: _iou_mode(p["iou"], mode, eps)),
            Mistake(
                _iou_union_without_minus_intersection,
                "The union counts the overlap once: |A ∪ B| = |A| + |B| - |A ∩ B|.",
            ),
            Mistake(
                _iou_log_unguarded,
                "In mode='log', clamp the IoU at eps before the log: -ln 0 is infinite for "
                "disjoint boxes.",
            ),
        ),
    )
)


# ----------------------------------------------------------------------- giou_loss


@_student
def _giou_over_union(pred, target, eps, **_):
    p = _pieces(pred, target, eps)
    area_c = p["cw"] * p["ch"]
    return 1 - p["iou"] + (area_c - p["union"]) / (p["union"] + eps)


@_student
def _giou_not_a_loss(pred, target, eps, **_):
    return 1 - _giou(_pieces(pred, target, eps), eps)


register(
    LossSpec(
        name="giou_loss",
        cases=tuple(_geometry_cases()),
        mistakes=(
            Mistake(
                _giou_over_union,
                "GIoU's penalty |C \\ (A ∪ B)| / |C| is divided by the area of the enclosing "
                "box C, not by the union.",
            ),
            *_clamp_and_plus_one(lambda p, eps, **_: _giou(p, eps)),
            Mistake(
                _giou_not_a_loss,
                "Return the loss 1 - GIoU (in [0, 2]), not the similarity GIoU (in [-1, 1]).",
            ),
        ),
    )
)


# ----------------------------------------------------------------------- diou_loss


@_student
def _diou_distance_not_squared(pred, target, eps, **_):
    p = _pieces(pred, target, eps)
    return 1 - p["iou"] + torch.sqrt(p["rho2"]) / (p["c2"] + eps)


@_student
def _diou_target_diagonal(pred, target, eps, **_):
    p = _pieces(pred, target, eps)
    return 1 - p["iou"] + p["rho2"] / (p["gw"] ** 2 + p["gh"] ** 2 + eps)


@_student
def _diou_diagonal_not_squared(pred, target, eps, **_):
    p = _pieces(pred, target, eps)
    return 1 - p["iou"] + p["rho2"] / (torch.sqrt(p["c2"]) + eps)


register(
    LossSpec(
        name="diou_loss",
        cases=tuple(_geometry_cases()),
        mistakes=(
            Mistake(
                _diou_distance_not_squared,
                "rho² is the *squared* distance between the centres, (dx)² + (dy)², with no "
                "square root.",
            ),
            Mistake(
                _diou_target_diagonal,
                "c is the diagonal of the smallest box enclosing *both* boxes, not of the "
                "target box.",
            ),
            Mistake(
                _diou_diagonal_not_squared,
                "Divide the squared distance by the squared diagonal c²: the ratio is then "
                "scale-invariant and lies in [0, 1).",
            ),
            *_clamp_and_plus_one(lambda p, eps, **_: _diou(p, eps)),
        ),
    )
)


# ----------------------------------------------------------------------- ciou_loss


@_student
def _ciou_alpha_not_detached(pred, target, eps, **_):
    p = _pieces(pred, target, eps)
    v = _v(p)
    alpha = v / (1 - p["iou"] + v + eps)
    return 1 - p["iou"] + p["rho2"] / (p["c2"] + eps) + alpha * v


@_student
def _ciou_without_four_over_pi2(pred, target, eps, **_):
    p = _pieces(pred, target, eps)
    v = (_angle(p["gw"], p["gh"]) - _angle(p["w"], p["h"])) ** 2
    with torch.no_grad():
        alpha = v / (1 - p["iou"] + v + eps)
    return 1 - p["iou"] + p["rho2"] / (p["c2"] + eps) + alpha * v


@_student
def _ciou_atan_of_ratio(pred, target, eps, **_):
    p = _pieces(pred, target, eps)
    v = 4 / math.pi**2 * (torch.atan(p["gw"] / p["gh"]) - torch.atan(p["w"] / p["h"])) ** 2
    with torch.no_grad():
        alpha = v / (1 - p["iou"] + v + eps)
    return 1 - p["iou"] + p["rho2"] / (p["c2"] + eps) + alpha * v


register(
    LossSpec(
        name="ciou_loss",
        cases=tuple(_geometry_cases()),
        mistakes=(
            Mistake(
                _ciou_alpha_not_detached,
                "CIoU's alpha = v / ((1 - IoU) + v) is a weight treated as a constant: compute "
                "it under torch.no_grad(), as the authors' code and torchvision do.",
            ),
            Mistake(
                _ciou_without_four_over_pi2,
                "v = 4/π² · (arctan(w_gt/h_gt) - arctan(w/h))²: the factor 4/π² scales v "
                "to [0, 1].",
            ),
            Mistake(
                _ciou_atan_of_ratio,
                "arctan(w / h) divides by zero for a zero-height box (NaN gradient) and is "
                "0/0 for a point box: use atan2(w, h) and guard the point box.",
            ),
            *_clamp_and_plus_one(lambda p, eps, **_: _ciou(p, eps)),
        ),
    )
)


# ----------------------------------------------------------------------- eiou_loss


@_student
def _eiou_over_diagonal(pred, target, eps, **_):
    p = _pieces(pred, target, eps)
    return (
        1
        - p["iou"]
        + (p["rho2"] + (p["w"] - p["gw"]) ** 2 + (p["h"] - p["gh"]) ** 2) / (p["c2"] + eps)
    )


@_student
def _eiou_not_squared(pred, target, eps, **_):
    p = _pieces(pred, target, eps)
    return (
        1
        - p["iou"]
        + p["rho2"] / (p["c2"] + eps)
        + (p["w"] - p["gw"]).abs() / (p["cw"] + eps)
        + (p["h"] - p["gh"]).abs() / (p["ch"] + eps)
    )


@_student
def _eiou_without_distance(pred, target, eps, **_):
    p = _pieces(pred, target, eps)
    return (
        1
        - p["iou"]
        + (p["w"] - p["gw"]) ** 2 / (p["cw"] ** 2 + eps)
        + (p["h"] - p["gh"]) ** 2 / (p["ch"] ** 2 + eps)
    )


register(
    LossSpec(
        name="eiou_loss",
        cases=tuple(_geometry_cases()),
        mistakes=(
            Mistake(
                _eiou_over_diagonal,
                "EIoU divides the width term by the enclosing box's width² C_w² and the "
                "height term by its height² C_h², not by the diagonal c².",
            ),
            Mistake(
                _eiou_not_squared,
                "EIoU's width and height terms are squared differences over squared "
                "enclosing sides: (w - w_gt)² / C_w².",
            ),
            Mistake(
                _eiou_without_distance,
                "EIoU keeps DIoU's centre-distance term rho² / c² next to the width and "
                "height terms.",
            ),
            *_clamp_and_plus_one(lambda p, eps, **_: _eiou(p, eps)),
        ),
    )
)


# ----------------------------------------------------------------- focal_eiou_loss


@_student
def _focal_weight_not_detached(pred, target, eps, gamma=0.5, **_):
    p = _pieces(pred, target, eps)
    return p["iou"].clamp(min=0).pow(gamma) * _eiou(p, eps)


@_student
def _focal_one_minus_iou(pred, target, eps, gamma=0.5, **_):
    p = _pieces(pred, target, eps)
    return (1 - p["iou"]).detach().pow(gamma) * _eiou(p, eps)


@_student
def _focal_power_of_loss(pred, target, eps, gamma=0.5, **_):
    return _eiou(_pieces(pred, target, eps), eps).pow(gamma)


register(
    LossSpec(
        name="focal_eiou_loss",
        cases=(
            *_geometry_cases(),
            Case("gamma=0 (plain EIoU)", _maker(_overlapping, gamma=0.0, reduction="none")),
            Case("gamma=2", _maker(_overlapping, gamma=2.0, reduction="none")),
        ),
        mistakes=(
            Mistake(
                _focal_weight_not_detached,
                "IoU^gamma is a per-box weight without gradient (detach it), as in the "
                "reference: see focal_eiou_loss's docstring.",
            ),
            Mistake(
                _focal_one_minus_iou,
                "Focal-EIoU weights by IoU^gamma, so that well-localised boxes count more; "
                "(1 - p)^gamma is the focal loss of classification.",
            ),
            Mistake(
                _focal_power_of_loss,
                "The power gamma goes on the IoU, as a weight: IoU^gamma · L_EIoU, not "
                "L_EIoU^gamma.",
            ),
            *_clamp_and_plus_one(
                lambda p, eps, gamma=0.5, **_: (
                    p["iou"].detach().clamp(min=0).pow(gamma) * _eiou(p, eps)
                )
            ),
        ),
    )
)


# ------------------------------------------------------------------ alpha_iou_loss


def _penalty(p: dict[str, torch.Tensor], variant: str, eps: float) -> list[torch.Tensor]:
    """The penalty terms of GIoU / DIoU / CIoU (before any power)."""
    if variant == "iou":
        return []
    if variant == "giou":
        area_c = p["cw"] * p["ch"]
        return [(area_c - p["union"]) / (area_c + eps)]
    terms = [p["rho2"] / (p["c2"] + eps)]
    if variant == "ciou":
        v = _v(p)
        with torch.no_grad():
            beta = v / (1 - p["iou"] + v + eps)
        terms.append(beta * v)
    return terms


def _pow(x: torch.Tensor, alpha: float) -> torch.Tensor:
    x = x.clamp(min=0)
    if alpha >= 1:
        return x.pow(alpha)
    positive = x > 0
    return torch.where(positive, torch.where(positive, x, torch.ones_like(x)).pow(alpha), 0.0)


def _alpha_iou(p, eps, alpha=3.0, variant="iou", **_):
    return 1 - _pow(p["iou"], alpha) + sum(_pow(t, alpha) for t in _penalty(p, variant, eps))


@_student
def _alpha_power_of_one_minus_iou(pred, target, eps, alpha=3.0, variant="iou", **_):
    p = _pieces(pred, target, eps)
    return _pow(1 - p["iou"], alpha) + sum(_pow(t, alpha) for t in _penalty(p, variant, eps))


@_student
def _alpha_penalty_not_powered(pred, target, eps, alpha=3.0, variant="iou", **_):
    p = _pieces(pred, target, eps)
    return 1 - _pow(p["iou"], alpha) + sum(_penalty(p, variant, eps))


@_student
def _alpha_power_of_whole(pred, target, eps, alpha=3.0, variant="iou", **_):
    p = _pieces(pred, target, eps)
    return 1 - (p["iou"] - sum(_penalty(p, variant, eps))).pow(alpha)


@_student
def _alpha_unguarded_power(pred, target, eps, alpha=3.0, variant="iou", **_):
    p = _pieces(pred, target, eps)
    # x ** alpha without a guard: for alpha < 1 its slope is infinite at x = 0.
    return 1 - p["iou"] ** alpha + sum(t**alpha for t in _penalty(p, variant, eps))


register(
    LossSpec(
        name="alpha_iou_loss",
        cases=(
            *_geometry_cases(),
            *(
                Case(
                    f"variant={variant!r}",
                    _maker(_mixed, variant=variant, reduction="none"),
                    note="overlapping, contained and disjoint boxes.",
                )
                for variant in ("giou", "diou", "ciou")
            ),
            Case(
                "variant='ciou', degenerate boxes",
                _maker(_all_degenerate, variant="ciou", reduction="none"),
                grad="finite",
                note="CIoU's aspect term: atan(w / h) must stay finite for h = 0 and w = h = 0.",
            ),
            Case(
                "alpha=0.5, variant='giou'",
                _maker(_overlapping, alpha=0.5, variant="giou", reduction="none"),
            ),
            Case(
                "alpha=0.5, variant='diou', disjoint and degenerate boxes",
                _maker(_disjoint_and_degenerate, alpha=0.5, variant="diou", reduction="none"),
                grad="finite",
                note="x^alpha with alpha < 1 has an infinite slope at 0: guard it.",
            ),
        ),
        mistakes=(
            Mistake(
                _alpha_power_of_one_minus_iou,
                "alpha-IoU raises the IoU to the power alpha: 1 - IoU^alpha, not (1 - IoU)^alpha.",
            ),
            Mistake(
                _alpha_penalty_not_powered,
                "Each penalty term is raised to alpha too: (|C \\ (A ∪ B)| / |C|)^alpha, "
                "(rho² / c²)^alpha, (beta·v)^alpha.",
            ),
            Mistake(
                _alpha_power_of_whole,
                "Apply alpha to the IoU and to each penalty separately, 1 - IoU^alpha + "
                "P^alpha, not to the whole GIoU/DIoU/CIoU.",
            ),
            Mistake(
                _alpha_unguarded_power,
                "For alpha < 1, x^alpha has an infinite slope at x = 0, which an IoU of 0 "
                "(disjoint boxes) or a zero penalty reaches: take the gradient there as 0 with a "
                "double torch.where, where(x > 0, where(x > 0, x, 1.0) ** alpha, 0.0).",
            ),
            *_clamp_and_plus_one(_alpha_iou),
        ),
    )
)


# ----------------------------------------------------------------------- riou_loss


def _riou(iou: torch.Tensor, beta: float) -> torch.Tensor:
    return torch.where(iou < beta, 1 - iou**2 / beta, (1 - iou) ** 2 / (1 - beta))


@_student
def _riou_plain_iou_loss(pred, target, eps, beta=0.95, **_):
    return 1 - _pieces(pred, target, eps)["iou"]


@_student
def _riou_rising_branch_without_beta(pred, target, eps, beta=0.95, **_):
    iou = _pieces(pred, target, eps)["iou"]
    return torch.where(iou < beta, 1 - iou**2, (1 - iou) ** 2 / (1 - beta))


@_student
def _riou_linear_high_branch(pred, target, eps, beta=0.95, **_):
    iou = _pieces(pred, target, eps)["iou"]
    return torch.where(iou < beta, 1 - iou**2 / beta, 1 - iou)


register(
    LossSpec(
        name="riou_loss",
        cases=(
            *_geometry_cases(),
            Case(
                "nearly identical boxes (IoU above beta)",
                _maker(_nearly_identical, reduction="none"),
                note="IoU > beta = 0.95: the gradient falls towards 0 as the IoU reaches 1.",
            ),
            Case(
                "beta=0.5, both branches",
                _maker(_overlapping, beta=0.5, reduction="none"),
                note="some pairs below beta (rising gradient), some above (falling gradient).",
            ),
        ),
        mistakes=(
            Mistake(
                _riou_linear_high_branch,
                "Above beta the loss is (1 - IoU)² / (1 - beta), whose gradient falls to 0 "
                "at IoU = 1; a linear 1 - IoU keeps a constant gradient there.",
            ),
            Mistake(
                _riou_plain_iou_loss,
                "RIoU reshapes the IoU loss: its gradient grows with the IoU up to beta, "
                "then falls to 0 at IoU = 1; 1 - IoU has a constant gradient.",
            ),
            Mistake(
                _riou_rising_branch_without_beta,
                "Below beta the loss is 1 - IoU²/beta, so that both branches meet at "
                "IoU = beta (value 1 - beta) and the gradient is continuous.",
            ),
            *_clamp_and_plus_one(lambda p, eps, beta=0.95, **_: _riou(p["iou"], beta)),
        ),
    )
)


# ----------------------------------------------------------- box utilities
# The utilities are checked like the losses: box_convert and box_area on one set of
# boxes, box_iou and generalized_box_iou pairwise on two.  Their mistakes must not
# call box_convert (the harness refuses a call to the reference being checked).


def _one_set(build: Builder, **kwargs: object):
    def make(gen: torch.Generator, dtype: torch.dtype) -> tuple[tuple, dict]:
        pred, _ = build(gen)
        return (pred.to(dtype),), dict(kwargs)

    return make


def _in_format(build: Builder, in_fmt: str, out_fmt: str):
    def make(gen: torch.Generator, dtype: torch.dtype) -> tuple[tuple, dict]:
        pred, _ = build(gen)
        boxes = box_convert(pred, "xyxy", in_fmt).to(dtype)
        return (boxes,), {"in_fmt": in_fmt, "out_fmt": out_fmt}

    return make


def _xyxy_of(
    boxes: torch.Tensor, fmt: str, *, half_sizes: bool = False, xywh_as_centre: bool = False
) -> torch.Tensor:
    a, b, c, d = boxes.unbind(-1)
    if fmt == "xywh" and not xywh_as_centre:
        return torch.stack((a, b, a + c, b + d), dim=-1)
    if fmt in ("cxcywh", "xywh"):
        k = 1.0 if half_sizes else 0.5
        return torch.stack((a - k * c, b - k * d, a + k * c, b + k * d), dim=-1)
    return boxes


def _from_xyxy(
    boxes: torch.Tensor, fmt: str, *, half_sizes: bool = False, plus_one: bool = False
) -> torch.Tensor:
    x1, y1, x2, y2 = boxes.unbind(-1)
    one = 1.0 if plus_one else 0.0
    w, h = x2 - x1 + one, y2 - y1 + one
    if fmt == "xywh":
        return torch.stack((x1, y1, w, h), dim=-1)
    if fmt == "cxcywh":
        k = 1.0 if half_sizes else 0.5
        return torch.stack((x1 + k * (x2 - x1), y1 + k * (y2 - y1), w, h), dim=-1)
    return boxes


def _convert_half_sizes(boxes, in_fmt, out_fmt):
    return _from_xyxy(_xyxy_of(boxes, in_fmt, half_sizes=True), out_fmt, half_sizes=True)


def _convert_xywh_as_centre(boxes, in_fmt, out_fmt):
    return _from_xyxy(_xyxy_of(boxes, in_fmt, xywh_as_centre=True), out_fmt)


def _convert_plus_one(boxes, in_fmt, out_fmt):
    return _from_xyxy(_xyxy_of(boxes, in_fmt), out_fmt, plus_one=True)


def _convert_corner_order(boxes, in_fmt, out_fmt):
    x1, y1, x2, y2 = _xyxy_of(boxes, in_fmt).unbind(-1)
    if out_fmt == "xyxy":
        return torch.stack((x1, x2, y1, y2), dim=-1)
    return _from_xyxy(torch.stack((x1, y1, x2, y2), dim=-1), out_fmt)


register(
    LossSpec(
        name="box_convert",
        cases=(
            Case("xyxy to xywh", _in_format(_overlapping, "xyxy", "xywh")),
            Case("xyxy to cxcywh", _in_format(_overlapping, "xyxy", "cxcywh")),
            Case(
                "xywh to xyxy",
                _in_format(_overlapping, "xywh", "xyxy"),
                note="xywh is the top-left corner and the size (COCO).",
            ),
            Case(
                "cxcywh to xyxy",
                _in_format(_overlapping, "cxcywh", "xyxy"),
                note="cxcywh is the centre and the full width and height.",
            ),
            Case("xywh to cxcywh", _in_format(_overlapping, "xywh", "cxcywh")),
            Case("same format", _in_format(_overlapping, "cxcywh", "cxcywh")),
            Case("degenerate boxes", _in_format(_degenerate, "xyxy", "cxcywh")),
            Case("batched leading dimensions (2, 3, 4)", _in_format(_batched, "cxcywh", "xyxy")),
            Case("empty batch", _in_format(_empty, "xyxy", "xywh")),
        ),
        mistakes=(
            Mistake(
                _convert_half_sizes,
                "In cxcywh, w and h are the full width and height: the corners are "
                "cx ± w/2, cy ± h/2.",
            ),
            Mistake(
                _convert_xywh_as_centre,
                "xywh is the top-left corner plus the size (x2 = x + w); the centre format is "
                "cxcywh.",
            ),
            Mistake(_convert_plus_one, _HINT_PLUS_ONE),
            Mistake(
                _convert_corner_order,
                "xyxy keeps the order (x1, y1, x2, y2): both coordinates of one corner first.",
            ),
        ),
    )
)


def _area_plus_one(boxes):
    return (boxes[..., 2] - boxes[..., 0] + 1) * (boxes[..., 3] - boxes[..., 1] + 1)


def _area_as_xywh(boxes):
    return boxes[..., 2] * boxes[..., 3]


def _area_wrong_corner_order(boxes):
    return (boxes[..., 1] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 2])


register(
    LossSpec(
        name="box_area",
        cases=(
            Case("random boxes", _one_set(_overlapping)),
            Case("degenerate boxes (zero width, zero height, point)", _one_set(_degenerate)),
            Case("far from the origin (1e4)", _one_set(_far_apart)),
            Case("batched leading dimensions (2, 3, 4)", _one_set(_batched)),
            Case("empty batch", _one_set(_empty)),
        ),
        mistakes=(
            Mistake(_area_plus_one, _HINT_PLUS_ONE),
            Mistake(
                _area_as_xywh,
                "box_area takes xyxy corners: (x2 - x1)(y2 - y1), not the product of the last "
                "two coordinates.",
            ),
            Mistake(
                _area_wrong_corner_order,
                "xyxy is (x1, y1, x2, y2): the width is boxes[..., 2] - boxes[..., 0].",
            ),
        ),
    )
)


def _two_sets(build1: Builder, build2: Builder | None = None):
    """Pairwise cases: ``boxes1`` from ``build1``'s pred, ``boxes2`` from its target
    (or from ``build2``'s target, so that N != M)."""

    def make(gen: torch.Generator, dtype: torch.dtype) -> tuple[tuple, dict]:
        boxes1, boxes2 = build1(gen)
        if build2 is not None:
            boxes2 = torch.cat((boxes2, build2(gen)[1]))
        return (boxes1.to(dtype), boxes2.to(dtype)), {}

    return make


def _pairwise_pieces(boxes1, boxes2, *, clamp=True, plus_one=False):
    one = 1.0 if plus_one else 0.0
    b1, b2 = boxes1[:, None, :], boxes2[None, :, :]
    area1 = (b1[..., 2] - b1[..., 0] + one) * (b1[..., 3] - b1[..., 1] + one)
    area2 = (b2[..., 2] - b2[..., 0] + one) * (b2[..., 3] - b2[..., 1] + one)
    iw = torch.minimum(b1[..., 2], b2[..., 2]) - torch.maximum(b1[..., 0], b2[..., 0]) + one
    ih = torch.minimum(b1[..., 3], b2[..., 3]) - torch.maximum(b1[..., 1], b2[..., 1]) + one
    if clamp:
        iw, ih = iw.clamp(min=0), ih.clamp(min=0)
    inter = iw * ih
    union = area1 + area2 - inter
    cw = torch.maximum(b1[..., 2], b2[..., 2]) - torch.minimum(b1[..., 0], b2[..., 0]) + one
    ch = torch.maximum(b1[..., 3], b2[..., 3]) - torch.minimum(b1[..., 1], b2[..., 1]) + one
    return inter, union, area1 + area2, cw * ch


def _ratio(num, den):
    nonzero = den != 0
    return torch.where(nonzero, num / torch.where(nonzero, den, torch.ones_like(den)), 0.0)


def _pairwise_iou_mistake(name: str, **switches: bool):
    def box_iou(boxes1, boxes2, **_):
        inter, union, _, _ = _pairwise_pieces(boxes1, boxes2, **switches)
        return _ratio(inter, union)

    box_iou.__name__ = box_iou.__qualname__ = name
    return box_iou


def _box_iou_union_without_minus_intersection(boxes1, boxes2, **_):
    inter, _, area_sum, _ = _pairwise_pieces(boxes1, boxes2)
    return _ratio(inter, area_sum)


def _pairwise_giou_mistake(name: str, **switches: bool):
    def generalized_box_iou(boxes1, boxes2, **_):
        inter, union, _, area_c = _pairwise_pieces(boxes1, boxes2, **switches)
        return _ratio(inter, union) - _ratio(area_c - union, area_c)

    generalized_box_iou.__name__ = generalized_box_iou.__qualname__ = name
    return generalized_box_iou


def _giou_pairwise_over_union(boxes1, boxes2, **_):
    inter, union, _, area_c = _pairwise_pieces(boxes1, boxes2)
    return _ratio(inter, union) - _ratio(area_c - union, union)


_PAIRWISE_CASES = (
    Case(
        "random boxes, 5 x 7",
        _two_sets(_overlapping, _disjoint),
        note="pairwise: every box of boxes1 against every box of boxes2, shape (N, M).",
    ),
    Case("identical sets", _two_sets(_identical), grad="finite"),
    Case("one box inside the other", _two_sets(_contained)),
    Case(
        "disjoint boxes",
        _two_sets(_disjoint),
        note="IoU is 0: the intersection is clamped at zero, never negative.",
    ),
    Case("touching edges", _two_sets(_touching), grad="finite"),
    Case(
        "degenerate boxes (zero width, zero height, point)",
        _two_sets(_all_degenerate),
        grad="finite",
        note="an empty union (two identical points) gives 0, not 0/0 = NaN.",
    ),
    Case("far apart boxes (1e4)", _two_sets(_far_apart)),
    Case(
        "no boxes in boxes1",
        _two_sets(_empty, _overlapping),
        note="N = 0: the result has shape (0, M).",
    ),
)

register(
    LossSpec(
        name="box_iou",
        cases=_PAIRWISE_CASES,
        mistakes=(
            Mistake(_pairwise_iou_mistake("box_iou_no_clamp", clamp=False), _HINT_CLAMP),
            Mistake(_pairwise_iou_mistake("box_iou_plus_one", plus_one=True), _HINT_PLUS_ONE),
            Mistake(
                _box_iou_union_without_minus_intersection,
                "The union counts the overlap once: |A ∪ B| = |A| + |B| - |A ∩ B|.",
            ),
        ),
    )
)

register(
    LossSpec(
        name="generalized_box_iou",
        cases=_PAIRWISE_CASES,
        mistakes=(
            Mistake(
                _giou_pairwise_over_union,
                "GIoU's penalty |C \\ (A ∪ B)| / |C| is divided by the area of the enclosing "
                "box C, not by the union.",
            ),
            Mistake(
                _pairwise_giou_mistake("generalized_box_iou_no_clamp", clamp=False), _HINT_CLAMP
            ),
            Mistake(
                _pairwise_giou_mistake("generalized_box_iou_plus_one", plus_one=True),
                _HINT_PLUS_ONE,
            ),
        ),
    )
)

r"""Bounding-box utilities and IoU-based regression losses, and DIoU-NMS.

Boxes are tensors of shape ``(..., 4)``.  The default format is ``"xyxy"``
(:math:`x_1, y_1, x_2, y_2` with :math:`x_2 \ge x_1`, :math:`y_2 \ge y_1`); the losses
take ``box_format="xywh"`` (corner, width, height) or ``"cxcywh"`` (centre, width,
height) as well and convert both boxes to ``"xyxy"`` first.  Losses are elementwise
over matching pairs (``pred[i]`` against ``target[i]``, any leading shape);
:func:`box_iou` and :func:`generalized_box_iou` are pairwise, ``(N, 4) x (M, 4) ->
(N, M)``, as in ``torchvision.ops``.

Every loss is built from the same pieces, computed once by :func:`_box_terms`:
intersection :math:`I`, union :math:`U`, :math:`\mathrm{IoU} = I / (U + \varepsilon)`,
the smallest enclosing box (width :math:`C_w`, height :math:`C_h`, squared diagonal
:math:`c^2 = C_w^2 + C_h^2`) and the squared distance :math:`\rho^2` between the centres.

Conventions:

* ``eps`` (default ``1e-7``, as torchvision) is *added to every denominator*: the
  union, the enclosing area, :math:`c^2`, :math:`C_w^2`, :math:`C_h^2` and CIoU's
  :math:`(1 - \mathrm{IoU}) + v`.  On ordinary boxes this changes nothing visible
  (the values equal torchvision's to rounding); on degenerate boxes it keeps every
  value and gradient finite.  In particular the IoU of two boxes whose union is
  empty (two identical points or segments) is :math:`0 / (0 + \varepsilon) = 0`, as
  in torchvision, so identical degenerate boxes get an IoU loss of 1.
* The intersection is clamped at zero (``clamp(min=0)``).  At exactly zero (touching
  edges, zero-width boxes) the losses have a kink, where the intersection gets the
  gradient of ``clamp`` (zero in current PyTorch, like torchvision's masked
  intersection); the catalogue asks students only for finite gradients there.
* Half precision (float16, bfloat16) is computed in float32 and returned in the
  input dtype: box areas overflow float16 beyond about 256 x 256 pixels.
* :math:`1 - \mathrm{IoU}` and GIoU's :math:`|C| - U` are formed from differences of
  coordinates, never by subtracting nearly equal areas (:func:`_box_gaps`), so the
  losses of nearly coincident boxes keep their relative accuracy (a few ulps, checked
  against 360-digit arithmetic in ``tests/test_accuracy.py``) where ``1 - I / U``
  keeps only an absolute accuracy of one epsilon.
* No host synchronisation and no Python branch on tensor values: every loss runs
  under ``torch.compile(fullgraph=True)``, in CUDA graphs and on ``meta`` tensors.
  Value checks (finite coordinates, :math:`x_2 \ge x_1`, :math:`y_2 \ge y_1`) run only
  with ``validate=True`` or :func:`cvloss_ref.set_debug`.
* ``reduction`` defaults to ``"mean"`` everywhere; torchvision's box losses default
  to ``"none"``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from . import _fused
from ._numerics import log1p, safe_divide, safe_pow, widen, with_gradient_of
from ._numerics import upcast as _upcast
from ._reduction import _check_reduction, _reduce
from ._validation import (
    _check_floating,
    _check_number,
    _check_same_device,
    _check_same_shape,
    _check_tensor,
    _wants_values,
)

__all__ = [
    "alpha_iou_loss",
    "box_area",
    "box_convert",
    "box_iou",
    "ciou_loss",
    "diou_loss",
    "diou_nms",
    "eiou_loss",
    "focal_eiou_loss",
    "generalized_box_iou",
    "giou_loss",
    "iou_loss",
    "riou_loss",
]

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")
IOU_MODES = ("linear", "log")
ALPHA_IOU_VARIANTS = ("iou", "giou", "diou", "ciou")

_FOUR_OVER_PI_SQUARED = 4.0 / math.pi**2


# --------------------------------------------------------------------------- checks


def _check_box_format(box_format: object, name: str) -> str:
    """``box_format`` must be one of :data:`BOX_FORMATS`."""
    if box_format not in BOX_FORMATS:
        raise ValueError(f"{name} must be one of 'xyxy', 'xywh' or 'cxcywh', got {box_format!r}")
    return box_format


def _check_boxes(boxes: object, name: str, *, floating: bool = True) -> torch.Tensor:
    """``boxes`` must be a tensor of shape ``(..., 4)``: floating, or with
    ``floating=False`` floating or integer (not bool or complex)."""
    if floating:
        _check_floating(boxes, name)
    else:
        _check_tensor(boxes, name)
        if boxes.dtype == torch.bool or boxes.is_complex():
            raise TypeError(
                f"{name} must be a floating-point or integer tensor, got dtype {boxes.dtype}"
            )
    if boxes.dim() == 0 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (..., 4), got {tuple(boxes.shape)}")
    return boxes


def _check_box_values(
    boxes: torch.Tensor, xyxy: torch.Tensor, name: str, box_format: str, validate: bool
) -> None:
    """Finite coordinates and non-negative widths and heights (a value check).

    ``boxes`` is the tensor as given, ``xyxy`` the same boxes converted to ``"xyxy"``.
    """
    if not _wants_values(validate):
        return
    finite = torch.isfinite(boxes)
    if not bool(finite.all()):
        count = int((~finite).sum())
        raise ValueError(f"{name} must hold finite coordinates, got {count} non-finite value(s)")
    widths = xyxy[..., 2] - xyxy[..., 0]
    heights = xyxy[..., 3] - xyxy[..., 1]
    bad = (widths < 0) | (heights < 0)
    if bool(bad.any()):
        index = tuple(int(i) for i in bad.nonzero()[0])
        given = "" if box_format == "xyxy" else f" (box_format={box_format!r})"
        raise ValueError(
            f"{name} must have x2 >= x1 and y2 >= y1{given}, got a box of width "
            f"{float(widths[index]):g} and height {float(heights[index]):g} at index {index}"
        )


def _prepare_pair(
    pred: torch.Tensor,
    target: torch.Tensor,
    box_format: str,
    eps: float,
    reduction: str,
    validate: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.dtype]:
    """Check a (pred, target) pair and return both in ``"xyxy"``, upcast from half
    precision, with the dtype the loss is returned in."""
    _check_boxes(pred, "pred")
    _check_boxes(target, "target")
    _check_same_shape(pred, target, "pred", "target")
    _check_same_device([pred, target], ["pred", "target"])
    _check_box_format(box_format, "box_format")
    _check_number(eps, "eps", minimum=0.0)
    _check_reduction(reduction)
    out_dtype = torch.promote_types(pred.dtype, target.dtype)
    # Convert after upcasting: cxcywh -> xyxy in float16 loses whole pixels at 1000 px.
    pred_xyxy = box_convert(_upcast(pred.to(out_dtype)), box_format, "xyxy")
    target_xyxy = box_convert(_upcast(target.to(out_dtype)), box_format, "xyxy")
    _check_box_values(pred, pred_xyxy, "pred", box_format, validate)
    _check_box_values(target, target_xyxy, "target", box_format, validate)
    return pred_xyxy, target_xyxy, out_dtype


def _finish(loss: torch.Tensor, reduction: str, out_dtype: torch.dtype) -> torch.Tensor:
    """Reduce (in the computing precision) and cast back to the input dtype."""
    return _reduce(loss, reduction).to(out_dtype)


# ----------------------------------------------------------------------- utilities


def box_convert(boxes: torch.Tensor, in_fmt: str, out_fmt: str) -> torch.Tensor:
    r"""Convert boxes between the ``"xyxy"``, ``"xywh"`` and ``"cxcywh"`` formats.

    .. math::

        (x_1, y_1, x_2, y_2) = (x, y, x + w, y + h)
        = (c_x - \tfrac{w}{2},\ c_y - \tfrac{h}{2},\ c_x + \tfrac{w}{2},\ c_y + \tfrac{h}{2})

    Args:
        boxes: ``(..., 4)`` boxes in ``in_fmt``.
        in_fmt: ``"xyxy"`` (corners), ``"xywh"`` (top-left corner, width, height) or
            ``"cxcywh"`` (centre, width, height).
        out_fmt: one of the same.

    Returns:
        ``(..., 4)`` boxes in ``out_fmt``, in the dtype of ``boxes`` (the input itself
        when the formats are equal), as ``torchvision.ops.box_convert``.

    Example:
        >>> box_convert(torch.tensor([[1.0, 2.0, 5.0, 4.0]]), "xyxy", "cxcywh")
        tensor([[3., 3., 4., 2.]])
    """
    _check_boxes(boxes, "boxes", floating=False)
    _check_box_format(in_fmt, "in_fmt")
    _check_box_format(out_fmt, "out_fmt")
    if in_fmt == out_fmt:
        return boxes
    a, b, c, d = boxes.unbind(-1)
    if in_fmt == "xywh":
        a, b, c, d = a, b, a + c, b + d
    elif in_fmt == "cxcywh":
        a, b, c, d = a - c / 2, b - d / 2, a + c / 2, b + d / 2
    # (a, b, c, d) is now (x1, y1, x2, y2).
    if out_fmt == "xywh":
        a, b, c, d = a, b, c - a, d - b
    elif out_fmt == "cxcywh":
        a, b, c, d = (a + c) / 2, (b + d) / 2, c - a, d - b
    return torch.stack((a, b, c, d), dim=-1)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    r"""Area of ``"xyxy"`` boxes, :math:`(x_2 - x_1)(y_2 - y_1)`.

    The coordinates are widened before they are subtracted and multiplied, with
    ``torchvision.ops.box_area``'s dtype rule: int8, int16 and uint8 boxes give
    **int32** areas, float16 and bfloat16 boxes **float32** areas; int32, int64,
    float32 and float64 boxes keep their dtype.  (An int16 box of side 200 has area
    40000, beyond int16's 32767; a float16 area above 65504, a 256 x 256 box, is
    infinite.)  int32 areas overflow beyond :math:`2^{31} - 1` (sides of about 46340),
    as in torchvision: pass int64 boxes for larger ones.

    Args:
        boxes: ``(..., 4)`` boxes in ``"xyxy"`` format, floating or integer.

    Returns:
        ``(...)`` areas, in the widened dtype.

    Example:
        >>> box_area(torch.tensor([[0.0, 0.0, 2.0, 3.0], [1.0, 1.0, 1.0, 5.0]]))
        tensor([6., 0.])
        >>> box_area(torch.tensor([[0, 0, 100, 100]], dtype=torch.int8))
        tensor([10000], dtype=torch.int32)
    """
    _check_boxes(boxes, "boxes", floating=False)
    boxes = widen(boxes)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _prepare_pairwise(
    boxes1: object, boxes2: object, validate: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.dtype]:
    """Check two sets of ``(N, 4)``/``(M, 4)`` boxes, floating or integer; return both
    in their promoted dtype, widened (``_numerics.widen``), and the dtype of the
    result: the promoted dtype for floating boxes, the default floating dtype
    (float32) for integer ones, as in torchvision, whose ratios of integer areas are
    true divisions."""
    for boxes, name in ((boxes1, "boxes1"), (boxes2, "boxes2")):
        _check_boxes(boxes, name, floating=False)
        if boxes.dim() != 2:
            raise ValueError(f"{name} must have shape (N, 4), got {tuple(boxes.shape)}")
    _check_same_device([boxes1, boxes2], ["boxes1", "boxes2"])
    dtype = torch.promote_types(boxes1.dtype, boxes2.dtype)
    out_dtype = dtype if dtype.is_floating_point else torch.get_default_dtype()
    boxes1 = widen(boxes1.to(dtype))
    boxes2 = widen(boxes2.to(dtype))
    _check_box_values(boxes1, boxes1, "boxes1", "xyxy", validate)
    _check_box_values(boxes2, boxes2, "boxes2", "xyxy", validate)
    return boxes1, boxes2, out_dtype


class _Overlap(NamedTuple):
    """What two boxes share and what encloses them; see :func:`_box_geometry`."""

    inter: torch.Tensor  # |A ∩ B|
    union: torch.Tensor  # |A ∪ B|
    size1: torch.Tensor  # (w, h) of the first boxes, in the last dimension
    size2: torch.Tensor  # (w, h) of the second boxes
    enclosing_size: torch.Tensor | None  # (C_w, C_h) of the smallest enclosing box C


def _box_geometry(boxes1: torch.Tensor, boxes2: torch.Tensor, enclosing: bool = True) -> _Overlap:
    """Intersection, union, sizes and (with ``enclosing``) the enclosing box's size of
    ``"xyxy"`` boxes that broadcast against each other: the one geometry of this
    module, for matching pairs (``pred``, ``target`` of one shape: the losses) and for
    all pairs (``boxes1[:, None]``, ``boxes2[None]``: :func:`box_iou`,
    :func:`generalized_box_iou`).  The areas are taken before broadcasting, so an
    ``(N, M)`` result costs one ``(N, M, 2)`` intersection and nothing more.

    The x and y directions are computed together: ``[..., :2]`` holds the top-left
    corners ``(x1, y1)`` and ``[..., 2:]`` the bottom-right ones ``(x2, y2)``.
    """
    top_left1, bottom_right1 = boxes1[..., :2], boxes1[..., 2:]
    top_left2, bottom_right2 = boxes2[..., :2], boxes2[..., 2:]
    size1 = bottom_right1 - top_left1  # (w, h)
    size2 = bottom_right2 - top_left2
    # Clamped at 0: disjoint boxes intersect in nothing (not in a negative area).
    inter_size = (
        torch.minimum(bottom_right1, bottom_right2) - torch.maximum(top_left1, top_left2)
    ).clamp(min=0)
    inter = inter_size[..., 0] * inter_size[..., 1]
    union = size1[..., 0] * size1[..., 1] + size2[..., 0] * size2[..., 1] - inter
    enclosing_size = None
    if enclosing:
        enclosing_size = torch.maximum(bottom_right1, bottom_right2) - torch.minimum(
            top_left1, top_left2
        )
    return _Overlap(inter, union, size1, size2, enclosing_size)


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor, *, validate: bool = False) -> torch.Tensor:
    r"""Pairwise intersection over union of two sets of ``"xyxy"`` boxes.

    .. math:: \mathrm{IoU}(A, B) = \frac{|A \cap B|}{|A \cup B|}

    Equal to ``torchvision.ops.box_iou`` wherever that is finite.  Where the union is
    empty (two identical points or segments, 0/0 in torchvision, which returns NaN)
    the IoU is defined as 0, with a zero gradient.  No ``eps`` is added.

    Integer boxes are accepted, as in torchvision: the coordinates are widened as in
    :func:`box_area` (int8/int16/uint8 to int32) before anything is subtracted or
    multiplied, intersections and unions are exact integers, and the IoU is their true
    quotient in the default floating dtype (float32).  (torchvision subtracts uint8
    corners before widening them, which wraps around for disjoint boxes.)

    Args:
        boxes1: ``(N, 4)`` boxes in ``"xyxy"`` format, floating or integer.
        boxes2: ``(M, 4)`` boxes in ``"xyxy"`` format, floating or integer.
        validate: check that coordinates are finite and ``x2 >= x1``, ``y2 >= y1``
            (reads values back from the device).

    Returns:
        ``(N, M)`` IoU values in ``[0, 1]``, in the promoted dtype of the boxes (half
        precision is computed in float32), or float32 for integer boxes.

    Example:
        >>> box_iou(torch.tensor([[0.0, 0.0, 2.0, 2.0]]),
        ...         torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 1.0, 1.0]]))
        tensor([[0.1429, 0.2500]])
    """
    boxes1, boxes2, out_dtype = _prepare_pairwise(boxes1, boxes2, validate)
    overlap = _box_geometry(boxes1[:, None], boxes2[None], enclosing=False)
    return safe_divide(overlap.inter, overlap.union).to(out_dtype)


def generalized_box_iou(
    boxes1: torch.Tensor, boxes2: torch.Tensor, *, validate: bool = False
) -> torch.Tensor:
    r"""Pairwise generalized IoU of two sets of ``"xyxy"`` boxes.

    .. math::

        \mathrm{GIoU}(A, B) = \mathrm{IoU}(A, B) - \frac{|C \setminus (A \cup B)|}{|C|}

    where :math:`C` is the smallest box enclosing :math:`A` and :math:`B`.  Equal to
    ``torchvision.ops.generalized_box_iou`` wherever that is finite; a zero union
    gives IoU 0 and a zero enclosing area (boxes on one line) a penalty of 0, each
    with a zero gradient, where torchvision returns NaN.  Integer boxes are accepted,
    with the dtype rules of :func:`box_iou`.

    Args:
        boxes1: ``(N, 4)`` boxes in ``"xyxy"`` format, floating or integer.
        boxes2: ``(M, 4)`` boxes in ``"xyxy"`` format, floating or integer.
        validate: check that coordinates are finite and ``x2 >= x1``, ``y2 >= y1``.

    Returns:
        ``(N, M)`` values in ``[-1, 1]``, in the promoted dtype of the boxes, or
        float32 for integer boxes.

    Reference: Rezatofighi et al., "Generalized Intersection over Union: A Metric and
    a Loss for Bounding Box Regression", CVPR 2019.

    Example:
        >>> generalized_box_iou(torch.tensor([[0.0, 0.0, 1.0, 1.0]]),
        ...                     torch.tensor([[2.0, 0.0, 3.0, 1.0]]))
        tensor([[-0.3333]])
    """
    boxes1, boxes2, out_dtype = _prepare_pairwise(boxes1, boxes2, validate)
    inter, union, _, _, enclosing_size = _box_geometry(boxes1[:, None], boxes2[None])
    enclosing_size = enclosing_size.clamp(min=0)  # as torchvision, for invalid boxes
    enclosing_area = enclosing_size[..., 0] * enclosing_size[..., 1]
    giou = safe_divide(inter, union) - safe_divide(enclosing_area - union, enclosing_area)
    return giou.to(out_dtype)


# ------------------------------------------------------------------- shared pieces


class _BoxTerms(NamedTuple):
    """The geometric pieces every IoU-based loss is built from (elementwise)."""

    inter: torch.Tensor  # |A ∩ B|
    union: torch.Tensor  # |A ∪ B|
    iou: torch.Tensor  # inter / (union + eps)
    iou_gap: torch.Tensor  # 1 - iou, formed without cancellation (see _box_gaps)
    enclosing_gap: torch.Tensor  # |C| - |A ∪ B|, likewise
    pred_w: torch.Tensor
    pred_h: torch.Tensor
    target_w: torch.Tensor
    target_h: torch.Tensor
    enclosing_w: torch.Tensor  # width of the smallest enclosing box C
    enclosing_h: torch.Tensor
    centre_dist2: torch.Tensor  # rho^2: squared distance between the centres
    diagonal2: torch.Tensor  # c^2: squared diagonal of C (no eps)


def _box_gaps(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r""":math:`U - I` and :math:`|C| - U` of matching ``"xyxy"`` boxes, without
    cancellation: for nearly coincident boxes both are tiny differences of nearly
    equal areas, which ``U - I`` and ``C_w C_h - U`` would lose entirely.

    Along each axis let :math:`w, w'` be the two extents, :math:`w_\cap` their
    overlap (:math:`\ge 0`), :math:`s` the gap between them (:math:`\ge 0`, and
    :math:`w_\cap s = 0`), and :math:`a, b` the lengths of the prediction outside the
    target and of the target outside the prediction: :math:`w = w_\cap + a`,
    :math:`w' = w_\cap + b`, :math:`C_w = w_\cap + a + b + s`.  Then

    .. math::

        U - I = |A \setminus B| + |B \setminus A|
              = a_x h + w_\cap a_y + b_x h' + w_\cap b_y, \qquad
        |C| - U = a_x b_y + b_x a_y + s_x C_h + s_y (C_w - s_x),

    sums of products of non-negative terms.  The lengths come from the corner
    differences :math:`\delta = 	ext{pred} - 	ext{target}` (exact for close boxes,
    Sterbenz's lemma): the prediction reaches :math:`lpha = (\delta_2)_+ +
    (-\delta_1)_+` beyond the target's edges, which is :math:`a` when the extents
    overlap and :math:`w + s > w` when they do not, so :math:`a = \min(w, lpha)`;
    likewise :math:`b` with :math:`eta = (-\delta_2)_+ + (\delta_1)_+`.
    """
    corner_diff = pred - target
    top_left_diff, bottom_right_diff = corner_diff[..., :2], corner_diff[..., 2:]
    size = pred[..., 2:] - pred[..., :2]
    target_size = target[..., 2:] - target[..., :2]
    pred_beyond = bottom_right_diff.clamp(min=0) + (-top_left_diff).clamp(min=0)
    target_beyond = (-bottom_right_diff).clamp(min=0) + top_left_diff.clamp(min=0)
    pred_only = torch.minimum(size, pred_beyond)  # (a_x, a_y)
    target_only = torch.minimum(target_size, target_beyond)  # (b_x, b_y)
    overlap = torch.minimum(pred[..., 2:], target[..., 2:]) - torch.maximum(
        pred[..., :2], target[..., :2]
    )
    inter_w = overlap[..., 0].clamp(min=0)
    separation = (-overlap).clamp(min=0)  # (s_x, s_y)
    enclosing_w, enclosing_h = (size + target_beyond).unbind(-1)  # C = w + beta
    inter_gap = (
        pred_only[..., 0] * size[..., 1]
        + inter_w * pred_only[..., 1]
        + target_only[..., 0] * target_size[..., 1]
        + inter_w * target_only[..., 1]
    )
    enclosing_gap = (
        pred_only[..., 0] * target_only[..., 1]
        + target_only[..., 0] * pred_only[..., 1]
        + separation[..., 0] * enclosing_h
        + separation[..., 1] * (enclosing_w - separation[..., 0])
    )
    return inter_gap, enclosing_gap


def _box_terms(pred: torch.Tensor, target: torch.Tensor, eps: float) -> _BoxTerms:
    r"""Intersection, union, IoU, enclosing box and centre distance of matching
    ``"xyxy"`` boxes (:func:`_box_geometry` and the centres); computed once and shared
    by every loss of this module.

    ``iou_gap`` (:math:`1 - \mathrm{IoU}`) and ``enclosing_gap`` (:math:`|C| - U`) take
    their values from :func:`_box_gaps`, accurate to a few ulps however close the boxes,
    and their gradients from the plain forms ``1 - iou`` and ``C_w C_h - union``: the
    same functions, whose derivatives have no cancellation (and the conventions at kinks
    that the fast path in ``_fused.py`` follows).
    """
    inter, union, size, target_size, enclosing_size = _box_geometry(pred, target)
    iou = inter / (union + eps)
    inter_gap, enclosing_gap = _box_gaps(pred, target)
    # (U - I + eps) / (U + eps) = 1 - I / (U + eps); U = I + (U - I), a sum of terms >= 0.
    iou_gap = with_gradient_of((inter_gap + eps) / (inter + inter_gap + eps), 1 - iou)
    enclosing_area = enclosing_size[..., 0] * enclosing_size[..., 1]
    enclosing_gap = with_gradient_of(enclosing_gap, enclosing_area - union)
    # Centres are (x1 + x2) / 2: twice their difference from the corner differences
    # (exact for close boxes), squared, over 4.
    centre_diff = (pred[..., :2] - target[..., :2]) + (pred[..., 2:] - target[..., 2:])
    centre_dist2 = (centre_diff**2).sum(-1) / 4
    diagonal2 = (enclosing_size**2).sum(-1)
    pred_w, pred_h = size.unbind(-1)
    target_w, target_h = target_size.unbind(-1)
    enclosing_w, enclosing_h = enclosing_size.unbind(-1)
    return _BoxTerms(
        inter,
        union,
        iou,
        iou_gap,
        enclosing_gap,
        pred_w,
        pred_h,
        target_w,
        target_h,
        enclosing_w,
        enclosing_h,
        centre_dist2,
        diagonal2,
    )


def _aspect_angle(width: torch.Tensor, height: torch.Tensor) -> torch.Tensor:
    r""":math:`\arctan(w / h)` written as ``atan2(w, h)``: finite at ``h = 0``
    (:math:`\pi/2`, with the finite gradient :math:`-1/w` in ``h``).  At a point box
    (``w = h = 0``) the angle is undefined; it is taken as 0 with a zero gradient
    (double ``where``, since ``atan2``'s gradient there is 0/0)."""
    point = (width == 0) & (height == 0)
    angle = torch.atan2(torch.where(point, 1.0, width), torch.where(point, 1.0, height))
    return torch.where(point, 0.0, angle)


def _aspect_consistency(terms: _BoxTerms) -> torch.Tensor:
    r"""CIoU's :math:`v = \frac{4}{\pi^2}(\arctan\frac{w^{gt}}{h^{gt}} - \arctan\frac{w}{h})^2`."""
    # Both boxes' angles in one call: [0] the target's, [1] the prediction's.
    angles = _aspect_angle(
        torch.stack((terms.target_w, terms.pred_w)), torch.stack((terms.target_h, terms.pred_h))
    )
    return _FOUR_OVER_PI_SQUARED * (angles[0] - angles[1]) ** 2


# ----------------------------------------------------- readable compositions (reference)
#
# The formulas of giou_loss, diou_loss and ciou_loss written with autograd, term by term
# as in their docstrings.  The losses run them as _fused.box_loss (cvloss_ref/_fused.py:
# the same formulas with a hand-written gradient), which the tests compare with them,
# except under torch.func transforms (_box_loss_elementwise below).


def _giou_elementwise(terms: _BoxTerms, eps: float) -> torch.Tensor:
    enclosing_area = terms.enclosing_w * terms.enclosing_h
    return terms.iou_gap + terms.enclosing_gap / (enclosing_area + eps)


def _diou_elementwise(terms: _BoxTerms, eps: float) -> torch.Tensor:
    return terms.iou_gap + terms.centre_dist2 / (terms.diagonal2 + eps)


def _ciou_elementwise(terms: _BoxTerms, eps: float) -> torch.Tensor:
    v = _aspect_consistency(terms)
    # alpha is a trade-off weight, not something to optimise: the paper's code and
    # torchvision compute it without gradient, and the grader compares gradients.
    # detach(), not only no_grad (which forward-mode AD and torch.func.jvp ignore):
    # constant for tangents too, so that a jvp is the gradient's Jacobian times a vector.
    with torch.no_grad():
        alpha = (v / (terms.iou_gap + v + eps)).detach()
    return _diou_elementwise(terms, eps) + alpha * v


_ELEMENTWISE = {"giou": _giou_elementwise, "diou": _diou_elementwise, "ciou": _ciou_elementwise}


def _box_loss_elementwise(
    pred: torch.Tensor, target: torch.Tensor, kind: str, eps: float
) -> torch.Tensor:
    """The elementwise ``kind`` loss of checked ``"xyxy"`` boxes, as ``giou_loss``,
    ``diou_loss`` and ``ciou_loss`` compute it: ``_fused.box_loss`` (the composition
    with a hand-written gradient) on every call, except while ``torch.func`` transforms
    (``vmap``, ``grad``, ``jvp``, ``jacrev``) or forward-mode AD are active, which its
    autograd Function does not support: then the composition itself."""
    if _fused.transforms_active():
        return _ELEMENTWISE[kind](_box_terms(pred, target, eps), eps)
    return _fused.box_loss(pred, target, kind, eps)


def _box_loss_reference(
    pred: torch.Tensor,
    target: torch.Tensor,
    kind: str,
    eps: float = 1e-7,
    reduction: str = "mean",
    *,
    box_format: str = "xyxy",
    validate: bool = False,
) -> torch.Tensor:
    """``giou_loss``/``diou_loss``/``ciou_loss`` (``kind``) through the readable
    composition and autograd: the reference of the fast path."""
    pred, target, out_dtype = _prepare_pair(pred, target, box_format, eps, reduction, validate)
    loss = _ELEMENTWISE[kind](_box_terms(pred, target, eps), eps)
    return _finish(loss, reduction, out_dtype)


# -------------------------------------------------------------------------- losses


def iou_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    mode: str = "linear",
    eps: float = 1e-7,
    reduction: str = "mean",
    *,
    box_format: str = "xyxy",
    validate: bool = False,
) -> torch.Tensor:
    r"""IoU loss for matching boxes: linear :math:`1 - \mathrm{IoU}` or UnitBox's
    :math:`-\ln \mathrm{IoU}`.

    .. math::

        \mathrm{IoU} = \frac{|A \cap B|}{|A \cup B| + \varepsilon}, \qquad
        \mathcal{L}_{\text{linear}} = 1 - \mathrm{IoU}, \qquad
        \mathcal{L}_{\text{log}} = -\ln \max(\mathrm{IoU}, \varepsilon)

    In ``"log"`` mode the IoU is clamped at ``eps`` (as mmdetection's ``IoULoss``),
    so disjoint boxes give :math:`-\ln \varepsilon \approx 16.1` with a zero gradient
    instead of :math:`+\infty`.  Like every IoU loss it has a zero gradient for
    disjoint boxes; GIoU, DIoU and CIoU add terms that do not.

    Args:
        pred: predicted boxes ``(..., 4)``.
        target: target boxes, the shape of ``pred``.
        mode: ``"linear"`` (:math:`1 - \mathrm{IoU}`) or ``"log"``
            (:math:`-\ln \mathrm{IoU}`, UnitBox).
        eps: added to the union (and the clamp of ``"log"`` mode).
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        box_format: ``"xyxy"`` | ``"xywh"`` | ``"cxcywh"``, for both inputs.
        validate: check finite coordinates and non-negative widths and heights.

    Returns:
        The loss, shape ``(...)`` for ``"none"``, else a scalar, in the input dtype.

    Reference: Yu et al., "UnitBox: An Advanced Object Detection Network", ACM MM 2016.

    Example:
        >>> pred = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
        >>> target = torch.tensor([[1.0, 0.0, 3.0, 2.0]])
        >>> iou_loss(pred, target)
        tensor(0.6667)
        >>> iou_loss(pred, target, mode="log")
        tensor(1.0986)
    """
    if mode not in IOU_MODES:
        raise ValueError(f"mode must be 'linear' or 'log', got {mode!r}")
    pred, target, out_dtype = _prepare_pair(pred, target, box_format, eps, reduction, validate)
    terms = _box_terms(pred, target, eps)
    if mode == "linear":
        return _finish(terms.iou_gap, reduction, out_dtype)
    clamped = -torch.log(terms.iou.clamp(min=eps))
    # -ln IoU = ln((U + eps) / I) = log1p((1 - IoU) / IoU): no cancellation as IoU -> 1
    # (the value; the gradient is the plain form's, the same function).
    above = terms.iou > eps
    ratio = terms.iou_gap / torch.where(above, terms.iou, 1.0)
    loss = with_gradient_of(torch.where(above, log1p(ratio), clamped), clamped)
    return _finish(loss, reduction, out_dtype)


def giou_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    eps: float = 1e-7,
    reduction: str = "mean",
    *,
    box_format: str = "xyxy",
    validate: bool = False,
) -> torch.Tensor:
    r"""Generalized IoU loss for matching boxes.

    .. math::

        \mathcal{L}_{GIoU} = 1 - \mathrm{IoU} + \frac{|C \setminus (A \cup B)|}{|C|}
        = 1 - \mathrm{IoU} + \frac{|C| - |A \cup B|}{|C| + \varepsilon}

    where :math:`C` is the smallest box enclosing both.  The penalty is divided by the
    *enclosing* area (not the union); the loss lies in :math:`[0, 2]` and tends to 2 for
    far-apart boxes.  Equal to ``torchvision.ops.generalized_box_iou_loss``, whose
    ``reduction`` defaults to ``"none"`` (here ``"mean"``).

    Args:
        pred: predicted boxes ``(..., 4)``.
        target: target boxes, the shape of ``pred``.
        eps: added to the union and to :math:`|C|`, so degenerate boxes stay finite.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        box_format: ``"xyxy"`` | ``"xywh"`` | ``"cxcywh"``, for both inputs.
        validate: check finite coordinates and non-negative widths and heights.

    Returns:
        The loss, shape ``(...)`` for ``"none"``, else a scalar, in the input dtype.

    Reference: Rezatofighi et al., "Generalized Intersection over Union: A Metric and a
    Loss for Bounding Box Regression", CVPR 2019.

    Example:
        >>> giou_loss(torch.tensor([[0.0, 0.0, 2.0, 2.0]]),
        ...           torch.tensor([[1.0, 1.0, 3.0, 3.0]]))
        tensor(1.0794)
    """
    pred, target, out_dtype = _prepare_pair(pred, target, box_format, eps, reduction, validate)
    # The fast path computes _giou_elementwise with a hand-written gradient (under
    # torch.func transforms, _giou_elementwise itself: _box_loss_elementwise).
    return _finish(_box_loss_elementwise(pred, target, "giou", eps), reduction, out_dtype)


def diou_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    eps: float = 1e-7,
    reduction: str = "mean",
    *,
    box_format: str = "xyxy",
    validate: bool = False,
) -> torch.Tensor:
    r"""Distance-IoU loss for matching boxes.

    .. math::

        \mathcal{L}_{DIoU} = 1 - \mathrm{IoU} + \frac{\rho^2(b, b^{gt})}{c^2 + \varepsilon}

    :math:`\rho` is the Euclidean distance between the box centres and :math:`c` the
    diagonal of the smallest box enclosing both (squared distance over squared
    diagonal).  Range :math:`[0, 2)`.  Equal to
    ``torchvision.ops.distance_box_iou_loss``, whose ``reduction`` defaults to
    ``"none"`` (here ``"mean"``).

    Args:
        pred: predicted boxes ``(..., 4)``.
        target: target boxes, the shape of ``pred``.
        eps: added to the union and to :math:`c^2`, so degenerate boxes stay finite.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        box_format: ``"xyxy"`` | ``"xywh"`` | ``"cxcywh"``, for both inputs.
        validate: check finite coordinates and non-negative widths and heights.

    Returns:
        The loss, shape ``(...)`` for ``"none"``, else a scalar, in the input dtype.

    Reference: Zheng et al., "Distance-IoU Loss: Faster and Better Learning for
    Bounding Box Regression", AAAI 2020.

    Example:
        >>> diou_loss(torch.tensor([[0.0, 0.0, 2.0, 2.0]]),
        ...           torch.tensor([[1.0, 1.0, 3.0, 3.0]]))  # 1 - 1/7 + 2/18
        tensor(0.9683)
    """
    pred, target, out_dtype = _prepare_pair(pred, target, box_format, eps, reduction, validate)
    # The fast path computes _diou_elementwise with a hand-written gradient (under
    # torch.func transforms, _diou_elementwise itself: _box_loss_elementwise).
    return _finish(_box_loss_elementwise(pred, target, "diou", eps), reduction, out_dtype)


def ciou_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    eps: float = 1e-7,
    reduction: str = "mean",
    *,
    box_format: str = "xyxy",
    validate: bool = False,
) -> torch.Tensor:
    r"""Complete-IoU loss for matching boxes.

    .. math::

        \mathcal{L}_{CIoU} = 1 - \mathrm{IoU} + \frac{\rho^2(b, b^{gt})}{c^2} + \alpha v,
        \qquad
        v = \frac{4}{\pi^2}\left(\arctan\frac{w^{gt}}{h^{gt}} - \arctan\frac{w}{h}\right)^2,
        \qquad
        \alpha = \frac{v}{(1 - \mathrm{IoU}) + v}

    The trade-off :math:`\alpha` is a constant in the backward pass (no gradient flows
    through it), as in the authors' code and torchvision; :math:`v` carries the
    gradient.  ``eps`` is added to the union, to :math:`c^2` and to the denominator of
    :math:`\alpha`.

    :math:`\arctan(w/h)` is computed as ``atan2(w, h)``, which equals it for
    :math:`h > 0` and is finite for :math:`h = 0` (:math:`\pi/2`, with a finite
    gradient); for a point box (:math:`w = h = 0`) the angle is taken as 0 with a zero
    gradient.  So zero-width, zero-height and point boxes give finite values and
    gradients, where ``torchvision.ops.complete_box_iou_loss`` (whose ``reduction``
    defaults to ``"none"``; here ``"mean"``) gives NaN gradients for a zero-height box
    and a NaN loss for point boxes.

    Args:
        pred: predicted boxes ``(..., 4)``.
        target: target boxes, the shape of ``pred``.
        eps: added to the union, to :math:`c^2` and to :math:`(1 - \mathrm{IoU}) + v`.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        box_format: ``"xyxy"`` | ``"xywh"`` | ``"cxcywh"``, for both inputs.
        validate: check finite coordinates and non-negative widths and heights.

    Returns:
        The loss, shape ``(...)`` for ``"none"``, else a scalar, in the input dtype.

    Reference: Zheng et al., "Distance-IoU Loss: Faster and Better Learning for
    Bounding Box Regression", AAAI 2020 (CIoU is defined there too); Zheng et al.,
    "Enhancing Geometric Factors in Model Learning and Inference for Object Detection
    and Instance Segmentation", IEEE TCYB 2021.

    Example:
        >>> ciou_loss(torch.tensor([[0.0, 0.0, 2.0, 2.0]]),
        ...           torch.tensor([[1.0, 1.0, 3.0, 4.0]]))
        tensor(1.0192)
    """
    pred, target, out_dtype = _prepare_pair(pred, target, box_format, eps, reduction, validate)
    # The fast path computes _ciou_elementwise with a hand-written gradient (alpha
    # carries none there either; under torch.func transforms, _ciou_elementwise
    # itself: _box_loss_elementwise).
    return _finish(_box_loss_elementwise(pred, target, "ciou", eps), reduction, out_dtype)


def _eiou_elementwise(terms: _BoxTerms, eps: float) -> torch.Tensor:
    width_term = (terms.pred_w - terms.target_w) ** 2 / (terms.enclosing_w**2 + eps)
    height_term = (terms.pred_h - terms.target_h) ** 2 / (terms.enclosing_h**2 + eps)
    distance_term = terms.centre_dist2 / (terms.diagonal2 + eps)
    return terms.iou_gap + distance_term + width_term + height_term


def eiou_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    eps: float = 1e-7,
    reduction: str = "mean",
    *,
    box_format: str = "xyxy",
    validate: bool = False,
) -> torch.Tensor:
    r"""Efficient-IoU (EIoU) loss for matching boxes (Zhang et al.).

    .. math::

        \mathcal{L}_{EIoU} = 1 - \mathrm{IoU} + \frac{\rho^2(b, b^{gt})}{c^2}
        + \frac{\rho^2(w, w^{gt})}{C_w^2} + \frac{\rho^2(h, h^{gt})}{C_h^2}

    :math:`C_w, C_h` are the width and height of the smallest enclosing box and
    :math:`c^2 = C_w^2 + C_h^2`; :math:`\rho^2(w, w^{gt}) = (w - w^{gt})^2`.  CIoU's
    aspect-ratio term is split into separate width and height terms, each normalised
    by the enclosing box's width² or height².

    This is *not* mmdetection's ``eiou_loss``, which implements the *Extended*-IoU loss
    (Peng and Yu, "Extended-IoU Loss: A Systematic IoU-Related Method: Beyond Simplified
    Regression for Better Localization", IEEE TIP 2021), an unrelated loss that shares
    the acronym.

    Args:
        pred: predicted boxes ``(..., 4)``.
        target: target boxes, the shape of ``pred``.
        eps: added to the union, :math:`c^2`, :math:`C_w^2` and :math:`C_h^2`.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        box_format: ``"xyxy"`` | ``"xywh"`` | ``"cxcywh"``, for both inputs.
        validate: check finite coordinates and non-negative widths and heights.

    Returns:
        The loss, shape ``(...)`` for ``"none"``, else a scalar, in the input dtype.

    Reference: Zhang, Ren, Zhang, Jia, Wang and Tan, "Focal and Efficient IOU Loss for
    Accurate Bounding Box Regression", Neurocomputing 506, 2022.

    Example:
        >>> eiou_loss(torch.tensor([[0.0, 0.0, 2.0, 2.0]]),
        ...           torch.tensor([[1.0, 1.0, 3.0, 4.0]]))
        tensor(1.0814)
    """
    pred, target, out_dtype = _prepare_pair(pred, target, box_format, eps, reduction, validate)
    loss = _eiou_elementwise(_box_terms(pred, target, eps), eps)
    return _finish(loss, reduction, out_dtype)


def focal_eiou_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    gamma: float = 0.5,
    eps: float = 1e-7,
    reduction: str = "mean",
    *,
    box_format: str = "xyxy",
    validate: bool = False,
) -> torch.Tensor:
    r"""Focal-EIoU loss: EIoU reweighted by :math:`\mathrm{IoU}^\gamma` (Zhang et al.).

    .. math:: \mathcal{L}_{Focal\text{-}EIoU} = \mathrm{IoU}^{\gamma}\,\mathcal{L}_{EIoU}

    The weight :math:`\mathrm{IoU}^\gamma` is **detached** (a per-box weight, no
    gradient), as in the widely used YOLO implementations
    (``(1 - eiou) * iou.pow(gamma).detach()``): the gradient is
    :math:`\mathrm{IoU}^\gamma \,\nabla \mathcal{L}_{EIoU}`, which down-weights
    low-IoU (hard, often noisy) boxes.  Differentiating the weight would add
    :math:`\gamma\,\mathrm{IoU}^{\gamma-1}\mathcal{L}_{EIoU}\nabla\mathrm{IoU}`, infinite
    at IoU = 0 for :math:`\gamma < 1` (the default 0.5).  A consequence: boxes with
    IoU = 0 get a zero loss and a zero gradient.

    Args:
        pred: predicted boxes ``(..., 4)``.
        target: target boxes, the shape of ``pred``.
        gamma: focusing parameter :math:`\gamma \ge 0` (0 gives EIoU; the paper uses 0.5).
        eps: added to the union, :math:`c^2`, :math:`C_w^2` and :math:`C_h^2`.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        box_format: ``"xyxy"`` | ``"xywh"`` | ``"cxcywh"``, for both inputs.
        validate: check finite coordinates and non-negative widths and heights.

    Returns:
        The loss, shape ``(...)`` for ``"none"``, else a scalar, in the input dtype.

    Reference: Zhang, Ren, Zhang, Jia, Wang and Tan, "Focal and Efficient IOU Loss for
    Accurate Bounding Box Regression", Neurocomputing 506, 2022.

    Example:
        >>> focal_eiou_loss(torch.tensor([[0.0, 0.0, 2.0, 2.0]]),
        ...                 torch.tensor([[1.0, 1.0, 3.0, 4.0]]))
        tensor(0.3605)
    """
    _check_number(gamma, "gamma", minimum=0.0)
    pred, target, out_dtype = _prepare_pair(pred, target, box_format, eps, reduction, validate)
    terms = _box_terms(pred, target, eps)
    # IoU^gamma is a weight, not a target of optimisation (see the docstring); its
    # gradient would be infinite at IoU = 0 for gamma < 1.
    weight = terms.iou.detach().clamp(min=0).pow(gamma)
    loss = weight * _eiou_elementwise(terms, eps)
    return _finish(loss, reduction, out_dtype)


def alpha_iou_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    alpha: float = 3.0,
    variant: str = "iou",
    eps: float = 1e-7,
    reduction: str = "mean",
    *,
    box_format: str = "xyxy",
    validate: bool = False,
) -> torch.Tensor:
    r"""α-IoU: the power family of IoU losses (He et al.).

    .. math::

        \mathcal{L}_{\alpha\text{-IoU}} &= 1 - \mathrm{IoU}^{\alpha} \\
        \mathcal{L}_{\alpha\text{-GIoU}} &= 1 - \mathrm{IoU}^{\alpha}
            + \left(\frac{|C \setminus (A \cup B)|}{|C|}\right)^{\alpha} \\
        \mathcal{L}_{\alpha\text{-DIoU}} &= 1 - \mathrm{IoU}^{\alpha}
            + \frac{\rho^{2\alpha}(b, b^{gt})}{c^{2\alpha}} \\
        \mathcal{L}_{\alpha\text{-CIoU}} &= 1 - \mathrm{IoU}^{\alpha}
            + \frac{\rho^{2\alpha}(b, b^{gt})}{c^{2\alpha}} + (\beta v)^{\alpha}

    The power applies to the IoU and, separately, to each penalty term (not to the
    whole of GIoU/DIoU/CIoU).  :math:`\rho^{2\alpha}/c^{2\alpha}` is computed as
    :math:`(\rho^2 / (c^2 + \varepsilon))^\alpha`.  In α-CIoU, :math:`v` is CIoU's
    aspect term (same ``atan2`` convention as :func:`ciou_loss`) and
    :math:`\beta = v / ((1 - \mathrm{IoU}) + v + \varepsilon)` its trade-off weight,
    computed from the plain IoU and without gradient, as in CIoU and the authors' code.
    ``alpha = 1`` gives back IoU, GIoU, DIoU and CIoU losses.

    Gradients: every base is clamped at 0; for :math:`\alpha < 1`, where
    :math:`x^\alpha` has an infinite slope at :math:`x = 0`, the gradient there is
    taken as 0.

    Args:
        pred: predicted boxes ``(..., 4)``.
        target: target boxes, the shape of ``pred``.
        alpha: the power :math:`\alpha > 0` (the paper recommends 3).
        variant: ``"iou"`` | ``"giou"`` | ``"diou"`` | ``"ciou"``.
        eps: added to the union, :math:`|C|`, :math:`c^2` and :math:`\beta`'s
            denominator.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        box_format: ``"xyxy"`` | ``"xywh"`` | ``"cxcywh"``, for both inputs.
        validate: check finite coordinates and non-negative widths and heights.

    Returns:
        The loss, shape ``(...)`` for ``"none"``, else a scalar, in the input dtype.

    Reference: He, Erfani, Ma, Bailey, Chi and Hua, "Alpha-IoU: A Family of Power
    Intersection over Union Losses for Bounding Box Regression", NeurIPS 2021.

    Example:
        >>> pred = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
        >>> target = torch.tensor([[1.0, 0.0, 3.0, 2.0]])
        >>> alpha_iou_loss(pred, target)  # 1 - (1/3)^3
        tensor(0.9630)
        >>> alpha_iou_loss(pred, target, variant="diou")  # + (1/13)^3
        tensor(0.9634)
    """
    _check_number(alpha, "alpha", minimum=0.0, strict=True)
    if variant not in ALPHA_IOU_VARIANTS:
        raise ValueError(f"variant must be one of 'iou', 'giou', 'diou' or 'ciou', got {variant!r}")
    pred, target, out_dtype = _prepare_pair(pred, target, box_format, eps, reduction, validate)
    terms = _box_terms(pred, target, eps)
    loss = 1 - safe_pow(terms.iou, alpha)
    if variant == "giou":
        enclosing_area = terms.enclosing_w * terms.enclosing_h
        loss = loss + safe_pow((enclosing_area - terms.union) / (enclosing_area + eps), alpha)
    elif variant in ("diou", "ciou"):
        loss = loss + safe_pow(terms.centre_dist2 / (terms.diagonal2 + eps), alpha)
    if variant == "ciou":
        v = _aspect_consistency(terms)
        # beta is CIoU's trade-off weight: no gradient, as in CIoU (see ciou_loss).
        with torch.no_grad():
            beta = v / (terms.iou_gap + v + eps)
        loss = loss + safe_pow(beta * v, alpha)
    return _finish(loss, reduction, out_dtype)


def riou_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    beta: float = 0.95,
    eps: float = 1e-7,
    reduction: str = "mean",
    *,
    box_format: str = "xyxy",
    validate: bool = False,
) -> torch.Tensor:
    r"""Rectified IoU (RIoU) loss: an IoU loss whose gradient grows with the IoU up to
    ``beta`` and then falls to 0 at IoU = 1.

    **Our documented form.**  Wang & Zhang rectify the gradient of the IoU loss so
    that well-localised boxes (high IoU) get larger gradients and badly localised ones
    (low IoU) smaller ones, up to a turning point near IoU = 1 after which the gradient
    vanishes.  The paper's exact function and constants could not be checked offline;
    we implement that shape with explicit parameters: a triangular gradient profile

    .. math::

        \left|\frac{\partial \mathcal{L}}{\partial \mathrm{IoU}}\right| =
        \begin{cases}
            2\,\mathrm{IoU} / \beta & \mathrm{IoU} < \beta \\
            2\,(1 - \mathrm{IoU}) / (1 - \beta) & \mathrm{IoU} \ge \beta
        \end{cases}
        \quad\Longrightarrow\quad
        \mathcal{L}_{RIoU} =
        \begin{cases}
            1 - \mathrm{IoU}^2 / \beta & \mathrm{IoU} < \beta \\
            (1 - \mathrm{IoU})^2 / (1 - \beta) & \mathrm{IoU} \ge \beta
        \end{cases}

    The loss is continuously differentiable in the IoU, decreasing, 1 at IoU = 0 and 0
    at IoU = 1, like :math:`1 - \mathrm{IoU}`, whose constant slope of 1 is the average
    of this profile's (peak 2 at :math:`\beta`).

    Args:
        pred: predicted boxes ``(..., 4)``.
        target: target boxes, the shape of ``pred``.
        beta: the IoU at which the gradient peaks, :math:`0 < \beta < 1`.
        eps: added to the union.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
        box_format: ``"xyxy"`` | ``"xywh"`` | ``"cxcywh"``, for both inputs.
        validate: check finite coordinates and non-negative widths and heights.

    Returns:
        The loss, shape ``(...)`` for ``"none"``, else a scalar, in the input dtype.

    Reference: Wang and Zhang, "Single-Shot Two-Pronged Detector with Rectified IoU
    Loss", ACM MM 2020 (TPNet), arXiv:2008.03511.

    Example:
        >>> pred = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
        >>> riou_loss(pred, torch.tensor([[1.0, 0.0, 3.0, 2.0]]))  # 1 - (1/3)^2 / 0.95
        tensor(0.8830)
    """
    _check_number(beta, "beta", minimum=0.0, strict=True, maximum=1.0)
    if beta == 1.0:
        raise ValueError("beta must be < 1, got 1.0")
    pred, target, out_dtype = _prepare_pair(pred, target, box_format, eps, reduction, validate)
    terms = _box_terms(pred, target, eps)
    iou = terms.iou
    rising = 1 - iou**2 / beta
    falling = terms.iou_gap**2 / (1 - beta)
    loss = torch.where(iou < beta, rising, falling)
    return _finish(loss, reduction, out_dtype)


# ---------------------------------------------------------------------------- NMS


def diou_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float = 0.5,
    *,
    beta: float = 1.0,
    distance_penalty: bool = True,
    box_format: str = "xyxy",
) -> torch.Tensor:
    r"""Non-maximum suppression that suppresses with DIoU instead of IoU.

    .. math::

        s_i \leftarrow
        \begin{cases}
            s_i & \mathrm{IoU}(M, B_i) - \left(\rho^2(M, B_i) / c^2\right)^{\beta} \le t \\
            0 & \text{otherwise}
        \end{cases}

    Greedy, like ``torchvision.ops.nms``: the highest-scoring box :math:`M` is kept and
    every remaining box whose DIoU with it exceeds ``iou_threshold`` is removed, and so
    on.  Subtracting the normalised centre distance keeps nearby boxes of *different*
    objects (occlusion) that plain NMS would drop.  With ``distance_penalty=False`` this
    is plain NMS and returns what ``torchvision.ops.nms`` does (ties in score are
    broken by index here).  Where :math:`c^2 = 0` (identical point boxes) the penalty
    is 0; IoU is computed as :func:`box_iou` (0 for an empty union).

    Not a loss: the greedy pass is sequential and runs on the CPU (the result is moved
    back to the device of ``boxes``), and nothing here is differentiable.

    Args:
        boxes: ``(N, 4)`` boxes.
        scores: ``(N,)`` scores.
        iou_threshold: suppress boxes whose DIoU with a kept box is above this.
        beta: exponent :math:`\beta > 0` of the penalty (1 in the paper's rule).
        distance_penalty: ``False`` drops the penalty (plain IoU NMS).
        box_format: ``"xyxy"`` | ``"xywh"`` | ``"cxcywh"``.

    Returns:
        ``int64`` indices of the kept boxes, sorted by decreasing score.

    Reference: Zheng et al., "Distance-IoU Loss: Faster and Better Learning for
    Bounding Box Regression", AAAI 2020.

    Example:
        >>> boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [3.0, 0.0, 13.0, 10.0]])
        >>> scores = torch.tensor([0.9, 0.8])
        >>> diou_nms(boxes, scores, 0.52)  # IoU 7/13 = 0.538, minus 9/269 = 0.505
        tensor([0, 1])
        >>> diou_nms(boxes, scores, 0.52, distance_penalty=False)  # torchvision.ops.nms
        tensor([0])
    """
    _check_boxes(boxes, "boxes")
    if boxes.dim() != 2:
        raise ValueError(f"boxes must have shape (N, 4), got {tuple(boxes.shape)}")
    _check_floating(scores, "scores")
    if scores.shape != boxes.shape[:1]:
        raise ValueError(
            f"scores must have shape ({boxes.shape[0]},) to match boxes "
            f"{tuple(boxes.shape)}, got {tuple(scores.shape)}"
        )
    _check_same_device([boxes, scores], ["boxes", "scores"])
    _check_number(iou_threshold, "iou_threshold")
    _check_number(beta, "beta", minimum=0.0, strict=True)
    _check_box_format(box_format, "box_format")
    device = boxes.device
    count = boxes.shape[0]
    if count == 0:
        return torch.empty(0, dtype=torch.long, device=device)
    order = torch.argsort(scores.detach(), descending=True, stable=True).cpu()
    xyxy = box_convert(_upcast(boxes.detach()), box_format, "xyxy").cpu()[order]
    removed = torch.zeros(count, dtype=torch.bool)
    keep = []
    for i in range(count):
        if removed[i]:
            continue
        keep.append(i)
        rest = xyxy[i + 1 :]
        if rest.shape[0] == 0:
            break
        box = xyxy[i]
        inter, union, _, _, enclosing_size = _box_geometry(box, rest, distance_penalty)
        score = safe_divide(inter, union)
        if distance_penalty:
            centre_diff = (box[:2] + box[2:]) - (rest[:, :2] + rest[:, 2:])
            centre_dist2 = (centre_diff**2).sum(-1) / 4
            penalty = safe_divide(centre_dist2, (enclosing_size**2).sum(-1))
            score = score - (penalty if beta == 1.0 else penalty.pow(beta))
        removed[i + 1 :] |= score > iou_threshold
    return order[torch.tensor(keep, dtype=torch.long)].to(device)

r"""The fast paths: fused autograd functions, compiled kernels and ATen calls.

The family modules (``boxes.py``, ``classification.py``, ``metric.py``,
``regression.py``, ``synthesis.py``) show each loss as the composition its docstring and the book
derive; where that composition is too slow, the loss hands its checked, upcast
inputs to one function of this module (its *dispatch point*), next to a comment in
the family module that says when the hand-over happens:

=============================================  ==========================================
loss                                           dispatch point here, and when it is taken
=============================================  ==========================================
``giou_loss``, ``diou_loss``, ``ciou_loss``    :func:`box_loss`: every call
``sigmoid_focal_loss``,                        :func:`sigmoid_focal_loss`: unless the
``binary_cross_entropy_with_logits``           target needs a gradient (then autograd
                                               on the composition); BCE also needs no
                                               ``weight``/``pos_weight``
``softmax_focal_loss``                         :func:`softmax_focal`: every call
``cross_entropy``                              :func:`index_cross_entropy`,
                                               :func:`probability_cross_entropy`: every
                                               call
``smooth_l1_loss``, ``huber_loss``             :func:`smooth_l1_kernel`,
                                               :func:`huber_kernel`: every call
``total_variation``                            :func:`total_variation`: when a gradient
                                               is wanted
``pairwise_distances``                         :func:`pair_squared_distances`: the near
                                               pairs it computes again from their
                                               differences, when there are any
=============================================  ==========================================

Every dispatch point into an autograd Function of this module (all but the regression
kernels) is skipped while :func:`transforms_active` is true (``torch.func`` transforms,
``vmap``, ``grad``, ``jvp``, ``jacrev``, or forward-mode AD, which these Functions do not
support): the loss then runs its readable composition.  ``tests/test_transforms.py``
(and, for ``cross_entropy``, ``tests/test_fast_paths.py``) checks the transformed results
against ordinary autograd on the fast path.  ``pairwise_distances`` supports ``grad``,
``jvp`` and ``jacrev`` but not ``vmap``: its near pairs are found with ``nonzero``.

Each fast path computes the same formula as its composition, with the gradient
written out by hand and computed in the same pass as the value where that saves
time; ``tests/test_fast_paths.py`` checks values and gradients of both in float64
on random, degenerate and confident inputs, and ``tests/test_accuracy.py`` checks
every path against 360-digit arithmetic where the losses are small.  When the
elementwise functions run as a ``torch.compile``-generated kernel is decided by
:mod:`cvloss_ref._compile`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from . import _compile
from ._numerics import log1p, log1p_
from ._reduction import _REDUCTION_CODE, _reduce

_FOUR_OVER_PI_SQUARED = 4.0 / math.pi**2


# ------------------------------------------------------------------------ box losses

# giou_loss, diou_loss and ciou_loss run through _FusedBoxLoss below: the same
# formulas as the readable compositions (_giou_elementwise, _diou_elementwise,
# _ciou_elementwise), with the gradient written out by hand and computed in the same
# pass as the loss, from the same intermediates.  Autograd's own backward of the
# composition spends most of its time in the backward of torch.minimum/maximum (one
# mask, fill and where per call) and in a dozen small kernels per term; here the whole
# backward is a handful of elementwise kernels on contiguous (2, N) blocks.  The tests
# check that values and gradients equal the readable composition (float64, random,
# degenerate, touching, disjoint and far-apart boxes, meta tensors, torch.compile).


def _fused_box_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    kind: str,
    eps: float,
    with_grad: bool,
    target_grad: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Elementwise GIoU/DIoU/CIoU loss of ``"xyxy"`` boxes and, with ``with_grad``,
    its gradients with respect to ``pred`` and (with ``target_grad``) ``target`` for a
    unit upstream gradient, as ``(4, ...)`` tensors (coordinates first).

    Memory: every intermediate is released as soon as it has been used for the last
    time, and the gradient's are combined in place, so that the peak stays near the
    inputs plus the gradients it returns.

    Gradient conventions are those of autograd on the readable composition: at a tie
    of ``torch.minimum``/``maximum`` each side gets half; the clamp of the
    intersection passes no gradient at exactly 0; CIoU's trade-off weight is a
    constant; a point box's aspect angle has a zero gradient.
    """
    # One contiguous (2, 4, ...) tensor: [0] the predictions, [1] the targets, with
    # the coordinates first, so that every operation below handles both boxes, or x
    # and y, at once.  [:, :2] are the top-left corners, [:, 2:] the bottom-right ones.
    boxes = torch.stack((pred.movedim(-1, 0), target.movedim(-1, 0)))
    top_left, bottom_right = boxes[:, :2], boxes[:, 2:]
    sizes = bottom_right - top_left  # (2 boxes, (w, h), ...)
    inter_raw = torch.minimum(bottom_right[0], bottom_right[1]) - torch.maximum(
        top_left[0], top_left[1]
    )
    inter_size = inter_raw.clamp(min=0)
    # The gap between disjoint intervals, relu(-raw) = relu(raw) - raw (exact).
    separation = inter_size - inter_raw
    del inter_raw
    enclosing_size = torch.maximum(bottom_right[0], bottom_right[1]) - torch.minimum(
        top_left[0], top_left[1]
    )
    inter = inter_size[0] * inter_size[1]
    # 1 - IoU and |C| - U without cancellation (boxes._box_gaps derives them): from
    # the corner differences pred - target (exact for close boxes, by Sterbenz's
    # lemma), how far each box reaches beyond the other along x and y, ...
    corner_diff = boxes[0] - boxes[1]  # (4, ...): top-left x, y, bottom-right x, y
    ahead = corner_diff.clamp(min=0)  # (pred - target)_+
    behind = ahead - corner_diff  # (target - pred)_+, exactly
    # The prediction reaches (tl)_- + (br)_+ beyond the target, the target (tl)_+ +
    # (br)_- beyond the prediction: (2 boxes, (x, y), ...), in behind's buffer.
    beyond = behind.unflatten(0, (2, 2)).add_(ahead.unflatten(0, (2, 2)).flip(0))
    del ahead, behind
    # ... and the part of each side outside the other box: (2 boxes, (x, y), ...).
    only = torch.minimum(sizes, beyond)
    del beyond
    # U - I = |A \ B| + |B \ A| = a_x h + w_i a_y + b_x h' + w_i b_y.
    inter_gap = (only[:, 0] * sizes[:, 1]).sum(0) + inter_size[0] * only[:, 1].sum(0)
    union = inter + inter_gap
    union_eps = union + eps
    iou = inter / union_eps
    iou_gap = (inter_gap + eps) / union_eps  # = 1 - iou, to a few ulps
    loss = iou_gap
    if kind == "giou":
        enclosing_area = enclosing_size[0] * enclosing_size[1]
        enclosing_eps = enclosing_area + eps
        # |C| - U = a_x b_y + b_x a_y + s_x C_h + s_y (C_w - s_x) (s: separations).
        enclosing_gap = only[0, 0] * only[1, 1] + only[1, 0] * only[0, 1]
        enclosing_gap += separation[0] * enclosing_size[1]
        enclosing_gap += separation[1] * (enclosing_size[0] - separation[0])
        loss = loss + enclosing_gap / enclosing_eps
        del enclosing_area, enclosing_gap
    else:
        # Twice the centre difference from the corner differences (no sum of
        # coordinates is rounded before the subtraction).
        centre_diff = corner_diff[:2] + corner_diff[2:]
        centre_dist2 = (centre_diff * centre_diff).sum(0) / 4
        diagonal_eps = (enclosing_size * enclosing_size).sum(0) + eps
        loss = loss + centre_dist2 / diagonal_eps
    del corner_diff, only, separation, inter_gap
    if kind == "ciou":
        # _aspect_angle for both boxes at once: atan2(w, h), which is already 0 for a
        # point box (atan2(0, 0) = 0); its gradient there is set to 0 below.
        angles = torch.atan2(sizes[:, 0], sizes[:, 1])
        angle_diff = angles[1] - angles[0]  # target's minus the prediction's
        v = _FOUR_OVER_PI_SQUARED * angle_diff * angle_diff
        # CIoU's alpha is a constant weight (no gradient), as in ciou_loss.
        alpha = v / (iou_gap + v + eps)
        loss = loss + alpha * v
        del angles, v
    if not with_grad:
        return loss, None, None
    del inter, union, iou_gap  # not needed by the gradient

    # The gradient is that of the plain forms 1 - inter / (union + eps) and
    # (|C| - union) / (|C| + eps): the same functions as the values above, whose
    # derivatives have no cancellation to avoid (and keep their kink conventions).
    # d loss / d union through IoU = inter / (union + eps), and the penalty's gradient
    # in the enclosing box's (C_w, C_h).
    grad_union = iou / union_eps
    if kind == "giou":
        # (|C| - U) / (|C| + eps): -1 / (|C| + eps) in U, (U + eps) / (|C| + eps)^2 in |C|.
        grad_union -= 1 / enclosing_eps
        grad_enclosing = (union_eps / (enclosing_eps * enclosing_eps)) * enclosing_size.flip(0)
    else:
        # rho^2 / (c^2 + eps) with c^2 = C_w^2 + C_h^2: -2 C_wh rho^2 / (c^2 + eps)^2.
        grad_enclosing = enclosing_size * (-2 * centre_dist2 / (diagonal_eps * diagonal_eps))
    del enclosing_size
    grad_inter = -1 / union_eps
    grad_inter -= grad_union
    # U = w h + w' h' - I, and I = iw ih (clamped: no gradient at 0 or below).
    grad_sizes = grad_union * sizes.flip(1)
    del grad_union
    # sign(inter_size) is the clamp's mask (1 above 0, else 0): cheaper than a where.
    grad_inter_size = inter_size.flip(0) * grad_inter
    grad_inter_size *= inter_size.sign()
    del grad_inter, inter_size
    if kind == "ciou":
        # v = 4/pi^2 (atan2(w', h') - atan2(w, h))^2; d atan2(w, h) = (h, -w) / (w^2 + h^2),
        # 0 for a point box; the prediction's angle enters with -1, the target's with +1.
        grad_angle = alpha * (2 * _FOUR_OVER_PI_SQUARED) * angle_diff
        grad_angle = torch.stack((-grad_angle, grad_angle))
        # For a point box w^2 + h^2 = 0: the floor (the smallest normal number) keeps
        # the scale finite (|grad_angle| <= 8 / pi for boxes with w, h >= 0), and
        # (h, -w) = 0 then makes the gradient 0, as _aspect_angle's double where does.
        norm2 = (sizes * sizes).sum(1, keepdim=True).clamp(min=torch.finfo(sizes.dtype).tiny)
        scale = grad_angle.unsqueeze(1) / norm2
        del grad_angle, norm2
        grad_sizes += sizes.flip(1) * torch.cat((scale, -scale), 1)
        del scale
    del sizes
    # min/max: the smaller (larger) side gets the gradient, each half at a tie.  With
    # s = sign(pred - target), the prediction's share of a min is (1 - s) / 2 and of a
    # max (1 + s) / 2; the target's is the other one.
    split = grad_enclosing - grad_inter_size
    split *= 0.5
    shared = grad_inter_size.add_(grad_enclosing).mul_(0.5)  # both halves, in place
    del grad_enclosing, grad_inter_size
    shared = grad_sizes.add_(shared)  # d/d bottom-right; top-left gets its negative
    own = torch.sign(boxes[0] - boxes[1])
    del boxes
    own *= torch.cat((split, split))
    del split
    if kind != "giou":
        # d rho^2 / d centre_diff = centre_diff / 2, the same for both corners.
        grad_centre = centre_diff * (0.5 / diagonal_eps)
        own += torch.cat((grad_centre, grad_centre))
        del grad_centre
    if not target_grad:
        grad_pred = torch.cat((-shared[0], shared[0]))  # (4 coordinates, ...)
        grad_pred += own
        return loss, grad_pred, None
    grads = torch.cat((-shared, shared), 1)  # (2 boxes, 4 coordinates, ...)
    grads[0] += own
    grads[1] -= own
    return loss, grads[0], grads[1]


class _FusedBoxLoss(torch.autograd.Function):
    """GIoU/DIoU/CIoU loss with the hand-written gradient of :func:`_fused_box_loss`.

    Differentiable once: the saved gradients are constants, so a double backward
    raises instead of returning a silently wrong second derivative.
    """

    @staticmethod
    def forward(ctx, pred, target, kind, eps):
        target_grad = ctx.needs_input_grad[1]
        loss, grad_pred, grad_target = _compile.run(
            _fused_box_loss, pred, target, kind, eps, True, target_grad
        )
        ctx.save_for_backward(grad_pred, grad_target)
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        grad_pred, grad_target = ctx.saved_tensors
        grad_loss = grad_loss.unsqueeze(0)
        return (
            (grad_pred * grad_loss).movedim(0, -1) if ctx.needs_input_grad[0] else None,
            (grad_target * grad_loss).movedim(0, -1) if ctx.needs_input_grad[1] else None,
            None,
            None,
        )


def box_loss(pred: torch.Tensor, target: torch.Tensor, kind: str, eps: float) -> torch.Tensor:
    """Elementwise ``kind`` loss (``"giou"``, ``"diou"`` or ``"ciou"``) of checked
    ``"xyxy"`` float32/float64 boxes: the dispatch point of ``giou_loss``,
    ``diou_loss`` and ``ciou_loss``, taken on every call.  The gradient is computed
    (in the same pass) only when autograd will ask for it."""
    if torch.is_grad_enabled() and (pred.requires_grad or target.requires_grad):
        return _FusedBoxLoss.apply(pred, target, kind, eps)
    return _compile.run(_fused_box_loss, pred, target, kind, eps, False)[0]


# -------------------------------------------------------------- sigmoid focal loss


def _fused_sigmoid_focal(
    x: torch.Tensor, y: torch.Tensor, alpha: float, gamma: float, with_grad: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Elementwise focal loss and, with ``with_grad``, its gradient in ``x`` (for a
    unit upstream gradient), in a few cheap elementwise kernels.

    Nothing is formed as one minus a probability: :math:`p = \sigma(x)` and
    :math:`\bar p = \sigma(-x)` are each accurate to a few units in the last place
    (ulp), and every other quantity is a sum of non-negative terms or a product of
    them, so the value and the gradient keep their relative accuracy at confident
    predictions (:math:`\ell = 3.06 \cdot 10^{-7}` at :math:`x = 15, y = 1` in
    float32, where ``-log(sigmoid(15))`` gives :math:`3.58 \cdot 10^{-7}`):

    - :math:`q = 1 - p_t = (1 - y)\, p + y\, \bar p` (``lerp``; exact for hard
      targets);
    - :math:`\ell = \max(x, 0) - x y + \log(1 + e^{-|x|})` (binary cross entropy),
      with :math:`\log(1 + e^{-|x|}) = -\log(1 - s)`,
      :math:`s = \min(p, \bar p) = e^{-|x|} / (1 + e^{-|x|}) \le 1/2`, by
      ``log1p`` or Kahan's form of it, whichever this machine computes faster (see
      :func:`cvloss_ref._numerics.log1p_is_faster`);

    .. math::

        \mathrm{FL} = \alpha_t\, q^{\gamma} \ell, \qquad
        \frac{\partial \mathrm{FL}}{\partial x} = \alpha_t\, q^{\gamma}
            \Bigl(\gamma\,(1 - 2y)\,\frac{p \bar p}{q}\,\ell + (1 - y)\, p - y\, \bar p\Bigr),

    where :math:`p \bar p / q \le 1` is finite (:math:`q` is floored at the smallest
    normal number; where it underflows to 0, so does :math:`p \bar p`): no infinite
    :math:`\gamma q^{\gamma - 1}` is ever formed, so the gradient is finite for every
    :math:`\gamma \ge 0`, as the log-space reference's.  :math:`q^\gamma` is
    :math:`\exp(\gamma \log q)` of an accurate :math:`q`, the log-space factor of the
    reference.  Below the smallest normal number (:math:`|x| > 87` in float32) the
    results may lose digits or flush to 0, as the exact values are not representable
    to full precision there.
    """
    p = torch.sigmoid(x)
    p_bar = x.neg().sigmoid_()
    # log(1 + e^{-|x|}) = -log(1 - s), s = min(p, p_bar) <= 1/2.  Each buffer is
    # released or reused as soon as it is spent: peak memory.
    minus_softplus_abs = log1p_(torch.minimum(p, p_bar).neg_())
    # Binary cross entropy: softplus(x) - x y = max(x, 0) - x y + log(1 + e^{-|x|}).
    bce = torch.relu(x).addcmul_(x, y, value=-1).sub_(minus_softplus_abs)
    del minus_softplus_abs
    q = torch.lerp(p, p_bar, y) if gamma != 0 else None  # 1 - p_t = (1 - y) p + y p_bar
    weight = q.pow(gamma) if gamma != 0 else None  # (1 - p_t)^gamma
    if alpha >= 0:
        # alpha_t = alpha y + (1 - alpha)(1 - y) = (1 - alpha) + (2 alpha - 1) y.
        if weight is None:
            weight = y * (2 * alpha - 1) + (1 - alpha)
        else:
            weight = torch.addcmul(weight * (1 - alpha), y, weight, value=2 * alpha - 1)
    loss = bce if weight is None else weight * bce
    if not with_grad:
        return loss, None
    dlogq_dx = p * p_bar if gamma != 0 else None
    # p - y = (1 - y) p - y p_bar, never 1 - p (p_bar is negated in place: spent).
    grad_x = torch.lerp(p, p_bar.neg_(), y)
    if dlogq_dx is not None:
        # d log q / dx = (1 - 2y) p p_bar / q (see the docstring for the floor), in
        # place on buffers that are not needed any more: a fifth less time than
        # allocating each step.
        dlogq_dx.addcmul_(y, dlogq_dx, value=-2)
        dlogq_dx.div_(q.clamp_(min=torch.finfo(q.dtype).tiny))
        grad_x.addcmul_(dlogq_dx, bce, value=gamma)
    return loss, grad_x if weight is None else grad_x.mul_(weight)


def _negated_bce_with_logits(
    x: torch.Tensor, y: torch.Tensor, with_grad: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Binary cross entropy with logits, elementwise, and with ``with_grad`` its
    gradient in ``x`` (for a unit upstream gradient), both *negated*: the focal loss
    with :math:`\gamma = 0` and no :math:`\alpha` in fewer kernels than
    :func:`_fused_sigmoid_focal` (one sigmoid instead of two, and no ``lerp``).

    With :math:`s = \sigma(-|x|) = e^{-|x|} / (1 + e^{-|x|}) \le 1/2` (accurate to a
    few ulps) and :math:`b = [x > 0]` (:math:`1/2` at :math:`x = 0`, where both
    branches agree), :math:`t = y - b = y - (1 + \operatorname{sign} x) / 2`:

    .. math::

        -\ell = \log(1 - s) + x\, t, \qquad
        -\frac{\partial \ell}{\partial x} = y - \sigma(x) = t + \operatorname{sign}(x)\, s,

    since :math:`\max(x, 0) - x y = -x t` and :math:`\sigma(x) = b - \operatorname{sign}(x)\,
    s` for both signs of :math:`x`.  Both terms of :math:`-\ell` are non-positive
    (:math:`\log(1 - s)` by :func:`cvloss_ref._numerics.log1p`, so that it keeps its
    digits as :math:`s \to 0`), so the value keeps its relative accuracy at confident
    logits; for a hard target :math:`t \in \{-1, 0, 1\}` is exact, and the gradient is
    :math:`\pm s` or has magnitude at least :math:`1/2`: never :math:`1 - p` formed by
    subtraction.  The signs are flipped by :class:`_FusedSigmoidFocalLoss`, on the
    reduced value and the upstream gradient (exact, and one pass less each)."""
    s = x.abs().neg_().sigmoid_()  # sigma(-|x|) <= 1/2
    sign = x.sign()
    t = torch.add(y, sign, alpha=-0.5).sub_(0.5)  # y - b
    # y - sigma(x), in sign's buffer (spent).
    neg_grad = torch.addcmul(t, sign, s, out=sign) if with_grad else None
    neg_loss = log1p_(s.neg_()).addcmul_(x, t)  # log(1 - s) + x (y - b)
    return neg_loss, neg_grad


def _focal_kernel(
    x: torch.Tensor, y: torch.Tensor, alpha: float, gamma: float, with_grad: bool
) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """``(loss, grad_x, sign)`` of the kernel for these ``alpha`` and ``gamma``: the loss
    and gradient are ``sign`` times the true ones (``-1``: the negated BCE kernel)."""
    if gamma == 0 and alpha < 0:
        return *_compile.run(_negated_bce_with_logits, x, y, with_grad), -1.0
    return *_compile.run(_fused_sigmoid_focal, x, y, alpha, gamma, with_grad), 1.0


def _reduce_signed(loss: torch.Tensor, reduction: str, sign: float) -> torch.Tensor:
    """``_reduce(sign * loss, reduction)``, negating (where ``sign`` is -1) after the
    sum where there is one, plus 0, so that an empty sum or mean is 0, not -0 (an
    elementwise loss that is exactly 0 where :math:`s` underflows stays -0)."""
    if sign > 0:
        return _reduce(loss, reduction)
    if reduction == "none":
        return loss.neg_()
    return _reduce(loss, reduction).neg_().add_(0.0)


class _FusedSigmoidFocalLoss(torch.autograd.Function):
    """Sigmoid focal loss with the hand-written gradient of :func:`_fused_sigmoid_focal`
    (of :func:`_negated_bce_with_logits` for ``gamma=0`` without ``alpha``).

    Differentiable once: the saved gradients are constants, so a double backward
    raises instead of returning a silently wrong second derivative.

    The reduction is done here too, so that the backward pass is one multiplication
    by the upstream gradient (a scalar for ``"mean"`` and ``"sum"``).
    """

    @staticmethod
    def forward(ctx, x, y, alpha, gamma, reduction):
        loss, grad_x, sign = _focal_kernel(x, y, alpha, gamma, True)
        ctx.save_for_backward(grad_x)
        # d mean / d loss_i = 1 / N; max(N, 1): an empty input has an empty gradient.
        ctx.scale = sign / max(grad_x.numel(), 1) if reduction == "mean" else sign
        return _reduce_signed(loss, reduction, sign)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        (grad_x,) = ctx.saved_tensors
        return grad_x * (grad_loss * ctx.scale), None, None, None, None


def sigmoid_focal_loss(
    x: torch.Tensor, y: torch.Tensor, alpha: float, gamma: float, reduction: str
) -> torch.Tensor:
    """Reduced sigmoid focal loss of checked float32/float64 logits and targets that
    need no gradient: the dispatch point of ``sigmoid_focal_loss`` and
    ``binary_cross_entropy_with_logits`` (``alpha=-1, gamma=0``, which takes the
    kernels of :func:`_negated_bce_with_logits`).  With a gradient in the logits it is
    computed in the same pass as the value."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _FusedSigmoidFocalLoss.apply(x, y, alpha, gamma, reduction)
    loss, _, sign = _focal_kernel(x, y, alpha, gamma, False)
    return _reduce_signed(loss, reduction, sign)


# -------------------------------------------------------------- softmax focal loss


class _SoftmaxFocalLoss(torch.autograd.Function):
    r"""Per-sample :math:`(1 - p_y)^\gamma (-\log p_y)` from one softmax, with a
    hand-written gradient; the class dimension is kept (size 1) in the output.

    With :math:`p = \operatorname{softmax}(x)`, :math:`S = \sum_{c \ne y} p_c = 1 - p_y`
    is summed directly over the other classes (never as ``1 - p_y``, which rounds to 0
    for a confident logit), :math:`f = S^\gamma` and :math:`L = -\log p_y`, computed
    as :math:`\log(1 + S / p_y)` where :math:`p_y \ge 1/2` (exact as
    :math:`p_y \to 1`) and as :math:`(\max_c x_c - x_y) - \log p_{\arg\max}` (the
    log-sum-exp, finite where :math:`p_y` underflows) otherwise.  The gradient is

    .. math::

        \frac{\partial \ell}{\partial x_c} = f\, p_c \Bigl(1 + \gamma \frac{L\, p_y}{S}\Bigr)
        \quad (c \ne y), \qquad
        \frac{\partial \ell}{\partial x_y} = -f\, (S + \gamma L\, p_y),

    with :math:`L p_y / S \to 1` taken where :math:`S` underflows to 0 (a single class,
    or a logit gap beyond the dtype's range), so no 0/0 appears.  Only :math:`p` is
    saved for the backward, which is one multiplication and a scatter: a third of the
    full-size passes of the composition above, whose two log-sum-exps each cost several.
    Differentiable once: a double backward raises instead of returning a wrong
    second derivative.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, target: torch.Tensor, gamma: float, dim: int):
        p = torch.softmax(x, dim)
        p_y = p.gather(dim, target)
        # sum_{c != y} p_c: p_y zeroed in place for the sum, then put back (p is ours,
        # and a copy of a (N, C) tensor is what bounds this function's memory).
        rest = p.scatter_(dim, target, 0.0).sum(dim, keepdim=True)
        p.scatter_(dim, target, p_y)
        top, top_index = x.max(dim, keepdim=True)
        from_lse = (top - x.gather(dim, target)) - torch.log(p.gather(dim, top_index))
        confident = p_y >= 0.5
        nll = torch.where(confident, log1p(rest / torch.where(confident, p_y, 1.0)), from_lse)
        focus = rest.pow(gamma)  # 0 ** 0 = 1: gamma = 0 is the cross entropy
        ctx.save_for_backward(p, p_y, rest, nll, focus, target)
        ctx.gamma, ctx.dim = gamma, dim
        return focus * nll

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor):
        p, p_y, rest, nll, focus, target = ctx.saved_tensors
        gamma = ctx.gamma
        # L p_y / S, with its limit 1 where S underflows to 0 (then L = -log p_y ~ S / p_y).
        ratio = torch.where(rest > 0, nll * p_y / torch.where(rest > 0, rest, 1.0), 1.0)
        scale = grad * focus
        grad_x = p * (scale * (1 + gamma * ratio))
        grad_x.scatter_(ctx.dim, target, -scale * (rest + gamma * nll * p_y))
        return grad_x, None, None, None


def softmax_focal(x: torch.Tensor, target: torch.Tensor, gamma: float, dim: int) -> torch.Tensor:
    """Per-sample softmax focal loss (class dimension kept, size 1) of checked logits and
    in-range class indices: the dispatch point of ``softmax_focal_loss``, taken on every
    call."""
    return _SoftmaxFocalLoss.apply(x, target, gamma, dim)


# ------------------------------------------------------------------ cross entropy


def _softmax_and_top(
    x: torch.Tensor, dim: int, in_place: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The pieces of an accurate :math:`-\log p` of every class: ``(p, top, top_index,
    rest, log_norm)``, for :class:`_ProbabilityCrossEntropy`.

    With :math:`k = \arg\max_c x_c` (``top_index``; ``top`` is :math:`x_k`),
    :math:`p = \operatorname{softmax}(x)`, ``rest`` :math:`R_k = \sum_{c \ne k} p_c`
    (summed over the other classes, never formed as :math:`1 - p_k`) and ``log_norm``

    .. math::

        -\log p_k = \log \sum_c e^{x_c - x_k} = \log(1 + R_k / p_k),

    by ``log1p``: the log-sum-exp shifted by the largest logit with the 1 it
    contains taken out, so that it keeps its relative accuracy as :math:`R_k \to 0`
    (``logsumexp`` rounds :math:`\log(1 + R_k / p_k)` to a multiple of the largest
    logit's ulp).  :math:`p_k \ge 1 / C`, so the quotient is never large.  Every
    piece keeps the class dimension (size 1 where reduced).  ``in_place=False``
    leaves ``p`` untouched (for a backward that is differentiated again).
    """
    p = torch.softmax(x, dim)
    top, top_index = x.max(dim, keepdim=True)
    p_top = p.gather(dim, top_index)
    if in_place:
        # p_k zeroed in place for the sum, then put back: p is ours, and a copy of a
        # (N, C) tensor costs as much as the sum.
        rest = p.scatter_(dim, top_index, torch.zeros_like(p_top)).sum(dim, keepdim=True)
        p.scatter_(dim, top_index, p_top)
    else:
        rest = p.scatter(dim, top_index, 0.0).sum(dim, keepdim=True)
    # (Kahan's form of log1p is not for a backward that autograd records.)
    log_norm = log1p(rest / p_top) if in_place else torch.log1p(rest / p_top)
    return p, top, top_index, rest, log_norm


def _softmax_and_rest(
    x: torch.Tensor, target: torch.Tensor, dim: int, in_place: bool = True, put_back: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""``(p, p_y, rest)``: :math:`p = \operatorname{softmax}(x)`, its entry at the class
    index ``target`` (class dimension kept) and :math:`R_y = \sum_{c \ne y} p_c`, summed
    over the other classes (never formed as :math:`1 - p_y`).  ``in_place=False``
    leaves ``p`` untouched, for a backward that autograd records; ``put_back=False``
    returns ``p`` with 0 at ``target``."""
    p = torch.softmax(x, dim)
    p_y = p.gather(dim, target)
    if not in_place:
        return p, p_y, p.scatter(dim, target, 0.0).sum(dim, keepdim=True)
    # p_y zeroed in place for the sum, then put back: p is ours, and a copy of a (N, C)
    # tensor costs as much as the sum.  (A tensor of zeros: scatter_ with a number is
    # twice as slow on a CPU.)
    rest = p.scatter_(dim, target, torch.zeros_like(p_y)).sum(dim, keepdim=True)
    if put_back:
        p.scatter_(dim, target, p_y)
    return p, p_y, rest


# The smallest normal number of each dtype.
_TINY = {dtype: torch.finfo(dtype).tiny for dtype in (torch.float32, torch.float64)}


def _may_underflow(p_y: torch.Tensor) -> bool:
    """Whether some target probability may be below the smallest normal number (where
    ``log1p(R_y / p_y)`` loses its digits): read back on a CPU, where that costs
    nothing; assumed elsewhere (a GPU would wait for it), under ``torch.compile`` and
    on meta tensors."""
    if p_y.device.type != "cpu" or p_y.numel() == 0 or torch.compiler.is_compiling():
        return p_y.numel() > 0
    return p_y.amin().item() < _TINY[p_y.dtype]


class _IndexCrossEntropy(torch.autograd.Function):
    r"""Cross entropy of class indices with class weights, label smoothing and the
    reduction, accurate at confident logits, with a hand-written gradient.

    From one softmax :math:`p` and :math:`R_y = \sum_{c \ne y} p_c` (summed over the
    other classes, never formed as :math:`1 - p_y`):

    .. math::

        -\log p_y = \log \frac{p_y + R_y}{p_y} = \operatorname{log1p}(R_y / p_y).

    At a confident right prediction (:math:`p_y \to 1`) the exact value
    :math:`\approx \sum_{c \ne y} e^{x_c - x_y}` is far below one ulp of the logits:
    ``log1p`` of an accurate quotient keeps it to a few ulps, where
    ``logsumexp(x) - x_y`` (``F.cross_entropy``) rounds it to 0 or to one ulp of
    :math:`x_y`.  Elsewhere (:math:`p_y \le 1/2`, :math:`-\log p_y \ge \log 2`) it is
    as accurate, since :math:`p_y + R_y = 1` to a few ulps, except where :math:`p_y`
    is below the smallest normal number and has lost its digits.  There (and, with
    label smoothing, wherever :math:`p_y < 1/2`, as the pieces are computed anyway)
    the value is taken as :math:`(m - x_y) + L` with :math:`m = \max_c x_c` and
    :math:`L = -\log \max_c p_c`: two non-negative terms whose sum is at least
    :math:`\log 2`, so that the absolute accuracy of :math:`L` (a few ulps of 1)
    suffices.  With label smoothing and class weights,
    :math:`\sum_c w_c (-\log p_c) = \sum_c w_c (m - x_c) + W L` (:math:`W = \sum_c
    w_c`; :math:`L = -\log p_y` where :math:`p_y \ge 1/2`), again non-negative terms;
    without them, :math:`-\log p_y + (\varepsilon / C) \sum_c (x_y - x_c)` (see
    :meth:`_unweighted`), for a smoothing of at most 1/2 (a larger one takes weights
    of 1).
    The loss of a sample and its gradient per unit upstream gradient:

    .. math::

        \ell = (1 - \varepsilon)\, w_y (-\log p_y)
             + \frac{\varepsilon}{C} \sum_c w_c (-\log p_c), \qquad
        \frac{\partial \ell}{\partial x_c} = (1 - \varepsilon)\, w_y (p_c - [c = y])
            + \frac{\varepsilon}{C} (W p_c - w_c),

    with :math:`1 - p_y` taken as :math:`R_y` (by subtraction it rounds to 0 at
    confident logits).  A target that is not ``kept`` (``ignore_index``) gives 0 and
    passes no gradient, whatever its logits and its upstream gradient (as ATen's
    kernel: masked, not multiplied by 0).  ``"mean"`` divides by
    :math:`\sum_i w_{y_i}` over the kept targets (0, with a zero gradient, where that
    is 0).  The forward is ATen's softmax kernel and one sum (a pass over
    :math:`x_y - x` and its sum more with smoothing, two ``amax`` more with class
    weights and smoothing or with an underflow), and
    saves :math:`p` (as ATen saves its log-softmax); without class weights it saves
    the gradient per unit upstream gradient instead, formed in :math:`p`'s buffer, so
    that the backward is one multiplication (with class weights: a multiplication, a
    scatter and a subtraction), where ATen's recomputes the exponentials.  The reduction
    is done here, so that the backward starts from a scalar.  Differentiable twice:
    under ``create_graph`` the backward recomputes :math:`p` from the saved logits with
    autograd watching.
    """

    @staticmethod
    def forward(ctx: Any, x, target, kept, weight, epsilon, dim, reduction):
        # Without class weights p keeps 0 at y (see _unweighted below).
        p, p_y, rest = _softmax_and_rest(x, target, dim, put_back=weight is not None)
        nll = log1p(rest / p_y)  # -log p_y, see the docstring
        if weight is None:
            loss, p = _IndexCrossEntropy._unweighted(x, target, p, p_y, rest, nll, epsilon, dim)
            p_y = rest = None  # p now holds the gradient: nothing else is needed
        else:
            if epsilon or _may_underflow(p_y):
                top = x.amax(dim, keepdim=True)
                # log p_k = -log sum_c e^{x_c - m}, to a few ulps of 1.
                log_top = p.amax(dim, keepdim=True).log_()
                lse_nll = (top - x.gather(dim, target)).sub_(log_top)
                confident = p_y >= (0.5 if epsilon else _TINY[p.dtype])
                nll = torch.where(confident, nll, lse_nll)
            w_y = weight[target]
            loss = w_y * nll
            if epsilon:
                # L = -log p_k: to a few ulps of itself where y is the largest logit.
                log_norm = torch.where(confident, nll, log_top.neg_())
                # sum_c w_c (-log p_c) = sum_c w_c (m - x_c) + W L: non-negative terms.
                spread = ((top - x) * _along(weight, x, dim)).sum(dim, keepdim=True)
                spread.addcmul_(log_norm, weight.sum())
                # (1 - eps) w_y (-log p_y) + (eps / C) sum_c w_c (-log p_c).
                loss = spread.mul_(epsilon / x.shape[dim]).add_(loss, alpha=1 - epsilon)
        # Ignored targets give 0, whatever their logits (as ATen's kernel); kept is
        # None when no target is ignored.
        if kept is not None:
            loss = torch.where(kept, loss, 0.0)
        denominator = None
        ctx.count = 0
        if reduction == "none":
            loss = loss.squeeze(dim)
        elif reduction == "sum":
            loss = loss.sum()
        elif weight is None and kept is None:
            ctx.count = max(loss.numel(), 1)  # a mean over nothing is 0 / 1
            loss = loss.mean() if loss.numel() else loss.sum()
        elif weight is None:
            # A count: when it is 0 the sum is 0 too, and 0 / 1 is the convention.
            denominator = kept.sum().clamp_min_(1)
            loss = loss.sum().div_(denominator)
        else:
            # 0 (with a zero gradient) when the kept targets weigh nothing: 0 / inf.
            denominator = (w_y if kept is None else torch.where(kept, w_y, 0.0)).sum()
            denominator = torch.where(denominator != 0, denominator, torch.inf)
            loss = loss.sum().div_(denominator)
        ctx.save_for_backward(x, p, p_y, rest, target, kept, weight, denominator)
        ctx.epsilon, ctx.dim, ctx.reduction = epsilon, dim, reduction
        return loss

    @staticmethod
    def _unweighted(x, target, p, p_y, rest, nll, epsilon, dim):
        r"""The per-sample loss without class weights (and a smoothing of at most 1/2),
        and the gradient per unit upstream gradient in ``p``'s buffer (``p`` arrives
        with 0 at ``y``), so that the backward is one multiplication.

        Since :math:`-\log p_c = -\log p_y + (x_y - x_c)`, the smoothed loss is

        .. math::

            (1 - \varepsilon)(-\log p_y) + \frac{\varepsilon}{C} \sum_c (-\log p_c)
            = -\log p_y + \frac{\varepsilon}{C} \sum_c (x_y - x_c),

        one pass over :math:`x_y - x`.  Its terms of both signs do not cancel much:
        each negative one (:math:`x_c > x_y`) is at most :math:`-\log p_y` in size,
        so their sum is at most :math:`\varepsilon (-\log p_y)`, while the loss is
        at least :math:`(1 - \varepsilon)(-\log p_y)` plus the positive terms: the
        rounding errors grow by at most :math:`(1 + \varepsilon) / (1 - \varepsilon)
        \le 3`.  (A larger smoothing takes the weighted form, with weights of 1.)
        """
        if _may_underflow(p_y):
            # p_y below the smallest normal number has lost its digits: -log p_y =
            # (m - x_y) + L with m = max_c x_c and L = -log max_c p_c, two non-negative
            # terms whose sum is at least log 2 (L is accurate to a few ulps of 1).
            log_top = torch.maximum(p.amax(dim, keepdim=True), p_y).log_()
            lse_nll = (x.amax(dim, keepdim=True) - x.gather(dim, target)).sub_(log_top)
            nll = torch.where(p_y >= _TINY[p.dtype], nll, lse_nll)
        # (1 - eps)(p_c - [c = y]) + (eps / C)(C p_c - 1) = p_c - eps / C - (1 - eps)[c = y],
        # with 1 - p_y = R_y: eps p_y - (1 - eps) R_y - eps / C at y.
        if not epsilon:
            return nll, p.scatter_(dim, target, rest.neg_())
        spread = (x.gather(dim, target) - x).sum(dim, keepdim=True)
        loss = nll.add_(spread, alpha=epsilon / x.shape[dim])
        y_value = torch.add(p_y * epsilon, rest, alpha=epsilon - 1)
        return loss, p.scatter_(dim, target, y_value).sub_(epsilon / x.shape[dim])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):
        x, p, p_y, rest, target, kept, weight, denominator = ctx.saved_tensors
        epsilon, dim = ctx.epsilon, ctx.dim
        recording = torch.is_grad_enabled()
        if recording:
            # create_graph: the gradient as a function of x that autograd can follow.
            p, p_y, rest = _softmax_and_rest(x, target, dim, in_place=False)
        if ctx.reduction == "none":
            grad = grad.unsqueeze(dim)
        elif denominator is not None:
            grad = grad / denominator
        elif ctx.count:
            grad = grad / ctx.count
        # Ignored targets pass no gradient, whatever comes from upstream (as ATen's
        # kernel: a NaN or infinite upstream gradient there is not multiplied by 0).
        scale = grad if kept is None else torch.where(kept, grad, 0.0)
        if weight is None:
            if not recording:
                # p holds the gradient per unit upstream gradient (see _unweighted).
                return p * scale, *_NONE6
            # w = 1: (1 - eps)(p_c - [c = y]) + (eps / C)(C p_c - 1) = p_c - eps / C
            # - (1 - eps)[c = y], with 1 - p_y = R_y.
            grad_x = p * scale
            if not epsilon:
                return _put(grad_x, dim, target, -(scale * rest)), *_NONE6
            shift = epsilon / x.shape[dim]
            # - eps / C: in place unless autograd records the backward (one pass, and
            # no second (N, C) allocation).
            shift_scale = scale * shift
            grad_x = grad_x - shift_scale if recording else grad_x.sub_(shift_scale)
            y_value = torch.add(p_y * epsilon, rest, alpha=epsilon - 1).sub_(shift)
            return _put(grad_x, dim, target, y_value * scale), *_NONE6
        # (1 - eps) w_y (p_c - [c = y]) + (eps / C)(W p_c - w_c).
        w_y = weight[target]
        nll_scale = w_y * (scale * (1 - epsilon))
        spread_scale = scale * (epsilon / x.shape[dim])
        total_weight = weight.sum()
        grad_x = p * (nll_scale + spread_scale * total_weight)
        w_c = _along(weight, x, dim)
        if recording:
            grad_x = grad_x - spread_scale * w_c
        else:
            grad_x.addcmul_(spread_scale, w_c, value=-1)
        y_value = spread_scale * (total_weight * p_y - w_y) - nll_scale * rest
        return _put(grad_x, dim, target, y_value), *_NONE6


_NONE6 = (None,) * 6


def _along(weight: torch.Tensor, x: torch.Tensor, dim: int) -> torch.Tensor:
    """Class weights ``(C,)`` as a view along the class dimension ``dim`` of ``x``."""
    shape = [1] * x.dim()
    shape[dim] = -1
    return weight.view(shape)


def _put(grad_x: torch.Tensor, dim: int, index: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``grad_x`` with ``value`` at ``index`` along ``dim``: in place, unless autograd is
    recording (a backward that is differentiated again)."""
    if torch.is_grad_enabled():
        return grad_x.scatter(dim, index, value)
    return grad_x.scatter_(dim, index, value)


def transforms_active() -> bool:
    """Whether ``torch.func`` transforms (``vmap``, ``grad``, ``jvp``, ...) or forward-mode
    AD are running: the autograd Functions of this module (hand-written ``backward``, no
    ``setup_context``/``vmap``/``jvp``) do not support them, so a dispatch point that
    checks this takes its composition of elementary ops instead."""
    from torch.autograd import forward_ad

    return bool(torch._C._are_functorch_transforms_active()) or forward_ad._current_level >= 0


def index_cross_entropy(
    x: torch.Tensor,
    target: torch.Tensor,
    w: torch.Tensor | None,
    ignore_index: int,
    epsilon: float,
    reduction: str,
) -> torch.Tensor:
    """``cross_entropy`` of checked float32/float64 logits and ``long`` class indices
    by :class:`_IndexCrossEntropy`; the mean divides by the kept targets' weights (0,
    not 0/0, when nothing is kept).  The dispatch point of class-index targets: taken
    on every call."""
    dim = 0 if x.dim() == 1 else 1
    if x.shape[dim] == 0:  # no class: ATen's kernel says what is wrong
        return torch._C._nn.cross_entropy_loss(
            x, target, w, _REDUCTION_CODE[reduction], ignore_index, epsilon
        )
    if w is not None and w.requires_grad and torch.is_grad_enabled():
        raise ValueError(
            "weight must not require a gradient with class-index targets (the loss is "
            "not differentiable in it, as in F.cross_entropy), got a weight with "
            "requires_grad=True; pass weight.detach()"
        )
    if w is None and epsilon > 0.5:
        # The unweighted form of the smoothing is for eps <= 1/2 (see
        # _IndexCrossEntropy._unweighted): above, weights of 1.
        w = torch.ones(x.shape[dim], dtype=x.dtype, device=x.device)
    kept = target != ignore_index
    if _all_true(kept):
        # Nothing to ignore (the usual call): no masks in the forward and backward.
        return _IndexCrossEntropy.apply(x, target.unsqueeze(dim), None, w, epsilon, dim, reduction)
    # Ignored targets (e.g. -100) are replaced by class 0 before indexing, then masked.
    safe_target = torch.where(kept, target, 0).unsqueeze(dim)
    return _IndexCrossEntropy.apply(x, safe_target, kept.unsqueeze(dim), w, epsilon, dim, reduction)


def _all_true(mask: torch.Tensor) -> bool:
    """Whether every entry of ``mask`` is true, read back where that costs nothing (a
    CPU, outside ``torch.compile``, not a meta tensor); False (not known) elsewhere."""
    if mask.device.type != "cpu" or torch.compiler.is_compiling():
        return False
    return bool(mask.all())


class _ProbabilityCrossEntropy(torch.autograd.Function):
    r"""Per-sample :math:`\sum_c q_c (-\log p_c)` (class dimension kept, size 1) for
    non-negative :math:`q` (class weights times the smoothed target probabilities),
    accurate at confident logits, with a hand-written gradient.

    With the pieces of :func:`_softmax_and_top` (:math:`k` the largest logit,
    :math:`L = -\log p_k = \operatorname{log1p}(R_k / p_k)`), every
    :math:`-\log p_c = (x_k - x_c) + L` is a sum of two non-negative terms, so

    .. math::

        \ell = \sum_c q_c (x_k - x_c) + Q L, \qquad Q = \sum_c q_c,

    keeps its relative accuracy down to the smallest values (a target concentrated on
    a confident class), where ``F.cross_entropy``'s log-softmax rounds :math:`L` to 0.
    The gradient

    .. math::

        \frac{\partial \ell}{\partial x_c} = Q p_c - q_c, \qquad
        \frac{\partial \ell}{\partial x_k} = p_k \sum_{c \ne k} q_c - q_k R_k,
        \qquad \frac{\partial \ell}{\partial q_c} = -\log p_c

    (at :math:`k` the same with :math:`1 - p_k = R_k` and the sum over the other
    classes taken directly, so that a target concentrated on a confident class keeps
    the digits of its small gradient).  The gradient in :math:`q` reaches the target
    and the class weights through autograd on :math:`q`'s few elementwise operations.
    Differentiable twice: under ``create_graph`` the backward recomputes the softmax
    from the saved logits with autograd watching.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, q: torch.Tensor, dim: int) -> torch.Tensor:
        p, top, top_index, rest, log_norm = _softmax_and_top(x, dim)
        total = q.sum(dim, keepdim=True)
        gaps = top - x
        loss = torch.linalg.vecdot(gaps, q, dim=dim).unsqueeze(dim).addcmul_(total, log_norm)
        ctx.save_for_backward(x, q, p, rest, top_index, log_norm)
        ctx.dim = dim
        return loss

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):
        x, q, p, rest, top_index, log_norm = ctx.saved_tensors
        dim = ctx.dim
        recording = torch.is_grad_enabled()
        if recording:
            p, _, top_index, rest, log_norm = _softmax_and_top(x, dim, in_place=False)
        q_top = q.gather(dim, top_index)
        q_others = q.scatter(dim, top_index, torch.zeros_like(q_top)).sum(dim, keepdim=True)
        # (Q p - q) g, and at k (p_k sum_{c != k} q_c - q_k R_k) g.
        grad_x = torch.addcmul(q, p, q_others + q_top, value=-1)
        grad_x = grad_x * -grad if recording else grad_x.mul_(-grad)
        k_value = (p.gather(dim, top_index) * q_others - q_top * rest) * grad
        grad_x = _put(grad_x, dim, top_index, k_value)
        grad_q = None
        if ctx.needs_input_grad[1]:
            neg_log_p = (x.gather(dim, top_index) - x) + log_norm
            grad_q = neg_log_p * grad
        return grad_x, grad_q, None


def probability_cross_entropy(
    x: torch.Tensor,
    soft: torch.Tensor,
    w: torch.Tensor | None,
    ignore_index: int,
    epsilon: float,
    reduction: str,
) -> torch.Tensor:
    r"""``cross_entropy`` of checked logits and class probabilities of their shape:
    :math:`-\sum_c w_c \tilde t_c \log p_c` by :class:`_ProbabilityCrossEntropy`, with
    :math:`q = w\, \tilde t` formed here by autograd (so that the target and the
    weights get their gradients too).  The dispatch point of probability targets,
    taken on every call; ``ignore_index`` (negative) plays no part."""
    dim = 0 if x.dim() == 1 else 1
    if x.shape[dim] == 0:  # no class: ATen's kernel says what is wrong
        code = _REDUCTION_CODE[reduction]
        return torch._C._nn.cross_entropy_loss(x, soft, w, code, ignore_index, epsilon)
    q = soft
    if epsilon:
        q = q * (1 - epsilon) + epsilon / x.shape[dim]
    if w is not None:
        q = q * _along(w, x, dim)
    loss = _ProbabilityCrossEntropy.apply(x, q, dim).squeeze(dim)
    return _reduce(loss, reduction)


# ---------------------------------------------------------- pairwise distances


class _PairSquaredDistances(torch.autograd.Function):
    r""":math:`\lVert x_i - x_j \rVert^2` for the index pairs ``(first, second)``, in
    chunks of ``chunk`` pairs, forward and backward: the gradient
    :math:`2 g\, (x_i - x_j)` to row :math:`i` and its negative to row :math:`j` is
    formed chunk by chunk from the saved indices, so that neither pass holds more than
    one chunk of differences (autograd on the composition would keep every chunk's
    differences for the backward).  Differentiable twice: under ``create_graph`` the
    backward is built of out-of-place operations that autograd records.
    """

    @staticmethod
    def forward(ctx: Any, x, first, second, chunk):
        parts = []
        for start in range(0, first.numel(), chunk):
            diff = x[first[start : start + chunk]] - x[second[start : start + chunk]]
            parts.append(diff.mul_(diff).sum(dim=1))
        ctx.save_for_backward(x, first, second)
        ctx.chunk = chunk
        return torch.cat(parts) if parts else x.new_zeros(0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):
        x, first, second = ctx.saved_tensors
        chunk = ctx.chunk
        recording = torch.is_grad_enabled()
        grad_x = torch.zeros_like(x)
        for start in range(0, first.numel(), chunk):
            rows, others = first[start : start + chunk], second[start : start + chunk]
            step = (x[rows] - x[others]) * (2 * grad[start : start + chunk]).unsqueeze(1)
            if recording:
                grad_x = grad_x.index_add(0, rows, step).index_add(0, others, -step)
            else:
                grad_x.index_add_(0, rows, step).index_add_(0, others, step, alpha=-1)
        return grad_x, None, None, None


def pair_squared_distances(
    x: torch.Tensor, first: torch.Tensor, second: torch.Tensor, chunk: int
) -> torch.Tensor:
    """Squared distances of the row pairs ``(first[k], second[k])`` of ``x`` ``(B, D)``,
    ``chunk`` pairs at a time: the dispatch point of ``pairwise_distances``'s
    recomputation of near pairs, taken whenever there is one."""
    return _PairSquaredDistances.apply(x, first, second, chunk)


# ---------------------------------------------------------------- total variation


class _TotalVariation(torch.autograd.Function):
    r"""Per-image total variation with a hand-written gradient.

    With :math:`s = \operatorname{sign}(\Delta)` (``p=1``; 0 at a zero difference, as
    ``torch.abs``) or :math:`s = 2\Delta` (``p=2``) for each difference
    :math:`\Delta = x_{i+1} - x_i`, the pixel :math:`x_i` receives :math:`-s` from the
    difference it starts and :math:`+s` from the one it ends.  The backward is a
    zero-filled gradient and four slice updates, where autograd's composition builds a
    full zero tensor for each of the four slices and adds them up.  Differentiable
    once: a double backward raises instead of returning a wrong second derivative.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: int) -> torch.Tensor:
        diff_h = x[..., 1:, :] - x[..., :-1, :]
        diff_w = x[..., :, 1:] - x[..., :, :-1]
        dims = (-3, -2, -1)
        if p == 1:
            per_image = diff_h.abs().sum(dims) + diff_w.abs().sum(dims)
            slopes = (diff_h.sign_(), diff_w.sign_())  # in place: the differences are ours
        else:
            per_image = (diff_h * diff_h).sum(dims) + (diff_w * diff_w).sum(dims)
            slopes = (diff_h.mul_(2.0), diff_w.mul_(2.0))
        ctx.save_for_backward(*slopes)
        ctx.image_shape = x.shape
        return per_image

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        slope_h, slope_w = ctx.saved_tensors
        grad = grad[..., None, None, None]  # one upstream value per image
        grad_x = slope_h.new_zeros(ctx.image_shape)
        step_h = slope_h * grad
        grad_x[..., 1:, :] += step_h
        grad_x[..., :-1, :] -= step_h
        del step_h
        step_w = slope_w * grad
        grad_x[..., :, 1:] += step_w
        grad_x[..., :, :-1] -= step_w
        return grad_x, None


def total_variation(x: torch.Tensor, p: int) -> torch.Tensor:
    """Per-image total variation with a hand-written backward: the dispatch point of
    ``total_variation`` when a gradient is wanted."""
    return _TotalVariation.apply(x, p)


# ------------------------------------------------------------------ regression kernels

# ATen's smooth L1 and Huber kernels, called as kernel(x, y, reduction_code, param):
# one pass forward and one backward, about ten times faster on a CPU than a
# torch.where of the two branches.
smooth_l1_kernel = torch._C._nn.smooth_l1_loss
huber_kernel = torch._C._nn.huber_loss

r"""The fast paths: fused autograd functions, compiled kernels and ATen calls.

The family modules (``boxes.py``, ``classification.py``, ``regression.py``,
``synthesis.py``) show each loss as the composition its docstring and the book
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
                                               call (ATen's ``cross_entropy_loss``)
``smooth_l1_loss``, ``huber_loss``             :func:`smooth_l1_kernel`,
                                               :func:`huber_kernel`: every call
``total_variation``                            :func:`total_variation`: when a gradient
                                               is wanted
=============================================  ==========================================

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
from ._numerics import weighted_mean
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
    - :math:`\ell = \max(x, 0) - x y + \log(1 + s)` (binary cross entropy), with
      :math:`s = \min(p, \bar p) = e^{-|x|} / (1 + e^{-|x|})` and
      :math:`\log(1 + e^{-|x|}) = -\log(1 - s)` taken by Kahan's trick
      :math:`-\log(1 - s) = s \cdot \log w / (w - 1)` with :math:`w = \max(p, \bar p)`:
      :math:`w - 1` is exact, :math:`\log w / (w - 1)` is a smooth function of
      :math:`w` near 1, and its limit 1 is taken where :math:`w` rounds to 1.  (That
      is ``log1p`` without ``log1p``, whose CPU kernel is not vectorised and costs
      ten times a ``log``.)

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
    p_bar = torch.sigmoid(-x)
    # log(1 + e^{-|x|}) = -log(1 - s) = s log(w) / (w - 1), w = 1 - s = max(p, p_bar);
    # 0/0 where w rounds to 1 becomes the limit 1 (NaN inputs stay NaN through s).
    # Each buffer is released or reused as soon as it is spent: peak memory.
    big = torch.maximum(p, p_bar)
    softplus_abs = big.log().div_(big.sub_(1)).nan_to_num_(nan=1.0)
    del big
    softplus_abs.mul_(torch.minimum(p, p_bar))
    # Binary cross entropy: softplus(x) - x y = max(x, 0) - x y + log(1 + e^{-|x|}).
    bce = torch.relu(x).addcmul_(x, y, value=-1).add_(softplus_abs)
    del softplus_abs
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
    grad_x = torch.lerp(p, p_bar.neg(), y)  # p - y = (1 - y) p - y p_bar, never 1 - p
    if gamma != 0:
        # d log q / dx = (1 - 2y) p p_bar / q (see the docstring for the floor), in
        # place on buffers that are not needed any more: a fifth less time than
        # allocating each step.
        dlogq_dx = p.mul_(p_bar)
        dlogq_dx.addcmul_(y, dlogq_dx, value=-2)
        dlogq_dx.div_(q.clamp_(min=torch.finfo(q.dtype).tiny))
        grad_x.addcmul_(dlogq_dx, bce, value=gamma)
    return loss, grad_x if weight is None else grad_x.mul_(weight)


class _FusedSigmoidFocalLoss(torch.autograd.Function):
    """Sigmoid focal loss with the hand-written gradient of :func:`_fused_sigmoid_focal`.

    Differentiable once: the saved gradients are constants, so a double backward
    raises instead of returning a silently wrong second derivative.

    The reduction is done here too, so that the backward pass is one multiplication
    by the upstream gradient (a scalar for ``"mean"`` and ``"sum"``).
    """

    @staticmethod
    def forward(ctx, x, y, alpha, gamma, reduction):
        loss, grad_x = _compile.run(_fused_sigmoid_focal, x, y, alpha, gamma, True)
        ctx.save_for_backward(grad_x)
        ctx.reduction = reduction
        return _reduce(loss, reduction)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        (grad_x,) = ctx.saved_tensors
        if ctx.reduction == "mean":
            # d mean / d loss_i = 1 / N; max(N, 1): an empty input has an empty gradient.
            grad_loss = grad_loss / max(grad_x.numel(), 1)
        return grad_x * grad_loss, None, None, None, None


def sigmoid_focal_loss(
    x: torch.Tensor, y: torch.Tensor, alpha: float, gamma: float, reduction: str
) -> torch.Tensor:
    """Reduced sigmoid focal loss of checked float32/float64 logits and targets that
    need no gradient: the dispatch point of ``sigmoid_focal_loss`` and
    ``binary_cross_entropy_with_logits`` (``alpha=-1, gamma=0``).  With a gradient in
    the logits it is computed in the same pass as the value."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _FusedSigmoidFocalLoss.apply(x, y, alpha, gamma, reduction)
    return _reduce(_compile.run(_fused_sigmoid_focal, x, y, alpha, gamma, False)[0], reduction)


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
        nll = torch.where(confident, torch.log1p(rest / torch.where(confident, p_y, 1.0)), from_lse)
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


def index_cross_entropy(
    x: torch.Tensor,
    target: torch.Tensor,
    w: torch.Tensor | None,
    ignore_index: int,
    epsilon: float,
    reduction: str,
) -> torch.Tensor:
    """``cross_entropy`` of checked float32/float64 logits and ``long`` class indices,
    by ATen's kernel (the one ``F.cross_entropy`` calls); the mean is ours (0, not
    0/0, when nothing is kept).  The dispatch point of class-index targets: taken on
    every call."""
    if reduction != "mean":
        code = _REDUCTION_CODE[reduction]
        return torch._C._nn.cross_entropy_loss(x, target, w, code, ignore_index, epsilon)
    total = torch._C._nn.cross_entropy_loss(x, target, w, 2, ignore_index, epsilon)
    kept = target != ignore_index
    if w is None:
        # A count: when it is 0 the sum is 0 too, and 0 / 1 is the convention.
        return total / kept.sum().clamp_min(1)
    # Ignored targets (e.g. -100) are replaced by class 0 before indexing, then masked.
    target_weight = w[torch.where(kept, target, torch.zeros_like(target))] * kept
    return weighted_mean(total, target_weight)


def probability_cross_entropy(
    x: torch.Tensor,
    soft: torch.Tensor,
    w: torch.Tensor | None,
    ignore_index: int,
    epsilon: float,
    reduction: str,
) -> torch.Tensor:
    """``cross_entropy`` of checked logits and class probabilities of their shape, by
    ATen's kernel: the dispatch point of probability targets, taken on every call."""
    code = _REDUCTION_CODE[reduction]
    return torch._C._nn.cross_entropy_loss(x, soft, w, code, ignore_index, epsilon)


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

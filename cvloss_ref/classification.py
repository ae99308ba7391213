r"""Classification losses: cross entropy and its relatives, focal losses, hinge losses.

Every function follows ``torch.nn.functional``: ``loss(input, target, ...,
reduction="mean")``.  Where PyTorch has the same loss (``F.cross_entropy``,
``F.binary_cross_entropy``, ``F.binary_cross_entropy_with_logits``,
``F.multi_margin_loss``, ``F.hinge_embedding_loss``), the function here equals it
in value and in gradient (to rounding, and more accurately at confident predictions:
see below), with two deliberate differences that the docstrings repeat: a
``"mean"`` over nothing (an empty batch, every target ignored) is 0 with a zero
gradient instead of NaN, and half-precision inputs are computed in float32 and
returned in their own dtype.

The numerically delicate parts are written in log space: the log-sum-exp for the
softmax losses, ``logsigmoid`` for the sigmoid losses, and the focal modulating
factor :math:`(1 - p_t)^\gamma` as :math:`\exp(\gamma \log(1 - p_t))`, so that
losses *and* gradients stay finite for logits of :math:`\pm 10^4` in float32 and
every :math:`\gamma \ge 0`; and the small values of confident predictions are
formed without cancellation (``log1p`` of a sum over the other classes, never
``1 - p``), so that they keep their relative accuracy where ``F.cross_entropy``
and ``F.binary_cross_entropy_with_logits`` round them to 0.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from . import _fused
from ._numerics import FULL_PRECISION, log1p, safe_log, weighted_mean
from ._numerics import upcast as _upcast
from ._reduction import _REDUCTION_CODE, _check_reduction, _reduce
from ._validation import (
    _check_class_indices,
    _check_floating,
    _check_integer,
    _check_number,
    _check_probabilities,
    _check_same_device,
    _check_same_shape,
    _check_tensor,
    _check_values_in,
    _plain_pair,
    _wants_values,
)

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "hinge_embedding_loss",
    "hinge_loss",
    "multiclass_hinge_loss",
    "sigmoid_focal_loss",
    "smooth_labels",
    "softmax_focal_loss",
]

# PyTorch clamps log(p) and log(1 - p) of F.binary_cross_entropy at this value, so
# that probabilities of exactly 0 or 1 give a finite loss.
_BCE_LOG_CLAMP = -100.0
# ... and divides its gradient by max(p (1 - p), this): a finite (if huge) gradient
# at p = 0 and p = 1.
_BCE_GRAD_EPS = 1e-12


# --------------------------------------------------------------------------- helpers


def _class_dim(logits: torch.Tensor) -> int:
    """Classes are dim 0 of unbatched ``(C,)`` logits and dim 1 otherwise."""
    return 0 if logits.dim() == 1 else 1


def _check_logits_with_classes(logits: torch.Tensor, name: str) -> None:
    """``logits`` must be ``(C,)`` or ``(N, C, d1, ...)``."""
    if logits.dim() == 0:
        raise ValueError(
            f"{name} must have shape (C,) or (N, C, d1, ...) with the classes in dim 1, "
            f"got shape ()"
        )


def _index_target_shape(logits: torch.Tensor) -> tuple[int, ...]:
    """Shape of class indices that go with ``logits``: its shape without the class dim."""
    class_dim = _class_dim(logits)
    return tuple(logits.shape[:class_dim]) + tuple(logits.shape[class_dim + 1 :])


def _check_index_target(logits: torch.Tensor, target: torch.Tensor, name: str) -> None:
    """``target`` holds class indices of ``logits``'s shape without its class dimension."""
    _check_integer(target, name)
    expected = _index_target_shape(logits)
    if tuple(target.shape) != expected:
        raise ValueError(
            f"{name} must hold class indices of shape {expected} (the shape of logits "
            f"{tuple(logits.shape)} without its class dimension {_class_dim(logits)}), "
            f"got {tuple(target.shape)}"
        )


def _check_class_weight(weight: object, num_classes: int, name: str) -> torch.Tensor:
    """A floating tensor of shape ``(C,)``: one weight per class."""
    _check_floating(weight, name)
    if tuple(weight.shape) != (num_classes,):
        raise ValueError(
            f"{name} must have shape ({num_classes},) (one value per class), "
            f"got {tuple(weight.shape)}"
        )
    return weight


def _check_broadcastable(
    tensor: object, shape: torch.Size, name: str, ref_name: str
) -> torch.Tensor:
    """``tensor`` must broadcast to ``shape`` without enlarging it."""
    _check_floating(tensor, name)
    try:
        result = torch.broadcast_shapes(tensor.shape, shape)
    except RuntimeError:
        result = None
    if result != shape:
        raise ValueError(
            f"{name} must broadcast to the shape of {ref_name} {tuple(shape)}, "
            f"got {tuple(tensor.shape)}"
        )
    return tensor


def _check_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


def _class_shape(logits: torch.Tensor, length: int) -> list[int]:
    """A view shape that puts a ``(C,)`` vector along the class dimension of ``logits``."""
    shape = [1] * logits.dim()
    shape[_class_dim(logits)] = length
    return shape


# --------------------------------------------------------------------- cross entropy


def cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    *,
    validate: bool = False,
) -> torch.Tensor:
    r"""Cross entropy between the softmax of ``logits`` and class indices or probabilities.

    With :math:`\log p_{i,c} = x_{i,c} - \log\sum_k e^{x_{i,k}}` (log-softmax over the
    class dimension, computed with log-sum-exp so that no logit overflows), class
    weights :math:`w_c` (all 1 by default), :math:`C` classes and smoothing
    :math:`\varepsilon`, the loss of a sample with class index :math:`y_i` is

    .. math::

        \ell_i = (1 - \varepsilon)\, w_{y_i} \bigl(-\log p_{i,y_i}\bigr)
                 + \frac{\varepsilon}{C} \sum_{c=1}^{C} w_c \bigl(-\log p_{i,c}\bigr),
        \qquad
        \mathcal{L}_{\mathrm{mean}} = \frac{\sum_{i:\, y_i \ne \mathrm{ignore}} \ell_i}
                                           {\sum_{i:\, y_i \ne \mathrm{ignore}} w_{y_i}},

    and with class probabilities :math:`t_{i,c}` as target (smoothed to
    :math:`\tilde t = (1-\varepsilon)\, t + \varepsilon / C`)

    .. math::

        \ell_i = -\sum_{c=1}^{C} w_c\, \tilde t_{i,c} \log p_{i,c},
        \qquad
        \mathcal{L}_{\mathrm{mean}} = \frac{1}{N d_1 \cdots} \sum_i \ell_i .

    These are exactly the normalisations of ``F.cross_entropy`` (ATen's
    ``cross_entropy_loss_label_smoothing`` and ``cross_entropy_loss_prob_target``):
    with class indices the smoothing term is divided by the same
    :math:`\sum w_{y_i}` as the NLL term, while with probabilities ``"mean"``
    divides by the number of samples, whatever the weights.  Values and gradients
    with respect to ``logits`` equal ``F.cross_entropy``'s to within rounding on
    every input it accepts, except that a ``"mean"`` over nothing (an empty batch,
    or every target equal to ``ignore_index``) is 0 with a zero gradient here and
    NaN in PyTorch.

    **Accuracy at confident logits.**  ``F.cross_entropy`` computes
    :math:`-\log p_y = \operatorname{logsumexp}(x) - x_y`; for a confident right
    prediction the exact value is :math:`\log(1 + \sum_{c \ne y} e^{x_c - x_y})
    \approx \sum_{c \ne y} e^{x_c - x_y}`, small next to one ulp of the logits: the
    difference loses its digits as the gap between the logits grows, and rounds to 0
    or to one ulp of :math:`x_y` beyond a gap of about 15 in float32 and 35 in
    float64, and so does its gradient :math:`p_y - 1`.  Here the same function is
    written without cancellation.  With :math:`R_y = \sum_{c \ne y} p_c`, summed over
    the other classes,

    .. math::

        -\log p_y = \operatorname{log1p}(R_y / p_y), \qquad
        -\log p_c = (x_k - x_c) - \log p_k, \quad
        -\log p_k = \operatorname{log1p}\Bigl(\sum_{c \ne k} p_c / p_k\Bigr)

    (:math:`k` the largest logit): the first keeps the digits of a small quotient as
    :math:`p_y \to 1` and is as accurate elsewhere (:math:`-\log p_y \ge \log 2`
    there); the second, two non-negative terms, serves where :math:`p_y` underflows
    (a logit far below the largest), in the smoothing sum and for probability
    targets.  Without class weights the smoothing sum is
    :math:`\sum_c -\log p_c = C (-\log p_y) + \sum_c (x_y - x_c)`, whose terms
    cancel little for a smoothing of at most 1/2 (larger ones take the form with
    :math:`k`).  The gradient takes :math:`1 - p_y` as :math:`R_y` (by subtraction it
    rounds to 0).  Values and gradients keep a relative accuracy of a few ulps
    wherever the exact value is a normal number (``tests/test_accuracy.py`` checks
    every path against 360-digit arithmetic: class weights, ignored targets,
    smoothing, spatial and unbatched inputs, probability targets, the reductions),
    and differ from ``F.cross_entropy`` by about its own rounding, a few ulps of the
    largest logit.  With label smoothing the gradient's two parts can cancel where
    they balance, and it is accurate relative to their size; with class weights the
    smoothing sum takes :math:`-\log p_k` as :math:`-\log \max_c p_c` (a few ulps of
    1) where :math:`y` is not the largest logit, which keeps the sum accurate unless
    the class weights vanish on every class but the largest.  The value and its
    gradient are computed from one softmax with a hand-written backward
    (``cvloss_ref/_fused.py``), differentiable twice like ATen's kernel.  Speed on a
    CPU: with class indices and smoothing, 0.94-0.98 times the speed of
    ``F.cross_entropy`` at (1000, 100), where the fixed cost of the Python autograd
    function (some 60 µs) shows, and 1.3 times at (1000, 1000); with
    probability targets about half, since they need the index of the largest logit,
    which ATen's CPU ``max`` finds without vectorisation.  The formula
    written out term by term is ``_cross_entropy_composed`` in this module, which
    the tests compare with it.  As in PyTorch, ``weight`` cannot require a gradient
    with class-index targets.  The derivation is in the course's chapter on softmax
    cross entropy.

    Args:
        logits: unnormalised scores, ``(N, C)``, ``(N, C, d1, d2, ...)`` (e.g. a
            segmentation map ``(N, C, H, W)``) or unbatched ``(C,)``.
        target: class indices (any integer dtype) of shape ``(N,)``,
            ``(N, d1, d2, ...)`` or ``()`` respectively; or class probabilities of
            the shape of ``logits`` (floating point).
        weight: optional class weights ``(C,)``.
        ignore_index: class-index targets equal to it contribute nothing, neither to
            the loss nor to the ``"mean"`` denominator.  Must be negative with
            probability targets (as in PyTorch).
        label_smoothing: :math:`\varepsilon \in [0, 1]` (Szegedy et al.'s label
            smoothing; see :func:`smooth_labels` for the soft targets it stands for).
        reduction: ``"none"`` (one value per sample/pixel, the shape of a class-index
            target) | ``"mean"`` | ``"sum"``.
        validate: also check values (class indices in ``[0, C)`` or
            ``ignore_index``, probabilities in ``[0, 1]``); synchronises the GPU.

    Returns:
        The loss in the dtype of ``logits`` (float16/bfloat16 are computed in
        float32): shape ``(N, d1, ...)`` for ``"none"``, else a scalar.

    Reference: Shannon, "A Mathematical Theory of Communication", 1948 (cross
    entropy); Szegedy et al., "Rethinking the Inception Architecture for Computer
    Vision", CVPR 2016 (label smoothing).  Peer: ``torch.nn.functional.cross_entropy``.

    Example:
        >>> logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 0.0]])
        >>> target = torch.tensor([0, 2])
        >>> loss = cross_entropy(logits, target)
        >>> round(loss.item(), 4)
        0.67
        >>> torch.allclose(loss, F.cross_entropy(logits, target))
        True
        >>> cross_entropy(logits, torch.tensor([-100, -100]))  # all ignored: 0, not NaN
        tensor(0.)
    """
    if (
        isinstance(logits, torch.Tensor)
        and isinstance(target, torch.Tensor)
        and logits.dtype in FULL_PRECISION
        and target.dtype == torch.long
        and weight is None
        and logits.dim() == 2
        and target.dim() == 1
        and target.shape[0] == logits.shape[0]
        and logits.shape[1] > 0
        and target.device == logits.device
        and type(ignore_index) is int
        and type(label_smoothing) in (float, int)
        and 0 <= label_smoothing <= 1
        and reduction in _REDUCTION_CODE
        and not _wants_values(validate)
        and not _fused.transforms_active()
    ):
        # The common call, (N, C) logits and (N,) class indices, checked in a few
        # microseconds: the full checks below cost about as much as the loss of a
        # small batch.
        return _fused.index_cross_entropy(
            logits, target, None, ignore_index, float(label_smoothing), reduction
        )
    _check_floating(logits, "logits")
    _check_tensor(target, "target")
    _check_reduction(reduction)
    _check_logits_with_classes(logits, "logits")
    _check_int(ignore_index, "ignore_index")
    epsilon = _check_number(label_smoothing, "label_smoothing", minimum=0.0, maximum=1.0)
    class_dim = _class_dim(logits)
    num_classes = logits.shape[class_dim]
    probability_target = target.shape == logits.shape
    if probability_target:
        if not target.is_floating_point():
            raise TypeError(
                f"target of the shape of logits {tuple(logits.shape)} holds class "
                f"probabilities and must be floating point, got dtype {target.dtype} "
                f"(class indices have the shape of logits without dim {class_dim})"
            )
        if ignore_index >= 0:
            raise ValueError(
                "ignore_index must be negative with class-probability targets "
                f"(there is no index to ignore), got {ignore_index}"
            )
    else:
        if target.is_floating_point():
            raise TypeError(
                f"target must hold integer class indices of shape "
                f"{_index_target_shape(logits)} or floating-point class probabilities of "
                f"the shape of logits {tuple(logits.shape)}, got a {target.dtype} tensor "
                f"of shape {tuple(target.shape)}"
            )
        _check_index_target(logits, target, "target")
    if weight is not None:
        _check_class_weight(weight, num_classes, "weight")
    _check_same_device([logits, target, weight], ["logits", "target", "weight"])
    if probability_target:
        _check_probabilities(target, "target", validate)
    else:
        _check_class_indices(target, num_classes, "target", ignore_index, validate)

    # The formula above is _cross_entropy_composed (below).  Every call runs it in
    # cvloss_ref/_fused.py instead, from one softmax with a hand-written gradient:
    # index_cross_entropy for class indices, probability_cross_entropy for
    # probabilities.  What this function adds is the checks, the half-precision upcast,
    # any integer index dtype, and the mean over nothing, 0 with a zero gradient.
    x = _upcast(logits)
    w = None if weight is None else weight.to(x.dtype)
    if _fused.transforms_active():  # torch.func (vmap, grad, jvp): the composition
        target = target.to(x.dtype) if probability_target else target.long()
        loss = _cross_entropy_composed(x, target, w, ignore_index, epsilon, reduction)
        return loss.to(logits.dtype)
    if probability_target:
        # The mean divides by the number of samples, a shape: only an empty batch needs
        # our convention (reduced here from "none").
        fused = reduction if x.numel() else "none"
        soft = target.to(x.dtype)
        loss = _fused.probability_cross_entropy(x, soft, w, ignore_index, epsilon, fused)
        return _reduce(loss, "none" if x.numel() else reduction).to(logits.dtype)
    target = target if target.dtype == torch.long else target.long()
    return _fused.index_cross_entropy(x, target, w, ignore_index, epsilon, reduction).to(
        logits.dtype
    )


def _cross_entropy_composed(
    x: torch.Tensor,
    target: torch.Tensor,
    w: torch.Tensor | None,
    ignore_index: int,
    epsilon: float,
    reduction: str,
) -> torch.Tensor:
    """The formula of :func:`cross_entropy`'s docstring, term by term (the accurate
    negative log-softmax, gather, the smoothing sum, the weighted mean), with autograd's
    gradient: the reference that the fast path (``_fused.index_cross_entropy``,
    ``_fused.probability_cross_entropy``) is tested against.  ``x`` are checked
    float32/float64 logits, ``target`` ``long`` class indices or class probabilities of
    the shape of ``x``."""
    class_dim = _class_dim(x)
    num_classes = x.shape[class_dim]
    neg_log_p = _neg_log_softmax(x, class_dim)
    class_weight = torch.ones(num_classes, dtype=x.dtype, device=x.device) if w is None else w
    class_weight = class_weight.view(_class_shape(x, num_classes))
    if target.shape == x.shape:  # probabilities, smoothed towards the uniform distribution
        soft = (1 - epsilon) * target + epsilon / num_classes
        return _reduce((class_weight * soft * neg_log_p).sum(class_dim), reduction)
    kept = target != ignore_index
    # Ignored targets (e.g. -100) are replaced by class 0 before indexing, then masked.
    safe_target = torch.where(kept, target, torch.zeros_like(target))
    target_weight = class_weight.flatten()[safe_target] * kept
    nll = neg_log_p.gather(class_dim, safe_target.unsqueeze(class_dim)).squeeze(class_dim)
    loss = target_weight * nll
    if epsilon:
        uniform = (class_weight * neg_log_p).sum(class_dim)  # sum_c w_c (-log p_c)
        loss = (1 - epsilon) * loss + (epsilon / num_classes) * uniform * kept
    if reduction == "mean":
        return weighted_mean(loss, target_weight)
    return _reduce(loss, reduction)


def _neg_log_softmax(x: torch.Tensor, class_dim: int) -> torch.Tensor:
    r""":math:`-\log p_c = (x_k - x_c) + \log(1 + \sum_{c' \ne k} e^{x_{c'} - x_k})` with
    :math:`k` the largest logit: ``-log_softmax`` without its cancellation at the
    largest logit (both terms are non-negative, and ``log1p`` keeps the digits of a
    small sum).  The index :math:`k` is a constant; :math:`x_k` is differentiated.
    The first term is taken as exactly 0 at :math:`c = k` (``scatter``), so that no
    gradient flows through :math:`x_k - x_k`: autograd would add its :math:`+1` and
    :math:`-1` to the sum's :math:`-\sum_{c \ne k} p_c` at different places and round
    the confident case's small gradient away."""
    top_index = x.detach().argmax(class_dim, keepdim=True)
    top = x.gather(class_dim, top_index)
    gaps = (top - x).scatter(class_dim, top_index, 0.0)
    others = torch.exp(x - top).scatter(class_dim, top_index, 0.0)
    return gaps + torch.log1p(others.sum(class_dim, keepdim=True))


def smooth_labels(
    target: torch.Tensor,
    num_classes: int,
    epsilon: float = 0.1,
    spread: str = "all",
    *,
    dtype: torch.dtype = torch.float32,
    validate: bool = False,
) -> torch.Tensor:
    r"""Soft targets for label smoothing, from class indices.

    Two conventions are in use, for :math:`K` classes and a one-hot :math:`\mathbf{e}_y`:

    .. math::

        \texttt{spread="all"}:\quad
            \mathbf{t} = (1 - \varepsilon)\, \mathbf{e}_y + \frac{\varepsilon}{K}
        \qquad
        \texttt{spread="others"}:\quad
            t_c = \begin{cases} 1 - \varepsilon & c = y \\
                                \varepsilon / (K - 1) & c \ne y \end{cases}

    ``"all"`` spreads :math:`\varepsilon` uniformly over every class, the true one
    included (Szegedy et al. 2016, and PyTorch's ``label_smoothing``): the true class
    gets :math:`1 - \varepsilon + \varepsilon/K`, so that
    ``cross_entropy(x, smooth_labels(y, K, eps))`` equals
    ``F.cross_entropy(x, y, label_smoothing=eps)`` (without class weights, which
    normalise index and probability targets differently).  ``"others"`` gives the
    true class exactly :math:`1 - \varepsilon` and spreads :math:`\varepsilon` over
    the other :math:`K - 1` classes (the convention of the course's seed article:
    ``[0, 1, 0]`` becomes ``[0.05, 0.9, 0.05]`` for :math:`\varepsilon = 0.1`).  Both
    sum to 1.

    Args:
        target: integer class indices, ``(N,)``, ``(N, d1, ...)`` or ``()``.
        num_classes: :math:`K` (at least 2 for ``"others"``).
        epsilon: :math:`\varepsilon \in [0, 1]`.
        spread: ``"all"`` | ``"others"``.
        dtype: floating dtype of the result.
        validate: check that indices lie in ``[0, K)`` (synchronises the GPU).
            Without it, an index outside the range gives a row without a true class.

    Returns:
        Soft targets with the class dimension where ``cross_entropy`` expects it:
        ``(N, K)``, ``(N, K, d1, ...)`` or ``(K,)``.

    Reference: Szegedy et al., "Rethinking the Inception Architecture for Computer
    Vision", CVPR 2016, Sec. 7.

    Example:
        >>> smooth_labels(torch.tensor([1]), num_classes=4, epsilon=0.2)
        tensor([[0.0500, 0.8500, 0.0500, 0.0500]])
        >>> smooth_labels(torch.tensor([1]), num_classes=3, epsilon=0.1, spread="others")
        tensor([[0.0500, 0.9000, 0.0500]])
    """
    _check_integer(target, "target")
    _check_int(num_classes, "num_classes")
    if spread not in ("all", "others"):
        raise ValueError(f"spread must be 'all' or 'others', got {spread!r}")
    minimum_classes = 2 if spread == "others" else 1
    if num_classes < minimum_classes:
        raise ValueError(
            f"num_classes must be >= {minimum_classes} for spread={spread!r}, got {num_classes}"
        )
    eps = _check_number(epsilon, "epsilon", minimum=0.0, maximum=1.0)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    _check_class_indices(target, num_classes, "target", None, validate)

    if spread == "all":
        on_value, off_value = 1.0 - eps + eps / num_classes, eps / num_classes
    else:
        on_value, off_value = 1.0 - eps, eps / (num_classes - 1)
    classes = torch.arange(num_classes, device=target.device)
    one_hot = (target.unsqueeze(-1) == classes).to(dtype)
    soft = one_hot * (on_value - off_value) + off_value
    if target.dim() >= 2:  # (N, d1, ..., K) -> (N, K, d1, ...), as cross_entropy expects
        soft = soft.movedim(-1, 1)
    return soft


# ----------------------------------------------------------------- binary (sigmoid)


class _ClampedBinaryCrossEntropy(torch.autograd.Function):
    r"""Elementwise :math:`-[y \max(\log p, -100) + (1-y) \max(\log(1-p), -100)]`.

    A plain autograd of the clamped logs gives a zero gradient where the clamp is
    active (at :math:`p = 0` and :math:`p = 1`).  PyTorch's own backward instead
    uses the derivative of the unclamped loss with a guarded denominator,
    :math:`(p - y) / \max(p(1-p), 10^{-12})`, which is what this function
    reproduces: exactly the gradient of ``F.binary_cross_entropy`` everywhere.
    The backward is made of differentiable torch ops (double backward works) that
    run on any device, on ``meta`` tensors and under ``torch.compile``.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = torch.log(probs).clamp_min(_BCE_LOG_CLAMP)
        log_1mp = log1p(-probs).clamp_min(_BCE_LOG_CLAMP)
        # Same arithmetic as ATen's CPU kernel: (y - 1) log(1 - p) - y log p.
        return (target - 1) * log_1mp - target * log_p

    @staticmethod
    def setup_context(
        ctx: Any, inputs: tuple[torch.Tensor, torch.Tensor], output: torch.Tensor
    ) -> None:
        probs, target = inputs
        ctx.save_for_backward(probs, target)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        probs, target = ctx.saved_tensors
        grad_probs = grad_target = None
        if ctx.needs_input_grad[0]:
            denominator = torch.clamp_min(probs * (1 - probs), _BCE_GRAD_EPS)
            grad_probs = grad * (probs - target) / denominator
        if ctx.needs_input_grad[1]:
            # The derivative of the clamped forward: finite at p = 0 and 1 (PyTorch's
            # target gradient, -logit(p), is infinite there).
            log_p = torch.log(probs).clamp_min(_BCE_LOG_CLAMP)
            log_1mp = log1p(-probs).clamp_min(_BCE_LOG_CLAMP)
            grad_target = grad * (log_1mp - log_p)
        return grad_probs, grad_target


def binary_cross_entropy(
    probs: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
    *,
    validate: bool = False,
) -> torch.Tensor:
    r"""Binary cross entropy between probabilities and (soft) binary targets.

    .. math::

        \ell = -w \bigl[\, y \max(\log p, -100) + (1 - y) \max(\log(1 - p), -100) \bigr]

    The logs are clamped at :math:`-100` exactly as ``F.binary_cross_entropy`` does,
    so that :math:`p = 0` or :math:`p = 1` gives a finite loss (at most 100) and
    :math:`0 \cdot \log 0` is 0.  The gradient is PyTorch's too,

    .. math::

        \frac{\partial \ell}{\partial p} = w\, \frac{p - y}{\max\bigl(p (1 - p), 10^{-12}\bigr)},

    also at :math:`p \in \{0, 1\}` (:math:`\pm 10^{12}` for a wrong certain
    prediction, 0 for a right one), where a plain autograd of the clamped logs would
    give 0.  Prefer :func:`binary_cross_entropy_with_logits` in training: it never
    needs the clamp.

    Args:
        probs: probabilities in ``[0, 1]``, any shape ``(*)``.
        target: targets in ``[0, 1]`` (hard or soft), shape ``(*)``.
        weight: optional rescaling weight, broadcastable to ``(*)``.
        reduction: ``"none"`` (shape ``(*)``) | ``"mean"`` | ``"sum"``.
        validate: also check that ``probs`` and ``target`` lie in ``[0, 1]``
            (synchronises the GPU; PyTorch checks ``probs`` on the CPU always).

    Returns:
        The loss in the dtype of ``probs``: shape ``(*)`` for ``"none"``, else a scalar
        (0 for an empty ``"mean"``, where PyTorch gives NaN).

    Reference: Shannon 1948 (cross entropy of Bernoulli distributions).  Peer:
    ``torch.nn.functional.binary_cross_entropy``.

    Example:
        >>> probs = torch.tensor([0.9, 0.2, 0.0])
        >>> target = torch.tensor([1.0, 0.0, 1.0])
        >>> binary_cross_entropy(probs, target, reduction="none")
        tensor([  0.1054,   0.2231, 100.0000])
    """
    _check_floating(probs, "probs")
    _check_floating(target, "target")
    _check_reduction(reduction)
    _check_same_shape(probs, target, "probs", "target")
    if weight is not None:
        _check_broadcastable(weight, probs.shape, "weight", "probs")
    _check_same_device([probs, target, weight], ["probs", "target", "weight"])
    _check_probabilities(probs, "probs", validate)
    _check_probabilities(target, "target", validate)

    p = _upcast(probs)
    loss = _ClampedBinaryCrossEntropy.apply(p, target.to(p.dtype))
    if weight is not None:
        loss = loss * weight.to(p.dtype)
    return _reduce(loss, reduction).to(probs.dtype)


def binary_cross_entropy_with_logits(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    pos_weight: torch.Tensor | None = None,
    reduction: str = "mean",
    *,
    validate: bool = False,
) -> torch.Tensor:
    r"""Binary cross entropy on logits: sigmoid and BCE in one stable step.

    With :math:`\log \sigma(x) = -\operatorname{softplus}(-x)` and
    :math:`\log(1 - \sigma(x)) = \log \sigma(-x)`,

    .. math::

        \ell = -w \bigl[\, p_w\, y \log \sigma(x) + (1 - y) \log \sigma(-x) \bigr]
             = w \bigl[\, p_w\, y \operatorname{softplus}(-x)
                        + (1 - y) \operatorname{softplus}(x) \bigr],

    which for :math:`p_w = 1` is the familiar
    :math:`\max(x, 0) - x y + \log(1 + e^{-|x|})`.  It is written with
    ``logsigmoid`` rather than that formula because autograd differentiates
    ``max`` and ``abs`` at :math:`x = 0` with the subgradients 0 (``clamp_min``,
    ``abs``), giving :math:`-y` instead of the true :math:`\sigma(0) - y = 1/2 - y`.
    The gradient is :math:`w [(1 - y)\, \sigma(x) - p_w y\, \sigma(-x)]`, finite for
    any finite logit (:math:`\pm 10^{4}`, even :math:`\pm 10^{30}` in float32).

    Both keep their relative accuracy at confident logits, where they are tiny: at
    :math:`x = 15, y = 1` the gradient is :math:`-\sigma(-15) = -3.06 \cdot 10^{-7}`
    in float32, where ``F.binary_cross_entropy_with_logits`` forms
    :math:`\sigma(15) - 1 = -3.58 \cdot 10^{-7}`, and at :math:`x = -15, y = 0` the loss
    is :math:`3.06 \cdot 10^{-7}`, where PyTorch's :math:`(1 - y) x - \log\sigma(x)`
    cancels to 0.  Elsewhere the two agree to rounding.  Without ``weight`` and
    ``pos_weight`` the loss is the focal loss with ``gamma=0`` and no ``alpha``, which
    runs on a kernel of its own (``cvloss_ref/_fused.py``: one sigmoid,
    :math:`s = \sigma(-|x|)`, and terms of one sign), about as fast as PyTorch's.

    Args:
        logits: any shape ``(*)``, e.g. ``(N, C)`` for multi-label classification.
        target: targets in ``[0, 1]`` (hard or soft), shape ``(*)``.
        weight: optional rescaling weight, broadcastable to ``(*)``.
        pos_weight: optional weight of the positive term, broadcastable to ``(*)``;
            a ``(C,)`` vector applies per class along the last dimension of ``(N, C)``
            logits (:math:`p_w = \#\text{neg} / \#\text{pos}` balances the classes).
        reduction: ``"none"`` (shape ``(*)``) | ``"mean"`` | ``"sum"``.
        validate: also check that ``target`` lies in ``[0, 1]`` (synchronises the GPU).

    Returns:
        The loss in the dtype of ``logits``: shape ``(*)`` for ``"none"``, else a
        scalar (0 for an empty ``"mean"``, where PyTorch gives NaN).

    Reference: Shannon 1948.  Peer: ``torch.nn.functional.binary_cross_entropy_with_logits``.

    Example:
        >>> logits = torch.tensor([[0.0, 2.0], [-1.0, 1e4]])
        >>> target = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> loss = binary_cross_entropy_with_logits(logits, target)
        >>> torch.allclose(loss, F.binary_cross_entropy_with_logits(logits, target))
        True
    """
    if (
        weight is None
        and pos_weight is None
        and reduction in _REDUCTION_CODE
        and _plain_pair(logits, target)
        and not _wants_values(validate)
    ):
        # The common call, checked in about a microsecond: the focal loss with gamma = 0
        # and no alpha is exactly this loss; its dispatch point has a kernel for it,
        # accurate at confident logits (ATen's kernel, (1 - y) x - logsigmoid(x), cancels
        # there).
        return _sigmoid_focal_dispatch(logits, target, -1.0, 0.0, reduction)
    _check_floating(logits, "logits")
    _check_floating(target, "target")
    _check_reduction(reduction)
    _check_same_shape(logits, target, "logits", "target")
    if weight is not None:
        _check_broadcastable(weight, logits.shape, "weight", "logits")
    if pos_weight is not None:
        _check_broadcastable(pos_weight, logits.shape, "pos_weight", "logits")
    _check_same_device(
        [logits, target, weight, pos_weight], ["logits", "target", "weight", "pos_weight"]
    )
    _check_probabilities(target, "target", validate)

    x = _upcast(logits)
    y = target.to(x.dtype)
    if weight is None and pos_weight is None:
        return _sigmoid_focal_dispatch(x, y, -1.0, 0.0, reduction).to(logits.dtype)
    # The formula above, term by term: both logsigmoids are accurate (each is
    # min(z, 0) - log1p(exp(-|z|))), and the two terms are non-negative, so the loss keeps
    # its relative accuracy at confident logits; autograd's gradient,
    # w [(1 - y) sigmoid(x) - p_w y sigmoid(-x)], is a difference only for soft targets.
    positive_term = y * F.logsigmoid(x)
    if pos_weight is not None:
        positive_term = pos_weight.to(x.dtype) * positive_term
    loss = -(positive_term + (1 - y) * F.logsigmoid(-x))
    if weight is not None:
        loss = weight.to(x.dtype) * loss
    return _reduce(loss, reduction).to(logits.dtype)


def sigmoid_focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "mean",
    *,
    validate: bool = False,
) -> torch.Tensor:
    r"""Sigmoid focal loss: binary cross entropy down-weighted on easy examples.

    With :math:`p = \sigma(x)`, :math:`p_t = p\, y + (1 - p)(1 - y)` and
    :math:`\alpha_t = \alpha y + (1 - \alpha)(1 - y)`,

    .. math::

        \mathrm{FL} = -\alpha_t\, (1 - p_t)^{\gamma} \log p_t ,

    where for soft targets :math:`y \in [0, 1]` the factor :math:`-\log p_t` is the
    binary cross entropy :math:`-[y \log p + (1-y) \log(1-p)]`, as in torchvision.
    ``alpha < 0`` disables the :math:`\alpha_t` weighting; ``gamma = 0`` gives
    (:math:`\alpha`-weighted) binary cross entropy.

    The modulating factor is computed in log space,

    .. math::

        (1 - p_t)^{\gamma} = \exp\bigl(\gamma \log(1 - p_t)\bigr),\qquad
        \log(1 - p_t) = \operatorname{logaddexp}\bigl(\log y + \log\sigma(-x),\;
                                                    \log(1 - y) + \log\sigma(x)\bigr),

    (for a hard target simply :math:`\log\sigma(\mp x)`), because the direct
    ``(1 - p_t) ** gamma`` of torchvision and kornia has an infinite derivative
    at :math:`1 - p_t = 0`: for :math:`\gamma < 1` and a saturated logit (say
    :math:`x = 10^4`, where :math:`p` rounds to exactly 1) the chain rule multiplies
    :math:`\infty` by :math:`\sigma'(x) = 0` and the gradient is NaN (kornia issue
    918).  Here the loss and its gradient are finite for every :math:`\gamma \ge 0`
    and logits up to :math:`\pm 10^4` in float32.  Where torchvision is finite, the
    two agree.

    Every path keeps the relative accuracy of small losses: the fast path (taken
    unless the target needs a gradient) forms :math:`1 - p_t` as
    :math:`y\,\sigma(-x) + (1 - y)\,\sigma(x)` and the cross entropy from
    :math:`\log(1 + e^{-|x|})`, never from :math:`1 - p`, so that a confident right
    prediction, :math:`x = 15, y = 1` with ``alpha=-1, gamma=0``, gives
    :math:`3.06 \cdot 10^{-7}` in float32 (``-log(sigmoid(15))`` rounds to
    :math:`3.58 \cdot 10^{-7}`).

    Args:
        logits: any shape ``(*)``, e.g. ``(N, C)`` per-class scores of anchors.
        target: targets in ``[0, 1]`` (hard 0/1 or soft), shape ``(*)``.
        alpha: weight of the positives in ``[0, 1]`` (negatives get ``1 - alpha``);
            a negative value disables the weighting.
        gamma: focusing parameter :math:`\gamma \ge 0`.
        reduction: ``"none"`` (shape ``(*)``) | ``"mean"`` | ``"sum"``.  The default
            is ``"mean"`` as everywhere in this package; torchvision's
            ``sigmoid_focal_loss`` defaults to ``"none"``.  RetinaNet divides the sum
            by the number of positive anchors: pass ``"sum"`` and divide.
        validate: also check that ``target`` lies in ``[0, 1]`` (synchronises the GPU).

    Returns:
        The loss in the dtype of ``logits``: shape ``(*)`` for ``"none"``, else a scalar.

    Reference: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017
    (RetinaNet).  Peer: ``torchvision.ops.sigmoid_focal_loss``.

    Example:
        >>> logits = torch.tensor([3.0, -1.0, 1e4])
        >>> target = torch.tensor([1.0, 0.0, 1.0])
        >>> loss = sigmoid_focal_loss(logits, target, gamma=0.5, reduction="none")
        >>> loss.shape, bool(torch.isfinite(loss).all())
        (torch.Size([3]), True)
    """
    _check_floating(logits, "logits")
    _check_floating(target, "target")
    _check_reduction(reduction)
    _check_same_shape(logits, target, "logits", "target")
    _check_same_device([logits, target], ["logits", "target"])
    alpha = _check_number(alpha, "alpha", maximum=1.0)
    gamma = _check_number(gamma, "gamma", minimum=0.0)
    _check_probabilities(target, "target", validate)

    x = _upcast(logits)
    y = target.to(x.dtype)
    return _sigmoid_focal_dispatch(x, y, alpha, gamma, reduction).to(logits.dtype)


def _sigmoid_focal_dispatch(
    x: torch.Tensor, y: torch.Tensor, alpha: float, gamma: float, reduction: str
) -> torch.Tensor:
    """The path that :func:`sigmoid_focal_loss` (and, with ``alpha=-1, gamma=0``,
    :func:`binary_cross_entropy_with_logits`) takes for checked float32/float64 inputs."""
    if (torch.is_grad_enabled() and y.requires_grad) or _fused.transforms_active():
        # A gradient in the target too (rare), or torch.func transforms (vmap, grad,
        # jvp) or forward-mode AD, which the fused autograd Function does not support:
        # autograd on the readable composition.
        loss = _sigmoid_focal_elementwise(x, y, alpha, gamma)
        return _reduce(loss, reduction)
    # Every other call (the target needs no gradient): the same formula in a few fused
    # elementwise kernels with a hand-written gradient, in cvloss_ref/_fused.py.
    return _fused.sigmoid_focal_loss(x, y, alpha, gamma, reduction)


def _sigmoid_focal_elementwise(
    x: torch.Tensor, y: torch.Tensor, alpha: float, gamma: float
) -> torch.Tensor:
    """The readable composition of the focal loss (log space, autograd's gradient):
    the reference that the fast path of :func:`sigmoid_focal_loss` is tested against."""
    log_p = F.logsigmoid(x)  # log p
    log_1mp = F.logsigmoid(-x)  # log(1 - p)
    loss = -(y * log_p + (1 - y) * log_1mp)
    if gamma != 0:
        # 1 - p_t = y (1 - p) + (1 - y) p, summed in log space; log 0 = -inf for hard
        # targets drops the empty term (logaddexp's gradient there is exactly 0).
        log_y = safe_log(y, y > 0)
        log_1my = safe_log(1 - y, y < 1)
        log_1m_pt = torch.logaddexp(log_y + log_1mp, log_1my + log_p)
        loss = torch.exp(gamma * log_1m_pt) * loss
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss


# ------------------------------------------------------------------ softmax focal


def softmax_focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    alpha: torch.Tensor | None = None,
    gamma: float = 2.0,
    ignore_index: int = -100,
    reduction: str = "mean",
    *,
    validate: bool = False,
) -> torch.Tensor:
    r"""Multi-class focal loss on softmax probabilities.

    With :math:`p_{i,c}` the softmax of the logits over the class dimension,

    .. math::

        \ell_i = -\alpha_{y_i}\, (1 - p_{i,y_i})^{\gamma} \log p_{i,y_i},
        \qquad
        1 - p_{i,y} = \sum_{c \ne y} p_{i,c},

    the second identity giving the modulating factor without ever forming
    :math:`1 - p_y` by subtraction (it rounds to 0 for a confident logit, where
    ``(1 - p) ** gamma`` has an infinite derivative for :math:`\gamma < 1`), and
    :math:`-\log p_y` is taken as :math:`\log(1 + (1 - p_y) / p_y)` when
    :math:`p_y \ge 1/2` and from the log-sum-exp otherwise, so both factors keep
    their relative accuracy from :math:`p_y \to 0` to :math:`p_y \to 1`.  The value
    and its hand-written gradient come from one softmax (``_fused._SoftmaxFocalLoss``); the
    readable composition with two masked log-sum-exps is kept as
    ``_softmax_focal_composed`` and the two are tested to agree.  A single class
    (:math:`C = 1`) or a logit gap beyond the dtype's range gives a finite value and a
    finite gradient.
    With ``gamma=0`` and ``alpha=None`` this is :func:`cross_entropy`.

    ``"mean"`` averages over the samples (pixels) whose target is not
    ``ignore_index``; it is *not* normalised by the :math:`\alpha_{y_i}` (unlike
    ``cross_entropy``'s class weights), and it is 0 with a zero gradient when every
    target is ignored.  kornia's ``focal_loss`` takes a scalar ``alpha`` that weights
    class 0 by :math:`1 - \alpha` and every other class by :math:`\alpha`: pass
    ``torch.tensor([1 - a, a, ..., a])`` for the same weighting.  Its ``"mean"``
    divides by :math:`C` times the number of pixels, ignored ones included; the
    ``"sum"`` of both agree.

    Args:
        logits: ``(N, C)``, ``(N, C, d1, ...)`` or unbatched ``(C,)``.
        target: class indices (any integer dtype), shape ``(N,)``, ``(N, d1, ...)``
            or ``()``.
        alpha: optional per-class weights ``(C,)``.
        gamma: focusing parameter :math:`\gamma \ge 0`.
        ignore_index: targets equal to it contribute 0 and are not counted.
        reduction: ``"none"`` (shape of ``target``) | ``"mean"`` | ``"sum"``.
        validate: also check the class indices (synchronises the GPU).

    Returns:
        The loss in the dtype of ``logits``: shape of ``target`` for ``"none"``, else
        a scalar.

    Reference: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.
    Peer: ``kornia.losses.focal_loss``.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1e4, 0.0]])
        >>> target = torch.tensor([0, 1])
        >>> softmax_focal_loss(logits, target, gamma=0.5, reduction="none")
        tensor([0.0671, 0.0000])
    """
    _check_floating(logits, "logits")
    _check_reduction(reduction)
    _check_logits_with_classes(logits, "logits")
    _check_index_target(logits, target, "target")
    _check_int(ignore_index, "ignore_index")
    gamma = _check_number(gamma, "gamma", minimum=0.0)
    class_dim = _class_dim(logits)
    num_classes = logits.shape[class_dim]
    if alpha is not None:
        _check_class_weight(alpha, num_classes, "alpha")
    _check_same_device([logits, target, alpha], ["logits", "target", "alpha"])
    _check_class_indices(target, num_classes, "target", ignore_index, validate)

    x = _upcast(logits)
    target = target if target.dtype == torch.long else target.long()
    kept = target != ignore_index
    # Ignored targets (e.g. -100) are replaced by class 0 before indexing, then masked.
    safe_target = torch.where(kept, target, torch.zeros_like(target)).unsqueeze(class_dim)
    # The composition above in one softmax with a hand-written gradient, on every call
    # except under torch.func transforms (vmap, grad, jvp) or forward-mode AD, which its
    # autograd Function does not support: there the composition itself.
    if _fused.transforms_active():
        loss = _softmax_focal_composed(x, safe_target, gamma, class_dim)
    else:
        loss = _fused.softmax_focal(x, safe_target, gamma, class_dim)
    loss = loss.squeeze(class_dim)
    if alpha is not None:
        loss = alpha.to(x.dtype)[safe_target.squeeze(class_dim)] * loss
    loss = torch.where(kept, loss, torch.zeros_like(loss))
    if reduction == "mean":
        # The mean over kept targets; 0 (not 0/0) when every target is ignored.
        return weighted_mean(loss, kept.to(x.dtype)).to(logits.dtype)
    return _reduce(loss, reduction).to(logits.dtype)


def _softmax_focal_composed(
    x: torch.Tensor, safe_target: torch.Tensor, gamma: float, class_dim: int
) -> torch.Tensor:
    """The readable composition of the softmax focal loss (two log-sum-exps, autograd's
    gradient): the reference that ``_fused._SoftmaxFocalLoss`` is tested against.
    ``safe_target`` holds class indices with the class dimension kept (size 1)."""
    log_normaliser = torch.logsumexp(x, dim=class_dim, keepdim=True)
    # -log p_y = logsumexp(x) - x_y
    loss = log_normaliser - x.gather(class_dim, safe_target)
    if gamma != 0:
        classes = torch.arange(x.shape[class_dim], device=x.device)
        classes = classes.view(_class_shape(x, -1))
        others = x.masked_fill(classes == safe_target, torch.finfo(x.dtype).min)
        log_1m_p = torch.logsumexp(others, dim=class_dim, keepdim=True) - log_normaliser
        loss = torch.exp(gamma * log_1m_p) * loss
    return loss


# ------------------------------------------------------------------------- hinge


def hinge_loss(
    scores: torch.Tensor,
    target: torch.Tensor,
    margin: float = 1.0,
    reduction: str = "mean",
    *,
    validate: bool = False,
) -> torch.Tensor:
    r"""Binary hinge loss of the soft-margin SVM.

    .. math::

        \ell = \max(0,\; m - y\, s), \qquad y \in \{-1, +1\}

    Zero once a score is on the right side with a margin :math:`m`; linear beyond.
    At the kink :math:`y s = m` the gradient is 0 (the ``relu`` convention; any
    value between 0 and :math:`-y` is a valid subgradient).  Labels must be
    :math:`\pm 1`, not 0/1: with 0 the loss is the constant :math:`m`.

    Args:
        scores: real-valued classifier outputs, any shape ``(*)``.
        target: labels :math:`\pm 1` (integer or floating), shape ``(*)``; values are
            checked only with ``validate=True``.
        margin: :math:`m \ge 0`.
        reduction: ``"none"`` (shape ``(*)``) | ``"mean"`` | ``"sum"``.
        validate: also check that ``target`` holds only -1 and 1 (synchronises the GPU).

    Returns:
        The loss in the dtype of ``scores``: shape ``(*)`` for ``"none"``, else a scalar.

    Reference: Cortes & Vapnik, "Support-Vector Networks", Machine Learning 1995.

    Example:
        >>> scores = torch.tensor([2.0, 0.5, -0.5])
        >>> target = torch.tensor([1, 1, 1])
        >>> hinge_loss(scores, target, reduction="none")
        tensor([0.0000, 0.5000, 1.5000])
    """
    _check_floating(scores, "scores")
    _check_tensor(target, "target")
    _check_reduction(reduction)
    _check_same_shape(scores, target, "scores", "target")
    _check_same_device([scores, target], ["scores", "target"])
    margin = _check_number(margin, "margin", minimum=0.0)
    _check_values_in(target, (-1, 1), "target", validate)

    s = _upcast(scores)
    loss = torch.relu(margin - target.to(s.dtype) * s)
    return _reduce(loss, reduction).to(scores.dtype)


def multiclass_hinge_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    margin: float = 1.0,
    p: int = 1,
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
    *,
    validate: bool = False,
) -> torch.Tensor:
    r"""Multi-class hinge loss (Weston–Watkins form), exactly ``F.multi_margin_loss``.

    .. math::

        \ell_i = \frac{1}{C} \sum_{j \ne y_i} w_{y_i}\,
                 \max\bigl(0,\; m - x_{i,y_i} + x_{i,j}\bigr)^{p}

    Every wrong class whose score comes within :math:`m` of the true class's score
    is penalised.  As in PyTorch the sum is divided by :math:`C` (all classes, the
    true one included), and the class weight :math:`w_{y_i}` multiplies each term
    *after* the power.  The Crammer–Singer variant takes the maximum over
    :math:`j \ne y_i` instead of the sum.  The gradient at a kink
    (:math:`m - x_{y} + x_j = 0`) is 0, as in PyTorch.

    Args:
        logits: ``(N, C)`` scores or unbatched ``(C,)``.
        target: class indices (any integer dtype), ``(N,)`` or ``()``.
        margin: :math:`m \ge 0`.
        p: 1 (hinge) or 2 (squared hinge).
        weight: optional class weights ``(C,)``.
        reduction: ``"none"`` (shape ``(N,)`` or ``()``) | ``"mean"`` | ``"sum"``.
        validate: also check the class indices (synchronises the GPU).

    Returns:
        The loss in the dtype of ``logits``: shape of ``target`` for ``"none"``, else a
        scalar (0 for an empty batch, like PyTorch).

    Reference: Weston & Watkins, "Support Vector Machines for Multi-Class Pattern
    Recognition", ESANN 1999; Crammer & Singer, "On the Algorithmic Implementation
    of Multiclass Kernel-based Vector Machines", JMLR 2001.  Peer:
    ``torch.nn.functional.multi_margin_loss``.

    Example:
        >>> logits = torch.tensor([[3.0, 2.5, 0.0], [0.0, 1.0, 2.0]])
        >>> target = torch.tensor([0, 0])
        >>> multiclass_hinge_loss(logits, target, reduction="none")
        tensor([0.1667, 1.6667])
    """
    _check_floating(logits, "logits")
    _check_reduction(reduction)
    if logits.dim() not in (1, 2):
        raise ValueError(f"logits must have shape (N, C) or (C,), got {tuple(logits.shape)}")
    _check_index_target(logits, target, "target")
    margin = _check_number(margin, "margin", minimum=0.0)
    if isinstance(p, bool) or p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p!r}")
    num_classes = logits.shape[-1]
    if weight is not None:
        _check_class_weight(weight, num_classes, "weight")
    _check_same_device([logits, target, weight], ["logits", "target", "weight"])
    _check_class_indices(target, num_classes, "target", None, validate)

    x = _upcast(logits)
    target = target.long().unsqueeze(-1)
    target_score = x.gather(-1, target)
    violation = torch.relu(margin - target_score + x)
    if p == 2:
        violation = violation * violation
    if weight is not None:
        violation = weight.to(x.dtype)[target] * violation
    classes = torch.arange(num_classes, device=x.device)
    violation = torch.where(classes == target, torch.zeros_like(violation), violation)
    loss = violation.sum(-1) / num_classes
    return _reduce(loss, reduction).to(logits.dtype)


def hinge_embedding_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    margin: float = 1.0,
    reduction: str = "mean",
    *,
    validate: bool = False,
) -> torch.Tensor:
    r"""Hinge embedding loss, exactly ``F.hinge_embedding_loss``.

    .. math::

        \ell = \begin{cases} x & y = 1 \\ \max(0,\; m - x) & y = -1 \end{cases}

    ``input`` is meant to be a *distance* (e.g. the L1 distance between two
    embeddings) and the label says whether the pair is similar (:math:`y = 1`: pull
    the distance to 0) or dissimilar (:math:`y = -1`: push it beyond :math:`m`).  It
    is not the SVM hinge loss of scores (that is :func:`hinge_loss`).

    Labels other than :math:`\pm 1` are not rejected by PyTorch, and it then *adds
    both terms*: its formula is
    ``where(y != 1, max(0, m - x), 0) + where(y != -1, x, 0)``.  That is why the
    common snippet ``nn.HingeEmbeddingLoss()(scores, labels)`` with 0/1 labels (the
    course's seed article does it) computes nonsense: for a label 1 the loss is the
    raw score :math:`x` (minimised by making the positive's score *negative*), and
    for a label 0 it is :math:`x + \max(0, m - x) = \max(x, m)`.  This function
    follows PyTorch exactly, and ``validate=True`` rejects labels outside
    :math:`\{-1, 1\}`.  The gradient at the kink :math:`x = m` (label -1) is 0, as in
    PyTorch.

    Args:
        input: distances, any shape ``(*)``.
        target: labels :math:`\pm 1` (integer or floating), shape ``(*)``.
        margin: :math:`m \ge 0`.
        reduction: ``"none"`` (shape ``(*)``) | ``"mean"`` | ``"sum"``.
        validate: also check that ``target`` holds only -1 and 1 (synchronises the GPU).

    Returns:
        The loss in the dtype of ``input``: shape ``(*)`` for ``"none"``, else a scalar
        (0 for an empty ``"mean"``, where PyTorch gives NaN).

    Reference: Hadsell, Chopra & LeCun, "Dimensionality Reduction by Learning an
    Invariant Mapping", CVPR 2006 (the pairwise form); Cortes & Vapnik 1995 (the
    hinge).  Peer: ``torch.nn.functional.hinge_embedding_loss``.

    Example:
        >>> distance = torch.tensor([0.3, 0.3, 2.0])
        >>> same = torch.tensor([1, -1, -1])
        >>> hinge_embedding_loss(distance, same, reduction="none")
        tensor([0.3000, 0.7000, 0.0000])
    """
    _check_floating(input, "input")
    _check_tensor(target, "target")
    _check_reduction(reduction)
    _check_same_shape(input, target, "input", "target")
    _check_same_device([input, target], ["input", "target"])
    margin = _check_number(margin, "margin", minimum=0.0)
    _check_values_in(target, (-1, 1), "target", validate)

    x = _upcast(input)
    zeros = torch.zeros_like(x)
    margin_term = torch.where(target != 1, torch.relu(margin - x), zeros)
    distance_term = torch.where(target != -1, x, zeros)
    return _reduce(margin_term + distance_term, reduction).to(input.dtype)

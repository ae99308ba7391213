r"""Regression losses on the residual :math:`d = \text{input} - \text{target}`.

All of them are elementwise: ``reduction="none"`` returns a tensor of the shape of
``input``, ``"mean"`` (the default) and ``"sum"`` reduce over every element.

``input`` and ``target`` must have *identical* shapes.  ``torch.nn.functional``
broadcasts them and only warns, which hides the classic silent bug: a model output
of shape ``(N, 1)`` against targets of shape ``(N,)`` broadcasts to ``(N, N)`` and
compares every prediction with every target; the loss still goes down, but the
model learns to predict the mean.  Here that is a ``ValueError``.

float16/bfloat16 inputs are computed in float32 and the result is returned in the
input dtype (the promoted dtype of ``input`` and ``target`` if they differ).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from . import _fused
from ._numerics import safe_sqrt
from ._numerics import upcast as _upcast
from ._reduction import _REDUCTION_CODE, _check_reduction, _reduce
from ._validation import (
    _check_floating,
    _check_number,
    _check_same_device,
    _check_same_shape,
    _plain_pair,
)

__all__ = [
    "huber_loss",
    "l1_loss",
    "mean_error",
    "mse_loss",
    "rmse_loss",
    "smooth_l1_loss",
]


def _check_pair(input: torch.Tensor, target: torch.Tensor) -> None:
    """Floating tensors of one shape on one device."""
    _check_floating(input, "input")
    _check_floating(target, "target")
    _check_same_shape(input, target, "input", "target")
    _check_same_device([input, target], ["input", "target"])


def _residual(input: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.dtype]:
    """Check the pair and return ``(input - target, out_dtype)``, the residual in
    float32 for half-precision inputs."""
    _check_pair(input, target)
    out_dtype = torch.promote_types(input.dtype, target.dtype)
    return _upcast(input) - _upcast(target), out_dtype


def _piecewise(
    kernel: Callable[..., torch.Tensor],
    input: torch.Tensor,
    target: torch.Tensor,
    reduction: str,
    param: float,
) -> torch.Tensor:
    """Evaluate a piecewise loss with ATen's fused kernel (``_fused.smooth_l1_kernel`` or
    ``_fused.huber_kernel``, called as ``kernel(x, y, reduction_code, param)``).

    ATen computes exactly the formulas of the docstrings (the quadratic branch for
    ``|d| < beta``) in one pass forward and one backward; written as a ``torch.where``
    of two branches, the same loss takes about ten times longer on a CPU.  What is ours:
    the checks, the half-precision upcast, the promotion of mixed dtypes, and the mean
    of an empty batch (0 with a zero gradient, where ATen gives NaN).  The common call
    (float32 or float64, one dtype, not empty) goes straight to the kernel: the checks
    cost about 2 microseconds, less than ``torch.nn.functional``'s own wrapper, which
    is why the kernel is called directly rather than through ``F.smooth_l1_loss``.
    """
    code = _REDUCTION_CODE.get(reduction) if isinstance(reduction, str) else None
    if code is not None and _plain_pair(input, target):
        return kernel(input, target, code, param)
    _check_pair(input, target)
    _check_reduction(reduction)
    out_dtype = torch.promote_types(input.dtype, target.dtype)
    compute = torch.promote_types(_upcast(input).dtype, _upcast(target).dtype)
    x, y = input.to(compute), target.to(compute)
    if x.numel() == 0:  # a shape, not a value: no sync
        return _reduce(kernel(x, y, 0, param), reduction).to(out_dtype)
    return kernel(x, y, code, param).to(out_dtype)


def mean_error(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    r"""Mean (signed) error: the bias of the predictions, a diagnostic and not a loss.

    .. math:: \mathrm{ME} = \frac{1}{n} \sum_{i=1}^{n} (x_i - y_i)

    Positive means the predictions are too large on average.  Do not minimise it:
    it is unbounded below (predicting :math:`-\infty` drives it to :math:`-\infty`),
    and positive and negative errors cancel, so a model that is far off everywhere
    can have a mean error of 0.  Its gradient is the constant :math:`1/n`, whatever
    the predictions.  Report it next to a loss (MSE, MAE) to detect a systematic
    offset.

    Args:
        input: predictions, any shape ``(*)``, floating point.
        target: targets, the same shape ``(*)`` and device.
        reduction: ``"none"`` (the signed errors, shape ``(*)``) | ``"mean"`` | ``"sum"``.

    Returns:
        The error, shape ``(*)`` for ``"none"``, else a scalar.

    Reference: R. J. Hyndman and A. B. Koehler, "Another look at measures of
    forecast accuracy", International Journal of Forecasting 22(4), 2006.

    Example:
        >>> input = torch.tensor([1.0, 3.0])
        >>> target = torch.tensor([2.0, 2.0])
        >>> mean_error(input, target)  # -1 and +1 cancel
        tensor(0.)
    """
    diff, out_dtype = _residual(input, target)
    return _reduce(diff, reduction).to(out_dtype)


def mse_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    r"""Mean squared error (squared L2 loss); equals ``torch.nn.functional.mse_loss``.

    .. math:: \mathrm{MSE} = \frac{1}{n} \sum_{i=1}^{n} (x_i - y_i)^2

    The maximum-likelihood loss under Gaussian noise; its gradient :math:`2 d_i / n`
    grows with the error, so outliers dominate it.

    Args:
        input: predictions, any shape ``(*)``, floating point.
        target: targets, the same shape ``(*)`` and device (no broadcasting).
        reduction: ``"none"`` (squared errors, shape ``(*)``) | ``"mean"`` | ``"sum"``.

    Returns:
        The loss, shape ``(*)`` for ``"none"``, else a scalar.

    Reference: T. Hastie, R. Tibshirani and J. Friedman, "The Elements of
    Statistical Learning", 2nd ed., Springer 2009, section 2.4.

    Example:
        >>> mse_loss(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0]))
        tensor(1.)
    """
    diff, out_dtype = _residual(input, target)
    return _reduce(diff * diff, reduction).to(out_dtype)


def l1_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    r"""Mean absolute error (L1 loss, MAE); equals ``torch.nn.functional.l1_loss``.

    .. math:: \mathrm{MAE} = \frac{1}{n} \sum_{i=1}^{n} |x_i - y_i|

    The maximum-likelihood loss under Laplace noise; robust to outliers since its
    gradient :math:`\operatorname{sign}(d_i) / n` does not grow with the error.  At
    :math:`d_i = 0` the gradient is 0 (a subgradient, as in PyTorch).

    Args:
        input: predictions, any shape ``(*)``, floating point.
        target: targets, the same shape ``(*)`` and device (no broadcasting).
        reduction: ``"none"`` (absolute errors, shape ``(*)``) | ``"mean"`` | ``"sum"``.

    Returns:
        The loss, shape ``(*)`` for ``"none"``, else a scalar.

    Reference: T. Hastie, R. Tibshirani and J. Friedman, "The Elements of
    Statistical Learning", 2nd ed., Springer 2009, section 10.6.

    Example:
        >>> l1_loss(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0]))
        tensor(1.)
    """
    diff, out_dtype = _residual(input, target)
    return _reduce(diff.abs(), reduction).to(out_dtype)


def rmse_loss(
    input: torch.Tensor, target: torch.Tensor, eps: float = 0.0, reduction: str = "mean"
) -> torch.Tensor:
    r"""Root mean squared error, with a gradient that stays finite at zero error.

    .. math:: \mathrm{RMSE} = \sqrt{\mathrm{MSE} + \varepsilon}
                            = \sqrt{\frac{1}{n} \sum_{i=1}^{n} (x_i - y_i)^2 + \varepsilon}

    The square root is taken *after* the reduction: ``"mean"`` gives the usual RMSE,
    ``"sum"`` the Euclidean norm of the residual :math:`\sqrt{\sum_i d_i^2 + \varepsilon}`,
    and ``"none"`` the elementwise :math:`\sqrt{d_i^2 + \varepsilon}` (which is
    :math:`|d_i|` for :math:`\varepsilon = 0`).  It is **not** the mean of
    :math:`|d_i|` (the MAE): by the power-mean inequality RMSE :math:`\ge` MAE.

    The derivative of :math:`\sqrt{z}` is infinite at :math:`z = 0`, and
    ``torch.sqrt(F.mse_loss(x, y))`` has a NaN gradient for a perfect fit.  Here the
    square root is guarded with a double ``where``: at zero error (and
    ``eps = 0``) the value is 0 and the gradient is 0 (a subgradient of the norm).
    A positive ``eps`` smooths the minimum instead, at the price of a bias of about
    :math:`\varepsilon / (2\,\mathrm{RMSE})`.

    Args:
        input: predictions, any shape ``(*)``, floating point.
        target: targets, the same shape ``(*)`` and device (no broadcasting).
        eps: added under the square root, ``>= 0``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"`` (applied before the root).

    Returns:
        The loss, shape ``(*)`` for ``"none"``, else a scalar.

    Reference: R. J. Hyndman and A. B. Koehler, "Another look at measures of
    forecast accuracy", International Journal of Forecasting 22(4), 2006.

    Example:
        >>> input = torch.tensor([1.0, 1.0, 1.0, 5.0])
        >>> target = torch.zeros(4)
        >>> rmse_loss(input, target), torch.nn.functional.l1_loss(input, target)
        (tensor(2.6458), tensor(2.))
    """
    eps = _check_number(eps, "eps", minimum=0.0)
    diff, out_dtype = _residual(input, target)
    radicand = _reduce(diff * diff, reduction) + eps
    return safe_sqrt(radicand).to(out_dtype)


def smooth_l1_loss(
    input: torch.Tensor, target: torch.Tensor, beta: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    r"""Smooth L1 loss of Fast R-CNN; equals ``torch.nn.functional.smooth_l1_loss``.

    .. math::

        \ell_i = \begin{cases}
            0.5\, d_i^2 / \beta & \text{if } |d_i| < \beta \\
            |d_i| - 0.5\, \beta & \text{otherwise}
        \end{cases}
        \qquad d_i = x_i - y_i

    Quadratic near zero (a gradient :math:`d_i / \beta` that vanishes at the
    optimum), linear beyond :math:`\beta` (a gradient of magnitude 1, robust to
    outliers); value and gradient are continuous at :math:`|d_i| = \beta`.  The
    slope of the linear part is always 1, so the quadratic part gets *narrower* as
    :math:`\beta \to 0`; ``beta=0`` is exactly :func:`l1_loss`, with gradient
    :math:`\operatorname{sign}(d_i)`, 0 at :math:`d_i = 0` (computed without the
    division by :math:`\beta`, which gave NaN gradients in PyTorch issue 96813).
    Compare :func:`huber_loss`, whose slope grows with :math:`\delta` instead.

    Args:
        input: predictions, any shape ``(*)``, floating point.
        target: targets, the same shape ``(*)`` and device (no broadcasting).
        beta: where the loss turns from quadratic to linear, ``>= 0``.
        reduction: ``"none"`` (shape ``(*)``) | ``"mean"`` | ``"sum"``.

    Returns:
        The loss, shape ``(*)`` for ``"none"``, else a scalar.

    Reference: R. Girshick, "Fast R-CNN", ICCV 2015, equation (3).

    Example:
        >>> input = torch.tensor([0.5, 3.0])
        >>> smooth_l1_loss(input, torch.zeros(2), reduction="none")
        tensor([0.1250, 2.5000])
    """
    beta = _check_number(beta, "beta", minimum=0.0)
    if beta == 0.0:
        diff, out_dtype = _residual(input, target)
        return _reduce(diff.abs(), reduction).to(out_dtype)
    # The formula is _smooth_l1_composed (below); every call runs ATen's kernel of it
    # (cvloss_ref/_fused.py), forward and backward fused: ten times faster on a CPU.
    return _piecewise(_fused.smooth_l1_kernel, input, target, reduction, beta)


def _smooth_l1_composed(diff: torch.Tensor, beta: float) -> torch.Tensor:
    """The formula of :func:`smooth_l1_loss`, elementwise, with autograd's gradient: the
    reference that ATen's kernel is tested against (``beta = 0``: ``|d|``)."""
    distance = diff.abs()
    if beta == 0:
        return distance
    return torch.where(distance < beta, 0.5 * diff * diff / beta, distance - 0.5 * beta)


def huber_loss(
    input: torch.Tensor, target: torch.Tensor, delta: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    r"""Huber loss; equals ``torch.nn.functional.huber_loss``.

    .. math::

        \ell_i = \begin{cases}
            0.5\, d_i^2 & \text{if } |d_i| < \delta \\
            \delta\, (|d_i| - 0.5\, \delta) & \text{otherwise}
        \end{cases}
        \qquad d_i = x_i - y_i

    Quadratic (exactly half the squared error) for small errors, linear with slope
    :math:`\delta` for large ones.  It is the smooth L1 loss scaled by its
    threshold:

    .. math::

        \mathrm{huber}_\delta(d) = \delta \cdot \mathrm{smooth\_l1}_{\beta=\delta}(d),
        \quad\text{since}\quad
        \delta \cdot \frac{0.5\, d^2}{\delta} = 0.5\, d^2
        \quad\text{and}\quad
        \delta \cdot (|d| - 0.5\, \delta) = \delta\, (|d| - 0.5\, \delta).

    So the two agree for :math:`\delta = \beta = 1`; as :math:`\delta \to 0` the
    Huber loss tends to 0 (and its gradient too), whereas smooth L1 tends to L1.
    For that reason ``delta`` must be positive.

    Args:
        input: predictions, any shape ``(*)``, floating point.
        target: targets, the same shape ``(*)`` and device (no broadcasting).
        delta: where the loss turns from quadratic to linear, ``> 0`` and finite.
        reduction: ``"none"`` (shape ``(*)``) | ``"mean"`` | ``"sum"``.

    Returns:
        The loss, shape ``(*)`` for ``"none"``, else a scalar.

    Reference: P. J. Huber, "Robust Estimation of a Location Parameter", Annals of
    Mathematical Statistics 35(1), 1964.

    Example:
        >>> input = torch.tensor([0.5, 3.0])
        >>> huber_loss(input, torch.zeros(2), delta=2.0, reduction="none")
        tensor([0.1250, 4.0000])
        >>> 2.0 * smooth_l1_loss(input, torch.zeros(2), beta=2.0, reduction="none")
        tensor([0.1250, 4.0000])
    """
    delta = _check_number(delta, "delta", minimum=0.0, strict=True)
    if math.isinf(delta):
        raise ValueError(f"delta must be finite (delta=inf is mse_loss / 2), got {delta}")
    # The formula is _huber_composed (below); every call runs ATen's kernel of it
    # (cvloss_ref/_fused.py), forward and backward fused.
    return _piecewise(_fused.huber_kernel, input, target, reduction, delta)


def _huber_composed(diff: torch.Tensor, delta: float) -> torch.Tensor:
    """The formula of :func:`huber_loss`, elementwise, with autograd's gradient: the
    reference that ATen's kernel is tested against."""
    distance = diff.abs()
    return torch.where(distance < delta, 0.5 * diff * diff, delta * (distance - 0.5 * delta))

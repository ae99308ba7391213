"""Catalogue cases for the regression losses (book part III).

Inputs are predictions and targets of the same shape.  The edge cases are the
points where naive code breaks or where the definitions differ: a perfect fit
(zero error: the kink of L1 and the root of RMSE), outliers of 1e4, errors of
exactly ``beta``/``delta`` (the switch between the quadratic and the linear
branch), an empty batch, and the three reductions.

Gradients are compared everywhere except at a kink (``|d| = 0`` for L1, RMSE and
smooth L1 with ``beta = 0``), where correct implementations may pick different
subgradients and only finite gradients are required (``grad="finite"``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._catalogue import Case, LossSpec, Mistake, register

# ----------------------------------------------------------------------------- inputs


def _random(shape: tuple[int, ...], **kwargs):
    """Predictions and targets drawn from N(0, 1)."""

    def make(generator: torch.Generator, dtype: torch.dtype):
        input = torch.randn(shape, generator=generator, dtype=torch.float64)
        target = torch.randn(shape, generator=generator, dtype=torch.float64)
        return (input.to(dtype), target.to(dtype)), dict(kwargs)

    return make


def _exact_fit(**kwargs):
    """Predictions equal to the targets: every error is exactly 0."""

    def make(generator: torch.Generator, dtype: torch.dtype):
        target = torch.randn(4, 3, generator=generator, dtype=torch.float64).to(dtype)
        return (target.clone(), target), dict(kwargs)

    return make


def _outliers(**kwargs):
    """Errors of order 1 plus a few of ±1e4."""

    def make(generator: torch.Generator, dtype: torch.dtype):
        input = torch.randn(4, 4, generator=generator, dtype=torch.float64)
        target = torch.randn(4, 4, generator=generator, dtype=torch.float64)
        input[0, 1] = 1e4
        input[2, 3] = -1e4
        return (input.to(dtype), target.to(dtype)), dict(kwargs)

    return make


def _at_threshold(threshold: float, **kwargs):
    """Errors of exactly ±threshold (exact in binary), mixed with smaller and larger ones."""

    def make(generator: torch.Generator, dtype: torch.dtype):
        # Multiples of 1/4 are exact in every float dtype, so input - target is exact.
        target = torch.randint(-8, 9, (2, 4), generator=generator).double() / 4
        diff = torch.tensor(
            [
                [threshold, -threshold, threshold / 2, -threshold / 4],
                [2 * threshold, -3 * threshold, threshold, 0.25 * threshold],
            ],
            dtype=torch.float64,
        )
        return ((target + diff).to(dtype), target.to(dtype)), dict(kwargs)

    return make


def _empty(**kwargs):
    def make(generator: torch.Generator, dtype: torch.dtype):
        return (torch.empty(0, 3, dtype=dtype), torch.empty(0, 3, dtype=dtype)), dict(kwargs)

    return make


def _common_cases(kink: bool) -> tuple[Case, ...]:
    """The cases every regression loss runs; ``kink``: the loss has a kink at 0 error."""
    return (
        Case("random (8,)", _random((8,))),
        Case("random (4, 3)", _random((4, 3))),
        Case("random (2, 3, 4), reduction='none'", _random((2, 3, 4), reduction="none")),
        Case("random (5, 2), reduction='sum'", _random((5, 2), reduction="sum")),
        Case(
            "exact fit (zero error)",
            _exact_fit(),
            grad="finite" if kink else "compare",
            note="a perfect prediction gives a loss of 0 and a finite gradient (no NaN)",
        ),
        Case(
            "outliers of ±1e4",
            _outliers(),
            note="large errors give finite values and gradients",
        ),
        Case(
            "empty batch (0, 3)",
            _empty(),
            note="an empty batch gives 0 under reduction='mean' (not NaN)",
        ),
    )


# ----------------------------------------------------------------------------- mistakes
# Hand-written wrong implementations, as a student might write them.


def _student_reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce as the reference does, also on empty input (0, not NaN), so that each
    mistake differs from the reference by its own error only and its hint fits."""
    if reduction == "mean":
        return values.mean() if values.numel() else 0.0 * values.sum()
    if reduction == "sum":
        return values.sum()
    return values


def _mean_error_absolute(input, target, reduction="mean"):
    return _student_reduce((input - target).abs(), reduction)


def _mean_error_reversed(input, target, reduction="mean"):
    return _student_reduce(target - input, reduction)


def _mean_error_sum(input, target, reduction="mean"):
    diff = input - target
    return diff if reduction == "none" else diff.sum()


def _mse_sum(input, target, reduction="mean"):
    squared = (input - target) ** 2
    return squared if reduction == "none" else squared.sum()


def _mse_halved(input, target, reduction="mean"):
    return _student_reduce(0.5 * (input - target) ** 2, reduction)


def _mse_square_of_mean(input, target, reduction="mean"):
    diff = input - target
    if reduction == "none":
        return diff**2
    return _student_reduce(diff, reduction) ** 2


def _mse_rmse(input, target, reduction="mean"):
    return torch.sqrt(_student_reduce((input - target) ** 2, reduction))


def _l1_no_abs(input, target, reduction="mean"):
    return _student_reduce(input - target, reduction)


def _l1_sum(input, target, reduction="mean"):
    absolute = (input - target).abs()
    return absolute if reduction == "none" else absolute.sum()


def _l1_squared(input, target, reduction="mean"):
    return _student_reduce((input - target) ** 2, reduction)


def _l1_sqrt_of_square(input, target, reduction="mean"):
    return _student_reduce(torch.sqrt((input - target) ** 2), reduction)


def _rmse_mae(input, target, eps=0.0, reduction="mean"):
    return _student_reduce(torch.sqrt((input - target) ** 2 + eps), reduction)


def _rmse_unguarded(input, target, eps=0.0, reduction="mean"):
    return torch.sqrt(_student_reduce((input - target) ** 2, reduction) + eps)


def _rmse_eps_outside(input, target, eps=0.0, reduction="mean"):
    mse = _student_reduce((input - target) ** 2, reduction)
    return torch.where(mse > 0, torch.sqrt(torch.where(mse > 0, mse, 1)), 0) + eps


def _rmse_root_of_sum(input, target, eps=0.0, reduction="mean"):
    squared = (input - target) ** 2 + eps
    return torch.sqrt(squared) if reduction == "none" else torch.sqrt(squared.sum())


def _smooth_l1_not_divided(input, target, beta=1.0, reduction="mean"):
    diff = (input - target).abs()
    loss = torch.where(diff < beta, 0.5 * diff**2, diff - 0.5 * beta)
    return _student_reduce(loss, reduction)


def _smooth_l1_divides_by_zero(input, target, beta=1.0, reduction="mean"):
    diff = (input - target).abs()
    loss = torch.where(diff < beta, 0.5 * diff**2 / beta, diff - 0.5 * beta)
    return _student_reduce(loss, reduction)


def _smooth_l1_as_huber(input, target, beta=1.0, reduction="mean"):
    return _student_reduce(F.huber_loss(input, target, delta=beta, reduction="none"), reduction)


def _smooth_l1_linear_offset(input, target, beta=1.0, reduction="mean"):
    diff = (input - target).abs()
    loss = torch.where(diff < beta, 0.5 * diff**2 / beta, diff - beta)
    return _student_reduce(loss, reduction)


def _huber_not_halved(input, target, delta=1.0, reduction="mean"):
    diff = (input - target).abs()
    loss = torch.where(diff < delta, diff**2, delta * (diff - 0.5 * delta))
    return _student_reduce(loss, reduction)


def _huber_as_smooth_l1(input, target, delta=1.0, reduction="mean"):
    loss = F.smooth_l1_loss(input, target, beta=delta, reduction="none")
    return _student_reduce(loss, reduction)


def _huber_no_offset(input, target, delta=1.0, reduction="mean"):
    diff = (input - target).abs()
    loss = torch.where(diff < delta, 0.5 * diff**2, delta * diff)
    return _student_reduce(loss, reduction)


def _huber_signed_threshold(input, target, delta=1.0, reduction="mean"):
    diff = input - target
    loss = torch.where(diff < delta, 0.5 * diff**2, delta * (diff.abs() - 0.5 * delta))
    return _student_reduce(loss, reduction)


# ----------------------------------------------------------------------------- specs

register(
    LossSpec(
        name="mean_error",
        cases=_common_cases(kink=False),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _mean_error_absolute,
                "the mean error is signed: mean(input - target), without abs(); with abs() "
                "it is the mean absolute error.",
            ),
            Mistake(
                _mean_error_reversed,
                "the error is input - target (positive when the predictions are too "
                "large); you computed target - input.",
            ),
            Mistake(
                _mean_error_sum,
                "reduction='mean' divides by the number of elements; you summed.",
            ),
        ),
    )
)

register(
    LossSpec(
        name="mse_loss",
        cases=_common_cases(kink=False),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _mse_sum,
                "reduction='mean' averages the squared errors: use .mean(), not .sum().",
            ),
            Mistake(
                _mse_halved,
                "the factor 1/2 of some textbooks is not part of the MSE (nor of "
                "F.mse_loss): mean((input - target) ** 2).",
            ),
            Mistake(
                _mse_square_of_mean,
                "square each error first, then average: the mean of the squares, not the "
                "square of the mean (errors of opposite sign cancel in the latter).",
            ),
            Mistake(
                _mse_rmse,
                "this is the RMSE: the MSE has no square root.",
            ),
        ),
    )
)

register(
    LossSpec(
        name="l1_loss",
        cases=_common_cases(kink=True),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _l1_no_abs,
                "take the absolute value of each error: without abs() positive and "
                "negative errors cancel (that is the mean error).",
            ),
            Mistake(
                _l1_sum,
                "reduction='mean' averages the absolute errors: use .mean(), not .sum().",
            ),
            Mistake(
                _l1_squared,
                "the L1 loss is mean(|input - target|), not the squared error.",
            ),
            Mistake(
                _l1_sqrt_of_square,
                "sqrt(d ** 2) equals |d| but its gradient d / sqrt(d ** 2) is NaN at d = 0; "
                "use torch.abs.",
            ),
        ),
    )
)

register(
    LossSpec(
        name="rmse_loss",
        cases=(
            *_common_cases(kink=True),
            Case(
                "eps=1e-3",
                _random((4, 3), eps=1e-3),
                note="eps is added under the square root: sqrt(MSE + eps)",
            ),
            Case(
                "exact fit, eps=1e-6",
                _exact_fit(eps=1e-6),
                note="with eps > 0 the root is smooth at zero error: sqrt(eps), gradient 0",
            ),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _rmse_mae,
                "take the square root of the mean of the squared errors; the mean of "
                "sqrt(d ** 2) = |d| is the MAE (the RMSE is never smaller).",
            ),
            Mistake(
                _rmse_unguarded,
                "torch.sqrt has an infinite derivative at 0, so the gradient is NaN for a "
                "perfect fit: take the root of a safe value where the MSE is 0 (double "
                "torch.where), giving a zero gradient there.",
            ),
            Mistake(
                _rmse_eps_outside,
                "eps goes under the square root: sqrt(MSE + eps), not sqrt(MSE) + eps.",
            ),
            Mistake(
                _rmse_root_of_sum,
                "reduce the squared errors as reduction asks (the mean for 'mean') before "
                "taking the root; sqrt of the sum is the L2 norm of the residual.",
            ),
        ),
    )
)

register(
    LossSpec(
        name="smooth_l1_loss",
        cases=(
            *_common_cases(kink=False),
            Case(
                "|d| exactly beta=0.5",
                _at_threshold(0.5, beta=0.5, reduction="none"),
                note="at |d| = beta both branches give beta / 2 and a slope of ±1",
            ),
            Case(
                "beta=2.0",
                _random((4, 3), beta=2.0, reduction="none"),
                note="the quadratic branch is 0.5 d² / beta",
            ),
            Case(
                "beta=0 (equals L1)",
                _random((4, 3), beta=0.0),
                note="beta = 0 is the L1 loss, with a finite gradient (no division by 0)",
            ),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _smooth_l1_not_divided,
                "the quadratic branch is 0.5 * d ** 2 / beta: without the division by beta "
                "the two branches do not meet at |d| = beta.",
            ),
            Mistake(
                _smooth_l1_divides_by_zero,
                "with beta = 0 the discarded branch 0.5 * d ** 2 / beta is inf or NaN and "
                "poisons the gradient through torch.where: treat beta == 0 as the L1 loss "
                "(a Python if on the number beta is fine).",
            ),
            Mistake(
                _smooth_l1_as_huber,
                "this is the Huber loss, beta times smooth L1: smooth L1's linear branch has "
                "slope 1 (|d| - 0.5 * beta) whatever beta.",
            ),
            Mistake(
                _smooth_l1_linear_offset,
                "the linear branch is |d| - 0.5 * beta, so that it meets the quadratic branch "
                "(value beta / 2) at |d| = beta.",
            ),
        ),
    )
)

register(
    LossSpec(
        name="huber_loss",
        cases=(
            *_common_cases(kink=False),
            Case(
                "|d| exactly delta=2.0",
                _at_threshold(2.0, delta=2.0, reduction="none"),
                note="at |d| = delta both branches give delta² / 2 and a slope of ±delta",
            ),
            Case(
                "delta=0.5",
                _random((4, 3), delta=0.5, reduction="none"),
                note="the linear branch is delta * (|d| - 0.5 * delta)",
            ),
            Case(
                "delta=3.0",
                _random((3, 4), delta=3.0, reduction="none"),
                note="errors below delta are in the quadratic branch 0.5 * d²",
            ),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _huber_not_halved,
                "the quadratic branch is 0.5 * d ** 2 (half the squared error), so that it "
                "meets the linear branch at |d| = delta.",
            ),
            Mistake(
                _huber_as_smooth_l1,
                "this is smooth L1: huber(delta) = delta * smooth_l1(beta=delta), i.e. the "
                "quadratic branch is 0.5 * d ** 2 (not divided by delta) and the linear "
                "branch has slope delta.",
            ),
            Mistake(
                _huber_no_offset,
                "the linear branch is delta * (|d| - 0.5 * delta): without the offset the "
                "loss jumps at |d| = delta.",
            ),
            Mistake(
                _huber_signed_threshold,
                "compare |d| with delta, not d: large negative errors belong to the linear "
                "branch too.",
            ),
        ),
    )
)

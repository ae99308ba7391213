"""The reduction shared by every loss family.

Kept private: the public API is the losses themselves.  Every loss that reduces an
elementwise loss with ``reduction=`` checks the mode with :func:`_check_reduction`
and reduces through :func:`_reduce`, so that all of them treat ``"none"``,
``"mean"`` and ``"sum"`` the same way, including on empty inputs.  Losses whose
``"mean"`` has its own denominator (class weights, ignored targets, kept anchors)
divide with :func:`cvloss_ref._numerics.weighted_mean` or
:func:`~cvloss_ref._numerics.masked_mean` instead, which follow the same rule for an
empty mean: 0 with a zero gradient.  The numerical helpers (guarded divide, log,
square root and power; the half-precision upcast) are in :mod:`cvloss_ref._numerics`.
"""

from __future__ import annotations

import torch

REDUCTIONS = ("none", "mean", "sum")

# ATen's reduction codes (torch.nn._reduction.get_enum), for the fused kernels that some
# losses call directly.
_REDUCTION_CODE = {"none": 0, "mean": 1, "sum": 2}


def _check_reduction(reduction: str) -> None:
    """Raise ``ValueError`` unless ``reduction`` is one of :data:`REDUCTIONS`."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of 'none', 'mean' or 'sum', got {reduction!r}")


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce an elementwise loss.

    ``"mean"`` of an empty tensor is ``0.0 * loss.sum()``: zero, still attached to
    the graph, so an empty batch gives a loss of 0 with a zero gradient rather than
    NaN (``torch.mean`` of an empty tensor is NaN).  ``loss.numel()`` is shape
    metadata, not a value, so this is no host synchronisation.
    """
    _check_reduction(reduction)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if loss.numel() == 0:
        return 0.0 * loss.sum()
    return loss.mean()

"""Reduction and precision helpers shared by every loss family.

Kept private: the public API is the losses themselves.  Every loss ends with
``return _reduce(loss, reduction)`` so that all of them treat ``"none"``,
``"mean"`` and ``"sum"`` the same way, including on empty inputs.
"""

from __future__ import annotations

import torch

REDUCTIONS = ("none", "mean", "sum")

# Precisions too narrow to accumulate in: computed in float32, returned as given.
HALF_DTYPES = (torch.float16, torch.bfloat16)
_FULL_PRECISION = (torch.float32, torch.float64)

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


def _weighted_mean(loss: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``sum(loss) / sum(weight)``, defined as 0 (with a zero gradient) when
    ``sum(weight) == 0``, e.g. when every target is ignored.

    The division uses a safe denominator inside ``torch.where`` so that neither
    the value nor the gradient of the discarded branch is NaN, and no value is
    read back to the host.
    """
    total = loss.sum()
    norm = weight.sum()
    nonzero = norm != 0
    safe_norm = torch.where(nonzero, norm, torch.ones_like(norm))
    return torch.where(nonzero, total / safe_norm, torch.zeros_like(total))


def _upcast(tensor: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 to float32; every other dtype unchanged."""
    return tensor.float() if tensor.dtype in HALF_DTYPES else tensor

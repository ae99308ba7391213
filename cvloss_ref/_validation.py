"""Input checks shared by every loss family.

Each check is one line at the top of a loss and raises ``TypeError`` (wrong
type or dtype) or ``ValueError`` (wrong shape, device or value) with a message
that names the argument, what was expected and what was received.

Checks on *metadata* (type, dtype, shape, device) are free and always run.
Checks on *values* (``x2 >= x1``, probabilities in ``[0, 1]``, labels in
``{-1, +1}``) must read data back from the accelerator, so they run only when
the caller passes ``validate=True`` or the debug mode is on
(``cvloss_ref.set_debug(True)`` or the environment variable
``CVLOSS_REF_DEBUG=1``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

_DEBUG = os.environ.get("CVLOSS_REF_DEBUG", "0") not in ("", "0", "false", "False")


def set_debug(enabled: bool) -> None:
    """Turn value checks on (or off) for every loss, as if ``validate=True``
    were passed everywhere.  Value checks synchronise with the GPU: use this
    while debugging a training script, not in production."""
    global _DEBUG
    _DEBUG = bool(enabled)


def debug_enabled() -> bool:
    """Whether value checks run for every call (see :func:`set_debug`)."""
    return _DEBUG


def _wants_values(validate: bool) -> bool:
    return validate or _DEBUG


def _shape(tensor: torch.Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def _check_tensor(value: object, name: str) -> torch.Tensor:
    """``value`` must be a ``torch.Tensor``."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def _check_floating(tensor: object, name: str) -> torch.Tensor:
    """``tensor`` must be a floating-point tensor."""
    _check_tensor(tensor, name)
    if not tensor.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor (float16, bfloat16, float32 or "
            f"float64), got dtype {tensor.dtype}"
        )
    return tensor


def _check_integer(tensor: object, name: str) -> torch.Tensor:
    """``tensor`` must hold integer class indices."""
    _check_tensor(tensor, name)
    if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(
            f"{name} must be an integer tensor of class indices (e.g. torch.long), "
            f"got dtype {tensor.dtype}"
        )
    return tensor


def _plain_pair(a: object, b: object) -> bool:
    """Whether ``a`` and ``b`` are non-empty float32/float64 tensors of one dtype, shape and
    device: the common call, which a loss may send straight to a fused kernel after this
    one check (about a microsecond).  Anything else takes the full checks, which name
    what is wrong."""
    return (
        isinstance(a, torch.Tensor)
        and isinstance(b, torch.Tensor)
        and a.dtype in (torch.float32, torch.float64)
        and b.dtype is a.dtype
        and a.shape == b.shape
        and a.device == b.device
        and a.numel() > 0
    )


def _check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """``a`` and ``b`` must have identical shapes (no silent broadcasting)."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_b} must have the same shape as {name_a} {_shape(a)}, got {_shape(b)}"
        )


def _check_same_device(tensors: Sequence[torch.Tensor | None], names: Sequence[str]) -> None:
    """All given tensors (``None`` skipped) must be on the device of the first."""
    pairs = [(t, n) for t, n in zip(tensors, names) if t is not None]
    if not pairs:
        return
    first, first_name = pairs[0]
    for tensor, name in pairs[1:]:
        if tensor.device != first.device:
            raise ValueError(
                f"{name} must be on the same device as {first_name} ({first.device}), "
                f"got {tensor.device}"
            )


def _check_ndim_at_least(tensor: torch.Tensor, ndim: int, name: str, what: str) -> None:
    if tensor.dim() < ndim:
        raise ValueError(
            f"{name} must have at least {ndim} dimension(s) ({what}), got shape {_shape(tensor)}"
        )


def _check_dim(tensor: torch.Tensor, dim: int, name: str) -> int:
    """``dim`` must index a dimension of ``tensor``; returns it made non-negative."""
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"dim must be an int, got {type(dim).__name__}")
    ndim = max(tensor.dim(), 1)
    if not -ndim <= dim < ndim:
        raise ValueError(
            f"dim must be in [{-ndim}, {ndim - 1}] for {name} of shape {_shape(tensor)}, got {dim}"
        )
    return dim % ndim


def _check_number(
    value: object,
    name: str,
    *,
    minimum: float | None = None,
    strict: bool = False,
    maximum: float | None = None,
) -> float:
    """A Python number within bounds (``strict`` makes the minimum exclusive)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if value != value:  # NaN
        raise ValueError(f"{name} must not be NaN")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        bound = f"> {minimum}" if strict else f">= {minimum}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return float(value)


def _check_probabilities(tensor: torch.Tensor, name: str, validate: bool) -> None:
    """Values in ``[0, 1]`` (a value check: runs only under ``validate``/debug)."""
    if _wants_values(validate):
        bad = (tensor < 0) | (tensor > 1) | torch.isnan(tensor)
        if bool(bad.any()):
            lo, hi = tensor.min().item(), tensor.max().item()
            raise ValueError(
                f"{name} must hold probabilities in [0, 1], got values in [{lo:g}, {hi:g}]"
            )


def _check_distribution(tensor: torch.Tensor, name: str, dim: int, validate: bool) -> None:
    """Probabilities in ``[0, 1]`` that sum to 1 along ``dim`` (value check)."""
    if _wants_values(validate):
        _check_probabilities(tensor, name, validate=True)
        total = tensor.sum(dim)
        tol = 1e-3 if tensor.dtype in (torch.float16, torch.bfloat16, torch.float32) else 1e-6
        worst = (total - 1).abs().max() if total.numel() else torch.zeros(())
        if bool(worst > tol):
            raise ValueError(
                f"{name} must sum to 1 along dim={dim}, got sums off by up to {worst.item():.3g}"
            )


def _check_values_in(
    tensor: torch.Tensor, allowed: Sequence[int], name: str, validate: bool
) -> None:
    """Every value of ``tensor`` is one of ``allowed`` (value check)."""
    if _wants_values(validate):
        ok = torch.zeros_like(tensor, dtype=torch.bool)
        for value in allowed:
            ok |= tensor == value
        if not bool(ok.all()):
            found = sorted({v for v in tensor[~ok].unique().tolist()})[:5]
            expected = "{" + ", ".join(str(v) for v in allowed) + "}"
            raise ValueError(f"{name} must only hold values in the set {expected}, got {found}")


def _check_class_indices(
    target: torch.Tensor, num_classes: int, name: str, ignore_index: int | None, validate: bool
) -> None:
    """Class indices in ``[0, num_classes)`` or equal to ``ignore_index`` (value check)."""
    if _wants_values(validate):
        valid = (target >= 0) & (target < num_classes)
        if ignore_index is not None:
            valid |= target == ignore_index
        if not bool(valid.all()):
            found = sorted({v for v in target[~valid].unique().tolist()})[:5]
            extra = f" or ignore_index={ignore_index}" if ignore_index is not None else ""
            raise ValueError(
                f"{name} must hold class indices in [0, {num_classes - 1}]{extra}, got {found}"
            )

r"""The numerical helpers every loss family shares: guarded arithmetic and dtype widening.

**Guarded arithmetic (the double** ``where`` **).**  A loss that divides by a quantity
that can be 0, or takes the log, square root or a fractional power of one, must give
a finite value *and a finite gradient* there.  A single ``torch.where(ok, f(x), 0)``
is not enough: autograd still differentiates ``f`` at the discarded points, and
:math:`0 \cdot \infty` is NaN.  Each helper here therefore substitutes a harmless
argument (1) at the discarded points *before* calling ``f``, then selects::

    safe = torch.where(ok, x, 1)
    result = torch.where(ok, f(safe), default)

so that neither the value nor the gradient of the discarded branch is NaN, and no
value is read back to the host (no ``if`` on a tensor).  The gradient at a
discarded point is 0.

**log1p.**  :func:`log1p` is ``torch.log1p`` or, on a CPU where ATen's ``log1p``
kernel is clearly the slower, Kahan's form of it with a ``log`` (for tensors large enough
that its extra kernels pay): measured once per dtype (:func:`log1p_is_faster`), since no
CPU feature predicts which.

**Widening.**  :func:`upcast` computes half precision (float16, bfloat16) in float32,
where sums, squares, areas and Gram matrices neither overflow nor lose most of their
digits; :func:`widen` adds torchvision's rule for integer boxes (8- and 16-bit
integers to int32 before anything is multiplied).

Private: the public API is the losses.  Imported by every family module.
"""

from __future__ import annotations

import math
import time

import torch

__all__ = [
    "FULL_PRECISION",
    "HALF_DTYPES",
    "log1p",
    "log1p_",
    "log1p_is_faster",
    "masked_mean",
    "safe_divide",
    "safe_log",
    "safe_pow",
    "safe_sqrt",
    "upcast",
    "weighted_mean",
    "widen",
    "with_gradient_of",
]

# Precisions too narrow to accumulate in: computed in float32, returned as given.
HALF_DTYPES = (torch.float16, torch.bfloat16)
FULL_PRECISION = (torch.float32, torch.float64)

# The dtypes that products of coordinates are computed in, as in torchvision.ops (its
# _upcast): the area of 8- or 16-bit boxes does not fit in 8 or 16 bits (a 200 x 200 box
# has area 40000), nor the area of a box beyond 256 x 256 pixels in float16.
_WIDENED = {
    torch.int8: torch.int32,
    torch.int16: torch.int32,
    torch.uint8: torch.int32,
    torch.float16: torch.float32,
    torch.bfloat16: torch.float32,
}


# ---------------------------------------------------------------------------- dtypes


def upcast(tensor: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 to float32; every other dtype unchanged."""
    return tensor.float() if tensor.dtype in HALF_DTYPES else tensor


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype :func:`upcast` computes a ``dtype`` tensor in."""
    return torch.float32 if dtype in HALF_DTYPES else dtype


def widen(tensor: torch.Tensor) -> torch.Tensor:
    """int8/int16/uint8 to int32 and float16/bfloat16 to float32 (torchvision's rule
    for boxes); int32, int64, float32 and float64 unchanged."""
    wide = _WIDENED.get(tensor.dtype)
    return tensor if wide is None else tensor.to(wide)


# ------------------------------------------------------------------ guarded arithmetic


def safe_divide(
    numerator: torch.Tensor, denominator: torch.Tensor, default: float = 0.0
) -> torch.Tensor:
    """``numerator / denominator``, and ``default`` (with a zero gradient) where the
    denominator is 0: the discarded branch divides by 1.

    Integer tensors give a true quotient in the default floating dtype, as ``/`` does.
    """
    nonzero = denominator != 0
    safe = torch.where(nonzero, denominator, torch.ones_like(denominator))
    quotient = numerator / safe
    return torch.where(nonzero, quotient, torch.full_like(quotient, default))


def safe_log(
    value: torch.Tensor, keep: torch.Tensor | None = None, default: float = float("-inf")
) -> torch.Tensor:
    """``log(value)`` where ``keep`` (by default ``value > 0``), else ``default``, with
    a zero gradient there: the discarded branch takes the log of 1."""
    if keep is None:
        keep = value > 0
    safe = torch.where(keep, value, torch.ones_like(value))
    return torch.where(keep, torch.log(safe), default)


def safe_sqrt(value: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """``sqrt(value)`` where ``value > threshold``, else 0, with a zero (not infinite
    or NaN) gradient there: a subgradient of a norm at 0."""
    positive = value > threshold
    safe = torch.where(positive, value, torch.ones_like(value))
    return torch.where(positive, torch.sqrt(safe), torch.zeros_like(value))


def safe_pow(base: torch.Tensor, exponent: float) -> torch.Tensor:
    r""":math:`\max(x, 0)^a` with finite gradients.  For :math:`a \ge 1` the derivative
    :math:`a x^{a-1}` is finite at 0; for :math:`a < 1` it is :math:`+\infty` there, and
    the gradient at :math:`x = 0` is taken as 0."""
    base = base.clamp(min=0)
    if exponent >= 1:
        return base.pow(exponent)
    positive = base > 0
    return torch.where(positive, torch.where(positive, base, 1.0).pow(exponent), 0.0)


# ------------------------------------------------------------------------- log1p


def map_special_case_constants() -> None:
    r"""Run ATen's vectorised ``log1p`` and ``log`` once, in both dtypes, on the inputs
    that their special cases serve (:math:`-0`, :math:`-1`, :math:`\pm\infty`, NaN, a
    subnormal), so that the constants those cases read are mapped into this process.

    Why: SLEEF's AVX-512 ``log1p`` (float32) reads the :math:`-0` it returns for a
    :math:`-0` input with a masked load, every call.  With no :math:`-0` among the
    inputs the mask is empty, the load is suppressed, and the page that holds the
    constant is never faulted in; on the AMD EPYC (Zen 4) virtual machines that built
    this package, each such suppressed load from a page not yet mapped cost about 120
    ns, and ATen's float32 ``log1p``, ``expm1`` and ``logsigmoid`` took 0.85-0.95 ms
    per 100,000 elements instead of 0.08-0.15 ms, until anything read that page (a
    ``perf`` profile put 80% of ``log1p``'s time on that load; reading the four bytes
    with ``ctypes`` had the same effect as this function).  Which of the two speeds a
    process had depended on what it had run before (a float32 ``atan2``, e.g. in
    ``ciou_loss``, maps the page too).  The values are discarded: this changes speed,
    never a result.  Run once, when this module is imported (under a millisecond).
    """
    specials = [-0.0, 0.0, -1.0, -2.0, 1.0, math.inf, -math.inf, math.nan, 1e-310, 1e-40]
    for dtype in (torch.float32, torch.float64):
        # 64 lanes: whole vectors of every width, each lane holding a special value.
        z = torch.tensor(specials, dtype=dtype, device="cpu").repeat(64)
        torch.log1p(z)
        torch.log(z)


map_special_case_constants()

# Per dtype: whether ATen's log1p is the faster form of log(1 + z) on this CPU (True), or
# Kahan's (False); measured on first use by _measure_log1p.
_LOG1P_FASTER: dict[torch.dtype, bool] = {}

#: Below this many elements ``torch.log1p`` is taken without measuring: Kahan's form is
#: six more kernels, whose fixed cost (a few microseconds each) outweighs what they save.
KAHAN_MIN_ELEMENTS = 1 << 15


def log1p_is_faster(z: torch.Tensor) -> bool:
    r"""Whether ``torch.log1p`` is the form of :math:`\log(1 + z)` to run on ``z``: always
    on a GPU, on meta tensors, inside ``torch.compile`` (which generates its own kernel)
    and below :data:`KAHAN_MIN_ELEMENTS` elements; otherwise as measured once per dtype
    by :func:`_measure_log1p`."""
    if z.device.type != "cpu" or z.numel() < KAHAN_MIN_ELEMENTS or torch.compiler.is_compiling():
        return True
    faster = _LOG1P_FASTER.get(z.dtype)
    if faster is None:
        faster = _LOG1P_FASTER[z.dtype] = _measure_log1p(z.dtype)
    return faster


def _measure_log1p(dtype: torch.dtype, size: int = 1 << 16, rounds: int = 5) -> bool:
    """Whether ATen's ``log1p`` on this CPU is not clearly slower than
    :func:`_kahan_log1p` (a ``log`` and six cheap passes): the best of ``rounds``
    timings of each on ``size`` elements (enough for the time per element to dominate
    the kernels' fixed costs), a few milliseconds once per dtype.

    No CPU feature predicts it.  Measured on one AMD EPYC (Zen 4), 100,000 elements,
    with ATen's AVX-512 kernels: float32 ``log1p`` 0.08 ms and Kahan's form 0.18 ms
    once :func:`map_special_case_constants` has run (0.87 ms for ``log1p`` before it,
    in a process where nothing had mapped SLEEF's constant; in float64 ``log`` once
    took 1.3 ms there); with the AVX2 kernels ``log1p`` is the faster in both dtypes
    (0.15 ms against 0.18 ms in float32).  So on the machines measured so far
    ``log1p`` is chosen, and Kahan's form stays for a CPU where it is not: it is taken
    only when it is more than 1.5 times
    as fast, a margin that timing noise does not cross where the two differ by 5
    times or by 1.2 times.  Both forms are accurate to a few ulps
    (``tests/test_accuracy.py`` checks each against 360-digit arithmetic), so the
    choice changes the speed, not the accuracy.
    """
    # A fresh tensor that needs no gradient: nothing is recorded, even under torch.func.
    z = torch.linspace(-0.5, 2.0, size, dtype=dtype)
    best = {True: math.inf, False: math.inf}
    for _ in range(rounds):
        for use_log1p in (True, False):
            start = time.perf_counter()
            torch.log1p(z) if use_log1p else _kahan_log1p(z)
            best[use_log1p] = min(best[use_log1p], time.perf_counter() - start)
    return best[False] * 1.5 > best[True]


def _kahan_log1p(z: torch.Tensor) -> torch.Tensor:
    r""":math:`\log(1 + z)` to a few ulps by Kahan's trick, with ``log`` alone:
    :math:`u = 1 + z` rounded, then :math:`z \log u / (u - 1)`, where :math:`u - 1` is
    the exact difference of the rounded :math:`u` and 1, so that the rounding of
    :math:`u` cancels between :math:`\log u` and :math:`u - 1`; :math:`z` itself where
    :math:`u` rounds to 1.  NaN below -1 (as ``log1p``) and at :math:`+\infty` (where
    ``log1p`` gives :math:`+\infty`)."""
    u = z + 1
    kahan = u.log().mul_(z).div_(u - 1)
    return torch.where(u != 1, kahan, z)


def log1p(z: torch.Tensor) -> torch.Tensor:
    r""":math:`\log(1 + z)` for finite :math:`z \ge -1`, to a few ulps: ``torch.log1p``,
    or on a CPU where that kernel is clearly the slower (:func:`log1p_is_faster`),
    :func:`_kahan_log1p`.  Not for tensors that autograd differentiates through: the
    callers run it inside hand-written backwards or for values whose gradient comes
    from elsewhere."""
    if log1p_is_faster(z):
        return torch.log1p(z)
    return _kahan_log1p(z)


def log1p_(z: torch.Tensor) -> torch.Tensor:
    """:func:`log1p` in ``z``'s buffer when the ``torch.log1p`` form is taken (a new
    tensor with Kahan's form): for a ``z`` that is the caller's own and not needed
    after."""
    if log1p_is_faster(z):
        return z.log1p_()
    return _kahan_log1p(z)


# ------------------------------------------------------------------------- means


def weighted_mean(loss: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``sum(loss) / sum(weight)``, defined as 0 (with a zero gradient) when
    ``sum(weight) == 0``, e.g. when every target is ignored."""
    return safe_divide(loss.sum(), weight.sum())


def masked_mean(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``keep``; 0 with a zero gradient where nothing is kept
    (values at discarded points, even NaN or infinite ones, reach neither the value nor
    the gradient)."""
    total = torch.where(keep, values, torch.zeros_like(values)).sum()
    return safe_divide(total, keep.sum().to(values.dtype))


def with_gradient_of(value: torch.Tensor, formula: torch.Tensor) -> torch.Tensor:
    r"""``value``, differentiated as ``formula``: one function written two ways, the first
    accurate in its value, the second plain in its gradient.

    ``formula - formula.detach()`` is exactly 0 where ``formula`` is finite, so the
    result is ``value`` to the last bit, and autograd sees ``formula`` alone, with its
    conventions at kinks (the ones the hand-written backwards follow).  The box losses
    use it for :math:`1 - \mathrm{IoU}`: its value needs a cancellation-free form,
    its derivative :math:`-d\,\mathrm{IoU}` has no cancellation to avoid.
    """
    if not formula.requires_grad:
        return value
    return value.detach() + (formula - formula.detach())

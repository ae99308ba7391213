r"""Information-theoretic quantities: self-information, entropy, cross-entropy, KL and JS.

Every function here takes *probabilities* (not logits, not log-probabilities).
A distribution lies along ``dim`` (the last dimension by default); every other
dimension indexes distributions, and ``reduction="none"`` returns one value per
distribution, i.e. a tensor of the shape of ``p`` with ``dim`` removed.

The convention at zero probability:

* :math:`0 \log 0 = 0`, and the term :math:`p_i \log p_i` contributes a value of
  0 **and a zero gradient** at :math:`p_i = 0` (its one-sided derivative
  :math:`\log p_i + 1` is :math:`-\infty` there, so any finite value is a
  convention; the natural formula would give NaN).
* The term :math:`-p_i \log q_i` is differentiated exactly: at :math:`p_i = 0 < q_i`
  its gradient is :math:`-\log q_i` with respect to :math:`p_i` and 0 with respect to
  :math:`q_i`; at :math:`p_i = q_i = 0` it contributes 0 with zero gradients.
* Where :math:`p_i > 0 = q_i` the cross-entropy and the KL divergence are
  :math:`+\infty`, which is their correct value; only there may gradients be
  non-finite.

The first two rules are implemented with the double-``where`` trick (the argument of ``log``
is replaced by 1 inside the discarded branch), so no NaN appears in the forward or
the backward pass and no value is read back to the host.  Because the rules are
applied term by term, the identities :math:`\mathrm{KL}(p\|q) = H(p, q) - H(p)`
and :math:`\mathrm{JS} = H(M) - \tfrac12 (H(P) + H(Q))` hold for the gradients too.

Results are in nats (natural logarithm) unless ``base`` says otherwise
(``base=2`` gives bits).
"""

from __future__ import annotations

import math

import torch

from ._numerics import compute_dtype, safe_log
from ._numerics import upcast as _upcast
from ._reduction import _reduce
from ._validation import (
    _check_dim,
    _check_distribution,
    _check_floating,
    _check_ndim_at_least,
    _check_number,
    _check_probabilities,
    _check_same_device,
    _check_same_shape,
)

__all__ = [
    "cross_entropy_dist",
    "entropy",
    "js_divergence",
    "kl_divergence",
    "self_information",
]


def _log_base(base: float) -> float:
    """``ln(base)``, after checking that ``base`` is a valid logarithm base."""
    base = _check_number(base, "base", minimum=0.0, strict=True)
    if base == 1.0:
        raise ValueError("base must be positive and different from 1, got 1")
    if math.isinf(base):
        raise ValueError(f"base must be finite, got {base}")
    return math.log(base)


def _xlogx(x: torch.Tensor) -> torch.Tensor:
    """``x * log(x)`` with ``0 log 0 = 0`` and a zero gradient at ``x = 0``.

    Double ``where``: ``log`` only ever sees 1 where ``x == 0``, so its gradient
    there is finite and then masked to 0.  Negative entries give NaN, as ``log``
    does (``validate=True`` reports them instead).
    """
    # Written out rather than through _numerics.safe_log: tests/test_similarity.py
    # pastes this function's source, with torch and math only, as a copied reference.
    nonzero = x != 0
    safe_x = torch.where(nonzero, x, torch.ones_like(x))
    return torch.where(nonzero, x * torch.log(safe_x), torch.zeros_like(x))


def _xlogy(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``x * log(y)``, equal to 0 with zero gradients where ``x == y == 0``.

    Where only ``x == 0`` the product is an exact 0 and autograd gives the exact
    gradients (``log y`` for ``x``, ``0`` for ``y``); where ``x > 0 = y`` it is
    ``-inf``.  Unlike ``torch.xlogy``, the gradient for ``y`` at ``x == y == 0``
    is 0, not NaN.
    """
    return x * safe_log(y, (x != 0) | (y != 0), default=0.0)


def _check_pair(
    p: torch.Tensor, q: torch.Tensor, dim: int, validate: bool
) -> tuple[int, torch.dtype]:
    """Checks shared by the two-distribution functions; returns ``(dim, out_dtype)``."""
    _check_floating(p, "p")
    _check_floating(q, "q")
    _check_ndim_at_least(p, 1, "p", "the outcomes of each distribution")
    _check_same_shape(p, q, "p", "q")
    _check_same_device([p, q], ["p", "q"])
    dim = _check_dim(p, dim, "p")
    _check_distribution(p, "p", dim, validate)
    _check_distribution(q, "q", dim, validate)
    return dim, torch.promote_types(p.dtype, q.dtype)


def self_information(
    p: torch.Tensor, base: float = math.e, *, validate: bool = False
) -> torch.Tensor:
    r"""Self-information (surprisal) of events with probability ``p``, elementwise.

    .. math:: I(x) = -\log_b p(x) = -\frac{\ln p(x)}{\ln b}

    A certain event (:math:`p = 1`) carries no information; an impossible one
    (:math:`p = 0`) carries :math:`+\infty` (with gradient :math:`-\infty`: the
    value is genuinely infinite there).  There is no reduction: the result has
    the shape of ``p``.

    Args:
        p: probabilities, any shape ``(*)``, floating point.
        base: base :math:`b` of the logarithm: ``math.e`` (default) gives nats,
            ``2`` bits, ``10`` hartleys.  Must be positive and different from 1.
        validate: check that ``p`` lies in ``[0, 1]`` (reads values back from the
            device; see :func:`cvloss_ref.set_debug`).

    Returns:
        :math:`I`, shape ``(*)``, in the dtype of ``p``.

    Reference: C. E. Shannon, "A Mathematical Theory of Communication", Bell
    System Technical Journal 27, 1948.

    Example:
        >>> p = torch.tensor([1.0, 0.5, 0.25])
        >>> self_information(p, base=2)
        tensor([0., 1., 2.])
    """
    _check_floating(p, "p")
    log_base = _log_base(base)
    _check_probabilities(p, "p", validate)
    # 0 - log p rather than -log p: a certain event gets +0, not -0.
    info = 0.0 - torch.log(_upcast(p))
    if log_base != 1.0:
        info = info / log_base
    return info.to(p.dtype)


def entropy(
    p: torch.Tensor,
    dim: int = -1,
    reduction: str = "mean",
    *,
    base: float = math.e,
    validate: bool = False,
) -> torch.Tensor:
    r"""Shannon entropy of the distributions ``p`` along ``dim``.

    .. math:: H(p) = -\sum_i p_i \log p_i, \qquad 0 \log 0 = 0

    At :math:`p_i = 0` the term contributes 0 and a zero gradient; the one-sided
    derivative is infinite (:math:`-\log p_i - 1 \to +\infty`), so the zero
    gradient is a convention that keeps training finite (the plain formula gives
    NaN).  :math:`0 \le H(p) \le \log K` for :math:`K` outcomes.

    Args:
        p: probabilities, shape ``(*, K, *)`` with the ``K`` outcomes along ``dim``;
            at least one dimension.
        dim: the dimension that holds each distribution.
        reduction: ``"none"`` (one entropy per distribution) | ``"mean"`` | ``"sum"``
            (over the distributions).
        base: base of the logarithm (keyword only); ``math.e`` gives nats, ``2`` bits.
        validate: check that ``p`` is in ``[0, 1]`` and sums to 1 along ``dim``.

    Returns:
        The entropy, shape of ``p`` without ``dim`` for ``"none"``, else a scalar;
        in the dtype of ``p`` (float16/bfloat16 are computed in float32).

    Reference: C. E. Shannon, "A Mathematical Theory of Communication", 1948;
    T. M. Cover and J. A. Thomas, "Elements of Information Theory", 2nd ed.,
    Wiley 2006, section 2.1.

    Example:
        >>> p = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
        >>> entropy(p, reduction="none", base=2)
        tensor([1., 0.])
    """
    _check_floating(p, "p")
    _check_ndim_at_least(p, 1, "p", "the outcomes of each distribution")
    dim = _check_dim(p, dim, "p")
    log_base = _log_base(base)
    _check_distribution(p, "p", dim, validate)
    values = 0.0 - _xlogx(_upcast(p)).sum(dim)  # +0, not -0, for one-hot p
    if log_base != 1.0:
        values = values / log_base
    return _reduce(values, reduction).to(p.dtype)


def cross_entropy_dist(
    p: torch.Tensor,
    q: torch.Tensor,
    dim: int = -1,
    reduction: str = "mean",
    *,
    base: float = math.e,
    validate: bool = False,
) -> torch.Tensor:
    r"""Cross-entropy :math:`H(p, q)` between two distributions given as probabilities.

    .. math:: H(p, q) = -\sum_i p_i \log q_i = H(p) + \mathrm{KL}(p \,\|\, q)

    Both arguments are probabilities; for logits and class indices use
    :func:`cvloss_ref.cross_entropy`.  At :math:`p_i = 0` the term contributes 0;
    its gradient is the exact one (:math:`-\log q_i` for :math:`p_i`, 0 for
    :math:`q_i`); at :math:`p_i = q_i = 0` it contributes 0 and a zero gradient for
    both (:math:`0 \log 0 = 0`, whose one-sided derivative is infinite).  Where
    :math:`p_i > 0 = q_i` the result is :math:`+\infty`, as ``q`` rules out an
    outcome that ``p`` deems possible; only there may gradients be non-finite.

    Args:
        p: the "true" distribution, shape ``(*, K, *)``, outcomes along ``dim``.
        q: the model's distribution, floating point, same shape and device as ``p``.
        dim: the dimension that holds each distribution.
        reduction: ``"none"`` (one value per distribution) | ``"mean"`` | ``"sum"``.
        base: base of the logarithm (keyword only); ``math.e`` gives nats.
        validate: check that ``p`` and ``q`` are distributions along ``dim``.

    Returns:
        :math:`H(p, q)`, shape of ``p`` without ``dim`` for ``"none"``, else a scalar;
        in the promoted dtype of ``p`` and ``q`` (float16/bfloat16 are computed in
        float32).

    Reference: T. M. Cover and J. A. Thomas, "Elements of Information Theory",
    2nd ed., Wiley 2006, section 2.3.

    Example:
        >>> p = torch.tensor([0.5, 0.5])
        >>> q = torch.tensor([0.25, 0.75])
        >>> print(f"{cross_entropy_dist(p, q):.4f}")
        0.8370
    """
    dim, out_dtype = _check_pair(p, q, dim, validate)
    log_base = _log_base(base)
    compute = compute_dtype(out_dtype)
    values = 0.0 - _xlogy(p.to(compute), q.to(compute)).sum(dim)  # +0, not -0
    if log_base != 1.0:
        values = values / log_base
    return _reduce(values, reduction).to(out_dtype)


def kl_divergence(
    p: torch.Tensor,
    q: torch.Tensor,
    dim: int = -1,
    reduction: str = "mean",
    *,
    base: float = math.e,
    validate: bool = False,
) -> torch.Tensor:
    r"""Kullback–Leibler divergence :math:`\mathrm{KL}(p \,\|\, q)` of two distributions.

    .. math:: \mathrm{KL}(p \,\|\, q) = \sum_i p_i \log \frac{p_i}{q_i} = H(p, q) - H(p)

    **Both arguments are probabilities, in the order of the formula.** This differs
    from ``torch.nn.functional.kl_div(input, target)``, which takes the *log* of
    :math:`q` first and :math:`p` second:
    ``kl_divergence(p, q, reduction="none")`` equals
    ``F.kl_div(q.log(), p, reduction="none").sum(dim)`` wherever ``q > 0``, and
    the ``"mean"`` here is ``F.kl_div``'s ``"batchmean"`` for 2-D inputs (its
    ``"mean"`` also divides by the number of outcomes).

    KL is not symmetric and is :math:`+\infty` where :math:`p_i > 0 = q_i`
    (gradients may be non-finite only there).  At :math:`p_i = 0` the term
    contributes 0 with a finite gradient: :math:`p_i \log p_i` contributes a zero
    gradient (its one-sided derivative is infinite) and :math:`-p_i \log q_i` its
    exact gradient, so :math:`\partial \mathrm{KL} / \partial p_i = -\log q_i` there
    (``F.kl_div`` gives NaN).

    Args:
        p: the reference distribution, shape ``(*, K, *)``, outcomes along ``dim``.
        q: the approximating distribution, same shape and device as ``p``.
        dim: the dimension that holds each distribution.
        reduction: ``"none"`` (one value per distribution) | ``"mean"`` | ``"sum"``.
        base: base of the logarithm (keyword only); ``math.e`` gives nats.
        validate: check that ``p`` and ``q`` are distributions along ``dim``.

    Returns:
        The divergence (:math:`\ge 0`), shape of ``p`` without ``dim`` for
        ``"none"``, else a scalar; in the promoted dtype of ``p`` and ``q``
        (float16/bfloat16 are computed in float32).

    Reference: S. Kullback and R. A. Leibler, "On Information and Sufficiency",
    Annals of Mathematical Statistics 22(1), 1951.

    Example:
        >>> p = torch.tensor([0.5, 0.5])
        >>> q = torch.tensor([0.25, 0.75])
        >>> print(f"{kl_divergence(p, q):.4f}")
        0.1438
    """
    dim, out_dtype = _check_pair(p, q, dim, validate)
    log_base = _log_base(base)
    compute = compute_dtype(out_dtype)
    p_c, q_c = p.to(compute), q.to(compute)
    values = (_xlogx(p_c) - _xlogy(p_c, q_c)).sum(dim)
    if log_base != 1.0:
        values = values / log_base
    return _reduce(values, reduction).to(out_dtype)


def js_divergence(
    p: torch.Tensor,
    q: torch.Tensor,
    dim: int = -1,
    reduction: str = "mean",
    *,
    base: float = math.e,
    validate: bool = False,
) -> torch.Tensor:
    r"""Jensen–Shannon divergence of two distributions: symmetric, bounded, always finite.

    .. math::

        \mathrm{JS}(p, q) = \tfrac12 \mathrm{KL}(p \,\|\, m) + \tfrac12 \mathrm{KL}(q \,\|\, m)
                          = H(m) - \tfrac12 \bigl(H(p) + H(q)\bigr),
        \qquad m = \tfrac12 (p + q)

    :math:`0 \le \mathrm{JS} \le \log 2` (1 bit with ``base=2``), with equality on
    the right for disjoint supports.  It is the divergence behind the original GAN
    objective: with an optimal discriminator that objective equals
    :math:`2\,\mathrm{JS} - \log 4` (Goodfellow et al. 2014).

    It is computed in the entropy form, with :math:`0 \log 0 = 0` and a zero
    gradient for each :math:`x \log x` term at :math:`x = 0` (the one-sided
    derivative is infinite there), so the value *and* the gradient are finite
    everywhere, also for disjoint supports.  At :math:`p_i = 0 < q_i` the gradient
    for :math:`p_i` is :math:`-\tfrac12 (\log m_i + 1)`.

    Args:
        p, q: probabilities, same shape ``(*, K, *)`` and device, outcomes along ``dim``.
        dim: the dimension that holds each distribution.
        reduction: ``"none"`` (one value per distribution) | ``"mean"`` | ``"sum"``.
        base: base of the logarithm (keyword only); ``math.e`` gives nats.
        validate: check that ``p`` and ``q`` are distributions along ``dim``.

    Returns:
        The divergence, shape of ``p`` without ``dim`` for ``"none"``, else a scalar;
        in the promoted dtype of ``p`` and ``q`` (float16/bfloat16 are computed in
        float32).

    Reference: J. Lin, "Divergence measures based on the Shannon entropy", IEEE
    Transactions on Information Theory 37(1), 1991.

    Example:
        >>> p = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
        >>> q = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
        >>> js_divergence(p, q, reduction="none", base=2)
        tensor([1., 0.])
    """
    dim, out_dtype = _check_pair(p, q, dim, validate)
    log_base = _log_base(base)
    compute = compute_dtype(out_dtype)
    p_c, q_c = p.to(compute), q.to(compute)
    m = 0.5 * (p_c + q_c)
    # Elementwise, each term is >= 0 by the convexity of x log x.
    values = (0.5 * (_xlogx(p_c) + _xlogx(q_c)) - _xlogx(m)).sum(dim)
    if log_base != 1.0:
        values = values / log_base
    return _reduce(values, reduction).to(out_dtype)

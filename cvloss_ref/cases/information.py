"""Catalogue cases for the information-theory functions (book part I).

Distributions are built in float64 from a softmax of random logits and then cast
to the case's dtype, so a case holds the same distributions in every dtype.  The
edge cases are the points where naive code breaks: exact zeros (``0 log 0``),
one-hot distributions, identical and near-uniform distributions, a ``q`` that
rules out an outcome ``p`` allows (the divergence is infinite), and a
distribution along another ``dim``.

At an exact zero of ``p`` the one-sided derivative of ``p log p`` is infinite, so
correct formulations may return different finite gradients there: those cases
compare values and only require finite gradients (``grad="finite"``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._catalogue import Case, LossSpec, Mistake, register

# ----------------------------------------------------------------------------- inputs


def _dist(
    generator: torch.Generator,
    dtype: torch.dtype,
    shape: tuple[int, ...],
    dim: int = -1,
    scale: float = 1.0,
) -> torch.Tensor:
    """Random distributions along ``dim``: softmax of ``scale * N(0, 1)`` logits."""
    logits = scale * torch.randn(shape, generator=generator, dtype=torch.float64)
    return torch.softmax(logits, dim).to(dtype)


def _with_zeros(
    generator: torch.Generator, dtype: torch.dtype, support: torch.Tensor
) -> torch.Tensor:
    """Random distributions along the last dim, exactly 0 where ``support`` is False."""
    weights = torch.rand(support.shape, generator=generator, dtype=torch.float64) + 0.1
    weights = torch.where(support, weights, torch.zeros_like(weights))
    return (weights / weights.sum(-1, keepdim=True)).to(dtype)


# The support of p in the "exact zeros" cases; q's support contains p's (so every
# divergence is finite) and also covers some zeros of p (p_i = 0 < q_i).
_SUPPORT_P = torch.tensor(
    [
        [1, 0, 1, 1, 0],
        [0, 1, 1, 0, 1],
        [1, 1, 0, 0, 0],
        [0, 0, 0, 1, 1],
    ],
    dtype=torch.bool,
)
_SUPPORT_Q = _SUPPORT_P | torch.tensor(
    [
        [0, 1, 0, 0, 0],
        [1, 0, 0, 0, 0],
        [0, 0, 1, 1, 0],
        [0, 0, 0, 0, 0],
    ],
    dtype=torch.bool,
)


def _one_hot(generator: torch.Generator, dtype: torch.dtype, n: int, k: int) -> torch.Tensor:
    labels = torch.randint(0, k, (n,), generator=generator)
    return F.one_hot(labels, k).to(dtype)


def _random(shape: tuple[int, ...], **kwargs):
    def make(generator: torch.Generator, dtype: torch.dtype):
        return (_dist(generator, dtype, shape),), dict(kwargs)

    return make


def _random_pair(shape: tuple[int, ...], dim: int = -1, **kwargs):
    def make(generator: torch.Generator, dtype: torch.dtype):
        p = _dist(generator, dtype, shape, dim)
        q = _dist(generator, dtype, shape, dim)
        return (p, q), ({"dim": dim} if dim != -1 else {}) | kwargs

    return make


def _zeros_pair(generator: torch.Generator, dtype: torch.dtype):
    return (
        _with_zeros(generator, dtype, _SUPPORT_P),
        _with_zeros(generator, dtype, _SUPPORT_Q),
    ), {"reduction": "none"}


def _one_hot_vs_soft(generator: torch.Generator, dtype: torch.dtype):
    return (_one_hot(generator, dtype, 6, 4), _dist(generator, dtype, (6, 4))), {}


def _identical(generator: torch.Generator, dtype: torch.dtype):
    p = _dist(generator, dtype, (5, 4))
    return (p, p.clone()), {"reduction": "none"}


def _near_uniform(generator: torch.Generator, dtype: torch.dtype):
    p = _dist(generator, dtype, (4, 6), scale=1e-2)
    q = _dist(generator, dtype, (4, 6), scale=1e-2)
    return (p, q), {}


def _tiny_q(generator: torch.Generator, dtype: torch.dtype):
    p = torch.tensor([[0.5, 0.4, 0.1], [0.2, 0.3, 0.5]], dtype=dtype)  # no zeros: compare grads
    q = torch.tensor([[0.999, 1e-30, 0.001], [0.3, 0.3, 0.4]], dtype=dtype)
    return (p, q), {"reduction": "none"}


def _random_probs(shape: tuple[int, ...], **kwargs):
    def make(generator: torch.Generator, dtype: torch.dtype):
        probs = 0.01 + 0.98 * torch.rand(shape, generator=generator, dtype=torch.float64)
        return (probs.to(dtype),), dict(kwargs)

    return make


def _certain(generator: torch.Generator, dtype: torch.dtype):
    probs = 0.01 + 0.98 * torch.rand(6, generator=generator, dtype=torch.float64)
    probs[::2] = 1.0
    return (probs.to(dtype),), {}


def _tiny(generator: torch.Generator, dtype: torch.dtype):
    return (torch.tensor([1e-30, 1e-20, 1e-10, 0.5], dtype=dtype),), {}


def _empty_probs(generator: torch.Generator, dtype: torch.dtype):
    return (torch.empty(0, 3, dtype=dtype),), {}


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


def _self_information_log2(p, base=math.e):
    return -torch.log2(p)


def _self_information_no_minus(p, base=math.e):
    return torch.log(p) / math.log(base)


def _self_information_times_log_base(p, base=math.e):
    return -torch.log(p) * math.log(base)


def _self_information_inverse(p, base=math.e):
    return 1 / p


def _entropy_unguarded(p, dim=-1, reduction="mean", base=math.e):
    return _student_reduce(-(p * torch.log(p)).sum(dim) / math.log(base), reduction)


def _entropy_log2(p, dim=-1, reduction="mean", base=math.e):
    terms = torch.where(p > 0, p * torch.log2(torch.where(p > 0, p, 1)), 0)
    return _student_reduce(-terms.sum(dim), reduction)


def _entropy_always_sum(p, dim=-1, reduction="mean", base=math.e):
    terms = torch.where(p > 0, p * torch.log(torch.where(p > 0, p, 1)), 0)
    values = -terms.sum(dim) / math.log(base)
    return values if reduction == "none" else values.sum()


def _entropy_last_dim(p, dim=-1, reduction="mean", base=math.e):
    terms = torch.where(p > 0, p * torch.log(torch.where(p > 0, p, 1)), 0)
    return _student_reduce(-terms.sum(-1) / math.log(base), reduction)


def _ce_swapped(p, q, dim=-1, reduction="mean", base=math.e):
    terms = torch.where(q > 0, q * torch.log(torch.where(q > 0, p, 1)), 0)
    return _student_reduce(-terms.sum(dim) / math.log(base), reduction)


def _ce_unguarded(p, q, dim=-1, reduction="mean", base=math.e):
    return _student_reduce(-(p * torch.log(q)).sum(dim) / math.log(base), reduction)


def _ce_eps_in_log(p, q, dim=-1, reduction="mean", base=math.e):
    return _student_reduce(-(p * torch.log(q + 1e-8)).sum(dim) / math.log(base), reduction)


def _ce_mean_over_outcomes(p, q, dim=-1, reduction="mean", base=math.e):
    terms = -torch.xlogy(p, q) / math.log(base)
    if reduction == "mean":
        return terms.mean()
    return _student_reduce(terms.sum(dim), reduction)


def _ce_log2(p, q, dim=-1, reduction="mean", base=math.e):
    return _student_reduce(-torch.xlogy(p, q).sum(dim) / math.log(2), reduction)


def _kl_swapped(p, q, dim=-1, reduction="mean", base=math.e):
    terms = torch.xlogy(q, q) - torch.xlogy(q, p)
    return _student_reduce(terms.sum(dim) / math.log(base), reduction)


def _kl_div_without_log(p, q, dim=-1, reduction="mean", base=math.e):
    # F.kl_div(input, target) expects input = log q; passing q itself.
    terms = F.kl_div(q, p, reduction="none")
    return _student_reduce(terms.sum(dim) / math.log(base), reduction)


def _kl_div_mean(p, q, dim=-1, reduction="mean", base=math.e):
    # F.kl_div's reduction="mean" averages over outcomes too (not "batchmean").
    # (written with xlogy where F.kl_div would give NaN at p = q = 0)
    terms = (torch.xlogy(p, p) - torch.xlogy(p, q)) / math.log(base)
    return terms.mean() if reduction == "mean" else _student_reduce(terms.sum(dim), reduction)


def _kl_eps_in_log(p, q, dim=-1, reduction="mean", base=math.e):
    terms = p * (torch.log(p + 1e-8) - torch.log(q + 1e-8))
    return _student_reduce(terms.sum(dim) / math.log(base), reduction)


def _kl_unguarded(p, q, dim=-1, reduction="mean", base=math.e):
    terms = p * torch.log(p / q)
    return _student_reduce(terms.sum(dim) / math.log(base), reduction)


def _safe_xlogx(x):
    return torch.where(x > 0, x * torch.log(torch.where(x > 0, x, 1)), 0)


def _js_no_halves(p, q, dim=-1, reduction="mean", base=math.e):
    m = (p + q) / 2
    kl_pm = (_safe_xlogx(p) - torch.xlogy(p, m)).sum(dim)
    kl_qm = (_safe_xlogx(q) - torch.xlogy(q, m)).sum(dim)
    return _student_reduce((kl_pm + kl_qm) / math.log(base), reduction)


def _js_mixture_not_halved(p, q, dim=-1, reduction="mean", base=math.e):
    m = p + q
    kl_pm = (_safe_xlogx(p) - torch.xlogy(p, m)).sum(dim)
    kl_qm = (_safe_xlogx(q) - torch.xlogy(q, m)).sum(dim)
    return _student_reduce(0.5 * (kl_pm + kl_qm) / math.log(base), reduction)


def _js_jeffreys(p, q, dim=-1, reduction="mean", base=math.e):
    kl_pq = (_safe_xlogx(p) - torch.xlogy(p, q)).sum(dim)
    kl_qp = (_safe_xlogx(q) - torch.xlogy(q, p)).sum(dim)
    return _student_reduce(0.5 * (kl_pq + kl_qp) / math.log(base), reduction)


def _js_unguarded(p, q, dim=-1, reduction="mean", base=math.e):
    m = (p + q) / 2
    kl_pm = (p * torch.log(p / m)).sum(dim)
    kl_qm = (q * torch.log(q / m)).sum(dim)
    return _student_reduce(0.5 * (kl_pm + kl_qm) / math.log(base), reduction)


# ----------------------------------------------------------------------------- specs

_ZERO_NOTE = (
    "0 log 0 = 0: an outcome of probability 0 contributes nothing, and the gradient "
    "stays finite (no NaN)"
)

register(
    LossSpec(
        name="self_information",
        cases=(
            Case("random probabilities (8,)", _random_probs((8,))),
            Case("random probabilities (2, 3, 4)", _random_probs((2, 3, 4))),
            Case(
                "certain events (p = 1)",
                _certain,
                note="an event of probability 1 carries no information: I = 0 exactly",
            ),
            Case(
                "tiny probabilities (1e-30)",
                _tiny,
                note="-log p stays finite and accurate for tiny p (no log(p + eps) shortcut)",
            ),
            Case("bits (base=2)", _random_probs((6,), base=2)),
            Case("hartleys (base=10)", _random_probs((2, 5), base=10)),
            Case("empty input (0, 3)", _empty_probs),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _self_information_log2,
                "the default unit is the nat: use the natural logarithm torch.log and "
                "divide by log(base) only when another base is asked for.",
            ),
            Mistake(
                _self_information_no_minus,
                "self-information is -log p, which is >= 0: the minus sign is missing.",
            ),
            Mistake(
                _self_information_times_log_base,
                "change of base: log_b(p) = ln(p) / ln(b); divide by math.log(base), "
                "do not multiply.",
            ),
            Mistake(
                _self_information_inverse,
                "self-information is -log p, not 1/p: rarer events carry more information, "
                "but only logarithmically more.",
            ),
        ),
    )
)

register(
    LossSpec(
        name="entropy",
        cases=(
            Case("random distributions (8, 5)", _random((8, 5))),
            Case(
                "random distributions (2, 3, 4), reduction='none'",
                _random((2, 3, 4), reduction="none"),
            ),
            Case("a single distribution (6,)", _random((6,))),
            Case(
                "probabilities with exact zeros",
                lambda g, dtype: ((_with_zeros(g, dtype, _SUPPORT_P),), {"reduction": "none"}),
                grad="finite",
                note=_ZERO_NOTE,
            ),
            Case(
                "one-hot distributions",
                lambda g, dtype: ((_one_hot(g, dtype, 6, 4),), {"reduction": "none"}),
                grad="finite",
                note="a one-hot distribution has entropy 0, with finite gradients",
            ),
            Case(
                "near-uniform distributions",
                lambda g, dtype: ((_dist(g, dtype, (4, 6), scale=1e-2),), {"reduction": "none"}),
            ),
            Case(
                "distributions along dim=0",
                lambda g, dtype: ((_dist(g, dtype, (5, 3), dim=0),), {"dim": 0}),
                note="the outcomes lie along the dim argument, not always along the last dim",
            ),
            Case("reduction='sum'", _random((6, 4), reduction="sum")),
            Case("bits (base=2)", _random((5, 4), base=2)),
            Case("empty batch (0, 4)", lambda g, dtype: ((torch.empty(0, 4, dtype=dtype),), {})),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _entropy_unguarded,
                "p * log(p) is NaN at p = 0 (0 * -inf): by convention 0 log 0 = 0. Replace "
                "p by 1 inside the log where p == 0 (double torch.where) so that the value "
                "and the gradient stay finite.",
            ),
            Mistake(
                _entropy_log2,
                "the default unit is the nat: use torch.log (natural log), and divide by "
                "math.log(base) for another base.",
            ),
            Mistake(
                _entropy_always_sum,
                "reduction='mean' averages the per-distribution entropies; you summed them.",
            ),
            Mistake(
                _entropy_last_dim,
                "sum over the dimension given by dim, which is not always the last one.",
            ),
        ),
    )
)

_TWO_DIST_CASES = (
    Case("random distributions (8, 5)", _random_pair((8, 5))),
    Case(
        "random distributions (2, 3, 4), reduction='none'",
        _random_pair((2, 3, 4), reduction="none"),
    ),
    Case("probabilities with exact zeros", _zeros_pair, grad="finite", note=_ZERO_NOTE),
    Case(
        "one-hot p against a soft q",
        _one_hot_vs_soft,
        grad="finite",
        note="hard labels as p: the zeros of p contribute nothing",
    ),
    Case("identical p and q", _identical),
    Case(
        "near-uniform distributions",
        _near_uniform,
        note="small divergences between nearly equal distributions are computed accurately",
    ),
    Case(
        "distributions along dim=0",
        _random_pair((5, 3), dim=0),
        note="the outcomes lie along the dim argument, not always along the last dim",
    ),
    Case("reduction='sum'", _random_pair((6, 4), reduction="sum")),
    Case("bits (base=2)", _random_pair((5, 4), base=2)),
)

# Every case is finite; q = 0 < p (an infinite divergence) is tested in tests/ instead.
_TINY_Q = Case(
    "q tiny (1e-30) where p is positive",
    _tiny_q,
    note="no eps inside the log: the value really is large (about 35) where q is tiny",
)

register(
    LossSpec(
        name="cross_entropy_dist",
        cases=(*_TWO_DIST_CASES, _TINY_Q),
        grad_inputs=(0, 1),
        mistakes=(
            Mistake(
                _ce_swapped,
                "H(p, q) = -sum p log q: the first argument p weighs the log of the second, "
                "q. Your arguments are swapped.",
            ),
            Mistake(
                _ce_unguarded,
                "p * log(q) is NaN where p = q = 0 (0 * -inf): such an outcome contributes 0. "
                "Put a safe value inside the log where both are 0 (double torch.where).",
            ),
            Mistake(
                _ce_mean_over_outcomes,
                "sum over the outcomes of each distribution first, then average over the "
                "distributions; .mean() over every element also divides by the number of "
                "outcomes.",
            ),
            Mistake(
                _ce_log2,
                "the default unit is the nat: use the natural logarithm torch.log.",
            ),
            Mistake(
                _ce_eps_in_log,
                "log(q + eps) changes the value wherever q is small, where the cross-entropy "
                "really is large; guard only the 0 log 0 terms (double torch.where).",
            ),
        ),
    )
)

register(
    LossSpec(
        name="kl_divergence",
        cases=(*_TWO_DIST_CASES, _TINY_Q),
        grad_inputs=(0, 1),
        mistakes=(
            Mistake(
                _kl_swapped,
                "KL is not symmetric: kl_divergence(p, q) = sum p log(p / q); you computed "
                "KL(q || p).",
            ),
            Mistake(
                _kl_div_without_log,
                "F.kl_div(input, target) expects input = log q (log-probabilities) and "
                "target = p; you passed q itself. This function takes probabilities.",
            ),
            Mistake(
                _kl_div_mean,
                "F.kl_div(..., reduction='mean') averages over every element, outcomes "
                "included; the mean KL per distribution is its reduction='batchmean'.",
            ),
            Mistake(
                _kl_eps_in_log,
                "log(q + eps) changes the value wherever q is small, where the divergence "
                "really is large; guard only the 0 log 0 terms (double torch.where).",
            ),
            Mistake(
                _kl_unguarded,
                "p * log(p / q) is NaN where p = 0 (0 * log 0): such an outcome contributes "
                "0. Put a safe value inside the log where p == 0 (double torch.where).",
            ),
        ),
    )
)

register(
    LossSpec(
        name="js_divergence",
        cases=(
            *_TWO_DIST_CASES,
            Case(
                "one-hot p and q (disjoint or equal supports)",
                lambda g, dtype: (
                    (_one_hot(g, dtype, 6, 3), _one_hot(g, dtype, 6, 3)),
                    {"reduction": "none"},
                ),
                grad="finite",
                note="JS is log 2 for disjoint supports and 0 for equal ones, always finite",
            ),
        ),
        grad_inputs=(0, 1),
        mistakes=(
            Mistake(
                _js_no_halves,
                "JS = (KL(p || m) + KL(q || m)) / 2: you forgot the factor 1/2 (JS <= log 2).",
            ),
            Mistake(
                _js_mixture_not_halved,
                "the mixture is m = (p + q) / 2, a distribution; p + q sums to 2.",
            ),
            Mistake(
                _js_jeffreys,
                "(KL(p || q) + KL(q || p)) / 2 is the symmetrised KL (Jeffreys divergence), "
                "which is infinite for disjoint supports; JS compares each to the mixture "
                "m = (p + q) / 2.",
            ),
            Mistake(
                _js_unguarded,
                "p * log(p / m) is NaN where p = 0: such an outcome contributes 0. Use a safe "
                "x log x (double torch.where), as for the entropy.",
            ),
        ),
    )
)

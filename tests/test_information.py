"""Tests of the information-theory functions (``cvloss_ref/information.py``).

References: ``torch.distributions`` (entropy and KL of ``Categorical``),
``F.kl_div`` (which takes log q), SciPy's ``jensenshannon``, and brute-force loops
written from the definitions in this file.  Values and gradients are compared in
float64.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from scipy.spatial.distance import jensenshannon
from torch.autograd import gradcheck
from torch.distributions import Categorical
from torch.distributions import kl_divergence as torch_kl_divergence

from cvloss_ref import (
    cross_entropy_dist,
    entropy,
    js_divergence,
    kl_divergence,
    self_information,
)
from tests._tolerances import TOLERANCES

DISTRIBUTION_FUNCTIONS = [entropy, cross_entropy_dist, kl_divergence, js_divergence]
PAIR_FUNCTIONS = [cross_entropy_dist, kl_divergence, js_divergence]
REDUCTIONS = ["none", "mean", "sum"]
HALF_DTYPES = [torch.float16, torch.bfloat16]


# ----------------------------------------------------------------------------- helpers


def _dist(shape, generator, dim=-1, dtype=torch.float64, scale=1.0):
    logits = scale * torch.randn(shape, generator=generator, dtype=torch.float64)
    return torch.softmax(logits, dim).to(dtype)


def _with_zeros(generator):
    """Distributions (4, 5) with exact zeros; q is positive on p's support and more."""
    p_support = torch.tensor(
        [[1, 0, 1, 1, 0], [0, 1, 1, 0, 1], [1, 1, 0, 0, 0], [0, 0, 0, 1, 1]], dtype=torch.bool
    )
    q_support = p_support | torch.tensor(
        [[0, 1, 0, 0, 0], [1, 0, 0, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 0]], dtype=torch.bool
    )
    p = torch.rand(4, 5, generator=generator, dtype=torch.float64) + 0.1
    q = torch.rand(4, 5, generator=generator, dtype=torch.float64) + 0.1
    p = torch.where(p_support, p, 0.0)
    q = torch.where(q_support, q, 0.0)
    return p / p.sum(-1, keepdim=True), q / q.sum(-1, keepdim=True)


def _call(fn, p, q, **kwargs):
    return fn(p, **kwargs) if fn is entropy else fn(p, q, **kwargs)


def _unreduced(fn, p, q):
    """One value per element (self_information) or per distribution (the others)."""
    return fn(p) if fn is self_information else _call(fn, p, q, reduction="none")


def _rows(t, dim=-1):
    """The distributions of ``t`` as a list of lists of Python floats."""
    t = t.detach().movedim(dim, -1)
    return t.reshape(-1, t.shape[-1]).tolist()


def _brute_entropy(p, dim=-1):
    values = [-sum(x * math.log(x) for x in row if x > 0) for row in _rows(p, dim)]
    return torch.tensor(values, dtype=torch.float64)


def _brute_cross_entropy(p, q, dim=-1):
    values = []
    for p_row, q_row in zip(_rows(p, dim), _rows(q, dim)):
        total = 0.0
        for p_i, q_i in zip(p_row, q_row):
            if p_i > 0:
                total += math.inf if q_i == 0 else -p_i * math.log(q_i)
        values.append(total)
    return torch.tensor(values, dtype=torch.float64)


def _brute_kl(p, q, dim=-1):
    values = []
    for p_row, q_row in zip(_rows(p, dim), _rows(q, dim)):
        total = 0.0
        for p_i, q_i in zip(p_row, q_row):
            if p_i > 0:
                total += math.inf if q_i == 0 else p_i * math.log(p_i / q_i)
        values.append(total)
    return torch.tensor(values, dtype=torch.float64)


def _brute_js(p, q, dim=-1):
    m = (p + q) / 2
    return 0.5 * _brute_kl(p, m, dim) + 0.5 * _brute_kl(q, m, dim)


def _grads(fn, p, q, **kwargs):
    """Gradients of ``fn(...).sum()`` with respect to ``p`` (and ``q``)."""
    p = p.clone().requires_grad_(True)
    q = q.clone().requires_grad_(True)
    out = _call(fn, p, q, **kwargs)
    inputs = (p,) if fn is entropy else (p, q)
    return torch.autograd.grad(out.sum(), inputs)


# ----------------------------------------------------------------------------- self_information


@pytest.mark.parametrize("base", [math.e, 2, 10])
def test_self_information_value_same_as_brute_force(generator, base):
    p = torch.rand(3, 4, generator=generator, dtype=torch.float64) * 0.99 + 0.01
    expected = torch.tensor([-math.log(x) / math.log(base) for x in p.flatten().tolist()])
    torch.testing.assert_close(self_information(p, base), expected.reshape(3, 4).double())


@pytest.mark.parametrize("base", [math.e, 2])
def test_self_information_gradient_same_as_formula(generator, base):
    p = (torch.rand(6, generator=generator, dtype=torch.float64) + 0.01).requires_grad_(True)
    self_information(p, base).sum().backward()
    torch.testing.assert_close(p.grad, -1 / (p.detach() * math.log(base)))


def test_self_information_is_zero_for_certain_and_infinite_for_impossible_events():
    info = self_information(torch.tensor([1.0, 0.0]))
    assert info[0].item() == 0.0 and not info[0].signbit()
    assert info[1].item() == math.inf


def test_self_information_is_finite_for_tiny_probabilities():
    p = torch.tensor([1e-30, 1e-38], requires_grad=True)
    info = self_information(p)
    info.sum().backward()
    torch.testing.assert_close(info, torch.tensor([30 * math.log(10), 38 * math.log(10)]))
    assert torch.isfinite(p.grad).all()


# ----------------------------------------------------------------------------- entropy


@pytest.mark.parametrize("shape", [(8, 5), (2, 3, 4), (7,)])
def test_entropy_value_same_as_categorical(generator, shape):
    p = _dist(shape, generator)
    expected = Categorical(probs=p).entropy()
    torch.testing.assert_close(entropy(p, reduction="none"), expected)


def test_entropy_value_same_as_brute_force_with_zeros(generator):
    p, _ = _with_zeros(generator)
    torch.testing.assert_close(entropy(p, reduction="none"), _brute_entropy(p))


def test_entropy_gradient_same_as_formula(generator):
    p, _ = _with_zeros(generator)
    (grad,) = _grads(entropy, p, p, reduction="sum")
    # dH/dp_i = -(log p_i + 1) where p_i > 0; 0 at p_i = 0 by convention.
    expected = torch.where(p > 0, -(torch.log(torch.where(p > 0, p, 1.0)) + 1), 0.0)
    torch.testing.assert_close(grad, expected)


def test_entropy_of_uniform_is_log_k_and_of_one_hot_is_zero():
    uniform = torch.full((3, 8), 1 / 8, dtype=torch.float64)
    one_hot = F.one_hot(torch.tensor([0, 3, 7]), 8).double()
    torch.testing.assert_close(
        entropy(uniform, reduction="none"), torch.full((3,), math.log(8), dtype=torch.float64)
    )
    assert torch.equal(entropy(one_hot, reduction="none"), torch.zeros(3, dtype=torch.float64))


# ----------------------------------------------------------------------------- cross-entropy


def test_cross_entropy_dist_value_same_as_brute_force(generator):
    p, q = _dist((6, 5), generator), _dist((6, 5), generator)
    torch.testing.assert_close(
        cross_entropy_dist(p, q, reduction="none"), _brute_cross_entropy(p, q)
    )
    p, q = _with_zeros(generator)
    torch.testing.assert_close(
        cross_entropy_dist(p, q, reduction="none"), _brute_cross_entropy(p, q)
    )


def test_cross_entropy_dist_gradient_same_as_formula(generator):
    p, q = _with_zeros(generator)
    grad_p, grad_q = _grads(cross_entropy_dist, p, q, reduction="sum")
    # dH/dp_i = -log q_i (exact, also at p_i = 0 < q_i), 0 where p_i = q_i = 0;
    # dH/dq_i = -p_i / q_i, 0 where q_i = 0 (and then p_i = 0).
    safe_q = torch.where(q > 0, q, 1.0)
    torch.testing.assert_close(grad_p, -torch.log(safe_q))
    torch.testing.assert_close(grad_q, torch.where(q > 0, -p / safe_q, 0.0))


def test_cross_entropy_dist_equals_entropy_plus_kl(generator):
    p, q = _dist((5, 4), generator), _dist((5, 4), generator)
    torch.testing.assert_close(
        cross_entropy_dist(p, q, reduction="none"),
        entropy(p, reduction="none") + kl_divergence(p, q, reduction="none"),
    )


def test_cross_entropy_dist_same_as_f_cross_entropy_with_log_probs_and_soft_targets(generator):
    p, q = _dist((6, 5), generator), _dist((6, 5), generator)
    expected = F.cross_entropy(q.log(), p)  # log q as logits: log_softmax(log q) = log q
    torch.testing.assert_close(cross_entropy_dist(p, q), expected)


# ----------------------------------------------------------------------------- KL


@pytest.mark.parametrize("shape", [(8, 5), (2, 3, 4)])
def test_kl_divergence_value_same_as_torch_distributions(generator, shape):
    p, q = _dist(shape, generator), _dist(shape, generator)
    expected = torch_kl_divergence(Categorical(probs=p), Categorical(probs=q))
    torch.testing.assert_close(kl_divergence(p, q, reduction="none"), expected)


def test_kl_divergence_value_and_gradient_same_as_f_kl_div(generator):
    p, q = _dist((6, 5), generator), _dist((6, 5), generator)
    p1, q1 = p.clone().requires_grad_(True), q.clone().requires_grad_(True)
    p2, q2 = p.clone().requires_grad_(True), q.clone().requires_grad_(True)
    ours = kl_divergence(p1, q1, reduction="none")
    theirs = F.kl_div(q2.log(), p2, reduction="none").sum(-1)
    torch.testing.assert_close(ours, theirs)
    cotangent = torch.randn(ours.shape, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(
        torch.autograd.grad(ours, (p1, q1), cotangent),
        torch.autograd.grad(theirs, (p2, q2), cotangent),
    )


def test_kl_divergence_mean_is_f_kl_div_batchmean(generator):
    p, q = _dist((6, 5), generator), _dist((6, 5), generator)
    expected = F.kl_div(q.log(), p, reduction="batchmean")
    torch.testing.assert_close(kl_divergence(p, q), expected)


def test_kl_divergence_value_same_as_brute_force_with_zeros(generator):
    p, q = _with_zeros(generator)
    torch.testing.assert_close(kl_divergence(p, q, reduction="none"), _brute_kl(p, q))


def test_kl_divergence_gradient_at_zero_p_is_minus_log_q(generator):
    p, q = _with_zeros(generator)
    grad_p, grad_q = _grads(kl_divergence, p, q, reduction="sum")
    safe_p = torch.where(p > 0, p, 1.0)
    safe_q = torch.where(q > 0, q, 1.0)
    # log p_i + 1 - log q_i where p_i > 0; the p log p term adds 0 at p_i = 0.
    expected_p = torch.where(p > 0, torch.log(safe_p) + 1, 0.0) - torch.log(safe_q)
    torch.testing.assert_close(grad_p, expected_p)
    torch.testing.assert_close(grad_q, torch.where(q > 0, -p / safe_q, 0.0))


def test_kl_divergence_is_infinite_where_q_rules_out_p():
    p = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], dtype=torch.float64)
    q = torch.tensor([[1.0, 0.0, 0.0], [0.3, 0.3, 0.4]], dtype=torch.float64)
    kl = kl_divergence(p, q, reduction="none")
    assert kl[0].item() == math.inf
    torch.testing.assert_close(kl[1], _brute_kl(p[1:], q[1:])[0])
    assert cross_entropy_dist(p, q, reduction="none")[0].item() == math.inf


def test_kl_divergence_is_zero_for_identical_distributions_and_not_symmetric(generator):
    p, q = _dist((5, 4), generator), _dist((5, 4), generator)
    torch.testing.assert_close(kl_divergence(p, p, reduction="none"), torch.zeros(5).double())
    assert not torch.allclose(kl_divergence(p, q), kl_divergence(q, p))


# ----------------------------------------------------------------------------- JS


def test_js_divergence_value_same_as_scipy(generator):
    p, q = _dist((6, 5), generator), _dist((6, 5), generator)
    expected = torch.tensor(
        [jensenshannon(a, b) ** 2 for a, b in zip(p.tolist(), q.tolist())], dtype=torch.float64
    )
    torch.testing.assert_close(js_divergence(p, q, reduction="none"), expected)


def test_js_divergence_value_same_as_brute_force_with_zeros(generator):
    p, q = _with_zeros(generator)
    torch.testing.assert_close(js_divergence(p, q, reduction="none"), _brute_js(p, q))


def test_js_divergence_gradient_same_as_formula(generator):
    p, q = _with_zeros(generator)
    grad_p, grad_q = _grads(js_divergence, p, q, reduction="sum")
    m = (p + q) / 2
    safe_m = torch.where(m > 0, m, 1.0)
    for x, grad in ((p, grad_p), (q, grad_q)):
        safe_x = torch.where(x > 0, x, 1.0)
        # 1/2 log(x_i / m_i) where x_i > 0; -1/2 (log m_i + 1) at x_i = 0 < m_i; 0 if m_i = 0.
        expected = torch.where(
            x > 0,
            0.5 * (torch.log(safe_x) - torch.log(safe_m)),
            torch.where(m > 0, -0.5 * (torch.log(safe_m) + 1), 0.0),
        )
        torch.testing.assert_close(grad, expected)


def test_js_divergence_is_log2_with_finite_gradient_for_disjoint_supports():
    p = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]], dtype=torch.float64, requires_grad=True)
    q = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64, requires_grad=True)
    js = js_divergence(p, q, reduction="none")
    torch.testing.assert_close(js, torch.full((2,), math.log(2), dtype=torch.float64))
    js.sum().backward()
    assert torch.isfinite(p.grad).all() and torch.isfinite(q.grad).all()
    torch.testing.assert_close(js_divergence(p, q, base=2), torch.tensor(1.0).double())


def test_js_divergence_is_symmetric_and_bounded(generator):
    p, q = _dist((20, 6), generator, scale=4.0), _dist((20, 6), generator, scale=4.0)
    js = js_divergence(p, q, reduction="none")
    torch.testing.assert_close(js, js_divergence(q, p, reduction="none"))
    assert bool((js >= 0).all()) and bool((js <= math.log(2)).all())


# ----------------------------------------------------------------------------- all functions


@pytest.mark.parametrize("fn", DISTRIBUTION_FUNCTIONS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_shape_and_reduction(generator, fn, reduction):
    p, q = _dist((2, 3, 4), generator), _dist((2, 3, 4), generator)
    out = _call(fn, p, q, reduction=reduction)
    per_distribution = _call(fn, p, q, reduction="none")
    assert per_distribution.shape == (2, 3)
    expected = {
        "none": per_distribution,
        "mean": per_distribution.mean(),
        "sum": per_distribution.sum(),
    }[reduction]
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("fn", DISTRIBUTION_FUNCTIONS)
def test_dim_argument_same_as_moving_dim_last(generator, fn):
    p, q = _dist((2, 4, 3), generator, dim=1), _dist((2, 4, 3), generator, dim=1)
    out = _call(fn, p, q, dim=1, reduction="none")
    assert out.shape == (2, 3)
    expected = _call(fn, p.movedim(1, -1), q.movedim(1, -1), reduction="none")
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(_call(fn, p, q, dim=-2, reduction="none"), expected)


@pytest.mark.parametrize("fn", DISTRIBUTION_FUNCTIONS)
@pytest.mark.parametrize("base", [2, 10])
def test_base_divides_nats_by_log_base(generator, fn, base):
    p, q = _dist((4, 5), generator), _dist((4, 5), generator)
    torch.testing.assert_close(
        _call(fn, p, q, base=base), _call(fn, p, q) / math.log(base), rtol=1e-12, atol=0
    )


@pytest.mark.parametrize("fn", DISTRIBUTION_FUNCTIONS)
def test_numeric_stability_zero_probabilities_give_finite_values_and_gradients(generator, fn):
    p, q = _with_zeros(generator)
    one_hot = F.one_hot(torch.tensor([0, 2, 2, 4]), 5).double()  # inside q's support
    for a, b in ((p, q), (one_hot, one_hot), (one_hot, q), (p, p)):
        out = _call(fn, a, b, reduction="none")
        assert torch.isfinite(out).all(), fn.__name__
        for grad in _grads(fn, a, b, reduction="sum"):
            assert torch.isfinite(grad).all(), fn.__name__


@pytest.mark.parametrize("fn", DISTRIBUTION_FUNCTIONS)
def test_numeric_stability_tiny_probabilities(fn):
    p = torch.tensor([[1e-300, 1 - 1e-300], [0.5, 0.5]], dtype=torch.float64)
    q = torch.tensor([[0.5, 0.5], [1e-300, 1 - 1e-300]], dtype=torch.float64)
    out = _call(fn, p, q, reduction="none")
    assert torch.isfinite(out).all()
    for grad in _grads(fn, p, q, reduction="sum"):
        assert torch.isfinite(grad).all()


@pytest.mark.parametrize("fn", DISTRIBUTION_FUNCTIONS)
def test_identical_distributions(generator, fn):
    p = _dist((5, 4), generator)
    out = _call(fn, p, p.clone(), reduction="none")
    expected = _brute_entropy(p) if fn in (entropy, cross_entropy_dist) else torch.zeros(5).double()
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("fn", DISTRIBUTION_FUNCTIONS)
def test_empty_batch_mean_is_zero_with_gradient(fn):
    p = torch.empty(0, 4, dtype=torch.float64, requires_grad=True)
    q = torch.empty(0, 4, dtype=torch.float64, requires_grad=True)
    out = _call(fn, p, q)
    assert out.item() == 0.0
    out.backward()
    assert p.grad.shape == (0, 4)


@pytest.mark.parametrize("fn", [self_information, *DISTRIBUTION_FUNCTIONS])
@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_half_precision_returns_input_dtype_close_to_float32(generator, fn, dtype):
    p, q = _dist((6, 5), generator, dtype=dtype), _dist((6, 5), generator, dtype=dtype)
    out = _unreduced(fn, p, q)
    assert out.dtype == dtype
    expected = _unreduced(fn, p.float(), q.float())
    torch.testing.assert_close(out.float(), expected, **TOLERANCES[dtype])


@pytest.mark.parametrize("fn", [self_information, *DISTRIBUTION_FUNCTIONS])
def test_meta_tensors(fn):
    p, q = torch.rand(4, 3, device="meta"), torch.rand(4, 3, device="meta")
    out = _unreduced(fn, p, q)
    assert out.device.type == "meta"
    assert out.shape == ((4, 3) if fn is self_information else (4,))


@pytest.mark.parametrize("fn", DISTRIBUTION_FUNCTIONS)
def test_device_result_same_as_cpu(generator, device, fn):
    p, q = _dist((4, 5), generator), _dist((4, 5), generator)
    out = _call(fn, p.to(device), q.to(device), reduction="none")
    assert out.device == p.to(device).device
    torch.testing.assert_close(out.cpu(), _call(fn, p, q, reduction="none"))


@pytest.mark.parametrize("fn", [self_information, *DISTRIBUTION_FUNCTIONS])
def test_gradcheck(generator, fn):
    # Away from zero, where every function is smooth (gradcheck perturbs by 1e-6).
    p = _dist((3, 4), generator).requires_grad_(True)
    q = _dist((3, 4), generator).requires_grad_(True)
    if fn is self_information:
        assert gradcheck(lambda x: fn(x, 2), (p,))
    elif fn is entropy:
        assert gradcheck(lambda x: fn(x, reduction="none"), (p,))
    else:
        assert gradcheck(lambda a, b: fn(a, b, reduction="none"), (p, q))


def test_mixed_dtypes_are_promoted(generator):
    p, q = _dist((3, 4), generator, dtype=torch.float32), _dist((3, 4), generator)
    assert kl_divergence(p, q).dtype == torch.float64


# ----------------------------------------------------------------------------- invalid input


@pytest.mark.parametrize("fn", DISTRIBUTION_FUNCTIONS)
def test_invalid_p_type(fn):
    with pytest.raises(TypeError, match=r"p must be a torch\.Tensor, got list"):
        _call(fn, [0.5, 0.5], torch.tensor([0.5, 0.5]))


@pytest.mark.parametrize("fn", [self_information, *DISTRIBUTION_FUNCTIONS])
def test_invalid_dtype(fn):
    p = torch.tensor([[1, 0]])
    with pytest.raises(
        TypeError, match=r"p must be a floating-point tensor .* got dtype torch\.int64"
    ):
        fn(p) if fn is self_information else _call(fn, p, p)


@pytest.mark.parametrize("fn", PAIR_FUNCTIONS)
def test_invalid_q_type(fn):
    with pytest.raises(
        TypeError, match=r"q must be a floating-point tensor .* got dtype torch\.int64"
    ):
        fn(torch.tensor([0.5, 0.5]), torch.tensor([1, 0]))


@pytest.mark.parametrize("fn", PAIR_FUNCTIONS)
def test_invalid_shape(fn):
    p, q = torch.full((4, 3), 1 / 3), torch.full((4, 2), 1 / 2)
    with pytest.raises(ValueError, match=r"q must have the same shape as p \(4, 3\), got \(4, 2\)"):
        fn(p, q)


@pytest.mark.parametrize("fn", DISTRIBUTION_FUNCTIONS)
def test_invalid_scalar_p(fn):
    p = torch.tensor(1.0)
    with pytest.raises(ValueError, match=r"p must have at least 1 dimension.*got shape \(\)"):
        _call(fn, p, p)


@pytest.mark.parametrize("fn", DISTRIBUTION_FUNCTIONS)
def test_invalid_dim(fn):
    p = torch.full((4, 3), 1 / 3)
    with pytest.raises(
        ValueError, match=r"dim must be in \[-2, 1\] for p of shape \(4, 3\), got 2"
    ):
        _call(fn, p, p, dim=2)


@pytest.mark.parametrize("fn", DISTRIBUTION_FUNCTIONS)
def test_invalid_reduction(fn):
    p = torch.full((4, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"reduction must be one of .* got 'batchmean'"):
        _call(fn, p, p, reduction="batchmean")


@pytest.mark.parametrize("fn", [self_information, *DISTRIBUTION_FUNCTIONS])
@pytest.mark.parametrize(("base", "message"), [(1, "got 1"), (-2.0, "got -2.0"), (0, "got 0")])
def test_invalid_base(fn, base, message):
    p = torch.full((4, 3), 1 / 3)
    with pytest.raises(ValueError, match=f"base must be .*{message}"):
        fn(p, base) if fn is self_information else _call(fn, p, p, base=base)


@pytest.mark.parametrize("fn", PAIR_FUNCTIONS)
def test_invalid_device(fn):
    p = torch.full((4, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"q must be on the same device as p \(cpu\), got meta"):
        fn(p, p.to("meta"))


@pytest.mark.parametrize("fn", DISTRIBUTION_FUNCTIONS)
def test_invalid_probabilities_with_validate(fn):
    p = torch.tensor([[1.1, -0.1], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"p must hold probabilities in \[0, 1\], got values in"):
        _call(fn, p, torch.full((2, 2), 0.5), validate=True)
    _call(fn, p, torch.full((2, 2), 0.5))  # no value checks without validate


@pytest.mark.parametrize("fn", PAIR_FUNCTIONS)
def test_invalid_sums_with_validate(fn):
    p = torch.full((3, 2), 0.5)
    q = torch.tensor([[0.5, 0.5], [0.2, 0.2], [0.5, 0.5]])
    with pytest.raises(
        ValueError, match=r"q must sum to 1 along dim=1, got sums off by up to 0\.6"
    ):
        fn(p, q, validate=True)


def test_self_information_invalid_probabilities_with_validate():
    with pytest.raises(ValueError, match=r"p must hold probabilities in \[0, 1\]"):
        self_information(torch.tensor([0.5, 2.0]), validate=True)

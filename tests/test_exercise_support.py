"""What the exercise notebooks import from the package: ``cvloss_ref.testing.CallGuard`` and
``assert_outputs_match`` (the check of functions that are not catalogue losses) and the case
builders of ``cvloss_ref.exercises`` (NMS clusters, U-Net masks, line fits, mining batches).

The expected values come from elsewhere: torchvision's NMS and IoU, NumPy's least squares,
SciPy's minimiser, and hand computations written here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from scipy.optimize import minimize

import cvloss_ref
from cvloss_ref import exercises
from cvloss_ref.testing import CallGuard, assert_outputs_match

CASES = [("a vector", (torch.tensor([1.0, -2.0, 3.0]),), {}), ("empty", (torch.zeros(0),), {})]


def doubled(x):
    """The toy reference of these tests."""
    return 2 * x


def _fails(fn, *, cases=CASES, reference=doubled, **options) -> str:
    """The message with which assert_outputs_match rejects ``fn``."""
    with pytest.raises(AssertionError) as info:
        assert_outputs_match(fn, "doubled", cases, reference=reference, **options)
    return str(info.value)


# ----------------------------------------------------------------------- CallGuard


def test_call_guard_sees_forbidden_functions_however_they_are_called():
    guard = CallGuard(forbid=[F.mse_loss, torch.logsumexp, "torch.cdist"])
    x = torch.rand(3, 2)
    guard.call(lambda a: a.logsumexp(0), x)  # the method of a forbidden function
    guard.call(lambda a: torch.nn.functional.mse_loss(a, a), x)
    guard.call(lambda a: torch.cdist(a, a), x)
    assert len(guard.hits) == 3
    assert "torch.nn.functional.mse_loss" in guard.hits and "torch.cdist" in guard.hits


def test_call_guard_always_forbids_the_reference_and_lets_other_calls_through():
    guard = CallGuard(cvloss_ref.mse_loss)
    x = torch.rand(4)
    assert guard.call(lambda a: (a - 1).abs().sum(), x) == (x - 1).abs().sum()
    assert guard.hits == []
    guard.call(cvloss_ref.mse_loss, x, x)
    assert guard.hits == ["the reference cvloss_ref.mse_loss itself (write your own)"]


def test_call_guard_keeps_its_former_private_name():
    from cvloss_ref import testing

    assert testing._Guard is CallGuard
    assert {"CallGuard", "assert_outputs_match"} <= set(testing.__all__)


# ----------------------------------------------------------------------- assert_outputs_match


def test_outputs_match_accepts_an_independent_implementation():
    assert_outputs_match(lambda x: x + x, "doubled", CASES, reference=doubled)


def test_outputs_match_defaults_to_the_cvloss_ref_function_of_that_name():
    """Plain NMS (distance_penalty=False) is torchvision's NMS, an independent implementation."""
    _, (boxes, scores), kwargs = exercises.nms_cases(0)[2]
    assert kwargs == {"iou_threshold": 0.45, "distance_penalty": False}

    def plain_nms(boxes, scores, iou_threshold=0.5, *, distance_penalty=True, **_):
        return torchvision.ops.nms(boxes, scores, iou_threshold)

    assert_outputs_match(plain_nms, "diou_nms", [("plain NMS", (boxes, scores), kwargs)])


def test_outputs_match_names_the_case_and_shows_both_values():
    message = _fails(lambda x: 3 * x)
    assert 'doubled does not match the reference on case "a vector"' in message
    assert "expected [2.0, -4.0, 6.0]" in message and "received [3.0, -6.0, 9.0]" in message


def test_outputs_match_uses_the_tolerances_for_floats_and_exact_equality_otherwise():
    assert_outputs_match(lambda x: 2 * x + 1e-7, "doubled", CASES, reference=doubled)
    _fails(lambda x: 2 * x + 1e-3)
    assert_outputs_match(lambda x: 2 * x + 1e-3, "doubled", CASES, reference=doubled, atol=1e-2)
    integers = [("integers", (torch.tensor([1, 2]),), {})]
    assert "received [2, 5]" in _fails(lambda x: x + torch.tensor([1, 3]), cases=integers)


def test_outputs_match_checks_shape_and_dtype():
    assert "expected shape (3,), got (1, 3)" in _fails(lambda x: (2 * x)[None])
    assert "expected dtype torch.float32, got torch.float64" in _fails(lambda x: 2 * x.double())
    assert_outputs_match(
        lambda x: 2 * x.double(), "doubled", CASES, reference=doubled, check_dtype=False
    )
    assert "expected a tensor, got list" in _fails(lambda x: (2 * x).tolist())


def test_outputs_match_reports_an_exception_as_a_failure_of_the_case():
    def broken(x):
        raise NotImplementedError()

    assert 'doubled raised NotImplementedError on case "a vector"' in _fails(broken)


def test_outputs_match_rejects_a_function_that_changes_its_input():
    def in_place(x):
        return x.mul_(2)

    assert "changed one of its inputs" in _fails(in_place)


def test_outputs_match_rejects_forbidden_calls_and_the_reference():
    message = _fails(lambda x: torch.mul(x, 2), forbid=[torch.mul])
    assert "which this exercise does not allow" in message
    assert "itself (write your own)" in _fails(lambda x: doubled(x))


def test_outputs_match_compares_each_tensor_of_a_tuple():
    def split(x):
        return x.clone(), 2 * x

    def wrong(x):
        return x.clone(), 3 * x

    assert_outputs_match(lambda x: (x + 0, x + x), "split", CASES, reference=split)
    with pytest.raises(AssertionError, match="expected output 1 = "):
        assert_outputs_match(wrong, "split", CASES, reference=split)
    with pytest.raises(AssertionError, match="expected a tuple of 2 tensors, got tuple of 1"):
        assert_outputs_match(lambda x: (x,), "split", CASES, reference=split)


def test_outputs_match_bounds_the_largest_tensor_created():
    cases = [("64 values", (torch.rand(64, dtype=torch.float64),), {})]

    def lean(x):
        return x.sum()

    def wasteful(x):  # a (64, 64, 64) float64 tensor: 2 MiB
        return (x[:, None, None] * x[None, :, None] * x[None, None, :]).sum() * 0 + x.sum()

    options = {"reference": lambda x: x.sum(), "max_bytes": 64 * 64 * 8}
    assert_outputs_match(lean, "total", cases, **options)
    with pytest.raises(AssertionError, match=r"created a tensor of 2 MiB .*at most 32 KiB"):
        assert_outputs_match(wasteful, "total", cases, **options)


# ----------------------------------------------------------------------- case builders


@pytest.mark.parametrize(
    "build",
    [
        exercises.line_cases,
        exercises.nms_cases,
        exercises.weight_map_cases,
        exercises.mining_cases,
        exercises.reduce_cases,
        exercises.gradient_cases,
        lambda seed: [("batch", exercises.mining_batch(seed, 9), {})],
        lambda seed: [("line", exercises.line_data(seed), {})],
    ],
)
def test_builders_are_reproducible_and_leave_the_global_random_state_alone(build):
    state = torch.get_rng_state()
    first, again, other = build(3), build(3), build(4)
    assert torch.equal(torch.get_rng_state(), state)

    def tensors(cases):
        return [t for _, args, _ in cases for t in args if isinstance(t, torch.Tensor)]

    assert [d for d, _, _ in first] == [d for d, _, _ in again]
    assert all(torch.equal(a, b) for a, b in zip(tensors(first), tensors(again)))
    assert any(not torch.equal(a, b) for a, b in zip(tensors(first), tensors(other)))


def test_line_data_moves_exactly_the_outliers_far_from_the_line():
    x, y = exercises.line_data(seed=5, n=40, outliers=4)
    assert torch.equal(x, torch.linspace(-1, 1, 40, dtype=torch.float64))
    residual = y - (2 * x + 1)
    far = residual > 10
    assert int(far.sum()) == 4 and bool((residual[far] >= 14).all())
    assert bool((far.nonzero() >= 30).all())  # among the rightmost quarter
    assert bool((residual[~far].abs() < 0.5).all())


def test_exact_line_fit_is_least_squares_for_mse():
    x, y = exercises.line_data(seed=2, outliers=3)
    slope, intercept = np.polyfit(x.numpy(), y.numpy(), 1)
    fit = exercises.exact_line_fit(x, y, "mse")
    assert fit.tolist() == pytest.approx([slope, intercept], abs=1e-10)


@pytest.mark.parametrize("delta", [0.5, 1.0, 2.0])
def test_exact_line_fit_minimises_the_mean_huber_loss(delta):
    x, y = exercises.line_data(seed=1, outliers=4)

    def mean_huber(params):
        error = np.abs(params[0] * x.numpy() + params[1] - y.numpy())
        return np.mean(np.where(error <= delta, 0.5 * error**2, delta * (error - 0.5 * delta)))

    best = minimize(mean_huber, x0=[0.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-10})
    fit = exercises.exact_line_fit(x, y, "huber", delta=delta)
    assert fit.tolist() == pytest.approx(best.x.tolist(), abs=1e-5)
    assert mean_huber(fit.numpy()) <= best.fun + 1e-12


def test_line_cases_fit_mse_and_huber_on_each_data_set():
    cases = exercises.line_cases(7)
    assert [args[2] for _, args, _ in cases] == ["mse", "huber", "mse", "huber"]
    for _, (x, y, _), kwargs in cases:
        assert x.shape == y.shape == (48,)
        assert 0.5 <= kwargs.get("delta", 1.0) <= 2.0


def test_nms_example_descriptions_say_what_happens():
    """The first example's DIoU, computed by hand: IoU 70/130, rho^2 = 3^2, c^2 = 13^2 + 10^2."""
    description, (boxes, _), kwargs = exercises.nms_examples()[0]
    iou = torchvision.ops.box_iou(boxes[:1], boxes[1:])[0, 0]
    assert float(iou) == pytest.approx(70 / 130)
    assert 70 / 130 - 9 / 269 == pytest.approx(0.505, abs=5e-4) and "DIoU 0.505" in description
    assert 70 / 130 > kwargs["iou_threshold"] > 70 / 130 - 9 / 269  # plain NMS suppresses
    *_, (last, (empty, no_scores), _) = exercises.nms_examples()
    assert last == "no boxes" and empty.shape == (0, 4) and no_scores.shape == (0,)


def test_nms_cases_hold_overlapping_clusters_that_nms_thins_out():
    for description, (boxes, scores), kwargs in exercises.nms_cases(11):
        assert boxes.shape == (15, 4) and scores.shape == (15,)
        xyxy = torchvision.ops.box_convert(boxes, kwargs.get("box_format", "xyxy"), "xyxy")
        assert bool((xyxy[:, 2:] > xyxy[:, :2]).all())
        kept = torchvision.ops.nms(xyxy, scores, kwargs["iou_threshold"])
        assert 3 <= len(kept) < 15, description  # something is suppressed, not everything


def test_weight_map_builders_give_instance_masks():
    examples = exercises.weight_map_examples()
    assert len(examples) == 8
    for description, (mask,), kwargs in examples + exercises.weight_map_cases(0):
        assert mask.dtype == torch.int64 and mask.dim() in (2, 3), description
        assert int(mask.min()) >= 0
        assert set(kwargs) <= {"w0", "sigma", "class_weights"}
    for _, (mask,), kwargs in exercises.weight_map_cases(0):
        assert mask.shape[-2:] == (14, 16)
        assert set(mask.unique().tolist()) - {0} <= {3, 6, 9, 12, 15}
        assert 5 <= kwargs["w0"] <= 15 and 1.5 <= kwargs["sigma"] <= 5.5


def test_mining_batches_are_clustered_by_label():
    embeddings, labels = exercises.mining_batch(0, 400, dim=4, classes=4)
    assert embeddings.shape == (400, 4) and embeddings.dtype == torch.float64
    assert labels.dtype == torch.int64 and set(labels.tolist()) == {0, 1, 2, 3}
    centres = torch.stack([embeddings[labels == k].mean(0) for k in range(4)])
    spread = (embeddings - centres[labels]).norm(dim=1).mean()
    assert float(torch.pdist(centres).min()) > 0.5 * float(spread)


def test_mining_cases_alternate_hard_and_semihard():
    cases = exercises.mining_cases(5)
    assert [kwargs["strategy"] for _, _, kwargs in cases] == ["hard", "semihard"] * 4
    assert [len(args[1]) for _, args, _ in cases[::2]] == [10, 24, 40, 33]
    assert all(0.1 <= kwargs["margin"] <= 2.1 for _, _, kwargs in cases[1::2])


# ------------------------------------------------ weighted_reduce, central_difference


def test_weighted_reduce_is_the_normalisation_of_a_class_weighted_nll_loss():
    """The weighted mean divides by the sum of the weights, as PyTorch's class-weighted
    NLL loss does (ignored targets counting nowhere); unweighted, it is the plain mean."""
    g = torch.Generator().manual_seed(0)
    log_probs = torch.log_softmax(torch.randn(9, 4, generator=g, dtype=torch.float64), 1)
    target = torch.tensor([0, 3, 1, 1, 2, 0, 3, 2, 1])
    weight = torch.tensor([0.5, 2.0, 0.0, 1.5], dtype=torch.float64)
    per_example = -log_probs[torch.arange(9), target]
    expected = F.nll_loss(log_probs, target, weight=weight)
    got = exercises.weighted_reduce(per_example, "mean", weight[target])
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(exercises.weighted_reduce(per_example), per_example.mean())
    torch.testing.assert_close(
        exercises.weighted_reduce(per_example, "sum", weight[target]),
        F.nll_loss(log_probs, target, weight=weight, reduction="sum"),
    )
    torch.testing.assert_close(
        exercises.weighted_reduce(per_example, "none", weight[target]),
        F.nll_loss(log_probs, target, weight=weight, reduction="none"),
    )


def test_weighted_reduce_is_zero_with_a_zero_gradient_where_the_mean_is_zero_over_zero():
    values = torch.rand(5, dtype=torch.float64, requires_grad=True)
    assert torch.isnan((values * 0).sum() / torch.zeros(5, dtype=torch.float64).sum())
    mean = exercises.weighted_reduce(values, "mean", torch.zeros(5, dtype=torch.float64))
    (grad,) = torch.autograd.grad(mean, values)
    assert mean.item() == 0 and torch.equal(grad, torch.zeros(5, dtype=torch.float64))
    empty = torch.zeros(0, 3, dtype=torch.float32)
    assert torch.isnan(empty.mean())
    result = exercises.weighted_reduce(empty)
    assert result.item() == 0 and result.dtype == torch.float32 and result.shape == ()
    with pytest.raises(ValueError, match="reduction must be"):
        exercises.weighted_reduce(values, "avg")


def test_reduce_examples_include_the_zero_denominators_and_each_reduction():
    cases = exercises.reduce_examples() + exercises.reduce_cases(5)
    reductions = {args[1] if len(args) > 1 else "mean" for _, args, _ in cases}
    assert reductions == {"none", "mean", "sum"}
    zero = [
        description
        for description, args, kwargs in cases
        if (args[1] if len(args) > 1 else "mean") == "mean"
        and exercises.weighted_reduce(*args, **kwargs).item() == 0
    ]
    assert len(zero) >= 3  # empty batches and weights that are all 0


def test_central_difference_is_the_difference_quotient_not_the_derivative():
    """For f = sum(x^3) the central difference is 3 x^2 + h^2, exactly in exact arithmetic."""
    x = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)
    for h in (0.1, 1e-3):
        got = exercises.central_difference(lambda t: (t**3).sum(), x, h)
        torch.testing.assert_close(got, 3 * x**2 + h**2, rtol=0, atol=1e-9)
    assert got.shape == x.shape and got.dtype == x.dtype


def test_the_functions_of_the_gradient_cases_are_the_chapter_losses():
    """LineRisk is the MSE of a line (its gradient the chapter's formula), SoftmaxCrossEntropy
    is F.cross_entropy, MeanHinge the mean hinge; the central difference of the quadratic
    LineRisk is its gradient, and that of the hinge at its kink the mean of the slopes."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(10, generator=g, dtype=torch.float64)
    y = 2 * x - 0.5
    theta = torch.tensor([0.5, 0.1], dtype=torch.float64)
    line = exercises.LineRisk(x, y)
    torch.testing.assert_close(line(theta), F.mse_loss(theta[0] * x + theta[1], y))
    r = theta[0] * x + theta[1] - y
    by_hand = torch.stack([2 * (r * x).mean(), 2 * r.mean()])
    torch.testing.assert_close(exercises.central_difference(line, theta), by_hand)
    torch.testing.assert_close(exercises.central_difference(line, theta, 0.3), by_hand)

    logits = torch.randn(4, 3, generator=g, dtype=torch.float64)
    labels = torch.tensor([2, 0, 1, 1])
    ce = exercises.SoftmaxCrossEntropy(labels)
    torch.testing.assert_close(ce(logits), F.cross_entropy(logits, labels))

    signs = torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)
    scores = torch.tensor([1.0, -1.0, 0.2], dtype=torch.float64)  # the first two at the kink
    hinge = exercises.MeanHinge(signs)
    torch.testing.assert_close(hinge(scores), F.relu(1 - signs * scores).mean())
    expected = torch.tensor([-0.5, 0.5, -1.0], dtype=torch.float64) / 3
    torch.testing.assert_close(exercises.central_difference(hinge, scores), expected)


def test_gradient_examples_tell_the_quotient_from_the_derivative():
    """On the visible and the drawn cases, autograd's derivative differs from the central
    difference (the large step, the kink) beyond the tolerance of assert_outputs_match, so
    that the exercise cannot be passed by returning it."""
    for cases in (exercises.gradient_examples(), exercises.gradient_cases(7)):
        differs = 0
        for _, (f, x), kwargs in cases:
            quotient = exercises.central_difference(f, x, **kwargs)
            point = x.clone().requires_grad_(True)
            (derivative,) = torch.autograd.grad(f(point), point)
            differs += not torch.allclose(derivative, quotient, rtol=1e-5, atol=1e-6)
        assert differs >= 2

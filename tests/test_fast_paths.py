"""The fast paths (hand-written gradients) against the readable compositions they replace.

``giou_loss``, ``diou_loss``, ``ciou_loss``, ``sigmoid_focal_loss`` (and
``binary_cross_entropy_with_logits``), ``softmax_focal_loss``, ``cross_entropy``,
``total_variation`` and the near pairs of ``pairwise_distances`` compute their value
and gradient by hand (``_FusedBoxLoss``, ``_FusedSigmoidFocalLoss``,
``_SoftmaxFocalLoss``, ``_IndexCrossEntropy``, ``_ProbabilityCrossEntropy``,
``_TotalVariation``, ``_PairSquaredDistances`` in ``cvloss_ref/_fused.py``); the
readable autograd compositions are kept in the family modules as
``_box_loss_reference``, ``_sigmoid_focal_elementwise``, ``_softmax_focal_composed``,
``_cross_entropy_composed``, ``_total_variation_composed`` and
``_pair_squared_distances_composed``.  Values and gradients must be equal (float64, to
rounding), on random inputs, at confident predictions and on every edge case the
composition was designed for; where the composition itself rounds (a softmax focal
loss with 1 - p below float64's resolution), the fast path is checked against
60-digit arithmetic instead.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cvloss_ref import _fused, boxes, classification, metric, synthesis
from cvloss_ref.boxes import ciou_loss, diou_loss, giou_loss
from cvloss_ref.classification import binary_cross_entropy_with_logits, sigmoid_focal_loss
from cvloss_ref.classification import cross_entropy as cv_cross_entropy
from cvloss_ref.classification import softmax_focal_loss as cv_softmax_focal_loss
from tests._tolerances import TOLERANCES

BOX_LOSSES = {"giou": giou_loss, "diou": diou_loss, "ciou": ciou_loss}
REDUCTIONS = ("none", "mean", "sum")


def _random_boxes(generator, n, scale=10.0, dtype=torch.float64):
    corner = torch.rand(n, 2, generator=generator, dtype=dtype) * scale
    size = torch.rand(n, 2, generator=generator, dtype=dtype) * scale / 2
    return torch.cat((corner, corner + size), -1)


def _box_cases(generator):
    """Named (pred, target) pairs in float64."""
    random_pred = _random_boxes(generator, 64)
    degenerate_pred = torch.tensor(
        [
            [0, 0, 0, 0],  # point boxes (identical)
            [1, 1, 1, 1],  # point against point elsewhere
            [0, 0, 2, 0],  # zero-height segments (identical)
            [0, 0, 0, 2],  # zero-width against a box
            [0, 0, 2, 2],  # touching edges
            [0, 0, 2, 2],  # touching corner
            [0, 0, 2, 2],  # shared left edge (ties in min/max)
            [0, 0, 2, 2],  # identical boxes
        ],
        dtype=torch.float64,
    )
    degenerate_target = torch.tensor(
        [
            [0, 0, 0, 0],
            [2, 2, 2, 2],
            [0, 0, 2, 0],
            [1, 0, 1, 3],
            [2, 0, 4, 2],
            [2, 2, 4, 4],
            [0, 1, 3, 3],
            [0, 0, 2, 2],
        ],
        dtype=torch.float64,
    )
    disjoint_target = random_pred + 20.0
    far_pred = torch.tensor([[1e4, 1e4, 1e4 + 1, 1e4 + 1], [0, 0, 1, 1]], dtype=torch.float64)
    far_target = torch.tensor([[0, 0, 1, 1], [-1e4, 5e3, -1e4 + 3, 5e3 + 0.5]], dtype=torch.float64)
    return {
        "random": (random_pred, _random_boxes(generator, 64)),
        "degenerate": (degenerate_pred, degenerate_target),
        "degenerate-swapped": (degenerate_target, degenerate_pred),
        "disjoint": (random_pred, disjoint_target),
        "far-apart": (far_pred, far_target),
        "batched": (
            _random_boxes(generator, 24).view(2, 3, 4, 4),
            _random_boxes(generator, 24).view(2, 3, 4, 4),
        ),
    }


def _value_and_grads(fn, pred, target, upstream=None):
    pred = pred.detach().clone().requires_grad_()
    target = target.detach().clone().requires_grad_()
    loss = fn(pred, target)
    if upstream is None:
        upstream = torch.ones_like(loss)
    grads = torch.autograd.grad(loss, (pred, target), upstream)
    return (loss.detach(), *grads)


@pytest.mark.parametrize("kind", list(BOX_LOSSES))
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "case", ["random", "degenerate", "degenerate-swapped", "disjoint", "far-apart", "batched"]
)
def test_box_fast_path_equals_reference_value_and_gradients(generator, kind, reduction, case):
    pred, target = _box_cases(generator)[case]

    def fast(p, t):
        return BOX_LOSSES[kind](p, t, reduction=reduction)

    def reference(p, t):
        return boxes._box_loss_reference(p, t, kind, reduction=reduction)

    upstream = None
    if reduction == "none":  # a non-uniform upstream gradient, to test the chain rule
        upstream = torch.rand(pred.shape[:-1], generator=generator, dtype=torch.float64) + 0.5
    got = _value_and_grads(fast, pred, target, upstream)
    expected = _value_and_grads(reference, pred, target, upstream)
    for name, a, b in zip(("value", "grad pred", "grad target"), got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=f"{kind} {case}: {name}")
        assert torch.isfinite(a).all()


@pytest.mark.parametrize("kind", list(BOX_LOSSES))
@pytest.mark.parametrize("case", ["random", "degenerate", "degenerate-swapped", "batched"])
def test_box_fast_path_with_only_the_prediction_differentiable(generator, kind, case):
    # The usual training call: the targets need no gradient, so none is computed.
    pred, target = _box_cases(generator)[case]
    got_pred = pred.clone().requires_grad_()
    ref_pred = pred.clone().requires_grad_()
    loss = BOX_LOSSES[kind](got_pred, target, reduction="sum")
    expected = boxes._box_loss_reference(ref_pred, target, kind, reduction="sum")
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-12)
    (got,) = torch.autograd.grad(loss, got_pred)
    (want,) = torch.autograd.grad(expected, ref_pred)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", list(BOX_LOSSES))
@pytest.mark.parametrize("box_format", ["xywh", "cxcywh"])
def test_box_fast_path_equals_reference_in_other_formats(generator, kind, box_format):
    pred = boxes.box_convert(_random_boxes(generator, 16), "xyxy", box_format)
    target = boxes.box_convert(_random_boxes(generator, 16), "xyxy", box_format)
    got = _value_and_grads(lambda p, t: BOX_LOSSES[kind](p, t, box_format=box_format), pred, target)
    expected = _value_and_grads(
        lambda p, t: boxes._box_loss_reference(p, t, kind, box_format=box_format), pred, target
    )
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


# Not CIoU: its alpha is a constant in the backward pass, so the numerical gradient
# (which differentiates alpha too) differs on purpose; CIoU is compared to its reference.
@pytest.mark.parametrize("kind", ["giou", "diou"])
def test_box_fast_path_gradcheck(generator, kind):
    pred = _random_boxes(generator, 6).requires_grad_()
    target = _random_boxes(generator, 6).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda p, t: _fused._FusedBoxLoss.apply(p, t, kind, 1e-7), (pred, target)
    )


@pytest.mark.parametrize("kind", list(BOX_LOSSES))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_box_fast_path_half_precision_computed_in_float32(generator, kind, dtype):
    scale = 500.0  # areas up to 250^2, past float16's 65504
    pred64, target64 = (
        _random_boxes(generator, 32, scale=scale),
        _random_boxes(generator, 32, scale=scale),
    )
    pred, target = pred64.to(dtype).requires_grad_(), target64.to(dtype)
    loss = BOX_LOSSES[kind](pred, target, reduction="none")
    # Coordinate gradients are O(1/scale), below the table's atol: the cotangent `scale`
    # makes them O(1), where the tolerance is as sharp for them as for the values.
    (grad,) = torch.autograd.grad(loss, pred, torch.full_like(loss, scale))
    assert loss.dtype == dtype and grad.dtype == dtype
    # The composition in float64 on the very same (rounded) half inputs: what is left
    # is the fast path's own error, judged by the harness's tolerance for this dtype.
    wide = pred.detach().double().requires_grad_()
    expected = boxes._box_loss_reference(wide, target.double(), kind, reduction="none")
    (expected_grad,) = torch.autograd.grad(expected, wide, torch.full_like(expected, scale))
    torch.testing.assert_close(loss.double(), expected, **TOLERANCES[dtype])
    torch.testing.assert_close(grad.double(), expected_grad, **TOLERANCES[dtype])


@pytest.mark.parametrize("kind", list(BOX_LOSSES))
def test_box_fast_path_runs_on_meta_tensors(kind):
    pred = torch.empty(5, 3, 4, device="meta", requires_grad=True)
    target = torch.empty(5, 3, 4, device="meta")
    loss = BOX_LOSSES[kind](pred, target, reduction="none")
    assert loss.shape == (5, 3) and loss.device.type == "meta"
    (grad,) = torch.autograd.grad(loss.sum(), pred)
    assert grad.shape == pred.shape


@pytest.mark.parametrize("kind", list(BOX_LOSSES))
def test_box_fast_path_under_torch_compile_fullgraph(generator, kind):
    pred, target = _random_boxes(generator, 16), _random_boxes(generator, 16)
    compiled = torch.compile(BOX_LOSSES[kind], fullgraph=True, backend="aot_eager")
    got = _value_and_grads(compiled, pred, target)
    expected = _value_and_grads(lambda p, t: boxes._box_loss_reference(p, t, kind), pred, target)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", list(BOX_LOSSES))
def test_box_fast_path_empty_input_mean_is_zero_with_gradient(kind):
    pred = torch.empty(0, 4, dtype=torch.float64, requires_grad=True)
    loss = BOX_LOSSES[kind](pred, torch.empty(0, 4, dtype=torch.float64))
    (grad,) = torch.autograd.grad(loss, pred)
    assert loss.item() == 0.0 and grad.shape == (0, 4)


def test_box_fast_path_refuses_double_backward(generator):
    pred = _random_boxes(generator, 4).requires_grad_()
    loss = giou_loss(pred, _random_boxes(generator, 4))
    (grad,) = torch.autograd.grad(loss, pred, create_graph=True)
    with pytest.raises(RuntimeError, match=r"differentiable|does not require grad"):
        torch.autograd.grad(grad.sum(), pred)


def test_box_no_grad_path_equals_reference(generator):
    pred, target = _random_boxes(generator, 32), _random_boxes(generator, 32)
    with torch.no_grad():
        for kind, fn in BOX_LOSSES.items():
            torch.testing.assert_close(
                fn(pred, target, reduction="none"),
                boxes._box_loss_reference(pred, target, kind, reduction="none"),
                rtol=1e-12,
                atol=1e-14,
            )


# ---------------------------------------------------------------- sigmoid focal loss


def _focal_logits(generator):
    spread = torch.randn(200, generator=generator, dtype=torch.float64) * 5
    edges = torch.tensor([0.0, 1e4, -1e4, 30, -30, 100, -100, 800, -800], dtype=torch.float64)
    return torch.cat((spread, edges))


def _focal_targets(generator, logits, kind):
    if kind == "hard":
        return (torch.rand(logits.shape, generator=generator, dtype=torch.float64) < 0.5).double()
    if kind == "soft":
        return torch.rand(logits.shape, generator=generator, dtype=torch.float64)
    return torch.full_like(logits, 1.0 if kind == "ones" else 0.0)


@pytest.mark.parametrize("target_kind", ["hard", "soft", "ones", "zeros"])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 3.7])
@pytest.mark.parametrize("alpha", [0.25, -1.0, 0.0, 1.0])
def test_sigmoid_focal_fast_path_equals_reference(generator, target_kind, gamma, alpha):
    logits = _focal_logits(generator)
    target = _focal_targets(generator, logits, target_kind)
    fast = logits.clone().requires_grad_()
    reference = logits.clone().requires_grad_()
    got = sigmoid_focal_loss(fast, target, alpha, gamma, reduction="none")
    expected = classification._sigmoid_focal_elementwise(reference, target, alpha, gamma)
    upstream = torch.rand(logits.shape, generator=generator, dtype=torch.float64)
    (got_grad,) = torch.autograd.grad(got, fast, upstream)
    (expected_grad,) = torch.autograd.grad(expected, reference, upstream)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-14)
    torch.testing.assert_close(got_grad, expected_grad, rtol=1e-9, atol=1e-14)
    assert torch.isfinite(got_grad).all()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_sigmoid_focal_fast_path_reductions_equal_reference(generator, reduction):
    logits = _focal_logits(generator).requires_grad_()
    target = _focal_targets(generator, logits, "soft")
    loss = sigmoid_focal_loss(logits, target, reduction=reduction)
    (grad,) = torch.autograd.grad(loss, logits)
    reference = logits.detach().clone().requires_grad_()
    elementwise = classification._sigmoid_focal_elementwise(reference, target, 0.25, 2.0)
    expected = elementwise.mean() if reduction == "mean" else elementwise.sum()
    (expected_grad,) = torch.autograd.grad(expected, reference)
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 2.0])
def test_sigmoid_focal_fast_path_float32_saturated_logits_are_finite(gamma):
    logits = torch.tensor([1e4, -1e4, 20.0, -20.0, 0.0, 5.0], requires_grad=True)
    for target in (torch.ones(6), torch.zeros(6), torch.full((6,), 0.3)):
        loss = sigmoid_focal_loss(logits, target, gamma=gamma, reduction="none")
        (grad,) = torch.autograd.grad(loss.sum(), logits)
        assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
        expected = classification._sigmoid_focal_elementwise(logits.detach(), target, 0.25, gamma)
        torch.testing.assert_close(loss.detach(), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha", [0.25, -1.0])
def test_sigmoid_focal_fast_path_equals_reference_at_confident_logits(alpha, gamma):
    # Right and confident, the loss is about e^{-|x|}: both paths must keep its relative
    # accuracy (no atol to hide behind), the fused one without forming 1 - p.
    confident = torch.tensor(
        [15.0, 20.0, 30.0, 45.0, 60.0, 100.0, 300.0, 700.0], dtype=torch.float64
    )
    logits = torch.cat((confident, -confident))
    target = torch.cat((torch.ones(8), torch.zeros(8))).double()
    fast = logits.clone().requires_grad_()
    reference = logits.clone().requires_grad_()
    got = sigmoid_focal_loss(fast, target, alpha, gamma, reduction="none")
    expected = classification._sigmoid_focal_elementwise(reference, target, alpha, gamma)
    (got_grad,) = torch.autograd.grad(got.sum(), fast)
    (expected_grad,) = torch.autograd.grad(expected.sum(), reference)
    torch.testing.assert_close(got, expected, rtol=1e-13, atol=0)
    torch.testing.assert_close(got_grad, expected_grad, rtol=1e-13, atol=0)


@pytest.mark.parametrize("target_kind", ["hard", "soft"])
def test_binary_cross_entropy_with_logits_fast_path_equals_the_weighted_composition(
    generator, target_kind
):
    # The fast path (no weights: the focal kernels with gamma = 0) against the path
    # with a unit weight (logsigmoids and autograd), confident logits included.
    logits = _focal_logits(generator)
    target = _focal_targets(generator, logits, target_kind)
    fast = logits.clone().requires_grad_()
    composed = logits.clone().requires_grad_()
    got = binary_cross_entropy_with_logits(fast, target, reduction="none")
    ones = torch.ones_like(target)
    expected = binary_cross_entropy_with_logits(composed, target, ones, reduction="none")
    (got_grad,) = torch.autograd.grad(got.sum(), fast)
    (expected_grad,) = torch.autograd.grad(expected.sum(), composed)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-300)
    torch.testing.assert_close(got_grad, expected_grad, rtol=1e-12, atol=1e-300)


def test_sigmoid_focal_fast_path_gradcheck(generator):
    logits = torch.randn(12, generator=generator, dtype=torch.float64, requires_grad=True)
    target = torch.rand(12, generator=generator, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x: _fused._FusedSigmoidFocalLoss.apply(x, target, 0.25, 2.0, "none"),
        (logits,),
    )


def test_sigmoid_focal_target_gradient_uses_the_reference(generator):
    logits = torch.randn(10, generator=generator, dtype=torch.float64)
    target = torch.rand(10, generator=generator, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(sigmoid_focal_loss(logits, target), target)
    reference = target.detach().clone().requires_grad_()
    expected = classification._sigmoid_focal_elementwise(logits, reference, 0.25, 2.0).mean()
    (expected_grad,) = torch.autograd.grad(expected, reference)
    torch.testing.assert_close(grad, expected_grad)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_sigmoid_focal_fast_path_half_precision(generator, dtype):
    logits = (torch.randn(64, generator=generator) * 4).to(dtype).requires_grad_()
    target = (torch.rand(64, generator=generator) < 0.3).to(dtype)
    loss = sigmoid_focal_loss(logits, target, reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), logits)
    assert loss.dtype == dtype and grad.dtype == dtype
    # The composition in float64 on the same half inputs, judged by the harness's tolerance.
    wide = logits.detach().double().requires_grad_()
    expected = classification._sigmoid_focal_elementwise(wide, target.double(), 0.25, 2.0)
    (expected_grad,) = torch.autograd.grad(expected.sum(), wide)
    torch.testing.assert_close(loss.double(), expected, **TOLERANCES[dtype])
    torch.testing.assert_close(grad.double(), expected_grad, **TOLERANCES[dtype])


def test_sigmoid_focal_fast_path_runs_on_meta_tensors():
    logits = torch.empty(4, 5, device="meta", requires_grad=True)
    loss = sigmoid_focal_loss(logits, torch.empty(4, 5, device="meta"))
    (grad,) = torch.autograd.grad(loss, logits)
    assert loss.shape == () and grad.shape == (4, 5) and grad.device.type == "meta"


def test_sigmoid_focal_fast_path_under_torch_compile_fullgraph(generator):
    logits = torch.randn(32, generator=generator, dtype=torch.float64)
    target = torch.rand(32, generator=generator, dtype=torch.float64)
    compiled = torch.compile(sigmoid_focal_loss, fullgraph=True, backend="aot_eager")
    fast = logits.clone().requires_grad_()
    reference = logits.clone().requires_grad_()
    loss = compiled(fast, target)
    expected = classification._sigmoid_focal_elementwise(reference, target, 0.25, 2.0).mean()
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(
        torch.autograd.grad(loss, fast)[0], torch.autograd.grad(expected, reference)[0]
    )


def test_sigmoid_focal_fast_path_empty_mean_is_zero():
    logits = torch.empty(0, requires_grad=True)
    loss = sigmoid_focal_loss(logits, torch.empty(0))
    (grad,) = torch.autograd.grad(loss, logits)
    assert loss.item() == 0.0 and grad.shape == (0,)


# ------------------------------------------------------------------- softmax focal loss

SOFTMAX_GAMMAS = (0.0, 0.25, 1.0, 2.0, 5.0)


def _softmax_focal_cases(generator):
    """Named (logits, class-index target) pairs in float64, the class dimension 1
    (0 for the unbatched case)."""

    def randn(*shape, scale=3.0):
        return torch.randn(*shape, generator=generator, dtype=torch.float64) * scale

    def labels(*shape, classes):
        return torch.randint(classes, shape, generator=generator)

    confident = torch.zeros(6, 4, dtype=torch.float64)
    confident[:, 0] = torch.tensor([10.0, 20.0, 40.0, 800.0, 1e4, -1e4])
    return {
        "random": (randn(32, 7), labels(32, classes=7)),
        "segmentation": (randn(2, 5, 3, 4), labels(2, 3, 4, classes=5)),
        "unbatched": (randn(6), torch.tensor(4)),
        "many classes": (randn(4, 300, scale=10.0), labels(4, classes=300)),
        # 1 - p_y from 4e-5 down to underflow, and p_y itself underflowing (last row).
        "confident": (confident, torch.zeros(6, dtype=torch.long)),
        "confident, wrong class": (confident, torch.ones(6, dtype=torch.long)),
        "ties": (torch.zeros(3, 4, dtype=torch.float64), torch.tensor([0, 1, 3])),
    }


def _softmax_focal_pair(logits, target, gamma):
    """(fast, composed) per-sample losses and gradients under one random cotangent."""
    class_dim = 0 if logits.dim() == 1 else 1
    index = target.unsqueeze(class_dim)
    results = []
    for fn in (_fused._SoftmaxFocalLoss.apply, classification._softmax_focal_composed):
        x = logits.detach().clone().requires_grad_()
        loss = fn(x, index, gamma, class_dim)
        upstream = torch.linspace(0.5, 1.5, loss.numel(), dtype=loss.dtype).view(loss.shape)
        (grad,) = torch.autograd.grad(loss, x, upstream)
        results.append((loss.detach(), grad))
    return results


@pytest.mark.parametrize("gamma", SOFTMAX_GAMMAS)
@pytest.mark.parametrize("case", ["random", "segmentation", "unbatched", "many classes", "ties"])
def test_softmax_focal_fast_path_equals_composition(generator, case, gamma):
    logits, target = _softmax_focal_cases(generator)[case]
    (fast, fast_grad), (composed, composed_grad) = _softmax_focal_pair(logits, target, gamma)
    torch.testing.assert_close(fast, composed, rtol=1e-12, atol=1e-300)
    torch.testing.assert_close(fast_grad, composed_grad, rtol=1e-10, atol=1e-300)


@pytest.mark.parametrize("gamma", SOFTMAX_GAMMAS)
def test_softmax_focal_fast_path_float32_keeps_the_relative_accuracy_of_1_minus_p(gamma):
    # p_y = 1 - 2e-9 rounds to 1 in float32: (1 - p_y) ** gamma and -log p_y must not.
    logits = torch.tensor([[20.0, 0.0], [12.0, -3.0], [30.0, 30.0]])
    target = torch.zeros(3, dtype=torch.long)
    fast = _fused._SoftmaxFocalLoss.apply(logits, target[:, None], gamma, 1)
    exact = classification._softmax_focal_composed(logits.double(), target[:, None], gamma, 1)
    # (gamma = 5 takes the first row below float32's smallest number: 0 is right there.)
    torch.testing.assert_close(fast.double(), exact, rtol=1e-5, atol=1e-44)


def _softmax_focal_exact(row, y, gamma):
    """The loss of one sample and its gradient, from the definition in 60-digit
    arithmetic (mpmath; numerical differentiation at that precision)."""
    import mpmath

    mpmath.mp.dps = 60

    def loss(*x):
        total = mpmath.fsum(mpmath.exp(v) for v in x)
        p_y = mpmath.exp(x[y]) / total
        rest = mpmath.fsum(mpmath.exp(v) for c, v in enumerate(x) if c != y) / total
        return rest**gamma * -mpmath.log(p_y) if gamma else -mpmath.log(p_y)

    x = [mpmath.mpf(float(v)) for v in row]
    grad = []
    for c in range(len(x)):
        order = [0] * len(x)
        order[c] = 1
        grad.append(float(mpmath.diff(loss, x, tuple(order))))
    return float(loss(*x)), grad


@pytest.mark.parametrize("gamma", SOFTMAX_GAMMAS)
@pytest.mark.parametrize("wrong", [False, True], ids=["right class", "wrong class"])
def test_softmax_focal_fast_path_confident_logits_against_exact_arithmetic(generator, gamma, wrong):
    # 1 - p_y from 1e-4 down to underflow, where -log p_y = logsumexp - x_y rounds to 0
    # in float64 but log1p((1 - p_y) / p_y) does not: the fast path is the accurate one.
    case = "confident, wrong class" if wrong else "confident"
    logits, target = _softmax_focal_cases(generator)[case]
    index = target.unsqueeze(1)
    x = logits.clone().requires_grad_()
    loss = _fused._SoftmaxFocalLoss.apply(x, index, gamma, 1)
    (grad,) = torch.autograd.grad(loss.sum(), x)
    for i in range(len(logits)):
        value, row_grad = _softmax_focal_exact(logits[i].tolist(), int(target[i]), gamma)
        expected = torch.tensor(row_grad, dtype=torch.float64)
        torch.testing.assert_close(loss[i, 0].item(), value, rtol=1e-12, atol=1e-300)
        torch.testing.assert_close(grad[i], expected, rtol=1e-9, atol=1e-300)


def test_softmax_focal_fast_path_gradcheck(generator):
    logits = torch.randn(5, 4, generator=generator, dtype=torch.float64).requires_grad_()
    target = torch.tensor([[0], [3], [1], [1], [2]])
    for gamma in (0.5, 2.0):
        assert torch.autograd.gradcheck(
            lambda x, g=gamma: _fused._SoftmaxFocalLoss.apply(x, target, g, 1), (logits,)
        )


def test_softmax_focal_fast_path_refuses_double_backward(generator):
    logits = torch.randn(3, 4, generator=generator, requires_grad=True)
    loss = cv_softmax_focal_loss(logits, torch.tensor([0, 1, 2]))
    (grad,) = torch.autograd.grad(loss, logits, create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(grad.sum(), logits)


def test_softmax_focal_fast_path_runs_on_meta_tensors():
    logits = torch.empty(4, 5, 2, device="meta", requires_grad=True)
    loss = cv_softmax_focal_loss(
        logits, torch.empty(4, 2, dtype=torch.long, device="meta"), reduction="none"
    )
    (grad,) = torch.autograd.grad(loss.sum(), logits)
    assert loss.shape == (4, 2) and grad.shape == (4, 5, 2) and grad.device.type == "meta"


def test_softmax_focal_fast_path_under_torch_compile_fullgraph(generator):
    logits = torch.randn(8, 5, generator=generator, dtype=torch.float64)
    target = torch.randint(5, (8,), generator=generator)
    compiled = torch.compile(cv_softmax_focal_loss, fullgraph=True, backend="aot_eager")
    fast = logits.clone().requires_grad_()
    reference = logits.clone().requires_grad_()
    loss = compiled(fast, target)
    expected = classification._softmax_focal_composed(reference, target[:, None], 2.0, 1).mean()
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(
        torch.autograd.grad(loss, fast)[0], torch.autograd.grad(expected, reference)[0]
    )


# ---------------------------------------------------------------------- total variation


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("shape", [(3, 2, 5, 7), (2, 4, 3), (1, 1, 1, 6), (2, 3, 1, 1)])
def test_total_variation_fast_path_equals_composition(generator, p, shape):
    images = torch.randn(shape, generator=generator, dtype=torch.float64)
    images[..., : shape[-2] // 2, :] = 0.5  # a flat region: zero differences, sign 0
    fast = images.clone().requires_grad_()
    composed = images.clone().requires_grad_()
    got = synthesis.total_variation(fast, p=p, reduction="none")
    want = synthesis._total_variation_composed(composed, p)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    upstream = torch.rand(got.shape, generator=generator, dtype=torch.float64) + 0.5
    (got_grad,) = torch.autograd.grad(got, fast, upstream)
    (want_grad,) = torch.autograd.grad(want, composed, upstream)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-12, atol=1e-12)


def test_total_variation_fast_path_gradcheck_and_single_backward(generator):
    images = torch.randn(2, 3, 4, 5, generator=generator, dtype=torch.float64)
    images = images.requires_grad_()
    assert torch.autograd.gradcheck(lambda x: _fused._TotalVariation.apply(x, 2), (images,))
    (grad,) = torch.autograd.grad(synthesis.total_variation(images, p=2), images, create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(grad.sum(), images)


def test_total_variation_fast_path_runs_on_meta_tensors():
    images = torch.empty(2, 3, 8, 8, device="meta", requires_grad=True)
    (grad,) = torch.autograd.grad(synthesis.total_variation(images), images)
    assert grad.shape == images.shape and grad.device.type == "meta"


# ----------------------------------------------------------------------- cross entropy
#
# The values and gradients against the composition (classification._cross_entropy_composed)
# are checked in tests/test_classification.py, and against 360-digit arithmetic in
# tests/test_accuracy.py; here, what is particular to the hand-written function.


def _ce_calls(generator):
    """Named calls of cv.cross_entropy on float64 logits, every argument the fast
    path handles: (logits, target, keyword arguments)."""
    logits = torch.randn(6, 4, generator=generator, dtype=torch.float64) * 3
    spatial = torch.randn(2, 4, 3, generator=generator, dtype=torch.float64) * 3
    target = torch.tensor([0, 3, -100, 1, 2, 1])
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=torch.float64)
    soft = torch.softmax(torch.randn(6, 4, generator=generator, dtype=torch.float64), 1)
    return {
        "plain": (logits, target.clamp(min=0), {}),
        "weights, smoothing, ignored": (
            logits,
            target,
            {"weight": weight, "label_smoothing": 0.2},
        ),
        "smoothing, sum": (logits, target, {"label_smoothing": 0.3, "reduction": "sum"}),
        "spatial, none": (
            spatial,
            torch.tensor([[0, 3, 1], [2, -100, 1]]),
            {"weight": weight, "label_smoothing": 0.1, "reduction": "none"},
        ),
        "unbatched": (logits[0], torch.tensor(2), {"label_smoothing": 0.1}),
        "probabilities": (logits, soft, {"weight": weight, "label_smoothing": 0.2}),
    }


CE_CALLS = [
    "plain",
    "weights, smoothing, ignored",
    "smoothing, sum",
    "spatial, none",
    "unbatched",
    "probabilities",
]


@pytest.mark.parametrize("case", CE_CALLS)
def test_cross_entropy_fast_path_gradcheck_and_gradgradcheck(generator, case):
    logits, target, kwargs = _ce_calls(generator)[case]
    x = logits.clone().requires_grad_()

    def loss(x):
        return cv_cross_entropy(x, target, **kwargs)

    assert torch.autograd.gradcheck(loss, (x,))
    # Differentiable twice, as F.cross_entropy: the backward recomputes the softmax with
    # autograd watching when create_graph asks for it.
    assert torch.autograd.gradgradcheck(loss, (x,))


@pytest.mark.parametrize("case", CE_CALLS)
def test_cross_entropy_fast_path_second_derivative_same_as_torch(generator, case):
    logits, target, kwargs = _ce_calls(generator)[case]
    cotangent = torch.randn(logits.shape, generator=generator, dtype=torch.float64)
    results = []
    for fn in (cv_cross_entropy, torch.nn.functional.cross_entropy):
        x = logits.clone().requires_grad_()
        loss = fn(x, target, **kwargs)
        (grad,) = torch.autograd.grad(loss.sum(), x, create_graph=True)
        (hessian_vector,) = torch.autograd.grad((grad * cotangent).sum(), x)
        results.append((grad.detach(), hessian_vector))
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-14)


def test_cross_entropy_fast_path_probability_target_gradient(generator):
    # The target (soft labels that are themselves computed) and the class weights get
    # their gradients by autograd on the accurate -log p, as in F.cross_entropy.
    logits, soft, kwargs = _ce_calls(generator)["probabilities"]
    inputs = [logits, soft, kwargs["weight"]]
    grads = []
    for fn in (cv_cross_entropy, torch.nn.functional.cross_entropy):
        leaves = [t.clone().requires_grad_() for t in inputs]
        loss = fn(leaves[0], leaves[1], leaves[2], label_smoothing=0.2)
        grads.append(torch.autograd.grad(loss, leaves))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", ["plain", "weights, smoothing, ignored", "spatial, none"])
def test_cross_entropy_fast_path_reads_back_underflow_only_to_skip_work(
    generator, case, monkeypatch
):
    # On a CPU the lse form for target probabilities below the smallest normal number
    # is computed only when there is one (_may_underflow reads p_y back): taking it
    # always (as on a GPU) must give the same bits.
    logits, target, kwargs = _ce_calls(generator)[case]
    logits = logits.clone()
    logits.view(-1, logits.shape[-1])[0, 0] = -1e4  # one p_y of 0 when its target is 0
    runs = []
    for always in (False, True):
        if always:
            monkeypatch.setattr(_fused, "_may_underflow", lambda p_y: True)
        x = logits.clone().requires_grad_()
        loss = cv_cross_entropy(x, target, **kwargs)
        (grad,) = torch.autograd.grad(loss.sum(), x)
        runs.append((loss.detach(), grad))
    assert torch.isfinite(runs[0][0]).all() and torch.isfinite(runs[0][1]).all()
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


def test_cross_entropy_fast_path_underflowed_target_probability_same_as_torch():
    # p_y = 0 (logit 2e4 below the largest): -log p_y = 2e4 from (m - x_y) + L, not inf.
    logits = torch.tensor([[1e4, -1e4, 0.0], [0.0, 1e4, 3.0]], requires_grad=True)
    target = torch.tensor([1, 0])
    loss = cv_cross_entropy(logits, target, reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), logits)
    expected = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(loss, torch.tensor([2e4, 1e4]))
    torch.testing.assert_close(grad, torch.tensor([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]]))


@pytest.mark.parametrize("case", ["plain", "weights, smoothing, ignored", "probabilities"])
def test_cross_entropy_fast_path_runs_on_meta_tensors(generator, case):
    logits, target, kwargs = _ce_calls(generator)[case]
    x = torch.empty(logits.shape, device="meta", requires_grad=True)
    meta_target = target.to("meta")
    weight = kwargs.get("weight")
    kwargs = {**kwargs, "weight": None if weight is None else weight.to("meta")}
    loss = cv_cross_entropy(x, meta_target, **kwargs)
    (grad,) = torch.autograd.grad(loss.sum(), x)
    assert loss.device.type == "meta" and grad.shape == x.shape and grad.device.type == "meta"


@pytest.mark.parametrize("case", ["plain", "weights, smoothing, ignored"])
def test_cross_entropy_fast_path_under_torch_compile_fullgraph(generator, case):
    logits, target, kwargs = _ce_calls(generator)[case]
    compiled = torch.compile(cv_cross_entropy, fullgraph=True, backend="aot_eager")
    fast = logits.clone().requires_grad_()
    reference = logits.clone().requires_grad_()
    loss = compiled(fast, target, **kwargs)
    expected = torch.nn.functional.cross_entropy(reference, target, **kwargs)
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(
        torch.autograd.grad(loss, fast)[0], torch.autograd.grad(expected, reference)[0]
    )


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True], ids=["nw", "w"])
def test_cross_entropy_fast_path_ignored_targets_pass_no_gradient(generator, smoothing, weighted):
    # As ATen's kernel: an ignored target gives 0 whatever its logits (here -inf and
    # NaN; a NaN gives NaN gradients in both) and passes no gradient whatever comes
    # from upstream (here NaN and inf, as a pixel weight of inf does through its mask
    # in weighted_pixel_cross_entropy).
    logits = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    logits[1] = torch.tensor([-torch.inf, 0.0, 1.0])
    logits[4] = torch.tensor([0.0, torch.nan, 1.0])
    target = torch.tensor([0, -100, 2, -100, -100])
    upstream = torch.tensor([1.0, torch.nan, 0.5, torch.inf, 1.0], dtype=torch.float64)
    weight = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64) if weighted else None
    results = []
    for fn in (cv_cross_entropy, torch.nn.functional.cross_entropy):
        x = logits.clone().requires_grad_()
        loss = fn(x, target, weight, label_smoothing=smoothing, reduction="none")
        (grad,) = torch.autograd.grad(loss, x, upstream)
        results.append((loss.detach(), grad))
    (loss, grad), (ref_loss, ref_grad) = results
    assert torch.equal(loss[1::2], torch.zeros(2, dtype=torch.float64)) and loss[4] == 0
    assert torch.equal(grad[1::2], torch.zeros(2, 3, dtype=torch.float64))
    torch.testing.assert_close(loss, ref_loss, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-12, atol=1e-14, equal_nan=True)


def test_cross_entropy_fast_path_refuses_a_weight_that_needs_a_gradient():
    # As F.cross_entropy with class indices ("not differentiable with respect to
    # argument 'weight'"), instead of a gradient that would be silently incomplete.
    weight = torch.ones(3, requires_grad=True)
    with pytest.raises(ValueError, match="weight must not require a gradient"):
        cv_cross_entropy(torch.randn(2, 3), torch.tensor([0, 2]), weight)
    with torch.no_grad():
        cv_cross_entropy(torch.randn(2, 3), torch.tensor([0, 2]), weight)


# ------------------------------------------------------------------ pairwise distances


def _pairs(generator, batch=9, dim=5):
    x = torch.randn(batch, dim, generator=generator, dtype=torch.float64)
    first, second = torch.triu_indices(batch, batch, offset=1)
    keep = torch.rand(first.numel(), generator=generator) < 0.6
    return x, first[keep], second[keep]


@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_pair_squared_distances_fast_path_equals_composition(generator, chunk):
    x, first, second = _pairs(generator)
    cotangent = torch.randn(first.numel(), generator=generator, dtype=torch.float64)
    results = []
    for fn in (
        lambda x: _fused.pair_squared_distances(x, first, second, chunk),
        lambda x: metric._pair_squared_distances_composed(x, first, second),
    ):
        leaf = x.clone().requires_grad_()
        value = fn(leaf)
        (grad,) = torch.autograd.grad(value, leaf, cotangent, create_graph=True)
        (second_order,) = torch.autograd.grad((grad * grad).sum(), leaf)
        results.append((value.detach(), grad.detach(), second_order))
    torch.testing.assert_close(results[0], results[1], rtol=1e-13, atol=1e-14)


def test_pair_squared_distances_fast_path_gradcheck_and_gradgradcheck(generator):
    x, first, second = _pairs(generator, batch=5, dim=3)
    x.requires_grad_()

    def fn(x):
        return _fused.pair_squared_distances(x, first, second, 2)

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_pair_squared_distances_fast_path_keeps_one_chunk_of_differences(generator, monkeypatch):
    # Two tight clusters on opposite sides of the mean: every pair within a cluster is
    # near and recomputed, in chunks of 4 pairs here.  The backward keeps the
    # embeddings and the indices, no (pairs, D) tensor of differences.
    monkeypatch.setattr(metric, "PAIR_CHUNK_ELEMENTS", 64)
    batch, dim = 48, 16
    noise = torch.randn(batch, dim, generator=generator, dtype=torch.float64) * 1e-6
    side = torch.where(torch.arange(batch) % 2 == 0, 1.0, -1.0).double()
    x = (side[:, None] + noise).requires_grad_()
    saved = []

    def pack(tensor):
        saved.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        distances = metric.pairwise_distances(x)
    near_pairs = 2 * (batch // 2) * (batch // 2 - 1) // 2
    assert max(saved) <= batch * batch < near_pairs * dim, saved
    (grad,) = torch.autograd.grad(distances.sum(), x)
    exact = torch.cdist(x.detach(), x.detach(), compute_mode="donot_use_mm_for_euclid_dist")
    (exact_grad,) = torch.autograd.grad(
        torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist").sum(), x
    )
    torch.testing.assert_close(distances, exact, rtol=1e-12, atol=0.0)
    torch.testing.assert_close(grad, exact_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"label_smoothing": 0.1}, {"weight": "random"}, {"ignore_index": 1}],
    ids=["plain", "smoothing", "weight", "ignore_index"],
)
def test_cross_entropy_works_under_torch_func_transforms_as_f_cross_entropy(kwargs):
    """vmap, grad and jvp (per-sample gradients, Jacobians): the hand-written autograd
    Functions do not support them, so cross_entropy takes its composition there, and
    gives what F.cross_entropy gives (it did before the fused path existed)."""
    from torch.func import grad, jvp, vmap

    gen = torch.Generator().manual_seed(7)
    x = torch.randn(4, 8, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 5, (4, 8), generator=gen)
    if kwargs.get("weight") == "random":
        kwargs = {"weight": torch.rand(5, generator=gen, dtype=torch.float64)}
    ours = vmap(grad(lambda a, b: cv_cross_entropy(a, b, **kwargs)))(x, y)
    theirs = vmap(grad(lambda a, b: F.cross_entropy(a, b, **kwargs)))(x, y)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    tangent = torch.randn(8, 5, generator=gen, dtype=torch.float64)
    ours = jvp(lambda a: cv_cross_entropy(a, y[0], **kwargs), (x[0],), (tangent,))
    theirs = jvp(lambda a: F.cross_entropy(a, y[0], **kwargs), (x[0],), (tangent,))
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    probs = torch.softmax(x[1], -1)
    ours = grad(lambda a: cv_cross_entropy(a, probs))(x[0])
    torch.testing.assert_close(ours, grad(lambda a: F.cross_entropy(a, probs))(x[0]))

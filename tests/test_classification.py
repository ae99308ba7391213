"""Tests of cvloss_ref.classification against torch built-ins, torchvision, kornia and
brute-force loops written from the definitions.

Values and gradients are compared in float64 with the shared per-dtype tolerances.
"""

from __future__ import annotations

import itertools
import math

import kornia
import pytest
import torch
import torch.nn.functional as F
import torchvision

import cvloss_ref as cv
from cvloss_ref import classification
from cvloss_ref.classification import _ClampedBinaryCrossEntropy
from tests._tolerances import TOLERANCES

F64 = torch.float64
TOL64 = TOLERANCES[F64]


def _close(actual: torch.Tensor, expected: torch.Tensor, **overrides: float) -> None:
    tol = dict(TOLERANCES[expected.dtype])
    tol.update(overrides)
    torch.testing.assert_close(actual, expected, equal_nan=False, **tol)


def _value_and_grad(fn, x: torch.Tensor, *args, **kwargs):
    """``fn(x, *args, **kwargs)`` and the gradient of a fixed random weighting of it."""
    x = x.detach().clone().requires_grad_(True)
    out = fn(x, *args, **kwargs)
    upstream = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).reshape(out.shape)
    (grad,) = torch.autograd.grad((out * upstream).sum(), x, allow_unused=False)
    return out.detach(), grad


def _assert_same_value_and_grad(ours, theirs, x, *args, **kwargs) -> None:
    value, grad = _value_and_grad(ours, x, *args, **kwargs)
    ref_value, ref_grad = _value_and_grad(theirs, x, *args, **kwargs)
    _close(value, ref_value)
    _close(grad, ref_grad)


def _randn(*shape: int, seed: int = 0, scale: float = 2.0, dtype=F64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(*shape, generator=g, dtype=dtype)


def _randint(high: int, *shape: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(high, shape, generator=g)


def _rand(*shape: int, seed: int = 2, dtype=F64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=dtype)


# ----------------------------------------------------------------------- cross_entropy

C = 4
CE_SHAPES = {"unbatched": (C,), "batch": (5, C), "spatial": (2, C, 3, 2)}
IGNORE_VARIANTS = {"none-ignored": None, "-100-present": -100, "in-range-1-present": 1}


def _ce_grid():
    for shape, kind, weighted, ignore, eps, reduction in itertools.product(
        CE_SHAPES,
        ("index", "prob"),
        (False, True),
        IGNORE_VARIANTS,
        (0.0, 0.25, 1.0),
        ("none", "mean", "sum"),
    ):
        if kind == "prob" and ignore != "none-ignored":
            continue  # ignore_index does not apply to probability targets
        if shape == "unbatched" and ignore != "none-ignored":
            continue  # one target: ignoring it is the all-ignored test below
        yield pytest.param(
            shape,
            kind,
            weighted,
            ignore,
            eps,
            reduction,
            id=f"{shape}-{kind}-{'w' if weighted else 'nw'}-{ignore}-eps{eps}-{reduction}",
        )


def _ce_inputs(shape_name: str, kind: str, weighted: bool, ignore: str):
    shape = CE_SHAPES[shape_name]
    logits = _randn(*shape)
    class_dim = 0 if len(shape) == 1 else 1
    if kind == "prob":
        target = torch.softmax(_randn(*shape, seed=3), dim=class_dim)
    else:
        target_shape = shape[:class_dim] + shape[class_dim + 1 :]
        target = _randint(C, *target_shape)
        ignore_value = IGNORE_VARIANTS[ignore]
        if ignore_value is not None:
            flat = target.view(-1)
            flat[0] = ignore_value
            flat[1] = ignore_value
            flat[-1] = 0 if ignore_value == 1 else flat[-1]  # keep one target
    kwargs = {}
    if weighted:
        kwargs["weight"] = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=F64)
    if IGNORE_VARIANTS[ignore] is not None:
        kwargs["ignore_index"] = IGNORE_VARIANTS[ignore]
    return logits, target, kwargs


@pytest.mark.parametrize(
    ("shape", "kind", "weighted", "ignore", "eps", "reduction"), list(_ce_grid())
)
def test_cross_entropy_value_and_grad_same_as_torch(shape, kind, weighted, ignore, eps, reduction):
    logits, target, kwargs = _ce_inputs(shape, kind, weighted, ignore)
    kwargs.update(label_smoothing=eps, reduction=reduction)
    _assert_same_value_and_grad(cv.cross_entropy, F.cross_entropy, logits, target, **kwargs)


def _ce_brute_force(logits, target, weight, ignore_index, eps, reduction):
    """Loops over samples and classes, from the formula in the docstring."""
    n, c = logits.shape
    losses, norm = [], 0.0
    for i in range(n):
        y = int(target[i])
        if y == ignore_index:
            losses.append(0.0)
            continue
        row = [float(v) for v in logits[i]]
        top = max(row)
        log_z = top + math.log(sum(math.exp(v - top) for v in row))
        log_p = [v - log_z for v in row]
        w = [1.0] * c if weight is None else [float(v) for v in weight]
        nll = -w[y] * log_p[y]
        smooth = sum(-w[k] * log_p[k] for k in range(c))
        losses.append((1 - eps) * nll + eps / c * smooth)
        norm += w[y]
    if reduction == "none":
        return torch.tensor(losses, dtype=F64)
    if reduction == "sum":
        return torch.tensor(sum(losses), dtype=F64)
    return torch.tensor(sum(losses) / norm, dtype=F64)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_cross_entropy_same_as_brute_force_definition(reduction):
    logits = _randn(6, 3)
    target = torch.tensor([0, 2, -1, 1, 2, -1])
    weight = torch.tensor([1.0, 0.2, 4.0], dtype=F64)
    got = cv.cross_entropy(
        logits, target, weight, ignore_index=-1, label_smoothing=0.3, reduction=reduction
    )
    _close(got, _ce_brute_force(logits, target, weight, -1, 0.3, reduction))


def _log_softmax_by_hand(logits: torch.Tensor, class_dim: int) -> torch.Tensor:
    """x_c - log sum_k e^{x_k}, the log-sum-exp written out with its maximum shifted out.

    The shift m is a constant (log-softmax does not depend on it), so it is detached:
    autograd then differentiates only the exp/log/sum of the definition.
    """
    m = logits.detach().amax(class_dim, keepdim=True)
    return logits - m - torch.log(torch.exp(logits - m).sum(class_dim, keepdim=True))


def _soft_ce_brute_force(logits, target, weight, eps, reduction):
    """Cross entropy against class probabilities, from the definition (PyTorch's contract):
    l_i = -sum_c w_c t~_ic log p_ic with t~ = (1 - eps) t + eps / C; "mean" divides the
    sum by the number of samples N * d1 * ..., whatever the weights."""
    class_dim = 0 if logits.dim() == 1 else 1
    num_classes = logits.shape[class_dim]
    shape = [1] * logits.dim()
    shape[class_dim] = num_classes
    w = torch.ones(shape, dtype=F64) if weight is None else weight.view(shape)
    smoothed = (1 - eps) * target + eps / num_classes
    per_sample = -(w * smoothed * _log_softmax_by_hand(logits, class_dim)).sum(class_dim)
    if reduction == "none":
        return per_sample
    if reduction == "sum":
        return per_sample.sum()
    return per_sample.sum() / per_sample.numel()


def _soft_ce_grad_closed_form(logits, target, weight, eps):
    """d l_i / d x_ic = (sum_k w_k t~_ik) p_ic - w_c t~_ic, per sample (reduction "none"),
    with p = exp(log p) from the hand-written log-softmax."""
    class_dim = 0 if logits.dim() == 1 else 1
    num_classes = logits.shape[class_dim]
    shape = [1] * logits.dim()
    shape[class_dim] = num_classes
    w = torch.ones(shape, dtype=F64) if weight is None else weight.view(shape)
    smoothed = (1 - eps) * target + eps / num_classes
    p = torch.exp(_log_softmax_by_hand(logits, class_dim))
    return (w * smoothed).sum(class_dim, keepdim=True) * p - w * smoothed


def _soft_targets(shape, kind):
    class_dim = 0 if len(shape) == 1 else 1
    if kind == "distribution":
        return torch.softmax(_randn(*shape, seed=3), dim=class_dim)
    return _rand(*shape, seed=3)  # independent probabilities (multi-label), sums != 1


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("eps", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("weighted", [False, True], ids=["nw", "w"])
@pytest.mark.parametrize("kind", ["distribution", "unnormalised"])
@pytest.mark.parametrize("shape", list(CE_SHAPES))
def test_cross_entropy_probability_target_same_as_brute_force_definition(
    shape, kind, weighted, eps, reduction
):
    # Against the definition written out (F.cross_entropy: the test above).
    logits = _randn(*CE_SHAPES[shape])
    target = _soft_targets(CE_SHAPES[shape], kind)
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=F64) if weighted else None
    kwargs = dict(weight=weight, label_smoothing=eps, reduction=reduction)
    value, grad = _value_and_grad(cv.cross_entropy, logits, target, **kwargs)
    ref_value, ref_grad = _value_and_grad(
        _soft_ce_brute_force, logits, target, weight, eps, reduction
    )
    _close(value, ref_value)
    _close(grad, ref_grad)


@pytest.mark.parametrize("weighted", [False, True], ids=["nw", "w"])
def test_cross_entropy_probability_target_gradient_is_closed_form(weighted):
    logits = _randn(2, C, 3, 2)
    target = _soft_targets((2, C, 3, 2), "unnormalised")
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=F64) if weighted else None
    x = logits.clone().requires_grad_(True)
    cv.cross_entropy(x, target, weight, label_smoothing=0.3, reduction="sum").backward()
    _close(x.grad, _soft_ce_grad_closed_form(logits, target, weight, 0.3))


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_cross_entropy_probability_target_saturated_logits_same_as_brute_force(dtype):
    # log p = -2e4 for a logit 2e4 below the largest: a log(softmax) would give -inf.
    logits = torch.tensor(
        [[1e4, -1e4, 0.0, 3.0], [-1e4, 1e4, 1e4, -1e4], [30.0, -30.0, 0.0, 1e4]], dtype=dtype
    )
    target = torch.tensor(
        [[0.0, 1.0, 0.0, 0.0], [0.25, 0.25, 0.5, 0.0], [0.1, 0.2, 0.3, 0.4]], dtype=dtype
    )
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=dtype)
    for reduction in ("none", "mean", "sum"):
        kwargs = dict(weight=weight, label_smoothing=0.1, reduction=reduction)
        value, grad = _value_and_grad(cv.cross_entropy, logits, target, **kwargs)
        # The brute force in float64 on the same inputs, judged at the dtype's tolerance.
        ref_value, ref_grad = _value_and_grad(
            _soft_ce_brute_force, logits.double(), target.double(), weight.double(), 0.1, reduction
        )
        assert torch.isfinite(ref_value).all() and torch.isfinite(ref_grad).all()
        _close(value.double(), ref_value, **TOLERANCES[dtype])
        _close(grad.double(), ref_grad, **TOLERANCES[dtype])


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_all_ignored_is_zero_with_zero_grad(eps, weighted):
    logits = _randn(3, C).requires_grad_(True)
    target = torch.full((3,), -100)
    weight = torch.ones(C, dtype=F64) if weighted else None
    loss = cv.cross_entropy(logits, target, weight, label_smoothing=eps)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    # The deliberate divergence: PyTorch divides 0 by 0.
    assert torch.isnan(F.cross_entropy(logits, target, weight, label_smoothing=eps))


@pytest.mark.parametrize("kind", ["index", "prob"])
def test_cross_entropy_empty_batch_is_zero_with_zero_grad(kind):
    logits = torch.zeros(0, C, dtype=F64, requires_grad=True)
    target = torch.zeros(0, dtype=torch.long) if kind == "index" else torch.zeros(0, C, dtype=F64)
    loss = cv.cross_entropy(logits, target)
    loss.backward()
    assert loss.item() == 0.0
    assert logits.grad.shape == (0, C)
    assert cv.cross_entropy(logits, target, reduction="none").shape == target.shape[:1]


def test_cross_entropy_numeric_stability_saturated_logits():
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]])
    target = torch.tensor([1, 1])
    for eps in (0.0, 0.1):
        value, grad = _value_and_grad(cv.cross_entropy, logits, target, label_smoothing=eps)
        ref_value, ref_grad = _value_and_grad(F.cross_entropy, logits, target, label_smoothing=eps)
        assert torch.isfinite(value) and torch.isfinite(grad).all()
        _close(value, ref_value)
        _close(grad, ref_grad)
    # What a log(softmax) would give: the log of an underflowed probability.
    assert torch.isinf(-torch.log(torch.softmax(logits, 1))[0, 1])


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True], ids=["nw", "w"])
@pytest.mark.parametrize("kind", ["index", "prob"])
def test_cross_entropy_within_an_ulp_of_the_logits_of_torch(dtype, smoothing, weighted, kind):
    # The accurate value differs from F.cross_entropy's (logsumexp(x) - x_y, rounded to
    # about one ulp of the largest logit) by at most that rounding: a few ulps of the
    # largest logit and of the loss, per sample.  The gradients likewise (ATen's
    # exp(log p_c) carries the rounding of log p_c, its p_y - 1 that of p_y): a few
    # ulps of 1 plus |log p_c| ulps of the gradient.  Random, confident (right and
    # wrong), offset and saturated logits.
    g = torch.Generator().manual_seed(5)
    gaps = [15.0, 30.0, 60.0, 100.0] if dtype == torch.float32 else [30.0, 100.0, 300.0, 700.0]
    confident = torch.zeros(len(gaps), C, dtype=F64)
    confident[:, 1] = torch.tensor(gaps)
    logits = torch.cat(
        [
            3 * torch.randn(6, C, generator=g, dtype=F64),
            confident,
            confident.flip(1),
            1000 + torch.randn(3, C, generator=g, dtype=F64),
            torch.tensor([[1e4, -1e4, 0.0, 3.0], [-1e4, 1e4, 1e4, -1e4]], dtype=F64),
        ]
    ).to(dtype)
    target = torch.randint(C, (logits.shape[0],), generator=g)
    target[6 : 6 + 2 * len(gaps)] = 1
    if kind == "prob":
        target = torch.nn.functional.one_hot(target, C).to(dtype)
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=dtype) if weighted else None
    kwargs = dict(weight=weight, label_smoothing=smoothing, reduction="none")
    value, grad = _value_and_grad(cv.cross_entropy, logits, target, **kwargs)
    ref_value, ref_grad = _value_and_grad(F.cross_entropy, logits, target, **kwargs)
    eps = torch.finfo(dtype).eps
    largest = logits.abs().amax(1)
    assert (value - ref_value).abs().le(4 * eps * (largest + ref_value.abs())).all()
    log_p = torch.log_softmax(logits.double(), 1).abs().to(dtype)
    assert (grad - ref_grad).abs().le(8 * eps * (1 + log_p * ref_grad.abs())).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cross_entropy_half_precision_returns_input_dtype(dtype):
    logits = _randn(4, C, 3, dtype=torch.float32)
    target = _randint(C, 4, 3)
    got = cv.cross_entropy(logits.to(dtype), target, label_smoothing=0.1)
    assert got.dtype == dtype
    expected = F.cross_entropy(logits.to(dtype).float(), target, label_smoothing=0.1)
    _close(got, expected.to(dtype))


def test_cross_entropy_accepts_any_integer_index_dtype():
    logits, target = _randn(5, C), _randint(C, 5)
    _close(cv.cross_entropy(logits, target.to(torch.int32)), F.cross_entropy(logits, target))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: cv.cross_entropy(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2).long()),
            TypeError,
            "logits must be a floating-point tensor",
        ),
        (
            lambda: cv.cross_entropy(torch.zeros(2, 3), torch.zeros(2)),
            TypeError,
            r"target must hold integer class indices of shape \(2,\)",
        ),
        (
            lambda: cv.cross_entropy(torch.zeros(2, 3), torch.zeros(2, 3).long()),
            TypeError,
            "holds class probabilities and must be floating point",
        ),
        (
            lambda: cv.cross_entropy(torch.zeros(2, 3), torch.zeros(3).long()),
            ValueError,
            r"target must hold class indices of shape \(2,\).*got \(3,\)",
        ),
        (
            lambda: cv.cross_entropy(torch.zeros(2, 3, 4), torch.zeros(2, 3).long()),
            ValueError,
            r"shape \(2, 4\)",
        ),
        (
            lambda: cv.cross_entropy(torch.zeros(()), torch.zeros(()).long()),
            ValueError,
            r"logits must have shape \(C,\) or \(N, C, d1, ...\)",
        ),
        (
            lambda: cv.cross_entropy(torch.zeros(2, 3), torch.zeros(2).long(), torch.ones(4)),
            ValueError,
            r"weight must have shape \(3,\).*got \(4,\)",
        ),
        (
            lambda: cv.cross_entropy(torch.zeros(2, 3), torch.zeros(2).long(), reduction="avg"),
            ValueError,
            "reduction must be one of 'none', 'mean' or 'sum', got 'avg'",
        ),
        (
            lambda: cv.cross_entropy(torch.zeros(2, 3), torch.zeros(2).long(), label_smoothing=1.5),
            ValueError,
            "label_smoothing must be <= 1.0, got 1.5",
        ),
        (
            lambda: cv.cross_entropy(
                torch.zeros(2, 3), torch.zeros(2).long(), label_smoothing=-0.1
            ),
            ValueError,
            "label_smoothing must be >= 0.0",
        ),
        (
            lambda: cv.cross_entropy(torch.zeros(2, 3), torch.rand(2, 3), ignore_index=0),
            ValueError,
            "ignore_index must be negative with class-probability targets",
        ),
        (
            lambda: cv.cross_entropy(torch.zeros(2, 3), torch.zeros(2, device="meta").long()),
            ValueError,
            r"target must be on the same device as logits \(cpu\), got meta",
        ),
        (
            lambda: cv.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 3]), validate=True),
            ValueError,
            r"target must hold class indices in \[0, 2\] or ignore_index=-100, got \[3\]",
        ),
        (
            lambda: cv.cross_entropy(torch.zeros(2, 3), torch.full((2, 3), 1.5), validate=True),
            ValueError,
            r"target must hold probabilities in \[0, 1\]",
        ),
    ],
)
def test_cross_entropy_invalid_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ------------------------------------------------------------------------ smooth_labels


@pytest.mark.parametrize(
    ("target_shape", "expected"),
    [((5,), (5, 3)), ((2, 4, 6), (2, 3, 4, 6)), ((), (3,))],
)
def test_smooth_labels_shape_puts_classes_in_dim_1(target_shape, expected):
    target = _randint(3, *target_shape)
    assert cv.smooth_labels(target, 3).shape == expected


@pytest.mark.parametrize("spread", ["all", "others"])
def test_smooth_labels_values_same_as_definition(spread):
    target, k, eps = torch.tensor([0, 3, 1]), 4, 0.2
    got = cv.smooth_labels(target, k, eps, spread, dtype=F64)
    for i, y in enumerate(target.tolist()):
        for c in range(k):
            if spread == "all":
                expected = (1 - eps) * (c == y) + eps / k
            else:
                expected = 1 - eps if c == y else eps / (k - 1)
            assert got[i, c].item() == pytest.approx(expected, abs=1e-15)
    _close(got.sum(1), torch.ones(3, dtype=F64))


def test_smooth_labels_seed_article_example():
    # The seed article: [0, 1, 0] becomes [0.05, 0.9, 0.05] for epsilon 0.1.
    got = cv.smooth_labels(torch.tensor(1), 3, 0.1, spread="others", dtype=F64)
    _close(got, torch.tensor([0.05, 0.9, 0.05], dtype=F64))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape", ["unbatched", "batch", "spatial"])
def test_smooth_labels_cross_entropy_same_as_torch_label_smoothing(shape, reduction):
    logits, target, _ = _ce_inputs(shape, "index", False, "none-ignored")
    soft = cv.smooth_labels(target, C, 0.2, dtype=F64)
    _assert_same_value_and_grad(
        lambda x: cv.cross_entropy(x, soft, reduction=reduction),
        lambda x: F.cross_entropy(x, target, label_smoothing=0.2, reduction=reduction),
        logits,
    )


def test_smooth_labels_dtype_and_meta():
    assert cv.smooth_labels(torch.tensor([1]), 3, dtype=torch.float16).dtype == torch.float16
    out = cv.smooth_labels(torch.zeros(2, 5, 5, dtype=torch.long, device="meta"), 3)
    assert out.device.type == "meta" and out.shape == (2, 3, 5, 5)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"target": torch.zeros(2), "num_classes": 3}, TypeError, "target must be an integer"),
        (
            {"target": torch.zeros(2).long(), "num_classes": 1, "spread": "others"},
            ValueError,
            "num_classes must be >= 2 for spread='others', got 1",
        ),
        (
            {"target": torch.zeros(2).long(), "num_classes": 0},
            ValueError,
            "num_classes must be >= 1",
        ),
        (
            {"target": torch.zeros(2).long(), "num_classes": 3, "epsilon": 1.2},
            ValueError,
            "epsilon must be <= 1.0, got 1.2",
        ),
        (
            {"target": torch.zeros(2).long(), "num_classes": 3, "epsilon": -0.1},
            ValueError,
            "epsilon must be >= 0.0",
        ),
        (
            {"target": torch.zeros(2).long(), "num_classes": 3, "spread": "rest"},
            ValueError,
            "spread must be 'all' or 'others', got 'rest'",
        ),
        (
            {"target": torch.zeros(2).long(), "num_classes": 3.0},
            TypeError,
            "num_classes must be an int",
        ),
        (
            {"target": torch.tensor([0, 5]), "num_classes": 3, "validate": True},
            ValueError,
            r"target must hold class indices in \[0, 2\], got \[5\]",
        ),
    ],
)
def test_smooth_labels_invalid_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        cv.smooth_labels(**kwargs)


# ----------------------------------------------------------------- binary_cross_entropy

BCE_SHAPES = {"vector": (7,), "batch": (4, 3), "spatial": (2, 3, 2, 2)}


def _bce_weight(shape, variant):
    if variant == "none":
        return None
    if variant == "full":
        return _rand(*shape, seed=5) + 0.5
    return torch.tensor([0.5, 1.0, 2.0], dtype=F64).view(3, *([1] * (len(shape) - 2)))


def _weight_variants(shape_name):
    return ["none", "full"] + (["per-class"] if shape_name != "vector" else [])


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize(
    ("shape", "weight"),
    [(s, w) for s in BCE_SHAPES for w in _weight_variants(s)],
)
def test_binary_cross_entropy_value_and_grad_same_as_torch(shape, weight, reduction):
    probs = _rand(*BCE_SHAPES[shape]).clamp(0.01, 0.99)
    target = _rand(*BCE_SHAPES[shape], seed=4)  # soft targets
    target.view(-1)[::2] = target.view(-1)[::2].round()  # and some hard ones
    w = _bce_weight(BCE_SHAPES[shape], weight)
    _assert_same_value_and_grad(
        cv.binary_cross_entropy, F.binary_cross_entropy, probs, target, w, reduction=reduction
    )


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_binary_cross_entropy_at_probs_zero_and_one_same_as_torch(reduction):
    probs = torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1e-30, 1 - 1e-16], dtype=F64)
    target = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.3, 0.7, 1.0, 0.0], dtype=F64)
    weight = torch.linspace(0.5, 2.0, 8, dtype=F64)
    value, grad = _value_and_grad(
        cv.binary_cross_entropy, probs, target, weight, reduction=reduction
    )
    ref_value, ref_grad = _value_and_grad(
        F.binary_cross_entropy, probs, target, weight, reduction=reduction
    )
    _close(value, ref_value)
    _close(grad, ref_grad)
    assert torch.isfinite(grad).all()
    # A right certain prediction has a zero gradient, a wrong one a huge finite one.
    assert grad[0] == 0 and grad[3] == 0 and grad[1] < -1e10 and grad[2] > 1e10


def test_binary_cross_entropy_gradcheck():
    probs = (_rand(6) * 0.9 + 0.05).requires_grad_(True)
    target = _rand(6, seed=7).requires_grad_(True)
    assert torch.autograd.gradcheck(_ClampedBinaryCrossEntropy.apply, (probs, target))
    assert torch.autograd.gradgradcheck(_ClampedBinaryCrossEntropy.apply, (probs, target))
    weight = _rand(6, seed=8)
    assert torch.autograd.gradcheck(
        lambda p: cv.binary_cross_entropy(p, target.detach(), weight), (probs,)
    )


def test_binary_cross_entropy_target_gradient_is_finite_and_minus_logit_inside():
    probs = torch.tensor([0.0, 1.0, 0.25, 0.9], dtype=F64)
    target = torch.tensor([0.0, 1.0, 0.5, 0.2], dtype=F64, requires_grad=True)
    cv.binary_cross_entropy(probs, target, reduction="sum").backward()
    assert torch.isfinite(target.grad).all()
    _close(target.grad[2:], -torch.logit(probs[2:]))
    _close(target.grad[:2], torch.tensor([100.0, -100.0], dtype=F64))


def test_binary_cross_entropy_under_torch_compile():
    compiled = torch.compile(cv.binary_cross_entropy, backend="aot_eager", fullgraph=True)
    probs = torch.tensor([0.0, 0.3, 1.0, 0.6], dtype=F64, requires_grad=True)
    target = torch.tensor([1.0, 0.0, 1.0, 0.5], dtype=F64)
    compiled(probs, target).backward()
    ref_probs = probs.detach().clone().requires_grad_(True)
    F.binary_cross_entropy(ref_probs, target).backward()
    _close(probs.grad, ref_probs.grad)


def test_binary_cross_entropy_invalid_input():
    with pytest.raises(
        ValueError, match=r"target must have the same shape as probs \(3,\), got \(3, 1\)"
    ):
        cv.binary_cross_entropy(torch.rand(3), torch.rand(3, 1))
    with pytest.raises(
        ValueError, match=r"weight must broadcast to the shape of probs \(3,\), got \(2,\)"
    ):
        cv.binary_cross_entropy(torch.rand(3), torch.rand(3), torch.ones(2))
    with pytest.raises(ValueError, match=r"weight must broadcast .* got \(2, 3\)"):
        cv.binary_cross_entropy(torch.rand(3), torch.rand(3), torch.ones(2, 3))
    with pytest.raises(
        ValueError, match=r"probs must hold probabilities in \[0, 1\], got values in \[-0.5, 0.5\]"
    ):
        cv.binary_cross_entropy(torch.tensor([-0.5, 0.5]), torch.ones(2), validate=True)
    with pytest.raises(TypeError, match="target must be a floating-point tensor"):
        cv.binary_cross_entropy(torch.rand(2), torch.ones(2).long())


# ------------------------------------------------------- binary_cross_entropy_with_logits


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("pos_weight", [False, True])
@pytest.mark.parametrize(
    ("shape", "weight"),
    [(s, w) for s in BCE_SHAPES for w in _weight_variants(s)],
)
def test_binary_cross_entropy_with_logits_value_and_grad_same_as_torch(
    shape, weight, pos_weight, reduction
):
    shape = BCE_SHAPES[shape]
    logits = _randn(*shape, scale=4.0)
    target = _rand(*shape, seed=4)
    target.view(-1)[::2] = target.view(-1)[::2].round()
    w = _bce_weight(shape, weight)
    # pos_weight broadcasts over the last dimension, as PyTorch documents for (N, C).
    pw = torch.linspace(0.5, 3.0, shape[-1], dtype=F64) if pos_weight else None
    _assert_same_value_and_grad(
        cv.binary_cross_entropy_with_logits,
        F.binary_cross_entropy_with_logits,
        logits,
        target,
        weight=w,
        pos_weight=pw,
        reduction=reduction,
    )


def _softplus_by_hand(z: torch.Tensor) -> torch.Tensor:
    """log(1 + e^z), the log-sum-exp of (0, z) written out: m + log(e^-m + e^(z - m)) with
    m = max(0, z), so that nothing overflows for z = ±1e4 (and the m terms of the
    gradient cancel exactly, whatever subgradient max takes at z = 0)."""
    m = torch.maximum(z, torch.zeros_like(z))
    return m + torch.log(torch.exp(-m) + torch.exp(z - m))


def _bce_logits_brute_force(logits, target, weight, pos_weight, reduction):
    """From the definition: l = -w [p_w y log s(x) + (1 - y) log(1 - s(x))], s the sigmoid,
    with -log s(x) = log(1 + e^-x) and -log(1 - s(x)) = log(1 + e^x); weight and
    pos_weight broadcast to the logits' shape; "mean" over all elements."""
    ones = torch.ones_like(logits)
    w = ones if weight is None else weight * ones
    pw = ones if pos_weight is None else pos_weight * ones
    loss = w * (pw * target * _softplus_by_hand(-logits) + (1 - target) * _softplus_by_hand(logits))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / loss.numel()


def _bce_logits_grad_closed_form(logits, target, weight, pos_weight):
    """d l / d x = w [(p_w y + 1 - y) s(x) - p_w y], with s(x) = exp(-log(1 + e^-x))."""
    ones = torch.ones_like(logits)
    w = ones if weight is None else weight * ones
    pw = ones if pos_weight is None else pos_weight * ones
    sigmoid = torch.exp(-_softplus_by_hand(-logits))
    return w * ((pw * target + 1 - target) * sigmoid - pw * target)


def _bce_pos_weight(shape, variant):
    if variant == "none":
        return None
    if variant == "scalar":
        return torch.tensor(2.5, dtype=F64)
    if variant == "last-dim":  # per class of (N, C) logits
        return torch.linspace(0.5, 3.0, shape[-1], dtype=F64)
    return _rand(*shape, seed=6) * 3  # one per element, some below 1


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("pos_weight", ["none", "scalar", "last-dim", "full"])
@pytest.mark.parametrize(
    ("shape", "weight"),
    [(s, w) for s in BCE_SHAPES for w in _weight_variants(s)],
)
def test_binary_cross_entropy_with_logits_same_as_brute_force_definition(
    shape, weight, pos_weight, reduction
):
    # Not against F.binary_cross_entropy_with_logits: the reference calls its ATen kernel.
    shape = BCE_SHAPES[shape]
    logits = _randn(*shape, scale=4.0)
    target = _rand(*shape, seed=4)
    target.view(-1)[::2] = target.view(-1)[::2].round()
    w, pw = _bce_weight(shape, weight), _bce_pos_weight(shape, pos_weight)
    kwargs = dict(weight=w, pos_weight=pw, reduction=reduction)
    value, grad = _value_and_grad(cv.binary_cross_entropy_with_logits, logits, target, **kwargs)
    ref_value, ref_grad = _value_and_grad(_bce_logits_brute_force, logits, target, w, pw, reduction)
    _close(value, ref_value)
    _close(grad, ref_grad)


def test_binary_cross_entropy_with_logits_broadcasts_row_weight_like_brute_force():
    # A weight per sample (N, 1) and a pos_weight per class (C,) on (N, C) logits.
    logits, target = _randn(4, 3, scale=4.0), _rand(4, 3, seed=4)
    weight = torch.tensor([[0.5], [1.0], [2.0], [0.0]], dtype=F64)
    pos_weight = torch.tensor([0.3, 1.0, 4.0], dtype=F64)
    for reduction in ("none", "mean", "sum"):
        kwargs = dict(weight=weight, pos_weight=pos_weight, reduction=reduction)
        value, grad = _value_and_grad(cv.binary_cross_entropy_with_logits, logits, target, **kwargs)
        ref_value, ref_grad = _value_and_grad(
            _bce_logits_brute_force, logits, target, weight, pos_weight, reduction
        )
        _close(value, ref_value)
        _close(grad, ref_grad)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_binary_cross_entropy_with_logits_extreme_logits_same_as_brute_force(dtype):
    logits = torch.tensor([1e4, -1e4, 1e4, -1e4, 1e4, -1e4, 30.0, -30.0, 0.0], dtype=dtype)
    target = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.3, 0.7, 0.0, 1.0, 0.25], dtype=dtype)
    weight = torch.linspace(0.5, 2.0, 9, dtype=dtype)
    pos_weight = torch.tensor(2.5, dtype=dtype)
    for reduction in ("none", "mean", "sum"):
        kwargs = dict(weight=weight, pos_weight=pos_weight, reduction=reduction)
        value, grad = _value_and_grad(cv.binary_cross_entropy_with_logits, logits, target, **kwargs)
        # The brute force in float64 on the same inputs, judged at the dtype's tolerance.
        wide = [t.double() for t in (logits, target, weight, pos_weight)]
        ref_value, ref_grad = _value_and_grad(_bce_logits_brute_force, *wide, reduction)
        assert torch.isfinite(ref_value).all() and torch.isfinite(ref_grad).all()
        _close(value.double(), ref_value, **TOLERANCES[dtype])
        _close(grad.double(), ref_grad, **TOLERANCES[dtype])
    # Each gradient is the closed form, e.g. 0.7 w at x = 1e4, y = 0.3 (float64 only).
    x = logits.double().requires_grad_(True)
    cv.binary_cross_entropy_with_logits(
        x, target.double(), weight.double(), pos_weight.double(), reduction="sum"
    ).backward()
    _close(
        x.grad,
        _bce_logits_grad_closed_form(*(t.double() for t in (logits, target, weight, pos_weight))),
    )


def test_binary_cross_entropy_with_logits_gradient_at_zero_is_sigmoid_minus_target():
    logits = torch.zeros(3, dtype=F64, requires_grad=True)
    target = torch.tensor([0.0, 1.0, 0.25], dtype=F64)
    cv.binary_cross_entropy_with_logits(logits, target, reduction="sum").backward()
    _close(logits.grad, 0.5 - target)
    # The max/abs formula differentiated by autograd gets the subgradients wrong at 0.
    x = torch.zeros(3, dtype=F64, requires_grad=True)
    (x.clamp_min(0) - x * target + torch.log1p(torch.exp(-x.abs()))).sum().backward()
    assert not torch.allclose(x.grad, 0.5 - target)


@pytest.mark.parametrize("magnitude", [1e4, 1e30])
def test_binary_cross_entropy_with_logits_numeric_stability(magnitude):
    logits = torch.tensor([magnitude, -magnitude, magnitude, -magnitude])
    target = torch.tensor([1.0, 0.0, 0.0, 1.0])
    pw = torch.tensor(2.0)
    value, grad = _value_and_grad(
        cv.binary_cross_entropy_with_logits, logits, target, pos_weight=pw, reduction="none"
    )
    ref_value, ref_grad = _value_and_grad(
        F.binary_cross_entropy_with_logits, logits, target, pos_weight=pw, reduction="none"
    )
    assert torch.isfinite(value).all() and torch.isfinite(grad).all()
    _close(value, ref_value)
    _close(grad, ref_grad)


def test_binary_cross_entropy_with_logits_invalid_input():
    with pytest.raises(
        ValueError, match=r"pos_weight must broadcast to the shape of logits \(4, 3\), got \(4,\)"
    ):
        cv.binary_cross_entropy_with_logits(
            torch.zeros(4, 3), torch.zeros(4, 3), pos_weight=torch.ones(4)
        )
    with pytest.raises(
        ValueError, match=r"target must have the same shape as logits \(4, 3\), got \(4,\)"
    ):
        cv.binary_cross_entropy_with_logits(torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(ValueError, match=r"target must hold probabilities in \[0, 1\]"):
        cv.binary_cross_entropy_with_logits(torch.zeros(2), torch.tensor([0.0, 2.0]), validate=True)


# ---------------------------------------------------------------- sigmoid_focal_loss

GAMMAS = [0.0, 0.5, 1.0, 2.0]


def _torchvision_focal(logits, target, alpha=0.25, gamma=2.0, reduction="mean"):
    return torchvision.ops.sigmoid_focal_loss(logits, target, alpha, gamma, reduction)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("alpha", [0.25, -1.0])
@pytest.mark.parametrize("gamma", GAMMAS)
def test_sigmoid_focal_loss_value_and_grad_same_as_torchvision(gamma, alpha, soft, reduction):
    logits = _randn(4, 3, 2, scale=3.0)
    target = _rand(4, 3, 2, seed=9) if soft else _randint(2, 4, 3, 2, seed=9).to(F64)
    _assert_same_value_and_grad(
        cv.sigmoid_focal_loss,
        _torchvision_focal,
        logits,
        target,
        alpha=alpha,
        gamma=gamma,
        reduction=reduction,
    )


@pytest.mark.parametrize("gamma", GAMMAS)
def test_sigmoid_focal_loss_same_as_brute_force_definition(gamma):
    logits = _randn(6, scale=3.0)
    target = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.3, 0.9], dtype=F64)
    got = cv.sigmoid_focal_loss(logits, target, alpha=0.3, gamma=gamma, reduction="none")
    for i in range(6):
        x, y = float(logits[i]), float(target[i])
        p = 1 / (1 + math.exp(-x))
        p_t = p * y + (1 - p) * (1 - y)
        ce = -(y * math.log(p) + (1 - y) * math.log(1 - p))
        alpha_t = 0.3 * y + 0.7 * (1 - y)
        assert got[i].item() == pytest.approx(alpha_t * (1 - p_t) ** gamma * ce, rel=1e-12)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_sigmoid_focal_loss_numeric_stability_saturated_logits(gamma):
    logits = torch.tensor([1e4, -1e4, 1e4, -1e4, 30.0, -30.0])
    target = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    value, grad = _value_and_grad(
        cv.sigmoid_focal_loss, logits, target, gamma=gamma, reduction="none"
    )
    assert torch.isfinite(value).all() and torch.isfinite(grad).all()
    # Right confident predictions cost nothing; wrong ones cost alpha_t * |x|.
    _close(value[:2], torch.zeros(2))
    _close(value[2:4], torch.tensor([0.75e4, 0.25e4]))
    ref_value, ref_grad = _value_and_grad(
        _torchvision_focal, logits, target, gamma=gamma, reduction="none"
    )
    _close(value, ref_value)
    finite = torch.isfinite(ref_grad)
    _close(grad[finite], ref_grad[finite])
    # Soft targets stay finite as well.
    value, grad = _value_and_grad(cv.sigmoid_focal_loss, logits, torch.full((6,), 0.3), gamma=gamma)
    assert torch.isfinite(value) and torch.isfinite(grad).all()


def test_sigmoid_focal_loss_torchvision_gradient_is_nan_for_gamma_half_on_saturated_logits():
    """Why our log-space factor exists: d/dx (1 - p_t) ** 0.5 = inf * 0 at p_t == 1."""
    logits, target = torch.tensor([1e4]), torch.tensor([1.0])
    _, ref_grad = _value_and_grad(_torchvision_focal, logits, target, gamma=0.5)
    assert torch.isnan(ref_grad).all()
    _, grad = _value_and_grad(cv.sigmoid_focal_loss, logits, target, gamma=0.5)
    assert torch.equal(grad, torch.zeros(1))


def test_sigmoid_focal_loss_default_reduction_is_mean_unlike_torchvision():
    logits, target = _randn(5), _randint(2, 5).to(F64)
    _close(
        cv.sigmoid_focal_loss(logits, target),
        torchvision.ops.sigmoid_focal_loss(logits, target).mean(),
    )


def test_sigmoid_focal_loss_gamma_zero_is_alpha_weighted_bce():
    logits, target = _randn(5), _randint(2, 5).to(F64)
    alpha_t = 0.25 * target + 0.75 * (1 - target)
    _close(
        cv.sigmoid_focal_loss(logits, target, gamma=0.0, reduction="none"),
        alpha_t * F.binary_cross_entropy_with_logits(logits, target, reduction="none"),
    )


def test_sigmoid_focal_loss_invalid_input():
    with pytest.raises(ValueError, match=r"gamma must be >= 0\.0, got -1"):
        cv.sigmoid_focal_loss(torch.zeros(2), torch.zeros(2), gamma=-1.0)
    with pytest.raises(ValueError, match=r"alpha must be <= 1\.0, got 1\.5"):
        cv.sigmoid_focal_loss(torch.zeros(2), torch.zeros(2), alpha=1.5)
    with pytest.raises(ValueError, match=r"target must have the same shape as logits \(2,\)"):
        cv.sigmoid_focal_loss(torch.zeros(2), torch.zeros(3))
    with pytest.raises(TypeError, match="gamma must be a number, got Tensor"):
        cv.sigmoid_focal_loss(torch.zeros(2), torch.zeros(2), gamma=torch.tensor(2.0))


# ---------------------------------------------------------------- softmax_focal_loss


def _kornia_alpha(alpha: float | None, num_classes: int):
    """kornia's scalar alpha as our per-class tensor: 1 - alpha for class 0, alpha after."""
    if alpha is None:
        return None
    return torch.tensor([1 - alpha] + [alpha] * (num_classes - 1), dtype=F64)


@pytest.mark.parametrize("reduction", ["none", "sum"])
@pytest.mark.parametrize("alpha", [None, 0.25])
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("shape", [(6, C), (2, C, 3, 2)])
def test_softmax_focal_loss_value_and_grad_same_as_kornia(shape, gamma, alpha, reduction):
    logits = _randn(*shape, scale=3.0)
    target = _randint(C, shape[0], *shape[2:])
    target.view(-1)[0] = -100

    def kornia_focal(x, t):
        out = kornia.losses.focal_loss(x, t, alpha, gamma, reduction=reduction)
        return out.sum(1) if reduction == "none" else out  # its "none" keeps (N, C, ...)

    _assert_same_value_and_grad(
        lambda x, t: cv.softmax_focal_loss(
            x, t, _kornia_alpha(alpha, C), gamma, reduction=reduction
        ),
        kornia_focal,
        logits,
        target,
    )


def _softmax_focal_brute_force(logits, target, alpha, gamma, ignore_index):
    total, count = 0.0, 0
    for i in range(logits.shape[0]):
        y = int(target[i])
        if y == ignore_index:
            continue
        row = [float(v) for v in logits[i]]
        z = sum(math.exp(v) for v in row)
        p_y = math.exp(row[y]) / z
        a = 1.0 if alpha is None else float(alpha[y])
        total += -a * (1 - p_y) ** gamma * math.log(p_y)
        count += 1
    return torch.tensor(total / count, dtype=F64)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_softmax_focal_loss_mean_same_as_brute_force_definition(gamma):
    logits = _randn(7, 3)
    target = torch.tensor([0, 2, 1, 7, 2, 7, 0])
    alpha = torch.tensor([0.2, 1.0, 3.0], dtype=F64)
    got = cv.softmax_focal_loss(logits, target, alpha, gamma, ignore_index=7)
    _close(got, _softmax_focal_brute_force(logits, target, alpha, gamma, 7))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape", ["unbatched", "batch", "spatial"])
def test_softmax_focal_loss_gamma_zero_is_cross_entropy(shape, reduction):
    logits, target, _ = _ce_inputs(shape, "index", False, "none-ignored")
    _assert_same_value_and_grad(
        lambda x, t: cv.softmax_focal_loss(x, t, gamma=0.0, reduction=reduction),
        lambda x, t: F.cross_entropy(x, t, reduction=reduction),
        logits,
        target,
    )


@pytest.mark.parametrize("gamma", GAMMAS)
def test_softmax_focal_loss_numeric_stability_saturated_logits(gamma):
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, 0.0, 1e4]])
    target = torch.tensor([0, 0, 2])
    value, grad = _value_and_grad(
        cv.softmax_focal_loss, logits, target, gamma=gamma, reduction="none"
    )
    assert torch.isfinite(value).all() and torch.isfinite(grad).all()
    _close(value, torch.tensor([0.0, 2e4, 0.0]))
    # A single class (C = 1) has p = 1 everywhere: loss 0, gradient 0, not NaN.
    value, grad = _value_and_grad(
        cv.softmax_focal_loss,
        _randn(3, 1, dtype=torch.float32),
        torch.zeros(3, dtype=torch.long),
        gamma=gamma,
    )
    assert value.item() == 0.0 and torch.equal(grad, torch.zeros(3, 1))


def test_softmax_focal_loss_all_ignored_is_zero_with_zero_grad():
    logits = _randn(2, C, 3).requires_grad_(True)
    loss = cv.softmax_focal_loss(logits, torch.full((2, 3), -100))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))


def test_softmax_focal_loss_invalid_input():
    with pytest.raises(
        ValueError, match=r"alpha must have shape \(4,\) \(one value per class\), got \(3,\)"
    ):
        cv.softmax_focal_loss(torch.zeros(2, 4), torch.zeros(2).long(), alpha=torch.ones(3))
    with pytest.raises(ValueError, match=r"gamma must be >= 0\.0, got -0\.5"):
        cv.softmax_focal_loss(torch.zeros(2, 4), torch.zeros(2).long(), gamma=-0.5)
    with pytest.raises(TypeError, match="target must be an integer tensor of class indices"):
        cv.softmax_focal_loss(torch.zeros(2, 4), torch.zeros(2))
    with pytest.raises(ValueError, match=r"target must hold class indices in \[0, 3\]"):
        cv.softmax_focal_loss(torch.zeros(2, 4), torch.tensor([0, 4]), validate=True)


# -------------------------------------------------------------------------- hinge_loss


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("margin", [1.0, 0.5])
def test_hinge_loss_same_as_brute_force_definition(margin, reduction):
    scores = _randn(3, 4)
    target = _randint(2, 3, 4) * 2 - 1
    got = cv.hinge_loss(scores, target, margin, reduction)
    expected = torch.tensor(
        [max(0.0, margin - float(y) * float(s)) for s, y in zip(scores.view(-1), target.view(-1))],
        dtype=F64,
    ).view(3, 4)
    expected = {"none": expected, "mean": expected.mean(), "sum": expected.sum()}[reduction]
    _close(got, expected)
    # Float labels give the same.
    _close(cv.hinge_loss(scores, target.to(F64), margin, reduction), expected)


def test_hinge_loss_gradient_is_minus_label_inside_margin_and_zero_at_kink():
    scores = torch.tensor([0.2, -0.3, 1.0, 3.0], dtype=F64, requires_grad=True)
    target = torch.tensor([1, -1, 1, 1])
    cv.hinge_loss(scores, target, reduction="sum").backward()
    _close(scores.grad, torch.tensor([-1.0, 1.0, 0.0, 0.0], dtype=F64))


def test_hinge_loss_invalid_input():
    with pytest.raises(
        ValueError, match=r"target must only hold values in the set \{-1, 1\}, got \[0\]"
    ):
        cv.hinge_loss(torch.zeros(3), torch.tensor([0, 1, -1]), validate=True)
    with pytest.raises(ValueError, match=r"margin must be >= 0\.0, got -1"):
        cv.hinge_loss(torch.zeros(3), torch.ones(3), margin=-1.0)
    with pytest.raises(ValueError, match=r"target must have the same shape as scores \(3,\)"):
        cv.hinge_loss(torch.zeros(3), torch.ones(3, 1))


# ---------------------------------------------------------------- multiclass_hinge_loss


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("margin", [1.0, 0.3])
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("shape", [(C,), (6, C)])
def test_multiclass_hinge_loss_value_and_grad_same_as_torch(shape, p, margin, weighted, reduction):
    logits = _randn(*shape, scale=0.7)
    target = _randint(C, *shape[:-1])
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=F64) if weighted else None
    _assert_same_value_and_grad(
        lambda x, t: cv.multiclass_hinge_loss(x, t, margin, p, weight, reduction),
        lambda x, t: F.multi_margin_loss(x, t, p, margin, weight, reduction=reduction),
        logits,
        target,
    )


def test_multiclass_hinge_loss_gradient_at_kink_same_as_torch():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0]], dtype=F64)  # 1 - 2 + 1 == 0
    target = torch.tensor([0, 2])
    for p in (1, 2):
        _assert_same_value_and_grad(
            lambda x, t, p=p: cv.multiclass_hinge_loss(x, t, p=p),
            lambda x, t, p=p: F.multi_margin_loss(x, t, p=p),
            logits,
            target,
        )


def test_multiclass_hinge_loss_empty_batch_same_as_torch():
    logits, target = torch.zeros(0, 3, dtype=F64), torch.zeros(0, dtype=torch.long)
    _close(cv.multiclass_hinge_loss(logits, target), F.multi_margin_loss(logits, target))


def test_multiclass_hinge_loss_invalid_input():
    with pytest.raises(ValueError, match="p must be 1 or 2, got 3"):
        cv.multiclass_hinge_loss(torch.zeros(2, 3), torch.zeros(2).long(), p=3)
    with pytest.raises(
        ValueError, match=r"logits must have shape \(N, C\) or \(C,\), got \(2, 3, 4\)"
    ):
        cv.multiclass_hinge_loss(torch.zeros(2, 3, 4), torch.zeros(2, 4).long())
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        cv.multiclass_hinge_loss(torch.zeros(2, 3), torch.zeros(2).long(), weight=torch.ones(2))
    with pytest.raises(ValueError, match=r"target must hold class indices in \[0, 2\], got \[-1\]"):
        cv.multiclass_hinge_loss(torch.zeros(2, 3), torch.tensor([0, -1]), validate=True)


# ----------------------------------------------------------------- hinge_embedding_loss


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("labels", ["plus-minus-one", "zero-one", "float-mixed"])
@pytest.mark.parametrize("margin", [1.0, 2.5])
def test_hinge_embedding_loss_value_and_grad_same_as_torch(margin, labels, reduction):
    distance = _rand(4, 5) * 4.0
    if labels == "plus-minus-one":
        target = _randint(2, 4, 5) * 2 - 1
    elif labels == "zero-one":
        target = _randint(2, 4, 5)
    else:
        target = torch.tensor([1.0, -1.0, 0.0, 0.5, 2.0], dtype=F64).repeat(4, 1)
    _assert_same_value_and_grad(
        cv.hinge_embedding_loss,
        F.hinge_embedding_loss,
        distance,
        target,
        margin=margin,
        reduction=reduction,
    )


def test_hinge_embedding_loss_with_zero_one_labels_adds_both_terms():
    """The seed article's snippet: label 0 gives x + max(0, m - x) = max(x, m)."""
    scores = torch.tensor([1.2, -0.5, 0.8])
    labels = torch.tensor([1, 0, 1])
    got = cv.hinge_embedding_loss(scores, labels, reduction="none")
    _close(got, torch.tensor([1.2, 1.0, 0.8]))  # label 1: the raw score, even when right
    with pytest.raises(
        ValueError, match=r"target must only hold values in the set \{-1, 1\}, got \[0\]"
    ):
        cv.hinge_embedding_loss(scores, labels, validate=True)


def test_hinge_embedding_loss_gradient_at_kink_same_as_torch():
    distance = torch.tensor([1.0, 0.5, 1.0], dtype=F64)
    target = torch.tensor([-1, -1, 1])
    _assert_same_value_and_grad(cv.hinge_embedding_loss, F.hinge_embedding_loss, distance, target)


# ------------------------------------------------------------------- all the functions

ALL_LOSSES = {
    "cross_entropy": (
        cv.cross_entropy,
        lambda d, dev: (
            torch.randn(3, 4, 2, dtype=d, device=dev),
            torch.tensor([[0, 3], [1, -100], [2, 2]], device=dev),
        ),
    ),
    "cross_entropy_prob": (
        cv.cross_entropy,
        lambda d, dev: (
            torch.randn(3, 4, dtype=d, device=dev),
            torch.full((3, 4), 0.25, dtype=d, device=dev),
        ),
    ),
    "binary_cross_entropy": (
        cv.binary_cross_entropy,
        lambda d, dev: (
            torch.rand(3, 4, dtype=d, device=dev),
            torch.rand(3, 4, dtype=d, device=dev),
        ),
    ),
    "binary_cross_entropy_with_logits": (
        cv.binary_cross_entropy_with_logits,
        lambda d, dev: (
            torch.randn(3, 4, dtype=d, device=dev),
            torch.rand(3, 4, dtype=d, device=dev),
        ),
    ),
    "sigmoid_focal_loss": (
        cv.sigmoid_focal_loss,
        lambda d, dev: (
            torch.randn(3, 4, dtype=d, device=dev),
            torch.rand(3, 4, dtype=d, device=dev),
        ),
    ),
    "softmax_focal_loss": (
        cv.softmax_focal_loss,
        lambda d, dev: (
            torch.randn(3, 4, 2, dtype=d, device=dev),
            torch.tensor([[0, 3], [1, -100], [2, 2]], device=dev),
        ),
    ),
    "hinge_loss": (
        cv.hinge_loss,
        lambda d, dev: (torch.randn(3, 4, dtype=d, device=dev), torch.ones(3, 4, device=dev)),
    ),
    "multiclass_hinge_loss": (
        cv.multiclass_hinge_loss,
        lambda d, dev: (
            torch.randn(3, 4, dtype=d, device=dev),
            torch.tensor([0, 3, 1], device=dev),
        ),
    ),
    "hinge_embedding_loss": (
        cv.hinge_embedding_loss,
        lambda d, dev: (torch.rand(3, 4, dtype=d, device=dev), torch.ones(3, 4, device=dev)),
    ),
}


@pytest.mark.parametrize("name", list(ALL_LOSSES))
def test_loss_runs_on_meta_tensors(name):
    fn, make = ALL_LOSSES[name]
    x, target = make(torch.float32, "meta")
    x.requires_grad_(True)
    for reduction in ("none", "mean", "sum"):
        out = fn(x, target, reduction=reduction)
        assert out.device.type == "meta"
    out.backward()
    assert x.grad.shape == x.shape and x.grad.device.type == "meta"


@pytest.mark.parametrize("name", list(ALL_LOSSES))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_loss_half_precision_returns_input_dtype(name, dtype):
    fn, make = ALL_LOSSES[name]
    torch.manual_seed(0)
    x, target = make(torch.float32, "cpu")
    if target.is_floating_point():
        target = target.to(dtype).float()
    x_half = x.to(dtype).requires_grad_(True)
    out = fn(x_half, target.to(dtype) if target.is_floating_point() else target)
    out.backward()
    assert out.dtype == dtype and x_half.grad.dtype == dtype
    _close(out.float(), fn(x_half.detach().float(), target), **TOLERANCES[dtype])


@pytest.mark.parametrize("name", list(ALL_LOSSES))
def test_loss_on_device_same_as_cpu(name, device):
    fn, make = ALL_LOSSES[name]
    torch.manual_seed(0)
    x, target = make(F64, "cpu")
    value, grad = _value_and_grad(fn, x, target)
    value_dev, grad_dev = _value_and_grad(fn, x.to(device), target.to(device))
    assert value_dev.device.type == device.type
    _close(value_dev.cpu(), value)
    _close(grad_dev.cpu(), grad)


@pytest.mark.parametrize("name", list(ALL_LOSSES))
def test_loss_invalid_reduction_and_dtype(name):
    fn, make = ALL_LOSSES[name]
    x, target = make(torch.float32, "cpu")
    with pytest.raises(ValueError, match="reduction must be one of 'none', 'mean' or 'sum'"):
        fn(x, target, reduction="batchmean")
    with pytest.raises(TypeError, match="must be a floating-point tensor"):
        fn(x.long(), target)
    with pytest.raises(ValueError, match="must be on the same device as"):
        fn(x, target.to("meta"))


# ------------------------------------------ cross entropy: the fast path vs the composition


def _ce_cases(generator):
    """Named (logits, target, weight, ignore_index, label_smoothing) in float64."""

    def randn(*shape, scale=3.0):
        return torch.randn(*shape, generator=generator, dtype=torch.float64) * scale

    weight = torch.rand(5, generator=generator, dtype=torch.float64) + 0.1
    labels = torch.randint(5, (8,), generator=generator)
    ignored = labels.clone()
    ignored[::3] = -100
    confident = torch.zeros(4, 5, dtype=torch.float64)
    confident[:, 0] = torch.tensor([15.0, 40.0, 300.0, -300.0])
    probs = torch.softmax(randn(8, 5), 1)
    wrong = confident.clone()
    wrong[:, 1] = -800.0  # p_y below float64's smallest number in the last row
    one_hot = torch.nn.functional.one_hot(torch.zeros(4, dtype=torch.long), 5).double()
    return {
        "random": (randn(8, 5), labels, None, -100, 0.0),
        "weights, smoothing, ignored": (randn(8, 5), ignored, weight, -100, 0.3),
        "many classes": (randn(4, 300, scale=10.0), labels[:4], weight[:1].expand(300), -100, 0.1),
        "confident, wrong class": (wrong, torch.ones(4, dtype=torch.long), weight, -100, 0.1),
        "confident probabilities": (confident, one_hot, None, -100, 0.0),
        "every target ignored": (randn(3, 5), torch.full((3,), 2), weight, 2, 0.1),
        "segmentation": (
            randn(2, 5, 3, 4),
            torch.randint(5, (2, 3, 4), generator=generator),
            weight,
            -100,
            0.1,
        ),
        "unbatched": (randn(5), torch.tensor(4), None, -100, 0.2),
        "confident": (confident, torch.zeros(4, dtype=torch.long), None, -100, 0.0),
        "ties": (
            torch.zeros(3, 5, dtype=torch.float64),
            torch.tensor([0, 1, 4]),
            weight,
            -100,
            0.0,
        ),
        "probabilities": (randn(8, 5), probs, weight, -100, 0.2),
    }


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize(
    "case",
    [
        "random",
        "weights, smoothing, ignored",
        "every target ignored",
        "segmentation",
        "unbatched",
        "confident",
        "ties",
        "probabilities",
        "many classes",
        "confident, wrong class",
        "confident probabilities",
    ],
)
def test_cross_entropy_fast_path_equals_the_composition(generator, case, reduction):
    logits, target, weight, ignore_index, smoothing = _ce_cases(generator)[case]
    fast = logits.clone().requires_grad_()
    composed = logits.clone().requires_grad_()
    got = cv.cross_entropy(fast, target, weight, ignore_index, smoothing, reduction)
    want = classification._cross_entropy_composed(
        composed, target, weight, ignore_index, smoothing, reduction
    )
    # Both are accurate to a few ulps, down to the smallest (confident) values: no
    # absolute tolerance beyond float64's subnormal range.
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-300)
    upstream = torch.linspace(0.5, 1.5, got.numel(), dtype=got.dtype).view(got.shape)
    (got_grad,) = torch.autograd.grad(got, fast, upstream)
    (want_grad,) = torch.autograd.grad(want, composed, upstream)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-11, atol=1e-300)

"""Tests of the regression losses (``cvloss_ref/regression.py``).

References: ``F.mse_loss``, ``F.l1_loss``, ``F.smooth_l1_loss``, ``F.huber_loss``,
``torch.sqrt(F.mse_loss)`` and brute-force loops written from the definitions in
this file.  Values and gradients are compared in float64.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

from cvloss_ref import huber_loss, l1_loss, mean_error, mse_loss, rmse_loss, smooth_l1_loss
from tests._tolerances import TOLERANCES

LOSSES = [mean_error, mse_loss, l1_loss, rmse_loss, smooth_l1_loss, huber_loss]
REDUCTIONS = ["none", "mean", "sum"]
HALF_DTYPES = [torch.float16, torch.bfloat16]
SHAPES = [(8,), (4, 3), (2, 3, 4)]


# ----------------------------------------------------------------------------- helpers


def _pair(shape, generator, dtype=torch.float64, scale=1.0):
    input = scale * torch.randn(shape, generator=generator, dtype=torch.float64)
    target = scale * torch.randn(shape, generator=generator, dtype=torch.float64)
    return input.to(dtype), target.to(dtype)


def _value_and_grad(fn, input, target, cotangent=None, **kwargs):
    """``fn(input, target)`` and the gradient of ``<cotangent, fn(...)>`` w.r.t. ``input``."""
    input = input.detach().clone().requires_grad_(True)
    out = fn(input, target, **kwargs)
    if cotangent is None:
        cotangent = torch.ones_like(out)
    (grad,) = torch.autograd.grad(out, input, cotangent)
    return out.detach(), grad


def _assert_same_value_and_grad(ours, theirs, input, target, generator, **kwargs):
    out, _ = _value_and_grad(theirs, input, target, **kwargs)
    cotangent = torch.randn(out.shape, generator=generator, dtype=out.dtype)
    expected = _value_and_grad(theirs, input, target, cotangent, **kwargs)
    received = _value_and_grad(ours, input, target, cotangent, **kwargs)
    torch.testing.assert_close(received, expected)


def _brute_reduce(values, reduction):
    if reduction == "none":
        return values
    total = sum(values.flatten().tolist())
    if reduction == "sum":
        return torch.tensor(total, dtype=torch.float64)
    return torch.tensor(total / values.numel(), dtype=torch.float64)


def _brute_elementwise(rule, input, target):
    d = (input - target).flatten().tolist()
    return torch.tensor([rule(x) for x in d], dtype=torch.float64).reshape(input.shape)


def _brute_smooth_l1(d, beta):
    if abs(d) < beta:
        return 0.5 * d * d / beta
    return abs(d) - 0.5 * beta


def _brute_huber(d, delta):
    if abs(d) <= delta:
        return 0.5 * d * d
    return delta * (abs(d) - 0.5 * delta)


def _at_threshold(threshold):
    """Errors of exactly ±threshold (and others), exact in binary."""
    target = torch.tensor([[0.25, -1.0, 2.0, 0.5], [-0.75, 1.5, 0.0, -2.0]], dtype=torch.float64)
    diff = torch.tensor([[1, -1, 0.5, -0.25], [2, -3, 1, 0.25]], dtype=torch.float64) * threshold
    return target + diff, target


# ----------------------------------------------------------------------------- values and gradients


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("ours", "theirs"), [(mse_loss, F.mse_loss), (l1_loss, F.l1_loss)])
def test_value_same_as_torch(generator, ours, theirs, shape, reduction):
    input, target = _pair(shape, generator)
    _assert_same_value_and_grad(ours, theirs, input, target, generator, reduction=reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 2.0])
def test_smooth_l1_loss_value_same_as_f_smooth_l1_loss(generator, beta, reduction):
    input, target = _pair((4, 5), generator, scale=1.5)
    _assert_same_value_and_grad(
        smooth_l1_loss, F.smooth_l1_loss, input, target, generator, beta=beta, reduction=reduction
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("delta", [0.5, 1.0, 2.0])
def test_huber_loss_value_same_as_f_huber_loss(generator, delta, reduction):
    input, target = _pair((4, 5), generator, scale=1.5)
    _assert_same_value_and_grad(
        huber_loss, F.huber_loss, input, target, generator, delta=delta, reduction=reduction
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_rmse_loss_value_same_as_torch(generator, reduction):
    input, target = _pair((4, 5), generator)

    def reference(input, target, reduction):
        if reduction == "none":
            return torch.abs(input - target)
        if reduction == "sum":
            return torch.linalg.vector_norm(input - target)
        return torch.sqrt(F.mse_loss(input, target))

    _assert_same_value_and_grad(rmse_loss, reference, input, target, generator, reduction=reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_rmse_loss_with_eps_same_as_root_of_mse_plus_eps(generator, reduction):
    input, target = _pair((3, 4), generator)

    def reference(input, target, reduction):
        return torch.sqrt(F.mse_loss(input, target, reduction=reduction) + 1e-3)

    _assert_same_value_and_grad(
        lambda *a, **k: rmse_loss(*a, eps=1e-3, **k),
        reference,
        input,
        target,
        generator,
        reduction=reduction,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mean_error_value_same_as_brute_force(generator, reduction):
    input, target = _pair((3, 4), generator)
    expected = _brute_reduce(_brute_elementwise(lambda d: d, input, target), reduction)
    torch.testing.assert_close(mean_error(input, target, reduction), expected)


def test_mean_error_gradient_is_constant_one_over_n(generator):
    input, target = _pair((3, 4), generator)
    _, grad = _value_and_grad(mean_error, input, target)
    torch.testing.assert_close(grad, torch.full((3, 4), 1 / 12, dtype=torch.float64))


def test_mean_error_cancels_opposite_errors():
    input = torch.tensor([1.0, -1.0, 5.0, -5.0])
    assert mean_error(input, torch.zeros(4)).item() == 0.0
    assert l1_loss(input, torch.zeros(4)).item() == 3.0


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [0.5, 1.0, 3.0])
def test_smooth_l1_loss_value_same_as_brute_force(generator, beta, reduction):
    input, target = _pair((3, 5), generator, scale=2.0)
    values = _brute_elementwise(lambda d: _brute_smooth_l1(d, beta), input, target)
    torch.testing.assert_close(
        smooth_l1_loss(input, target, beta, reduction), _brute_reduce(values, reduction)
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("delta", [0.5, 1.0, 3.0])
def test_huber_loss_value_same_as_brute_force(generator, delta, reduction):
    input, target = _pair((3, 5), generator, scale=2.0)
    values = _brute_elementwise(lambda d: _brute_huber(d, delta), input, target)
    torch.testing.assert_close(
        huber_loss(input, target, delta, reduction), _brute_reduce(values, reduction)
    )


@pytest.mark.parametrize("delta", [0.1, 0.5, 1.0, 2.0, 7.0])
def test_huber_loss_equals_delta_times_smooth_l1_loss(generator, delta):
    input, target = _pair((4, 5), generator, scale=3.0)
    huber, huber_grad = _value_and_grad(huber_loss, input, target, delta=delta, reduction="none")
    smooth, smooth_grad = _value_and_grad(
        smooth_l1_loss, input, target, beta=delta, reduction="none"
    )
    torch.testing.assert_close(huber, delta * smooth)
    torch.testing.assert_close(huber_grad, delta * smooth_grad)


@pytest.mark.parametrize(
    ("loss", "kwargs", "peer", "peer_kwargs"),
    [
        (smooth_l1_loss, {"beta": 0.5}, F.smooth_l1_loss, {"beta": 0.5}),
        (huber_loss, {"delta": 2.0}, F.huber_loss, {"delta": 2.0}),
    ],
)
def test_value_and_gradient_at_the_threshold_same_as_torch(
    generator, loss, kwargs, peer, peer_kwargs
):
    threshold = next(iter(kwargs.values()))
    input, target = _at_threshold(threshold)
    assert torch.equal((input - target).abs()[0, :2], torch.full((2,), threshold).double())
    out, grad = _value_and_grad(loss, input, target, reduction="none", **kwargs)
    expected, expected_grad = _value_and_grad(peer, input, target, reduction="none", **peer_kwargs)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(grad, expected_grad)


def test_smooth_l1_loss_with_beta_zero_is_l1_with_sign_gradient():
    input = torch.tensor([-2.0, -0.5, 0.0, 0.25, 3.0], dtype=torch.float64)
    target = torch.zeros(5, dtype=torch.float64)
    out, grad = _value_and_grad(smooth_l1_loss, input, target, beta=0.0, reduction="sum")
    torch.testing.assert_close(out, l1_loss(input, target, "sum"))
    assert torch.equal(grad, torch.tensor([-1.0, -1.0, 0.0, 1.0, 1.0], dtype=torch.float64))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_rmse_loss_gradient_is_finite_at_zero_error(generator, reduction):
    target = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    out, grad = _value_and_grad(rmse_loss, target.clone(), target, reduction=reduction)
    assert torch.equal(out, torch.zeros_like(out))
    assert torch.equal(grad, torch.zeros_like(grad))


def test_rmse_loss_with_eps_at_zero_error_is_sqrt_eps_with_zero_gradient(generator):
    target = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    out, grad = _value_and_grad(rmse_loss, target.clone(), target, eps=1e-6)
    torch.testing.assert_close(out, torch.tensor(1e-3, dtype=torch.float64))
    assert torch.equal(grad, torch.zeros_like(grad))


def test_rmse_loss_is_not_smaller_than_l1_loss(generator):
    input, target = _pair((50,), generator, scale=3.0)
    assert rmse_loss(input, target) >= l1_loss(input, target)


@pytest.mark.parametrize("loss", [mse_loss, l1_loss, smooth_l1_loss, huber_loss, mean_error])
def test_gradient_at_zero_error_is_zero(generator, loss):
    target = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    out, grad = _value_and_grad(loss, target.clone(), target)
    assert out.item() == 0.0
    if loss is mean_error:
        torch.testing.assert_close(grad, torch.full((4, 3), 1 / 12, dtype=torch.float64))
    else:
        assert torch.equal(grad, torch.zeros_like(grad))


# ----------------------------------------------------------------------------- all losses


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_shape(generator, loss, reduction):
    input, target = _pair((2, 3, 4), generator)
    out = loss(input, target, reduction=reduction)
    assert out.shape == ((2, 3, 4) if reduction == "none" else ())


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_empty_batch(loss, reduction):
    input = torch.empty(0, 3, dtype=torch.float64, requires_grad=True)
    target = torch.empty(0, 3, dtype=torch.float64)
    out = loss(input, target, reduction=reduction)
    if reduction == "none":
        assert out.shape == (0, 3)
        return
    assert out.item() == 0.0
    out.backward()
    assert input.grad.shape == (0, 3)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_numeric_stability_outliers_of_1e4(generator, loss, dtype):
    input, target = _pair((4, 4), generator, dtype=dtype)
    input[0, 1], input[2, 3] = 1e4, -1e4
    out, grad = _value_and_grad(loss, input, target, reduction="none")
    assert torch.isfinite(out).all() and torch.isfinite(grad).all()
    expected = {
        mean_error: lambda: input - target,
        mse_loss: lambda: F.mse_loss(input, target, reduction="none"),
        l1_loss: lambda: F.l1_loss(input, target, reduction="none"),
        rmse_loss: lambda: (input - target).abs(),
        smooth_l1_loss: lambda: F.smooth_l1_loss(input, target, reduction="none"),
        huber_loss: lambda: F.huber_loss(input, target, reduction="none"),
    }[loss]()
    torch.testing.assert_close(out, expected, **TOLERANCES[dtype])


@pytest.mark.parametrize("loss", [l1_loss, smooth_l1_loss, huber_loss, mean_error])
def test_numeric_stability_inputs_of_1e30_in_float32(loss):
    input = torch.tensor([1e30, -1e30, 0.5, 3.0])
    target = torch.tensor([0.0, 1.0, 0.0, -1e30])
    for reduction in REDUCTIONS:
        out, grad = _value_and_grad(loss, input, target, reduction=reduction)
        assert torch.isfinite(out).all() and torch.isfinite(grad).all()


@pytest.mark.parametrize("loss", [mse_loss, rmse_loss])
def test_numeric_stability_inputs_of_1e30_in_float64(loss):
    input = torch.tensor([1e30, -1e30, 0.5, 3.0], dtype=torch.float64)
    target = torch.tensor([0.0, 1.0, 0.0, -1e30], dtype=torch.float64)
    for reduction in REDUCTIONS:
        out, grad = _value_and_grad(loss, input, target, reduction=reduction)
        assert torch.isfinite(out).all() and torch.isfinite(grad).all()
    torch.testing.assert_close(rmse_loss(input, target), torch.tensor(math.sqrt(3e60 / 4)).double())


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_half_precision_returns_input_dtype_close_to_float32(generator, loss, dtype):
    input, target = _pair((4, 5), generator, dtype=dtype, scale=2.0)
    for reduction in REDUCTIONS:
        out = loss(input, target, reduction=reduction)
        assert out.dtype == dtype
        expected = loss(input.float(), target.float(), reduction=reduction)
        torch.testing.assert_close(out.float(), expected, **TOLERANCES[dtype])


@pytest.mark.parametrize("loss", LOSSES)
def test_mixed_dtypes_return_the_promoted_dtype(generator, loss):
    input, target = _pair((3, 2), generator, dtype=torch.float16)
    assert loss(input, target.float()).dtype == torch.float32


@pytest.mark.parametrize("loss", LOSSES)
def test_meta_tensors(loss):
    input, target = torch.rand(4, 3, device="meta"), torch.rand(4, 3, device="meta")
    for reduction in REDUCTIONS:
        out = loss(input, target, reduction=reduction)
        assert out.device.type == "meta"
        assert out.shape == ((4, 3) if reduction == "none" else ())


@pytest.mark.parametrize("loss", LOSSES)
def test_device_result_same_as_cpu(generator, device, loss):
    input, target = _pair((4, 5), generator)
    out = loss(input.to(device), target.to(device), reduction="none")
    assert out.device == input.to(device).device
    torch.testing.assert_close(out.cpu(), loss(input, target, reduction="none"))


@pytest.mark.parametrize(
    ("loss", "kwargs"),
    [
        (mean_error, {}),
        (mse_loss, {}),
        (l1_loss, {}),
        (rmse_loss, {}),
        (rmse_loss, {"eps": 1e-2}),
        (smooth_l1_loss, {"beta": 0.5}),
        (smooth_l1_loss, {"beta": 0.0}),
        (huber_loss, {"delta": 0.5}),
    ],
)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck(generator, loss, kwargs, reduction):
    # Away from the kinks (|d| = 0, |d| = beta), where every loss is smooth.
    input = torch.tensor([[-2.1, -0.7, -0.2], [0.3, 0.9, 1.7]], dtype=torch.float64)
    input = input + 0.01 * torch.randn(2, 3, generator=generator, dtype=torch.float64)
    target = torch.zeros(2, 3, dtype=torch.float64)
    assert gradcheck(
        lambda x: loss(x, target, reduction=reduction, **kwargs), (input.requires_grad_(True),)
    )


# ----------------------------------------------------------------------------- invalid input


@pytest.mark.parametrize("loss", LOSSES)
def test_invalid_shape_is_not_broadcast(loss):
    input, target = torch.zeros(8, 1), torch.zeros(8)
    with pytest.raises(
        ValueError, match=r"target must have the same shape as input \(8, 1\), got \(8,\)"
    ):
        loss(input, target)


@pytest.mark.parametrize("loss", LOSSES)
def test_invalid_input_type(loss):
    with pytest.raises(TypeError, match=r"input must be a torch\.Tensor, got list"):
        loss([1.0, 2.0], torch.zeros(2))


@pytest.mark.parametrize("loss", LOSSES)
def test_invalid_target_dtype(loss):
    with pytest.raises(
        TypeError, match=r"target must be a floating-point tensor .* got dtype torch\.int64"
    ):
        loss(torch.zeros(3), torch.tensor([0, 1, 2]))


@pytest.mark.parametrize("loss", LOSSES)
def test_invalid_device(loss):
    with pytest.raises(
        ValueError, match=r"target must be on the same device as input \(cpu\), got meta"
    ):
        loss(torch.zeros(3), torch.zeros(3, device="meta"))


@pytest.mark.parametrize("loss", LOSSES)
def test_invalid_reduction(loss):
    with pytest.raises(ValueError, match=r"reduction must be one of .* got 'avg'"):
        loss(torch.zeros(3), torch.zeros(3), reduction="avg")


@pytest.mark.parametrize(
    ("loss", "kwargs", "error", "message"),
    [
        (smooth_l1_loss, {"beta": -1.0}, ValueError, r"beta must be >= 0(\.0)?, got -1\.0"),
        (smooth_l1_loss, {"beta": "1"}, TypeError, r"beta must be a number, got str"),
        (huber_loss, {"delta": 0.0}, ValueError, r"delta must be > 0(\.0)?, got 0\.0"),
        (huber_loss, {"delta": -2.0}, ValueError, r"delta must be > 0(\.0)?, got -2\.0"),
        (huber_loss, {"delta": math.inf}, ValueError, r"delta must be finite .*got inf"),
        (rmse_loss, {"eps": -1e-3}, ValueError, r"eps must be >= 0(\.0)?, got -0\.001"),
    ],
)
def test_invalid_parameter(loss, kwargs, error, message):
    with pytest.raises(error, match=message):
        loss(torch.zeros(3), torch.zeros(3), **kwargs)


# ------------------------------------------ smooth L1 / Huber: ATen's kernels vs compositions


@pytest.mark.parametrize("param", [0.0, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("name", ["smooth_l1", "huber"])
def test_piecewise_kernels_equal_the_compositions(generator, name, param):
    from cvloss_ref import regression

    if name == "huber" and param == 0.0:
        pytest.skip("delta must be > 0")
    diff = torch.randn(64, generator=generator, dtype=torch.float64) * 2
    # Zero differences and differences exactly at the seam |d| = param.
    diff = torch.cat((diff, torch.tensor([0.0, param, -param, 1e-300], dtype=torch.float64)))
    target = torch.randn(diff.shape, generator=generator, dtype=torch.float64)
    fn = smooth_l1_loss if name == "smooth_l1" else huber_loss
    composed_fn = (
        regression._smooth_l1_composed if name == "smooth_l1" else regression._huber_composed
    )
    fast = (target + diff).requires_grad_()
    composed = (target + diff).requires_grad_()
    got = fn(fast, target, param, reduction="none")
    want = composed_fn(composed - target, param)
    torch.testing.assert_close(got, want, rtol=1e-13, atol=1e-300)
    upstream = torch.rand(got.shape, generator=generator, dtype=torch.float64) + 0.5
    (got_grad,) = torch.autograd.grad(got, fast, upstream)
    (want_grad,) = torch.autograd.grad(want, composed, upstream)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-13, atol=1e-300)

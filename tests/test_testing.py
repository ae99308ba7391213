"""The checking harness itself: what it accepts, what it rejects, and what it says.

These tests register a small toy loss (a weighted squared error with a
``log``-based term) in the catalogue, so that every behaviour of the harness is
tested independently of the real families; ``tests/test_catalogue.py`` runs the
harness over the real catalogue.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import cvloss_ref
from cvloss_ref import testing
from cvloss_ref._catalogue import CATALOGUE, Case, LossSpec, Mistake
from cvloss_ref._reduction import _reduce
from cvloss_ref.testing import TOLERANCES, assert_loss_matches, check_loss


def toy_loss(logits, target, reduction="mean"):
    """Binary cross-entropy with logits, written stably (the reference of the toy)."""
    loss = F.softplus(logits) - logits * target
    return _reduce(loss, reduction)


def _naive_sum(logits, target, reduction="mean"):
    return (F.softplus(logits) - logits * target).sum()


def _random(shape):
    def make(generator, dtype):
        logits = torch.randn(shape, generator=generator, dtype=dtype) * 3
        target = torch.randint(0, 2, shape, generator=generator).to(dtype)
        return (logits, target), {}

    return make


def _saturated(generator, dtype):
    logits = torch.tensor([1e4, -1e4, 30.0, -30.0], dtype=dtype)
    target = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=dtype)
    return (logits, target), {}


def _none(generator, dtype):
    (logits, target), _ = _random((5,))(generator, dtype)
    return (logits, target), {"reduction": "none"}


TOY = LossSpec(
    name="toy_loss",
    cases=(
        Case("random logits", _random((4, 3))),
        Case("saturated logits (±1e4)", _saturated, note="stability for huge logits"),
        Case("reduction='none'", _none),
        Case("empty batch", _random((0, 3))),
    ),
    grad_inputs=(0,),
    mistakes=(Mistake(_naive_sum, "TOY-HINT: you summed instead of averaging"),),
)


@pytest.fixture(autouse=True)
def toy(monkeypatch):
    """Register the toy loss as if it were a public reference."""
    testing._load_catalogue()
    monkeypatch.setitem(CATALOGUE, "toy_loss", TOY)
    monkeypatch.setattr(cvloss_ref, "toy_loss", toy_loss, raising=False)


def _correct(logits, target, reduction="mean"):
    # An alternative, correct formulation: -[y log σ(x) + (1-y) log σ(-x)].
    loss = -(target * F.logsigmoid(logits) + (1 - target) * F.logsigmoid(-logits))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() * 0.0 if loss.numel() == 0 else loss.mean()


def _message(fn, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        assert_loss_matches(fn, "toy_loss", **kwargs)
    return str(info.value)


def test_accepts_a_correct_alternative_formulation():
    assert_loss_matches(_correct, "toy_loss")


def test_result_counts_cases_dtypes_and_meta():
    result = check_loss(_correct, "toy_loss")
    assert result.ok
    # 4 cases x 2 dtypes on the CPU (+CUDA when present), plus 4 meta runs.
    devices = 2 if torch.cuda.is_available() else 1
    assert len(result.passed) == 4 * 2 * devices + 4


def test_rejects_overflow_with_a_stability_hint():
    def unstable(logits, target, reduction="mean"):
        p = torch.sigmoid(logits)
        loss = -(target * torch.log(p) + (1 - target) * torch.log(1 - p))
        return _correct_reduce(loss, reduction)

    message = _message(unstable)
    assert 'case "saturated logits (±1e4)"' in message
    assert "inf or NaN" in message
    assert "stability for huge logits" in message  # the case's note


def _correct_reduce(loss, reduction):
    return _correct.__globals__["_reduce"](loss, reduction)


def test_rejects_a_known_mistake_with_its_hint():
    message = _message(_naive_sum)
    assert "TOY-HINT" in message
    assert "the values differ" in message


def test_rejects_sum_for_mean_with_a_generic_hint():
    def summed_times_two(logits, target, reduction="mean"):
        # Not the catalogued mistake (that one is .sum()), but 2 * sum: no known hint,
        # so the generic ratio check is the one that could speak; it must not misfire.
        return 2 * (F.softplus(logits) - logits * target).sum()

    message = _message(summed_times_two)
    assert "TOY-HINT" not in message
    assert "the values differ" in message


def test_generic_hint_names_sum_instead_of_mean():
    def summed(logits, target, reduction="mean"):
        loss = F.softplus(logits) - logits * target
        return loss if reduction == "none" else loss.sum()

    spec = LossSpec("toy_loss", TOY.cases, TOY.grad_inputs, mistakes=())
    CATALOGUE["toy_loss"] = spec
    message = _message(summed)
    assert "12 times the expected one" in message
    assert "sum where a mean was asked for" in message


def test_rejects_a_detached_output():
    def detached(logits, target, reduction="mean"):
        return _correct(logits.detach(), target, reduction)

    message = _message(detached)
    assert "not connected to the autograd graph" in message


def test_rejects_wrong_gradient_with_matching_values():
    class WrongBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, logits, target):
            ctx.save_for_backward(logits, target)
            return F.softplus(logits) - logits * target

        @staticmethod
        def backward(ctx, grad):
            logits, target = ctx.saved_tensors
            return grad * (torch.sigmoid(logits) + target), None  # sign error

    def wrong(logits, target, reduction="mean"):
        return _reduce(WrongBackward.apply(logits, target), reduction)

    message = _message(wrong)
    assert "the values match, but the gradients with respect to logits differ" in message


def test_rejects_nan_gradient_with_a_double_where_hint():
    def nan_grad(logits, target, reduction="mean"):
        loss = F.softplus(logits) - logits * target
        # A sqrt(0) in a branch that the value does not use: NaN only in the gradient.
        poison = torch.where(logits > 1e9, torch.sqrt(logits - logits), 0.0)
        return _reduce(loss + poison, reduction)

    message = _message(nan_grad)
    assert "gradients with respect to logits differ" in message
    assert "inf or NaN" in message


@pytest.mark.filterwarnings("ignore:Converting a tensor")
def test_rejects_a_python_number():
    def number(logits, target, reduction="mean"):
        return float(_correct(logits, target, reduction))

    message = _message(number)
    assert "returned a float" in message
    assert ".item()" in message


def test_rejects_wrong_shape_with_a_reduction_hint():
    def unreduced(logits, target, reduction="mean"):
        return F.softplus(logits) - logits * target

    message = _message(unreduced)
    assert "wrong shape" in message
    assert "apply the reduction" in message


def test_rejects_wrong_dtype():
    def float64(logits, target, reduction="mean"):
        return _correct(logits.double(), target.double(), reduction)

    message = _message(float64)
    assert "wrong dtype" in message


def test_rejects_a_tensor_created_on_the_wrong_device():
    def cpu_constant(logits, target, reduction="mean"):
        one = torch.ones(logits.shape)  # no device=: fails on meta and on CUDA
        return _correct(logits * one, target, reduction)

    message = _message(cpu_constant)
    assert "meta" in message
    assert "device=x.device" in message


def test_rejects_a_host_sync():
    def syncs(logits, target, reduction="mean"):
        if logits.numel() and logits.max().item() > 1e30:  # reads a value back
            raise RuntimeError("unreachable")
        return _correct(logits, target, reduction)

    message = _message(syncs)
    assert "meta" in message
    assert ".item()" in message


def test_rejects_in_place_modification_of_an_input():
    def in_place(logits, target, reduction="mean"):
        result = _correct(logits, target, reduction)
        target.mul_(1.0).add_(1.0)
        return result

    message = _message(in_place)
    assert "changed one of its inputs in place" in message


def test_reports_an_exception_without_raising_it():
    def broken(logits, target, reduction="mean"):
        raise KeyError("oops")

    result = check_loss(broken, "toy_loss")
    assert not result.ok
    assert "raised KeyError" in result.message()


def test_refuses_delegation_to_the_reference_under_any_alias():
    alias = cvloss_ref.toy_loss

    def delegates(logits, target, reduction="mean"):
        return alias(logits, target, reduction=reduction)

    message = _message(delegates)
    assert "cvloss_ref.toy_loss itself" in message


def test_refuses_a_forbidden_torch_function_however_it_is_called():
    forbid = [F.binary_cross_entropy_with_logits]

    def via_functional(logits, target, reduction="mean"):
        return F.binary_cross_entropy_with_logits(logits, target, reduction=reduction)

    def via_module(logits, target, reduction="mean"):
        return torch.nn.BCEWithLogitsLoss(reduction=reduction)(logits, target)

    for fn in (via_functional, via_module):
        message = _message(fn, forbid=forbid)
        assert "binary_cross_entropy_with_logits" in message
        assert "does not allow" in message


def test_forbidding_a_torch_function_also_forbids_its_tensor_method():
    def via_method(logits, target, reduction="mean"):
        loss = -(target * logits.sigmoid().log() + (1 - target) * (-logits).sigmoid().log())
        return _reduce(loss, reduction)

    message = _message(via_method, forbid=[torch.sigmoid])
    assert "sigmoid" in message
    assert "does not allow" in message


def test_guard_is_removed_after_the_check():
    import sys

    assert_loss_matches(_correct, "toy_loss", forbid=[torch.sigmoid])
    assert sys.getprofile() is None
    torch.sigmoid(torch.zeros(1))  # no longer intercepted
    assert not torch.overrides._get_current_function_mode_stack()


def test_params_reach_both_sides():
    seen = []

    def records(logits, target, reduction="mean"):
        seen.append(reduction)
        return _correct(logits, target, reduction)

    assert_loss_matches(records, "toy_loss", reduction="sum")
    assert set(seen) == {"sum"}


def test_same_seed_same_inputs_and_new_seed_new_inputs():
    def first_logits(seed):
        drawn = []

        def records(logits, target, reduction="mean"):
            drawn.append(logits.detach().clone())
            return _correct(logits, target, reduction)

        assert_loss_matches(records, "toy_loss", seed=seed, cases=["random logits"])
        return drawn[0]

    assert torch.equal(first_logits(0), first_logits(0))
    assert not torch.equal(first_logits(0), first_logits(1))


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ValueError, match="did you mean 'toy_loss'"):
        assert_loss_matches(_correct, "toy_los")


def test_unknown_case_name_lists_the_cases():
    with pytest.raises(ValueError, match="random logits"):
        assert_loss_matches(_correct, "toy_loss", cases=["nope"])


def test_fn_must_be_callable():
    with pytest.raises(TypeError, match="fn must be a callable"):
        assert_loss_matches(42, "toy_loss")


def test_tolerance_table_covers_every_floating_dtype():
    assert set(TOLERANCES) == {torch.float16, torch.bfloat16, torch.float32, torch.float64}
    assert TOLERANCES[torch.float64]["rtol"] < TOLERANCES[torch.float32]["rtol"]


# ------------------------------------------------------------ inputs that are lists of tensors


def toy_layers_loss(feats, targets):
    """Sum over layers of the mean squared difference (the reference of the list toy)."""
    total = 0.0
    for f, t in zip(feats, targets):
        total = total + ((f - t) ** 2).mean()
    return total


def _layers_case(generator, dtype):
    feats = [torch.randn(2, 3, generator=generator, dtype=dtype) for _ in range(3)]
    targets = [torch.randn(2, 3, generator=generator, dtype=dtype) for _ in range(3)]
    return (feats, targets), {}


@pytest.fixture
def toy_layers(monkeypatch):
    spec = LossSpec(
        name="toy_layers_loss",
        cases=(Case("three layers", _layers_case),),
        grad_inputs=(0,),
        mistakes=(),
    )
    monkeypatch.setitem(CATALOGUE, "toy_layers_loss", spec)
    monkeypatch.setattr(cvloss_ref, "toy_layers_loss", toy_layers_loss, raising=False)


def _layers_correct(feats, targets):
    # Another formulation: one mean per layer from a dot product.
    total = feats[0].new_zeros(())
    for f, t in zip(feats, targets):
        d = (f - t).flatten()
        total = total + torch.dot(d, d) / d.numel()
    return total


def test_list_inputs_are_moved_and_differentiated_element_by_element(toy_layers):
    seen = []

    def records(feats, targets):
        seen.append((feats[2].device.type, [f.requires_grad for f in feats]))
        return _layers_correct(feats, targets)

    result = check_loss(records, "toy_layers_loss")
    assert result.ok, result.message()
    assert ("meta", [False, False, False]) in seen  # every layer reaches meta too
    assert ("cpu", [True, True, True]) in seen  # and every layer is a leaf


def test_list_inputs_rejects_a_detached_later_layer(toy_layers):
    def detaches_layer_2(feats, targets):
        return _layers_correct([feats[0], feats[1], feats[2].detach()], targets)

    with pytest.raises(AssertionError, match=r"gradients with respect to feats\[2\] differ"):
        assert_loss_matches(detaches_layer_2, "toy_layers_loss")


def test_list_inputs_rejects_a_tensor_created_on_the_wrong_device(toy_layers):
    def cpu_constant(feats, targets):
        ones = torch.ones(feats[1].shape)  # no device=: fails for the meta layers
        return _layers_correct([feats[0], feats[1] * ones, feats[2]], targets)

    with pytest.raises(AssertionError, match="meta"):
        assert_loss_matches(cpu_constant, "toy_layers_loss")


def test_list_inputs_rejects_in_place_modification_of_a_layer(toy_layers):
    def in_place(feats, targets):
        result = _layers_correct(feats, targets)
        targets[1].add_(1.0)
        return result

    with pytest.raises(AssertionError, match="changed one of its inputs in place"):
        assert_loss_matches(in_place, "toy_layers_loss")


def test_the_reference_on_meta_is_memoised_by_shapes_dtypes_and_arguments(monkeypatch):
    monkeypatch.setattr(testing, "_META_SHAPES", testing.OrderedDict())
    calls = []

    def reference(x, target, reduction="mean", scale=1.0):
        calls.append((tuple(x.shape), reduction))
        if scale < 0:
            raise RuntimeError("needs values")
        return _reduce(F.mse_loss(x, target, reduction="none") * scale, reduction)

    def meta(*shape, dtype=torch.float32):
        return torch.empty(*shape, device="meta", dtype=dtype)

    on_meta = testing._reference_on_meta
    assert on_meta(reference, [meta(4, 3), meta(4, 3)], {}) == torch.Size([])
    assert on_meta(reference, [meta(4, 3), meta(4, 3)], {}) == torch.Size([])
    assert len(calls) == 1  # the second call came from the memo
    # Every argument that can change the shape is part of the key.
    assert on_meta(reference, [meta(4, 3), meta(4, 3)], {"reduction": "none"}) == (4, 3)
    assert on_meta(reference, [meta(5, 3), meta(5, 3)], {"reduction": "none"}) == (5, 3)
    assert on_meta(reference, [meta(4, 3, dtype=torch.float64)] * 2, {}) == torch.Size([])
    assert len(calls) == 4
    # A reference that needs values is remembered as such; -0.0 and 0.0 stay apart.
    assert on_meta(reference, [meta(2), meta(2)], {"scale": -1.0}) is None
    assert on_meta(reference, [meta(2), meta(2)], {"scale": -1.0}) is None
    assert on_meta(reference, [meta(2), meta(2)], {"scale": -0.0}) == torch.Size([])
    assert len(calls) == 6
    # What the key cannot describe (a callable argument) is computed every time.
    assert on_meta(reference, [meta(2), meta(2)], {"scale": 1.0, "hook": print}) is None
    assert on_meta(reference, [meta(2), meta(2)], {"scale": 1.0, "hook": print}) is None
    assert len(calls) == 6  # reference(hook=...) raised TypeError before recording
    assert len(testing._META_SHAPES) == 6

"""The checking catalogue of every family: complete, well formed, and sharp.

For every loss in the catalogue:
- the reference itself (a renamed copy, so that the delegation guard lets it
  through) passes all of its own cases, on every device;
- every case gives a finite value and, where gradients are checked, finite
  gradients, also on ``meta`` tensors;
- (every catalogued mistake is rejected with its own hint: tests/test_hints.py).
"""

from __future__ import annotations

import inspect

import pytest
import torch

import cvloss_ref
from cvloss_ref._catalogue import CATALOGUE
from cvloss_ref.testing import check_loss, loss_names, unguarded_copy

# Public names that are not losses with a catalogue of cases.
NOT_CHECKED = {
    "set_debug",
    "debug_enabled",
    "set_compile",
    "compile_mode",
    "diou_nms",  # returns indices, checked against torchvision.ops.nms in tests/test_boxes.py
    "mine_triplets",  # returns index triplets, checked against brute force in tests/test_metric.py
    # Preprocessing and model building, not losses: tested in tests/test_dense.py and
    # tests/test_synthesis.py.
    "unet_weight_map",
    "vgg16_features",
    "FeatureExtractor",
}

NAMES = loss_names()


def _map(value, fn):
    """``fn`` applied to every tensor of an input, also inside a list/tuple/dict of them
    (style_loss and content_loss take lists of feature maps)."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, dict):
        return type(value)((k, _map(v, fn)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_map(v, fn) for v in value)
    return value


def _leaves(value):
    found = []
    _map(value, found.append)
    return found


def test_every_public_function_has_a_catalogue_entry():
    public = {name for name in cvloss_ref.__all__ if inspect.isfunction(getattr(cvloss_ref, name))}
    missing = sorted(public - set(CATALOGUE) - NOT_CHECKED)
    assert not missing, f"public functions without catalogue cases: {missing}"


def test_catalogue_names_are_public():
    assert set(CATALOGUE) <= set(cvloss_ref.__all__)


@pytest.mark.parametrize("name", NAMES)
def test_each_loss_has_edge_cases_and_three_mistakes(name):
    spec = CATALOGUE[name]
    assert len(spec.cases) >= 5, "a catalogue needs random inputs and named edge cases"
    assert len(spec.mistakes) >= 3, "at least three plausible mistakes per loss"
    parameters = list(inspect.signature(getattr(cvloss_ref, name)).parameters)
    assert all(0 <= i < len(parameters) for i in spec.grad_inputs)


@pytest.mark.parametrize("name", NAMES)
def test_reference_passes_its_own_catalogue(name):
    # How long a check takes is measured by benchmarks/harness_speed.py, not asserted.
    result = check_loss(unguarded_copy(getattr(cvloss_ref, name)), name)
    assert result.ok, result.message()
    assert not result.skipped


@pytest.mark.parametrize("name", NAMES)
def test_every_case_is_finite_in_value_and_gradient(name):
    spec = CATALOGUE[name]
    reference = getattr(cvloss_ref, name)
    for case in spec.cases:
        for dtype in case.dtypes:
            inputs, kwargs = case.make(torch.Generator().manual_seed(0), dtype)
            inputs = [
                _map(
                    x,
                    lambda t, grad=i in spec.grad_inputs: (
                        t.detach().clone().requires_grad_(grad and t.is_floating_point())
                    ),
                )
                for i, x in enumerate(inputs)
            ]
            output = reference(*inputs, **kwargs)
            assert torch.isfinite(output).all(), f"{name} / {case.name}: non-finite value"
            if case.grad == "none" or not output.requires_grad:
                continue
            leaves = [t for i in spec.grad_inputs for t in _leaves(inputs[i]) if t.requires_grad]
            grads = torch.autograd.grad(output.sum(), leaves, allow_unused=True)
            for grad in grads:
                assert grad is None or torch.isfinite(grad).all(), (
                    f"{name} / {case.name} ({dtype}): non-finite gradient"
                )


@pytest.mark.parametrize("name", NAMES)
def test_reference_runs_on_meta_tensors(name):
    spec = CATALOGUE[name]
    reference = getattr(cvloss_ref, name)
    for case in spec.cases:
        inputs, kwargs = case.make(torch.Generator().manual_seed(0), torch.float32)
        meta = [_map(x, lambda t: t.to("meta")) for x in inputs]
        meta_kwargs = {k: _map(v, lambda t: t.to("meta")) for k, v in kwargs.items()}
        output = reference(*meta, **meta_kwargs)
        assert output.device.type == "meta", f"{name} / {case.name}"
        assert output.shape == reference(*inputs, **kwargs).shape


# Each catalogued mistake is rejected with its own hint and no other: tests/test_hints.py.

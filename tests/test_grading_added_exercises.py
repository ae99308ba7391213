"""The exercises that the chapters promised and the assignments lacked (issue #17, item 11).

a01_information: ``weighted_reduce`` and ``numerical_gradient`` (chapter "What a loss
function is"), checked by ``assert_outputs_match`` against ``cvloss_ref.exercises``;
a02_classification: ``smooth_labels``, ``multiclass_hinge_loss`` and
``hinge_embedding_loss``; a04_boxes: ``focal_eiou_loss`` and ``alpha_iou_loss``.

Each typical mistake, swapped in for the instructor's solution, must lose points on its own
exercise (the hidden test included) and on no other cell, as the grader verifies it
(``tests/_grading_verdicts.py``).  The catalogue's mistakes are used for the losses; the
two functions outside the catalogue get the hand-written fixtures below.  The wrong
functions are also checked against the reference directly, so that a fixture that became
right by accident is seen.
"""

from __future__ import annotations

import pytest
import torch

import cvloss_ref.cases  # noqa: F401  (fills CATALOGUE)
from cvloss_ref import exercises
from cvloss_ref._catalogue import CATALOGUE
from cvloss_ref.testing import assert_outputs_match
from tests import _grading_verdicts as verdicts

ADDED = {
    "a01_information": ["weighted_reduce", "numerical_gradient"],
    "a02_classification": ["smooth_labels", "multiclass_hinge_loss", "hinge_embedding_loss"],
    "a04_boxes": ["focal_eiou_loss", "alpha_iou_loss"],
}


# ----------------------------------------------------------------- weighted_reduce


def _reduce_mean_over_count(values, reduction="mean", weight=None):
    """A weighted mean divided by the number of elements, not by the sum of the weights."""
    weighted = values if weight is None else values * weight
    if reduction == "none":
        return weighted
    return weighted.sum() if reduction == "sum" else weighted.mean()


def _reduce_zero_over_zero(values, reduction="mean", weight=None):
    """0/0 = NaN for an empty batch or weights that are all 0."""
    weighted = values if weight is None else values * weight
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    norm = values.new_tensor(values.numel()) if weight is None else weight.sum()
    return weighted.sum() / norm


def _safe_mean(weighted, norm):
    nonzero = norm != 0
    return torch.where(nonzero, weighted.sum() / torch.where(nonzero, norm, 1.0), 0.0)


def _reduce_none_unweighted(values, reduction="mean", weight=None):
    """reduction='none' returns the values without their weights."""
    if reduction == "none":
        return values
    weighted = values if weight is None else values * weight
    if reduction == "sum":
        return weighted.sum()
    return _safe_mean(
        weighted, values.new_tensor(values.numel()) if weight is None else weight.sum()
    )


def _reduce_sum_unweighted(values, reduction="mean", weight=None):
    """reduction='sum' adds the values without their weights."""
    weighted = values if weight is None else values * weight
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return values.sum()
    return _safe_mean(
        weighted, values.new_tensor(values.numel()) if weight is None else weight.sum()
    )


# -------------------------------------------------------------- numerical_gradient


def _one_sided(f, x, h=1e-6):
    """The forward difference (f(x + h e_i) - f(x)) / h: an error of order h."""
    grad = torch.zeros_like(x)
    for i in range(x.numel()):
        step = torch.zeros_like(x)
        step.view(-1)[i] = h
        grad.view(-1)[i] = (f(x + step) - f(x)) / h
    return grad


def _autograd(f, x, h=1e-6):
    """The derivative itself, from autograd: not the difference quotient with step h."""
    point = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(point), point)
    return grad


def _over_h(f, x, h=1e-6):
    """The central difference divided by h instead of 2h."""
    grad = torch.zeros_like(x)
    for i in range(x.numel()):
        step = torch.zeros_like(x)
        step.view(-1)[i] = h
        grad.view(-1)[i] = (f(x + step) - f(x - step)) / h
    return grad


def _all_at_once(f, x, h=1e-6):
    """Every element moved at once: a directional derivative, the same in every entry."""
    return torch.full_like(x, 1.0) * (f(x + h) - f(x - h)) / (2 * h)


CUSTOM_MISTAKES = {
    "weighted_reduce": [
        _reduce_mean_over_count,
        _reduce_zero_over_zero,
        _reduce_none_unweighted,
        _reduce_sum_unweighted,
    ],
    "numerical_gradient": [_one_sided, _autograd, _over_h, _all_at_once],
}
EXAMPLES = {
    "weighted_reduce": (exercises.reduce_examples, exercises.weighted_reduce),
    "numerical_gradient": (exercises.gradient_examples, exercises.central_difference),
}

#: How many of the catalogue's mistakes each added loss is graded against: its first three,
#: and alpha-IoU's unguarded power too (the exercise's point about alpha < 1).
CATALOGUED = {"alpha_iou_loss": 4}
MISTAKES = [
    (assignment, name, index)
    for assignment, names in ADDED.items()
    for name in names
    for index in range(len(CUSTOM_MISTAKES.get(name, ())) or CATALOGUED.get(name, 3))
]


@pytest.mark.parametrize(("assignment", "name", "index"), MISTAKES)
def test_typical_mistakes_of_the_added_exercises_lose_their_points_only(assignment, name, index):
    """The grader's verdicts with one wrong function swapped in: it fails at least one
    cell of its exercise and the hidden one, and every other cell keeps its points."""
    if name in CUSTOM_MISTAKES:
        wrong = CUSTOM_MISTAKES[name][index]
    else:
        assert len(CATALOGUE[name].mistakes) >= 3
        wrong = CATALOGUE[name].mistakes[index].fn
    verdicts.expect_only_its_exercise(assignment, name, wrong)


@pytest.mark.parametrize(
    ("name", "index"),
    [(name, i) for name, wrong in CUSTOM_MISTAKES.items() for i in range(len(wrong))],
)
def test_each_fixture_is_wrong_on_the_visible_examples(name, index):
    """The visible examples already show each hand-written mistake (a student sees it
    before handing in)."""
    build, reference = EXAMPLES[name]
    with pytest.raises(AssertionError, match=f"{name} does not match|{name} raised"):
        assert_outputs_match(CUSTOM_MISTAKES[name][index], name, build(), reference=reference)


def test_the_added_exercises_are_in_their_assignments():
    """Each added function has a solution cell, two visible tests worth 1 point and a
    hidden one worth 2, in the order of the neighbouring exercises."""
    for assignment, names in ADDED.items():
        source = verdicts.source(assignment)
        for name in names:
            assert name in source.solution_ids
            tests = [t for t in source.tests if name in t.functions]
            assert [(t.hidden, t.points) for t in tests] == [(False, 1), (False, 1), (True, 2)]
            for test in tests:
                assert test.grade_id.startswith(f"test_{name}_")
                assert {check.reference for check in test.checks} == {name}

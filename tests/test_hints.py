"""Hints that are right: the confusion matrix of the catalogued mistakes.

For every loss of the catalogue, the harness is given each catalogued mistake in turn,
as if a student had written it. Its report must show that mistake's own hint and no
other mistake's hint (in any failure, not only the one shown first). A correct
implementation that differs from the reference only by a convention (PyTorch's NaN
for a mean over nothing) must receive the convention's note, and no mistake's hint.

The other tests check what the messages say: the keyword arguments' values, "not
written yet" for a stub, a hint when an argument is ignored, and no harness stack
frames in IPython.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

import cvloss_ref
from cvloss_ref._catalogue import CATALOGUE
from cvloss_ref.testing import (
    MEAN_OVER_NOTHING,
    LossMismatch,
    assert_loss_matches,
    check_loss,
    loss_names,
    unguarded_copy,
)

NAMES = loss_names()
CONVENTION = "a mean over nothing is 0 here"
assert MEAN_OVER_NOTHING.startswith(CONVENTION)


def _hints_in(text: str, name: str) -> list[int]:
    """Indices of the catalogued mistakes of ``name`` whose hint appears in ``text``."""
    return [i for i, mistake in enumerate(CATALOGUE[name].mistakes) if mistake.hint in text]


@pytest.mark.parametrize(
    ("name", "index"),
    [(name, i) for name in NAMES for i in range(len(CATALOGUE[name].mistakes))],
)
def test_each_mistake_gets_its_own_hint_and_no_other(name, index):
    mistake = CATALOGUE[name].mistakes[index]
    result = check_loss(mistake.fn, name)
    message = result.message()
    assert not result.ok, f"{name}: the mistake {mistake.hint!r} passed the harness"
    assert mistake.hint in message, (
        f"{name}: mistake {index} ({mistake.hint[:60]}...) does not get its hint:\n{message}"
    )
    shown = {i for failure in result.failures for i in _hints_in(failure.message, name)}
    others = sorted(shown - {index})
    assert not others, (
        f"{name}: mistake {index} also gets the hint(s) of mistake(s) {others}: "
        + " | ".join(CATALOGUE[name].mistakes[i].hint[:60] for i in others)
    )


# ------------------------------------------------------------------ conventions


def _nan_mean_over_nothing(name):
    """The reference, except that a mean over no element is 0/0 = NaN, as ``.mean()``
    of an empty tensor gives in PyTorch."""
    reference = unguarded_copy(getattr(cvloss_ref, name))

    def nan_mean(*args, **kwargs):
        if kwargs.get("reduction", "mean") == "mean":
            per_element = reference(*args, **{**kwargs, "reduction": "none"})
            if per_element.numel() == 0:
                return per_element.sum() / 0
        return reference(*args, **kwargs)

    nan_mean.__signature__ = inspect.signature(reference)
    return nan_mean


def _cross_entropy_as_pytorch(
    logits, target, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"
):
    """Exactly F.cross_entropy: NaN for an empty batch and when every target is ignored."""
    return F.cross_entropy(
        logits,
        target,
        weight=weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        reduction=reduction,
    )


def _bce_with_logits_as_pytorch(logits, target, weight=None, pos_weight=None, reduction="mean"):
    """Exactly F.binary_cross_entropy_with_logits: NaN for an empty batch."""
    return F.binary_cross_entropy_with_logits(
        logits, target, weight=weight, pos_weight=pos_weight, reduction=reduction
    )


def _has_mean_over_nothing(name) -> bool:
    """Whether some case of ``name`` averages no element (its 'none' output is empty)."""
    reference = getattr(cvloss_ref, name)
    if "reduction" not in inspect.signature(reference).parameters:
        return False
    for case in CATALOGUE[name].cases:
        inputs, kwargs = case.make(torch.Generator().manual_seed(0), torch.float64)
        if kwargs.get("reduction", "mean") != "mean":
            continue
        if reference(*inputs, **{**kwargs, "reduction": "none"}).numel() == 0:
            return True
    return False


CONVENTION_ONLY = [
    ("cross_entropy", _cross_entropy_as_pytorch),
    ("binary_cross_entropy_with_logits", _bce_with_logits_as_pytorch),
] + [(name, _nan_mean_over_nothing(name)) for name in NAMES if _has_mean_over_nothing(name)]


@pytest.mark.parametrize(
    ("name", "alternative"),
    CONVENTION_ONLY,
    ids=[f"{name}-{fn.__name__}" for name, fn in CONVENTION_ONLY],
)
def test_a_convention_only_difference_gets_the_convention_note(name, alternative):
    result = check_loss(alternative, name)
    assert not result.ok, f"{name}: NaN for a mean over nothing passed"
    message = result.message()
    assert CONVENTION in message, message
    assert not _hints_in(message, name), f"a mistake's hint for a convention:\n{message}"
    for failure in result.failures:
        assert CONVENTION in failure.message, f"{failure.where()}:\n{failure.message}"


def test_the_convention_list_covers_the_losses_with_an_empty_batch():
    names = {name for name, _ in CONVENTION_ONLY}
    assert {"cross_entropy", "mse_loss", "giou_loss", "hinge_loss"} <= names


# ------------------------------------------------------------------ messages


def _forgets(keyword, default):
    """cross_entropy through F.cross_entropy (only the convention differs, and the cases
    below avoid it), ignoring ``keyword``."""

    def forgetful(logits, target, **kwargs):
        kwargs[keyword] = default
        return _cross_entropy_as_pytorch(logits, target, **kwargs)

    return forgetful


def test_message_names_the_keyword_arguments_with_their_values():
    with pytest.raises(AssertionError) as info:
        assert_loss_matches(
            _forgets("label_smoothing", 0.0),
            "cross_entropy",
            cases=["random logits (N, C)"],
            label_smoothing=0.1,
        )
    message = str(info.value)
    assert 'on case "random logits (N, C)" (float32, cpu) with label_smoothing=0.1:' in message
    assert "keyword arguments: label_smoothing=0.1" in message


def test_an_ignored_argument_gets_its_hint():
    message = check_loss(
        _forgets("label_smoothing", 0.0),
        "cross_entropy",
        cases=["random logits (N, C)"],
        label_smoothing=0.1,
    ).message()
    assert "your function seems to ignore label_smoothing" in message

    # A keyword argument of the case itself (reduction='sum'), not of the call:
    def hinge_always_mean(scores, target, margin=1.0, reduction="mean"):
        return torch.clamp(margin - target * scores, min=0).mean()

    message = check_loss(hinge_always_mean, "hinge_loss", cases=["reduction='sum'"]).message()
    assert "your function seems to ignore reduction" in message


def test_a_used_argument_gets_no_ignored_argument_hint():
    def doubled_smoothing(logits, target, label_smoothing=0.0, **kwargs):
        return _cross_entropy_as_pytorch(logits, target, label_smoothing=2 * label_smoothing)

    message = check_loss(
        doubled_smoothing, "cross_entropy", cases=["random logits (N, C)"], label_smoothing=0.1
    ).message()
    assert "the values differ" in message and "seems to ignore" not in message


def test_a_stub_is_not_written_yet():
    def cross_entropy(logits, target, **kwargs):
        raise NotImplementedError()

    with pytest.raises(AssertionError) as info:
        assert_loss_matches(cross_entropy, "cross_entropy")
    message = str(info.value)
    assert "cross_entropy: your function is not written yet" in message
    assert "does not match the reference" not in message


def test_an_exception_shows_the_keyword_values():
    def broken(logits, target, **kwargs):
        raise KeyError("oops")

    message = check_loss(broken, "hinge_loss", cases=["margin=0.5"]).message()
    assert "raised KeyError" in message and "keyword arguments: margin=0.5" in message


def test_the_error_is_an_assertion_error_with_a_short_rendering():
    with pytest.raises(LossMismatch) as info:
        assert_loss_matches(lambda *a, **k: 0, "hinge_loss", cases=["margin=0.5"])
    assert isinstance(info.value, AssertionError)
    # Outside IPython (no shell), the full traceback is kept.
    assert not hasattr(info.value, "_render_traceback_")


IPYTHON_SESSION = textwrap.dedent(
    """
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance(colors="nocolor")
    shell.run_cell("from cvloss_ref.testing import assert_loss_matches")
    cell = 'assert_loss_matches(lambda *a, **k: 0, "hinge_loss", cases=["margin=0.5"])'
    print("=== short")
    shell.run_cell(cell)
    shell.run_cell("%xmode Verbose")
    print("=== verbose")
    shell.run_cell(cell)
    """
)


def test_ipython_shows_the_message_without_harness_frames_and_verbose_shows_them():
    run = subprocess.run(
        [sys.executable, "-c", IPYTHON_SESSION], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    short, verbose = run.stdout.split("=== short", 1)[1].split("=== verbose", 1)
    assert "AssertionError: hinge_loss does not match the reference" in short
    assert "%xmode Verbose" in short
    assert "testing.py" not in short and "check_loss(" not in short
    assert "testing.py" in verbose and "LossMismatch" in verbose

"""No convention is hidden: hidden tests only redraw the inputs of visible ones.

For every assignment of ``solutions/`` and every function it checks against the
catalogue, each case that a hidden test runs (every case of the catalogue when the
call names none), with the keyword arguments the hidden call passes, must also be run
by a visible test cell of the same function with the same keyword arguments (their
values may differ). A student who passes the visible cells has then seen every case,
and every convention, that the hidden cells grade.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cvloss_ref._catalogue import CATALOGUE
from cvloss_ref.testing import loss_names
from grading.notebooks import Check, load_source

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "solutions").glob("a*/*.ipynb"))
loss_names()  # fills CATALOGUE


def _runs(check: Check) -> set[tuple[str, frozenset[str]]]:
    """``(case name, keyword names)`` of every case that ``check`` runs."""
    cases = check.cases
    if cases is None:
        cases = tuple(case.name for case in CATALOGUE[check.reference].cases)
    keywords = frozenset(key for key, _ in check.params)
    return {(case, keywords) for case in cases}


def uncovered(checks: list[Check]) -> dict[str, list[str]]:
    """For each function: the hidden ``(case, keywords)`` runs no visible check makes."""
    missing: dict[str, list[str]] = {}
    loss_checks = [check for check in checks if check.kind == "loss"]
    for function in sorted({check.function for check in loss_checks}):
        mine = [check for check in loss_checks if check.function == function]
        visible = set().union(*(_runs(c) for c in mine if not c.hidden))
        hidden = set().union(*(_runs(c) for c in mine if c.hidden))
        gaps = sorted(hidden - visible, key=lambda run: (sorted(run[1]), run[0]))
        if gaps:
            missing[function] = [
                f"{case!r}" + (f" with {', '.join(sorted(keys))}" if keys else "")
                for case, keys in gaps
            ]
    return missing


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.parent.name for p in NOTEBOOKS])
def test_every_hidden_case_is_run_by_a_visible_cell(path):
    source = load_source(path)
    checks = [check for test in source.tests for check in test.checks]
    assert any(check.hidden for check in checks), f"{path.name}: no hidden test found"
    missing = uncovered(checks)
    assert not missing, (
        f"{path.parent.name}: hidden tests run cases that no visible cell of the same "
        "function runs (add them to a visible cell): "
        + "; ".join(f"{function}: {', '.join(cases)}" for function, cases in missing.items())
    )


def test_eight_assignments_are_checked():
    assert len(NOTEBOOKS) == 8


def test_a_hidden_case_missing_from_the_visible_cells_is_found():
    """The rule itself: a hidden call without ``cases=`` runs every catalogue case."""
    every = tuple(case.name for case in CATALOGUE["hinge_loss"].cases)
    visible = Check("hinge_loss", "hinge_loss", cases=every[:-1])
    hidden = Check("hinge_loss", "hinge_loss", hidden=True)
    assert uncovered([visible, hidden]) == {"hinge_loss": [repr(every[-1])]}
    assert not uncovered([Check("hinge_loss", "hinge_loss", cases=every), hidden])
    smoothing = Check("hinge_loss", "hinge_loss", hidden=True, params=(("margin", 2.0),))
    assert len(uncovered([visible, smoothing])["hinge_loss"]) == len(every)

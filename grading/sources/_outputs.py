"""Exercises on functions that are not losses of the catalogue (see :mod:`grading.sources`).

An NMS, a weight map or an experiment cannot be checked by ``assert_loss_matches`` (no
catalogue entry, no gradient): their test cells call ``assert_outputs_match``, which the
harness cell below defines, on cases that the notebook's own helpers build (fixed ones
in the visible tests, ones drawn from ``HIDDEN_SEED`` in the hidden test).  The grader
re-runs these cells in its trusted process with the student's functions called in the
sandbox (``grading.autograde.run_test_cell``), so the comparison never happens where the
student's code runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import HARNESS, Exercise, code

#: Added to the harness cell of the assignments that use :class:`OutputExercise`.
OUTPUTS_HARNESS = '''
import copy

from cvloss_ref.testing import _Guard


def _shown(tensor, limit=8):
    values = tensor.detach().flatten()[:limit].tolist()
    values = [round(v, 6) if isinstance(v, float) else v for v in values]
    more = ", ..." if tensor.numel() > limit else ""
    return f"{values}{more} (shape {tuple(tensor.shape)}, {str(tensor.dtype)[6:]})"


def assert_outputs_match(
    fn, name, cases, *, forbid=(), reference=None, rtol=1e-5, atol=1e-6, check_dtype=True
):
    """Check that fn(*args, **kwargs) gives the reference's output on every case.

    cases: (description, args, kwargs) triples; the reference is cvloss_ref.<name> unless
    given.  Raises AssertionError, with a message for the student, at the first difference.
    """
    import cvloss_ref

    reference = reference or getattr(cvloss_ref, name)
    for description, args, kwargs in cases:
        where = f'{name} does not match the reference on case "{description}"'
        expected = reference(*copy.deepcopy(args), **copy.deepcopy(kwargs))
        given = copy.deepcopy(args)
        guard = _Guard(reference, forbid)
        try:
            received = guard.call(fn, *given, **copy.deepcopy(kwargs))
        except Exception as error:
            raise AssertionError(
                f'{name} raised {type(error).__name__} on case "{description}": {error}'
            ) from None
        if guard.hits:
            raise AssertionError(
                f"{name} calls {' and '.join(guard.hits)}, which this exercise does not allow"
            )
        for before, after in zip(args, given):
            if isinstance(before, torch.Tensor) and not torch.equal(before, after):
                raise AssertionError(f"{where}: your function changed one of its inputs")
        if not isinstance(received, torch.Tensor):
            raise AssertionError(f"{where}: expected a tensor, got {type(received).__name__}")
        if received.shape != expected.shape:
            raise AssertionError(
                f"{where}:\\n  expected {_shown(expected)}\\n  received {_shown(received)}\\n"
                f"  (expected shape {tuple(expected.shape)}, got {tuple(received.shape)})"
            )
        if check_dtype and received.dtype != expected.dtype:
            raise AssertionError(f"{where}: expected dtype {expected.dtype}, got {received.dtype}")
        received = received.detach().to(expected.dtype)
        if expected.is_floating_point():
            close = torch.isclose(received, expected, rtol=rtol, atol=atol, equal_nan=True)
        else:
            close = received == expected
        if not bool(close.all()):
            raise AssertionError(
                f"{where}:\\n  expected {_shown(expected)}\\n  received {_shown(received)}"
            )
'''


def harness(extra: str = "") -> str:
    """The harness cell: the standard one, ``assert_outputs_match`` and ``extra`` helpers."""
    return HARNESS.rstrip("\n") + "\n" + OUTPUTS_HARNESS + extra


@dataclass
class OutputExercise(Exercise):
    """An exercise checked by ``assert_outputs_match``: ``visible`` holds (what, doc, code)
    of each visible test cell and ``hidden`` the code lines of the hidden test."""

    #: The hidden test's docstring says what is drawn at grading time.
    drawn: str = "cases"

    def cells(self) -> list:
        fn = self.function
        cells = self.task_cells()
        for what, doc, test in self.visible:
            cells.append(
                code(
                    f"test_{fn}_{what}",
                    f'"""{doc}"""\n{test.strip(chr(10))}',
                    grade=True,
                    locked=True,
                    points=1,
                )
            )
        hidden = "\n".join(line.strip("\n") for line in self.hidden)
        cells.append(
            code(
                f"test_{fn}_hidden",
                f'"""Check {fn} on {self.drawn} drawn at grading time"""\n'
                f"### BEGIN HIDDEN TESTS\n{hidden}\n### END HIDDEN TESTS",
                grade=True,
                locked=True,
                points=2,
            )
        )
        return cells

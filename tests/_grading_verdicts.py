"""The grader's own verdicts, cell by cell, without a sandbox (a helper of the grading tests).

``grading.autograde._verify`` decides, for every test cell of a notebook, whether the
submitted functions pass: it draws the inputs from a seed, calls the student's functions
through :class:`grading.remote.RemoteFunction` (a sandboxed process) and compares outputs
and gradients with the reference.  :func:`verdicts` runs that same ``_verify``, with the
sandboxed process replaced by a namespace in this process: the notebook's support code
and the instructor's solution cells, loaded as the verification process loads a
submission's, with some functions swapped for wrong ones.  A swapped function reaches
every cell through that namespace, as a student's would (a ``js_divergence`` that calls
the student's ``kl_divergence`` gets the wrong one).  Forbidden built-ins are refused as
in the sandbox (``grading._verifier._Forbid``).

Cost: a mistake can change a cell's verdict only if the cell's verification calls the
mistaken function, so each assignment's instructor solution is verified once (cached),
cell by cell, recording which functions each cell calls; a mistake then re-runs, through
``_verify``, every cell that called the function it replaces, and every other cell keeps
the verdict it has with the instructor's solution (the same seeds, the same code path:
the same verdict), provided that it also passes in that re-run, where it has nothing to
check (so that a verdict carried over from one cell to the next is seen).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path

from grading import autograde, remote
from grading._verifier import _MAGIC, _Forbid
from grading.notebooks import SourceNotebook, source_notebooks

SEED = 101  # _verify draws cell i's inputs from SEED + autograde.SEED_STRIDE * i


def source(assignment: str) -> SourceNotebook:
    (notebook,) = source_notebooks(assignment)
    return notebook


def solution_cells(notebook: SourceNotebook) -> dict[str, str]:
    """The instructor's solution cells by grade_id (what an honest student submits)."""
    return {
        cell.metadata["nbgrader"]["grade_id"]: cell.source
        for cell in notebook.nb.cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    }


#: What _in_process sets for one run: the functions swapped in, and what instruments the
#: loaded namespace (or None).
_RUN: dict = {"replace": {}, "wrap": None}


class _Namespace:
    """Stands for :class:`grading.remote.Verifier`: the submission's namespace, here."""

    output_dropped = 0  # nothing printed is cut here

    def __init__(self, private_dir, chunks, *, unsafe, timeout, **kwargs) -> None:
        self.namespace: dict = {"__name__": "__student__"}
        self.load_errors: dict[str, str] = {}
        self.dead_reason = None
        self.hung: dict[str, str] = {}  # functions that timed out (none here: no time limit)
        for label, chunk in chunks:  # as _verifier.py loads them: each on its own
            code = "\n".join("" if _MAGIC.match(line) else line for line in chunk.splitlines())
            try:
                exec(compile(code, "<solution cell>", "exec"), self.namespace)
            except BaseException as error:
                self.load_errors[label] = f"{type(error).__name__}: {error}"
        self.namespace.update(_RUN["replace"])
        if _RUN["wrap"] is not None:
            _RUN["wrap"](self.namespace)

    def start(self) -> None:
        pass

    def alive(self) -> bool:
        return True

    def close(self) -> None:
        pass


class _Call:
    """Stands for :class:`grading.remote.RemoteFunction`: calls into the namespace."""

    def __init__(self, verifier: _Namespace, function: str, forbid=()) -> None:
        self.verifier = verifier
        self.function = function
        self.forbid = tuple(forbid)
        self.__name__ = function

    def __call__(self, *args, **kwargs):
        fn = self.verifier.namespace.get(self.function)
        if not callable(fn):
            raise remote.RemoteError(f"NameError: {self.function} is not defined")
        guard = _Forbid(self.forbid)
        try:
            with guard:
                out = fn(*args, **kwargs)
        except Exception as error:
            raise remote.RemoteError(f"{type(error).__name__}: {error}") from None
        if guard.hits:
            raise remote.RemoteError(f"ForbiddenCall: {self.function} calls {guard.hits}")
        return out


@contextlib.contextmanager
def _in_process(replace: dict[str, Callable], wrap=None):
    saved = autograde.Verifier, autograde.RemoteFunction
    autograde.Verifier, autograde.RemoteFunction = _Namespace, _Call
    _RUN.update(replace=dict(replace), wrap=wrap)
    try:
        yield
    finally:
        autograde.Verifier, autograde.RemoteFunction = saved
        _RUN.update(replace={}, wrap=None)


def _only(notebook: SourceNotebook, grade_ids: set[str]) -> SourceNotebook:
    """The notebook with the checks of the other test cells removed (nothing to check:
    they pass); every cell keeps its place, hence its seed."""
    tests = [
        t if t.grade_id in grade_ids else dataclasses.replace(t, checks=[]) for t in notebook.tests
    ]
    return dataclasses.replace(notebook, tests=tests)


def _verify(notebook, grade_ids, replace, wrap=None) -> dict[str, dict]:
    with _in_process(replace, wrap):
        verdicts, notes = autograde._verify(
            _only(notebook, grade_ids),
            solution_cells(notebook),
            Path("/nonexistent"),
            autograde.Options(unsafe=True),
            SEED,
        )
    assert not notes, notes
    return {g: (verdict.passed, verdict.message) for g, verdict in verdicts.items()}


def _traced(fn: Callable, name: str, called: set[str]) -> Callable:
    @functools.wraps(fn)
    def traced(*args, **kwargs):
        called.add(name)
        return fn(*args, **kwargs)

    return traced


@functools.cache
def instructor(assignment: str) -> dict[str, tuple[bool, frozenset[str]]]:
    """Per test cell: the verdict on the instructor's solution, and the functions of the
    submission that its verification called (directly, or through another function)."""
    notebook = source(assignment)
    record: dict[str, tuple[bool, frozenset[str]]] = {}
    for test in notebook.tests:
        called: set[str] = set()

        def wrap(namespace: dict, called: set[str] = called) -> None:
            for name in notebook.solution_ids:  # the functions of the solution cells
                if callable(namespace.get(name)):
                    namespace[name] = _traced(namespace[name], name, called)

        passed, _ = _verify(notebook, {test.grade_id}, {}, wrap)[test.grade_id]
        record[test.grade_id] = (passed, frozenset(called))
    return record


def verdicts(assignment: str, replace: dict[str, Callable]) -> dict[str, bool]:
    """The grader's verdict on every test cell of ``assignment`` for the instructor's
    solution with the functions of ``replace`` swapped in."""
    return dict(_verdicts(assignment, tuple(sorted(replace.items()))))


@functools.cache  # a mistake checked by two tests is verified once
def _verdicts(assignment: str, replace: tuple[tuple[str, Callable], ...]) -> dict[str, bool]:
    notebook = source(assignment)
    record = instructor(assignment)
    names = {name for name, _ in replace}
    affected = {g for g, (_, called) in record.items() if called & names}
    for test in notebook.tests:  # a cell checks its function: it must have called it
        assert not set(test.functions) & names or test.grade_id in affected
    run = _verify(notebook, affected, dict(replace))
    # A cell the mistake cannot reach keeps its verdict on the instructor's solution, and
    # must come out True from this run too, where its checks are left out: _verify must
    # not carry one cell's failure over to the next.
    return {
        g: run[g][0] if g in affected else record[g][0] and run[g][0]
        for g in (t.grade_id for t in notebook.tests)
    }


def expect_only_its_exercise(assignment: str, name: str, wrong: Callable) -> None:
    """``wrong`` in place of ``name`` fails at least one of ``name``'s test cells, its
    hidden one included, and every other test cell keeps its points."""
    notebook = source(assignment)
    result = verdicts(assignment, {name: wrong})
    assert set(result) == {t.grade_id for t in notebook.tests}
    mine = {t.grade_id for t in notebook.tests if name in t.functions}
    hidden = {t.grade_id for t in notebook.tests if name in t.functions and t.hidden}
    label = getattr(wrong, "__name__", repr(wrong))
    lost = {g for g, ok in result.items() if not ok}
    assert lost & mine, f"{label} passes every test of {name}"
    assert hidden <= lost, f"{label} passes the hidden test of {name}"
    assert lost <= mine, f"{label} (in {name}) also loses {sorted(lost - mine)}"


def expect_instructor_passes_every_cell(assignment: str) -> None:
    """Each cell of the instructor's solution passes the grader's verification and calls the
    function it checks, and that one only (a solution that called another exercise's
    function would pass that one's mistakes on)."""
    notebook = source(assignment)
    record = instructor(assignment)
    assert set(record) == {t.grade_id for t in notebook.tests}
    for test in notebook.tests:
        assert record[test.grade_id] == (True, set(test.functions)), test.grade_id

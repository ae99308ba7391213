"""The gradebook when an assignment changes after a batch was graded (no sandbox).

`python -m grading autograde` records each submission in nbgrader's gradebook through
:func:`grading.gradebook.record`.  An instructor who adds a test after grading gets its
grade row for every submission; one who removes an exercise no longer has its cells, or
their grades, in anyone's score or maximum.  ``nbgrader export`` and our ``export`` read
these totals.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from grading import gradebook
from grading.notebooks import load_source, nbgrader_meta, source_notebooks
from grading.results import PASSED, CellResult, NotebookResult, SubmissionResult

A01 = "a01_information"


def _full_marks(student: str, source) -> SubmissionResult:
    """A result in which every test cell of ``source`` earned its points."""
    cells = [
        CellResult(t.grade_id, t.description, t.hidden, t.points, t.points, PASSED)
        for t in source.tests
    ]
    result = SubmissionResult(student, A01, max_score=source.max_score)
    result.add(source.name, NotebookResult(source.max_score, source.max_score, cells))
    return result


def _edited(tmp_path: Path, drop: str | None = None, extra_points: float = 0.0):
    """The a01 source notebook without the cells of function ``drop`` (its task, solution
    and tests), and with ``extra_points`` more on entropy's hidden test."""
    (original,) = source_notebooks(A01)
    nb = copy.deepcopy(original.nb)
    if drop:
        nb.cells = [
            c
            for c in nb.cells
            if not str(nbgrader_meta(c).get("grade_id", "")).startswith((drop, f"test_{drop}_"))
        ]
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == "test_entropy_hidden":
            cell.metadata["nbgrader"]["points"] += extra_points
    path = tmp_path / A01 / "information.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return load_source(path, A01)


def _totals(db_url: str) -> dict[str, tuple[float, float]]:
    return {row["student"]: (row["score"], row["max_score"]) for row in gradebook.scores(db_url)}


def test_cells_added_and_removed_after_grading_reach_every_submission(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    (original,) = source_notebooks(A01)
    for student in ("alice", "bob"):
        gradebook.record(_full_marks(student, original), [original], db_url)
    assert _totals(db_url) == {"alice": (24, 24), "bob": (24, 24)}

    # The instructor removes the js_divergence exercise and gives entropy's hidden test one
    # more point, then regrades alice only.
    edited = _edited(tmp_path, drop="js_divergence", extra_points=1)
    removed = {t.grade_id for t in original.tests} - {t.grade_id for t in edited.tests}
    assert len(removed) == 3 and edited.max_score == 24 - 4 + 1
    gradebook.record(_full_marks("alice", edited), [edited], db_url)
    totals = _totals(db_url)
    assert totals["alice"] == (edited.max_score, edited.max_score)
    # bob was graded before the change: his removed cells no longer count, and the extra
    # point is one he has not earned yet (his notebook has not been regraded).
    assert totals["bob"] == (edited.max_score - 1, edited.max_score)
    with gradebook.open_gradebook(db_url) as gb:
        notebook = gb.find_notebook("information", A01)
        assert not {cell.name for cell in notebook.grade_cells} & removed
        assert "js_divergence" not in {cell.name for cell in notebook.solution_cells}

    # The exercise comes back and bob is regraded: he gets its rows again, and full marks.
    gradebook.record(_full_marks("bob", original), [original], db_url)
    assert _totals(db_url)["bob"] == (24, 24)

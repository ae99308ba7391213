"""The gradebook: nbgrader's own database (``nbgrader.api.Gradebook``).

Using nbgrader's schema keeps ``nbgrader export``, the formgrader and manual grading
working on our scores.  Only the parent process of ``autograde`` writes it, one
transaction per submission (the grades of every test cell and the comments, committed
together or rolled back together); re-grading a submission overwrites its scores, so a
re-run is idempotent.  SQLite by default; any SQLAlchemy URL (``--db`` or
``CVLOSS_GRADEBOOK_URL``), e.g. PostgreSQL.
"""

from __future__ import annotations

import copy
import os
import sys
import warnings

from nbgrader.api import Comment, Grade, Gradebook, MissingEntry, SubmittedNotebook
from nbgrader.converters import GenerateAssignment
from nbgrader.preprocessors import SaveCells
from sqlalchemy.exc import SAWarning
from traitlets.config import Config, PyFileConfigLoader

from .course import COURSE_ID, ROOT, default_db_url
from .notebooks import SourceNotebook
from .results import SubmissionResult

MAX_COMMENT = 4000  # characters of a cell's comment in the gradebook


def open_gradebook(db_url: str | None = None) -> Gradebook:
    # nbgrader runs the `alembic` command of its environment when it creates a database.
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    return Gradebook(db_url or default_db_url(), course_id=COURSE_ID)


def register(gb: Gradebook, assignment: str, sources: list[SourceNotebook]) -> None:
    """Store the assignment, its notebooks and their cells as ``nbgrader generate_assignment``
    does (idempotent).

    nbgrader keeps, per notebook, its grade, solution, task and source cells (the source and
    checksum of every locked, graded or solution cell); ``nbgrader generate_assignment``
    refuses to change that set once there are submissions, and ``nbgrader autograde`` puts
    the stored source back into each submitted cell.  The cells are therefore computed by
    nbgrader's own preprocessors, in its order, with the course's nbgrader configuration.
    """
    gb.update_or_create_assignment(assignment)
    config = _nbgrader_config()
    for source in sources:
        nb, resources = _generated(source, assignment, config)
        _SaveCellsInto(gb, config=config).save(nb, resources)


def _nbgrader_config() -> Config:
    """The course's nbgrader configuration, read as nbgrader reads it (``nbgrader_config.py``
    at the course root)."""
    return PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()


def _generated(source: SourceNotebook, assignment: str, config: Config):
    """The source notebook as ``nbgrader generate_assignment`` has it when it saves the cells
    in the gradebook: its preprocessors up to ``SaveCells`` applied (cells locked, solutions
    replaced by the stub, checksums computed), hidden tests still in."""
    steps = GenerateAssignment.class_traits()["preprocessors"].default()
    nb = copy.deepcopy(source.nb)
    resources = {
        "nbgrader": {"notebook": source.name, "assignment": assignment},
        "metadata": {"path": str(source.path.parent)},
    }
    for step in steps[: steps.index(SaveCells)]:
        nb, resources = step(config=config)(nb, resources)
    return nb, resources


class _SaveCellsInto(SaveCells):
    """nbgrader's ``SaveCells``, writing through an open gradebook instead of its own."""

    def __init__(self, gradebook: Gradebook, **kwargs) -> None:
        super().__init__(**kwargs)
        self.gradebook = gradebook

    def save(self, nb, resources) -> None:
        """Record the cells of ``nb`` as ``SaveCells.preprocess`` does.

        Once a notebook has submissions nbgrader refuses to add or remove cells; the grader
        then adds the cells that are new (their tests must be graded) and removes the cells
        the notebook no longer has, with their grades and comments (a removed test no longer
        counts, in the score or in the maximum); ``nbgrader generate_assignment`` still
        refuses such a change, as it always does."""
        self.notebook_id = resources["nbgrader"]["notebook"]
        self.assignment_id = resources["nbgrader"]["assignment"]
        self.new_grade_cells, self.new_solution_cells = {}, {}
        self.new_task_cells, self.new_source_cells = {}, {}
        for index, cell in enumerate(nb.cells):
            self.preprocess_cell(cell, resources, index)
        try:
            notebook = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        except MissingEntry:
            notebook = None
        if notebook is None or not notebook.submissions:
            self._create_notebook(nb)
            return
        for update, cells in [
            (self.gradebook.update_or_create_grade_cell, self.new_grade_cells),
            (self.gradebook.update_or_create_solution_cell, self.new_solution_cells),
            (self.gradebook.update_or_create_task_cell, self.new_task_cells),
            (self.gradebook.update_or_create_source_cell, self.new_source_cells),
        ]:
            for name, info in cells.items():
                update(name, self.notebook_id, self.assignment_id, **info)
        self._remove_dropped(notebook)

    def _remove_dropped(self, notebook) -> None:
        """Delete, in one transaction, the cells of ``notebook`` that the source no longer
        has, and the submissions' grades and comments of those cells."""
        db = self.gradebook.db
        kept = [
            (notebook.grade_cells, self.new_grade_cells),
            (notebook.solution_cells, self.new_solution_cells),
            (notebook.task_cells, self.new_task_cells),
            (notebook.source_cells, self.new_source_cells),
        ]
        dropped = [cell for cells, new in kept for cell in list(cells) if cell.name not in new]
        if not dropped:
            return
        try:
            for cell in dropped:
                for row in [*getattr(cell, "grades", []), *getattr(cell, "comments", [])]:
                    db.delete(row)
                db.delete(cell)
            db.commit()
        except Exception:
            db.rollback()
            raise


def _grade(gb: Gradebook, grade_id: str, notebook: str, result: SubmissionResult) -> Grade:
    """The submission's grade row of a grade cell, created when the cell was added to the
    assignment after the submission was first recorded (as nbgrader's ``add_submission``
    mirrors an assignment's structure into a new submission)."""
    try:
        return gb.find_grade(grade_id, notebook, result.assignment, result.student)
    except MissingEntry:
        cell = gb.find_grade_cell(grade_id, notebook, result.assignment)
        grade = Grade(cell=cell, notebook=_submitted_notebook(gb, notebook, result))
        gb.db.add(grade)
        return grade


def _comment(gb: Gradebook, grade_id: str, notebook: str, result: SubmissionResult) -> Comment:
    """The submission's comment row of a solution cell, created like :func:`_grade`'s."""
    try:
        return gb.find_comment(grade_id, notebook, result.assignment, result.student)
    except MissingEntry:
        cell = gb.find_solution_cell(grade_id, notebook, result.assignment)
        comment = Comment(cell=cell, notebook=_submitted_notebook(gb, notebook, result))
        gb.db.add(comment)
        return comment


def _submitted_notebook(gb: Gradebook, notebook: str, result: SubmissionResult):
    try:
        return gb.find_submission_notebook(notebook, result.assignment, result.student)
    except MissingEntry:  # a notebook added to the assignment after this submission
        submission = gb.find_submission(result.assignment, result.student)
        submitted = SubmittedNotebook(
            notebook=gb.find_notebook(notebook, result.assignment), assignment=submission
        )
        gb.db.add(submitted)
        return submitted


def record(
    result: SubmissionResult, sources: list[SourceNotebook], db_url: str | None = None
) -> None:
    """Write one submission's scores and comments in one transaction.

    A grade cell or solution cell added to the assignment after this submission was last
    recorded gets its row here; the scores of every test cell of the current source are
    written, and the comment of each solution cell is the first message of its tests.
    """
    with open_gradebook(db_url) as gb, warnings.catch_warnings():
        # nbgrader's add_submission triggers harmless SQLAlchemy cascade warnings.
        warnings.simplefilter("ignore", SAWarning)
        register(gb, result.assignment, sources)
        gb.update_or_create_student(result.student)
        gb.update_or_create_submission(result.assignment, result.student)
        try:
            for source in sources:
                graded = result.notebooks.get(source.name)
                cells = {c.grade_id: c for c in graded.cells} if graded else {}
                for test in source.tests:
                    grade = _grade(gb, test.grade_id, source.name, result)
                    cell = cells.get(test.grade_id)
                    grade.auto_score = float(cell.points) if cell else 0.0
                    grade.manual_score = None
                    grade.needs_manual_grade = False
                for grade_id in source.solution_ids:
                    comment = _comment(gb, grade_id, source.name, result)
                    messages = [
                        c.message
                        for c in cells.values()
                        if c.grade_id.startswith(f"test_{grade_id}_") and c.message
                    ]
                    comment.auto_comment = (messages[0] if messages else "")[:MAX_COMMENT] or None
            gb.db.commit()
        except Exception:
            gb.db.rollback()
            raise


def scores(db_url: str | None = None) -> list[dict]:
    """Every submission's total: student, assignment, score, max_score."""
    rows = []
    with open_gradebook(db_url) as gb:
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                rows.append(
                    {
                        "student": submission.student.id,
                        "assignment": assignment.name,
                        "score": float(submission.score),
                        "max_score": float(submission.max_score),
                    }
                )
    return sorted(rows, key=lambda r: (r["assignment"], r["student"]))

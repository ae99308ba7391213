"""The gradebook: nbgrader's own database (``nbgrader.api.Gradebook``).

Using nbgrader's schema keeps ``nbgrader export``, the formgrader and manual grading
working on our scores.  Only the parent process of ``autograde`` writes it, one
transaction per submission (the grades of every test cell and the comments, committed
together or rolled back together); re-grading a submission overwrites its scores, so a
re-run is idempotent.  SQLite by default; any SQLAlchemy URL (``--db`` or
``CVLOSS_GRADEBOOK_URL``), e.g. PostgreSQL.
"""

from __future__ import annotations

import os
import sys
import warnings

from nbgrader.api import Gradebook
from sqlalchemy.exc import SAWarning

from .course import COURSE_ID, default_db_url
from .notebooks import SourceNotebook


def open_gradebook(db_url: str | None = None) -> Gradebook:
    # nbgrader runs the `alembic` command of its environment when it creates a database.
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    return Gradebook(db_url or default_db_url(), course_id=COURSE_ID)


def register(gb: Gradebook, assignment: str, sources: list[SourceNotebook]) -> None:
    """Make the assignment, its notebooks and grade cells known (idempotent)."""
    gb.update_or_create_assignment(assignment)
    for source in sources:
        gb.update_or_create_notebook(source.name, assignment)
        for test in source.tests:
            gb.update_or_create_grade_cell(
                test.grade_id, source.name, assignment, max_score=test.points, cell_type="code"
            )
        for grade_id in source.solution_ids:
            gb.update_or_create_solution_cell(grade_id, source.name, assignment)


def record(result: dict, sources: list[SourceNotebook], db_url: str | None = None) -> None:
    """Write one submission's scores in one transaction."""
    with open_gradebook(db_url) as gb, warnings.catch_warnings():
        # nbgrader's add_submission triggers harmless SQLAlchemy cascade warnings.
        warnings.simplefilter("ignore", SAWarning)
        register(gb, result["assignment"], sources)
        gb.update_or_create_student(result["student"])
        gb.update_or_create_submission(result["assignment"], result["student"])
        try:
            for source in sources:
                graded = result["notebooks"].get(source.name, {"cells": []})
                by_id = {c["grade_id"]: c for c in graded.get("cells", [])}
                for test in source.tests:
                    grade = gb.find_grade(
                        test.grade_id, source.name, result["assignment"], result["student"]
                    )
                    cell = by_id.get(test.grade_id)
                    grade.auto_score = float(cell["points"]) if cell else 0.0
                    grade.manual_score = None
                    grade.needs_manual_grade = False
                for grade_id in source.solution_ids:
                    comment = gb.find_comment(
                        grade_id, source.name, result["assignment"], result["student"]
                    )
                    messages = [
                        c["message"]
                        for c in graded.get("cells", [])
                        if c["grade_id"].startswith(f"test_{grade_id}_") and c.get("message")
                    ]
                    comment.auto_comment = (messages[0] if messages else "")[:4000] or None
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

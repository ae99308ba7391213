"""The gradebook: nbgrader's own database (``nbgrader.api.Gradebook``).

Using nbgrader's schema keeps ``nbgrader export``, the formgrader and manual grading
working on our scores.  Only the parent process of ``autograde`` writes it, one
transaction per submission (the grades of every test cell and the comments, committed
together or rolled back together); re-grading a submission overwrites its scores, so a
re-run is idempotent.  SQLite by default; any SQLAlchemy URL (``--db`` or
``CVLOSS_GRADEBOOK_URL``), e.g. PostgreSQL (``postgresql://USER@HOST:5432/DATABASE``, through
psycopg 3, which the ``grading`` extra installs; tested against a real server).

:func:`check_db` is run before a batch is graded: a URL that does not parse, a database
whose driver is missing or a server that cannot be reached stops the command at once, with
a message that names ``--db``, the expected form and what was received.  Several graders may
write to one database at once (one per assignment): the schema is created under a lock
(PostgreSQL: an advisory lock), and a submission's transaction that collides with another
grader's (two graders adding the same student) is rolled back and retried.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import sqlite3
import sys
import time
import warnings
from pathlib import Path

import nbgrader.api
from nbgrader.api import Comment, Grade, Gradebook, InvalidEntry, MissingEntry, SubmittedNotebook
from nbgrader.converters import GenerateAssignment
from nbgrader.preprocessors import SaveCells
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SAWarning
from traitlets.config import Config, PyFileConfigLoader

from .course import COURSE_ID, ROOT, default_db_url
from .notebooks import SourceNotebook
from .results import SubmissionResult

MAX_COMMENT = 4000  # characters of a cell's comment in the gradebook
#: What ``--db`` takes, as the error messages say it.
DB_FORM = (
    "a SQLAlchemy URL: sqlite:////absolute/path/gradebook.db or "
    "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
)
#: The Python package that provides each database's default driver, for the message.
DRIVERS = {"postgresql": "psycopg[binary] (pip install 'cvloss_ref[grading]')"}
#: Attempts of a transaction that collides with another grader's, and the pause between.
ATTEMPTS = 6
RETRY_PAUSE_S = 0.2
#: The PostgreSQL advisory lock held while the schema is created (any fixed number).
SCHEMA_LOCK = 0x63766C6F  # "cvlo"


class GradebookUnavailable(RuntimeError):
    """The gradebook's URL is malformed, its driver is missing or it cannot be reached."""


#: The URLs whose tables this process has made sure of (see :func:`open_gradebook`).
_READY: set[str] = set()


@functools.lru_cache(maxsize=1)
def alembic_version() -> str:
    """nbgrader's schema version, which it stamps into a new gradebook by running the
    ``alembic`` command.  Asked once per process (:func:`check_db` asks before grading),
    so that creating the gradebook mid-batch starts no command that a Ctrl-C, sent to
    the whole process group, would kill halfway."""
    _alembic_on_path()
    return _nbgrader_alembic_version()


def _alembic_on_path() -> None:
    """nbgrader runs the ``alembic`` command of its environment (this Python's)."""
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


_nbgrader_alembic_version = nbgrader.api.get_alembic_version
nbgrader.api.get_alembic_version = alembic_version


def open_gradebook(db_url: str | None = None) -> Gradebook:
    """nbgrader's gradebook at ``db_url`` (the default: :func:`default_db_url`); the first
    time in a process, its tables are created if missing, under :func:`_schema_lock`."""
    _alembic_on_path()
    url = db_url or default_db_url()
    if url in _READY:
        return Gradebook(url, course_id=COURSE_ID)
    with _schema_lock(url):
        gb = _retrying(lambda: Gradebook(url, course_id=COURSE_ID))
    _READY.add(url)
    return gb


def _shown(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def check_db(db_url: str | None = None, origin: str = "--db") -> str:
    """Check the gradebook before anything is graded (nothing is created: a batch whose
    canary fails leaves no gradebook).

    Returns the URL (``db_url``, or the default).  Raises :class:`GradebookUnavailable`
    naming ``origin`` (``--db`` or ``CVLOSS_GRADEBOOK_URL``), the form expected and what
    was received (the password hidden) when the URL does not parse, names an unknown
    database or a driver that is not installed, or the database cannot be opened.
    """
    raw = db_url or default_db_url()
    try:
        url = make_url(raw)
    except ArgumentError:
        raise GradebookUnavailable(f"{origin} must be {DB_FORM}; got {raw!r}") from None
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        raise GradebookUnavailable(
            f"{origin} names an unknown database {url.drivername!r}: expected {DB_FORM}; "
            f"got {_shown(url)!r}"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as error:
        package = DRIVERS.get(url.get_backend_name(), f"the {dialect.driver} driver")
        raise GradebookUnavailable(
            f"{origin} {_shown(url)!r} needs the Python package {package}, which is not "
            f"installed ({error})"
        ) from None
    try:
        _can_open(url)
        alembic_version()  # before grading: see alembic_version
    except Exception as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise GradebookUnavailable(
            f"{origin} {_shown(url)!r}: the gradebook cannot be opened ({first}); expected "
            f"{DB_FORM}, on a server that is running and accepts this user"
        ) from None
    return raw


def _can_open(url: URL) -> None:
    """Raise if the gradebook at ``url`` cannot be opened, without creating anything: a
    SQLite file that exists must be a database, and one that does not must be creatable
    (its folder, or the nearest existing one, writable); a server must accept a
    connection."""
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return
        path = Path(url.database).absolute()
        if path.exists():
            with contextlib.closing(
                sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
            ) as connection:
                connection.execute("PRAGMA schema_version").fetchone()
            return
        folder = next(p for p in path.parents if p.exists())
        if not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
            raise OSError(f"{folder} is not a folder this user can write to")
        return
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        engine.dispose()


@contextlib.contextmanager
def _schema_lock(db_url: str):
    """Held while the gradebook's tables are created: on PostgreSQL an advisory lock, so
    that two graders starting at once do not both create them (elsewhere nothing: SQLite
    serialises the writers, and :func:`open_gradebook` retries)."""
    url = make_url(db_url)
    if url.get_backend_name() != "postgresql":
        yield
        return
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK})
    finally:
        engine.dispose()


def _retrying(action):
    """``action()``, retried when it collides with another grader's transaction (a row
    both add, a deadlock, a table both create); the last failure is raised."""
    for attempt in range(ATTEMPTS):
        try:
            return action()
        except (DBAPIError, InvalidEntry):
            if attempt == ATTEMPTS - 1:
                raise
            time.sleep(RETRY_PAUSE_S * (attempt + 1))


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
    A transaction that collides with another grader's is retried (:func:`_retrying`).
    """
    _retrying(lambda: _record(result, sources, db_url))


def _record(result: SubmissionResult, sources: list[SourceNotebook], db_url: str | None) -> None:
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


def recorded(assignment: str, db_url: str | None = None) -> set[str]:
    """The students who have a submission of ``assignment`` in the gradebook (none, and
    nothing created, when the gradebook has no tables yet)."""
    url = make_url(db_url or default_db_url())
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        if not Path(url.database).exists():
            return set()
    engine = create_engine(url)
    try:
        if "submitted_assignment" not in inspect(engine).get_table_names():
            return set()
    finally:
        engine.dispose()
    with open_gradebook(db_url) as gb:
        try:
            found = gb.find_assignment(assignment)
        except MissingEntry:
            return set()
        return {submission.student.id for submission in found.submissions}

"""The gradebook on a real PostgreSQL server, and the check of ``--db`` before grading.

The server is a throwaway one (``tests/_postgres.py``: ``initdb`` in a temporary folder,
listening on 127.0.0.1 only); `.ci/run` installs Debian's ``postgresql`` for it.  The
expected totals are computed here from the source notebooks' points, not read back from
the code under test; SQLite, the default gradebook, is the comparison.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest

from grading import cli, gradebook
from grading.notebooks import source_notebooks
from grading.results import FAILED, PASSED, CellResult, NotebookResult, SubmissionResult
from grading.sandbox import bwrap_works
from tests import _demo_batches as demo
from tests import _grading_batch as batches
from tests import _postgres
from tests._env import IN_CI, NO_BWRAP, skip_unless_ci

A01, A02 = "a01_information", "a02_classification"


def result(student: str, assignment: str, passed: int) -> SubmissionResult:
    """A result in which the first ``passed`` test cells of each notebook earned their
    points and the others nothing (with a message)."""
    sources = source_notebooks(assignment)
    out = SubmissionResult(student, assignment, max_score=sum(s.max_score for s in sources))
    for source in sources:
        cells = [
            CellResult(
                t.grade_id,
                t.description,
                t.hidden,
                t.points if i < passed else 0.0,
                t.points,
                PASSED if i < passed else FAILED,
                "" if i < passed else f"{t.grade_id} is wrong",
            )
            for i, t in enumerate(source.tests)
        ]
        score = sum(c.points for c in cells)
        out.add(source.name, NotebookResult(source.max_score, score, cells))
    return out


def expected(student: str, assignment: str, passed: int) -> dict:
    """What the gradebook must hold for :func:`result`, from the sources' points."""
    sources = source_notebooks(assignment)
    score = sum(t.points for s in sources for i, t in enumerate(s.tests) if i < passed)
    total = sum(t.points for s in sources for t in s.tests)
    return {"student": student, "assignment": assignment, "score": score, "max_score": total}


# ------------------------------------------------------------- the check before grading


def _no_grading(*args, **kwargs):
    raise AssertionError("grading started although the gradebook cannot be used")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("gradebook.db", "--db must be a SQLAlchemy URL"),
        ("nosuchdb://u:secret@host/x", "--db names an unknown database 'nosuchdb'"),
        ("postgresql://u:secret@127.0.0.1:{port}/x", "the gradebook cannot be opened"),
    ],
)
def test_a_bad_db_url_stops_autograde_before_grading(url, says, monkeypatch, capsys):
    import grading.autograde

    monkeypatch.setattr(grading.autograde, "autograde", _no_grading)
    monkeypatch.delenv("CVLOSS_GRADEBOOK_URL", raising=False)
    url = url.format(port=_free_port())
    assert cli.main(["--db", url, "autograde", A02, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert says in err
    assert "secret" not in err  # the password is never shown
    assert "sqlite:////absolute/path/gradebook.db" in err or "postgresql" in err
    assert url.split("://")[0] in err


def test_a_missing_postgresql_driver_is_named_before_grading(monkeypatch, capsys):
    import grading.autograde

    monkeypatch.setattr(grading.autograde, "autograde", _no_grading)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    monkeypatch.delenv("CVLOSS_GRADEBOOK_URL", raising=False)
    url = "postgresql://grader@db.example.invalid/course"
    assert cli.main(["--db", url, "autograde", A02]) == 1
    err = capsys.readouterr().err
    assert f"--db '{url}' needs the Python package psycopg[binary]" in err
    assert "cvloss_ref[grading]" in err


def test_the_environment_variable_is_named_when_the_url_came_from_it(monkeypatch, capsys):
    import grading.autograde

    monkeypatch.setattr(grading.autograde, "autograde", _no_grading)
    monkeypatch.setenv("CVLOSS_GRADEBOOK_URL", "not a url")
    assert cli.main(["export", "-o", "/nonexistent/grades.csv"]) == 1
    assert "CVLOSS_GRADEBOOK_URL must be a SQLAlchemy URL" in capsys.readouterr().err


# ----------------------------------------------------------------- a real server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    why = _postgres.unavailable()
    if why:
        skip_unless_ci(why)
    running = _postgres.start(tmp_path_factory.mktemp("postgres"))
    yield running
    running.stop()


def _database(server) -> str:
    return server.create_database(f"course_{uuid.uuid4().hex[:8]}")


def test_postgresql_holds_the_totals_and_exports_the_csv_that_sqlite_does(
    server, tmp_path, monkeypatch
):
    postgres, sqlite = _database(server), f"sqlite:///{tmp_path / 'gradebook.db'}"
    batch = [result("alice", A01, 99), result("bob", A01, 2), result("carol", A02, 0)]
    for url in (postgres, sqlite):
        gradebook.check_db(url)
        for one in batch:
            gradebook.record(one, source_notebooks(one.assignment), url)
    # bob is graded again (an idempotent overwrite), and better this time
    gradebook.record(result("bob", A01, 3), source_notebooks(A01), postgres)
    gradebook.record(result("bob", A01, 3), source_notebooks(A01), sqlite)
    want = [expected("alice", A01, 99), expected("bob", A01, 3), expected("carol", A02, 0)]
    assert gradebook.scores(postgres) == gradebook.scores(sqlite) == want
    monkeypatch.delenv("CVLOSS_GRADEBOOK_URL", raising=False)
    csv = {}
    for name, url in (("postgres", postgres), ("sqlite", sqlite)):
        assert cli.main(["--db", url, "export", "-o", str(tmp_path / f"{name}.csv")]) == 0
        csv[name] = (tmp_path / f"{name}.csv").read_bytes()
    assert csv["postgres"] == csv["sqlite"]
    assert csv["postgres"].count(b"\n") == 4


#: Run by each of two graders at once: check the database (creating its tables), then
#: record six students' results of one assignment.
GRADER = """
import sys, time
from grading import gradebook
from grading.notebooks import source_notebooks
from tests.test_postgres import result
url, assignment, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
sources = source_notebooks(assignment)
while time.time() < start:
    time.sleep(0.005)
gradebook.check_db(url)
for i in range(6):
    gradebook.record(result(f"s{i}", assignment, i), sources, url)
"""


def test_two_graders_of_two_assignments_write_one_new_database_at_once(server):
    url = _database(server)
    start = time.time() + 8  # both have imported what they need by then
    graders = [
        subprocess.Popen(
            [sys.executable, "-c", GRADER, url, assignment, str(start)],
            cwd=batches.ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for assignment in (A01, A02)
    ]
    for grader in graders:
        _, err = grader.communicate(timeout=300)
        assert grader.returncode == 0, err
    want = [expected(f"s{i}", a, i) for a in (A01, A02) for i in range(6)]
    assert gradebook.scores(url) == want
    with gradebook.open_gradebook(url) as gb:
        assert sorted(s.id for s in gb.students) == [f"s{i}" for i in range(6)]


@pytest.mark.slow
@pytest.mark.skipif(not (bwrap_works() or IN_CI), reason=NO_BWRAP)
def test_autograde_into_postgresql_exports_what_the_sqlite_batch_does(
    server, tmp_path, tmp_path_factory
):
    local = demo.local(tmp_path_factory)
    url = _database(server)
    batch = batches.new_batch(tmp_path)
    demo.install(batch)
    command = demo.autograde_command("--db", url, "autograde", demo.A02, "--jobs", "2")
    run = batch.run([*command, "--no-progress"], timeout=1500)
    assert run.returncode == 0, run.stderr
    assert gradebook.scores(url) == local["scores"]
    csv = batch.folder / "grades.csv"
    export = batch.run(demo.autograde_command("--db", url, "export", "-o", str(csv)))
    assert export.returncode == 0, export.stderr
    assert local["csv"].count("\n") == 3  # the header, alice and bob
    assert csv.read_text() == local["csv"]
    assert batches.survivors(batch) == []

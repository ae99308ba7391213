"""A batch that is interrupted or run again grades only what is new or changed.

The fast tests drive :func:`grading.autograde.autograde` with an engine that grades nothing
(it returns full marks at once, and records what it was asked), so that what is sent to
be graded, what is recorded and what Ctrl-C leaves are seen without sandboxes.  The slow
test sends SIGINT to a real ``python -m grading autograde`` process group, as Ctrl-C in a
terminal does, and runs the command again.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grading import autograde as ag
from grading import gradebook
from grading.course import DEMO_DIR
from grading.notebooks import source_notebooks
from grading.results import PASSED, CellResult, NotebookResult, SubmissionResult
from grading.sandbox import bwrap_works
from tests import _grading_batch as batches
from tests._env import IN_CI, NO_BWRAP

A02 = "a02_classification"
STUDENTS = ("alice", "bob", "carol")


def _full_marks(student: str, assignment: str) -> SubmissionResult:
    sources = source_notebooks(assignment)
    result = SubmissionResult(student, assignment, max_score=sum(s.max_score for s in sources))
    for source in sources:
        cells = [
            CellResult(t.grade_id, t.description, t.hidden, t.points, t.points, PASSED)
            for t in source.tests
        ]
        result.add(source.name, NotebookResult(source.max_score, source.max_score, cells))
    return result


class FakeEngine:
    """Grades at once (full marks), in order; ``interrupt_after``: Ctrl-C after that many
    results have been handed out; ``stopped``: whether :meth:`stop` was called."""

    def __init__(self, interrupt_after: int | None = None) -> None:
        self.sent: list[str] = []
        self.handed = 0
        self.interrupt_after = interrupt_after
        self.stopped = False

    def submit(self, student, assignment, folder, options):
        self.sent.append(student)
        future: cf.Future = cf.Future()
        future.set_result(_full_marks(student, assignment))
        return future

    def as_completed(self, futures):
        for future in futures:
            if self.interrupt_after is not None and self.handed >= self.interrupt_after:
                raise KeyboardInterrupt
            self.handed += 1
            yield future

    def result(self, future):
        return future.result()

    def stop(self):
        self.stopped = True

    def close(self):
        pass


@pytest.fixture
def course(tmp_path, monkeypatch):
    """A private grading folder with the demo submissions of alice, bob and carol."""
    submitted = tmp_path / "submitted"
    for student in STUDENTS:
        shutil.copytree(DEMO_DIR / student, submitted / student)
    monkeypatch.setattr(ag, "SUBMITTED_DIR", submitted)
    monkeypatch.setattr(ag, "AUTOGRADED_DIR", tmp_path / "autograded")
    return tmp_path, f"sqlite:///{tmp_path / 'gradebook.db'}"


def _run(db_url, engine, **kwargs):
    skipped: list[str] = []
    results = ag.autograde(
        A02, db_url=db_url, progress=False, engine=engine, skipped=skipped, **kwargs
    )
    return results, skipped


def test_a_second_run_grades_nothing_not_even_the_canary(course):
    _, db_url = course
    first = FakeEngine()
    _run(db_url, first)
    assert first.sent == [ag.CANARY, *STUDENTS]
    again = FakeEngine()
    results, skipped = _run(db_url, again)
    assert again.sent == []
    assert skipped == list(STUDENTS)
    assert [r.student for r in results] == list(STUDENTS)
    assert {r["student"] for r in gradebook.scores(db_url)} == set(STUDENTS)


def test_a_changed_submission_or_assignment_is_graded_again_and_force_regrades_all(
    course, monkeypatch
):
    folder, db_url = course
    _run(db_url, FakeEngine())
    notebook = folder / "submitted" / "bob" / A02 / "classification.ipynb"
    notebook.write_bytes(notebook.read_bytes().replace(b"log", b"log ", 1))
    changed = FakeEngine()
    _run(db_url, changed)
    assert changed.sent == [ag.CANARY, "bob"]
    # Another time limit is another assignment version: every submission is graded again.
    other = FakeEngine()
    _run(db_url, other, options=ag.Options(timeout=30))
    assert other.sent == [ag.CANARY, *STUDENTS]
    forced = FakeEngine()
    _run(db_url, forced, options=ag.Options(timeout=30), force=True)
    assert forced.sent == [ag.CANARY, *STUDENTS]


def test_a_result_missing_from_the_gradebook_is_recorded_without_grading(course, tmp_path):
    _, db_url = course
    _run(db_url, FakeEngine())
    other_db = f"sqlite:///{tmp_path / 'other.db'}"
    engine = FakeEngine()
    _run(other_db, engine)
    assert engine.sent == []
    assert gradebook.scores(other_db) == gradebook.scores(db_url)


def test_ctrl_c_stops_the_engine_and_keeps_what_was_recorded(course):
    folder, db_url = course
    # The canary and alice come back, then Ctrl-C: alice is recorded, bob and carol not.
    engine = FakeEngine(interrupt_after=2)
    with pytest.raises(ag.Interrupted) as interrupted:
        _run(db_url, engine)
    assert engine.stopped
    assert (interrupted.value.recorded, interrupted.value.left) == (1, 2)
    assert "run the same command again" in str(interrupted.value)
    assert gradebook.recorded(A02, db_url) == {"alice"}
    saved = json.loads((folder / "autograded" / "alice" / A02 / "results.json").read_text())
    assert ag.FINGERPRINT in saved
    assert not (folder / "autograded" / "bob").exists()
    again = FakeEngine()
    _, skipped = _run(db_url, again)
    assert skipped == ["alice"] and again.sent == [ag.CANARY, "bob", "carol"]


def test_a_gradebook_lost_mid_batch_stops_with_a_message(course, monkeypatch):
    _, db_url = course
    calls = []

    def failing(result, sources, url=None):
        calls.append(result.student)
        if len(calls) == 2:
            raise OSError("server closed the connection unexpectedly")

    monkeypatch.setattr(gradebook, "record", failing)
    engine = FakeEngine()
    with pytest.raises(ag.BatchFailed, match="gradebook failed while recording bob") as failed:
        _run(db_url, engine)
    assert "1 submission(s) were recorded" in str(failed.value)
    assert engine.stopped


# ------------------------------------------------------------------ a real Ctrl-C


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


@pytest.mark.slow
@pytest.mark.skipif(not (bwrap_works() or IN_CI), reason=NO_BWRAP)
def test_ctrl_c_stops_at_once_and_the_next_run_grades_only_what_is_missing(tmp_path):
    batch = batches.new_batch(tmp_path)
    for student in ("alice", "bob"):
        shutil.copytree(DEMO_DIR / student, batch.folder / "submitted" / student)
    command = [sys.executable, "-m", "grading", "autograde", A02, "--jobs", "1"]
    command += ["--no-progress", "--timeout", "60"]
    process = subprocess.Popen(
        command,
        cwd=batches.ROOT,
        env=batch.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, which Ctrl-C signals as a whole
    )
    alice = batch.folder / "autograded" / "alice" / A02
    deadline = time.monotonic() + 600
    while not (alice / "results.json").exists() and process.poll() is None:
        assert time.monotonic() < deadline, "alice was not graded in 600 s"
        time.sleep(0.2)
    assert process.poll() is None, process.communicate()
    time.sleep(2)  # bob is being graded, in his sandboxes
    assert batches.survivors(batch, grace=0), "nothing of the batch runs"
    os.killpg(process.pid, signal.SIGINT)
    interrupted = time.monotonic()
    _, err = process.communicate(timeout=60)
    assert time.monotonic() - interrupted < 15, "Ctrl-C took more than 15 s"
    assert process.returncode == 130, err
    assert err.strip().splitlines() == [
        "interrupted: 1 submission(s) graded and recorded, 1 not graded; run the same command "
        "again to grade only those"
    ]
    assert batches.survivors(batch) == []
    assert sorted(p.name for p in batch.tmp.iterdir()) == []  # the killed worker's folders too
    db_url = f"sqlite:///{batch.folder / 'gradebook.db'}"
    assert gradebook.recorded(A02, db_url) == {"alice"}
    graded_alice = _mtime(alice / "results.json")

    again = batch.run(command, timeout=900)
    assert again.returncode == 0, again.stderr
    assert "1 submission(s) already graded" in again.stderr
    assert _mtime(alice / "results.json") == graded_alice  # alice was not graded again
    assert gradebook.recorded(A02, db_url) == {"alice", "bob"}

    started = time.monotonic()
    third = batch.run(command, timeout=300)
    assert third.returncode == 0, third.stderr
    assert "2 submission(s) already graded" in third.stderr
    assert "alice" in third.stdout and "bob" in third.stdout
    assert time.monotonic() - started < 60
    assert batches.survivors(batch) == []

"""One local grading batch shared by the gradebook and cluster tests: the demo submissions
of alice (honest) and bob (``log(softmax(x))``) for ``a02_classification``, graded once per
test session by ``python -m grading autograde --jobs 2`` into SQLite, with its export.

The PostgreSQL test compares its CSV with this batch's, and the Dask test its gradebook.
"""

from __future__ import annotations

import shutil

from grading import gradebook
from grading.course import DEMO_DIR
from tests import _grading_batch as batches

A02 = "a02_classification"
STUDENTS = ("alice", "bob")


def install(batch: batches.Batch, students=STUDENTS) -> None:
    for student in students:
        shutil.copytree(DEMO_DIR / student, batch.folder / "submitted" / student)


def autograde_command(*extra: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "grading", *extra]


def _build(root) -> dict:
    batch = batches.new_batch(root)
    install(batch)
    run = batch.run(autograde_command("autograde", A02, "--jobs", "2", "--no-progress"), 1500)
    export = batch.run(autograde_command("export", "-o", str(batch.folder / "grades.csv")))
    csv = (batch.folder / "grades.csv").read_text() if export.returncode == 0 else ""
    return {
        "run": [run.returncode, run.stdout, run.stderr],
        "scores": gradebook.scores(f"sqlite:///{batch.folder / 'gradebook.db'}"),
        "csv": csv,
    }


def local(tmp_path_factory) -> dict:
    """The local batch (graded on first use in the session): its run, scores and CSV."""
    state = batches.once(tmp_path_factory, "demo-alice-bob-local", _build)
    assert state["run"][0] == 0, state["run"][2]
    return state

"""`make grade-demo`, the README's one command for instructors, end to end in the sandbox.

It copies the bundled demo submissions of ``a02_classification`` (alice: honest; bob: the
textbook ``log(softmax(x))``; carol: tampers with the harness and gets the hinge loss wrong;
dave: an image named ``.ipynb``) into a private grading folder, grades them with
``--jobs 2``, writes feedback, the flagged-submissions report and the CSV.
"""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest

from grading.sandbox import bwrap_works
from tests._env import IN_CI, NO_BWRAP

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (bwrap_works() or IN_CI), reason=NO_BWRAP),
    pytest.mark.skipif(
        not (ROOT / ".venv" / ".installed").exists(),
        reason="runs the Makefile target, which needs the project's .venv (make test makes it)",
    ),
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo-course")
    run = subprocess.run(
        ["make", "--no-print-directory", "grade-demo", f"GRADING_DIR={folder}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    return folder, run


def test_grade_demo_prints_the_table(demo):
    _, run = demo
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    for student in ("alice", "bob", "carol", "dave"):
        assert student in run.stdout


def test_grade_demo_scores_honest_broken_and_hostile_students(demo):
    folder, _ = demo
    with open(folder / "grades.csv", newline="") as file:
        rows = {row["student"]: row for row in csv.DictReader(file)}
    assert set(rows) == {"alice", "bob", "carol", "dave"}
    assert float(rows["alice"]["score"]) == float(rows["alice"]["max_score"]) == 16
    assert float(rows["bob"]["score"]) < 16  # log(softmax) overflows on saturated logits
    assert float(rows["carol"]["score"]) < 16  # tampering does not save the wrong hinge
    assert float(rows["dave"]["score"]) == 0


def test_grade_demo_writes_feedback_and_reports_the_tampering(demo):
    folder, _ = demo
    pages = sorted(p.parent.parent.name for p in (folder / "feedback").rglob("*.html"))
    assert pages == ["alice", "bob", "carol", "dave"]
    with open(folder / "grades.csv", newline="") as file:
        flags = {row["student"]: row["flags"] for row in csv.DictReader(file)}
    assert flags["alice"] == ""
    assert "disagree" in flags["carol"]  # the notebook "passed", the verification did not
    assert "not a valid notebook" in flags["dave"]
    bob = next((folder / "feedback" / "bob").rglob("*.html")).read_text()
    assert "cross_entropy does not match the reference" in bob

"""`make grade-demo`, the README's one command for instructors, end to end in the sandbox.

It copies the bundled demo submissions of ``a02_classification`` (alice: honest; bob: the
textbook ``log(softmax(x))``; carol: tampers with the harness and gets the hinge loss wrong;
dave: an image named ``.ipynb``) into a private grading folder, grades them with
``--jobs 2``, writes feedback, the flagged-submissions report and the CSV.
"""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from grading.cli import COPIES_HEADING
from grading.notebooks import source_notebooks
from grading.sandbox import bwrap_works
from tests import _grading_batch as batches
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


A02 = "a02_classification"
STUDENTS = ("alice", "bob", "carol", "dave")


def _grade_demo(root):
    batch = batches.new_batch(root)
    # -o: never reinstall the virtual environment this test session runs from (make test
    # made it; a changed pyproject.toml would otherwise trigger pip in the middle).
    command = ["make", "--no-print-directory", "-o", ".venv/.installed", "grade-demo"]
    run = batch.run([*command, f"GRADING_DIR={batch.folder}"], timeout=1200)
    results = {
        student: json.loads(path.read_text())
        for student in STUDENTS
        for path in [batch.folder / "autograded" / student / A02 / "results.json"]
        if path.is_file()
    }
    return {
        "folder": str(batch.folder),
        "run": [run.args, run.returncode, run.stdout, run.stderr],
        "results": results,
        "left": batches.survivors(batch),
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    state = batches.once(tmp_path_factory, "demo", _grade_demo)
    return SimpleNamespace(
        folder=Path(state["folder"]),
        run=subprocess.CompletedProcess(*state["run"]),
        results=state["results"],
        left=state["left"],
    )


def _of(*functions):
    """The grade_ids of the test cells of ``functions`` (every cell: no argument)."""
    (source,) = source_notebooks(A02)
    return {t.grade_id for t in source.tests if not functions or set(t.functions) & set(functions)}


def _section(stdout: str, command: str) -> list[str]:
    """What one command of the recipe printed: the lines after its echo, up to the next."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if f"-m grading {command}" in line)
    end = next((i for i in range(start + 1, len(lines)) if "-m grading" in lines[i]), len(lines))
    return lines[start + 1 : end]


def test_grade_demo_prints_the_table(demo):
    assert demo.run.returncode == 0, demo.run.stdout[-2000:] + demo.run.stderr[-2000:]
    table = _section(demo.run.stdout, "autograde")
    assert table[0].split()[:4] == ["student", "score", "max", "flags"]
    rows = {line.split()[0]: line.split() for line in table[2:]}
    assert set(rows) == set(STUDENTS)
    assert rows["alice"][1:3] == ["28", "28"]
    assert rows["dave"][1:3] == ["0", "28"]
    assert demo.left == []  # no grader, sandbox or kernel of the demo is left running


def test_grade_demo_scores_honest_broken_and_hostile_students(demo):
    with open(demo.folder / "grades.csv", newline="") as file:
        rows = {row["student"]: row for row in csv.DictReader(file)}
    assert set(rows) == set(STUDENTS) == set(demo.results)
    for student, result in demo.results.items():
        assert float(rows[student]["score"]) == result["score"], student
        assert float(rows[student]["max_score"]) == result["max_score"] == 28, student
    # alice: every point.
    batches.expect_lost(demo.results["alice"], set())
    # bob: log(softmax) is nan on saturated logits (the stability and hidden tests), and
    # his weight tensor is made on the CPU (the label-smoothing test runs on 'meta'): he
    # loses the three cross_entropy cells, and nothing else.
    batches.expect_lost(demo.results["bob"], _of("cross_entropy"))
    assert demo.results["bob"]["score"] == 24
    # carol: tampering does not save her wrong hinge loss; it costs her nothing else.
    batches.expect_lost(demo.results["carol"], _of("hinge_loss"))
    assert demo.results["carol"]["score"] == 24
    # dave: not a notebook: nothing.
    batches.expect_lost(demo.results["dave"], _of())


def test_grade_demo_writes_feedback_and_reports_the_tampering(demo):
    pages = sorted(p.parent.parent.name for p in (demo.folder / "feedback").rglob("*.html"))
    assert pages == list(STUDENTS)
    with open(demo.folder / "grades.csv", newline="") as file:
        flags = {row["student"]: row["flags"] for row in csv.DictReader(file)}
    assert flags["alice"] == flags["bob"] == ""
    assert "disagree" in flags["carol"]  # the notebook "passed", the verification did not
    assert "not a valid notebook" in flags["dave"]
    bob = next((demo.folder / "feedback" / "bob").rglob("*.html")).read_text()
    assert "cross_entropy does not match the reference" in bob


def test_grade_demo_reports_the_flagged_students_and_why(demo):
    """`python -m grading report`, as the recipe runs it: carol (the notebook and the
    verification disagree on her hinge loss) and dave (not a notebook), no one else."""
    report = _section(demo.run.stdout, "report")
    # The copy flags come last (tests/test_similarity.py); the demo's answers are the
    # instructor's solutions, so each one is flagged against it.
    copies = next(i for i, line in enumerate(report) if line.startswith(COPIES_HEADING))
    report, copies = report[:copies], report[copies:]
    assert "  hinge_loss: alice ~ instructor solution: 1.00" not in copies  # one line: too short
    assert "  sigmoid_focal_loss: alice ~ instructor solution: 1.00" in copies, copies
    assert any(line.startswith("  not compared: dave: ") for line in copies), copies
    blocks: dict[str, list[str]] = {}
    for line in report:
        if line.startswith("  "):
            blocks[list(blocks)[-1]].append(line.strip())
        else:
            blocks[line] = []
    assert list(blocks) == ["carol: 24/28", "dave: 0/28"], report
    disagree = [f for f in blocks["carol: 24/28"] if f.startswith("notebook and verification")]
    assert len(disagree) == 1, report
    assert set(disagree[0].split(": ", 1)[1].split(", ")) == _of("hinge_loss")
    assert "hinge_loss imports cvloss_ref" in blocks["carol: 24/28"]
    (dave,) = blocks["dave: 0/28"]
    assert dave.startswith("not graded: classification.ipynb is not a valid notebook"), dave
